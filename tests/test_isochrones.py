from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from circles.engine.isochrones import distance_bands, facility_isochrones, tier_isochrones, to_wgs84
from circles.engine.network import WalkNetwork
from circles.engine.routing import Anchors, reach
from circles.engine.synthetic import random_points
from circles.errors import DataError

UTM = pyproj.CRS.from_epsg(32648)


def _net(x, y, u, v, geometry=None, **kw) -> WalkNetwork:
    return WalkNetwork.from_lines(x=np.asarray(x, float), y=np.asarray(y, float), node_id=None,
                                  edge_u=np.asarray(u), edge_v=np.asarray(v),
                                  edge_geometry=geometry, crs=UTM, **kw)


def _covers(poly, x, y) -> bool:
    return bool(shapely.covers(poly, shapely.Point(x, y)))


def test_line_cut_point_is_exact_along_a_bent_edge():
    # 0 --100 m-- 1, then a bent edge 1 -> 2 running (100,0) -> (150,0) -> (150,100): 150 m.
    geom = np.array([shapely.LineString([(0, 0), (100, 0)]),
                     shapely.LineString([(100, 0), (150, 0), (150, 100)])], dtype=object)
    net = _net([0, 100, 150], [0, 0, 100], [0, 1], [1, 2], geometry=geom)
    # A facility 10 m off the first street, 30 m along it: node 1 at 10 + 70 = 80 m, so a
    # 200 m limit runs out 120 m along the bent edge: 50 m past the bend, at (150, 70).
    fac = Anchors.from_points(net, np.array([30.0]), np.array([-10.0]), max_metres=50)
    assert fac.edge[0] == 0
    assert fac.along_m[0] == pytest.approx(30)
    poly = facility_isochrones(net, fac, limit_metres=200, buffer_metres=0.05).geometry[0]
    assert _covers(poly, 150, 69.96)
    assert not _covers(poly, 150, 70.1)
    assert _covers(poly, 150, 20)
    assert _covers(poly, 125, 0)
    assert _covers(poly, 0.01, 0)
    assert _covers(poly, 30, -9.99)  # the walk from the facility to its street
    # Exact reached length: 100 + 120, plus the 10 m walk (a 0.05 m buffer is 0.1 m wide).
    assert poly.area == pytest.approx(0.1 * 230, rel=2e-3)
    # A 30 m limit reaches 20 m each way from the snap point: both cuts inside the facility's
    # own edge.
    short = facility_isochrones(net, fac, limit_metres=30, buffer_metres=0.05).geometry[0]
    assert _covers(short, 49.97, 0)
    assert not _covers(short, 50.1, 0)
    assert _covers(short, 10.03, 0)
    assert not _covers(short, 9.9, 0)
    assert short.area == pytest.approx(0.1 * (40 + 10), rel=2e-3)


def test_grid_partial_edges_and_unreached_corners():
    # 3x3 grid, 100 m blocks; from the centre 150 m reaches the four spokes and 50 m of each
    # edge beyond them, never the corners.
    xs, ys = np.meshgrid([0.0, 100.0, 200.0], [0.0, 100.0, 200.0], indexing="ij")
    idx = np.arange(9).reshape(3, 3)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    net = _net(xs.ravel(), ys.ravel(), u, v)
    centre = Anchors.at_nodes(net, [4])
    poly = facility_isochrones(net, centre, limit_metres=150, buffer_metres=0.05).geometry[0]
    assert poly.area == pytest.approx(0.1 * (4 * 100 + 8 * 50), rel=2e-3)
    # Each boundary street is reached over its middle 100 m, from the spoke's end.
    for cx, cy in ((50.04, 0), (0, 50.04), (149.96, 200), (200, 149.96)):
        assert _covers(poly, cx, cy)
    for cx, cy in ((49.9, 0), (0, 49.9), (150.1, 200), (200, 150.1), (0, 0), (200, 200)):
        assert not _covers(poly, cx, cy)
    # With a 30 m street buffer the corners and the block centres (50 m from every street)
    # stay out.
    wide = facility_isochrones(net, centre, limit_metres=150, buffer_metres=30).geometry[0]
    assert not _covers(wide, 0, 0)
    assert not _covers(wide, 50, 50)
    assert _covers(wide, 100, 129)
    assert _covers(wide, 79, 0)
    assert not _covers(wide, 31, -31)


