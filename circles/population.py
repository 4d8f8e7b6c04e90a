"""Population sources turned into weighted demand points.

A raster (WorldPop, GHS-POP, a city's grid), polygons or grid cells with counts or households,
points with counts, or — when nothing is given — an estimate from OSM residential buildings and
land use, labelled an estimate everywhere it appears. Every person read is either in a demand
point or in a row of ``excluded`` with its reason: ``points.pop.sum() + excluded.pop.sum() ==
input_pop``, nothing is silently lost. Counts that are not people (missing, non-numeric,
negative) are listed in ``excluded`` with ``pop`` 0: they were never people to lose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .crs import parse_crs, to_wgs84
from .errors import DataError
from .tables import find_column, read_table, table_points

__all__ = ["PERSONS_PER_HOUSEHOLD", "Demand", "from_points", "from_polygons", "read_population"]

PERSONS_PER_HOUSEHOLD = 2.62  # China's 2020 census: 2.62 persons per family household
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".asc")
_POP_ALIASES = ("总人口", "居住人口", "户籍人口", "人口数", "people", "residents")  # beyond tables.ALIASES
_HOUSEHOLD_ALIASES = ("households", "household", "hh", "户数", "住户数", "总户数", "家庭户数")
_MAX_LISTED_ROWS = 50
_MAX_GRID_POINTS = 20_000_000

# The raster reader and the OSM estimate live in their own modules (they use this one's helpers);
# ``circles.population.from_raster`` etc. still reach them, imported on first use.
_ELSEWHERE = {"from_raster": "population_raster", "estimate_from_osm": "population_osm",
              "osm_residential": "population_osm"}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f".{_ELSEWHERE[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Demand:
    """Weighted demand points and the account of everyone read.

    Attributes
    ----------
    points : geopandas.GeoDataFrame
        WGS-84 points: ``pop`` (float), ``source``, and group columns (``children``...) split
        the same way as ``pop``. ``points.attrs`` carries ``label`` and ``is_estimate`` too.
    input_pop : float
        Everyone read: ``points.pop.sum() + excluded.pop.sum()``.
    excluded : pandas.DataFrame
        ``reason``, ``pop``, ``rows`` (1-based data rows, or a cell count): what was read but
        not turned into points. Reasons containing "outside" are people outside the study area.
    is_estimate : bool
        True for the OSM estimate.
    label : str
        Where the numbers come from (starts with "estimate" when they are one).

    """

    points: gpd.GeoDataFrame
    input_pop: float
    excluded: pd.DataFrame = field(default_factory=lambda: _excluded([]))
    is_estimate: bool = False
    label: str = ""

    @property
    def excluded_pop(self) -> float:
        """People read but not turned into points."""
        return float(self.excluded["pop"].sum()) if len(self.excluded) else 0.0

    def summary(self) -> str:
        """A few lines for a log or the CLI: source, people read, points, exclusions."""
        lines = [f"population: {self.label}",
                 f"  read {self.input_pop:,.0f} people; {self.points['pop'].sum():,.0f} in "
                 f"{len(self.points):,} demand points"]
        lines += [f"  excluded {r.pop:,.0f}: {r.reason} (rows {r.rows})" for r in self.excluded.itertuples()]
        return "\n".join(lines)


def _excluded(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["reason", "pop", "rows"]).astype({"pop": float})


def _rows(mask: np.ndarray) -> str:
    idx = np.flatnonzero(mask) + 1
    text = ",".join(map(str, idx[:_MAX_LISTED_ROWS]))
    return text + (f",… ({len(idx)} rows)" if len(idx) > _MAX_LISTED_ROWS else "")


def _demand(points: gpd.GeoDataFrame, input_pop: float, excl: list[dict], label: str, *,
            is_estimate: bool = False) -> Demand:
    excluded = _excluded(excl)
    located = float(points["pop"].sum())
    if abs(located + float(excluded["pop"].sum()) - input_pop) > 1e-6 * max(1.0, input_pop):
        raise RuntimeError(f"population not conserved: {located} + {excluded['pop'].sum()} != {input_pop}")
    points = points.reset_index(drop=True)
    points.attrs.update(label=label, is_estimate=is_estimate)
    return Demand(points=points, input_pop=float(input_pop), excluded=excluded,
                  is_estimate=is_estimate, label=label)


# ---------------------------------------------------------------- columns and counts

def _numeric_columns(df: pd.DataFrame) -> list[str]:
    geom = df.geometry.name if isinstance(df, gpd.GeoDataFrame) else None
    return [str(c) for c in df.columns if c != geom and _numbers(df[c]).notna().any()]


def _numbers(s: pd.Series) -> pd.Series:
    # Spreadsheets exported in China often write 12,345 with a thousands separator.
    if not pd.api.types.is_numeric_dtype(s):
        s = s.astype(str).str.replace(",", "", regex=False).str.replace("，", "", regex=False).str.strip()
    return pd.to_numeric(s, errors="coerce")


def _match(columns, aliases: tuple[str, ...]) -> str | None:
    wanted = {a.lower().replace("_", "").replace(" ", "") for a in aliases}
    return next((c for c in columns if str(c).strip().lower().replace("_", "").replace(" ", "") in wanted), None)


def _require_column(df: pd.DataFrame, name: str, file, option: str) -> str:
    if name not in df.columns:
        raise DataError(f"no column '{name}' (numeric columns found: {', '.join(_numeric_columns(df)) or 'none'})",
                        file=file, field=name, fix=f"pass {option}= naming one of the numeric columns")
    return name


def _count_column(df: pd.DataFrame, *, pop_column: str | None, households_column: str | None,
                  persons_per_household: float, file) -> tuple[str, float, str]:
    """The count column, the persons each unit of it stands for, and how to say it."""
    if pop_column is not None and households_column is not None:
        raise DataError("both a population and a households column were given", file=file,
                        field=f"{pop_column}/{households_column}", fix="give one of them")
    if households_column is not None:
        col = _require_column(df, households_column, file, "households_column")
        return col, persons_per_household, f"households '{col}' × {persons_per_household:g} persons"
    if pop_column is not None:
        return _require_column(df, pop_column, file, "pop_column"), 1.0, f"'{pop_column}'"
    col = find_column(df.columns, "pop") or _match(df.columns, _POP_ALIASES)
    if col is not None:
        return col, 1.0, f"'{col}'"
    col = _match(df.columns, _HOUSEHOLD_ALIASES)
    if col is not None:
        return col, persons_per_household, f"households '{col}' × {persons_per_household:g} persons"
    raise DataError(f"no population or household column (numeric columns found: "
                    f"{', '.join(_numeric_columns(df)) or 'none'})", file=file, field="pop",
                    fix="name it pop (人口/人数) or households (户数), or pass pop_column= / households_column=")


def _counts(df: pd.DataFrame, col: str, per_unit: float, file) -> tuple[np.ndarray, list[dict]]:
    """People per row; missing, non-numeric and negative counts count nothing and are listed."""
    raw = _numbers(df[col]).to_numpy(float)
    missing = ~np.isfinite(raw)
    negative = ~missing & (raw < 0)
    if (missing | negative).all() or not np.nansum(np.where(negative, 0, raw)) > 0:
        raise DataError(f"no people in column '{col}' (every row missing, non-numeric, negative or 0)",
                        file=file, field=col, fix="check the column holds people or household counts")
    excl = []
    if missing.any():
        excl.append({"reason": f"missing or non-numeric '{col}' (not counted)", "pop": 0.0, "rows": _rows(missing)})
    if negative.any():
        excl.append({"reason": f"negative '{col}' (not people, not counted)", "pop": 0.0, "rows": _rows(negative)})
    return np.where(missing | negative, 0.0, raw) * per_unit, excl


def _groups(df: pd.DataFrame, group_columns, file) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Group counts (children, elderly...), carried as weights; bad values count as 0 and are listed."""
    out, excl = {}, []
    for g in group_columns:
        _require_column(df, g, file, "group_columns")
        vals = _numbers(df[g]).to_numpy(float)
        bad = ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            excl.append({"reason": f"missing, non-numeric or negative group count '{g}' (taken as 0)",
                         "pop": 0.0, "rows": _rows(bad)})
        out[g] = np.where(bad, 0.0, vals)
    return out, excl


