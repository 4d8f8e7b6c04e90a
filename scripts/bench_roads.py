"""Benchmark: repairing and building a 500,000-segment road-line file.

A synthetic bureau layer, rotated off the axes: two families of long straight streets on a grid,
vertices every ``--step`` metres, crossing between vertices (never at a shared vertex); each
street cut into features of ``--per-feature`` segments whose ends are jittered by up to 0.4 m
(digitising gaps), and 1 % of the features drawn twice (half of them reversed). Written to a
GeoPackage in CGCS2000 / 3-degree Gauss-Krüger CM 114°E (EPSG:4547), then read, repaired (node the
crossings, close the gaps, drop the duplicates) and built into a WalkNetwork, timed, with the
peak memory of the process (ru_maxrss: GEOS's memory included, which tracemalloc does not see).

The peer, in the same run on the same file: osmnx has no road-line repair, so the simplest
correct alternative: read, node the whole layer with ``shapely.union_all`` (GEOS overlay: nodes
every crossing and merges duplicates, but closes no gap and knows no bridge), nodes from the
pieces' ends, and the same ``WalkNetwork.from_lines``. With ``--momepy`` (if installed) also
momepy's ``close_gaps`` before it, which is what closing the gaps costs there; it grows with the
square of the layer (3.8 s at 20k segments, 15 s at 50k, past 15 minutes at 500k), so it runs,
beside ours, on a layer of ``--momepy-segments`` (default 50,000).

Usage: python scripts/bench_roads.py [--segments 500000] [--spacing 100] [--step 20] [--per-feature 5]
       [--momepy [--momepy-segments 50000]]
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

from circles.engine.network import WalkNetwork
from circles.readers.roads import network_from_roads, read_road_lines

ORIGIN = (520_000.0, 3_380_000.0)  # near Wuhan, inside EPSG:4547's zone


def layer(segments: int, spacing: float, step: float, per_feature: int, seed: int = 0) -> gpd.GeoDataFrame:
    """The synthetic layer: about ``segments`` two-point segments."""
    rng = np.random.default_rng(seed)
    # 2 n streets of n * spacing metres, each of n * spacing / step segments.
    n = max(2, int(np.sqrt(segments * step / (2 * spacing))))
    length = n * spacing
    t = np.arange(0.0, length + step / 2, step)
    offset = (np.arange(n) + 0.5) * spacing + 0.37 * step  # between the other family's vertices
    xs = np.concatenate([np.tile(t, n), np.repeat(offset, len(t))])
    ys = np.concatenate([np.repeat(offset, len(t)), np.tile(t, n)])
    street = np.repeat(np.arange(2 * n), len(t))
    ordinal = np.tile(np.arange(len(t)), 2 * n)
    # Features of per_feature segments; the shared vertex is repeated as the next feature's start.
    feature = street * (len(t) // per_feature + 1) + np.minimum(ordinal, len(t) - 2) // per_feature
    joint = (ordinal % per_feature == 0) & (ordinal > 0) & (ordinal < len(t) - 1)
    rep = 1 + joint
    xs, ys = np.repeat(xs, rep), np.repeat(ys, rep)
    fid = np.repeat(feature, rep)
    second = np.cumsum(rep)[joint] - 1
    fid[second - 1] -= 1  # the first copy ends the previous feature
    ends = np.r_[second - 1, second]
    jitter = rng.uniform(-0.2, 0.2, (len(ends), 2))
    xs[ends] += jitter[:, 0]
    ys[ends] += jitter[:, 1]
    a = np.radians(17.0)
    x = ORIGIN[0] + xs * np.cos(a) - ys * np.sin(a)
    y = ORIGIN[1] + xs * np.sin(a) + ys * np.cos(a)
    _, fidx = np.unique(fid, return_inverse=True)
    geoms = shapely.linestrings(np.column_stack([x, y]), indices=fidx)
    dups = rng.choice(len(geoms), max(1, len(geoms) // 100), replace=False)
    again = geoms[dups].copy()
    again[::2] = shapely.reverse(again[::2])
    geoms = np.concatenate([geoms, again])
    return gpd.GeoDataFrame({"等级": np.full(len(geoms), "支路")}, geometry=geoms, crs=4547)


def peer(path: Path, *, momepy: bool) -> tuple[float, WalkNetwork]:
    t0 = time.perf_counter()
    gdf = read_road_lines(path)
    if momepy:
        import momepy as mm

        gdf = gpd.GeoDataFrame(geometry=mm.close_gaps(gdf, 2.0), crs=gdf.crs)
    pieces = shapely.get_parts(shapely.union_all(gdf.geometry.to_numpy()))
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(pieces, 0)),
                      shapely.get_coordinates(shapely.get_point(pieces, -1))])
    pos, inv = np.unique(np.round(ends, 3), axis=0, return_inverse=True)
    inv = inv.ravel()
    net = WalkNetwork.from_lines(x=pos[:, 0], y=pos[:, 1], node_id=None, edge_u=inv[:len(pieces)],
                                 edge_v=inv[len(pieces):], edge_geometry=pieces, crs=gdf.crs, source="peer")
    return time.perf_counter() - t0, net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=500_000)
    ap.add_argument("--spacing", type=float, default=100.0, help="metres between parallel streets")
    ap.add_argument("--step", type=float, default=20.0, help="metres between vertices")
    ap.add_argument("--per-feature", type=int, default=5, help="segments per feature")
    ap.add_argument("--momepy", action="store_true", help="also time momepy.close_gaps + union_all")
    ap.add_argument("--momepy-segments", type=int, default=50_000, help="layer size for the momepy peer")
    args = ap.parse_args()
    gdf = layer(args.segments, args.spacing, args.step, args.per_feature)
    n_seg = int(shapely.get_num_coordinates(gdf.geometry.to_numpy()).sum() - len(gdf))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "roads.gpkg"
        gdf.to_file(path, engine="pyogrio")
        del gdf
        print(f"layer: {n_seg:,} segments in {pyogrio_count(path):,} features, EPSG:4547")
        base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        t = time.perf_counter()
        net = network_from_roads(path)
        ours = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        rep = net.report["repairs"]
        print(f"circles network_from_roads: {ours:.1f} s (target <= 30 s); peak RSS {rss:.2f} GB "
              f"(before it: {base_rss:.2f} GB; target <= 3 GB)")
        print(f"  {net.n_nodes:,} nodes, {net.n_edges:,} edges, {net.km:,.1f} km, "
              f"{net.report['components']:,} components before keeping the largest")
        print("  repairs: " + ", ".join(f"{k} {v:,}" for k, v in rep.items()))
        t_peer, pnet = peer(path, momepy=False)
        print(f"peer shapely.union_all noding: {t_peer:.1f} s: {pnet.n_nodes:,} nodes, {pnet.n_edges:,} edges, "
              f"{pnet.km:,.1f} km, {pnet.report['components']:,} components (gaps left open)")
    if args.momepy:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "small.gpkg"
            layer(args.momepy_segments, args.spacing, args.step, args.per_feature).to_file(path, engine="pyogrio")
            t = time.perf_counter()
            net = network_from_roads(path)
            ours = time.perf_counter() - t
            print(f"at {args.momepy_segments:,} segments: circles {ours:.2f} s: {net.n_nodes:,} nodes, "
                  f"{net.n_edges:,} edges, {net.report['components']:,} components")
            t_mm, mnet = peer(path, momepy=True)
            print(f"  peer momepy.close_gaps + union_all: {t_mm:.1f} s: {mnet.n_nodes:,} nodes, "
                  f"{mnet.n_edges:,} edges, {mnet.report['components']:,} components")


def pyogrio_count(path: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


if __name__ == "__main__":
    main()
