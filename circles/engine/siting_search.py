"""The search behind :mod:`circles.engine.siting`: greedy choice, swaps, perturbation, anytime.

The problem is a sparse candidate × demand coverage matrix and the people at each demand point
not already covered; every kernel takes sites one by one, so under a capacity each site serves
the nearest people left first. :func:`anytime_sites` improves an answer and tightens a proven
bound in turns until the two meet or the time is up.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

from .siting_models import (
    LagrangianBound,
    is_proven,
    milp_sites,
    proof_step,
    proven_bound,
    simple_bound,
)

__all__ = ["Anytime", "SitingProblem", "anytime_sites", "greedy_sites", "marginal_gains", "rank_sites", "swap_sites"]

# Below this many covered pairs HiGHS's branch and bound proves the optimum within seconds; the
# Lagrangian bound alone cannot where the LP bound is not tight.
_SMALL_NNZ = 20_000
# Subgradient steps between two search moves: the bound and the answer improve in turns, after
# the first steps, which tighten the bound most and often find the optimum too (the dual's sites).
_DUAL_STEPS = 5
_DUAL_FIRST = 50
# Rows of the dense swap table (chosen sites × candidates) evaluated at once.
_SWAP_CELLS = 2_000_000


@dataclass
class SitingProblem:
    """A siting problem in the solvers' form.

    Attributes
    ----------
    coverage : scipy.sparse.csr_matrix
        Candidates × demand; value = metres + 1 (0 = not covered).
    weights : numpy.ndarray
        People per demand point not already covered.
    capacity : numpy.ndarray or None
        People per candidate, or None.
    total : float
        Everyone the shares are relative to.
    already : float
        People covered before siting.

    """

    coverage: sparse.csr_matrix
    weights: np.ndarray
    capacity: np.ndarray | None
    total: float
    already: float

    @cached_property
    def ones(self) -> sparse.csr_matrix:
        """Candidates × demand, 1.0 where covered (built once: every kernel multiplies by it)."""
        a = sparse.csr_matrix(self.coverage.astype(bool), dtype=np.float64)
        a.eliminate_zeros()  # the kernels read the pattern: a stored 0 is not covered
        a.sum_duplicates()
        return a

    @cached_property
    def ones_t(self) -> sparse.csr_matrix:
        """Demand × candidates, 1.0 where covered: the candidates covering each demand point."""
        return sparse.csr_matrix(self.ones.T)

    def points_of(self, sites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The demand points each of ``sites`` covers, one after another, and how many each."""
        return _gather(self.ones, sites)

    def sites_of(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The candidates covering each of ``points``, one after another, and how many each."""
        return _gather(self.ones_t, points)


def _gather(m: sparse.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The column indices of ``rows`` of a CSR matrix end to end (SciPy's row indexing builds a
    whole matrix, and costs more than the work in the small cases here)."""
    starts = m.indptr[rows]
    n = m.indptr[np.asarray(rows) + 1] - starts
    pos = np.repeat(starts - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
    return m.indices[pos], n


def _rows(cov: sparse.csr_matrix, j: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = cov.indptr[j], cov.indptr[j + 1]
    return cov.indices[a:b], cov.data[a:b]


def _gain(prob: SitingProblem, left: np.ndarray, j: int) -> float:
    idx, _ = _rows(prob.coverage, j)
    g = float(left[idx].sum())
    return min(g, prob.capacity[j]) if prob.capacity is not None else g


def _take(prob: SitingProblem, left: np.ndarray, j: int) -> float:
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


def greedy_sites(prob: SitingProblem, *, max_sites: int, stop_at: float | None = None,
                 start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lazy greedy: add the site that newly covers the most people until none adds anyone.

    Parameters
    ----------
    prob
        The problem.
    max_sites
        The most sites to hold, ``start`` included.
    stop_at
        Stop once this many people are covered (those covered before siting included).
    start
        Sites kept from an earlier answer, taken first in their order.

    Returns
    -------
    sites : numpy.ndarray
        Candidate rows in order of choice.
    gains : numpy.ndarray
        People each newly covers, in that order.

    """
    left = prob.weights.copy()
    chosen, gains = [], []
    covered = prob.already
    for j in (start if start is not None else []):  # sites kept from an earlier answer
        got = _take(prob, left, int(j))
        chosen.append(int(j))
        gains.append(got)
        covered += got
    gains0 = np.asarray(prob.ones @ left).ravel()
    if prob.capacity is not None:
        gains0 = np.minimum(gains0, prob.capacity)
    if chosen:
        gains0[chosen] = 0.0
    useful = np.flatnonzero(gains0 > 0)
    heap = list(zip((-gains0[useful]).tolist(), useful.tolist(), strict=True))
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


def rank_sites(prob: SitingProblem, sel: np.ndarray) -> np.ndarray:
    """``sel`` in greedy order (each next the one adding most), those that add nobody dropped,
    so the gains shrink down the list whatever search found the sites."""
    sel = np.asarray(sel, dtype=np.int64)
    if not len(sel):
        return sel
    cap = None if prob.capacity is None else prob.capacity[sel]
    sub = SitingProblem(prob.coverage[sel], prob.weights, cap, prob.total, prob.already)
    order, _ = greedy_sites(sub, max_sites=len(sel))
    return sel[order]


class _Cover:
    """Who the chosen sites cover, kept up to date as sites come and go (no capacities).

    ``gain[k]`` is the people candidate ``k`` would add, ``loss[j]`` the people only chosen site
    ``j`` covers; both change only near the site that moved, so a move costs its neighbourhood.
    """

    def __init__(self, prob: SitingProblem, sel: np.ndarray) -> None:
        self.prob, self.a, self.w = prob, prob.ones, prob.weights
        n_c, n_d = self.a.shape
        self.count = np.zeros(n_d, dtype=np.int64)
        self.owner = np.zeros(n_d, dtype=np.int64)  # sum of the covering sites: the one when count is 1
        self.chosen = np.zeros(n_c, dtype=bool)
        self.gain = np.asarray(self.a @ self.w).ravel()
        self.loss = np.zeros(n_c)
        for j in np.asarray(sel, dtype=np.int64):  # one update per site, p in all
            self.add(int(j))

    @property
    def objective(self) -> float:
        return float(self.w[self.count > 0].sum())

    def _points(self, j: int) -> np.ndarray:
        return self.a.indices[self.a.indptr[j]:self.a.indptr[j + 1]]

    def _per_site(self, sites: np.ndarray, people: np.ndarray) -> np.ndarray:
        return np.bincount(sites, weights=people, minlength=self.a.shape[0])

    def _spread(self, pts: np.ndarray) -> np.ndarray:
        """People at ``pts``, summed onto every candidate covering them."""
        sites, n = self.prob.sites_of(pts)
        return self._per_site(sites, np.repeat(self.w[pts], n))

    def add(self, j: int) -> None:
        idx = self._points(j)
        before = self.count[idx]
        new, shared = idx[before == 0], idx[before == 1]
        self.loss -= self._per_site(self.owner[shared], self.w[shared])  # no longer theirs alone
        self.gain -= self._spread(new)
        self.loss[j] = float(self.w[new].sum())
        self.count[idx] += 1
        self.owner[idx] += j
        self.chosen[j] = True

    def remove(self, j: int) -> None:
        idx = self._points(j)
        self.count[idx] -= 1
        self.owner[idx] -= j
        self.chosen[j] = False
        after = self.count[idx]
        freed, alone = idx[after == 0], idx[after == 1]
        self.gain += self._spread(freed)
        self.loss[j] = 0.0
        self.loss += self._per_site(self.owner[alone], self.w[alone])

    def best_swap(self) -> tuple[float, int, int]:
        """The swap (drop ``j``, open ``k``) that gains the most: ``gain[k] - loss[j]`` plus the
        people only ``j`` covers that ``k`` covers too, for every pair at once."""
        sel = np.flatnonzero(self.chosen)
        n_c = self.a.shape[0]
        best = (-np.inf, -1, -1)
        free_gain = np.where(self.chosen, -np.inf, self.gain)
        rows = max(1, _SWAP_CELLS // max(n_c, 1))
        for lo in range(0, len(sel), rows):  # a few blocks of chosen sites, one when p * n is small
            part = sel[lo:lo + rows]
            pts, n = self.prob.points_of(part)
            r = np.repeat(np.arange(len(part)), n)
            alone = self.count[pts] == 1
            pts, r = pts[alone], r[alone]
            k, n = self.prob.sites_of(pts)
            shared = np.bincount(np.repeat(r, n) * n_c + k, weights=np.repeat(self.w[pts], n),
                                 minlength=len(part) * n_c).reshape(len(part), n_c)
            value = free_gain[None, :] + shared - self.loss[part][:, None]
            cell = int(np.argmax(value))
            if value.flat[cell] > best[0]:
                best = (float(value.flat[cell]), int(part[cell // n_c]), int(cell % n_c))
        return best


def swap_sites(prob: SitingProblem, sel: np.ndarray, *, max_moves: int = 1_000) -> np.ndarray:
    """1-swap local search: make the best swap (drop one site, open another) while it gains people.

    Every pair is weighed at once from who the chosen sites cover (:class:`_Cover`), so a move
    costs the neighbourhoods of the sites, not a pass over the model.

    Parameters
    ----------
    prob
        The problem (capacities are not modelled).
    sel
        The chosen candidate rows.
    max_moves
        The most swaps.

    Returns
    -------
    numpy.ndarray
        The chosen rows after the swaps, sorted.

    """
    cover = _Cover(prob, sel)
    eps = _eps(prob)
    for _ in range(max_moves):
        value, j, k = cover.best_swap()
        if value <= eps:
            break
        cover.remove(j)
        cover.add(k)
    return np.flatnonzero(cover.chosen)


def _eps(prob: SitingProblem) -> float:
    """A gain below this is rounding in the running sums, not people."""
    return 1e-9 * max(1.0, float(prob.weights.sum()))


class _Search:
    """Iterated local search in small steps: swap until no swap gains, then drop a few of the best
    answer's sites at random and refill greedily; each :meth:`step` is one move, so the time
    budget is checked often and the same steps are taken whatever the budget."""

    def __init__(self, prob: SitingProblem, sel: np.ndarray, *, seed: int = 0) -> None:
        self.prob, self.rng, self.eps = prob, np.random.default_rng(seed), _eps(prob)
        self.cover = _Cover(prob, sel)
        self.best, self.best_obj = np.sort(sel), self.cover.objective
        self.kick = max(1, len(sel) // 10)
        self.stuck = len(sel) <= self.kick  # too few sites to kick: swaps are all it can try
        self.at_best = True
        self.failures = 0  # kicks in a row that found nothing better

    def adopt(self, sel: np.ndarray, objective: float) -> None:
        """Go on from a better answer found elsewhere."""
        self.cover = _Cover(self.prob, sel)
        self.best, self.best_obj, self.at_best = np.sort(sel), objective, True

    def step(self) -> None:
        cover = self.cover
        value, j, k = cover.best_swap()
        if value > self.eps:
            cover.remove(j)
            cover.add(k)
            return
        obj = cover.objective  # a local optimum: keep it if it is the best yet, then kick
        if obj > self.best_obj + self.eps:
            self.best, self.best_obj, self.at_best = np.flatnonzero(cover.chosen), obj, True
            self.failures = 0
        elif not self.at_best:
            self.failures += 1
        if not self.at_best:
            self.cover = cover = _Cover(self.prob, self.best)  # back to the best, fresh sums
        sel = np.flatnonzero(cover.chosen)
        if len(sel) <= self.kick:
            return
        dropped = self.rng.choice(sel, self.kick, replace=False)
        for j in dropped:
            cover.remove(int(j))
        barred = cover.chosen.copy()
        barred[dropped] = True  # refilled with others, or the kick would undo itself
        for _ in range(self.kick):  # refill greedily
            k = int(np.argmax(np.where(barred, -np.inf, cover.gain)))
            cover.add(k)
            barred[k] = True
        self.at_best = False


@dataclass
class Anytime:
    """What an anytime solve found.

    Attributes
    ----------
    selected : numpy.ndarray
        The best answer's rows.
    bound : float
        A proven upper bound on the optimum.
    status : str
        ``"optimal"`` (the answer meets the bound), ``"time limit reached"`` or ``"bound
        converged"`` (nothing is left to try: under capacities, or with a single site).
    progress : list of tuple
        ``(seconds, objective, bound)`` each time either improved.

    """

    selected: np.ndarray
    bound: float
    status: str
    progress: list[tuple[float, float, float]]


def anytime_sites(prob: SitingProblem, sel: np.ndarray, p: int, *, seconds: float, started: float) -> Anytime:
    """Improve ``sel`` and tighten a proven bound in turns, until they meet or time is up.

    Each round takes a few subgradient steps of the Lagrangian bound, whose sites are answers
    too, and, after its first steps, a search move (:class:`_Search`; none under capacities,
    which it does not model). Small models go to HiGHS after the bound's first steps.
    The rounds do not depend on the clock, so a larger budget only goes further along the same
    path: it never returns a worse answer.

    Parameters
    ----------
    prob
        The problem.
    sel
        The starting answer (the greedy's).
    p
        The number of sites.
    seconds
        The budget, counted from ``started`` (a :func:`time.perf_counter` reading).
    started
        When the solve started.

    Returns
    -------
    Anytime

    """
    run = _Run(prob, sel, p, started)
    while not is_proven(run.best_obj, run.bound):
        left = seconds - (time.perf_counter() - started)
        if left <= 0:
            return run.result("time limit reached")
        if run.searchable and prob.coverage.nnz <= _SMALL_NNZ and (run.dual.converged or run.dual.iterations >= _DUAL_FIRST):
            return _small(run, left)  # the bound's first steps did not prove it: branch and bound will
        if run.dual.converged and (not run.searchable or (run.search is not None and run.search.stuck)):
            return run.result("bound converged")
        run.round()
    return run.result("optimal")


class _Run:
    """One anytime solve's state: the best answer, the proven bound, the dual and the search."""

    def __init__(self, prob: SitingProblem, sel: np.ndarray, p: int, started: float) -> None:
        self.prob, self.p, self.started, self.rounds = prob, p, started, 0
        self.step = proof_step(prob.weights)
        self.best = np.asarray(sel, dtype=np.int64)
        self.best_obj = float(marginal_gains(prob, self.best).sum())
        self.dual = LagrangianBound(prob, p, start=self.best)
        self.bound = proven_bound(min(simple_bound(prob, p), self.dual.best), self.step)
        self.searchable = prob.capacity is None and len(self.best) == p
        self.search: _Search | None = None  # built at its first turn: a quick proof needs none
        self.progress = [(time.perf_counter() - started, self.best_obj, self.bound)]

    def found(self, sel: np.ndarray, objective: float, bound: float) -> None:
        if objective > self.best_obj + _eps(self.prob) or bound < self.bound:
            if objective > self.best_obj + _eps(self.prob):
                self.best, self.best_obj = sel, objective
            self.bound = min(self.bound, bound)
            self.progress.append((time.perf_counter() - self.started, self.best_obj, self.bound))

    def round(self) -> None:
        self.rounds += 1
        dual = self.dual
        if not dual.converged:
            seen = dual.answer
            bound = proven_bound(dual.improve(self.best_obj, _DUAL_STEPS), self.step)
            before = self.best_obj
            self.found(dual.answer, self._value(dual.answer, dual.answer_value, changed=dual.answer is not seen), bound)
            if self.best_obj > before and self.search is not None:
                self.search.adopt(self.best, self.best_obj)  # the dual's sites beat the answer
        if not self.searchable or is_proven(self.best_obj, self.bound):
            return
        # The search moves once the bound has had its first steps (which tighten it most and
        # often find the optimum), and less often while its kicks keep failing.
        failures = 0 if self.search is None else self.search.failures
        if dual.converged or (dual.iterations >= _DUAL_FIRST and self.rounds % (1 << min(failures, 4)) == 0):
            if self.search is None:
                self.search = _Search(self.prob, self.best)
            self.search.step()
            self.found(self.search.best, self.search.best_obj, self.bound)

    def _value(self, sel: np.ndarray, covered: float, *, changed: bool) -> float:
        """People ``sel`` newly covers; under capacities as served in rank order (the dual counts
        everyone they reach), so only a new answer is weighed."""
        if self.prob.capacity is None:
            return covered
        return float(marginal_gains(self.prob, rank_sites(self.prob, sel)).sum()) if changed else 0.0

    def result(self, status: str) -> Anytime:
        return Anytime(self.best, self.bound, status, self.progress)


def _small(run: _Run, seconds: float) -> Anytime:
    """HiGHS on a small model, from the best answer, proving to the last person within ``seconds``."""
    sel, obj, dual, _ = milp_sites(run.prob, run.p, seconds, start=run.best, rel_gap=0.0)
    run.found(sel, obj, proven_bound(max(dual, obj), run.step) if np.isfinite(dual) else run.bound)
    return run.result("optimal" if is_proven(run.best_obj, run.bound) else "time limit reached")


def marginal_gains(prob: SitingProblem, sel: np.ndarray) -> np.ndarray:
    """People each of the sites ``sel`` newly covers, taken in that order.

    Parameters
    ----------
    prob
        The problem; under a capacity each site serves the nearest people left, up to it.
    sel
        Candidate rows.

    Returns
    -------
    numpy.ndarray
        One gain per site.

    """
    left = prob.weights.copy()
    return np.array([_take(prob, left, int(j)) for j in sel], dtype=float)
