"""The reached streets of a service area, cut where time runs out and buffered into polygons.

Behind :mod:`circles.engine.isochrones`: from the nodes each origin reaches, every reached edge
is cut at the exact point along its geometry where the limit is met, the pieces of one origin are
noded and buffered by a street width, and blocks nobody can reach stay holes. Everything is in
the network CRS and in metres.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse

from .anchors import Anchors
from .network import WalkNetwork

__all__ = ["ReachedNodes", "reached_areas"]

_QUAD_SEGS = 4  # arc segments per quarter circle at ends and bends: 30 m buffer, <= 0.6 m off
_THREADS = 2  # GEOS releases the GIL in shapely's vectorised functions
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


def reached_areas(net: WalkNetwork, reached: ReachedNodes, limits: np.ndarray,
                  src_origin: np.ndarray, src: Anchors, *, buffer_metres: float,
                  n_groups: int) -> np.ndarray:
    """Buffered reached streets of each group (a facility, or all facilities) at each limit.

    Parameters
    ----------
    net
        The walking network.
    reached
        The reached nodes, their origins and distances.
    limits
        The limits in metres, increasing.
    src_origin, src
        The sources of each origin (for the stretch of their own edge and the walk to it).
    buffer_metres
        The street buffer.
    n_groups
        Number of groups.

    Returns
    -------
    numpy.ndarray
        ``n_groups * len(limits)`` polygons, group by group; each group's areas nest.

    """
    m = len(limits)
    lim_o = np.tile(limits, n_groups)
    p_origin, edge, t0, t1 = _pieces(net, reached, lim_o, src_origin, src)
    lines = _substrings(net, edge, t0, t1)
    # The off-network walk from each source to its street belongs to its area too.
    if src.x is not None and src.y is not None and len(src):
        sx, sy = src.snap_xy(net)
        ok = src.ok & np.isfinite(src.x) & (src.offset_m > 0) & (src.offset_m <= lim_o[src_origin])
        walk = shapely.linestrings(np.stack([np.column_stack([src.x[ok], src.y[ok]]),
                                             np.column_stack([sx[ok], sy[ok]])], axis=1))
        p_origin = np.concatenate([p_origin, src_origin[ok]])
        lines = np.concatenate([lines, walk])
    areas = _street_areas(p_origin, lines, n_groups * m, buffer_metres).reshape(n_groups, m)
    # A larger limit reaches a superset of the streets, so its area contains the smaller one's;
    # a union with it makes that hold exactly, where the buffers' arcs are drawn differently.
    for j in range(1, m):
        areas[:, j] = _threaded(shapely.union, areas[:, j], areas[:, j - 1])
    return areas.ravel()


def _pieces(net: WalkNetwork, reached: ReachedNodes, limit: np.ndarray, src_origin: np.ndarray,
            src: Anchors) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reached stretches ``[t0, t1]`` (metres from ``u``) of each edge, per origin.

    A point ``t`` along edge ``(u, v)`` is reached when ``d(u) + t``, ``d(v) + length - t`` or,
    for a source on that edge, ``offset + |along - t|`` is within the limit: up to three
    intervals, merged where they overlap.
    """
    origin, node, dist = reached.origin, reached.node, reached.dist
    inc = _incidence(net)
    deg = np.diff(inc.indptr)[node]
    o = np.repeat(origin, deg)
    d = np.repeat(dist, deg)
    pos = np.repeat(inc.indptr[node], deg) + np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
    e = inc.indices[pos]
    from_u = inc.data[pos] > 0
    length = net.edge_length[e]
    room = limit[o] - d
    start = np.where(from_u, 0.0, np.maximum(length - room, 0.0))
    end = np.where(from_u, np.minimum(room, length), length)
    s_ok = np.flatnonzero(src.ok)
    s_e = src.edge[s_ok]
    s_room = limit[src_origin[s_ok]] - src.offset_m[s_ok]
    s_keep = s_room >= 0
    s_len = net.edge_length[s_e]
    s_a = np.minimum(src.along_m[s_ok], s_len)
    key = np.concatenate([o * net.n_edges + e, (src_origin[s_ok] * net.n_edges + s_e)[s_keep]])
    start = np.concatenate([start, np.maximum(s_a - s_room, 0.0)[s_keep]])
    end = np.concatenate([end, np.minimum(s_a + s_room, s_len)[s_keep]])
    key, start, end = _merge_intervals(key, start, end)
    return key // net.n_edges, key % net.n_edges, start, end


