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
    near = np.zeros(len(holes), dtype=bool)
    if len(holes) and not shapely.is_empty(small.grown):
        tree = shapely.STRtree(holes)
        near[tree.query(shapely.get_parts(small.grown), predicate="dwithin",
                        distance=_TOUCH_M)[1]] = True
    if big.hole_face is not None and small.enclosed is not None:
        old = small.enclosed[big.hole_face]
        cut = near & ~old
    else:
        old = cut = near
    # A new block's core can touch the smaller region along a line (a street reached at the
    # smaller limit on one side of the block): those go into the one overlay, as holes of the
    # larger region (they lie strictly inside it), the rest are added after.
    beyond = parts_difference(_with_holes(big.grown, holes[cut]), small.grown)
    outer = _with_holes(beyond, holes[~old & ~near])
    reached = _hole_gains(small.holes, holes[old])
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


def _hole_gains(small_holes: np.ndarray, big_holes: np.ndarray) -> np.ndarray:
    """The parts of the smaller area's holes that the larger area covers."""
    if len(small_holes) == 0:
        return small_holes
    si, bi = shapely.STRtree(big_holes).query(small_holes, predicate="intersects") if len(
        big_holes) else (np.zeros(0, dtype=np.int64),) * 2
    # Most holes are the same block's core at both limits: nothing gained there.
    same = shapely.equals_exact(small_holes[si], big_holes[bi], 0.0)
    count = np.bincount(si, minlength=len(small_holes))
    unchanged = np.zeros(len(small_holes), dtype=bool)
    unchanged[si[same & (count[si] == 1)]] = True
    todo = np.flatnonzero(~unchanged)
    out = small_holes[todo].copy()
    pick = np.isin(si, todo)
    if pick.any():
        order = np.lexsort((bi[pick], si[pick]))
        s_sel, b_sel = si[pick][order], bi[pick][order]
        here, dense = np.unique(s_sel, return_inverse=True)
        cut = shapely.union_all(shapely.geometrycollections(big_holes[b_sel], indices=dense)[:, None],
                                axis=1)
        pos = np.searchsorted(todo, here)
        out[pos] = shapely.difference(out[pos], cut)
    parts = shapely.get_parts(out)
    return parts[shapely.area(parts) > 0]


def _with_holes(region: shapely.Geometry, holes: np.ndarray) -> shapely.Geometry:
    """``region`` with each of ``holes`` (disjoint, strictly inside it) cut out."""
    if len(holes) == 0 or shapely.is_empty(region):
        return region
    simple = shapely.get_num_interior_rings(holes) == 0
    parts = shapely.get_parts(region)
    own, own_part = shapely.get_rings(parts, return_index=True)  # shells first, then holes
    add = holes[simple]
    hole_part = np.full(len(add), -1, dtype=np.int64)
    if len(add):
        corner = shapely.get_point(shapely.get_exterior_ring(add), 0)
        part, which = _points_tree(corner).query(parts, predicate="contains")
        hole_part[which] = part
    placed = hole_part >= 0
    rings = np.concatenate([own, shapely.get_exterior_ring(add[placed])])
    index = np.concatenate([own_part, hole_part[placed]])
    rank = np.arange(len(rings))
    order = np.lexsort((rank, index))
    polys = shapely.polygons(rings[order], indices=index[order])
    out = _join(polys)
    rest = np.concatenate([holes[~simple], add[~placed]])
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
