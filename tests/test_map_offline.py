"""map.html readable offline and on Chinese basemaps (issue 21): self-contained by default, drawn on a
basemap made from the extract (basemap.gpkg), on Tianditu, Amap (every coordinate converted to
GCJ-02) or a city's tile server; a metric scale bar, a title no layer list covers, no word of the
other language, figures rounded. A real Chengdu run, checked in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import polyline
import pyogrio
import pytest
import shapely
from browser import browser_page
from scipy.spatial import cKDTree

import circles.outputs.basemap as basemap_module
from circles import network_from_roads
from circles.cli import main
from circles.engine.synthetic import make_city
from circles.errors import CirclesError
from circles.outputs.basemap import (
    DECIMALS,
    LAYERS,
    SIMPLIFY_METRES,
    STREET_CLASSES,
    basemap_layer,
    basemap_layers,
    basemap_source,
    page_styles,
    read_basemap,
    street_classes,
    street_lines,
    write_basemap,
)
from circles.outputs.basemap_streets import TILE_DEGREES, merged_lines
from circles.outputs.maps import draw_run_map
from circles.outputs.tables import read_csv
from circles.readers.crs import wgs84_to_gcj02
from circles.readers.osm import read_osm_features
from circles.runs.load import load_network
from circles.runs.pipeline import RunInputs, coverage_run, site_run

KEY = "0123456789abcdef0123456789abcdef"
EXTERNAL = re.compile(r'<(?:script|img|iframe)[^>]+src="https?://|<link[^>]+href="https?://')
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_MAP = "window[Object.keys(window).find(k => window[k] instanceof L.Map)]"
# What the basemap's pane holds once drawn: its layers, their projected parts, and inked pixels.
_STREET_PANE = """() => {
    const map = """ + _MAP + """, pane = map.getPane("circles-basemap");
    let layers = 0, parts = 0;
    map.eachLayer(l => { if (l.options && l.options.pane === "circles-basemap" && l._parts) {
        layers += 1; parts += l._parts.length; } });
    let ink = 0;
    for (const c of pane ? pane.querySelectorAll("canvas") : []) {
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        for (let i = 3; i < d.length; i += 64) { if (d[i] > 0) { ink += 1; } }
    }
    return {layers, parts, ink};
}"""
# Every text a reader can see: the page's own, and every popup and tooltip of every layer.
_TEXTS = """() => {
    const out = [document.body.innerText], seen = new Set();
    for (const e of document.querySelectorAll("[title], [aria-label]")) {  // what a hover shows
        out.push(e.getAttribute("title") || "", e.getAttribute("aria-label") || "");
    }
    function leaves(layer, acc) {
        if (layer.eachLayer) { layer.eachLayer(l => leaves(l, acc)); } else { acc.push(layer); }
        return acc;
    }
    function text(bound, leaf) {
        const c = bound && bound.getContent ? bound.getContent() : null;
        if (c == null) { return; }
        const v = typeof c === "function" ? c(leaf) : c;
        if (v instanceof Element) { out.push(v.textContent); return; }
        const d = document.createElement("div");
        d.innerHTML = v;
        out.push(d.textContent);
    }
    function walk(layer) {
        if (seen.has(L.Util.stamp(layer))) { return; }
        seen.add(L.Util.stamp(layer));
        for (const leaf of leaves(layer, [])) {
            for (const owner of [layer, leaf]) {
                text(owner.getPopup && owner.getPopup(), leaf);
                text(owner.getTooltip && owner.getTooltip(), leaf);
            }
        }
        if (layer.eachLayer) { layer.eachLayer(walk); }
    }
    for (const v of Object.values(window)) { if (v instanceof L.Layer) { walk(v); } }
    return out;
}"""
_BOX = "(s) => { const r = document.querySelector(s).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"
# Names, unit symbols and systems a page in either language writes as they are.
_NAMES = {"OpenStreetMap", "Leaflet", "WGS-84", "GCJ-02", "m", "km", "m²"}


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_dir):
    """The Chengdu default with its communities as units, and three proposed stations."""
    done = coverage_run(RunInputs(units=data_dir / "chengdu_communities.gpkg"),
                        tmp_path_factory.mktemp("offline") / "run")
    site_run(done, tier="station", new=3)
    draw_run_map(done.folder)  # again, with the proposals
    return done.folder


def _decoded(path) -> str:
    page = path.read_text(encoding="utf-8")
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def _page_coordinates(page: str) -> tuple[np.ndarray, np.ndarray]:
    """Every coordinate the page draws: its GeoJSON's and markers' (rounded to 1e-6 degree),
    and its encoded shapes' (the basemap, service areas and gaps: 1e-5), read from the raw page."""
    exact, decoder = [np.zeros((0, 2))], json.JSONDecoder()
    for m in re.finditer(r'\{"features":\s*\[', page):
        data, _ = decoder.raw_decode(page, m.start())
        exact += [shapely.get_coordinates(shapely.geometry.shape(f["geometry"])) for f in data["features"]]
    exact += [np.array([[float(m.group(2)), float(m.group(1))]])
              for m in re.finditer(r"L\.marker\(\s*\[([-\d.]+),\s*([-\d.]+)\]", page)]
    coarse = [np.zeros((0, 2))]
    for m in re.finditer(r"circlesShapes\(", page):
        data, _ = decoder.raw_decode(page, m.end())
        # Decoded by the polyline package, not by our code: (lat, lon) pairs.
        coarse.append(np.array(polyline.decode(data["s"], data["d"])).reshape(-1, 2)[:, ::-1])
    return np.vstack(exact), np.vstack(coarse)


