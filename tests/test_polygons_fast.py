"""Dissolved areas and rings at city scale (issue 20) against the old way of drawing them.

The new path labels the network's faces once and assembles holes directly
(``circles.engine.street_areas``, ``circles.engine.area_rings``). The oracle here is the old
path, kept as a separate computation: the reached stretches of one group noded, polygonized and
buffered per area (``street_buffers.reached_areas`` with one group, what ``_dissolved`` called
before), and each ring as a shapely difference of two such areas. A second, looser oracle is
shapely buffering the reached stretches directly.
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from circles.engine.anchors import Anchors
from circles.engine.isochrones import distance_bands, forget_areas, tier_isochrones
from circles.engine.network import WalkNetwork
from circles.engine.routing import nearest, tier_codes
from circles.engine.street_buffers import ReachedNodes, reached_areas
from circles.engine.street_pieces import edge_substrings, reached_pieces, source_walks
from circles.engine.synthetic import make_city, random_points
from circles.readers.profiles import get_profile

UTM = pyproj.CRS.from_epsg(32648)
REL = 1e-6  # symmetric difference over area


def _old_areas(net, sources: Anchors, limits, buffer: float) -> np.ndarray:
    """The old dissolved areas: one multi-source pass, then the per-group buffering, one group."""
    limits = np.asarray(limits, dtype=float)
    dist, _ = nearest(net, sources, limit_metres=float(limits.max()))
    node = np.flatnonzero(np.isfinite(dist))
    nn, jj = np.nonzero(dist[node][:, None] <= limits[None, :])
    src = np.flatnonzero(sources.ok)
    m = len(limits)
    return reached_areas(net, ReachedNodes(jj, node[nn], dist[node[nn]]), limits,
                         np.tile(np.arange(m), len(src)), sources.subset(np.repeat(src, m)),
                         buffer_metres=buffer, n_groups=1)


def _old_rings(areas: np.ndarray) -> np.ndarray:
    return shapely.difference(areas, np.concatenate([[shapely.Polygon()], areas[:-1]]))


def _rel(a, b) -> float:
    return float(shapely.area(shapely.symmetric_difference(a, b)) / max(shapely.area(b), 1e-12))


def _snapped(net, k: int, seed: int) -> Anchors:
    x, y = random_points(net, k, seed=seed)
    return Anchors.from_points(net, x, y, max_metres=300)


def _old_layers(net, fac: Anchors, tiers: np.ndarray) -> tuple[dict, np.ndarray]:
    """Each tier's area and the rings by the old method (noding and polygonizing every street)."""
    profile = get_profile("deyang")
    buffer = profile.street_buffer_metres
    codes = tier_codes(tiers, profile)
    areas = {}
    for tier in profile.tiers:
        eligible = np.isin(codes, list(profile.eligible(tier.code))) & fac.ok
        areas[tier.code] = _old_areas(net, fac.subset(eligible), [profile.threshold_metres(tier.code)], buffer)[0]
    limits = [5 * profile.metres_per_minute, 10 * profile.metres_per_minute,
              15 * profile.metres_per_minute]
    return areas, _old_rings(_old_areas(net, fac, limits, buffer))


def _check_against_old(net, fac: Anchors, tiers: np.ndarray, old: tuple[dict, np.ndarray] | None = None) -> None:
    profile = get_profile("deyang")
    old_areas, old_rings = old or _old_layers(net, fac, tiers)
    layers = tier_isochrones(net, fac, tiers, profile, per_facility=False)
    for tier in profile.tiers:
        new = layers[tier.code].geometry[0]
        assert shapely.is_valid(new)
        assert _rel(new, old_areas[tier.code]) <= REL, tier.code
    bands = distance_bands(net, fac, profile=profile)
    for new, old_ring in zip(bands.geometry, old_rings, strict=True):
        assert shapely.is_valid(new)
        assert _rel(new, old_ring) <= REL


def test_chengdu_tier_areas_and_rings_equal_the_old_method(chengdu_net):
    fac = _snapped(chengdu_net, 24, seed=31)
    codes = [t.code for t in get_profile("deyang").tiers]
    _check_against_old(chengdu_net, fac, np.array(codes * 8))


@pytest.fixture(scope="module")
def synthetic_city():
    """A 20,000-node city, 60 facilities of three tiers, and their areas by the old method, made
    once for every chunk size (the old method is the slow part)."""
    net = make_city(20_000, seed=3)
    fac = _snapped(net, 60, seed=4)
    tiers = np.array(["district"] * 6 + ["community"] * 18 + ["station"] * 36)
    return net, fac, tiers, _old_layers(net, fac, tiers)


