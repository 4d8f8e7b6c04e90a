"""The search behind :mod:`circles.engine.siting`: greedy choice, swaps and perturbation.

The problem is a sparse candidate × demand coverage matrix and the people at each demand point
not already covered; every kernel takes sites one by one, so under a capacity each site serves
the nearest people left first.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["SitingProblem", "greedy_sites", "marginal_gains", "perturb_sites", "swap_sites"]


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


def swap_sites(prob: SitingProblem, sel: np.ndarray, *, max_rounds: int = 20) -> np.ndarray:
    """1-swap local search: replace a chosen site by the best other one while that gains people.

    Each test is one sparse product over all candidates, so a round costs ``p`` products.

    Parameters
    ----------
    prob
        The problem (capacities are not modelled).
    sel
        The chosen candidate rows.
    max_rounds
        The most passes over the chosen sites.

    Returns
    -------
    numpy.ndarray
        The chosen rows, each in its place or replaced.

    """
    A = prob.coverage.astype(bool).astype(np.float64).tocsr()
    At = A.T.tocsr()
    w = prob.weights
    picked = list(sel)
    chosen = np.zeros(A.shape[0], dtype=bool)
    chosen[picked] = True
    count = np.asarray(At @ chosen.astype(float)).ravel()
    for _ in range(max_rounds):
        improved = False
        for pos, j in enumerate(list(picked)):
            idx = A.indices[A.indptr[j]:A.indptr[j + 1]]
            lost = float(w[idx][count[idx] == 1].sum())
            count[idx] -= 1
            free = np.where(count == 0, w, 0.0)
            gain = np.asarray(A @ free).ravel()
            gain[chosen] = -1.0
            k = int(np.argmax(gain))
            if gain[k] > lost + 1e-9:
                picked[pos] = k
                chosen[j], chosen[k] = False, True
                count[A.indices[A.indptr[k]:A.indptr[k + 1]]] += 1
                improved = True
            else:
                count[idx] += 1
        if not improved:
            break
    return np.asarray(picked, dtype=np.int64)


def perturb_sites(prob: SitingProblem, sel: np.ndarray, p: int, *, rounds: int, seconds: float,
                  seed: int = 0) -> np.ndarray:
    """Iterated local search: drop a few sites at random, refill greedily, swap; keep the best.

    Parameters
    ----------
    prob
        The problem.
    sel
        The starting answer.
    p
        The number of sites.
    rounds
        Rounds of the search, deterministic for a ``seed``.
    seconds
        Only stops a runaway search.
    seed
        Seed of the random drops.

    Returns
    -------
    numpy.ndarray
        The best answer found (``sel`` when none beats it).

    """
    rng = np.random.default_rng(seed)
    best = np.asarray(sel)
    best_obj = float(marginal_gains(prob, best).sum())
    t0 = time.perf_counter()
    k = max(1, p // 10)
    for _ in range(rounds):
        if time.perf_counter() - t0 > seconds or len(best) <= k:
            break
        keep = np.delete(best, rng.choice(len(best), k, replace=False))
        trial, _ = greedy_sites(prob, max_sites=p, start=keep)
        trial = swap_sites(prob, trial, max_rounds=3)
        obj = float(marginal_gains(prob, trial).sum())
        if obj > best_obj + 1e-9:
            best, best_obj = trial, obj
    return best


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
