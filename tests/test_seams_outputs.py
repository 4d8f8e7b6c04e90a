"""The output seams without the CLI (issue 17, item 5): run folders (the claim, a killed run,
atomic writes, manifests), what a coverage run records, the year-over-year comparison and the report.

The expected values are worked by hand. The coverage runs use a hand-drawn city: four straight
streets of 3 km meeting at one crossing (UTM 48N near Chengdu), a district complex at the crossing
and people at known distances along the streets, so every figure follows from the deyang profile
(75 m a minute: station 375 m, community 750 m, district 1125 m; nested, so the district complex
serves every tier).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import multiprocessing
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import openpyxl
import pandas as pd
import pyproj
import pytest
import shapely

from circles.errors import CirclesError, InputFileError
from circles.outputs.report import write_report
from circles.outputs.runfolder import (
    CLAIM_NAME,
    Manifest,
    RunFolder,
    atomic_path,
    read_run_manifest,
    write_text,
)
from circles.runs.compare import check_compare_folder, compare_audits
from circles.runs.inputs import RunInputs
from circles.runs.pipeline import coverage_run

OX, OY = 404_000.0, 3_390_000.0  # the crossing, UTM 48N
ARM = 3000.0  # each street's length: nobody lives within 1125 m of the layer's edge
_TO_WGS = pyproj.Transformer.from_crs(32648, 4326, always_xy=True)
# name: (east, north of the crossing in metres, people). A-D lie on a street, at 200, 500, 900 and
# 1300 m of walk from the complex; E is 700 m from every street (off-network) yet inside the
# network's hull; F lies beyond the study area. G's count is not a number (dropped, row 8).
PEOPLE = {"A": (200, 0, 10.0), "B": (500, 0, 20.0), "C": (0, 900, 30.0), "D": (-1300, 0, 40.0),
          "E": (700, 700, 5.0), "F": (5000, 5000, 7.0)}
INPUT_POP = 112.0
# Covered by tier: A within 375 m; A, B within 750 m; A, B, C within 1125 m. D is nobody's.
COVERED = {"station": 10.0, "community": 30.0, "district": 60.0}
THRESHOLD_M = {"station": 375.0, "community": 750.0, "district": 1125.0}
COMPLEX = '=HYPERLINK("http://x","y")'  # a facility name Excel would run as a formula
FAR_STATION = "@SUM(A1)"  # a station beyond the study area: read, never used
NEW_STATION = "-1+2"  # the station added next year, beside D
TIERS = ("district", "community", "station")
PARTS = ("covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop")


def _lonlat(east: float, north: float) -> tuple[float, float]:
    return _TO_WGS.transform(OX + east, OY + north)


def _dict_rows(path: Path) -> list[dict]:
    """A CSV read by hand (the BOM circles writes is dropped by ``utf-8-sig``)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _unquote(text: str) -> str:
    """The one ``'`` circles puts before formula-like text, removed by hand."""
    return text[1:] if text[:1] == "'" and text[1:2] in ("=", "+", "-", "@", "\t", "\r") else text