@pytest.mark.parametrize("chunk", [50_000, 997])
def test_synthetic_city_tier_areas_and_rings_equal_the_old_method(chunk, monkeypatch, synthetic_city):
    """Also with the block cores made into polygons a few hundred at a time (a 1M-node city's
    hundreds of thousands go through many chunks)."""
    from circles.engine import street_areas

    monkeypatch.setattr(street_areas, "_CHUNK", chunk)
    net, fac, tiers, old = synthetic_city
    forget_areas(net)  # nothing drawn at another chunk size is reused
    _check_against_old(net, fac, tiers, old)


def test_rings_partition_the_fifteen_minute_area(chengdu_net):
    profile = get_profile("deyang")
    fac = _snapped(chengdu_net, 10, seed=32)
    rings = distance_bands(chengdu_net, fac, profile=profile).geometry.to_numpy()
    whole = _old_areas(chengdu_net, fac, [15 * profile.metres_per_minute],
                       profile.street_buffer_metres)[0]
    for i in range(3):
        for j in range(i + 1, 3):
            assert shapely.intersection(rings[i], rings[j]).area <= 1e-9 * whole.area
    assert _rel(shapely.union_all(rings), whole) <= REL


def test_the_dissolved_area_is_close_to_buffering_the_pieces_directly(chengdu_net):
    # Shapely's buffer of the reached stretches draws round ends where the streets meet, the
    # area draws the grown blocks' corners: arcs of 22.5 degrees either way, placed differently.
    profile = get_profile("deyang")
    fac = _snapped(chengdu_net, 6, seed=33)
    limit = 750.0
    layers = tier_isochrones(chengdu_net, fac, np.array(["community"] * 6), profile,
                             per_facility=False)
    dist, _ = nearest(chengdu_net, fac, limit_metres=limit)
    node = np.flatnonzero(dist <= limit)
    src = fac.subset(np.flatnonzero(fac.ok))
    pieces = reached_pieces(chengdu_net, ReachedNodes(np.zeros(len(node), dtype=np.int64), node,
                                                      dist[node]),
                            np.array([limit]), np.zeros(len(src), dtype=np.int64), src)
    lines = edge_substrings(chengdu_net, pieces.edge, pieces.t0, pieces.t1)
    _, walks = source_walks(chengdu_net, src, np.full(len(src), limit))
    direct = shapely.union_all(shapely.buffer(np.concatenate([lines, walks]),
                                              profile.street_buffer_metres, quad_segs=4))
    assert _rel(layers["community"].geometry[0], direct) <= 1e-3


def _net(x, y, u, v) -> WalkNetwork:
    return WalkNetwork.from_lines(x=np.asarray(x, float), y=np.asarray(y, float), node_id=None,
                                  edge_u=np.asarray(u), edge_v=np.asarray(v), edge_geometry=None,
                                  crs=UTM)


def _ring_road_with_spur() -> WalkNetwork:
    # A 400 m square of streets (a node every 100 m) and a dead end from (200, 400) to (200, 100).
    side = [(0, 0), (100, 0), (200, 0), (300, 0), (400, 0), (400, 100), (400, 200), (400, 300),
            (400, 400), (300, 400), (200, 400), (100, 400), (0, 400), (0, 300), (0, 200),
            (0, 100)]
    x = [p[0] for p in side] + [200, 200]
    y = [p[1] for p in side] + [250, 100]
    n = len(side)
    u = [*range(n), 10, 16]
    v = [*[(i + 1) % n for i in range(n)], 16, 17]
    return _net(x, y, u, v)


def test_an_unreached_block_inside_stays_a_hole():
    net = _ring_road_with_spur()
    fac = Anchors.at_nodes(net, [0])
    profile = get_profile("deyang")
    # 800 m reaches the whole square (its far corner is 800 m away) and the spur down to y = 200.
    bands = distance_bands(net, fac, minutes=[800 / profile.metres_per_minute], profile=profile,
                           buffer_metres=30)
    area = bands.geometry[0]
    assert shapely.is_valid(area)
    assert sum(len(p.interiors) for p in shapely.get_parts(area)) == 1
    for x, y in ((100, 100), (300, 300), (200, 150), (200, 169), (31, 200)):
        assert not shapely.covers(area, shapely.Point(x, y)), (x, y)
    for x, y in ((200, 215), (200, 171), (171, 300), (29, 200), (0, -29)):
        assert shapely.covers(area, shapely.Point(x, y)), (x, y)
    old = _old_areas(net, fac, [800.0], 30.0)[0]
    assert _rel(area, old) <= REL


