"""HiGHS models and proven bounds behind :mod:`circles.engine.siting`.

The functions take the siting problem (``coverage``: candidates × demand CSR whose stored
entries are the covered pairs; ``weights``: people per demand point not yet covered).
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

__all__ = ["LagrangianBound", "covered_people", "exact_start", "fewest_sites", "is_proven", "lagrangian_bound",
           "lp_bound", "lp_fewest", "milp_sites", "proof_step", "proven_bound", "simple_bound", "solve_milp",
           "upper_bound"]


class LagrangianBound:
    """Upper bounds on the ``p``-site optimum by Lagrangian relaxation of ``y_i <= sum x_j``.

    For any multipliers ``0 <= lam_i <= w_i`` the value ``sum_i (w_i - lam_i) + the p largest
    sum_{i in N_j} lam_i`` bounds the optimum (weak duality), so every value seen is proven and
    the least is kept. Its minimum over ``lam`` is the LP bound. The multipliers start from an
    answer's coverage (people no site covers at ``w``, people two sites cover at 0: the greedy's
    own bound is one of the starts) and projected subgradient steps tighten them, a few at a time.

    Attributes
    ----------
    best : float
        The least bound seen.
    converged : bool
        No step tightens it further (the subgradient vanished, or the step size ran out).
    iterations : int
        Subgradient steps taken.
    answer : numpy.ndarray
        The best of the sites each step opens (the ``p`` largest ``sum lam``), a Lagrangian
        heuristic: near the dual optimum they are often the optimal sites.
    answer_value : float
        People ``answer`` covers.

    """

    def __init__(self, prob, p: int, *, start: np.ndarray | None = None) -> None:
        self._prob, self._w, self._p = prob, prob.weights, int(p)
        self._wsum = float(self._w.sum())
        self._theta, self._stall, self._dir = 1.5, 0, np.zeros(len(self._w))
        self.iterations, self.converged = 0, False
        self.answer, self.answer_value = np.array([], dtype=np.int64), 0.0
        w = self._w
        if start is None:
            starts = [w * 0.5]
        else:
            pts, _ = prob.points_of(np.asarray(start, dtype=np.int64))
            count = np.bincount(pts, minlength=len(w))
            # lam = w everywhere is the p largest single-site gains; t = 0 is the greedy's own bound.
            starts = [w] + [np.where(count == 0, w, np.where(count == 1, t * w, 0.0)) for t in (0.0, 0.5, 1.0)]
        sums = [np.asarray(prob.ones @ lam).ravel() for lam in starts]
        values = [self._value(lam, c)[0] for lam, c in zip(starts, sums, strict=True)]
        k = int(np.argmin(values))
        self.best, self._lam, self._c = float(values[k]), starts[k].copy(), sums[k]

    def _value(self, lam: np.ndarray, c: np.ndarray) -> tuple[float, np.ndarray]:
        p = min(self._p, len(c))
        top = np.argpartition(-c, p - 1)[:p] if p < len(c) else np.arange(len(c))
        return float(self._wsum - lam.sum() + c[top].sum()), top

    def _sums(self, lam: np.ndarray, old: np.ndarray) -> np.ndarray:
        """``A @ lam``: after the first steps, when few multipliers moved, only theirs are added
        in through the transpose; exact again every 20 steps so rounding never builds up."""
        moved = np.flatnonzero(lam != old)
        ones = self._prob.ones
        if self.iterations < 5 or self.iterations % 20 == 0 or len(moved) * 20 > len(lam):
            return np.asarray(ones @ lam).ravel()
        sites, n = self._prob.sites_of(moved)
        return self._c + np.bincount(sites, weights=np.repeat(lam[moved] - old[moved], n), minlength=len(self._c))

    def improve(self, lower: float, iterations: int) -> float:
        """Take up to ``iterations`` steps (Polyak steps towards ``lower``, a known objective);
        returns :attr:`best`."""
        for _ in range(iterations):
            if self.converged:
                break
            self._step(lower)
        return self.best

    def _step(self, lower: float) -> None:
        w, lam = self._w, self._lam
        bound, top = self._value(lam, self._c)
        self.iterations += 1
        if bound < self.best - 1e-9 * max(1.0, abs(self.best)):
            self.best, self._stall = bound, 0
        else:
            self._stall += 1
            if self._stall >= 5:  # halving after a few idle steps converges fastest here
                self._theta, self._stall = self._theta / 2, 0
        count = np.bincount(self._prob.points_of(top)[0], minlength=len(w))
        value = float(np.sum(w, where=count > 0))
        if value > self.answer_value:
            self.answer, self.answer_value = np.sort(top).astype(np.int64), value
        void = ((lam <= 0) & (count > 1)) | ((lam >= w) & (count < 1))  # steps that would leave [0, w]
        g = count - 1.0  # d bound / d lam
        g[void] = 0.0
        if not g.any() or self._theta < 1e-4 or bound <= lower:
            self.converged = True  # a zero subgradient: lam is optimal and the bound is the LP's
            return
        # Deflected (Camerini-Fratta-Maffioli): part of the last direction damps the zigzag.
        d: np.ndarray = g
        prev = self._dir
        dot = _dot(g, prev)
        if dot < 0:
            d = g - 1.2 * dot / _dot(prev, prev) * prev
            d[void] = 0.0
        new = lam - self._theta * (bound - lower) / _dot(d, d) * d
        np.minimum(np.maximum(new, 0.0, out=new), w, out=new)  # back into [0, w]
        self._c, self._lam, self._dir = self._sums(new, lam), new, d


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """A dot product without BLAS: its threads wake slowly on a busy machine, 100× a dot's work."""
    return float(np.einsum("i,i->", a, b))


