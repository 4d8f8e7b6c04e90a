from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.sparse import csgraph

from circles import InputFileError
from circles.cli import main
from circles.network import load_network
from circles.pipeline import RunInputs, coverage_run
from circles.roads import network_from_roads

UTM = 32648
X0, Y0 = 404_000.0, 3_390_000.0


def _write(tmp_path, lines, name="roads.gpkg", crs=UTM, **cols):
    gdf = gpd.GeoDataFrame(cols, geometry=lines, crs=crs)
    path = tmp_path / name
    gdf.to_file(path)
    return path


def _line(*pts):
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def test_two_crossing_lines_become_four_edges(tmp_path):
    path = _write(tmp_path, [_line((0, 50), (100, 50)), _line((50, 0), (50, 100))])
    net = network_from_roads(path)
    assert net.n_edges == 4
    assert net.n_nodes == 5
    assert net.report["repairs"]["pieces_split_at_crossings"] == 2


def test_a_bridge_stays_unconnected_to_the_street_below(tmp_path):
    path = _write(tmp_path, [_line((0, 50), (100, 50)), _line((50, 0), (50, 100))], bridge=[0, 1])
    net = network_from_roads(path, )
    n, _ = csgraph.connected_components(network_from_roads(path).graph, directed=False)
    assert net.n_edges == 1  # two separate lines: only the largest (either) is kept
    assert net.report["components_dropped"] == 1
    layered = _write(tmp_path, [_line((0, 50), (100, 50)), _line((50, 0), (50, 100))], name="l.gpkg", layer=[0, 1])
    assert network_from_roads(layered).n_edges == 1
    assert n == 1


def test_half_metre_gap_closed_five_metre_gap_not(tmp_path):
    small = _write(tmp_path, [_line((0, 0), (100, 0)), _line((100.5, 0), (200, 0))], name="s.gpkg")
    net = network_from_roads(small)
    assert net.n_edges == 2
    assert net.report["repairs"]["gaps_closed"] >= 1
    assert net.km == pytest.approx(0.1995, abs=0.002)
    big = _write(tmp_path, [_line((0, 0), (100, 0)), _line((105, 0), (205, 0))], name="b.gpkg")
    net2 = network_from_roads(big)
    assert net2.n_edges == 1
    assert net2.report["components_dropped"] == 1
    tee = _write(tmp_path, [_line((0, 0), (200, 0)), _line((100, 0.8), (100, 100))], name="t.gpkg")
    assert network_from_roads(tee).n_edges == 4  # end 0.8 m from the other line's interior: joined


def test_duplicates_removed(tmp_path):
    path = _write(tmp_path, [_line((0, 0), (100, 0)), _line((100, 0), (0, 0)), _line((0, 0), (100, 0))])
    net = network_from_roads(path)
    assert net.n_edges == 1
    assert net.report["repairs"]["duplicates_dropped"] == 2


def test_shapefile_in_4547_and_geopackage_in_4326_give_the_same_network(tmp_path):
    lines = [_line((0, 0), (300, 0), (300, 200)), _line((150, -100), (150, 250)),
             _line((0, 0), (0, 200), (300, 200))]
    base = gpd.GeoSeries(lines, crs=UTM)
    shp = tmp_path / "roads.shp"
    gpd.GeoDataFrame({"id": [1, 2, 3]}, geometry=base.to_crs(4547)).to_file(shp)
    gpkg = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"id": [1, 2, 3]}, geometry=base.to_crs(4326)).to_file(gpkg)
    a, b = network_from_roads(shp), network_from_roads(gpkg)
    assert (a.n_nodes, a.n_edges) == (b.n_nodes, b.n_edges)
    assert a.km == pytest.approx(b.km, rel=1e-3)
    assert a.crs.to_epsg() == 32648  # EPSG:4547 (CM 114°E) stretches lengths at 104°E: reprojected


def test_wrong_geometry_and_missing_crs_are_clear_errors(tmp_path):
    poly = _write(tmp_path, [shapely.box(X0, Y0, X0 + 10, Y0 + 10)], name="p.gpkg")
    with pytest.raises(InputFileError, match="must be lines"):
        network_from_roads(poly)
    pts = _write(tmp_path, [shapely.Point(X0, Y0)], name="pt.gpkg")
    with pytest.raises(InputFileError, match="Point"):
        load_network(pts)
    nocrs = tmp_path / "nocrs.geojson"
    nocrs.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
                     '"geometry":{"type":"LineString","coordinates":[[0,0],[100,0]]}}]}')
    gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (100, 0)])]).to_file(tmp_path / "nocrs.shp")
    with pytest.raises(InputFileError, match="--crs"):
        network_from_roads(tmp_path / "nocrs.shp")
    assert network_from_roads(tmp_path / "nocrs.shp", crs="EPSG:32648").n_edges == 1


def test_unknown_walkable_values_and_no_walkable_lines(tmp_path):
    path = _write(tmp_path, [_line((0, 0), (100, 0))], name="w.gpkg", 步行=["maybe"])
    with pytest.raises(InputFileError, match="maybe"):
        network_from_roads(path)
    path2 = _write(tmp_path, [_line((0, 0), (100, 0)), _line((100, 0), (200, 0))], name="w2.gpkg", 步行=["是", "否"])
    net = network_from_roads(path2)
    assert net.n_edges == 1
    assert net.report["repairs"]["non_walkable_dropped"] == 1


def test_add_osm_paths_and_repaired_output(tmp_path, chengdu_net, chengdu_pbf):
    streets = chengdu_net.edges_gdf()
    major = streets[streets["highway"].isin(["primary", "secondary", "tertiary", "residential"])]
    path = tmp_path / "major.gpkg"
    major[["highway", "geometry"]].to_file(path)
    alone = network_from_roads(path, node_crossings=False)
    mixed = network_from_roads(path, add_osm=chengdu_pbf, node_crossings=False,
                               repaired=tmp_path / "repaired.gpkg")
    rep = mixed.report["repairs"]
    assert rep["osm_paths_added"] > 0
    assert mixed.km > alone.km
    assert (tmp_path / "repaired.gpkg").exists()


def test_chengdu_lines_in_cgcs2000_give_the_same_coverage_as_the_pbf(tmp_path, chengdu_net):
    lines = tmp_path / "chengdu_lines.gpkg"
    chengdu_net.edges_gdf().to_crs(4544).to_file(lines)  # CGCS2000 3-degree zone, CM 105°E
    assert main(["network", str(lines), "--keep-crossings", "--snap-metres", "0",
                 "--out", str(tmp_path / "net.gpkg")]) == 0
    assert load_network(tmp_path / "net.gpkg").crs.to_epsg() == 4544  # near its meridian: kept
    a = coverage_run(RunInputs(), tmp_path / "pbf", draw_map=False).result.by_tier()
    b = coverage_run(RunInputs(network=tmp_path / "net.gpkg"), tmp_path / "lines", draw_map=False).result.by_tier()
    np.testing.assert_allclose(a["covered_pop"], b["covered_pop"], atol=0.5)
    pd.testing.assert_series_equal(a["population"], b["population"])
