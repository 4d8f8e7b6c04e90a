"""Siting: new station sites that cover the most people left out (expansion planning).

Existing facilities stay fixed; only people not already covered count. Solvers are built from a
sparse candidate × demand coverage matrix (spopt style: ``from_cost_matrix(...)``, then
``.solve()``, results as attributes).
"""

from __future__ import annotations

import contextlib
import heapq
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from .errors import DataError

__all__ = ["CoverageTarget", "MaximalCovering", "candidate_nodes"]


def candidate_nodes(net, *, spacing_metres: float = 100.0, exclude_xy: tuple[np.ndarray, np.ndarray] | None = None,
                    exclude_metres: float = 50.0) -> np.ndarray:
    """Network nodes thinned to about one per ``spacing_metres`` square, existing sites excluded.

    In each grid square the node nearest the square's centre is kept (vectorised: one sort).

    Returns
    -------
    numpy.ndarray
        Node indices.

    """
    gx = np.floor(net.x / spacing_metres).astype(np.int64)
    gy = np.floor(net.y / spacing_metres).astype(np.int64)
    d = np.hypot(net.x - (gx + 0.5) * spacing_metres, net.y - (gy + 0.5) * spacing_metres)
    order = np.lexsort((d, gy, gx))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (gx[order][1:] != gx[order][:-1]) | (gy[order][1:] != gy[order][:-1])
    nodes = order[first]
    if exclude_xy is not None and len(exclude_xy[0]):
        from scipy.spatial import cKDTree

        tree = cKDTree(np.column_stack(exclude_xy))
        near = tree.query(np.column_stack([net.x[nodes], net.y[nodes]]), distance_upper_bound=exclude_metres)[0]
        nodes = nodes[~np.isfinite(near)]
    return np.sort(nodes)


@dataclass
class _Problem:
    coverage: sparse.csr_matrix  # candidates × demand; value = metres + 1 (0 = not covered)
    weights: np.ndarray          # people per demand point not already covered
    capacity: np.ndarray | None  # people per candidate, or None
    total: float                 # everyone the shares are relative to
    already: float               # people covered before siting


