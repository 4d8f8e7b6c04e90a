"""Coordinate reference systems: the local UTM zone for metric work, and the systems Chinese
planners' data comes in."""

from __future__ import annotations

import numpy as np
import pyproj

__all__ = ["WGS84", "utm_crs"]

WGS84 = pyproj.CRS.from_epsg(4326)


def utm_crs(lon: float | np.ndarray, lat: float | np.ndarray) -> pyproj.CRS:
    """The WGS-84 UTM zone CRS containing the centre of the given lon/lat coordinates.

    Parameters
    ----------
    lon, lat
        Degrees; arrays are reduced to the centre of their bounding box.

    Returns
    -------
    pyproj.CRS
        EPSG:326xx (north) or EPSG:327xx (south).
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    clon = (np.nanmin(lon) + np.nanmax(lon)) / 2
    clat = (np.nanmin(lat) + np.nanmax(lat)) / 2
    zone = int(np.floor((clon + 180) / 6) % 60) + 1
    return pyproj.CRS.from_epsg((32600 if clat >= 0 else 32700) + zone)