def test_smaller_limits_nest_inside_larger_ones_for_every_facility(chengdu_net):
    net = chengdu_net
    x, y = random_points(net, 40, seed=11)
    fac = Anchors.from_points(net, x, y, max_metres=300)
    iso = facility_isochrones(net, fac, limit_metres=[375, 750, 1125], metres_per_minute=75)
    assert len(iso) == 120
    assert list(iso["minutes"][:3]) == [5, 10, 15]
    geo = iso.geometry.to_numpy().reshape(40, 3)
    area = shapely.area(geo)
    assert (area[:, 0] > 0).all()
    assert (np.diff(area, axis=1) >= 0).all()
    for small, big in ((0, 1), (1, 2)):
        outside = shapely.area(shapely.difference(geo[:, small], geo[:, big]))
        assert (outside <= 1e-6 * area[:, small]).all()  # floating-point noise only


def test_isochrone_stays_within_the_straight_line_disc_and_holds_its_start(chengdu_net):
    net = chengdu_net
    x, y = random_points(net, 30, seed=12, spread_metres=120)
    fac = Anchors.from_points(net, x, y, max_metres=300)
    buffer = 30.0
    for limit in (375.0, 1125.0):
        iso = facility_isochrones(net, fac, limit_metres=limit, buffer_metres=buffer)
        geo = iso.geometry.to_numpy()
        reached = ~shapely.is_empty(geo)
        # Walking distance is never shorter than the straight line from the facility itself.
        discs = shapely.buffer(shapely.points(x, y), limit + buffer + 1e-6, quad_segs=64)
        assert shapely.covers(discs[reached], geo[reached]).all()
        start = reached & (fac.offset_m <= limit)
        assert shapely.covers(geo[start], shapely.points(x, y)[start]).all()
        sx, sy = fac.snap_xy(net)
        assert shapely.covers(geo[start], shapely.points(sx, sy)[start]).all()


def test_polygons_are_buffered_streets_with_holes_not_hulls(chengdu_net):
    net = chengdu_net
    fac = Anchors.at_nodes(net, [int(np.argmin(np.hypot(net.x - net.x.mean(), net.y - net.y.mean())))])
    poly = facility_isochrones(net, fac, limit_metres=1125, buffer_metres=30).geometry[0]
    parts = shapely.get_parts(poly)
    assert sum(len(p.interiors) for p in parts) > 5
    assert poly.area < 0.9 * shapely.convex_hull(poly).area
    # Every reached node is inside.
    row = reach(net, fac, limit_metres=1125).getrow(0)
    assert shapely.covers(poly, shapely.points(net.x[row.indices], net.y[row.indices])).all()


def test_unsnappable_facility_is_reported_and_the_rest_computed(chengdu_net):
    net = chengdu_net
    x, y = random_points(net, 5, seed=13)
    x[2] += 100_000
    fac = Anchors.from_points(net, x, y, max_metres=300)
    iso = facility_isochrones(net, fac, limit_metres=750, ids=["a", "b", "c", "d", "e"])
    assert list(iso["status"]) == ["ok", "ok", "not_snapped", "ok", "ok"]
    assert list(iso["id"]) == ["a", "b", "c", "d", "e"]
    assert iso.geometry[2].is_empty
    assert iso["area_km2"][2] == 0
    assert (iso["area_km2"].drop(index=2) > 0).all()
    assert iso.crs == net.crs
    assert to_wgs84(iso).crs.to_epsg() == 4326


def test_island_facility_area_stays_on_its_island():
    xs, ys = np.meshgrid(np.arange(4) * 100.0, np.arange(4) * 100.0, indexing="ij")
    idx = np.arange(16).reshape(4, 4)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    x = np.concatenate([xs.ravel(), [2000.0, 2100.0]])
    y = np.concatenate([ys.ravel(), [0.0, 0.0]])
    net = _net(x, y, np.concatenate([u, [16]]), np.concatenate([v, [17]]), keep_largest=False)
    fac = Anchors.from_points(net, np.array([2050.0, 150.0]), np.array([0.0, 150.0]),
                              max_metres=50)
    iso = facility_isochrones(net, fac, limit_metres=5000, buffer_metres=10)
    assert list(iso["status"]) == ["island", "ok"]
    island = iso.geometry[0]
    assert island.bounds[0] >= 2000 - 10 - 1e-6
    assert island.area == pytest.approx(20 * 100 + np.pi * 100, rel=0.01)
    assert iso.geometry[1].bounds[2] <= 300 + 10 + 1e-6


