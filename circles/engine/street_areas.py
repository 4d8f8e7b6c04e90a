"""Dissolved service areas at city scale: the streets within each limit of the nearest source.

Behind the dissolved tier areas and the rings of :mod:`circles.engine.isochrones`. The area is
the same as :mod:`circles.engine.street_buffers` draws for one group (the reached streets cut at
the limit, buffered, blocks nobody reaches kept as holes), computed so that its cost follows the
reached frontier rather than the whole reached city:

- the blocks (faces) come from labelling the network's faces, found once per network
  (:mod:`circles.engine.street_faces`), not from noding and polygonizing the reached streets;
- the loose streets (dead ends, partly reached edges, the walks from the sources) are buffered
  and unioned cluster by cluster, only where their buffers overlap;
- the unreached cores of the blocks become holes directly, not through one overlay of the whole
  city with every block.

The result of one limit is an :class:`AreaParts`: the grown region (the enclosed blocks and the
loose streets, buffered) and the holes inside it; :mod:`circles.engine.area_rings` turns them
into polygons and rings.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .anchors import Anchors
from .network import WalkNetwork
from .street_faces import StreetFaces, face_components, street_faces
from .street_pieces import (
    ReachedNodes,
    edge_substrings,
    merge_intervals,
    reached_pieces,
    source_walks,
)

__all__ = ["AreaParts", "dissolved_parts"]

_QUAD_SEGS = 4  # as the per-facility areas: arcs drawn the same way give the same area
_EPS_M = 1e-9
_THREADS = 2
_JOIN_M = 1e-6  # a walk's join point may miss its street by rounding, never by this


@dataclass(frozen=True)
class AreaParts:
    """One dissolved area as a grown region and its holes.

    Attributes
    ----------
    grown : shapely.Geometry
        The enclosed blocks grown by the buffer, with the buffered loose streets (a polygon,
        multipolygon or an empty polygon).
    holes : numpy.ndarray
        Polygons strictly inside ``grown``, disjoint: the parts of blocks farther than the
        buffer from every reached street.
    hole_face : numpy.ndarray or None
        A network face (:mod:`circles.engine.street_faces`) inside each hole's block, when the
        blocks came from labelling the network's faces.
    enclosed : numpy.ndarray or None
        Then also: whether each network face lies in an enclosed block.

    """

    grown: shapely.Geometry
    holes: np.ndarray
    hole_face: np.ndarray | None = None
    enclosed: np.ndarray | None = None


def dissolved_parts(net: WalkNetwork, dist: np.ndarray, limits: np.ndarray, sources: Anchors, *,
                    buffer_metres: float) -> list[AreaParts]:
    """The area within each limit of the nearest source, as :class:`AreaParts`.

    Parameters
    ----------
    net
        The walking network.
    dist
        Each node's walking metres to its nearest source (``inf`` beyond the largest limit).
    limits
        The limits in metres.
    sources
        The sources (their own edges' stretches and their walks to the street count).
    buffer_metres
        Half the street width drawn around each reached street.

    Returns
    -------
    list of AreaParts
        One per limit.

    """
    faces = street_faces(net)
    faces.cores(buffer_metres)  # built once, before the threads share them
    src = sources.subset(np.flatnonzero(sources.ok))
    node = np.flatnonzero(np.isfinite(dist))

    def level(limit: float) -> AreaParts:
        near = node[dist[node] <= limit]
        pieces = reached_pieces(net, ReachedNodes(np.zeros(len(near), dtype=np.int64), near,
                                                  dist[near]),
                                np.array([limit]), np.zeros(len(src), dtype=np.int64), src)
        _, walks = source_walks(net, src, np.full(len(src), limit))
        walks = _unique_lines(walks)
        if _walks_fit(faces, walks):
            return _from_faces(net, faces, pieces.edge, pieces.t0, pieces.t1, walks,
                               buffer_metres)
        # A walk crosses a street or another walk: node everything, as for one facility.
        lines = np.concatenate([edge_substrings(net, pieces.edge, pieces.t0, pieces.t1), walks])
        return _from_lines(lines, buffer_metres)

    todo = [float(x) for x in np.asarray(limits, dtype=float)]
    if len(todo) < 2:
        return [level(x) for x in todo]
    with ThreadPoolExecutor(_THREADS) as pool:  # GEOS and NumPy free the GIL
        return list(pool.map(level, todo))


def _unique_lines(lines: np.ndarray) -> np.ndarray:
    """The lines without exact repeats (two facilities in one building walk the same way)."""
    if len(lines) < 2:
        return lines
    _, first = np.unique(shapely.to_wkb(lines), return_index=True)
    return lines[np.sort(first)]


def _walks_fit(faces: StreetFaces, walks: np.ndarray) -> bool:
    """Whether every walk meets the streets and the other walks only where it joins its street.

    Then it bounds no block, and the blocks are the network's own faces merged. The join point
    is interpolated along the street, so it may miss the street by rounding: the last
    micrometre of each walk is left out of the test.
    """
    if len(walks) == 0:
        return True
    ends = shapely.get_coordinates(walks).reshape(-1, 2, 2)
    step = ends[:, 1] - ends[:, 0]
    length = np.hypot(*step.T)
    keep = np.minimum(_JOIN_M / np.maximum(length, 1e-300), 0.5)
    short = shapely.linestrings(np.stack([ends[:, 0], ends[:, 1] - step * keep[:, None]], axis=1))
    if len(faces.tree.query(short, predicate="intersects")[0]):
        return False
    a, b = shapely.STRtree(short).query(short, predicate="intersects")
    return bool((a == b).all())


def _from_faces(net: WalkNetwork, faces: StreetFaces, edge: np.ndarray, t0: np.ndarray,
                t1: np.ndarray, walks: np.ndarray, r: float) -> AreaParts:
    """The area of the reached stretches from the network's faces, labelled."""
    zero = t1 <= t0
    points = edge_substrings(net, edge[zero], t0[zero], t1[zero])
    link, lo, hi, row = _on_links(faces, edge[~zero], t0[~zero], t1[~zero])
    whole = _whole_links(faces, link, lo, hi, row)
    labels, outside = face_components(faces, whole)
    side_l = labels[np.where(faces.left < 0, faces.n_faces, faces.left)]
    side_r = labels[np.where(faces.right < 0, faces.n_faces, faces.right)]
    inside = labels[:faces.n_faces] != outside
    boundary = whole & ((side_l == outside) != (side_r == outside))
    loose_whole = whole & (side_l == side_r)
    partial = ~whole[link]
    lines = np.concatenate([edge_substrings(net, faces.pair_edge[row[partial]], lo[partial],
                                            hi[partial]), faces.links[loose_whole]])
    # A loose street lies in one enclosed block or outside them all; only the chains that reach
    # outside can widen the grown region (one may run out through a node on its edge).
    inner = np.concatenate([side_l[link[partial]], side_l[loose_whole]]) != outside
    chains, chain_out = _chains(lines, inner)
    enclosed = _polygonized(faces.links[boundary])
    cores, core_face = _cores(faces, labels, inside, r)
    # The walks and the zero-length stretches are few: they count everywhere.
    stray = np.concatenate([walks, points])
    parts, which = _parts(enclosed, _Loose(chains, chain_out, stray), cores, r)
    return AreaParts(parts.grown, parts.holes, core_face[which], inside)


def _chains(lines: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines merged where they meet end to end, and whether each chain has a line outside
    every enclosed block."""
    if len(lines) == 0:
        return lines, np.zeros(0, dtype=bool)
    chains = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(lines)))
    mid = shapely.line_interpolate_point(lines[~inner], 0.5, normalized=True)
    _, ci = shapely.STRtree(chains).query(mid, predicate="dwithin", distance=_JOIN_M)
    chain_out = np.zeros(len(chains), dtype=bool)
    chain_out[ci] = True
    return chains, chain_out


def _on_links(faces: StreetFaces, edge: np.ndarray, t0: np.ndarray, t1: np.ndarray
              ) -> tuple[np.ndarray, ...]:
    """Each reached stretch cut to the links of its edge: link, ``lo``, ``hi`` (edge metres)
    and the link-parent row."""
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
    return faces.pair_link[row[keep]], lo[keep], hi[keep], row[keep]


def _whole_links(faces: StreetFaces, link: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 row: np.ndarray) -> np.ndarray:
    """True for each link reached over its whole length (by one stretch or several together)."""
    whole = np.zeros(len(faces.links), dtype=bool)
    if len(link) == 0:
        return whole
    span = np.zeros(len(faces.links))
    np.maximum.at(span, faces.pair_link, faces.pair_b - faces.pair_a)
    # In link metres, so the stretches of two edges that overlap on a link merge too.
    a, b, flip = faces.pair_a[row], faces.pair_b[row], faces.pair_flip[row]
    key, s0, s1 = merge_intervals(link, np.where(flip, b - hi, lo - a), np.where(flip, b - lo, hi - a))
    full = (s0 <= _EPS_M) & (s1 >= span[key] - _EPS_M)
    whole[key[full]] = True
    return whole


def _polygonized(lines: np.ndarray) -> shapely.Geometry:
    """The region the lines enclose (they bound enclosed blocks on one side, the outside on the
    other, so every face they make is enclosed)."""
    if len(lines) == 0:
        return shapely.Polygon()
    return shapely.multipolygons(shapely.get_parts(shapely.polygonize(lines)))


def _cores(faces: StreetFaces, labels: np.ndarray, inside: np.ndarray, r: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Each enclosed block shrunk by the buffer (a network face's own core, or the core of the
    faces merged across streets not reached whole), and a network face in each."""
    face = np.flatnonzero(inside)
    comp = labels[face]
    size = np.bincount(comp)[comp]
    single = face[size == 1]
    cores = [faces.cores(r)[single]]
    owner = [single]
    multi = face[size > 1]
    if len(multi):
        multi = multi[np.argsort(labels[multi], kind="stable")]
        _, first, dense = np.unique(labels[multi], return_index=True, return_inverse=True)
        merged = shapely.coverage_union_all(
            shapely.geometrycollections(faces.faces[multi], indices=dense)[:, None], axis=1)
        cores.append(shapely.buffer(merged, -r, quad_segs=_QUAD_SEGS))
        owner.append(multi[first])
    out, out_face = np.concatenate(cores), np.concatenate(owner)
    keep = ~shapely.is_empty(out)
    return out[keep], out_face[keep]


def _from_lines(lines: np.ndarray, r: float) -> AreaParts:
    """The area of any set of lines: noded and polygonized here (walks crossing streets)."""
    solid = shapely.length(lines) > 0
    empty = np.zeros(0, dtype=object)
    if not solid.any():
        return _parts(shapely.Polygon(), _Loose(empty, empty.astype(bool), lines), empty, r)[0]
    noded = shapely.union_all(lines[solid])
    faces, cuts, dangles, rings = shapely.polygonize_full([noded])
    f_parts = shapely.get_parts(faces)
    enclosed = shapely.coverage_union_all(f_parts) if len(f_parts) else shapely.Polygon()
    loose = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(np.concatenate(
        [shapely.get_parts(g) for g in (cuts, dangles, rings)]))))
    within = np.zeros(len(loose), dtype=bool)
    if len(loose) and len(f_parts):
        shapely.prepare(enclosed)
        within = shapely.within(loose, enclosed)
    cores = shapely.buffer(f_parts, -r, quad_segs=_QUAD_SEGS)
    return _parts(enclosed, _Loose(loose, ~within, lines[~solid]), cores[~shapely.is_empty(cores)],
                  r)[0]


