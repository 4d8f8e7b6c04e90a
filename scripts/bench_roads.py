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

Junction jitter (issue 16): a clean 4 km street grid, one feature per block side, so four ends meet
at every crossing, with a lane into the middle of every other block ending on the street, against
the same layer with every end moved 0.1-0.4 m in a random direction (as digitised layers have it).
Both are repaired and built, and the coverage of the same facilities and the same residents is
printed per tier with the difference; the target is the clean layer's coverage within 0.5 %.

Usage: python scripts/bench_roads.py [--segments 500000] [--spacing 100] [--step 20] [--per-feature 5]
       [--momepy [--momepy-segments 50000]] [--jitter-only]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from circles import compute_coverage, facilities_from_frame, network_from_roads
from circles.engine.network import WalkNetwork
from circles.readers.roads import read_road_lines

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
    ap.add_argument("--jitter-only", action="store_true", help="only the junction-jitter coverage check")
    args = ap.parse_args()
    jitter_coverage()
    if args.jitter_only:
        return
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


def junction_layers(blocks: int = 40, size: float = 100.0, seed: int = 1) -> tuple[list, list]:
    """The clean grid (with lanes) and the same lines with every end moved 0.1-0.4 m."""
    rng = np.random.default_rng(seed)
    k = np.arange(blocks + 1) * size
    i, j = np.meshgrid(np.arange(blocks), np.arange(blocks + 1), indexing="ij")
    a = np.column_stack([k[i.ravel()], k[j.ravel()]])  # one feature per block side, both ways
    starts = np.vstack([a, a[:, ::-1]])
    east = a + np.array([size, 0.0])
    stops = np.vstack([east, east[:, ::-1]])
    bi, bj = np.meshgrid(np.arange(0, blocks, 2), np.arange(blocks), indexing="ij")
    lane = np.column_stack([k[bi.ravel()] + size / 2, k[bj.ravel()]])  # from the street into the block
    starts = np.vstack([starts, lane])
    stops = np.vstack([stops, lane + np.array([0.0, size / 2])])
    ends = np.vstack([starts, stops])
    r, t = rng.uniform(0.1, 0.4, len(ends)), rng.uniform(0, 2 * np.pi, len(ends))
    moved = ends + np.column_stack([r * np.cos(t), r * np.sin(t)])
    m = len(starts)

    def lines(e):
        return list(shapely.linestrings(np.stack([e[:m], e[m:]], axis=1) + np.asarray(ORIGIN)))

    return lines(ends), lines(moved)


def jitter_coverage(n_people: int = 20_000, seed: int = 2) -> None:
    """Coverage on the clean and the jittered layer, same facilities and residents."""
    clean, moved = junction_layers()
    rng = np.random.default_rng(seed)
    to_lonlat = pyproj.Transformer.from_crs(4547, 4326, always_xy=True)
    x0, y0 = ORIGIN
    fx, fy = rng.uniform(200, 3800, (2, 60))
    lon, lat = to_lonlat.transform(x0 + fx, y0 + fy)
    fac = pd.DataFrame({"name": [f"f{q}" for q in range(60)], "lon": lon, "lat": lat,
                        "tier": np.repeat(["district", "community", "station"], [4, 16, 40])})
    px, py = rng.uniform(0, 4000, (2, n_people))
    plon, plat = to_lonlat.transform(x0 + px, y0 + py)
    demand = gpd.GeoDataFrame({"pop": rng.integers(1, 40, n_people).astype(float)},
                              geometry=shapely.points(plon, plat), crs=4326)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, lines in (("clean", clean), ("jittered", moved)):
            path = Path(tmp) / f"{label}.gpkg"
            gpd.GeoDataFrame(geometry=lines, crs=4547).to_file(path, engine="pyogrio")
            t = time.perf_counter()
            net = network_from_roads(path)
            built = time.perf_counter() - t
            with warnings.catch_warnings():  # residents near the layer's edge: the same on both layers
                warnings.simplefilter("ignore", UserWarning)
                cov = compute_coverage(net, facilities_from_frame(fac, network=net), demand)
            rows[label] = cov.by_tier().set_index("tier")["covered_pop"]
            rep = net.report["repairs"]
            print(f"{label}: {len(lines):,} lines -> {net.n_nodes:,} nodes, {net.n_edges:,} edges, "
                  f"{net.report['components']:,} components, {built:.2f} s; gaps closed "
                  f"{rep['gaps_closed']:,}, ends joined to lines {rep['ends_joined_to_lines']:,}")
    table = pd.DataFrame(rows)
    table["difference_%"] = (100 * (table["jittered"] / table["clean"] - 1)).round(3)
    print("covered people per tier, same facilities and residents (target: within 0.5 %):")
    print(table.to_string())


def pyogrio_count(path: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(path)["features"])


if __name__ == "__main__":
    main()
