"""The map's tiles: none (the basemap drawn from the extract), OpenStreetMap's, Tianditu (天地图),
Amap (高德) or a city's own tile server, and the coordinates overlays are drawn in to match them.

Tianditu's web-Mercator tiles (``_w``) are in CGCS2000, which matches WGS-84 at map scale: the
overlays are drawn as they are. Amap's are in GCJ-02, offset by up to ~500 m from WGS-84: every
overlay is converted with :func:`circles.readers.crs.wgs84_to_gcj02` before it is drawn, or it
lands on the wrong street. A city's server says which of the two it uses (``tiles_crs``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import CirclesError
from ..readers.crs import wgs84_to_gcj02

__all__ = ["PROVIDERS", "TILE_CRS", "TileLayer", "Tiles", "convert_frame", "convert_geometry", "convert_lonlat",
           "tile_provider"]

#: The named tile sources ``--tiles`` takes (``none``: no tiles, the basemap from the extract).
PROVIDERS = ("none", "osm", "tianditu", "tianditu-img", "amap")
#: The coordinate systems a tile server may use.
TILE_CRS = ("wgs84", "gcj02")
#: Where a Tianditu key is read from when none is given.
KEY_ENV = "TIANDITU_KEY"

_TIANDITU = ("https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
             "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
             "&TILECOL={{x}}&tk={key}")
_AMAP = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
_OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
# A Tianditu key is 32 hexadecimal digits; anything else would be written into the page's URLs.
_KEY = re.compile(r"[0-9A-Za-z]{16,64}")


@dataclass(frozen=True)
class TileLayer:
    """One tile layer: its URL template (Leaflet's ``{s}``, ``{z}``, ``{x}``, ``{y}``), the
    subdomains ``{s}`` stands for, the i18n key of its attribution (``""``: none) and its last zoom."""

    url: str
    subdomains: str = "abc"
    attribution: str = ""
    max_zoom: int = 19


@dataclass(frozen=True)
class Tiles:
    """A tile source: its layers, bottom first, and the coordinates overlays must be drawn in."""

    name: str
    layers: tuple[TileLayer, ...]
    crs: str = "wgs84"

    @property
    def hosts(self) -> list[str]:
        """Every host the page may request tiles from."""
        hosts = []
        for layer in self.layers:
            host = urlsplit(layer.url).hostname or ""
            subs = layer.subdomains if "{s}" in host else " "
            hosts += [host.replace("{s}", s) for s in subs]
        return sorted(set(hosts))


def tile_provider(tiles: str | Tiles | None, *, key: str | None = None, crs: str | None = None) -> Tiles | None:
    """The tile source ``tiles`` names.

    Parameters
    ----------
    tiles
        ``None`` or ``"none"`` (no tiles: the basemap drawn from the extract), ``"osm"``,
        ``"tianditu"`` (vector, with Chinese labels), ``"tianditu-img"`` (imagery, with Chinese
        labels), ``"amap"`` (Amap's street map, GCJ-02), or a URL template such as
        ``http://tiles.city.local/{z}/{x}/{y}.png``.
    key
        A Tianditu key (default: the environment's ``TIANDITU_KEY``).
    crs
        A URL's coordinate system: ``wgs84`` (default; CGCS2000 too) or ``gcj02``. A named source
        has its own; naming another is an error.

    Returns
    -------
    Tiles or None
        ``None`` for no tiles.

    Raises
    ------
    CirclesError
        An unknown name or coordinate system, or Tianditu without a key.

    """
    if isinstance(tiles, Tiles):
        return tiles
    if crs is not None and crs not in TILE_CRS:
        raise CirclesError(f"unknown tile coordinate system {crs!r}", field="tiles_crs", fix="use wgs84 or gcj02")
    name = (tiles or "none").strip()
    if "{z}" in name or "://" in name:
        return Tiles("url", (TileLayer(name, max_zoom=20),), crs=crs or "wgs84")
    if name.lower() not in PROVIDERS:
        raise CirclesError(f"unknown tiles {name!r}", field="tiles",
                           fix=f"use one of {', '.join(PROVIDERS)} or a URL template with {{z}}/{{x}}/{{y}}")
    provider = _named(name.lower(), key)
    if provider is not None and crs is not None and crs != provider.crs:
        raise CirclesError(f"{name} tiles are in {provider.crs}, not {crs}", field="tiles_crs",
                           fix=f"leave out the tile coordinate system for {name}")
    return provider


def _named(name: str, key: str | None) -> Tiles | None:
    if name == "none":
        return None
    if name == "osm":
        return Tiles(name, (TileLayer(_OSM, subdomains="", attribution="attribution"),))
    if name == "amap":
        return Tiles(name, (TileLayer(_AMAP, subdomains="1234", attribution="tiles_amap", max_zoom=18),),
                     crs="gcj02")
    key = _tianditu_key(key)
    base, labels = ("img", "cia") if name == "tianditu-img" else ("vec", "cva")
    return Tiles(name, tuple(TileLayer(_TIANDITU.format(layer=layer, key=key), subdomains="01234567",
                                       attribution="tiles_tianditu" if layer == base else "", max_zoom=18)
                             for layer in (base, labels)))


def _tianditu_key(key: str | None) -> str:
    key = (key or os.environ.get(KEY_ENV) or "").strip()
    if not key:
        raise CirclesError("Tianditu tiles need a key, and none was given", field="tiles_key",
                           fix=f"set {KEY_ENV} to your Tianditu browser key (console.tianditu.gov.cn); "
                               "circles map also takes --tiles-key")
    if not _KEY.fullmatch(key):
        raise CirclesError("a Tianditu key is letters and digits only", field="tiles_key",
                           fix=f"check {KEY_ENV} or --tiles-key")
    return key


def convert_lonlat(lon, lat, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 longitudes and latitudes in the tiles' coordinate system ``crs``."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return wgs84_to_gcj02(lon, lat) if crs == "gcj02" else (lon, lat)


def convert_geometry(geometry: gpd.GeoSeries, crs: str) -> gpd.GeoSeries:
    """A geometry column (any CRS; none read as WGS-84) in WGS-84 degrees, converted to ``crs``.

    The result keeps EPSG:4326 as its CRS: GeoJSON and Leaflet know no other, and the
    coordinates are what the tiles expect.
    """
    if geometry.crs is None:  # a layer written without a CRS: the run folders' are WGS-84
        geometry = geometry.set_crs(4326)
    geometry = geometry.to_crs(4326)
    if crs != "gcj02":
        return geometry

    def shift(coords: np.ndarray) -> np.ndarray:
        return np.column_stack(wgs84_to_gcj02(coords[:, 0], coords[:, 1]))

    return gpd.GeoSeries(shapely.transform(np.asarray(geometry.values), shift), index=geometry.index, crs=4326)


def convert_frame(frame, crs: str):
    """A layer in the tiles' coordinate system: a GeoDataFrame's geometry and a table's ``lon`` and
    ``lat`` columns (facilities, proposals), whichever it has. ``None`` and WGS-84 tiles leave it
    as it is."""
    if frame is None or crs != "gcj02":
        return frame
    if isinstance(frame, gpd.GeoDataFrame):
        geometry = convert_geometry(frame.geometry, crs)
        frame = gpd.GeoDataFrame(frame.drop(columns=frame.geometry.name), geometry=geometry.values, crs=4326)
    if isinstance(frame, pd.DataFrame) and {"lon", "lat"} <= set(frame.columns):
        lon, lat = convert_lonlat(frame["lon"], frame["lat"], crs)
        frame = frame.assign(lon=lon, lat=lat)
    return frame
