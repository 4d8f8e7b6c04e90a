"""Population sources turned into weighted demand points.

A raster (WorldPop, GHS-POP, a city's grid), polygons or grid cells with counts or households,
points with counts, or — when nothing is given — an estimate from OSM residential buildings and
land use, labelled an estimate everywhere it appears. Every person read is either in a demand
point or in a row of ``excluded`` with its reason: ``points.pop.sum() + excluded.pop.sum() ==
input_pop``, nothing is silently lost. A count that is not a count of people (empty, NaN,
negative, ``约300``, ``1,20``) is an error naming its row; with ``drop_invalid`` its row is listed
in ``excluded`` with ``pop`` 0 and counted (see :mod:`circles.population_values`). Polygon counts
go onto their residential parts (:mod:`circles.population_residential`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..constants import PERSONS_PER_HOUSEHOLD
from ..errors import DataError
from .crs import parse_crs, to_wgs84
from .demand import Demand, make_demand, numbers
from .options import known_options
from .population_values import check_values, first_row_of, parse_counts, row_list
from .tables import find_column, match_column, read_table, table_points

__all__ = ["PERSONS_PER_HOUSEHOLD", "CountOptions", "Demand", "from_points", "from_polygons", "read_population"]

_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".asc")
_POP_ALIASES = ("总人口", "居住人口", "户籍人口", "人口数", "people", "residents")  # beyond tables.ALIASES
_HOUSEHOLD_ALIASES = ("households", "household", "hh", "户数", "住户数", "总户数", "家庭户数")

# The raster reader and the OSM estimate live in their own modules (they use this one's helpers);
# ``circles.population.from_raster`` etc. still reach them, imported on first use.
_ELSEWHERE = {"from_raster": "population_raster", "estimate_from_osm": "population_osm",
              "osm_residential": "population_osm"}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f".{_ELSEWHERE[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class CountOptions:
    """How a table or layer's counts are read.

    Attributes
    ----------
    pop_column
        The count column (default: pop/population/人口/人数, else households/户数).
    households_column
        A households column instead, × ``persons_per_household``.
    persons_per_household
        Persons per household (2.62, China's 2020 census).
    crs
        Coordinates of a table (``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000``, ``EPSG:code``), or the
        CRS of a layer without one.
    group_columns
        Columns counting population groups (children 0-6, 60+...), carried along.
    drop_invalid
        Exclude rows whose count is empty, not a number (``约300``, ``1,20``) or negative, and
        count them, instead of raising a :class:`DataError` naming the first.

    """

    pop_column: str | None = None
    households_column: str | None = None
    persons_per_household: float = PERSONS_PER_HOUSEHOLD
    crs: str | None = None
    group_columns: tuple[str, ...] = ()
    drop_invalid: bool = False

    @classmethod
    def from_options(cls, options: dict) -> CountOptions:
        """The options from keyword arguments, an unknown name being a clear error."""
        out = cls(**known_options(cls, options, what="population"))
        return replace(out, group_columns=tuple(out.group_columns))


# ---------------------------------------------------------------- columns and counts

def _numeric_columns(df: pd.DataFrame) -> list[str]:
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    return [str(c) for c in df.columns if c != geom and numbers(df[c]).notna().any()]


def _require_column(df: pd.DataFrame, name: str, file, option: str) -> str:
    if name not in df.columns:
        raise DataError(f"no column '{name}' (numeric columns found: {', '.join(_numeric_columns(df)) or 'none'})",
                        file=file, field=name, fix=f"pass {option}= naming one of the numeric columns")
    return name


def _count_column(df: pd.DataFrame, opt: CountOptions, *, file) -> tuple[str, float, str]:
    """The count column, the persons each unit of it stands for, and how to say it."""
    pop_column, households_column = opt.pop_column, opt.households_column
    persons_per_household = opt.persons_per_household
    if pop_column is not None and households_column is not None:
        raise DataError("both a population and a households column were given", file=file,
                        field=f"{pop_column}/{households_column}", fix="give one of them")
    if households_column is not None:
        col = _require_column(df, households_column, file, "households_column")
        return col, persons_per_household, f"households '{col}' × {persons_per_household:g} persons"
    if pop_column is not None:
        return _require_column(df, pop_column, file, "pop_column"), 1.0, f"'{pop_column}'"
    col = find_column(df.columns, "pop") or match_column(df.columns, _POP_ALIASES)
    if col is not None:
        return col, 1.0, f"'{col}'"
    col = match_column(df.columns, _HOUSEHOLD_ALIASES)
    if col is not None:
        return col, persons_per_household, f"households '{col}' × {persons_per_household:g} persons"
    raise DataError(f"no population or household column (numeric columns found: "
                    f"{', '.join(_numeric_columns(df)) or 'none'})", file=file, field="pop",
                    fix="name it pop (人口/人数) or households (户数), or pass pop_column= / households_column=")


def _counts(df: pd.DataFrame, col: str, per_unit: float, file, *, drop_invalid: bool
            ) -> tuple[np.ndarray, list[dict], list[str], dict]:
    """People per row, exclusions, notes and counts; an invalid count is an error unless dropped."""
    raw, why, grouped = parse_counts(df[col])
    excl = check_values(df, col, why, file, drop_invalid=drop_invalid)
    if not np.nansum(raw) > 0:
        raise DataError(f"no people in column '{col}' (every row 0" + (" or invalid)" if excl else ")"),
                        file=file, field=col, fix="check the column holds people or household counts")
    notes, counts = [], {}
    if grouped.any():
        counts["thousands_separators"] = int(grouped.sum())
        notes.append(f"read {int(grouped.sum()):,} '{col}' values written with thousands separators "
                     f"(such as 1,200) as whole numbers (rows {row_list(grouped, first_row_of(df))})")
    return np.nan_to_num(raw) * per_unit, excl, notes, counts


def _groups(df: pd.DataFrame, group_columns, file, *, drop_invalid: bool
            ) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Group counts (children, elderly...), carried as weights: checked like the counts; a dropped
    group value is taken as 0 while the row's people stay."""
    out, excl = {}, []
    for g in group_columns:
        _require_column(df, g, file, "group_columns")
        vals, why, _ = parse_counts(df[g])
        excl += check_values(df, g, why, file, drop_invalid=drop_invalid, taken="taken as 0")
        out[g] = np.nan_to_num(vals)
    return out, excl


def _frame(source, what: str):
    if isinstance(source, pd.DataFrame):
        if not len(source):
            raise DataError(f"the {what} table has no rows", fix="give a table with one row per place")
        return source, None
    return read_table(source, what=what), source


# ---------------------------------------------------------------- points

def from_points(source: str | Path | pd.DataFrame, **options) -> Demand:
    """Points with counts (building entrances, 小区 centroids), each a demand point.

    Parameters
    ----------
    source
        A table with lon/lat (经度/纬度) or x/y columns, a point layer, or a (Geo)DataFrame.
    **options
        The fields of :class:`CountOptions`: ``pop_column``, ``households_column``,
        ``persons_per_household``, ``crs``, ``group_columns``, ``drop_invalid``.

    Returns
    -------
    Demand

    """
    df, file = _frame(source, "population points")
    return _from_points(df, file, CountOptions.from_options(options))


def _from_points(df: pd.DataFrame, file, opt: CountOptions) -> Demand:
    if isinstance(df, gpd.GeoDataFrame) and df.crs is None and opt.crs is None:
        raise DataError("the population layer has no CRS", file=file, field="crs",
                        fix="pass crs= (--population-crs), e.g. EPSG:4547, or save it with one")
    col, per_unit, what = _count_column(df, opt, file=file)
    pop, excl, notes, counts = _counts(df, col, per_unit, file, drop_invalid=opt.drop_invalid)
    groups, gexcl = _groups(df, opt.group_columns, file, drop_invalid=opt.drop_invalid)
    lon, lat, problems = table_points(df, crs=opt.crs or "wgs84", file=file)
    if problems and problems[0]["row"] is None:
        raise DataError(problems[0]["problem"], file=file, field=problems[0]["field"], fix=problems[0]["fix"])
    located = np.isfinite(lon) & np.isfinite(lat)
    if not located.any():
        raise DataError("no row has usable coordinates", file=file, field="lon/lat",
                        fix=problems[0]["fix"] if problems else "check the coordinate columns")
    excl += _not_located(problems, located, pop, first_row_of(df))
    keep = located & (pop > 0)
    name = Path(str(file)).name if file is not None else "table"
    label = f"points {name}, {what}"
    pts = gpd.GeoDataFrame({"pop": pop[keep], "source": f"points: {name}"},
                           geometry=shapely.points(lon[keep], lat[keep]), crs=4326)
    for g, vals in groups.items():
        pts[g] = vals[keep]
    return make_demand(pts, float(pop.sum()), excl + gexcl, label, notes=notes, counts=counts)


def _not_located(problems: list[dict], located: np.ndarray, pop: np.ndarray, first_row: int) -> list[dict]:
    """One exclusion per coordinate problem, with the people of its rows."""
    first_problem = {}
    for p in problems:
        first_problem.setdefault(p["row"], f"{p['problem']} ({p['field']})")
    missing = np.flatnonzero(~located)
    # Every unlocated row has a problem: whichever numbering (data row from 1, or the
    # spreadsheet row) gives exactly those rows is the one table_points used.
    offset = first_row if set(first_problem) == set((missing + first_row).tolist()) else 1
    out = []
    for problem in dict.fromkeys(first_problem.values()):
        mask = np.zeros(len(located), dtype=bool)
        pos = np.array([r - offset for r, q in first_problem.items() if q == problem], dtype=int)
        mask[pos[(pos >= 0) & (pos < len(mask))]] = True
        mask &= ~located
        if mask.any():
            out.append({"reason": f"not located: {problem}", "pop": float(pop[mask].sum()),
                        "rows": row_list(mask, first_row), "n": int(mask.sum())})
    return out


# ---------------------------------------------------------------- polygons

def _with_crs(gdf: gpd.GeoDataFrame, crs, file, what: str) -> gpd.GeoDataFrame:
    """``gdf`` in a real CRS: a layer without one takes ``crs`` (GCJ-02/BD-09 converted to WGS-84)."""
    if gdf.crs is not None:
        return gdf
    if crs is None:
        raise DataError(f"the {what} have no CRS", file=file, field="crs",
                        fix="pass crs= (--population-crs), e.g. EPSG:4547, or save them with one (a .prj)")
    c = parse_crs(crs)
    if isinstance(c, str):  # gcj02 / bd09: a formula, not a PROJ system
        geoms = shapely.transform(gdf.geometry.to_numpy(), lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1], c)))
        return gdf.set_geometry(gpd.GeoSeries(geoms, index=gdf.index, crs=4326))
    return gdf.set_crs(c)


