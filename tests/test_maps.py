from __future__ import annotations

import re
import shutil

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from circles.maps import draw_run_map
from circles.pipeline import RunInputs, coverage_run

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, data_dir):
    """A real coverage run on the Chengdu default, with units and one facility named like an attack."""
    tmp = tmp_path_factory.mktemp("maps")
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac.loc[0, "name"] = EVIL
    fac_path = tmp / "fac.csv"
    fac.to_csv(fac_path, index=False)
    units = gpd.GeoDataFrame({"unit": ["<b>west</b>", "east"]}, crs=4326, geometry=[
        shapely.box(103.98, 30.64, 104.085, 30.74), shapely.box(104.085, 30.64, 104.14, 30.74)])
    units_path = tmp / "units.gpkg"
    units.to_file(units_path)
    run = coverage_run(RunInputs(facilities=fac_path, units=units_path), tmp / "run")
    return run.folder


def test_map_has_layers_legend_title_and_attribution(demo_run):
    page = (demo_run / "map.html").read_text(encoding="utf-8")
    for word in ("片区级", "社区级", "驿站级", "未覆盖人口", "OpenStreetMap contributors",
                 'id="circles-legend"', 'id="circles-title"', "规划标准"):
        assert word in page
    assert "L.control.layers" in page
    assert "L.control.scale" in page
    assert "tile.openstreetmap.org" in page  # the default map has an OSM tile layer


def test_user_strings_are_escaped(demo_run):
    page = (demo_run / "map.html").read_text(encoding="utf-8")
    assert EVIL not in page
    assert "<b>west</b>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_english_map(demo_run, tmp_path):
    path = draw_run_map(demo_run, lang="en", out=tmp_path / "en.html")
    page = path.read_text(encoding="utf-8")
    assert "uncovered population" in page
    assert "community" in page
    assert "未覆盖人口" not in page


def test_offline_map_loads_nothing_from_the_internet(demo_run, tmp_path):
    page = draw_run_map(demo_run, offline=True, out=tmp_path / "off.html").read_text(encoding="utf-8")
    assert not re.search(r'<script[^>]+src="https?://', page)
    assert not re.search(r'<link[^>]+href="https?://', page)
    assert "tile.openstreetmap.org" not in page
    assert "L.map" in page
    assert "Leaflet" in page
    intranet = draw_run_map(demo_run, offline=True, tiles="http://tiles.city.local/{z}/{x}/{y}.png",
                            out=tmp_path / "intranet.html").read_text(encoding="utf-8")
    assert "tiles.city.local" in intranet


def test_map_of_a_run_without_population_or_gaps(demo_run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("manifest.json", "facilities.csv", "isochrones.gpkg"):
        shutil.copy(demo_run / name, bare / name)
    page = draw_run_map(bare).read_text(encoding="utf-8")
    assert "驿站级" in page
    assert "未覆盖人口" not in page  # no gap layer without gaps
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    shutil.copy(demo_run / "manifest.json", nothing / "manifest.json")
    assert draw_run_map(nothing).exists()


def test_static_figure(demo_run, tmp_path):
    from circles.figures import coverage_figure

    path = coverage_figure(demo_run, tmp_path / "map.png", lang="zh")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000
