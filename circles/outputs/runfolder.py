"""Atomic writes, run folders and manifests.

Nothing is lost: every file is written to a temporary name in its final folder and renamed into
place, and a run never writes into a folder that already holds another run's files.

A run owns its folder. :meth:`RunFolder.claim` takes ``--out`` in place: the folder is made (or,
if it exists, must be empty) and a claim marker ``.circles-run`` (pid, host, start time) is created
with ``O_CREAT | O_EXCL``, which the file system grants to exactly one process however many start at
once; a run that does not get it is refused before it reads anything. The run writes its files into
the folder and marks completion last: :meth:`RunFolder.finish` writes ``manifest.json`` with
``"complete": true`` and only then removes the marker. Earlier manifests a run writes on its way
(the map needs one) say ``"complete": false``. So a run that was killed leaves its marker, and
:func:`read_run_manifest` (behind ``circles map``, ``explore`` and ``audit --compare``) refuses the
folder: "the run in DIR did not finish". A run that fails with an error removes what it wrote.

Why claim in place rather than build in a hidden sibling folder and rename it onto ``--out`` at the
end: the rename approach lets a second run do all its work before it finds ``--out`` taken, moves
the folder under the feet of steps that hold its path (the map, the explorer, the siting that
follows a coverage run), and leaves nothing at ``--out`` to explain a killed run. The claim refuses
the second run at once and leaves the killed run's folder where the user looks for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import InputFileError

__all__ = [
    "CLAIM_NAME",
    "Manifest",
    "RunFolder",
    "abandon_unfinished",
    "atomic_path",
    "file_sha256",
    "held_runs",
    "read_run_manifest",
    "write_json",
    "write_text",
]

CLAIM_NAME = ".circles-run"
# Folders claimed by this process and not yet finished or abandoned: their own steps (the map, the
# explorer) may read them while they are still incomplete.
_HELD: dict[str, RunFolder] = {}

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


class RunFolder:
    """A run folder claimed by this process (see the module docstring).

    Get one with :meth:`claim` (the folder named) or :meth:`claim_unique` (``path``, ``path-2``...),
    write the run's files into :attr:`path`, then call :meth:`finish`. Used as a context manager it
    abandons the folder (removes what the run wrote) when the block raises.

    Attributes
    ----------
    path
        The folder.
    created
        Whether the claim made the folder (else it was an existing empty folder).

    """

    def __init__(self, path: Path, *, token: str, created: bool) -> None:
        self.path, self.token, self.created = path, token, created
        _HELD[_key(path)] = self

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self.abandon()
        return False

    @property
    def held(self) -> bool:
        """Whether this process still holds the claim (not yet finished or abandoned)."""
        return _HELD.get(_key(self.path)) is self

    @classmethod
    def claim(cls, path: str | Path, *, command: str = "") -> RunFolder:
        """Claim ``path`` for a new run; it must not exist yet, or be an empty folder.

        Raises
        ------
        InputFileError
            ``path`` holds another run (finished, unfinished or still running) or other files, is
            a file, lies under a file, or cannot be written.

        """
        path = Path(path)
        _check_writable_parent(path)
        created = _make_dir(path)
        token = _create_marker(path, command)
        if token is None:
            raise _taken(path)
        # Other claimants' private marker names (``.circles-run.<token>``) do not count as files.
        if not created and any(not p.name.startswith(CLAIM_NAME) for p in path.iterdir()):
            os.unlink(path / CLAIM_NAME)
            raise _taken(path)
        return cls(path, token=token, created=created)

    @classmethod
    def claim_unique(cls, path: str | Path, *, command: str = "") -> RunFolder:
        """Claim a new folder ``path``, or ``path-2``, ``path-3``... if it is taken."""
        path = Path(path)
        _check_writable_parent(path)
        for n in range(1, 10_000):
            candidate = path if n == 1 else path.with_name(f"{path.name}-{n}")
            try:
                os.mkdir(candidate)
            except FileExistsError:
                continue
            except OSError as err:
                raise _unwritable(candidate, err) from err
            token = _create_marker(candidate, command)
            if token is not None:  # else a run given this very name as --out got there first
                return cls(candidate, token=token, created=True)
        raise InputFileError("no free folder name left", file=path, fix="move old runs away")

    def finish(self, manifest: Manifest, outputs: list[str] | None = None) -> Path:
        """Mark the run complete: write ``manifest.json`` with ``"complete": true``, then drop the claim."""
        written = manifest.write(self.path, outputs, complete=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / CLAIM_NAME)
        _HELD.pop(_key(self.path), None)
        return written

    def abandon(self) -> None:
        """Remove what the run wrote (the folder itself when the claim made it) and drop the claim."""
        if not self.held:
            return
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # the folder was empty when claimed: everything in it is this run's
            for child in self.path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        _HELD.pop(_key(self.path), None)


def held_runs() -> list[RunFolder]:
    """The run folders this process has claimed and not yet finished or abandoned."""
    return list(_HELD.values())


def abandon_unfinished(*, keep: list[RunFolder] | tuple = ()) -> list[Path]:
    """Abandon every run folder this process holds (but those in ``keep``); the folders removed.

    The CLI calls it when a command ends, so a command that failed or was interrupted leaves no
    half-written folder.
    """
    dropped = [f for f in _HELD.values() if all(f is not k for k in keep)]
    for folder in dropped:
        folder.abandon()
    return [f.path for f in dropped]


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _check_writable_parent(path: Path) -> None:
    """Refuse an output path under a file or in a place this user cannot write, before any work."""
    if path.exists() and not path.is_dir():
        raise InputFileError("the output path exists and is a file", file=path,
                             fix="give --out a new folder name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputFileError(f"the output folder would be inside {ancestor}, which is a file", file=path,
                             fix="give --out a folder path that does not pass through a file")
    where = path if path.is_dir() else ancestor
    if not os.access(where, os.W_OK | os.X_OK):
        raise InputFileError(f"cannot write in {where} (no write permission)", file=path,
                             fix="give --out a folder you can write to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(path.parent, err) from err


def _unwritable(path: Path, err: OSError) -> InputFileError:
    return InputFileError(f"cannot create the output folder ({err.strerror or err})", file=path,
                          fix="give --out a folder you can write to")


def _make_dir(path: Path) -> bool:
    try:
        os.mkdir(path)
        return True
    except FileExistsError:
        if not path.is_dir():
            raise InputFileError("the output path exists and is a file", file=path,
                                 fix="give --out a new folder name") from None
        return False
    except OSError as err:
        raise _unwritable(path, err) from err


def _create_marker(folder: Path, command: str) -> str | None:
    """Create the claim marker exclusively: the token on success, None if someone holds it.

    The marker is written to a private name and hard-linked into place: the link is atomic and
    fails if the marker exists (like ``O_EXCL``), and the marker is never seen half-written.
    """
    token = uuid.uuid4().hex
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now(), "command": command,
            "token": token}
    marker, tmp = folder / CLAIM_NAME, folder / f"{CLAIM_NAME}.{token}"
    try:
        tmp.write_text(json.dumps(info), encoding="utf-8")
        try:
            os.link(tmp, marker)
        except FileExistsError:
            return None
        except OSError:  # a file system without hard links: O_EXCL, the marker briefly empty
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(info, fh)
    except FileExistsError:
        return None
    except OSError as err:
        raise _unwritable(folder, err) from err
    finally:
        tmp.unlink(missing_ok=True)
    return token


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _claim_info(folder: Path) -> dict:
    try:
        info = json.loads((folder / CLAIM_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _alive(info: dict) -> bool:
    """Whether the claim's process still runs (only knowable on the same host)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unfinished(folder: Path) -> InputFileError:
    """The error for a folder whose claim marker is still there."""
    info = _claim_info(folder)
    who = (f"started {info.get('started', '?')} by pid {info.get('pid', '?')} on {info.get('host', '?')}"
           if info else "its claim marker is being written")
    if not info or _alive(info):
        return InputFileError(f"another run is still writing into {folder} ({who})",
                              fix="wait for it to finish, or give --out a new folder name")
    return InputFileError(
        f"the run in {folder} did not finish ({who}): it stopped before it wrote a complete manifest.json",
        fix=f"remove the folder (rm -r {folder}) and run again")