def from_polygons(source: str | Path | gpd.GeoDataFrame, *, residential=None,
                  spacing_metres: float = 50.0, **options) -> Demand:
    """Polygons or grid cells with a count (or households), spread over their residential parts.

    Each polygon's people go to the residential buildings in it, by floor area (footprint ×
    levels); without buildings, to the residential land use in it, by area; without either,
    evenly over the whole polygon. Each part's share is spread over the points of one regular
    ``spacing_metres`` lattice inside it (a part holding none gets its representative point).
    Every polygon keeps exactly its count; ``counts["spread"]`` says how many went each way.

    Parameters
    ----------
    source
        A polygon layer (GeoPackage, GeoJSON, Shapefile...) or a GeoDataFrame, in any CRS.
    residential
        Residential buildings or land use: an OSM extract, a polygon file or a GeoDataFrame in
        any CRS (see :func:`circles.population_residential.read_residential`).
    spacing_metres
        The grid spacing of the points.
    **options
        The fields of :class:`CountOptions` (``pop_column``, ``households_column``,
        ``persons_per_household``, ``crs`` of a layer that has none, ``group_columns``, split like
        ``pop``, ``drop_invalid``).

    Returns
    -------
    Demand

    """
    gdf, file = _frame(source, "population polygons")
    return _from_polygons(gdf, file, CountOptions.from_options(options), residential=residential,
                          spacing_metres=spacing_metres)


