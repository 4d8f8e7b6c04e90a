"""The nearest-edge search of straight networks against a brute force over every edge."""

import numpy as np
import shapely

from circles.engine.edge_index import EdgeIndex
from circles.engine.synthetic import make_city


def _brute_nearest(lines: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every point's distance to every line (GEOS), the lowest line among the nearest."""
    d = shapely.distance(shapely.points(x, y)[:, None], lines[None, :])
    return d.argmin(axis=1), d.min(axis=1)


def test_nearest_edge_equals_a_brute_force_near_and_far_from_the_streets():
    net = make_city(3_000, seed=7)
    lines = net.edge_geometry
    rng = np.random.default_rng(3)
    lo, hi = np.array([net.x.min(), net.y.min()]), np.array([net.x.max(), net.y.max()])
    # Points in the city, far outside it, and on nodes (several edges equally near).
    x, y = rng.uniform(lo - 2_000, hi + 2_000, (1_500, 2)).T
    x, y = np.r_[x, net.x[:200]], np.r_[y, net.y[:200]]
    index = EdgeIndex(net.x[net.edge_u], net.y[net.edge_u], net.x[net.edge_v], net.y[net.edge_v])
    edge, dist = index.nearest(x, y)
    want_edge, want_dist = _brute_nearest(lines, x, y)
    np.testing.assert_allclose(dist, want_dist, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(edge, want_edge)  # ties: the lowest edge, as argmin
    capped, capped_dist = index.nearest(x, y, max_metres=150.0)
    far = want_dist > 150.0
    assert far.any()
    assert (~far).any()
    assert (capped[far] == -1).all()
    assert np.isinf(capped_dist[far]).all()
    np.testing.assert_array_equal(capped[~far], want_edge[~far])


def test_lines_meeting_edges_equal_a_brute_force():
    net = make_city(2_000, seed=5)
    lines = net.edge_geometry
    rng = np.random.default_rng(1)
    a = rng.uniform([net.x.min(), net.y.min()], [net.x.max(), net.y.max()], (400, 2))
    b = a + rng.normal(0, 60, (400, 2))
    walks = shapely.linestrings(np.stack([a, b], axis=1))
    index = EdgeIndex(net.x[net.edge_u], net.y[net.edge_u], net.x[net.edge_v], net.y[net.edge_v])
    got = np.sort(index.meeting(walks))
    li, _ = np.nonzero(shapely.intersects(walks[:, None], lines[None, :]))
    np.testing.assert_array_equal(got, np.sort(li))
    assert len(np.unique(got)) > 0
    assert len(np.unique(got)) < len(walks)


def test_an_empty_index_finds_nothing():
    none = np.zeros(0)
    edge, dist = EdgeIndex(none, none, none, none).nearest(np.array([1.0]), np.array([2.0]))
    assert edge.tolist() == [-1]
    assert np.isinf(dist).all()
