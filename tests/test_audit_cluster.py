"""Audits on a real Dask cluster (issue 22): an external scheduler with two workers on 127.0.0.1,
inputs shipped as bytes, a worker killed mid-city, the client killed mid-audit, and synthetic
cities written as OSM extracts.

The cities are the Chengdu extract and its facilities under three names and years, each from
its own copy of the files (one with five facilities fewer, one with a facility moved), so a city's
files landing in another's folder shows in the tables.
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from circles.engine.network import WalkNetwork
from circles.engine.synthetic import make_city
from circles.errors import DataError
from circles.outputs.osm_write import write_osm_pbf
from circles.runs.audit import audit_city, load_config, run_audit
from circles.runs.audit_progress import CityProgress
from circles.runs.audit_shipping import TOPIC, pack_inputs

ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).with_name("dask")
CITIES = (("a", 2024), ("b", 2025), ("c", 2026))
# What differs between two runs of the same city: when it ran and how long its steps took, at
# any depth (timings_s, network.read_s and build_s, provision's solve_seconds).
MANIFEST_KEYS_IGNORED = ("created", "timings_s")
TIMING_SUFFIXES = ("_s", "seconds")
PATH_KEYS = ("network", "facilities", "population", "units", "services", "candidates", "residential")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Cluster:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (no nanny, so a worker's pid
    is the worker; one thread each, each in a folder of its own)."""

    def __init__(self, folder: Path, n_workers: int = 2) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.address = folder, f"tcp://127.0.0.1:{_free_port()}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.log = open(folder / "dask.log", "wb")  # noqa: SIM115 - closed by stop()
        self.procs = [subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
             "--no-dashboard", "--idle-timeout", "600"], cwd=folder, env=self.env, stdout=self.log, stderr=self.log)]
        self.pids: dict[str, int] = {}
        for _ in range(n_workers):
            self.add_worker()

    def add_worker(self) -> None:
        """One more worker; returns once the scheduler has it (``pids`` maps address to pid)."""
        from dask.distributed import Client

        home = self.folder / f"worker{len(self.procs) - 1}"
        home.mkdir()
        self.procs.append(subprocess.Popen(
            [str(DASK), "worker", self.address, "--no-nanny", "--nthreads", "1", "--no-dashboard",
             "--host", "127.0.0.1", "--local-directory", str(home), "--death-timeout", "60"],
            cwd=home, env=self.env, stdout=self.log, stderr=self.log))
        with Client(self.address, timeout=60) as client:
            deadline = time.monotonic() + 60
            while len(set(client.run(os.getpid).values()) - set(self.pids.values())) < 1:
                assert time.monotonic() < deadline, "a dask worker did not start"
                time.sleep(0.2)
            self.pids = client.run(os.getpid)

    def stop(self) -> None:
        for p in self.procs:  # nothing of theirs is kept: no graceful shutdown to wait for
            p.kill()
            p.wait()
        self.log.close()


@pytest.fixture(scope="module")
def cities(tmp_path_factory, data_dir):
    """Three cities, each from its own copy of the files, and a config naming them by relative path."""
    folder = tmp_path_factory.mktemp("inputs")
    fac = pd.read_csv(data_dir / "chengdu_facilities.csv")
    tables = {"a": fac, "b": fac.iloc[5:], "c": fac.assign(lon=fac["lon"].where(fac.index != 3, fac["lon"] + 0.004))}
    for name, table in tables.items():
        shutil.copy(data_dir / "chengdu.osm.pbf", folder / f"{name}.osm.pbf")
        table.to_csv(folder / f"{name}.csv", index=False)
    blocks = [{"name": n, "year": y, "network": f"{n}.osm.pbf", "facilities": f"{n}.csv"} for n, y in CITIES]
    config = folder / "three.yaml"
    config.write_text(yaml.safe_dump({"cities": blocks}), encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def reference(cities, tmp_path_factory):
    """The three cities on the default LocalCluster."""
    out = tmp_path_factory.mktemp("local")
    summary = run_audit(cities, workers=2, out_root=out)
    assert list(summary.table["status"]) == ["done"] * 3, summary.table["error"].tolist()
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    running = _Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        running.stop()


def _manifest(folder: Path) -> dict:
    """A run folder's manifest without the keys that say when and how fast it ran."""
    def untimed(value):
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items()
                    if k not in MANIFEST_KEYS_IGNORED and not k.endswith(TIMING_SUFFIXES)}
        return [untimed(v) for v in value] if isinstance(value, list) else value

    return untimed(json.loads((folder / "manifest.json").read_text(encoding="utf-8")))


