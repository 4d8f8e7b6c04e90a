"""Coordinate reference systems: the local UTM zone for metric work, and the systems Chinese
planners' data comes in."""

from __future__ import annotations

from functools import lru_cache

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
# forward formulas are public: the Krasovsky-ellipsoid offsets as published with eviltransform
# (googollee/eviltransform, MIT) and coordtransform (wandergis/coordtransform), and Baidu's
# polar offset. Those packages, and prcoords, convert one point at a time in pure Python, and
# coordtransform's inverse is the one-step approximation that is off by metres; so the formulas are
# written here on NumPy arrays and GCJ-02 is inverted by fixed-point iteration (Caijun's method,
# as in prcoords' "bored" inverse): w <- w - (gcj(w) - g) converges because the offset changes by
# well under 1 % per metre moved, so a handful of passes reach 1e-10 degrees.

_A = 6378245.0                   # Krasovsky 1940 semi-major axis, as in the published formula
_EE = 0.00669342162296594323     # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0   # Baidu's angular constant


def _outside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    # The rectangle every published implementation uses; GCJ-02 leaves points outside it alone.
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
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if lon.shape == lat.shape:
        return lon, lat
    try:
        lon, lat = np.broadcast_arrays(lon, lat)
    except ValueError as err:
        from ..errors import DataError

        raise DataError(f"{lon.size} x values but {lat.size} y values", field="x/y",
                        fix="give one x (longitude) per y (latitude)") from err
    return lon.copy(), lat.copy()


def wgs84_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 to GCJ-02, the coordinates of Amap (高德) and Tencent maps.

    Parameters
    ----------
    lon, lat
        Degrees, scalars or arrays of one shape.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 lon and lat, same shape; unchanged outside mainland China's rectangle.

    """
    lon, lat = _arrays(lon, lat)
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon, lat, *, tol: float = 1e-10, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to WGS-84 by fixed-point iteration of the forward transform.

    Parameters
    ----------
    lon, lat
        GCJ-02 degrees, scalars or arrays of one shape.
    tol
        Stop when the forward transform of the answer misses the input by less than this many
        degrees everywhere (1e-10 degrees is about 0.01 mm).
    max_iter
        Upper bound on passes; 4-6 are usual.

    Returns
    -------
    tuple of numpy.ndarray
        WGS-84 lon and lat, same shape.

    """
    lon, lat = _arrays(lon, lat)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(max_iter):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = glon - lon, glat - lat
        wlon, wlat = wlon - elon, wlat - elat
        if np.nanmax(np.abs(np.concatenate([np.ravel(elon), np.ravel(elat)])), initial=0) < tol:
            break
    return wlon, wlat


