"""Benchmark: building the walking network's graph from arrays (issue 20, target 4).

Prints, in one run on this machine, for synthetic cities of 100k and 1M nodes (the arrays of
``circles.engine.synthetic.make_city``, generated here so that both sides get the same ones):

- ours: ``WalkNetwork.from_lines`` (lengths, self-loops and exact duplicates dropped, the
  largest component kept, nodes renumbered) and its symmetric CSR ``net.graph``, whose
  parallel edges keep the shortest;
- the floor: SciPy on the same ``u, v, w`` arrays, ``sparse.csr_matrix((w, (u, v)))`` and
  ``csgraph.connected_components``, which do less (one direction only, parallel edges summed,
  nothing dropped or renumbered) and so bound what any build can take;
- the ratio, and the target (<= 2 s at 1M nodes);
- for information: the same build when the edges come with geometries (a road layer, an
  osmnx graph: oriented and measured by shapely), and what drawing the straight geometries
  costs when an isochrone, a map or snapping first asks for them (``edge_geometry`` is lazy).

Each figure is the best of ``--repeat`` runs (other work may share the machine); the first run
is printed too.

Usage: python scripts/bench_graph.py [--quick] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from circles.engine.network import WalkNetwork
from circles.engine.synthetic import city_arrays, make_city

CRS = pyproj.CRS.from_epsg(32648)  # as make_city
TARGET_S = 2.0


def _best(func, repeat: int) -> tuple[float, float, object]:
    """(first call seconds, best call seconds, last result)."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t)
    return times[0], min(times), out


def _draw_time(net: WalkNetwork) -> float:
    """Seconds to draw a fresh network's straight geometries, the first time they are asked for."""
    t = time.perf_counter()
    _ = net.edge_geometry
    return time.perf_counter() - t


def run(n: int, repeat: int) -> None:
    x, y, u, v = city_arrays(n)
    dx, dy = x[v] - x[u], y[v] - y[u]
    w = np.sqrt(dx * dx + dy * dy)

    def ours(geometry=None):
        net = WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=u, edge_v=v,
                                     edge_geometry=geometry, crs=CRS)
        _ = net.graph
        return net

    def floor():
        graph = sparse.csr_matrix((w, (u, v)), shape=(len(x), len(x)))
        return graph, csgraph.connected_components(graph, directed=False)

    f_ours, b_ours, net = _best(ours, repeat)
    f_floor, b_floor, (_, (n_comp, _)) = _best(floor, repeat)
    reference = make_city(n)  # the arrays above must be make_city's own
    assert (net.n_nodes, net.n_edges) == (reference.n_nodes, reference.n_edges)
    assert (net.graph != reference.graph).nnz == 0
    lines = shapely.linestrings(np.stack([np.column_stack([x[u], y[u]]),
                                          np.column_stack([x[v], y[v]])], axis=1))
    f_geom, b_geom, _ = _best(lambda: ours(lines), max(1, repeat // 2))
    b_draw = min(_draw_time(ours()) for _ in range(max(1, repeat // 2)))
    print(f"\n{len(x):,} nodes, {len(u):,} edges read -> {net.n_nodes:,} nodes, "
          f"{net.n_edges:,} edges kept ({n_comp} components in the floor's graph)")
    print(f"{'approach':62s} {'first':>8s} {'best':>8s}")
    print(f"{'ours: from_lines + graph (CSR)':62s} {f_ours:8.3f} {b_ours:8.3f}")
    print(f"{'floor: SciPy csr_matrix((w,(u,v))) + connected_components':62s} "
          f"{f_floor:8.3f} {b_floor:8.3f}")
    print(f"ratio ours/floor: best {b_ours / b_floor:.2f}, first {f_ours / f_floor:.2f}")
    if n >= 1_000_000:
        verdict = "met" if b_ours <= TARGET_S else "NOT met"
        print(f"target from_lines + CSR at 1M nodes <= {TARGET_S:.0f} s: {verdict} ({b_ours:.2f} s)")
    print(f"{'(info) ours with geometries given: oriented, measured by shapely':62s} "
          f"{f_geom:8.3f} {b_geom:8.3f}")
    print(f"{'(info) straight geometries drawn when first asked for':62s} {'':8s} {b_draw:8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100k nodes only")
    ap.add_argument("--repeat", type=int, default=5, help="runs per figure (the best is kept)")
    args = ap.parse_args()
    for n in [100_000] if args.quick else [100_000, 1_000_000]:
        run(n, max(1, args.repeat))


if __name__ == "__main__":
    main()