def _frame(source, what: str):
    if isinstance(source, pd.DataFrame):
        if not len(source):
            raise DataError(f"the {what} table has no rows", fix="give a table with one row per place")
        return source, None
    return read_table(source, what=what), source


# ---------------------------------------------------------------- points

def from_points(source: str | Path | pd.DataFrame, *, pop_column: str | None = None,
                households_column: str | None = None,
                persons_per_household: float = PERSONS_PER_HOUSEHOLD, crs: str | None = None,
                group_columns: tuple[str, ...] = ()) -> Demand:
    """Points with counts (building entrances, 小区 centroids), each a demand point.

    Parameters
    ----------
    source
        A table with lon/lat (经度/纬度) or x/y columns, a point layer, or a (Geo)DataFrame.
    pop_column
        The count column (default: pop/population/人口/人数, else households/户数).
    households_column
        A households column instead, × ``persons_per_household``.
    persons_per_household
        Persons per household (2.62, China's 2020 census).
    crs
        Coordinates of a table (``wgs84``, ``gcj02``, ``bd09``, ``cgcs2000``, ``EPSG:code``), or of
        a layer without a CRS.
    group_columns
        Columns counting population groups (children 0-6, 60+...), carried along.

    Returns
    -------
    Demand

    """
    df, file = _frame(source, "population points")
    return _from_points(df, file, pop_column=pop_column, households_column=households_column,
                        persons_per_household=persons_per_household, crs=crs, group_columns=group_columns)


