"""Formula ("CSV") injection and control characters in every file circles writes (issue 16, item 8).

Names starting with = + - @ tab or CR must reach spreadsheets as text: quoted with ' in CSV files
(and removed again when circles reads its own files), string cells in report.xlsx. C0 control
characters must never reach a file.
"""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
import yaml
from browser import browser_page

from circles.cli import main
from circles.outputs.report import write_report
from circles.outputs.tables import read_csv, write_csv, write_layers
from circles.readers.profiles import get_profile
from circles.runs.audit import run_audit
from circles.runs.scenario import apply_scenario

FORMULAS = ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
CONTROLS = {"a\x1bb": "ab", "c\x00d": "cd"}
NAMES = FORMULAS + list(CONTROLS)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _raw_rows(path: Path) -> list[list[str]]:
    """The cells of a CSV exactly as a spreadsheet receives them (the standard library's parser)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _assert_defused(path: Path) -> None:
    """No cell a spreadsheet would run as a formula, and no control character, in one CSV file."""
    raw = path.read_bytes()
    assert not _BAD_CONTROL.search(raw.decode("utf-8-sig")), path.name
    for r, row in enumerate(_raw_rows(path), start=1):
        for cell in row:
            assert not cell.startswith(TRIGGERS) or _is_number(cell), (path.name, r, cell)


def _facilities_csv(tmp: Path, data_dir: Path, *, drop: int | None = None) -> Path:
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv", dtype=str, keep_default_na=False)
    fac.loc[: len(NAMES) - 1, "name"] = NAMES
    if drop is not None:
        fac = fac.drop(index=drop)
    path = tmp / ("facilities.csv" if drop is None else "facilities_next.csv")
    # Quoting every cell keeps the bare CR of "\r=1" inside its cell for any reader.
    fac.to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    return path


@pytest.fixture(scope="module")
def coverage_folder(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("injection")
    fac = _facilities_csv(tmp, data_dir)
    assert main(["coverage", "--facilities", str(fac), "--out", str(tmp / "run")]) == 0
    return tmp / "run"


@pytest.fixture(scope="module")
def audit_folder(tmp_path_factory, data_dir, coverage_folder):
    """An audit (with siting and a comparison with the coverage run) whose table drops "-2+3"."""
    tmp = tmp_path_factory.mktemp("injection_audit")
    fac = _facilities_csv(tmp, data_dir, drop=NAMES.index("-2+3"))
    cfg = tmp / "city.yaml"
    cfg.write_text(yaml.safe_dump({"name": "inj", "year": 2026, "network": str(data_dir / "chengdu.osm.pbf"),
                                   "facilities": str(fac), "site": {"tier": "station", "new": 1}},
                                  allow_unicode=True), encoding="utf-8")
    summary = run_audit(cfg, compare=coverage_folder)
    assert list(summary.table["status"]) == ["done"], summary.table.to_dict("records")
    return Path(summary.table["folder"].iloc[0])


def test_write_csv_quotes_formula_text_and_leaves_numbers(tmp_path):
    df = pd.DataFrame({"name": [*NAMES, "'=x", "'plain", "普通"], "change": np.arange(11) - 5.5,
                       "mixed": [-3, "-3", None, True, "x", 1.5, "=a", np.nan, "b", "c", "d"]})
    df["tier"] = pd.Categorical(["-c"] * len(df))
    rows = _raw_rows(write_csv(df, tmp_path / "t.csv"))
    assert rows[0] == ["name", "change", "mixed", "tier"]
    by_col = list(zip(*rows[1:], strict=True))
    assert list(by_col[0]) == ["'=1+1", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1)", "'\t=1", "'\r=1",
                               "ab", "cd", "''=x", "'plain", "普通"]
    assert list(by_col[1]) == [str(v) for v in np.arange(11) - 5.5]  # numbers: "-5.5", never "'-5.5"
    # In a mixed column a number stays a number and only the text "-3" is quoted.
    assert list(by_col[2]) == ["-3", "'-3", "", "True", "x", "1.5", "'=a", "", "b", "c", "d"]
    assert set(by_col[3]) == {"'-c"}
    _assert_defused(tmp_path / "t.csv")


def test_read_csv_removes_exactly_the_added_quote(tmp_path):
    names = [*FORMULAS, "'=x", "''+y", "'plain", "it's", "line\nbreak", "cr\r\nlf", "普通"]
    df = pd.DataFrame({"name": names, "n": range(len(names))})
    back = read_csv(write_csv(df, tmp_path / "t.csv"))
    assert back["name"].tolist() == names
    assert back["n"].tolist() == list(range(len(names)))
    # Headers are user text too (extra facility columns pass through).
    odd = pd.DataFrame({"=col": ["v"], "-1": [1]})
    assert _raw_rows(write_csv(odd, tmp_path / "h.csv"))[0] == ["'=col", "'-1"]
    assert list(read_csv(tmp_path / "h.csv").columns) == ["=col", "-1"]


def test_layers_and_report_never_carry_control_characters(tmp_path):
    gdf = gpd.GeoDataFrame({"name": ["a\x1bb", "c\x00d", None]}, crs=4326,
                           geometry=[shapely.Point(104.0, 30.6)] * 3)
    write_layers({"facilities": gdf}, tmp_path / "l.gpkg")
    assert gpd.read_file(tmp_path / "l.gpkg")["name"].tolist()[:2] == ["ab", "cd"]
    # An in-memory comparison table goes straight into the report: openpyxl used to raise mid-audit.
    changes = pd.DataFrame({"kind": ["facility removed"] * 3, "subject": ["a\x1bb", "=1+1", "x\x07y"],
                            "change": [-1.0, -2.0, 3.0]})
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    html_path, xlsx = write_report(tmp_path, changes=changes, lang="en")
    assert not _BAD_CONTROL.search(html_path.read_text(encoding="utf-8"))
    ws = openpyxl.load_workbook(xlsx)["changes"]
    assert [ws.cell(r, 2).value for r in (2, 3, 4)] == ["ab", "=1+1", "xy"]
    assert ws.cell(3, 2).data_type == "s"
    assert [ws.cell(r, 3).value for r in (2, 3, 4)] == [-1, -2, 3]
    assert ws.cell(2, 3).data_type == "n"


def test_coverage_run_csvs_quote_names_and_the_map_shows_them(coverage_folder):
    csvs = sorted(coverage_folder.glob("*.csv"))
    assert {"facilities.csv", "coverage_by_tier.csv", "standards.csv"} <= {p.name for p in csvs}
    for path in csvs:
        _assert_defused(path)
    rows = _raw_rows(coverage_folder / "facilities.csv")
    col = rows[0].index("name")
    expected = ["'" + n for n in FORMULAS] + list(CONTROLS.values())
    assert [r[col] for r in rows[1:len(NAMES) + 1]] == expected
    # The popups are drawn from facilities.csv: they show the names as given, not the quoted form.
    page = (coverage_folder / "map.html").read_text(encoding="utf-8")
    shown = set()
    for m in re.finditer(r'"name": ("(?:[^"\\]|\\.)*")', page):
        shown.add(html.unescape(json.loads(m.group(1))))
    for name in ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", *CONTROLS.values()]:
        assert name in shown, name
        assert "'" + name not in shown, name
    assert not any(_BAD_CONTROL.search(s) for s in shown)


def test_audit_report_xlsx_holds_names_as_text(audit_folder):
    for path in sorted(audit_folder.glob("*.csv")):
        _assert_defused(path)
    wb = openpyxl.load_workbook(audit_folder / "report.xlsx")
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                assert not (isinstance(cell.value, str) and _BAD_CONTROL.search(cell.value))
    ws = wb["facilities"]
    header = [c.value for c in ws[1]]
    names = [ws.cell(r, header.index("name") + 1) for r in range(2, len(NAMES) + 1)]
    # XML turns a bare CR into LF when the file is read: Excel shows the same text.
    kept = [n for n in NAMES if n != "-2+3"]
    assert [c.value for c in names] == [CONTROLS.get(n, n).replace("\r", "\n") for n in kept]
    assert all(c.data_type == "s" for c in names)
    # The comparison read facilities.csv back: the removed facility keeps its own name, quoted once.
    changes = _raw_rows(audit_folder / "changes.csv")
    assert ["facility removed", "'-2+3"] in [r[:2] for r in changes]
    cws = wb["changes"]
    subjects = {cws.cell(r, 2).value: cws.cell(r, 2) for r in range(2, cws.max_row + 1)}
    assert subjects["-2+3"].data_type == "s"
    report = (audit_folder / "report.html").read_text(encoding="utf-8")
    assert html.escape("=1+1") in report
    assert html.escape("'=1+1") not in report


def test_explorer_export_quotes_text_cells(audit_folder, tmp_path):
    with browser_page() as page:
        page.goto((audit_folder / "explorer.html").as_uri())
        page.wait_for_function("window.circles !== undefined")
        sites = page.evaluate("window.circles.sites")
        closing = [i for i, (k, n) in enumerate(zip(sites["kind"], sites["name"], strict=True))
                   if k == "existing" and n in ("=1+1", "@SUM(A1)", "\t=1", "\r=1")]
        assert len(closing) == 4
        for i in closing:
            page.evaluate(f"window.circles.toggle({i})")
        page.evaluate("window.circles.exportCSV()")
        text = page.evaluate("window.__lastExport")
    path = tmp_path / "scenario.csv"
    path.write_text(text.lstrip("\ufeff"), encoding="utf-8-sig")
    rows = _raw_rows(path)
    assert rows[0][:3] == ["action", "id", "name"]
    assert sorted(r[2] for r in rows[1:]) == sorted(["'=1+1", "'@SUM(A1)", "'\t=1", "'\r=1"])
    assert all(_is_number(r[4]) for r in rows[1:])  # lon stays a number
    _assert_defused(path)
    # Reading the export back (a scenario rerun) closes exactly those facilities.
    fac = read_csv(audit_folder / "facilities.csv", dtype={"facility_id": str})
    ids = {sites["id"][i] for i in closing}
    kept = apply_scenario(gpd.GeoDataFrame(fac, geometry=gpd.points_from_xy(fac["lon"], fac["lat"]), crs=4326),
                          path, profile=get_profile("deyang"))
    assert set(fac["facility_id"]) - set(kept["facility_id"]) == ids


def test_scenario_added_site_keeps_its_name(tmp_path):
    # As the page exports it: the quote before a formula-like name is the export's, not the name's.
    path = tmp_path / "scenario.csv"
    path.write_text('action,id,name,tier,lon,lat\r\n"add","p1","\'=1+1","station","104.06","30.66"\r\n'
                    '"add","p2","\'\'-x","station","104.07","30.67"\r\n', encoding="utf-8-sig")
    fac = gpd.GeoDataFrame({"facility_id": ["a"], "name": ["old"], "tier": ["station"]}, crs=4326,
                           geometry=[shapely.Point(104.05, 30.65)])
    out = apply_scenario(fac, path, profile=get_profile("deyang"))
    assert out["name"].tolist()[-2:] == ["=1+1", "'-x"]
