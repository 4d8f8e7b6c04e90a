"""The basemap's street lines: a network's edges merged through their degree-2 nodes, as GEOS's
``line_merge`` merges them, without handing it the edges that have nothing to merge with.

On a street grid most edges run between junctions (both ends of degree 3 or more, or dead ends):
``line_merge`` would return each of them as it is, after building its graph of every edge. Only
the edges with an end of degree 2 go to it here; the others are kept as they are (their repeated
points are left to the display simplification, which drops them as ``line_merge`` would).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import shapely

from ..readers.linework_arrays import codes, position_key

__all__ = ["TILE_DEGREES", "StreetTiles", "chain_merged", "merged_lines", "tiled_coordinates", "tiled_lines"]

#: The side of the tiles streets are bundled in for ``basemap.gpkg``: 0.005 degree, about 500 m.
TILE_DEGREES = 0.005
_BUNDLE_CHUNK = 2_000  # bundles made into GEOS lines at a time


def merged_lines(geoms: np.ndarray) -> np.ndarray:
    """``shapely.get_parts(shapely.line_merge(shapely.multilinestrings(geoms)))``, the same lines
    (each possibly drawn the other way round), in a fraction of the time on a street grid.

    Parameters
    ----------
    geoms
        LineStrings (a network's edge geometries).

    Returns
    -------
    numpy.ndarray
        The merged lines: first those ``line_merge`` built, then the edges it had nothing to merge.

    """
    geoms = np.asarray(geoms, dtype=object)
    # line_merge leaves out lines of one distinct point (empty or zero length): so do we, and
    # they count for no node's degree.
    geoms = geoms[~shapely.is_empty(geoms) & (shapely.length(geoms) > 0)]
    if not len(geoms):
        return geoms
    ends, degree, xy = _end_nodes(geoms)
    merged, plain = chain_merged(ends, degree, xy, lambda rows: geoms[rows])
    return np.concatenate([merged, geoms[plain]])


def chain_merged(ends: np.ndarray, degree: np.ndarray, xy: np.ndarray,
                 lines: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The lines with an end of degree 2 merged through those ends, and the rows of the others.

    Parameters
    ----------
    ends
        Each line's first and last node, shape ``(n, 2)`` (equal coordinates, one node).
    degree
        The number of line ends at each node.
    xy
        The coordinates of the lines' first ends, then of their last ends.
    lines
        Makes the GEOS lines of the rows asked for: only the merged ones need to be lines.

    Returns
    -------
    merged : numpy.ndarray
        The merged lines, as :func:`merged_lines` gives them first.
    plain : numpy.ndarray
        The rows left as they are.

    """
    chain = (degree[ends] == 2).any(axis=1)
    if not chain.any():
        return np.zeros(0, dtype=object), np.arange(len(ends))
    sub = np.bincount(ends[chain].ravel(), minlength=len(degree))
    # A junction whose other edges are kept apart would look like a degree-2 node to line_merge:
    # a stub to a point of its own (dropped again after) keeps its degree above 2.
    fake = np.flatnonzero((sub == 2) & (degree != 2))
    top = float(xy[:, 1].max()) + 1e6  # a y beyond every line: stubs end above it
    stubs = _stubs(xy, ends, fake, top)
    merged = shapely.get_parts(shapely.line_merge(shapely.multilinestrings(
        np.concatenate([lines(np.flatnonzero(chain)), stubs]))))
    if len(stubs):
        merged = merged[shapely.bounds(merged)[:, 3] < top]
    return merged, np.flatnonzero(~chain)


@dataclass(frozen=True)
class StreetTiles:
    """Lines bundled into one multi-line per class and tile, kept as coordinates.

    Bundle ``i`` holds lines ``bundle_at[i]`` to ``bundle_at[i + 1] - 1``; line ``j`` is
    ``xy[line_at[j]:line_at[j + 1]]``. The bundles are made into GEOS lines only when asked, a
    chunk at a time if need be: a 1M-node city's 2M street lines as GEOS objects are 0.4 GB,
    and GEOS made each line twice (once alone, once copied into its bundle).
    """

    xy: np.ndarray
    line_at: np.ndarray
    bundle_at: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    def geometries(self, first: int = 0, stop: int | None = None) -> np.ndarray:
        """The bundles ``first`` to ``stop - 1`` (default: to the last) as MultiLineStrings."""
        lines = self.bundle_at[first:(len(self) if stop is None else stop) + 1]
        if len(lines) < 2:
            return np.empty(0, dtype=object)
        points = self.line_at[lines[0]:lines[-1] + 1]
        return shapely.from_ragged_array(shapely.GeometryType.MULTILINESTRING, self.xy[points[0]:points[-1]],
                                         (points - points[0], lines - lines[0]))

    def chunks(self, size: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The bundles and their classes, ``size`` bundles at a time (default ``_BUNDLE_CHUNK``)."""
        size = size or _BUNDLE_CHUNK
        for k in range(0, len(self), size):
            yield self.geometries(k, k + size), self.classes[k:k + size]

    def vertices(self) -> dict[str, int]:
        """The coordinates of the bundles of each class."""
        counts = np.diff(self.line_at[self.bundle_at])
        names, kind = np.unique(self.classes.astype(str), return_inverse=True)
        return {str(n): int(c) for n, c in zip(names, np.bincount(kind, weights=counts, minlength=len(names)),
                                                strict=True)}


def tiled_lines(lines: np.ndarray, classes: np.ndarray, *, degrees: float = TILE_DEGREES,
                to_display: Callable[[np.ndarray], np.ndarray] | None = None) -> StreetTiles:
    """Lines bundled into one multi-line per class and tile of the lines' midpoints (WGS-84).

    A GeoPackage writes a feature at a time: a city's 2 million street lines took 12 s, the same
    lines in a few thousand bundles take a fraction of that, and a map or a print draws them the same.
    The bundles are built from one array of coordinates: a line each as its own geometry would
    hold a city's streets twice more in memory (about a gigabyte at 1M nodes).

    Parameters
    ----------
    lines
        LineStrings, WGS-84 (or in any CRS ``to_display`` turns into WGS-84).
    classes
        Each line's class.
    degrees
        The tiles' side.
    to_display
        Applied to the coordinates (an ``(n, 2)`` array) before the tiles are found, as
        ``shapely.transform`` would apply it to each line: the CRS change and rounding of display.

    Returns
    -------
    StreetTiles
        A bundle per class and tile that has lines.

    """
    lines, classes = np.asarray(lines, dtype=object), np.asarray(classes, dtype=object)
    drawn = shapely.get_num_coordinates(lines) > 0  # an empty line is in no tile
    lines, classes = lines[drawn], classes[drawn]
    xy, line = shapely.get_coordinates(lines, return_index=True)
    return tiled_coordinates(xy, np.searchsorted(line, np.arange(len(lines))), classes, degrees=degrees,
                             to_display=to_display)


def tiled_coordinates(xy: np.ndarray, start: np.ndarray, classes: np.ndarray, *,
                      degrees: float = TILE_DEGREES,
                      to_display: Callable[[np.ndarray], np.ndarray] | None = None) -> StreetTiles:
    """:func:`tiled_lines` of lines given as coordinates: line ``i`` is ``xy[start[i]:start[i + 1]]``
    (the last one runs to the end), each of two or more points."""
    classes = np.asarray(classes, dtype=object)
    if not len(start):
        return StreetTiles(np.zeros((0, 2)), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), classes[:0])
    if to_display is not None:
        xy = to_display(xy)
    minx, miny = np.minimum.reduceat(xy, start).T
    maxx, maxy = np.maximum.reduceat(xy, start).T
    tx = np.floor((minx + maxx) / 2 / degrees).astype(np.int64)
    ty = np.floor((miny + maxy) / 2 / degrees).astype(np.int64)
    kind, names = codes(classes)
    group, _ = codes(position_key(np.column_stack([tx * len(names) + kind, ty]).astype(float), decimals=None))
    order = np.argsort(group, kind="stable")
    first = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0])
    size = np.diff(np.r_[start, len(xy)])[order]
    # The coordinates line by line in bundle order, then the ragged offsets of lines and bundles.
    at = np.repeat(start[order] - np.cumsum(np.r_[0, size[:-1]]), size) + np.arange(len(xy))
    return StreetTiles(xy[at], np.r_[0, np.cumsum(size)], np.r_[first, len(order)], names[kind[order][first]])


def _end_nodes(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's first and last coordinate as node numbers (equal coordinates, one node, as
    line_merge's graph joins them), each node's degree (line ends there), and the coordinates
    of the ends (all first ends, then all last ends)."""
    xy, index = shapely.get_coordinates(geoms, return_index=True)
    start = np.searchsorted(index, np.arange(len(geoms)))
    last = np.r_[start[1:], len(index)] - 1
    both = np.concatenate([xy[start], xy[last]])
    node, _ = codes(position_key(both, decimals=None))
    ends = np.column_stack([node[:len(geoms)], node[len(geoms):]])
    return ends, np.bincount(node), both


def _stubs(xy: np.ndarray, ends: np.ndarray, nodes: np.ndarray, y: float) -> np.ndarray:
    """One straight line from each of ``nodes`` (at ``xy``, numbered by ``ends``) up past ``y``."""
    if not len(nodes):
        return np.zeros(0, dtype=object)
    first = np.full(int(ends.max()) + 1, -1)
    first[ends.T.ravel()[::-1]] = np.arange(xy.shape[0])[::-1]
    start = xy[first[nodes]]
    # Far ends one unit apart on a line no geometry reaches: no two stubs meet.
    stop = np.column_stack([np.arange(len(nodes), dtype=float), np.full(len(nodes), y + 1.0)])
    return shapely.linestrings(np.stack([start, stop], axis=1))
