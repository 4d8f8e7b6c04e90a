"""Coordinate reference systems: the local UTM zone for metric work, and the systems Chinese
planners' data comes in."""

from __future__ import annotations

import numpy as np
import pyproj

__all__ = [
    "WGS84", "bd09_to_gcj02", "bd09_to_wgs84", "from_wgs84", "gcj02_to_bd09", "gcj02_to_wgs84",
    "parse_crs", "to_wgs84", "utm_crs", "wgs84_to_bd09", "wgs84_to_gcj02",
]

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


# --- Chinese coordinate systems -----------------------------------------------------------------
# GCJ-02 ("Mars coordinates", Amap/Tencent) and BD-09 (Baidu) are obfuscations of WGS-84 whose
# forward formulas are public (the Krasovsky-ellipsoid offsets published with eviltransform and
# coordtransform). No PyPI package offers them vectorised with an accurate inverse, so the
# forward formulas are written here on NumPy arrays and inverted by fixed-point iteration.

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0


def _outside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    out = _outside_china(lon, lat)
    return np.where(out, 0.0, dlon), np.where(out, 0.0, dlat)


def _arrays(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 to GCJ-02 (identity outside China)."""
    lon, lat = _arrays(lon, lat)
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to WGS-84 by fixed-point iteration of the forward transform (error < 1 mm)."""
    lon, lat = _arrays(lon, lat)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        wlon, wlat = wlon - elon, wlat - elat
        if np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat)])), initial=0) < 1e-10:
            break
    return wlon, wlat


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to BD-09."""
    lon, lat = _arrays(lon, lat)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to GCJ-02 (the published closed-form inverse, refined by iteration)."""
    lon, lat = _arrays(lon, lat)
    x, y = lon - 0.0065, lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    glon, glat = z * np.cos(theta), z * np.sin(theta)
    for _ in range(5):
        blon, blat = gcj02_to_bd09(glon, glat)
        glon, glat = glon - (blon - lon), glat - (blat - lat)
    return glon, glat


def wgs84_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_NAMED = {"wgs84": "EPSG:4326", "cgcs2000": "EPSG:4490", "gcj02": "gcj02", "bd09": "bd09"}


def parse_crs(name: str | pyproj.CRS | None) -> str | pyproj.CRS:
    """Normalise a coordinate system name: ``"gcj02"``, ``"bd09"`` or a :class:`pyproj.CRS`.

    Raises
    ------
    DataError
        An unknown name, listing the accepted ones.
    """
    from .errors import DataError

    if name is None:
        return pyproj.CRS.from_epsg(4326)
    if isinstance(name, pyproj.CRS):
        return name
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    key = {"gcj": "gcj02", "amap": "gcj02", "baidu": "bd09", "bd": "bd09", "wgs": "wgs84",
           "epsg4326": "wgs84"}.get(key, key)
    named = _NAMED.get(key)
    if named in ("gcj02", "bd09"):
        return named
    try:
        return pyproj.CRS.from_user_input(named or str(name))
    except pyproj.exceptions.CRSError as err:
        raise DataError(f"unknown coordinate system {name!r}", field="crs",
                        fix="use wgs84, cgcs2000, gcj02 (Amap/Tencent), bd09 (Baidu) or EPSG:code") from err


def to_wgs84(x, y, crs: str | pyproj.CRS | None = "wgs84") -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in ``crs`` (wgs84, cgcs2000, gcj02, bd09, EPSG:code) to WGS-84 lon/lat."""
    c = parse_crs(crs)
    x, y = _arrays(x, y)
    if c == "gcj02":
        return gcj02_to_wgs84(x, y)
    if c == "bd09":
        return bd09_to_wgs84(x, y)
    if c.equals(WGS84):
        return x, y
    return pyproj.Transformer.from_crs(c, WGS84, always_xy=True).transform(x, y)


def from_wgs84(lon, lat, crs: str | pyproj.CRS | None = "wgs84") -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat to ``crs`` (for exporting back to Amap, Baidu or a local grid)."""
    c = parse_crs(crs)
    lon, lat = _arrays(lon, lat)
    if c == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if c == "bd09":
        return wgs84_to_bd09(lon, lat)
    if c.equals(WGS84):
        return lon, lat
    return pyproj.Transformer.from_crs(WGS84, c, always_xy=True).transform(lon, lat)