def _off(page: str, xy: np.ndarray) -> float:
    """How far the farthest drawn coordinate is from ``xy`` rounded as the page rounds it."""
    exact, coarse = _page_coordinates(page)
    return max(cKDTree(np.round(xy, 6)).query(exact)[0].max(), cKDTree(np.round(xy, 5)).query(coarse)[0].max())


def _run_coordinates(folder) -> np.ndarray:
    """Every WGS-84 coordinate of the run's layers and tables."""
    found = []
    for path in folder.glob("*.gpkg"):
        for name, _ in pyogrio.list_layers(path):
            gdf = gpd.read_file(path, layer=name)
            if len(gdf):
                found.append(shapely.get_coordinates(gdf.to_crs(4326).geometry.values))
    for name in ("facilities.csv", "proposals.csv"):
        table = read_csv(folder / name)
        found.append(table[["lon", "lat"]].dropna().to_numpy(float))
    return np.vstack(found)


def _gcj(xy: np.ndarray) -> np.ndarray:
    return np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1]))


def test_basemap_file_has_its_layers_rounded_and_simplified(run, chengdu_net):
    assert [str(n) for n, _ in pyogrio.list_layers(run / "basemap.gpkg")] == list(LAYERS)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    streets = gpd.read_file(run / "basemap.gpkg", layer="streets")
    assert streets.crs.to_epsg() == 4326
    assert set(streets["class"]) == {"major", "minor", "foot"}
    assert manifest["basemap"]["streets"] == len(streets)
    assert manifest["basemap"]["areas"].endswith("chengdu.osm.pbf")
    for name in LAYERS:
        gdf = gpd.read_file(run / "basemap.gpkg", layer=name)
        assert len(gdf), name
        assert manifest["basemap"][name] == len(gdf), name
        xy = shapely.get_coordinates(gdf.geometry.values)
        assert np.abs(xy * 1e6 - np.round(xy * 1e6)).max() < 1e-3, name  # rounded to 1e-6 degrees
    # Merged through degree-2 nodes and simplified: fewer vertices than the edges' ends.
    assert shapely.get_num_coordinates(streets.geometry.values).sum() < 2 * chengdu_net.n_edges * 0.6
    assert streets.to_crs(32648).length.sum() / 1000 == pytest.approx(chengdu_net.km, rel=0.01)
    green = gpd.read_file(run / "basemap.gpkg", layer="green")
    assert green.geom_type.isin(["Polygon", "MultiPolygon"]).all()


def _drawn_shapes(layers: dict) -> list[dict]:
    """The encoded shapes a basemap layer writes into a page."""
    m = folium.Map()
    basemap_layer(layers).add_to(m)
    page, decoder = m.get_root().render(), json.JSONDecoder()
    return [decoder.raw_decode(page, x.end())[0] for x in re.finditer(r"circlesShapes\(", page)]


