"""The README's commands and code blocks run as written, so the front door cannot drift.

Every ``bash`` block line (but the install and test commands, which ``.ci/run`` itself runs), every
inline `` `circles ...` `` example, the ``python`` block and the audit config run in a sandbox folder
that looks like this repository to a newcomer: ``data/`` beside them, plus the few files of their own
that examples name (``roads.gpkg``, ``scenario.csv``), made here from the shipped data. Inline code
that starts with ``circles`` and has arguments is an example, so it must be complete; syntax lines use
capitals and brackets (``circles map DIR [--offline]``), and an option is named alone (``--compare``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
_SETUP = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest")
# Syntax lines such as `circles map DIR [--offline]`: placeholders in capitals, optional parts in brackets.
_PLACEHOLDER = re.compile(r"\b[A-Z]{1,}\b|[\[\]|()]")


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _commands() -> list[str]:
    """The README's shell examples in reading order, each once."""
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            commands += [part.strip() for part in line.split("&&")
                         if part.strip() and not part.strip().startswith(_SETUP)]
    for span in re.findall(r"`(circles [^`]+)`", README):
        # A bare `circles coverage` names a command; it is not an example to run.
        if len(span.split()) > 2 and not _PLACEHOLDER.search(span.replace("circles", "", 1)):
            commands.append(span)
    return list(dict.fromkeys(commands))


COMMANDS = _commands()


def _env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, chengdu_net) -> Path:
    import geopandas as gpd
    import pandas as pd

    box = tmp_path_factory.mktemp("newcomer")
    (box / "data").symlink_to(ROOT / "data", target_is_directory=True)
    # A city's own road centre lines, for `circles network roads.gpkg`: the Chengdu streets as plain lines.
    lines = chengdu_net.edges_gdf()[["geometry"]]
    gpd.GeoDataFrame(lines, crs=chengdu_net.crs).to_file(box / "roads.gpkg", engine="pyogrio")
    # A scenario as the explorer exports it: one station added, one complex closed.
    first = pd.read_csv(ROOT / "data" / "chengdu_facilities.csv")["id"].iloc[0]
    pd.DataFrame({"action": ["add", "close"], "id": ["new-1", first], "name": ["新驿站", ""],
                  "tier": ["station", ""], "lon": [104.0657, None], "lat": [30.6590, None]}
                 ).to_csv(box / "scenario.csv", index=False, encoding="utf-8-sig")
    (box / "audit.yaml").write_text(_blocks("yaml")[0], encoding="utf-8")
    return box


def test_the_readme_has_its_examples():
    assert any(c.startswith("circles demo") for c in COMMANDS)
    assert len(_blocks("python")) == 1
    assert len(_blocks("yaml")) == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs_as_written(command, sandbox):
    proc = subprocess.run(command, shell=True, cwd=sandbox, env=_env(), capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_readme_python_block_runs_as_written(sandbox):
    proc = subprocess.run([sys.executable, "-c", _blocks("python")[0]], cwd=sandbox, env=_env(),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
