"""HiGHS models and proven bounds behind :mod:`circles.engine.siting`.

The functions take the siting problem (``coverage``: candidates × demand CSR whose stored
entries are the covered pairs; ``weights``: people per demand point not yet covered).
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

__all__ = ["fewest_sites", "lagrangian_bound", "lp_bound", "lp_fewest", "solve_milp", "upper_bound"]


def lagrangian_bound(prob, p: int, *, lower: float, iterations: int = 300) -> float:
    """An upper bound on the optimum by Lagrangian relaxation of ``y_i <= sum x_j``.

    For multipliers ``0 <= lam_i <= w_i`` the bound is ``sum_i (w_i - lam_i) + sum of the p
    largest sum_{i in N_j} lam_i``; subgradient steps (Polyak, towards ``lower``) tighten it.
    """
    A = prob.coverage.astype(bool).astype(np.float64).tocsr()
    At = A.T.tocsr()
    w = prob.weights
    lam = w * 0.5
    best = np.inf
    theta, stall = 1.0, 0
    for _ in range(iterations):
        c = np.asarray(A @ lam).ravel()
        top = np.argpartition(-c, min(p, len(c)) - 1)[:p] if p < len(c) else np.arange(len(c))
        bound = float((w - lam).sum() + c[top].sum())
        if bound < best - 1e-9:
            best, stall = bound, 0
        else:
            stall += 1
            if stall >= 15:
                theta, stall = theta / 2, 0
        x = np.zeros(A.shape[0])
        x[top] = 1.0
        g = np.asarray(At @ x).ravel() - 1.0  # d bound / d lam = covered_i - 1
        norm = float(g @ g)
        if norm == 0 or best - lower <= 1e-6 * max(best, 1.0) or theta < 1e-4:
            break
        lam = np.clip(lam - theta * (bound - lower) / norm * g, 0.0, w)
    return best


def _model(prob, p: int, *, integer: bool, time_limit_s: float, need: float | None = None):
    """The covering model: ``p`` sites maximising people, or (``need``) the fewest sites
    covering ``need`` people."""
    import highspy

    w = prob.weights
    cov = prob.coverage.astype(bool).tocsc()
    demand = np.flatnonzero((w > 0) & (np.diff(cov.indptr) > 0))
    sub = cov[:, demand].tocsr().T.tocsr()  # demand × candidates
    n_c, n_d = cov.shape[0], len(demand)
    with _quiet_stdout():  # HiGHS prints a banner from C++ when constructed
        h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("threads", 2)
    inf = highspy.kHighsInf
    # Columns: x_j (candidates) then y_i (demand).
    h.addVars(n_c + n_d, np.zeros(n_c + n_d), np.ones(n_c + n_d))
    if need is None:
        h.changeColsCost(n_c + n_d, np.arange(n_c + n_d, dtype=np.int32),
                         np.concatenate([np.zeros(n_c), w[demand]]))
        h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    else:
        h.changeColsCost(n_c, np.arange(n_c, dtype=np.int32), np.ones(n_c))
        h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    # y_i - sum_{j in N_i} x_j <= 0
    starts = (sub.indptr[:-1] + np.arange(n_d)).astype(np.int32)
    idx = np.empty(sub.nnz + n_d, dtype=np.int32)
    val = np.empty(sub.nnz + n_d)
    pos = np.arange(sub.nnz) + np.repeat(np.arange(n_d), np.diff(sub.indptr)) + 1
    idx[pos] = sub.indices
    val[pos] = -1.0
    idx[starts] = n_c + np.arange(n_d)
    val[starts] = 1.0
    h.addRows(n_d, np.full(n_d, -inf), np.zeros(n_d), len(idx), starts, idx, val)
    if need is None:
        h.addRow(float(p), float(p), n_c, np.arange(n_c, dtype=np.int32), np.ones(n_c))
    else:
        h.addRow(float(need), inf, n_d, np.arange(n_c, n_c + n_d, dtype=np.int32), w[demand])
    if integer:
        h.changeColsIntegrality(n_c, np.arange(n_c, dtype=np.int32),
                                np.full(n_c, highspy.HighsVarType.kInteger))
    return h, n_c


def highspy_solution(h, x0: np.ndarray, n_c: int):
    """A HiGHS solution object with the candidate columns set (demand columns left to HiGHS)."""
    import highspy

    sol = highspy.HighsSolution()
    n = h.getNumCol()
    col = np.zeros(n)
    col[:n_c] = x0
    sol.col_value = col.tolist()
    sol.value_valid = True
    return sol


@contextlib.contextmanager
def _quiet_stdout():
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def lp_bound(prob, p: int, time_limit_s: float) -> float:
    """The LP relaxation of the ``p``-site model (``inf`` when HiGHS stops early)."""
    if prob.weights.sum() == 0:
        return 0.0
    h, _ = _model(prob, p, integer=False, time_limit_s=time_limit_s)
    h.run()
    if h.modelStatusToString(h.getModelStatus()) != "Optimal":
        return np.inf
    return float(h.getInfo().objective_function_value)


def lp_fewest(prob, need: float, time_limit_s: float) -> float:
    """The LP relaxation of the fewest sites covering ``need`` people.

    NaN when HiGHS stops early. The model::

        min sum x_j  s.t.  sum_i w_i y_i >= need,  y_i <= sum_{j in N_i} x_j,  0 <= x, y <= 1
    """
    h, _ = _model(prob, 1, integer=False, time_limit_s=time_limit_s, need=need)
    h.run()
    if h.modelStatusToString(h.getModelStatus()) != "Optimal":
        return np.nan
    return float(h.getInfo().objective_function_value)


def solve_milp(prob, p: int, time_limit_s: float, *, start: np.ndarray | None = None
               ) -> tuple[np.ndarray, float, str]:
    """The ``p``-site MILP with HiGHS from ``start`` (a MIP start, so the incumbent is never
    worse than it).

    Returns
    -------
    selected, dual_bound, status
        Chosen rows; HiGHS's proven bound (NaN when it has none); ``"optimal"`` or HiGHS's
        status in lower case.

    """
    h, n_c = _model(prob, p, integer=True, time_limit_s=time_limit_s)
    if start is not None and len(start):
        x0 = np.zeros(n_c)
        x0[start] = 1.0
        h.setSolution(highspy_solution(h, x0, n_c))
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    x = np.asarray(h.getSolution().col_value[:n_c])
    sel = np.flatnonzero(x > 0.5).astype(np.int64)
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else np.nan
    return sel, bound, "optimal" if status == "Optimal" else status.lower()


def upper_bound(prob, p: int, *, lower: float, time_limit_s: float) -> float:
    """A proven upper bound on the people ``p`` sites can newly cover.

    A capacity only lowers the optimum, so the bounds of the uncapacitated model stay valid;
    with capacities the ``p`` largest capacities are a bound too.
    """
    if prob.weights.sum() == 0:
        return 0.0
    bound = lagrangian_bound(prob, p, lower=lower)
    if prob.coverage.nnz <= 300_000:  # the LP bound is tighter and cheap here
        bound = min(bound, lp_bound(prob, p, min(time_limit_s, 3.0)))
    if prob.capacity is not None:
        bound = min(bound, float(np.sort(prob.capacity)[::-1][:p].sum()))
    return bound


def fewest_sites(prob, need: float, time_limit_s: float) -> int:
    """A lower bound on the sites needed to newly cover ``need`` people.

    No ``k`` sites cover more than their ``k`` largest single-site gains, so the first ``k``
    whose sum reaches ``need`` bounds from below; without capacities the LP relaxation of
    "fewest sites covering ``need``" is tighter where it is cheap to solve.
    """
    if need <= 1e-9:
        return 0
    single = np.asarray(prob.coverage.astype(bool) @ prob.weights).ravel()
    if prob.capacity is not None:
        single = np.minimum(single, prob.capacity)
    cum = np.cumsum(np.sort(single)[::-1])
    k = int(np.searchsorted(cum, need - 1e-6)) + 1
    if prob.capacity is None and prob.coverage.nnz <= 300_000:
        lp = lp_fewest(prob, need, time_limit_s)
        if np.isfinite(lp):
            k = max(k, int(np.ceil(lp - 1e-6)))
    return k
