from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from circles.cli import main
from circles.runs.audit import load_config, run_audit


def _config(path, **city):
    path.write_text(yaml.safe_dump(city, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first_audit(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("audit")
    cfg = _config(tmp / "chengdu.yaml", name="chengdu-central", year=2025,
                  network=str(data_dir / "chengdu.osm.pbf"),
                  facilities=str(data_dir / "chengdu_facilities.csv"), site={"tier": "station", "new": 3})
    summary = run_audit(cfg)
    assert list(summary.table["status"]) == ["done"]
    return tmp, summary.table["folder"].iloc[0]


def test_audit_folder_is_complete(first_audit):
    _, folder = first_audit
    from pathlib import Path

    folder = Path(folder)
    assert folder.name == "chengdu-central-2025"
    for name in ("coverage_by_tier.csv", "facilities.csv", "demand.gpkg", "gaps.gpkg", "isochrones.gpkg",
                 "standards.csv", "proposals.csv", "scenario_comparison.csv", "map.html", "report.html",
                 "report.xlsx", "manifest.json"):
        assert (folder / name).exists(), name
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["audit"]["complete"]
    assert len(manifest["inputs"]["facilities"]["sha256"]) == 64
    assert manifest["versions"]["circles"]
    report = (folder / "report.html").read_text(encoding="utf-8")
    assert "分级覆盖" in report
    assert "Provenance" in report
    assert "estimate" in report
    sheets = pd.ExcelFile(folder / "report.xlsx").sheet_names
    assert {"coverage_by_tier", "standards", "proposals", "facilities"} <= set(sheets)


def test_rerun_skips_and_new_inputs_never_overwrite(first_audit, data_dir):
    tmp, folder = first_audit
    again = run_audit(tmp / "chengdu.yaml")
    assert list(again.table["status"]) == ["skipped"]
    assert again.table["folder"].iloc[0] == folder


def test_comparison_reports_exactly_the_changes(first_audit, data_dir):
    tmp, folder = first_audit
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    removed = fac.iloc[5]
    new = pd.concat([fac.drop(index=5), pd.DataFrame([{
        "id": "CD-NEW", "name": "新建驿站", "tier": "驿站级", "lon": 104.0700, "lat": 30.6700,
        "floor_area_m2": 350}])], ignore_index=True)
    new.to_csv(tmp / "facilities_2026.csv", index=False)
    cfg = _config(tmp / "chengdu2026.yaml", name="chengdu-central", year=2026,
                  network=str(data_dir / "chengdu.osm.pbf"), facilities=str(tmp / "facilities_2026.csv"))
    summary = run_audit(cfg, compare=folder)
    new_folder = summary.table["folder"].iloc[0]
    changes = pd.read_csv(f"{new_folder}/changes.csv", encoding="utf-8-sig")
    fac_changes = changes[changes["kind"].str.startswith("facility")]
    assert sorted(fac_changes["kind"]) == ["facility added", "facility removed"]
    assert set(fac_changes["subject"]) == {"新建驿站", removed["name"]}
    station = changes[(changes["kind"] == "coverage people") & (changes["tier"] == "station")]
    assert len(station) == 1
    report = Path(new_folder, "report.html").read_text(encoding="utf-8")
    assert "新建驿站" in report


def test_cities_on_dask_through_the_cli(tmp_path, data_dir):
    """Three cities as Dask tasks, through the CLI in a subprocess: one broken, one whose
    facilities all lie outside its area. The broken one leaves no folder, the other is flagged,
    and stderr has the CLI's notes only: no traceback, no CommClosedError, no raw warnings."""
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac.assign(lon=fac["lon"] + 12.3, lat=fac["lat"] + 9.2).to_csv(tmp_path / "beijing.csv", index=False)
    cfg = tmp_path / "three.yaml"
    net = str(data_dir / "chengdu.osm.pbf")
    cfg.write_text(yaml.safe_dump({"year": 2026, "network": net, "cities": [
        {"name": "good", "facilities": str(data_dir / "chengdu_facilities.csv")},
        {"name": "broken", "facilities": str(tmp_path / "missing.csv")},
        {"name": "faraway", "facilities": "beijing.csv"},
    ]}), encoding="utf-8")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-m", "circles", "audit", str(cfg), "--workers", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 1, done.stderr  # a city failed
    for word in ("Traceback", "CommClosedError", "Warning", "distributed."):
        assert word not in done.stderr, done.stderr
    assert not re.search(r"\.py:\d+", done.stderr), done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("broken ") and " failed " in line and "missing.csv" in line for line in lines)
    assert "  ! faraway: none of its 33 facilities is usable (33 outside the network's area)" in done.stdout
    assert "good:" not in "".join(line for line in lines if line.startswith("  !"))
    assert (tmp_path / "good-2026" / "report.html").exists()
    assert (tmp_path / "faraway-2026" / "report.html").exists()
    assert not list(tmp_path.glob("broken-2026*"))  # a failed city leaves no folder
    again = run_audit(cfg, workers=2)
    status = dict(zip(again.table["city"], again.table["status"], strict=True))
    assert status == {"good": "skipped", "broken": "failed", "faraway": "skipped"}
    assert list(again.flagged["city"]) == ["faraway"]  # still flagged when skipped
    assert not list(tmp_path.glob("broken-2026*"))


def test_compare_with_a_file_is_an_error(first_audit, tmp_path, capsys):
    tmp, folder = first_audit
    a_file = tmp_path / "changes.csv"
    a_file.write_text("kind\n")
    for target in (a_file, Path(folder) / "facilities.csv", tmp_path / "nowhere"):
        # The city's inputs are unchanged, so without the check it would be "skipped".
        assert main(["audit", str(tmp / "chengdu.yaml"), "--compare", str(target)]) == 1
        captured = capsys.readouterr()
        assert "circles audit: error:" in captured.err
        assert "skipped" not in captured.out
        assert ("is a file" in captured.err) == (target != tmp_path / "nowhere")


def test_config_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnetwrok: a.pbf\n")
    with pytest.raises(Exception, match="netwrok"):
        load_config(bad)
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text("year: 2026\n")
    with pytest.raises(Exception, match="no name"):
        load_config(nameless)


def test_audit_cli_prints_a_summary(tmp_path, data_dir, capsys):
    cfg = _config(tmp_path / "c.yaml", name="cli-city", year=2026, network=str(data_dir / "chengdu.osm.pbf"))
    assert main(["audit", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "cli-city" in out
    assert "done" in out
    assert "covered share" in out
