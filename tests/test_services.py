from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from circles import DataError, ValidationError
from circles.cli import main
from circles.engine.coverage import compute_coverage
from circles.engine.network import WalkNetwork
from circles.engine.service_access import service_access
from circles.readers.services import builtin_catalogue, load_catalogue, service_points

UTM = pyproj.CRS.from_epsg(32648)
OX, OY = 404_000.0, 3_390_000.0


@pytest.fixture(scope="module")
def line_city():
    """A 2 km street with a side loop, so nothing is off-network."""
    x = OX + np.array([0.0, 500, 1000, 1500, 2000])
    y = OY + np.zeros(5)
    return WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=np.arange(4), edge_v=np.arange(1, 5),
                                  edge_geometry=None, crs=UTM)


def _wgs(net, xs, ys):
    lon, lat = net.to_wgs84(np.asarray(xs, float), np.asarray(ys, float))
    return shapely.points(lon, lat)


def _case(net, *, services="幼儿园、小学"):
    # A complex at 0 m offering a kindergarten and a primary school; a market at 2 km.
    fac = gpd.GeoDataFrame({"facility_id": ["A"], "name": ["complex"], "tier": ["community"], "status": ["ok"],
                            "services": [services]}, geometry=_wgs(net, [OX], [OY]), crs=4326)
    # Residents at 200 m (kindergarten 300 m: yes; school 500 m: yes), 400 m (kindergarten no,
    # school yes), 1,900 m (neither; the market 100 m away: yes).
    demand = gpd.GeoDataFrame({"pop": [10.0, 20.0, 30.0], "children": [2.0, 3.0, 4.0]},
                              geometry=_wgs(net, [OX + 200, OX + 400, OX + 1900], [OY, OY, OY]), crs=4326)
    market = pd.DataFrame({"名称": ["菜场"], "类别": ["菜市场"], "经度": [0.0], "纬度": [0.0]})
    lon, lat = net.to_wgs84(np.array([OX + 2000]), np.array([OY]))
    market.loc[0, ["经度", "纬度"]] = [lon[0], lat[0]]
    return fac, demand, market


