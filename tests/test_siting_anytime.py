"""The anytime maximal covering (issue 20, item 5): it stops at a proven optimum, a larger budget
never does worse, the gap is what it says, and every bound is a bound (brute force, max flow and
scipy's MILP as the independent computations)."""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import pytest
from scipy import sparse
from scipy.spatial import cKDTree

from circles.engine.siting import MaximalCovering
from circles.engine.siting_models import LagrangianBound
from circles.engine.siting_search import greedy_sites, swap_sites


def _geometric(n_c: int, n_d: int, per: int, seed: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Candidates and people in a 10 km square, each candidate covering ~``per`` points."""
    rng = np.random.default_rng(seed)
    d, c = rng.uniform(0, 1e4, (n_d, 2)), rng.uniform(0, 1e4, (n_c, 2))
    lists = cKDTree(d).query_ball_point(c, np.sqrt(per * 1e8 / n_d / np.pi))
    rows = np.repeat(np.arange(n_c), [len(x) for x in lists])
    cols = np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])
    cov = sparse.csr_matrix((np.hypot(*(d[cols] - c[rows]).T) + 1.0, (rows, cols)), shape=(n_c, n_d))
    return cov, rng.integers(1, 51, n_d).astype(float)


def _tiny(seed: int, n_c: int = 9, n_d: int = 40) -> tuple[sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    cov = sparse.random(n_c, n_d, density=0.25, random_state=seed, format="csr")
    cov.data = rng.uniform(1, 300, cov.nnz)
    return cov, rng.integers(1, 100, n_d) * rng.choice([1.0, 0.37])  # whole people, or not


def _brute(cov, w, p: int) -> float:
    a = cov.toarray() > 0
    return max(w[a[list(s)].any(axis=0)].sum() for s in itertools.combinations(range(a.shape[0]), p))


def _milp_optimum(cov, w, p: int) -> float:
    """The MCLP with scipy.optimize.milp (its own model, built here from the dense matrix)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    a = (cov.toarray() > 0).astype(float)
    n_c, n_d = a.shape
    rows = sparse.hstack([-sparse.csr_matrix(a.T), sparse.eye(n_d)])
    count = np.concatenate([np.ones(n_c), np.zeros(n_d)])
    res = milp(np.concatenate([np.zeros(n_c), -w]), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(rows, -np.inf, 0), LinearConstraint(count, p, p)],
               integrality=np.concatenate([np.ones(n_c), np.zeros(n_d)]), options={"mip_rel_gap": 0})
    return -res.fun


def _capacitated_optimum(cov, w, cap: float, p: int) -> float:
    """The most people ``p`` sites of capacity ``cap`` can serve: a maximum flow per subset."""
    from scipy.sparse.csgraph import maximum_flow

    a = cov.toarray() > 0
    n_c, n_d = a.shape
    best = 0
    for s in itertools.combinations(range(n_c), p):
        # source 0 -> sites 1..p (capacity) -> points (their people) -> sink
        sub = a[list(s)]
        r, c = np.nonzero(sub)
        src = np.concatenate([np.zeros(p, int), 1 + r, 1 + p + np.arange(n_d)])
        dst = np.concatenate([1 + np.arange(p), 1 + p + c, np.full(n_d, 1 + p + n_d)])
        val = np.concatenate([np.full(p, int(cap)), np.full(len(r), 10**9), w.astype(int)])
        graph = sparse.csr_matrix((val.astype(np.int32), (src, dst)), shape=(p + n_d + 2,) * 2)
        best = max(best, maximum_flow(graph, 0, p + n_d + 1).flow_value)
    return float(best)


@pytest.mark.parametrize("scale", [1.0, 0.01])  # whole people, and hundredths
def test_greedy_optimum_is_proven_at_once_by_the_bound(scale):
    # Little overlap: the greedy takes the heaviest sites, and the p largest single-site gains
    # (a starting bound) equal what it covers. Too big for the small-model HiGHS path.
    cov, w = _geometric(300, 6_000, 80, seed=3)
    w = w * scale
    assert cov.nnz > 20_000
    mc = MaximalCovering.from_cost_matrix(cov, w).solve(5, seconds=30.0)
    assert mc.status == "optimal"
    assert mc.gap == 0.0
    assert mc.upper_bound == pytest.approx(mc.objective)
    assert len(mc.progress) == 1  # proven before any search or subgradient step
    assert mc.seconds < 1.0  # the 30 s budget is not waited out
    assert "proven optimal" in mc.solver
    _, gains = greedy_sites(mc.problem, max_sites=5)
    assert mc.objective == pytest.approx(gains.sum())  # the plain greedy's answer
    assert mc.objective == pytest.approx(_milp_optimum(cov, w, 5), rel=1e-9)


def test_a_proof_after_some_steps_agrees_with_the_milp():
    # Greedy is not optimal here; the search and the Lagrangian steps find the optimum and prove
    # it (too big for the small-model HiGHS path).
    cov, w = _geometric(300, 3_000, 100, seed=1)
    assert cov.nnz > 20_000
    _, gains = greedy_sites(MaximalCovering.from_cost_matrix(cov, w).problem, max_sites=10)
    mc = MaximalCovering.from_cost_matrix(cov, w).solve(10, seconds=30.0)
    opt = _milp_optimum(cov, w, 10)
    assert mc.objective > gains.sum()
    assert mc.status == "optimal"
    assert mc.gap == 0.0
    assert mc.objective == pytest.approx(opt)
    assert mc.seconds < 30.0
    assert len(mc.progress) > 1