def test_a_map_reads_only_the_basemap_it_draws(run, monkeypatch):
    vertices = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["basemap"]["vertices"]
    every = read_basemap(run / "basemap.gpkg")
    # Counted again from the file: streets by class, water areas apart from water lines.
    streets = every["streets"]
    counted = {c: int(shapely.get_num_coordinates(streets.geometry.values[streets["class"] == c]).sum())
               for c in STREET_CLASSES}
    water = every["water"].geometry.values
    lines = np.isin(shapely.get_type_id(water), (1, 5))
    counted |= {"water": int(shapely.get_num_coordinates(water[~lines]).sum()),
                "water_line": int(shapely.get_num_coordinates(water[lines]).sum())}
    counted |= {n: int(shapely.get_num_coordinates(every[n].geometry.values).sum())
                for n in ("green", "residential", "buildings")}
    assert vertices == {k: n for k, n in counted.items() if n}
    # With room for the major streets and the water only, that is all a map reads, and it draws
    # the page it drew from every layer.
    monkeypatch.setattr(basemap_module, "BASEMAP_MAX_VERTICES", counted["major"] + counted["water"])
    styles = page_styles(vertices)
    assert styles == ["water", "major"]
    some = read_basemap(run / "basemap.gpkg", styles=styles)
    assert set(some) == {"streets", "water"}
    assert set(some["streets"]["class"]) == {"major"}
    assert _drawn_shapes(some) == _drawn_shapes(every)
    assert len(_drawn_shapes(some)) == 2


def test_each_facility_area_is_drawn_up_to_a_count_then_on_request(run, tmp_path, monkeypatch):
    import circles.outputs.map_facility_areas as own_areas
    import circles.outputs.maps as maps_module

    areas = gpd.read_file(run / "isochrones.gpkg", layer="facilities")
    areas = areas[~areas.geometry.is_empty]
    names = read_csv(run / "facilities.csv").set_index("facility_id")["name"]

    def drawn(path) -> list[str]:
        """The tooltips of the per-facility areas a page draws (one per area)."""
        page = path.read_text(encoding="utf-8")
        tips = [json.JSONDecoder().raw_decode(page, m.end())[0]
                for m in re.finditer(r"circlesShapes\(\{.*?\}, \w+, \[.*?\], ", page)]
        return [tip for group in tips if isinstance(group, list) for tip in group
                if re.search(r" · [\d.]+ 分钟$", tip)]  # "name · tier · 15 分钟"

    # 33 facilities: drawn by default, a layer per tier, each area named by its facility.
    assert _decoded(run / "map.html").count("各设施服务范围") == len(set(areas["tier"]))  # layer names
    tips = drawn(run / "map.html")
    assert len(tips) == len(areas)
    for fid, minutes in zip(areas["id"], areas["minutes"], strict=True):
        assert any(html.escape(names[fid]) in tip and f"{minutes:g} 分钟" in tip for tip in tips), fid
    assert drawn(draw_run_map(run, facility_areas=False, out=tmp_path / "none.html")) == []
    # Above the stated count: only on request (the CLI's --facility-areas).
    monkeypatch.setattr(own_areas, "MAP_FACILITY_AREAS_MAX", 10)
    monkeypatch.setattr(maps_module, "MAP_FACILITY_AREAS_MAX", 10)
    assert drawn(draw_run_map(run, out=tmp_path / "default.html")) == []
    folder = tmp_path / "copy"
    shutil.copytree(run, folder)
    assert main(["map", str(folder), "--facility-areas"]) == 0
    assert len(drawn(folder / "map.html")) == len(areas)
    # Asked for where the run wrote none: said, not silently left out.
    (folder / "isochrones.gpkg").unlink()
    with pytest.warns(UserWarning, match="--facility-areas all"):
        draw_run_map(folder, facility_areas=True)


def test_street_classes():
    values = ["primary", "secondary_link", "motorway", "residential", "service", "footway", "steps",
              "cycleway", "osm:path", "主干路", "城市次干道", "支路", "人行道", "步行街", "Arterial", "", None]
    assert list(street_classes(values)) == ["major", "major", "major", "minor", "minor", "foot", "foot",
                                            "foot", "foot", "major", "major", "minor", "foot", "foot",
                                            "major", "minor", "minor"]


def test_road_line_network_draws_its_own_lines(tmp_path, chengdu_net):
    edges = chengdu_net.edges_gdf().iloc[:1500]
    grade = {"primary": "主干路", "secondary": "次干路", "footway": "人行道"}
    edges.assign(等级=edges["highway"].map(grade).fillna("支路"))[["等级", "geometry"]].to_file(tmp_path / "roads.gpkg")
    net = network_from_roads(tmp_path / "roads.gpkg")
    layers = basemap_layers(net)
    assert basemap_source(net) is None
    assert list(layers) == list(LAYERS)
    assert {"major", "minor"} <= set(layers["streets"]["class"])
    assert all(not len(layers[name]) for name in LAYERS[1:])  # no extract: streets only
    assert layers["streets"].to_crs(32648).length.sum() / 1000 == pytest.approx(net.km, rel=0.01)


