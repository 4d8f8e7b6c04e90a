"""A road layer's columns: finding them by their many header names, reading yes/no and levels.

Used by :mod:`circles.readers.roads` for a city's own layer and by :mod:`circles.readers.roads_osm`
for the OSM paths added to it, so both read bridges, tunnels and layers the same way.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputFileError
from .tables import match_column

__all__ = ["find_column", "line_levels", "walkable_rows"]

# Header names, compared lower-cased without spaces or underscores.
_WALKABLE = ("walkable", "步行", "可步行", "是否可步行")  # OSM's foot=* has more values: name it
_BRIDGE = ("bridge", "桥梁", "桥", "是否桥梁", "isbridge")
_TUNNEL = ("tunnel", "隧道", "是否隧道", "istunnel")
_LAYER = ("layer", "层", "层级", "layerno")
_YES = {"yes", "y", "true", "t", "1", "是", "可", "可步行", "允许"}
_NO = {"no", "n", "false", "f", "0", "否", "不可", "不可步行", "禁止"}
_BLANK = {"", "nan", "none", "<na>", "null"}


def find_column(gdf: pd.DataFrame, given: str | None, aliases: tuple[str, ...], path, option: str | None
                ) -> str | None:
    """The column named ``given``, else the first column whose header is one of ``aliases``.

    Parameters
    ----------
    gdf
        The layer.
    given
        The column the user named, or ``None`` to look for ``aliases``.
    aliases
        Header names, lower-cased without spaces or underscores.
    path
        The file, for the error.
    option
        The option that named ``given``, for the error's fix.

    Returns
    -------
    str or None
        The column, or ``None`` when no header matches.

    Raises
    ------
    InputFileError
        ``given`` is not a column of the layer.

    """
    if given is not None:
        if given not in gdf.columns:
            raise InputFileError(f"no column {given!r} in the road layer", file=path, field=given,
                                 fix=f"give {option}= one of: " + ", ".join(map(str, gdf.columns[:30])))
        return given
    return match_column(gdf.columns, aliases)


def _text(values: pd.Series) -> pd.Series:
    s = values.astype("string").str.strip().str.lower().fillna("")
    return s.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True)  # 1.0 from a float column is 1


def walkable_rows(gdf: gpd.GeoDataFrame, column: str | None, path) -> tuple[np.ndarray, str | None]:
    """Rows a pedestrian may use; unknown values are an error, blanks count as walkable.

    Parameters
    ----------
    gdf
        The layer.
    column
        The walkable column (``None``: look for 步行/walkable...).
    path
        The file, for the error.

    Returns
    -------
    walkable : numpy.ndarray
        True for the rows to keep (all of them without a walkable column).
    column : str or None
        The column read.

    """
    col = find_column(gdf, column, _WALKABLE, path, "walkable_column")
    if col is None:
        return np.ones(len(gdf), dtype=bool), None
    v = _text(gdf[col])
    unknown = ~v.isin(_YES | _NO | _BLANK)
    if unknown.any():
        values = sorted(set(v[unknown]))
        raise InputFileError(f"unknown values in the walkable column: {', '.join(map(repr, values[:10]))}"
                             + (f" and {len(values) - 10} more" if len(values) > 10 else ""),
                             file=path, row=int(np.flatnonzero(unknown.to_numpy())[0]) + 1, field=str(col),
                             fix="use 是/否, yes/no, 1/0 or true/false (blank counts as walkable)")
    return ~v.isin(_NO).to_numpy(), str(col)


def line_levels(gdf: pd.DataFrame) -> np.ndarray:
    """A level per line: the layer, else +1 for a bridge and -1 for a tunnel, else 0 (ground).

    Parameters
    ----------
    gdf
        Lines with, perhaps, ``layer``, ``bridge`` and ``tunnel`` columns (层/桥梁/隧道...).

    Returns
    -------
    numpy.ndarray
        One float level per row.

    """
    level = np.zeros(len(gdf))
    col = find_column(gdf, None, _LAYER, None, None)
    if col is not None:
        level = pd.to_numeric(gdf[col], errors="coerce").fillna(0).to_numpy(float)
    for aliases, sign in ((_BRIDGE, 1.0), (_TUNNEL, -1.0)):
        col = find_column(gdf, None, aliases, None, None)
        if col is not None:
            flag = ~_text(gdf[col]).isin(_NO | _BLANK).to_numpy()
            level = np.where(flag & (level == 0), sign, level)
    return level
