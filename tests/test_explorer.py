from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from browser import browser_page

from circles.cli import main
from circles.engine.routing import coverage_matrix
from circles.outputs.explorer import explorer_data, render
from circles.runs.pipeline import RunInputs, coverage_run, site_run


@pytest.fixture(scope="module")
def site_folder(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("explorer")
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac.loc[1, "name"] = "<script>alert(1)</script>"
    path = tmp / "fac.csv"
    fac.to_csv(path, index=False)
    assert main(["site", "--new", "3", "--facilities", str(path), "--out", str(tmp / "run")]) == 0
    return tmp / "run", path


def _u32(b64: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), dtype="<u4")


def test_embedded_matrix_equals_the_routing_kernel(tmp_path):
    run = coverage_run(RunInputs(), tmp_path / "r", draw_map=False)
    site_run(run, new=2)
    data = explorer_data(run, spacing_metres=300)
    res = run.result
    n_existing = int((res.facilities["status"] == "ok").sum())
    ok = (res.facilities["status"] == "ok").to_numpy()
    for tier in res.profile.tiers:
        m = data["matrices"][tier.code]
        indptr, indices = _u32(m["indptr"]), _u32(m["indices"])
        kernel = coverage_matrix(res.network, res.facility_anchors.subset(ok), res.demand_anchors,
                                 limit_metres=res.profile.threshold_metres(tier.code)).tocsr()
        for row in range(n_existing):
            mine = set(indices[indptr[row]:indptr[row + 1]].tolist())
            assert mine == set(kernel[row].indices.tolist())
    assert len(data["sites"]["lon"]) == len(indptr) - 1


def test_page_is_self_contained_and_escaped(site_folder):
    page = (site_folder[0] / "explorer.html").read_text(encoding="utf-8")
    assert not re.search(r'<script[^>]+src="https?://', page)
    assert not re.search(r'<link[^>]+href="https?://', page)
    assert "<script>alert(1)</script>" not in page
    assert (site_folder[0] / "explorer.html").stat().st_size < 15_000_000
    en = render(json.loads(page.split('type="application/json">')[1].split("</script>")[0])["data"], lang="en")
    assert "export CSV" in en


def test_explorer_in_chromium_round_trips_to_coverage(site_folder, tmp_path):
    folder, fac_path = site_folder
    requests: list[str] = []
    with browser_page(requests) as page:
        page.goto((folder / "explorer.html").as_uri())
        page.wait_for_function("window.circles !== undefined")
        sites = page.evaluate("window.circles.sites")
        kinds = sites["kind"]
        # Candidates far apart that reach people within 5 minutes, and the busiest station.
        size = page.evaluate("n => Array.from({length: n}, (_, s) => window.circles.reachSize(s, 'station'))",
                             len(kinds))
        candidates = [i for i, k in enumerate(kinds) if k == "candidate" and size[i] > 0][::97]
        existing = sorted((i for i, k in enumerate(kinds) if k == "existing"), key=lambda i: -size[i])
        before = page.evaluate("window.circles.covered()")
        for i in candidates[:3]:
            page.evaluate(f"window.circles.toggle({i})")
        page.evaluate(f"window.circles.toggle({existing[0]})")  # close one facility
        after = page.evaluate("window.circles.covered()")
        shown = page.locator("#tiers tr[data-tier='station'] td.covered").inner_text()
        assert shown.replace(",", "") == str(round(after["station"]))
        page.evaluate("window.circles.exportCSV()")
        csv_text = page.evaluate("window.__lastExport")
        page.screenshot(path=str(tmp_path / "explorer.png"))
    assert after != before
    online = [u for u in requests if not u.startswith(("file:", "data:", "blob:", "about:"))]
    assert online == []
    scenario = tmp_path / "scenario.csv"
    scenario.write_text(csv_text, encoding="utf-8")
    rows = pd.read_csv(scenario, encoding="utf-8-sig")
    assert sorted(rows["action"]) == ["add", "add", "add", "close"]
    assert {"gcj02_lon", "gcj02_lat", "tier", "lon", "lat"} <= set(rows.columns)
    assert main(["coverage", "--facilities", str(fac_path), "--scenario", str(scenario),
                 "--out", str(tmp_path / "again")]) == 0
    table = pd.read_csv(tmp_path / "again" / "coverage_by_tier.csv", encoding="utf-8-sig").set_index("tier")
    for tier, value in after.items():
        assert table.loc[tier, "covered_pop"] == pytest.approx(value, abs=0.5)
