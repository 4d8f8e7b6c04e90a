from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from circles import WalkNetwork, load_network, network_from_roads
from circles.errors import InputFileError, NetworkError
from circles.readers.roads import read_road_lines, repair_lines

UTM = 32648  # central Chengdu
X0, Y0 = 404_000.0, 3_390_000.0


def _write(tmp_path, lines, name="roads.gpkg", crs=UTM, **cols):
    path = tmp_path / name
    gpd.GeoDataFrame(cols, geometry=lines, crs=crs).to_file(path)
    return path


def _line(*pts, x0=X0, y0=Y0):
    return shapely.LineString([(x0 + x, y0 + y) for x, y in pts])


def _node_near(net, x, y, metres=0.01):
    return bool((np.hypot(net.x - (X0 + x), net.y - (Y0 + y)) < metres).any())


def _dist(net, a, b):
    ia = int(np.argmin(np.hypot(net.x - (X0 + a[0]), net.y - (Y0 + a[1]))))
    ib = int(np.argmin(np.hypot(net.x - (X0 + b[0]), net.y - (Y0 + b[1]))))
    return csgraph.dijkstra(net.graph, indices=ia)[ib]


# A street (0,50)-(100,50) crossed by (50,0)-(50,100), joined around the block at the corners.
CROSS = [_line((0, 50), (100, 50)), _line((50, 0), (50, 100))]
BLOCK = [*CROSS, _line((50, 0), (0, 0), (0, 50)), _line((50, 100), (100, 100), (100, 50))]


def test_two_crossing_lines_become_four_edges(tmp_path):
    net = network_from_roads(_write(tmp_path, CROSS))
    assert (net.n_nodes, net.n_edges) == (5, 4)
    assert _node_near(net, 50, 50)
    assert net.report["repairs"]["crossings_noded"] == 1
    assert net.km == pytest.approx(0.2)


@pytest.mark.parametrize("cols", [{"bridge": [0, 1, 0, 0]}, {"layer": [0, 1, 0, 0]},
                                  {"桥梁": ["否", "是", "否", "否"]}, {"tunnel": ["yes", "", "", ""]}])
def test_a_bridge_does_not_connect_to_the_street_it_crosses(tmp_path, cols):
    net = network_from_roads(_write(tmp_path, BLOCK, **cols))
    assert net.report["components_dropped"] == 0  # the bridge lands on the block's corners
    assert not _node_near(net, 50, 50, metres=1)
    assert net.report["repairs"]["crossings_noded"] == 0
    assert _dist(net, (50, 0), (100, 50)) == pytest.approx(200)  # around the block
    on_ground = network_from_roads(_write(tmp_path, BLOCK, name="ground.gpkg"))
    assert _dist(on_ground, (50, 0), (100, 50)) == pytest.approx(100)  # straight through the crossing


def test_half_metre_gap_closed_five_metre_gap_not(tmp_path):
    net = network_from_roads(_write(tmp_path, [_line((0, 0), (100, 0)), _line((100.5, 0), (200, 0))]))
    assert (net.n_nodes, net.n_edges) == (3, 2)
    assert net.report["repairs"]["gaps_closed"] == 1
    assert _node_near(net, 100.25, 0)  # the ends met halfway
    assert net.km == pytest.approx(0.2)
    far = network_from_roads(_write(tmp_path, [_line((0, 0), (100, 0)), _line((105, 0), (205, 0))], name="far.gpkg"))
    assert far.n_edges == 1
    assert far.report["repairs"]["gaps_closed"] == 0
    assert far.report["components_dropped"] == 1
    assert network_from_roads(_write(tmp_path, [_line((0, 0), (100, 0)), _line((105, 0), (205, 0))], name="f2.gpkg"),
                              snap_metres=6).n_edges == 2


