"""Benchmark: provision under capacity, ours beside ObjectNat's get_service_provision, a greedy and HiGHS.

One synthetic instance for every method (a perturbed-grid city, demand points with people, complexes
with capacities totalling about 80 % of the people within reach, varied per complex so that most
can fill and about one in ten never does), walking metres within Deyang's district threshold
(15 min = 1,125 m) from ``circles.engine.routing.coverage_matrix``. Four parts, each in its own
child process so that each peak memory is that part's alone:

1. peer: ours (``Provision.solve``: the most people served, then the least walking, exact), the
   max-flow floor (OR-Tools ``SimpleMaxFlow`` on the same arcs: the proven maximum, which ours must
   equal), ObjectNat 2.1's gravity allocation on the dense buildings × services matrix, a greedy
   nearest-pair-first allocation, and HiGHS on the same LP (checks our least walk);
2. and 3. scale: ours alone at 1M residents (1M points, 1-29 people each) and at 1M residents on
   250k points (4 each), 2,000 complexes on a 250k-node city; target <= 30 s (arcs + solve) and
   <= 4 GB (the whole process, city included);
4. mid: HiGHS (``scipy.optimize.linprog(method="highs")``) on the same LP beside ours, to show why
   the min-cost flow was picked.

Usage: python scripts/bench_provision.py [--quick] [--no-objectnat]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import sparse

from circles.engine.anchors import Anchors
from circles.engine.provision import Provision
from circles.engine.routing import coverage_matrix
from circles.engine.synthetic import make_city, random_points
from circles.readers.profiles import get_profile

TARGET_S, TARGET_GB = 30.0, 4.0
# A 1,125 m walk on the synthetic grid reaches about 2.2 km²; 125 nodes (0.8 km²) per complex
# makes each point reachable from about three complexes, as in a planned district.
NODES_PER_SITE = 125
PARTS = ("peer", "scale", "scale4", "mid")


# --- memory ----------------------------------------------------------------------------------

def _status_gb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def _reset_peak() -> float:
    """Reset the process's peak resident memory to the current one (Linux); return it in GB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return _status_gb("VmRSS")
    except OSError:
        return float("nan")


