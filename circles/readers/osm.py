"""Reading OpenStreetMap: local extracts (offline, the default) and online queries through osmnx.

A PBF extract is read with pyrosm; XML extracts (``.osm``, ``.osm.bz2``, ``.osm.gz``) are first
re-encoded to a temporary PBF by pyosmium (in C++), so every format goes through one reader and
one walking filter.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputFileError, NetworkError, OfflineError

__all__ = [
    "OSM_SUFFIXES",
    "is_osm_file",
    "read_osm_bounds",
    "read_osm_features",
    "read_osm_ways",
    "walkable",
]

OSM_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".xml", ".osm.xml")

# Pedestrians may use these ways in any case (street centre lines carry the walking where OSM
# maps few sidewalks, as in most Chinese cities).
_WALK_HIGHWAYS = frozenset({
    "footway", "path", "pedestrian", "steps", "living_street", "residential", "service",
    "unclassified", "tertiary", "tertiary_link", "secondary", "secondary_link", "primary",
    "primary_link", "track", "road", "corridor", "bridleway",
})
_SIDEWALK_VALUES = ("both", "left", "right", "yes")
_ACCESS_CLOSED = ("private", "no")
_FOOT_OPEN = ("yes", "designated", "permissive", "official")

# The same rule as an Overpass filter, for online downloads through osmnx.
OVERPASS_WALK_FILTER = (
    '["highway"]["area"!~"yes"]["foot"!~"no"]["access"!~"private|no"]'
    '["highway"!~"motorway|motorway_link|construction|proposed|abandoned|platform|raceway|bus_guideway|busway|escape"]'
)


def is_osm_file(path: str | Path) -> bool:
    """True when ``path`` names an OpenStreetMap extract by its suffix."""
    name = str(path).lower()
    return name.endswith(OSM_SUFFIXES)


@contextlib.contextmanager
def _as_pbf(path: Path) -> Iterator[Path]:
    """Yield a PBF version of ``path`` (itself when it is one already)."""
    name = path.name.lower()
    if name.endswith(".pbf"):
        _check_pbf_header(path)
        yield path
        return
    import osmium

    fd, tmp = tempfile.mkstemp(suffix=".osm.pbf")
    os.close(fd)
    os.unlink(tmp)
    try:
        writer = osmium.WriteHandler(tmp)
        try:
            osmium.apply(str(path), writer)
        except RuntimeError as err:
            raise InputFileError(
                f"cannot read the OSM XML extract ({err})", file=path,
                fix="check that the file is a complete .osm/.osm.bz2/.osm.gz export; download it again",
            ) from err
        finally:
            writer.close()
        yield Path(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _check_pbf_header(path: Path) -> None:
    # A PBF starts with a 4-byte header length and an "OSMHeader" blob; anything else (an HTML
    # error page saved as .pbf, a truncated download) would crash pyrosm's Cython reader.
    with open(path, "rb") as fh:
        head = fh.read(64)
    if len(head) < 16 or b"OSMHeader" not in head:
        raise InputFileError(
            "not an OSM PBF file (no OSMHeader block at its start)", file=path,
            fix="download the extract again; an .osm.pbf starts with an OSMHeader block",
        )


def read_osm_bounds(path: str | Path):
    """The bounds an OSM extract declares: its header box (a PBF's ``HeaderBBox``, an XML
    file's ``<bounds>`` element).

    Parameters
    ----------
    path
        An OSM extract (any supported format).

    Returns
    -------
    shapely.Polygon or None
        The box in WGS-84; ``None`` when the header has no valid box (a box with west > east,
        outside ±180/±90, or of zero area is taken as none).

    """
    import osmium
    import shapely

    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    except RuntimeError:
        return None
    try:
        box = reader.header().box()
    finally:
        reader.close()
    if not box.valid():
        return None
    w, s, e, n = box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        return None
    return shapely.box(w, s, e, n)


def read_osm_ways(path: str | Path) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Read every highway segment of an OSM extract, before the walking filter.

    Parameters
    ----------
    path
        An ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz`` file.

    Returns
    -------
    nodes : pandas.DataFrame
        ``id``, ``lon``, ``lat`` of the nodes the segments use.
    edges : geopandas.GeoDataFrame
        One row per two-node segment in WGS-84: ``u``, ``v`` (OSM node ids), ``osm_id``,
        ``highway``, ``name``, ``foot``, ``access``, ``sidewalk``, ``tags`` (JSON of the rest),
        ``geometry``.

    Raises
    ------
    InputFileError
        Missing, empty, truncated or unreadable file.
    NetworkError
        No highway at all in the extract.

    """
    path = Path(path)
    if not path.exists():
        raise InputFileError("the OSM extract does not exist", file=path,
                             fix="check the path, or run without a network to use the embedded Chengdu extract")
    if path.stat().st_size == 0:
        raise InputFileError("the OSM extract is empty", file=path, fix="download the extract again")
    from pyrosm import OSM

    with _as_pbf(path) as pbf, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = OSM(str(pbf), engine="in_memory", keep_metadata=False).get_network(
                network_type="all", nodes=True)
        except Exception as err:
            raise InputFileError(
                f"cannot read the OSM extract ({type(err).__name__}: {err}); it may be truncated",
                file=path, fix="download the extract again and check its size against the source",
            ) from err
    if result is None or result[1] is None or len(result[1]) == 0:
        raise NetworkError("the extract contains no highway (street or path) at all", file=path,
                           fix="check the extract covers a built-up area; cut a larger extract")
    nodes, edges = result
    edges = edges.rename(columns={"id": "osm_id"})
    for col in ("foot", "access", "sidewalk", "name", "tags", "area", "service", "bridge", "tunnel"):
        if col not in edges.columns:
            edges[col] = None
    # The level matters to anyone who re-nodes these lines: a bridge does not meet the street below.
    layer = edges["tags"].astype("string").str.extract(r'"layer"\s*:\s*"(-?\d+)"')[0]
    edges["layer"] = pd.to_numeric(layer, errors="coerce")
    keep = ["u", "v", "osm_id", "highway", "name", "foot", "access", "sidewalk", "area", "service",
            "bridge", "tunnel", "layer", "tags", "geometry"]
    return nodes[["id", "lon", "lat"]], edges[keep]


def walkable(edges: pd.DataFrame) -> np.ndarray:
    """The walking filter: a boolean mask of the segments a pedestrian may use.

    Kept: footway, path, pedestrian, steps, living_street, residential, service, unclassified,
    tertiary, secondary, primary (and links), track, road, cycleway unless ``foot=no``, trunk
    only with a sidewalk or ``foot=yes``. Dropped: motorways, ``foot=no``, ``access=private|no``
    without an open ``foot``, areas.
    """
    hw = edges["highway"].astype("string").fillna("")
    foot = edges["foot"].astype("string").fillna("").str.lower()
    access = edges["access"].astype("string").fillna("").str.lower()
    area = edges["area"].astype("string").fillna("").str.lower()
    tags = edges["tags"].astype("string").fillna("")
    sidewalk = edges["sidewalk"].astype("string").fillna("").str.lower()

    foot_open = foot.isin(_FOOT_OPEN).to_numpy()
    has_sidewalk = (sidewalk.isin(_SIDEWALK_VALUES)
                    | tags.str.contains(r'"sidewalk:(?:both|left|right)"\s*:\s*"yes"', regex=True))
    base = hw.isin(_WALK_HIGHWAYS).to_numpy() | (hw == "cycleway").to_numpy()
    trunk = hw.isin(("trunk", "trunk_link")).to_numpy() & (has_sidewalk.to_numpy() | foot_open)
    keep = base | trunk
    keep &= (foot != "no").to_numpy()
    keep &= ~(access.isin(_ACCESS_CLOSED).to_numpy() & ~foot_open)
    keep &= (area != "yes").to_numpy()
    return keep


def read_osm_features(path: str | Path, *, kind: str, custom_filter: dict | None = None
                      ) -> gpd.GeoDataFrame:
    """Read points of interest, buildings or land use from an extract (WGS-84).

    Parameters
    ----------
    path
        An OSM extract (any supported format).
    kind
        ``"pois"`` (with ``custom_filter`` as pyrosm takes it, e.g. ``{"amenity": ["school"]}``),
        ``"buildings"`` or ``"landuse"``.
    custom_filter
        Tag filter for ``"pois"`` (and optionally the others).

    Returns
    -------
    geopandas.GeoDataFrame
        The features with their tags as columns; empty (with a geometry column) when none.

    """
    from pyrosm import OSM

    path = Path(path)
    with _as_pbf(path) as pbf, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        osm = OSM(str(pbf), engine="in_memory", keep_metadata=False)
        if kind == "pois":
            out = osm.get_pois(custom_filter=custom_filter)
        elif kind == "buildings":
            out = osm.get_buildings(custom_filter=custom_filter)
        elif kind == "landuse":
            out = osm.get_landuse(custom_filter=custom_filter)
        else:
            raise ValueError(f"unknown feature kind {kind!r}")
    if out is None or len(out) == 0:
        return gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=4326)
    return out.set_crs(4326, allow_override=True)