@dataclass
class MaximalCovering:
    """Maximal covering location problem (MCLP) for new sites.

    Choose ``p`` candidates maximising the people newly covered:

    .. math::

        \\max \\sum_i w_i y_i \\quad \\text{s.t.} \\quad y_i \\le \\sum_{j \\in N_i} x_j,\\;
        \\sum_j x_j = p,\\; x_j \\in \\{0, 1\\},\\; 0 \\le y_i \\le 1

    where :math:`w_i` are the people at demand point *i* not already covered and :math:`N_i` the
    candidates within the threshold of *i* (``y`` may be continuous: at an optimum it is 0/1).
    ``greedy`` uses lazy evaluation (gains only shrink, so a stale heap top that is still the
    largest after re-evaluation is the true best): a (1 − 1/e) guarantee, and its quality is
    stated against the LP-relaxation bound. ``exact`` solves the MILP with HiGHS (``highspy``,
    whose time limit holds) and reports the bound it proved and the gap.

    With ``capacity``, each site serves at most that many people (nearest first), so sites are
    not stacked in dense areas.

    Attributes
    ----------
    selected : numpy.ndarray
        Chosen candidate rows, in order of choice (greedy) or of gain (exact).
    gains : numpy.ndarray
        People newly covered by each selected site, in that order.
    objective : float
        People newly covered in all.
    upper_bound : float
        A proven upper bound on the optimum (LP relaxation or the MILP's dual bound).
    gap : float
        ``(upper_bound - objective) / upper_bound``.
    solver, status : str
    seconds : float

    """

    problem: _Problem
    selected: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    gains: np.ndarray = field(default_factory=lambda: np.array([]))
    objective: float = 0.0
    upper_bound: float = np.nan
    gap: float = np.nan
    solver: str = ""
    status: str = "not solved"
    seconds: float = 0.0

    @classmethod
    def from_cost_matrix(cls, coverage: sparse.spmatrix, weights: np.ndarray, *,
                         already_covered: np.ndarray | None = None, capacity: float | np.ndarray | None = None
                         ) -> MaximalCovering:
        """Build from a candidates × demand matrix (nonzero = within threshold; values, if any,
        are metres, used to serve the nearest first under a capacity)."""
        cov = sparse.csr_matrix(coverage, dtype=np.float64, copy=True)
        if cov.shape[1] != len(weights):
            raise DataError(f"the coverage matrix has {cov.shape[1]} demand columns for {len(weights)} weights",
                            fix="build both from the same demand points")
        cov.data = cov.data + 1.0  # keep zero distances as entries
        w = np.asarray(weights, dtype=np.float64)
        total = float(w.sum())
        done = np.zeros(len(w), dtype=bool) if already_covered is None else np.asarray(already_covered, bool)
        cap = None if capacity is None else np.broadcast_to(np.asarray(capacity, float), (cov.shape[0],)).copy()
        return cls(problem=_Problem(cov, np.where(done, 0.0, w), cap, total, float(w[done].sum())))

    @property
    def covered_share(self) -> float:
        """Share of everyone covered after adding the selected sites."""
        p = self.problem
        return (p.already + self.objective) / p.total if p.total > 0 else np.nan

    def solve(self, p: int, *, method: str = "greedy", time_limit_s: float = 60.0) -> MaximalCovering:
        """Choose ``p`` sites with ``greedy`` or ``exact``; returns ``self``."""
        t0 = time.perf_counter()
        p = int(min(p, self.problem.coverage.shape[0]))
        if method == "greedy":
            sel, _ = _greedy(self.problem, max_sites=p)
            self.solver, self.status = "greedy (lazy)", "done"
            if self.problem.capacity is None and len(sel):
                # Rounds scale with the model so the search costs about the same everywhere and
                # the answer is reproducible (the time limit is only a safety net).
                rounds = int(np.clip(4e7 / max(self.problem.coverage.nnz, 1), 10, 200))
                sel = _perturb(self.problem, _swap(self.problem, sel), p, rounds=rounds, seconds=time_limit_s)
                self.solver = "greedy (lazy) + swap search"
                lower = float(_marginal_gains(self.problem, sel).sum())
                self.upper_bound = _lagrangian_bound(self.problem, p, lower=lower)
                if self.problem.coverage.nnz <= 300_000:  # the LP bound is tighter and cheap here
                    self.upper_bound = min(self.upper_bound, _lp_bound(self.problem, p, min(time_limit_s, 3.0)))
            self.selected = sel
            self.gains = _marginal_gains(self.problem, sel)
            if self.problem.capacity is None:
                order = np.argsort(-self.gains, kind="stable")
                self.selected, self.gains = self.selected[order], _marginal_gains(self.problem, sel[order])
            self.objective = float(self.gains.sum())
        elif method == "exact":
            if self.problem.capacity is not None:
                raise DataError("the exact solver does not model capacities", field="capacity",
                                fix="use the greedy solver with capacities, or drop --capacity")
            start, _ = _greedy(self.problem, max_sites=p)
            start = _swap(self.problem, start) if len(start) else start
            sel, obj, bound, status = _milp(self.problem, p, time_limit_s, start=start)
            self.selected = sel
            self.gains = _marginal_gains(self.problem, sel)
            order = np.argsort(-self.gains, kind="stable")
            self.selected, self.gains = self.selected[order], self.gains[order]
            self.objective, self.upper_bound, self.status = obj, bound, status
            self.solver = "exact MILP (HiGHS)"
        else:
            raise DataError(f"unknown method {method!r}", fix="use 'greedy' or 'exact'")
        if np.isfinite(self.upper_bound) and self.upper_bound > 0:
            self.gap = max(0.0, (self.upper_bound - self.objective) / self.upper_bound)
        elif self.upper_bound == 0:
            self.gap = 0.0
        self.seconds = time.perf_counter() - t0
        return self


