"""A city's own road centre lines as a walking network: reading, topology repair, the report.

Bureau layers (控规/现状路网) are digitised for drawing, not routing: lines cross without a shared
vertex, endpoints miss each other by centimetres, segments are duplicated. The repair nodes lines
where they cross on the same level (a bridge does not meet the street under it), closes gaps up
to ``snap_metres``, drops zero-length and duplicate segments, and counts every fix.
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .crs import utm_crs
from .errors import InputFileError, NetworkError
from .io import atomic_path
from .network import WalkNetwork
from .tables import find_column

__all__ = ["network_from_roads", "read_road_lines", "repair_lines"]

_WALKABLE_YES = {"yes", "y", "true", "1", "是", "可", "可步行", "t"}
_WALKABLE_NO = {"no", "n", "false", "0", "否", "不可", "不可步行", "f"}
_LEVEL_ALIASES = {"bridge": ("bridge", "桥梁", "桥"), "tunnel": ("tunnel", "隧道"), "layer": ("layer", "层", "层级")}
_OSM_PATHS = ("footway", "path", "steps", "pedestrian", "living_street", "track", "corridor")


def read_road_lines(path: str | Path, *, crs: str | None = None, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a line layer (GeoPackage, Shapefile, GeoJSON, File Geodatabase) in a metric CRS.

    Raises
    ------
    InputFileError
        Empty file, polygons or points instead of lines, or no CRS and no ``crs``.

    """
    path = Path(path)
    try:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except Exception as err:
        raise InputFileError(f"cannot read the road lines ({err})", file=path,
                             fix="give a GeoPackage, Shapefile (with .shx/.dbf/.prj), GeoJSON or .gdb") from err
    if len(gdf) == 0:
        raise InputFileError("the road layer has no features", file=path, fix="check the layer name and the export")
    kinds = gdf.geometry.geom_type.value_counts()
    bad = {k: int(v) for k, v in kinds.items() if k not in ("LineString", "MultiLineString")}
    if bad:
        raise InputFileError(f"road centre lines must be lines; found {bad}", file=path, field="geometry",
                             fix="export the centre-line layer, not road polygons or points")
    if gdf.crs is None:
        if crs is None:
            raise InputFileError("the road layer has no CRS", file=path, field="crs",
                                 fix="pass --crs EPSG:4547 (CGCS2000 3-degree zone, CM 114°E) or the layer's EPSG code, or add a .prj")
        gdf = gdf.set_crs(crs)
    centre = gdf.geometry.iloc[:1000].to_crs(4326).union_all().centroid
    if gdf.crs.is_geographic or _scale_error(gdf.crs, centre.x, centre.y) > 1e-3:
        # Lengths must be true metres: a zone whose meridian is far from the city stretches them.
        gdf = gdf.to_crs(utm_crs(centre.x, centre.y))
    return gdf


def _scale_error(crs, lon: float, lat: float) -> float:
    try:
        f = pyproj.Proj(crs).get_factors(lon, lat)
    except Exception:
        return 0.0
    return max(abs(f.meridional_scale - 1), abs(f.parallel_scale - 1))


