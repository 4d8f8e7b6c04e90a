"""Reading planners' tables: CSV (UTF-8 or GBK/GB18030), Excel, GeoJSON, GeoPackage, Shapefile;
Chinese or English headers; points from lon/lat, x/y or a geometry in any supported CRS.

Shared by facility tables, service points, candidate sites and population points.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from itertools import islice
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError, InputFileError
from .crs import to_wgs84

__all__ = ["ALIASES", "find_column", "first_row", "header_key", "match_column", "read_table", "table_points"]

_GEO_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".gdb", ".fgb", ".parquet"}
_BOM = b"\xef\xbb\xbf"
_HEADER_SCAN = 10  # rows searched for the header: Excel exports put titles and notes above it
# C0 controls but tab, newline and carriage return, which are ordinary text in a cell.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Coordinates of two pairs closer than this (degrees, about 1 cm) are the same point.
_SAME_DEGREES = 1e-7

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
    "capacity_pop": ("capacity_pop", "capacity", "capacity_people", "服务人口", "服务人口规模",
                     "服务人数", "容量", "容纳人数"),
    "services": ("services", "服务", "服务内容", "服务类别", "功能"),
    "service": ("service", "category", "服务", "类别", "服务类别", "类型"),
    "pop": ("pop", "population", "人口", "人数", "常住人口", "count"),
}


def header_key(name: object) -> str:
    """A header as it is compared: trimmed, lower-cased, without spaces or underscores."""
    return str(name).strip().lower().replace(" ", "").replace("_", "")


def match_column(columns, aliases) -> str | None:
    """The column whose header is the first of ``aliases`` found (compared by :func:`header_key`)."""
    by_key = {header_key(c): c for c in columns if c != "geometry"}
    return next((by_key[k] for k in map(header_key, aliases) if k in by_key), None)


def find_column(columns, field: str) -> str | None:
    """The column of ``columns`` that names ``field`` (by :data:`ALIASES`), or ``None``."""
    wanted = {header_key(a) for a in ALIASES.get(field, (field,))}
    for col in columns:
        if header_key(col) in wanted:
            return col
    return None


def first_row(df: pd.DataFrame) -> int:
    """The row number a user sees for the first data row of ``df`` (``attrs["first_row"]``).

    2 for a spreadsheet whose header is row 1 (more below title rows), 1 for the first feature
    of a GIS layer; frames made in memory count like a spreadsheet, layers like a layer.
    """
    return int(df.attrs.get("first_row", 1 if isinstance(df, gpd.GeoDataFrame) else 2))


def read_table(path: str | Path, *, layer: str | None = None, what: str = "table"
               ) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a table or layer; a geometry file keeps its geometry and CRS.

    A CSV may be UTF-8 (with or without a byte-order mark) or GBK/GB18030, even behind a
    byte-order mark. Title rows above the header of a CSV or Excel sheet are skipped when one of
    the first ten rows holds known column names (:data:`ALIASES`). Control characters are removed
    from text cells, with a warning naming the column and rows.

    Parameters
    ----------
    path
        CSV/TSV, Excel, GeoJSON, GeoPackage, Shapefile, FileGDB, FlatGeobuf or GeoParquet.
    layer
        Layer or sheet name (default: the first).
    what
        What the table is, for messages ("facility table").

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        ``attrs["first_row"]`` is the row number the user sees for the first data row: 2 when
        the header is row 1, more below title rows, 1 for the first feature of a GIS layer.
        ``attrs["controls_removed"]`` counts the cleaned cells.

    Raises
    ------
    InputFileError
        Missing, empty or unreadable files, an unsupported format, or a title row above a
        header that names no known column.

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
            df = _read_excel(path, sheet=layer or 0)
        elif suffix in _GEO_SUFFIXES or path.is_dir():
            df = gpd.read_file(path, layer=layer, engine="pyogrio")
            df.attrs["first_row"] = 1
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
    _remove_controls(df, file=path)
    return df


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    # A mark before GBK bytes comes from tools that add it without re-encoding; decoding the
    # whole file as GBK would glue the mark to the first header (锘縤d), so it goes first.
    body = raw[len(_BOM):] if raw.startswith(_BOM) else raw
    last = None
    for enc in ("utf-8", "gb18030"):
        try:
            return body.decode(enc)
        except UnicodeDecodeError as err:
            last = err
    raise InputFileError(f"the CSV is neither UTF-8 nor GBK/GB18030 ({last})", file=path,
                         fix="save it as 'CSV UTF-8' from Excel")


def _read_csv(path: Path, sep: str) -> pd.DataFrame:
    text = _decode(path)
    head = list(islice(csv.reader(io.StringIO(text), delimiter=sep), _HEADER_SCAN))
    skip = _header_row(head, path)
    df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                     skiprows=skip)
    df.attrs["first_row"] = skip + 2
    return df


def _read_excel(path: Path, sheet: str | int) -> pd.DataFrame:
    head = pd.read_excel(path, sheet_name=sheet, header=None, nrows=_HEADER_SCAN)
    rows = head.astype(object).where(head.notna(), None).to_numpy().tolist()
    skip = _header_row(rows, path)
    df = pd.read_excel(path, sheet_name=sheet, header=skip)
    df.attrs["first_row"] = skip + 2
    return df


_KNOWN = {header_key(a) for names in ALIASES.values() for a in names}


def _header_row(rows: list[list], path: Path) -> int:
    """Index of the header among the first rows of a sheet (0: the first row).

    The header is the first row naming at least two known columns, below rows with fewer filled
    cells than it (titles, notes). Without one, a first row that is a single filled cell above
    wider rows is a title the header was not recognised under: that is an error, since reading
    the title as the header would only report every column missing.
    """
    filled = [[str(c).strip() for c in r if c is not None and str(c).strip() not in ("", "nan")]
              for r in rows]
    known = [sum(header_key(c) in _KNOWN for c in r) for r in filled]
    if not known or known[0] >= 2:
        return 0
    for i, k in enumerate(known):
        if k >= 2 and all(len(r) < len(filled[i]) for r in filled[:i]):
            return i
    if len(filled[0]) == 1:
        wide = next((i for i, r in enumerate(filled) if len(r) >= 2), None)
        if wide is not None:
            raise InputFileError(
                f"the first row holds only {filled[0][0]!r}, a title, and no row of the first "
                f"{_HEADER_SCAN} names known columns", file=path, row=1,
                fix=f"the header seems to be on row {wide + 1}, not row 1: delete the rows above "
                    "it, and name the columns as the documentation says (name/名称, tier/级别, "
                    "lon/经度, lat/纬度, pop/人口 ...)")
    return 0


def _remove_controls(df: pd.DataFrame, *, file: Path) -> None:
    """Remove C0 control characters from text cells and headers, in place, with one warning."""
    # Removed rather than refused: ESC, NUL and the like are invisible, arrive by copy-paste from
    # other systems and mean nothing in a name, so a planner could not even see what to fix; left
    # in, they break the workbook and GeoPackage writers. Tab, newline and carriage return stay:
    # they are text a user typed (Alt+Enter in Excel), and the writers quote them.
    first, found, n = first_row(df), [], 0
    for col in df.columns:
        if df[col].dtype != object and not pd.api.types.is_string_dtype(df[col]):
            continue
        try:
            hit = df[col].str.contains(_CONTROL, na=False).to_numpy(bool)
        except AttributeError:  # no text in the column
            continue
        if hit.any():
            df[col] = df[col].mask(hit, df[col].str.replace(_CONTROL, "", regex=True))
            rows = np.flatnonzero(hit) + first
            more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            found.append(f"column '{_CONTROL.sub('', str(col))}' row{'s' if len(rows) > 1 else ''} "
                         f"{', '.join(map(str, rows[:10]))}{more}")
            n += int(hit.sum())
    renamed = {c: _CONTROL.sub("", c) for c in df.columns if isinstance(c, str) and _CONTROL.search(c)}
    if renamed:
        df.columns = [renamed.get(c, c) for c in df.columns]
        found.append(f"the header of {len(renamed)} column(s)")
    df.attrs["controls_removed"] = n
    if found:
        warnings.warn(f"{file}: removed control characters (such as \\x00 or \\x1b) from {n} cell(s): "
                      + "; ".join(found), UserWarning, stacklevel=3)


def table_points(df: pd.DataFrame | gpd.GeoDataFrame, *, crs: str = "wgs84", file: str | Path | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """WGS-84 lon/lat of every row, and the problems found.

    A geometry (its own CRS wins over ``crs``) gives points (polygons: a representative point;
    callers wanting entrances handle polygons first); otherwise lon/lat or x/y columns in ``crs``.
    Two pairs of columns (lon/lat and 经度/纬度, or x/y in degrees too) must agree where both
    are given; where one is empty the other is used.

    Returns
    -------
    lon, lat : numpy.ndarray
        NaN where the row has no usable coordinates.
    problems : list of dict
        One per bad row: ``row`` (as the spreadsheet shows it, :func:`first_row`), ``field``,
        ``value``, ``problem``, ``fix``.

    Raises
    ------
    DataError
        Two coordinate pairs with different values on a row.

    """
    n, first = len(df), first_row(df)
    if isinstance(df, gpd.GeoDataFrame) and df.geometry is not None and df.geometry.notna().any():
        return _geometry_points(df.geometry, crs, first)
    problems: list[dict] = []
    pairs = _coordinate_pairs(df.columns)
    if not pairs:
        problems.append(dict(row=None, field="lon/lat", value=None,
                             problem=f"no coordinate columns (found: {', '.join(map(str, df.columns))})",
                             fix="name them lon/lat (经度/纬度) or x/y, or give a geometry file"))
        return np.full(n, np.nan), np.full(n, np.nan), problems
    cx, cy = pairs[0]
    x, y = _numbers(df[cx]), _numbers(df[cy])
    for other in pairs[1:]:
        x, y = _merge_pair(df, (cx, cy), other, x, y, file=file)
    for col, vals in ((cx, x), (cy, y)):
        for i in np.flatnonzero(~np.isfinite(vals)):
            raw = df[col].iloc[i]
            problems.append(dict(row=int(i) + first, field=str(col), value=None if pd.isna(raw) else raw,
                                 problem="missing" if pd.isna(raw) else "not a number",
                                 fix="give the coordinate as a decimal number"))
    if str(crs).lower() in ("wgs84", "cgcs2000", "gcj02", "bd09", "epsg:4326", "epsg:4490"):
        x, y = _in_degrees(x, y, (cx, cy), first, problems)
    ok = np.isfinite(x) & np.isfinite(y)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    if ok.any():
        lon[ok], lat[ok] = to_wgs84(x[ok], y[ok], crs)
    return lon, lat, problems


def _geometry_points(g: gpd.GeoSeries, crs: str, first: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Lon/lat of each feature (polygons: a representative point); a missing geometry is a problem."""
    problems: list[dict] = []
    if g.crs is None:
        g = g.set_crs(_crs_for_geometry(crs))
    pts = shapely.point_on_surface(g.to_crs(4326).to_numpy())
    lon = np.asarray(shapely.get_x(pts), dtype=float)
    lat = np.asarray(shapely.get_y(pts), dtype=float)
    for i in np.flatnonzero(~np.isfinite(lon)):
        problems.append(dict(row=int(i) + first, field="geometry", value=None, problem="no geometry",
                             fix="draw the feature or delete the row"))
    return lon, lat, problems


