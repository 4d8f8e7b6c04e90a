"""Reading OpenStreetMap: local extracts (offline, the default) and online queries through osmnx.

The walking network is read by :func:`read_osm_segments`, which decodes the PBF into arrays
(:mod:`circles.readers.osm_pbf`); features and the full highway frame (:func:`read_osm_ways`) are
read with pyrosm. XML extracts (``.osm``, ``.osm.bz2``, ``.osm.gz``) are first re-encoded to a
temporary PBF by pyosmium (in C++), so every format goes through the same readers and one walking
filter.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import InputFileError, NetworkError, OfflineError
from .osm_pbf import PbfError, PbfUnsupportedError, PbfWays, read_pbf_ways

__all__ = [
    "OSM_SUFFIXES",
    "OsmSegments",
    "is_osm_file",
    "read_osm_bounds",
    "read_osm_features",
    "read_osm_segments",
    "read_osm_ways",
    "walkable",
    "walking_mask",
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
_SIDEWALK_SIDES = ("sidewalk:both", "sidewalk:left", "sidewalk:right")
_ACCESS_CLOSED = ("private", "no")
# Highway values pyrosm's networks never read: not built (yet or any more), or no street.
_NOT_STREETS = ("abandoned", "construction", "no", "planned", "platform", "proposed", "raceway",
                "razed", "rest_area", "services")
# The tags the walking network reads from each way.
_WAY_TAGS = ("highway", "name", "foot", "access", "sidewalk", "area", "bridge", "tunnel", "layer",
             *_SIDEWALK_SIDES)
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
    with _osmium_copy(path, what="OSM XML extract") as tmp:
        yield tmp


@contextlib.contextmanager
def _osmium_copy(path: Path, *, what: str) -> Iterator[Path]:
    """Yield a temporary PBF that pyosmium wrote from ``path`` (zlib blocks, dense nodes)."""
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
                f"cannot read the {what} ({err})", file=path,
                fix="check that the file is a complete .osm.pbf/.osm/.osm.bz2/.osm.gz export; "
                    "download it again",
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


def _checked(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputFileError("the OSM extract does not exist", file=path,
                             fix="check the path, or run without a network to use the embedded Chengdu extract")
    if path.stat().st_size == 0:
        raise InputFileError("the OSM extract is empty", file=path, fix="download the extract again")
    return path


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
    path = _checked(path)
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


@dataclass(frozen=True)
class OsmSegments:
    """The two-node segments of an extract's highways, as arrays.

    The segments are those :func:`read_osm_ways` returns, in the same order: every way with a
    ``highway`` tag except areas and ways not built or not part of the street network (pyrosm's
    ``"all"`` network), cut between consecutive nodes; a node missing from the extract is left
    out and its neighbours joined, as pyrosm does.

    Attributes
    ----------
    node_id, lon, lat : numpy.ndarray
        The nodes the segments use, sorted by OSM id (degrees, WGS-84).
    u, v : numpy.ndarray
        Each segment's end nodes (positions in ``node_id``).
    walkable : numpy.ndarray
        The walking filter (:func:`walkable`) per segment.
    attrs : pandas.DataFrame
        Per walkable segment: ``osm_id``, ``highway``, ``name``, ``bridge``, ``tunnel`` (``""``
        when untagged) and ``layer`` (the ``layer`` tag when it is an integer).

    """

    node_id: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    u: np.ndarray
    v: np.ndarray
    walkable: np.ndarray
    attrs: pd.DataFrame


def read_osm_segments(path: str | Path) -> OsmSegments:
    """Read the highway segments of an OSM extract into arrays, with the walking filter applied.

    Parameters
    ----------
    path
        An ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz`` file.

    Returns
    -------
    OsmSegments

    Raises
    ------
    InputFileError
        Missing, empty, truncated or unreadable file.
    NetworkError
        No highway at all in the extract.

    """
    path = _checked(path)
    with _as_pbf(path) as pbf:
        ways = _pbf_ways(pbf, source=path)
    keep = ~_multi_value_in(ways.tags["highway"], _NOT_STREETS) & ~_multi_value_in(ways.tags["area"], ("yes",))
    node_id, lon, lat, u, v, seg_way = _segments(ways, keep)
    if len(u) == 0:
        raise NetworkError("the extract contains no highway (street or path) at all", file=path,
                           fix="check the extract covers a built-up area; cut a larger extract")
    t = ways.tags
    sides = np.zeros(len(ways.way_id), dtype=bool)
    for side in _SIDEWALK_SIDES:
        sides |= t[side] == "yes"
    walk = walking_mask(highway=t["highway"], foot=t["foot"], access=t["access"], area=t["area"],
                        sidewalk=t["sidewalk"], side_sidewalk=sides)[seg_way]
    return OsmSegments(node_id=node_id, lon=lon, lat=lat, u=u, v=v, walkable=walk,
                       attrs=_segment_attrs(ways, keep, seg_way, walk))


def _pbf_ways(pbf: Path, *, source: Path) -> PbfWays:
    try:
        try:
            return read_pbf_ways(pbf, key="highway", tags=_WAY_TAGS)
        except PbfUnsupportedError:
            # An encoding the array decoder does not read (lz4/zstd blocks): osmium re-encodes it.
            with _osmium_copy(pbf, what="OSM extract") as copy:
                return read_pbf_ways(copy, key="highway", tags=_WAY_TAGS)
    except PbfError as err:
        raise InputFileError(
            f"cannot read the OSM extract ({err}); it may be truncated", file=source,
            fix="download the extract again and check its size against the source",
        ) from err


def _multi_value_in(values: np.ndarray, options: tuple[str, ...]) -> np.ndarray:
    """Whether each tag value is one of ``options``, also as one of several values
    (``"yes;no"``): the rule pyrosm's network filters apply."""
    s = pd.Series(values, dtype=object)
    hit = s.isin(options).to_numpy().copy()
    several = s.str.contains(";", regex=False, na=False).to_numpy()
    if several.any():
        parts = s[several].str.split(";").explode().str.strip()
        hit[several] |= parts.isin(options).groupby(level=0).any().to_numpy()
    return hit