def test_rings_of_a_hole_that_fills_up():
    net = _ring_road_with_spur()
    fac = Anchors.at_nodes(net, [0])
    profile = get_profile("deyang")
    minutes = np.array([300, 600, 800, 900]) / profile.metres_per_minute
    bands = distance_bands(net, fac, minutes=minutes, profile=profile, buffer_metres=30)
    old = _old_rings(_old_areas(net, fac, minutes * profile.metres_per_minute, 30.0))
    for new, ref in zip(bands.geometry, old, strict=True):
        assert shapely.is_valid(new)
        assert _rel(new, ref) <= REL
    # The spur's last stretch is reached between 800 and 900 m: it cuts into the hole.
    assert shapely.covers(bands.geometry[3], shapely.Point(200, 150))


def test_a_walk_across_a_street_is_noded_as_before():
    # A 3 x 3 grid; a facility at (50, 150) attached to the street y = 0 (its walk crosses the
    # street y = 100): the blocks then come from noding, not from the network's faces.
    xs, ys = np.meshgrid([0.0, 100.0, 200.0], [0.0, 100.0, 200.0], indexing="ij")
    idx = np.arange(9).reshape(3, 3)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    net = _net(xs.ravel(), ys.ravel(), u, v)
    edge = int(np.flatnonzero((net.y[net.edge_u] == 0) & (net.y[net.edge_v] == 0)
                              & (np.minimum(net.x[net.edge_u], net.x[net.edge_v]) == 0))[0])
    fac = Anchors(edge=[edge], along_m=[50.0], offset_m=[150.0], x=[50.0], y=[150.0])
    profile = get_profile("deyang")
    bands = distance_bands(net, fac, minutes=[4, 6], profile=profile, buffer_metres=10)
    old = _old_rings(_old_areas(net, fac, np.array([4, 6]) * profile.metres_per_minute, 10.0))
    for new, ref in zip(bands.geometry, old, strict=True):
        assert shapely.is_valid(new)
        assert _rel(new, ref) <= REL


@pytest.mark.parametrize("limit", [0.0, 1e-9])
def test_nothing_reached_is_an_empty_area(limit):
    net = _ring_road_with_spur()
    fac = Anchors.at_nodes(net, [0])
    layers = tier_isochrones(net, fac.subset(np.array([False])), np.array([], dtype=object),
                             get_profile("deyang"), per_facility=False)
    assert all(layer.geometry[0].is_empty for layer in layers.values())
    bands = distance_bands(net, fac, minutes=[limit + 1e-6], profile="deyang", buffer_metres=5)
    assert bands.geometry[0].area == pytest.approx(np.pi * 25, rel=0.05)


