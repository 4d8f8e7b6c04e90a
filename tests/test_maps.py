from __future__ import annotations

import json
import re
import shutil
import warnings
from html.parser import HTMLParser

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from circles.errors import CirclesError
from circles.outputs.maps import (
    base_map,
    draw_run_map,
    facilities_layer,
    gaps_layer,
    proposals_layer,
    service_area_layer,
    units_layer,
)
from circles.outputs.offline import inline_assets
from circles.readers.profiles import get_profile
from circles.runs.pipeline import RunInputs, coverage_run, site_run

EVIL = "<img src=x onerror=alert(1)>"
TEMPLATE = "${alert(2)}`);alert(3);//\\"
EVIL_UNIT = "<b>west</b>"
EVIL_FOLDER = "<img src=x onerror=alert(4)>"
EXTERNAL = re.compile(r'<(?:script|img|iframe)[^>]+src="https?://|<link[^>]+href="https?://')


def _read(path) -> str:
    """A page with the JSON string escapes inside its scripts (``\\u003c``, ``\\u00b7``...) decoded,
    so what a string will be once JavaScript has parsed it can be searched for."""
    page = path.read_text(encoding="utf-8")
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


class _Page(HTMLParser):
    """The tags of a page outside its scripts, and the text of the title box."""

    def __init__(self, page: str):
        super().__init__()
        self.tags: list[str] = []
        self.title_box = ""
        self._in_title = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_title = dict(attrs).get("id") == "circles-title"

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title_box += data


@pytest.fixture(scope="module")
def evil_run(tmp_path_factory, data_dir):
    """A real coverage and siting run on the Chengdu default, in a folder named like an attack,
    with units and facilities named like attacks."""
    tmp = tmp_path_factory.mktemp("maps")
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac.loc[0, "name"] = EVIL
    fac.loc[1, "name"] = TEMPLATE
    fac.to_csv(tmp / "fac.csv", index=False)
    units = gpd.GeoDataFrame({"unit": [EVIL_UNIT, "east"]}, crs=4326, geometry=[
        shapely.box(103.98, 30.64, 104.085, 30.74), shapely.box(104.085, 30.64, 104.14, 30.74)])
    units.to_file(tmp / "units.gpkg")
    run = coverage_run(RunInputs(facilities=tmp / "fac.csv", units=tmp / "units.gpkg"), tmp / EVIL_FOLDER)
    site_run(run, tier="station", new=3)
    draw_run_map(run.folder)
    return run.folder


def test_map_has_every_layer_legend_title_and_attribution(evil_run):
    page = _read(evil_run / "map.html")
    for word in ("片区级 · 服务范围", "社区级 · 服务范围", "驿站级 · 服务范围", "驿站级 · 设施",
                 "未覆盖人口 · 驿站级", "未覆盖人口 · 片区级", "建议新增站点 (3)", "行政单元",
                 "未覆盖人口（每个六边形）", "OpenStreetMap 贡献者", "规划标准", "日期"):
        assert word in page, word
    assert "L.control.layers" in page
    assert "L.control.scale" in page
    assert "circles-legend" in page
    assert "tile.openstreetmap.org" not in page  # the default map draws its own basemap, no tiles
    created = json.loads((evil_run / "manifest.json").read_text(encoding="utf-8"))["created"][:10]
    title = _Page(page).title_box
    assert "城市社区便民服务综合体（德阳）" in title
    assert created in title
    assert "人口为估算值" in title  # the demo's population is estimated from OSM


def test_user_strings_are_escaped(evil_run):
    page = _read(evil_run / "map.html")
    for raw in (EVIL, TEMPLATE, EVIL_UNIT, "${alert", "`);alert"):
        assert raw not in page, raw
    parsed = _Page(page)
    assert "img" not in parsed.tags
    assert "b" not in parsed.tags
    # The folder's name is in the title as text, not as an element.
    assert EVIL_FOLDER in parsed.title_box
    # The names are in the page as HTML text, also once JavaScript has read its strings.
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&#36;{alert(2)}&#96;);alert(3);//&#92;" in page
    assert "&lt;b&gt;west&lt;/b&gt;" in page


