"""Input files: that a given file is there, and where the embedded Chengdu extract lies."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputFileError

__all__ = ["default_network_path", "require_file"]


def require_file(path: str | Path, *, what: str = "input") -> Path:
    """Check that ``path`` is an existing, non-empty file and return it as a Path."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"the {what} file does not exist", file=p,
                             fix="check the path (relative paths are relative to where you run the command)")
    if p.is_file() and p.stat().st_size == 0:
        raise InputFileError(f"the {what} file is empty", file=p, fix="export the file again")
    return p


def default_network_path() -> Path:
    """The embedded Chengdu extract used when no network is given."""
    here = Path(__file__).resolve().parent.parent  # the circles package folder
    for candidate in (here / "data" / "chengdu.osm.pbf", here.parent / "data" / "chengdu.osm.pbf"):
        if candidate.exists():
            return candidate
    raise InputFileError("the embedded Chengdu extract is missing from this installation",
                         file="data/chengdu.osm.pbf",
                         fix="install circles from its source folder (pip install -e .) or give --network")
