"""Population sources turned into weighted demand points.

A raster (WorldPop, GHS-POP, a city's grid), polygons or grid cells with counts or households,
points with counts, or — when nothing is given — an estimate from OSM residential land use and
buildings, labelled an estimate everywhere it appears. Every person read is either a demand point
or a row of ``excluded`` with its reason: nothing is silently lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .errors import DataError, InputFileError
from .tables import find_column, read_table, table_points

__all__ = ["Demand", "estimate_from_osm", "from_points", "from_polygons", "from_raster",
           "read_population"]

_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img")
_DEFAULT_DENSITY = 25_000.0  # people per km² of residential land, central Chengdu order of magnitude
_RESIDENTIAL_BUILDINGS = ("apartments", "residential", "house", "dormitory", "detached",
                          "terrace", "semidetached_house")


@dataclass
class Demand:
    """Weighted demand points and the account of everyone read.

    Attributes
    ----------
    points : geopandas.GeoDataFrame
        WGS-84 points with ``pop`` (and group columns such as ``children``), ``source``.
    input_pop : float
        Everyone read: ``points.pop.sum() + excluded.pop.sum()``.
    excluded : pandas.DataFrame
        ``reason``, ``pop``, ``rows``: people read but not turned into points.
    is_estimate : bool
        True for the OSM estimate.
    label : str
        Where the numbers come from (says "estimate" when they are one).

    """

    points: gpd.GeoDataFrame
    input_pop: float
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["reason", "pop", "rows"]))
    is_estimate: bool = False
    label: str = ""


def _excluded(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["reason", "pop", "rows"])


def _counts(df: pd.DataFrame, col: str, file) -> tuple[np.ndarray, list[dict]]:
    """Numeric counts; NaN and negative ones become exclusions (and count nothing)."""
    raw = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
    bad_nan = ~np.isfinite(raw)
    bad_neg = np.isfinite(raw) & (raw < 0)
    if (bad_nan | bad_neg).all():
        raise DataError(f"no usable count in column '{col}' (all missing, non-numeric or negative)",
                        file=file, field=col, fix="check the column holds people counts")
    excl = []
    if bad_nan.any():
        excl.append({"reason": f"missing or non-numeric '{col}' (not counted)", "pop": 0.0,
                     "rows": ",".join(map(str, np.flatnonzero(bad_nan)[:50] + 1))})
    if bad_neg.any():
        excl.append({"reason": f"negative '{col}' (not people, not counted)", "pop": 0.0,
                     "rows": ",".join(map(str, np.flatnonzero(bad_neg)[:50] + 1))})
    return np.where(bad_nan | bad_neg, 0.0, raw), excl


def _count_column(df: pd.DataFrame, name: str | None, file, *, kind: str = "pop") -> str:
    if name is not None:
        if name not in df.columns:
            numeric = [c for c in df.columns if c != "geometry"
                       and pd.to_numeric(df[c], errors="coerce").notna().any()]
            raise DataError(f"no column '{name}' (numeric columns: {', '.join(map(str, numeric))})",
                            file=file, field=name, fix="give --pop-column one of those")
        return name
    found = find_column(df.columns, kind)
    if found is None:
        numeric = [c for c in df.columns if c != "geometry"
                   and pd.to_numeric(df[c], errors="coerce").notna().any()]
        raise DataError(f"no population column (numeric columns: {', '.join(map(str, numeric))})",
                        file=file, field="pop", fix="name it 'pop' (人口) or pass --pop-column")
    return found


def from_points(source: str | Path | gpd.GeoDataFrame, *, pop_column: str | None = None,
                crs: str | None = None, group_columns: tuple[str, ...] = ()) -> Demand:
    """Points with counts (building entrances, 小区 centroids).

    Parameters
    ----------
    source
        A table with lon/lat (or x/y in ``crs``) or a point layer.
    pop_column
        The count column (default: pop/population/人口/人数).
    crs
        Coordinates of a table, or of a layer without a CRS.
    group_columns
        Columns counting population groups (children, elderly...), carried along.

    """
    df = source if isinstance(source, pd.DataFrame) else read_table(source, what="population")
    file = None if isinstance(source, pd.DataFrame) else source
    col = _count_column(df, pop_column, file)
    pop, excl = _counts(df, col, file)
    if isinstance(df, gpd.GeoDataFrame) and df.crs is None and crs is None:
        raise DataError("the population layer has no CRS", file=file, field="crs",
                        fix="pass --population-crs EPSG:code")
    lon, lat, problems = table_points(df, crs=crs or "wgs84", file=file)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        excl.append({"reason": "no usable coordinates (not counted as located)", "pop": float(pop[bad].sum()),
                     "rows": ",".join(str(p["row"]) for p in problems[:50] if p.get("row"))})
    keep = ~bad & (pop > 0)
    pts = gpd.GeoDataFrame({"pop": pop[keep], "source": "points"},
                           geometry=shapely.points(lon[keep], lat[keep]), crs=4326)
    for g in group_columns:
        pts[g] = pd.to_numeric(df[g], errors="coerce").fillna(0).to_numpy(float)[keep]
    return Demand(points=pts, input_pop=float(pop.sum()), excluded=_excluded(excl),
                  label=f"points ({Path(str(file)).name if file else 'table'}, column {col})")


def _grid_points(polys: gpd.GeoSeries, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Regular grid points inside projected polygons: (polygon index, points); every polygon gets
    at least its representative point."""
    geoms = polys.to_numpy()
    minx, miny, maxx, maxy = polys.total_bounds
    xs = np.arange(minx + spacing / 2, maxx, spacing)
    ys = np.arange(miny + spacing / 2, maxy, spacing)
    if len(xs) * len(ys) > 20_000_000:
        raise DataError("the population polygons span too large an area for a 50 m grid",
                        fix="clip them to the study area first")
    gx, gy = np.meshgrid(xs, ys)
    grid = shapely.points(gx.ravel(), gy.ravel())
    tree = shapely.STRtree(grid)
    poly_idx, pt_idx = tree.query(geoms, predicate="contains")
    covered = np.zeros(len(geoms), dtype=bool)
    covered[poly_idx] = True
    lone = np.flatnonzero(~covered)
    poly_idx = np.concatenate([poly_idx, lone])
    pts = np.concatenate([grid[pt_idx], shapely.point_on_surface(geoms[lone])])
    return poly_idx, pts