def _level(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """A level per line: 0 on the ground, else the layer or ±1 for bridges and tunnels."""
    level = np.zeros(len(gdf))
    col = {k: next((c for c in gdf.columns if str(c).lower() in v), None) for k, v in _LEVEL_ALIASES.items()}
    if col["layer"]:
        level = pd.to_numeric(gdf[col["layer"]], errors="coerce").fillna(0).to_numpy(float)
    for key, sign in (("bridge", 1.0), ("tunnel", -1.0)):
        if col[key]:
            v = gdf[col[key]].astype(str).str.strip().str.lower()
            flag = ~v.isin(["", "no", "n", "0", "false", "none", "nan", "否"]).to_numpy()
            level = np.where(flag & (level == 0), sign, level)
    return level


def _walkable(gdf: gpd.GeoDataFrame, column: str | None, file) -> np.ndarray:
    col = column or next((c for c in gdf.columns if str(c).lower() in ("walkable", "步行", "可步行", "foot")), None)
    if col is None:
        return np.ones(len(gdf), dtype=bool)
    v = gdf[col].astype(str).str.strip().str.lower()
    unknown = sorted(set(v) - _WALKABLE_YES - _WALKABLE_NO - {"nan", "none", ""})
    if unknown:
        raise InputFileError(f"unknown values in the walkable column: {unknown[:8]}", file=file, field=str(col),
                             fix="use 是/否, yes/no, 1/0 or true/false")
    return ~v.isin(_WALKABLE_NO).to_numpy()


def _segments(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each line split into its two-point segments (index of the source line, segment)."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    same = idx[1:] == idx[:-1]
    a, b = coords[:-1][same], coords[1:][same]
    return idx[:-1][same], shapely.linestrings(np.stack([a, b], axis=1))


def repair_lines(gdf: gpd.GeoDataFrame, *, snap_metres: float = 2.0, node_crossings: bool = True
                 ) -> tuple[gpd.GeoDataFrame, dict]:
    """Node, snap and deduplicate road lines (projected CRS).

    ``node_crossings=False`` keeps lines that cross without a shared vertex apart (for layers
    that are already routable, such as OSM exports, where such crossings are bridges).

    Returns
    -------
    geopandas.GeoDataFrame
        Noded segments with ``level`` and the source row ``source``.
    dict
        Counts of every fix: multilines_split, zero_length_dropped, gaps_closed, crossings_noded,
        duplicates_dropped.

    """
    report: dict[str, int] = {}
    parts = gdf.explode(index_parts=False)
    report["multilines_split"] = int(len(parts) - len(gdf))
    level = parts["level"].to_numpy() if "level" in parts else np.zeros(len(parts))
    src = parts["source"].to_numpy() if "source" in parts else np.arange(len(parts))
    geoms = parts.geometry.to_numpy()
    zero = shapely.length(geoms) <= 1e-9
    report["zero_length_dropped"] = int(zero.sum())
    geoms, level, src = geoms[~zero], level[~zero], src[~zero]

    # Close digitising gaps: endpoints within the tolerance of each other meet at their mean.
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(geoms, 0)),
                      shapely.get_coordinates(shapely.get_point(geoms, -1))])
    pairs = cKDTree(ends).query_pairs(snap_metres, output_type="ndarray")
    n_end = len(ends)
    moved = 0
    if len(pairs):
        close = np.hypot(*(ends[pairs[:, 0]] - ends[pairs[:, 1]]).T) > 1e-9
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_end, n_end))
        _, lab = connected_components(g, directed=False)
        centre = np.column_stack([np.bincount(lab, ends[:, k]) / np.bincount(lab) for k in (0, 1)])
        new = centre[lab]
        moved = int(close.sum())
        m = len(geoms)
        coords, idx = shapely.get_coordinates(geoms, return_index=True)
        first = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
        last = np.r_[first[1:] - 1, len(idx) - 1]
        coords[first] = new[:m]
        coords[last] = new[m:]
        geoms = shapely.linestrings(coords, indices=idx)
    # Dangling ends near another line's interior: a connector, split by the noding below.
    starts = shapely.get_point(geoms, 0)
    stops = shapely.get_point(geoms, -1)
    tips = np.concatenate([starts, stops])
    tip_line = np.concatenate([np.arange(len(geoms))] * 2)
    tree = shapely.STRtree(geoms)
    near_i, near_j = tree.query(tips, predicate="dwithin", distance=snap_metres)
    other = near_j != tip_line[near_i]
    near_i, near_j = near_i[other], near_j[other]
    d = shapely.distance(tips[near_i], geoms[near_j])
    gap = (d > 1e-9) & (level[tip_line[near_i]] == level[near_j])
    connectors = shapely.shortest_line(tips[near_i[gap]], geoms[near_j[gap]])
    report["gaps_closed"] = moved + len(connectors)
    geoms = np.concatenate([geoms, connectors])
    level = np.concatenate([level, level[tip_line[near_i[gap]]]])
    src = np.concatenate([src, np.full(len(connectors), -1)])

    # Node per level: lines on one level meet where they cross; levels never meet mid-line.
    noded, lev, source = [], [], []
    n_before = 0
    crossings = 0
    duplicates = 0
    for lv in np.unique(level):
        sel = level == lv
        seg_src, segs = _segments(geoms[sel])
        # Exact duplicates (either direction) first: noding would silently merge them.
        key = pd.Series(shapely.to_wkb(shapely.set_precision(shapely.normalize(segs), 0.001)))
        dup = key.duplicated().to_numpy()
        duplicates += int(dup.sum())
        seg_src, segs = seg_src[~dup], segs[~dup]
        n_before += len(segs)
        out = shapely.get_parts(shapely.node(shapely.multilinestrings(segs))) if node_crossings else segs
        crossings += max(0, len(out) - len(segs))
        # The source row of each noded piece: the segment it lies on.
        t = shapely.STRtree(segs)
        pi, si = t.query(shapely.line_interpolate_point(out, 0.5, normalized=True), predicate="dwithin",
                         distance=1e-6)
        owner = np.full(len(out), -1)
        owner[pi] = np.asarray(src[sel])[seg_src[si]]
        noded.append(out)
        lev.append(np.full(len(out), lv))
        source.append(owner)
    out = np.concatenate(noded)
    report["pieces_split_at_crossings"] = int(crossings)
    norm = shapely.normalize(out)
    wkb = pd.Series(shapely.to_wkb(shapely.set_precision(norm, 0.001)))
    dup = wkb.duplicated().to_numpy()
    report["duplicates_dropped"] = duplicates + int(dup.sum())
    res = gpd.GeoDataFrame({"level": np.concatenate(lev)[~dup], "source": np.concatenate(source)[~dup]},
                           geometry=out[~dup], crs=gdf.crs)
    res = res[shapely.length(res.geometry.to_numpy()) > 1e-9].reset_index(drop=True)
    return res, report


