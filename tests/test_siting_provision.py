"""Siting under capacity with the existing complexes' capacities fixed: the people a site can gain
are those provision leaves unserved, and provision re-solved with the proposals checks the claim.
Figures against a hand-worked line of streets and against scipy's linprog on Chengdu."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from scipy import sparse
from scipy.optimize import linprog

from circles.engine.coverage import compute_coverage
from circles.engine.network import WalkNetwork
from circles.outputs.runfolder import Manifest
from circles.runs.pipeline import RunOutput

UTM = pyproj.CRS.from_epsg(32648)
OX, OY = 404_000.0, 3_390_000.0


def _read(path):
    return pd.read_csv(path, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def line():
    """One straight street from x = -600 m to 1200 m, a node every 100 m, near Chengdu."""
    x = OX + np.arange(-600.0, 1201.0, 100.0)
    return WalkNetwork.from_lines(x=x, y=np.full(len(x), OY), node_id=None, edge_u=np.arange(len(x) - 1),
                                 edge_v=np.arange(1, len(x)), edge_geometry=None, crs=UTM)


def _wgs(net, xs):
    lon, lat = net.to_wgs84(OX + np.asarray(xs, float), np.full(len(xs), OY))
    return np.asarray(lon), np.asarray(lat)


def _line_run(net, tmp_path, capacity_pop: float):
    # A station complex at 0 that can serve 300; A (300 people) at 100 m, B (200) at 300 m and
    # D (100) at -300 m are all within its 375 m; C (40) at 1000 m is beyond it.
    lon, lat = _wgs(net, [0.0])
    fac = gpd.GeoDataFrame({"facility_id": ["S"], "name": ["station"], "tier": ["station"], "status": ["ok"],
                            "capacity_pop": [capacity_pop]}, geometry=shapely.points(lon, lat), crs=4326)
    lon, lat = _wgs(net, [100.0, 300.0, -300.0, 1000.0])
    demand = gpd.GeoDataFrame({"pop": [300.0, 200.0, 100.0, 40.0]}, geometry=shapely.points(lon, lat), crs=4326)
    result = compute_coverage(net, fac, demand, profile="deyang")
    folder = tmp_path / "run"
    folder.mkdir()
    return RunOutput(folder=folder, result=result, files=[], manifest=Manifest("test"))


def _candidates(net, tmp_path):
    # K at 150 m reaches A (50 m) and B (150 m), not D (450 m); K2 sits on C. 30 m² each:
    # 30 ÷ 30 m² per 100 households × 100 × 2.62 persons = 262 people.
    lon, lat = _wgs(net, [150.0, 1000.0])
    path = tmp_path / "cands.csv"
    pd.DataFrame({"lon": lon, "lat": lat, "floor_area_m2": [30.0, 30.0]}).to_csv(path, index=False)
    return path


def test_a_site_beside_a_full_complex_gains_its_unserved_people(line, tmp_path):
    from circles.runs.proposals import propose

    run = _line_run(line, tmp_path, capacity_pop=300.0)
    propose(run, new=2, capacity=True, candidates=_candidates(line, tmp_path), gcj02=False)
    prop = _read(run.folder / "proposals.csv")
    # Before: S serves A whole (the least walk among the ways to serve 300); B, D are covered but
    # unserved and C is uncovered. Unserved within K's reach: B's 200 (< 262), so K comes first
    # and claims 200; K2 then claims C's 40. Coverage alone would see nothing to gain at K.
    assert prop["lon"].round(6).tolist() == pytest.approx(_wgs(line, [150.0, 1000.0])[0].round(6))
    assert prop["new_served_pop"].tolist() == pytest.approx([200.0, 40.0])
    assert prop["new_covered_pop"].tolist() == pytest.approx([0.0, 40.0])
    # Re-solved with K: S serves D (100) and 200 of A, K the other 100 of A and 162 of B, all 262
    # of its capacity: 562 served, 262 more than before, more than the 200 claimed. Then K2: C's 40.
    assert prop["provision_gain_pop"].tolist() == pytest.approx([262.0, 40.0])
    assert prop["served_after_pop"].tolist() == pytest.approx([562.0, 602.0])
    assert prop["capacity_pop"].tolist() == pytest.approx([262.0, 262.0])
    siting = run.manifest.data["siting"]
    assert siting["served_before_pop"] == pytest.approx(300.0)
    assert siting["served_after_pop"] == pytest.approx(602.0)
    assert siting["new_served_pop"] == pytest.approx(240.0)
    assert "300 before, 602 after the 2 new sites" in siting["explanation"]
    assert "1 from capacity_pop" in siting["explanation"]
    scen = _read(run.folder / "scenario_comparison.csv").set_index("tier")
    assert scen.loc["station", "served_pop_before"] == pytest.approx(300.0)
    assert scen.loc["station", "served_pop_after"] == pytest.approx(602.0)
    assert scen.loc["station", "served_change_pop"] == pytest.approx(302.0)
    assert scen.loc["station", "covered_pop_after"] == pytest.approx(640.0)  # C newly within reach
    assert scen.loc["community", "served_pop_after"] == pytest.approx(0.0)  # no community complex


def test_a_complex_with_room_leaves_nothing_covered_to_gain(line, tmp_path):
    from circles.runs.proposals import propose

    # S can serve everyone within its reach: only C is left, so one site is proposed, on C.
    run = _line_run(line, tmp_path, capacity_pop=1000.0)
    prop = propose(run, new=2, capacity=True, candidates=_candidates(line, tmp_path), write=False)
    assert len(prop) == 1
    assert prop["new_served_pop"].tolist() == pytest.approx([40.0])
    assert prop["provision_gain_pop"].tolist() == pytest.approx([40.0])
    assert "only 1 of the 2 candidates reach anyone not already served" in prop.attrs["explanation"]
    assert "600 before, 640 after the 1 new site (re-solved)" in prop.attrs["explanation"]


def _lp_served(matrix: sparse.csr_matrix, pop: np.ndarray, cap: np.ndarray) -> float:
    """The most people served (a transportation LP in scipy's HiGHS, a separate solver)."""
    coo = matrix.tocoo()
    n, ns, nd = coo.nnz, matrix.shape[0], matrix.shape[1]
    a = sparse.vstack([sparse.csr_matrix((np.ones(n), (coo.row, np.arange(n))), shape=(ns, n)),
                       sparse.csr_matrix((np.ones(n), (coo.col, np.arange(n))), shape=(nd, n))])
    b = np.concatenate([np.where(np.isfinite(cap), cap, 1e12), pop])
    return -linprog(-np.ones(n), A_ub=a, b_ub=b, bounds=(0, None), method="highs").fun


@pytest.fixture(scope="module")
def chengdu_site(tmp_path_factory, data_dir):
    from circles.runs.inputs import RunInputs
    from circles.runs.proposals import SiteRequest
    from circles.runs.runners import site_folder_run

    tmp = tmp_path_factory.mktemp("siting_provision")
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac["capacity_pop"] = 150  # far less than the people within reach of most complexes
    path = tmp / "facilities.csv"
    fac.to_csv(path, index=False)
    site = SiteRequest(tier="station", new=3, capacity=True)
    return site_folder_run(RunInputs(facilities=str(path)), tmp / "run", site=site)


def test_chengdu_resolved_gains_hold_the_claim(chengdu_site):
    from circles.engine.routing import coverage_matrix

    run = chengdu_site
    prop = _read(run.folder / "proposals.csv")
    assert {"new_served_pop", "provision_gain_pop", "served_after_pop", "capacity_pop"} <= set(prop.columns)
    assert len(prop) == 3
    assert (prop["new_served_pop"] <= prop["capacity_pop"] + 0.05).all()
    assert (np.diff(prop["served_after_pop"]) > 0).all()
    res = run.result
    demand_ok = (res.demand["status"] == "ok").to_numpy()
    # Provision counts in hundredths of a person: allow that per demand point and per site.
    slack = 0.01 * (demand_ok.sum() + len(res.facilities) + len(prop)) + 0.3  # + the CSV's 0.1 rounding
    assert (np.cumsum(prop["provision_gain_pop"]) >= np.cumsum(prop["new_served_pop"]) - slack).all()
    # Some of the gain is people already within reach of a full complex.
    assert prop["new_served_pop"].sum() > prop["new_covered_pop"].sum() + 1.0

    # The people served before and after, by a separate LP on the same walks.
    net, profile = res.network, res.profile
    pop = np.where(demand_ok, res.demand["pop"].to_numpy(float), 0.0)
    limit = profile.threshold_metres("station")
    old = coverage_matrix(net, res.facility_anchors, res.demand_anchors, limit_metres=limit, dtype=np.float64)
    x, y = net.from_wgs84(prop["lon"].to_numpy(float), prop["lat"].to_numpy(float))
    from circles.engine.routing import Anchors

    new = coverage_matrix(net, Anchors.from_points(net, x, y, max_metres=300.0), res.demand_anchors,
                          limit_metres=limit, dtype=np.float64)
    cap_old = np.full(len(res.facilities), 150.0)
    before = _lp_served(old, pop, cap_old)
    after = _lp_served(sparse.vstack([old, new]).tocsr(), pop,
                       np.concatenate([cap_old, prop["capacity_pop"].to_numpy(float)]))
    siting = json.loads((run.folder / "manifest.json").read_text(encoding="utf-8"))["siting"]
    assert siting["served_before_pop"] == pytest.approx(before, abs=slack)
    assert siting["served_after_pop"] == pytest.approx(after, abs=slack)
    assert prop["served_after_pop"].iloc[-1] == pytest.approx(after, abs=slack)
    assert siting["served_before_pop"] + prop["provision_gain_pop"].sum() == pytest.approx(after, abs=slack)
    scen = _read(run.folder / "scenario_comparison.csv").set_index("tier")
    assert {"covered_pop_before", "covered_pop_after", "served_pop_before", "served_pop_after"} <= set(scen.columns)
    assert scen.loc["station", "served_pop_before"] == pytest.approx(before, abs=slack)
    assert scen.loc["station", "served_pop_after"] == pytest.approx(after, abs=slack)
    # A station serves no community or district: those tiers are unchanged.
    assert scen.loc["district", "served_change_pop"] == pytest.approx(0.0)
