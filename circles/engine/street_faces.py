"""The blocks of a street network, found once: faces, which face lies on each side of each street.

A dissolved service area needs the faces (blocks) that its reached streets enclose. Every such
face is a union of the whole network's faces, merged across the streets that are not reached
whole, so the network is noded and its faces walked once (:func:`street_faces`, cached with
the network; :mod:`circles.engine.face_walk`) and each area only labels faces: a connected-components pass over the face adjacency,
instead of noding and polygonizing its own streets again. Everything is in the network CRS.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .edge_index import EdgeIndex
from .face_walk import walked_faces
from .geos_threads import in_halves
from .network import WalkNetwork
from .packed_polygons import PackedLines, PackedPolygons
from .street_pieces import merge_intervals

__all__ = ["LinkStretches", "StreetFaces", "StreetTree", "face_components", "faces_built", "forget_faces", "link_stretches", "street_faces",
           "whole_link_keys"]

_EPS_M = 1e-9

_QUAD_SEGS = 4  # as the street buffers: the arcs must be drawn the same way
_NEAR_M = 1e-6  # a noded piece lies on its parent edge within this
_CORE_CHUNK = 100_000  # faces shrunk at a time
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


@dataclass
class StreetFaces:
    """A network noded into links, its faces, and the faces on each side of each link.

    Attributes
    ----------
    links : PackedLines
        The noded streets (``links[idx]`` makes lines of those asked for): every edge that
        crosses or overlaps no other is one link; the others are split where they cross.
    pair_link, pair_edge, pair_a, pair_b : numpy.ndarray
        Each link's stretch ``[a, b]`` metres (from ``u``) of the edge it lies on (an overlap lies
        on several).
    pair_flip : numpy.ndarray
        True where the link runs from ``b`` to ``a``.
    faces : PackedPolygons
        The bounded faces (``faces[idx]`` makes polygons of those asked for).
    left, right : numpy.ndarray
        The face on each side of each link (``-1``: the unbounded outside).
    streets : EdgeIndex or StreetTree
        The network's edges (the links lie on them), for finding which sources' walks cross a
        street (``streets.meeting(lines)``): ``WalkNetwork.edge_index`` when every edge is
        straight (no GEOS line kept), else ``WalkNetwork.edge_tree``, wrapped to answer the same.

    """

    links: PackedLines
    pair_link: np.ndarray
    pair_edge: np.ndarray
    pair_a: np.ndarray
    pair_b: np.ndarray
    pair_flip: np.ndarray
    faces: PackedPolygons
    left: np.ndarray
    right: np.ndarray
    streets: EdgeIndex | StreetTree
    _cores: dict = field(default_factory=dict, repr=False)

    @property
    def n_faces(self) -> int:
        """Number of bounded faces."""
        return len(self.faces)

    def cores(self, radius: float) -> PackedPolygons:
        """Each face shrunk by ``radius``: what stays out of reach when its streets are reached
        (``cores(r)[idx]`` makes those asked for; packed, they hold a quarter of the memory)."""
        with _LOCK:
            if radius not in self._cores:
                # A chunk of faces at a time: a 1M-node city's 900,000 blocks and their cores
                # as GEOS objects at once held 1.2 GB more than the packed cores.
                self._cores[radius] = PackedPolygons.concat([
                    PackedPolygons(in_halves(shapely.buffer, self.faces[k:k + _CORE_CHUNK], distance=-radius,
                                             quad_segs=_QUAD_SEGS))
                    for k in range(0, self.n_faces, _CORE_CHUNK)])
            return self._cores[radius]


@dataclass(frozen=True)
class StreetTree:
    """A network's STRtree of its edges, asked as :class:`EdgeIndex` is asked."""

    tree: shapely.STRtree

    def meeting(self, lines: np.ndarray) -> np.ndarray:
        """For each pair of a line and an edge that meet (touch or cross), the line's index."""
        return self.tree.query(lines, predicate="intersects")[0]


def street_faces(net: WalkNetwork) -> StreetFaces:
    """The network's :class:`StreetFaces`, built on first use and kept with the network."""
    with _LOCK:
        found = _CACHE.get(net)
        if found is None:
            found = _build(net)
            _CACHE[net] = found  # a network's arrays never change once it is built
        return found


def forget_faces(net: WalkNetwork) -> None:
    """Drop the network's :class:`StreetFaces` (a 1M-node city's blocks and cores hold about a
    gigabyte); they are built again on next use."""
    with _LOCK:
        _CACHE.pop(net, None)


