"""Dissolved areas and rings as polygons, from their grown regions and holes.

An area of :mod:`circles.engine.street_areas` is a grown region with holes strictly inside it,
so its polygon is the region's rings with the holes' rings added: no overlay of the city with
every block. A ring (5-10 minutes, say) is the larger area less the smaller one: the part of the
larger grown region beyond the smaller one, less the larger area's new holes, together with the
parts of the smaller area's holes that the larger one reaches. Only the holes that touch the
smaller region need an overlay; the rest are added as rings again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
import shapely

from .facility_areas import cores_less
from .packed_polygons import PackedPolygons, ranges
from .street_areas import AreaParts

__all__ = ["area_polygon", "parts_difference", "ring_polygons"]

_THREADS = 2
_TOUCH_M = 1e-6  # a hole this close to the smaller grown region is cut by an overlay
_NOISE_M2 = 1e-6  # pieces under a square millimetre: an overlay's noise where two edges coincide


def area_polygon(parts: AreaParts) -> shapely.Geometry:
    """The area as one (multi)polygon: the grown region with its holes."""
    return _with_holes(parts.grown, parts.holes)


def ring_polygons(levels: list[AreaParts]) -> np.ndarray:
    """The first area, then each area less the one before (the areas must nest).

    Parameters
    ----------
    levels
        The areas at increasing limits from the same sources.

    Returns
    -------
    numpy.ndarray
        One (multi)polygon per level; they do not overlap and together make the last area.

    """
    out = np.empty(len(levels), dtype=object)
    if not levels:
        return out
    with ThreadPoolExecutor(_THREADS) as pool:  # GEOS frees the GIL
        first = pool.submit(area_polygon, levels[0])
        out[1:] = list(pool.map(lambda pair: _ring(*pair), pairwise(levels)))
        out[0] = first.result()
    return out


def _ring(small: AreaParts, big: AreaParts) -> shapely.Geometry:
    """``big`` less ``small``, where ``small`` lies inside ``big``.

    A hole of the larger area lies in a block the smaller area already enclosed (it can only
    cut into the smaller area's holes) or in a new one (it is a hole of the part beyond the
    smaller region). The faces' labels tell which; without them every hole near the smaller
    region is treated as both, which gives the same ring, more slowly.
    """
    holes = big.holes
    labelled = big.hole_face is not None and small.enclosed is not None
    old = np.ones(len(holes), dtype=bool)
    if big.hole_face is not None and small.enclosed is not None:
        old = small.enclosed[big.hole_face]
    # Only a hole in a new block can meet the smaller region; without the labels, any may.
    ask = np.flatnonzero(~old) if labelled else np.arange(len(holes))
    near = np.zeros(len(holes), dtype=bool)
    if len(ask) and not shapely.is_empty(small.grown):
        tree = shapely.STRtree(holes[ask])
        near[ask[tree.query(shapely.get_parts(small.grown), predicate="dwithin",
                            distance=_TOUCH_M)[1]]] = True
        del tree
    if labelled:
        cut = near & ~old
    else:
        old = cut = near
    # A new block's core can touch the smaller region along a line (a street reached at the
    # smaller limit on one side of the block): those go into the one overlay, as holes of the
    # larger region (they lie strictly inside it), the rest are added after.
    beyond = parts_difference(_with_holes(big.grown, holes.take(cut)), small.grown)
    outer = _with_holes(beyond, holes.take(~old & ~near))
    reached = _hole_gains(small, big, np.flatnonzero(old))
    return _join(np.concatenate([shapely.get_parts(outer), reached]))


def parts_difference(a: shapely.Geometry, b: shapely.Geometry) -> shapely.Geometry:
    """``a`` less ``b``, part by part of ``a``: the same area as one overlay of the two.

    GEOS's overlay of two city-wide multipolygons slows much more than linearly with their size
    (a 1M-node city's 15-minute area less its 10-minute one: 33 s), while the parts of a grown
    region are small and disjoint: each part less the parts of ``b`` that meet it, all in one
    vectorized call, takes a tenth of that. The parts' results are disjoint as the parts are.

    Parameters
    ----------
    a, b
        (Multi)polygons whose parts are disjoint, in one metric CRS.

    Returns
    -------
    shapely.Geometry
        A polygon or multipolygon (empty when nothing is left), without the pieces under a
        square millimetre that coinciding edges leave.

    """
    mine, theirs = shapely.get_parts(a), shapely.get_parts(b)
    ai = bi = np.zeros(0, dtype=np.int64)
    if len(mine) and len(theirs):
        ai, bi = shapely.STRtree(theirs).query(mine, predicate="intersects")
    parts, _ = cores_less(mine, theirs, ai, bi, disjoint=True)
    return _join(parts[shapely.area(parts) >= _NOISE_M2])


def _points_tree(points: np.ndarray) -> shapely.STRtree:
    """An STRtree of points, to query with large polygons: each is prepared once, so testing
    many points against it is fast (the other way round tests each point against every vertex)."""
    return shapely.STRtree(points)


def _hole_gains(small: AreaParts, big: AreaParts, old: np.ndarray) -> np.ndarray:
    """The parts of the smaller area's holes that the larger area's holes ``old`` leave out
    (the larger area covers them)."""
    if len(small.holes) == 0:
        return np.zeros(0, dtype=object)
    # Most holes are the same block's core at both limits: nothing gained there. Those are
    # found on the packed coordinates, by the network face each hole's block holds.
    unchanged = np.zeros(len(small.holes), dtype=bool)
    matched = np.zeros(len(old), dtype=bool)
    if small.hole_face is not None and big.hole_face is not None and len(old):
        si, bk = _same_key_pairs(small.hole_face, big.hole_face[old])
        same = small.holes.same(si, big.holes, old[bk])
        unchanged[si[same]] = True
        matched[bk[same]] = True
    todo = np.flatnonzero(~unchanged)
    out = small.holes[todo]
    others = big.holes[old[~matched]]
    if len(others) and len(out):
        si, bi = shapely.STRtree(others).query(out, predicate="intersects")
        if len(si):
            order = np.lexsort((bi, si))
            si, bi = si[order], bi[order]
            here, dense = np.unique(si, return_inverse=True)
            cut = shapely.union_all(shapely.geometrycollections(others[bi], indices=dense)[:, None], axis=1)
            out[here] = shapely.difference(out[here], cut)
    parts = shapely.get_parts(out)
    return parts[shapely.area(parts) > 0]


def _same_key_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``(i, j)`` with ``a[i] == b[j]``."""
    order = np.argsort(b, kind="stable")
    lo = np.searchsorted(b[order], a)
    count = np.searchsorted(b[order], a, side="right") - lo
    i = np.repeat(np.arange(len(a)), count)
    j = order[ranges(lo, lo + count)]
    return i, j


def _with_holes(region: shapely.Geometry, holes: PackedPolygons) -> shapely.Geometry:
    """``region`` with each of ``holes`` (disjoint polygons, strictly inside it) cut out."""
    if len(holes) == 0 or shapely.is_empty(region):
        return region
    count = holes.ring_counts()
    simple = np.flatnonzero(count == 1)
    parts = shapely.get_parts(region)
    own, own_part = shapely.get_rings(parts, return_index=True)  # shells first, then holes
    hole_part = np.full(len(simple), -1, dtype=np.int64)
    if len(simple):
        corner = shapely.points(holes.first_points(simple))
        part, which = _points_tree(corner).query(parts, predicate="contains")
        hole_part[which] = part
        del corner
    placed = hole_part >= 0
    rings = np.concatenate([own, holes.exterior_rings(simple[placed])])
    index = np.concatenate([own_part, hole_part[placed]])
    rank = np.arange(len(rings))
    order = np.lexsort((rank, index))
    polys = shapely.polygons(rings[order], indices=index[order])
    del rings
    out = _join(polys)
    rest = holes[np.concatenate([np.flatnonzero(count > 1), simple[~placed]])]
    if len(rest):  # a hole with an island in it (or on the edge, by rounding): an overlay
        out = parts_difference(out, shapely.multipolygons(rest))
    return out


def _join(polys: np.ndarray) -> shapely.Geometry:
    """One geometry of disjoint polygons (an overlay may leave slivers of lower dimension)."""
    polys = polys[(shapely.get_type_id(polys) == shapely.GeometryType.POLYGON)
                  & ~shapely.is_empty(polys)]
    if len(polys) == 0:
        return shapely.Polygon()
    if len(polys) == 1:
        return polys[0]
    return shapely.multipolygons(polys)
