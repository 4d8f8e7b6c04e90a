"""Benchmark: building the walking network.

Prints, in one run on this machine:
- Chengdu: ours (read, filter, largest component, projected, CSR) against osmnx.graph_from_xml on
  the same extract (as .osm XML) and pyrosm's walking network converted to networkx;
- reading OSM (issue 20, target 3): a 250k-node PBF (a synthetic city written as OSM ways) to a
  ready WalkNetwork, against the pyrosm reader circles used before (same filter, same build),
  pyrosm's own walking graph and osmnx.graph_from_xml on the same data as XML, with the target
  (<= 5 s) and the ratios;
- synthetic cities of 100k and 1M nodes: build time and peak memory (each in its own process, so
  the peak is that build's own).

Every time is the best of the repeats (the machine is shared; ``first`` includes lazy imports).

Usage: python scripts/bench_network.py [--quick] [--read-nodes N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PBF = ROOT / "data" / "chengdu.osm.pbf"


def _best(func, repeat: int) -> tuple[float, float, object]:
    """(first call seconds, best of the following calls, last result)."""
    t = time.perf_counter()
    out = func()
    first = time.perf_counter() - t
    best = first
    for _ in range(repeat):
        t = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - t)
    return first, best, out


def chengdu(repeat: int) -> None:
    import osmium
    import osmnx as ox
    from pyrosm import OSM
    from scipy.sparse import csgraph

    from circles.engine.network import WalkNetwork

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "chengdu.osm"
        with osmium.SimpleWriter(str(xml)) as w:
            for obj in osmium.FileProcessor(str(PBF)):
                w.add(obj)

        def ours():
            net = WalkNetwork.from_osm(PBF)
            _ = net.graph
            return net

        def ours_xml():
            net = WalkNetwork.from_osm(xml)
            _ = net.graph
            return net

        def osmnx_xml():
            return ox.graph_from_xml(xml)

        def pyrosm_nx():
            osm = OSM(str(PBF), engine="in_memory", keep_metadata=False)
            nodes, edges = osm.get_network(network_type="walking", nodes=True)
            return osm.to_graph(nodes, edges, graph_type="networkx")

        rows = []
        f, b, net = _best(ours, repeat)
        rows.append(("circles (PBF: read+filter+component+project+CSR)", f, b, net.n_nodes))
        f2, b2, _ = _best(ours_xml, repeat)
        rows.append(("circles (same extract as .osm XML)", f2, b2, net.n_nodes))
        fo, bo, G = _best(osmnx_xml, repeat)
        rows.append(("osmnx.graph_from_xml (peer)", fo, bo, len(G)))
        fp, bp, H = _best(pyrosm_nx, repeat)
        rows.append(("pyrosm walking network + to_graph(networkx) (peer)", fp, bp, len(H)))
        print("\nChengdu walking network (seconds; 'first' includes each library's lazy imports)")
        print(f"{'approach':55s} {'first':>8s} {'best':>8s} {'nodes':>8s}")
        for name, first, best, n in rows:
            print(f"{name:55s} {first:8.3f} {best:8.3f} {n:8d}")
        print(f"ratio ours/graph_from_xml: best {b / bo:.3f}, first {f / fo:.3f} (target <= 0.200)")
        t = time.perf_counter()
        csgraph.dijkstra(net.graph, indices=0)
        print(f"(one full Dijkstra on it: {time.perf_counter() - t:.4f} s)")


# Street kinds of the synthetic extract and their shares: mostly walkable, a few the walking
# filter drops (motorway, construction) or keeps only with a sidewalk (trunk).
_KINDS = {"residential": 40, "footway": 15, "service": 10, "tertiary": 8, "secondary": 5,
          "primary": 4, "unclassified": 5, "path": 3, "living_street": 2, "cycleway": 2, "steps": 1,
          "pedestrian": 1, "trunk": 1.5, "motorway": 1, "construction": 0.5, "track": 1}


def _city_ways(net, max_segments: int = 8) -> tuple:
    """A synthetic city's edges chained into OSM ways of up to ``max_segments`` segments along
    its grid lines: (first node, last node, way) per edge, in way order."""
    import math

    import numpy as np

    side = math.isqrt(net.report["nodes_read"])  # make_city's square grid, ids i * side + j
    a, b = net.node_id[net.edge_u], net.node_id[net.edge_v]
    s, e = np.minimum(a, b), np.maximum(a, b)
    step = e - s  # 1: along a column, side: along a row, side + 1: a diagonal
    line = np.where(step == 1, s // side, np.where(step == side, s % side, -1))
    order = np.lexsort((s, line, step))
    s, e, step = s[order], e[order], step[order]
    new = np.r_[True, (s[1:] != e[:-1]) | (step[1:] != step[:-1])]
    run = np.cumsum(new) - 1
    along = np.arange(len(s)) - np.flatnonzero(new)[run]
    new |= along % max_segments == 0
    return s, e, np.cumsum(new) - 1


def _city_tags(n_ways: int, rng) -> list[dict]:
    import numpy as np

    names = list(_KINDS)
    share = np.array(list(_KINDS.values()))
    kind = rng.choice(len(names), n_ways, p=share / share.sum())
    r = rng.random((n_ways, 5))
    tags = [{"highway": names[k]} for k in kind]
    for i in np.flatnonzero(r[:, 0] < 0.5):
        tags[i]["name"] = f"Street {i % 5000}"
    for i in np.flatnonzero(r[:, 1] < 0.01):
        tags[i]["foot"] = "no"
    for i in np.flatnonzero((r[:, 1] >= 0.01) & (r[:, 1] < 0.03)):
        tags[i]["access"] = "private"
    for i in np.flatnonzero(r[:, 2] < 0.02):
        tags[i].update(layer="1", bridge="yes")
    for i in np.flatnonzero((kind == names.index("trunk")) & (r[:, 3] < 0.5)):
        tags[i]["sidewalk"] = "both"
    for i in np.flatnonzero(r[:, 4] < 0.003):
        tags[i]["area"] = "yes"
    return tags


def _city_pbf(n_nodes: int, path: Path) -> int:
    """Write a synthetic city of about ``n_nodes`` as an OSM PBF (its nodes, and its edges as
    tagged ways); returns the number of nodes written.

    Test data, not timed: osmium's writer takes one Python call per element.
    """
    import numpy as np
    import osmium

    from circles.engine.synthetic import make_city

    net = make_city(n_nodes, seed=0)
    s, e, way = _city_ways(net)
    lon, lat = net.lonlat()
    starts = np.flatnonzero(np.r_[True, way[1:] != way[:-1]])
    ends = np.r_[starts[1:], len(way)]
    tags = _city_tags(len(starts), np.random.default_rng(0))
    order = np.argsort(net.node_id)
    with osmium.SimpleWriter(str(path)) as w:
        for k in order:
            w.add_node(osmium.osm.mutable.Node(id=int(net.node_id[k]) + 1,
                                               location=(float(lon[k]), float(lat[k]))))
        for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
            refs = (np.r_[s[a:b], e[b - 1]] + 1).tolist()
            w.add_way(osmium.osm.mutable.Way(id=i + 1, nodes=refs, tags=tags[i]))
    return len(order)


def _before(path: Path):
    """The reader circles used before issue 20: pyrosm's highway frame, the same walking filter
    and the same build."""
    import numpy as np
    import pyproj

    from circles.engine.network import WalkNetwork
    from circles.readers.crs import WGS84, utm_crs
    from circles.readers.osm import read_osm_ways, walkable

    nodes, edges = read_osm_ways(path)
    mask = walkable(edges)
    crs = utm_crs(nodes["lon"], nodes["lat"])
    km_not_walkable = float(edges.loc[~mask, "geometry"].to_crs(crs).length.sum()) / 1000
    edges = edges.loc[mask]
    ids = np.sort(nodes["id"].to_numpy(np.int64))
    lonlat = nodes.set_index("id").loc[ids]
    px, py = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True).transform(
        lonlat["lon"].to_numpy(), lonlat["lat"].to_numpy())
    net = WalkNetwork.from_lines(
        x=px, y=py, node_id=ids, edge_u=np.searchsorted(ids, edges["u"].to_numpy(np.int64)),
        edge_v=np.searchsorted(ids, edges["v"].to_numpy(np.int64)), edge_geometry=None, crs=crs,
        edge_attrs=edges[["osm_id", "highway", "name"]], source=str(path),
        report={"km_not_walkable": km_not_walkable})
    _ = net.graph
    return net


def reading(n_nodes: int, repeat: int) -> None:
    """Target 3: an OSM PBF of ``n_nodes`` street nodes to a ready WalkNetwork."""
    import osmium
    import osmnx as ox
    from pyrosm import OSM

    from circles.engine.network import WalkNetwork
    from circles.readers.osm import read_osm_segments

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        pbf = Path(tmp) / "city.osm.pbf"
        written = _city_pbf(n_nodes, pbf)
        xml = Path(tmp) / "city.osm"
        writer = osmium.WriteHandler(str(xml))
        osmium.apply(str(pbf), writer)
        writer.close()

        def ours():
            net = WalkNetwork.from_osm(pbf)
            _ = net.graph
            return net

        def pyrosm_read():
            return OSM(str(pbf), engine="in_memory", keep_metadata=False).get_network(
                network_type="all", nodes=True)

        def pyrosm_graph():
            osm = OSM(str(pbf), engine="in_memory", keep_metadata=False)
            nodes, edges = osm.get_network(network_type="walking", nodes=True)
            return osm.to_graph(nodes, edges, graph_type="networkx")

        f, b, net = _best(ours, repeat)
        fs, bs, _ = _best(lambda: read_osm_segments(pbf), repeat)
        f0, b0, _ = _best(lambda: _before(pbf), repeat)
        fr, br, _ = _best(pyrosm_read, repeat)
        fg, bg, _ = _best(pyrosm_graph, 0)  # about a minute: once
        fo, bo, _ = _best(lambda: ox.graph_from_xml(xml, simplify=False), 0)
        rows = [("circles: PBF -> ready WalkNetwork (read+filter+build+CSR)", f, b),
                ("  of which reading and filtering (read_osm_segments)", fs, bs),
                ("circles before (pyrosm reader, same filter and build)", f0, b0),
                ("pyrosm get_network('all', nodes=True) (the read alone)", fr, br),
                ("pyrosm walking network + to_graph(networkx) (peer)", fg, bg),
                ("osmnx.graph_from_xml(simplify=False), same data as XML (peer)", fo, bo)]
        print(f"\nReading OSM: a {written:,}-node PBF ({pbf.stat().st_size / 2**20:.1f} MB) to a "
              f"ready WalkNetwork of {net.n_nodes:,} nodes, {net.n_edges:,} edges (seconds)")
        print(f"{'approach':64s} {'first':>8s} {'best':>8s}")
        for name, first, best in rows:
            print(f"{name:64s} {first:8.3f} {best:8.3f}")
        verdict = "met" if b <= 5.0 else "NOT met"
        print(f"target <= 5 s: {b:.2f} s, {verdict}; ratios (best): ours/before {b / b0:.3f}, "
              f"ours/pyrosm read {b / br:.3f}, ours/pyrosm graph {b / bg:.4f}, ours/osmnx {b / bo:.4f}")


def _synthetic_child(n: int) -> None:
    from circles.engine.synthetic import make_city

    t = time.perf_counter()
    net = make_city(n, seed=0)
    _ = net.graph
    seconds = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps({"nodes": net.n_nodes, "edges": net.n_edges, "seconds": seconds,
                      "peak_gb": peak_gb}))


def synthetic(sizes: list[int]) -> None:
    print("\nSynthetic cities (perturbed 80 m grid), each built in its own process")
    print(f"{'nodes':>10s} {'edges':>10s} {'seconds':>9s} {'peak GB':>9s}  target")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], capture_output=True,
                             text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        target = "<= 60 s, <= 3 GB" if n >= 1_000_000 else ""
        print(f"{r['nodes']:10d} {r['edges']:10d} {r['seconds']:9.2f} {r['peak_gb']:9.2f}  {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repeat, 100k only")
    ap.add_argument("--read-nodes", type=int, default=250_000,
                    help="street nodes of the synthetic PBF for the reading benchmark")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _synthetic_child(args.child)
        return
    chengdu(1 if args.quick else 3)
    reading(args.read_nodes, 1 if args.quick else 3)
    synthetic([100_000] if args.quick else [100_000, 1_000_000])


if __name__ == "__main__":
    main()
