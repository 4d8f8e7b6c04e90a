"""The basemap's geometries for display: in metres to be simplified to :data:`SIMPLIFY_METRES`,
then in WGS-84 rounded to :data:`DECIMALS` (what a page and ``basemap.gpkg`` hold)."""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pyproj
import shapely

from ..readers.crs import utm_crs

__all__ = ["DECIMALS", "SIMPLIFY_METRES", "display", "display_frame", "metric_crs", "simplified", "to_wgs84"]

#: Display simplification: a 2 m tolerance is under a pixel at street zooms.
SIMPLIFY_METRES = 2.0
#: 1e-6° is ~0.1 m: finer digits only make the page bigger.
DECIMALS = 6


def metric_crs(geometry: gpd.GeoSeries) -> gpd.GeoSeries:
    """``geometry`` in metres: its own CRS when projected, else its UTM zone."""
    if geometry.crs is None:
        geometry = geometry.set_crs(4326)
    if geometry.crs.is_projected or not len(geometry):
        return geometry
    minx, miny, maxx, maxy = geometry.total_bounds
    return geometry.to_crs(utm_crs([minx, maxx], [miny, maxy]))


def display(geometry: gpd.GeoSeries) -> gpd.GeoSeries:
    """Simplified to :data:`SIMPLIFY_METRES`, in WGS-84, rounded to :data:`DECIMALS`; empty parts dropped."""
    metric = metric_crs(geometry)
    simple = simplified(metric)
    # To WGS-84 and rounded in one pass over the coordinates (what to_crs then a rounding did).
    return gpd.GeoSeries(shapely.transform(simple, to_wgs84(metric.crs)), index=geometry.index, crs=4326)


def simplified(metric: gpd.GeoSeries) -> np.ndarray:
    """The geometries (in metres) simplified to :data:`SIMPLIFY_METRES` for display."""
    simple = np.asarray(metric.values, dtype=object).copy()
    kind = shapely.get_type_id(simple)
    lines = np.isin(kind, (1, 5))  # LineString, MultiLineString
    # Lines need no topology kept (faster); polygons keep theirs, so no ring crosses itself. A
    # line of two points is its own simplification (a street grid's edges mostly are).
    bends = lines & ((kind == 5) | (shapely.get_num_coordinates(simple) > 2))
    simple[bends] = shapely.simplify(simple[bends], SIMPLIFY_METRES, preserve_topology=False)
    simple[~lines] = shapely.simplify(simple[~lines], SIMPLIFY_METRES, preserve_topology=True)
    return simple


def to_wgs84(crs) -> Callable[[np.ndarray], np.ndarray]:
    """Coordinates in ``crs`` to WGS-84 lon/lat, rounded to :data:`DECIMALS`."""
    transformer = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)

    def wgs84(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), DECIMALS)

    return wgs84


def display_frame(geometry: gpd.GeoSeries, **columns) -> gpd.GeoDataFrame:
    """The geometries for display (:func:`display`) with ``columns``, the empty ones left out."""
    geometry = display(geometry)
    keep = ~(geometry.is_empty | geometry.isna()).to_numpy()
    data = {k: np.asarray(v, dtype=object)[keep] for k, v in columns.items()}
    return gpd.GeoDataFrame(data, geometry=geometry.to_numpy()[keep], crs=4326)
