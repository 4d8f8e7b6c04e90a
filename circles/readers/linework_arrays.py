"""Flat coordinate arrays of line work: the helpers shared by the repair steps.

Lines are held as ``coords`` (one row per vertex) with a sorted line index ``idx``, as
:func:`shapely.get_coordinates` returns them, so every step works on whole arrays at once. Used by
:mod:`circles.readers.linework` (noding, nodes, duplicates) and :mod:`circles.readers.linework_gaps`
(closing gaps).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

__all__ = ["MM", "bounds", "codes", "fix_frame", "fix_points", "insert_points", "isin", "position_key",
           "split_lines"]

MM = 1e-3  # positions closer than this are one point; lines shorter than this are no lines


def bounds(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last vertex of each line of a sorted line index.

    Parameters
    ----------
    idx
        The line of each vertex, sorted.

    Returns
    -------
    first, last : numpy.ndarray
        The position of each line's first and last vertex.

    """
    first = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    return first, np.r_[first[1:] - 1, len(idx) - 1]


def position_key(xy: np.ndarray, *, decimals: int | None = 3) -> np.ndarray:
    """One comparable value per position, rounded to the millimetre (or exact).

    Parameters
    ----------
    xy
        Positions, one row each.
    decimals
        Rounded to these decimals (3: the millimetre in metres); ``None``: exact, as GEOS
        compares points (-0.0 equals 0.0).

    Returns
    -------
    numpy.ndarray
        Complex numbers ``x + iy``, equal for positions in the same millimetre (or equal).

    """
    if decimals is None:
        return xy[:, 0] + 1j * xy[:, 1]
    return np.round(xy[:, 0], decimals) + 1j * np.round(xy[:, 1], decimals)


def codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 of equal values and the k distinct values (hashing: NumPy's unique sorts).

    Parameters
    ----------
    values
        Any hashable values.

    Returns
    -------
    codes, uniques : numpy.ndarray
        The code of each value, and the distinct values in order of first appearance.

    """
    found, uniques = pd.factorize(values)
    return found, np.asarray(uniques)


def isin(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Whether each value is in ``pool`` (by hashing).

    Parameters
    ----------
    values, pool
        The values to look up and those to look them up in.

    Returns
    -------
    numpy.ndarray
        A mask over ``values``.

    """
    return pd.Index(pool).get_indexer(values) >= 0 if len(pool) else np.zeros(len(values), dtype=bool)


def insert_points(coords: np.ndarray, idx: np.ndarray, line: np.ndarray, pos: np.ndarray,
                  xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Insert points into lines.

    Parameters
    ----------
    coords, idx
        The lines' vertices and sorted line index.
    line
        The line each new point goes into.
    pos
        Where along it: segment ordinal + fraction along that segment.
    xy
        The new points.

    Returns
    -------
    coords, idx, inserted : numpy.ndarray
        The new coordinates, line index and a mask of the inserted vertices.

    """
    first, _ = bounds(idx)
    ordinal = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
    all_line = np.concatenate([idx, line])
    all_pos = np.concatenate([ordinal.astype(float), pos])
    order = np.lexsort((all_pos, all_line))
    return np.concatenate([coords, xy])[order], all_line[order], order >= len(idx)


def split_lines(coords: np.ndarray, idx: np.ndarray, line: np.ndarray, cut: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split lines at the interior vertices marked ``cut`` (the vertex ends one piece, starts the next).

    Parameters
    ----------
    coords, idx
        The lines' vertices and sorted line index.
    line
        The input line each line lies on.
    cut
        A mask over the vertices.

    Returns
    -------
    coords, idx, line : numpy.ndarray
        The pieces' vertices, their piece index and the input line each piece lies on.

    """
    first, _ = bounds(idx)
    rep = 1 + cut.astype(np.int64)
    new_coords = np.repeat(coords, rep, axis=0)
    starts = np.zeros(len(idx), dtype=np.int64)
    starts[first] = 1
    # A cut vertex's second copy starts a piece.
    start = np.repeat(starts, rep)
    pos = np.cumsum(rep) - 1
    start[pos[cut]] = 1
    piece = np.cumsum(start) - 1
    owner = np.repeat(line[idx], rep)
    first_new, _ = bounds(piece)
    return new_coords, piece, owner[first_new]


def fix_frame() -> pd.DataFrame:
    """An empty table of fixes.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``x``, ``y``, ``metres``.

    """
    return pd.DataFrame({"kind": pd.Series(dtype=str), "x": pd.Series(dtype=float),
                         "y": pd.Series(dtype=float), "metres": pd.Series(dtype=float)})


def fix_points(kind: str, points, metres) -> pd.DataFrame:
    """A table of fixes of one kind.

    Parameters
    ----------
    kind
        What was fixed ("gap_closed", ...).
    points
        Where: shapely points or an array of positions.
    metres
        How far each fix moved the line work (or one value for all).

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``x``, ``y``, ``metres``.

    """
    xy = shapely.get_coordinates(points) if not isinstance(points, np.ndarray) or points.dtype == object \
        else points
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return pd.DataFrame({"kind": kind, "x": xy[:, 0], "y": xy[:, 1],
                         "metres": np.broadcast_to(np.asarray(metres, dtype=float), len(xy))})