def test_default_page_is_self_contained_and_small(run):
    path = run / "map.html"
    page = _decoded(path)
    size = path.stat().st_size
    print(f"\nChengdu default map.html: {size / 1e6:.2f} MB")
    assert size <= 3_000_000
    assert not EXTERNAL.search(page)
    assert "Leaflet 1.9" in page
    assert "tile.openstreetmap.org" not in page
    assert "L.tileLayer" not in page
    assert "circles-basemap" in page
    assert "街道" in page
    online = _decoded(draw_run_map(run, online=True, out=run.parent / "online.html"))
    assert 'src="https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"' in online
    assert "circles-basemap" in online


def _texts(page) -> list[str]:
    page.wait_for_selector(".leaflet-control-layers-overlays label")
    return page.evaluate(_TEXTS)


def _data_values(folder) -> list[str]:
    """The strings of the run's data: names of facilities, units, service points, the folder's; the
    rules' rows the scorecard's popups quote (standards_by_unit.csv: the documents' words, and
    notes and units of measure the engine writes in English whatever the page's language)."""
    values = {folder.resolve().name}
    rules = read_csv(folder / "standards_by_unit.csv", dtype={"unit": str}).fillna("").astype(str)
    values |= {f"{r} ({p})" if p else r for r, p in zip(rules["rule"], rules["part"], strict=True)}
    for column in ("source", "note", "unit_of_measure"):
        values |= set(rules[column]) - {""}
    for name in ("facilities.csv", "proposals.csv"):
        table = read_csv(folder / name)
        values |= set(table["name"].dropna().astype(str)) if "name" in table else set()
    for name, column in (("units.gpkg", "unit"), ("service_points.gpkg", "name")):
        for layer, _ in pyogrio.list_layers(folder / name):
            gdf = gpd.read_file(folder / name, layer=layer)
            values |= set(gdf[column].dropna().astype(str)) if column in gdf else set()
    return sorted(values, key=len, reverse=True)


def test_default_page_in_chromium(run):
    requests: list[str] = []
    with browser_page(requests) as page:
        page.goto((run / "map.html").as_uri())
        texts = _texts(page)
        drawn = page.evaluate(_STREET_PANE)
        assert drawn["layers"] >= 5, drawn
        assert drawn["parts"] > 500, drawn
        assert drawn["ink"] > 1000, drawn  # the canvas has drawn them
        assert page.locator(".leaflet-control-layers-overlays label").first.inner_text().strip() == "街道"
        page.locator(".leaflet-control-layers-overlays label", has_text="街道").locator("input").uncheck()
        assert page.evaluate(_STREET_PANE)["layers"] == 0
        scale = page.locator(".leaflet-control-scale-line")
        assert scale.count() == 1  # metric only
        assert re.fullmatch(r"\d+ k?m", scale.inner_text().strip())
        assert "© OpenStreetMap 贡献者" in page.locator(".leaflet-control-attribution").inner_text()
    assert [u for u in requests if not u.startswith(("file:", "data:", "about:"))] == []
    # No English on the Chinese page but names, unit symbols and what the data says.
    words = _residue(texts, _data_values(run), re.compile(r"[A-Za-z][A-Za-z0-9²-]*"))
    assert words <= _NAMES, sorted(words - _NAMES)
    _check_rounding(texts, people="人", minutes="分钟")


# Every vertex of the encoded shapes as the page's own decoder drew them (folium's GeoJSON layers
# carry a .feature; the encoded shapes do not), and the tooltips they carry.
_ENCODED = """() => {
    const xy = [], tips = [];
    function flat(x) { if (x instanceof L.LatLng) { xy.push([x.lng, x.lat]); } else { x.forEach(flat); } }
    """ + _MAP + """.eachLayer(l => {
        if (l instanceof L.Polyline && !l.feature) {
            flat(l.getLatLngs());
            if (l.getTooltip()) { tips.push(l.getTooltip().getContent()); }
        }
    });
    return {xy, tips};
}"""


