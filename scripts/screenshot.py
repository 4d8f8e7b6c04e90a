"""Screenshots for the README: the Chengdu demo map (and the explorer once written), taken in
headless Chromium from the offline pages (this machine has no internet for map tiles).

    python scripts/screenshot.py [RUN_DIR]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

from circles.maps import draw_run_map  # noqa: E402
from circles.pipeline import RunInputs, coverage_run  # noqa: E402


def main() -> None:
    from playwright.sync_api import sync_playwright

    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        coverage_run(RunInputs(), Path(tempfile.mkdtemp()) / "demo").folder
    pages = {"map.png": draw_run_map(run_dir, offline=True, out=run_dir / "map_offline.html")}
    if (run_dir / "explorer.html").exists():
        pages["explorer.png"] = run_dir / "explorer.html"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        for name, path in pages.items():
            page.goto(path.as_uri())
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ROOT / "docs" / name))
            print(f"docs/{name} from {path}")
        browser.close()


if __name__ == "__main__":
    main()
