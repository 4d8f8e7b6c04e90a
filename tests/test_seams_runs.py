"""The runs seam without the CLI: a run's inputs come out the same whichever way they are built (the
command line, an audit config block, the manifest of the finished run), and a run rebuilt from its
folder gives the numbers the run wrote, scenario included."""

from __future__ import annotations

import argparse
import shutil

import pandas as pd
import pytest

from circles.outputs.runfolder import read_run_manifest
from circles.runs.audit import load_config
from circles.runs.inputs import RunInputs
from circles.runs.pipeline import coverage_run
from circles.runs.rerun import rerun


def _args(**given) -> argparse.Namespace:
    """What the CLI's parser gives for ``circles coverage`` (every flag unset, then ``given``)."""
    flags = {"command": "coverage", "network": None, "facilities": None, "profile": None, "crs": "wgs84",
             "out": None, "facility_areas": None, "population": None, "pop_column": None,
             "households_column": None, "population_crs": None, "residential": None,
             "drop_invalid": False, "units": None, "lang": None, "services": None, "scenario": None,
             "unit_column": None}
    return argparse.Namespace(**{**flags, **given})


@pytest.fixture(scope="module")
def city(tmp_path_factory, data_dir):
    """A city's folder: its network, its facilities and a scenario (one station added, one closed)."""
    box = tmp_path_factory.mktemp("city").resolve()
    shutil.copy(data_dir / "chengdu.osm.pbf", box / "city.osm.pbf")
    shutil.copy(data_dir / "chengdu_facilities.csv", box / "fac.csv")
    first = pd.read_csv(box / "fac.csv")["id"].iloc[0]
    pd.DataFrame({"action": ["add", "close"], "id": ["new-1", first], "name": ["新驿站", ""],
                  "tier": ["station", ""], "lon": [104.0657, None], "lat": [30.6590, None]}
                 ).to_csv(box / "scenario.csv", index=False, encoding="utf-8-sig")
    return box


@pytest.fixture(scope="module")
def scenario_run(city):
    args = _args(network=str(city / "city.osm.pbf"), facilities=str(city / "fac.csv"),
                 scenario=str(city / "scenario.csv"))
    return coverage_run(RunInputs.from_args(args), city / "scenario-run", draw_map=False)


def test_inputs_from_args_config_and_manifest_are_the_same(city):
    (city / "audit.yaml").write_text("name: city\nnetwork: city.osm.pbf\nfacilities: fac.csv\n"
                                     "profile: deyang\ndrop_invalid: true\n", encoding="utf-8")
    block = load_config(city / "audit.yaml")[0]
    args = _args(network=str(city / "city.osm.pbf"), facilities=str(city / "fac.csv"), profile="deyang",
                 drop_invalid=True)
    run = coverage_run(RunInputs.from_args(args), city / "run", draw_map=False)
    from_args = RunInputs.from_args(args)
    from_manifest = RunInputs.from_manifest(read_run_manifest(run.folder))
    assert from_args == RunInputs.from_config(block) == from_manifest
    # A block as written, its paths relative to the config's folder, gives the same inputs.
    raw = {"name": "city", "network": "city.osm.pbf", "facilities": "fac.csv", "profile": "deyang",
           "drop_invalid": True}
    assert RunInputs.from_config(raw, city) == from_args
    assert from_manifest.facilities == str(city / "fac.csv")


def test_a_scenario_is_an_input_the_manifest_keeps(city, scenario_run):
    inputs = RunInputs.from_manifest(read_run_manifest(scenario_run.folder))
    assert inputs.scenario == str(city / "scenario.csv")


def test_inputs_from_a_config_block_keep_absolute_paths_and_osm(tmp_path):
    block = {"network": str(tmp_path / "a.osm.pbf"), "services": "osm", "units": "units.gpkg",
             "drop_invalid": True, "crs": None}
    inputs = RunInputs.from_config(block, tmp_path / "configs")
    assert inputs.network == str(tmp_path / "a.osm.pbf")
    assert inputs.services == "osm"
    assert inputs.units == str(tmp_path / "configs" / "units.gpkg")
    assert inputs.crs == "wgs84"
    assert inputs.drop_invalid is True


def test_rerun_of_a_scenario_run_reproduces_its_coverage_to_the_person(scenario_run):
    recorded = pd.DataFrame(read_run_manifest(scenario_run.folder)["coverage_by_tier"]).set_index("tier")
    rebuilt = rerun(scenario_run.folder).result
    again = rebuilt.by_tier().set_index("tier")
    assert list(again.index) == list(recorded.index)
    for tier in recorded.index:
        assert again.loc[tier, "covered_pop"] == pytest.approx(recorded.loc[tier, "covered_pop"], abs=0.5)
    # The scenario is part of what is rebuilt: its added station is there, its closed complex is not.
    ids = rebuilt.facilities["facility_id"].astype(str)
    assert ids.str.startswith("scenario-").any()
    assert set(ids) == set(scenario_run.result.facilities["facility_id"].astype(str))
