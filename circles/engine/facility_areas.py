"""One service area per facility from the network's faces, for hundreds of facilities at once.

Behind :mod:`circles.engine.street_buffers`: the same area as noding, polygonizing and buffering
each facility's reached streets (blocks nobody reaches stay holes), drawn the way
:mod:`circles.engine.street_areas` draws a dissolved area, for every facility together:

- a facility encloses a block when the streets it reaches whole cut the block off from the
  outside; the faces are the network's own (:mod:`circles.engine.street_faces`), and only those
  inside the bounding box of its whole streets can be enclosed, so one connected-components pass
  over the (facility, face) pairs in those boxes labels every facility's blocks;
- the enclosed region is polygonized from the streets between enclosed and open faces, grown by
  the buffer, with the buffers of the loose streets (dead ends, partly reached edges, the walk
  from the facility), less the blocks' cores: their precomputed inward buffers.

Everything is in the network CRS and in metres.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from .geos_threads import in_halves
from .network import WalkNetwork
from .street_faces import StreetFaces, faces_built, link_stretches, street_faces, whole_link_keys
from .street_pieces import ReachedPieces, edge_substrings

__all__ = ["built_faces", "cluster_union", "cores_less", "face_areas", "forget_index", "walks_fit"]

_QUAD_SEGS = 4  # as the street buffers: arcs drawn the same way give the same area
_EPS_M = 1e-9
_JOIN_M = 1e-6  # a walk's join point may miss its street by rounding, never by this
_BOX_M = 1e-6  # a face on the edge of a box of whole streets is inside it within rounding
_INDEX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def built_faces(net: WalkNetwork, n_pieces: int) -> StreetFaces | None:
    """The network's faces when they are already built or worth building for ``n_pieces``
    reached stretches (noding that many costs more than finding the faces of the network)."""
    if n_pieces >= net.n_edges or faces_built(net):
        return street_faces(net)
    return None


def walks_fit(faces: StreetFaces, group: np.ndarray, walks: np.ndarray, n_groups: int
              ) -> np.ndarray:
    """Whether each group's walks meet the streets and each other only where they join their
    streets (then they bound no block and the group's blocks are the network's faces merged).

    The join point is interpolated along the street, so it may miss it by rounding: the last
    micrometre of each walk is left out of the test.

    Parameters
    ----------
    faces
        The network's faces (their tree of the streets).
    group, walks
        Each walk (a two-point line from a source to its street) and its group.
    n_groups
        The number of groups.

    Returns
    -------
    numpy.ndarray
        One flag per group.

    """
    fit = np.ones(n_groups, dtype=bool)
    if len(walks) == 0:
        return fit
    ends = shapely.get_coordinates(walks).reshape(-1, 2, 2)
    step = ends[:, 1] - ends[:, 0]
    keep = np.minimum(_JOIN_M / np.maximum(np.hypot(*step.T), 1e-300), 0.5)
    short = shapely.linestrings(np.stack([ends[:, 0], ends[:, 1] - step * keep[:, None]], axis=1))
    fit[group[faces.streets.meeting(short)]] = False
    a, b = shapely.STRtree(short).query(short, predicate="intersects")
    fit[group[a[(a != b) & (group[a] == group[b])]]] = False
    return fit


def face_areas(net: WalkNetwork, faces: StreetFaces, pieces: ReachedPieces,
               walks: tuple[np.ndarray, np.ndarray], n_groups: int, r: float) -> np.ndarray:
    """Each group's buffered reached streets, from the network's faces.

    Parameters
    ----------
    net
        The walking network.
    faces
        Its faces.
    pieces
        The reached stretches, ``origin`` being the group (``0..n_groups-1``).
    walks
        The group of each walk from a source to its street, and the walks (they must fit the
        faces, :func:`walks_fit`).
    n_groups
        Number of groups.
    r
        The street buffer.

    Returns
    -------
    numpy.ndarray
        One (multi)polygon per group, empty where it reaches nothing.

    """
    zero = pieces.t1 <= pieces.t0
    # Pieces of zero length (a limit met exactly at a node) are points: buffered as discs.
    points = edge_substrings(net, pieces.edge[zero], pieces.t0[zero], pieces.t1[zero])
    st = link_stretches(faces, pieces.origin[~zero], pieces.edge[~zero], pieces.t0[~zero],
                    pieces.t1[~zero])
    whole = whole_link_keys(faces, st)
    lab = _Labels(faces, _index(net, faces), whole, n_groups)
    g_whole, l_whole = whole // len(faces.links), whole % len(faces.links)
    side_l = lab.of(g_whole, faces.left[l_whole])
    side_r = lab.of(g_whole, faces.right[l_whole])
    out_w = lab.outside[g_whole]
    boundary = (side_l == out_w) != (side_r == out_w)
    loose = side_l == side_r
    partial = ~_member(whole, st.group.astype(np.int64) * len(faces.links) + st.link)
    # The walks join the loose streets' chains, as noding all the lines together merges them.
    lines = np.concatenate([edge_substrings(net, faces.pair_edge[st.row[partial]], st.lo[partial],
                                            st.hi[partial]), faces.links[l_whole[loose]], walks[1]])
    chains, ch_group = _chains(lines, np.concatenate([st.group[partial], g_whole[loose],
                                                      walks[0]]))
    enclosed = _polygonized(faces.links[l_whole[boundary]], g_whole[boundary], n_groups)
    cores, c_group = _cores(faces, lab, r)
    return _assembled(enclosed, _Loose(chains, ch_group, points, pieces.origin[zero]), cores,
                      c_group, r)


@dataclass(frozen=True)
class _FaceIndex:
    """What labelling needs of a network's faces: their bounds and tree, each link's bounds,
    and the links around each face."""

    face_bounds: np.ndarray
    face_tree: shapely.STRtree
    link_bounds: np.ndarray
    face_links: sparse.csr_matrix


def forget_index(net: WalkNetwork) -> None:
    """Drop the network's face index (built again on next use)."""
    with _LOCK:
        _INDEX.pop(net, None)


