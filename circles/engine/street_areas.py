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
from .facility_areas import cluster_union, cores_less, walks_fit
from .network import WalkNetwork
from .packed_polygons import PackedPolygons
from .street_faces import (
    StreetFaces,
    face_components,
    link_stretches,
    street_faces,
    whole_link_keys,
)
from .street_pieces import (
    ReachedNodes,
    edge_substrings,
    reached_pieces,
    source_walks,
)

__all__ = ["AreaParts", "dissolved_parts"]

_QUAD_SEGS = 4  # as the per-facility areas: arcs drawn the same way give the same area
_EPS_M = 1e-9
_THREADS = 2
_JOIN_M = 1e-6  # a walk's join point may miss its street by rounding, never by this
_CHUNK = 50_000  # block cores made into GEOS polygons at a time


@dataclass(frozen=True)
class AreaParts:
    """One dissolved area as a grown region and its holes.

    Attributes
    ----------
    grown : shapely.Geometry
        The enclosed blocks grown by the buffer, with the buffered loose streets (a polygon,
        multipolygon or an empty polygon).
    holes : PackedPolygons
        Polygons strictly inside ``grown``, disjoint: the parts of blocks farther than the
        buffer from every reached street. Packed: a 1M-node city's 15-minute area has some
        440,000, which held 0.2 GB as GEOS polygons for each limit.
    hole_face : numpy.ndarray or None
        A network face (:mod:`circles.engine.street_faces`) inside each hole's block, when the
        blocks came from labelling the network's faces.
    enclosed : numpy.ndarray or None
        Then also: whether each network face lies in an enclosed block.

    """

    grown: shapely.Geometry
    holes: PackedPolygons
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
        if walks_fit(faces, np.zeros(len(walks), dtype=np.int64), walks, 1)[0]:
            return _from_faces(net, faces, pieces.edge, pieces.t0, pieces.t1, walks,
                               buffer_metres)
        # A walk crosses a street or another walk: node everything, as for one facility.
        lines = np.concatenate([edge_substrings(net, pieces.edge, pieces.t0, pieces.t1), walks])
        return _from_lines(lines, buffer_metres)

    todo = [float(x) for x in np.asarray(limits, dtype=float)]
    if len(todo) < 2:
        return [level(x) for x in todo]
    # Side by side (GEOS and NumPy free the GIL): the rings are drawn after everything else of
    # a run, so one level at a time left a core idle (at 1M nodes both need 2.6 GB at most).
    with ThreadPoolExecutor(_THREADS) as pool:
        return list(pool.map(level, todo))


def _unique_lines(lines: np.ndarray) -> np.ndarray:
    """The lines without exact repeats (two facilities in one building walk the same way)."""
    if len(lines) < 2:
        return lines
    _, first = np.unique(shapely.to_wkb(lines), return_index=True)
    return lines[np.sort(first)]


def _from_faces(net: WalkNetwork, faces: StreetFaces, edge: np.ndarray, t0: np.ndarray,
                t1: np.ndarray, walks: np.ndarray, r: float) -> AreaParts:
    """The area of the reached stretches from the network's faces, labelled."""
    zero = t1 <= t0
    points = edge_substrings(net, edge[zero], t0[zero], t1[zero])
    st = link_stretches(faces, np.zeros(int((~zero).sum()), dtype=np.int64), edge[~zero], t0[~zero], t1[~zero])
    link, lo, hi, row = st.link, st.lo, st.hi, st.row
    whole = np.zeros(len(faces.links), dtype=bool)
    whole[whole_link_keys(faces, st)] = True  # one group: the keys are the links
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
    cores = _cores(faces, labels, inside, r)
    # The walks and the zero-length stretches are few: they count everywhere.
    stray = np.concatenate([walks, points])
    parts, which = _parts(enclosed, _Loose(chains, chain_out, stray), cores, r)
    return AreaParts(parts.grown, parts.holes, cores.face[which], inside)


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


def _polygonized(lines: np.ndarray) -> shapely.Geometry:
    """The region the lines enclose (they bound enclosed blocks on one side, the outside on the
    other, so every face they make is enclosed)."""
    if len(lines) == 0:
        return shapely.Polygon()
    return shapely.multipolygons(shapely.get_parts(shapely.polygonize(lines)))


@dataclass(frozen=True)
class _Cores:
    """Block cores: ``drawn`` as polygons, then the network faces ``single``'s own cores, left
    packed in ``packed`` until their turn (:func:`_holes`); ``face``: a network face in each
    core's block, in that order."""

    drawn: np.ndarray
    packed: PackedPolygons | None
    single: np.ndarray
    face: np.ndarray

    def __len__(self) -> int:
        return len(self.drawn) + len(self.single)

    def chunks(self):
        """The cores as polygons, a chunk at a time, in order."""
        if len(self.drawn):
            yield self.drawn
        if self.packed is None:
            return
        for k in range(0, len(self.single), _CHUNK):
            yield self.packed[self.single[k:k + _CHUNK]]