def _from_polygons(gdf: pd.DataFrame, file, opt: CountOptions, *, residential, spacing_metres: float,
                   area=None) -> Demand:
    from .population_residential import read_residential, spread, spread_note

    if not isinstance(gdf, gpd.GeoDataFrame):
        raise DataError("population polygons need a geometry", file=file,
                        fix="give a GeoPackage/Shapefile/GeoJSON of polygons, or a point table with lon/lat")
    first_row = first_row_of(gdf)
    gdf = _with_crs(gdf, opt.crs, file, "population polygons")
    col, per_unit, what = _count_column(gdf, opt, file=file)
    counts, excl, notes, tally = _counts(gdf, col, per_unit, file, drop_invalid=opt.drop_invalid)
    groups, gexcl = _groups(gdf, opt.group_columns, file, drop_invalid=opt.drop_invalid)
    geoms = gdf.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        excl.append({"reason": "not located: no geometry", "pop": float(counts[empty].sum()),
                     "rows": row_list(empty, first_row), "n": int(empty.sum())})
        if empty.all():
            raise DataError("no row has a geometry", file=file, field="geometry", fix="export the layer again")
    keep = ~empty & (counts > 0)
    if not keep.any():
        raise DataError("no row with people has a geometry", file=file, field="geometry",
                        fix="draw the polygons of the rows that have counts")
    local = gdf[keep].estimate_utm_crs()
    res = read_residential(residential, area=area)
    owner, x, y, share, method = spread(gdf.geometry[keep].to_crs(local).to_numpy(),
                                        None if res is None else res.to_crs(local), spacing_metres)
    lon, lat = to_wgs84(x, y, local)
    name = Path(str(file)).name if file is not None else "polygons"
    tally["spread"], note = spread_note(method, "polygons", layer=res is not None)
    notes.append(note)
    out = gpd.GeoDataFrame({"pop": counts[keep][owner] * share,
                            "source": np.char.add(f"polygons: {name}, ", method)[owner]},
                           geometry=shapely.points(lon, lat), crs=4326)
    for g, vals in groups.items():
        out[g] = vals[keep][owner] * share
    label = f"polygons {name}, {what}, " + ("spread over residential parts" if res is not None else "spread evenly")
    return make_demand(out, float(counts.sum()), excl + gexcl, label, notes=notes, counts=tally)


