"""Siting: new station sites that cover the most people left out (expansion planning).

Existing facilities stay fixed; only people not already covered count. Solvers are built from a
sparse candidate × demand coverage matrix (spopt style: ``from_cost_matrix(...)``, then
``.solve()``, results as attributes).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from ..errors import DataError
from .siting_models import fewest_sites, lagrangian_bound, solve_milp, upper_bound

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
    stated against the LP-relaxation or Lagrangian bound. ``exact`` solves the MILP with HiGHS
    (``highspy``, whose time limit holds) and reports the tighter of HiGHS's dual bound and the
    Lagrangian bound, and the gap.

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
        A proven upper bound on the optimum: the tightest of the LP relaxation, the Lagrangian
        bound, the MILP's dual bound and (under capacities) the ``p`` largest capacities.
    gap : float
        ``(upper_bound - objective) / upper_bound``.
    solver, status : str
    seconds : float
    explanation : str
        Why fewer sites than asked were chosen, when they were.

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
    explanation: str = ""

    @classmethod
    def from_cost_matrix(cls, coverage, weights: np.ndarray, *, max_metres: float | None = None,
                         already_covered: np.ndarray | None = None, capacity: float | np.ndarray | None = None
                         ) -> MaximalCovering:
        """Build from a candidates × demand matrix.

        Parameters
        ----------
        coverage
            Candidates × demand, dense or SciPy sparse. Without ``max_metres`` it says who is
            covered: nonzero (dense) or stored (sparse) = within the threshold; stored values,
            if any, are metres, used to serve the nearest first under a capacity. With
            ``max_metres`` it is a distance matrix (as spopt's cost matrix, but candidates as
            rows): a distance ``<= max_metres`` is covered, 0 included. Dense: ``inf`` or NaN
            is unreachable. Sparse: every stored entry is a distance (an explicit 0 is a
            distance of 0, covered) and an absent entry is unreachable.
        weights
            People at each demand point.
        max_metres
            The coverage threshold of a distance matrix.
        already_covered
            Demand points covered before siting (they never count).
        capacity
            People a site can serve, one number or one per candidate.

        Returns
        -------
        MaximalCovering

        """
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        cov = _coverage(coverage, len(w), max_metres)
        total = float(w.sum())
        done = np.zeros(len(w), dtype=bool) if already_covered is None else np.asarray(already_covered, bool)
        cap = None
        if capacity is not None:
            cap = np.asarray(capacity, float)
            if cap.ndim and len(cap) != cov.shape[0]:
                raise DataError(f"{len(cap)} capacities for {cov.shape[0]} candidates", field="capacity",
                                fix="give one capacity, or one per candidate row")
            cap = np.broadcast_to(cap, (cov.shape[0],)).copy()
        return cls(problem=_Problem(cov, np.where(done, 0.0, w), cap, total, float(w[done].sum())))

    def evaluate(self, sites: np.ndarray) -> np.ndarray:
        """People each of ``sites`` (candidate rows) newly covers, taken in that order; under a
        capacity each serves the nearest people left, up to its capacity."""
        return _marginal_gains(self.problem, np.asarray(sites, dtype=np.int64).reshape(-1))

    @property
    def covered_share(self) -> float:
        """Share of everyone covered after adding the selected sites."""
        p = self.problem
        return (p.already + self.objective) / p.total if p.total > 0 else np.nan

    def solve(self, p: int, *, method: str = "greedy", time_limit_s: float = 60.0) -> MaximalCovering:
        """Choose ``p`` sites with ``greedy`` or ``exact``; returns ``self``.

        Sites that add nobody are never proposed: when fewer than ``p`` candidates add anyone,
        fewer are chosen and :attr:`explanation` says how many and why.
        """
        t0 = time.perf_counter()
        if isinstance(p, bool) or not float(p).is_integer() or p < 1:
            raise DataError(f"the number of new sites must be a whole number >= 1, not {p!r}", field="new",
                            fix="ask for at least one site, e.g. --new 5")
        wanted = int(p)
        p = int(min(wanted, self.problem.coverage.shape[0]))
        if method == "greedy":
            self._solve_greedy(p, time_limit_s)
        elif method == "exact":
            self._solve_exact(p, time_limit_s)
        else:
            raise DataError(f"unknown method {method!r}", fix="use 'greedy' or 'exact'")
        self.objective = float(self.gains.sum())
        if np.isfinite(self.upper_bound) and self.upper_bound > 0:
            self.upper_bound = max(self.upper_bound, self.objective)  # a bound below the answer is rounding
            self.gap = max(0.0, (self.upper_bound - self.objective) / self.upper_bound)
        elif self.upper_bound == 0:
            self.gap = 0.0
        self.explanation = _shortfall(self.problem, wanted, len(self.selected))
        self.seconds = time.perf_counter() - t0
        return self

    def _solve_greedy(self, p: int, time_limit_s: float) -> None:
        prob = self.problem
        sel, _ = _greedy(prob, max_sites=p)
        self.solver, self.status = "greedy (lazy)", "done"
        if prob.capacity is None and len(sel):
            # Rounds scale with the model so the search costs about the same everywhere and
            # the answer is reproducible (the time limit is only a safety net).
            rounds = int(np.clip(4e7 / max(prob.coverage.nnz, 1), 10, 200))
            sel = _perturb(prob, _swap(prob, sel), p, rounds=rounds, seconds=time_limit_s)
            self.solver = "greedy (lazy) + swap search"
            sel = sel[_marginal_gains(prob, sel) > 0]
            order = np.argsort(-_marginal_gains(prob, sel), kind="stable")
            sel = sel[order]
        gains = _marginal_gains(prob, sel)
        self.selected, self.gains = sel, gains
        self.upper_bound = upper_bound(prob, p, lower=float(gains.sum()), time_limit_s=time_limit_s)

    def _solve_exact(self, p: int, time_limit_s: float) -> None:
        prob = self.problem
        if prob.capacity is not None:
            raise DataError("the exact solver does not model capacities", field="capacity",
                            fix="use the greedy solver with capacities, or drop --capacity")
        start, _ = _greedy(prob, max_sites=p)
        start = _swap(prob, start) if len(start) else start
        sel, obj, bound, status = _milp(prob, p, time_limit_s, start=start)
        gains = _marginal_gains(prob, sel)
        order = np.argsort(-gains, kind="stable")
        sel, gains = sel[order], gains[order]
        keep = gains > 0  # the MILP must open p sites; one that adds nobody is no proposal
        self.selected, self.gains, self.status = sel[keep], gains[keep], status
        # HiGHS's dual bound is weak when its time limit stops it early; the Lagrangian bound
        # is valid too, so the tighter of the two is reported.
        lagrange = lagrangian_bound(prob, p, lower=obj) if status != "optimal" else np.inf
        self.upper_bound = float(np.nanmin([bound, lagrange]))
        self.solver = "exact MILP (HiGHS)"


def _shortfall(prob: _Problem, wanted: int, got: int) -> str:
    """Why fewer sites than asked were chosen ('' when there is no shortfall)."""
    if got >= wanted:
        return ""
    n = prob.coverage.shape[0]
    useful = int((np.asarray(prob.coverage.astype(bool) @ prob.weights).ravel() > 0).sum())
    why = [f"{wanted} new sites were asked for; {got} are proposed"]
    if n < wanted:
        why.append(f"there are only {n:,} candidate sites")
    if useful < wanted:
        why.append(f"only {useful:,} of the {n:,} candidates reach anyone not already covered "
                   "(the others reach only covered people, or nobody)")
    if got < min(useful, wanted):
        why.append(f"after {got} sites no other candidate adds anyone: every person a candidate can "
                   "reach is covered")
    return "; ".join(why)


def _coverage(matrix, n_demand: int, max_metres: float | None) -> sparse.csr_matrix:
    """The solvers' form: candidates × demand CSR, value = metres + 1 (so 0 m stays stored)."""
    if sparse.issparse(matrix):
        cov = sparse.csr_matrix(matrix, dtype=np.float64, copy=True)
        cov.sum_duplicates()
        if max_metres is not None:
            cov.data[~(cov.data <= max_metres)] = np.nan  # NaN entries are dropped below
    else:
        dense = np.asarray(matrix, dtype=np.float64)
        if dense.ndim != 2:
            raise DataError(f"the coverage matrix has {dense.ndim} dimensions", field="coverage",
                            fix="give a candidates × demand matrix")
        reach = (dense != 0) & ~np.isnan(dense) if max_metres is None else dense <= max_metres
        rows, cols = np.nonzero(reach)
        cov = sparse.csr_matrix((np.where(np.isfinite(dense[rows, cols]), dense[rows, cols], 0.0), (rows, cols)),
                                shape=dense.shape)
    if cov.shape[1] != n_demand:
        hint = " (it looks transposed: rows must be candidates)" if cov.shape[0] == n_demand else ""
        raise DataError(f"the coverage matrix has {cov.shape[1]} demand columns for {n_demand} weights{hint}",
                        field="coverage", fix="build both from the same demand points, candidates as rows")
    keep = np.isfinite(cov.data)
    if (cov.data[keep] < 0).any():
        raise DataError("the coverage matrix has a negative distance", field="coverage",
                        fix="give walking metres (>= 0)")
    if not keep.all():
        cov.data[~keep] = 0.0
        cov.data[keep] += 1.0
        cov.eliminate_zeros()
    else:
        cov.data += 1.0
    return cov


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


