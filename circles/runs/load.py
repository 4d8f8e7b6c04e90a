"""Inputs made ready for a run: a network from any source, facilities read and placed on it.

The readers turn files into frames and know no graph; the engine builds and places on the graph and
reads no files. These functions are the public doors that do both in one call
(``circles.load_network``, ``circles.read_facilities``...).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ..engine.network import WalkNetwork
from ..engine.placement import attach, study_area_wgs84
from ..errors import InputFileError
from ..outputs.network_file import write_repaired_lines
from ..readers import facilities as facility_reader
from ..readers.files import default_network_path
from ..readers.network_file import is_saved_network
from ..readers.osm import download_graph, is_osm_file
from ..readers.population import Demand
from ..readers.population import read_population as read_population_file
from ..readers.profiles import Profile, get_profile
from ..readers.roads import RoadOptions, read_road_network

__all__ = ["facilities_from_frame", "load_network", "network_from_roads", "read_facilities",
           "read_population"]

_GIS_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".gdb", ".parquet"}


def load_network(source: str | Path | WalkNetwork | None = None, *, crs: str | None = None,
                 progress: Callable[[str], None] | None = None, **options) -> WalkNetwork:
    """Build or load a walking network from any supported source.

    Parameters
    ----------
    source
        An OSM extract (``.osm.pbf``, ``.osm``, ``.osm.bz2``, ``.osm.gz``), a saved network
        (``.gpkg`` written by :meth:`WalkNetwork.save`), a road-line file (GeoPackage, Shapefile,
        GeoJSON, File Geodatabase), a place name (online, through osmnx), or ``None`` for the
        embedded Chengdu extract.
    crs
        For road-line files without a CRS.
    progress
        Called with each stage's name.
    **options
        Passed to :func:`network_from_roads` (``snap_metres``, ``add_osm``, ``repaired``...).

    Returns
    -------
    WalkNetwork

    """
    if isinstance(source, WalkNetwork):
        return source
    path = default_network_path() if source is None else Path(str(source))
    if is_osm_file(path):
        return WalkNetwork.from_osm(path, progress=progress)
    if path.exists():
        if path.suffix.lower() == ".gpkg" and is_saved_network(path):
            return WalkNetwork.load(path)
        return network_from_roads(path, crs=crs, progress=progress, **options)
    if path.suffix.lower() in _GIS_SUFFIXES or "/" in str(source) or "\\" in str(source):
        raise InputFileError("the network file does not exist", file=path,
                             fix="check the path; without --network the embedded Chengdu extract is used")
    net = WalkNetwork.from_osmnx(download_graph(str(source)))
    net.set_extent(_place_polygon(str(source)), source="the place's polygon")
    return net


def network_from_roads(path: str | Path, *, repaired: str | Path | None = None,
                       progress: Callable[[str], None] | None = None, **options) -> WalkNetwork:
    """A walking network from a city's road centre lines, repaired and reported.

    Parameters
    ----------
    path
        GeoPackage, Shapefile, GeoJSON or File Geodatabase of LineStrings/MultiLineStrings.
    repaired
        Write the repaired lines (layer ``repaired``) and the place of every fix (layer
        ``fixes``) to this GeoPackage, so the bureau can fix its source.
    progress
        Called with each stage's name.
    **options
        The fields of :class:`circles.readers.roads.RoadOptions`: ``crs``, ``layer``,
        ``snap_metres``, ``add_osm``, ``class_column``, ``walkable_column``, ``node_crossings``.

    Returns
    -------
    WalkNetwork
        Edges carry ``road_class``, ``name``, ``level``, ``origin`` (``city``/``osm``) and
        ``source_row``; ``report["repairs"]`` counts every fix.

    """
    t0 = time.perf_counter()
    lines = read_road_network(path, RoadOptions.from_options(options), progress=progress)
    if repaired is not None:
        write_repaired_lines(repaired, lines)
    if progress is not None:
        progress("build")
    net = WalkNetwork.from_road_lines(lines)
    net.report["read_s"] = round(time.perf_counter() - t0, 3)
    return net


def read_facilities(path: str | Path, *, profile: Profile | str | None = None, crs: str = "wgs84",
                    network: WalkNetwork | None = None, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read and validate a facility table, and snap it to ``network`` when one is given.

    See :func:`circles.readers.facilities.read_facilities` for the table's columns; with a
    network, :func:`circles.engine.placement.attach` adds ``x``, ``y``, ``edge``, ``along_m``,
    ``offset_m`` and the ``status`` (``ok``, ``off_network``, ``outside_area``).
    """
    fac = facility_reader.read_facilities(path, profile=profile, crs=crs, layer=layer)
    return attach(fac, network, get_profile(profile)) if network is not None else fac


def facilities_from_frame(df: pd.DataFrame, *, profile: Profile | str | None = None,
                          crs: str = "wgs84", network: WalkNetwork | None = None,
                          file: str | Path | None = None) -> gpd.GeoDataFrame:
    """Validate a facility table already in memory (see :func:`read_facilities`)."""
    fac = facility_reader.facilities_from_frame(df, profile=profile, crs=crs, file=file)
    return attach(fac, network, get_profile(profile)) if network is not None else fac


def read_population(source: str | Path | pd.DataFrame | Demand | None, *,
                    network: WalkNetwork | None = None, profile: Profile | str | None = None,
                    **options) -> Demand:
    """Read any population source, clipped to the network's study area.

    Parameters
    ----------
    source
        See :func:`circles.readers.population.read_population`: a raster, polygons or grid cells
        with counts, points, or ``None`` / ``"osm"`` / an OSM extract for an estimate.
    network
        The walking network: rasters and OSM estimates are clipped to its study area (the hull
        widened by the profile's snap cap, cut at the extract's edge).
    profile
        Gives the snap cap and, unless ``persons_per_household`` is given, the persons per household.
    **options
        ``osm_path``, ``residential``, ``pop_column``, ``households_column``,
        ``persons_per_household``, ``crs``, ``group_columns``, ``drop_invalid``.

    Returns
    -------
    Demand

    """
    profile = get_profile(profile)
    options.setdefault("persons_per_household", profile.persons_per_household)
    area = study_area_wgs84(network, profile) if network is not None else None
    return read_population_file(source, area=area, **options)


def _place_polygon(place: str):
    """The boundary osmnx geocoded the place to (answered from its cache), or ``None``."""
    try:
        import osmnx as ox

        gdf = ox.geocode_to_gdf(place)
        return gdf.to_crs(4326).geometry.union_all() if len(gdf) else None
    except Exception:  # no boundary at hand: the hull alone bounds the study area
        return None
