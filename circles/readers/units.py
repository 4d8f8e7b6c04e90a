"""Administrative units (街道, 社区, 网格...): their name column, their polygons, who lies in which, and
their levels with each unit's parent."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np

from ..errors import DataError
from .tables import header_key, match_column

__all__ = ["LEVEL_ORDER", "UNIT_COLUMN_ALIASES", "UNIT_NAME_ALIASES", "UnitLevel", "unit_levels", "unit_name_column", "unit_of",
           "unit_polygons"]

# Tried in this order: the first header found names the units.
UNIT_NAME_ALIASES = ("unit", "name", "名称", "社区", "社区名称", "街道", "community", "网格", "grid",
                     "小区", "district", "id")


def unit_name_column(units: gpd.GeoDataFrame, unit_column: str | None = None, *, file=None) -> str:
    """The column naming each unit: ``unit_column``, else the first of :data:`UNIT_NAME_ALIASES`."""
    col = unit_column or match_column(units.columns, UNIT_NAME_ALIASES)
    if col is None or col not in units.columns:
        raise DataError(f"no unit name column (looked for {', '.join(UNIT_NAME_ALIASES)}; found "
                        f"{', '.join(map(str, units.columns))})", file=file, field=unit_column or "unit",
                        fix="name the column 'unit' (社区) or pass --unit-column")
    return str(col)


def unit_polygons(units: gpd.GeoDataFrame, unit_column: str | None = None, *, file=None) -> gpd.GeoDataFrame:
    """The units in WGS-84 with their name as ``unit`` (text), their other columns kept.

    Raises
    ------
    DataError
        A layer without a CRS, or without a name column.

    """
    if units.crs is None:
        raise DataError("the units file has no CRS", file=file, field="crs",
                        fix="save the units with a CRS (a .prj beside a Shapefile)")
    col = unit_name_column(units, unit_column, file=file)
    out = units.to_crs(4326)
    return out.assign(unit=out[col].astype(str))


def unit_of(points: gpd.GeoSeries, polygons: gpd.GeoDataFrame, *, missing: str) -> np.ndarray:
    """The ``unit`` each point (any CRS) lies in, ``missing`` for none.

    A point on a shared border may fall in two units: it takes the first, so nobody counts twice.
    """
    if not len(points):
        return np.array([], dtype=object)
    pts = gpd.GeoDataFrame(geometry=points.reset_index(drop=True).to_crs(polygons.crs))
    joined = gpd.sjoin(pts, polygons[["unit", "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["unit"].astype(object).where(joined["unit"].notna(), missing).reindex(pts.index).to_numpy()


# The figures a units layer may carry, by the headers they go by (the rules of city_rules read them).
UNIT_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "households": ("households", "household", "户数", "总户数", "居民户数"),
    "residents": ("residents", "population", "常住人口", "人口", "居民人数"),
    "workers": ("workers", "community_workers", "社区工作者", "工作者", "社区工作者人数"),
    "general_social_workers": ("general_social_workers", "全科社工", "全科社工人数"),
    "committee_floor_area_m2": ("committee_floor_area_m2", "两委用房面积", "两委办公面积"),
    "green_ratio": ("green_ratio", "绿化率"), "annual_funding_yuan": ("annual_funding_yuan", "工作经费"),
    "secretary_reserves": ("secretary_reserves", "书记后备人才", "后备人才"),
    "public_institution_staff": ("public_institution_staff", "事业身份工作人员", "事业编制人员")}

# Administrative levels from the top down, as the documents name them (市、区、街道、社区、网格、小区、楼栋、单元).
LEVEL_ORDER = ("city", "市", "district", "区", "street", "街道", "community", "社区", "grid", "网格",
               "compound", "小区", "building", "楼栋", "unit_entrance", "单元")
_LEVEL_ALIASES = ("level", "层级", "级别", "等级")
_PARENT_ALIASES = ("parent", "上级", "上级单元", "所属", "所属街道", "所属社区", "所属网格")


@dataclass(frozen=True)
class UnitLevel:
    """One level of administrative units.

    Attributes
    ----------
    name : str
        The level (``街道``, ``社区``, ``网格``..., or ``level 2`` when nothing names it).
    polygons : geopandas.GeoDataFrame
        WGS-84, ``unit`` (the name), ``parent`` (the unit of the level above it lies in, ``""`` at
        the top) and the layer's other columns.
    file : str or None
        The file it was read from, for errors.

    """

    name: str
    polygons: gpd.GeoDataFrame
    file: str | None = None


def unit_levels(layers: gpd.GeoDataFrame | list[gpd.GeoDataFrame], *, unit_column: str | None = None,
                files: list[str] | None = None) -> list[UnitLevel]:
    """Units at one or more levels, from the top down, each unit with its parent.

    Parameters
    ----------
    layers
        One layer (its ``level`` / 层级 column, if any, splits it into levels; a ``parent`` / 上级
        column names each unit's parent), or one layer per level, from the top down.
    unit_column
        The name column (default: the first of :data:`UNIT_NAME_ALIASES`).
    files
        The files the layers came from, for errors.

    Returns
    -------
    list of UnitLevel
        From the top level down. A unit's parent is its ``parent`` column where given, else the unit
        of the level above that contains the unit's representative point.

    Raises
    ------
    DataError
        A parent that is no unit of the level above, or a level named twice.

    """
    frames = layers if isinstance(layers, list) else [layers]
    files = files or [None] * len(frames)
    levels: list[tuple[str, gpd.GeoDataFrame, str | None]] = []
    for k, (frame, file) in enumerate(zip(frames, files, strict=True)):
        polys = unit_polygons(frame, unit_column, file=file)
        by = match_column(polys.columns, _LEVEL_ALIASES)
        if by is None or len(frames) > 1:
            name = _level_name(polys, by, default=f"level {k + 1}" if len(frames) > 1 else "unit")
            levels.append((name, polys, file))
        else:
            levels += [(str(v), part, file) for v, part in polys.groupby(polys[by].astype(str), sort=False)]
    if len(frames) == 1 and len(levels) > 1:
        levels.sort(key=lambda lv: _rank(lv[0]))
    names = [lv[0] for lv in levels]
    if len(set(names)) < len(names):
        raise DataError(f"the level {next(n for n in names if names.count(n) > 1)!r} is given twice",
                        field="level", fix="give one layer per level, from the top down (街道, 社区, 网格)")
    out: list[UnitLevel] = []
    for name, polys, file in levels:
        parent = _parents(polys, out[-1] if out else None, file)
        out.append(UnitLevel(name=name, polygons=polys.assign(parent=parent).reset_index(drop=True),
                             file=file))
    return out


def _level_name(polys: gpd.GeoDataFrame, by: str | None, *, default: str) -> str:
    """A layer's level: its level column's one value, else its name column's header when that is a
    level word (社区, 街道...), else ``default``."""
    if by is not None and polys[by].astype(str).nunique() == 1:
        return str(polys[by].iloc[0])
    header = next((str(c) for c in polys.columns if str(c) in LEVEL_ORDER), None)
    return header or default


def _rank(level: str) -> int:
    key = header_key(level)
    ranks = [i for i, n in enumerate(LEVEL_ORDER) if header_key(n) == key]
    return ranks[0] // 2 if ranks else len(LEVEL_ORDER)


def _parents(polys: gpd.GeoDataFrame, above: UnitLevel | None, file: str | None) -> np.ndarray:
    if above is None:
        return np.full(len(polys), "", dtype=object)
    col = match_column(polys.columns, _PARENT_ALIASES)
    if col is None:
        inside = gpd.GeoSeries(polys.geometry.representative_point(), crs=polys.crs)
        return unit_of(inside, above.polygons, missing="")
    given = polys[col].astype(str).str.strip().to_numpy()
    known = set(above.polygons["unit"])
    bad = [i for i, p in enumerate(given) if p not in known]
    if bad:
        raise DataError(f"the parent {given[bad[0]]!r} is no unit of the level {above.name!r} "
                        f"({len(bad)} rows)", file=file, row=bad[0] + 1, field=col,
                        fix=f"name a unit of {above.name}: " + ", ".join(sorted(known)[:8]))
    return given.astype(object)
