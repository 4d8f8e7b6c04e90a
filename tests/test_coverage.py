from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from circles.engine.coverage import TABLE_COLUMNS, compute_coverage
from circles.engine.gaps import gap_hexagons
from circles.engine.network import WalkNetwork
from circles.engine.standards import check_standards

UTM = pyproj.CRS.from_epsg(32648)


@pytest.fixture(scope="module")
def square():
    """A 1 km square of streets (no streets inside), in UTM 48N near Chengdu."""
    ox, oy = 404_000.0, 3_390_000.0
    x = ox + np.array([0.0, 1000.0, 1000.0, 0.0])
    y = oy + np.array([0.0, 0.0, 1000.0, 1000.0])
    net = WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=np.array([0, 1, 2, 3]),
                                 edge_v=np.array([1, 2, 3, 0]), edge_geometry=None, crs=UTM)
    return net, ox, oy


def _wgs(net, xs, ys):
    lon, lat = net.to_wgs84(np.asarray(xs, float), np.asarray(ys, float))
    return shapely.points(lon, lat)


def _case(square):
    net, ox, oy = square
    fac = gpd.GeoDataFrame({"facility_id": ["C1"], "name": ["<b>corner</b>"], "tier": ["community"],
                            "status": ["ok"], "floor_area_m2": [650.0]},
                           geometry=_wgs(net, [ox], [oy]), crs=4326)
    # metres to the complex along the streets: A 100, B 370, C 380, D 500 + 40 off-street;
    # E sits 500 m from every street (off-network), F lies outside the network's area.
    px = ox + np.array([100, 370, 0, 500, 500, 2000])
    py = oy + np.array([0, 0, 380, 40, 500, 0])
    demand = gpd.GeoDataFrame({"pop": [10.0, 20.0, 30.0, 5.0, 7.0, 11.0]},
                              geometry=_wgs(net, px, py), crs=4326)
    return net, fac, demand


def test_covered_population_is_known_exactly(square):
    net, fac, demand = _case(square)
    res = compute_coverage(net, fac, demand, profile="deyang")
    t = res.by_tier().set_index("tier")
    # deyang: 75 m/min; station 5 min = 375 m, community 10 min = 750 m, district 15 min.
    assert t.loc["station", "threshold_metres"] == pytest.approx(375)
    assert t.loc["station", "covered_pop"] == pytest.approx(30)  # nested: a community complex serves stations
    assert t.loc["station", "uncovered_pop"] == pytest.approx(35)
    assert t.loc["community", "covered_pop"] == pytest.approx(65)
    assert t.loc["community", "uncovered_pop"] == pytest.approx(0)
    assert t.loc["district", "covered_pop"] == pytest.approx(0)  # no district complex at all
    assert t.loc["district", "facilities"] == 0
    assert (t["offnetwork_pop"] == 7).all()
    assert (t["outside_pop"] == 11).all()
    np.testing.assert_allclose(res.demand["community_metres"].to_numpy()[:4], [100, 370, 380, 540],
                               atol=1e-6)


def test_population_is_conserved_in_every_table(square):
    net, fac, demand = _case(square)
    half = gpd.GeoDataFrame({"unit": ["west", "east"]}, crs=UTM, geometry=[
        shapely.box(403_000, 3_389_000, 404_250, 3_391_000),
        shapely.box(404_250, 3_389_000, 405_500, 3_391_000)])
    res = compute_coverage(net, fac, demand, profile="deyang", units=half)
    for table in (res.by_tier(), res.by_unit()):
        parts = table[["covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]].sum(axis=1)
        np.testing.assert_allclose(parts, table["population"])
    by_unit = res.by_unit()
    assert set(by_unit.columns) >= set(TABLE_COLUMNS)
    for _tier, grp in by_unit.groupby("tier"):
        assert grp["population"].sum() == pytest.approx(demand["pop"].sum())
    west = by_unit[(by_unit.unit == "west") & (by_unit.tier == "station")].iloc[0]
    assert west["covered_pop"] == pytest.approx(10)  # A is west, B (370 m) east of 250 m
    assert "(no unit)" in set(by_unit["unit"])  # F lies in no unit but is still counted


def test_resident_beyond_the_snap_cap_is_never_covered(square):
    net, fac, demand = _case(square)
    res = compute_coverage(net, fac, demand, profile="deyang")
    e = res.demand.iloc[4]
    assert e["status"] == "off_network"
    for tier in ("station", "community", "district"):
        assert not res.covered_mask(tier)[4]


def test_facility_loads_and_overload(square):
    net, fac, demand = _case(square)
    res = compute_coverage(net, fac, demand, profile="deyang")
    row = res.facility_table().iloc[0]
    assert row["pop_in_circle"] == pytest.approx(65)  # its own tier's circle: 750 m
    assert row["served_pop"] == pytest.approx(65)
    households = 65 / 2.62
    assert row["m2_per_100_households"] == pytest.approx(650 / households * 100, rel=1e-3)
    assert not row["overloaded"]
    checks = check_standards(res)
    assert (checks["check"] == "floor area per 100 households served").any()


def test_gaps_add_up_to_the_uncovered(square):
    net, fac, demand = _case(square)
    res = compute_coverage(net, fac, demand, profile="deyang")
    gaps = gap_hexagons(res, resolution=9)
    by_tier = res.by_tier().set_index("tier")
    for tier in ("station", "community", "district"):
        g = gaps[gaps.tier == tier]
        assert g["uncovered_pop"].sum() == pytest.approx(by_tier.loc[tier, "uncovered_pop"])
        assert g["offnetwork_pop"].sum() == pytest.approx(by_tier.loc[tier, "offnetwork_pop"])
    st = gaps[gaps.tier == "station"]
    assert list(st["uncovered_pop"]) == sorted(st["uncovered_pop"], reverse=True)


def test_unsnappable_facility_is_reported_not_routed(square):
    net, fac, demand = _case(square)
    far = fac.copy()
    far["facility_id"] = ["FAR"]
    far.geometry = _wgs(net, [square[1] + 500], [square[2] + 500])  # 500 m from any street
    both = pd.concat([fac, far], ignore_index=True)
    res = compute_coverage(net, gpd.GeoDataFrame(both, crs=4326), demand, profile="deyang")
    status = dict(zip(res.facilities["facility_id"], res.facilities["status"], strict=True))
    assert status == {"C1": "ok", "FAR": "off_network"}
    assert res.by_tier().set_index("tier").loc["community", "covered_pop"] == pytest.approx(65)
