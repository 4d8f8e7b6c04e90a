"""Provision in the coverage run (issue 19): every run writes who is served once each complex's
capacity counts, the capacity-short hexagons, the manifest's provision block and the terminal
table, and a later run is compared with an earlier one on it."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from scipy import sparse
from scipy.optimize import linprog

from circles.engine.routing import coverage_matrix
from circles.outputs.console import coverage_lines
from circles.runs.compare import compare_audits
from circles.runs.pipeline import RunInputs, coverage_run

PARTS = ["served_pop", "covered_unserved_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]
NEW_COLUMNS = ["capacity_pop", "capacity_source", "assigned_pop", "utilisation", "extra_capacity_pop",
               "extra_floor_area_m2"]
STATION_CAPACITY = 300.0


def _read(path):
    return pd.read_csv(path, encoding="utf-8-sig")


def _facilities(data_dir, path, *, station_capacity: float, area_factor: float = 1.0):
    """The sample facilities with each station limited to ``station_capacity`` people, the other
    complexes by their floor area (times ``area_factor``)."""
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    fac["capacity_pop"] = np.where(fac["tier"] == "驿站级", station_capacity, np.nan)
    fac["floor_area_m2"] = fac["floor_area_m2"] * area_factor
    fac.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def _run(data_dir, chengdu_pbf, folder, **capacity):
    fac = _facilities(data_dir, folder.parent / f"{folder.name}-fac.csv", **capacity)
    inputs = RunInputs(network=chengdu_pbf, facilities=fac, units=data_dir / "chengdu_communities.gpkg")
    with pytest.warns(UserWarning, match="no provider of"):  # the sample services, in this extract
        return coverage_run(inputs, folder, draw_map=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir, chengdu_pbf):
    """Two runs of the same city: stations of 300 people, then every capacity doubled."""
    root = tmp_path_factory.mktemp("provision")
    first = _run(data_dir, chengdu_pbf, root / "run-2025", station_capacity=STATION_CAPACITY)
    second = _run(data_dir, chengdu_pbf, root / "run-2026", station_capacity=2 * STATION_CAPACITY,
                  area_factor=2.0)
    return first, second


def test_the_run_writes_the_provision_files(runs):
    run = runs[0]
    for name in ("provision_by_tier.csv", "provision_by_unit.csv", "provision_by_complex.csv",
                 "capacity_short.gpkg"):
        assert (run.folder / name).is_file(), name
    manifest = json.loads((run.folder / "manifest.json").read_text(encoding="utf-8"))
    assert {"provision_by_tier.csv", "capacity_short.gpkg"} <= set(manifest["outputs"])
    block = manifest["provision"]
    assert block["rule"].startswith("capacity: a complex serves at most")
    assert "20 from capacity_pop" in block["rule"]
    assert [r["tier"] for r in block["by_tier"]] == ["district", "community", "station"]
    assert set(block["models"]) == {"district", "community", "station"}
    assert all("solve_seconds" in m and "arcs" in m for m in block["models"].values())
    assert "provision" in manifest["timings_s"]
    assert run.extras["provision"] is run.result.extras["provision"]
    assert len(run.extras["capacity_short"])


def test_every_person_is_in_one_of_five_places_per_tier(runs):
    folder = runs[0].folder
    prov = _read(folder / "provision_by_tier.csv").set_index("tier")
    cov = _read(folder / "coverage_by_tier.csv").set_index("tier")
    assert prov["covered_unserved_pop"]["station"] > 1000  # the 300-people stations are short
    for tier, r in prov.iterrows():
        assert r[PARTS].sum() == pytest.approx(r["population"], abs=0.01)
        assert r["population"] == pytest.approx(cov.loc[tier, "population"], abs=0.01)
        assert r["served_pop"] + r["covered_unserved_pop"] == pytest.approx(cov.loc[tier, "covered_pop"], abs=0.01)
        for part in ("uncovered_pop", "offnetwork_pop", "outside_pop"):
            assert r[part] == pytest.approx(cov.loc[tier, part], abs=0.01)


def test_each_level_of_units_adds_up_to_the_city(runs):
    folder = runs[0].folder
    city = _read(folder / "provision_by_tier.csv").set_index("tier")
    by_unit = _read(folder / "provision_by_unit.csv")
    cov_unit = _read(folder / "coverage_by_unit.csv")
    assert set(by_unit["unit"]) >= {"示例一社区", "示例二社区"}
    for (_, tier), rows in by_unit.groupby(["level", "tier"]):
        for col in ["population", *PARTS]:
            assert rows[col].sum() == pytest.approx(city.loc[tier, col], abs=0.05), (tier, col)
    # Unit by unit, served and covered-unserved split coverage's covered people.
    both = by_unit.merge(cov_unit, on=["level", "unit", "tier"])
    assert len(both) == len(by_unit)
    np.testing.assert_allclose(both["served_pop"] + both["covered_unserved_pop"], both["covered_pop"], atol=0.01)


def test_facilities_csv_has_the_capacity_columns(runs):
    fac = _read(runs[0].folder / "facilities.csv")
    cols = list(fac.columns)
    assert cols[-len(NEW_COLUMNS):] == NEW_COLUMNS
    assert cols.index("capacity_pop") > cols.index("lat")
    stations = fac[fac["tier"] == "station"]
    assert (stations["capacity_pop"] == STATION_CAPACITY).all()
    assert (stations["capacity_source"] == "capacity_pop").all()
    others = fac[fac["tier"] != "station"]
    assert (others["capacity_source"] == "floor_area_m2").all()
    # By hand: floor area ÷ 30 m² per 100 households × 100 households × 2.62 persons.
    np.testing.assert_allclose(others["capacity_pop"], others["floor_area_m2"] / 30 * 100 * 2.62, atol=0.05)
    ok = fac[fac["status"] == "ok"]
    assert (ok["assigned_pop"] <= ok["capacity_pop"] + 0.05).all()
    full = ok[ok["utilisation"] > 0.999]
    assert len(full)
    assert (full["tier"] == "station").all()


def test_the_station_served_total_is_the_lp_maximum(runs):
    """The served people of the station tier against scipy's LP of the same problem: the 300-people
    cap reaches the engine through the facilities table, and the maximum is the run's figure."""
    result = runs[0].result
    fac = result.facilities
    rows = np.flatnonzero((fac["status"] == "ok").to_numpy())  # every tier serves the station tier
    cap = np.where(fac["tier"].to_numpy()[rows] == "station", STATION_CAPACITY,
                   fac["floor_area_m2"].to_numpy(float)[rows] / 30 * 100 * 2.62)
    pop = np.where(result.demand["status"].to_numpy() == "ok", result.demand["pop"].to_numpy(float), 0.0)
    m = sparse.coo_matrix(coverage_matrix(result.network, result.facility_anchors.subset(rows),
                                          result.demand_anchors, limit_metres=result.profile.threshold_metres("station")))
    n = m.nnz
    site_rows = sparse.csr_matrix((np.ones(n), (m.row, np.arange(n))), shape=(len(rows), n))
    point_rows = sparse.csr_matrix((np.ones(n), (m.col, np.arange(n))), shape=(len(pop), n))
    lp = linprog(-np.ones(n), A_ub=sparse.vstack([site_rows, point_rows]), b_ub=np.concatenate([cap, pop]),
                 bounds=(0, None), method="highs")
    assert lp.status == 0
    served = _read(runs[0].folder / "provision_by_tier.csv").set_index("tier").loc["station", "served_pop"]
    assert served == pytest.approx(-lp.fun, abs=0.01 * m.shape[1])
    assert served < pop[np.asarray(m.sum(axis=0)).ravel() > 0].sum() - 1000  # capacity binds