def _assert_same_folder(a: Path, b: Path, *, other_config: bool = False) -> None:
    """The same files; CSV tables byte-equal; manifests equal but for timings (and the config
    file, when the runs came from two configs naming the same city)."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        if name.endswith(".csv") and (a / name).read_bytes() != (b / name).read_bytes():
            # Only a timing column may differ (provision_by_tier.csv has solve_seconds).
            ta, tb = pd.read_csv(a / name), pd.read_csv(b / name)
            timing = [c for c in ta.columns if c.endswith("seconds")]
            assert timing, name
            pd.testing.assert_frame_equal(ta.drop(columns=timing), tb.drop(columns=timing), check_exact=True)
    ma, mb = _manifest(a), _manifest(b)
    if other_config:
        ma["inputs"].pop("config")
        mb["inputs"].pop("config")
    assert ma == mb


def _text_of(folder: Path) -> str:
    """Every file of a folder as text, the members of zipped ones (report.xlsx) too."""
    parts = []
    for f in folder.iterdir():
        data = f.read_bytes()
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                data = b"".join(z.read(n) for n in z.namelist())
        parts.append(data.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_external_scheduler_equals_local_cluster(cities, reference, cluster, tmp_path):
    """Through `dask scheduler` and two `dask worker` processes, every file scattered (the
    LocalCluster run sent them inside its tasks), the folders equal the LocalCluster's; the first
    city equals a plain in-process run too, so no worker's temporary path reaches any output."""
    summary = run_audit(cities, scheduler=cluster.address, out_root=tmp_path / "ext", scatter_bytes=0)
    assert list(summary.table["status"]) == ["done"] * 3, summary.table["error"].tolist()
    assert list(summary.table["retried"]) == [0, 0, 0]
    assert set(summary.table["worker"]) <= set(cluster.pids)
    for name, year in CITIES:
        _assert_same_folder(reference / f"{name}-{year}", tmp_path / "ext" / f"{name}-{year}")
    inproc = audit_city(load_config(cities)[0], out_root=tmp_path / "inproc")
    _assert_same_folder(Path(inproc["folder"]), tmp_path / "ext" / "a-2024")
    manifest = _manifest(tmp_path / "ext" / "a-2024")
    assert manifest["inputs"]["network"]["path"] == str((cities.parent / "a.osm.pbf").resolve())
    assert manifest["inputs"]["config"]["path"] == str(cities.resolve())
    assert manifest["parameters"]["facilities"] == str(cities.parent / "a.csv")
    for name, year in CITIES:
        text = _text_of(tmp_path / "ext" / f"{name}-{year}")
        assert "circles-audit-" not in text
        assert "worker0" not in text
        assert "worker1" not in text
    by_city = {n: pd.read_csv(tmp_path / "ext" / f"{n}-{y}" / "facilities.csv") for n, y in CITIES}
    assert [len(by_city[n]) for n in "abc"] == [33, 28, 33]


