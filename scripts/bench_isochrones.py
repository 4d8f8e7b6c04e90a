"""Benchmark: nearest-facility times and per-facility isochrones.

Prints, in one run on this machine, for 10, 50 and 200 facilities on Chengdu and for 200 and
2,000 facilities on 100k- and 1M-node synthetic cities (deyang profile: 5/10/15 minutes at
75 m/min, nested):

- ours: ``nearest_by_tier`` (the walking time from every node to the nearest eligible facility
  of each of the 3 tiers) and ``facility_isochrones`` (every facility at 5, 10 and 15 minutes:
  buffered streets, partial edges cut exactly);
- the floor: SciPy's bounded multi-source ``csgraph.dijkstra(..., min_only=True, limit=...)`` on
  the same CSR graph, one pass per tier;
- the peer (the OSMnx examples): ``nx.ego_graph(G, node, radius=minutes, distance="time")`` per
  facility and tier, and for the polygons its nodes and edges buffered and merged; beside it
  the search alone (networkx single-source Dijkstra with the cutoff, the minimum over
  facilities), which gives the times the peer's way. The peer runs on Chengdu only;
  on the synthetic cities its cost is extrapolated from a few facilities on 100k nodes and not
  run at all on 1M nodes (building the networkx graph alone takes minutes and gigabytes).

Facilities stand on nodes here, as the peer needs, so both must reach exactly the same nodes;
the script checks that and the times.

The ``polygons`` part (``--polygons 250k 1m``) times the dissolved tier areas and the
0-5/5-10/10-15 minute rings of a synthetic city (500 facilities on 250k nodes, 2,000 on 1M;
snapped from random points, 5% district, 30% community, 65% station) the way a run draws them
(``tier_isochrones(per_facility=False)`` then ``distance_bands``, the network's faces built on
first use and counted), best of ``--repeat`` runs, each on a freshly built network. The peer is
the old way of drawing the same layers, kept in ``street_buffers``: the reached stretches of
each area noded, polygonized and buffered as one group, and each ring a shapely difference of
two areas. The check: each layer's symmetric difference from the peer's, over its area.

The ``facility areas`` part (``--facility-areas 250k chengdu``) times the per-facility areas
the way a run draws them (each of the 250k city's 500 facilities at its tier's limit; on Chengdu
200 snapped facilities at 5, 10 and 15 minutes), from the network's faces
(``facility_isochrones``) beside the previous way in the same run (``by_faces=False``: each
facility's reached streets noded, polygonized and buffered), best of ``--repeat`` after a
warm-up; the network's faces are built first and timed apart (a run builds them for the tier
areas). The check: each area's symmetric difference from the previous one, over its area.

Usage: python scripts/bench_isochrones.py [--quick] [--cities chengdu 100k 1m]
       python scripts/bench_isochrones.py --cities --polygons 250k [1m] [--no-peer] [--repeat 2]
       python scripts/bench_isochrones.py --cities --facility-areas 250k chengdu [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PBF = ROOT / "data" / "chengdu.osm.pbf"
SHARES = (0.1, 0.4, 0.5)  # district / community / station, like Deyang's 8 / 40 / 32
BUFFER_M = 30.0


def _best(func, repeat: int) -> tuple[float, object]:
    out = func()  # warm-up (imports, caches)
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t)
    return best, out


def _once(func) -> tuple[float, object]:
    t = time.perf_counter()
    out = func()
    return time.perf_counter() - t, out


def _facilities(net, k: int, profile, seed: int):
    from circles.engine.routing import Anchors

    rng = np.random.default_rng(seed)
    nodes = rng.choice(net.n_nodes, k, replace=False)
    codes = np.array([t.code for t in profile.tiers])
    tiers = codes[rng.choice(len(codes), k, p=SHARES[:len(codes)] if len(codes) == 3 else None)]
    return nodes, Anchors.at_nodes(net, nodes), tiers


def _floor(net, nodes, tiers, profile) -> float:
    from scipy.sparse import csgraph

    total = 0.0
    for tier in profile.tiers:
        src = nodes[np.isin(tiers, list(profile.eligible(tier.code)))]
        if len(src) == 0:
            continue
        limit = profile.threshold_metres(tier.code)
        best, _ = _best(lambda src=src, limit=limit: csgraph.dijkstra(
            net.graph, directed=True, indices=src, min_only=True, limit=limit), 3)
        total += best
    return total


def _ours(net, anchors, tiers, profile, *, repeat: int):
    from circles.engine.isochrones import facility_isochrones
    from circles.engine.routing import nearest_by_tier

    limits = [profile.threshold_metres(t.code) for t in profile.tiers]
    t_times, table = _best(lambda: nearest_by_tier(net, anchors, tiers, profile), repeat)
    t_polys, polys = _once(lambda: facility_isochrones(net, anchors, limit_metres=limits,
                                                       buffer_metres=BUFFER_M))
    return t_times, table, t_polys, polys


def _peer_graph(net, profile):
    G = net.to_osmnx()
    speed = float(profile.metres_per_minute)
    for _, _, _, d in G.edges(keys=True, data=True):
        d["time"] = d["length"] / speed
    return G


def _peer_times(G, net, nodes, tiers, profile) -> dict[str, np.ndarray]:
    import networkx as nx

    index = {nid: i for i, nid in enumerate(net.node_id.tolist())}
    out = {}
    for tier in profile.tiers:
        minutes = profile.threshold_minutes(tier.code)
        best = np.full(net.n_nodes, np.inf)
        for n in nodes[np.isin(tiers, list(profile.eligible(tier.code)))]:
            d = nx.single_source_dijkstra_path_length(G, int(net.node_id[n]), cutoff=minutes,
                                                      weight="time")
            ix = np.fromiter((index[k] for k in d), dtype=np.int64, count=len(d))
            np.minimum.at(best, ix, np.fromiter(d.values(), dtype=float, count=len(d)))
        out[tier.code] = best
    return out


def _peer_ego(G, net, nodes, tiers, profile) -> None:
    """The OSMnx examples' step for each facility and tier it counts for: its ego graph."""
    import networkx as nx

    for tier in profile.tiers:
        minutes = profile.threshold_minutes(tier.code)
        for n in nodes[np.isin(tiers, list(profile.eligible(tier.code)))]:
            nx.ego_graph(G, int(net.node_id[n]), radius=minutes, distance="time")