def gcj02_to_bd09(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to BD-09, the coordinates of Baidu maps (百度).

    Parameters
    ----------
    lon, lat
        GCJ-02 degrees, scalars or arrays of one shape.

    Returns
    -------
    tuple of numpy.ndarray
        BD-09 lon and lat (Baidu's offset applies everywhere, as in Baidu's own API).

    """
    lon, lat = _arrays(lon, lat)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to GCJ-02: the published closed-form inverse, refined by iteration.

    The closed form alone is off by a few centimetres; a few passes of
    ``g <- g - (bd(g) - b)`` make it the exact inverse of :func:`gcj02_to_bd09`.

    Parameters
    ----------
    lon, lat
        BD-09 degrees, scalars or arrays of one shape.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 lon and lat, same shape.

    """
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
    """WGS-84 to BD-09 (through GCJ-02); arguments and result as :func:`wgs84_to_gcj02`."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to WGS-84 (through GCJ-02); arguments and result as :func:`gcj02_to_wgs84`."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# Names planners use for each system, after lower-casing and dropping spaces, "-" and "_".
_ALIASES = {
    "wgs84": "wgs84", "wgs": "wgs84", "epsg4326": "wgs84", "gps": "wgs84",
    "cgcs2000": "cgcs2000", "cgcs": "cgcs2000", "epsg4490": "cgcs2000",
    "gcj02": "gcj02", "gcj": "gcj02", "amap": "gcj02", "gaode": "gcj02", "tencent": "gcj02",
    "qq": "gcj02", "mars": "gcj02", "火星坐标": "gcj02", "高德": "gcj02", "腾讯": "gcj02",
    "bd09": "bd09", "bd09ll": "bd09", "bd": "bd09", "baidu": "bd09", "百度": "bd09",
}
_EPSG = {"wgs84": 4326, "cgcs2000": 4490}
_ACCEPTED = ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:code")


def parse_crs(name: str | int | pyproj.CRS | None) -> str | pyproj.CRS:
    """Normalise a coordinate system name.

    Parameters
    ----------
    name
        ``wgs84`` (also ``None``), ``cgcs2000``, ``gcj02`` (``amap``, ``gaode``, ``tencent``),
        ``bd09`` (``baidu``), an EPSG code (``"EPSG:4547"`` or ``4547``), any string pyproj
        accepts, or a :class:`pyproj.CRS`. Case, spaces, ``-`` and ``_`` do not matter in names.

    Returns
    -------
    str or pyproj.CRS
        ``"gcj02"`` or ``"bd09"`` (systems pyproj does not know), otherwise a :class:`pyproj.CRS`.

    Raises
    ------
    DataError
        An unknown name, listing the accepted ones.

    """
    from ..errors import DataError

    if name is None:
        return WGS84
    if isinstance(name, pyproj.CRS):
        return name
    key = _ALIASES.get("".join(str(name).split()).lower().replace("-", "").replace("_", ""))
    if key in ("gcj02", "bd09"):
        return key
    if key in _EPSG:
        return _crs_from_epsg(_EPSG[key])
    try:
        return pyproj.CRS.from_user_input(name)
    except pyproj.exceptions.CRSError as err:
        raise DataError(f"unknown coordinate system {name!r}", field="crs",
                        fix="use " + ", ".join(_ACCEPTED) + " (gcj02: Amap/Tencent, bd09: Baidu; "
                            "EPSG:code, e.g. EPSG:4547 for CGCS2000 Gauss-Kruger 114E)") from err


@lru_cache(maxsize=8)
def _crs_from_epsg(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


@lru_cache(maxsize=32)
def _transformer(src: pyproj.CRS, dst: pyproj.CRS) -> pyproj.Transformer:
    # Building a transformer costs milliseconds; tables are converted column by column.
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def to_wgs84(x, y, crs: str | int | pyproj.CRS | None = "wgs84") -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in ``crs`` to WGS-84 lon/lat.

    Parameters
    ----------
    x, y
        Longitude/latitude, or easting/northing for a projected system; scalars or arrays.
    crs
        Any name :func:`parse_crs` accepts: ``wgs84`` (default), ``cgcs2000``, ``gcj02``,
        ``bd09``, ``EPSG:code``.

    Returns
    -------
    tuple of numpy.ndarray
        WGS-84 lon and lat, same shape as the input.

    """
    return _convert(x, y, crs, to_wgs=True)


def from_wgs84(lon, lat, crs: str | int | pyproj.CRS | None = "wgs84") -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat to ``crs``: the inverse of :func:`to_wgs84`.

    For exporting results back to Amap or Baidu, or to a local projected grid.

    Parameters
    ----------
    lon, lat
        WGS-84 degrees, scalars or arrays.
    crs
        Any name :func:`parse_crs` accepts.

    Returns
    -------
    tuple of numpy.ndarray
        Coordinates in ``crs``, same shape as the input.

    """
    return _convert(lon, lat, crs, to_wgs=False)


def _convert(x, y, crs, *, to_wgs: bool) -> tuple[np.ndarray, np.ndarray]:
    # One path for both directions: the Chinese systems by formula, the rest through PROJ.
    c = parse_crs(crs)
    x, y = _arrays(x, y)
    if isinstance(c, str):
        fwd, inv = {"gcj02": (gcj02_to_wgs84, wgs84_to_gcj02), "bd09": (bd09_to_wgs84, wgs84_to_bd09)}[c]
        return (fwd if to_wgs else inv)(x, y)
    if c.equals(WGS84):
        return x, y
    a, b = _transformer(c, WGS84).transform(x, y) if to_wgs else _transformer(WGS84, c).transform(x, y)
    return np.asarray(a, dtype=float), np.asarray(b, dtype=float)