def test_a_larger_budget_never_gives_a_worse_objective():
    cov, w = _geometric(1_000, 10_000, 200, seed=0)  # heavy overlap: the bound stays apart
    _, gains = greedy_sites(MaximalCovering.from_cost_matrix(cov, w).problem, max_sites=50)
    runs = [MaximalCovering.from_cost_matrix(cov, w).solve(50, seconds=s) for s in (0.0, 0.2, 0.5, 1.5)]
    obj = [m.objective for m in runs]
    bound = [m.upper_bound for m in runs]
    assert obj[0] == pytest.approx(gains.sum())  # no time: the plain lazy greedy
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(obj))
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(bound))
    assert obj[-1] > obj[0]  # the search does improve on the greedy here
    assert all(m.status == "time limit reached" for m in runs)
    for m in runs:  # the progress log only ever improves, and ends at the answer
        t, o, b = zip(*m.progress, strict=True)
        assert list(t) == sorted(t)
        assert list(o) == sorted(o)
        assert list(b) == sorted(b, reverse=True)
        assert o[-1] == pytest.approx(m.objective)
        assert b[-1] == pytest.approx(m.upper_bound)


@pytest.mark.parametrize("seconds", [0.0, 0.3])
def test_the_reported_gap_is_bound_minus_objective_over_bound(seconds):
    for cov, w, p in ((*_geometric(400, 4_000, 200, seed=1), 20), (*_tiny(2), 3)):
        mc = MaximalCovering.from_cost_matrix(cov, w).solve(p, seconds=seconds)
        assert mc.gap == pytest.approx((mc.upper_bound - mc.objective) / mc.upper_bound, abs=1e-12)
        assert mc.objective == pytest.approx(mc.gains.sum())
        assert (np.diff(mc.gains) <= 1e-9).all()  # ranked: the gains shrink down the list


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("p", [1, 2, 3, 4])
def test_every_bound_is_at_least_the_brute_force_optimum(seed, p):
    cov, w = _tiny(seed)
    opt = _brute(cov, w, p)
    quick = MaximalCovering.from_cost_matrix(cov, w).solve(p, seconds=0.0)  # greedy + starting bound
    assert quick.upper_bound >= opt - 1e-9
    assert quick.objective <= opt + 1e-9
    full = MaximalCovering.from_cost_matrix(cov, w).solve(p, seconds=10.0)  # small: HiGHS proves it
    assert full.status == "optimal"
    assert full.objective == pytest.approx(opt)
    assert full.upper_bound >= opt - 1e-9
    prob = quick.problem
    start, _ = greedy_sites(prob, max_sites=p)
    for begin in (start, None):
        dual = LagrangianBound(prob, p, start=begin)
        seen = [dual.best]
        for _ in range(40):  # a value after every few steps, each a proven bound
            seen.append(dual.improve(float(prob.weights.sum()) * 0.5, 3))
        assert min(seen) >= opt - 1e-9
        assert dual.answer_value <= opt + 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_bounds_under_capacity_hold_against_max_flow(seed):
    cov, w = _tiny(seed, n_c=7, n_d=25)
    w = np.round(w)
    for p in (1, 2, 3):
        opt = _capacitated_optimum(cov, w, 120.0, p)
        mc = MaximalCovering.from_cost_matrix(cov, w, capacity=120.0).solve(p, seconds=1.0)
        assert mc.upper_bound >= opt - 1e-9
        assert mc.objective <= opt + 1e-9  # the nearest-first assignment is a feasible one
        assert mc.status in {"optimal", "bound converged"}


def test_swaps_end_at_a_1_swap_optimum_checked_pair_by_pair():
    cov, w = _geometric(40, 800, 60, seed=5)
    prob = MaximalCovering.from_cost_matrix(cov, w).problem
    start, gains = greedy_sites(prob, max_sites=6)
    sel = swap_sites(prob, start)
    a = cov.toarray() > 0

    def covered(s):
        return w[a[list(s)].any(axis=0)].sum()

    assert covered(sel) >= gains.sum() - 1e-9
    best_swap = max(covered([*(x for x in sel if x != j), k]) for j in sel for k in range(40) if k not in sel)
    assert best_swap <= covered(sel) + 1e-9


def test_exact_keeps_the_greedy_start_and_the_tightest_bound():
    cov, w = _geometric(600, 6_000, 200, seed=2)
    p = 30
    prob = MaximalCovering.from_cost_matrix(cov, w).problem
    start, _ = greedy_sites(prob, max_sites=p)
    floor = w[(cov[swap_sites(prob, start)].toarray() > 0).any(axis=0)].sum()
    quick = MaximalCovering.from_cost_matrix(cov, w).solve(p, seconds=0.0)
    exact = MaximalCovering.from_cost_matrix(cov, w).solve(p, method="exact", time_limit_s=0.5)
    assert exact.objective >= floor - 1e-9
    assert exact.objective <= exact.upper_bound <= quick.upper_bound + 1e-9


def test_site_request_takes_the_budget_from_the_command_line():
    from circles.runs.proposals import SiteRequest

    assert SiteRequest().seconds == 2.0
    args = argparse.Namespace(tier="station", new=3, target=None, exact=False, seconds=0.5, candidates=None,
                              crs="wgs84", capacity=False, time_limit=60.0, landuse=None, service=None)
    assert SiteRequest.from_args(args).seconds == 0.5