def test_ends_near_another_line_split_it_there(tmp_path):
    tee = network_from_roads(_write(tmp_path, [_line((0, 0), (200, 0)), _line((100, 0.8), (100, 100))]))
    assert (tee.n_nodes, tee.n_edges) == (4, 3)
    assert _node_near(tee, 100, 0)
    assert tee.report["repairs"]["ends_joined_to_lines"] == 1
    over = network_from_roads(_write(tmp_path, [_line((0, 0), (200, 0)), _line((100, -0.8), (100, 100))], name="o.gpkg"))
    assert (over.n_nodes, over.n_edges) == (4, 3)
    assert over.report["repairs"]["overshoots_trimmed"] == 1
    assert over.km == pytest.approx(0.3)
    # A short dead-end stub hanging from a line is not folded onto it.
    stub = network_from_roads(_write(tmp_path, [_line((0, 0), (100, 0)), _line((50, 0), (50, 1.5))], name="s.gpkg"))
    assert (stub.n_edges, stub.km) == (3, pytest.approx(0.1015))
    # A dangling end near a line on another level (a bridge above) is not joined to it.
    under = network_from_roads(_write(tmp_path, [_line((0, 0), (200, 0)), _line((100, 0.8), (100, 100))],
                                      name="u.gpkg", layer=[1, 0]))
    assert under.n_edges == 1


def test_duplicates_and_zero_length_dropped_multilines_split(tmp_path):
    lines = [_line((0, 0), (100, 0)), _line((100, 0), (0, 0)), _line((0, 0), (100, 0)),
             _line((0, 0.3), (50, 0.2), (100, 0.3)),  # drawn again by hand, 0.3 m off
             _line((100, 0), (100, 0)),
             shapely.MultiLineString([[(X0 + 100, Y0), (X0 + 200, Y0)], [(X0 + 200, Y0), (X0 + 200, Y0 + 50)]])]
    net = network_from_roads(_write(tmp_path, lines))
    rep = net.report["repairs"]
    assert (rep["duplicates_dropped"], rep["zero_length_dropped"], rep["multilines_split"]) == (3, 1, 1)
    assert (net.n_nodes, net.n_edges) == (4, 3)
    assert net.km == pytest.approx(0.25, abs=1e-4)


def test_closed_ring_is_kept_as_pieces(tmp_path):
    ring = _line((0, 0), (100, 0), (100, 100), (0, 100), (0, 0))
    net = network_from_roads(_write(tmp_path, [ring, _line((0, 0), (-50, 0))]))
    assert net.report["repairs"]["rings_split"] == 1
    assert net.km == pytest.approx(0.45)
    assert net.n_edges == 4


