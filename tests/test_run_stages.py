"""A run draws its service areas on a thread of its own, beside the population, coverage and
tables (issue 20): the layers it writes are the ones drawn from its coverage result afterwards,
and an error in the other stages is reported as before, with no folder left behind."""

from __future__ import annotations

import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from circles.cli import main
from circles.runs.background import in_background
from circles.runs.pipeline import RunInputs, coverage_run, isochrone_layers


def test_the_layers_a_run_writes_are_those_drawn_from_its_coverage_result(tmp_path):
    run = coverage_run(RunInputs(), tmp_path / "run", draw_map=False)
    result = run.result
    # Drawn again, one stage after another, from what coverage snapped.
    again = isochrone_layers(result.network, result.facilities, result.profile)
    path = run.folder / "isochrones.gpkg"
    assert path in run.files
    written = set(gpd.list_layers(path)["name"])
    assert written == set(again)
    for name, layer in again.items():
        got = gpd.read_file(path, layer=name, engine="pyogrio")
        assert len(got) == len(layer), name
        for a, b in zip(got.geometry, layer.geometry, strict=True):
            assert shapely.equals_exact(a, b, 1e-9), name
    timings = run.manifest.data["timings_s"]
    # The stages overlap: the areas were drawn while the others ran, inside the run's wall time.
    assert timings["isochrones"] > 0
    assert timings["isochrones"] < timings["total"]


def test_a_bad_population_is_reported_while_the_areas_are_drawn(tmp_path, capsys):
    path = tmp_path / "people.csv"
    pd.DataFrame({"lon": [104.06, 104.07], "lat": [30.655, 30.656], "pop": ["120", "约300"]}).to_csv(
        path, index=False)
    out = tmp_path / "run"
    assert main(["coverage", "--population", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "people.csv" in err
    assert "约300" in err
    assert not out.exists()


def test_a_background_job_hands_back_its_result_and_its_error():
    assert in_background(sum, [1, 2, 3], name="sum").result(timeout=10) == 6

    def fails():
        time.sleep(0.05)
        raise ValueError("row 3: bad")

    job = in_background(fails)
    with pytest.raises(ValueError, match="row 3: bad"):
        job.result(timeout=10)