def test_english_map(evil_run, tmp_path):
    page = _read(draw_run_map(evil_run, lang="en", out=tmp_path / "en.html"))
    for word in ("uncovered population · station", "station · service area (5 min)", "district · facilities",
                 "proposed sites (3)", "administrative units", "uncovered people per hexagon", "population served",
                 "profile: Community service complexes (Deyang)"):
        assert word in page, word
    for word in ("未覆盖人口", "服务范围", "规划标准", "服务人口"):
        assert word not in page, word


def test_offline_map_loads_nothing_from_the_internet(evil_run, tmp_path):
    page = _read(draw_run_map(evil_run, offline=True, out=tmp_path / "off.html"))
    assert not EXTERNAL.search(page)
    assert "tile.openstreetmap.org" not in page
    assert "jquery" not in page.lower()  # only Leaflet is needed, and inlined
    assert "L.map(" in page
    assert "Leaflet 1.9" in page
    assert "OpenStreetMap 贡献者" in page
    intranet = _read(draw_run_map(evil_run, offline=True, tiles="http://tiles.city.local/{z}/{x}/{y}.png",
                                  out=tmp_path / "intranet.html"))
    assert "tiles.city.local" in intranet
    assert not EXTERNAL.search(intranet)


def test_offline_inlining_refuses_unknown_assets():
    page = '<script src="https://example.org/unknown.js"></script>'
    with pytest.raises(CirclesError, match="no offline copy"):
        inline_assets(page)


def _write_run(folder, *, pop: float, gaps: bool, one_isochrone_layer: bool = False):
    """A hand-made run folder following DESIGN.md's contract."""
    profile = get_profile("deyang")
    folder.mkdir()
    rows = [{"tier": tr.code, "tier_name": tr.name_zh, "threshold_minutes": tr.minutes,
             "threshold_metres": tr.minutes * 75, "facilities": 1, "population": pop,
             "covered_pop": pop / 2, "uncovered_pop": pop / 2, "offnetwork_pop": 0.0, "outside_pop": 0.0,
             "covered_share": 0.5 if pop else np.nan} for tr in profile.tiers]
    pd.DataFrame(rows).to_csv(folder / "coverage_by_tier.csv", index=False, encoding="utf-8-sig")
    manifest = {"command": "coverage", "created": "2025-03-04T05:06:07+0000",
                "parameters": {"profile": "deyang"}, "counts": {"population": pop},
                "population": {"label": "hand-made", "is_estimate": False}, "coverage_by_tier": rows}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    lon, lat = np.array([104.05, 104.06, 104.07]), np.array([30.66, 30.67, 30.68])
    pd.DataFrame({"facility_id": ["A", "B", "C"], "name": [EVIL, "乙", "丙"],
                  "tier": [tr.code for tr in profile.tiers], "tier_name": [tr.name_zh for tr in profile.tiers],
                  "status": "ok", "floor_area_m2": [2000, 800, 300], "households_capacity": np.nan,
                  "pop_in_circle": [pop, pop / 2, 0], "served_pop": [pop, pop / 2, 0],
                  "served_households": np.nan, "m2_per_100_households": np.nan,
                  "overloaded": [False, True, False], "lon": lon, "lat": lat,
                  }).to_csv(folder / "facilities.csv", index=False, encoding="utf-8-sig")
    areas = [gpd.GeoDataFrame({"tier": [tr.code]}, geometry=[shapely.Point(x, y).buffer(0.004 * (3 - i))],
                              crs=4326) for i, (tr, x, y) in enumerate(zip(profile.tiers, lon, lat, strict=True))]
    if one_isochrone_layer:
        pd.concat(areas).to_file(folder / "isochrones.gpkg", layer="service_areas")
    else:
        for tr, a in zip(profile.tiers, areas, strict=True):
            a.to_file(folder / "isochrones.gpkg", layer=tr.code)
    if gaps:
        hexes = gpd.GeoDataFrame({"h3": ["a", "b"], "tier": "station", "pop": [120.0, 40.0],
                                  "uncovered_pop": [120.0, 40.0], "offnetwork_pop": 0.0,
                                  "mean_minutes": [7.5, np.inf], "max_minutes": [9.0, np.inf]},
                                 geometry=[shapely.Point(104.08, 30.69).buffer(0.002),
                                           shapely.Point(104.09, 30.69).buffer(0.002)], crs=4326)
        hexes.to_file(folder / "gaps.gpkg", layer="gaps_station")
    else:  # what a run with nobody uncovered (or no population) writes
        gpd.GeoDataFrame({"h3": [], "tier": [], "uncovered_pop": []}, geometry=[], crs=4326).to_file(
            folder / "gaps.gpkg", layer="gaps")
    gpd.GeoDataFrame({"unit": ["甲街道", "乙街道"], "station_covered_share": [np.nan if not pop else 0.25, np.nan]},
                     geometry=[shapely.box(104.0, 30.6, 104.065, 30.7), shapely.box(104.065, 30.6, 104.1, 30.7)],
                     crs=4326).to_file(folder / "units.gpkg", layer="units")
    return folder