def test_encoded_shapes_decode_in_chromium(run):
    """The browser draws every vertex the polyline package reads from the page, and nothing else."""
    raw = (run / "map.html").read_text(encoding="utf-8")
    _, coarse = _page_coordinates(raw)
    with browser_page() as page:
        page.goto((run / "map.html").as_uri())
        page.wait_for_selector(".leaflet-control-layers-overlays label")
        for label in page.locator(".leaflet-control-layers-overlays label input").all():
            label.check()  # layers off at first are not on the map
        drawn = page.evaluate(_ENCODED)
    xy = np.array(drawn["xy"])
    assert len(xy) == len(coarse) > 10_000
    assert np.abs(np.sort(xy, axis=0) - np.sort(coarse, axis=0)).max() < 1e-9
    assert any("人 未覆盖" in tip for tip in drawn["tips"])  # the gap hexagons' tooltips
    assert any("服务范围" in tip for tip in drawn["tips"])  # the service areas'


def _residue(texts: list[str], data: list[str], pattern) -> set[str]:
    found = set()
    for text in texts:
        for value in data:
            text = text.replace(value, " ")
        found |= set(pattern.findall(text))
    return found


def _check_rounding(texts: list[str], *, people: str, minutes: str) -> None:
    """Whole people, minutes to 0.1 (a tier's own threshold is a whole number of minutes)."""
    joined = "\n".join(texts)
    persons = re.findall(rf"(\d[\d,]*(?:\.\d+)?)\s*{people}", joined)
    walks = re.findall(rf"(\d[\d,]*(?:\.\d+)?)\s*{minutes}", joined)
    assert persons
    assert walks
    assert [p for p in persons if "." in p] == []
    assert [w for w in walks if "." in w and len(w.split(".")[1]) != 1] == []
    assert any("." in w for w in walks)  # the gaps' mean walks and the proposals' nearest facility


def test_english_page_in_chromium(run, tmp_path):
    path = draw_run_map(run, lang="en", out=tmp_path / "en.html")
    with browser_page() as page:
        page.set_viewport_size({"width": 800, "height": 600})
        page.goto(path.as_uri())
        texts = _texts(page)
        assert page.locator(".leaflet-control-layers-overlays label").first.inner_text().strip() == "streets"
        _no_overlap(page)
    chinese = _residue(texts, _data_values(run), CJK)
    assert not chinese, "".join(sorted(chinese))
    _check_rounding(texts, people="people", minutes="min")


def _no_overlap(page) -> None:
    title, layers = page.evaluate(_BOX, "#circles-title"), page.evaluate(_BOX, ".leaflet-control-layers")
    zoom = page.evaluate(_BOX, ".leaflet-control-zoom")
    for other in (layers, zoom):
        apart = other[0] >= title[2] or other[2] <= title[0] or other[1] >= title[3] or other[3] <= title[1]
        assert apart, (title, other)
    assert title[2] <= page.viewport_size["width"]
    assert title[1] >= 0


@pytest.mark.parametrize("size", [(1280, 800), (800, 600)])
def test_the_layer_control_never_covers_the_title(run, size):
    with browser_page() as page:
        page.set_viewport_size({"width": size[0], "height": size[1]})
        page.goto((run / "map.html").as_uri())
        page.wait_for_selector(".leaflet-control-layers-overlays label")
        _no_overlap(page)


def test_amap_draws_every_coordinate_in_gcj02(run, tmp_path):
    path = draw_run_map(run, tiles="amap", basemap=True, out=tmp_path / "amap.html")
    raw = path.read_text(encoding="utf-8")
    page = _decoded(path)
    exact, coarse = _page_coordinates(raw)
    wgs = _run_coordinates(run)
    assert _off(raw, _gcj(wgs)) < 1e-7  # each drawn figure is wgs84_to_gcj02 of a figure of the run's files
    assert len(coarse) > 10_000  # the basemap's, the service areas', the gaps'...
    tree = cKDTree(exact)
    for name in ("facilities.csv", "proposals.csv"):  # every marker is there, and not in WGS-84 (~300 m off)
        xy = read_csv(run / name)[["lon", "lat"]].to_numpy(float)
        assert tree.query(np.round(_gcj(xy), 6))[0].max() < 1e-7, name
        assert tree.query(xy)[0].min() > 1e-5, name
    proposals = read_csv(run / "proposals.csv")
    lon, lat = proposals["lon"].to_numpy(float), proposals["lat"].to_numpy(float)
    glon, glat = wgs84_to_gcj02(lon, lat)
    for i in range(len(proposals)):  # the popups give both
        assert f"{lat[i]:.6f}, {lon[i]:.6f}" in page
        assert f"{glat[i]:.6f}, {glon[i]:.6f}" in page
    assert "webrd0{s}.is.autonavi.com" in page
    assert "© 高德地图" in page
    # A city's GCJ-02 server is drawn as Amap is; a WGS-84 one as the run's files are.
    url = "http://tiles.city.local/{z}/{x}/{y}.png"
    city = _page_coordinates(draw_run_map(run, tiles=url, tiles_crs="gcj02", basemap=True,
                                          out=tmp_path / "gcj.html").read_text(encoding="utf-8"))
    assert np.array_equal(city[0], exact)
    assert np.array_equal(city[1], coarse)
    plain = draw_run_map(run, tiles=url, out=tmp_path / "wgs.html").read_text(encoding="utf-8")
    assert _off(plain, wgs) < 1e-7