def from_polygons(source: str | Path | gpd.GeoDataFrame, *, pop_column: str | None = None,
                  households_column: str | None = None, persons_per_household: float = 2.62,
                  residential: gpd.GeoDataFrame | None = None, crs: str | None = None,
                  group_columns: tuple[str, ...] = (), spacing_metres: float = 50.0) -> Demand:
    """Polygons or grid cells with a count (or households), split over their residential parts.

    The count of each polygon is spread over points on a ``spacing_metres`` grid inside it; where
    ``residential`` polygons (OSM residential land use or buildings) overlap it, only the points
    inside them take people (area-weighted); otherwise the split is uniform.
    """
    gdf = source if isinstance(source, gpd.GeoDataFrame) else read_table(source, what="population")
    file = None if isinstance(source, gpd.GeoDataFrame) else source
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise DataError("population polygons need a geometry", file=file,
                        fix="give a GeoPackage/Shapefile/GeoJSON of polygons, or a point table with lon/lat")
    if gdf.crs is None:
        if crs is None:
            raise DataError("the population polygons have no CRS", file=file, field="crs",
                            fix="pass --population-crs EPSG:code (or save them with a .prj)")
        gdf = gdf.set_crs(crs)
    if households_column is not None:
        col = _count_column(gdf, households_column, file, kind="households")
        counts, excl = _counts(gdf, col, file)
        counts = counts * persons_per_household
        label = f"households × {persons_per_household} ({col})"
    else:
        col = _count_column(gdf, pop_column, file)
        counts, excl = _counts(gdf, col, file)
        label = f"polygons ({col})"
    empty = gdf.geometry.isna().to_numpy() | gdf.geometry.is_empty.to_numpy()
    if empty.any():
        excl.append({"reason": "no geometry (not located)", "pop": float(counts[empty].sum()),
                     "rows": ",".join(map(str, np.flatnonzero(empty)[:50] + 1))})
    keep = ~empty & (counts > 0)
    polys = gdf[keep].reset_index(drop=True)
    local_crs = polys.estimate_utm_crs() if len(polys) else 3857
    proj = polys.geometry.to_crs(local_crs)
    idx, pts = _grid_points(proj, spacing_metres)
    weight = np.ones(len(pts))
    if residential is not None and len(residential):
        res = residential.to_crs(local_crs).geometry.to_numpy()
        inside = np.zeros(len(pts), dtype=bool)
        inside[shapely.STRtree(res).query(pts, predicate="within")[0]] = True
        # Only polygons with some residential point restrict their people to those points.
        has_res = np.bincount(idx, weights=inside, minlength=len(polys)) > 0
        weight = np.where(has_res[idx], inside.astype(float), 1.0)
    share = weight / np.bincount(idx, weights=weight, minlength=len(polys))[idx]
    pop = counts[keep][idx] * share
    lon, lat = gpd.GeoSeries(pts, crs=local_crs).to_crs(4326).pipe(lambda s: (s.x.to_numpy(), s.y.to_numpy()))
    out = gpd.GeoDataFrame({"pop": pop, "source": label}, geometry=shapely.points(lon, lat), crs=4326)
    for g in group_columns:
        vals = pd.to_numeric(gdf[g], errors="coerce").fillna(0).to_numpy(float)[keep]
        out[g] = vals[idx] * share
    out = out[share > 0].reset_index(drop=True)  # grid points outside the residential parts
    return Demand(points=out, input_pop=float(counts.sum()), excluded=_excluded(excl), label=label)