def _from_points(df: pd.DataFrame, file, *, pop_column, households_column, persons_per_household, crs,
                 group_columns) -> Demand:
    if isinstance(df, gpd.GeoDataFrame) and df.crs is None and crs is None:
        raise DataError("the population layer has no CRS", file=file, field="crs",
                        fix="pass crs= (--population-crs), e.g. EPSG:4547, or save it with one")
    col, per_unit, what = _count_column(df, pop_column=pop_column, households_column=households_column,
                                        persons_per_household=persons_per_household, file=file)
    pop, excl = _counts(df, col, per_unit, file)
    groups, gexcl = _groups(df, group_columns, file)
    lon, lat, problems = table_points(df, crs=crs or "wgs84", file=file)
    if problems and problems[0]["row"] is None:
        raise DataError(problems[0]["problem"], file=file, field=problems[0]["field"], fix=problems[0]["fix"])
    located = np.isfinite(lon) & np.isfinite(lat)
    if not located.any():
        raise DataError("no row has usable coordinates", file=file, field="lon/lat",
                        fix=problems[0]["fix"] if problems else "check the coordinate columns")
    first_problem = {}
    for p in problems:
        first_problem.setdefault(p["row"], f"{p['problem']} ({p['field']})")
    for problem in dict.fromkeys(first_problem.values()):
        mask = np.zeros(len(df), dtype=bool)
        mask[[r - 1 for r, q in first_problem.items() if q == problem]] = True
        mask &= ~located
        if mask.any():
            excl.append({"reason": f"not located: {problem}", "pop": float(pop[mask].sum()), "rows": _rows(mask)})
    keep = located & (pop > 0)
    name = Path(str(file)).name if file is not None else "table"
    label = f"points {name}, {what}"
    pts = gpd.GeoDataFrame({"pop": pop[keep], "source": f"points: {name}"},
                           geometry=shapely.points(lon[keep], lat[keep]), crs=4326)
    for g, vals in groups.items():
        pts[g] = vals[keep]
    return _demand(pts, float(pop.sum()), excl + gexcl, label)


# ---------------------------------------------------------------- polygons