def _grid_of_squares(step: float, size: float, n: int, *, hole: float = 0.0) -> shapely.Geometry:
    """``n`` x ``n`` disjoint squares (each with a square hole when ``hole`` > 0)."""
    polys = []
    for i in range(n):
        for j in range(n):
            x, y = i * step, j * step
            shell = [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
            c = size / 2
            holes = [[(x + c - hole, y + c - hole), (x + c + hole, y + c - hole),
                      (x + c + hole, y + c + hole), (x + c - hole, y + c + hole)]] if hole else []
            polys.append(shapely.Polygon(shell, holes))
    return shapely.MultiPolygon(polys)


def test_parts_difference_equals_one_overlay_on_a_hand_made_case():
    from circles.engine.area_rings import parts_difference

    a = _grid_of_squares(100.0, 80.0, 6, hole=10.0)  # 6 x 6 squares of 80 m, holes of 20 m
    b = shapely.MultiPolygon(shapely.get_parts(shapely.buffer(
        shapely.points([(40, 40), (250, 250), (500, 90)]), 60.0)))  # three discs of 60 m
    got = parts_difference(a, b)
    assert shapely.is_valid(got)
    want = shapely.difference(a, b)
    assert _rel(got, want) <= 1e-12
    # By hand: the discs' areas inside the squares less the holes' parts they cover.
    assert shapely.area(got) == pytest.approx(shapely.area(a) - shapely.area(shapely.intersection(a, b)))
    # An untouched part comes back as it was; nothing from b alone appears.
    assert shapely.area(shapely.difference(got, a)) == 0
    assert parts_difference(a, shapely.MultiPolygon()).equals(a)
    assert shapely.is_empty(parts_difference(a, shapely.buffer(a, 1.0)))


def test_parts_difference_equals_one_overlay_on_a_city_area(chengdu_net):
    """The 10-minute area less the 5-minute one, part by part and as one shapely overlay."""
    from circles.engine.area_rings import area_polygon, parts_difference
    from circles.engine.street_areas import dissolved_parts

    profile = get_profile("deyang")
    fac = _snapped(chengdu_net, 20, seed=33)
    limits = np.array([5, 10]) * profile.metres_per_minute
    dist, _ = nearest(chengdu_net, fac, limit_metres=float(limits[-1]))
    small, big = (area_polygon(p) for p in dissolved_parts(
        chengdu_net, dist, limits, fac, buffer_metres=profile.street_buffer_metres))
    assert shapely.get_num_geometries(big) > 1  # parts to go through one by one
    got = parts_difference(big, small)
    assert shapely.is_valid(got)
    assert _rel(got, shapely.difference(big, small)) <= REL


def test_in_halves_equals_one_call():
    from circles.engine.geos_threads import in_halves

    rng = np.random.default_rng(5)
    for n in (10, 5001):
        pts = shapely.points(rng.uniform(0, 1000, (n, 2)))
        discs = shapely.buffer(pts, 20.0)
        got = in_halves(shapely.difference, discs, shapely.buffer(pts, 5.0))
        assert len(got) == n
        assert shapely.equals_exact(got, shapely.difference(discs, shapely.buffer(pts, 5.0)), 0.0).all()
        assert shapely.equals_exact(in_halves(shapely.buffer, pts, distance=3.0, quad_segs=2),
                                    shapely.buffer(pts, 3.0, quad_segs=2), 0.0).all()


def test_packed_faces_give_back_the_same_polygons():
    """The street faces are kept as one coordinate array: any subset comes back with the same
    coordinates, holes and order as the polygons walked (a face with a hole, empties, masks)."""
    from circles.engine.face_walk import walked_faces
    from circles.engine.packed_polygons import PackedPolygons
    from circles.engine.street_faces import street_faces

    net = make_city(4_000, seed=12)
    faces = street_faces(net)
    walked, _, _ = walked_faces(faces.links)
    assert len(faces.faces) == faces.n_faces == len(walked)
    assert shapely.equals_exact(faces.faces.all(), walked, 0.0).all()
    pick = np.random.default_rng(2).choice(len(walked), 50, replace=False)
    assert shapely.equals_exact(faces.faces[pick], walked[pick], 0.0).all()
    holed = shapely.Polygon([(0, 0), (9, 0), (9, 9), (0, 9)], [[(2, 2), (3, 2), (3, 3)], [(5, 5), (6, 5), (6, 6)]])
    polys = np.array([shapely.box(0, 0, 1, 1), shapely.Polygon(), holed], dtype=object)
    packed = PackedPolygons(polys)
    assert shapely.equals_exact(packed[np.array([False, True, True])], polys[1:], 0.0).all()
    assert shapely.get_num_interior_rings(packed[[2]])[0] == 2
    assert len(packed[[]]) == 0
    assert len(PackedPolygons(np.array([], dtype=object)).all()) == 0
    # Block cores: a face shrunk may split in parts or vanish; each comes back as it was given.
    cores = np.array([shapely.box(0, 0, 1, 1), shapely.MultiPolygon([shapely.box(20, 20, 21, 21), holed]),
                      shapely.Polygon(), holed, shapely.MultiPolygon()], dtype=object)
    packed = PackedPolygons(cores)
    assert shapely.equals_exact(packed.all(), cores, 0.0).all()
    np.testing.assert_array_equal(shapely.get_type_id(packed.all()), shapely.get_type_id(cores))
    assert shapely.equals_exact(packed[np.array([4, 1, 2])], cores[[4, 1, 2]], 0.0).all()


def test_block_cores_made_in_chunks_equal_one_buffer_of_every_face(monkeypatch):
    """The cores are shrunk a chunk of faces at a time: at any chunk size (one that leaves a short
    last chunk here) they equal GEOS's buffer of all the faces at once, in order, the blocks that
    vanish or split among them."""
    from circles.engine import street_faces as faces_module

    faces = faces_module.street_faces(make_city(4_000, seed=12))
    want = shapely.buffer(faces.faces.all(), -25.0, quad_segs=4)
    monkeypatch.setattr(faces_module, "_CORE_CHUNK", 97)
    assert faces.n_faces % 97
    assert faces.n_faces > 3 * 97
    got = faces.cores(25.0).all()
    assert len(got) == faces.n_faces
    assert shapely.equals_exact(got, want, 0.0).all()
    assert shapely.is_empty(got).any()
    assert not shapely.is_empty(got).all()
    assert (shapely.get_type_id(got) == 6).any()  # and some split in parts


def test_packed_polygons_taken_joined_and_compared_as_shapely_would():
    """Subsets and joins stay packed; shells, first points and ring counts are shapely's; two
    items are ``same`` exactly when ``shapely.equals_exact`` with no tolerance says so."""
    from circles.engine.packed_polygons import PackedPolygons

    rng = np.random.default_rng(8)
    pts = shapely.points(rng.uniform(0, 1000, (300, 2)))
    polys = shapely.buffer(pts, rng.uniform(1, 30, 300), quad_segs=2)  # most have 9 points
    polys[5] = shapely.difference(polys[5], shapely.buffer(pts[5], 0.5))
    polys[7] = shapely.Polygon()
    polys[9] = shapely.union_all(polys[10:20])
    polys[11] = shapely.Polygon(shapely.get_coordinates(polys[12])[::-1])  # same points, other order
    packed = PackedPolygons(polys)
    assert shapely.equals_exact(packed.take(np.arange(0, 300, 3)).all(), polys[::3], 0.0).all()
    joined = PackedPolygons.concat([packed.take(slice(0, 100)), packed.take(slice(100, None))])
    assert shapely.equals_exact(joined.all(), polys, 0.0).all()
    np.testing.assert_array_equal(packed.ring_counts(), _rings_counted(polys))
    i, j = rng.integers(0, 300, 3000), rng.integers(0, 300, 3000)
    j[:600] = i[:600]
    j[600:620], i[600:620] = 11, 12
    np.testing.assert_array_equal(packed.same(i, joined, j), shapely.equals_exact(polys[i], polys[j], 0.0))
    plain = np.flatnonzero((shapely.get_type_id(polys) == 3) & ~shapely.is_empty(polys))
    shells = shapely.get_exterior_ring(polys[plain])
    assert shapely.equals_exact(packed.exterior_rings(plain), shells, 0.0).all()
    np.testing.assert_array_equal(packed.first_points(plain),
                                  shapely.get_coordinates(shapely.get_point(shells, 0)))


def _rings_counted(polys: np.ndarray) -> np.ndarray:
    parts, index = shapely.get_parts(polys, return_index=True)
    rings = np.where(shapely.is_empty(parts), 0, 1 + shapely.get_num_interior_rings(parts))
    return np.bincount(index, weights=rings,
                       minlength=len(polys)).astype(int)


def test_packed_lines_give_back_the_same_lines_and_bounds():
    """The noded links are kept packed: subsets come back with the same coordinates in the same
    order, and their bounds equal GEOS's."""
    from circles.engine.packed_polygons import PackedLines

    lines = np.array([shapely.LineString([(0, 0), (3, 4)]), shapely.LineString([(5, 1), (2, 7), (-1, 2)]),
                      shapely.LineString([(9, 9), (8, 8)])], dtype=object)
    packed = PackedLines(lines)
    assert len(packed) == 3
    assert shapely.equals_exact(packed.all(), lines, 0.0).all()
    assert shapely.equals_exact(packed[np.array([2, 0])], lines[[2, 0]], 0.0).all()
    assert shapely.equals_exact(packed[np.array([False, True, False])], lines[1:2], 0.0).all()
    np.testing.assert_array_equal(packed.bounds(), shapely.bounds(lines))
    coords, line = packed.coordinates()
    want_coords, want_line = shapely.get_coordinates(lines, return_index=True)
    np.testing.assert_array_equal(coords, want_coords)
    np.testing.assert_array_equal(line, want_line)
    assert len(packed[[]]) == 0
    assert len(PackedLines(np.array([], dtype=object)).bounds()) == 0


def test_region_and_extra_polygons_unioned_group_by_group_as_one_overlay():
    """A polygon bridging two parts, one crossing a part's edge, one apart, one inside: the
    grouped overlays give shapely's one union, as a valid multipolygon."""
    from circles.engine.street_areas import _union_disjoint

    region = shapely.MultiPolygon([shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10),
                                   shapely.box(50, 0, 60, 10), shapely.box(80, 0, 90, 10)])
    extra = np.array([shapely.box(8, 4, 22, 6), shapely.box(58, 8, 62, 12),
                      shapely.box(100, 0, 101, 1), shapely.box(82, 2, 84, 4)], dtype=object)
    got = _union_disjoint(region, extra)
    assert shapely.is_valid(got)
    assert _rel(got, shapely.union(region, shapely.multipolygons(extra))) <= 1e-12
    assert shapely.get_num_geometries(got) == 4  # the bridged pair is one part now
