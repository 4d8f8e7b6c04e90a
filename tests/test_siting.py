from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import sparse

from circles.siting import CoverageTarget, MaximalCovering, candidate_nodes
from circles.synthetic import make_city


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

    from circles.osm import read_osm_features

    lu = read_osm_features("data/chengdu.osm.pbf", kind="landuse")
    res = lu[lu["landuse"] == "residential"].to_crs(32648)
    pts = gpd.GeoSeries(shapely.points(prop["lon"], prop["lat"]), crs=4326).to_crs(32648)
    assert all(res.distance(p).min() <= 50.0 + 1e-6 for p in pts)