def test_shapefile_in_4547_and_geopackage_in_4326_give_the_same_network(tmp_path):
    # Streets in Wuhan (114.3°E), inside EPSG:4547's zone (CGCS2000 3-degree CM 114°E).
    kw = {"x0": 530_000.0, "y0": 3_380_000.0}
    streets = gpd.GeoSeries([_line((0, 0), (300, 0), (300, 200), **kw), _line((150, -100), (150, 250), **kw),
                             _line((0, 0.4), (0, 200), (300.6, 200), **kw), _line((0, 120), (80, 120), **kw)],
                            crs=4547)
    shp = tmp_path / "roads.shp"
    gpd.GeoDataFrame({"等级": ["主干路", "次干路", "支路", "支路"]}, geometry=streets).to_file(shp)
    gpkg = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"等级": ["主干路", "次干路", "支路", "支路"]}, geometry=streets.to_crs(4326)).to_file(gpkg)
    a, b = network_from_roads(shp), network_from_roads(gpkg)
    assert a.crs.to_epsg() == 4547  # a metric zone at the city is kept
    assert b.crs.to_epsg() == 32650  # lon/lat is projected to the local UTM zone
    assert (a.n_nodes, a.n_edges) == (b.n_nodes, b.n_edges) == (8, 9)
    assert a.km == pytest.approx(b.km, rel=1e-3)
    assert sorted(a.edge_attrs["road_class"]) == sorted(b.edge_attrs["road_class"])
    # The same zone for streets in Chengdu (104°E) would stretch lengths by 1 %: projected to UTM.
    far = _write(tmp_path, [_line((0, 0), (100, 0))], name="far.gpkg")
    gpd.read_file(far).to_crs(4547).to_file(tmp_path / "far4547.gpkg")
    net = network_from_roads(tmp_path / "far4547.gpkg")
    assert net.crs.to_epsg() == UTM
    assert net.report["reprojected_to"] == "EPSG:32648"
    assert net.km == pytest.approx(0.1, rel=1e-6)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_gcj02_lonlat_with_crs_option(tmp_path):
    from circles.readers.crs import wgs84_to_gcj02

    wgs = gpd.GeoSeries(BLOCK, crs=UTM).to_crs(4326)
    gcj = shapely.transform(wgs.to_numpy(), lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    path = _write(tmp_path, list(gcj), name="gcj.geojson", crs=None)
    net = network_from_roads(path, crs="gcj02")
    assert net.km == pytest.approx(0.4, rel=1e-4)
    assert net.n_edges == 6


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_wrong_geometry_empty_and_missing_crs_are_clear_errors(tmp_path):
    poly = _write(tmp_path, [shapely.box(X0, Y0, X0 + 10, Y0 + 10), _line((0, 0), (5, 5))], name="p.gpkg")
    with pytest.raises(InputFileError, match=r"1 Polygon \(and 1 lines\)"):
        network_from_roads(poly)
    pts = _write(tmp_path, [shapely.Point(X0, Y0), shapely.Point(X0 + 1, Y0)], name="pt.gpkg")
    with pytest.raises(InputFileError, match="2 Point"):
        load_network(pts)
    gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (100, 0)])]).to_file(tmp_path / "nocrs.shp")
    with pytest.raises(InputFileError, match="--crs EPSG:4547") as err:
        network_from_roads(tmp_path / "nocrs.shp")
    assert err.value.field == "crs"
    assert network_from_roads(tmp_path / "nocrs.shp", crs="EPSG:32648").n_edges == 1
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"a": []}, geometry=gpd.GeoSeries([], crs=UTM)).to_file(empty, layer="roads")
    with pytest.raises(InputFileError, match="no line features"):
        network_from_roads(empty)
    (tmp_path / "zero.gpkg").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        network_from_roads(tmp_path / "zero.gpkg")
    # Gauss-Krüger metres in a file that says lon/lat.
    wrong = _write(tmp_path, [_line((0, 0), (100, 0))], name="wrong.gpkg", crs=4326)
    with pytest.raises(InputFileError, match="look projected"):
        network_from_roads(wrong)
    # An easting with the zone number in front (38 500 000) read as the zone without it.
    prefixed = _write(tmp_path, [_line((0, 0), (100, 0), x0=38_500_000.0)], name="prefix.gpkg", crs=4547)
    with pytest.raises(InputFileError, match="outside the area") as err:
        network_from_roads(prefixed)
    assert "EPSG:4526" in err.value.fix


def test_layers_of_a_multi_layer_file(tmp_path):
    path = tmp_path / "city.gpkg"
    gpd.GeoDataFrame(geometry=CROSS, crs=UTM).to_file(path, layer="roads")
    gpd.GeoDataFrame(geometry=[shapely.Point(X0, Y0)], crs=UTM).to_file(path, layer="poi")
    assert network_from_roads(path).n_edges == 4  # the only line layer
    gpd.GeoDataFrame(geometry=CROSS[:1], crs=UTM).to_file(path, layer="rail")
    with pytest.raises(InputFileError, match="3 layers") as err:
        network_from_roads(path)
    assert "layer=" in err.value.fix
    assert network_from_roads(path, layer="rail").n_edges == 1
    with pytest.raises(InputFileError, match="no layer 'river'"):
        read_road_lines(path, layer="river")


def test_walkable_column(tmp_path):
    bad = _write(tmp_path, [_line((0, 0), (100, 0)), _line((100, 0), (200, 0))], name="w.gpkg", 步行=["是", "maybe"])
    with pytest.raises(InputFileError, match="'maybe'") as err:
        network_from_roads(bad)
    assert (err.value.field, err.value.row) == ("步行", 2)
    lines = [_line((0, 0), (100, 0)), _line((100, 0), (200, 0)), _line((200, 0), (300, 0))]
    net = network_from_roads(_write(tmp_path, lines, name="w2.gpkg", 步行=["是", "否", None]))
    assert net.report["repairs"]["non_walkable_dropped"] == 1
    assert net.n_edges == 1  # the blank row is walkable, but cut off by the closed middle
    assert network_from_roads(_write(tmp_path, lines, name="w3.gpkg", ok=[1.0, 0.0, 1.0]),
                              walkable_column="ok").report["repairs"]["non_walkable_dropped"] == 1
    with pytest.raises(NetworkError, match="no walkable line"):
        network_from_roads(_write(tmp_path, lines, name="w4.gpkg", walkable=["no", "false", "0"]))
    with pytest.raises(InputFileError, match="no column 'kind'"):
        network_from_roads(_write(tmp_path, lines, name="w5.gpkg"), class_column="kind")


