"""Shortest-path kernels on the walking network's CSR arrays.

Facilities and demand sit on edges, not only on nodes: an :class:`Anchors`
(:mod:`circles.engine.anchors`) holds, for each point, the edge it is attached to, the distance
along that edge from its ``u`` end and the straight off-network walk to it. Every kernel counts both exactly: a source enters the graph through a
virtual node with edges to its edge's two ends only (weights ``offset + along`` and
``offset + length - along``), so no path can pass through it, and a target on an edge takes the
better of its two ends, or the straight walk along the edge when a source shares it.

Everything is in metres; minutes are ``metres / profile.metres_per_minute``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from numpy.typing import DTypeLike
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import DataError
from .anchors import Anchors, anchor_status, check_anchors
from .network import WalkNetwork

if TYPE_CHECKING:
    from ..readers.profiles import Profile

__all__ = [
    "ZERO_METRES",
    "Anchors",
    "anchor_status",
    "check_anchors",
    "coverage_matrix",
    "nearest",
    "nearest_by_tier",
    "reach",
    "tier_codes",
]

# A distance stored in a sparse matrix: exact zeros (a source on a node, a target on a source) are
# stored as this instead, so that the stored entries are exactly the reached set and survive
# ``astype(bool)`` and ``eliminate_zeros``.
ZERO_METRES = 1e-9


class _Slots:
    """The network's graph followed by ``capacity`` virtual source rows of two edges each.

    Built once per network and reused: each pass writes its sources into the first rows, so
    a pass does not copy the whole graph. The lock keeps concurrent passes apart.
    """

    def __init__(self, graph: sparse.csr_matrix, capacity: int) -> None:
        n = graph.shape[0]
        self.base = graph.indptr[-1]
        self.capacity = capacity
        indptr = np.concatenate([graph.indptr, self.base + 2 * np.arange(1, capacity + 1)])
        indices = np.concatenate([graph.indices, np.zeros(2 * capacity, dtype=graph.indices.dtype)])
        data = np.concatenate([graph.data, np.zeros(2 * capacity)])
        self.graph = sparse.csr_matrix((data, indices, indptr.astype(graph.indptr.dtype)),
                                       shape=(n + capacity, n + capacity))
        self.lock = threading.Lock()


_SLOTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SLOTS_LOCK = threading.Lock()


@contextmanager
def _augmented(net: WalkNetwork, sources: Anchors
               ) -> Iterator[tuple[sparse.csr_matrix, np.ndarray]]:
    """The graph plus one virtual node per usable source, with edges out to its edge's ends only.

    Yields the graph (nodes ``n, n + 1, ...`` are the sources, in order) and the source rows.
    """
    rows = np.flatnonzero(sources.ok)
    k = len(rows)
    with _SLOTS_LOCK:
        slot = _SLOTS.get(net)
        if slot is None or slot.capacity < k:
            slot = _Slots(net.graph, max(k, 64, 2 * (slot.capacity if slot else 0)))
            _SLOTS[net] = slot
    e = sources.edge[rows]
    a = np.minimum(sources.along_m[rows], net.edge_length[e])
    o = sources.offset_m[rows]
    with slot.lock:
        tail = slice(slot.base, slot.base + 2 * k)
        slot.graph.indices[tail] = np.column_stack([net.edge_u[e], net.edge_v[e]]).ravel()
        slot.graph.data[tail] = np.column_stack([o + a, o + net.edge_length[e] - a]).ravel()
        yield slot.graph, rows


def _limit(limit_metres: float | None) -> float:
    return np.inf if limit_metres is None else float(limit_metres)


def nearest(net: WalkNetwork, sources: Anchors, *, limit_metres: float | None,
            targets: Anchors | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distance from every node (or target) to its nearest source, in one bounded pass.

    Parameters
    ----------
    net
        The walking network.
    sources
        Facilities; rows with ``edge == -1`` are ignored.
    limit_metres
        Search bound (``None``: unbounded). Farther is ``inf``.
    targets
        Points to measure to (their own off-network walk included); ``None``: every node.

    Returns
    -------
    metres : numpy.ndarray
        Walking metres (sources' and targets' off-network walks included); ``inf`` beyond the
        limit, unreachable or for unsnapped targets.
    source_index : numpy.ndarray
        Row in ``sources`` of the nearest source; ``-1`` where ``metres`` is ``inf``.

    """
    check_anchors(net, sources, "sources")
    limit = _limit(limit_metres)
    n_out = net.n_nodes if targets is None else len(targets)
    if not sources.ok.any():
        return np.full(n_out, np.inf), np.full(n_out, -1, dtype=np.int64)
    n = net.n_nodes
    with _augmented(net, sources) as (aug, rows):
        dist, _, src = csgraph.dijkstra(aug, directed=True, indices=np.arange(n, n + len(rows)),
                                        min_only=True, limit=limit, return_predecessors=True)
    dist = dist[:n]
    src = src[:n]
    # Unreached nodes have a negative source, clipped onto the -1 in front of the rows.
    which = np.take(np.concatenate([[-1], rows]), src - (n - 1), mode="clip")
    if targets is None:
        return dist, which
    return _to_targets(net, dist, which, sources, targets, limit)


