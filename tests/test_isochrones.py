from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from circles.errors import DataError
from circles.isochrones import distance_bands, facility_isochrones, tier_isochrones, to_wgs84
from circles.network import WalkNetwork
from circles.routing import Anchors, reach
from circles.synthetic import random_points

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
    from circles.profiles import get_profile

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
    from circles.profiles import get_profile

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