def _peak_gb() -> float:
    try:
        return _status_gb("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def _measured(fn, *args) -> tuple[object, dict]:
    """``fn(*args)`` and its wall and CPU seconds (all threads: on a shared machine the CPU time is
    the steadier figure), the peak memory while it ran (GB) and that peak over the start."""
    base = _reset_peak()
    t, c = time.perf_counter(), _cpu_s()
    out = fn(*args)
    seconds, cpu = time.perf_counter() - t, _cpu_s() - c
    peak = _peak_gb()
    return out, {"seconds": seconds, "cpu_s": cpu, "peak_gb": peak, "over_gb": peak - base}


# --- the instance ----------------------------------------------------------------------------

@dataclass
class Instance:
    """Sites × demand walking metres within the threshold, people and capacities (whole numbers)."""

    matrix: sparse.csr_matrix
    pop: np.ndarray
    cap: np.ndarray
    threshold: float
    xy: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    crs: object
    seconds: dict = field(default_factory=dict)

    @property
    def reachable_pop(self) -> float:
        return float(self.pop[np.diff(self.matrix.tocsc().indptr) > 0].sum())

    def describe(self) -> str:
        ns, nd = self.matrix.shape
        reach = self.matrix.astype(bool) @ self.pop
        return (f"{nd:,} demand points, {self.pop.sum():,.0f} people ({self.reachable_pop:,.0f} within "
                f"{self.threshold:,.0f} m of a complex), {ns:,} complexes, {self.matrix.nnz:,} arcs; capacity "
                f"{self.cap.sum():,.0f} = {self.cap.sum() / self.reachable_pop:.0%} of the people within "
                f"reach, {int((self.cap < reach).sum()):,} complexes can fill")


def make_instance(*, nodes: int, demand: int, sites: int, pop_each: float | None, share: float,
                  seed: int = 0) -> Instance:
    """A synthetic city with demand, complexes and the arcs within Deyang's district walk.

    Parameters
    ----------
    nodes, demand, sites
        City size, demand points and complexes.
    pop_each
        People per point; ``None``: 1-29 at random (bench_coverage's residents).
    share
        Total capacity as a share of the people within reach.
    seed
        Random seed.

    Returns
    -------
    Instance
        With ``seconds`` for the city, the snapping and the arcs.

    """
    threshold = get_profile("deyang").threshold_metres("district")
    t = time.perf_counter()
    net = make_city(nodes, seed=seed)
    _ = net.graph
    t_city = time.perf_counter() - t
    sx, sy = random_points(net, sites, seed=seed + 1)
    dx, dy = random_points(net, demand, seed=seed + 2)
    t = time.perf_counter()
    site_anchors = Anchors.from_points(net, sx, sy, max_metres=300)
    demand_anchors = Anchors.from_points(net, dx, dy, max_metres=300)
    t_snap = time.perf_counter() - t
    t, c = time.perf_counter(), _cpu_s()
    matrix = coverage_matrix(net, site_anchors, demand_anchors, limit_metres=threshold, dtype=np.float64)
    t_arcs, c_arcs = time.perf_counter() - t, _cpu_s() - c
    rng = np.random.default_rng(seed + 3)
    pop = (np.full(demand, float(pop_each)) if pop_each is not None
           else rng.integers(1, 30, demand).astype(float))
    cap = _capacities(matrix, pop, share=share, seed=seed + 4)
    return Instance(matrix=matrix, pop=pop, cap=cap, threshold=threshold, xy=(sx, sy, dx, dy), crs=net.crs,
                    seconds={"city": t_city, "snap": t_snap, "arcs": t_arcs, "arcs_cpu": c_arcs})


def _capacities(matrix: sparse.csr_matrix, pop: np.ndarray, *, share: float, seed: int) -> np.ndarray:
    """Whole-person capacities totalling about ``share`` of the people within reach: one complex in
    ten gets a quarter more than all it reaches (never full), the rest what is left in proportion
    to their reach times a lognormal factor, so loads and shortfalls vary."""
    rng = np.random.default_rng(seed)
    reach = matrix.astype(bool) @ pop
    reachable = pop[np.diff(matrix.tocsc().indptr) > 0].sum()
    roomy = rng.random(len(reach)) < 0.1
    cap = np.where(roomy, np.ceil(reach * 1.25), 0.0)
    weight = np.where(roomy, 0.0, reach * rng.lognormal(0.0, 0.5, len(reach)))
    left = max(share * reachable - cap.sum(), 0.0)
    return cap + np.floor(weight * left / max(weight.sum(), 1.0))


# --- the methods -----------------------------------------------------------------------------

def ours(inst: Instance) -> dict:
    """circles: the most people served, then the least walking (``Provision.solve``)."""
    p = Provision.from_cost_matrix(inst.matrix, inst.pop, inst.cap).solve()
    return {"served": p.served_pop, "walk": p.walk_person_metres, "stats": p.stats}


def max_flow(inst: Instance) -> dict:
    """The most people the arcs can serve: OR-Tools' max flow, source -> complex -> point -> sink,
    in whole persons (the instance's people and capacities are whole)."""
    from ortools.graph.python import max_flow as mf

    coo = inst.matrix.tocoo()
    ns, nd = inst.matrix.shape
    pop = np.round(inst.pop).astype(np.int64)
    cap = np.minimum(inst.cap, pop.sum()).astype(np.int64)
    src, snk = ns + nd, ns + nd + 1
    tails = np.concatenate([np.full(ns, src), coo.row, ns + np.arange(nd)])
    heads = np.concatenate([np.arange(ns), ns + coo.col, np.full(nd, snk)])
    flow = mf.SimpleMaxFlow()
    flow.add_arcs_with_capacity(tails, heads, np.concatenate([cap, pop[coo.col], pop]))
    if flow.solve(src, snk) != flow.OPTIMAL:
        raise RuntimeError("max flow did not solve")
    return {"served": float(flow.optimal_flow()), "walk": float("nan")}


def greedy(inst: Instance) -> dict:
    """Nearest pairs first, each taking what both ends have left. The sort is NumPy; the takes are a
    plain loop over the sorted pairs, as each depends on every take before it."""
    coo = inst.matrix.tocoo()
    order = np.argsort(coo.data, kind="stable")
    need, room = inst.pop.tolist(), inst.cap.tolist()
    served = walk = 0.0
    for i, j, d in zip(coo.row[order].tolist(), coo.col[order].tolist(), coo.data[order].tolist(),
                       strict=True):
        take = min(need[j], room[i])
        if take > 0:
            need[j] -= take
            room[i] -= take
            served += take
            walk += take * d
    return {"served": served, "walk": walk}


def dense_frame(inst: Instance):
    """The buildings × services metres ObjectNat wants; beyond the threshold is ``inf``, which it
    drops (a finite figure up to three times its threshold would be allocated)."""
    import pandas as pd

    coo = inst.matrix.tocoo()
    dense = np.full(inst.matrix.shape[::-1], np.inf)
    dense[coo.col, coo.row] = coo.data
    return pd.DataFrame(dense)


def objectnat(inst: Instance) -> dict:
    """ObjectNat's get_service_provision on the same arcs, people and capacities."""
    import geopandas as gpd
    import shapely
    from objectnat import get_service_provision

    sx, sy, dx, dy = inst.xy
    buildings = gpd.GeoDataFrame({"demand": inst.pop.astype(int)}, geometry=shapely.points(dx, dy), crs=inst.crs)
    services = gpd.GeoDataFrame({"capacity": inst.cap.astype(int)}, geometry=shapely.points(sx, sy), crs=inst.crs)
    res = get_service_provision(buildings=buildings, distance_matrix=dense_frame(inst), services=services,
                                threshold=inst.threshold)
    # Its own figure, then one from its flows over our arcs (a pair off our arcs would be a leak).
    rows = res.demand_rows
    flow = res.flow.sparse.to_coo().tocsr()
    on_arcs = flow.multiply(inst.matrix.T.astype(bool))
    if (res.capacity_rows["capacity_left"] < 0).any() or (rows["demand_left"] < 0).any():
        raise RuntimeError("ObjectNat exceeded a capacity or a demand")
    return {"served": float(rows["supplied_demands_within"].sum()), "served_from_flows": float(on_arcs.sum()),
            "outside": float(rows["supplied_demands_without"].sum()),
            "walk": float(on_arcs.multiply(inst.matrix.T).sum())}


def highs(inst: Instance, *, walk_too: bool) -> dict:
    """The same model as an LP in HiGHS: phase 1 the most served; phase 2 (``walk_too``) the least
    walking among assignments serving that many."""
    from scipy.optimize import linprog

    coo = inst.matrix.tocoo()
    ns, nd = inst.matrix.shape
    n = coo.nnz
    arcs = np.arange(n)
    a_ub = sparse.vstack([sparse.csr_matrix((np.ones(n), (coo.row, arcs)), shape=(ns, n)),
                          sparse.csr_matrix((np.ones(n), (coo.col, arcs)), shape=(nd, n))]).tocsr()
    b_ub = np.concatenate([np.minimum(inst.cap, inst.pop.sum()), inst.pop])
    t = time.perf_counter()
    one = linprog(-np.ones(n), A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
    out = {"served": -float(one.fun), "phase1_s": time.perf_counter() - t, "walk": float("nan")}
    if walk_too:
        t = time.perf_counter()
        two = linprog(coo.data, A_ub=sparse.vstack([a_ub, -np.ones((1, n))]).tocsr(),
                      b_ub=np.append(b_ub, -out["served"] * (1 - 1e-9)), bounds=(0, None), method="highs")
        out.update(walk=float(two.fun), phase2_s=time.perf_counter() - t)
    return out


# --- the parts -------------------------------------------------------------------------------

def _row(part: str, method: str, res: dict, **measures) -> dict:
    walk = res["walk"] / res["served"] if res["served"] > 0 else float("nan")
    return {"part": part, "method": method, "served": res["served"], "walk_m": walk, **measures}


def _walk(r: dict) -> str:
    return "-" if np.isnan(r["walk_m"]) else f"{r['walk_m']:.0f}"


def _print_row(r: dict, best: float) -> None:
    over = f" (+{r['over_gb']:.2f})" if "over_gb" in r else ""
    print(f"  {r['method']:32s} {r['seconds']:7.2f} s (cpu {r['cpu_s']:6.2f} s)  peak {r['peak_gb']:5.2f} GB"
          f"{over:8s} served "
          f"{r['served']:12,.0f} = {r['served'] / best:7.2%} of the maximum   {_walk(r):>6s} m per person")


def _compare(inst: Instance, label: str, methods: list) -> list[dict]:
    """Run each method on ``inst`` with its time and peak memory; the max flow first, ours second."""
    print(f"\n--- {label}: {inst.describe()} ---")
    print(f"  (city {inst.seconds['city']:.1f} s, snapping {inst.seconds['snap']:.1f} s, arcs "
          f"{inst.seconds['arcs']:.1f} s; peak memory: the process, and over its size before the method)")
    rows: list[dict] = []
    for method, fn in methods:
        res, measures = _measured(fn, inst)
        rows.append(_row(label, method, res, **measures))
        rows[-1]["extra"] = {k: v for k, v in res.items() if k not in ("served", "walk")}
        _print_row(rows[-1], rows[0]["served"])
    gap = rows[1]["served"] - rows[0]["served"]
    print(f"  check: ours serves the max flow's maximum to {gap:+.2f} people ({rows[1]['extra']['stats']})")
    return rows


def _warm_imports(*, objectnat_too: bool) -> float:
    """Import every solver before any clock starts (no method pays for an import); return the
    seconds ObjectNat's import took (it pulls in much of the geospatial stack)."""
    import scipy.optimize  # noqa: F401
    from ortools.graph.python import max_flow, min_cost_flow  # noqa: F401

    t = time.perf_counter()
    if objectnat_too:
        import objectnat  # noqa: F401
    return time.perf_counter() - t


def _part_peer(a) -> list[dict]:
    print(f"(ObjectNat imported in {_warm_imports(objectnat_too=not a.no_objectnat):.1f} s, not counted)")
    inst = make_instance(nodes=a.peer_sites * NODES_PER_SITE, demand=a.peer_demand, sites=a.peer_sites,
                         pop_each=None, share=a.share)
    methods = [("max flow only (the floor)", max_flow), ("circles (min-cost flow)", ours),
               ("greedy nearest pair first", greedy),
               ("HiGHS LP, both phases", lambda i: highs(i, walk_too=True))]
    if not a.no_objectnat:
        methods.append(("ObjectNat get_service_provision", objectnat))
    rows = _compare(inst, "peer", methods)
    nd, ns = inst.matrix.shape[1], inst.matrix.shape[0]
    hi = next(r for r in rows if r["method"].startswith("HiGHS"))
    print(f"  check: our walk {rows[1]['walk_m'] * rows[1]['served']:,.0f} person-m, HiGHS's least "
          f"{hi['walk_m'] * hi['served']:,.0f} (ours rounds walks to decimetres); HiGHS phase 1 "
          f"{hi['extra']['phase1_s']:.1f} s + phase 2 {hi['extra']['phase2_s']:.1f} s")
    on = next((r for r in rows if r["method"].startswith("ObjectNat")), None)
    if on is not None:
        x = on["extra"]
        print(f"  ObjectNat's dense buildings × services matrix: {nd:,} × {ns:,} = {nd * ns:,} cells, "
              f"{nd * ns * 8 / 1e6:,.0f} MB as float64; its served {on['served']:,.0f} (from its flows on "
              f"our arcs: {x['served_from_flows']:,.0f}; beyond the threshold: {x['outside']:,.0f})")
    return rows


def _part_scale(a, *, points: int, pop_each: float | None, part: str) -> list[dict]:
    """Ours alone at scale; the peak is the whole process's (city, arcs and solve)."""
    _warm_imports(objectnat_too=False)
    inst = make_instance(nodes=a.nodes, demand=points, sites=a.sites, pop_each=pop_each, share=a.share)
    t, c = time.perf_counter(), _cpu_s()
    res = ours(inst)
    solve, solve_cpu = time.perf_counter() - t, _cpu_s() - c
    peak = _peak_gb()
    total = inst.seconds["arcs"] + solve
    met = "met" if total <= TARGET_S and peak <= TARGET_GB else "NOT met"
    who = "residents 1-29 per point" if pop_each is None else f"{pop_each:g} per point"
    print(f"\n--- {part}: {who}: {inst.describe()} ---")
    print(f"  city {inst.seconds['city']:.1f} s, snapping {inst.seconds['snap']:.1f} s; arcs (coverage_matrix) "
          f"{inst.seconds['arcs']:.1f} s + solve {solve:.1f} s (cpu {solve_cpu:.1f} s) = {total:.1f} s, peak {peak:.2f} GB "
          f"(target <= {TARGET_S:.0f} s, <= {TARGET_GB:.0f} GB: {met})")
    print(f"  served {res['served']:,.0f} of {inst.reachable_pop:,.0f} within reach; {res['stats']}")
    t = time.perf_counter()
    check = max_flow(inst)
    mf_s = time.perf_counter() - t
    print(f"  check: max flow {check['served']:,.0f} in {mf_s:.1f} s, the floor (ours "
          f"{res['served'] - check['served']:+.2f})")
    return [_row(part, "circles: arcs + solve", res, seconds=total, cpu_s=inst.seconds["arcs_cpu"] + solve_cpu,
                 peak_gb=peak, arcs_s=inst.seconds["arcs"], solve_s=solve, target=met,
                 max_flow_served=check["served"], max_flow_s=mf_s)]


def _part_mid(a) -> list[dict]:
    _warm_imports(objectnat_too=False)
    inst = make_instance(nodes=a.mid_sites * NODES_PER_SITE, demand=a.mid_demand, sites=a.mid_sites,
                         pop_each=None, share=a.share)
    methods = [("max flow only (the floor)", max_flow), ("circles (min-cost flow)", ours),
               ("greedy nearest pair first", greedy),
               ("HiGHS LP, phase 1 (max served)", lambda i: highs(i, walk_too=False))]
    rows = _compare(inst, "mid", methods)
    hi = rows[-1]
    print(f"  HiGHS's phase 1 alone takes {hi['seconds'] / rows[1]['seconds']:.0f}× our whole solve")
    return rows


def _run_part(a) -> list[dict]:
    if a.part == "peer":
        return _part_peer(a)
    if a.part == "mid":
        return _part_mid(a)
    if a.part == "scale":
        return _part_scale(a, points=a.demand, pop_each=None, part="scale")
    return _part_scale(a, points=a.points, pop_each=4.0, part="scale4")


def _child(part: str, argv: list[str]) -> list[dict]:
    """One part in a child process (its own peak memory); its rows come back through a file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.json"
        sys.stdout.flush()
        proc = subprocess.run([sys.executable, __file__, *argv, "--part", part, "--result", str(path)])
        if proc.returncode != 0 or not path.exists():
            print(f"part {part} failed (exit {proc.returncode})")
            return []
        return json.loads(path.read_text())


def _summary(rows: list[dict]) -> None:
    print("\n=== summary ===")
    print(f"{'part':7s} {'method':34s} {'seconds':>9s} {'cpu s':>8s} {'peak GB':>8s} {'served':>12s} {'of max':>8s} "
          f"{'m/person':>9s}  target")
    best = {r["part"]: r["served"] for r in rows if r["method"].startswith("max flow")}
    for r in rows:
        m = best.get(r["part"], r.get("max_flow_served", r["served"]))
        target = (f"<= {TARGET_S:.0f} s, <= {TARGET_GB:.0f} GB: {r['target']} (arcs {r['arcs_s']:.1f} s + "
                  f"solve {r['solve_s']:.1f} s)" if "target" in r else "")
        print(f"{r['part']:7s} {r['method']:34s} {r['seconds']:9.2f} {r['cpu_s']:8.2f} {r['peak_gb']:8.2f} {r['served']:12,.0f} "
              f"{r['served'] / m:8.2%} {_walk(r):>9s}  {target}")


def _args(argv: list[str] | None = None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute)")
    ap.add_argument("--peer-demand", type=int, default=20_000)
    ap.add_argument("--peer-sites", type=int, default=300)
    ap.add_argument("--demand", type=int, default=1_000_000, help="points at scale (1-29 people each)")
    ap.add_argument("--points", type=int, default=250_000, help="points at scale (4 people each)")
    ap.add_argument("--sites", type=int, default=2_000)
    ap.add_argument("--nodes", type=int, default=250_000)
    ap.add_argument("--mid-demand", type=int, default=100_000)
    ap.add_argument("--mid-sites", type=int, default=500)
    ap.add_argument("--share", type=float, default=0.8, help="capacity / people within reach")
    ap.add_argument("--no-objectnat", action="store_true")
    ap.add_argument("--parts", nargs="*", choices=PARTS, default=list(PARTS))
    ap.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.quick:
        a.peer_demand, a.peer_sites, a.mid_demand, a.mid_sites = 2_000, 40, 20_000, 100
        a.demand, a.points, a.sites, a.nodes = 100_000, 25_000, 200, 25_000
    return a


def _without_parts(argv: list[str]) -> list[str]:
    out, skipping = [], False
    for x in argv:
        skipping = x == "--parts" or (skipping and not x.startswith("-"))
        if not skipping:
            out.append(x)
    return out


def main() -> None:
    argv = sys.argv[1:]
    a = _args(argv)
    if a.part:
        rows = _run_part(a)
        Path(a.result).write_text(json.dumps(rows, default=str))
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start (times are wall "
          f"clock: a busy machine inflates them)")
    rows = []
    for part in a.parts:
        rows += _child(part, _without_parts(argv))
    _summary(rows)


if __name__ == "__main__":
    main()
