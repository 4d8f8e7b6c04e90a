"""The basemap's areas from an OSM extract: water (and rivers as lines), green areas, residential
land use and buildings, read in one streamed pass and kept per file version."""

from __future__ import annotations

import functools
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .basemap_display import display_frame

__all__ = ["extract_areas", "file_key"]

_GREEN_LANDUSE = ("grass", "forest", "meadow", "village_green", "recreation_ground", "orchard", "allotments",
                  "plant_nursery", "greenfield", "vineyard")
_GREEN_LEISURE = ("park", "garden", "nature_reserve", "golf_course", "dog_park")
_GREEN_NATURAL = ("wood", "scrub", "grassland", "heath", "wetland")
_WATER_AREAS = {"natural": ("water",), "waterway": ("riverbank", "dock"), "landuse": ("reservoir", "basin")}
_WATER_LINES = ("river", "canal", "stream")
_POLYGONS = ("Polygon", "MultiPolygon")
_LINES = ("LineString", "MultiLineString")


def file_key(path: Path) -> tuple[str, int, int]:
    """The version of an extract :func:`extract_areas` is kept by: its path, size and time."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=4)
def extract_areas(path: str, _size: int, _mtime: int) -> dict[str, gpd.GeoDataFrame]:
    """Water, green, residential and buildings of an extract, for display; kept per file version
    (path, size, time), as the runs of one process (a test session, an audit's cities) reread it."""
    from ..readers.osm_areas import read_osm_areas

    # One streamed reading for every layer (pyosmium: only node locations are held), then split
    # by tags into land use, natural areas and buildings.
    tags = {"natural": [*_WATER_AREAS["natural"], *_GREEN_NATURAL], "leisure": list(_GREEN_LEISURE),
            "waterway": [*_WATER_AREAS["waterway"], *_WATER_LINES]}
    every = read_osm_areas(path, keys=["landuse", "building", *tags], lines={"waterway": _WATER_LINES})
    landuse, natural, buildings = (every[mask] for mask in _kinds(every, tags))
    frames = pd.concat([landuse, natural], ignore_index=True) if len(natural) else landuse.reset_index(drop=True)

    def tag(name: str) -> pd.Series:
        return frames[name].astype("string").fillna("") if name in frames else pd.Series("", index=frames.index)

    kind = frames.geom_type.to_numpy() if len(frames) else np.array([], dtype=object)
    areas, lines = np.isin(kind, _POLYGONS), np.isin(kind, _LINES)
    water = np.zeros(len(frames), bool)
    for key, values in _WATER_AREAS.items():
        water |= tag(key).isin(values).to_numpy()
    green = (tag("landuse").isin(_GREEN_LANDUSE) | tag("leisure").isin(_GREEN_LEISURE)
             | tag("natural").isin(_GREEN_NATURAL)).to_numpy()
    river = tag("waterway").isin(_WATER_LINES).to_numpy() & lines
    pick = {"water": (water & areas) | river, "green": green & areas & ~water,
            "residential": (tag("landuse") == "residential").to_numpy() & areas}
    out = {name: display_frame(gpd.GeoSeries(frames.geometry.to_numpy()[mask], crs=4326)) for name, mask in pick.items()}
    shapes = buildings[buildings.geom_type.isin(_POLYGONS)] if len(buildings) else buildings
    out["buildings"] = display_frame(gpd.GeoSeries(shapes.geometry.to_numpy(), crs=4326))
    for frame in out.values():
        frame.attrs["cut_at_edge"] = every.attrs.get("skipped", 0)
    return out


def _kinds(every: gpd.GeoDataFrame, tags: dict[str, list[str]]) -> tuple[np.ndarray, ...]:
    """Which features of one reading are land use, natural areas (``tags``) and buildings: a
    feature with several of them counts in each, as it did read once per kind."""
    def has(key: str) -> np.ndarray:
        return every[key].notna().to_numpy() if key in every else np.zeros(len(every), bool)

    natural = np.zeros(len(every), bool)
    for key, values in tags.items():
        natural |= every[key].isin(values).to_numpy() if key in every else False
    return has("landuse"), natural, has("building")