def _grid_points(geoms: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points of one regular lattice inside each projected geometry: (owner, x, y).

    The lattice is shared, so neighbouring polygons tile without gaps or doubles; a geometry
    holding no lattice point (smaller than a cell) gets its representative point.
    """
    b = shapely.bounds(geoms)
    i0 = np.ceil(b[:, 0] / spacing - 0.5)
    j0 = np.ceil(b[:, 1] / spacing - 0.5)
    nx = np.maximum(np.floor(b[:, 2] / spacing - 0.5) - i0 + 1, 0).astype(np.int64)
    ny = np.maximum(np.floor(b[:, 3] / spacing - 0.5) - j0 + 1, 0).astype(np.int64)
    per = nx * ny
    if per.sum() > _MAX_GRID_POINTS:
        raise DataError(f"the polygons span too large an area for a {spacing:g} m grid "
                        f"({per.sum():,} candidate points)", fix="clip them to the study area first")
    owner = np.repeat(np.arange(len(geoms)), per)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(per) - per, per)
    x = (i0[owner] + k % np.maximum(nx[owner], 1) + 0.5) * spacing
    y = (j0[owner] + k // np.maximum(nx[owner], 1) + 0.5) * spacing
    shapely.prepare(geoms)
    inside = shapely.contains_xy(geoms[owner], x, y)
    owner, x, y = owner[inside], x[inside], y[inside]
    lone = np.setdiff1d(np.arange(len(geoms)), owner)
    rep = shapely.point_on_surface(geoms[lone])
    return (np.concatenate([owner, lone]), np.concatenate([x, shapely.get_x(rep)]),
            np.concatenate([y, shapely.get_y(rep)]))


def _spread(polys: np.ndarray, residential: np.ndarray | None, spacing: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points sharing each polygon's people: (owner, x, y, share), shares of a polygon summing to 1.

    A polygon overlapping ``residential`` gives each residential piece of it a share by area,
    split equally over the piece's grid points; any other polygon is split uniformly.
    """
    n = len(polys)
    pieces, owner, weight = polys, np.arange(n), np.ones(n)
    if residential is not None and len(residential):
        pi, rj = shapely.STRtree(residential).query(polys, predicate="intersects")
        parts, part_of = shapely.get_parts(shapely.intersection(polys[pi], residential[rj]), return_index=True)
        area = shapely.area(parts)
        ok = area > 0  # touching edges and lines are no residential area
        parts, part_owner, area = parts[ok], pi[part_of[ok]], area[ok]
        res_area = np.bincount(part_owner, weights=area, minlength=n)
        bare = np.flatnonzero(res_area <= 0)
        pieces = np.concatenate([parts, polys[bare]])
        owner = np.concatenate([part_owner, bare])
        weight = np.concatenate([area / res_area[part_owner], np.ones(len(bare))])
    piece, x, y = _grid_points(pieces, spacing)
    share = weight[piece] / np.bincount(piece, minlength=len(pieces))[piece]
    return owner[piece], x, y, share


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


def _valid(geoms: np.ndarray) -> np.ndarray:
    # Self-intersecting rings from hand-drawn layers would make the intersections fail.
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def from_polygons(source: str | Path | gpd.GeoDataFrame, *, pop_column: str | None = None,
                  households_column: str | None = None,
                  persons_per_household: float = PERSONS_PER_HOUSEHOLD,
                  residential: gpd.GeoDataFrame | None = None, crs: str | None = None,
                  group_columns: tuple[str, ...] = (), spacing_metres: float = 50.0) -> Demand:
    """Polygons or grid cells with a count (or households), split over their residential parts.

    Each polygon's people are spread over points of a regular ``spacing_metres`` grid inside it
    (at least one point, its representative point). Where ``residential`` polygons (OSM
    residential land use or buildings, see :func:`osm_residential`) overlap it, its people go to
    those parts only, by area; otherwise the split is uniform.

    Parameters
    ----------
    source
        A polygon layer (GeoPackage, GeoJSON, Shapefile...) or a GeoDataFrame, in any CRS.
    pop_column
        The count column (default: pop/population/人口/人数, else households/户数).
    households_column
        A households column instead, × ``persons_per_household``.
    persons_per_household
        Persons per household (2.62, China's 2020 census).
    residential
        Residential polygons (any CRS) to split over.
    crs
        The CRS of a layer that has none (``EPSG:code``, ``gcj02``...).
    group_columns
        Columns counting population groups, split like ``pop``.
    spacing_metres
        The grid spacing of the points.

    Returns
    -------
    Demand

    """
    gdf, file = _frame(source, "population polygons")
    return _from_polygons(gdf, file, pop_column=pop_column, households_column=households_column,
                          persons_per_household=persons_per_household, residential=residential, crs=crs,
                          group_columns=group_columns, spacing_metres=spacing_metres)


def _from_polygons(gdf: pd.DataFrame, file, *, pop_column, households_column, persons_per_household,
                   residential, crs, group_columns, spacing_metres) -> Demand:
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise DataError("population polygons need a geometry", file=file,
                        fix="give a GeoPackage/Shapefile/GeoJSON of polygons, or a point table with lon/lat")
    gdf = _with_crs(gdf, crs, file, "population polygons")
    col, per_unit, what = _count_column(gdf, pop_column=pop_column, households_column=households_column,
                                        persons_per_household=persons_per_household, file=file)
    counts, excl = _counts(gdf, col, per_unit, file)
    groups, gexcl = _groups(gdf, group_columns, file)
    geoms = gdf.geometry.to_numpy()
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        excl.append({"reason": "not located: no geometry", "pop": float(counts[empty].sum()), "rows": _rows(empty)})
        if empty.all():
            raise DataError("no row has a geometry", file=file, field="geometry", fix="export the layer again")
    keep = ~empty & (counts > 0)
    if not keep.any():
        raise DataError("no row with people has a geometry", file=file, field="geometry",
                        fix="draw the polygons of the rows that have counts")
    local = gdf[keep].estimate_utm_crs()
    polys = _valid(gdf.geometry[keep].to_crs(local).to_numpy())
    res = None
    if residential is not None and len(residential):
        r = _with_crs(residential, None, None, "residential polygons").to_crs(local).geometry.to_numpy()
        r = r[np.isin(shapely.get_type_id(r), (3, 6))]
        # Overlapping residential features (land use and its buildings) must not count twice.
        res = shapely.get_parts(shapely.union_all(_valid(r))) if len(r) else None
    owner, x, y, share = _spread(polys, res, spacing_metres)
    lon, lat = to_wgs84(x, y, local)
    name = Path(str(file)).name if file is not None else "polygons"
    split = "area-weighted over residential parts" if res is not None else "uniform"
    out = gpd.GeoDataFrame({"pop": counts[keep][owner] * share, "source": f"polygons: {name}"},
                           geometry=shapely.points(lon, lat), crs=4326)
    for g, vals in groups.items():
        out[g] = vals[keep][owner] * share
    return _demand(out, float(counts.sum()), excl + gexcl, f"polygons {name}, {what}, {split}")


def _area_wgs84(area):
    if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries):
        return shapely.union_all(area.to_crs(4326).geometry.to_numpy())
    return area


