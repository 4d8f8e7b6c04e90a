"""Atomic writes, run folders and manifests.

Nothing is lost: every file is written to a temporary name in its final folder and renamed into
place, and a run never writes into a folder that already holds another run's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import InputFileError

__all__ = [
    "Manifest",
    "atomic_path",
    "file_sha256",
    "new_run_dir",
    "unique_dir",
    "write_json",
    "write_text",
]

_DEPENDENCIES = (
    "numpy", "scipy", "pandas", "geopandas", "shapely", "pyproj", "pyogrio", "pyrosm", "osmium",
    "networkx", "osmnx", "folium", "rasterio", "h3", "dask", "highspy",
)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary file keeps the final suffix, so writers that infer a format from the suffix
    (GeoPackage, Excel) still work. On error the temporary file is removed and ``path`` is
    untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # writers such as pyogrio refuse to open an existing empty file as a GeoPackage
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON to ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # NumPy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file (or of every file in a folder, in name order)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def new_run_dir(path: str | Path) -> Path:
    """Create the run folder ``path``; it must not exist yet, or be empty.

    Raises
    ------
    InputFileError
        If ``path`` holds files already: a run never overwrites another run.

    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise InputFileError("the output path exists and is a file", file=path,
                                 fix="give --out a new folder name")
        if any(path.iterdir()):
            raise InputFileError(
                "the output folder is not empty; a run never overwrites an earlier run",
                file=path, fix="give --out a new folder name, or move the old run away")
    path.mkdir(parents=True, exist_ok=True)
    return path


def unique_dir(path: str | Path) -> Path:
    """Create and return ``path``, or ``path-2``, ``path-3``... if it is taken."""
    path = Path(path)
    candidate, n = path, 1
    while True:
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            n += 1
            candidate = path.with_name(f"{path.name}-{n}")


def versions() -> dict[str, str]:
    """Versions of circles, Python and the main dependencies."""
    out = {"python": platform.python_version()}
    for name in ("circles", *_DEPENDENCIES):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


class Manifest:
    """What a run read, did and wrote; saved as ``manifest.json`` in the run folder.

    Parameters
    ----------
    command
        The command or function that made the run.
    parameters
        Its parameters (JSON-serialisable).

    """

    def __init__(self, command: str, parameters: dict | None = None) -> None:
        self.data: dict[str, Any] = {
            "command": command,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "parameters": parameters or {},
            "inputs": {},
            "outputs": [],
            "counts": {},
            "timings_s": {},
            "versions": versions(),
        }
        self._t0 = time.perf_counter()

    def add_input(self, role: str, path: str | Path | None) -> None:
        """Record an input file with its sha256 (``None`` and non-files are recorded as given)."""
        if path is None:
            return
        p = Path(str(path))
        if p.exists():
            self.data["inputs"][role] = {"path": str(p.resolve()), "sha256": file_sha256(p)}
        else:
            self.data["inputs"][role] = {"source": str(path)}

    def timed(self, stage: str) -> contextlib.AbstractContextManager:
        """A context manager recording the seconds a stage took."""
        return _Timer(self.data["timings_s"], stage)

    def count(self, **counts: Any) -> None:
        """Record counts (nodes, facilities, people...)."""
        self.data["counts"].update(counts)

    def set(self, key: str, value: Any) -> None:
        """Record any other JSON-serialisable fact under ``key``."""
        self.data[key] = value

    def write(self, folder: str | Path, outputs: list[str] | None = None) -> Path:
        """Write ``manifest.json`` into ``folder`` (listing the files in it) atomically."""
        folder = Path(folder)
        self.data["timings_s"]["total"] = round(time.perf_counter() - self._t0, 3)
        self.data["outputs"] = outputs or sorted(
            p.name for p in folder.iterdir() if p.is_file() and p.name != "manifest.json")
        return write_json(folder / "manifest.json", self.data)


class _Timer(contextlib.AbstractContextManager):
    def __init__(self, store: dict, stage: str, clock: Callable[[], float] = time.perf_counter):
        self.store, self.stage, self.clock = store, stage, clock

    def __enter__(self):
        self.t = self.clock()
        return self

    def __exit__(self, *exc):
        self.store[self.stage] = round(self.store.get(self.stage, 0) + self.clock() - self.t, 3)
        return False


def require_file(path: str | Path, *, what: str = "input") -> Path:
    """Check that ``path`` is an existing, non-empty file and return it as a Path."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"the {what} file does not exist", file=p,
                             fix="check the path (relative paths are relative to where you run the command)")
    if p.is_file() and p.stat().st_size == 0:
        raise InputFileError(f"the {what} file is empty", file=p, fix="export the file again")
    return p
