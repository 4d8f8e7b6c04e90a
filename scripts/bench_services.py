"""Benchmark: 20 service categories on a 1M-node city with 1M residents and 5,000 service points.

The graph and the snapping are done first (as in a coverage run); then each category's
per-resident access is one bounded multi-source pass. Printed beside the floor: SciPy's bounded
multi-source Dijkstra on the same CSR graph, one pass per category.

Usage: python scripts/bench_services.py [--nodes 1000000] [--residents 1000000] [--points 5000]
"""

from __future__ import annotations

import argparse
import time

import geopandas as gpd
import numpy as np
import shapely
from scipy.sparse import csgraph

from circles.engine.coverage import compute_coverage
from circles.engine.service_access import service_access
from circles.engine.synthetic import make_city, random_points
from circles.readers.services import Category


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--residents", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=5_000)
    args = ap.parse_args()
    net = make_city(args.nodes, seed=0)
    _ = net.graph
    rx, ry = random_points(net, args.residents, seed=2)
    lon, lat = net.to_wgs84(rx, ry)
    demand = gpd.GeoDataFrame({"pop": np.ones(args.residents)}, geometry=shapely.points(lon, lat), crs=4326)
    fx, fy = random_points(net, 3, seed=1)
    flon, flat = net.to_wgs84(fx, fy)
    fac = gpd.GeoDataFrame({"facility_id": ["a", "b", "c"], "name": "f", "tier": "station", "status": "ok"},
                           geometry=shapely.points(flon, flat), crs=4326)
    t = time.perf_counter()
    res = compute_coverage(net, fac, demand, profile="deyang")
    print(f"city {net.n_nodes:,} nodes; {args.residents:,} residents snapped and a coverage run in "
          f"{time.perf_counter() - t:.1f} s (not counted below)")
    cats = [Category(f"c{i:02d}", f"类别{i}", f"category {i}", minutes=[5, 10, 15][i % 3]) for i in range(20)]
    px, py = random_points(net, args.points, seed=3)
    plon, plat = net.to_wgs84(px, py)
    codes = np.array([c.code for c in cats])[np.arange(args.points) % 20]
    pts = gpd.GeoDataFrame({"service": codes, "name": "", "source": "bench", "facility_id": ""},
                           geometry=shapely.points(plon, plat), crs=4326)
    t = time.perf_counter()
    access = service_access(res, pts, cats)
    ours = time.perf_counter() - t
    # The floor: one bounded multi-source pass per category from the points' nearest nodes.
    snap = net.snap(px, py, max_metres=300)
    nodes = net.edge_u[snap["edge"].to_numpy()]
    t = time.perf_counter()
    for c in cats:
        csgraph.dijkstra(net.graph, indices=np.unique(nodes[codes == c.code]), min_only=True,
                         limit=2 * c.threshold_metres(75.0))
    floor = time.perf_counter() - t
    print(f"20 categories, {args.points:,} service points: circles {ours:.2f} s in total "
          f"({ours / 20:.3f} s per category, tables included); SciPy floor {floor:.2f} s "
          f"({floor / 20:.3f} s per pass); target <= 10 s")
    print(access.by_service()[["service", "threshold_metres", "covered_share"]].head(3).to_string(index=False))


if __name__ == "__main__":
    main()