@dataclass(frozen=True)
class _Loose:
    """Chains of streets that bound no enclosed block, and the few stray lines and points.

    ``outer`` marks the chains that reach outside every block (the others cannot widen the
    grown region); the stray ones (the walks from the sources, zero-length stretches) count
    everywhere.
    """

    chains: np.ndarray
    outer: np.ndarray
    stray: np.ndarray


def _parts(enclosed: shapely.Geometry, loose: _Loose, cores: np.ndarray, r: float
           ) -> tuple[AreaParts, np.ndarray]:
    """Grown region and holes from the enclosed blocks, the loose lines and the block cores
    (and the core each hole comes from).

    Within a block, a point is within ``r`` of the streets exactly when it is within ``r`` of the
    block's edge or of a loose line inside it; so the area is the enclosed region grown by ``r``
    with the loose lines' buffers, less each block's core outside those buffers.
    """
    chains = shapely.buffer(loose.chains, r, quad_segs=_QUAD_SEGS)
    stray = shapely.buffer(loose.stray, r, quad_segs=_QUAD_SEGS)
    grown = shapely.buffer(enclosed, r, quad_segs=_QUAD_SEGS)
    extra = _cluster_union(np.concatenate([chains[loose.outer], stray]))
    if len(extra):
        grown = shapely.union(grown, shapely.multipolygons(shapely.get_parts(extra)))
    # A chain outside every block can still graze a core: where a block's edge turns inwards
    # the core's arc and the chain's round end are drawn with different chords.
    holes, which = _holes(cores, np.concatenate([chains, stray]))
    return AreaParts(grown, holes), which


