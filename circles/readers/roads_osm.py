"""OSM footways, paths and steps added to a city's road layer where the layer lacks them.

A bureau's centre lines often lack the paths through parks, estates and campuses that an OSM
extract has. A path running parallel to a city line for most of its length is the same way drawn
twice (a sidewalk beside its street), so it is left out and counted.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from .linework import MM
from .road_columns import line_levels

__all__ = ["osm_paths"]

_OSM_PATHS = ("footway", "path", "steps", "pedestrian", "living_street", "track", "corridor")


def osm_paths(osm_path, city: gpd.GeoDataFrame, *, within_metres: float = 10.0,
              max_angle_deg: float = 20.0) -> tuple[gpd.GeoDataFrame, dict]:
    """OSM footways, paths and steps inside the city layer's area that do not repeat a city line.

    Parameters
    ----------
    osm_path
        The OSM extract.
    city
        The city's walkable lines, in a metric CRS.
    within_metres
        A path this close to a city line, and parallel to it, repeats it; the city layer's area
        (its convex hull) is widened by as much.
    max_angle_deg
        Segments within this angle of the nearest city segment run parallel to it.

    Returns
    -------
    geopandas.GeoDataFrame
        The paths added: ``source_row`` (-1), ``origin`` (``osm``), ``road_class``
        (``osm:<highway>``), ``name``, ``level``, in ``city.crs``.
    dict
        ``osm_paths_added``, ``osm_paths_left_out``, ``osm_paths_outside_city_layer``,
        ``osm_km_added``, ``osm_km_left_out``.

    """
    from .osm import read_osm_ways, walkable

    _, ways = read_osm_ways(osm_path)
    ways = ways.loc[walkable(ways) & ways["highway"].isin(_OSM_PATHS).to_numpy()].to_crs(city.crs)
    geoms = shapely.force_2d(ways.geometry.to_numpy())
    city_geoms = city.geometry.to_numpy()
    area = shapely.convex_hull(shapely.multipoints(shapely.get_coordinates(city_geoms))).buffer(within_metres)
    shapely.prepare(area)
    inside = shapely.intersects(area, geoms)
    dup = np.zeros(len(geoms), dtype=bool)
    dup[inside] = _parallel_duplicates(geoms[inside], city_geoms, within_metres, max_angle_deg)
    add = inside & ~dup
    lengths = shapely.length(geoms)
    extra = gpd.GeoDataFrame({
        "source_row": -1, "origin": "osm", "road_class": ("osm:" + ways["highway"].astype(str)).to_numpy()[add],
        "name": ways["name"].astype("string").fillna("").to_numpy()[add], "level": line_levels(ways)[add]},
        geometry=geoms[add], crs=city.crs)
    return extra, {"osm_paths_added": int(add.sum()), "osm_paths_left_out": int(dup.sum()),
                   "osm_paths_outside_city_layer": int((~inside).sum()),
                   "osm_km_added": round(float(lengths[add].sum()) / 1000, 3),
                   "osm_km_left_out": round(float(lengths[dup].sum()) / 1000, 3)}


def _parallel_duplicates(geoms: np.ndarray, city: np.ndarray, within: float, max_angle_deg: float,
                         share: float = 0.5) -> np.ndarray:
    """Lines running parallel within ``within`` metres of a city line for most of their length."""
    if not len(geoms):
        return np.zeros(0, dtype=bool)
    a, b, li = _segment_arrays(shapely.segmentize(geoms, 2.0))
    ca, cb, _ = _segment_arrays(city)
    tree = shapely.STRtree(shapely.linestrings(np.stack([ca, cb], axis=1)))
    (pi, cj) = tree.query_nearest(shapely.points((a + b) / 2), max_distance=within, all_matches=False)
    d, cd = b - a, cb - ca
    seg = np.hypot(*d.T)
    cos = np.abs((d[pi] * cd[cj]).sum(1)) / np.maximum(seg[pi] * np.hypot(*cd[cj].T), 1e-12)
    par = pi[cos >= np.cos(np.radians(max_angle_deg))]
    along = np.bincount(li[par], weights=seg[par], minlength=len(geoms))
    total = np.bincount(li, weights=seg, minlength=len(geoms))
    return along >= share * np.maximum(total, MM)


def _segment_arrays(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c, i = shapely.get_coordinates(geoms, return_index=True)
    same = i[1:] == i[:-1]
    return c[:-1][same], c[1:][same], i[:-1][same]
