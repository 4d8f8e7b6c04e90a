"""A city's audit inputs shipped to a Dask worker as bytes, and its run folder's files shipped back.

The client reads each input file the city block names (:func:`pack_inputs`); the worker
(:func:`run_shipped`) writes them into a temporary folder of its own, runs the city there and
returns the run folder's files. A worker never writes anywhere else.

Temporary paths never reach the outputs. The worker mirrors every input under its temporary
folder at the input's own absolute path (``/tmp/circles-audit-x`` + ``/data/city.osm.pbf``), and
the run's folder at the client's, so each path the run writes is the temporary prefix followed
by the original path, already escaped by whichever writer wrote it (JSON, HTML, CSV): dropping
the prefix from the text files restores the original paths without parsing any of them. A
symbolic link on the client is a link on the worker, so resolved paths come out the same too.

Inputs the config marks ``shared`` (``shared: true``, or ``shared: [network, units]``) are seen
by every worker at the same path, on a network file system: they are not shipped.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

__all__ = ["SHARED_NAMES", "TOPIC", "CitySpec", "pack_inputs", "run_shipped", "shared_inputs"]

# The event topic on which a worker announces each attempt's start and its stages.
TOPIC = "circles-audit"
SHARED_NAMES = ("network", "facilities", "population", "units", "services", "candidates",
                "residential", "profile", "compare", "config")
# Outputs that are text: the temporary prefix is dropped from them (binary files hold no path).
_TEXT_SUFFIXES = frozenset({".json", ".html", ".htm", ".csv", ".txt", ".md", ".yaml", ".yml",
                            ".geojson", ".js", ".svg", ".xml"})
# What circles.compare_audits reads in an earlier audit folder: nothing else is shipped.
_COMPARE_FILES = ("manifest.json", "*.csv", "gaps.gpkg")


@dataclass(frozen=True)
class CitySpec:
    """What a worker needs besides the input bytes: the city, where its inputs were, its folder."""

    city: dict
    compare: str | None
    path_keys: tuple[str, ...]
    shared: frozenset[str]
    rebase: dict[str, str]
    real: dict[str, str]
    root: str
    name: str
    stem: str
    key: str


def shared_inputs(city: dict) -> frozenset[str]:
    """The inputs a city block's ``shared`` marks as seen by every worker at the same path.

    Raises
    ------
    DataError
        ``shared`` is neither true/false nor a list of :data:`SHARED_NAMES`.

    """
    value = city.get("shared", city.get("_shared"))
    if value is None or value is False:
        return frozenset()
    if value is True:
        return frozenset(SHARED_NAMES)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple | set | frozenset) or set(names) - set(SHARED_NAMES):
        raise DataError(f"shared must be true, false or a list of inputs (got {value!r})",
                        file=city.get("_config"), field=f"{city.get('name')}.shared",
                        fix=f"write shared: true, or a list of {', '.join(SHARED_NAMES)}")
    return frozenset(names)


def _path_slots(spec: dict, path_keys: Sequence[str]) -> Iterator[tuple[dict | list, object, str]]:
    """Every place in ``{"city": ..., "compare": ...}`` that holds an input path, with its name."""
    city = spec["city"]
    for key in path_keys:
        value = city.get(key)
        if isinstance(value, list):  # units at several levels
            yield from ((value, i, key) for i in range(len(value)))
        elif value:
            yield city, key, key
    site = city.get("site")
    if isinstance(site, dict) and site.get("candidates"):
        yield site, "candidates", "candidates"
    for container, key, name in ((city, "profile", "profile"), (city, "_config", "config"),
                                 (spec, "compare", "compare")):
        if container.get(key):
            yield container, key, name


def _files_of(path: Path, name: str) -> list[Path]:
    """The files one input path stands for: a file (a shapefile with its sidecars) or a folder."""
    if path.is_dir():
        if name == "compare":
            return sorted({f for pattern in _COMPARE_FILES for f in path.glob(pattern) if f.is_file()})
        return sorted(f for f in path.rglob("*") if f.is_file())
    if path.suffix.lower() == ".shp":
        return sorted(f for f in path.parent.glob(f"{path.stem}.*") if f.is_file())
    return [path]


def pack_inputs(city: dict, compare: str | None, *, path_keys: Sequence[str],
                shared: frozenset[str] = frozenset()
                ) -> tuple[dict[str, bytes], dict[str, str], dict[str, str]]:
    """Read a city's input files (those not ``shared``) as bytes, for a worker.

    Parameters
    ----------
    city
        The resolved config block.
    compare
        An earlier audit folder (only the files :func:`circles.compare_audits` reads go).
    path_keys
        The block's keys that hold input paths.
    shared
        Input names not to ship.

    Returns
    -------
    payload
        Absolute path -> the file's bytes.
    rebase
        Each path as the block gives it -> its absolute path (what the worker mirrors).
    real
        Absolute path -> the path with symbolic links resolved, where they differ, so the
        worker's run records the path a local run records.

    """
    payload: dict[str, bytes] = {}
    rebase: dict[str, str] = {}
    real: dict[str, str] = {}
    for container, key, name in _path_slots({"city": city, "compare": compare}, path_keys):
        value = str(container[key])  # type: ignore[index]
        path = Path(value)
        if name in shared or value.lower() == "osm" or not path.exists():
            continue  # a missing file is the worker's to report, as a local run would
        rebase[value] = os.path.abspath(value)
        for f in _files_of(path, name):
            absolute = os.path.abspath(f)
            payload[absolute] = f.read_bytes()
            if os.path.realpath(f) != absolute:
                real[absolute] = os.path.realpath(f)
    return payload, rebase, real


# --- the worker's side ------------------------------------------------------------------------

def run_shipped(task: Callable, spec: CitySpec, payload: dict[str, bytes]) -> dict:
    """Run one city on a worker from shipped inputs, in a temporary folder of its own.

    Parameters
    ----------
    task
        ``task(city, out_root, compare, progress) -> row`` (the audit's city task).
    spec
        The city and where its inputs were (:class:`CitySpec`).
    payload
        The inputs' bytes by absolute path (:func:`pack_inputs`).

    Returns
    -------
    dict
        ``row`` (the task's summary row), ``files`` (the run folder's files by relative path,
        the temporary prefix dropped from the text ones), ``worker`` and ``peak_mb`` (the
        worker process's peak resident memory so far).

    """
    worker = _worker()
    tell = _teller(worker, spec)
    tell("started")
    scratch = getattr(worker, "local_directory", None)
    with tempfile.TemporaryDirectory(prefix="circles-audit-", dir=scratch) as tmp:
        prefix = os.path.realpath(tmp)
        _unpack(prefix, payload, spec.real)
        local = _rebased(spec, prefix)
        root = prefix + spec.root  # the client's own absolute path, mirrored
        _reserve(Path(root), spec.stem, spec.name)
        row = task(local["city"], root, local["compare"], tell)
        files = _collect(Path(row["folder"]), prefix) if row.get("status") == "done" else {}
    return {"row": _strip(row, prefix), "files": files, "peak_mb": _peak_mb(),
            "worker": getattr(worker, "address", "")}


def _worker():
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # called outside a worker (a test, a plain call)
        return None


def _teller(worker, spec: CitySpec) -> Callable[[str], None]:
    """Send each stage to the client on the event topic (nothing outside a worker)."""
    if worker is None:
        return lambda stage: None

    def tell(stage: str) -> None:
        worker.log_event(TOPIC, {"key": spec.key, "city": spec.city.get("name"), "stage": stage,
                                 "worker": worker.address})

    return tell


def _unpack(prefix: str, payload: dict[str, bytes], real: dict[str, str]) -> None:
    """Write each input at its own path under ``prefix`` (a link where the original was one)."""
    for path, data in payload.items():
        target = prefix + real.get(path, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(data)
        if path in real:
            link = prefix + path
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(target, link)


def _rebased(spec: CitySpec, prefix: str) -> dict:
    """The city block and compare folder with every shipped path moved under ``prefix``."""
    local = copy.deepcopy({"city": spec.city, "compare": spec.compare})
    for container, key, name in list(_path_slots(local, spec.path_keys)):
        value = str(container[key])  # type: ignore[index]
        if name not in spec.shared and value in spec.rebase:
            container[key] = prefix + spec.rebase[value]  # type: ignore[index]
    return local


def _reserve(root: Path, stem: str, name: str) -> None:
    """Make the names before ``name`` (``stem``, ``stem-2``...) taken, so the run gets ``name``:
    the folder's name appears in the outputs (the map's title) as it will on the client."""
    root.mkdir(parents=True, exist_ok=True)
    n = 1 if name == stem else int(name.rsplit("-", 1)[1])
    for k in range(1, n):
        (root / (stem if k == 1 else f"{stem}-{k}")).mkdir(exist_ok=True)


def _collect(folder: Path, prefix: str) -> dict[str, bytes]:
    """The run folder's files by relative path; text files without the temporary prefix."""
    files = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        data = f.read_bytes()
        if f.suffix.lower() in _TEXT_SUFFIXES:
            data = data.replace(prefix.encode(), b"")
        files[f.relative_to(folder).as_posix()] = data
    return files


def _strip(value, prefix: str):
    """``value`` (a row: strings, lists, dicts) without the temporary prefix."""
    if isinstance(value, str):
        return value.replace(prefix, "")
    if isinstance(value, list):
        return [_strip(v, prefix) for v in value]
    if isinstance(value, dict):
        return {k: _strip(v, prefix) for k, v in value.items()}
    return value


def _peak_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20 if os.uname().sysname == "Darwin" else 1 << 10), 1)