def _peer_polygons(G, net, nodes, profile) -> tuple[list, list[set]]:
    """The OSMnx examples' ``make_iso_polys``: ego graph, buffered nodes and edges, union."""
    import geopandas as gpd
    import networkx as nx
    from shapely.geometry import LineString, Point

    polys, reached = [], []
    for n in nodes:
        centre = int(net.node_id[n])
        for tier in profile.tiers:
            trip = profile.threshold_minutes(tier.code)
            sub = nx.ego_graph(G, centre, radius=trip, distance="time")
            node_points = [Point((d["x"], d["y"])) for _, d in sub.nodes(data=True)]
            nodes_gdf = gpd.GeoDataFrame({"id": list(sub.nodes)}, geometry=node_points).set_index("id")
            edge_lines = []
            for n_fr, n_to in sub.edges():
                f = nodes_gdf.loc[n_fr].geometry
                t = nodes_gdf.loc[n_to].geometry
                edge_lines.append(G.get_edge_data(n_fr, n_to)[0].get("geometry", LineString([f, t])))
            nb = nodes_gdf.buffer(BUFFER_M).geometry
            eb = gpd.GeoSeries(edge_lines).buffer(BUFFER_M).geometry
            polys.append(gpd.GeoSeries(list(nb) + list(eb)).union_all())
            reached.append(set(sub.nodes))
    return polys, reached


