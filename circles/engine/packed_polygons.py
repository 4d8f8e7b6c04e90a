"""Polygons kept as one coordinate array, made into GEOS polygons only when asked for.

A GEOS polygon costs some 400 bytes beside its coordinates: a 1M-node city's 928,000 street
faces held 0.36 GB as polygons and 0.08 GB packed. The faces are read whole only to build their
cores and the per-facility index, and in small subsets (blocks merged across a partly reached
street) for each area.
"""

from __future__ import annotations

import numpy as np
import shapely

__all__ = ["PackedPolygons"]


class PackedPolygons:
    """Polygons (with their holes) as coordinates and offsets (``shapely.to_ragged_array``).

    ``packed[idx]`` (an index array, a mask or a slice) gives a NumPy array of new polygons,
    with the same coordinates, in the same order; ``len(packed)`` counts them.

    Parameters
    ----------
    polygons
        Polygons (empty ones allowed), in one CRS.

    """

    def __init__(self, polygons: np.ndarray) -> None:
        polygons = np.asarray(polygons, dtype=object)
        if len(polygons):
            _, self._coords, (self._ring_start, self._poly_start) = shapely.to_ragged_array(polygons)
        else:
            self._coords = np.zeros((0, 2))
            self._ring_start = self._poly_start = np.zeros(1, dtype=np.int64)
        self._n = len(polygons)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, idx) -> np.ndarray:
        which = np.arange(self._n)[idx]
        if len(which) == 0:
            return np.empty(0, dtype=object)
        rings = _ranges(self._poly_start[which], self._poly_start[which + 1])
        coords = _ranges(self._ring_start[rings], self._ring_start[rings + 1])
        n_rings = self._poly_start[which + 1] - self._poly_start[which]
        n_coords = self._ring_start[rings + 1] - self._ring_start[rings]
        offsets = (np.concatenate([[0], np.cumsum(n_coords)]), np.concatenate([[0], np.cumsum(n_rings)]))
        return shapely.from_ragged_array(shapely.GeometryType.POLYGON, self._coords[coords], offsets)

    def all(self) -> np.ndarray:
        """Every polygon, as a new array."""
        return self[:]


def _ranges(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """``start[0]..stop[0]-1``, then ``start[1]..stop[1]-1``, ... in one array."""
    size = stop - start
    total = int(size.sum())
    first = np.cumsum(size) - size
    return np.arange(total) - np.repeat(first - start, size)