def test_amap_page_requests_only_its_tiles(run, tmp_path):
    path = draw_run_map(run, tiles="amap", out=tmp_path / "amap.html")
    requests: list[str] = []
    with browser_page(requests) as page:
        page.route("http*://**", lambda route: route.abort())  # no network here: ask, never load
        page.goto(path.as_uri())
        page.wait_for_selector(".leaflet-control-layers-overlays label")
        page.wait_for_timeout(300)
        assert page.evaluate(_STREET_PANE)["layers"] == 0  # under tiles, no basemap unless asked
    hosts = {urlsplit(u).hostname for u in requests if not u.startswith(("file:", "data:", "about:"))}
    assert hosts, "no tile was asked for"
    assert hosts <= {f"webrd0{i}.is.autonavi.com" for i in range(1, 5)}, hosts


def test_tianditu_needs_a_key(run, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    with pytest.raises(CirclesError, match="TIANDITU_KEY"):
        draw_run_map(run, tiles="tianditu", out=tmp_path / "t.html")
    folder = tmp_path / "copy"
    shutil.copytree(run, folder)
    assert main(["map", str(folder), "--tiles", "tianditu"]) == 1
    assert "TIANDITU_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a run command refuses it before any work
        main(["demo", "--tiles", "tianditu", "--out", str(tmp_path / "demo")])
    assert "TIANDITU_KEY" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
    assert main(["map", str(folder), "--tiles", "tianditu-img", "--tiles-key", KEY]) == 0
    page = (folder / "map.html").read_text(encoding="utf-8")
    assert "/img_w/wmts?" in page
    assert "/cia_w/wmts?" in page
    assert f"tk={KEY}" in page
    monkeypatch.setenv("TIANDITU_KEY", KEY)
    path = draw_run_map(run, tiles="tianditu", lang="en", out=tmp_path / "t.html")
    raw, page = path.read_text(encoding="utf-8"), _decoded(path)
    assert "t{s}.tianditu.gov.cn/vec_w/wmts?" in page
    assert "/cva_w/wmts?" in page
    assert "© Tianditu" in page
    # Tianditu is CGCS2000, WGS-84 at map scale: nothing is converted.
    assert _off(raw, _run_coordinates(run)) < 1e-7
    assert "circles-basemap" not in page
    with pytest.raises(CirclesError, match="unknown tiles"):
        draw_run_map(run, tiles="google", out=tmp_path / "g.html")
    with pytest.raises(CirclesError, match="in gcj02"):
        draw_run_map(run, tiles="amap", tiles_crs="wgs84", out=tmp_path / "g.html")


def test_a_run_draws_its_map_as_its_command_asked(run, tmp_path):
    folder = tmp_path / "asked"
    shutil.copytree(run, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["parameters"].update(tiles="amap", online=True)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    page = draw_run_map(folder).read_text(encoding="utf-8")
    assert "autonavi.com" in page
    assert "cdn.jsdelivr.net" in page
    assert main(["map", str(folder), "--tiles", "none", "--offline"]) == 0
    page = (folder / "map.html").read_text(encoding="utf-8")
    assert "autonavi.com" not in page
    assert not EXTERNAL.search(page)
    assert "circles-basemap" in page
    (folder / "basemap.gpkg").unlink()  # a run from before the basemap: drawn without one
    assert "circles-basemap" not in draw_run_map(folder, tiles="none").read_text(encoding="utf-8")


def _old_street_lines(geoms: np.ndarray, crs) -> list[bytes]:
    """The oracle: GEOS line_merge of every edge, geopandas' to_crs, then a rounding (the basemap's
    first way), as sorted normalized WKB."""
    merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(geoms)))
    simple = shapely.simplify(merged, SIMPLIFY_METRES, preserve_topology=False)
    out = gpd.GeoSeries(simple, crs=crs).to_crs(4326).values
    out = shapely.transform(np.asarray(out), lambda c: np.round(c, DECIMALS))
    return sorted(shapely.to_wkb(shapely.normalize(out[~shapely.is_empty(out)])))


