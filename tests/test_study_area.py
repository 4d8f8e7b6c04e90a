"""The study area stops at the extract's own edge (issue 16, item 3).

A real extract clipped by a known box: a subset of the Chengdu extract with every street that
touches the box kept whole (as ``osmium extract -s complete_ways`` cuts), so its streets reach
past the box just as a real city extract's do. Expected figures come from plain shapely
containment on the box and geodesic distances (pyproj.Geod), never from the code under test.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import osmium
import pyproj
import pytest
import shapely

from circles import WalkNetwork, load_network
from circles.engine.coverage import compute_coverage
from circles.engine.placement import attach
from circles.readers.osm import read_osm_bounds
from circles.readers.profiles import get_profile
from circles.runs.proposals import candidate_anchors

W, S, E, N = 104.06, 30.665, 104.10, 30.705
BOX = shapely.box(W, S, E, N)
GEOD = pyproj.Geod(ellps="WGS84")
UTM = pyproj.CRS.from_epsg(32648)


def _write_subset(src, dst, *, box: bool = True) -> None:
    """Every highway way with a node in BOX, whole, and its nodes; header bounds = BOX."""
    inside_nodes = set()
    for n in osmium.FileProcessor(str(src), osmium.osm.NODE):
        if W <= n.location.lon <= E and S <= n.location.lat <= N:
            inside_nodes.add(n.id)
    keep_ways, keep_nodes = set(), set()
    for w in osmium.FileProcessor(str(src), osmium.osm.WAY):
        refs = [r.ref for r in w.nodes]
        if "highway" in w.tags and any(r in inside_nodes for r in refs):
            keep_ways.add(w.id)
            keep_nodes.update(refs)
    header = osmium.io.Header()
    if box:
        header.add_box(osmium.osm.Box(osmium.osm.Location(W, S), osmium.osm.Location(E, N)))
    writer = osmium.SimpleWriter(str(dst), 0, header)
    try:
        for o in osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY):
            if o.is_node() and o.id in keep_nodes:
                writer.add_node(o)
            elif o.is_way() and o.id in keep_ways:
                writer.add_way(o)
    finally:
        writer.close()


@pytest.fixture(scope="module")
def clipped(chengdu_pbf, tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.osm"  # XML, with a <bounds> element
    _write_subset(chengdu_pbf, path)
    return path, load_network(path)


def _side_metres(lon, lat):
    """Geodesic metres from points inside BOX to its nearest side."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    d = [GEOD.inv(lon, lat, np.full_like(lon, W), lat)[2], GEOD.inv(lon, lat, np.full_like(lon, E), lat)[2],
         GEOD.inv(lon, lat, lon, np.full_like(lat, S))[2], GEOD.inv(lon, lat, lon, np.full_like(lat, N))[2]]
    return np.min(d, axis=0)


def _demand(net):
    """Points on the network's nodes: those inside the box and those up to 250 m beyond it."""
    lon, lat = net.lonlat()
    lon, lat = np.asarray(lon), np.asarray(lat)
    deg = 1 / 111_000  # about a metre of latitude
    beyond = ~shapely.contains_xy(BOX, lon, lat) & (lon > W - 250 * deg) & (lon < E + 250 * deg) & \
        (lat > S - 250 * deg) & (lat < N + 250 * deg)
    inner = shapely.contains_xy(shapely.box(W + 20 * deg, S + 20 * deg, E - 20 * deg, N - 20 * deg), lon, lat)
    far_beyond = ~shapely.contains_xy(shapely.box(W - 20 * deg, S - 20 * deg, E + 20 * deg, N + 20 * deg), lon, lat)
    pick = inner | (beyond & far_beyond)
    rng = np.random.default_rng(3)
    pop = rng.integers(1, 50, pick.sum()).astype(float)
    return gpd.GeoDataFrame({"pop": pop}, geometry=shapely.points(lon[pick], lat[pick]), crs=4326)


def _facilities(lon, lat, tiers):
    return gpd.GeoDataFrame({"facility_id": [f"F{i}" for i in range(len(lon))], "name": "x", "tier": tiers,
                             "status": "ok"}, geometry=shapely.points(lon, lat), crs=4326)


