from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pyproj
import pytest
from scipy.sparse import csgraph

from circles.engine.network import WalkNetwork
from circles.engine.routing import (
    ZERO_METRES,
    Anchors,
    anchor_status,
    coverage_matrix,
    nearest,
    nearest_by_tier,
    reach,
)
from circles.engine.synthetic import make_city, random_points
from circles.errors import DataError

UTM = pyproj.CRS.from_epsg(32648)


def _nx_graph(net: WalkNetwork) -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(range(net.n_nodes))
    for u, v, length in zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_length.tolist(),
                            strict=True):
        if not g.has_edge(u, v) or g[u][v]["weight"] > length:
            g.add_edge(u, v, weight=length)
    return g


def _subdivided(net: WalkNetwork, anchors: list[tuple[str, Anchors]]) -> nx.DiGraph:
    """The network as a networkx graph with a node at every anchor's point on its edge, and a
    node per anchor joined to it by its off-network walk: an independent model of the exact
    distances (sources walk onto the network, targets walk off it)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(net.n_nodes))
    stops: dict[int, list[tuple[float, object]]] = {}
    for kind, a in anchors:
        for i in np.flatnonzero(a.ok):
            stops.setdefault(int(a.edge[i]), []).append((float(a.along_m[i]), (kind, int(i), "on")))
            if kind == "s":
                g.add_edge((kind, int(i)), (kind, int(i), "on"), weight=float(a.offset_m[i]))
            else:
                g.add_edge((kind, int(i), "on"), (kind, int(i)), weight=float(a.offset_m[i]))
    for e in range(net.n_edges):
        u, v, length = int(net.edge_u[e]), int(net.edge_v[e]), float(net.edge_length[e])
        chain = [(0.0, u), *sorted(stops.get(e, []), key=lambda s: s[0]), (length, v)]
        for (t0, a), (t1, b) in itertools.pairwise(chain):
            w = max(t1 - t0, 0.0)
            for x, y in ((a, b), (b, a)):
                if not g.has_edge(x, y) or g[x][y]["weight"] > w:
                    g.add_edge(x, y, weight=w)
    return g


def _edge_anchors(net: WalkNetwork, n: int, seed: int, share_edges: np.ndarray | None = None
                  ) -> Anchors:
    rng = np.random.default_rng(seed)
    edge = rng.integers(0, net.n_edges, n)
    if share_edges is not None:  # put some on the same edges as another set
        k = min(len(share_edges), n // 3)
        edge[:k] = share_edges[:k]
    along = rng.uniform(0, 1, n) * net.edge_length[edge]
    along[::7] = 0.0  # exactly on a node
    return Anchors(edge=edge, along_m=along, offset_m=rng.uniform(0, 40, n))


@pytest.fixture(scope="module")
def small_city() -> WalkNetwork:
    return make_city(900, seed=5)


def test_nearest_from_nodes_equals_networkx_multisource_on_chengdu(chengdu_net):
    net = chengdu_net
    rng = np.random.default_rng(1)
    nodes = rng.choice(net.n_nodes, 40, replace=False)
    metres, which = nearest(net, Anchors.at_nodes(net, nodes), limit_metres=1125)
    ref = nx.multi_source_dijkstra_path_length(_nx_graph(net), set(nodes.tolist()), cutoff=1125)
    expect = np.full(net.n_nodes, np.inf)
    expect[list(ref)] = list(ref.values())
    assert np.array_equal(np.isfinite(metres), np.isfinite(expect))
    hit = np.isfinite(expect)
    assert np.abs(metres[hit] - expect[hit]).max() / 75 < 1e-6
    assert (which[~hit] == -1).all()
    assert (metres[nodes] == 0).all()
    assert (nodes[which[nodes]] == nodes).all()


def test_nearest_with_edge_anchors_matches_subdivided_networkx(small_city):
    net = small_city
    src = _edge_anchors(net, 25, seed=2)
    tgt = _edge_anchors(net, 300, seed=3, share_edges=src.edge)
    tgt.edge[-3:] = -1  # not snapped: reported as inf, never dropped
    g = _subdivided(net, [("s", src), ("t", tgt)])
    ref = nx.multi_source_dijkstra_path_length(g, {("s", i) for i in range(len(src))}, cutoff=900)

    metres, which = nearest(net, src, limit_metres=900, targets=tgt)
    expect = np.array([ref.get(("t", i), np.inf) for i in range(len(tgt))])
    assert np.array_equal(np.isfinite(metres), np.isfinite(expect))
    hit = np.isfinite(expect)
    np.testing.assert_allclose(metres[hit], expect[hit], atol=1e-6)
    assert np.isinf(metres[-3:]).all()
    assert (which[-3:] == -1).all()
    # The source it names is at exactly that distance.
    for i in np.flatnonzero(hit)[:40]:
        one, _ = nearest(net, src.subset([which[i]]), limit_metres=None, targets=tgt.subset([i]))
        assert one[0] == pytest.approx(metres[i], abs=1e-6)
    # Per node, the same model without targets.
    node_m, _ = nearest(net, src, limit_metres=900)
    expect_nodes = np.array([ref.get(i, np.inf) for i in range(net.n_nodes)])
    fin = np.isfinite(expect_nodes)
    assert np.array_equal(np.isfinite(node_m), fin)
    np.testing.assert_allclose(node_m[fin], expect_nodes[fin], atol=1e-6)


def test_nearest_pass_is_scipys_bounded_multisource_dijkstra(small_city):
    net = small_city
    nodes = np.arange(0, net.n_nodes, 37)
    ours, _ = nearest(net, Anchors.at_nodes(net, nodes), limit_metres=400)
    floor = csgraph.dijkstra(net.graph, indices=nodes, min_only=True, limit=400)
    np.testing.assert_array_equal(ours, floor)


def test_same_edge_source_and_target_walk_straight_along_it():
    # One 1 km street: a detour through either end is far longer than the walk along it.
    net = WalkNetwork.from_lines(x=np.array([0.0, 1000.0]), y=np.zeros(2), node_id=None,
                                 edge_u=np.array([0]), edge_v=np.array([1]), edge_geometry=None,
                                 crs=UTM)
    src = Anchors(edge=[0, 0], along_m=[400.0, 900.0], offset_m=[5.0, 0.0])
    tgt = Anchors(edge=[0, 0, 0], along_m=[450.0, 100.0, 700.0], offset_m=[2.0, 0.0, 0.0])
    metres, which = nearest(net, src, limit_metres=None, targets=tgt)
    np.testing.assert_allclose(metres, [5 + 50 + 2, 5 + 300, 200])
    np.testing.assert_array_equal(which, [0, 0, 1])
    bounded, which_b = nearest(net, src, limit_metres=100, targets=tgt)
    assert bounded[0] == pytest.approx(57)
    assert np.isinf(bounded[1])
    assert which_b[1] == -1


def test_reach_rows_are_each_sources_own_distances(chengdu_net):
    net = chengdu_net
    x, y = random_points(net, 60, seed=4)
    src = Anchors.from_points(net, x, y, max_metres=300)
    src.edge[5] = -1
    m = reach(net, src, limit_metres=750)
    assert m.shape == (60, net.n_nodes)
    assert m.getrow(5).nnz == 0
    for i in (0, 1, 17, 33, 59):
        one, _ = nearest(net, src.subset([i]), limit_metres=750)
        row = m.getrow(i).toarray().ravel()
        hit = np.isfinite(one)
        assert set(np.flatnonzero(row)) == set(np.flatnonzero(hit))
        np.testing.assert_allclose(row[hit], np.maximum(one[hit], ZERO_METRES), atol=1e-9)
    # Overlapping sources are kept apart: the column minimum is the multi-source pass.
    dense = m.toarray()
    dense[dense == 0] = np.inf
    multi, _ = nearest(net, src, limit_metres=750)
    np.testing.assert_allclose(np.where(np.isfinite(multi), multi, -1),
                               np.where(np.isfinite(dense.min(0)), dense.min(0), -1), atol=1e-9)


def test_reach_keeps_zero_distances():
    net = make_city(100, seed=1)
    m = reach(net, Anchors.at_nodes(net, [3]), limit_metres=50)
    assert m[0, 3] == ZERO_METRES
    assert m.astype(bool)[0, 3]


def test_coverage_matrix_matches_per_candidate_distances(small_city):
    net = small_city
    cand = _edge_anchors(net, 30, seed=6)
    cand.edge[4] = -1
    demand = _edge_anchors(net, 500, seed=7, share_edges=cand.edge)
    demand.edge[10] = -1
    cov = coverage_matrix(net, cand, demand, limit_metres=400, dtype=np.float64)
    assert cov.shape == (30, 500)
    assert cov.getrow(4).nnz == 0
    assert cov.getcol(10).nnz == 0
    for i in range(30):
        one, _ = nearest(net, cand.subset([i]), limit_metres=400, targets=demand)
        row = cov.getrow(i).toarray().ravel()
        hit = np.isfinite(one)
        assert set(np.flatnonzero(row)) == set(np.flatnonzero(hit)), i
        np.testing.assert_allclose(row[hit], np.maximum(one[hit], ZERO_METRES), atol=1e-6)
    as_bool = coverage_matrix(net, cand, demand, limit_metres=400, dtype=bool)
    assert as_bool.dtype == bool
    assert (as_bool != cov.astype(bool)).nnz == 0


def test_island_facility_reaches_only_its_island_and_is_reported():
    # Two separate 3x3 grids 5 km apart; keep both.
    xs, ys = np.meshgrid(np.arange(3) * 100.0, np.arange(3) * 100.0, indexing="ij")
    x = np.concatenate([xs.ravel(), xs.ravel() + 5000])
    y = np.concatenate([ys.ravel(), ys.ravel()])
    idx = np.arange(9).reshape(3, 3)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    island_u, island_v = u[:5] + 9, v[:5] + 9  # the island is smaller: part of a grid
    net = WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=np.concatenate([u, island_u]),
                                 edge_v=np.concatenate([v, island_v]), edge_geometry=None, crs=UTM,
                                 keep_largest=False)
    fac = Anchors.from_points(net, np.array([100.0, 5100.0, 90_000.0]),
                              np.array([100.0, 50.0, 0.0]), max_metres=300)
    status = anchor_status(net, fac)
    assert list(status) == ["ok", "island", "not_snapped"]
    m = reach(net, fac, limit_metres=10_000).tocsr()
    island_nodes = set(np.flatnonzero(net.x > 2500))
    assert set(m.getrow(1).indices) <= island_nodes
    assert m.getrow(1).nnz > 0
    assert not set(m.getrow(0).indices) & island_nodes
    assert m.getrow(2).nnz == 0
    metres, which = nearest(net, fac.subset([1]), limit_metres=None)
    assert np.isinf(metres[net.x < 2500]).all()
    assert (which[net.x < 2500] == -1).all()


def test_anchor_constructors_and_bad_input(chengdu_net):
    net = chengdu_net
    a = Anchors.at_nodes(net, [0, 10, 20])
    e = a.edge
    ends = np.where(a.along_m == 0, net.edge_u[e], net.edge_v[e])
    np.testing.assert_array_equal(ends, [0, 10, 20])
    assert len(a) == 3
    assert a.ok.all()
    assert len(a.subset(np.array([True, False, True]))) == 2
    far = Anchors.from_points(net, np.array([net.x[0], net.x[0] + 50_000]),
                              np.array([net.y[0], net.y[0]]), max_metres=300)
    assert list(far.ok) == [True, False]
    with pytest.raises(DataError, match="differ in length"):
        Anchors(edge=[0, 1], along_m=[0.0], offset_m=[0.0, 0.0])
    with pytest.raises(DataError, match="outside the network") as err:
        nearest(net, Anchors(edge=[net.n_edges + 5], along_m=[0.0], offset_m=[0.0]),
                limit_metres=100)
    assert err.value.field == "edge"
    with pytest.raises(DataError, match="snap table lacks"):
        Anchors.from_snap(net.snap(net.x[:2], net.y[:2]).drop(columns=["along_m"]))


def test_no_usable_source_gives_inf_not_an_error(small_city):
    none = Anchors(edge=[-1], along_m=[np.nan], offset_m=[np.inf])
    metres, which = nearest(small_city, none, limit_metres=500)
    assert np.isinf(metres).all()
    assert (which == -1).all()
    assert reach(small_city, none, limit_metres=500).nnz == 0


def test_nearest_by_tier_nests_and_matches_networkx(chengdu_net):
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    net = chengdu_net
    x, y = random_points(net, 60, seed=8)
    fac = Anchors.from_points(net, x, y, max_metres=profile.snap_cap_metres)
    codes = [t.code for t in profile.tiers]
    tiers = np.array(codes)[np.random.default_rng(9).integers(0, len(codes), 60)]
    table = nearest_by_tier(net, fac, tiers, profile)
    assert len(table) == net.n_nodes
    g = _subdivided(net, [("s", fac)])
    for tier in profile.tiers:
        eligible = np.isin(tiers, list(profile.eligible(tier.code)))
        limit = profile.threshold_metres(tier.code)
        ref = nx.multi_source_dijkstra_path_length(
            g, {("s", int(i)) for i in np.flatnonzero(eligible)}, cutoff=limit)
        expect = np.array([ref.get(i, np.inf) for i in range(net.n_nodes)]) / profile.metres_per_minute
        got = table[f"{tier.code}_minutes"].to_numpy()
        assert np.array_equal(np.isfinite(got), np.isfinite(expect))
        fin = np.isfinite(expect)
        assert np.abs(got[fin] - expect[fin]).max() < 1e-6
        named = table[f"{tier.code}_facility"].to_numpy()
        assert eligible[named[fin]].all()
        assert (named[~fin] == -1).all()