def _merge_intervals(key: np.ndarray, start: np.ndarray, end: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of intervals sharing a key (one row per disjoint piece)."""
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


def _substrings(net: WalkNetwork, edge: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """The stretch ``[t0, t1]`` metres of each edge's geometry (whole edges reused as they are)."""
    length = net.edge_length[edge]
    out = net.edge_geometry[edge].copy()
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


def _threaded(func: Callable[..., np.ndarray], *arrays: np.ndarray) -> np.ndarray:
    """``func`` over equal-length object arrays, in halves on two threads (GEOS frees the GIL)."""
    parts = [np.array_split(a, _THREADS) for a in arrays]
    with ThreadPoolExecutor(_THREADS) as pool:
        done = pool.map(lambda i: func(*(p[i] for p in parts)), range(_THREADS))
        return np.concatenate(list(done))


def _street_areas(group: np.ndarray, lines: np.ndarray, n: int, buffer_metres: float
                  ) -> np.ndarray:
    """The union of each group's lines buffered by ``buffer_metres``; empty where none."""
    out = np.array([shapely.Polygon()] * n, dtype=object)
    if len(lines) == 0:
        return out
    order = np.argsort(group, kind="stable")
    group, lines = group[order], lines[order]
    present = np.unique(group)
    # Cut the groups into contiguous runs of about equal work for the threads.
    counts = np.searchsorted(group, present, side="right") - np.searchsorted(group, present)
    cuts = np.searchsorted(np.cumsum(counts), np.arange(1, _THREADS) * counts.sum() / _THREADS)
    chunks = [c for c in np.split(present, cuts) if len(c)]

    def work(chunk: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(group, chunk[0])
        hi = np.searchsorted(group, chunk[-1], side="right")
        return _buffered(np.searchsorted(chunk, group[lo:hi]), lines[lo:hi], len(chunk),
                         buffer_metres)

    with ThreadPoolExecutor(len(chunks)) as pool:
        out[np.concatenate(chunks)] = np.concatenate(list(pool.map(work, chunks)))
    return out


def _buffered(group: np.ndarray, lines: np.ndarray, n: int, r: float) -> np.ndarray:
    """Buffer of each group's lines (``group`` sorted, every one of ``0..n-1`` present).

    A union of hundreds of overlapping street buffers is slow in GEOS, so the area is built
    from the faces (blocks) the lines enclose instead: within a block, a point is within ``r``
    of the streets exactly when it is within ``r`` of the block's edge or of a line inside it.
    So the area is the enclosed region grown by ``r``, less each block shrunk by ``r``, plus the
    buffers of the lines that bound no block (dead ends, partly reached edges, bridges).
    """
    # Noding first: pieces may cross without a shared node, and cuts end inside edges.
    solid = shapely.length(lines) > 0
    noded = shapely.union_all(_collect(lines[solid], group[solid], n)[:, None], axis=1)
    faces, cuts, dangles, rings = shapely.polygonize_full(noded[:, None], axis=1)
    f_parts, f_group = shapely.get_parts(faces, return_index=True)
    blocks = _collect(f_parts, f_group, n)[:, None]
    try:  # faces of one noded line set tile their region exactly: a coverage
        enclosed = shapely.coverage_union_all(blocks, axis=1)
    except shapely.errors.GEOSException:  # pragma: no cover - a robustness fallback
        enclosed = shapely.union_all(blocks, axis=1)
    # Chains of loose segments merged into one line each: fewer buffers to union.
    loose, l_group = shapely.get_parts(shapely.line_merge(shapely.union(shapely.union(
        cuts, dangles), rings)), return_index=True)
    # Pieces of zero length (a limit met exactly at a node) are points: buffered as discs.
    loose = np.concatenate([loose, lines[~solid]])
    l_group = np.concatenate([l_group, group[~solid]])
    extra = shapely.union_all(_collect(shapely.buffer(loose, r, quad_segs=_QUAD_SEGS), l_group,
                                       n)[:, None], axis=1)
    grown = shapely.union(shapely.buffer(enclosed, r, quad_segs=_QUAD_SEGS), extra)
    cores = shapely.buffer(f_parts, -r, quad_segs=_QUAD_SEGS)
    keep = ~shapely.is_empty(cores)
    cores, c_group = cores[keep], f_group[keep]
    near = shapely.intersects(cores, extra[c_group])
    cores[near] = shapely.difference(cores[near], extra[c_group[near]])
    c_parts, c_idx = shapely.get_parts(cores, return_index=True)
    c_parts, c_group = c_parts[shapely.area(c_parts) > 0], c_group[c_idx][shapely.area(c_parts) > 0]
    holes = _collect(c_parts, c_group, n, multipolygons=True)
    return shapely.difference(grown, holes)


def _collect(geoms: np.ndarray, group: np.ndarray, n: int, *, multipolygons: bool = False
             ) -> np.ndarray:
    """One collection per group ``0..n-1`` (empty where a group has nothing)."""
    empty = shapely.MultiPolygon() if multipolygons else shapely.GeometryCollection()
    out = np.array([empty] * n, dtype=object)
    if len(geoms):
        order = np.argsort(group, kind="stable")
        here, dense = np.unique(group[order], return_inverse=True)
        make = shapely.multipolygons if multipolygons else shapely.geometrycollections
        out[here] = make(geoms[order], indices=dense)
    return out