def test_resume_after_the_client_was_killed(cities, reference, cluster, tmp_path):
    """`circles audit --scheduler` killed once a city is written: the rerun skips what finished,
    does the rest, and takes no half-written folder for finished, even one whose manifest says
    complete with the right signature (its claim marker is still there)."""
    address = cluster.address
    out = tmp_path / "out"
    with open(tmp_path / "stderr.txt", "wb") as err:
        client = subprocess.Popen([sys.executable, "-m", "circles", "audit", str(cities), "--scheduler", address,
                                   "--out-root", str(out), "--progress"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            deadline = time.monotonic() + 180
            while not _finished(out) and client.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            client.send_signal(signal.SIGKILL)
            client.wait()
    first = _finished(out)
    assert first, (tmp_path / "stderr.txt").read_text()
    assert "audit: 0/3 cities · 0 done · 0 skipped · 1 running · 0 failed" in (tmp_path / "stderr.txt").read_text()
    rest = [(n, y) for n, y in CITIES if f"{n}-{y}" not in first]
    assert rest
    name, year = rest[0]
    half = out / f"{name}-{year}"  # a client killed while it wrote this folder
    if not half.exists():
        half.mkdir()
        shutil.copy(reference / f"{name}-{year}" / "manifest.json", half / "manifest.json")
        (half / ".circles-run").write_text(json.dumps({"pid": client.pid, "host": socket.gethostname()}))
    again = run_audit(cities, scheduler=address, out_root=out).table.set_index("city")
    for n, y in CITIES:
        expected = "skipped" if f"{n}-{y}" in first else "done"
        assert again.loc[n, "status"] == expected, n
    assert again.loc[name, "folder"] == str(out / f"{name}-{year}-2")
    for n, y in CITIES:
        _assert_same_folder(reference / f"{n}-{y}", Path(again.loc[n, "folder"]))


def _finished(out: Path) -> set[str]:
    """The audit folders under ``out`` with a manifest and no claim marker."""
    return {p.parent.name for p in out.glob("*/manifest.json") if not (p.parent / ".circles-run").exists()}


@pytest.mark.parametrize("scatter_bytes", [None, 0], ids=["inputs-in-the-task", "inputs-scattered"])
def test_a_lost_worker_reruns_its_city(cities, reference, cluster, tmp_path, scatter_bytes):
    """A worker killed by its pid while it runs a city: the city reruns on the other worker, the
    audit completes and its row says `retried`; a city broken by its own data fails alone.

    With the inputs inside the task Dask reruns it; with them scattered to the lost worker
    (beside the task that needs them) they are lost too and the client ships them again. A new
    worker replaces the one killed.
    """
    from dask.distributed import Client

    (cities.parent / "broken.csv").write_text("id,name\nX,no coordinates\n", encoding="utf-8")
    config = cities.parent / "loss.yaml"
    blocks = yaml.safe_load(cities.read_text(encoding="utf-8"))["cities"][:2]
    blocks.append({"name": "broken", "year": 2026, "network": "a.osm.pbf", "facilities": "broken.csv"})
    config.write_text(yaml.safe_dump({"cities": blocks}), encoding="utf-8")
    out, address, pids = tmp_path / "out", cluster.address, cluster.pids
    with Client(address) as watcher:
        events: queue.SimpleQueue = queue.SimpleQueue()
        watcher.subscribe_topic(TOPIC, lambda event: events.put(event[1]))
        done: dict = {}

        def run() -> None:
            try:
                done["summary"] = run_audit(config, scheduler=address, out_root=out, scatter_bytes=scatter_bytes)
            except Exception as err:  # shown by the assertion below
                done["error"] = err

        audit = threading.Thread(target=run)
        audit.start()
        deadline = time.monotonic() + 120
        while True:  # the first good city a worker starts
            msg = events.get(timeout=max(1.0, deadline - time.monotonic()))
            if msg["stage"] == "started" and msg["city"] != "broken":
                break
        victim, city = msg["worker"], msg["city"]
        year = dict(CITIES)[city]
        assert not (out / f"{city}-{year}").exists()  # the worker writes in its own folder only
        os.kill(pids[victim], signal.SIGKILL)
        audit.join(timeout=300)
    cluster.add_worker()
    assert "summary" in done, done
    table = done["summary"].table.set_index("city")
    assert table.loc["broken", "status"] == "failed"
    assert "broken.csv" in table.loc["broken", "error"]
    assert table.loc[["a", "b"], "status"].tolist() == ["done", "done"], table[["status", "error"]].to_string()
    assert table.loc[city, "retried"] == 1
    assert table.drop(index=[city, "broken"])["retried"].tolist() == [0]
    assert table.loc[city, "worker"] != victim
    assert any(victim in note for note in table.loc[city, "notes"])
    _assert_same_folder(reference / f"{city}-{year}", out / f"{city}-{year}", other_config=True)
    assert not list(out.glob("broken-*"))


def test_shared_inputs_are_not_shipped(cities, tmp_path):
    """`shared: [network]` keeps the extract out of the payload; a bad value is a clear error."""
    city = load_config(cities)[0]
    payload, _, _ = pack_inputs(city, None, path_keys=PATH_KEYS)
    assert {Path(p).name for p in payload} == {"a.osm.pbf", "a.csv", "three.yaml"}
    assert payload[str(cities.parent / "a.osm.pbf")] == (cities.parent / "a.osm.pbf").read_bytes()
    shared, _, _ = pack_inputs(city, None, path_keys=PATH_KEYS, shared=frozenset({"network"}))
    assert {Path(p).name for p in shared} == {"a.csv", "three.yaml"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"cities": [{"name": "x", "shared": ["netwrok"]}]}), encoding="utf-8")
    with pytest.raises(DataError, match="shared"):
        run_audit(bad)


