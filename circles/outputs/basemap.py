"""The light basemap the map is drawn on without tiles: streets by class from the walking network,
water, green areas, residential land use and buildings from the OSM extract.

:func:`basemap_layers` makes the layers (WGS-84, simplified to ~2 m, coordinates rounded to 1e-6°),
a run writes them as ``basemap.gpkg`` so its map can be redrawn without the extract, and
:func:`basemap_layer` draws them in their own pane under every other layer, as one entry of the
layer control (街道 / streets). The printed map reads the same file, by the same layer names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..readers.linework_arrays import codes, position_key
from .basemap_areas import extract_areas, file_key
from .basemap_display import (
    DECIMALS,
    SIMPLIFY_METRES,
    display_frame,
    metric_crs,
    simplified,
    to_wgs84,
)
from .basemap_streets import StreetTiles, chain_merged, merged_lines, tiled_coordinates, tiled_lines
from .i18n import LANGS, t
from .map_elements import swatch
from .map_encoding import EncodedShapes
from .map_layers import in_pane
from .tiles import convert_geometry

__all__ = ["BASEMAP_MAX_VERTICES", "DECIMALS", "LAYERS", "SIMPLIFY_METRES", "STREET_CLASSES", "basemap_layer",
           "basemap_layers", "basemap_record", "basemap_source", "page_styles", "read_basemap", "street_classes", "street_lines",
           "write_basemap"]

#: The layers of ``basemap.gpkg``; ``streets`` has a ``class`` column (:data:`STREET_CLASSES`).
LAYERS = ("streets", "water", "green", "residential", "buildings")
STREET_CLASSES = ("major", "minor", "foot")
#: Vertices of the basemap a page draws at most (about 4 bytes each in the page, and each one
#: drawn at every pan): a whole province's buildings would make a page no browser opens. Layers
#: past it are left out, buildings first; every layer stays in ``basemap.gpkg``.
BASEMAP_MAX_VERTICES = 600_000

_MAJOR = frozenset({"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
                    "secondary", "secondary_link", "tertiary", "tertiary_link"})
_FOOT = frozenset({"footway", "path", "pedestrian", "steps", "cycleway", "bridleway", "corridor"})
# Drawn in this order, bottom first; light, so that every overlay reads on top of them.
_STYLES = {
    "residential": {"stroke": False, "fillColor": "#ebe7e1", "fillOpacity": 0.9, "fillRule": "nonzero"},
    "green": {"stroke": False, "fillColor": "#d7ebcf", "fillOpacity": 0.9, "fillRule": "nonzero"},
    "water": {"stroke": False, "fillColor": "#b9d8ef", "fillOpacity": 1.0, "fillRule": "nonzero"},
    "water_line": {"color": "#a9cde9", "weight": 2, "opacity": 1.0},
    "buildings": {"stroke": False, "fillColor": "#dcd6ce", "fillOpacity": 0.9, "fillRule": "nonzero"},
    "foot": {"color": "#cfcfcf", "weight": 1, "opacity": 1.0, "dashArray": "3 2"},
    "minor": {"color": "#cbcbcb", "weight": 1.5, "opacity": 1.0},
    "major": {"color": "#b5b5b5", "weight": 3.2, "opacity": 1.0},
}
# What the page leaves out first when the budget runs short.
_PAGE_PRIORITY = ("major", "minor", "water", "water_line", "green", "foot", "residential", "buildings")


def street_classes(values) -> np.ndarray:
    """``major``, ``minor`` or ``foot`` for each OSM ``highway`` value or road-class text.

    Parameters
    ----------
    values
        OSM highway values (``primary``, ``footway``...; ``osm:`` prefixed as a road layer's
        added paths are) or a city layer's road classes in Chinese or English (主干路, 人行道...).

    Returns
    -------
    numpy.ndarray
        One class per value; anything not recognised is ``minor``.

    """
    # A network has a few distinct classes over many edges: each distinct one is read once.
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)).astype("string"),
                                  use_na_sentinel=False)
    text = pd.Series(uniques).astype("string").fillna("").str.strip().str.lower()
    text = text.str.removeprefix("osm:")
    major, foot = (_words(key) for key in ("road_words_major", "road_words_foot"))
    out = np.full(len(text), "minor", dtype=object)
    loose = ~text.isin(_MAJOR | _FOOT).to_numpy()
    out[loose & text.str.contains(major, regex=True).to_numpy()] = "major"
    out[loose & text.str.contains(foot, regex=True).to_numpy()] = "foot"  # 步行街 on a 主干路 is a footpath
    out[text.isin(_MAJOR).to_numpy()] = "major"
    out[text.isin(_FOOT).to_numpy()] = "foot"
    return out[codes]


def _words(key: str) -> str:
    """A pattern of the road-class words of ``key`` in every page language."""
    words = {w for lang in LANGS for w in t(key, lang).split()}
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def street_lines(net) -> gpd.GeoDataFrame:
    """The network's streets as display lines with a ``class`` (WGS-84).

    Edges of a class are merged into lines through their degree-2 nodes, then simplified.
    The class comes from the edges' OSM ``highway`` or, for a road-line network, its road-class
    column; edges with neither are ``minor``.

    Parameters
    ----------
    net
        A :class:`circles.engine.network.WalkNetwork`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``class`` and the line geometry.

    """
    lines, names = _merged_streets(net)
    if not len(lines):
        return gpd.GeoDataFrame({"class": []}, geometry=[], crs=4326)
    return display_frame(gpd.GeoSeries(lines, crs=net.crs), **{"class": names})


def _merged_streets(net) -> tuple[np.ndarray, np.ndarray]:
    """The network's edges merged through their degree-2 nodes class by class (network CRS),
    and each line's class."""
    classes = _edge_classes(net)
    geoms = np.asarray(net.edge_geometry, dtype=object)
    parts, names = [np.zeros(0, dtype=object)], []
    for name in STREET_CLASSES:
        mask = classes == name
        if mask.any():
            parts.append(merged_lines(geoms[mask]))
            names += [name] * len(parts[-1])
    return np.concatenate(parts), np.array(names, dtype=object)