def faces_built(net: WalkNetwork) -> bool:
    """Whether the network's :class:`StreetFaces` are built already (then they cost nothing)."""
    with _LOCK:
        return _CACHE.get(net) is not None


@dataclass(frozen=True)
class LinkStretches:
    """Reached stretches cut to the links: group, link, ``lo``/``hi`` (metres of the edge) and
    the link-parent row (of ``pair_*``)."""

    group: np.ndarray
    link: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    row: np.ndarray


def link_stretches(faces: StreetFaces, group: np.ndarray, edge: np.ndarray, t0: np.ndarray,
                   t1: np.ndarray) -> LinkStretches:
    """Reached stretches of edges cut to the links the edges are noded into.

    Parameters
    ----------
    faces
        The network's faces.
    group, edge, t0, t1
        Each stretch's group (a facility, or 0 for all), edge and ``[t0, t1]`` metres from its ``u``.

    Returns
    -------
    LinkStretches
        One row per stretch and link it lies on, of positive length.

    """
    order = np.argsort(faces.pair_edge, kind="stable")
    pe = faces.pair_edge[order]
    first = np.searchsorted(pe, edge)
    count = np.searchsorted(pe, edge, side="right") - first
    piece = np.repeat(np.arange(len(edge)), count)
    row = order[np.repeat(first, count) + np.arange(count.sum())
                - np.repeat(np.cumsum(count) - count, count)]
    lo = np.maximum(t0[piece], faces.pair_a[row])
    hi = np.minimum(t1[piece], faces.pair_b[row])
    keep = lo < hi
    return LinkStretches(group[piece[keep]], faces.pair_link[row[keep]], lo[keep], hi[keep], row[keep])


def whole_link_keys(faces: StreetFaces, st: LinkStretches) -> np.ndarray:
    """The links each group reaches over their whole length (by one stretch or several together).

    Parameters
    ----------
    faces
        The network's faces.
    st
        :func:`link_stretches`.

    Returns
    -------
    numpy.ndarray
        ``group * n_links + link``, sorted (with one group, the links themselves).

    """
    if len(st.link) == 0:
        return np.zeros(0, dtype=np.int64)
    span = np.zeros(len(faces.links))
    np.maximum.at(span, faces.pair_link, faces.pair_b - faces.pair_a)
    # In link metres, so the stretches of two edges that overlap on a link merge too.
    a, b, flip = faces.pair_a[st.row], faces.pair_b[st.row], faces.pair_flip[st.row]
    key, s0, s1 = merge_intervals(st.group.astype(np.int64) * len(faces.links) + st.link,
                                  np.where(flip, b - st.hi, st.lo - a),
                                  np.where(flip, b - st.lo, st.hi - a))
    link = key % len(faces.links)
    return key[(s0 <= _EPS_M) & (s1 >= span[link] - _EPS_M)]


def face_components(faces: StreetFaces, cut: np.ndarray) -> tuple[np.ndarray, int]:
    """Faces joined across the links that do not separate them.

    Parameters
    ----------
    faces
        The network's faces.
    cut
        True for each link that separates its two sides (a street reached whole).

    Returns
    -------
    labels : numpy.ndarray
        The component of each face, and at ``n_faces`` the outside's.
    outside : int
        The outside's component.

    """
    n = faces.n_faces + 1
    open_ = ~cut
    a = np.where(faces.left[open_] < 0, n - 1, faces.left[open_])
    b = np.where(faces.right[open_] < 0, n - 1, faces.right[open_])
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = csgraph.connected_components(graph, directed=False)
    return labels, int(labels[n - 1])


def _build(net: WalkNetwork) -> StreetFaces:
    """Node the network where edges cross, walk its faces and find each link's two faces."""
    geom = np.asarray(net.edge_geometry, dtype=object)
    flagged = _crossing_edges(net, geom)
    plain = np.flatnonzero(~flagged)
    links = [geom[plain]]
    pairs: list[tuple[np.ndarray, ...]] = [(np.arange(len(plain)), plain, np.zeros(len(plain)),
                                             net.edge_length[plain],
                                             np.zeros(len(plain), dtype=bool))]
    if flagged.any():
        cut = shapely.get_parts(shapely.union_all(geom[flagged]))
        pairs.append(_parents(net, geom, np.flatnonzero(flagged), cut, len(plain)))
        links.append(cut)
    # Packed before the walk, which reads only coordinates: a 1M-node city's 2M lines held
    # 0.5 GB more as GEOS objects while it ran.
    all_links = PackedLines(np.concatenate(links))
    del geom, links
    p_link, p_edge, p_a, p_b, p_flip = (np.concatenate(c) for c in zip(*pairs, strict=True))
    # Walked, not polygonized: the same blocks, and the block on each side of each link.
    polys, left, right = walked_faces(all_links)
    _loose_sides(all_links, polys, left, right)
    # A walk crosses a link exactly when it crosses the edge the link lies on: the network's own
    # index serves (a second tree of 2M links held 0.13 GB more at 1M nodes).
    streets = StreetTree(net.edge_tree) if net.edge_index is None else net.edge_index
    return StreetFaces(all_links, p_link, p_edge, p_a, p_b, p_flip, PackedPolygons(polys), left,
                       right, streets)