def _index(net: WalkNetwork, faces: StreetFaces) -> _FaceIndex:
    """The network's :class:`_FaceIndex`, built on first use and kept with the network."""
    with _LOCK:  # the threads of one call share it
        found = _INDEX.get(net)
        if found is None:
            sides = np.concatenate([faces.left, faces.right])
            link = np.tile(np.arange(len(faces.links)), 2)
            on = sides >= 0
            inc = sparse.csr_matrix((np.ones(on.sum(), dtype=np.int8), (sides[on], link[on])),
                                    shape=(faces.n_faces, len(faces.links)))
            polys = faces.faces.all()  # the tree holds them while the index lives
            found = _FaceIndex(shapely.bounds(polys), shapely.STRtree(polys), faces.links.bounds(), inc)
            _INDEX[net] = found  # a network's faces never change once built
        return found


class _Labels:
    """The blocks of every group: (group, face) pairs joined across the links the group does
    not reach whole; each group's faces outside its box of whole links are its outside."""

    def __init__(self, faces: StreetFaces, index: _FaceIndex, whole: np.ndarray, n_groups: int
                 ) -> None:
        n_links, n_faces = len(faces.links), faces.n_faces
        self.n_faces = n_faces
        self.key = self._candidates(index, whole // n_links, whole % n_links)
        n = len(self.key)
        g, f = self.key // n_faces, self.key % n_faces
        # Every link around every candidate face, and the face across it.
        ptr = index.face_links.indptr
        deg = np.diff(ptr)[f]
        pos = np.repeat(ptr[f], deg) + np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
        link = index.face_links.indices[pos]
        gg = np.repeat(g, deg)
        a = np.repeat(np.arange(n), deg)
        is_whole = _member(whole, gg * n_links + link)
        here = np.repeat(f, deg)
        across = np.where(faces.left[link] == here, faces.right[link], faces.left[link])
        b = self._node(gg, across)
        graph = sparse.coo_matrix((np.ones((~is_whole).sum(), dtype=np.int8),
                                   (a[~is_whole], b[~is_whole])), shape=(n + n_groups,) * 2)
        _, self.labels = csgraph.connected_components(graph, directed=False)
        self.outside = self.labels[n + np.arange(n_groups)]
        self.inside = np.flatnonzero(self.labels[:n] != self.outside[g])

    def _candidates(self, index: _FaceIndex, g: np.ndarray, link: np.ndarray) -> np.ndarray:
        """``group * n_faces + face`` of the faces inside each group's box of whole links
        (no other face can be enclosed by them), sorted."""
        if len(g) == 0:
            return np.zeros(0, dtype=np.int64)
        here, first = np.unique(g, return_index=True)
        lb = index.link_bounds[link]
        box = np.column_stack([np.minimum.reduceat(lb[:, 0], first),
                               np.minimum.reduceat(lb[:, 1], first),
                               np.maximum.reduceat(lb[:, 2], first),
                               np.maximum.reduceat(lb[:, 3], first)])
        bi, fi = index.face_tree.query(shapely.box(*box.T))
        fb, bb = index.face_bounds[fi], box[bi]
        within = ((fb[:, :2] >= bb[:, :2] - _BOX_M).all(axis=1)
                  & (fb[:, 2:] <= bb[:, 2:] + _BOX_M).all(axis=1))
        return np.unique(here[bi[within]].astype(np.int64) * self.n_faces + fi[within])

    def _node(self, g: np.ndarray, face: np.ndarray) -> np.ndarray:
        """The graph node of each (group, face): its candidate pair, else the group's outside."""
        key = g.astype(np.int64) * self.n_faces + face
        hit = (face >= 0) & _member(self.key, key)
        return np.where(hit, np.searchsorted(self.key, key), len(self.key) + g)

    def of(self, g: np.ndarray, face: np.ndarray) -> np.ndarray:
        """The block (component) of each (group, face)."""
        return self.labels[self._node(g, face)]


def _member(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys``."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


def _polygonized(lines: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """The region each group's lines enclose (they bound its enclosed blocks on one side and
    the outside on the other, so every face they make is enclosed)."""
    out = np.array([shapely.Polygon()] * n_groups, dtype=object)
    if len(lines) == 0:
        return out
    order = np.argsort(group, kind="stable")
    here, dense = np.unique(group[order], return_inverse=True)
    made = shapely.polygonize(shapely.multilinestrings(lines[order], indices=dense)[:, None], axis=1)
    parts, which = shapely.get_parts(made, return_index=True)
    out[here[np.unique(which)]] = shapely.multipolygons(parts, indices=np.unique(
        which, return_inverse=True)[1])
    return out


def _cores(faces: StreetFaces, lab: _Labels, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Each enclosed block of each group shrunk by the buffer (a network face's own core, or
    the core of the faces merged across streets not reached whole), and its group."""
    key = lab.key[lab.inside]
    comp = lab.labels[lab.inside]
    size = np.bincount(comp)[comp]
    single = size == 1
    cores = [faces.cores(r)[key[single] % lab.n_faces]]
    group = [key[single] // lab.n_faces]
    if (~single).any():
        multi = np.flatnonzero(~single)
        multi = multi[np.argsort(comp[multi], kind="stable")]
        _, first, dense = np.unique(comp[multi], return_index=True, return_inverse=True)
        merged = shapely.coverage_union_all(shapely.geometrycollections(
            faces.faces[key[multi] % lab.n_faces], indices=dense)[:, None], axis=1)
        cores.append(shapely.buffer(merged, -r, quad_segs=_QUAD_SEGS))
        group.append(key[multi[first]] // lab.n_faces)
    out, out_group = np.concatenate(cores), np.concatenate(group)
    keep = ~shapely.is_empty(out)
    return out[keep], out_group[keep]


def _chains(lines: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each group's loose lines merged where they meet end to end (fewer buffers to union),
    and the chains' groups."""
    if len(lines) == 0:
        return lines, group
    order = np.argsort(group, kind="stable")
    here, dense = np.unique(group[order], return_inverse=True)
    merged = shapely.line_merge(shapely.multilinestrings(lines[order], indices=dense))
    chains, which = shapely.get_parts(merged, return_index=True)
    return chains, here[which]


def _same_group_pairs(a: np.ndarray, a_group: np.ndarray, b: np.ndarray, b_group: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of ``a`` and ``b`` in one group whose boxes meet (groups overlap in space, so
    the predicates are tested after the group filter, not inside the tree)."""
    ai, bi = shapely.STRtree(b).query(a)
    same = a_group[ai] == b_group[bi]
    return ai[same], bi[same]


@dataclass(frozen=True)
class _Loose:
    """Chains of streets and walks that bound no enclosed block, and the zero-length stretches
    (points), grouped."""

    chains: np.ndarray
    group: np.ndarray
    stray: np.ndarray
    stray_group: np.ndarray


def _assembled(enclosed: np.ndarray, loose: _Loose, cores: np.ndarray, c_group: np.ndarray,
               r: float) -> np.ndarray:
    """Each group's enclosed region grown by ``r`` with its loose buffers, less its cores
    outside those buffers.

    Within a block, a point is within ``r`` of the streets exactly when it is within ``r`` of
    the block's edge or of a loose line inside it. Every loose buffer is unioned, also those
    inside the blocks (as noding each group's streets did): where a dead end leaves a block's
    corner, its round end and the grown corner are drawn with different chords.
    """
    n = len(enclosed)
    buffers = shapely.buffer(np.concatenate([loose.chains, loose.stray]), r, quad_segs=_QUAD_SEGS)
    b_group = np.concatenate([loose.group, loose.stray_group])
    grown = shapely.buffer(enclosed, r, quad_segs=_QUAD_SEGS)
    extra = _grouped(buffers, b_group, n)
    has = ~shapely.is_empty(extra)
    grown[has] = shapely.union(grown[has], extra[has])
    holes, h_group = _holes(cores, c_group, buffers, b_group)
    return _cut_out(grown, holes, h_group)


def _cut_out(grown: np.ndarray, holes: np.ndarray, h_group: np.ndarray) -> np.ndarray:
    """Each group's grown region less its holes (disjoint, strictly inside it).

    A group's area is one polygon when its streets are connected (the usual case): its holes
    are then added as rings, no overlay; other groups, and holes with islands, are cut out.
    """
    one = shapely.get_type_id(grown) == shapely.GeometryType.POLYGON
    ring = one[h_group] & (shapely.get_num_interior_rings(holes) == 0)
    overlay = np.zeros(len(grown), dtype=bool)
    overlay[h_group[~ring]] = True
    add = ~overlay[h_group]
    here = np.unique(h_group[add])
    if len(here):
        own, own_index = shapely.get_rings(grown[here], return_index=True)  # shell, then holes
        rings = np.concatenate([own, shapely.get_exterior_ring(holes[add])])
        index = np.concatenate([own_index, np.searchsorted(here, h_group[add])])
        order = np.lexsort((np.arange(len(rings)), index))
        grown[here] = shapely.polygons(rings[order], indices=index[order])
    cut = _grouped(holes[~add], h_group[~add], len(grown), disjoint=True)
    has = ~shapely.is_empty(cut)
    grown[has] = shapely.difference(grown[has], cut[has])
    return grown


def _grouped(polys: np.ndarray, group: np.ndarray, n: int, *, disjoint: bool = False
             ) -> np.ndarray:
    """The union of each group's polygons (an empty polygon where none): overlapping ones are
    unioned cluster by cluster, ``disjoint`` ones only collected."""
    out = np.array([shapely.MultiPolygon()] * n, dtype=object)
    if len(polys) == 0:
        return out
    if not disjoint:
        polys, group = cluster_union(polys, group)
    parts, which = shapely.get_parts(polys, return_index=True)
    group = group[which]
    order = np.argsort(group, kind="stable")
    here, dense = np.unique(group[order], return_inverse=True)
    out[here] = shapely.multipolygons(parts[order], indices=dense)
    return out


def cluster_union(polys: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint polygons covering each group's union: only a group's polygons whose boxes meet
    are unioned.

    Parameters
    ----------
    polys, group
        Polygons and the group of each (a facility, or 0 for one dissolved area).

    Returns
    -------
    polys, group : numpy.ndarray
        The unions of the clusters (and the single polygons as they are), and their groups.

    """
    # Clusters of meeting boxes: testing which polygons meet costs more than the unions save.
    a, b = _same_group_pairs(polys, group, polys, group)
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(len(polys),) * 2)
    _, label = csgraph.connected_components(graph, directed=False)
    size = np.bincount(label)[label]
    alone = size == 1
    many = np.flatnonzero(~alone)
    if len(many) == 0:
        return polys, group
    many = many[np.argsort(label[many], kind="stable")]
    _, first, dense = np.unique(label[many], return_index=True, return_inverse=True)
    joined = in_halves(_union_each, shapely.geometrycollections(polys[many], indices=dense))
    return (np.concatenate([polys[alone], joined]),
            np.concatenate([group[alone], group[many[first]]]))


def _union_each(collections: np.ndarray) -> np.ndarray:
    """The union of each collection's parts."""
    return shapely.union_all(collections[:, None], axis=1)


def _holes(cores: np.ndarray, c_group: np.ndarray, buffers: np.ndarray, b_group: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """Each core less its group's loose buffers that reach into it, in parts of positive area
    (and their groups)."""
    if len(cores) == 0:
        return cores, c_group
    ci = bi = np.zeros(0, dtype=np.int64)
    if len(buffers):
        ci, bi = _same_group_pairs(cores, c_group, buffers, b_group)
        meet = shapely.intersects(cores[ci], buffers[bi])
        ci, bi = ci[meet], bi[meet]
    parts, which = cores_less(cores, buffers, ci, bi)
    return parts, c_group[which]


def cores_less(cores: np.ndarray, buffers: np.ndarray, ci: np.ndarray, bi: np.ndarray, *,
               disjoint: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Block cores less the buffers that reach into them, in parts of positive area.

    Parameters
    ----------
    cores, buffers
        Polygons.
    ci, bi
        The pairs (core, buffer) that meet.
    disjoint
        The buffers do not overlap (the parts of one multipolygon): each core's are gathered
        into a multipolygon instead of unioned.

    Returns
    -------
    parts, core : numpy.ndarray
        The parts left, and the core each came from.

    """
    cores = cores.copy()
    if len(ci):
        order = np.lexsort((bi, ci))
        ci, bi = ci[order], bi[order]
        here, dense = np.unique(ci, return_inverse=True)
        if disjoint:
            reach = shapely.multipolygons(buffers[bi], indices=dense)
        else:
            reach = shapely.union_all(shapely.geometrycollections(buffers[bi], indices=dense)[:, None], axis=1)
        cores[here] = in_halves(shapely.difference, cores[here], reach)
    parts, which = shapely.get_parts(cores, return_index=True)
    keep = shapely.area(parts) > 0
    return parts[keep], which[keep]
