"""Runs rebuilt from their folders.

A run folder's manifest names its inputs and parameters: :func:`rerun` reads the same files again and
recomputes the same numbers (the explorer and ``circles explore`` start from it).
"""

from __future__ import annotations

from pathlib import Path

from ..engine.coverage import compute_coverage
from ..outputs.runfolder import Manifest, read_run_manifest
from ..outputs.tables import read_csv
from .inputs import RunInputs
from .pipeline import RunOutput, load_inputs

__all__ = ["inputs_from_manifest", "rerun"]


def inputs_from_manifest(manifest: dict) -> RunInputs:
    """The :class:`RunInputs` a run folder's manifest records (see :meth:`RunInputs.from_manifest`)."""
    return RunInputs.from_manifest(manifest)


def rerun(folder: str | Path) -> RunOutput:
    """Rebuild a run's result from the inputs its manifest names (same files, same numbers)."""
    folder = Path(folder)
    manifest = read_run_manifest(folder)  # refuses a missing, unfinished, running or corrupt run
    ri = RunInputs.from_manifest(manifest)  # its scenario too: a scenario run reruns as it ran
    m = Manifest("explore")
    net, profile, fac, demand, units = load_inputs(ri, m)
    result = compute_coverage(net, fac, demand, profile=profile, units=units, unit_column=ri.unit_column)
    extras = {}
    if (folder / "proposals.csv").exists():
        extras["proposals"] = read_csv(folder / "proposals.csv")
    return RunOutput(folder=folder, result=result, files=[], manifest=m, extras=extras)
