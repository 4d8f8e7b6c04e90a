from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from circles.engine.siting import CoverageTarget, MaximalCovering, candidate_nodes
from circles.engine.synthetic import make_city


def _instance(seed: int, n_c: int = 9, n_d: int = 40, density: float = 0.2):
    rng = np.random.default_rng(seed)
    cov = sparse.random(n_c, n_d, density=density, random_state=seed, format="csr")
    cov.data = rng.uniform(0, 300, cov.nnz)
    w = rng.integers(1, 100, n_d).astype(float)
    return cov, w


def _brute(cov, w, p, already=None):
    A = cov.toarray() > 0
    left = w if already is None else np.where(already, 0, w)
    best = 0.0
    for combo in itertools.combinations(range(A.shape[0]), p):
        best = max(best, left[A[list(combo)].any(axis=0)].sum())
    return best


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("p", [1, 2, 3])
def test_greedy_and_exact_against_brute_force(seed, p):
    cov, w = _instance(seed)
    opt = _brute(cov, w, p)
    exact = MaximalCovering.from_cost_matrix(cov, w).solve(p, method="exact")
    greedy = MaximalCovering.from_cost_matrix(cov, w).solve(p, method="greedy")
    assert exact.objective == pytest.approx(opt)
    assert exact.status == "optimal"
    assert exact.objective >= greedy.objective - 1e-9
    assert greedy.objective >= (1 - 1 / np.e) * opt - 1e-9
    assert greedy.upper_bound >= opt - 1e-6  # the LP bound is a true bound
    assert exact.gains.sum() == pytest.approx(exact.objective)
    if p == 1:
        assert greedy.objective == pytest.approx(opt)  # one site: greedy is exact


def test_already_covered_people_never_count():
    cov, w = _instance(3)
    already = np.zeros(len(w), dtype=bool)
    already[::2] = True
    mc = MaximalCovering.from_cost_matrix(cov, w, already_covered=already).solve(2, method="exact")
    assert mc.objective == pytest.approx(_brute(cov, w, 2, already))
    g = MaximalCovering.from_cost_matrix(cov, w, already_covered=already).solve(9)
    assert g.objective <= w[~already].sum() + 1e-9


def test_capacity_limits_the_gain_and_spreads_sites():
    # Two candidates cover the same 1,000 people; a third covers 300 others.
    cov = sparse.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=float))
    w = np.array([500.0, 500.0, 300.0])
    free = MaximalCovering.from_cost_matrix(cov, w).solve(2)
    assert free.objective == pytest.approx(1300)
    capped = MaximalCovering.from_cost_matrix(cov, w, capacity=400).solve(3)
    assert capped.gains.max() <= 400 + 1e-9
    assert capped.objective == pytest.approx(400 + 400 + 300)


def test_target_reached_with_few_sites_and_unreachable_target_explains():
    cov, w = _instance(5, density=0.3)
    t = CoverageTarget.from_cost_matrix(cov, w).solve(0.5)
    assert t.reached
    assert t.gains.sum() >= 0.5 * w.sum() - 1e-9
    # Half the fewest: one site fewer never reaches it.
    if len(t.selected) > 1:
        best_fewer = MaximalCovering.from_cost_matrix(cov, w).solve(len(t.selected) - 1, method="exact")
        assert best_fewer.objective <= w.sum()  # sanity: bounded
    cov2 = cov.tolil()
    cov2[:, 0] = 0  # demand point 0 is covered by no candidate
    w2 = w.copy()
    w2[0] = w.sum() * 10
    t2 = CoverageTarget.from_cost_matrix(cov2.tocsr(), w2, offnetwork_pop=w2[0]).solve(0.95)
    assert not t2.reached
    assert t2.reachable_share < 0.95
    assert "cannot be reached" in t2.explanation
    assert "off-network" in t2.explanation