def _to_targets(net: WalkNetwork, dist: np.ndarray, which: np.ndarray, sources: Anchors,
                targets: Anchors, limit: float) -> tuple[np.ndarray, np.ndarray]:
    check_anchors(net, targets, "targets")
    out = np.full(len(targets), np.inf)
    idx = np.full(len(targets), -1, dtype=np.int64)
    t = np.flatnonzero(targets.ok)
    if len(t) == 0:
        return out, idx
    e = targets.edge[t]
    length = net.edge_length[e]
    a = np.minimum(targets.along_m[t], length)
    du = dist[net.edge_u[e]] + a
    dv = dist[net.edge_v[e]] + length - a
    best = np.minimum(du, dv)
    who = np.where(du <= dv, which[net.edge_u[e]], which[net.edge_v[e]])
    # A source on the target's own edge may be nearer straight along it than through either end.
    s_rows = np.flatnonzero(sources.ok)
    si, ti = _same_edge_pairs(sources.edge[s_rows], e)
    if len(si):
        s = s_rows[si]
        d = np.abs(sources.along_m[s] - a[ti]) + sources.offset_m[s]
        order = np.lexsort((d, ti))
        first = np.ones(len(order), dtype=bool)
        first[1:] = ti[order][1:] != ti[order][:-1]
        ti1, d1, s1 = ti[order][first], d[order][first], s[order][first]
        better = d1 < best[ti1]
        best[ti1[better]] = d1[better]
        who[ti1[better]] = s1[better]
    total = best + targets.offset_m[t]
    hit = total <= limit
    out[t[hit]] = total[hit]
    idx[t[hit]] = who[hit]
    return out, idx