def test_map_of_a_run_with_no_population(tmp_path):
    run = _write_run(tmp_path / "nopop", pop=0.0, gaps=False)
    page = _read(draw_run_map(run))
    assert "驿站级 · 服务范围" in page
    assert "片区级 · 设施 (1)" in page
    assert "未覆盖人口" not in page  # no gap layer when nobody is uncovered
    assert "行政单元" in page
    assert "2025-03-04" in page


def test_map_of_a_run_with_gaps_and_one_isochrone_layer(tmp_path):
    run = _write_run(tmp_path / "hand", pop=500.0, gaps=True, one_isochrone_layer=True)
    page = _read(draw_run_map(run, lang="en"))
    for word in ("district · service area", "community · service area", "station · service area",
                 "uncovered population · station", "120 people uncovered", "7.5 min", "unreachable on foot",
                 "25.0%"):
        assert word in page, word
    assert "uncovered population · district" not in page


def test_maps_of_sparse_folders(evil_run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("manifest.json", "facilities.csv", "isochrones.gpkg"):
        shutil.copy(evil_run / name, bare / name)
    page = _read(draw_run_map(bare))
    assert "驿站级 · 服务范围" in page
    assert "未覆盖人口" not in page
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    shutil.copy(evil_run / "manifest.json", nothing / "manifest.json")
    assert "L.map(" in _read(draw_run_map(nothing))
    with pytest.raises(CirclesError, match=r"no manifest\.json"):
        draw_run_map(tmp_path / "missing")
    with pytest.raises(CirclesError, match="unknown map language"):
        draw_run_map(nothing, lang="fr")


def test_layers_compose_in_a_notebook(tmp_path):
    run = _write_run(tmp_path / "nb", pop=500.0, gaps=True)
    profile = get_profile("deyang")
    station = profile.tier("station")
    m = base_map((104.0, 30.6, 104.1, 30.7), offline=True, title=f"my {EVIL}", lang="en")
    layers = [service_area_layer(gpd.read_file(run / "isochrones.gpkg", layer="station"), station, lang="en"),
              *facilities_layer(pd.read_csv(run / "facilities.csv", encoding="utf-8-sig"), profile, lang="en"),
              gaps_layer(gpd.read_file(run / "gaps.gpkg", layer="gaps_station"), tier=station, lang="en"),
              proposals_layer(pd.DataFrame({"rank": [1], "lon": [104.08], "lat": [30.69], "tier": ["station"],
                                            "new_covered_pop": [120.0], "cumulative_covered_share": [0.74],
                                            "nearest_existing_minutes": [6.0]}), lang="en"),
              units_layer(gpd.read_file(run / "units.gpkg"), profile=profile, lang="en")]
    assert all(isinstance(layer, folium.FeatureGroup) for layer in layers)
    for layer in layers:
        layer.add_to(m)
    folium.LayerControl().add_to(m)
    path = tmp_path / "nb.html"
    path.write_text(inline_assets(m.get_root().render()), encoding="utf-8")
    page = _read(path)
    assert EVIL not in page
    assert "my &lt;img" in page
    for word in ("station · service area (5 min)", "community · facilities (1)", "proposed sites (1)",
                 "newly covered", "74.0%", "administrative units · covered share station"):
        assert word in page, word
    assert not EXTERNAL.search(page)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_static_figure(evil_run, tmp_path, lang):
    from circles.outputs.figures import coverage_figure

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = coverage_figure(evil_run, tmp_path / "map.png", lang=lang)
    # Without a CJK font the labels fall back to English: never boxes for missing glyphs.
    assert not [w for w in caught if "missing from" in str(w.message)]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 20_000
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(evil_run / "manifest.json", bare / "manifest.json")
    assert coverage_figure(bare, tmp_path / "bare.png", lang=lang).stat().st_size > 1_000