def from_raster(path: str | Path, *, area=None, max_cell_metres: float = 100.0) -> Demand:
    """A population raster read over the study area (cell centres; large cells split).

    Parameters
    ----------
    path
        A GeoTIFF (WorldPop, GHS-POP...).
    area
        The study area as a shapely geometry in WGS-84; the raster is read over its bounds.
    max_cell_metres
        Cells larger than this become a regular sub-grid of points sharing the cell's people.

    """
    import rasterio
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    path = Path(path)
    if not path.exists():
        raise InputFileError("the population raster does not exist", file=path, fix="check the path")
    with rasterio.open(path) as src:
        if src.crs is None:
            raise DataError("the raster has no CRS", file=path, field="crs",
                            fix="set it in a GIS program (WorldPop and GHS-POP ship with one)")
        if area is not None:
            b = transform_bounds("EPSG:4326", src.crs, *shapely.bounds(area))
            rb = src.bounds
            if b[0] >= rb.right or b[2] <= rb.left or b[1] >= rb.top or b[3] <= rb.bottom:
                raise DataError("the raster does not overlap the study area", file=path,
                                fix="use a raster that covers the network's city")
            win = from_bounds(*b, transform=src.transform).round_offsets().round_lengths()
            win = win.intersection(rasterio.windows.Window(0, 0, src.width, src.height))
        else:
            win = rasterio.windows.Window(0, 0, src.width, src.height)
        data = src.read(1, window=win, masked=True).astype(float)
        transform = src.window_transform(win)
        crs = src.crs
    values = data.filled(np.nan)
    nodata = np.ma.getmaskarray(data)
    bad_nan = ~nodata & ~np.isfinite(values)
    negative = ~nodata & np.isfinite(values) & (values < 0)
    excl = []
    if negative.any():
        excl.append({"reason": "negative cells (not people, not counted)", "pop": 0.0,
                     "rows": f"{int(negative.sum())} cells"})
    if bad_nan.any():
        excl.append({"reason": "NaN cells (not counted)", "pop": 0.0, "rows": f"{int(bad_nan.sum())} cells"})
    good = ~nodata & np.isfinite(values) & (values > 0)
    rows, cols = np.nonzero(good)
    pop = values[rows, cols]
    cell_x, cell_y = abs(transform.a), abs(transform.e)
    if crs.is_geographic:
        lat0 = transform.f + transform.e * (rows.mean() if len(rows) else 0)
        cell_m = max(cell_x * 111_320 * np.cos(np.radians(lat0)), cell_y * 110_540)
    else:
        cell_m = max(cell_x, cell_y)
    k = max(1, int(np.ceil(cell_m / max_cell_metres)))
    offs = (np.arange(k) + 0.5) / k
    ox, oy = np.meshgrid(offs, offs)
    cc = (cols[:, None] + ox.ravel()[None, :]).ravel()
    rr = (rows[:, None] + oy.ravel()[None, :]).ravel()
    xs, ys = rasterio.transform.xy(transform, rr - 0.5, cc - 0.5, offset="center")
    pts = gpd.GeoSeries(shapely.points(np.asarray(xs), np.asarray(ys)), crs=crs).to_crs(4326)
    out = gpd.GeoDataFrame({"pop": np.repeat(pop / (k * k), k * k), "source": f"raster {path.name}"},
                           geometry=pts.to_numpy(), crs=4326)
    return Demand(points=out, input_pop=float(pop.sum()), excluded=_excluded(excl),
                  label=f"raster {path.name}" + (f" (cells split {k}×{k})" if k > 1 else ""))


