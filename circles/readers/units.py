"""Administrative units (社区, 街道, 网格...): their name column, their polygons, who lies in which."""

from __future__ import annotations

import geopandas as gpd
import numpy as np

from ..errors import DataError
from .tables import match_column

__all__ = ["UNIT_NAME_ALIASES", "unit_name_column", "unit_of", "unit_polygons"]

# Tried in this order: the first header found names the units.
UNIT_NAME_ALIASES = ("unit", "name", "名称", "社区", "社区名称", "街道", "community", "网格", "grid",
                     "小区", "district", "id")


def unit_name_column(units: gpd.GeoDataFrame, unit_column: str | None = None) -> str:
    """The column naming each unit: ``unit_column``, else the first of :data:`UNIT_NAME_ALIASES`."""
    col = unit_column or match_column(units.columns, UNIT_NAME_ALIASES)
    if col is None or col not in units.columns:
        raise DataError(f"no unit name column (looked for {', '.join(UNIT_NAME_ALIASES)}; found "
                        f"{', '.join(map(str, units.columns))})", field=unit_column or "unit",
                        fix="name the column 'unit' (社区) or pass --unit-column")
    return str(col)


def unit_polygons(units: gpd.GeoDataFrame, unit_column: str | None = None) -> gpd.GeoDataFrame:
    """The units in WGS-84 with their name as ``unit`` (text), their other columns kept.

    Raises
    ------
    DataError
        A layer without a CRS, or without a name column.

    """
    if units.crs is None:
        raise DataError("the units file has no CRS", field="crs",
                        fix="save the units with a CRS (a .prj beside a Shapefile)")
    col = unit_name_column(units, unit_column)
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