def _same_nodes(net, anchors, profile, peer_reached: list[set]) -> tuple[int, int]:
    """(facility-limits compared, those whose reached node sets differ beyond ties at the limit)."""
    from circles.engine.routing import reach

    limits = [profile.threshold_metres(t.code) for t in profile.tiers]
    m = reach(net, anchors, limit_metres=max(limits)).tocsr()
    ids = net.node_id
    bad = 0
    for i in range(len(anchors)):
        row = m.getrow(i)
        for j, limit in enumerate(limits):
            ours = set(ids[row.indices[row.data <= limit]].tolist())
            tie = set(ids[row.indices[np.abs(row.data - limit) < 1e-6]].tolist())
            if (ours ^ peer_reached[i * len(limits) + j]) - tie:
                bad += 1
    return len(anchors) * len(limits), bad


def _line(label: str, seconds: float, extra: str = "") -> None:
    print(f"  {label:58s} {seconds:9.3f} s  {extra}")


def chengdu(profile, quick: bool) -> None:
    from circles import load_network

    net = load_network(PBF)
    print(f"\nChengdu: {net.n_nodes:,} nodes, {net.n_edges:,} edges")
    G = _peer_graph(net, profile)
    for k in (10, 50, 200):
        nodes, anchors, tiers = _facilities(net, k, profile, seed=k)
        print(f"- {k} facilities ({', '.join(f'{c}: {(tiers == c).sum()}' for c in np.unique(tiers))})")
        t_times, table, t_polys, _polys = _ours(net, anchors, tiers, profile, repeat=20)
        floor = _floor(net, nodes, tiers, profile)
        _line("ours: nearest-facility times, all nodes, 3 tiers", t_times,
              f"({t_times / floor:.2f}x SciPy's floor)")
        _line("floor: SciPy bounded multi-source dijkstra, 3 passes", floor)
        # Best of three for the peer too: this machine is shared, and both get the same chance.
        t_ego, _ = _best(lambda nodes=nodes, tiers=tiers: _peer_ego(G, net, nodes, tiers, profile), 3)
        _line("peer: nx.ego_graph per facility and tier (OSMnx examples)", t_ego,
              f"ours is {t_ego / t_times:,.0f}x faster (target >= 200x at 200)")
        t_peer, peer = _best(lambda nodes=nodes, tiers=tiers: _peer_times(G, net, nodes, tiers,
                                                                         profile), 3)
        _line("peer, search only: nx Dijkstra per facility, min", t_peer,
              f"ours is {t_peer / t_times:,.0f}x faster")
        diff = max(np.nanmax(np.abs(np.where(np.isfinite(peer[c]), peer[c], 0)
                                    - np.where(np.isfinite(peer[c]),
                                               table[f"{c}_minutes"].to_numpy(), 0)))
                   for c in peer)
        same_inf = all(np.array_equal(np.isfinite(peer[c]), np.isfinite(table[f"{c}_minutes"]))
                       for c in peer)
        print(f"  {'check: times equal the peer':58s} max |diff| {diff:.2e} min, "
              f"same reached nodes: {same_inf}")
        _line(f"ours: {k * 3} per-facility polygons (buffered, partial edges)", t_polys,
              "(target <= 3 s at 200)" if k == 200 else "")
        if quick and k == 200:
            print("  peer polygons: skipped (--quick)")
            continue
        t_pp, (_pp, reached) = _once(lambda nodes=nodes: _peer_polygons(G, net, nodes, profile))
        _line(f"peer: {k * 3} ego_graph polygons (buffered nodes + edges)", t_pp,
              f"ours is {t_pp / t_polys:,.1f}x faster")
        n, bad = _same_nodes(net, anchors, profile, reached)
        print(f"  {'check: ego graphs and ours reach the same nodes':58s} "
              f"{n - bad}/{n} facility-limits identical")