def _segments(ways: PbfWays, keep: np.ndarray) -> tuple[np.ndarray, ...]:
    """Nodes (sorted ids, lon, lat), segment ends (u, v as node positions) and each segment's way."""
    order = np.argsort(ways.node_id, kind="stable")
    ids = ways.node_id[order]
    last = np.r_[ids[1:] != ids[:-1], True]  # a repeated id: its last record counts, as in pyrosm
    order, ids = order[last], ids[last]
    lon, lat = ways.lon[order], ways.lat[order]
    usable = (lon <= 180.0) & (lon >= -180.0) & (lat <= 90.0) & (lat >= -90.0)
    ref_way = np.repeat(np.arange(len(ways.way_id)), np.diff(ways.way_start))
    refs, ref_way = ways.refs[keep[ref_way]], ref_way[keep[ref_way]]
    row = np.minimum(np.searchsorted(ids, refs), max(len(ids) - 1, 0))
    found = (ids[row] == refs) & usable[row] if len(ids) else np.zeros(len(refs), dtype=bool)
    row, ref_way = row[found], ref_way[found]
    pair = ref_way[1:] == ref_way[:-1]
    u_row, v_row, seg_way = row[:-1][pair], row[1:][pair], ref_way[:-1][pair]
    used = np.zeros(len(ids), dtype=bool)
    used[u_row] = used[v_row] = True
    renumber = np.cumsum(used) - 1  # used nodes numbered in id order
    return ids[used], lon[used], lat[used], renumber[u_row], renumber[v_row], seg_way