# ---------------------------------------------------------------- dispatcher

def read_population(source: str | Path | pd.DataFrame | Demand | None, *, network=None,
                    pop_column: str | None = None, households_column: str | None = None,
                    crs: str | None = None, osm_path: str | Path | None = None, profile=None,
                    group_columns: tuple[str, ...] = (), residential=None) -> Demand:
    """Read any population source, choosing the reader by the file.

    Parameters
    ----------
    source
        A raster (``.tif``...) → :func:`from_raster`; a polygon layer → :func:`from_polygons`;
        a point layer or a table with coordinates → :func:`from_points`; ``None``, ``"osm"`` or
        an OSM extract → :func:`estimate_from_osm` (of ``osm_path``, or of the extract given).
    network
        The walking network: the study area is its hull widened by the profile's snap cap.
    pop_column, households_column
        The count column, or a households column (× the profile's persons per household).
    crs
        The CRS of a table's coordinates or of a layer without one.
    osm_path
        The OSM extract to estimate from when no source is given.
    profile
        The profile (snap cap; ``standards["persons_per_household"]``, default 2.62).
    group_columns
        Columns counting population groups, carried along.
    residential
        Residential polygons to split polygon counts over: a GeoDataFrame, a polygon file, or an
        OSM extract (its residential land use and buildings, :func:`osm_residential`).

    Returns
    -------
    Demand

    """
    from .osm import is_osm_file
    from .population_osm import estimate_from_osm, osm_residential
    from .population_raster import from_raster

    if isinstance(source, Demand):
        return source
    pph = float((getattr(profile, "standards", None) or {}).get("persons_per_household", PERSONS_PER_HOUSEHOLD))
    area = None
    if network is not None:
        cap = float(getattr(profile, "snap_cap_metres", 300.0) or 300.0)
        area = gpd.GeoSeries([network.hull.buffer(cap)], crs=network.crs).to_crs(4326).iloc[0]
    if source is None or (isinstance(source, str) and source.lower() == "osm") or (
            isinstance(source, str | Path) and is_osm_file(source)):
        osm = osm_path if source is None or str(source).lower() == "osm" else source
        if osm is None:
            raise DataError("no population given and no OSM extract to estimate it from",
                            fix="give --population (a raster, polygons or points)")
        return estimate_from_osm(osm, area=area)
    if isinstance(source, str | Path) and Path(source).suffix.lower() in _RASTER_SUFFIXES:
        return from_raster(source, area=area)
    df, file = _frame(source, "population")
    opts = {"pop_column": pop_column, "households_column": households_column,
            "persons_per_household": pph, "crs": crs, "group_columns": tuple(group_columns)}
    geoms = df.geometry.to_numpy() if isinstance(df, gpd.GeoDataFrame) else np.array([])
    if np.isin(shapely.get_type_id(geoms), (3, 6)).any():
        if isinstance(residential, str | Path):
            residential = (osm_residential(residential, area=area) if is_osm_file(residential)
                           else read_table(residential, what="residential polygons"))
        return _from_polygons(df, file, residential=residential, spacing_metres=50.0, **opts)
    return _from_points(df, file, **opts)