def lagrangian_bound(prob, p: int, *, lower: float, iterations: int = 300,
                     start: np.ndarray | None = None) -> float:
    """An upper bound on the optimum by Lagrangian relaxation (:class:`LagrangianBound`), after
    up to ``iterations`` steps from ``start`` (an answer's rows) or from ``w / 2``."""
    return LagrangianBound(prob, p, start=start).improve(lower, iterations)


def simple_bound(prob, p: int) -> float:
    """Bounds that need no search: everyone some candidate reaches, and under capacities the
    ``p`` largest of each site's capacity or single-site gain, whichever is less."""
    if prob.weights.sum() == 0:
        return 0.0
    reach = np.bincount(prob.ones.indices, minlength=len(prob.weights)) > 0
    bound = float(prob.weights[reach].sum())
    if prob.capacity is not None:
        single = np.minimum(np.asarray(prob.ones @ prob.weights).ravel(), prob.capacity)
        bound = min(bound, float(np.sort(single)[::-1][:p].sum()))
    return bound


def proof_step(weights: np.ndarray) -> float:
    """The step every objective is a multiple of: 1 for whole people, 0.1 or 0.01 for tenths or
    hundredths, 0 when there is none (then only an exact match proves an answer optimal)."""
    w = np.asarray(weights, dtype=np.float64)
    for step in (1.0, 0.1, 0.01, 0.001):
        x = w / step
        if np.all(np.abs(x - np.round(x)) <= 1e-6) and x.sum() < 2.0**40:
            return step
    return 0.0


def proven_bound(bound: float, step: float) -> float:
    """``bound`` rounded down to a multiple of ``step`` (the optimum is one, so this is a bound too).

    The tolerance only ever keeps the bound higher: sums in floating point may fall a hair below
    a bound's true value, and rounding that down a whole step would not be proven.
    """
    if step <= 0 or not np.isfinite(bound):
        return bound
    return min(bound, step * np.floor(bound / step + 1e-4))


def is_proven(objective: float, bound: float) -> bool:
    """Whether ``objective`` meets the proven ``bound`` (up to rounding in the last digits)."""
    return objective >= bound - 1e-9 * max(1.0, abs(bound))


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


def solve_milp(prob, p: int, time_limit_s: float, *, start: np.ndarray | None = None,
               rel_gap: float | None = None) -> tuple[np.ndarray, float, str]:
    """The ``p``-site MILP with HiGHS from ``start`` (a MIP start, so the incumbent is never
    worse than it); ``rel_gap`` replaces HiGHS's own stopping gap (``0``: prove the optimum).

    Returns
    -------
    selected, dual_bound, status
        Chosen rows; HiGHS's proven bound (NaN when it has none); ``"optimal"`` or HiGHS's
        status in lower case.

    """
    h, n_c = _model(prob, p, integer=True, time_limit_s=time_limit_s)
    if rel_gap is not None:
        h.setOptionValue("mip_rel_gap", float(rel_gap))
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


def covered_people(prob, sel: np.ndarray) -> float:
    """People the sites ``sel`` newly cover together (no capacities)."""
    pts, _ = prob.points_of(np.asarray(sel, dtype=np.int64))
    return float(prob.weights[np.unique(pts)].sum())


def milp_sites(prob, p: int, time_limit_s: float, *, start: np.ndarray | None = None,
               rel_gap: float | None = None) -> tuple[np.ndarray, float, float, str]:
    """:func:`solve_milp`, keeping ``start`` when HiGHS's incumbent is worse (it may drop a MIP
    start it cannot use).

    Returns
    -------
    selected, objective, dual_bound, status

    """
    if prob.weights.sum() == 0:
        return np.array([], dtype=np.int64), 0.0, 0.0, "optimal"
    sel, bound, status = solve_milp(prob, p, time_limit_s, start=start, rel_gap=rel_gap)
    obj = covered_people(prob, sel)
    if start is not None and len(start) and covered_people(prob, start) > obj:
        sel, obj = np.asarray(start, dtype=np.int64), covered_people(prob, start)
    return sel, obj, bound, status


def exact_start(prob, p: int, start: np.ndarray) -> tuple[np.ndarray, float]:
    """The exact solver's start and the proven bound it starts from: the better of ``start``
    and the Lagrangian bound's own sites, and that bound after up to 300 steps."""
    if not len(start):
        return start, simple_bound(prob, p)
    dual = LagrangianBound(prob, p, start=start)
    lower = covered_people(prob, start)
    for _ in range(60):  # steps towards the best answer yet
        dual.improve(max(lower, dual.answer_value), 5)
        if dual.converged:
            break
    if dual.answer_value > lower:
        start = dual.answer
    return start, proven_bound(min(simple_bound(prob, p), dual.best), proof_step(prob.weights))


def upper_bound(prob, p: int, *, lower: float, start: np.ndarray | None = None,
                iterations: int = 300) -> float:
    """A proven upper bound on the people ``p`` sites can newly cover: the least of
    :func:`simple_bound` and the Lagrangian bound from ``start``.

    A capacity only lowers the optimum, so the bounds of the uncapacitated model stay valid.
    """
    if prob.weights.sum() == 0:
        return 0.0
    return min(simple_bound(prob, p), lagrangian_bound(prob, p, lower=lower, iterations=iterations, start=start))


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