def _rows(cov: sparse.csr_matrix, j: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = cov.indptr[j], cov.indptr[j + 1]
    return cov.indices[a:b], cov.data[a:b]


def _gain(prob: _Problem, left: np.ndarray, j: int) -> float:
    idx, _ = _rows(prob.coverage, j)
    g = float(left[idx].sum())
    return min(g, prob.capacity[j]) if prob.capacity is not None else g


def _take(prob: _Problem, left: np.ndarray, j: int) -> float:
    """Assign people to site ``j`` (nearest first under a capacity); returns how many."""
    idx, dist = _rows(prob.coverage, j)
    if prob.capacity is None:
        g = float(left[idx].sum())
        left[idx] = 0.0
        return g
    order = np.argsort(dist, kind="stable")
    idx = idx[order]
    cum = np.cumsum(left[idx])
    cap = prob.capacity[j]
    full = cum <= cap
    taken = float(cum[full][-1]) if full.any() else 0.0
    left[idx[full]] = 0.0
    k = int(full.sum())
    if k < len(idx) and cap > taken:  # the first point that does not fit is served in part
        left[idx[k]] -= cap - taken
        taken = cap
    return taken


def _greedy(prob: _Problem, *, max_sites: int, stop_at: float | None = None,
            start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    left = prob.weights.copy()
    chosen, gains = [], []
    covered = prob.already
    for j in (start if start is not None else []):  # sites kept from an earlier answer
        got = _take(prob, left, int(j))
        chosen.append(int(j))
        gains.append(got)
        covered += got
    gains0 = np.asarray(prob.coverage.astype(bool) @ left).ravel()
    if prob.capacity is not None:
        gains0 = np.minimum(gains0, prob.capacity)
    if chosen:
        gains0[chosen] = 0.0
    heap = [(-g, j) for j, g in enumerate(gains0) if g > 0]
    heapq.heapify(heap)
    while heap and len(chosen) < max_sites:
        _neg, j = heapq.heappop(heap)
        g = _gain(prob, left, j)
        if heap and g < -heap[0][0] - 1e-9:
            if g > 0:
                heapq.heappush(heap, (-g, j))
            continue
        if g <= 0:
            break
        got = _take(prob, left, j)
        chosen.append(j)
        gains.append(got)
        covered += got
        if stop_at is not None and covered >= stop_at - 1e-9:
            break
    return np.array(chosen, dtype=np.int64), np.array(gains, dtype=float)


def _swap(prob: _Problem, sel: np.ndarray, *, max_rounds: int = 20) -> np.ndarray:
    """1-swap local search: replace a chosen site by the best other one while that gains people.

    Each test is one sparse product over all candidates, so a round costs ``p`` products.
    """
    A = prob.coverage.astype(bool).astype(np.float64).tocsr()
    At = A.T.tocsr()
    w = prob.weights
    sel = list(sel)
    chosen = np.zeros(A.shape[0], dtype=bool)
    chosen[sel] = True
    count = np.asarray(At @ chosen.astype(float)).ravel()
    for _ in range(max_rounds):
        improved = False
        for pos, j in enumerate(list(sel)):
            idx = A.indices[A.indptr[j]:A.indptr[j + 1]]
            lost = float(w[idx][count[idx] == 1].sum())
            count[idx] -= 1
            free = np.where(count == 0, w, 0.0)
            gain = np.asarray(A @ free).ravel()
            gain[chosen] = -1.0
            k = int(np.argmax(gain))
            if gain[k] > lost + 1e-9:
                sel[pos] = k
                chosen[j], chosen[k] = False, True
                count[A.indices[A.indptr[k]:A.indptr[k + 1]]] += 1
                improved = True
            else:
                count[idx] += 1
        if not improved:
            break
    return np.asarray(sel, dtype=np.int64)


def _perturb(prob: _Problem, sel: np.ndarray, p: int, *, rounds: int, seconds: float, seed: int = 0
             ) -> np.ndarray:
    """Iterated local search: drop a few sites at random, refill greedily, swap; keep the best.

    ``rounds`` rounds, deterministic for a seed; ``seconds`` only stops a runaway search.
    """
    rng = np.random.default_rng(seed)
    best = np.asarray(sel)
    best_obj = float(_marginal_gains(prob, best).sum())
    t0 = time.perf_counter()
    k = max(1, p // 10)
    for _ in range(rounds):
        if time.perf_counter() - t0 > seconds or len(best) <= k:
            break
        keep = np.delete(best, rng.choice(len(best), k, replace=False))
        trial, _ = _greedy(prob, max_sites=p, start=keep)
        trial = _swap(prob, trial, max_rounds=3)
        obj = float(_marginal_gains(prob, trial).sum())
        if obj > best_obj + 1e-9:
            best, best_obj = trial, obj
    return best


def _lagrangian_bound(prob: _Problem, p: int, *, lower: float, iterations: int = 300) -> float:
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


def _marginal_gains(prob: _Problem, sel: np.ndarray) -> np.ndarray:
    left = prob.weights.copy()
    return np.array([_take(prob, left, int(j)) for j in sel], dtype=float)


def _model(prob: _Problem, p: int, *, integer: bool, time_limit_s: float):
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
    h.changeColsCost(n_c + n_d, np.arange(n_c + n_d, dtype=np.int32),
                     np.concatenate([np.zeros(n_c), w[demand]]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
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
    h.addRow(float(p), float(p), n_c, np.arange(n_c, dtype=np.int32), np.ones(n_c))
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


def _lp_bound(prob: _Problem, p: int, time_limit_s: float) -> float:
    if prob.weights.sum() == 0:
        return 0.0
    h, _ = _model(prob, p, integer=False, time_limit_s=time_limit_s)
    h.run()
    if h.modelStatusToString(h.getModelStatus()) != "Optimal":
        return np.inf
    return float(h.getInfo().objective_function_value)


def _milp(prob: _Problem, p: int, time_limit_s: float, *, start: np.ndarray | None = None
          ) -> tuple[np.ndarray, float, float, str]:
    if prob.weights.sum() == 0:
        return np.array([], dtype=np.int64), 0.0, 0.0, "optimal"
    h, n_c = _model(prob, p, integer=True, time_limit_s=time_limit_s)
    if start is not None and len(start):
        # The greedy answer as a MIP start: the incumbent is never worse than greedy's.
        x0 = np.zeros(n_c)
        x0[start] = 1.0
        h.setSolution(highspy_solution(h, x0, n_c))
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    x = np.asarray(h.getSolution().col_value[:n_c])
    sel = np.flatnonzero(x > 0.5).astype(np.int64)
    obj = float(_marginal_gains(prob, sel).sum()) if len(sel) else 0.0
    if start is not None and len(start):
        start_obj = float(_marginal_gains(prob, start).sum())
        if start_obj > obj:
            sel, obj = start, start_obj
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else np.nan
    return sel, obj, bound, "optimal" if status == "Optimal" else status.lower()


@dataclass
class CoverageTarget:
    """The fewest new sites that reach a coverage share (greedy set cover).

    Attributes
    ----------
    selected, gains : numpy.ndarray
        Sites in order of choice and the people each adds.
    reached : bool
        Whether the target share was reached.
    reachable_share : float
        The most any number of candidates could reach (people no candidate reaches, on
        islands or off-network, limit it).
    explanation : str
        Why the target cannot be reached, when it cannot.

    """

    problem: _Problem
    selected: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    gains: np.ndarray = field(default_factory=lambda: np.array([]))
    reached: bool = False
    reachable_share: float = np.nan
    explanation: str = ""
    solver: str = "greedy set cover"
    seconds: float = 0.0

    @classmethod
    def from_cost_matrix(cls, coverage, weights, *, already_covered=None, capacity=None,
                         offnetwork_pop: float = 0.0) -> CoverageTarget:
        """As :meth:`MaximalCovering.from_cost_matrix`; ``offnetwork_pop`` (people beyond the
        snap cap, counted in the total) is named in the explanation."""
        mc = MaximalCovering.from_cost_matrix(coverage, weights, already_covered=already_covered,
                                              capacity=capacity)
        obj = cls(problem=mc.problem)
        obj._offnetwork = offnetwork_pop
        return obj

    def solve(self, share: float) -> CoverageTarget:
        """Add sites until ``share`` of everyone is covered, or say why it cannot be."""
        t0 = time.perf_counter()
        if not 0 < share <= 1:
            raise DataError(f"target share {share} is not in (0, 1]", field="target",
                            fix="give a share such as 0.9 for 90%")
        prob = self.problem
        reachable_idx = np.flatnonzero(np.diff(prob.coverage.tocsc().indptr) > 0)
        reachable = prob.already + float(prob.weights[reachable_idx].sum())
        self.reachable_share = reachable / prob.total if prob.total else np.nan
        target = share * prob.total
        self.selected, self.gains = _greedy(prob, max_sites=prob.coverage.shape[0], stop_at=target)
        covered = prob.already + self.gains.sum()
        self.reached = covered >= target - 1e-9
        if not self.reached:
            unreachable = prob.total - reachable
            why = [f"the target {share:.1%} cannot be reached: at most {covered / prob.total:.1%} "
                   f"with {len(self.selected)} new sites"]
            if unreachable > 0:
                off = getattr(self, "_offnetwork", 0.0)
                why.append(f"{unreachable:,.0f} people are within the threshold of no candidate site"
                           + (f" ({off:,.0f} of them off-network, beyond the snap cap from any street)"
                              if off else " (on network islands or far from every candidate)"))
            if prob.capacity is not None and reachable / prob.total >= share:
                why.append("site capacities limit what each new site can serve")
            self.explanation = "; ".join(why)
        self.seconds = time.perf_counter() - t0
        return self