def _edge_classes(net) -> np.ndarray:
    """Each edge's street class, from its OSM ``highway`` or its road-class column."""
    attrs = net.edge_attrs.reset_index(drop=True)
    column = next((c for c in ("highway", "road_class") if c in attrs and len(attrs) == net.n_edges), None)
    return street_classes(attrs[column]) if column else np.full(net.n_edges, "minor", dtype=object)


def _street_tiles(net) -> StreetTiles:
    """:func:`street_lines` bundled per class and tile (:func:`tiled_lines`), as ``basemap.gpkg``
    holds them: bundled from the simplified lines' coordinates, with no display line of its own."""
    if net.straight and net.crs.is_projected:
        xy, start, names = _straight_streets(net)
        return tiled_coordinates(xy, start, names, to_display=to_wgs84(net.crs))
    lines, names = _merged_streets(net)
    metric = metric_crs(gpd.GeoSeries(lines, crs=net.crs))
    return tiled_lines(simplified(metric), names, to_display=to_wgs84(metric.crs))


def _street_frames(tiles: StreetTiles) -> Iterator[gpd.GeoDataFrame]:
    """The street bundles a chunk at a time, as the ``streets`` layer has them (at least one frame,
    empty when there are no streets, so that the layer is written)."""
    if not len(tiles):
        yield gpd.GeoDataFrame({"class": np.zeros(0, dtype=object)}, geometry=[], crs=4326)
    for geoms, classes in tiles.chunks():
        yield gpd.GeoDataFrame({"class": classes}, geometry=geoms, crs=4326)


