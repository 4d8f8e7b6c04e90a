"""The scorecard in the report and on the map (issue 18, item 5): ``report.html`` and
``report.xlsx`` open with it, ``map.html`` shades the communities by the rules they fail."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from browser import browser_page

from circles.cli import main
from circles.outputs.i18n import t
from circles.outputs.map_units import scorecard_layer
from circles.outputs.maps import draw_run_map
from circles.outputs.report import write_report
from circles.outputs.tables import write_csv

UNITS = Path(__file__).parent.parent / "data" / "chengdu_communities.gpkg"
FORMULA = '=HYPERLINK("http://evil.example","x")'
# The page point at the middle of the community whose popup starts with the name given.
_COMMUNITY_XY = """(name) => {
    const map = window[Object.keys(window).find(k => window[k] instanceof L.Map)];
    let found = null;
    map.eachLayer(l => { if (l.feature && String(l.feature.properties.popup).startsWith("<b>" + name + "</b>")) { found = l; } });
    const p = map.latLngToContainerPoint(found.getBounds().getCenter()), r = map.getContainer().getBoundingClientRect();
    return [r.left + p.x, r.top + p.y];
}"""


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A ``--profile baoji --units`` coverage run on the embedded Chengdu default."""
    out = tmp_path_factory.mktemp("scorecard") / "run"
    assert main(["coverage", "--profile", "baoji", "--units", str(UNITS), "--out", str(out)]) == 0
    return out


def _card(folder: Path) -> pd.DataFrame:
    # Read by hand, not through circles: the figures the report must agree with.
    return pd.read_csv(folder / "scorecard.csv", encoding="utf-8-sig", dtype={"unit": str})


def _met(card: pd.DataFrame) -> int:
    return int(card["all_passed"].astype(str).eq("True").sum())


def _page(path: Path) -> str:
    """A page with its scripts' JSON string escapes (``\\u5b9d``...) decoded."""
    text = path.read_text(encoding="utf-8")
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _copy(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "copy"))


def test_the_report_opens_with_the_scorecard(run):
    card = _card(run)
    n, total = _met(card), len(card)
    assert 0 < n < total  # the sample communities have both kinds
    write_report(run, lang="zh")
    page = (run / "report.html").read_text(encoding="utf-8")
    headline = re.search(r'<p class="headline">(.*?)</p>', page).group(1)
    assert headline == f"宝鸡：{total} 个社区中 {n} 个达到全部规则 · Baoji: {n} of {total} communities meet every rule"
    # The headline, then the scorecard, then the rules per community, then everything else.
    order = [page.index(s) for s in ('class="headline"', "社区评分卡", "分社区规则核查", 'class="kpi"',
                                     "<h2>分级覆盖")]
    assert order == sorted(order)
    # The scorecard table is worst first, as written, with every community.
    table = page[order[1]:order[2]]
    positions = [table.index(f"<td>{u}</td>") for u in card["unit"]]
    assert positions == sorted(positions)
    assert card["rules_failed"].is_monotonic_decreasing
    # The rules table carries each rule's document quote.
    assert "按照每百户30平方米以上标准落实社区办公服务场所" in page[order[2]:order[3]]


def test_the_english_report_says_it_in_english(run, tmp_path):
    folder = _copy(run, tmp_path)
    card = _card(folder)
    write_report(folder, lang="en")
    page = (folder / "report.html").read_text(encoding="utf-8")
    headline = re.search(r'<p class="headline">(.*?)</p>', page).group(1)
    assert headline == f"Baoji: {_met(card)} of {len(card)} communities meet every rule"
    assert "Community scorecard" in page
    assert "社区评分卡" not in page


def test_the_workbook_opens_with_the_scorecard_and_holds_no_formula(run, tmp_path):
    folder = _copy(run, tmp_path)
    card = _card(folder)
    # A community named like a formula must stay text in the workbook.
    named = card.assign(unit=card["unit"].where(card.index != 0, FORMULA))
    write_csv(named, folder / "scorecard.csv")
    write_report(folder)
    wb = openpyxl.load_workbook(folder / "report.xlsx")
    assert wb.sheetnames[:2] == ["scorecard", "standards_by_unit"]
    sheet = wb["scorecard"]
    header = [c.value for c in sheet[1]]
    assert header == list(card.columns)
    assert sheet.max_row == len(card) + 1
    cell = sheet.cell(row=2, column=header.index("unit") + 1)
    assert cell.value == FORMULA
    assert cell.data_type == "s"
    formulas = [f"{ws.title}!{c.coordinate}" for ws in wb for row in ws.iter_rows() for c in row
                if c.data_type == "f"]
    assert formulas == []
    rules = wb["standards_by_unit"]
    sources = [c.value for c in next(rules.iter_cols(min_col=[c.value for c in rules[1]].index("source") + 1,
                                                     min_row=2))]
    assert all("宝鸡" in s for s in sources)


def test_a_run_without_a_scorecard_has_no_headline(run, tmp_path):
    folder = _copy(run, tmp_path)
    (folder / "scorecard.csv").unlink()
    (folder / "standards_by_unit.csv").unlink()
    write_report(folder)
    assert 'class="headline"' not in (folder / "report.html").read_text(encoding="utf-8")
    assert openpyxl.load_workbook(folder / "report.xlsx").sheetnames[0] == "coverage_by_tier"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_map_shades_every_community(run, tmp_path, lang):
    # The run drew map.html itself in the profile's language (zh); English is drawn again.
    path = run / "map.html" if lang == "zh" else draw_run_map(run, lang=lang, out=tmp_path / "en.html")
    page = _page(path)
    assert t("scorecard", lang) in page
    assert t("legend_scorecard", lang) in page
    card = _card(run)
    for unit in card["unit"]:
        assert f"<b>{unit}</b>" in page
    for codes in card["failed"].dropna():
        for code in codes.split("; "):
            assert f"<b>{code}</b>" in page  # in the popup of the community failing it