def test_distance_bands_are_nested_rings(chengdu_net):
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    net = chengdu_net
    x, y = random_points(net, 8, seed=14)
    fac = Anchors.from_points(net, x, y, max_metres=300)
    bands = distance_bands(net, fac, profile=profile)
    assert list(bands["band"]) == ["0-5", "5-10", "10-15"]
    rings = bands.geometry.to_numpy()
    assert (shapely.area(rings) > 0).all()
    for i in range(3):
        for j in range(i + 1, 3):
            assert shapely.intersection(rings[i], rings[j]).area < 1e-3
    whole = facility_isochrones(net, fac, limit_metres=15 * profile.metres_per_minute,
                                buffer_metres=profile.street_buffer_metres).geometry
    union = shapely.union_all(whole.to_numpy())
    assert shapely.area(shapely.union_all(rings)) == pytest.approx(union.area, rel=1e-3)
    with pytest.raises(DataError, match="increasing"):
        distance_bands(net, fac, minutes=(10, 5), profile=profile)


def test_tier_isochrones_dissolve_with_nesting(chengdu_net):
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    net = chengdu_net
    x, y = random_points(net, 12, seed=15)
    x[0] += 100_000
    fac = Anchors.from_points(net, x, y, max_metres=profile.snap_cap_metres)
    codes = [t.code for t in profile.tiers]
    tiers = np.array(codes * 4)[:12]
    layers = tier_isochrones(net, fac, tiers, profile, ids=[f"f{i}" for i in range(12)])
    assert set(layers) == {*codes, "facilities"}
    per = layers["facilities"]
    assert len(per) == 12
    assert per["status"][0] == "not_snapped"
    assert per.geometry[0].is_empty
    assert list(per["tier"]) == list(tiers)
    for tier in profile.tiers:
        layer = layers[tier.code]
        eligible = np.isin(tiers, list(profile.eligible(tier.code))) & fac.ok
        assert int(layer["facilities"][0]) == eligible.sum()
        own = facility_isochrones(net, fac.subset(eligible),
                                  limit_metres=profile.threshold_metres(tier.code),
                                  buffer_metres=profile.street_buffer_metres).geometry
        union = shapely.union_all(own.to_numpy())
        dissolved = layer.geometry[0]
        assert shapely.symmetric_difference(dissolved, union).area < 1e-3 * union.area


def test_only_the_tier_every_facility_serves_is_kept_for_the_rings(chengdu_net):
    """The station tier (every facility, 5 min) is the rings' first band: kept and reused; the
    other tiers' areas are not kept (never asked for again)."""
    from circles.engine import isochrones
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    net = chengdu_net
    isochrones.forget_areas(net)
    x, y = random_points(net, 12, seed=16)
    fac = Anchors.from_points(net, x, y, max_metres=profile.snap_cap_metres)
    tiers = np.array([t.code for t in profile.tiers] * 4)
    layers = tier_isochrones(net, fac, tiers, profile, per_facility=False)
    kept = isochrones._PARTS[net]
    assert [key[1] for key in kept] == [profile.threshold_metres("station")]
    bands = distance_bands(net, fac, minutes=[5, 10, 15], profile=profile)
    assert shapely.equals_exact(bands.geometry[0], layers["station"].geometry[0], 0.0)
    assert not kept  # the rings were its last use, and they keep none of their own
    isochrones.forget_areas(net)


# --- scale of inputs: per-facility figures up to a stated count ------------------------------

def test_facility_area_setting_is_all_none_or_a_count():
    from circles.engine.isochrones import (
        FACILITY_AREAS_DEFAULT,
        facility_area_cap,
        facility_areas_note,
    )

    assert facility_area_cap(None) == FACILITY_AREAS_DEFAULT == 2000
    assert facility_area_cap("all") is None
    assert facility_area_cap("None") == 0
    assert facility_area_cap("10,000") == 10_000
    assert facility_area_cap(50) == 50
    for bad in ("some", "-3", "2.5", "inf"):
        with pytest.raises(DataError, match="all, none or a whole number") as err:
            facility_area_cap(bad)
        assert err.value.field == "facility_areas"
    note = facility_areas_note(100_000)
    assert note == {"setting": 2000, "facilities": 100_000, "written": False, "message":
                    "per-facility areas and pop_in_circle not written for 100,000 facilities "
                    "(more than 2,000); pass --facility-areas all to write them"}
    assert facility_areas_note(2000)["written"]
    assert not facility_areas_note(2000)["message"]
    assert facility_areas_note(3, "all")["written"]
    assert not facility_areas_note(3, "none")["written"]