def _cores(faces: StreetFaces, labels: np.ndarray, inside: np.ndarray, r: float) -> _Cores:
    """Each enclosed block shrunk by the buffer (a network face's own core, or the core of the
    faces merged across streets not reached whole), and a network face in each."""
    face = np.flatnonzero(inside)
    comp = labels[face]
    size = np.bincount(comp)[comp]
    packed = faces.cores(r)
    single = face[size == 1]
    single = single[packed.ring_counts()[single] > 0]
    merged, owner = np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    multi = face[size > 1]
    if len(multi):
        multi = multi[np.argsort(labels[multi], kind="stable")]
        _, first, dense = np.unique(labels[multi], return_index=True, return_inverse=True)
        merged = shapely.buffer(shapely.coverage_union_all(
            shapely.geometrycollections(faces.faces[multi], indices=dense)[:, None], axis=1), -r,
            quad_segs=_QUAD_SEGS)
        keep = ~shapely.is_empty(merged)
        merged, owner = merged[keep], multi[first][keep]
    return _Cores(merged, packed, single, np.concatenate([owner, single]))


def _from_lines(lines: np.ndarray, r: float) -> AreaParts:
    """The area of any set of lines: noded and polygonized here (walks crossing streets)."""
    solid = shapely.length(lines) > 0
    empty = np.zeros(0, dtype=object)
    if not solid.any():
        none = _Cores(empty, None, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        return _parts(shapely.Polygon(), _Loose(empty, empty.astype(bool), lines), none, r)[0]
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
    cores = cores[~shapely.is_empty(cores)]
    return _parts(enclosed, _Loose(loose, ~within, lines[~solid]),
                  _Cores(cores, None, np.zeros(0, dtype=np.int64), np.zeros(len(cores), dtype=np.int64)), r)[0]


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


def _parts(enclosed: shapely.Geometry, loose: _Loose, cores: _Cores, r: float
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
    buffered = np.concatenate([chains[loose.outer], stray])
    extra = cluster_union(buffered, np.zeros(len(buffered), dtype=np.int64))[0]
    if len(extra):
        grown = _union_disjoint(grown, shapely.get_parts(extra))
    # A chain outside every block can still graze a core: where a block's edge turns inwards
    # the core's arc and the chain's round end are drawn with different chords.
    holes, which = _holes(cores, np.concatenate([chains, stray]))
    return AreaParts(grown, holes), which


def _union_disjoint(region: shapely.Geometry, extra: np.ndarray) -> shapely.Geometry:
    """``region`` (disjoint parts) with the polygons ``extra`` (disjoint), unioned group by
    group of parts and polygons that meet: at 1M nodes one overlay of the whole 15-minute
    region took 5 s and 0.4 GB on top; the groups' overlays, 2 s and 0.1 GB."""
    parts = shapely.get_parts(region)
    pi, ei = shapely.STRtree(extra).query(parts, predicate="intersects")
    n = len(parts) + len(extra)
    graph = sparse.coo_matrix((np.ones(len(pi), dtype=np.int8), (pi, len(parts) + ei)), shape=(n, n))
    _, label = csgraph.connected_components(graph, directed=False)
    mine, has_mine = _gathered(parts, label[:len(parts)], label.max() + 1)
    theirs, has_theirs = _gathered(extra, label[len(parts):], label.max() + 1)
    both = has_mine & has_theirs
    joined = np.concatenate([shapely.union(mine[both], theirs[both]), mine[has_mine & ~both],
                             theirs[has_theirs & ~both]])
    return shapely.multipolygons(shapely.get_parts(joined))


def _gathered(polys: np.ndarray, group: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One multipolygon of each group's polygons, and whether the group has any."""
    out = np.full(n, None, dtype=object)
    has = np.zeros(n, dtype=bool)
    if len(polys):
        order = np.argsort(group, kind="stable")
        here, dense = np.unique(group[order], return_inverse=True)
        out[here] = shapely.multipolygons(polys[order], indices=dense)
        has[here] = True
    return out, has


def _holes(cores: _Cores, buffers: np.ndarray) -> tuple[PackedPolygons, np.ndarray]:
    """Each core less the loose buffers that reach into it, in parts of positive area (and the
    core of each part), a chunk of cores at a time: only a chunk is ever GEOS polygons."""
    tree = shapely.STRtree(buffers) if len(buffers) else None
    out, which, done = [], [], 0
    for chunk in cores.chunks():
        ci = bi = np.zeros(0, dtype=np.int64)
        if tree is not None:
            ci, bi = tree.query(chunk, predicate="intersects")
        parts, of = cores_less(chunk, buffers, ci, bi)
        out.append(PackedPolygons(parts))
        which.append(of + done)
        done += len(chunk)
    if not out:
        return PackedPolygons(np.zeros(0, dtype=object)), np.zeros(0, dtype=np.int64)
    return PackedPolygons.concat(out), np.concatenate(which)
