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


def test_malloc_arenas_capped_on_glibc_unless_the_environment_says(tmp_path):
    """The cap is set through glibc's mallopt on Linux (what a 1M-node run's peak gains by it is
    bench_city's figure); a MALLOC_ARENA_MAX the user set is left as it is."""
    import os
    import subprocess
    import sys

    code = "from circles.runs.background import limit_malloc_arenas; print(limit_malloc_arenas())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    glibc = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(bool(glibc))
    out = subprocess.run([sys.executable, "-c", code], env=env | {"MALLOC_ARENA_MAX": "4"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_freed_memory_is_given_back_on_glibc():
    """A glibc heap keeps what is freed below live blocks; malloc_trim gives those pages back. Every
    tenth block is kept alive so the freed ones cannot merge into the heap's top (which free()
    returns by itself): then only the trim gives them back."""
    import os
    import sys
    import threading

    from circles.runs.background import release_freed_memory, release_memory_every

    glibc = bool(sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"))
    blocks = [bytes(9000) for _ in range(20_000)]  # above pymalloc's sizes: glibc's own
    kept = blocks[::10]
    del blocks
    assert release_freed_memory() is glibc
    assert len(kept) == 2000
    release_memory_every(5.0)
    assert release_memory_every(5.0) is False  # one thread per process
    names = {t.name for t in threading.enumerate()}
    assert ("circles-release-memory" in names) is glibc