def test_repair_lines_and_the_repaired_file(tmp_path):
    gdf = gpd.GeoDataFrame({"road_id": [7, 8]}, geometry=CROSS, crs=UTM)
    pieces, report = repair_lines(gdf)
    assert len(pieces) == 4
    assert sorted(pieces["road_id"]) == [7, 7, 8, 8]
    assert sorted(pieces["source_row"]) == [1, 1, 2, 2]
    assert len(np.unique(np.r_[pieces["u"], pieces["v"]])) == 5
    assert report["crossings_noded"] == 1
    with pytest.raises(NetworkError, match="projected CRS"):
        repair_lines(gdf.to_crs(4326))
    out = tmp_path / "repaired.gpkg"
    network_from_roads(_write(tmp_path, [*CROSS, _line((100.5, 50), (150, 50))]), repaired=out)
    layers = dict(pyogrio.list_layers(out))
    assert set(layers) == {"repaired", "fixes"}
    fixes = gpd.read_file(out, layer="fixes")
    assert sorted(fixes["kind"]) == ["crossing_noded", "gap_closed", "gap_closed"]
    assert len(gpd.read_file(out, layer="repaired")) == 5
    assert not list(tmp_path.glob(".repaired*"))  # the atomic write left no temporary file


OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="test">
{nodes}
  <way id="201" version="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="footway"/></way>
  <way id="202" version="1"><nd ref="3"/><nd ref="4"/><tag k="highway" v="steps"/></way>
  <way id="203" version="1"><nd ref="5"/><nd ref="6"/><tag k="highway" v="footway"/></way>
  <way id="204" version="1"><nd ref="7"/><nd ref="8"/><tag k="highway" v="residential"/></way>
  <way id="205" version="1"><nd ref="9"/><nd ref="10"/><tag k="highway" v="path"/></way>