@pytest.mark.parametrize("which", ["chengdu", "grid"])
def test_street_lines_are_line_merge_of_every_edge(which, chengdu_net):
    """The edges with nothing to merge kept apart from line_merge: the same lines (normalized) per class."""
    net = chengdu_net if which == "chengdu" else make_city(3_000, missing_share=0.3, seed=2)  # dead ends
    attrs = net.edge_attrs.reset_index(drop=True)
    classes = street_classes(attrs["highway"]) if "highway" in attrs else np.full(net.n_edges, "minor")
    geoms = np.asarray(net.edge_geometry, dtype=object)
    streets = street_lines(net)
    assert len(streets) < net.n_edges  # something was merged
    for name in STREET_CLASSES:
        ours = streets.geometry.values[streets["class"].to_numpy() == name]
        assert sorted(shapely.to_wkb(shapely.normalize(ours))) == _old_street_lines(geoms[classes == name],
                                                                                     net.crs), name


@pytest.mark.parametrize("chunk", [2_000, 7])
def test_street_tiles_of_straight_edges_equal_the_merged_lines(chunk, monkeypatch, tmp_path):
    """A network of straight edges is tiled from its node coordinates (only the edges merged
    through a degree-2 node become GEOS lines): the same display lines as street_lines makes,
    in the layers and in the file, whose bundles are made and written a few at a time."""
    from circles.outputs import basemap_streets

    monkeypatch.setattr(basemap_streets, "_BUNDLE_CHUNK", chunk)
    net = make_city(3_000, missing_share=0.3, seed=2)
    record = write_basemap(net, tmp_path / "basemap.gpkg")
    written = gpd.read_file(tmp_path / "basemap.gpkg", layer="streets")
    lines = street_lines(net)
    for tiles in (basemap_layers(net)["streets"], written):
        assert len(tiles) == record["streets"] > 2 * 7  # several chunks of 7
        parts, which = shapely.get_parts(tiles.geometry.values, return_index=True)
        assert len(parts) == len(lines)
        for name in STREET_CLASSES:
            mine = parts[tiles["class"].to_numpy()[which] == name]
            want = lines.geometry.values[lines["class"].to_numpy() == name]
            assert sorted(shapely.to_wkb(shapely.normalize(mine))) == sorted(shapely.to_wkb(shapely.normalize(want))), name
            assert record["vertices"].get(name, 0) == shapely.get_num_coordinates(want).sum()


def test_basemap_file_bundles_the_street_lines_per_class_and_tile(run, chengdu_net):
    """basemap.gpkg holds every display line once, in bundles of one class and one tile."""
    streets = gpd.read_file(run / "basemap.gpkg", layer="streets")
    lines = street_lines(chengdu_net)
    assert len(streets) < len(lines) / 3
    parts, which = shapely.get_parts(streets.geometry.values, return_index=True)
    for name in STREET_CLASSES:
        mine = parts[streets["class"].to_numpy()[which] == name]
        want = lines.geometry.values[lines["class"].to_numpy() == name]
        assert sorted(shapely.to_wkb(shapely.normalize(mine))) == sorted(shapely.to_wkb(shapely.normalize(want)))
    minx, miny, maxx, maxy = shapely.bounds(parts).T
    tile = np.floor(np.column_stack([minx + maxx, miny + maxy]) / 2 / TILE_DEGREES)
    keys = pd.DataFrame({"bundle": which, "x": tile[:, 0], "y": tile[:, 1]})
    assert keys.drop_duplicates()["bundle"].is_unique  # one tile a bundle
    bundles = keys.assign(c=streets["class"].to_numpy()[which]).drop_duplicates("bundle")
    assert not bundles.duplicated(["x", "y", "c"]).any()  # one bundle a class and tile