def _build(lines: gpd.GeoDataFrame, *, source: str, report: dict) -> WalkNetwork:
    """Nodes from the segments' ends (rounded to a millimetre), then the usual build."""
    a = shapely.get_coordinates(shapely.get_point(lines.geometry.to_numpy(), 0))
    b = shapely.get_coordinates(shapely.get_point(lines.geometry.to_numpy(), -1))
    # Ends at one position are one node whatever their level: a bridge meets the ground where it
    # lands, while it never has an end (or a noded vertex) above the street it crosses.
    pos, inv = np.unique(np.round(np.vstack([a, b]), 3), axis=0, return_inverse=True)
    node = inv.ravel()
    m = len(lines)
    u, v = node[:m], node[m:]
    attrs = lines.drop(columns="geometry").reset_index(drop=True)
    return WalkNetwork.from_lines(x=pos[:, 0], y=pos[:, 1], node_id=None, edge_u=u, edge_v=v,
                                  edge_geometry=lines.geometry.to_numpy(), crs=lines.crs, edge_attrs=attrs,
                                  source=source, report=report)


def network_from_roads(path: str | Path, *, crs: str | None = None, snap_metres: float = 2.0,
                       add_osm: str | Path | None = None, repaired: str | Path | None = None,
                       layer: str | None = None, class_column: str | None = None,
                       walkable_column: str | None = None, node_crossings: bool = True,
                       progress=None) -> WalkNetwork:
    """A walking network from a city's road centre lines, repaired and reported.

    Parameters
    ----------
    path
        GeoPackage, Shapefile, GeoJSON or File Geodatabase of lines.
    crs
        The CRS of a file without one (e.g. ``EPSG:4547``).
    snap_metres
        Gaps up to this are closed.
    add_osm
        An OSM extract whose footways, paths and steps are added where the city's layer lacks
        them (those within 10 m of a city line are left out as duplicates).
    repaired
        Write the repaired lines to this GeoPackage, for the bureau to fix its source.
    layer
        The layer of a multi-layer file.
    class_column
        A road-class column (等级/class), kept on the edges.
    walkable_column
        A walkable yes/no column (步行: 是/否); rows marked not walkable are dropped.
    node_crossings
        Join lines where they cross on the same level (``False`` for already routable layers).
    progress
        Called with each stage's name.

    """
    t0 = time.perf_counter()
    if progress:
        progress("read")
    gdf = read_road_lines(path, crs=crs, layer=layer)
    keep = _walkable(gdf, walkable_column, path)
    report: dict = {"segments_in_file": len(gdf)}
    cls = class_column or find_column(gdf.columns, "class") or next(
        (c for c in gdf.columns if str(c) in ("等级", "道路等级", "class", "CLASS")), None)
    lines = gpd.GeoDataFrame({"level": _level(gdf), "source": np.arange(len(gdf)),
                              "road_class": gdf[cls].astype(str).to_numpy() if cls else ""},
                             geometry=gdf.geometry.to_numpy(), crs=gdf.crs)[keep]
    repairs = {"non_walkable_dropped": int((~keep).sum())}
    if add_osm:
        lines, added = _with_osm(lines, add_osm, snap_metres)
        repairs.update(added)
    if progress:
        progress("repair")
    fixed, more = repair_lines(lines, snap_metres=snap_metres, node_crossings=node_crossings)
    repairs.update(more)
    if len(fixed) == 0:
        raise NetworkError("no walkable line left after the repair", file=path,
                           fix="check the walkable column and the layer")
    if repaired:
        with atomic_path(repaired) as tmp:
            fixed.to_file(tmp, layer="repaired", driver="GPKG", engine="pyogrio")
    report["repairs"] = repairs
    if progress:
        progress("build")
    net = _build(fixed, source=str(path), report=report)
    net.report["read_s"] = round(time.perf_counter() - t0, 3)
    return net


def _with_osm(lines: gpd.GeoDataFrame, osm_path, snap_metres: float) -> tuple[gpd.GeoDataFrame, dict]:
    from .osm import read_osm_ways, walkable

    _, ways = read_osm_ways(osm_path)
    ways = ways[walkable(ways) & ways["highway"].isin(_OSM_PATHS).to_numpy()]
    ways = ways.to_crs(lines.crs)
    if not len(ways):
        return lines, {"osm_paths_added": 0, "osm_paths_duplicate": 0}
    # A path running within 10 m of a city line for most of its length duplicates it.
    city = shapely.union_all(lines.geometry.to_numpy()).buffer(10)
    inside = shapely.length(shapely.intersection(ways.geometry.to_numpy(), city))
    dup = inside > 0.8 * np.maximum(shapely.length(ways.geometry.to_numpy()), 1e-9)
    add = ways[~dup]
    extra = gpd.GeoDataFrame({"level": 0.0, "source": -2, "road_class": "osm:" + add["highway"].astype(str)},
                             geometry=add.geometry.to_numpy(), crs=lines.crs)
    out = gpd.GeoDataFrame(pd.concat([lines, extra], ignore_index=True), crs=lines.crs)
    return out, {"osm_paths_added": len(add), "osm_paths_duplicate": int(dup.sum())}

