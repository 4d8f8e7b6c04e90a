"""The faces of a noded street network, found by walking around its blocks (no polygonize).

Every link of a noded network has two sides. Leaving each node, the links are sorted by the
direction they set off in; walking along a link with the block on the left, the next link of
that block is the one that leaves the far node next clockwise from the way back. Following
that rule from every side of every link traces every block's boundary once: the cycles of one
permutation of the links' sides, found in one connected-components pass. A cycle that winds
counter-clockwise is a block; one that winds clockwise is the outline of a group of blocks,
which is a hole in the block around it (or the outside).

The blocks are GEOS's polygonize of the same links (tests compare the two), in a fraction of
its time, and the walk gives, for free, the block on each side of each link. A link with the
same cycle on both sides (a dead end, or a bridge between two groups of blocks) bounds no
block: the walk is repeated without those links, as polygonize leaves them out. The rare
boundary that touches itself at a node is drawn by polygonize, from that boundary's links only.
"""

from __future__ import annotations

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from ..readers.linework_arrays import codes, position_key
from .packed_polygons import PackedLines

__all__ = ["walked_faces"]


def walked_faces(links: PackedLines) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bounded faces of noded lines, and the face on each side of each line.

    Parameters
    ----------
    links
        LineStrings that meet only at their ends (noded), packed: the walk reads their
        coordinates, and only the few lines of a boundary that touches itself are made again.

    Returns
    -------
    faces : numpy.ndarray
        The bounded faces, polygons with their holes, shells clockwise as polygonize draws them.
    left, right : numpy.ndarray
        The face on each side of each link (``-1``: the outside, or a link that bounds no face:
        a dead end, a bridge, a line of zero length).

    """
    n = len(links)
    left = np.full(n, -1, dtype=np.int64)
    right = np.full(n, -1, dtype=np.int64)
    ends = _link_ends(links)
    live = np.flatnonzero(ends.ok)
    walk = _Walk(ends, live)
    bounding = walk.cycle[0::2] != walk.cycle[1::2]
    if not bounding.all():  # dead ends and bridges bound no face: walk again without them
        live, order = live[bounding], walk.order
        del walk  # only its order is used again: the rest is let go before the second walk
        walk = _Walk(ends, live, earlier_order=order, keep=bounding)
    faces, face_of = _faces(links, ends, walk)
    left[live] = face_of[walk.cycle[0::2]]
    right[live] = face_of[walk.cycle[1::2]]
    return faces, left, right


class _Ends:
    """Each link's coordinates range, end nodes and leaving directions at both ends."""

    def __init__(self, coords: np.ndarray, first: np.ndarray, last: np.ndarray, ok: np.ndarray,
                 out_a: np.ndarray, out_b: np.ndarray) -> None:
        self.coords, self.first, self.last, self.ok = coords, first, last, ok
        self.out_a, self.out_b = out_a, out_b  # angle leaving the first / the last point
        node, _ = codes(position_key(np.concatenate([coords[first], coords[last]]), decimals=None))
        self.node_a, self.node_b = node[:len(first)], node[len(first):]
        x, y = coords[:, 0] - coords[:, 0].mean(), coords[:, 1] - coords[:, 1].mean()
        cross = np.zeros(len(coords))
        cross[:-1] = x[:-1] * y[1:] - x[1:] * y[:-1]
        cross[last] = 0.0  # no segment from a link's last point to the next link's first
        total = np.concatenate([[0.0], np.cumsum(cross)])
        self.twice_area = total[last] - total[first]  # of the link walked forwards


def _link_ends(links: PackedLines) -> _Ends:
    coords, idx = links.coordinates()
    k = np.arange(len(links))
    first = np.searchsorted(idx, k)
    last = np.searchsorted(idx, k, side="right") - 1
    moves = np.flatnonzero((idx[1:] == idx[:-1]) & np.any(coords[1:] != coords[:-1], axis=1))
    owner = idx[moves]
    ok = np.zeros(len(links), dtype=bool)
    ok[owner] = True
    head = np.full(len(links), -1)
    tail = np.full(len(links), -1)
    head[owner[::-1]] = moves[::-1]  # the first move of each link
    tail[owner] = moves  # the last
    d_a = coords[np.maximum(head, 0) + 1] - coords[np.maximum(head, 0)]
    d_b = coords[np.maximum(tail, 0)] - coords[np.maximum(tail, 0) + 1]
    return _Ends(coords, np.minimum(first, len(coords) - 1), np.maximum(last, 0), ok,
                 np.arctan2(d_a[:, 1], d_a[:, 0]), np.arctan2(d_b[:, 1], d_b[:, 0]))