def _in_degrees(x: np.ndarray, y: np.ndarray, cols: tuple[str, str], first: int, problems: list[dict]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Geographic x/y with swapped or out-of-range pairs blanked, each a problem appended."""
    cx, cy = cols
    swapped = np.isfinite(x) & np.isfinite(y) & (np.abs(y) > 90) & (np.abs(x) <= 90)
    for i in np.flatnonzero(swapped):
        problems.append(dict(row=int(i) + first, field=f"{cx}/{cy}", value=f"{x[i]}, {y[i]}",
                             problem="latitude outside ±90: longitude and latitude look swapped",
                             fix=f"swap the {cx} and {cy} values"))
    out_of_range = np.isfinite(x) & np.isfinite(y) & ~swapped & ((np.abs(y) > 90) | (np.abs(x) > 180))
    for i in np.flatnonzero(out_of_range):
        problems.append(dict(row=int(i) + first, field=f"{cx}/{cy}", value=f"{x[i]}, {y[i]}",
                             problem="not a longitude/latitude (projected coordinates?)",
                             fix="give --crs EPSG:code for projected x/y"))
    bad = swapped | out_of_range
    return np.where(bad, np.nan, x), np.where(bad, np.nan, y)


def _numbers(col: pd.Series) -> np.ndarray:
    return pd.to_numeric(col, errors="coerce").to_numpy(float)


def _coordinate_pairs(columns) -> list[tuple[str, str]]:
    """Every (x, y) pair of columns: lon/lat names in table order first, then x/y names."""
    out = []
    for fx, fy in (("lon", "lat"), ("x", "y")):
        xs = [c for c in columns if find_column([c], fx) is not None]
        ys = [c for c in columns if find_column([c], fy) is not None]
        out += list(zip(xs, ys, strict=False))  # a lone lon without lat pairs with nothing
    return out


def _degrees(x: np.ndarray, y: np.ndarray) -> bool:
    ok = np.isfinite(x) & np.isfinite(y)
    return bool(ok.any()) and bool(np.all((np.abs(x[ok]) <= 180) & (np.abs(y[ok]) <= 90)))


def _merge_pair(df: pd.DataFrame, main: tuple[str, str], other: tuple[str, str], x: np.ndarray,
                y: np.ndarray, *, file: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    """``x``, ``y`` of the ``main`` pair, filled from ``other`` where empty; a conflict is an error."""
    ox, oy = _numbers(df[other[0]]), _numbers(df[other[1]])
    if _degrees(x, y) != _degrees(ox, oy):
        return x, y  # projected x/y beside lon/lat: the same points in another CRS, not a second opinion
    tol = _SAME_DEGREES if _degrees(x, y) else 0.01  # metres for projected pairs
    both = np.isfinite(x) & np.isfinite(y) & np.isfinite(ox) & np.isfinite(oy)
    differ = both & ((np.abs(x - ox) > tol) | (np.abs(y - oy) > tol))
    if differ.any():
        i = int(np.flatnonzero(differ)[0])
        a, b = "/".join(map(str, main)), "/".join(map(str, other))
        raise DataError(
            f"two coordinate pairs disagree: {a} = {x[i]:.7g}, {y[i]:.7g} but {b} = {ox[i]:.7g}, "
            f"{oy[i]:.7g} (on {int(differ.sum())} row(s))", file=file, row=first_row(df) + i,
            field=f"{a} and {b}", fix=f"keep one pair: delete the {a} or the {b} columns, or make them agree")
    fill = ~(np.isfinite(x) & np.isfinite(y)) & np.isfinite(ox) & np.isfinite(oy)
    return np.where(fill, ox, x), np.where(fill, oy, y)


def _crs_for_geometry(crs: str):
    key = str(crs).lower()
    if key in ("wgs84", "gcj02", "bd09"):
        return 4326
    if key == "cgcs2000":
        return 4490
    return crs