def test_the_map_finds_the_units_through_the_manifest(run, tmp_path):
    folder = _copy(run, tmp_path)
    (folder / "units.gpkg").unlink()
    page = _page(draw_run_map(folder, lang="en"))
    assert t("scorecard", "en") in page
    assert all(f"<b>{unit}</b>" in page for unit in _card(folder)["unit"])


def test_scorecard_layer_colours_and_popups():
    boxes = [shapely.box(104.0 + i / 100, 30.6, 104.01 + i / 100, 30.61) for i in range(4)]
    units = gpd.GeoDataFrame({"unit": ["<b>a</b>", "b", "c", "d"], "rules_failed": [0, 1, 7, 0],
                              "rules_evaluated": [2, 2, 9, 0]}, geometry=boxes, crs=4326)
    by_unit = pd.DataFrame({"unit": ["b", "b", "c"], "rule": ["kindergarten_households", "ok_rule", "x"],
                            "part": ["", "", "committees"], "source": ["《文》: “幼儿园”", "", ""],
                            "value": [1600.0, 1.0, 0.25], "threshold": [1500.0, 1.0, 0.3],
                            "unit_of_measure": ["households", "", "share"],
                            "passed": [False, True, False], "note": ["none in the unit", "", ""]})
    fg = scorecard_layer(units, by_unit=by_unit, lang="en")
    geojson = next(c for c in fg._children.values() if hasattr(c, "data"))
    props = [f["properties"] for f in geojson.data["features"]]
    assert [p["fill"] for p in props] == ["#1a9850", "#fee08b", "#d73027", "#cccccc"]
    assert props[0]["popup"].startswith("<b>&lt;b&gt;a&lt;/b&gt;</b><br>0 failed of 2 evaluated")
    assert "<b>kindergarten_households</b>: 1,600 against 1,500 (households)" in props[1]["popup"]
    assert "《文》: “幼儿园”" in props[1]["popup"]
    assert "none in the unit" in props[1]["popup"]
    assert "ok_rule" not in props[1]["popup"]  # passed rules are not listed
    assert "<b>x (committees)</b>: 0.25 against 0.3 (share)" in props[2]["popup"]
    assert props[3]["popup"] == "<b>d</b><br>no rule evaluated"


def test_the_map_shades_communities_above_a_finer_level(tmp_path):
    # Communities, then grids (网格) halving each: the finest layer of units.gpkg is the grids,
    # yet the scorecard's communities are shaded on their own polygons.
    communities = gpd.read_file(UNITS)
    halves = []
    for name, geom in zip(communities["社区"], communities.geometry, strict=True):
        minx, miny, maxx, maxy = geom.bounds
        mid = (minx + maxx) / 2
        halves += [(f"{name}西网格", shapely.box(minx, miny, mid, maxy)),
                   (f"{name}东网格", shapely.box(mid, miny, maxx, maxy))]
    grids = gpd.GeoDataFrame({"网格": [n for n, _ in halves]}, geometry=[g for _, g in halves], crs=4326)
    grids.to_file(tmp_path / "grids.gpkg", engine="pyogrio")
    out = tmp_path / "run"
    assert main(["coverage", "--profile", "baoji", "--units", str(UNITS), "--units", str(tmp_path / "grids.gpkg"),
                 "--out", str(out)]) == 0
    card = _card(out)
    assert set(card["unit"]) == set(communities["社区"])
    page = _page(out / "map.html")
    assert t("scorecard", "zh") in page
    assert all(f"<b>{unit}</b>" in page for unit in card["unit"])


def test_a_click_on_a_community_opens_its_failed_rules_in_chromium(run, tmp_path):
    # The panes above the units (gaps, service areas, facilities) are canvases that take every
    # click: the layer opens the popup of the community under a click no other layer took.
    path = draw_run_map(run, offline=True, lang="en", out=tmp_path / "en.html")
    card = _card(run).set_index("unit")
    with browser_page() as page:
        page.set_default_timeout(10_000)
        page.goto(path.as_uri())
        labels = page.locator(".leaflet-control-layers-overlays label")
        labels.filter(has_text=t("scorecard", "en")).locator("input").check()
        assert any(t("legend_scorecard", "en") in text for text in page.locator(".circles-legend").all_inner_texts())
        for unit in ("示例一社区", "示例四社区"):  # neither holds a complex that could take the click
            x, y = page.evaluate(_COMMUNITY_XY, unit)
            page.mouse.click(x, y)
            page.wait_for_function("(n) => [...document.querySelectorAll('.leaflet-popup-content')]"
                                   ".some(p => p.innerText.startsWith(n))", arg=unit)
            text = page.locator(".leaflet-popup-content").last.inner_text()
            codes = str(card.loc[unit, "failed"]) if card.loc[unit, "rules_failed"] else ""
            for code in filter(None, codes.split("; ")):
                assert code in text
            assert ("rules failed" in text) == bool(codes)