def _same_edge_pairs(src_edge: np.ndarray, tgt_edge: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (source position, target position) pair sharing an edge."""
    order = np.argsort(src_edge, kind="stable")
    sorted_edge = src_edge[order]
    lo = np.searchsorted(sorted_edge, tgt_edge, side="left")
    cnt = np.searchsorted(sorted_edge, tgt_edge, side="right") - lo
    ti = np.repeat(np.arange(len(tgt_edge)), cnt)
    within = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    return order[np.repeat(lo, cnt) + within], ti


def nearest_by_tier(net: WalkNetwork, facilities: Anchors, tiers: np.ndarray, profile: Profile, *,
                    targets: Anchors | None = None, limit_metres: float | None = None
                    ) -> pd.DataFrame:
    """Walking distance and time to the nearest eligible facility, for each tier of a profile.

    Parameters
    ----------
    net
        The walking network.
    facilities
        The facilities (unsnapped rows are ignored).
    tiers
        Each facility's tier (code, Chinese name or minutes, as the profile reads them).
    profile
        A :class:`circles.profiles.Profile`; ``profile.eligible(code)`` says which tiers count
        for a tier (nesting).
    targets
        Points to measure to; ``None``: every node.
    limit_metres
        Search bound; each tier is searched to the larger of this and its own threshold.

    Returns
    -------
    pandas.DataFrame
        One row per node (or target); per tier ``{code}_metres``, ``{code}_minutes`` (``inf``
        beyond the bound) and ``{code}_facility`` (row in ``facilities``, ``-1`` when none).

    """
    codes = tier_codes(np.asarray(tiers), profile)
    if len(codes) != len(facilities):
        raise DataError("one tier per facility is needed", field="tier",
                        fix=f"give {len(facilities)} tiers, not {len(codes)}")
    cols = {}
    for tier in profile.tiers:
        mask = np.isin(codes, list(profile.eligible(tier.code))) & facilities.ok
        bound = float(profile.threshold_metres(tier.code))
        if limit_metres is not None:
            bound = max(bound, float(limit_metres))
        metres, which = nearest(net, facilities.subset(mask), limit_metres=bound, targets=targets)
        rows = np.flatnonzero(mask)
        cols[f"{tier.code}_metres"] = metres
        cols[f"{tier.code}_minutes"] = metres / float(profile.metres_per_minute)
        cols[f"{tier.code}_facility"] = np.take(np.concatenate([[-1], rows]), which + 1)
    return pd.DataFrame(cols, copy=False)


def tier_codes(tiers: np.ndarray, profile: Profile) -> np.ndarray:
    """Tier codes for tiers named by code, Chinese name or minutes."""
    uniq, inv = np.unique(tiers.astype(str), return_inverse=True)
    codes = np.array([profile.tier(u).code for u in uniq], dtype=object)
    return codes[inv] if len(tiers) else np.array([], dtype=object)


def reach(net: WalkNetwork, sources: Anchors, *, limit_metres: float) -> sparse.csr_matrix:
    """Network distance from each source to every node within ``limit_metres``.

    Sources whose limit discs cannot overlap share one multi-source pass, which is then exact
    for each of them: a node within the limit of one source is beyond the limit of every other
    source in its group (the straight line is never longer than the walk). So a city needs a few
    passes, not one per facility, and memory stays at a few arrays of the node count.

    Parameters
    ----------
    net
        The walking network.
    sources
        The sources; unsnapped rows give empty rows.
    limit_metres
        The bound (the source's off-network walk counts).

    Returns
    -------
    scipy.sparse.csr_matrix
        ``len(sources) × n_nodes`` float64 metres, stored only within the limit; an exact zero
        is stored as :data:`ZERO_METRES` so the stored entries are exactly the reached nodes.

    """
    check_anchors(net, sources, "sources")
    limit = float(limit_metres)
    n = net.n_nodes
    out_r, out_c, out_d = [], [], []
    rows = np.flatnonzero(sources.ok)
    groups = _groups(net, sources.subset(rows), limit)
    with _augmented(net, sources) as (aug, rows):
        for group in groups:
            dist, _, src = csgraph.dijkstra(aug, directed=True, indices=n + group, min_only=True,
                                            limit=limit, return_predecessors=True)
            hit = np.flatnonzero(np.isfinite(dist[:n]))
            out_r.append(rows[src[hit] - n])
            out_c.append(hit)
            out_d.append(dist[hit])
    r = np.concatenate(out_r) if out_r else np.zeros(0, dtype=np.int64)
    c = np.concatenate(out_c) if out_c else np.zeros(0, dtype=np.int64)
    d = np.concatenate(out_d) if out_d else np.zeros(0)
    return sparse.csr_matrix((np.maximum(d, ZERO_METRES), (r, c)), shape=(len(sources), n))


def _groups(net: WalkNetwork, sources: Anchors, limit: float) -> list[np.ndarray]:
    """Split sources into groups whose members are more than twice the limit apart."""
    import networkx as nx

    k = len(sources)
    if k == 0:
        return []
    sx, sy = sources.snap_xy(net)
    pts = shapely.points(sx, sy)
    tree = shapely.STRtree(pts)
    # Walking distance >= straight distance, so sources farther apart than 2 * limit (plus a
    # margin for rounding) never reach a common node within the limit.
    i, j = tree.query(pts, predicate="dwithin", distance=2 * limit + 1.0)
    keep = i < j
    g = nx.Graph()
    g.add_nodes_from(range(k))
    g.add_edges_from(zip(i[keep].tolist(), j[keep].tolist(), strict=True))
    colour = nx.coloring.greedy_color(g, strategy="largest_first")
    col = np.fromiter((colour[v] for v in range(k)), dtype=np.int64, count=k)
    order = np.argsort(col, kind="stable")
    bounds = np.flatnonzero(np.diff(col[order])) + 1
    return np.split(order, bounds)


def coverage_matrix(net: WalkNetwork, candidates: Anchors, demand: Anchors, *,
                    limit_metres: float, dtype: DTypeLike = np.float32) -> sparse.csr_matrix:
    """Which demand points each candidate reaches within ``limit_metres``.

    Parameters
    ----------
    net
        The walking network.
    candidates
        Candidate (or existing) sites.
    demand
        Demand points.
    limit_metres
        The threshold; both off-network walks count.
    dtype
        ``numpy.float32`` / ``float64`` for metres, or ``bool``.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``len(candidates) × len(demand)``; stored entries are the covered pairs (metres, exact
        zeros stored as :data:`ZERO_METRES`, or ``True``).

    """
    check_anchors(net, demand, "demand")
    limit = float(limit_metres)
    shape = (len(candidates), len(demand))
    reached = reach(net, candidates, limit_metres=limit).tocsc()
    t = np.flatnonzero(demand.ok)
    e = demand.edge[t]
    length = net.edge_length[e]
    a = np.minimum(demand.along_m[t], length)
    o = demand.offset_m[t]
    parts_r, parts_c, parts_d = [], [], []
    for node, extra in ((net.edge_u[e], a + o), (net.edge_v[e], length - a + o)):
        sub = reached[:, node].tocoo()
        parts_r.append(sub.row)
        parts_c.append(sub.col)
        parts_d.append(sub.data + extra[sub.col])
    c_rows = np.flatnonzero(candidates.ok)
    si, ti = _same_edge_pairs(candidates.edge[c_rows], e)
    s = c_rows[si]
    parts_r.append(s)
    parts_c.append(ti)
    parts_d.append(np.abs(candidates.along_m[s] - a[ti]) + candidates.offset_m[s] + o[ti])
    rows, cols, d = _nearest_within(np.concatenate(parts_r).astype(np.int64),
                                    np.concatenate(parts_c).astype(np.int64),
                                    np.concatenate(parts_d), limit, len(t))
    if np.dtype(dtype) == np.bool_:
        values = np.ones(len(d), dtype=bool)
    else:
        values = np.maximum(d, ZERO_METRES).astype(dtype)
    return sparse.csr_matrix((values, (rows, t[cols])), shape=shape)


def _nearest_within(r: np.ndarray, c: np.ndarray, d: np.ndarray, limit: float, n_cols: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (row, column) pair the shortest of its routes, kept where within ``limit``."""
    width = max(n_cols, 1)
    key = r * width + c
    order = np.lexsort((d, key))
    key, d = key[order], d[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, d = key[first], d[first]
    hit = d <= limit
    key, d = key[hit], d[hit]
    return key // width, key % width, d
