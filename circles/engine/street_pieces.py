"""The reached stretches of the streets: each edge cut exactly where the walking limit runs out.

Behind :mod:`circles.engine.street_buffers` (one area per facility) and
:mod:`circles.engine.street_areas` (one dissolved area per limit): from the nodes each origin
reaches, the stretch ``[t0, t1]`` metres of every reached edge, the line along it, and the
straight walk from each source to its street. Everything is in the network CRS and in metres.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse

from .anchors import Anchors
from .network import WalkNetwork

__all__ = ["ReachedNodes", "ReachedPieces", "edge_substrings", "is_whole", "merge_intervals",
           "reached_pieces", "source_walks"]

_EPS_M = 1e-9
_INCIDENCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class ReachedNodes:
    """Nodes reached from each origin, an origin being ``group * len(limits) + level``.

    Attributes
    ----------
    origin : numpy.ndarray
        The origin of each reached node.
    node : numpy.ndarray
        The node.
    dist : numpy.ndarray
        Its walking distance in metres (within that level's limit).

    """

    origin: np.ndarray
    node: np.ndarray
    dist: np.ndarray


@dataclass(frozen=True)
class ReachedPieces:
    """Disjoint reached stretches of edges, one row per stretch.

    Attributes
    ----------
    origin, edge : numpy.ndarray
        The origin the stretch is reached from and its edge.
    t0, t1 : numpy.ndarray
        The stretch in metres from the edge's ``u`` end (``t0 <= t1``).

    """

    origin: np.ndarray
    edge: np.ndarray
    t0: np.ndarray
    t1: np.ndarray


def reached_pieces(net: WalkNetwork, reached: ReachedNodes, limit: np.ndarray,
                   src_origin: np.ndarray, src: Anchors) -> ReachedPieces:
    """The reached stretches ``[t0, t1]`` (metres from ``u``) of each edge, per origin.

    A point ``t`` along edge ``(u, v)`` is reached when ``d(u) + t``, ``d(v) + length - t`` or,
    for a source on that edge, ``offset + |along - t|`` is within the limit: up to three
    intervals, merged where they overlap.

    Parameters
    ----------
    net
        The walking network.
    reached
        The reached nodes, their origins and distances.
    limit
        The limit of each origin, in metres.
    src_origin, src
        The origin of each source, and the sources (for the stretch of their own edge).

    Returns
    -------
    ReachedPieces

    """
    origin, node, dist = reached.origin, reached.node, reached.dist
    inc = _incidence(net)
    deg = np.diff(inc.indptr)[node]
    pos = np.repeat(inc.indptr[node], deg) + np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
    e = inc.indices[pos]
    from_u = inc.data[pos] > 0
    del pos  # a 1M-node city's 15 minutes: 2.3M rows in each of these arrays, let go when done
    o = np.repeat(origin, deg)
    room = limit[o] - np.repeat(dist, deg)
    length = net.edge_length[e]
    start = np.where(from_u, 0.0, np.maximum(length - room, 0.0))
    end = np.where(from_u, np.minimum(room, length), length)
    del room, length, from_u
    pair = o * net.n_edges + e
    del o, e
    s_ok = np.flatnonzero(src.ok)
    s_e = src.edge[s_ok]
    s_room = limit[src_origin[s_ok]] - src.offset_m[s_ok]
    s_keep = s_room >= 0
    s_len = net.edge_length[s_e]
    s_a = np.minimum(src.along_m[s_ok], s_len)
    key = np.concatenate([pair, (src_origin[s_ok] * net.n_edges + s_e)[s_keep]])
    del pair
    start = np.concatenate([start, np.maximum(s_a - s_room, 0.0)[s_keep]])
    end = np.concatenate([end, np.minimum(s_a + s_room, s_len)[s_keep]])
    key, start, end = merge_intervals(key, start, end)
    return ReachedPieces(key // net.n_edges, key % net.n_edges, start, end)


def merge_intervals(key: np.ndarray, start: np.ndarray, end: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of intervals sharing a key (one row per disjoint piece, sorted by key and start)."""
    if len(key) == 0:
        return key, start, end
    order = np.lexsort((start, key))
    key, start, end = key[order], start[order], end[order]
    new_key = np.ones(len(key), dtype=bool)
    new_key[1:] = key[1:] != key[:-1]
    # Lift each key's values above every earlier key's so one running maximum serves all keys.
    lift = (np.cumsum(new_key) - 1) * (float(end.max()) + 1.0)
    reach_end = np.maximum.accumulate(end + lift) - lift
    new_piece = new_key.copy()
    new_piece[1:] |= start[1:] > reach_end[:-1]
    first = np.flatnonzero(new_piece)
    return key[first], start[first], np.maximum.reduceat(end, first)


def _incidence(net: WalkNetwork) -> sparse.csr_matrix:
    """Node × edge incidence; data 1 where the node is the edge's ``u`` end, -1 at ``v``."""
    inc = _INCIDENCE.get(net)
    if inc is None:
        e = np.arange(net.n_edges)
        inc = sparse.csr_matrix((np.concatenate([np.ones(net.n_edges), -np.ones(net.n_edges)]),
                                 (np.concatenate([net.edge_u, net.edge_v]), np.concatenate([e, e]))),
                                shape=(net.n_nodes, net.n_edges))
        _INCIDENCE[net] = inc  # a network's arrays never change once it is built
    return inc


def edge_substrings(net: WalkNetwork, edge: np.ndarray, t0: np.ndarray, t1: np.ndarray
                    ) -> np.ndarray:
    """The stretch ``[t0, t1]`` metres of each edge's geometry (whole edges reused as they are)."""
    length = net.edge_length[edge]
    out = net.edge_lines(edge).copy()
    part = np.flatnonzero((t0 > _EPS_M) | (t1 < length - _EPS_M))
    if len(part) == 0:
        return out
    g = out[part]
    scale = shapely.length(g) / length[part]
    a, b = t0[part] * scale, t1[part] * scale
    coords, which = shapely.get_coordinates(g, return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    step[which[1:] != which[:-1]] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(step)])
    cum -= cum[np.searchsorted(which, which)]  # distance along its own line
    inner = (cum > a[which]) & (cum < b[which])
    ends = shapely.get_coordinates(shapely.line_interpolate_point(np.concatenate([g, g]),
                                                                  np.concatenate([a, b])))
    n = len(part)
    pts = np.concatenate([ends[:n], coords[inner], ends[n:]])
    idx = np.concatenate([np.arange(n), which[inner], np.arange(n)])
    rank = np.concatenate([np.zeros(n), 1.0 + np.flatnonzero(inner), np.full(n, np.inf)])
    order = np.lexsort((rank, idx))
    out[part] = shapely.linestrings(pts[order], indices=idx[order])
    return out


def is_whole(net: WalkNetwork, edge: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """True where the stretch is the whole edge (as :func:`edge_substrings` decides)."""
    return (t0 <= _EPS_M) & (t1 >= net.edge_length[edge] - _EPS_M)


def source_walks(net: WalkNetwork, src: Anchors, limit: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The straight walk from each source to its street, where it is within its limit.

    Parameters
    ----------
    net
        The walking network.
    src
        The sources.
    limit
        Each source's limit in metres.

    Returns
    -------
    rows : numpy.ndarray
        The sources that have a walk.
    lines : numpy.ndarray
        The walks, from the point to where it joins its street.

    """
    if src.x is None or src.y is None or len(src) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    sx, sy = src.snap_xy(net)
    ok = src.ok & np.isfinite(src.x) & (src.offset_m > 0) & (src.offset_m <= limit)
    lines = shapely.linestrings(np.stack([np.column_stack([src.x[ok], src.y[ok]]),
                                          np.column_stack([sx[ok], sy[ok]])], axis=1))
    return np.flatnonzero(ok), np.asarray(lines, dtype=object).reshape(-1)
