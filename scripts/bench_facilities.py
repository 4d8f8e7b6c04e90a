"""Benchmark: a coverage run with a POI dump of 100,000 facilities on the Chengdu default.

Makes a table of random facilities on and near the Chengdu extract's streets (random points along
random edges, up to 40 m off them, random tiers in Deyang's 8 / 40 / 32 shares), runs
``circles coverage --facilities big.csv --out ...`` end to end in a child process and prints its
wall time and peak resident memory beside, measured in the same run:

- the same command with the shipped sample facilities (the small-input floor: network, population,
  maps and writing with few facilities);
- the routing floor: SciPy's bounded multi-source ``csgraph.dijkstra(..., min_only=True,
  limit=...)`` from all facility nodes on the same CSR graph, one pass per tier.

Targets (issue 16, item 10): 100,000 facilities within 60 s and 3 GB. Also prints map.html's size
and whether per-facility areas were written.

Usage: python scripts/bench_facilities.py [--facilities 100000] [--timeout 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PBF = ROOT / "data" / "chengdu.osm.pbf"
SHARES = (0.1, 0.4, 0.5)  # district / community / station
TIER_ZH = ("片区级", "社区级", "驿站级")


def make_table(net, k: int, path: Path, *, seed: int = 16) -> None:
    """Write ``k`` random facilities on and near the streets of ``net`` as a WGS-84 CSV."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    rng = np.random.default_rng(seed)
    edge = rng.integers(0, net.n_edges, k)
    pts = shapely.line_interpolate_point(net.edge_geometry[edge], rng.random(k), normalized=True)
    xy = shapely.get_coordinates(pts)
    angle = rng.random(k) * 2 * np.pi
    off = rng.random(k) * 40.0
    xy += np.column_stack([np.cos(angle), np.sin(angle)]) * off[:, None]
    ll = shapely.get_coordinates(gpd.GeoSeries(shapely.points(xy), crs=net.crs).to_crs(4326).values)
    tiers = np.array(TIER_ZH)[rng.choice(3, k, p=SHARES)]
    pd.DataFrame({"id": [f"P{i:06d}" for i in range(k)], "name": [f"POI {i}" for i in range(k)],
                  "tier": tiers, "lon": ll[:, 0].round(6), "lat": ll[:, 1].round(6),
                  "floor_area_m2": rng.integers(100, 2000, k)}).to_csv(path, index=False)


def run_cli(args: list[str], timeout: float) -> dict:
    """Run ``circles ARGS`` in a child; wall time, peak RSS (of that child alone) and exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "circles", *args], capture_output=True,
                              text=True, timeout=timeout)
        rc, err, out = proc.returncode, proc.stderr, proc.stdout
    except subprocess.TimeoutExpired:
        rc, err, out = "timeout", "", ""
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: only a new high is this child's.
    return {"wall_s": wall, "peak_mb": peak / 1024 if peak > before else float("nan"),
            "rc": rc, "stdout": out, "stderr": err}


def routing_floor(net, fac_path: Path) -> float:
    """SciPy's bounded multi-source Dijkstra from all facility nodes, one pass per tier."""
    from scipy.sparse import csgraph

    from circles import read_facilities
    from circles.readers.profiles import get_profile

    profile = get_profile("deyang")
    fac = read_facilities(fac_path, profile=profile, network=net)
    fac = fac[fac["status"] == "ok"]
    edge = fac["edge"].to_numpy()
    # The nearer end of each facility's edge: the floor routes from nodes, as SciPy needs.
    at_u = fac["along_m"].to_numpy() <= net.edge_length[edge] / 2
    nodes = np.unique(np.where(at_u, net.edge_u[edge], net.edge_v[edge]))
    codes = fac["tier"].to_numpy()
    t = time.perf_counter()
    for tier in profile.tiers:
        src = np.unique(np.where(at_u, net.edge_u[edge], net.edge_v[edge])[
            np.isin(codes, list(profile.eligible(tier.code)))])
        csgraph.dijkstra(net.graph, directed=True, indices=src if len(src) else nodes[:1],
                         min_only=True, limit=profile.threshold_metres(tier.code))
    return time.perf_counter() - t


def _line(label: str, r: dict) -> str:
    return f"{label:44s} {r['wall_s']:8.1f} s {r['peak_mb']:9.0f} MB  rc={r['rc']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--facilities", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before a run is stopped")
    ap.add_argument("--keep", default=None, help="keep the table and run folders here")
    ap.add_argument("--extra", nargs="*", default=[], help="more arguments for the big run")
    opts = ap.parse_args()

    from circles import load_network

    base = Path(opts.keep) if opts.keep else Path(tempfile.mkdtemp(prefix="bench-facilities-"))
    base.mkdir(parents=True, exist_ok=True)
    net = load_network(str(PBF))
    big = base / "big.csv"
    make_table(net, opts.facilities, big)
    print(f"Chengdu default: {net.n_nodes:,} nodes, {net.n_edges:,} edges; "
          f"table of {opts.facilities:,} random facilities ({big.stat().st_size / 1e6:.1f} MB)")

    small = run_cli(["coverage", "--out", str(base / "small")], opts.timeout)
    ours = run_cli(["coverage", "--facilities", str(big), "--out", str(base / "big"), *opts.extra],
                   opts.timeout)
    floor = routing_floor(net, big)
    print(_line("circles coverage, sample facilities (floor)", small))
    print(_line(f"circles coverage, {opts.facilities:,} facilities (ours)", ours))
    print(f"{'SciPy bounded Dijkstra, all facility nodes':44s} {floor:8.2f} s   (routing floor)")
    print("targets: <= 60 s, <= 3,000 MB")
    folder = base / "big"
    if (folder / "manifest.json").exists():
        man = json.loads((folder / "manifest.json").read_text())
        print("stages (s):", {k: round(v, 1) for k, v in man.get("timings_s", {}).items()})
        print("facility areas:", man.get("facility_areas"))
        for name in ("map.html", "isochrones.gpkg", "facilities.csv"):
            if (folder / name).exists():
                print(f"{name:16s} {(folder / name).stat().st_size / 1e6:8.1f} MB")
    if ours["rc"] != 0:
        print(ours["stderr"][-2000:])
    else:
        print("\n".join(line for line in ours["stdout"].splitlines() if "per-facility" in line))


if __name__ == "__main__":
    main()