</osm>
"""


def test_add_osm_paths_the_city_layer_lacks(tmp_path):
    # A 200 m block of city streets; in OSM a footway into the compound and steps on to the far
    # street (both ending a metre short of a street), a sidewalk 4 m beside a street (a duplicate),
    # a residential street (not a path) and a path 5 km away.
    city = [_line((0, 0), (200, 0)), _line((0, 0), (0, 200)), _line((200, 0), (200, 200)), _line((0, 200), (200, 200))]
    pts = [(100, 1), (100, 100), (150, 150), (199, 150), (0, -4), (200, -4), (50, 50), (60, 60), (5000, 0), (5100, 0)]
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(
        [X0 + x for x, _ in pts], [Y0 + y for _, y in pts])
    nodes = "\n".join(f'  <node id="{i + 1}" lat="{la:.8f}" lon="{lo:.8f}" version="1"/>'
                      for i, (lo, la) in enumerate(zip(lon, lat, strict=True)))
    osm = tmp_path / "paths.osm"
    osm.write_text(OSM_XML.format(nodes=nodes))
    alone = network_from_roads(_write(tmp_path, city))
    net = network_from_roads(_write(tmp_path, city), add_osm=osm)
    rep = net.report["repairs"]
    assert (rep["osm_paths_added"], rep["osm_paths_left_out"], rep["osm_paths_outside_city_layer"]) == (3, 1, 1)
    assert rep["ends_joined_to_lines"] == 2  # the footway and the steps reach the streets
    assert net.report["components_dropped"] == 0
    assert (net.edge_attrs["origin"] == "osm").sum() == 3
    assert set(net.edge_attrs.loc[net.edge_attrs["origin"] == "osm", "road_class"]) == {"osm:footway", "osm:steps"}
    assert net.km == pytest.approx(alone.km + (99 + 1 + np.hypot(50, 50) + 50) / 1000, rel=1e-5)
    assert _dist(net, (100, 0), (200, 150)) == pytest.approx(100 + np.hypot(50, 50) + 50, abs=0.01)


def test_chengdu_osm_edges_in_cgcs2000_read_back_as_the_same_network(tmp_path, chengdu_net):
    # Chengdu is at 104.07°E: the CGCS2000 3-degree zone with CM 105°E (103.5-106.5°E) is EPSG:4544.
    assert pyproj.CRS.from_epsg(4544).area_of_use.west <= 104.07 <= pyproj.CRS.from_epsg(4544).area_of_use.east
    edges = chengdu_net.edges_gdf().to_crs(4544)
    path = tmp_path / "chengdu_lines.gpkg"
    edges.to_file(path)
    net = network_from_roads(path, node_crossings=False)
    assert net.crs.to_epsg() == 4544  # near its meridian: kept
    assert (net.n_nodes, net.n_edges) == (chengdu_net.n_nodes, chengdu_net.n_edges)
    km_4544 = float(edges.length.sum()) / 1000
    assert net.km == pytest.approx(km_4544, rel=1e-4)
    # UTM 48N (scale 0.9996 on the same meridian) measures 0.04 % shorter than the zone's 1.0.
    assert net.km == pytest.approx(chengdu_net.km, rel=5e-4)
    reference = WalkNetwork(x=chengdu_net.x, y=chengdu_net.y, node_id=np.arange(chengdu_net.n_nodes),
                            edge_u=chengdu_net.edge_u, edge_v=chengdu_net.edge_v,
                            edge_geometry=edges.geometry.to_numpy(), crs=4544)
    sources = np.array([0, 2000, 4000, 8000])
    expected = csgraph.dijkstra(reference.graph, indices=sources)[:, net.node_id]
    got = csgraph.dijkstra(net.graph, indices=np.searchsorted(net.node_id, sources))
    np.testing.assert_allclose(got, expected, rtol=1e-6)

    # Without the u/v columns the nodes come from the geometry: OSM's distinct nodes at one
    # position (duplicate nodes) become one, and nothing else changes.
    edges.drop(columns=["u", "v"]).to_file(tmp_path / "no_ids.gpkg")
    geo = network_from_roads(tmp_path / "no_ids.gpkg", node_crossings=False, snap_metres=0)
    coincident = len(cKDTree(np.column_stack([chengdu_net.x, chengdu_net.y])).query_pairs(1e-3))
    rep = geo.report["repairs"]
    assert geo.n_nodes == chengdu_net.n_nodes - coincident
    assert geo.n_edges == chengdu_net.n_edges - rep["zero_length_dropped"] - rep["duplicates_dropped"] \
        - geo.report["duplicate_or_loop_edges_dropped"]
    assert geo.km == pytest.approx(km_4544, rel=1e-4)

    # Repaired as a drawn layer: same-level crossings are noded, bridges stay apart.
    drawn = network_from_roads(tmp_path / "no_ids.gpkg")
    assert drawn.report["repairs"]["crossings_noded"] > 20
    level = drawn.edge_attrs["level"].to_numpy()
    a, b = shapely.STRtree(drawn.edge_geometry).query(drawn.edge_geometry, predicate="crosses")
    assert len(a) > 0
    assert (level[a] != level[b]).all()


# --- gap closing at junctions whose every end moved (issue 16) -------------------------------------

def _jitter(pts, seed, lo=0.1, hi=0.25):
    """Each point moved lo..hi metres in a random direction."""
    rng = np.random.default_rng(seed)
    r, a = rng.uniform(lo, hi, len(pts)), rng.uniform(0, 2 * np.pi, len(pts))
    return [(x + dr * np.cos(t), y + dr * np.sin(t)) for (x, y), dr, t in zip(pts, r, a, strict=True)]


@pytest.mark.parametrize("seed", range(6))
def test_four_way_junction_with_every_end_moved_is_one_node(tmp_path, seed):
    arms = [(100, 0), (0, 100), (-100, 0), (0, -100)]
    ends = _jitter([(0, 0)] * 4, seed)
    net = network_from_roads(_write(tmp_path, [_line(e, a) for e, a in zip(ends, arms, strict=True)]))
    assert (net.n_nodes, net.n_edges) == (5, 4)
    assert net.report["components_dropped"] == 0
    cx, cy = np.mean(ends, axis=0)
    assert _node_near(net, cx, cy, metres=1e-3)  # the mean of the four ends
    assert _dist(net, (100, 0), (0, 100)) == pytest.approx(200, abs=0.5)


def test_two_branches_ending_off_one_side_of_a_through_line_both_join_it(tmp_path):
    lines = [_line((0, 0), (200, 0)), _line((100, 0.3), (80, 100)), _line((101, 0.3), (121, 100))]
    net = network_from_roads(_write(tmp_path, lines))
    assert net.report["components_dropped"] == 0
    assert net.report["repairs"]["ends_joined_to_lines"] == 2
    assert (net.n_nodes, net.n_edges) == (5, 4)
    # The two ends meet halfway, on the street: each branch reaches both of its ends.
    assert _node_near(net, 100.5, 0)
    assert _dist(net, (80, 100), (0, 0)) == pytest.approx(np.hypot(20.5, 100) + 100.5, abs=0.01)
    assert _dist(net, (121, 100), (200, 0)) == pytest.approx(np.hypot(20.5, 100) + 99.5, abs=0.01)


def test_a_row_of_ends_does_not_chain_into_one_node(tmp_path):
    # Six lanes fanning out from 1.5 m apart, ending 0.4 m short of a street: each meets the street on its own.
    lanes = [_line((20 + 1.5 * k, 0.4), (20 + 10 * k, 50)) for k in range(6)]
    net = network_from_roads(_write(tmp_path, [_line((0, 0), (100, 0)), *lanes]))
    rep = net.report["repairs"]
    assert rep["ends_joined_to_lines"] == 6
    assert net.report["components_dropped"] == 0
    for k in range(6):
        assert _node_near(net, 20 + 1.5 * k, 0)
    lanes_km = sum(np.hypot(8.5 * k, 50) for k in range(6)) / 1000
    assert net.km == pytest.approx(0.1 + lanes_km, abs=1e-4)
    assert (net.n_nodes, net.n_edges) == (14, 13)


@pytest.mark.parametrize("seed", range(4))
def test_a_short_connector_between_two_junctions_survives(tmp_path, seed):
    # Two junctions 1.5 m apart (a staggered crossing), three arms each, every end moved.
    p, q = _jitter([(0, 0)] * 4, seed), _jitter([(1.5, 0)] * 4, seed + 100)
    lines = [_line(p[0], (-100, 0)), _line(p[1], (-30, 100)), _line(p[2], (-30, -100)), _line(p[3], q[3]),
             _line(q[0], (101.5, 0)), _line(q[1], (31.5, 100)), _line(q[2], (31.5, -100))]
    net = network_from_roads(_write(tmp_path, lines))
    assert (net.n_nodes, net.n_edges) == (8, 7)
    assert net.report["repairs"]["short_lines_collapsed"] == 0
    shortest = float(shapely.length(net.edge_geometry).min())
    assert shortest == pytest.approx(1.5, abs=0.5)
    assert _dist(net, (-30, 100), (31.5, 100)) == pytest.approx(2 * np.hypot(30, 100) + 1.5, abs=0.5)
    assert _dist(net, (-100, 0), (101.5, 0)) == pytest.approx(201.5, abs=0.5)
    assert net.report["repairs"]["ends_joined_to_lines"] == 0  # the junctions stay two


def test_a_fragment_shorter_than_the_noise_folds_into_its_junction_and_is_counted(tmp_path):
    ends = _jitter([(0, 0)] * 4, 7)
    lines = [_line(ends[0], (100, 0)), _line(ends[1], (0, 100)), _line(ends[2], (-100, 0)),
             _line(ends[3], (0.3, 0.1))]  # a 0.3 m sliver drawn at the crossing
    out = tmp_path / "fixed.gpkg"
    net = network_from_roads(_write(tmp_path, lines), repaired=out)
    assert net.report["repairs"]["short_lines_collapsed"] == 1
    assert (net.n_nodes, net.n_edges) == (4, 3)
    assert "short_line_collapsed" in set(gpd.read_file(out, layer="fixes")["kind"])


def test_overlapping_lines_are_merged_and_counted(tmp_path):
    out = tmp_path / "fixed.gpkg"
    net = network_from_roads(_write(tmp_path, [_line((0, 0), (100, 0)), _line((50, 0), (150, 0))]), repaired=out)
    rep = net.report["repairs"]
    assert rep["overlaps_merged"] == 1
    assert rep["overlap_metres_dropped"] == pytest.approx(50)
    assert net.km == pytest.approx(0.15)
    fixes = gpd.read_file(out, layer="fixes")
    assert fixes.loc[fixes["kind"] == "overlap_merged", "metres"].tolist() == [pytest.approx(50)]
