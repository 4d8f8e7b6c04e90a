"""Screenshots for the README: the Chengdu demo map with five proposed stations and a facility's
popup open (and the explorer, when the run folder has one), taken in headless Chromium from the
pages as circles writes them by default: self-contained, on the street basemap drawn from the
extract, with every network request refused (there is none to refuse).

    python scripts/screenshot.py [RUN_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

from circles.outputs.maps import draw_run_map  # noqa: E402
from circles.runs.pipeline import RunInputs, coverage_run, site_run  # noqa: E402

# Open the popup of the largest district-level facility, as a reader clicking on it would see.
_OPEN_POPUP = """() => {
    const map = window[Object.keys(window).find(k => window[k] instanceof L.Map)];
    let best = null;
    map.eachLayer(l => {
        const p = l.feature && l.feature.properties;
        if (l instanceof L.CircleMarker && p && p.floor && (!best || l.options.radius > best.options.radius)) {
            best = l;
        }
    });
    // The popup is bound to the GeoJSON layer above the marker: a click propagates up to it.
    if (best) { best.fire("click", {latlng: best.getLatLng()}, true); }
    map.eachLayer(l => { if (l.closeTooltip) { l.closeTooltip(); } });
}"""


def main() -> None:
    from playwright.sync_api import sync_playwright

    if len(sys.argv) > 1:
        run_dir = Path(sys.argv[1])
    else:
        run = coverage_run(RunInputs(), Path(tempfile.mkdtemp()) / "demo")
        site_run(run, tier="station", new=5)
        run_dir = run.folder
    pages = {"map.png": draw_run_map(run_dir, out=run_dir / "map_screenshot.html")}
    if (run_dir / "explorer.html").exists():
        pages["explorer.png"] = run_dir / "explorer.html"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        requests: list[str] = []
        page.route("http*://**", lambda route: (requests.append(route.request.url), route.abort()))
        for name, path in pages.items():
            page.goto(path.as_uri())
            page.wait_for_timeout(1000)
            if name == "map.png":
                page.evaluate(_OPEN_POPUP)
                page.wait_for_timeout(500)  # the popup fades in
            page.screenshot(path=str(ROOT / "docs" / name))
            print(f"docs/{name} from {path}")
        browser.close()
    if requests:
        print(f"the pages asked the network for {len(requests)} files, e.g. {requests[0]}", file=sys.stderr)


if __name__ == "__main__":
    main()
