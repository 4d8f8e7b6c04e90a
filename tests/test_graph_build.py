"""Graph building (issue 20, target 4): the sort-based cleaning and CSR against separate computations.

The oracle below is the old path written again with other tools: pandas ``duplicated`` for the
exact duplicates, networkx for the components and the shortest paths, shapely for the straight
geometries and their lengths.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from scipy.sparse import csgraph

from circles import NetworkError, WalkNetwork
from circles.engine import network as network_module
from circles.engine.graph_build import MIN_LENGTH_M, csr, line_ends, straight_lengths
from circles.engine.synthetic import make_city

UTM = pyproj.CRS.from_epsg(32648)


def _random_multigraph(n: int, m: int, seed: int, *, islands: int = 3):
    """Nodes on a jittered grid; random short edges, parallels, duplicates, loops and islands."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    x = (np.arange(n) % side) * 50.0 + rng.normal(0, 5, n)
    y = (np.arange(n) // side) * 50.0 + rng.normal(0, 5, n)
    u = rng.integers(0, n, m)
    v = np.clip(u + rng.choice([1, -1, side, -side, side + 1], m), 0, n - 1)
    dup = rng.choice(m, m // 10)  # the same street again, either way round
    loops = rng.choice(n, 5)
    island = np.arange(n - islands * 2, n)  # pairs of nodes joined only to each other
    u = np.concatenate([u, v[dup], loops, island[::2]])
    v = np.concatenate([v, u[dup], loops, island[1::2]])
    return x, y, u, v


def _curved(x, y, u, v, seed: int) -> np.ndarray:
    """Edges with a bent middle (some), drawn in either direction (some)."""
    rng = np.random.default_rng(seed)
    a = np.column_stack([x[u], y[u]])
    b = np.column_stack([x[v], y[v]])
    mid = (a + b) / 2 + rng.normal(0, 4, a.shape) * (rng.random((len(u), 1)) < 0.5)
    lines = shapely.linestrings(np.stack([a, mid, b], axis=1))
    flip = rng.random(len(u)) < 0.5
    lines[flip] = shapely.reverse(lines[flip])
    return lines


def _oracle(x, y, u, v, geom, *, keep_largest: bool):
    """The network the old path built, computed edge by edge with pandas and networkx."""
    if geom is None:
        geom = shapely.linestrings(np.stack([np.column_stack([x[u], y[u]]),
                                             np.column_stack([x[v], y[v]])], axis=1))
    else:  # each line from its u end
        start = shapely.get_coordinates(shapely.get_point(geom, 0))
        end = shapely.get_coordinates(shapely.get_point(geom, -1))
        flip = (np.hypot(*(end - np.column_stack([x[u], y[u]])).T)
                < np.hypot(*(start - np.column_stack([x[u], y[u]])).T))
        geom = np.where(flip, shapely.reverse(geom), geom)
    length = shapely.length(geom)
    pairs = pd.DataFrame({"a": np.minimum(u, v), "b": np.maximum(u, v), "l": np.round(length, 2)})
    kept = np.flatnonzero((u != v) & ~pairs.duplicated().to_numpy())
    g = nx.Graph()
    g.add_edges_from(zip(u[kept].tolist(), v[kept].tolist(), strict=True))
    comps = sorted(nx.connected_components(g), key=lambda c: (-len(c), min(c)))
    nodes = sorted(comps[0]) if keep_largest else sorted(g.nodes)
    inside = np.isin(u[kept], nodes) & np.isin(v[kept], nodes)
    return {"nodes": np.array(nodes), "edges": kept[inside], "length": length[kept[inside]],
            "geom": geom[kept[inside]], "components": len(comps),
            "km_dropped": round(float(length[kept[~inside]].sum()) / 1000, 3)}


@pytest.mark.parametrize("curved", [False, True])
@pytest.mark.parametrize("keep_largest", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_from_lines_equals_the_edge_by_edge_oracle(seed, keep_largest, curved):
    x, y, u, v = _random_multigraph(900, 1400, seed)
    geom = _curved(x, y, u, v, seed) if curved else None
    attrs = pd.DataFrame({"row": np.arange(len(u))})
    net = WalkNetwork.from_lines(x=x, y=y, node_id=np.arange(len(x)) * 7, edge_u=u, edge_v=v,
                                 edge_geometry=geom, crs=UTM, edge_attrs=attrs,
                                 keep_largest=keep_largest)
    want = _oracle(x, y, u, v, geom, keep_largest=keep_largest)
    np.testing.assert_array_equal(net.node_id, want["nodes"] * 7)
    np.testing.assert_array_equal(net.x, x[want["nodes"]])
    np.testing.assert_array_equal(net.edge_attrs["row"], want["edges"])  # which edges, in order
    np.testing.assert_array_equal(net.node_id[net.edge_u], u[want["edges"]] * 7)
    np.testing.assert_array_equal(net.node_id[net.edge_v], v[want["edges"]] * 7)
    np.testing.assert_array_equal(net.edge_length, np.maximum(want["length"], MIN_LENGTH_M))
    assert shapely.equals_exact(net.edge_geometry, want["geom"], tolerance=0).all()
    rep = net.report
    assert rep["components"] == want["components"] > 1
    assert rep["components_dropped"] == (want["components"] - 1 if keep_largest else 0)
    assert rep["km_dropped"] == want["km_dropped"]
    assert rep["duplicate_or_loop_edges_dropped"] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_csr_shortest_lengths_equal_networkx_on_a_random_multigraph(seed):
    x, y, u, v = _random_multigraph(400, 700, seed)
    geom = _curved(x, y, u, v, seed)  # parallel edges of different lengths
    net = WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=u, edge_v=v, edge_geometry=geom,
                                 crs=UTM, keep_largest=False)
    # Every edge read, loops and parallels included; of exact duplicates (same ends, lengths equal
    # to the centimetre) only the first, as the network keeps them.
    length = shapely.length(geom)
    first = ~pd.DataFrame({"a": np.minimum(u, v), "b": np.maximum(u, v),
                           "l": np.round(length, 2)}).duplicated().to_numpy()
    g = nx.MultiGraph()
    g.add_weighted_edges_from(zip(u[first].tolist(), v[first].tolist(), length[first].tolist(),
                                  strict=True))
    ours = csgraph.dijkstra(net.graph, directed=True)
    ids = net.node_id
    for i in range(0, net.n_nodes, 37):
        theirs = nx.single_source_dijkstra_path_length(g, int(ids[i]))
        got = np.full(net.n_nodes, np.inf)
        got[np.searchsorted(ids, list(theirs))] = list(theirs.values())
        np.testing.assert_allclose(ours[i], got, rtol=1e-12, atol=1e-9)
    assert (net.graph != net.graph.T).nnz == 0
    assert net.graph.has_sorted_indices


def test_parallel_edges_keep_the_shortest_never_the_sum():
    # Three streets between nodes 0 and 1, given in both directions and in no order.
    u, v = np.array([1, 0, 0, 1, 0]), np.array([0, 1, 1, 0, 2])
    length = np.array([130.0, 100.0, 170.0, 100.0, 50.0])
    graph = csr(u, v, length, 3).toarray()
    np.testing.assert_array_equal(graph, [[0, 100, 50], [100, 0, 0], [50, 0, 0]])
    # A loop adds one entry on the diagonal, not two.
    looped = csr(np.array([0, 1]), np.array([0, 0]), np.array([7.0, 9.0]), 2).toarray()
    np.testing.assert_array_equal(looped, [[7, 9], [9, 0]])
    # Zero lengths stay edges.
    assert csr(np.array([0]), np.array([1]), np.array([0.0]), 2)[0, 1] == MIN_LENGTH_M


def test_loops_and_exact_duplicates_are_dropped_the_first_kept():
    x, y = np.array([0.0, 100.0, 100.0]), np.array([0.0, 0.0, 100.0])
    straight = shapely.linestrings([[0, 0], [100, 0]])
    detour = shapely.linestrings([[0, 0], [50, 30], [100, 0]])
    loop = shapely.linestrings([[100, 0], [110, 5], [100, 0]])
    up = shapely.linestrings([[100, 0], [100, 100]])
    geom = np.array([straight, detour, straight.reverse(), loop, up, straight], dtype=object)
    net = WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=np.array([0, 0, 1, 1, 1, 0]),
                                 edge_v=np.array([1, 1, 0, 1, 2, 1]), edge_geometry=geom, crs=UTM,
                                 edge_attrs=pd.DataFrame({"row": range(6)}))
    assert net.edge_attrs["row"].tolist() == [0, 1, 4]  # the reversed copy, the loop, the repeat go
    assert net.report["duplicate_or_loop_edges_dropped"] == 3
    assert net.graph[0, 1] == pytest.approx(100.0)


def test_the_largest_component_is_kept_ties_to_the_first():
    # Components {0,1,2} and {3,4,5} tie at three nodes; {6,7} is smaller; node 8 is unused.
    x = np.arange(9) * 10.0
    y = np.zeros(9)
    u, v = np.array([3, 4, 0, 1, 6]), np.array([4, 5, 1, 2, 7])
    net = WalkNetwork.from_lines(x=x, y=y, node_id=np.arange(9) + 100, edge_u=u, edge_v=v,
                                 edge_geometry=None, crs=UTM)
    assert net.node_id.tolist() == [100, 101, 102]
    assert net.report["components"] == 3
    assert net.report["components_dropped"] == 2
    assert net.report["nodes_dropped"] == 5  # the unused node is not counted
    assert net.report["km_dropped"] == pytest.approx(0.03)
    np.testing.assert_array_equal(net.graph.toarray(), [[0, 10, 0], [10, 0, 10], [0, 10, 0]])


def test_lazy_geometries_equal_the_eager_ones_and_snapping_draws_none(monkeypatch):
    calls = []
    drawn = network_module.edge_lines

    def spy(*args):
        calls.append(args[-1] is None)
        return drawn(*args)

    monkeypatch.setattr(network_module, "edge_lines", spy)
    lazy = make_city(3000, seed=4, missing_share=0.2)
    _ = lazy.graph, lazy.km
    assert calls == []  # building, the graph and the lengths need no geometry
    eager = WalkNetwork.from_lines(x=lazy.x, y=lazy.y, node_id=lazy.node_id, edge_u=lazy.edge_u,
                                   edge_v=lazy.edge_v, crs=UTM,
                                   edge_geometry=shapely.linestrings(np.stack(
                                       [np.column_stack([lazy.x[lazy.edge_u], lazy.y[lazy.edge_u]]),
                                        np.column_stack([lazy.x[lazy.edge_v], lazy.y[lazy.edge_v]])],
                                       axis=1)))
    calls.clear()
    pts = np.random.default_rng(0).uniform([lazy.x.min(), lazy.y.min()],
                                           [lazy.x.max(), lazy.y.max()], (500, 2)).T
    pd.testing.assert_frame_equal(lazy.snap(*pts, max_metres=60), eager.snap(*pts, max_metres=60))
    assert calls == []  # straight edges are snapped from their ends: no line is drawn
    assert shapely.equals_exact(lazy.edge_geometry, eager.edge_geometry, 0.0).all()
    assert lazy.edge_geometry is not lazy.edge_geometry  # drawn when asked, none kept
    some = np.array([5, 0, 17])
    assert shapely.equals_exact(lazy.edge_lines(some), eager.edge_lines(some), 0.0).all()
    assert (shapely.to_wkb(lazy.edge_geometry) == shapely.to_wkb(eager.edge_geometry)).all()
    np.testing.assert_array_equal(lazy.edge_length, eager.edge_length)
    assert (lazy.graph != eager.graph).nnz == 0


def test_straight_lengths_equal_shapely_bit_for_bit():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(4e5, 5e5, 20_000), rng.uniform(3.3e6, 3.4e6, 20_000)
    u, v = rng.integers(0, 20_000, (2, 50_000))
    lines = shapely.linestrings(np.stack([np.column_stack([x[u], y[u]]),
                                          np.column_stack([x[v], y[v]])], axis=1))
    np.testing.assert_array_equal(straight_lengths(x, y, u, v), shapely.length(lines))


def test_line_ends_equal_shapely_get_point():
    lines = _curved(*_random_multigraph(200, 300, 3), seed=3)
    odd = np.array([None, shapely.LineString(), shapely.Point(1, 2),
                    shapely.MultiLineString([[(0, 0), (1, 0)], [(5, 5), (6, 6)]]),
                    shapely.LinearRing([(7, 8), (9, 10), (9, 8)])], dtype=object)
    for geom in (lines, np.concatenate([lines, odd])):
        first, last = line_ends(geom)
        for got, at in ((first, 0), (last, -1)):
            point = shapely.get_point(geom, at)
            want = np.column_stack([shapely.get_x(point), shapely.get_y(point)])
            np.testing.assert_array_equal(got, want)  # NaN where get_point gives nothing


def test_attribute_rows_must_match_the_edges():
    with pytest.raises(NetworkError, match="3 attribute rows for 2 edges"):
        WalkNetwork.from_lines(x=np.zeros(3), y=np.arange(3.0), node_id=None, edge_u=np.array([0, 1]),
                               edge_v=np.array([1, 2]), edge_geometry=None, crs=UTM,
                               edge_attrs=pd.DataFrame({"name": ["a", "b", "c"]}))


@pytest.mark.parametrize(("u", "v", "match"), [([0, 3], [1, 2], "node indices"),
                                               ([0, -1], [1, 2], "node indices"),
                                               ([0, 1], [1], "edge ends")])
def test_edge_ends_must_be_node_indices(u, v, match):
    with pytest.raises(NetworkError, match=match):
        WalkNetwork.from_lines(x=np.zeros(3), y=np.arange(3.0), node_id=None, edge_u=np.array(u),
                               edge_v=np.array(v), edge_geometry=None, crs=UTM)
