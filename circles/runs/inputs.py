"""What a run reads, built in one place: from the command line, from an audit config block or from
the manifest of a finished run. The three give the same :class:`RunInputs` for the same run, so a
run folder can be recomputed (:func:`circles.runs.rerun.rerun`) from what it recorded.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PATH_FIELDS", "RunInputs", "default_facilities", "resolve_path"]

# The inputs that are files: relative paths in a config are relative to the config's folder, and
# a manifest records them resolved (with their sha256) under "inputs".
PATH_FIELDS = ("network", "facilities", "population", "units", "services", "residential", "scenario")
# The parameters a manifest records as given ("parameters": the CLI's arguments or the city block).
_VALUE_FIELDS = ("unit_column", "pop_column", "households_column", "population_crs",
                 "facility_areas")


def default_facilities() -> Path:
    """The sample Chengdu facilities shipped beside the embedded extract."""
    from ..readers.files import default_network_path

    return default_network_path().parent / "chengdu_facilities.csv"


def resolve_path(value, base_dir: str | Path | None):
    """``value`` relative to ``base_dir`` (absolute paths, ``None`` and ``osm`` stay as they are;
    a list, as for units at several levels, path by path)."""
    if isinstance(value, list | tuple):
        return [resolve_path(v, base_dir) for v in value]
    if not value or base_dir is None or str(value).lower() == "osm":
        return None if not value else str(value)
    p = Path(str(value))
    return str(p if p.is_absolute() else Path(base_dir) / p)


@dataclass
class RunInputs:
    """What a coverage run reads. Paths may be ``None`` for the embedded defaults.

    Build one with :meth:`from_args` (the ``circles`` command), :meth:`from_config` (an audit
    config's city block) or :meth:`from_manifest` (a finished run folder), or directly.
    """

    network: str | Path | None = None
    facilities: str | Path | None = None
    population: str | Path | None = None
    profile: str | Path | None = None
    crs: str = "wgs84"
    units: str | Path | list[str | Path] | None = None
    unit_column: str | None = None
    pop_column: str | None = None
    households_column: str | None = None
    population_crs: str | None = None
    services: str | Path | None = None
    scenario: str | Path | None = None
    network_options: dict = field(default_factory=dict)
    facility_areas: str | int | None = None
    residential: str | Path | None = None
    drop_invalid: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunInputs:
        """The inputs of a ``circles`` command's parsed arguments (``isochrones`` has no population flags)."""
        return cls._from_mapping(vars(args))

    @classmethod
    def from_config(cls, block: dict, base_dir: str | Path | None = None) -> RunInputs:
        """The inputs of an audit config's city block; relative paths are taken relative to
        ``base_dir`` (default: as given, e.g. a block :func:`circles.load_config` resolved)."""
        return cls._from_mapping({**block, **{k: resolve_path(block.get(k), base_dir) for k in PATH_FIELDS}})

    @classmethod
    def from_manifest(cls, manifest: dict) -> RunInputs:
        """The inputs a run folder's manifest records: its input files (as read, resolved) and its
        parameters (the command's arguments or the audit's city block)."""
        params = dict(manifest.get("parameters") or {})
        recorded = manifest.get("inputs") or {}
        for role in PATH_FIELDS:
            entry = recorded.get(role) or {}
            if entry and str(params.get(role) or "").lower() != "osm":
                params[role] = entry.get("path") or entry.get("source")
        # Units at several levels are recorded as units, units_2, ... (top level first).
        more = [recorded[f"units_{k}"] for k in range(2, 100) if f"units_{k}" in recorded]
        if more:
            params["units"] = [params["units"], *(e.get("path") or e.get("source") for e in more)]
        # A profile file is an input; a profile name is only a parameter.
        profile = recorded.get("profile") or {}
        params["profile"] = profile.get("path") or params.get("profile")
        return cls._from_mapping(params)

    @classmethod
    def _from_mapping(cls, values: dict) -> RunInputs:
        """The inputs named in ``values`` (missing keys keep their defaults)."""
        named: dict[str, Any] = {k: values.get(k) for k in (*PATH_FIELDS, "profile", *_VALUE_FIELDS)}
        return cls(**named, crs=values.get("crs") or "wgs84", drop_invalid=bool(values.get("drop_invalid")))
