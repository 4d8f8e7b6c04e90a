"""The shape rules of issue 17, kept by the tools themselves: ruff's rule set (with the complexity
and argument-count rules, ``C90`` and ``PLR0913``) on the whole tree, and mypy on the engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_ruff_passes_with_the_complexity_and_argument_rules():
    done = _run("ruff", "check", "circles", "tests", "scripts")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy_passes_on_the_engine():
    done = _run("mypy")  # files and options: [tool.mypy] in pyproject.toml
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