class _Walk:
    """The cycles of the sides of the ``live`` links (side ``2i`` runs along link ``live[i]``
    forwards, ``2i + 1`` backwards), each cycle's doubled signed area and the next side.

    ``order`` (the sides sorted by node, then direction) is sorted here, or, for a walk of
    fewer links, taken from an earlier walk: leaving out links keeps the others' order.
    """

    order: np.ndarray

    def __init__(self, ends: _Ends, live: np.ndarray, *, earlier_order: np.ndarray | None = None,
                 keep: np.ndarray | None = None) -> None:
        m = len(live)
        origin = np.empty(2 * m, dtype=np.int64)
        origin[0::2], origin[1::2] = ends.node_a[live], ends.node_b[live]
        if earlier_order is None or keep is None:
            angle = np.empty(2 * m)
            angle[0::2], angle[1::2] = ends.out_a[live], ends.out_b[live]
            order = np.lexsort((angle, origin))
        else:
            kept = np.repeat(keep, 2)
            order = (np.cumsum(kept) - 1)[earlier_order[kept[earlier_order]]]
        self.order = order
        rank = np.empty(2 * m, dtype=np.int64)
        rank[order] = np.arange(2 * m)
        group_first = np.searchsorted(origin[order], origin[order], side="left")
        group_last = np.searchsorted(origin[order], origin[order], side="right") - 1
        # The side leaving the far node next clockwise from the way back (the one before it).
        r = rank[np.arange(2 * m) ^ 1]
        self.next = order[np.where(r == group_first[r], group_last[r], r - 1)]
        self.origin = origin
        graph = sparse.coo_matrix((np.ones(2 * m, dtype=np.int8), (np.arange(2 * m), self.next)),
                                  shape=(2 * m, 2 * m))
        self.n_cycles, self.cycle = csgraph.connected_components(graph, directed=True,
                                                                 connection="weak")
        signed = np.empty(2 * m)
        signed[0::2], signed[1::2] = ends.twice_area[live], -ends.twice_area[live]
        self.twice_area = np.bincount(self.cycle, weights=signed, minlength=self.n_cycles)
        self.live = live

def _faces(links: PackedLines, ends: _Ends, walk: _Walk) -> tuple[np.ndarray, np.ndarray]:
    """The bounded faces, and the face of each cycle (for a clockwise one, the face it is a
    hole of, or ``-1`` for the outside)."""
    pinched = _pinched(walk)
    bounded = walk.twice_area > 0
    plain = np.flatnonzero(bounded & ~pinched)
    odd = np.flatnonzero(bounded & pinched)
    rings = _rings(ends, walk, ~pinched)
    odd_faces = _pinched_faces(links, walk, odd)
    shells = np.concatenate([rings[plain], shapely.get_exterior_ring(odd_faces)])
    face_of = np.full(walk.n_cycles, -1, dtype=np.int64)
    face_of[np.concatenate([plain, odd])] = np.arange(len(shells))
    holes = np.flatnonzero(~bounded)
    outlines = shapely.polygons(shells)
    face_of[holes] = _around(outlines, _a_point(ends, walk, holes))
    holes = holes[face_of[holes] >= 0]
    # The pinched faces keep the holes polygonize gave them; the others get their cycles'.
    odd_rings, odd_index = shapely.get_rings(odd_faces, return_index=True)
    inner = np.ones(len(odd_rings), dtype=bool)
    inner[np.unique(odd_index, return_index=True)[1]] = False
    island_rings, island = _pinched_holes(links, walk, holes[pinched[holes]])
    plain_holes = holes[~pinched[holes]]
    ring = np.concatenate([odd_rings[inner], rings[plain_holes], island_rings])
    face = np.concatenate([len(plain) + odd_index[inner], face_of[plain_holes], face_of[island]])
    # Only the faces with holes are drawn again; most blocks are their outline.
    holed = np.unique(face)
    ring = np.concatenate([shells[holed], ring])
    face = np.concatenate([holed, face])
    order = np.argsort(face, kind="stable")  # each face's shell first, then its holes
    outlines[holed] = shapely.polygons(ring[order], indices=np.searchsorted(holed, face[order]))
    return outlines, face_of


