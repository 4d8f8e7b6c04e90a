"""The teaching notebooks run top to bottom on the embedded data, offline."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_four_notebooks_without_outputs():
    assert [p.name for p in NOTEBOOKS] == ["01_coverage_audit.ipynb", "02_site_selection.ipynb",
                                           "03_bring_your_own_city.ipynb",
                                           "04_community_scorecard.ipynb"]
    for path in NOTEBOOKS:
        assert '"output_type"' not in path.read_text(encoding="utf-8"), f"{path.name} has stored outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_twice_in_a_row(path, tmp_path):
    # A planner re-runs a notebook in the same folder: the second run must not trip over the first.
    for _ in range(2):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert not errors, errors[0].get("evalue") if errors else None
    assert len(list((tmp_path / "notebook-output").iterdir())) == 2
