"""A population estimate from OpenStreetMap residential buildings and land use.

Used when no population source is given, and labelled an estimate everywhere it appears
(``is_estimate``, a ``label`` and a ``source`` starting with "estimate"). People follow
residential floor area; the caller scales the result (``total_pop=`` or ``density_per_km2=``).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError
from .crs import to_wgs84
from .demand import Demand, area_wgs84, grid_points, make_demand, numbers

__all__ = ["DEFAULT_DENSITY_PER_KM2", "FLOOR_M2_PER_PERSON", "estimate_from_osm", "osm_residential"]

FLOOR_M2_PER_PERSON = 40.0  # urban housing floor area per person in China, about 40 m² (NBS 2019-2020)
# Gross floor area per m² of residential land use where OSM maps no building: with 40 m² a
# person it gives 25,000 people/km², the middle of central Chengdu's 20,000-30,000.
_LAND_FLOOR_RATIO = 1.0
DEFAULT_DENSITY_PER_KM2 = _LAND_FLOOR_RATIO * 1e6 / FLOOR_M2_PER_PERSON
_MIDRISE_LEVELS = 6.0  # apartments, residential, dormitories, untagged in 小区: typical mid-rise
_LOWRISE = ("house", "detached", "semidetached_house", "terrace", "bungalow", "farm", "cabin")
_LOWRISE_LEVELS = 2.0
_RESIDENTIAL_BUILDINGS = ("apartments", "residential", "dormitory", *_LOWRISE)
_METRES_PER_LEVEL = 3.0  # to read levels from a height tag
_MAX_LEVELS = 100.0  # more is a tagging error (a height in levels' place)


def osm_residential(osm_path: str | Path, *, area=None) -> gpd.GeoDataFrame:
    """Residential land use and residential buildings of an OSM extract (WGS-84).

    Buildings count as residential when tagged so (apartments, residential, dormitory, house...)
    or untagged (``building=yes``) inside residential land use. Their levels are
    ``building:levels``, else ``height`` / 3 m, else 6 (2 for houses and other low-rise types),
    at most 100.

    Parameters
    ----------
    osm_path
        The OSM extract.
    area
        Keep features whose representative point lies in this WGS-84 geometry.

    Returns
    -------
    geopandas.GeoDataFrame
        ``kind`` ("land use" or "building"), ``building``, ``levels``, ``floor_m2`` (buildings:
        footprint × levels; land use: area × a gross floor ratio of 1), polygons.

    """
    from .osm import read_osm_features

    lu = read_osm_features(osm_path, kind="landuse")
    lu = lu[lu["landuse"] == "residential"] if "landuse" in lu else lu.iloc[:0]
    b = read_osm_features(osm_path, kind="buildings")
    lu, b = (f[np.isin(shapely.get_type_id(f.geometry.to_numpy()), (3, 6))] for f in (lu, b))
    area = area_wgs84(area)
    if area is not None:
        lu, b = (f[shapely.within(shapely.point_on_surface(f.geometry.to_numpy()), area)] for f in (lu, b))
    kind = b["building"].astype(str).to_numpy() if "building" in b else np.full(len(b), "yes")
    in_lu = np.zeros(len(b), dtype=bool)
    if len(b) and len(lu):
        in_lu[shapely.STRtree(lu.geometry.to_numpy()).query(
            shapely.point_on_surface(b.geometry.to_numpy()), predicate="within")[0]] = True
    resid = np.isin(kind, _RESIDENTIAL_BUILDINGS) | ((kind == "yes") & in_lu)
    b, kind = b[resid], kind[resid]
    levels = numbers(b["building:levels"]).to_numpy(float) if "building:levels" in b else np.full(len(b), np.nan)
    if "height" in b:
        height = pd.to_numeric(b["height"].astype(str).str.extract(r"([\d.]+)")[0], errors="coerce").to_numpy(float)
        levels = np.where(np.isfinite(levels) & (levels > 0), levels, np.round(height / _METRES_PER_LEVEL))
    default = np.where(np.isin(kind, _LOWRISE), _LOWRISE_LEVELS, _MIDRISE_LEVELS)
    levels = np.minimum(np.where(np.isfinite(levels) & (levels > 0), levels, default), _MAX_LEVELS)
    local = (lu if len(lu) else b).estimate_utm_crs() if len(lu) or len(b) else 3857
    out = pd.concat([
        gpd.GeoDataFrame({"kind": "land use", "building": "", "levels": np.nan,
                          "floor_m2": lu.to_crs(local).area.to_numpy() * _LAND_FLOOR_RATIO},
                         geometry=lu.geometry.to_numpy(), crs=4326),
        gpd.GeoDataFrame({"kind": "building", "building": kind, "levels": levels,
                          "floor_m2": b.to_crs(local).area.to_numpy() * levels},
                         geometry=b.geometry.to_numpy(), crs=4326)], ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=4326)


def estimate_from_osm(osm_path: str | Path, *, total_pop: float | None = None,
                      density_per_km2: float | None = None, area=None) -> Demand:
    """An estimate from OSM residential buildings and land use; labelled an estimate.

    People follow residential floor area: each residential building (footprint × levels, see
    :func:`osm_residential`) is a point, and residential land use holds at least a gross floor
    ratio of 1 (its area × 1 m²/m²): what its mapped buildings do not account for is spread on a
    50 m grid over it, so partly mapped 小区 are not emptied. Floor area becomes people at
    40 m² a person, which makes 25,000 people/km² on residential land without mapped buildings.

    Parameters
    ----------
    osm_path
        The OSM extract.
    total_pop
        Scale the estimate to exactly this many people.
    density_per_km2
        Scale it so residential land without mapped buildings holds this many people per km²
        (buildings scaled alike); default 25,000 (central Chengdu: 20,000-30,000).
    area
        The study area (WGS-84): only features inside it are estimated and scaled.

    Returns
    -------
    Demand
        ``is_estimate`` True; ``source`` and ``label`` start with "estimate".

    """
    _check_scale(total_pop, density_per_km2)
    res = osm_residential(osm_path, area=area)
    if not len(res):
        raise DataError("the extract has no residential buildings or land use to estimate population from"
                        + (" in the study area" if area is not None else ""), file=osm_path,
                        fix="give a population raster, polygons or points (--population)")
    local = res.estimate_utm_crs()
    b_pts, gx, gy, weight, land = _floor_points(res, local)
    per_m2, how = _per_m2(weight, total_pop, density_per_km2)
    lon, lat = to_wgs84(np.concatenate([shapely.get_x(b_pts), gx]),
                        np.concatenate([shapely.get_y(b_pts), gy]), local)
    source = np.repeat(["estimate: OSM residential buildings", "estimate: OSM residential land use"],
                       [len(b_pts), len(gx)])
    out = gpd.GeoDataFrame({"pop": weight * per_m2, "source": source}, geometry=shapely.points(lon, lat), crs=4326)
    n_lu = int((res["kind"] == "land use").to_numpy().sum())
    label = (f"estimate from OSM: {len(b_pts):,} residential buildings and {n_lu:,} residential "
             f"land-use polygons ({shapely.area(land).sum() / 1e6:.2f} km²), {how}")
    return make_demand(out, float(out["pop"].sum()) if total_pop is None else float(total_pop), [], label,
                       is_estimate=True)


def _check_scale(total_pop: float | None, density_per_km2: float | None) -> None:
    if total_pop is not None and density_per_km2 is not None:
        raise DataError("give total_pop or density_per_km2, not both", field="total_pop/density_per_km2",
                        fix="scale the estimate one way")
    for name, v in (("total_pop", total_pop), ("density_per_km2", density_per_km2)):
        if v is not None and not v > 0:
            raise DataError(f"{name} must be positive (got {v})", field=name, fix=f"give a positive {name}")


def _floor_points(res: gpd.GeoDataFrame, local):
    """Where the residential floor area is, in ``local`` metres.

    A point per building, and a 50 m grid over the residential land use for the floor area its
    mapped buildings do not account for. Returns the building points, the x and y of the grid
    points used, the floor area of every point (buildings first) and the land-use polygons.
    """
    geoms = res.to_crs(local).geometry.to_numpy()
    is_lu = (res["kind"] == "land use").to_numpy()
    bld = np.flatnonzero(~is_lu)
    floor_b = res["floor_m2"].to_numpy(float)[bld]
    b_pts = shapely.point_on_surface(geoms[bld])
    # Overlapping land-use polygons must not hold their overlap twice.
    land = shapely.get_parts(shapely.union_all(geoms[is_lu])) if is_lu.any() else geoms[:0]
    mapped = np.zeros(len(land))
    if len(land) and len(bld):
        bi, li = shapely.STRtree(land).query(b_pts, predicate="within")
        mapped = np.bincount(li, weights=floor_b[bi], minlength=len(land))
    land_floor = shapely.area(land) * _LAND_FLOOR_RATIO
    rest = np.maximum(land_floor - mapped, 0.0)
    owner, x, y = grid_points(land, 50.0)
    grid_floor = rest[owner] / np.bincount(owner, minlength=len(land))[owner]
    use = grid_floor > 0
    return b_pts, x[use], y[use], np.concatenate([floor_b, grid_floor[use]]), land


def _per_m2(weight: np.ndarray, total_pop: float | None, density_per_km2: float | None) -> tuple[float, str]:
    """People per m² of floor, and how the estimate was scaled (for its label)."""
    if total_pop is not None:
        return total_pop / weight.sum(), f"scaled to a total of {total_pop:,.0f}"
    density = density_per_km2 or DEFAULT_DENSITY_PER_KM2
    per_m2 = density / (_LAND_FLOOR_RATIO * 1e6)
    how = (f"{density:,.0f} people/km² on residential land, {1 / per_m2:.0f} m² of floor a person"
           + ("" if density_per_km2 else " (default; scale with total_pop= or density_per_km2=)"))
    return per_m2, how
