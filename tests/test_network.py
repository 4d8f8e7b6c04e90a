from __future__ import annotations

import gzip
import shutil

import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely
from scipy.sparse import csgraph

from circles import (
    CirclesError,
    InputFileError,
    NetworkError,
    OfflineError,
    WalkNetwork,
    load_network,
)
from circles.engine.synthetic import make_city

# Hand-written OSM XML: one way per walking-filter rule, all meeting at node 1 so that the kept
# ones form one component.
_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  <node id="1" lat="30.6600" lon="104.0600" version="1"/>
  <node id="2" lat="30.6600" lon="104.0610" version="1"/>
  <node id="3" lat="30.6610" lon="104.0600" version="1"/>
  <node id="4" lat="30.6590" lon="104.0600" version="1"/>
  <node id="5" lat="30.6600" lon="104.0590" version="1"/>
  <node id="6" lat="30.6610" lon="104.0610" version="1"/>
  <node id="7" lat="30.6590" lon="104.0590" version="1"/>
  <node id="8" lat="30.6590" lon="104.0610" version="1"/>
  <node id="9" lat="30.6610" lon="104.0590" version="1"/>
  <way id="101" version="1"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
  <way id="102" version="1"><nd ref="1"/><nd ref="3"/><tag k="highway" v="motorway"/></way>
  <way id="103" version="1"><nd ref="1"/><nd ref="4"/><tag k="highway" v="residential"/><tag k="foot" v="no"/></way>
  <way id="104" version="1"><nd ref="1"/><nd ref="5"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="105" version="1"><nd ref="2"/><nd ref="6"/><tag k="highway" v="trunk"/><tag k="sidewalk" v="both"/></way>
  <way id="106" version="1"><nd ref="5"/><nd ref="7"/><tag k="highway" v="trunk"/></way>
  <way id="107" version="1"><nd ref="2"/><nd ref="8"/><tag k="highway" v="service"/><tag k="access" v="private"/><tag k="foot" v="yes"/></way>
  <way id="108" version="1"><nd ref="1"/><nd ref="9"/><tag k="highway" v="cycleway"/></way>
