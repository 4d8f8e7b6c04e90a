"""Per-facility areas from the network's faces (``circles.engine.facility_areas``) against the
previous way of drawing them.

The oracle is the previous implementation, kept as a separate computation:
``facility_isochrones(..., by_faces=False)`` nodes, polygonizes and buffers each facility's own
reached streets. The faces' labelling is also checked against labelling the whole network once
per facility (``street_faces.face_components``).
"""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from circles.engine import facility_areas
from circles.engine.anchors import Anchors
from circles.engine.isochrones import facility_isochrones
from circles.engine.network import WalkNetwork
from circles.engine.routing import reach
from circles.engine.street_faces import (
    face_components,
    link_stretches,
    street_faces,
    whole_link_keys,
)
from circles.engine.street_pieces import ReachedNodes, reached_pieces, source_walks
from circles.engine.synthetic import make_city, random_points

UTM = pyproj.CRS.from_epsg(32648)
LIMITS = [375.0, 750.0, 1125.0]


def _net(x, y, u, v, **kw) -> WalkNetwork:
    return WalkNetwork.from_lines(x=np.asarray(x, float), y=np.asarray(y, float), node_id=None,
                                  edge_u=np.asarray(u), edge_v=np.asarray(v), edge_geometry=None,
                                  crs=UTM, **kw)