def test_tier_areas_are_the_same_without_per_facility_areas(chengdu_net):
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    net = chengdu_net
    x, y = random_points(net, 9, seed=16)
    fac = Anchors.from_points(net, x, y, max_metres=profile.snap_cap_metres)
    tiers = np.array([t.code for t in profile.tiers] * 3)
    full = tier_isochrones(net, fac, tiers, profile)
    lean = tier_isochrones(net, fac, tiers, profile, per_facility=False)
    assert "facilities" in full
    assert set(lean) == set(full) - {"facilities"}
    for tier in profile.tiers:
        assert shapely.equals_exact(lean[tier.code].geometry[0], full[tier.code].geometry[0], 0)
        assert lean[tier.code].geometry[0].area > 0


def _poi_table(net, k: int, path, seed: int) -> None:
    import pandas as pd

    x, y = random_points(net, k, seed=seed)
    lon, lat = pyproj.Transformer.from_crs(net.crs, 4326, always_xy=True).transform(x, y)
    tiers = np.array(["片区级", "社区级", "驿站级"])[np.arange(k) % 3]
    pd.DataFrame({"id": [f"P{i}" for i in range(k)], "name": [f"POI {i}" for i in range(k)],
                  "tier": tiers, "lon": lon, "lat": lat, "floor_area_m2": 300 + 10 * np.arange(k)}
                 ).to_csv(path, index=False)