</osm>
"""


@pytest.fixture(scope="module")
def xml_net(tmp_path_factory):
    path = tmp_path_factory.mktemp("osm") / "rules.osm"
    path.write_text(_XML)
    return load_network(path)


def _kept_ways(net: WalkNetwork) -> set[int]:
    return set(net.edge_attrs["osm_id"].astype(int))


def test_walking_filter_keeps_and_drops_by_rule(xml_net):
    kept = _kept_ways(xml_net)
    assert kept == {101, 105, 107, 108}  # footway, trunk with sidewalk, private but foot=yes, cycleway
    assert xml_net.report["segments_not_walkable"] == 4  # motorway, foot=no, private, bare trunk


def test_osm_gz_and_bz2_read_like_the_xml(tmp_path, xml_net):
    xml = tmp_path / "rules.osm"
    xml.write_text(_XML)
    gz = tmp_path / "rules.osm.gz"
    with open(xml, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    import bz2

    bz = tmp_path / "rules.osm.bz2"
    bz.write_bytes(bz2.compress(xml.read_bytes()))
    for path in (gz, bz):
        net = load_network(path)
        assert _kept_ways(net) == _kept_ways(xml_net)
        assert net.km == pytest.approx(xml_net.km)


def test_chengdu_network_is_projected_connected_and_reported(chengdu_net):
    net = chengdu_net
    assert pyproj.CRS(net.crs).to_epsg() == 32648  # UTM 48N holds Chengdu (104°E)
    assert net.n_nodes > 8000
    assert 700 < net.km < 900
    n_comp, _ = csgraph.connected_components(net.graph, directed=False)
    assert n_comp == 1
    rep = net.report
    assert rep["components_dropped"] == rep["components"] - 1 > 0
    assert rep["nodes_dropped"] > 0
    assert rep["km_dropped"] > 0


def test_csr_keeps_the_shortest_parallel_edge_not_the_sum():
    x = np.array([0.0, 100.0])
    y = np.array([0.0, 0.0])
    straight = shapely.linestrings([[0, 0], [100, 0]])
    detour = shapely.linestrings([[0, 0], [50, 40], [100, 0]])
    net = WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=np.array([0, 0]),
                                 edge_v=np.array([1, 1]), edge_geometry=np.array([detour, straight]),
                                 crs=pyproj.CRS.from_epsg(32648))
    assert net.n_edges == 2  # both geometries kept for isochrones and snapping
    assert net.graph[0, 1] == pytest.approx(100.0)
    assert net.graph[1, 0] == pytest.approx(100.0)


def test_shortest_paths_equal_networkx_on_chengdu(chengdu_net):
    net = chengdu_net
    G = nx.Graph()
    coo = net.graph.tocoo()
    G.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True))
    rng = np.random.default_rng(1)
    for src in rng.integers(0, net.n_nodes, 3):
        ours = csgraph.dijkstra(net.graph, indices=int(src))
        theirs = nx.single_source_dijkstra_path_length(G, int(src))
        nodes = np.fromiter(theirs.keys(), dtype=int)
        vals = np.fromiter(theirs.values(), dtype=float)
        assert len(nodes) == net.n_nodes
        np.testing.assert_allclose(ours[nodes], vals, rtol=0, atol=1e-6)


def test_snap_to_nearest_edge_on_hand_made_geometry():
    # An L-shaped street: (0,0)-(100,0)-(100,100).
    net = WalkNetwork.from_lines(x=np.array([0.0, 100.0, 100.0]), y=np.array([0.0, 0.0, 100.0]),
                                 node_id=None, edge_u=np.array([0, 1]), edge_v=np.array([1, 2]),
                                 edge_geometry=None, crs=pyproj.CRS.from_epsg(32648))
    s = net.snap(np.array([30.0, 120.0, 100.0, 500.0]), np.array([10.0, 60.0, -5.0, 500.0]),
                 max_metres=50)
    e0 = int(np.flatnonzero((net.edge_u == 0) & (net.edge_v == 1))[0])
    e1 = int(np.flatnonzero((net.edge_u == 1) & (net.edge_v == 2))[0])
    assert s["edge"].tolist()[:3] == [e0, e1, e0]
    np.testing.assert_allclose(s["along_m"][:3], [30.0, 60.0, 100.0])
    np.testing.assert_allclose(s["offset_m"][:3], [10.0, 20.0, 5.0])
    assert not s["snapped"][3]
    assert s["edge"][3] == -1
    assert np.isinf(s["offset_m"][3])


def test_save_load_round_trip(tmp_path, chengdu_net):
    path = chengdu_net.save(tmp_path / "net.gpkg")
    back = load_network(path)
    assert back.n_nodes == chengdu_net.n_nodes
    assert back.n_edges == chengdu_net.n_edges
    assert (back.graph != chengdu_net.graph).nnz == 0
    np.testing.assert_array_equal(back.node_id, chengdu_net.node_id)
    assert back.crs == chengdu_net.crs
    assert back.report["components_dropped"] == chengdu_net.report["components_dropped"]
    with pytest.raises(InputFileError, match="GeoPackage"):
        chengdu_net.save(tmp_path / "net.shp")


def test_osmnx_round_trip():
    net = make_city(400, seed=3)
    G = net.to_osmnx()
    assert G.number_of_edges() == 2 * net.n_edges
    back = WalkNetwork.from_osmnx(G)
    assert back.n_nodes == net.n_nodes
    assert back.km == pytest.approx(net.km)
    d0 = csgraph.dijkstra(net.graph, indices=0)
    d1 = csgraph.dijkstra(back.graph, indices=int(np.flatnonzero(back.node_id == net.node_id[0])[0]))
    order = np.searchsorted(back.node_id, net.node_id)
    np.testing.assert_allclose(d1[order], d0, atol=1e-6)


def test_andorra_builds(data_dir):
    net = load_network(data_dir / "andorra.osm.pbf")
    assert net.n_nodes > 10000
    assert pyproj.CRS(net.crs).to_epsg() == 32631


def test_synthetic_city_is_connected_grid():
    net = make_city(10_000, seed=0)
    assert 9_000 < net.n_nodes <= 10_000
    assert csgraph.connected_components(net.graph, directed=False)[0] == 1
    assert np.median(net.edge_length) == pytest.approx(80, rel=0.2)


@pytest.mark.parametrize(("name", "content", "match"), [
    ("missing.osm.pbf", None, "does not exist"),
    ("empty.osm.pbf", b"", "empty"),
    ("html.osm.pbf", b"<html><body>404 not found</body></html>" * 3, "not an OSM PBF"),
])
def test_bad_files_are_clear_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputFileError, match=match) as err:
        load_network(path)
    assert str(path) in str(err.value)
    assert "fix:" in str(err.value)


def test_truncated_pbf_is_a_clear_error(tmp_path, chengdu_pbf):
    path = tmp_path / "truncated.osm.pbf"
    path.write_bytes(chengdu_pbf.read_bytes()[:60_000])
    with pytest.raises(CirclesError, match=r"truncated|cannot read") as err:
        load_network(path)
    assert str(path) in str(err.value)


def test_no_walkable_way_is_a_clear_error(tmp_path):
    path = tmp_path / "motorway.osm"
    path.write_text(_XML.split("<way")[0] + '<way id="1" version="1"><nd ref="1"/><nd ref="2"/>'
                    '<tag k="highway" v="motorway"/></way></osm>')
    with pytest.raises(NetworkError, match="none a pedestrian may use"):
        load_network(path)


def test_missing_network_file_with_a_path_is_not_taken_for_a_place(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_network(tmp_path / "roads.gpkg")


def test_place_name_offline_is_a_clear_error():
    import osmnx as ox

    ox.settings.requests_timeout = 5
    with pytest.raises(OfflineError, match="local extract"):
        load_network("Jinjiang District, Chengdu")