def synthetic(n_nodes: int, profile, counts: tuple[int, ...], peer_sample: int) -> None:
    from circles.engine.synthetic import make_city

    t_build, net = _once(lambda: make_city(n_nodes, seed=1))
    _ = net.graph
    print(f"\nSynthetic city: {net.n_nodes:,} nodes, {net.n_edges:,} edges (built in {t_build:.1f} s)")
    G = None
    if peer_sample:
        t_g, G = _once(lambda: _peer_graph(net, profile))
        print(f"  (networkx graph for the peer built in {t_g:.1f} s)")
    for k in counts:
        nodes, anchors, tiers = _facilities(net, k, profile, seed=k)
        print(f"- {k} facilities")
        t_times, _table, t_polys, _polys = _ours(net, anchors, tiers, profile, repeat=3)
        floor = _floor(net, nodes, tiers, profile)
        _line("ours: nearest-facility times, all nodes, 3 tiers", t_times,
              f"({t_times / floor:.2f}x SciPy's floor)"
              + (" (target <= 5 s)" if n_nodes >= 1_000_000 and k == 2000 else ""))
        _line("floor: SciPy bounded multi-source dijkstra, 3 passes", floor,
              f"({floor / 3:.3f} s per pass)")
        _line(f"ours: {k * 3} per-facility polygons (buffered, partial edges)", t_polys,
              "(target <= 120 s)" if n_nodes >= 1_000_000 and k == 2000 else "")
        if G is not None:
            sample = nodes[:peer_sample]
            t_pe, _ = _once(lambda sample=sample, sub=tiers[:peer_sample]: _peer_ego(
                G, net, sample, sub, profile))
            t_pt, _ = _once(lambda sample=sample, sub=tiers[:peer_sample]: _peer_times(
                G, net, sample, sub, profile))
            t_pp, _ = _once(lambda sample=sample: _peer_polygons(G, net, sample, profile))
            scale = k / peer_sample
            _line(f"peer ego graphs, extrapolated from {peer_sample} facilities", t_pe * scale,
                  f"ours is ~{t_pe * scale / t_times:,.0f}x faster")
            _line(f"peer Dijkstra only, extrapolated from {peer_sample}", t_pt * scale,
                  f"ours is ~{t_pt * scale / t_times:,.0f}x faster")
            _line(f"peer polygons, extrapolated from {peer_sample} facilities", t_pp * scale,
                  f"ours is ~{t_pp * scale / t_polys:,.0f}x faster")
        else:
            print("  peer: not run at this size (a networkx graph of this city does not build "
                  "in reasonable time and memory)")


