"""Reading planners' tables: CSV (UTF-8 or GBK/GB18030), Excel, GeoJSON, GeoPackage, Shapefile;
Chinese or English headers; points from lon/lat, x/y or a geometry in any supported CRS.

Shared by facility tables, service points, candidate sites and population points.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import InputFileError
from .crs import to_wgs84

__all__ = ["ALIASES", "find_column", "read_table", "table_points"]

_GEO_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".gdb", ".fgb", ".parquet"}
_ENCODINGS = ("utf-8-sig", "gb18030")

# Accepted header names per field, compared case- and space-insensitively.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "facility_id", "编号", "序号", "代码", "code_id", "fid_"),
    "name": ("name", "名称", "设施名称", "名字", "站点名称", "name_zh"),
    "tier": ("tier", "level", "级别", "等级", "层级", "类型级别"),
    "lon": ("lon", "lng", "long", "longitude", "经度", "x_wgs84"),
    "lat": ("lat", "latitude", "纬度", "y_wgs84"),
    "x": ("x", "东坐标", "x坐标", "easting"),
    "y": ("y", "北坐标", "y坐标", "northing"),
    "floor_area_m2": ("floor_area_m2", "floor_area", "area_m2", "area", "面积", "建筑面积",
                      "使用面积", "面积m2", "面积(m2)", "面积（㎡）", "面积(㎡)"),
    "households_capacity": ("households_capacity", "households", "服务户数", "户数"),
    "services": ("services", "服务", "服务内容", "服务类别", "功能"),
    "service": ("service", "category", "服务", "类别", "服务类别", "类型"),
    "pop": ("pop", "population", "人口", "人数", "常住人口", "count"),
}


def _norm(name: str) -> str:
    return str(name).strip().lower().replace(" ", "").replace("_", "")


def find_column(columns, field: str) -> str | None:
    """The column of ``columns`` that names ``field`` (by :data:`ALIASES`), or ``None``."""
    wanted = {_norm(a) for a in ALIASES.get(field, (field,))}
    for col in columns:
        if _norm(col) in wanted:
            return col
    return None


def read_table(path: str | Path, *, layer: str | None = None, what: str = "table"
               ) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a table or layer; a geometry file keeps its geometry and CRS.

    Raises
    ------
    InputFileError
        Missing, empty or unreadable files, or an unsupported format.

    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"the {what} file does not exist", file=path, fix="check the path")
    if path.is_file() and path.stat().st_size == 0:
        raise InputFileError(f"the {what} file is empty", file=path, fix="export the table again")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            df = _read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        elif suffix in (".xlsx", ".xlsm", ".xls"):
            df = pd.read_excel(path, sheet_name=layer or 0)
        elif suffix in _GEO_SUFFIXES or path.is_dir():
            df = gpd.read_file(path, layer=layer, engine="pyogrio")
        else:
            raise InputFileError(f"unsupported {what} format '{suffix}'", file=path,
                                 fix="use CSV, Excel (.xlsx), GeoJSON, GeoPackage or Shapefile")
    except InputFileError:
        raise
    except Exception as err:
        raise InputFileError(f"cannot read the {what} ({type(err).__name__}: {err})", file=path,
                             fix="open it in a spreadsheet or GIS program and export it again") from err
    if len(df) == 0:
        raise InputFileError(f"the {what} has no rows", file=path, fix="check the export; a header alone is not a table")
    return df


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    last = None
    for enc in _ENCODINGS:
        try:
            return pd.read_csv(path, encoding=enc, sep=sep, dtype=str, keep_default_na=False,
                               na_values=[""])
        except UnicodeDecodeError as err:
            last = err
    raise InputFileError(f"the CSV is neither UTF-8 nor GBK/GB18030 ({last})", file=path,
                         fix="save it as 'CSV UTF-8' from Excel")


def table_points(df: pd.DataFrame | gpd.GeoDataFrame, *, crs: str = "wgs84", file: str | Path | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """WGS-84 lon/lat of every row, and the problems found.

    A geometry (its own CRS wins over ``crs``) gives points (polygons: a representative point;
    callers wanting entrances handle polygons first); otherwise lon/lat or x/y columns in ``crs``.

    Returns
    -------
    lon, lat : numpy.ndarray
        NaN where the row has no usable coordinates.
    problems : list of dict
        One per bad row: ``row``, ``field``, ``value``, ``problem``, ``fix``.

    """
    problems: list[dict] = []
    n = len(df)
    if isinstance(df, gpd.GeoDataFrame) and df.geometry is not None and df.geometry.notna().any():
        g = df.geometry
        if g.crs is None:
            g = g.set_crs(_crs_for_geometry(crs))
        pts = shapely.point_on_surface(g.to_crs(4326).to_numpy())
        lon = np.asarray(shapely.get_x(pts), dtype=float)
        lat = np.asarray(shapely.get_y(pts), dtype=float)
        for i in np.flatnonzero(~np.isfinite(lon)):
            problems.append(dict(row=int(i) + 1, field="geometry", value=None, problem="no geometry",
                                 fix="draw the feature or delete the row"))
        return lon, lat, problems
    cx, cy = find_column(df.columns, "lon"), find_column(df.columns, "lat")
    if cx is None or cy is None:
        cx, cy = find_column(df.columns, "x"), find_column(df.columns, "y")
    if cx is None or cy is None:
        problems.append(dict(row=None, field="lon/lat", value=None,
                             problem=f"no coordinate columns (found: {', '.join(map(str, df.columns))})",
                             fix="name them lon/lat (经度/纬度) or x/y, or give a geometry file"))
        return np.full(n, np.nan), np.full(n, np.nan), problems
    x = pd.to_numeric(df[cx], errors="coerce").to_numpy(float)
    y = pd.to_numeric(df[cy], errors="coerce").to_numpy(float)
    for col, vals in ((cx, x), (cy, y)):
        for i in np.flatnonzero(~np.isfinite(vals)):
            raw = df[col].iloc[i]
            problems.append(dict(row=int(i) + 1, field=str(col), value=None if pd.isna(raw) else raw,
                                 problem="missing" if pd.isna(raw) else "not a number",
                                 fix="give the coordinate as a decimal number"))
    geographic = str(crs).lower() in ("wgs84", "cgcs2000", "gcj02", "bd09", "epsg:4326", "epsg:4490")
    if geographic:
        swapped = np.isfinite(x) & np.isfinite(y) & (np.abs(y) > 90) & (np.abs(x) <= 90)
        for i in np.flatnonzero(swapped):
            problems.append(dict(row=int(i) + 1, field=f"{cx}/{cy}", value=f"{x[i]}, {y[i]}",
                                 problem="latitude outside ±90: longitude and latitude look swapped",
                                 fix=f"swap the {cx} and {cy} values"))
        out_of_range = np.isfinite(x) & np.isfinite(y) & ~swapped & ((np.abs(y) > 90) | (np.abs(x) > 180))
        for i in np.flatnonzero(out_of_range):
            problems.append(dict(row=int(i) + 1, field=f"{cx}/{cy}", value=f"{x[i]}, {y[i]}",
                                 problem="not a longitude/latitude (projected coordinates?)",
                                 fix="give --crs EPSG:code for projected x/y"))
        bad = swapped | out_of_range
        x, y = np.where(bad, np.nan, x), np.where(bad, np.nan, y)
    ok = np.isfinite(x) & np.isfinite(y)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    if ok.any():
        lon[ok], lat[ok] = to_wgs84(x[ok], y[ok], crs)
    return lon, lat, problems


def _crs_for_geometry(crs: str):
    key = str(crs).lower()
    if key in ("wgs84", "gcj02", "bd09"):
        return 4326
    if key == "cgcs2000":
        return 4490
    return crs