def test_header_bounds_are_read_from_xml_and_pbf(clipped, tmp_path):
    path, net = clipped
    assert shapely.equals_exact(read_osm_bounds(path), BOX, tolerance=1e-7)
    assert net.report["extent"] == "OSM header bounds"
    assert net.report["extent_bounds_wgs84"] == pytest.approx([W, S, E, N], abs=1e-6)
    assert "extent" in net.summary()
    pbf = tmp_path / "clip.osm.pbf"
    _write_subset(path, pbf)
    assert shapely.equals_exact(read_osm_bounds(pbf), BOX, tolerance=1e-7)


def test_the_streets_reach_past_the_box_but_the_study_area_does_not(clipped):
    _, net = clipped
    lon, _ = net.to_wgs84(*shapely.get_coordinates(net.hull.buffer(300)).T)
    assert (np.asarray(lon) > E + 0.001).any()  # the old area (hull + snap cap) went past the box
    area = net.study_area(300)
    alon, alat = net.to_wgs84(*shapely.get_coordinates(area).T)
    assert shapely.contains_xy(BOX.buffer(1e-6), alon, alat).all()
    assert area.area == pytest.approx(shapely.intersection(net.hull.buffer(300), net.extent).area)


def test_people_beyond_the_box_are_outside_even_near_a_street(clipped):
    _, net = clipped
    demand = _demand(net)
    lon, lat = demand.geometry.x.to_numpy(), demand.geometry.y.to_numpy()
    in_box = shapely.contains_xy(BOX, lon, lat)
    assert (~in_box).sum() > 20
    assert in_box.sum() > 100
    fac_lon, fac_lat = net.lonlat()
    inner = np.flatnonzero(shapely.contains_xy(BOX, fac_lon, fac_lat))
    fac = _facilities(np.asarray(fac_lon)[inner[:3]], np.asarray(fac_lat)[inner[:3]],
                      ["district", "community", "station"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compute_coverage(net, fac, demand, profile="deyang")
    status = res.demand["status"].to_numpy()
    assert (status[~in_box] == "outside").all()
    assert (status[in_box] == "ok").all()  # every one of them stands on a street
    t = res.by_tier()
    assert t["outside_pop"].to_numpy() == pytest.approx(demand["pop"][~in_box].sum())
    total = t[["covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]].sum(axis=1)
    assert total.to_numpy() == pytest.approx(demand["pop"].sum())
    assert np.isinf(res.demand.loc[~in_box, "district_metres"]).all()


def test_people_near_the_edge_are_counted_and_warned_about(clipped):
    _, net = clipped
    demand = _demand(net)
    lon, lat = demand.geometry.x.to_numpy(), demand.geometry.y.to_numpy()
    in_box = shapely.contains_xy(BOX, lon, lat)
    d = np.where(in_box, _side_metres(lon, lat), np.inf)
    keep = np.abs(d - 1125) > 5  # geodesic vs UTM metres differ by well under a metre here
    demand = demand[keep].reset_index(drop=True)
    d = d[keep]
    expected = float(demand["pop"][d <= 1125].sum())
    assert 0 < expected < demand["pop"][np.isfinite(d)].sum()  # some near the edge, some in the core
    fac = _facilities([], [], [])
    with pytest.warns(UserWarning, match="within 1,125 m of the extract's edge") as rec:
        res = compute_coverage(net, fac, demand, profile="deyang")
    assert res.edge_pop == pytest.approx(expected)
    assert res.edge_metres == pytest.approx(1125)
    msg = next(str(w.message) for w in rec if "edge" in str(w.message))
    assert msg.startswith(f"{expected:,.0f} people")
    assert "at least 1.2 km" in msg
    summary = res.study_area_summary()
    assert summary["edge_pop"] == pytest.approx(expected, abs=0.1)
    assert summary["extent"] == "OSM header bounds"
    assert any("1.2 km" in n for n in res.notes)
    assert "1.2 km" in res.summary_text()


def test_facilities_beyond_the_box_are_outside_the_area(clipped):
    _, net = clipped
    lon, lat = (np.asarray(a) for a in net.lonlat())
    out = np.flatnonzero(~shapely.contains_xy(BOX.buffer(0.0005), lon, lat)
                         & shapely.contains_xy(BOX.buffer(0.002), lon, lat))[:2]
    ins = np.flatnonzero(shapely.contains_xy(BOX.buffer(-0.002), lon, lat))[:2]
    fac = attach(_facilities(lon[np.r_[out, ins]], lat[np.r_[out, ins]], ["station"] * 4), net,
                 get_profile("deyang"))
    assert list(fac["status"]) == ["outside_area", "outside_area", "ok", "ok"]


def test_a_pbf_without_header_bounds_falls_back_to_its_streets_box(clipped, tmp_path):
    path, _ = clipped
    pbf = tmp_path / "nobox.osm.pbf"
    _write_subset(path, pbf, box=False)
    assert read_osm_bounds(pbf) is None
    net = load_network(pbf)
    assert "header gives no bounds" in net.report["extent"]
    lon = [n.location.lon for n in osmium.FileProcessor(str(pbf), osmium.osm.NODE)]
    lat = [n.location.lat for n in osmium.FileProcessor(str(pbf), osmium.osm.NODE)]
    assert net.report["extent_bounds_wgs84"] == pytest.approx([min(lon), min(lat), max(lon), max(lat)], abs=1e-6)


def test_the_extent_is_saved_and_loaded_and_old_files_still_load(clipped, tmp_path):
    _, net = clipped
    saved = load_network(net.save(tmp_path / "net.gpkg"))
    assert saved.extent is not None
    assert shapely.equals_exact(saved.extent, net.extent, tolerance=0.01)
    assert saved.study_area(300).area == pytest.approx(net.study_area(300).area, rel=1e-6)
    plain = WalkNetwork.load(net.save(tmp_path / "copy.gpkg"))
    plain.extent = None  # the layout written before extents were kept
    for key in ("extent", "extent_bounds_wgs84"):
        plain.report.pop(key)
    back = load_network(plain.save(tmp_path / "old.gpkg"))
    assert back.extent is None
    assert back.report["extent"].startswith("none")
    assert back.study_area(300).area == pytest.approx(net.hull.buffer(300).area)


def test_road_lines_stop_at_their_layer_extent(tmp_path):
    x0, y0 = 404_000.0, 3_390_000.0
    lines = [shapely.LineString([(x0, y0 + k), (x0 + 2000, y0 + k)]) for k in (0, 1000, 2000)] + \
            [shapely.LineString([(x0 + k, y0), (x0 + k, y0 + 2000)]) for k in (0, 1000, 2000)]
    gpd.GeoDataFrame({"name": [f"r{i}" for i in range(6)]}, geometry=lines, crs=UTM).to_file(tmp_path / "r.gpkg")
    net = load_network(tmp_path / "r.gpkg")
    assert net.report["extent"] == "extent of the road-line layer"
    px = x0 + np.array([1000.0, 2100.0, -150.0, 500.0])
    py = y0 + np.array([500.0, 1000.0, 1000.0, 1990.0])
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(px, py)
    demand = gpd.GeoDataFrame({"pop": [1.0, 2.0, 4.0, 8.0]}, geometry=shapely.points(lon, lat), crs=4326)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compute_coverage(net, _facilities([], [], []), demand, profile="deyang")
    # 100 m and 150 m beyond the layer's box (within the snap cap of its streets): outside.
    assert list(res.demand["status"]) == ["ok", "outside", "outside", "ok"]


def test_candidate_sites_stay_inside_the_study_area(clipped, tmp_path):
    _, net = clipped
    lon, lat = (np.asarray(a) for a in net.lonlat())
    assert (~shapely.contains_xy(BOX, lon, lat)).sum() > 50  # nodes of the streets cut whole
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = compute_coverage(net, _facilities([], [], []), _demand(net), profile="deyang")
    got = candidate_anchors(res, spacing_metres=100.0)
    assert len(got[1]) > 100
    assert shapely.contains_xy(BOX, got[1], got[2]).all()
    # A file's sites: one 100 m past the box on a street, one inside.
    beyond = np.flatnonzero(~shapely.contains_xy(BOX.buffer(0.0008), lon, lat)
                            & shapely.contains_xy(BOX.buffer(0.002), lon, lat))[0]
    inside = np.flatnonzero(shapely.contains_xy(BOX.buffer(-0.003), lon, lat))[0]
    path = tmp_path / "sites.csv"
    path.write_text(f"name,lon,lat\nbeyond,{lon[beyond]:.7f},{lat[beyond]:.7f}\n"
                    f"inside,{lon[inside]:.7f},{lat[inside]:.7f}\n", encoding="utf-8")
    got = candidate_anchors(res, candidates=path)
    assert np.asarray(got[1]) == pytest.approx([lon[inside]], abs=1e-6)