def _taken(path: Path) -> InputFileError:
    """Why ``path`` cannot be claimed."""
    if (path / CLAIM_NAME).exists():
        return _unfinished(path)
    if (path / "manifest.json").is_file():
        return InputFileError("the output folder holds an earlier run; a run never overwrites an earlier run",
                              file=path, fix="give --out a new folder name, or move the old run away")
    return InputFileError("the output folder is not empty; a run never overwrites an earlier run",
                          file=path, fix="give --out a new folder name, or move the old run away")


def read_run_manifest(folder: str | Path) -> dict:
    """The manifest of a finished run folder; a clear error for anything else.

    A folder this process is still writing (its own map, its explorer) is read as it is. A
    manifest without a ``complete`` key and without a claim marker is a folder made by hand or
    by circles before run folders were claimed, and is read as finished.

    Raises
    ------
    InputFileError
        No such folder, not a run folder, a run that did not finish or is still running, or a
        ``manifest.json`` that cannot be read.

    """
    folder = Path(folder)
    fix = "pass the --out folder of a finished circles coverage, site, demo or audit run"
    if not folder.is_dir():
        what = "it is a file" if folder.exists() else "it does not exist, so it has no manifest.json"
        raise InputFileError(f"{folder} is not a run folder: {what}", fix=fix)
    mpath = folder / "manifest.json"
    held = _HELD.get(_key(folder)) is not None
    if not held and (folder / CLAIM_NAME).exists():
        raise _unfinished(folder)
    if not mpath.is_file():
        raise InputFileError(f"{folder} is not a run folder: it has no manifest.json", fix=fix)
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputFileError(f"the run in {folder} is corrupt: manifest.json cannot be read ({err})",
                             file=mpath, fix="run it again into a new folder") from err
    if not isinstance(data, dict):
        raise InputFileError(f"the run in {folder} is corrupt: manifest.json is not a JSON object",
                             file=mpath, fix="run it again into a new folder")
    if not held and data.get("complete") is False:
        raise InputFileError(
            f"the run in {folder} did not finish: its manifest.json is not marked complete",
            fix=f"remove the folder (rm -r {folder}) and run again")
    return data


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
            "created": _now(),
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

    def write(self, folder: str | Path, outputs: list[str] | None = None, *, complete: bool = False) -> Path:
        """Write ``manifest.json`` into ``folder`` (listing the files in it) atomically.

        Parameters
        ----------
        folder
            The run folder.
        outputs
            The file names to list (default: every file in the folder).
        complete
            Mark the run finished; :meth:`RunFolder.finish` does, as the run's last write.

        """
        folder = Path(folder)
        self.data["timings_s"]["total"] = round(time.perf_counter() - self._t0, 3)
        self.data["complete"] = bool(complete)
        # Hidden names are the claim marker and files still being written.
        self.data["outputs"] = outputs if outputs is not None else sorted(
            p.name for p in folder.iterdir()
            if p.is_file() and p.name != "manifest.json" and not p.name.startswith("."))
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