def _marginal_gains(prob: _Problem, sel: np.ndarray) -> np.ndarray:
    left = prob.weights.copy()
    return np.array([_take(prob, left, int(j)) for j in sel], dtype=float)


def _milp(prob: _Problem, p: int, time_limit_s: float, *, start: np.ndarray | None = None
          ) -> tuple[np.ndarray, float, float, str]:
    if prob.weights.sum() == 0:
        return np.array([], dtype=np.int64), 0.0, 0.0, "optimal"
    sel, bound, status = solve_milp(prob, p, time_limit_s, start=start)
    obj = float(_marginal_gains(prob, sel).sum()) if len(sel) else 0.0
    if start is not None and len(start):
        start_obj = float(_marginal_gains(prob, start).sum())
        if start_obj > obj:
            sel, obj = start, start_obj
    return sel, obj, bound, status


@dataclass
class CoverageTarget:
    """The fewest new sites that reach a coverage share (greedy set cover).

    Attributes
    ----------
    selected, gains : numpy.ndarray
        Sites in order of choice and the people each adds.
    reached : bool
        Whether the target share was reached.
    lower_bound : int
        A proven lower bound on the number of sites any answer needs (0 when the target is
        not reachable): the fewest sites whose single-site gains add up to the people still to
        cover, raised to the LP relaxation's ceiling on small models without capacities.
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
    lower_bound: int = 0
    reachable_share: float = np.nan
    explanation: str = ""
    solver: str = "greedy set cover"
    seconds: float = 0.0

    @classmethod
    def from_cost_matrix(cls, coverage, weights, *, max_metres: float | None = None, already_covered=None,
                         capacity=None, offnetwork_pop: float = 0.0) -> CoverageTarget:
        """As :meth:`MaximalCovering.from_cost_matrix`; ``offnetwork_pop`` (people beyond the
        snap cap, counted in the total) is named in the explanation."""
        mc = MaximalCovering.from_cost_matrix(coverage, weights, max_metres=max_metres,
                                              already_covered=already_covered, capacity=capacity)
        obj = cls(problem=mc.problem)
        obj._offnetwork = offnetwork_pop
        return obj

    def solve(self, share: float, *, time_limit_s: float = 3.0) -> CoverageTarget:
        """Add sites until ``share`` of everyone is covered, or say why it cannot be.

        ``time_limit_s`` bounds the LP behind :attr:`lower_bound`.
        """
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
        if self.reached:
            self.lower_bound = min(fewest_sites(prob, target - prob.already, time_limit_s), len(self.selected))
            tight = "optimal" if self.lower_bound == len(self.selected) else f"at least {self.lower_bound} needed"
            self.solver = f"greedy set cover: {len(self.selected)} sites ({tight}, proven lower bound)"
        else:
            self.explanation = self._why_not(share, covered, reachable)
        self.seconds = time.perf_counter() - t0
        return self

    def _why_not(self, share: float, covered: float, reachable: float) -> str:
        prob = self.problem
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
        return "; ".join(why)