def test_coverage_run_writes_per_facility_areas_only_up_to_the_stated_count(
        chengdu_net, tmp_path, capsys):
    import json

    import pandas as pd
    import pyogrio

    from circles.cli import main

    table = tmp_path / "poi.csv"
    _poi_table(chengdu_net, 12, table, seed=17)
    assert main(["coverage", "--facilities", str(table), "--facility-areas", "5",
                 "--out", str(tmp_path / "capped")]) == 0
    said = capsys.readouterr().out
    assert ("per-facility areas and pop_in_circle not written for 12 facilities (more than 5); "
            "pass --facility-areas all to write them") in said
    assert main(["coverage", "--facilities", str(table), "--facility-areas", "all",
                 "--out", str(tmp_path / "all")]) == 0
    assert "not written" not in capsys.readouterr().out
    capped, full = tmp_path / "capped", tmp_path / "all"
    layers = {str(n) for n, _ in pyogrio.list_layers(capped / "isochrones.gpkg")}
    assert "facilities" not in layers
    assert {"district", "community", "station", "bands"} <= layers
    per = pyogrio.read_dataframe(full / "isochrones.gpkg", layer="facilities")
    assert len(per) == 12
    assert (per["area_km2"] > 0).all()
    man = json.loads((capped / "manifest.json").read_text())
    assert man["parameters"]["facility_areas"] == "5"
    assert man["facility_areas"]["setting"] == 5
    assert man["facility_areas"]["written"] is False
    assert json.loads((full / "manifest.json").read_text())["facility_areas"]["written"] is True
    # Coverage, the nearest-facility loads and the tier areas do not depend on the setting.
    for name in ("coverage_by_tier.csv",):
        pd.testing.assert_frame_equal(pd.read_csv(capped / name), pd.read_csv(full / name))
    a, b = pd.read_csv(capped / "facilities.csv"), pd.read_csv(full / "facilities.csv")
    assert a["pop_in_circle"].isna().all()
    assert b["pop_in_circle"].notna().all()
    cols = ["served_pop", "m2_per_100_households", "overloaded"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    for tier in ("district", "community", "station"):
        ga = pyogrio.read_dataframe(capped / "isochrones.gpkg", layer=tier).geometry[0]
        gb = pyogrio.read_dataframe(full / "isochrones.gpkg", layer=tier).geometry[0]
        assert shapely.equals_exact(ga, gb, 0)
    assert main(["coverage", "--facilities", str(table), "--facility-areas", "many",
                 "--out", str(tmp_path / "bad")]) != 0
    err = capsys.readouterr().err
    assert "facility_areas" in err
    assert "all, none or a whole number" in err
    assert "--facility-areas all" in err
    assert not (tmp_path / "bad").exists()  # refused before any work


def test_isochrones_command_skips_per_facility_areas_beyond_the_count(chengdu_net, tmp_path, capsys):
    import json

    import pyogrio

    from circles.cli import main

    table = tmp_path / "poi.csv"
    _poi_table(chengdu_net, 6, table, seed=18)
    assert main(["isochrones", "--facilities", str(table), "--facility-areas", "none",
                 "--out", str(tmp_path / "run")]) == 0
    assert "per-facility areas and pop_in_circle not written (--facility-areas none)" in \
        capsys.readouterr().out
    layers = {str(n) for n, _ in pyogrio.list_layers(tmp_path / "run" / "isochrones.gpkg")}
    assert "facilities" not in layers
    assert "district" in layers
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["facility_areas"]["setting"] == "none"


def test_default_skips_own_circles_for_a_poi_dump(chengdu_net):
    import geopandas as gpd

    from circles.engine.coverage import compute_coverage
    from circles.readers.profiles import get_profile
    from circles.runs.pipeline import isochrone_layers

    profile = get_profile("deyang")
    net = chengdu_net
    k = 2010  # a few more than the default count
    x, y = random_points(net, k, seed=19)
    lon, lat = pyproj.Transformer.from_crs(net.crs, 4326, always_xy=True).transform(x, y)
    fac = gpd.GeoDataFrame({"facility_id": [f"P{i}" for i in range(k)], "name": "poi",
                            "tier": np.array(["district", "community", "station"])[np.arange(k) % 3],
                            "floor_area_m2": 500.0}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    xs, ys = random_points(net, 300, seed=20)
    plon, plat = pyproj.Transformer.from_crs(net.crs, 4326, always_xy=True).transform(xs, ys)
    demand = gpd.GeoDataFrame({"pop": np.full(300, 10.0)}, geometry=gpd.points_from_xy(plon, plat),
                              crs=4326)
    result = compute_coverage(net, fac, demand, profile=profile)
    ok = result.facilities["status"] == "ok"
    assert ok.sum() > 2000
    assert result.facilities["pop_in_circle"].isna().all()
    # Only district complexes count for the district tier: together they serve its covered people.
    district = result.facilities["tier"] == "district"
    covered = result.by_tier().set_index("tier").loc["district", "covered_pop"]
    assert covered > 0
    assert result.facilities.loc[district, "served_pop"].sum() == pytest.approx(covered, abs=1)
    layers = isochrone_layers(net, result.facilities, profile)
    assert "facilities" not in layers
    assert {"district", "community", "station", "bands"} <= set(layers)


def test_map_draws_a_stated_number_of_facility_markers_first_the_ones_to_look_at():
    import folium
    import pandas as pd

    from circles.outputs.map_layers import MAP_FACILITIES_MAX, facilities_layer
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    k = 10
    df = pd.DataFrame({"name": [f"site-{i:02d}" for i in range(k)], "lon": 104.0 + 0.001 * np.arange(k),
                       "lat": 30.6, "tier": ["station"] * 8 + ["district"] * 2,
                       "served_pop": [10.0 * i for i in range(k)],
                       "overloaded": [i in (1, 3) for i in range(k)]})

    def drawn(max_markers):
        m = folium.Map()
        groups = facilities_layer(df, profile, lang="en", max_markers=max_markers)
        for fg in groups:
            fg.add_to(m)
        html = m.get_root().render()
        return {n for n in df["name"] if f'"{n}"' in html}, [fg.layer_name for fg in groups]

    names, labels = drawn(4)
    # Overloaded first (1, 3), then the higher tier (8, 9); not the station serving most (7).
    assert names == {"site-01", "site-03", "site-08", "site-09"}
    assert any("(2)" in lab for lab in labels)  # both district complexes drawn: no note
    assert any("2 of 8 shown; all in facilities.csv" in lab for lab in labels)
    names, labels = drawn(5)
    assert names == {"site-01", "site-03", "site-08", "site-09", "site-07"}
    names, labels = drawn(None)
    assert len(names) == k
    assert not any("shown" in lab for lab in labels)
    assert MAP_FACILITIES_MAX >= 2000
