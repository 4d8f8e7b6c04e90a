"""The residential parts of population polygons, and the lattice points that share their people.

A polygon's people go to its residential buildings (footprint × levels) when any lie in it, else
to its residential land use (by area), else evenly over the whole polygon. The residential layer
comes from an OSM extract (:func:`circles.population_osm.osm_residential`) or from a file of
buildings or land-use polygons in any CRS.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from ..errors import DataError
from .demand import grid_points

__all__ = ["SPREAD_METHODS", "read_residential", "spread", "spread_note"]

SPREAD_METHODS = ("buildings", "landuse", "even")
_LEVEL_ALIASES = ("building:levels", "building_levels", "levels", "floors", "storeys", "层数", "楼层",
                  "楼层数", "地上层数", "层高数")


def _level_column(columns) -> str | None:
    wanted = {a.lower() for a in _LEVEL_ALIASES}
    return next((c for c in columns if str(c).strip().lower() in wanted), None)


def read_residential(source, *, area=None) -> gpd.GeoDataFrame | None:
    """A residential layer as ``kind`` ("building" or "land use"), ``levels`` and polygons.

    Parameters
    ----------
    source
        ``None``; an OSM extract (its residential buildings and land use); a polygon file or a
        GeoDataFrame in any CRS. In a file every polygon is taken as residential: buildings when
        it has a ``kind`` column saying so, a levels column (层数, ``building:levels``, floors...)
        or a ``building`` column, land use otherwise. A building without usable levels takes the
        median of the others (1 when none has any).
    area
        For an OSM extract: keep the features whose representative point lies in this WGS-84
        geometry.

    Returns
    -------
    geopandas.GeoDataFrame or None

    """
    from .osm import is_osm_file
    from .tables import read_table

    if source is None:
        return None
    file = None
    if isinstance(source, str | Path):
        if is_osm_file(source):
            from .population_osm import osm_residential

            return osm_residential(source, area=area)[["kind", "levels", "geometry"]]
        file, source = source, read_table(source, what="residential polygons")
    if not isinstance(source, gpd.GeoDataFrame):
        raise DataError("the residential layer has no geometry", file=file, field="geometry",
                        fix="give buildings or land-use polygons (GeoPackage, Shapefile, GeoJSON) or an OSM extract")
    if source.crs is None:
        raise DataError("the residential layer has no CRS", file=file, field="crs",
                        fix="save it with a CRS (a .prj beside a Shapefile)")
    gdf = source[np.isin(shapely.get_type_id(source.geometry.to_numpy()), (3, 6))]
    if not len(gdf):
        raise DataError("the residential layer has no polygons", file=file, field="geometry",
                        fix="give building footprints or residential land-use polygons")
    return _kinds(gdf)


def _kinds(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    from .demand import numbers

    col = _level_column(gdf.columns)
    if "kind" in gdf.columns and gdf["kind"].isin(["building", "land use"]).all():
        kind = gdf["kind"].to_numpy(str)
    else:
        kind = np.full(len(gdf), "building" if col is not None or "building" in gdf.columns else "land use")
    levels = numbers(gdf[col]).to_numpy(float) if col is not None else np.full(len(gdf), np.nan)
    good = np.isfinite(levels) & (levels > 0)
    levels = np.where(good, levels, np.median(levels[good]) if good.any() else 1.0)
    return gpd.GeoDataFrame({"kind": kind, "levels": np.where(kind == "building", levels, np.nan)},
                            geometry=gdf.geometry.to_numpy(), crs=gdf.crs)


def _valid(geoms: np.ndarray) -> np.ndarray:
    # Self-intersecting rings from hand-drawn layers would make the intersections fail.
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def _pieces(polys: np.ndarray, parts: np.ndarray, per_m2: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pieces of ``parts`` inside each polygon: (piece, owner polygon, weight = area × per_m2)."""
    if not len(parts) or not len(polys):
        return polys[:0], np.zeros(0, dtype=np.int64), np.zeros(0)
    pi, rj = shapely.STRtree(parts).query(polys, predicate="intersects")
    cut, of = shapely.get_parts(shapely.intersection(polys[pi], parts[rj]), return_index=True)
    area = shapely.area(cut)
    ok = area > 0  # touching edges and lines hold no floor area
    return cut[ok], pi[of[ok]], area[ok] * per_m2[rj[of[ok]]]


def spread(polys: np.ndarray, residential: gpd.GeoDataFrame | None, spacing: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Points sharing each projected polygon's people, and how each polygon was split.

    Parameters
    ----------
    polys
        Population polygons in a metric CRS.
    residential
        :func:`read_residential`'s layer in the same CRS, or ``None``.
    spacing
        The lattice spacing in metres.

    Returns
    -------
    tuple
        ``(owner, x, y, share, method)``: per point its polygon, coordinates and share of that
        polygon's people (a polygon's shares sum to 1); per polygon its method, one of
        :data:`SPREAD_METHODS`.

    """
    polys = _valid(polys)
    n = len(polys)
    method = np.full(n, "even", dtype=object)
    pieces, owner, weight = [polys[:0]], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    todo = np.arange(n)
    if residential is not None and len(residential):
        geoms = _valid(residential.geometry.to_numpy())
        is_b = (residential["kind"] == "building").to_numpy()
        levels = residential["levels"].to_numpy(float)
        # Land-use polygons overlapping one another (a 小区 inside a district) count once.
        land = shapely.get_parts(shapely.union_all(geoms[~is_b])) if (~is_b).any() else geoms[:0]
        for name, parts, per_m2 in (("buildings", geoms[is_b], levels[is_b]),
                                    ("landuse", land, np.ones(len(land)))):
            p, o, w = _pieces(polys[todo], parts, per_m2)
            o = todo[o]
            pieces.append(p)
            owner.append(o)
            weight.append(w)
            method[np.unique(o)] = name
            todo = np.setdiff1d(todo, o)
    pieces.append(polys[todo])
    owner.append(todo)
    weight.append(np.ones(len(todo)))
    pieces, owner, weight = np.concatenate(pieces), np.concatenate(owner), np.concatenate(weight)
    weight = weight / np.bincount(owner, weights=weight, minlength=n)[owner]
    piece, x, y = grid_points(pieces, spacing)
    share = weight[piece] / np.bincount(piece, minlength=len(pieces))[piece]
    return owner[piece], x, y, share, method.astype(str)


def spread_note(method: np.ndarray, what: str, *, layer: bool) -> tuple[dict, str]:
    """The manifest's ``spread`` counts and the line the CLI prints for :func:`spread`'s methods."""
    counts = {m: int((method == m).sum()) for m in SPREAD_METHODS}
    ways = {"buildings": "over residential buildings (footprint × levels)",
            "landuse": "over residential land use", "even": "evenly (no residential part in them)"}
    note = (f"{what} spread " + ", ".join(f"{n:,} {ways[m]}" for m, n in counts.items() if n)
            + ("" if layer else "; give a residential layer (--residential) to place people on housing"))
    return counts, note