def test_progress_is_quiet_off_a_terminal_unless_asked():
    quiet, asked = io.StringIO(), io.StringIO()
    for stream, show in ((quiet, None), (asked, True)):
        progress = CityProgress(show=show, stream=stream)
        for city, stage in (("a", "queued"), ("b", "queued"), ("a", "running"), ("a", "report"),
                            ("b", "running"), ("a", "retried"), ("a", "done"), ("b", "failed")):
            progress(city, stage)
        progress.close()
    assert quiet.getvalue() == ""
    lines = asked.getvalue().splitlines()
    assert lines[0].startswith("audit: 0/2 cities · 0 done · 0 skipped · 1 running · 0 failed · 0:0")
    assert lines[-1].startswith("audit: 2/2 cities · 1 done · 0 skipped · 0 running · 1 failed · 1 retried")
    assert len(lines) == 5  # a line per change of the counts: a stage alone changes none


def test_synthetic_city_round_trips_through_a_pbf(tmp_path):
    """A synthetic grid written as a PBF reads back as the same network: the same nodes (to OSM's
    1e-7 degree), the same edges and length; curved edges keep their vertices."""
    net = make_city(400, seed=7)
    back = WalkNetwork.from_osm(write_osm_pbf(net, tmp_path / "grid.osm.pbf"))
    assert back.n_nodes == net.n_nodes
    assert back.n_edges == net.n_edges
    assert back.crs.equals(net.crs)  # the same UTM zone, so metres compare directly
    from scipy.spatial import cKDTree

    gap, match = cKDTree(np.column_stack([net.x, net.y])).query(np.column_stack([back.x, back.y]))
    assert gap.max() < 0.05  # 1e-7 degree is about a centimetre
    assert len(np.unique(match)) == net.n_nodes  # one read-back node for each node written
    assert abs(back.km - net.km) < 1e-4 * net.km
    assert set(back.edge_attrs["highway"]) == {"residential"}
    import shapely

    bent = WalkNetwork.from_lines(x=np.array([0.0, 100.0]) + 404_000, y=np.array([0.0, 0.0]) + 3_390_000,
                                  node_id=None, edge_u=np.array([0]), edge_v=np.array([1]),
                                  edge_geometry=np.array([shapely.LineString(
                                      [(404_000, 3_390_000), (404_050, 3_390_050), (404_100, 3_390_000)])]),
                                  crs=net.crs)
    again = WalkNetwork.from_osm(write_osm_pbf(bent, tmp_path / "bent.osm.pbf", highway="footway"))
    assert again.n_edges == 2
    assert abs(again.km * 1000 - 2 * np.hypot(50, 50)) < 0.05
    with pytest.raises(DataError, match="motorway"):
        write_osm_pbf(net, tmp_path / "no.osm.pbf", highway="motorway")