def _cluster_union(polys: np.ndarray) -> np.ndarray:
    """Disjoint polygons covering the union of ``polys``: only overlapping ones are unioned."""
    if len(polys) < 2:
        return polys
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(polys),) * 2)
    _, label = csgraph.connected_components(graph, directed=False)
    size = np.bincount(label)[label]
    alone = polys[size == 1]
    group = np.flatnonzero(size > 1)
    if len(group) == 0:
        return alone
    order = group[np.argsort(label[group], kind="stable")]
    _, dense = np.unique(label[order], return_inverse=True)
    joined = shapely.union_all(shapely.geometrycollections(polys[order], indices=dense)[:, None],
                               axis=1)
    return np.concatenate([alone, joined])


def _holes(cores: np.ndarray, buffers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each core less the loose buffers that reach into it, in parts of positive area (and the
    core of each part)."""
    if len(cores) == 0:
        return cores, np.zeros(0, dtype=np.int64)
    cores = cores.copy()
    if len(buffers):
        ci, bi = shapely.STRtree(buffers).query(cores, predicate="intersects")
        if len(ci):
            order = np.lexsort((bi, ci))
            ci, bi = ci[order], bi[order]
            here, dense = np.unique(ci, return_inverse=True)
            reach = shapely.union_all(shapely.geometrycollections(buffers[bi], indices=dense)[:, None],
                                      axis=1)
            cores[here] = shapely.difference(cores[here], reach)
    parts, which = shapely.get_parts(cores, return_index=True)
    keep = shapely.area(parts) > 0
    return parts[keep], which[keep]