def download_graph(query: str | object, *, polygon: bool = False):
    """Download a walking graph from OpenStreetMap through osmnx (online only).

    Parameters
    ----------
    query
        A place name (``"Jinjiang District, Chengdu"``) or, with ``polygon=True``, a shapely
        polygon in WGS-84.
    polygon
        ``query`` is a polygon, not a place name.

    Returns
    -------
    networkx.MultiDiGraph
        The unsimplified osmnx graph.

    Raises
    ------
    OfflineError
        When OpenStreetMap's servers cannot be reached.

    """
    import osmnx as ox
    import requests

    try:
        if polygon:
            return ox.graph_from_polygon(query, custom_filter=OVERPASS_WALK_FILTER,
                                         simplify=False, retain_all=True)
        return ox.graph_from_place(query, custom_filter=OVERPASS_WALK_FILTER,
                                   simplify=False, retain_all=True)
    except (requests.exceptions.RequestException, ConnectionError, OSError) as err:
        raise OfflineError(
            f"cannot download '{query}' from OpenStreetMap: no internet connection ({type(err).__name__})",
            fix="use a local extract instead: circles network city.osm.pbf (download one from an OSM "
                "extract service on a machine with internet and copy it over)",
        ) from err
    except ValueError as err:  # osmnx: place not found / no data
        raise NetworkError(f"OpenStreetMap has no walkable streets for '{query}' ({err})",
                           fix="check the place name, or give a local .osm.pbf extract") from err