def _grid(n: int, step: float = 100.0, *, x0: float = 0.0, y0: float = 0.0):
    xs, ys = np.meshgrid(x0 + np.arange(n) * step, y0 + np.arange(n) * step, indexing="ij")
    idx = np.arange(n * n).reshape(n, n)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    return xs.ravel(), ys.ravel(), u, v


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric difference over the old area (the difference itself where that is empty)."""
    diff = shapely.area(shapely.symmetric_difference(a, b))
    area = shapely.area(b)
    return np.where(area > 0, diff / np.maximum(area, 1e-12), diff)


def _both(net, fac, limits, buffer: float = 30.0):
    street_faces(net)  # the faces are built, so the new path is taken
    new = facility_isochrones(net, fac, limit_metres=limits, buffer_metres=buffer)
    old = facility_isochrones(net, fac, limit_metres=limits, buffer_metres=buffer, by_faces=False)
    assert list(new["status"]) == list(old["status"])
    return new.geometry.to_numpy(), old.geometry.to_numpy()


def _check(net, fac, limits, *, rel: float, buffer: float = 30.0) -> np.ndarray:
    new, old = _both(net, fac, limits, buffer)
    assert shapely.is_valid(new).all()
    assert (shapely.is_empty(new) == shapely.is_empty(old)).all()
    assert _rel(new, old).max() <= rel
    # Each facility's smaller limits lie inside its larger ones.
    geo = new.reshape(len(fac), len(np.atleast_1d(limits)))
    for j in range(1, geo.shape[1]):
        outside = shapely.area(shapely.difference(geo[:, j - 1], geo[:, j]))
        assert (outside <= 1e-6 * np.maximum(shapely.area(geo[:, j - 1]), 1e-9)).all()
    return new


def _walks(net, fac, limit: float) -> tuple[np.ndarray, np.ndarray]:
    return source_walks(net, fac, np.full(len(fac), limit))


def test_synthetic_city_areas_equal_the_old_way():
    net = make_city(8_000, seed=3)
    x, y = random_points(net, 40, seed=4)
    fac = Anchors.from_points(net, x, y, max_metres=300)
    rows, walks = _walks(net, fac, LIMITS[-1])
    assert len(walks) > 30
    assert facility_areas.walks_fit(street_faces(net), rows, walks, len(fac)).all()
    _check(net, fac, LIMITS, rel=1e-6)


def test_chengdu_areas_equal_the_old_way(chengdu_net):
    x, y = random_points(chengdu_net, 40, seed=41)
    fac = Anchors.from_points(chengdu_net, x, y, max_metres=300)
    _check(chengdu_net, fac, LIMITS, rel=1e-5)


def test_the_box_of_whole_streets_labels_blocks_as_the_whole_network_does():
    net = make_city(5_000, seed=5)
    faces = street_faces(net)
    x, y = random_points(net, 12, seed=6)
    fac = Anchors.from_points(net, x, y, max_metres=300)
    limit = 900.0
    dist = reach(net, fac, limit_metres=limit).tocoo()
    pieces = reached_pieces(net, ReachedNodes(dist.row, dist.col, dist.data),
                            np.full(len(fac), limit), np.arange(len(fac)), fac)
    st = link_stretches(faces, pieces.origin, pieces.edge, pieces.t0, pieces.t1)
    whole = whole_link_keys(faces, st)
    lab = facility_areas._Labels(faces, facility_areas._index(net, faces), whole, len(fac))
    inside = lab.key[lab.inside]
    n_links = len(faces.links)
    for g in range(len(fac)):
        cut = np.zeros(n_links, dtype=bool)
        cut[whole[whole // n_links == g] % n_links] = True
        labels, outside = face_components(faces, cut)
        expected = np.flatnonzero(labels[:faces.n_faces] != outside)
        assert len(expected) > 0
        np.testing.assert_array_equal(inside[inside // faces.n_faces == g] % faces.n_faces,
                                      expected)


def test_an_unreached_block_stays_a_hole_and_partial_edges_are_cut():
    x, y, u, v = _grid(4)
    net = _net(x, y, u, v)
    fac = Anchors.at_nodes(net, [0])
    new = _check(net, fac, [150.0, 450.0, 600.0], rel=1e-9)
    # 450 m reaches a street whole when its nearer end is at most 300 m away (the two ends'
    # reaches meet): the six blocks whose corners are at most 300 m + one street away; their
    # centres, 50 m from every street, stay out, and the streets beyond are cut.
    assert sum(len(p.interiors) for p in shapely.get_parts(new[1])) == 6
    assert not shapely.covers(new[1], shapely.Point(50, 50))
    assert shapely.covers(new[1], shapely.Point(250, 100))
    assert not shapely.covers(new[1], shapely.Point(300, 300))  # 600 m away
    assert shapely.covers(new[2], shapely.Point(300, 300))


def test_a_courtyard_path_inside_an_enclosed_block():
    # A 3 x 3 block grid with a separate loop of paths in the middle block: its faces belong to
    # the block once the block's streets are reached whole.
    x, y, u, v = _grid(4, 150.0)
    cx, cy, _, _ = _grid(2, 40.0, x0=205.0, y0=205.0)
    ring_u, ring_v = np.array([0, 1, 3, 2]), np.array([1, 3, 2, 0])
    net = _net(np.concatenate([x, cx]), np.concatenate([y, cy]),
               np.concatenate([u, 16 + ring_u]), np.concatenate([v, 16 + ring_v]),
               keep_largest=False)
    fac = Anchors.at_nodes(net, [0])
    new = _check(net, fac, [500.0, 900.0], rel=1e-9)
    assert not shapely.covers(new[1], shapely.Point(225, 225))
    assert not shapely.covers(new[1], shapely.Point(190, 265))  # 35 m from the streets


def test_an_island_and_an_unsnapped_facility():
    x, y, u, v = _grid(4)
    net = _net(np.concatenate([x, [2000.0, 2100.0, 2100.0, 2000.0]]),
               np.concatenate([y, [0.0, 0.0, 100.0, 100.0]]),
               np.concatenate([u, [16, 17, 18, 19]]), np.concatenate([v, [17, 18, 19, 16]]),
               keep_largest=False)
    fac = Anchors.from_points(net, np.array([2050.0, 150.0, 9000.0]),
                              np.array([-5.0, 150.0, 0.0]), max_metres=50)
    new = _check(net, fac, [200.0, 5000.0], rel=1e-9, buffer=10.0)
    assert new[0].bounds[0] >= 2000 - 10 - 1e-6
    assert new[1].bounds[0] >= 2000 - 10 - 1e-6  # the whole island, its block a hole
    assert len(new[1].interiors) == 1
    assert new[3].bounds[2] <= 300 + 10 + 1e-6
    assert new[4].is_empty
    assert new[5].is_empty


def test_limits_met_exactly_at_nodes_give_discs():
    # From a node, 100 m ends exactly at the next nodes: their other streets are reached over
    # zero length, drawn as discs.
    x, y, u, v = _grid(3)
    net = _net(x, y, u, v)
    fac = Anchors.at_nodes(net, [4])
    assert len(_walks(net, fac, 100.0)[1]) == 0
    new = _check(net, fac, [100.0, 200.0], rel=1e-9, buffer=10.0)
    assert shapely.covers(new[0], shapely.Point(100, 209))
    assert not shapely.covers(new[1], shapely.Point(50, 50))


def test_a_walk_across_a_street_falls_back_to_noding():
    # A facility at (50, 150) attached to the street y = 0: its walk crosses the street y = 100.
    x, y, u, v = _grid(3)
    net = _net(x, y, u, v)
    edge = int(np.flatnonzero((net.y[net.edge_u] == 0) & (net.y[net.edge_v] == 0)
                              & (np.minimum(net.x[net.edge_u], net.x[net.edge_v]) == 0))[0])
    crossing = Anchors(edge=[edge], along_m=[50.0], offset_m=[150.0], x=[50.0], y=[150.0])
    fit = facility_areas.walks_fit(street_faces(net), np.array([0]), _walks(net, crossing, 900)[1],
                                   1)
    assert not fit[0]
    plain = Anchors.from_points(net, np.array([150.0]), np.array([60.0]), max_metres=50)
    both = Anchors(edge=np.concatenate([crossing.edge, plain.edge]),
                   along_m=np.concatenate([crossing.along_m, plain.along_m]),
                   offset_m=np.concatenate([crossing.offset_m, plain.offset_m]),
                   x=np.concatenate([crossing.x, plain.x]), y=np.concatenate([crossing.y, plain.y]))
    _check(net, both, [300.0, 450.0], rel=1e-9, buffer=10.0)


@pytest.mark.parametrize(("n_pieces", "built"), [(0, False), (10**9, True)])
def test_faces_are_built_only_when_worth_it(n_pieces, built):
    x, y, u, v = _grid(3)
    net = _net(x, y, u, v)
    assert (facility_areas.built_faces(net, n_pieces) is not None) == built
    street_faces(net)
    assert facility_areas.built_faces(net, 0) is not None


def test_a_run_lets_go_of_what_drew_its_areas():
    """isochrone_layers drops the faces, their index and the kept areas; drawn again, the same layers."""
    import pandas as pd

    from circles.engine import isochrones
    from circles.engine.street_faces import faces_built
    from circles.readers.profiles import get_profile
    from circles.runs.pipeline import isochrone_layers

    net = make_city(4_000, seed=9)
    x, y = random_points(net, 9, seed=10)
    anchors = Anchors.from_points(net, x, y, max_metres=300)
    fac = pd.DataFrame({"facility_id": [f"F{i}" for i in range(9)], "tier": ["district", "community", "station"] * 3,
                        "edge": anchors.edge, "along_m": anchors.along_m, "offset_m": anchors.offset_m,
                        "x": anchors.x, "y": anchors.y, "status": "ok"})
    first = isochrone_layers(net, fac, get_profile("deyang"))
    assert not faces_built(net)
    assert net not in isochrones._PARTS
    assert net not in facility_areas._INDEX
    again = isochrone_layers(net, fac, get_profile("deyang"))
    assert first.keys() == again.keys()
    for name in first:
        assert shapely.equals_exact(first[name].geometry.values, again[name].geometry.values, 0.0).all(), name
