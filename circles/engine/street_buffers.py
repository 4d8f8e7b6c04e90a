"""The reached streets of a service area, cut where time runs out and buffered into polygons.

Behind :mod:`circles.engine.isochrones` for one area per facility (and the reference for the
dissolved areas of :mod:`circles.engine.street_areas`, which must equal these for one group):
from the nodes each origin reaches, every reached edge is cut at the exact point along its
geometry where the limit is met (:mod:`circles.engine.street_pieces`), the pieces of one origin
are noded and buffered by a street width, and blocks nobody can reach stay holes. Everything is
in the network CRS and in metres.

Where the network's faces are at hand, the per-facility areas are drawn from them instead
(:mod:`circles.engine.facility_areas`, the same polygons for hundreds of facilities at once);
noding each group's own streets stays for the groups whose walks cross a street, and as the
reference the faces are checked against.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely

from .anchors import Anchors
from .facility_areas import built_faces, face_areas, walks_fit
from .geos_threads import THREADS, in_halves
from .network import WalkNetwork
from .street_faces import StreetFaces
from .street_pieces import (
    ReachedNodes,
    ReachedPieces,
    edge_substrings,
    reached_pieces,
    source_walks,
)

__all__ = ["ReachedNodes", "reached_areas"]

_QUAD_SEGS = 4  # arc segments per quarter circle at ends and bends: 30 m buffer, <= 0.6 m off


def reached_areas(net: WalkNetwork, reached: ReachedNodes, limits: np.ndarray,
                  src_origin: np.ndarray, src: Anchors, *, buffer_metres: float,
                  n_groups: int, by_faces: bool = False) -> np.ndarray:
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
    by_faces
        Draw the areas from the network's faces (:mod:`circles.engine.facility_areas`) where
        they are built or worth building and the group's walks fit them; else (and for the
        other groups) node, polygonize and buffer each group's streets.

    Returns
    -------
    numpy.ndarray
        ``n_groups * len(limits)`` polygons, group by group; each group's areas nest.

    """
    m = len(limits)
    n = n_groups * m
    lim_o = np.tile(limits, n_groups)
    pieces = reached_pieces(net, reached, lim_o, src_origin, src)
    # The off-network walk from each source to its street belongs to its area too.
    rows, walks = source_walks(net, src, lim_o[src_origin])
    w_origin = src_origin[rows]
    faces = built_faces(net, len(pieces.edge)) if by_faces else None
    fit = np.zeros(n, dtype=bool) if faces is None else walks_fit(faces, w_origin, walks, n)
    areas = np.empty(n, dtype=object)
    if faces is not None and fit.any():
        areas[fit] = _by_faces(net, faces, pieces, (w_origin, walks), fit, buffer_metres)
    if not fit.all():
        p, w = ~fit[pieces.origin], ~fit[w_origin]
        lines = np.concatenate([edge_substrings(net, pieces.edge[p], pieces.t0[p], pieces.t1[p]),
                                walks[w]])
        areas[~fit] = _street_areas(np.searchsorted(np.flatnonzero(~fit), np.concatenate(
            [pieces.origin[p], w_origin[w]])), lines, int((~fit).sum()), buffer_metres)
    by_group = areas.reshape(n_groups, m)
    # A larger limit reaches a superset of the streets, so its area contains the smaller one's;
    # a union with it makes that hold exactly, where the buffers' arcs are drawn differently.
    for j in range(1, m):
        by_group[:, j] = in_halves(shapely.union, by_group[:, j], by_group[:, j - 1])
    return by_group.ravel()


def _by_faces(net: WalkNetwork, faces: StreetFaces, pieces: ReachedPieces,
              walks: tuple[np.ndarray, np.ndarray], fit: np.ndarray, r: float) -> np.ndarray:
    """The areas of the ``fit`` groups from the network's faces, on two threads."""
    dense = np.cumsum(fit) - 1
    p, w = fit[pieces.origin], fit[walks[0]]
    group = dense[pieces.origin[p]]
    order = np.argsort(group, kind="stable")
    sub = ReachedPieces(group[order], pieces.edge[p][order], pieces.t0[p][order],
                        pieces.t1[p][order])
    w_group, w_lines = dense[walks[0][w]], walks[1][w]
    out = np.array([shapely.Polygon()] * int(fit.sum()), dtype=object)
    if len(sub.origin) == 0:
        return out
    chunks = _chunks(sub.origin)

    def work(chunk: np.ndarray) -> np.ndarray:
        lo, hi = np.searchsorted(sub.origin, [chunk[0], chunk[-1] + 1])
        part = ReachedPieces(np.searchsorted(chunk, sub.origin[lo:hi]), sub.edge[lo:hi],
                             sub.t0[lo:hi], sub.t1[lo:hi])
        keep = np.isin(w_group, chunk)
        return face_areas(net, faces, part, (np.searchsorted(chunk, w_group[keep]),
                                             w_lines[keep]), len(chunk), r)

    with ThreadPoolExecutor(len(chunks)) as pool:  # GEOS and NumPy free the GIL
        out[np.concatenate(chunks)] = np.concatenate(list(pool.map(work, chunks)))
    return out


def _street_areas(group: np.ndarray, lines: np.ndarray, n: int, buffer_metres: float
                  ) -> np.ndarray:
    """The union of each group's lines buffered by ``buffer_metres``; empty where none."""
    out = np.array([shapely.Polygon()] * n, dtype=object)
    if len(lines) == 0:
        return out
    order = np.argsort(group, kind="stable")
    group, lines = group[order], lines[order]
    chunks = _chunks(group)

    def work(chunk: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(group, chunk[0])
        hi = np.searchsorted(group, chunk[-1], side="right")
        return _buffered(np.searchsorted(chunk, group[lo:hi]), lines[lo:hi], len(chunk),
                         buffer_metres)

    with ThreadPoolExecutor(len(chunks)) as pool:
        out[np.concatenate(chunks)] = np.concatenate(list(pool.map(work, chunks)))
    return out


def _chunks(group: np.ndarray) -> list[np.ndarray]:
    """The groups present in ``group`` (sorted), in contiguous runs of about equal rows for
    the threads."""
    present = np.unique(group)
    counts = np.searchsorted(group, present, side="right") - np.searchsorted(group, present)
    cuts = np.searchsorted(np.cumsum(counts), np.arange(1, THREADS) * counts.sum() / THREADS)
    return [c for c in np.split(present, cuts) if len(c)]


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