def test_capacity_short_hexagons_hold_the_covered_unserved(runs):
    path = runs[0].folder / "capacity_short.gpkg"
    layers = [str(n) for n, _ in pyogrio.list_layers(path)]
    assert layers == ["capacity_short_station"]  # only the stations are short
    table = _read(runs[0].folder / "provision_by_tier.csv").set_index("tier")
    for layer in layers:
        hexes = gpd.read_file(path, layer=layer)
        tier = layer.removeprefix("capacity_short_")
        assert set(hexes["tier"]) == {tier}
        assert {"h3", "covered_unserved_pop", "served_pop", "population", "resolution"} <= set(hexes.columns)
        assert hexes.crs.to_epsg() == 4326
        assert (hexes["covered_unserved_pop"] >= 0.5).all()
        assert hexes["covered_unserved_pop"].is_monotonic_decreasing
        assert (hexes["covered_unserved_pop"] + hexes["served_pop"] <= hexes["population"] + 0.01).all()
        # Hexagons below half a person (the solver's hundredths) are left out, nothing more.
        assert hexes["covered_unserved_pop"].sum() == pytest.approx(table.loc[tier, "covered_unserved_pop"], abs=1.0)


def test_the_terminal_prints_served_under_capacity(runs):
    text = "\n".join(coverage_lines(runs[0]))
    assert "served under capacity" in text
    table = _read(runs[0].folder / "provision_by_tier.csv").set_index("tier")
    station = next(line for line in text.splitlines()
                   if line.startswith("station") and f"{table.loc['station', 'served_pop']:,.0f}" in line)
    assert f"{table.loc['station', 'covered_unserved_pop']:,.0f}" in station
    assert f"{table.loc['station', 'extra_floor_area_m2']:,.0f}" in station


