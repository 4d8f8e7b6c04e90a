"""The coverage map in headless Chromium: layers, legends, popups, escaping, no network offline."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from browser import browser_page

from circles.outputs.maps import draw_run_map
from circles.runs.pipeline import RunInputs, coverage_run, site_run

EVIL = "<img src=x onerror=alert(1)>"
TEMPLATE = "${alert(2)}`);alert(3);//\\"
EVIL_UNIT = "<img src=y onerror=alert(5)>"

# The FeatureGroup behind a layer-control entry, found through the id Leaflet gives its checkbox.
_GROUP = """(label) => {
    const row = [...document.querySelectorAll(".leaflet-control-layers-overlays label")]
        .find(l => l.innerText.includes(label));
    const id = row.querySelector("input").layerId;
    for (const k of Object.keys(window)) {
        const v = window[k];
        if (v instanceof L.FeatureGroup && L.Util.stamp(v) === id) { return k; }
    }
    return null;
}"""
_MAP = "Object.keys(window).find(k => window[k] instanceof L.Map)"
# Page coordinates of the facility marker with a given name (a property of its GeoJSON feature).
_MARKER_XY = """([group, name]) => {
    const map = window[""" + _MAP + """];
    let found = null;
    window[group].eachLayer(gj => gj.eachLayer(m => {
        if (m.feature && m.feature.properties.name.includes(name)) { found = m; }
    }));
    map.setView(found.getLatLng(), 16, {animate: false});
    const p = map.latLngToContainerPoint(found.getLatLng());
    const r = map.getContainer().getBoundingClientRect();
    return [r.left + p.x, r.top + p.y];
}"""
_CENTRE_ON_FIRST = """(group) => {
    let first = null;
    window[group].eachLayer(m => { if (!first && m.getLatLng) { first = m; } });
    window[""" + _MAP + """].setView(first.getLatLng(), 15, {animate: false});
}"""
_COUNT = "() => { let n = 0; window[" + _MAP + "].eachLayer(() => { n += 1; }); return n; }"


@pytest.fixture(scope="module")
def evil_map(tmp_path_factory, data_dir):
    """The offline map of a real coverage and siting run with facilities and a unit named like attacks."""
    tmp = tmp_path_factory.mktemp("browser")
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac.loc[0, "name"] = EVIL
    fac.loc[1, "name"] = TEMPLATE
    fac.to_csv(tmp / "fac.csv", index=False)
    gpd.GeoDataFrame({"unit": [EVIL_UNIT, "东"]}, crs=4326, geometry=[
        shapely.box(103.98, 30.64, 104.085, 30.74), shapely.box(104.085, 30.64, 104.14, 30.74)],
    ).to_file(tmp / "units.gpkg")
    run = coverage_run(RunInputs(facilities=tmp / "fac.csv", units=tmp / "units.gpkg"), tmp / "run")
    site_run(run, tier="station", new=3)
    return run.folder


def _open(page, path, dialogs):
    page.set_default_timeout(10_000)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_selector(".leaflet-control-layers-overlays label")


def test_offline_map_in_chromium(evil_map, tmp_path):
    path = draw_run_map(evil_map, offline=True, out=tmp_path / "map.html")
    requests: list[str] = []
    dialogs: list[str] = []
    with browser_page(requests) as page:
        _open(page, path, dialogs)
        labels = page.locator(".leaflet-control-layers-overlays label")
        names = [labels.nth(i).inner_text().strip() for i in range(labels.count())]
        for expected in ("片区级 · 服务范围 (15 分钟)", "驿站级 · 服务范围 (5 分钟)", "未覆盖人口 · 驿站级",
                         "社区级 · 设施", "建议新增站点 (3)", "行政单元 · 覆盖率 驿站级"):
            assert any(expected in n for n in names), (expected, names)
        assert "OpenStreetMap 贡献者" in page.locator(".leaflet-control-attribution").inner_text()
        assert page.locator(".leaflet-control-scale").is_visible()
        assert "城市社区便民服务综合体" in page.locator("#circles-title").inner_text()

        # The gap legend shows while its layer is on, and the units' legend once they are switched on.
        legends = page.locator(".circles-legend")
        assert legends.count() == 1
        assert "未覆盖人口 · 驿站级" in legends.first.inner_text()
        assert "人" in legends.first.inner_text()
        labels.filter(has_text="行政单元").locator("input").check()
        assert legends.count() == 2
        labels.filter(has_text="未覆盖人口 · 驿站级").locator("input").uncheck()
        assert legends.count() == 1
        assert "行政单元" in legends.first.inner_text()
        labels.filter(has_text="未覆盖人口 · 驿站级").locator("input").check()
        labels.filter(has_text="行政单元").locator("input").uncheck()
        assert legends.count() == 1

        # Toggling the station service area takes its polygons off the map and back.
        before = page.evaluate(_COUNT)
        station = labels.filter(has_text="驿站级 · 服务范围").locator("input")
        station.uncheck()
        assert page.evaluate(_COUNT) < before
        station.check()
        assert page.evaluate(_COUNT) == before

        # Click a facility: its popup shows name, tier, floor area and population served.
        group = page.evaluate(_GROUP, "片区级 · 设施")
        x, y = page.evaluate(_MARKER_XY, [group, "四川省图书馆"])
        page.mouse.click(x, y)
        popup = page.locator(".leaflet-popup-content").last  # a closed popup may still be fading out
        popup.wait_for()
        text = popup.inner_text()
        for word in ("四川省图书馆便民服务综合体", "片区级", "1,739 m²", "服务人口", "超负荷"):
            assert word in text, (word, text)

        # A proposed site: its numbered marker opens the gain.
        page.evaluate(_CENTRE_ON_FIRST, page.evaluate(_GROUP, "建议新增站点"))
        page.locator(".leaflet-marker-icon", has_text="1").first.click()
        page.wait_for_function("() => [...document.querySelectorAll('.leaflet-popup-content')]"
                               ".some(p => p.innerText.includes('新增覆盖人口'))")
        assert "驿站级" in popup.inner_text()
        page.wait_for_timeout(300)  # the popup fades in
        page.screenshot(path=str(tmp_path / "map.png"))

        # Names written like attacks are shown as text, in popups and in tooltips.
        for name, key in ((EVIL, "onerror=alert(1)"), (TEMPLATE, "alert(3);//")):
            x, y = page.evaluate(_MARKER_XY, [group, key])
            page.mouse.click(x, y)
            page.wait_for_function("(n) => [...document.querySelectorAll('.leaflet-popup-content')]"
                                   ".some(p => p.innerText.includes(n))", arg=name)
            page.mouse.move(x + 1, y + 1)
            page.wait_for_selector(".leaflet-tooltip")
            assert name in page.locator(".leaflet-tooltip").last.inner_text()
        units = page.evaluate(_GROUP, "行政单元")
        page.evaluate("(g) => { window[g].addTo(window[" + _MAP + "]);"
                      " window[g].eachLayer(gj => gj.openTooltip(gj.getBounds().getCenter())); }", units)
        assert EVIL_UNIT in page.locator(".leaflet-tooltip", has_text="驿站级").first.inner_text()
        assert page.locator("img").count() == 0
        assert dialogs == []
        page.screenshot(path=str(tmp_path / "escaped.png"))
    assert (tmp_path / "map.png").stat().st_size > 10_000
    online = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    assert online == [], f"the offline map made network requests: {online[:5]}"


def test_english_offline_map_in_chromium(evil_map, tmp_path):
    path = draw_run_map(evil_map, offline=True, lang="en", out=tmp_path / "en.html")
    requests: list[str] = []
    dialogs: list[str] = []
    with browser_page(requests) as page:
        _open(page, path, dialogs)
        names = page.locator(".leaflet-control-layers-overlays").inner_text()
        for expected in ("district · service area (15 min)", "uncovered population · station",
                         "station · facilities", "proposed sites (3)"):
            assert expected in names
        assert "uncovered people per hexagon" in page.locator(".circles-legend").inner_text()
        group = page.evaluate(_GROUP, "district · facilities")
        x, y = page.evaluate(_MARKER_XY, [group, "四川省图书馆"])
        page.mouse.click(x, y)
        text = page.locator(".leaflet-popup-content").last.inner_text()
        for word in ("name", "tier", "district", "floor area", "population served", "overloaded"):
            assert word in text, (word, text)
        assert dialogs == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "about:"))] == []