def estimate_from_osm(osm_path: str | Path, *, total_pop: float | None = None,
                      density_per_km2: float | None = None, area=None) -> Demand:
    """An estimate from OSM residential land use and buildings; labelled an estimate.

    People are spread by residential floor area: residential buildings (footprint × levels;
    6 levels when missing for apartments and residential, 2 for houses), and residential land
    use without mapped residential buildings (its area × a floor-area ratio of 2). The total is
    ``total_pop`` if given, else ``density_per_km2`` (default 25,000) × the residential land area.

    Parameters
    ----------
    osm_path
        The OSM extract.
    total_pop, density_per_km2
        How to scale the estimate.
    area
        Keep features inside this WGS-84 geometry.

    """
    from .osm import read_osm_features

    landuse = read_osm_features(osm_path, kind="landuse")
    if "landuse" in landuse:
        landuse = landuse[landuse["landuse"] == "residential"]
    landuse = landuse[shapely.get_type_id(landuse.geometry.to_numpy()) >= 3] if len(landuse) else landuse
    buildings = read_osm_features(osm_path, kind="buildings")
    if len(buildings):
        buildings = buildings[shapely.get_type_id(buildings.geometry.to_numpy()) >= 3]
    if not len(landuse) and not len(buildings):
        raise DataError("the extract has neither residential land use nor buildings to estimate "
                        "population from", file=osm_path,
                        fix="give a population raster, polygons or points with --population")
    crs = (landuse if len(landuse) else buildings).estimate_utm_crs()
    lu = landuse.to_crs(crs).geometry.to_numpy() if len(landuse) else np.array([], dtype=object)
    b = buildings.to_crs(crs) if len(buildings) else buildings
    in_lu = np.zeros(len(b), dtype=bool)
    if len(b) and len(lu):
        in_lu[shapely.STRtree(lu).query(shapely.centroid(b.geometry.to_numpy()), predicate="within")[0]] = True
    kind = b["building"].astype(str).to_numpy() if len(b) else np.array([])
    residential_b = np.isin(kind, _RESIDENTIAL_BUILDINGS) | ((kind == "yes") & in_lu)
    b = b[residential_b] if len(b) else b
    levels_default = np.where(b["building"].astype(str).to_numpy() == "house", 2.0, 6.0) if len(b) else np.array([])
    levels = (pd.to_numeric(b["building:levels"], errors="coerce").to_numpy(float)
              if len(b) and "building:levels" in b else np.full(len(b), np.nan))
    floor = b.geometry.area.to_numpy() * np.where(np.isfinite(levels) & (levels > 0), levels, levels_default) \
        if len(b) else np.array([])
    pts = [shapely.centroid(b.geometry.to_numpy())] if len(b) else []
    weights = [floor]
    if len(lu):
        has_b = np.zeros(len(lu), dtype=bool)
        if len(b):
            has_b[shapely.STRtree(b.geometry.to_numpy()).query(lu, predicate="intersects")[0]] = True
        bare = gpd.GeoSeries(lu[~has_b], crs=crs)
        if len(bare):
            idx, gp = _grid_points(bare, 50.0)
            cell_area = bare.area.to_numpy() / np.bincount(idx, minlength=len(bare))
            pts.append(gp)
            weights.append(cell_area[idx] * 2.0)  # floor-area ratio 2 where no building is mapped
    points = np.concatenate(pts)
    w = np.concatenate(weights)
    res_km2 = float(shapely.area(shapely.union_all(lu)) / 1e6) if len(lu) else float(floor.sum() / 2.0 / 1e6)
    if total_pop is None:
        density = density_per_km2 or _DEFAULT_DENSITY
        total_pop = density * res_km2
        how = f"{density:,.0f} people/km² of residential land ({res_km2:.2f} km²)"
    else:
        how = f"scaled to a total of {total_pop:,.0f}"
    pop = w / w.sum() * total_pop
    geo = gpd.GeoSeries(points, crs=crs).to_crs(4326)
    label = f"estimate: OSM residential buildings and land use, {how}"
    out = gpd.GeoDataFrame({"pop": pop, "source": label}, geometry=geo.to_numpy(), crs=4326)
    if area is not None:
        out = out[shapely.within(out.geometry.to_numpy(), area)]
    return Demand(points=out.reset_index(drop=True), input_pop=float(out["pop"].sum()),
                  excluded=_excluded([]), is_estimate=True, label=label)


