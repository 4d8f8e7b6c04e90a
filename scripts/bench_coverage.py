"""Benchmark: coverage end to end on a synthetic city, beside pandana's nearest_pois.

A 1M-node perturbed-grid city, 1M demand points and 2,000 facilities (100 district, 600
community, 1,300 station), 3 tiers: snapping, the nearest-facility times of every resident per
tier, the four-way population account, per-facility loads. Then the same question (the
nearest facility of each tier from every node) answered by pandana's contraction hierarchy in the
same run, checked to agree (pandana stores weights in thousandths: 0.02 min tolerance), and the
floor: SciPy's bounded multi-source Dijkstra on the same CSR graph.

Usage: python scripts/bench_coverage.py [--nodes 1000000] [--demand 1000000] [--facilities 2000]
"""

from __future__ import annotations

import argparse
import resource
import time

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import csgraph

from circles.engine.coverage import compute_coverage
from circles.engine.routing import Anchors, nearest_by_tier
from circles.engine.synthetic import make_city, random_points
from circles.readers.profiles import get_profile


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    args = _args()
    _run(args.nodes, args.demand, args.facilities, peer=False)
    if not args.no_peer:
        print(f"\n--- the same question on a {args.peer_nodes:,}-node city, with pandana beside ours ---")
        _run(args.peer_nodes, args.peer_nodes, max(100, args.facilities // 4), peer=True)


def _args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--demand", type=int, default=1_000_000)
    ap.add_argument("--facilities", type=int, default=2_000)
    ap.add_argument("--no-peer", action="store_true", help="skip pandana")
    ap.add_argument("--peer-nodes", type=int, default=100_000,
                    help="pandana's contraction hierarchy cannot be built on 1M nodes within an hour, "
                         "so it answers on a city of this size (ours is timed there too)")
    return ap.parse_args()


def _run(nodes: int, n_demand: int, n_f: int, *, peer: bool) -> None:
    profile = get_profile("deyang")

    t = time.perf_counter()
    net = make_city(nodes, seed=0)
    _ = net.graph
    print(f"city: {net.n_nodes:,} nodes, {net.n_edges:,} edges, built in {time.perf_counter() - t:.1f} s")

    fx, fy = random_points(net, n_f, seed=1)
    tiers = np.array(["district"] * (n_f // 20) + ["community"] * (3 * n_f // 10)
                     + ["station"] * (n_f - n_f // 20 - 3 * n_f // 10))
    flon, flat = net.to_wgs84(fx, fy)
    fac = gpd.GeoDataFrame({"facility_id": [f"F{i}" for i in range(n_f)], "name": "f", "tier": tiers,
                            "status": "ok", "floor_area_m2": 600.0},
                           geometry=shapely.points(flon, flat), crs=4326)
    dx, dy = random_points(net, n_demand, seed=2)
    dlon, dlat = net.to_wgs84(dx, dy)
    demand = gpd.GeoDataFrame({"pop": np.random.default_rng(3).integers(1, 30, n_demand).astype(float)},
                              geometry=shapely.points(dlon, dlat), crs=4326)

    t0 = time.perf_counter()
    res = compute_coverage(net, fac, demand, profile=profile)
    table = res.by_tier()
    ours = time.perf_counter() - t0
    print(f"\ncircles end to end ({n_demand:,} residents, {n_f:,} facilities, 3 tiers): "
          f"{ours:.1f} s, peak {_peak_gb():.2f} GB   (target <= 30 s, <= 4 GB)")
    print(table[["tier", "covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop", "covered_share"]]
          .to_string(index=False))
    parts = table[["covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]].sum(axis=1)
    assert np.allclose(parts, table["population"]), "population not conserved"

    # The floor: one bounded multi-source pass per tier, from facility nodes, on the same CSR.
    fac_nodes = net.edge_u[res.facilities["edge"].to_numpy()]
    t = time.perf_counter()
    for tier in profile.tiers:
        src = np.unique(fac_nodes[np.isin(tiers, profile.eligible(tier.code))])
        csgraph.dijkstra(net.graph, indices=src, min_only=True, limit=2 * profile.threshold_metres("district"))
    floor = time.perf_counter() - t
    anchors = Anchors.at_nodes(net, fac_nodes)
    t = time.perf_counter()
    node_times = nearest_by_tier(net, anchors, tiers, profile, limit_metres=2 * profile.threshold_metres("district"))
    kernel = time.perf_counter() - t
    print(f"\nnearest-facility times of all nodes, 3 tiers: circles {kernel:.2f} s; "
          f"SciPy bounded multi-source floor {floor:.2f} s")

    if not peer:
        return
    try:
        import pandana
    except ImportError:
        print("pandana is not installed (pip install -e '.[bench]'): peer skipped")
        return
    import pandas as pd

    t = time.perf_counter()
    pnet = pandana.Network(pd.Series(net.x), pd.Series(net.y), pd.Series(net.edge_u), pd.Series(net.edge_v),
                           pd.DataFrame({"minutes": net.edge_length / profile.metres_per_minute}), twoway=True)
    horizon = 2 * profile.threshold_minutes("district")
    pnet.precompute(horizon + 1)
    build = time.perf_counter() - t
    t = time.perf_counter()
    worst = 0.0
    for tier in profile.tiers:
        sel = np.isin(tiers, profile.eligible(tier.code))
        pnet.set_pois(tier.code, horizon, 1, pd.Series(net.x[fac_nodes[sel]]), pd.Series(net.y[fac_nodes[sel]]))
        theirs = pnet.nearest_pois(horizon, tier.code, num_pois=1).iloc[:, 0].to_numpy()
        mine = node_times[f"{tier.code}_minutes"].to_numpy()
        both = np.isfinite(mine) & (theirs < horizon)
        worst = max(worst, float(np.abs(mine[both] - theirs[both]).max()) if both.any() else 0.0)
    query = time.perf_counter() - t
    print(f"pandana: contraction hierarchy {build:.1f} s + nearest_pois for 3 tiers {query:.1f} s "
          f"= {build + query:.1f} s (ours {kernel:.2f} s for the same times)")
    print(f"largest difference from ours: {worst:.4f} min (pandana rounds each edge to thousandths "
          f"of a minute, so its sums run short by a few hundredths)")


if __name__ == "__main__":
    main()
