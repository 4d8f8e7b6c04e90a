"""The documents' rules per community, on hand-made cities whose answers are known by hand.

The city: a street grid 3 km by 300 m (streets every 100 m) in UTM 48N, cut into ten communities
of 300 m by 400 m side by side (c0 ... c9, west to east). Each community has four residents of 100:
three on the street y = 100 at 10, 20 and 30 m east of its west edge, one at its north-east corner
(290 m east, on the street y = 300). Walking distances on this grid are Manhattan distances.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from circles.constants import PERSONS_PER_HOUSEHOLD
from circles.engine.community_rules import CITY, NO_UNIT, evaluate_units, scorecard
from circles.engine.coverage import compute_coverage
from circles.engine.network import WalkNetwork
from circles.engine.service_access import service_access
from circles.errors import DataError
from circles.readers.city_rules import rules_for
from circles.readers.services import builtin_catalogue, service_points

UTM = pyproj.CRS.from_epsg(32648)
OX, OY = 404_000.0, 3_390_000.0
NAMES = [f"c{i}" for i in range(10)]


@pytest.fixture(scope="module")
def net():
    ii, jj = np.meshgrid(np.arange(31), np.arange(4), indexing="ij")
    grid = (ii * 4 + jj)
    u = np.concatenate([grid[:-1, :].ravel(), grid[:, :-1].ravel()])
    v = np.concatenate([grid[1:, :].ravel(), grid[:, 1:].ravel()])
    return WalkNetwork.from_lines(x=OX + ii.ravel() * 100.0, y=OY + jj.ravel() * 100.0, node_id=None,
                                  edge_u=u, edge_v=v, edge_geometry=None, crs=UTM)


def _wgs(net, xs, ys):
    lon, lat = net.to_wgs84(OX + np.asarray(xs, float), OY + np.asarray(ys, float))
    return shapely.points(lon, lat)


def _demand(net):
    xs = [300 * i + dx for i in range(10) for dx in (10, 20, 30, 290)]
    ys = [100, 100, 100, 300] * 10
    return gpd.GeoDataFrame({"pop": np.full(40, 100.0)}, geometry=_wgs(net, xs, ys), crs=4326)


def _units(count=10, **columns):
    boxes = [shapely.box(OX + 300 * i, OY - 50, OX + 300 * (i + 1), OY + 350) for i in range(count)]
    return gpd.GeoDataFrame({"社区名称": NAMES[:count], **columns}, geometry=boxes, crs=UTM)


def _facilities(net, rows):
    """``rows``: (name, tier, x, y, floor area, services)."""
    names, tiers, xs, ys, areas, services = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"facility_id": list(names), "name": list(names), "tier": list(tiers),
                             "status": "ok", "floor_area_m2": list(areas), "services": list(services)},
                            geometry=_wgs(net, xs, ys), crs=4326)


def _access(res, code):
    cats = [c for c in builtin_catalogue() if c.code == code]
    return service_access(res, service_points(facilities=res.facilities, catalogue=cats), cats)


def _rule(city, code):
    return next(r for r in rules_for(city) if r.code == code)


def _by(table, col="passed"):
    return table.set_index("unit")[col].to_dict()


def test_ten_communities_of_1600_households_each_with_its_kindergarten_all_pass(net):
    fac = _facilities(net, [(f"k{i}", "station", 300 * i + 150, 100, 300.0, "幼儿园") for i in range(10)])
    units = _units(households=[1600] * 10)
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=units)
    rule = _rule("baoji", "kindergarten_households")
    # 16,000 households need 11 kindergartens as a study-wide ratio; per community, each has one.
    plain = evaluate_units(res, units, [rule])
    access = _access(res, "kindergarten")
    walked = evaluate_units(res, units, [rule], access=access)
    for table in (plain, walked):
        assert len(table) == 10
        assert table["passed"].tolist() == [True] * 10
        assert (table["value"] == 1600).all()
        assert (table["source"] == rule.source).all()
        assert (table["level"] == "community").all()


def test_kindergarten_in_the_unit_nearby_absent_or_not_applicable(net):
    # One kindergarten, in c0 at 290 m: c1's three residents on y = 100 are 20-40 m from it (75%).
    fac = _facilities(net, [("k0", "station", 290, 100, 300.0, "kindergarten")])
    units = _units(households=[1600, 1600, 1200, 1600, 1600, 1600, 1600, 1600, 1600, 1600])
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=units)
    access = _access(res, "kindergarten")
    table = evaluate_units(res, units, [_rule("baoji", "kindergarten_households")], access=access)
    passed, notes = _by(table), _by(table, "note")
    assert passed["c0"] is True  # in the unit
    assert passed["c1"] is True  # half its residents or more reach one
    assert "75%" in notes["c1"]
    assert passed["c2"] is None
    assert notes["c2"].startswith("not applicable: 1,200 households < 1,500")
    assert passed["c9"] is False  # 1,600 households, none in it, none near
    # Without walking access only the kindergarten in the unit counts.
    alone = _by(evaluate_units(res, units, [_rule("baoji", "kindergarten_households")]))
    assert [alone[u] for u in ("c0", "c1", "c2")] == [True, False, None]
    # Without service points at all the rule is not evaluated.
    bare = res.facilities.drop(columns="services")
    res2 = compute_coverage(net, bare, _demand(net), profile="deyang", units=units)
    none = evaluate_units(res2, units, [_rule("baoji", "kindergarten_households")])
    assert none["passed"].isna().all()
    assert (none["note"] == "not evaluated: needs service points (--services)").all()


def test_a_400_m2_community_complex_passes_the_300_m2_rule_and_a_complex_in_no_unit_is_reported(net):
    fac = _facilities(net, [("big", "community", 150, 100, 400.0, ""), ("small", "station", 450, 100, 250.0, ""),
                            ("lost", "station", 2850, 100, 500.0, "")])
    units = _units(count=9)  # c9, where "lost" stands, is not drawn
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=units)
    table = evaluate_units(res, units, [_rule("deyang", "community_space_min_m2")])
    values, passed = _by(table, "value"), _by(table)
    assert [(values[u], passed[u]) for u in ("c0", "c1", "c2", NO_UNIT)] == [
        (400, True), (250, False), (0, False), (500, None)]
    assert _by(table, "note")["c2"] == "no complex in the unit"
    assert "lost" in _by(table, "note")[NO_UNIT]


def test_space_per_100_households(net):
    # 400 m2 for 1,600 households: 25 per 100 (fails 30); 600 m2: 37.5 (passes).
    fac = _facilities(net, [("a", "community", 150, 100, 400.0, ""), ("b", "community", 450, 100, 600.0, "")])
    units = _units(count=2, 户数=[1600, 1600])
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=units)
    table = evaluate_units(res, units, [_rule("baoji", "space_per_100_households")])
    assert _by(table, "value") == {"c0": 25.0, "c1": 37.5}
    assert _by(table) == {"c0": False, "c1": True}


def test_workers_per_10000_residents(net):
    fac = _facilities(net, [("a", "community", 150, 100, 400.0, "")])
    rule = _rule("baoji", "workers_per_10000")
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=_units(count=1))
    for workers, value, ok in ((2, 10.0, False), (4, 20.0, True)):
        units = _units(count=1, 常住人口=[2000], 社区工作者=[workers])
        table = evaluate_units(res, units, [rule])
        city = table[table["unit"] == CITY].iloc[0]
        assert (city["value"], city["passed"]) == (value, ok)
        assert _by(table)["c0"] is None  # per unit reported: the document sets the ratio city-wide
        assert _by(table, "value")["c0"] == value
    # Read per community, each unit is judged; residents fall back to the population inside.
    per_unit = dataclasses.replace(rule, scope="community")
    units = _units(count=2, workers=[2, 4], residents=[2000, None])
    table = evaluate_units(res, units, [per_unit])
    assert _by(table, "value") == {"c0": 10.0, "c1": 4 / 400 * 10_000}
    assert _by(table) == {"c0": False, "c1": True}


def test_a_missing_column_is_not_evaluated_and_a_given_one_is(net):
    fac = _facilities(net, [("a", "community", 150, 100, 400.0, "")])
    rule = _rule("weinan", "general_social_workers_min")
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=_units(count=2))
    missing = evaluate_units(res, _units(count=2), [rule])
    assert missing["passed"].isna().all()
    assert (missing["note"] == "not evaluated: needs column general_social_workers").all()
    given = evaluate_units(res, _units(count=2, 全科社工=[3, 2]), [rule])
    assert _by(given) == {"c0": True, "c1": False}
    workers = evaluate_units(res, _units(count=2), [_rule("baoji", "workers_per_10000")])
    assert (workers["note"] == "not evaluated: needs column workers").all()


def test_planned_counts_and_walking_times_are_reported(net):
    fac = _facilities(net, [("a", "community", 290, 100, 400.0, "小学")])
    units = _units()
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=units)
    rows = evaluate_units(res, units, [_rule("deyang", "complex_tier_counts")])
    counts = rows[rows["unit"] == CITY]
    assert counts["unit"].tolist() == [CITY] * 3
    assert dict(zip(counts["part"], counts["value"], strict=True)) == {"district": 0, "community": 1, "station": 0}
    assert not counts["passed"].any()
    # Per unit the complexes are counted, not judged: the one community complex at x = 290 is in c0.
    per_unit = rows[(rows["unit"] != CITY) & (rows["part"] == "community")].set_index("unit")["value"]
    assert per_unit["c0"] == 1
    assert per_unit.drop("c0").eq(0).all()
    assert rows.loc[rows["unit"] != CITY, "passed"].isna().all()
    access = _access(res, "primary_school")
    walk = evaluate_units(res, units, [_rule("baoji", "school_walk_minutes")], access=access)
    share = _by(walk, "value")
    # 15 min = 1,125 m: c3's corner resident is 1,100 m away (past the 1,000 m the school's own
    # run reaches), c4's 1,400 m.
    assert [share[u] for u in ("c0", "c3", "c4", "c9")] == [1.0, 1.0, 0.75, 0.0]
    assert walk["passed"].isna().all()
    assert (walk["note"] == "reported, no pass mark in the document").all()
    tiers = evaluate_units(res, units, [_rule("deyang", "tier_minutes")])
    community = tiers[tiers["part"] == "community"].set_index("unit")["value"]
    # 10 min = 750 m along the streets from (290, 100): c1's corner is 500 m away, c2's 800 m.
    assert [community[u] for u in ("c0", "c1", "c2", "c9")] == [1.0, 1.0, 0.75, 0.0]


def test_scorecard_conserves_population_and_sorts_worst_first(net):
    fac = _facilities(net, [("a", "community", 150, 100, 400.0, "幼儿园"), ("b", "station", 450, 100, 200.0, "")])
    units = _units(count=9, households=[1600, 1000, None, 1600, 1600, 1600, 1600, 1600, 1600])
    res = compute_coverage(net, fac, _demand(net), profile="deyang", units=units)
    rules = [*rules_for("baoji"), _rule("deyang", "community_space_min_m2")]
    by_unit = evaluate_units(res, units, rules)
    card = scorecard(res, units, by_unit)
    assert list(card["rules_failed"]) == sorted(card["rules_failed"], reverse=True)
    named = res.by_unit()
    named = named[(named["tier"] == "station") & (named["unit"] != "(no unit)")]
    assert card["population"].sum() == pytest.approx(named["population"].sum())
    assert card["population"].sum() == pytest.approx(9 * 4 * 100)  # nine units of four residents
    rows = card.set_index("unit")
    assert rows.loc["c2", "households_source"] == f"population / {PERSONS_PER_HOUSEHOLD:g}"
    assert rows.loc["c2", "households"] == pytest.approx(round(400 / PERSONS_PER_HOUSEHOLD, 1))
    assert rows.loc["c0", "households_source"] == "column"
    # c0: its 400 m2 meets 300 m2 but is 25 m2 per 100 households; c1's 200 m2 fails both.
    assert "space_per_100_households" in rows.loc["c0", "failed"]
    assert "community_space_min_m2" not in rows.loc["c0", "failed"]
    assert {"community_space_min_m2", "space_per_100_households"} <= set(rows.loc["c1", "failed"].split("; "))
    assert rows.loc["c1", "rules_failed"] == len(rows.loc["c1", "failed"].split("; "))
    assert not rows["all_passed"].any()
    assert set(card.columns) >= {"level", "unit", "population", "households", "covered_share_station",
                                 "covered_share_community", "covered_share_district", "rules_evaluated",
                                 "rules_failed", "failed", "all_passed"}
    # Units given without the run's own units: demand is placed here, and adds up the same.
    bare = compute_coverage(net, fac, _demand(net), profile="deyang")
    again = scorecard(bare, units, evaluate_units(bare, units, rules))
    assert again["population"].sum() == pytest.approx(card["population"].sum())


def test_units_of_another_level_a_unit_in_two_parts_and_bad_layers(net):
    fac = _facilities(net, [("a", "community", 150, 100, 400.0, "")])
    res = compute_coverage(net, fac, _demand(net), profile="deyang")
    rule = _rule("weinan", "general_social_workers_min")
    street = evaluate_units(res, _units(count=2, 全科社工=[3, 3]), [rule], level="street")
    assert street["unit"].tolist() == ["(all units)"]
    assert street["note"].iloc[0] == "not evaluated: a rule per community; these units are street"
    # c0 drawn as two rows: one unit, its households added up, its people counted once.
    two = _units(count=2, households=[700, 900]).assign(社区名称=["c0", "c0"])
    card = scorecard(res, two, evaluate_units(res, two, [rule]))
    assert card[["unit", "population", "households"]].values.tolist() == [["c0", 800.0, 1600.0]]
    with pytest.raises(DataError, match="no CRS"):
        evaluate_units(res, _units(count=1).set_crs(None, allow_override=True), [rule])
    with pytest.raises(DataError, match="no unit name column"):
        evaluate_units(res, _units(count=1).rename(columns={"社区名称": "x"}), [rule])