def _straight_streets(net) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_merged_streets` of a network of straight edges, simplified, as coordinates (each
    line from ``start``) and classes: only the edges merged through a degree-2 node are made
    into GEOS lines (at 1M nodes the rest are 2 million lines, 0.4 GB as GEOS objects)."""
    node, _ = codes(position_key(np.column_stack([net.x, net.y]), decimals=None))  # as line_merge joins
    u, v = net.edge_u, net.edge_v
    drawn = (net.x[u] != net.x[v]) | (net.y[u] != net.y[v])  # line_merge drops zero-length lines
    classes = _edge_classes(net)
    pieces, names = [], []
    for name in STREET_CLASSES:
        e = np.flatnonzero((classes == name) & drawn)
        if not len(e):
            continue
        ends = np.column_stack([node[u[e]], node[v[e]]])
        xy = np.concatenate([np.column_stack([net.x[u[e]], net.y[u[e]]]), np.column_stack([net.x[v[e]], net.y[v[e]]])])
        merged, plain = chain_merged(ends, np.bincount(ends.ravel()), xy, lambda rows, e=e: net.edge_lines(e[rows]))
        merged = simplified(gpd.GeoSeries(merged, crs=net.crs))
        coords, line = shapely.get_coordinates(merged, return_index=True)
        pieces += [(coords, np.searchsorted(line, np.arange(len(merged)))),
                   (np.column_stack([xy[plain], xy[len(e) + plain]]).reshape(-1, 2), 2 * np.arange(len(plain)))]
        names += [name] * (len(merged) + len(plain))
    if not pieces:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object)
    sizes = np.cumsum([0] + [len(c) for c, _ in pieces[:-1]])
    start = np.concatenate([s + off for (_, s), off in zip(pieces, sizes, strict=True)])
    return np.concatenate([c for c, _ in pieces]), start, np.array(names, dtype=object)


def basemap_source(net, source: str | Path | None = None) -> Path | None:
    """The OSM extract the basemap's areas come from: ``source``, else the network's own when it was
    read from an extract; ``None`` for a road-line or saved network."""
    from ..readers.osm import is_osm_file

    path = source if source is not None else net.report.get("source")
    return Path(str(path)) if path and is_osm_file(str(path)) and Path(str(path)).is_file() else None


def basemap_layers(net, source: str | Path | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The layers of the light basemap, named as :data:`LAYERS` (WGS-84, simplified for display).

    Parameters
    ----------
    net
        The run's walking network: its edges are the streets.
    source
        The OSM extract to read water, green areas, residential land use and buildings from
        (default: the one the network was read from). Without one those layers are empty.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        ``streets`` (with ``class``: major, minor, foot; a multi-line per class and ~500 m tile),
        ``water``, ``green``, ``residential`` and
        ``buildings``, every one present (empty when there is nothing to draw).

    """
    tiles, areas = _tiles_and_areas(net, basemap_source(net, source))
    return {"streets": pd.concat(list(_street_frames(tiles)), ignore_index=True)} | areas


def write_basemap(net, path: str | Path, source: str | Path | None = None) -> dict:
    """Write the layers of :func:`basemap_layers` to the GeoPackage ``path`` (atomically) and
    return the manifest's ``basemap`` block (:func:`basemap_record`).

    The streets are made into GEOS lines and written a chunk of bundles at a time: whole, a
    1M-node city's 2M lines were 0.4 GB held while the file was written.

    Parameters
    ----------
    net
        The run's walking network.
    path
        The file to write (``basemap.gpkg``).
    source
        The OSM extract of the areas, as for :func:`basemap_layers`.

    Returns
    -------
    dict
        Features per layer, vertices per style and where the areas came from.

    """
    from .tables import write_layers

    where = basemap_source(net, source)
    tiles, areas = _tiles_and_areas(net, where)
    write_layers({"streets": _street_frames(tiles)} | areas, path)
    return _record({"streets": len(tiles)} | {name: len(gdf) for name, gdf in areas.items()},
                   tiles.vertices() | _style_vertices(areas), areas, where)


def _tiles_and_areas(net, path: Path | None) -> tuple[StreetTiles, dict[str, gpd.GeoDataFrame]]:
    """The street bundles, and the area layers of the extract at ``path`` (every one of
    :data:`LAYERS` but the streets, empty without an extract)."""
    areas: dict[str, gpd.GeoDataFrame] = {}
    if path is None:
        tiles = _street_tiles(net)
    else:
        # The extract is read (Python and Cython, holding the GIL) while the streets are merged
        # and simplified (GEOS, releasing it): on two cores the one hides the other.
        with ThreadPoolExecutor(max_workers=1) as pool:
            reading = pool.submit(extract_areas, *file_key(path))
            tiles = _street_tiles(net)
            areas = reading.result()
    empty = gpd.GeoDataFrame(geometry=[], crs=4326)
    return tiles, {name: areas[name].copy() if name in areas else empty.copy() for name in LAYERS[1:]}


def basemap_record(layers: dict[str, gpd.GeoDataFrame], source: Path | None) -> dict:
    """The manifest's ``basemap`` block: features per layer, vertices per style (what
    :func:`page_styles` weighs, so a map reads only what it draws) and where the areas came from."""
    return _record({name: len(layers.get(name, ())) for name in LAYERS}, _style_vertices(layers), layers, source)


def _record(features: dict[str, int], vertices: dict[str, int], layers: dict[str, gpd.GeoDataFrame],
            source: Path | None) -> dict:
    record: dict = {name: features.get(name, 0) for name in LAYERS}
    record["vertices"] = vertices
    record["areas"] = str(source) if source is not None else \
        "skipped: the network is not from an OSM extract (streets only)"
    if source is not None:  # ways the extract cut (nodes missing): left out, and said so
        record["left_out_cut_at_edge"] = int(max((layers[n].attrs.get("cut_at_edge", 0) for n in LAYERS[1:]
                                                  if n in layers), default=0))
    return record


def read_basemap(path: str | Path, *, styles: list[str] | None = None) -> dict[str, gpd.GeoDataFrame] | None:
    """The layers of a run's ``basemap.gpkg`` (those of :data:`LAYERS` it has), or ``None``
    when there is no such file (a run from before the basemap).

    Parameters
    ----------
    path
        The file.
    styles
        Read only the features drawn in these styles (:func:`page_styles`); default all.

    Returns
    -------
    dict of str to geopandas.GeoDataFrame or None

    """
    import pyogrio

    path = Path(path)
    if not path.exists():
        return None
    names = {str(n) for n, _ in pyogrio.list_layers(path)}
    if styles is None:
        return {name: gpd.read_file(path, layer=name) for name in LAYERS if name in names}
    wanted = set(styles)
    classes = [c for c in STREET_CLASSES if c in wanted]
    out = {}
    if "streets" in names and classes:
        out["streets"] = gpd.read_file(path, layer="streets",
                                       where="class IN (" + ", ".join(f"'{c}'" for c in classes) + ")")
    for name in LAYERS[1:]:
        if name in names and wanted & ({name, "water_line"} if name == "water" else {name}):
            out[name] = gpd.read_file(path, layer=name)
    return out


def _style_keys(name: str, gdf: gpd.GeoDataFrame, geoms: np.ndarray) -> np.ndarray:
    """The style of each feature of a basemap layer: a street's class, water lines apart from water areas."""
    if name == "streets":
        return gdf["class"].astype(str).to_numpy() if "class" in gdf else np.full(len(geoms), "minor")
    if name == "water":
        return np.where(np.isin(shapely.get_type_id(geoms), (1, 5)), "water_line", name)
    return np.full(len(geoms), name)


def page_styles(vertices: dict[str, int]) -> list[str]:
    """The styles a page draws, bottom first: by :data:`_PAGE_PRIORITY`, those whose vertices
    fit in what :data:`BASEMAP_MAX_VERTICES` leaves.

    Parameters
    ----------
    vertices
        Vertices per style (``major``, ``minor``, ``foot``, ``water``, ``water_line``, ``green``,
        ``residential``, ``buildings``), as the manifest's ``basemap`` block records them.

    Returns
    -------
    list of str

    """
    budget, keys = BASEMAP_MAX_VERTICES, []
    for key in _PAGE_PRIORITY:
        n = int(vertices.get(key, 0))
        if n and n <= budget:
            keys.append(key)
            budget -= n
    return [k for k in _STYLES if k in keys]


def _style_vertices(layers: dict[str, gpd.GeoDataFrame]) -> dict[str, int]:
    """The vertices of every layer's features by style, counted on the features (their parts
    made apart, as :func:`_style_pieces` makes them, were a city's 2M street lines again)."""
    vertices: dict[str, int] = {}
    for name, gdf in layers.items():
        if gdf is None or not len(gdf):
            continue
        geoms = np.asarray(gdf.geometry.values, dtype=object)
        keys, style = np.unique(_style_keys(name, gdf, geoms), return_inverse=True)
        counts = np.bincount(style, weights=shapely.get_num_coordinates(geoms), minlength=len(keys))
        vertices.update({str(key): int(n) for key, n in zip(keys, counts, strict=True)})
    return vertices


def _style_pieces(layers: dict[str, gpd.GeoDataFrame], crs: str = "wgs84") -> dict[str, np.ndarray]:
    """The parts of every layer's features by style."""
    pieces: dict[str, np.ndarray] = {}
    for name, gdf in layers.items():
        if gdf is None or not len(gdf):
            continue
        geoms = np.asarray(convert_geometry(gdf.geometry, crs).values, dtype=object)
        kinds = _style_keys(name, gdf, geoms)
        for key in np.unique(kinds):
            pieces[str(key)] = shapely.get_parts(geoms[kinds == key])
    return pieces


def _page_features(layers: dict[str, gpd.GeoDataFrame], crs: str) -> tuple[list, list]:
    """One multi-geometry per style key, bottom first, within the page's vertex budget."""
    pieces = _style_pieces(layers, crs)
    keys = page_styles({k: int(shapely.get_num_coordinates(v).sum()) for k, v in pieces.items()})
    geoms = [shapely.multilinestrings(pieces[k]) if k in STREET_CLASSES or k == "water_line"
             else shapely.orient_polygons(shapely.multipolygons(pieces[k])) for k in keys]
    return keys, geoms


def basemap_layer(layers: dict[str, gpd.GeoDataFrame], *, lang: str = "zh", crs: str = "wgs84",
                  show: bool = True) -> folium.FeatureGroup:
    """The basemap as one toggleable layer (街道 / streets) in its own pane under every other.

    Parameters
    ----------
    layers
        :func:`basemap_layers` or :func:`read_basemap`.
    lang
        ``zh`` or ``en``.
    crs
        The tiles' coordinate system (``gcj02``: converted to match Amap's).
    show
        Whether it is on when the page opens.

    Returns
    -------
    folium.FeatureGroup
        Streets light grey (wider for major roads, thin and dashed for footpaths), water light
        blue, green light green, residential land and buildings faint; not clickable.

    """
    fg = folium.FeatureGroup(name=swatch(_STYLES["major"]["color"]) + t("streets", lang), show=show)
    keys, geoms = _page_features(layers, crs)
    pane = in_pane(fg, "basemap")
    for key, geom in zip(keys, geoms, strict=True):  # a layer per style, bottom first
        kind = "lines" if shapely.get_type_id(geom) == 5 else "polygons"
        fg.add_child(EncodedShapes([geom], kind=kind, styles=[_STYLES[key]], pane=pane, interactive=False))
    return fg
