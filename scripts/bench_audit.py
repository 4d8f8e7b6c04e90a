"""Benchmark: a province's audit, 12 synthetic cities, sequential beside Dask (issue 22).

Each city is a perturbed grid from ``circles.synthetic.make_city`` written as an OSM extract
(``circles.outputs.osm_write.write_osm_pbf``), with a facility table (district, community and
station complexes at planning densities) and population points, so every city goes through the
same reader, walking filter, report and map as a real one. The 12 cities come in three sizes.

The same audit runs three ways, in one run, each into a folder of its own:

1. sequentially, one city after another in one process (``circles.audit_city``);
2. on a 2-worker ``LocalCluster`` (``circles.run_audit(..., workers=2)``);
3. on an external ``dask scheduler`` with two ``dask worker`` processes on 127.0.0.1, which shares
   no folder with the client: inputs travel as bytes (``circles.run_audit(..., scheduler=...)``).

Printed: the wall time of each (with the machine's load average: on a machine that other work
keeps busy, two workers cannot beat one process), the peak resident memory of each worker (and of
the sequential process after each city size: the memory a worker needs per city of that size),
and the seconds per city by size.

Usage: python scripts/bench_audit.py [--quick] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from circles.engine.synthetic import make_city, random_points
from circles.outputs.osm_write import write_osm_pbf
from circles.runs.audit import audit_city, load_config, run_audit

# Nodes per city (80 m blocks: 2,500 nodes is a 4 km square, 10,000 an 8 km one), 4 cities each.
SIZES = (2_500, 5_000, 10_000)
QUICK_SIZES = (900, 1_600)
# Complexes per 10,000 nodes, by tier, and residents per population point.
_PER_10K = {"片区级": 4, "社区级": 16, "驿站级": 40}
_PEOPLE_PER_POINT = 45


def write_cities(folder: Path, sizes: tuple[int, ...], per_size: int) -> Path:
    """The cities' PBFs, facility and population tables, and the audit config naming them."""
    folder.mkdir(parents=True, exist_ok=True)
    blocks = []
    for s, n_nodes in enumerate(sizes):
        for k in range(per_size):
            name, seed = f"city{n_nodes}-{k}", 100 * s + k
            net = make_city(n_nodes, seed=seed)
            write_osm_pbf(net, folder / f"{name}.osm.pbf")
            _facilities(net, n_nodes, seed).to_csv(folder / f"{name}_facilities.csv", index=False)
            x, y = random_points(net, n_nodes // 2, seed=seed + 1, spread_metres=30)
            lon, lat = net.to_wgs84(x, y)
            pd.DataFrame({"lon": np.round(lon, 7), "lat": np.round(lat, 7), "pop": _PEOPLE_PER_POINT}).to_csv(
                folder / f"{name}_population.csv", index=False)
            blocks.append({"name": name, "network": f"{name}.osm.pbf", "facilities": f"{name}_facilities.csv",
                           "population": f"{name}_population.csv"})
    config = folder / "province.yaml"
    config.write_text(yaml.safe_dump({"year": 2026, "cities": blocks}, allow_unicode=True), encoding="utf-8")
    return config


def _facilities(net, n_nodes: int, seed: int) -> pd.DataFrame:
    tiers = [t for t, per in _PER_10K.items() for _ in range(max(1, round(per * n_nodes / 10_000)))]
    x, y = random_points(net, len(tiers), seed=seed + 2)
    lon, lat = net.to_wgs84(x, y)
    return pd.DataFrame({"id": [f"F{i}" for i in range(len(tiers))], "name": [f"综合体{i}" for i in range(len(tiers))],
                         "tier": tiers, "lon": np.round(lon, 7), "lat": np.round(lat, 7),
                         "floor_area_m2": [{"片区级": 2000, "社区级": 1000, "驿站级": 300}[t] for t in tiers]})


def _sequential(config: str, out: str, results) -> None:
    """Every city in this process, one after another; seconds and peak memory after each."""
    import warnings

    warnings.simplefilter("ignore")  # the cities' notes (people near the extract's edge) are known
    for city in load_config(config):
        t = time.perf_counter()
        row = audit_city(city, out_root=out)
        results.put((city["name"], row["status"], time.perf_counter() - t,
                     resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    results.put(None)


def run_sequential(config: Path, out: Path) -> tuple[float, pd.DataFrame]:
    """The sequential audit in a fresh process, so its memory is the audit's alone."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    t = time.perf_counter()
    proc = ctx.Process(target=_sequential, args=(str(config), str(out), results))
    proc.start()
    rows = []
    while (item := results.get()) is not None:
        rows.append(item)
    proc.join()
    return time.perf_counter() - t, pd.DataFrame(rows, columns=["city", "status", "seconds", "peak_mb"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def external_cluster(folder: Path, n_workers: int = 2):
    """``dask scheduler`` and ``n_workers`` ``dask worker`` processes (one thread each) on 127.0.0.1."""
    from dask.distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{_free_port()}"
    log = open(folder / "dask.log", "wb")  # noqa: SIM115 - closed below
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                               "--no-dashboard"], stdout=log, stderr=log, cwd=folder)]
    try:
        for i in range(n_workers):
            home = folder / f"worker{i}"
            home.mkdir(parents=True, exist_ok=True)
            procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--host", "127.0.0.1", "--local-directory", str(home)],
                                          stdout=log, stderr=log, cwd=home))
        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def _timed_audit(config: Path, **options) -> tuple[float, pd.DataFrame]:
    t = time.perf_counter()
    table = run_audit(config, **options).table
    return time.perf_counter() - t, table


def _load() -> str:
    """The machine's load over the last minute: wall times mean little on a busy machine."""
    return f"{os.getloadavg()[0]:.1f}"


def _workers(table: pd.DataFrame) -> str:
    """Each worker's peak resident memory, as the cities' rows report it."""
    peaks = table.groupby("worker")["worker_peak_mb"].max()
    return ", ".join(f"{mb:,.0f} MB" for mb in peaks)


def _size(city: str) -> int:
    return int(city.removeprefix("city").split("-")[0])


def report(seq: tuple, local: tuple, ext: tuple, n_cities: int) -> None:
    """The three runs' wall times and memory; each tuple is (seconds, rows, load average after)."""
    (seq_s, seq_rows, seq_load), (local_s, local_rows, local_load), (ext_s, ext_rows, ext_load) = seq, local, ext
    for label, rows in (("sequential", seq_rows), ("LocalCluster", local_rows), ("external", ext_rows)):
        bad = rows[rows["status"] != "done"]
        if len(bad):
            raise SystemExit(f"{label}: cities not done: {bad.to_dict(orient='records')}")
    print(f"\n{n_cities} synthetic cities, {os.cpu_count()} cores")
    print(f"{'run':30s} {'wall s':>8s} {'speed-up':>9s} {'load':>5s}  peak memory per worker")
    print(f"{'sequential (one process)':30s} {seq_s:8.1f} {1:9.2f} {seq_load:>5s}  {seq_rows['peak_mb'].max():,.0f} MB")
    print(f"{'LocalCluster, 2 workers':30s} {local_s:8.1f} {seq_s / local_s:9.2f} {local_load:>5s}  {_workers(local_rows)}")
    print(f"{'external scheduler, 2 workers':30s} {ext_s:8.1f} {seq_s / ext_s:9.2f} {ext_load:>5s}  {_workers(ext_rows)}")
    seq_rows = seq_rows.assign(nodes=seq_rows["city"].map(_size))
    ext_rows = ext_rows.assign(nodes=ext_rows["city"].map(_size))
    print(f"\n{'city size':>16s} {'sequential s/city':>18s} {'peak MB after':>14s} {'on a worker s/city':>19s}")
    for nodes, group in seq_rows.groupby("nodes"):
        on_worker = ext_rows.loc[ext_rows["nodes"] == nodes, "seconds"].median()
        print(f"{nodes:>10,} nodes {group['seconds'].median():18.1f} {group['peak_mb'].max():14,.0f} {on_worker:19.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 small cities instead of 12")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one, removed)")
    args = parser.parse_args()
    sizes, per_size = (QUICK_SIZES, 2) if args.quick else (SIZES, 4)
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        t = time.perf_counter()
        config = write_cities(work / "inputs", sizes, per_size)
        print(f"wrote {len(sizes) * per_size} cities in {time.perf_counter() - t:.1f} s ({work / 'inputs'})")
        seq = (*run_sequential(config, work / "sequential"), _load())
        local = (*_timed_audit(config, workers=2, out_root=work / "local"), _load())
        (work / "cluster").mkdir(parents=True, exist_ok=True)
        with external_cluster(work / "cluster") as address:
            ext = (*_timed_audit(config, scheduler=address, out_root=work / "external"), _load())
        report(seq, local, ext, len(sizes) * per_size)
    finally:
        if not args.out:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