def _pinched(walk: _Walk) -> np.ndarray:
    """Whether each cycle passes through a node twice (its boundary touches itself there)."""
    key = walk.cycle.astype(np.int64) * (int(walk.origin.max(initial=0)) + 1) + walk.origin
    found, count = np.unique(key, return_counts=True)
    out = np.zeros(walk.n_cycles, dtype=bool)
    out[found[count > 1] // (int(walk.origin.max(initial=0)) + 1)] = True
    return out


def _rings(ends: _Ends, walk: _Walk, want: np.ndarray) -> np.ndarray:
    """Each wanted cycle's ring, drawn against the walk (blocks clockwise, as polygonize draws
    them; outlines of groups of blocks counter-clockwise), else ``None``."""
    out = np.full(walk.n_cycles, None, dtype=object)
    side = np.flatnonzero(want[walk.cycle])
    if len(side) == 0:
        return out
    side = side[np.lexsort((-_positions(walk)[side], walk.cycle[side]))]
    link = walk.live[side // 2]
    backward = side % 2 == 0  # each side walked the other way
    start = np.where(backward, ends.last[link], ends.first[link])
    step = np.where(backward, -1, 1)
    count = ends.last[link] - ends.first[link]  # each side's points but its last
    offset = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    points = ends.coords[np.repeat(start, count) + np.repeat(step, count) * offset]
    cycle = np.repeat(walk.cycle[side], count)
    here, dense = np.unique(cycle, return_inverse=True)
    out[here] = shapely.linearrings(points, indices=dense)
    return out


def _positions(walk: _Walk) -> np.ndarray:
    """Each side's place in its cycle, counted from the cycle's first side (pointer jumping:
    a few passes over the arrays, however long the cycles)."""
    m = len(walk.next)
    head = np.full(walk.n_cycles, m, dtype=np.int64)
    np.minimum.at(head, walk.cycle, np.arange(m))
    is_head = np.zeros(m, dtype=bool)
    is_head[head] = True
    jump = np.where(is_head[walk.next], -1, walk.next)
    to_end = (jump >= 0).astype(np.int64)
    active = np.flatnonzero(jump >= 0)
    while len(active):
        to_end[active] += to_end[jump[active]]
        jump[active] = jump[jump[active]]
        active = active[jump[active] >= 0]
    return np.bincount(walk.cycle, minlength=walk.n_cycles)[walk.cycle] - 1 - to_end


def _a_point(ends: _Ends, walk: _Walk, cycles: np.ndarray) -> np.ndarray:
    """A point on each of ``cycles`` (where its first side sets off)."""
    first = np.empty(walk.n_cycles, dtype=np.int64)
    sides = np.arange(len(walk.next))
    first[walk.cycle[::-1]] = sides[::-1]
    side = first[cycles]
    link = walk.live[side // 2]
    at = np.where(side % 2 == 0, ends.first[link], ends.last[link])
    return shapely.points(ends.coords[at])


def _around(outlines: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The smallest of ``outlines`` around each point (``-1`` where none is)."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(outlines) == 0:
        return out
    pi, fi = shapely.STRtree(outlines).query(points, predicate="within")
    order = np.lexsort((shapely.area(outlines)[fi], pi))
    pi, fi = pi[order], fi[order]
    first = np.ones(len(pi), dtype=bool)
    first[1:] = pi[1:] != pi[:-1]
    out[pi[first]] = fi[first]
    return out


def _cycle_links(links: PackedLines, walk: _Walk, cycles: np.ndarray) -> list[np.ndarray]:
    """The links along each of ``cycles``."""
    side = np.flatnonzero(np.isin(walk.cycle, cycles))
    side = side[np.argsort(walk.cycle[side], kind="stable")]
    cut = np.flatnonzero(np.diff(walk.cycle[side])) + 1
    return [links[np.unique(walk.live[group // 2])] for group in np.split(side, cut)
            ] if len(side) else []


def _pinched_faces(links: PackedLines, walk: _Walk, cycles: np.ndarray) -> np.ndarray:
    """The face of each counter-clockwise cycle that touches itself, as polygonize draws it
    from the cycle's own links (with the holes the touching makes)."""
    out = np.empty(len(cycles), dtype=object)
    order = np.argsort(cycles)
    for k, group in zip(order, _cycle_links(links, walk, cycles[order]), strict=True):
        polys = shapely.get_parts(shapely.polygonize(group))
        out[k] = polys[np.argmin(np.abs(shapely.area(polys) - walk.twice_area[cycles[k]] / 2))]
    return out


def _pinched_holes(links: PackedLines, walk: _Walk, cycles: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The hole rings of each clockwise cycle that touches itself (the outlines of its blocks,
    merged), and the cycle of each."""
    rings, owner = [], []
    order = np.argsort(cycles)
    for k, group in zip(order, _cycle_links(links, walk, cycles[order]), strict=True):
        merged = shapely.get_parts(shapely.union_all(shapely.get_parts(shapely.polygonize(group))))
        rings.append(shapely.reverse(shapely.get_exterior_ring(merged)))
        owner.append(np.full(len(merged), cycles[k]))
    if not rings:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64)
    return np.concatenate(rings), np.concatenate(owner)