def test_merged_lines_at_junctions_and_degenerate_edges():
    """A T whose stem alone is a chain (its far end has degree 2); a junction where two chains meet a
    dead end (line_merge on the chains alone would go through it); a repeated point; a zero-length
    edge; a closed chain of degree-2 nodes."""
    lines = [[(0, 0), (10, 0)], [(10, 0), (20, 0)], [(10, 0), (10, 10)], [(10, 10), (10, 10), (15, 20)],
             [(30, 30), (30, 30)], [(50, 0), (40, 0)], [(40, 0), (35, 5)], [(50, 0), (60, 0)],
             [(60, 0), (65, 5)], [(50, 0), (50, -10)], [(100, 0), (110, 0)], [(110, 0), (105, 9), (100, 0)]]
    geoms = np.array([shapely.LineString(line) for line in lines])
    ours = merged_lines(geoms)
    theirs = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(geoms)))
    assert sorted(shapely.to_wkb(shapely.normalize(ours))) == sorted(shapely.to_wkb(shapely.normalize(theirs)))
    assert len(ours) == 7


def test_basemap_areas_are_those_of_one_reading_per_kind(chengdu_pbf):
    """One streamed reading (pyosmium) split by tags: the same water, green, residential and
    buildings as pyrosm's get_landuse, get_pois and get_buildings read one by one."""
    landuse = read_osm_features(chengdu_pbf, kind="landuse")
    natural = read_osm_features(chengdu_pbf, kind="pois", custom_filter={
        "natural": ["water", "wood", "scrub", "grassland", "heath", "wetland"],
        "leisure": ["park", "garden", "nature_reserve", "golf_course", "dog_park"],
        "waterway": ["riverbank", "dock", "river", "canal", "stream"]})
    buildings = read_osm_features(chengdu_pbf, kind="buildings")
    frames = pd.concat([landuse, natural], ignore_index=True)

    def tag(key):
        return frames[key].astype("string").fillna("")

    polygon = frames.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    water = (tag("natural").eq("water") | tag("waterway").isin(["riverbank", "dock"])
             | tag("landuse").isin(["reservoir", "basin"])).to_numpy()
    river = tag("waterway").isin(["river", "canal", "stream"]).to_numpy() \
        & frames.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()
    green = (tag("landuse").isin(["grass", "forest", "meadow", "village_green", "recreation_ground", "orchard",
                                  "allotments", "plant_nursery", "greenfield", "vineyard"])
             | tag("leisure").isin(["park", "garden", "nature_reserve", "golf_course", "dog_park"])
             | tag("natural").isin(["wood", "scrub", "grassland", "heath", "wetland"])).to_numpy()
    expected = {"water": frames.geometry.values[(water & polygon) | river],
                "green": frames.geometry.values[green & polygon & ~water],
                "residential": frames.geometry.values[tag("landuse").eq("residential").to_numpy() & polygon],
                "buildings": buildings.geometry.values[buildings.geom_type.isin(["Polygon", "MultiPolygon"])]}
    layers = basemap_layers(load_network(chengdu_pbf))
    for name, geoms in expected.items():
        assert len(geoms) > 10, name
        simple = gpd.GeoSeries(geoms, crs=4326).to_crs(32648)
        lines = simple.geom_type.isin(["LineString", "MultiLineString"]).to_numpy()
        values = np.asarray(simple.values, dtype=object).copy()
        values[lines] = shapely.simplify(values[lines], SIMPLIFY_METRES, preserve_topology=False)
        values[~lines] = shapely.simplify(values[~lines], SIMPLIFY_METRES, preserve_topology=True)
        values = shapely.transform(np.asarray(gpd.GeoSeries(values, crs=32648).to_crs(4326).values),
                                   lambda c: np.round(c, DECIMALS))
        ours = set(shapely.to_wkb(shapely.normalize(layers[name].geometry.values)))
        theirs = set(shapely.to_wkb(shapely.normalize(values[~shapely.is_empty(values)])))
        # Two readers, not one: libosmium leaves out a ring that does not close and builds
        # multipolygon relations by their roles; every other feature is the same to the vertex.
        assert len(ours & theirs) >= 0.85 * len(theirs), name
        assert abs(len(ours) - len(theirs)) <= max(3, 0.05 * len(theirs)), name
        size = shapely.area if name != "water" else shapely.length  # water: its outlines and rivers
        assert np.isclose(size(layers[name].geometry.values).sum(), size(values).sum(), rtol=0.02), name