def _polygon_city(n_nodes: int, k: int):
    from circles.engine.routing import Anchors
    from circles.engine.synthetic import make_city, random_points

    net = make_city(n_nodes, seed=0)
    _ = net.graph
    fx, fy = random_points(net, k, seed=1)
    anchors = Anchors.from_points(net, fx, fy, max_metres=300)
    tiers = np.array(["district"] * (k // 20) + ["community"] * (3 * k // 10)
                     + ["station"] * (k - k // 20 - 3 * k // 10))
    return net, anchors, tiers


def _polygons_ours(net, anchors, tiers, profile):
    from circles.engine.isochrones import distance_bands, tier_isochrones
    from circles.engine.street_faces import street_faces

    t0 = time.perf_counter()
    street_faces(net).cores(BUFFER_M)
    t1 = time.perf_counter()
    layers = tier_isochrones(net, anchors, tiers, profile, per_facility=False)
    t2 = time.perf_counter()
    bands = distance_bands(net, anchors, profile=profile)
    t3 = time.perf_counter()
    geoms = [layers[t.code].geometry[0] for t in profile.tiers] + list(bands.geometry)
    return (t1 - t0, t2 - t1, t3 - t2), geoms


def _polygons_peer(net, anchors, tiers, profile):
    """The old way: each area the union of one group's buffered streets; rings by difference."""
    import shapely

    from circles.engine.routing import nearest, tier_codes
    from circles.engine.street_buffers import ReachedNodes, reached_areas

    def areas(sources, limits):
        limits = np.asarray(limits, dtype=float)
        dist, _ = nearest(net, sources, limit_metres=float(limits.max()))
        node = np.flatnonzero(np.isfinite(dist))
        nn, jj = np.nonzero(dist[node][:, None] <= limits[None, :])
        src = np.flatnonzero(sources.ok)
        m = len(limits)
        return reached_areas(net, ReachedNodes(jj, node[nn], dist[node[nn]]), limits,
                             np.tile(np.arange(m), len(src)), sources.subset(np.repeat(src, m)),
                             buffer_metres=BUFFER_M, n_groups=1)

    codes = tier_codes(tiers, profile)
    out = []
    for tier in profile.tiers:
        eligible = np.isin(codes, list(profile.eligible(tier.code))) & anchors.ok
        out.append(areas(anchors.subset(eligible), [profile.threshold_metres(tier.code)])[0])
    whole = areas(anchors, [m * profile.metres_per_minute for m in (5, 10, 15)])
    rings = shapely.difference(whole, np.concatenate([[shapely.Polygon()], whole[:-1]]))
    return out + list(rings)


def polygons(size: str, profile, *, peer: bool, repeat: int) -> None:
    import shapely

    n_nodes, k = {"250k": (250_000, 500), "1m": (1_000_000, 2_000)}[size]
    print(f"\nPolygons: dissolved tier areas and rings, {size} nodes, {k} facilities "
          f"(best of {repeat}, each on a new network; other work shares this machine)")
    best, geoms = None, None
    for _ in range(repeat):
        net, anchors, tiers = _polygon_city(n_nodes, k)
        parts, geoms = _polygons_ours(net, anchors, tiers, profile)
        if best is None or sum(parts) < sum(best):
            best = parts
    total = sum(best)
    _line("ours: network faces and block cores (once per network)", best[0])
    _line("ours: dissolved tier areas (3 tiers)", best[1])
    _line("ours: rings 0-5, 5-10, 10-15 min", best[2])
    _line("ours: tier areas and rings together", total, "(target <= 10 s)" if size == "250k" else "")
    print(f"  {'peak memory so far':58s} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:9.2f} GB")
    if not peer:
        print("  peer: skipped (--no-peer)")
        return
    t_peer, theirs = _once(lambda: _polygons_peer(net, anchors, tiers, profile))
    _line("peer: the old union of buffered streets, per area", t_peer,
          f"ours is {t_peer / total:,.1f}x faster")
    names = [t.code for t in profile.tiers] + ["0-5", "5-10", "10-15"]
    worst = 0.0
    for name, a, b in zip(names, geoms, theirs, strict=True):
        rel = float(shapely.symmetric_difference(a, b).area / max(b.area, 1e-12))
        worst = max(worst, rel)
        print(f"  {'check: ' + name + ' symmetric difference / area':58s} {rel:9.2e}")
    print(f"  {'check: largest, against the bound 1e-6':58s} {worst:9.2e}  "
          f"{'ok' if worst <= 1e-6 else 'OVER'}")


def _own_tier_areas(net, anchors, tiers, profile, *, by_faces: bool):
    """Each facility's area at its own tier's limit, as ``tier_isochrones`` draws them."""
    from circles.engine.isochrones import facility_isochrones
    from circles.engine.routing import tier_codes

    codes = tier_codes(tiers, profile)
    out = np.empty(len(anchors), dtype=object)
    for tier in profile.tiers:
        own = np.flatnonzero(codes == tier.code)
        if len(own):
            out[own] = facility_isochrones(net, anchors.subset(own),
                                           limit_metres=profile.threshold_metres(tier.code),
                                           buffer_metres=BUFFER_M, by_faces=by_faces).geometry
    return out


def _three_limit_areas(net, anchors, profile, *, by_faces: bool):
    from circles.engine.isochrones import facility_isochrones

    limits = [profile.threshold_metres(t.code) for t in profile.tiers]
    return facility_isochrones(net, anchors, limit_metres=limits, buffer_metres=BUFFER_M,
                               by_faces=by_faces).geometry.to_numpy()


def facility_polygons(city: str, profile, *, repeat: int) -> None:
    """Per-facility areas from the network's faces beside the previous way, same run."""
    import shapely

    from circles.engine.street_faces import street_faces

    if city == "chengdu":
        from circles import load_network
        from circles.engine.routing import Anchors
        from circles.engine.synthetic import random_points

        net = load_network(PBF)
        fx, fy = random_points(net, 200, seed=5)
        anchors = Anchors.from_points(net, fx, fy, max_metres=300)
        label = "Chengdu, 200 facilities, each at 5, 10 and 15 min"
        draw = partial(_three_limit_areas, net, anchors, profile)
    else:
        net, anchors, tiers = _polygon_city(250_000, 500)
        label = "250k nodes, 500 facilities, each at its tier's limit"
        draw = partial(_own_tier_areas, net, anchors, tiers, profile)
    print(f"\nPer-facility areas: {label} (best of {repeat}; other work shares this machine)")
    t_faces, _ = _once(lambda: street_faces(net).cores(BUFFER_M))
    _line("network faces and block cores, once per network", t_faces,
          "(a run has them from the tier areas)")
    t_first, _ = _once(partial(draw, by_faces=True))
    t_new, new = _best(partial(draw, by_faces=True), repeat)
    t_old, old = _best(partial(draw, by_faces=False), repeat)
    _line("ours: first call (builds the faces' index once)", t_first)
    _line("ours: from the network's faces", t_new)
    _line("previous: each facility's streets noded and buffered", t_old,
          f"ours is {t_old / t_new:.1f}x faster")
    diff = shapely.area(shapely.symmetric_difference(new, old))
    area = shapely.area(old)
    rel = np.where(area > 0, diff / np.maximum(area, 1e-12), diff)
    print(f"  {'check: symmetric difference / area, largest':58s} {rel.max():9.2e}  "
          f"(median {np.median(rel):.1e}; {len(rel)} areas, all valid: "
          f"{bool(shapely.is_valid(new).all())}, same empty: "
          f"{bool((shapely.is_empty(new) == shapely.is_empty(old)).all())})")


def main() -> None:
    from circles.readers.profiles import get_profile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slowest peer runs")
    parser.add_argument("--cities", nargs="*", choices=("chengdu", "100k", "1m"),
                        default=["chengdu", "100k", "1m"], help="which networks to run")
    parser.add_argument("--polygons", nargs="*", choices=("250k", "1m"), default=[],
                        help="the dissolved tier areas and rings on these synthetic cities")
    parser.add_argument("--facility-areas", nargs="*", choices=("250k", "chengdu"), default=[],
                        help="per-facility areas from the faces beside the previous way")
    parser.add_argument("--no-peer", action="store_true", help="polygons: skip the old way")
    parser.add_argument("--repeat", type=int, default=2, help="polygons: runs of ours, best kept")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    profile = get_profile("deyang")
    print("deyang profile: " + ", ".join(f"{t.code} {profile.threshold_minutes(t.code):g} min / "
                                         f"{profile.threshold_metres(t.code):g} m"
                                         for t in profile.tiers)
          + f"; nested: {profile.nested}; street buffer {BUFFER_M:g} m")
    if "chengdu" in args.cities:
        chengdu(profile, args.quick)
    if "100k" in args.cities:
        synthetic(100_000, profile, (200, 2000), peer_sample=0 if args.quick else 5)
    if "1m" in args.cities:
        synthetic(1_000_000, profile, (200, 2000), peer_sample=0)
    for size in args.polygons:
        polygons(size, profile, peer=not args.no_peer and size == "250k", repeat=args.repeat)
    for city in args.facility_areas:
        facility_polygons(city, profile, repeat=args.repeat)
    print(f"\npeak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB")


if __name__ == "__main__":
    main()
