"""An audit's cities on a Dask cluster that shares no folder with the client.

Each city's input files travel as bytes with its task (:mod:`circles.runs.audit_shipping`);
files over :data:`SCATTER_BYTES` go ahead with ``client.scatter``, straight to a worker. The
worker runs the city in its own temporary folder and sends the run folder's files back; the
client claims the audit folder and writes them atomically, ``manifest.json`` last (the mark that
the folder is finished). A LocalCluster takes exactly the same path as an external scheduler.
The input signature in the manifest is the client's, computed from the original files: the
worker's own (from the mirrored paths) is replaced.

A worker lost mid-city (killed, out of memory, its machine gone) loses nothing: Dask reruns the
city's task on another worker, or, when the lost worker held the city's scattered inputs, the
client ships them again. Each attempt announces its start on the ``circles-audit`` event topic,
so the client knows which cities ran more than once (``retried`` in the summary) and on which
workers. A city that fails on its own data fails alone: its row says why.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CirclesError, InputFileError
from ..outputs.runfolder import RunFolder, atomic_path, write_json
from .audit_shipping import SHARED_NAMES, TOPIC, CitySpec, pack_inputs, run_shipped

__all__ = ["SCATTER_BYTES", "SHARED_NAMES", "TOPIC", "CityJob", "open_client", "run_jobs",
           "write_city_folder"]

# Above this a file travels by client.scatter (client to worker) rather than inside the task,
# which the scheduler would hold in memory until the task ends.
SCATTER_BYTES = 1 << 20
# Attempts of a city whose task Dask cancelled (its scattered inputs went with a lost worker).
MAX_ATTEMPTS = 3


@dataclass
class CityJob:
    """One city to run on the cluster, as the client knows it.

    Attributes
    ----------
    city
        The resolved config block (the client's own paths).
    root
        The client's folder for the city's audit folder.
    stem
        The audit folder's name (``name-year``; ``-2``, ``-3``... when taken).
    signature
        The input signature, computed on the client from the original files.
    compare
        An earlier audit folder to compare with.
    shared
        The inputs every worker sees at the client's path (:data:`SHARED_NAMES`).

    """

    city: dict
    root: Path
    stem: str
    signature: str
    compare: str | None = None
    shared: frozenset[str] = frozenset()
    attempts: int = 0
    name: str = ""
    starts: set[tuple[str, str]] = field(default_factory=set)
    held: list = field(default_factory=list)




@contextlib.contextmanager
def open_client(scheduler: str | None, *, workers: int = 2, wait_s: float = 60.0):
    """A Dask client on the scheduler at ``scheduler``, or on a new LocalCluster of ``workers``.

    Raises
    ------
    CirclesError
        The scheduler cannot be reached, or no worker joins it within ``wait_s`` seconds.

    """
    from dask.distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=wait_s)
        except (OSError, TimeoutError) as err:
            raise CirclesError(f"cannot reach the Dask scheduler at {scheduler} ({err})", field="--scheduler",
                               fix="start it (dask scheduler) and give its address, e.g. tcp://10.0.0.5:8786") from err
    else:
        with warnings.catch_warnings():
            # With no dashboard its port is moot, yet the scheduler warns when 8787 is taken.
            warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
        client = Client(cluster)
    try:
        try:
            client.wait_for_workers(1, timeout=wait_s)
        except TimeoutError as err:
            raise CirclesError(f"no Dask worker joined the scheduler at {scheduler} in {wait_s:g} s",
                               fix=f"start workers with: dask worker {scheduler}") from err
        yield client
    finally:
        # The client goes first: closed after the cluster it would log the scheduler's closed
        # comms (CommClosedError) while the process shuts down.
        client.close()
        if cluster is not None:
            cluster.close()


def run_jobs(client, jobs: list[CityJob], *, task: Callable, path_keys: Sequence[str],
             progress: Callable[[str, str], None] | None = None, scatter_bytes: int = SCATTER_BYTES
             ) -> list[dict]:
    """Run cities on the cluster and write each one's audit folder as it comes back.

    Parameters
    ----------
    client
        A ``dask.distributed.Client``.
    jobs
        The cities (:class:`CityJob`).
    task
        The city task the worker runs (see :func:`run_shipped`).
    path_keys
        The config keys that hold input paths.
    progress
        Called with ``(city, stage)``: ``running`` and the stages as the worker reports them,
        ``retried``, then ``done`` or ``failed``.
    scatter_bytes
        Files larger than this are scattered to a worker ahead of the task.

    Returns
    -------
    list of dict
        One summary row per city, in ``jobs`` order.

    """
    events: queue.SimpleQueue = queue.SimpleQueue()
    client.subscribe_topic(TOPIC, lambda event: events.put(event[1]))
    waiting, flying, by_key, rows = deque(jobs), {}, {}, {}
    try:
        while waiting or flying:
            while waiting and len(flying) < max(2, 2 * sum(client.nthreads().values())):
                job = waiting.popleft()
                fut = _submit(client, job, task=task, path_keys=path_keys, scatter_bytes=scatter_bytes)
                flying[fut], by_key[fut.key] = job, job
            done = _wait_some(list(flying))
            if client.status in ("closing", "closed"):
                raise _scheduler_lost()
            _drain(events, by_key, progress)
            for fut in done:
                job = flying.pop(fut)
                row = _outcome(client, fut, job, events=events, by_key=by_key, progress=progress)
                if row is None:
                    waiting.appendleft(job)  # cancelled with a lost worker's data: ship again
                else:
                    rows[id(job)] = row
                    _tick(progress, job.city["name"], row["status"])
    finally:
        with contextlib.suppress(Exception):
            client.unsubscribe_topic(TOPIC)
    return [rows[id(job)] for job in jobs]


def _submit(client, job: CityJob, *, task: Callable, path_keys: Sequence[str], scatter_bytes: int):
    payload, rebase, real = pack_inputs(job.city, job.compare, path_keys=path_keys, shared=job.shared)
    job.attempts += 1
    job.held = []
    for path, data in payload.items():
        if len(data) > scatter_bytes:
            try:
                # A fresh key per attempt: a hashed key is shared by every city shipping the same
                # file, and after a lost worker it can name data that is gone, again and again.
                payload[path] = client.scatter(data, hash=False)
            except (OSError, TimeoutError):  # the worker chosen was lost as it came: send inline
                continue
            job.held.append(payload[path])
    key = f"circles-audit-{job.stem}-{uuid.uuid4().hex[:8]}"
    job.name = _free_name(job.root, job.stem)
    spec = CitySpec(city=job.city, compare=job.compare, path_keys=tuple(path_keys), shared=job.shared,
                    rebase=rebase, real=real, root=os.path.abspath(job.root), name=job.name,
                    stem=job.stem, key=key)
    return client.submit(run_shipped, task, spec, payload, key=key, pure=False)


def _free_name(root: Path, stem: str) -> str:
    """The name :meth:`RunFolder.claim_unique` would give the folder now."""
    n = 1
    while (root / (stem if n == 1 else f"{stem}-{n}")).exists():
        n += 1
    return stem if n == 1 else f"{stem}-{n}"


def _wait_some(futures: list, timeout: float = 0.5) -> list:
    """The futures done within ``timeout`` seconds (none is an answer too: events to show)."""
    from dask.distributed import wait

    try:
        return list(wait(futures, timeout=timeout, return_when="FIRST_COMPLETED").done)
    except TimeoutError:
        return []
    except CancelledError:  # some went with a lost worker's data: done too, and shipped again
        return [f for f in futures if f.done()]


def _drain(events: queue.SimpleQueue, by_key: dict, progress) -> None:
    """Record the starts the workers announced and pass their stages on."""
    while not events.empty():
        msg = events.get()
        job = by_key.get(msg.get("key")) if isinstance(msg, dict) else None
        if job is None:  # another audit's task (a killed client's, still running)
            continue
        if msg["stage"] == "started":
            job.starts.add((msg["key"], msg["worker"]))
            _tick(progress, job.city["name"], "running")
        else:
            _tick(progress, job.city["name"], msg["stage"])


def _outcome(client, fut, job: CityJob, *, events, by_key, progress) -> dict | None:
    """The city's summary row once its task ended, its folder written; None to ship it again."""
    from dask.distributed import KilledWorker

    name = job.city["name"]
    if fut.status == "cancelled":
        if client.status != "running":
            raise _scheduler_lost()
        if job.attempts < MAX_ATTEMPTS:
            return None
        return _failed(job, f"its task was cancelled {job.attempts} times (workers lost with its inputs)")
    try:
        result = fut.result()
    except KilledWorker as err:
        return _failed(job, f"every worker that ran it died ({err}): it may need more memory per worker")
    except Exception as err:  # run_shipped's own step failed on the worker (its disk, its temp folder)
        return _failed(job, f"{type(err).__name__}: {err}")
    finally:
        job.held = []  # the scattered inputs can go
    _drain(events, by_key, progress)  # the last attempt's start, announced before it ended
    earlier = {(k, w) for k, w in job.starts if (k, w) != (fut.key, result["worker"])}
    row = result["row"]
    row.update(retried=len(earlier), worker=result["worker"], worker_peak_mb=result["peak_mb"])
    if earlier:
        lost = sorted({w for _, w in earlier} - {result["worker"]})
        why = (f"the worker(s) running it were lost ({', '.join(lost)})" if lost
               else "its inputs went with a lost worker")
        row["notes"] = [*row.get("notes", []), f"rerun on {result['worker']} after {why}"]
        _tick(progress, name, "retried")
    if row.get("status") == "done":
        try:
            row["folder"] = str(write_city_folder(job.root, job.stem, result["files"],
                                                  signature=job.signature, name=job.name))
        except (CirclesError, OSError) as err:
            return {**_failed(job, f"its audit folder could not be written ({err})"), "retried": len(earlier)}
    return row


def _scheduler_lost() -> CirclesError:
    return CirclesError("lost the Dask scheduler in the middle of the audit",
                        fix="start the scheduler again and rerun: finished cities are skipped")


def _failed(job: CityJob, error: str) -> dict:
    return {"city": job.city.get("name"), "year": job.city.get("year"), "status": "failed", "folder": "",
            "seconds": None, "error": error, "notes": [], "retried": 0}


def _tick(progress, city: str, stage: str) -> None:
    if progress is not None:
        progress(city, stage)


class _ReceivedManifest:
    """A worker's finished manifest, for :meth:`RunFolder.finish` to write as the folder's last file."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def write(self, folder: str | Path, outputs: list[str] | None = None, *, complete: bool = False) -> Path:
        return write_json(Path(folder) / "manifest.json", self.data)


def write_city_folder(root: Path, stem: str, files: dict[str, bytes], *, signature: str,
                      name: str | None = None) -> Path:
    """Claim a city's audit folder and write a worker's files into it, ``manifest.json`` last.

    Parameters
    ----------
    root
        Where audit folders go.
    stem
        The folder's name (``-2``, ``-3``... when taken).
    files
        The run folder's files by relative path, ``manifest.json`` among them.
    signature
        The input signature computed on the client, recorded in the manifest.
    name
        The name the worker's run had (its outputs may show it); the next free one if taken.

    Returns
    -------
    Path
        The folder.

    """
    if "manifest.json" not in files:
        raise InputFileError("the worker sent a run folder without manifest.json", file=root / stem,
                             fix="rerun the audit; report it if it happens again")
    root.mkdir(parents=True, exist_ok=True)
    name = name or _free_name(root, stem)
    try:
        claim = RunFolder.claim(root / name, command="audit")
    except InputFileError:  # taken since the task was sent: the next free name
        claim = RunFolder.claim_unique(root / stem, command="audit")
    with claim:  # an error removes what was written: a folder is whole or absent
        for rel, data in files.items():
            if rel != "manifest.json":
                with atomic_path(claim.path / rel) as tmp:
                    tmp.write_bytes(data)
        manifest = json.loads(files["manifest.json"].decode("utf-8"))
        manifest.setdefault("audit", {})["input_signature"] = signature
        claim.finish(_ReceivedManifest(manifest))  # type: ignore[arg-type]
    return claim.path