def test_candidate_thinning_keeps_spacing_and_excludes_existing():
    net = make_city(2_500, seed=1)
    nodes = candidate_nodes(net, spacing_metres=200)
    cells = set(zip((net.x[nodes] // 200).astype(int), (net.y[nodes] // 200).astype(int), strict=True))
    assert len(cells) == len(nodes)  # one per 200 m square
    assert len(nodes) < net.n_nodes / 4
    ex = (net.x[nodes[:5]], net.y[nodes[:5]])
    kept = candidate_nodes(net, spacing_metres=200, exclude_xy=ex, exclude_metres=50)
    assert not set(nodes[:5]) & set(kept)


def test_site_on_chengdu_raises_coverage_by_exactly_the_reported_amount(tmp_path):
    import pandas as pd

    from circles.cli import main

    assert main(["site", "--new", "4", "--out", str(tmp_path / "run")]) == 0
    prop = pd.read_csv(tmp_path / "run" / "proposals.csv", encoding="utf-8-sig")
    scen = pd.read_csv(tmp_path / "run" / "scenario_comparison.csv", encoding="utf-8-sig").set_index("tier")
    assert len(prop) == 4
    assert list(prop["rank"]) == [1, 2, 3, 4]
    assert (prop["new_covered_pop"].diff().dropna() <= 1e-6).all()  # greedy gains shrink
    assert scen.loc["station", "change_pop"] == pytest.approx(prop["new_covered_pop"].sum(), abs=0.5)
    assert scen.loc["district", "change_pop"] == pytest.approx(0)
    assert {"gcj02_lon", "gcj02_lat", "nearest_existing_minutes", "solver"} <= set(prop.columns)
    page = (tmp_path / "run" / "map.html").read_text(encoding="utf-8")
    assert page.count("background:#d7191c") == 4  # the four numbered proposal markers


def test_unreachable_target_on_chengdu_explains_itself(tmp_path, capsys):
    from circles.cli import main

    assert main(["site", "--target", "0.999", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "cannot be reached" in out


def test_candidates_limited_to_land_use(tmp_path):
    import pandas as pd

    from circles.cli import main

    assert main(["site", "--new", "3", "--landuse", "residential", "--out", str(tmp_path / "r")]) == 0
    prop = pd.read_csv(tmp_path / "r" / "proposals.csv", encoding="utf-8-sig")
    import geopandas as gpd
    import shapely

    from circles.readers.osm import read_osm_features

    lu = read_osm_features("data/chengdu.osm.pbf", kind="landuse")
    res = lu[lu["landuse"] == "residential"].to_crs(32648)
    pts = gpd.GeoSeries(shapely.points(prop["lon"], prop["lat"]), crs=4326).to_crs(32648)
    assert all(res.distance(p).min() <= 50.0 + 1e-6 for p in pts)


# --- issue 16: figures that belong to their own proposal, requests refused early, bounds ---


@pytest.fixture(scope="module")
def chengdu_run(tmp_path_factory):
    from circles.runs.pipeline import RunInputs, coverage_run

    return coverage_run(RunInputs(), tmp_path_factory.mktemp("siting") / "run", draw_map=False)


def _walk_to_nearest(net, node: int, fac) -> float:
    """Metres from a network node to the nearest facility, by one plain Dijkstra from that node
    (facilities at their position along their edge, plus their walk to the street)."""
    from scipy.sparse import csgraph

    d = csgraph.dijkstra(net.graph, directed=False, indices=node)
    e = fac["edge"].to_numpy(int)
    along = fac["along_m"].to_numpy(float)
    via_u = d[net.edge_u[e]] + along
    via_v = d[net.edge_v[e]] + net.edge_length[e] - along
    return float((np.minimum(via_u, via_v) + fac["offset_m"].to_numpy(float)).min())


def test_nearest_existing_minutes_belongs_to_its_own_proposal(chengdu_run):
    from scipy.spatial import cKDTree

    from circles.runs.pipeline import site_run

    run = chengdu_run
    prop = site_run(run, new=6)
    sel = run.extras["siting_model"].selected
    assert len(prop) == 6
    assert (np.diff(sel) < 0).any()  # rank order differs from index order: the case that went wrong
    net, res = run.result.network, run.result
    eligible = res.facilities["tier"].isin(res.profile.eligible("station")) & (res.facilities["status"] == "ok")
    anchors = res.facility_anchors.subset(eligible.to_numpy())
    fac = pd.DataFrame({"edge": anchors.edge, "along_m": anchors.along_m, "offset_m": anchors.offset_m})
    fac = fac[fac["edge"] >= 0]
    x, y = net.from_wgs84(prop["lon"].to_numpy(), prop["lat"].to_numpy())
    gap, node = cKDTree(np.column_stack([net.x, net.y])).query(np.column_stack([x, y]))
    assert gap.max() < 0.05  # proposals sit on network nodes
    for minutes, n in zip(prop["nearest_existing_minutes"], node, strict=True):
        expect = _walk_to_nearest(net, int(n), fac) / res.profile.metres_per_minute
        assert minutes == pytest.approx(expect, abs=0.006)


@pytest.mark.parametrize("flags", [["--new", "0"], ["--new", "-3"], ["--target", "0"], ["--target", "1.5"],
                                   ["--target", "-0.2"]])
def test_site_refuses_impossible_requests_before_writing(tmp_path, capsys, flags):
    from circles.cli import main

    out = tmp_path / "run"
    assert main(["site", *flags, "--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert flags[0] in err
    assert ("at least one" in err or "(0, 1]" in err)


def test_propose_refuses_impossible_requests(chengdu_run):
    from circles.errors import DataError
    from circles.runs.pipeline import site_run

    for kw, field in (({"new": 0}, "new"), ({"new": 2.5}, "new"), ({"target": 1.2}, "target")):
        with pytest.raises(DataError) as e:
            site_run(chengdu_run, write=False, **kw)
        assert e.value.field == field
    with pytest.raises(DataError):
        MaximalCovering.from_cost_matrix(*_instance(1)).solve(0)


def test_fewer_useful_candidates_than_asked_says_how_many_and_why():
    # Candidates 0 and 1 reach people; 2 reaches only covered people; 3 reaches nobody.
    cov = sparse.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], float))
    w = np.array([10.0, 20.0, 30.0, 40.0])
    already = np.array([False, False, False, True])
    for method in ("greedy", "exact"):
        mc = MaximalCovering.from_cost_matrix(cov, w, already_covered=already).solve(3, method=method)
        assert sorted(mc.selected) == [0, 1]
        assert (mc.gains > 0).all()
        assert "3 new sites were asked for; 2 are proposed" in mc.explanation
        assert "only 2 of the 4 candidates reach anyone not already covered" in mc.explanation
    assert MaximalCovering.from_cost_matrix(cov, w).solve(2).explanation == ""
    few = MaximalCovering.from_cost_matrix(cov, w).solve(9)
    assert "there are only 4 candidate sites" in few.explanation


def test_site_asked_for_more_sites_than_candidates_explains(tmp_path, capsys):
    from circles.cli import main

    cands = tmp_path / "cands.csv"
    pd.DataFrame({"lon": [104.0862, 104.1027], "lat": [30.6576, 30.6673]}).to_csv(cands, index=False)
    assert main(["site", "--new", "5", "--candidates", str(cands), "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "5 new sites were asked for" in out
    assert "there are only 2 candidate sites" in out


def test_capacity_states_the_floor_area_and_the_recheck_equals_the_claim(tmp_path, capsys):
    from circles.cli import main

    assert main(["site", "--new", "3", "--capacity", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    prop = pd.read_csv(tmp_path / "run" / "proposals.csv", encoding="utf-8-sig")
    scen = pd.read_csv(tmp_path / "run" / "scenario_comparison.csv", encoding="utf-8-sig").set_index("tier")
    # The re-check (proposals routed as facilities, same capacity rule) equals the claim.
    assert scen.loc["station", "change_pop"] == pytest.approx(prop["new_covered_pop"].sum(), abs=0.5)
    assert "floor area assumed 300 m²" in out
    assert "min_community_space_m2" in out  # where the 300 m² comes from
    people = 300 / 30 * 100 * 2.62  # floor area ÷ 30 m² per 100 households × 2.62 persons
    assert (prop["floor_area_m2"] == 300).all()
    assert prop["capacity_pop"].to_numpy() == pytest.approx(people)
    assert (prop["floor_area_source"] == "assumed (profile minimum)").all()
    assert (prop["new_covered_pop"] <= people + 0.05).all()
    assert scen.loc["district", "change_pop"] == pytest.approx(0)


def test_capacity_uses_the_candidate_file_floor_areas(tmp_path, capsys):
    from circles.cli import main

    cands = tmp_path / "cands.csv"
    pd.DataFrame({"lon": [104.0862, 104.0882, 104.1027], "lat": [30.6576, 30.6599, 30.6673],
                  "建筑面积": [60, None, 90]}).to_csv(cands, index=False)
    assert main(["site", "--new", "3", "--capacity", "--candidates", str(cands),
                 "--out", str(tmp_path / "run")]) == 0
    assert "floor area assumed 300 m² for the 1 candidates without one" in capsys.readouterr().out
    prop = pd.read_csv(tmp_path / "run" / "proposals.csv", encoding="utf-8-sig")
    scen = pd.read_csv(tmp_path / "run" / "scenario_comparison.csv", encoding="utf-8-sig").set_index("tier")
    by_area = dict(zip(prop["floor_area_m2"], prop["capacity_pop"], strict=True))
    assert by_area[60] == pytest.approx(60 / 30 * 100 * 2.62, abs=0.05)
    assert by_area[90] == pytest.approx(90 / 30 * 100 * 2.62, abs=0.05)
    assert (prop["new_covered_pop"] <= prop["capacity_pop"] + 0.05).all()
    assert scen.loc["station", "change_pop"] == pytest.approx(prop["new_covered_pop"].sum(), abs=0.5)


def _distances(seed: int, n_c: int = 8, n_d: int = 30):
    rng = np.random.default_rng(seed)
    d = rng.uniform(0, 600, (n_c, n_d))
    d[rng.random((n_c, n_d)) < 0.5] = np.inf
    d[rng.random((n_c, n_d)) < 0.08] = 0.0  # a demand point on a candidate
    d[0, :3] = 0.0
    return d, rng.integers(1, 50, n_d).astype(float)


def _milp_optimum(A: np.ndarray, w: np.ndarray, p: int) -> float:
    """The MCLP with scipy.optimize.milp on a dense 0/1 matrix (a separate solver)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    n_c, n_d = A.shape
    c = np.concatenate([np.zeros(n_c), -w])
    rows = np.hstack([-A.T.astype(float), np.eye(n_d)])
    count = np.concatenate([np.ones(n_c), np.zeros(n_d)])
    res = milp(c, constraints=[LinearConstraint(rows, -np.inf, 0), LinearConstraint(count, p, p)],
               integrality=np.concatenate([np.ones(n_c), np.zeros(n_d)]), bounds=Bounds(0, 1))
    return -res.fun


@pytest.mark.parametrize("seed", range(4))
def test_distance_matrix_with_max_metres_dense_and_sparse(seed):
    d, w = _distances(seed)
    A = d <= 300  # zero distances included
    for p in (1, 2, 3):
        opt = _milp_optimum(A, w, p)
        assert opt == pytest.approx(_brute(sparse.csr_matrix(A.astype(float)), w, p))
        dense = MaximalCovering.from_cost_matrix(d, w, max_metres=300).solve(p, method="exact")
        assert dense.objective == pytest.approx(opt)
        # Sparse: stored entries are distances (explicit zeros kept), absent = unreachable.
        rows, cols = np.nonzero(np.isfinite(d))
        sp = sparse.csr_matrix((d[rows, cols], (rows, cols)), shape=d.shape)
        assert sp.nnz == len(rows)  # the explicit zeros are stored
        sparse_model = MaximalCovering.from_cost_matrix(sp, w, max_metres=300).solve(p, method="exact")
        assert sparse_model.objective == pytest.approx(opt)
        nan = np.where(np.isinf(d), np.nan, d)
        assert MaximalCovering.from_cost_matrix(nan, w, max_metres=300).solve(p).objective <= opt + 1e-9
    one = MaximalCovering.from_cost_matrix(d, w, max_metres=300).solve(1)
    assert one.objective == pytest.approx(max(w[A[j]].sum() for j in range(len(d))))


def test_distance_matrix_orientation_and_values_are_checked():
    from circles.errors import DataError

    d, w = _distances(0)
    with pytest.raises(DataError, match="transposed"):
        MaximalCovering.from_cost_matrix(d.T, w, max_metres=300)
    with pytest.raises(DataError, match="negative"):
        MaximalCovering.from_cost_matrix(-d, w, max_metres=300)


def _lp_value(A: np.ndarray, w: np.ndarray, p: int) -> float:
    """The MCLP's LP relaxation with scipy.optimize.linprog (a separate solver)."""
    from scipy.optimize import linprog

    n_c, n_d = A.shape
    res = linprog(np.concatenate([np.zeros(n_c), -w]),
                  A_ub=sparse.hstack([-sparse.csr_matrix(A.T, dtype=float), sparse.eye(n_d)]),
                  b_ub=np.zeros(n_d), A_eq=np.concatenate([np.ones(n_c), np.zeros(n_d)])[None],
                  b_eq=[p], bounds=(0, 1), method="highs-ipm")  # with crossover: the vertex, 50x faster here
    return -res.fun


def test_exact_stopped_by_its_time_limit_reports_the_tighter_bound():
    rng = np.random.default_rng(4)
    n_c, n_d, p = 600, 6_000, 25
    cov = sparse.random(n_c, n_d, density=0.02, random_state=4, format="csr")
    w = rng.integers(1, 100, n_d).astype(float)
    mc = MaximalCovering.from_cost_matrix(cov, w).solve(p, method="exact", time_limit_s=0.3)
    assert mc.status != "optimal"  # HiGHS stopped early: its own dual bound is weak
    lp = _lp_value(cov.toarray() > 0, w, p)
    assert mc.upper_bound >= lp - 1e-6 * lp  # a true bound (the LP is below any valid dual bound)
    assert mc.upper_bound <= 1.02 * lp       # and a tight one
    assert mc.objective <= mc.upper_bound


def _fewest_brute(A: np.ndarray, w: np.ndarray, need: float) -> int:
    for k in range(1, A.shape[0] + 1):
        for combo in itertools.combinations(range(A.shape[0]), k):
            if w[A[list(combo)].any(axis=0)].sum() >= need - 1e-9:
                return k
    return 0


@pytest.mark.parametrize("seed", range(6))
def test_target_reports_a_lower_bound_on_the_sites_needed(seed):
    cov, w = _instance(seed, n_c=10, n_d=30, density=0.15)
    t = CoverageTarget.from_cost_matrix(cov, w).solve(0.6)
    if not t.reached:
        return
    fewest = _fewest_brute(cov.toarray() > 0, w, 0.6 * w.sum())
    assert 1 <= t.lower_bound <= fewest <= len(t.selected)
    assert f"{len(t.selected)} sites" in t.solver
    assert ("optimal" in t.solver or "at least" in t.solver)


def test_target_lower_bound_is_tight_on_disjoint_sites():
    cov = sparse.csr_matrix(np.kron(np.eye(5), np.ones((1, 2))))  # 5 sites, 2 people points each
    w = np.full(10, 10.0)
    t = CoverageTarget.from_cost_matrix(cov, w).solve(0.7)
    assert len(t.selected) == 4
    assert t.lower_bound == 4
    assert "optimal" in t.solver
    capped = CoverageTarget.from_cost_matrix(cov, w, capacity=5.0).solve(0.2)
    assert capped.lower_bound == 4 == len(capped.selected)  # 20 people at 5 a site