def _crossing_edges(net: WalkNetwork, geom: np.ndarray) -> np.ndarray:
    """Edges that meet another edge anywhere but at shared end nodes (they must be noded)."""
    n_coords = shapely.get_num_coordinates(geom)
    flagged = np.zeros(len(geom), dtype=bool)
    bent = np.flatnonzero(n_coords > 2)  # a straight segment is simple
    flagged[bent] = ~shapely.is_simple(geom[bent])
    a, b = shapely.STRtree(geom).query(geom)
    keep = a < b
    a, b = a[keep], b[keep]
    u, v = net.edge_u, net.edge_v
    shared = (u[a] == u[b]) | (u[a] == v[b]) | (v[a] == u[b]) | (v[a] == v[b])
    apart = ~shared
    hit = np.zeros(len(a), dtype=bool)
    hit[apart] = shapely.intersects(geom[a[apart]], geom[b[apart]])
    # Two straight segments from one node meet again only when they overlap; others, checked.
    two = n_coords == 2
    check = shared & ~(two[a] & two[b] & ~_collinear(net, a, b))
    check_idx = np.flatnonzero(check)
    hit[check_idx] = ~shapely.relate_pattern(geom[a[check_idx]], geom[b[check_idx]], "FF*F*****")
    flagged[a[hit]] = True
    flagged[b[hit]] = True
    return flagged


def _collinear(net: WalkNetwork, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether the straight edges ``a`` and ``b`` point along one line (within rounding)."""
    ax, ay = net.x[net.edge_v[a]] - net.x[net.edge_u[a]], net.y[net.edge_v[a]] - net.y[net.edge_u[a]]
    bx, by = net.x[net.edge_v[b]] - net.x[net.edge_u[b]], net.y[net.edge_v[b]] - net.y[net.edge_u[b]]
    cross = np.abs(ax * by - ay * bx)
    return cross <= 1e-9 * (np.hypot(ax, ay) * np.hypot(bx, by) + 1e-12)


def _parents(net: WalkNetwork, geom: np.ndarray, flagged: np.ndarray, cut: np.ndarray,
             first: int) -> tuple[np.ndarray, ...]:
    """Which flagged edge(s) each noded link lies on, and its stretch of each."""
    mid = shapely.line_interpolate_point(cut, 0.5, normalized=True)
    li, pi = shapely.STRtree(geom[flagged]).query(mid, predicate="dwithin", distance=_NEAR_M)
    edge = flagged[pi]
    start = shapely.get_point(cut[li], 0)
    end = shapely.get_point(cut[li], -1)
    on = ((shapely.distance(start, geom[edge]) <= _NEAR_M)
          & (shapely.distance(end, geom[edge]) <= _NEAR_M))
    li, edge, start, end = li[on], edge[on], start[on], end[on]
    scale = net.edge_length[edge] / np.maximum(shapely.length(geom[edge]), 1e-300)
    a = shapely.line_locate_point(geom[edge], start) * scale
    b = shapely.line_locate_point(geom[edge], end) * scale
    flip = a > b
    return first + li, edge, np.minimum(a, b), np.maximum(a, b), flip


def _loose_sides(links: PackedLines, polys: np.ndarray, left: np.ndarray,
                 right: np.ndarray) -> None:
    """Links that bound no face (dead ends, bridges between parts) lie inside one face or
    outside: give them that face on both sides."""
    loose = np.flatnonzero((left < 0) & (right < 0))
    if len(loose) and len(polys):
        mid = shapely.line_interpolate_point(links[loose], 0.5, normalized=True)
        pi, fi = shapely.STRtree(polys).query(mid, predicate="within")
        left[loose[pi]] = fi
        right[loose[pi]] = fi
