"""Run folders: a run owns its folder, a killed run is recognised, bad --out paths are clear errors,
and the CLI prints its own notes (issue 16, items 9 and 12)."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from circles.cli import main
from circles.errors import CirclesError

ROOT = Path(__file__).resolve().parent.parent
CLAIM = ".circles-run"


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "circles", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _claim_in_child(path: str, barrier) -> str:
    from circles.outputs.runfolder import RunFolder

    barrier.wait()
    try:
        folder = RunFolder.claim(path)
    except CirclesError as err:
        return f"refused: {err}"
    (folder.path / "mine.txt").write_text(str(os.getpid()))
    return f"claimed {os.getpid()}"


@pytest.mark.parametrize("existing_empty", [False, True])
def test_exactly_one_of_many_processes_claims_a_folder(tmp_path, existing_empty):
    out = tmp_path / "run"
    if existing_empty:
        out.mkdir()
    ctx = multiprocessing.get_context("fork")
    n = 6
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            results = pool.starmap(_claim_in_child, [(str(out), barrier)] * n)
    claimed = [r for r in results if r.startswith("claimed")]
    assert len(claimed) == 1, results
    assert all(r.startswith("refused") for r in results if r not in claimed)
    # The winner's file is the only one, and the winner is the one that wrote it.
    assert (out / "mine.txt").read_text() == claimed[0].split()[1]
    assert sorted(p.name for p in out.iterdir()) == [CLAIM, "mine.txt"]


def test_two_cli_runs_into_one_out(tmp_path):
    out = tmp_path / "shared"
    procs = [_cli("coverage", "--out", str(out), cwd=tmp_path) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes == [0, 1], results
    winner = next(r for r in results if r[0] == 0)
    loser = next(r for r in results if r[0] == 1)
    assert f"written: {out}" in winner[1]
    assert "written" not in loser[1]
    assert "circles coverage: error:" in loser[2]
    assert "Traceback" not in loser[2] + winner[2]
    # Warnings are the CLI's own notes (the sample facilities name services no facility of the
    # extract provides), not Python's "path.py:123: UserWarning" lines.
    assert "note: no provider of" in winner[2]
    assert "Warning" not in winner[2]
    assert not re.search(r"\.py:\d+", winner[2])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["complete"] is True
    assert not (out / CLAIM).exists()
    # Nothing is lost: every file the winner listed is there, and no one else's files are.
    assert sorted(manifest["outputs"]) == sorted(p.name for p in out.iterdir() if p.name != "manifest.json")
    assert {"coverage_by_tier.csv", "facilities.csv", "demand.gpkg", "map.html"} <= set(manifest["outputs"])


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A coverage run killed (SIGKILL) just after it claimed its folder."""
    tmp = tmp_path_factory.mktemp("killed")
    out = tmp / "run"
    proc = _cli("coverage", "--out", str(out), cwd=tmp)
    deadline = time.monotonic() + 120
    while not (out / CLAIM).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -9, "the run was not killed mid-run"
    return out


def _half_written(folder: Path) -> Path:
    """A run that died after writing files and an interim manifest.json (the map step writes one
    before the map): in a separate process that then exits without finishing."""
    code = ("import os, sys\nfrom circles.outputs.runfolder import Manifest, RunFolder, write_text\n"
            "f = RunFolder.claim(sys.argv[1], command='coverage')\n"
            "write_text(f.path / 'coverage_by_tier.csv', 'tier,covered_pop\\nstation,1\\n')\n"
            "write_text(f.path / 'facilities.csv', 'facility_id,name,tier,lon,lat\\n')\n"
            "Manifest('coverage', {'profile': 'deyang'}).write(f.path)\nos._exit(9)\n")
    done = subprocess.run([sys.executable, "-c", code, str(folder)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    return folder


def test_a_killed_run_is_refused_everywhere(killed_run, tmp_path, capsys):
    half = _half_written(tmp_path / "half")
    cfg = tmp_path / "a.yaml"
    cfg.write_text("name: later\nyear: 2027\n", encoding="utf-8")
    for folder in (killed_run, half):
        for argv in (["map", str(folder)], ["explore", str(folder)],
                     ["audit", str(cfg), "--compare", str(folder)]):
            assert main(argv) == 1, argv
            err = capsys.readouterr().err
            assert f"circles {argv[0]}: error:" in err
            assert f"the run in {folder} did not finish" in err, err
            assert "Traceback" not in err
        assert main(["coverage", "--out", str(folder)]) == 1
        err = capsys.readouterr().err
        assert "did not finish" in err
        assert f"rm -r {folder}" in err  # the fix: remove the folder
        assert (folder / CLAIM).exists()  # the refused run did not touch the folder
    assert not list(tmp_path.glob("later-2027*"))  # the audit refused before making a folder


def test_corrupt_manifest_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "corrupt"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"command": "coverage", "outp', encoding="utf-8")
    for argv in (["map", str(folder)], ["explore", str(folder)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "is corrupt: manifest.json cannot be read" in err
        assert "Traceback" not in err


def test_bad_out_paths_are_errors_without_tracebacks(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    cases = [
        (a_file / "run", "which is a file"),
        (a_file / "deeper" / "run", "which is a file"),
        (a_file, "exists and is a file"),
        (Path("/sys/circles-test-run"), "cannot create the output folder"),  # root cannot write /sys
        (Path("/proc/1/circles-test-run"), "cannot write in /proc/1"),
    ]
    for out, words in cases:
        assert main(["coverage", "--out", str(out)]) == 1, out
        err = capsys.readouterr().err
        assert err.startswith("circles coverage: error:"), err
        assert words in err, err
        assert "Traceback" not in err


def test_an_earlier_run_is_never_overwritten(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "coverage_by_tier.csv").write_text("tier\n")
    assert main(["coverage", "--out", str(out)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["coverage_by_tier.csv"]


def test_a_failed_run_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "new"
    assert main(["coverage", "--facilities", str(tmp_path / "missing.csv"), "--out", str(out)]) == 1
    assert "missing.csv" in capsys.readouterr().err
    assert not out.exists()
    empty = tmp_path / "empty"  # an empty folder the user made stays, empty
    empty.mkdir()
    assert main(["coverage", "--facilities", str(tmp_path / "missing.csv"), "--out", str(empty)]) == 1
    assert empty.is_dir()
    assert not list(empty.iterdir())


