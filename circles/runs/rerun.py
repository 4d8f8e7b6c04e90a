"""Runs rebuilt from their folders.

A run folder's manifest names its inputs and parameters: :func:`rerun` reads the same files again and
recomputes the same numbers (the explorer and ``circles explore`` start from it).
"""

from __future__ import annotations

from pathlib import Path

from ..engine.coverage import compute_coverage
from ..outputs.runfolder import Manifest, read_run_manifest
from ..outputs.tables import read_csv
from .pipeline import RunInputs, RunOutput, load_inputs

__all__ = ["inputs_from_manifest", "rerun"]


def inputs_from_manifest(manifest: dict) -> RunInputs:
    """The :class:`RunInputs` a run folder's manifest records (its input files and parameters)."""
    params = manifest.get("parameters", {})
    inputs = manifest.get("inputs", {})

    def path(role):
        v = inputs.get(role) or {}
        return v.get("path") or v.get("source")

    return RunInputs(network=path("network"), facilities=path("facilities"), population=path("population"),
                     profile=params.get("profile"), crs=params.get("crs") or "wgs84", units=path("units"),
                     unit_column=params.get("unit_column"), pop_column=params.get("pop_column"),
                     households_column=params.get("households_column"),
                     residential=path("residential"), drop_invalid=bool(params.get("drop_invalid")))


def rerun(folder: str | Path) -> RunOutput:
    """Rebuild a run's result from the inputs its manifest names (same files, same numbers)."""
    folder = Path(folder)
    manifest = read_run_manifest(folder)  # refuses a missing, unfinished, running or corrupt run
    ri = inputs_from_manifest(manifest)
    m = Manifest("explore")
    net, profile, fac, demand, units = load_inputs(ri, m)
    result = compute_coverage(net, fac, demand, profile=profile, units=units, unit_column=ri.unit_column)
    extras = {}
    if (folder / "proposals.csv").exists():
        extras["proposals"] = read_csv(folder / "proposals.csv")
    return RunOutput(folder=folder, result=result, files=[], manifest=m, extras=extras)
