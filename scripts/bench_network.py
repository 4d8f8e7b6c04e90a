"""Benchmark: building the walking network.

Prints, in one run on this machine:
- Chengdu: ours (read, filter, largest component, projected, CSR) against osmnx.graph_from_xml on
  the same extract (as .osm XML) and pyrosm's walking network converted to networkx;
- synthetic cities of 100k and 1M nodes: build time and peak memory (each in its own process, so
  the peak is that build's own).

Usage: python scripts/bench_network.py [--quick]
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
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _synthetic_child(args.child)
        return
    chengdu(1 if args.quick else 3)
    synthetic([100_000] if args.quick else [100_000, 1_000_000])


if __name__ == "__main__":
    main()