def test_compare_shows_served_rising_with_capacity(runs, tmp_path):
    first, second = runs
    changes = compare_audits(first.folder, second.folder, write=False)
    served = changes[(changes["kind"] == "provision served")].set_index("tier")
    assert served.loc["station", "change"] > 100
    assert (served["change"] >= -0.01).all()
    before = _read(first.folder / "provision_by_tier.csv").set_index("tier")["served_pop"]
    assert served.loc["station", "before"] == pytest.approx(before["station"])
    short = changes[changes["kind"] == "provision covered unserved"].set_index("tier")
    assert short.loc["station", "change"] == pytest.approx(-served.loc["station", "change"], abs=0.01)
    units = changes[changes["kind"] == "unit provision served"]
    assert len(units)
    assert units["change"].sum() > 0
    # An earlier folder from before provision is compared on the rest, and said so.
    old = tmp_path / "old"
    shutil.copytree(first.folder, old)
    for name in ("provision_by_tier.csv", "provision_by_unit.csv"):
        (old / name).unlink()
    changes = compare_audits(old, second.folder, write=False)
    assert not changes["kind"].str.startswith("provision served").any()
    note = changes[changes["kind"] == "provision not compared"]
    assert "earlier folder has no provision_by_tier.csv" in note["detail"].iloc[0]
    assert (changes["kind"] == "coverage people").any()


def test_above_the_facility_areas_cap_provision_is_left_out_and_said(data_dir, chengdu_pbf, tmp_path):
    # Provision needs each complex's own circle: a POI dump past the cap would need billions of
    # pairs, so it is skipped with a note, and every other table is still written.
    inputs = RunInputs(network=chengdu_pbf, facilities=data_dir / "chengdu_facilities.csv",
                       facility_areas="none")
    with pytest.warns(UserWarning, match="provision under capacity not written"):
        run = coverage_run(inputs, tmp_path / "capped", draw_map=False)
    assert run.extras["provision"] is None
    assert not (tmp_path / "capped" / "provision_by_tier.csv").exists()
    assert (tmp_path / "capped" / "coverage_by_tier.csv").exists()
    block = json.loads((tmp_path / "capped" / "manifest.json").read_text(encoding="utf-8"))["provision"]
    assert block["solved"] is False
