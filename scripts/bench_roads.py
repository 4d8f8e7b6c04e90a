"""Benchmark: repairing and building a 500,000-segment road-line file.

A synthetic bureau layer: long streets on a 20 m-vertex grid that cross without shared
vertices, each street broken once with a 0.5 m digitising gap, and 1% of segments duplicated;
written to a GeoPackage. We read, repair (node crossings, close gaps, drop duplicates) and build
the network, timed with peak memory, beside the simplest correct peer: noding the whole layer
with ``shapely.union_all`` (GEOS overlay) and polygonising nothing more.

Usage: python scripts/bench_roads.py [--streets 500] [--vertices 500]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from circles.roads import network_from_roads


def layer(streets: int, vertices: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    step, spacing = 20.0, 20.0 * vertices / streets
    lines = []
    t = np.arange(vertices + 1) * step
    for k in range(streets):
        c = (k + 0.5) * spacing + 3.0  # never on a vertex of the crossing streets
        for horizontal in (True, False):
            xy = np.column_stack([t, np.full_like(t, c)]) if horizontal else np.column_stack([np.full_like(t, c), t])
            cut = int(rng.integers(5, vertices - 5))
            lines.append(shapely.LineString(xy[: cut + 1]))
            gap = xy[cut + 1:].copy()
            gap[0] = xy[cut] + (0.5 if horizontal else 0.0, 0.0 if horizontal else 0.5)
            lines.append(shapely.LineString(np.vstack([gap[:1], xy[cut + 1:]])))
    # Streets as digitised: one feature per street piece, placed in CGCS2000 zone 38 (CM 114°E).
    geoms = shapely.transform(np.array(lines, dtype=object), lambda c: (*c, 500000.0, 3390000.0))
    dups = rng.choice(len(geoms), max(1, len(geoms) // 100), replace=False)
    geoms = np.concatenate([geoms, geoms[dups]])
    return gpd.GeoDataFrame({"class": np.full(len(geoms), "主干路")}, geometry=geoms, crs=4547)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streets", type=int, default=500)
    ap.add_argument("--vertices", type=int, default=500)
    args = ap.parse_args()
    gdf = layer(args.streets, args.vertices)
    n_seg = int(shapely.get_num_coordinates(gdf.geometry.to_numpy()).sum() - len(gdf))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roads.gpkg"
        gdf.to_file(path, engine="pyogrio")
        print(f"layer: {len(gdf):,} features, {n_seg:,} segments, {args.streets ** 2:,} unnoded crossings")
        t = time.perf_counter()
        net = network_from_roads(path)
        ours = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(f"circles: read + repair + build {ours:.1f} s, peak {peak:.2f} GB "
              f"(target <= 30 s, <= 3 GB): {net.n_nodes:,} nodes, {net.n_edges:,} edges")
        print(f"repairs: {net.report['repairs']}")
        t = time.perf_counter()
        merged = shapely.union_all(gdf.geometry.to_numpy())
        peer = time.perf_counter() - t
        print(f"peer: shapely.union_all over the layer (noding only, no gaps or levels) {peer:.1f} s, "
              f"{len(shapely.get_parts(merged)):,} pieces")


if __name__ == "__main__":
    main()