def _segment_attrs(ways: PbfWays, keep: np.ndarray, seg_way: np.ndarray, walk: np.ndarray
                   ) -> pd.DataFrame:
    """The attributes of the walkable segments, typed as :func:`read_osm_ways` types them."""
    t = ways.tags
    # Typed over the ways that have segments, as pyrosm's frame of every segment types them.
    present = np.flatnonzero(np.bincount(seg_way, minlength=len(ways.way_id)) > 0)
    layer = pd.Series(t["layer"][present], dtype="string")
    layer = pd.to_numeric(layer.where(layer.str.fullmatch(r"-?[0-9]+", na=False)), errors="coerce")
    at = np.zeros(len(ways.way_id), dtype=np.int64)
    at[present] = np.arange(len(present))
    at = at[seg_way[walk]]  # each walkable segment's way among ``present``

    def column(values: np.ndarray, *, blank: bool = False) -> pd.Series:
        col = pd.Series(values[present], dtype=object)
        col = col.fillna("").astype(str) if blank else col.astype("str")
        return col.iloc[at].reset_index(drop=True)

    # pyrosm drops a tag no way it reads carries, and read_osm_ways puts back a column of None.
    named = (keep & (np.diff(ways.way_start) > 0) & pd.notna(t["name"])).any()
    name = column(t["name"]) if named else pd.Series(np.full(len(at), None, dtype=object))
    return pd.DataFrame({
        "osm_id": ways.way_id[present][at], "highway": column(t["highway"]), "name": name,
        "bridge": column(t["bridge"], blank=True), "tunnel": column(t["tunnel"], blank=True),
        "layer": layer.iloc[at].reset_index(drop=True),
    })


def walkable(edges: pd.DataFrame) -> np.ndarray:
    """The walking filter: a boolean mask of the segments a pedestrian may use.

    Kept: footway, path, pedestrian, steps, living_street, residential, service, unclassified,
    tertiary, secondary, primary (and links), track, road, cycleway unless ``foot=no``, trunk
    only with a sidewalk or ``foot=yes``. Dropped: motorways, ``foot=no``, ``access=private|no``
    without an open ``foot``, areas.

    Parameters
    ----------
    edges
        Segments as :func:`read_osm_ways` returns them (``highway``, ``foot``, ``access``,
        ``area``, ``sidewalk`` and the JSON ``tags``).

    """
    tags = edges["tags"].astype("string").fillna("")
    sides = tags.str.contains(r'"sidewalk:(?:both|left|right)"\s*:\s*"yes"', regex=True).to_numpy()
    return walking_mask(highway=edges["highway"], foot=edges["foot"], access=edges["access"],
                        area=edges["area"], sidewalk=edges["sidewalk"], side_sidewalk=sides)


def walking_mask(*, highway, foot, access, area, sidewalk, side_sidewalk) -> np.ndarray:
    """The walking filter (see :func:`walkable`) on tag values given one array per tag.

    Parameters
    ----------
    highway, foot, access, area, sidewalk
        The tag values (``None`` or NaN where a way has no such tag).
    side_sidewalk
        Booleans: a ``sidewalk:both``, ``sidewalk:left`` or ``sidewalk:right`` tag is ``yes``.

    Returns
    -------
    numpy.ndarray
        True where a pedestrian may walk.

    """
    def text(values, *, lower: bool = True) -> pd.Series:
        out = pd.Series(np.asarray(values, dtype=object)).astype("string").fillna("")
        return out.str.lower() if lower else out

    hw, foot_, sidewalk_ = text(highway, lower=False), text(foot), text(sidewalk)
    foot_open = foot_.isin(_FOOT_OPEN).to_numpy()
    has_sidewalk = sidewalk_.isin(_SIDEWALK_VALUES).to_numpy() | np.asarray(side_sidewalk, dtype=bool)
    base = hw.isin(_WALK_HIGHWAYS).to_numpy() | (hw == "cycleway").to_numpy()
    trunk = hw.isin(("trunk", "trunk_link")).to_numpy() & (has_sidewalk | foot_open)
    keep = base | trunk
    keep &= (foot_ != "no").to_numpy()
    keep &= ~(text(access).isin(_ACCESS_CLOSED).to_numpy() & ~foot_open)
    keep &= (text(area) != "yes").to_numpy()
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
