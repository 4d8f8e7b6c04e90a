"""Polygons and lines kept as one coordinate array, made into GEOS objects only when asked for.

A GEOS polygon costs some 400 bytes beside its coordinates: a 1M-node city's 928,000 street
faces held 0.36 GB as polygons and 0.08 GB packed. The faces are read whole only to build their
cores and the per-facility index, and in small subsets (blocks merged across a partly reached
street) for each area. The links of the noded streets (two million at 1M nodes) are kept the
same way: each area asks for the few thousand its streets' buffers are made of.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["PackedLines", "PackedPolygons", "ranges"]


class PackedPolygons:
    """Polygons and multi-polygons (with their holes) as coordinates and offsets
    (``shapely.to_ragged_array``).

    ``packed[idx]`` (an index array, a mask or a slice) gives a NumPy array of new geometries,
    with the same coordinates and types, in the same order; ``len(packed)`` counts them.

    Parameters
    ----------
    polygons
        Polygons or multi-polygons (empty ones allowed), in one CRS.

    """

    def __init__(self, polygons: np.ndarray) -> None:
        polygons = np.asarray(polygons, dtype=object)
        self._n = len(polygons)
        self._coords = np.zeros((0, 2))
        self._ring_start = self._part_start = np.zeros(1, dtype=np.int64)
        self._multi_start = np.arange(self._n + 1)  # a polygon is one part
        self._single = np.ones(self._n, dtype=bool)
        if self._n:
            kind, self._coords, offsets = shapely.to_ragged_array(polygons)
            if kind == shapely.GeometryType.MULTIPOLYGON:
                self._ring_start, self._part_start, self._multi_start = offsets
                self._single = shapely.get_type_id(polygons) == shapely.GeometryType.POLYGON
            else:
                self._ring_start, self._part_start = offsets

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, idx) -> np.ndarray:
        which = np.arange(self._n)[idx]
        out = np.empty(len(which), dtype=object)
        single = self._single[which]
        rings_of = self._part_start[self._multi_start[which + 1]] - self._part_start[self._multi_start[which]]
        empty = rings_of == 0  # made apart: GEOS takes no part without a ring
        out[empty & single] = shapely.Polygon()
        out[empty & ~single] = shapely.MultiPolygon()
        full = which[~empty]
        if len(full) == 0:
            return out
        if self._single.all():  # polygons only (the faces): no multi-polygon to make and take apart
            coords, offsets = _take([self._part_start, self._ring_start], full)
            out[~empty] = shapely.from_ragged_array(shapely.GeometryType.POLYGON, self._coords[coords], offsets)
            return out
        coords, offsets = _take([self._multi_start, self._part_start, self._ring_start], full)
        made = shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, self._coords[coords], offsets)
        one = self._single[full]
        made[one] = shapely.get_geometry(made[one], 0)  # a polygon given, a polygon back
        out[~empty] = made
        return out

    def all(self) -> np.ndarray:
        """Every polygon, as a new array."""
        return self[:]

    @classmethod
    def _of(cls, coords: np.ndarray, ring_start: np.ndarray, part_start: np.ndarray,
            multi_start: np.ndarray, single: np.ndarray) -> PackedPolygons:
        out = cls.__new__(cls)
        out._n, out._coords, out._single = len(single), coords, single
        out._ring_start, out._part_start, out._multi_start = ring_start, part_start, multi_start
        return out

    def take(self, idx) -> PackedPolygons:
        """The items ``idx`` (an index array, a mask or a slice), still packed."""
        which = np.arange(self._n)[idx]
        rows, (ring, part, multi) = _take([self._multi_start, self._part_start, self._ring_start], which)
        return PackedPolygons._of(self._coords[rows], ring, part, multi, self._single[which])

    @staticmethod
    def concat(items: list[PackedPolygons]) -> PackedPolygons:
        """The items of each in turn, in one packing."""
        if not items:
            return PackedPolygons(np.zeros(0, dtype=object))

        def joined(level: str, counted: list[int]) -> np.ndarray:
            base = np.cumsum([0, *counted[:-1]])
            return np.concatenate([[0]] + [getattr(p, level)[1:] + b for p, b in zip(items, base, strict=True)])

        return PackedPolygons._of(np.concatenate([p._coords for p in items]),
                                  joined("_ring_start", [len(p._coords) for p in items]),
                                  joined("_part_start", [len(p._ring_start) - 1 for p in items]),
                                  joined("_multi_start", [len(p._part_start) - 1 for p in items]),
                                  np.concatenate([p._single for p in items]))

    def ring_counts(self) -> np.ndarray:
        """Each item's number of rings (shells and holes of all its parts; 0 when empty)."""
        return self._part_start[self._multi_start[1:]] - self._part_start[self._multi_start[:-1]]

    def _shell_rows(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The coordinate rows of the first shell of the items ``which`` (each non-empty), and
        their offsets."""
        ring = self._part_start[self._multi_start[which]]
        return _take([self._ring_start], ring)[0], self._ring_start[ring + 1] - self._ring_start[ring]

    def exterior_rings(self, idx) -> np.ndarray:
        """The shells of the polygons ``idx`` (each non-empty, one part) as LinearRings."""
        which = np.arange(self._n)[idx]
        if len(which) == 0:
            return np.empty(0, dtype=object)
        rows, size = self._shell_rows(which)
        return shapely.linearrings(self._coords[rows], indices=np.repeat(np.arange(len(which)), size))

    def first_points(self, idx) -> np.ndarray:
        """Each item's first coordinate (of its first shell; each non-empty), as ``(n, 2)``."""
        which = np.arange(self._n)[idx]
        return self._coords[self._ring_start[self._part_start[self._multi_start[which]]]]

    def same(self, mine: np.ndarray, other: PackedPolygons, theirs: np.ndarray) -> np.ndarray:
        """Whether item ``mine[k]`` has exactly the coordinates, rings and parts of
        ``other``'s item ``theirs[k]`` (as ``shapely.equals_exact`` with no tolerance)."""
        a, b = self.take(mine), other.take(theirs)
        same = ((np.diff(a._multi_start) == np.diff(b._multi_start)) & (a.ring_counts() == b.ring_counts())
                & (_sizes(a) == _sizes(b)) & (a._single == b._single))
        a, b = a.take(same), b.take(same)
        # Now the parts and rings of the two line up one to one; where their sizes do, the rows too.
        part_of = _owner(a._multi_start, len(a._part_start) - 1)
        ring_of = part_of[_owner(a._part_start, len(a._ring_start) - 1)]
        bad = np.zeros(len(a), dtype=bool)
        bad[part_of[np.diff(a._part_start) != np.diff(b._part_start)]] = True
        bad[ring_of[np.diff(a._ring_start) != np.diff(b._ring_start)]] = True
        ok = np.flatnonzero(~bad)
        bad[ok[~_rows_equal(a.take(ok), b.take(ok))]] = True
        same[np.flatnonzero(same)] = ~bad
        return same


def _rows_equal(a: PackedPolygons, b: PackedPolygons) -> np.ndarray:
    """Whether each item of ``a`` has the coordinates of ``b``'s (their rings line up)."""
    row_of = _owner(a._multi_start, len(a._part_start) - 1)[
        _owner(a._part_start, len(a._ring_start) - 1)][_owner(a._ring_start, len(a._coords))]
    bad = np.zeros(len(a), dtype=bool)
    bad[row_of[np.any(a._coords != b._coords, axis=1)]] = True
    return ~bad


def _owner(start: np.ndarray, n: int) -> np.ndarray:
    """For each of ``n`` rows, the item (by the offsets ``start``) it belongs to."""
    return np.searchsorted(start, np.arange(n), side="right") - 1


def _sizes(p: PackedPolygons) -> np.ndarray:
    """Each item's number of coordinates."""
    return p._ring_start[p._part_start[p._multi_start[1:]]] - p._ring_start[p._part_start[p._multi_start[:-1]]]


class PackedLines:
    """LineStrings as coordinates and offsets; ``packed[idx]`` gives new lines, as
    :class:`PackedPolygons` gives polygons.

    Parameters
    ----------
    lines
        LineStrings, in one CRS.

    """

    def __init__(self, lines: np.ndarray) -> None:
        lines = np.asarray(lines, dtype=object)
        if len(lines):
            _, self._coords, (self._start,) = shapely.to_ragged_array(lines)
        else:
            self._coords, self._start = np.zeros((0, 2)), np.zeros(1, dtype=np.int64)
        self._n = len(lines)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, idx) -> np.ndarray:
        which = np.arange(self._n)[idx]
        if len(which) == 0:
            return np.empty(0, dtype=object)
        coords, offsets = _take([self._start], which)
        return shapely.from_ragged_array(shapely.GeometryType.LINESTRING, self._coords[coords], offsets)

    def all(self) -> np.ndarray:
        """Every line, as a new array."""
        return self[:]

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Every line's coordinates and the line of each, as ``shapely.get_coordinates(lines,
        return_index=True)`` gives them, without making the lines."""
        return self._coords, np.repeat(np.arange(self._n), np.diff(self._start))

    def bounds(self) -> np.ndarray:
        """Each line's ``minx, miny, maxx, maxy`` (as ``shapely.bounds``), from the coordinates."""
        if self._n == 0:
            return np.zeros((0, 4))
        first = self._start[:-1]
        lo = np.minimum.reduceat(self._coords, first, axis=0)
        hi = np.maximum.reduceat(self._coords, first, axis=0)
        return np.column_stack([lo, hi])


def _take(starts: list[np.ndarray], which: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The coordinate rows of the items ``which`` and their ragged offsets (innermost first, as
    ``shapely.from_ragged_array`` takes them), from the offsets ``starts`` of every level, the
    items' first and the rings' (or lines') last."""
    sizes = []
    rows = which
    for start in starts:
        sizes.append(start[rows + 1] - start[rows])
        rows = ranges(start[rows], start[rows + 1])
    return rows, tuple(np.concatenate([[0], np.cumsum(n)]) for n in reversed(sizes))


def ranges(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """``start[0]..stop[0]-1``, then ``start[1]..stop[1]-1``, ... in one array."""
    size = stop - start
    total = int(size.sum())
    first = np.cumsum(size) - size
    return np.arange(total) - np.repeat(first - start, size)