# ---------------------------------------------------------------- dispatcher

def read_population(source: str | Path | pd.DataFrame | Demand | None, *, area=None,
                    osm_path: str | Path | None = None, residential=None, **options) -> Demand:
    """Read any population source, choosing the reader by the file.

    Parameters
    ----------
    source
        A raster (``.tif``...) → :func:`from_raster`; a polygon layer → :func:`from_polygons`;
        a point layer or a table with coordinates → :func:`from_points`; ``None``, ``"osm"`` or
        an OSM extract → :func:`estimate_from_osm` (of ``osm_path``, or of the extract given).
    area
        The study area (a WGS-84 polygon) that rasters and OSM estimates are clipped to;
        :func:`circles.read_population` takes it from the network.
    osm_path
        The OSM extract to estimate from when no source is given.
    residential
        Residential buildings or land use to spread polygon counts over: a GeoDataFrame, a
        polygon file, or an OSM extract (its residential buildings and land use,
        :func:`osm_residential`); see :func:`from_polygons`.
    **options
        The fields of :class:`CountOptions` (``pop_column``, ``households_column``,
        ``persons_per_household``, ``crs``, ``group_columns``, ``drop_invalid``: rows or raster
        cells with invalid counts are excluded and counted instead of raising).

    Returns
    -------
    Demand

    """
    from .osm import is_osm_file
    from .population_osm import estimate_from_osm
    from .population_raster import from_raster

    if isinstance(source, Demand):
        return source
    opt = CountOptions.from_options(options)
    if source is None or (isinstance(source, str) and source.lower() == "osm") or (
            isinstance(source, str | Path) and is_osm_file(source)):
        osm = osm_path if source is None or str(source).lower() == "osm" else source
        if osm is None:
            raise DataError("no population given and no OSM extract to estimate it from",
                            fix="give --population (a raster, polygons or points)")
        return estimate_from_osm(osm, area=area)
    if isinstance(source, str | Path) and Path(source).suffix.lower() in _RASTER_SUFFIXES:
        return from_raster(source, area=area, drop_invalid=opt.drop_invalid, residential=residential)
    df, file = _frame(source, "population")
    geoms = df.geometry.to_numpy() if isinstance(df, gpd.GeoDataFrame) else np.array([])
    if np.isin(shapely.get_type_id(geoms), (3, 6)).any():
        return _from_polygons(df, file, opt, residential=residential, spacing_metres=50.0, area=area)
    return _from_points(df, file, opt)