def test_score_counts_exactly(line_city, tmp_path):
    fac, demand, market = _case(line_city)
    path = tmp_path / "points.csv"
    market.to_csv(path, index=False)
    res = compute_coverage(line_city, fac, demand, profile="deyang")
    cat = [c for c in builtin_catalogue() if c.code in ("kindergarten", "primary_school", "market")]
    pts = service_points(facilities=res.facilities, table=path, catalogue=cat)
    assert sorted(pts["service"]) == ["kindergarten", "market", "primary_school"]
    access = service_access(res, pts, cat)
    assert access.score().tolist() == [2, 1, 1]
    t = access.by_service().set_index("service")
    assert t.loc["kindergarten", "covered_pop"] == pytest.approx(2.0)  # counts children, not people
    assert t.loc["kindergarten", "group"] == "children"
    assert t.loc["primary_school", "covered_pop"] == pytest.approx(30.0)
    assert t.loc["market", "covered_pop"] == pytest.approx(30.0)
    for table in (t,):
        parts = table[["covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]].sum(axis=1)
        np.testing.assert_allclose(parts, table["population"])
    assert t.loc["kindergarten", "population"] == pytest.approx(9.0)  # the children, conserved
    summary = access.score_summary().iloc[0]
    assert summary["reach_all_pop"] == pytest.approx(0.0)
    assert summary["mean_score"] == pytest.approx((2 * 10 + 1 * 20 + 1 * 30) / 60)
    gains = access.gaps_by_complex()
    assert set(gains["service"]) == {"market"}  # the complex offers the other two
    np.testing.assert_allclose(
        np.sort(access.demand_columns()["svc_kindergarten_minutes"].to_numpy())[:1], [200 / 75], atol=1e-3)


def test_category_without_provider_is_a_warning_not_an_error(line_city):
    fac, demand, _ = _case(line_city)
    res = compute_coverage(line_city, fac, demand, profile="deyang")
    cat = builtin_catalogue()
    with pytest.warns(UserWarning, match="no provider of canteen"):
        access = service_access(res, service_points(facilities=res.facilities, catalogue=cat), cat)
    t = access.by_service().set_index("service")
    assert t.loc["canteen", "covered_pop"] == 0
    assert t.loc["canteen", "uncovered_pop"] == pytest.approx(60)


def test_unknown_service_name_lists_the_known_ones(line_city):
    fac, demand, _ = _case(line_city, services="幼儿园;spa")
    res = compute_coverage(line_city, fac, demand, profile="deyang")
    with pytest.raises(ValidationError, match="spa") as err:
        service_points(facilities=res.facilities)
    assert err.value.problems[0]["row"] == 1
    assert "kindergarten" in str(err.value)


def test_osm_points_on_chengdu_and_merging(chengdu_net, chengdu_pbf, tmp_path, data_dir):
    osm = service_points(osm=chengdu_pbf)
    assert {"kindergarten", "primary_school", "health", "market"} <= set(osm["service"])
    k = osm[osm["service"] == "kindergarten"].iloc[:1]
    table = pd.DataFrame({"name": ["same place"], "service": ["kindergarten"],
                          "lon": [k.geometry.x.iloc[0] + 0.0001], "lat": [k.geometry.y.iloc[0]]})
    path = tmp_path / "own.csv"
    table.to_csv(path, index=False)
    merged = service_points(table=path, osm=chengdu_pbf)
    assert merged.attrs["merged"] == 1  # ~10 m apart, same category: one place
    assert len(merged) == len(osm)


def test_catalogue_from_yaml_and_errors(tmp_path):
    good = tmp_path / "cat.yaml"
    good.write_text("extends: builtin\ncategories:\n  - {code: pharmacy, name_zh: 药店, minutes: 10}\n"
                    "  - {code: kindergarten, metres: 500}\n", encoding="utf-8")
    cat = {c.code: c for c in load_catalogue(good)}
    assert cat["kindergarten"].metres == 500
    assert cat["kindergarten"].group == "children"
    assert cat["pharmacy"].minutes == 10
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories:\n  - {code: x, minutes: 5, metres: 100}\n", encoding="utf-8")
    with pytest.raises(DataError, match="exactly one"):
        load_catalogue(bad)


def test_demo_shows_the_service_table_and_score(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "kindergarten" in out
    assert "life-circle score" in out
    by = pd.read_csv(tmp_path / "demo" / "coverage_by_service.csv", encoding="utf-8-sig")
    assert list(by["service"])[:3] == ["kindergarten", "primary_school", "middle_school"]
    parts = by[["covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]].sum(axis=1)
    np.testing.assert_allclose(parts, by["population"])
    assert (tmp_path / "demo" / "service_gaps.csv").exists()
    hexes = gpd.read_file(tmp_path / "demo" / "service_points.gpkg", layer="life_circle_score")
    assert hexes["pop"].sum() > 0
    assert ((hexes["reach_all_share"] >= 0) & (hexes["reach_all_share"] <= 1)).all()
    demand = gpd.read_file(tmp_path / "demo" / "demand.gpkg")
    assert "svc_health_minutes" in demand.columns
    assert "life_circle_score" in demand.columns


def test_siting_for_a_service(tmp_path):
    assert main(["site", "--services", "osm", "--service", "幼儿园", "--new", "2",
                 "--out", str(tmp_path / "s")]) == 0
    prop = pd.read_csv(tmp_path / "s" / "proposals.csv", encoding="utf-8-sig")
    scen = pd.read_csv(tmp_path / "s" / "scenario_comparison.csv", encoding="utf-8-sig")
    assert set(prop["service"]) == {"kindergarten"}
    assert scen["change_pop"].iloc[0] == pytest.approx(prop["new_covered_pop"].sum(), abs=0.5)


def test_a_category_without_a_published_radius_takes_its_tiers_threshold_from_the_profile():
    from circles.readers.services import builtin_catalogue, load_catalogue

    deyang = {c.code: c for c in builtin_catalogue(profile="deyang")}
    gb = {c.code: c for c in builtin_catalogue(profile="gb50180")}
    # 社区卫生服务站 is a five-minute facility (GB 50180-2018 Appendix B): 5 min at 4.5 km/h = 375 m.
    assert deyang["health"].threshold_metres(75.0) == pytest.approx(375.0)
    assert gb["health"].threshold_metres(75.0) == pytest.approx(300.0)
    assert deyang["market"].threshold_metres(75.0) == pytest.approx(750.0)
    assert deyang["kindergarten"].threshold_metres(75.0) == 300.0  # its own published radius
    mine = load_catalogue({"categories": [{"code": "library", "tier": "community"}]}, profile="deyang")
    assert mine[0].minutes == 10
    with pytest.raises(DataError, match="tier"):
        load_catalogue({"categories": [{"code": "library", "tier": "block"}]}, profile="deyang")
    with pytest.raises(DataError, match="exactly one of minutes, metres or tier"):
        load_catalogue({"categories": [{"code": "library", "tier": "community", "minutes": 5}]})


def test_the_catalogue_and_the_gb_profiles_place_each_facility_kind_at_one_tier():
    """One source of truth: the tier a category takes its threshold from is the tier at which the
    GB 50180 profile counts that kind of OSM facility."""
    from circles import get_profile
    from circles.readers.services import builtin_catalogue

    tags = get_profile("gb50180").osm_tags
    level_of = {v: tier for tier, kv in tags.items() for vals in kv.values() for v in vals}
    tier_of = {c.code: c.tier for c in builtin_catalogue() if c.tier}
    for code, osm_value in (("health", "clinic"), ("market", "marketplace"),
                            ("community_service", "community_centre"), ("elderly_care", "day_care")):
        assert tier_of[code] == level_of[osm_value], code