def read_population(source: str | Path | None, *, network=None, pop_column: str | None = None,
                    households_column: str | None = None, crs: str | None = None,
                    osm_path: str | Path | None = None, profile=None,
                    group_columns: tuple[str, ...] = ()) -> Demand:
    """Read any population source, choosing the reader by the file.

    ``None`` estimates from the OSM extract ``osm_path``; a GeoTIFF is a raster; polygons are
    split; points are taken as they are.
    """
    pph = 2.62
    if profile is not None:
        pph = float(profile.standards.get("persons_per_household", pph))
    area = None
    if network is not None:
        cap = getattr(profile, "snap_cap_metres", 300.0) if profile is not None else 300.0
        hull = gpd.GeoSeries([network.hull.buffer(cap)], crs=network.crs).to_crs(4326)
        area = hull.iloc[0]
    if source is None:
        if osm_path is None:
            raise DataError("no population given and no OSM extract to estimate it from",
                            fix="give --population (raster, polygons or points)")
        return estimate_from_osm(osm_path)
    path = Path(str(source))
    if path.suffix.lower() in _RASTER_SUFFIXES:
        return from_raster(path, area=area)
    df = read_table(path, what="population")
    if isinstance(df, gpd.GeoDataFrame) and len(df) and np.isin(
            shapely.get_type_id(df.geometry.dropna().to_numpy()), (3, 6)).any():
        return _labelled(from_polygons(df, pop_column=pop_column, households_column=households_column,
                                       persons_per_household=pph, crs=crs,
                                       group_columns=group_columns), path)
    if households_column is not None:
        col = _count_column(df, households_column, path, kind="households")
        df = df.copy()
        df["_pop_from_households"] = pd.to_numeric(df[col], errors="coerce") * pph
        pop_column = "_pop_from_households"
    return _labelled(from_points(df, pop_column=pop_column, crs=crs, group_columns=group_columns), path)


def _labelled(demand: Demand, path: Path) -> Demand:
    demand.label = f"{demand.label} from {path.name}"
    return demand
