from __future__ import annotations

from browser import browser_page

from circles.maps import draw_run_map
from circles.pipeline import RunInputs, coverage_run

_COUNT_LAYERS = """() => {
    let n = 0;
    for (const k in window) {
        const m = window[k];
        if (m && m instanceof L.Map) { m.eachLayer(() => { n += 1; }); }
    }
    return n;
}"""


def test_demo_map_in_chromium(tmp_path):
    run = coverage_run(RunInputs(), tmp_path / "demo")
    offline = draw_run_map(run.folder, offline=True, out=run.folder / "map_offline.html")
    requests: list[str] = []
    with browser_page(requests) as page:
        page.goto(offline.as_uri())
        page.wait_for_selector(".leaflet-control-layers")
        labels = page.locator(".leaflet-control-layers-overlays label")
        names = [labels.nth(i).inner_text() for i in range(labels.count())]
        assert any("驿站级" in n and "服务范围" in n for n in names)
        assert any("未覆盖人口" in n for n in names)
        assert page.locator("#circles-legend").is_visible()
        assert "OpenStreetMap contributors" in page.locator(".leaflet-control-attribution").inner_text()

        # Toggle the station service area off: its polygons leave the map.
        before = page.evaluate(_COUNT_LAYERS)
        station = labels.filter(has_text="驿站级 · 服务范围")
        station.locator("input").uncheck()
        after = page.evaluate(_COUNT_LAYERS)
        assert after < before
        station.locator("input").check()
        assert page.evaluate(_COUNT_LAYERS) == before

        # Open a facility popup.
        page.evaluate("""() => {
            for (const k in window) {
                const m = window[k];
                if (m && m instanceof L.Map) {
                    m.eachLayer(l => { if (l instanceof L.CircleMarker && !l._popupShown && l.getPopup()) {
                        if (!window.__opened) { l.openPopup(); window.__opened = true; } } });
                }
            }
        }""")
        page.wait_for_selector(".leaflet-popup-content")
        assert "便民服务综合体" in page.locator(".leaflet-popup-content").inner_text()
        page.screenshot(path=str(tmp_path / "map.png"))
    assert (tmp_path / "map.png").stat().st_size > 10_000
    online = [u for u in requests if not u.startswith(("file:", "data:", "about:"))]
    assert online == [], f"the offline map made network requests: {online[:5]}"