def _write_facilities(path: Path, extra: list[tuple] = ()) -> Path:
    rows = [("F1", COMPLEX, "片区级", 0, 0), ("F2", FAR_STATION, "驿站级", 5000, -5000), *extra]
    pd.DataFrame([{"id": fid, "name": name, "tier": tier, "lon": _lonlat(x, y)[0], "lat": _lonlat(x, y)[1],
                   "floor_area_m2": 900} for fid, name, tier, x, y in rows]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    """The hand-drawn city's input files."""
    box = tmp_path_factory.mktemp("hand-city").resolve()
    arms = [shapely.LineString([(OX, OY), (OX + dx * ARM, OY + dy * ARM)])
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    gpd.GeoDataFrame({"name": ["east", "west", "north", "south"]}, geometry=arms, crs=32648
                     ).to_file(box / "streets.gpkg", engine="pyogrio")
    people = [{"name": k, "lon": _lonlat(x, y)[0], "lat": _lonlat(x, y)[1], "pop": p}
              for k, (x, y, p) in PEOPLE.items()]
    people.append({"name": "G", "lon": _lonlat(10, 0)[0], "lat": _lonlat(10, 0)[1], "pop": "约300"})
    pd.DataFrame(people).to_csv(box / "pop.csv", index=False)
    # West of x = -50 m lies D; A, B, C and E are east; F, 5 km off, is in no unit.
    gpd.GeoDataFrame({"unit": ["west", "east"]}, crs=32648, geometry=[
        shapely.box(OX - 4000, OY - 4000, OX - 50, OY + 4000),
        shapely.box(OX - 50, OY - 4000, OX + 4000, OY + 4000)]).to_file(box / "units.gpkg", engine="pyogrio")
    _write_facilities(box / "fac.csv")
    _write_facilities(box / "fac-next.csv", [("S9", NEW_STATION, "驿站级", -1300, 0)])
    return box


def _inputs(city: Path, facilities: str) -> RunInputs:
    return RunInputs(network=str(city / "streets.gpkg"), facilities=str(city / facilities),
                     population=str(city / "pop.csv"), units=str(city / "units.gpkg"), drop_invalid=True)


@pytest.fixture(scope="module")
def run_this_year(city):
    return coverage_run(_inputs(city, "fac.csv"), city / "run-2025", draw_map=False)


@pytest.fixture(scope="module")
def run_next_year(city):
    """Next year: one station added beside D."""
    return coverage_run(_inputs(city, "fac-next.csv"), city / "run-2026", draw_map=False)


# ---------------------------------------------------------------- run folders

def _die_after_claiming(path: str) -> None:
    """A run killed mid-way: claimed, one table and an interim manifest written, then gone."""
    folder = RunFolder.claim(path, command="coverage")
    write_text(folder.path / "coverage_by_tier.csv", "tier,covered_pop\nstation,1\n")
    Manifest("coverage").write(folder.path)
    os._exit(9)


@pytest.fixture
def killed_run(tmp_path) -> Path:
    out = tmp_path / "killed"
    child = multiprocessing.get_context("fork").Process(target=_die_after_claiming, args=(str(out),))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    return out


def test_claiming_a_folder_twice_fails_the_second_time(tmp_path):
    out = tmp_path / "run"
    first = RunFolder.claim(out)
    try:
        with pytest.raises(InputFileError) as err:
            RunFolder.claim(out)
        assert str(out) in str(err.value)
        assert "still writing" in err.value.message
        assert "--out" in (err.value.fix or "")
        # The refusal left the first claim alone.
        assert first.held
        assert (out / CLAIM_NAME).exists()
    finally:
        first.abandon()
    assert not out.exists()  # the claim made the folder, so abandoning removed it


def test_a_finished_run_is_never_claimed_again(tmp_path):
    out = tmp_path / "run"
    folder = RunFolder.claim(out)
    write_text(folder.path / "a.txt", "x")
    folder.finish(Manifest("test"))
    with pytest.raises(CirclesError) as err:
        RunFolder.claim(out)
    assert err.value.file == str(out)
    assert "earlier run" in err.value.message
    assert "--out" in err.value.fix
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "manifest.json"]


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        RunFolder.claim(out)
    assert err.value.file == str(out)
    assert "not empty" in err.value.message
    assert [p.name for p in out.iterdir()] == ["notes.txt"]  # no marker left behind
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    with pytest.raises(InputFileError, match="is a file"):
        RunFolder.claim(tmp_path / "a-file")


def test_a_killed_run_is_refused_by_claims_and_readers(killed_run):
    before = sorted(p.name for p in killed_run.iterdir())
    assert {CLAIM_NAME, "manifest.json"} <= set(before)
    for attempt in (RunFolder.claim, read_run_manifest, check_compare_folder):
        with pytest.raises(InputFileError) as err:
            attempt(killed_run)
        assert f"the run in {killed_run} did not finish" in err.value.message, attempt
        assert f"rm -r {killed_run}" in err.value.fix
    assert sorted(p.name for p in killed_run.iterdir()) == before  # refused, untouched


def test_a_manifest_not_marked_complete_is_refused_without_a_marker(killed_run):
    os.unlink(killed_run / CLAIM_NAME)  # the marker removed by hand: the manifest still tells
    with pytest.raises(InputFileError, match="not marked complete"):
        read_run_manifest(killed_run)


def _write_half_then_die(target: Path) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text("half a ta", encoding="utf-8")
        raise RuntimeError("the writer died")


def test_atomic_path_leaves_no_partial_file_when_the_writer_raises(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with pytest.raises(RuntimeError, match="the writer died"):
        _write_half_then_die(target)
    assert list(target.parent.iterdir()) == []
    write_text(target, "old\n")
    with pytest.raises(RuntimeError, match="the writer died"):
        _write_half_then_die(target)
    assert target.read_text(encoding="utf-8") == "old\n"  # the earlier file is untouched
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]
    with atomic_path(target) as tmp:
        # Beside the target and with its suffix (writers pick a format from it), not yet there.
        assert (tmp.parent, tmp.suffix) == (target.parent, ".csv")
        assert not tmp.exists()
        tmp.write_text("new\n", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert [p.name for p in target.parent.iterdir()] == ["table.csv"]


def _claim_write_then_fail(out: Path, claimed: list) -> None:
    with RunFolder.claim(out) as folder:
        claimed.append(folder)
        write_text(folder.path / "a.csv", "x\n")
        (folder.path / "sub").mkdir()
        raise ValueError("boom")


@pytest.mark.parametrize("existed", [False, True])
def test_a_run_that_raises_removes_what_it_wrote(tmp_path, existed):
    out = tmp_path / "run"
    if existed:
        out.mkdir()
    claimed: list[RunFolder] = []
    with pytest.raises(ValueError, match="boom"):
        _claim_write_then_fail(out, claimed)
    assert not claimed[0].held
    # An empty folder the user made stays (emptied); a folder the claim made goes.
    assert (list(out.iterdir()) == []) if existed else not out.exists()


def test_a_completed_folder_manifest_says_complete(tmp_path):
    folder = RunFolder.claim(tmp_path / "run", command="test")
    write_text(folder.path / "b.csv", "x\n")
    write_text(folder.path / "a.csv", "x\n")
    manifest = Manifest("test", {"answer": 42})
    manifest.count(rows=2)
    manifest.write(folder.path)  # an interim manifest, as the map step writes one
    interim = json.loads((folder.path / "manifest.json").read_text(encoding="utf-8"))
    assert interim["complete"] is False
    assert read_run_manifest(folder.path)["complete"] is False  # this process may read its own run
    folder.finish(manifest)
    data = json.loads((folder.path / "manifest.json").read_text(encoding="utf-8"))
    assert data["complete"] is True
    assert data["outputs"] == ["a.csv", "b.csv"]  # the marker and the manifest are not outputs
    assert (data["parameters"], data["counts"]) == ({"answer": 42}, {"rows": 2})
    assert not (folder.path / CLAIM_NAME).exists()
    assert not folder.held
    assert read_run_manifest(folder.path) == data


def test_reading_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "plain.txt").write_text("x", encoding="utf-8")
    for path, words in ((tmp_path / "missing", "does not exist"), (tmp_path / "plain.txt", "it is a file"),
                        (tmp_path / "empty", "has no manifest.json")):
        with pytest.raises(InputFileError) as err:
            read_run_manifest(path)
        assert err.value.message.startswith(f"{path} is not a run folder: ")
        assert words in err.value.message
        assert "--out folder of a finished" in err.value.fix
    for text, words in (('{"command": "cov', "cannot be read"), ("[1, 2]", "not a JSON object")):
        bad = tmp_path / f"bad-{len(text)}"
        bad.mkdir()
        (bad / "manifest.json").write_text(text, encoding="utf-8")
        with pytest.raises(InputFileError) as err:
            read_run_manifest(bad)
        assert f"the run in {bad} is corrupt" in err.value.message
        assert words in err.value.message
        assert err.value.file == str(bad / "manifest.json")


# ---------------------------------------------------------------- what a coverage run records

def test_the_hand_drawn_run_gives_the_hand_worked_coverage(run_this_year):
    rows = {r["tier"]: r for r in _dict_rows(run_this_year.folder / "coverage_by_tier.csv")}
    assert list(rows) == list(TIERS)
    for tier, row in rows.items():
        assert float(row["threshold_metres"]) == THRESHOLD_M[tier]
        assert float(row["facilities"]) == 1  # the complex; the far station is not usable
        assert float(row["covered_pop"]) == pytest.approx(COVERED[tier])
        assert float(row["offnetwork_pop"]) == pytest.approx(5.0)  # E
        assert float(row["outside_pop"]) == pytest.approx(7.0)  # F
        assert float(row["uncovered_pop"]) == pytest.approx(100.0 - COVERED[tier])
        assert float(row["covered_share"]) == pytest.approx(COVERED[tier] / INPUT_POP)


def test_population_is_conserved_in_the_csvs(run_this_year):
    folder = run_this_year.folder
    by_pop_csv = sum(float(r["pop"]) for r in _dict_rows(Path(run_this_year.manifest.data["inputs"]
                                                              ["population"]["path"])) if r["name"] != "G")
    assert by_pop_csv == INPUT_POP
    for row in _dict_rows(folder / "coverage_by_tier.csv"):
        assert sum(float(row[c]) for c in PARTS) == pytest.approx(float(row["population"]))
        assert float(row["population"]) == pytest.approx(INPUT_POP)
    units = pd.read_csv(folder / "coverage_by_unit.csv", encoding="utf-8-sig")
    np.testing.assert_allclose(units[list(PARTS)].sum(axis=1), units["population"])
    for tier in TIERS:
        of_tier = units[units["tier"] == tier].set_index("unit")
        assert of_tier["population"].sum() == pytest.approx(INPUT_POP)
        assert of_tier["population"].to_dict() == pytest.approx({"west": 40.0, "east": 65.0, "(no unit)": 7.0})
        assert of_tier.loc["(no unit)", "outside_pop"] == pytest.approx(7.0)
    # The demand layer tells who is covered on its own: status ok and within the threshold.
    demand = gpd.read_file(folder / "demand.gpkg", engine="pyogrio")
    assert demand["pop"].sum() == pytest.approx(INPUT_POP)
    ok = demand["status"] == "ok"
    for tier in TIERS:
        within = ok & (demand[f"{tier}_metres"].fillna(np.inf) <= THRESHOLD_M[tier] + 1e-6)
        assert demand.loc[within, "pop"].sum() == pytest.approx(COVERED[tier])
    np.testing.assert_allclose(np.sort(demand.loc[ok, "district_metres"]), [200, 500, 900, 1300], atol=1e-6)


def test_the_manifest_records_inputs_counts_study_area_and_versions(city, run_this_year):
    folder = run_this_year.folder
    data = read_run_manifest(folder)
    assert data == json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert data["complete"] is True
    assert not (folder / CLAIM_NAME).exists()
    for role, name in (("network", "streets.gpkg"), ("facilities", "fac.csv"), ("population", "pop.csv"),
                       ("units", "units.gpkg")):
        assert data["inputs"][role] == {"path": str(city / name),
                                        "sha256": hashlib.sha256((city / name).read_bytes()).hexdigest()}
    assert set(data["inputs"]) == {"network", "facilities", "population", "units"}
    # 5 nodes: the crossing and four street ends; F1 usable, F2 beyond the study area.
    assert data["counts"] == {"nodes": 5, "facilities": 2, "facilities_ok": 1, "demand_points": 6,
                              "population": INPUT_POP}
    population = data["population"]
    assert (population["input_pop"], population["is_estimate"]) == (INPUT_POP, False)
    assert [(e["pop"], e["rows"], e["n"]) for e in population["excluded"]] == [(0.0, "8", 1)]
    corners = [_lonlat(x, y) for x in (-ARM, ARM) for y in (-ARM, ARM)]
    lons, lats = [c[0] for c in corners], [c[1] for c in corners]
    area = data["study_area"]
    assert area["extent_bounds_wgs84"] == pytest.approx([min(lons), min(lats), max(lons), max(lats)], abs=1e-6)
    assert (area["outside_pop"], area["edge_metres"], area["edge_pop"]) == (7.0, 1125.0, 0.0)
    assert data["versions"]["python"] == platform.python_version()
    for name, version in data["versions"].items():
        if name != "python":
            assert version == metadata.version(name), name
    assert data["outputs"] == sorted(p.name for p in folder.iterdir()
                                     if p.is_file() and p.name != "manifest.json")
    # The manifest's table is the CSV's, read back by hand.
    by_csv = _dict_rows(folder / "coverage_by_tier.csv")
    assert [r["tier"] for r in data["coverage_by_tier"]] == [r["tier"] for r in by_csv]
    for recorded, row in zip(data["coverage_by_tier"], by_csv, strict=True):
        for col in ("population", *PARTS, "covered_share", "threshold_metres"):
            assert recorded[col] == pytest.approx(float(row[col])), col
    assert RunInputs.from_manifest(data) == _inputs(city, "fac.csv")


# ---------------------------------------------------------------- compare

def _write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _metres_north(lat: float, dlat: float) -> float:
    """A short step due north on the WGS-84 ellipsoid: the meridian's radius of curvature times the
    angle (exact enough below a kilometre)."""
    a, f = 6_378_137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    m = a * (1 - e2) / (1 - e2 * math.sin(math.radians(lat)) ** 2) ** 1.5
    return m * math.radians(dlat)


LON, LAT = 104.06, 30.66
# facility_id, name, tier, lon, lat: before and after.
FAC_BEFORE = [("K1", "Alpha", "station", LON, LAT), ("K2", "Beta", "station", LON + 0.01, LAT),
              ("K3", "Gamma", "community", LON + 0.02, LAT), ("K4", "Delta", "station", LON + 0.03, LAT),
              ("K5", "Epsilon", "station", LON + 0.04, LAT), ("K6", "Zeta", "station", LON + 0.05, LAT),
              ("K7", "Eta", "station", LON + 0.06, LAT)]
FAC_AFTER = [("K1", "Alpha", "station", LON, LAT),  # unchanged
             ("K2", "Beta", "station", LON + 0.01, LAT + 0.001),  # moved ~111 m
             ("K3", "Gamma", "station", LON + 0.02, LAT),  # retiered
             ("K4", "Delta", "district", LON + 0.03, LAT + 0.001),  # moved and retiered
             ("K6b", "Zeta", "station", LON + 0.05, LAT + 0.002),  # a new id, same name ~222 m away
             ("K7b", "Eta", "station", LON + 0.06, LAT + 0.01),  # same name but ~1.1 km away: new
             ("K8", "'=Theta", "station", LON + 0.07, LAT)]  # escaped as write_csv writes it


def _audit_folder(path: Path, facilities, by_tier, by_unit, gaps) -> Path:
    path.mkdir()
    _write_rows(path / "facilities.csv", [dict(zip(("facility_id", "name", "tier", "lon", "lat"), f,
                                                   strict=True)) for f in facilities])
    _write_rows(path / "coverage_by_tier.csv", [{"tier": t, "covered_pop": p, "covered_share": s}
                                                for t, p, s in by_tier])
    _write_rows(path / "coverage_by_unit.csv", [{"unit": u, "tier": t, "covered_pop": p, "covered_share": s}
                                                for u, t, p, s in by_unit])
    layers = {}
    for layer, cells in gaps.items():
        points = [shapely.Point(h3.cell_to_latlng(c)[::-1]) for c in cells]
        layers[layer] = gpd.GeoDataFrame({"h3": list(cells), "uncovered_pop": list(cells.values())},
                                         geometry=points, crs=4326)
    for i, (layer, gdf) in enumerate(layers.items()):
        gdf.to_file(path / "gaps.gpkg", layer=layer, engine="pyogrio", append=i > 0)
    (path / "manifest.json").write_text(json.dumps({"command": "audit", "complete": True}), encoding="utf-8")
    return path


def _cells(n: int) -> list[str]:
    return [h3.latlng_to_cell(LAT + 0.01 * i, LON, 9) for i in range(n)]


def test_compare_of_hand_made_audits_gives_the_known_differences(tmp_path):
    c = _cells(5)
    prev = _audit_folder(tmp_path / "2025", FAC_BEFORE,
                         [("station", 100, 0.25), ("community", 200, 0.5), ("district", 300, 0.75)],
                         [("north", "station", 40, 0.2), ("south", "station", 60, 0.3)],
                         {"gaps_station": {c[0]: 30.0, c[1]: 20.0, c[2]: 0.0}, "gaps_community": {c[4]: 10.0}})
    cur = _audit_folder(tmp_path / "2026", FAC_AFTER,
                        [("station", 160, 0.4), ("community", 200, 0.5), ("district", 280, 0.7),
                         ("neighbourhood", 50, 0.125)],
                        [("north", "station", 100, 0.5), ("south", "station", 60, 0.3)],
                        {"gaps_station": {c[1]: 20.0, c[3]: 15.0}})
    out = compare_audits(prev, cur)
    facilities = out[out["kind"].str.startswith("facility")]
    got = {(r.kind, r.subject): r for r in facilities.itertuples()}
    assert sorted(got) == sorted([
        ("facility moved", "Beta"), ("facility retiered", "Gamma"), ("facility moved+retiered", "Delta"),
        ("facility moved", "Zeta"), ("facility removed", "Epsilon"), ("facility removed", "Eta"),
        ("facility added", "Eta"), ("facility added", "=Theta")])
    assert got["facility moved", "Beta"].change == pytest.approx(_metres_north(LAT, 0.001), abs=0.2)
    assert got["facility moved", "Zeta"].change == pytest.approx(_metres_north(LAT, 0.002), abs=0.2)
    assert got["facility moved", "Zeta"].detail == "id K6 -> K6b"
    assert got["facility retiered", "Gamma"].change == 0
    assert (got["facility retiered", "Gamma"].before, got["facility retiered", "Gamma"].after) == (
        "community", "station")
    assert got["facility moved+retiered", "Delta"].tier == "district"
    removed, added = got["facility removed", "Epsilon"], got["facility added", "=Theta"]
    assert (removed.tier, removed.before, removed.detail) == ("station", "station", "id K5 -> ")
    assert (added.tier, added.after, added.detail) == ("station", "station", "id  -> K8")
    assert pd.isna([removed.change, added.change]).all()

    def change(kind: str, tier: str, unit: str = "") -> float:
        row = out[(out["kind"] == kind) & (out["tier"] == tier) & (out["unit"].fillna("") == unit)]
        assert len(row) == 1, (kind, tier, unit)
        return row["change"].iloc[0]

    assert change("coverage people", "station") == pytest.approx(60)
    assert change("coverage people", "community") == 0
    assert change("coverage people", "district") == pytest.approx(-20)
    assert np.isnan(change("coverage people", "neighbourhood"))  # a tier of one year only
    assert change("coverage share", "station") == pytest.approx(0.15)
    assert change("coverage share", "district") == pytest.approx(-0.05)
    assert change("unit coverage people", "station", "north") == pytest.approx(60)
    assert change("unit coverage people", "station", "south") == 0
    gaps = out[out["kind"].str.startswith("gaps")].set_index(["kind", "tier"])
    # A hexagon with nobody uncovered (c[2]) is no gap, so it does not close.
    assert gaps.loc[("gaps closed", "station"), "detail"] == c[0]
    assert gaps.loc[("gaps closed", "station"), "change"] == -30
    assert gaps.loc[("gaps opened", "station"), "detail"] == c[3]
    assert gaps.loc[("gaps opened", "station"), "change"] == 15
    assert gaps.loc[("gaps closed", "community"), "change"] == -10  # its layer is gone next year
    # changes.csv holds the same table, names as they were.
    written = pd.read_csv(cur / "changes.csv", encoding="utf-8-sig")
    assert len(written) == len(out)
    assert "'=Theta" in set(written["subject"])  # escaped on disk


def test_compare_of_two_real_runs_gives_the_added_station(run_this_year, run_next_year, tmp_path):
    current = shutil.copytree(run_next_year.folder, tmp_path / "2026")
    out = compare_audits(run_this_year.folder, current, write=False)
    facilities = out[out["kind"].str.startswith("facility")]
    assert list(zip(facilities["kind"], facilities["subject"], strict=True)) == [("facility added", NEW_STATION)]
    tier = out[out["kind"] == "coverage people"].set_index("tier")
    # The new station, beside D (40 people), covers D for stations only: a station serves no
    # higher tier.
    assert tier["change"].to_dict() == pytest.approx({"district": 0, "community": 0, "station": 40})
    assert tier.loc["station", "before"] == COVERED["station"]
    unit = out[(out["kind"] == "unit coverage people") & (out["change"] != 0)]
    assert list(zip(unit["unit"], unit["tier"], unit["change"], strict=True)) == [("west", "station", 40)]
    gaps = out[out["kind"].str.startswith("gaps")].set_index(["kind", "tier"])
    lon, lat = _lonlat(*PEOPLE["D"][:2])
    resolution = h3.get_resolution(gpd.read_file(run_this_year.folder / "gaps.gpkg", layer="gaps_station")["h3"][0])
    assert gaps.loc[("gaps closed", "station"), "detail"] == h3.latlng_to_cell(lat, lon, resolution)
    assert gaps.loc[("gaps closed", "station"), "change"] == -40
    assert (gaps["change"].drop(("gaps closed", "station")) == 0).all()


def test_compare_refuses_a_folder_that_is_not_a_finished_run(run_this_year, killed_run, tmp_path):
    with pytest.raises(InputFileError, match="did not finish"):
        compare_audits(killed_run, run_this_year.folder, write=False)
    lacking = shutil.copytree(run_this_year.folder, tmp_path / "lacking")
    os.unlink(lacking / "facilities.csv")
    with pytest.raises(InputFileError, match=r"has no facilities\.csv") as err:
        compare_audits(lacking, run_this_year.folder, write=False)
    assert err.value.file == str(lacking)


# ---------------------------------------------------------------- report

@pytest.fixture(scope="module")
def report(run_this_year, run_next_year, tmp_path_factory):
    """The report of next year's run, compared with this year's."""
    folder = shutil.copytree(run_next_year.folder, tmp_path_factory.mktemp("report") / "run")
    compare_audits(run_this_year.folder, folder)
    return folder, write_report(folder)


def test_report_files_open_and_hold_no_formula(report):
    folder, paths = report
    assert paths == [folder / "report.html", folder / "report.xlsx"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left
    book = openpyxl.load_workbook(paths[1])
    # The tables the folder holds, in the report's order: the community scorecard first (the run has
    # units under a city profile), then coverage, the largest gaps after the units, then provision.
    assert book.sheetnames == ["scorecard", "standards_by_unit", "coverage_by_tier", "coverage_by_unit",
                               "largest_gaps", "provision_by_tier", "provision_by_unit",
                               "provision_by_complex", "standards", "facilities", "changes"]
    formulas = [f"{ws.title}!{cell.coordinate}" for ws in book for row in ws.iter_rows() for cell in row
                if cell.data_type == "f"]
    assert formulas == []
    names = {}
    for ws in book:
        for row in ws.iter_rows():
            for cell in row:
                if cell.value in (COMPLEX, FAR_STATION, NEW_STATION):
                    names.setdefault(cell.value, []).append(cell)
    assert set(names) == {COMPLEX, FAR_STATION, NEW_STATION}
    for cells in names.values():
        assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    assert {"facilities", "changes"} <= {c.parent.title for c in names[NEW_STATION]}


def test_report_sheets_carry_the_figures_of_the_tables(report):
    folder, paths = report
    book = openpyxl.load_workbook(paths[1])
    for sheet in ("coverage_by_tier", "coverage_by_unit", "standards", "facilities", "changes"):
        rows = _dict_rows(folder / f"{sheet}.csv")
        cells = [[c.value for c in r] for r in book[sheet].iter_rows()]
        assert cells[0] == list(rows[0]), sheet
        assert len(cells) - 1 == len(rows), sheet
        for values, row in zip(cells[1:], rows, strict=True):
            for value, (col, text) in zip(values, row.items(), strict=True):
                if text == "":
                    assert value in (None, ""), (sheet, col)
                elif isinstance(value, bool):
                    assert str(value) == text, (sheet, col)
                elif isinstance(value, int | float):
                    assert value == pytest.approx(float(text)), (sheet, col)
                else:
                    assert value == _unquote(text), (sheet, col)
    tier = {r[0].value: [c.value for c in r] for r in book["coverage_by_tier"].iter_rows(min_row=2)}
    header = [c.value for c in book["coverage_by_tier"][1]]
    assert tier["station"][header.index("covered_pop")] == 50  # A and D, next year
    assert tier["district"][header.index("covered_pop")] == 60


def test_report_html_carries_the_headline_figures(report, run_next_year):
    _, paths = report
    text = paths[0].read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert text.rstrip().endswith("</html>")
    covered = {**COVERED, "station": 50.0}
    for tier in TIERS:
        assert f"<b>{covered[tier] / INPUT_POP:.1%}</b>{covered[tier]:,.0f} / {INPUT_POP:,.0f}" in text, tier
    assert f"<td>{COMPLEX}</td>" in text  # shown as typed: a web page runs no formula
    assert f"<td>{NEW_STATION}</td>" in text
    for role in ("network", "facilities", "population", "units"):
        assert run_next_year.manifest.data["inputs"][role]["sha256"] in text  # the provenance table
    assert "facility added" in text


def test_unnamed_facilities_are_not_paired_by_their_missing_names():
    """An unnamed facility removed and another added 220 m away are two changes, not one move."""
    from circles.runs.compare import match_facilities

    before = pd.DataFrame({"facility_id": ["A1"], "name": [np.nan], "tier": ["station"],
                           "lon": [104.06], "lat": [30.66]})
    after = before.assign(facility_id="B7", lat=30.662)
    status = sorted(match_facilities(before, after)["status"])
    assert status == ["added", "removed"]
