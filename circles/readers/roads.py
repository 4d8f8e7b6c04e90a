"""A city's own road centre lines as a walking network: reading, topology repair, the report.

Bureau layers (控规/现状路网) are digitised for drawing, not routing: lines cross without a shared
vertex, endpoints miss each other by centimetres, segments are duplicated. The repair
(:mod:`circles.linework`) nodes lines where they cross on the same level (a bridge does not meet the
street under it), closes gaps up to ``snap_metres``, drops zero-length and duplicate segments, and
counts every fix, so the bureau can see what was changed and fix its source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from ..errors import DataError, InputFileError, NetworkError
from .crs import WGS84, parse_crs, to_wgs84, utm_crs
from .files import require_file
from .linework import MM, repair_linework
from .options import known_options
from .road_columns import find_column, line_levels, walkable_rows
from .roads_osm import osm_paths

__all__ = ["RoadLines", "RoadOptions", "read_road_lines", "read_road_network", "repair_lines"]

# Header names, compared lower-cased without spaces or underscores.
_CLASS = ("roadclass", "class", "等级", "道路等级", "道路级别", "fclass", "highway", "道路类型", "dldj")
_NAME = ("name", "名称", "道路名称", "路名", "道路名", "roadname")
_NODE_COLUMNS = (("u", "v"), ("fromnode", "tonode"), ("fnode", "tnode"), ("fromid", "toid"))
_MAX_SCALE_ERROR = 1e-3  # a zone whose meridian is this far off stretches lengths by > 0.1 %
# Coordinates this far (degrees) outside a CRS's area of use mean a wrong CRS (a zone prefix on the
# easting, metres labelled lon/lat), not a neighbouring zone, which transverse Mercator still maps.
_AREA_MARGIN_DEG = 15.0


def read_road_lines(path: str | Path, *, crs: str | int | pyproj.CRS | None = None,
                    layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a line layer (GeoPackage, Shapefile, GeoJSON, File Geodatabase) into a metric CRS.

    A projected CRS in metres is kept when its scale at the city is within 0.1 % of true (a
    CGCS2000 3-degree Gauss-Krüger zone such as EPSG:4547 for its own cities); a geographic one
    (EPSG:4326, 4490) or a zone far from the city is projected to the local UTM zone.

    Parameters
    ----------
    path
        The file (``.gdb``: the folder).
    crs
        The layer's CRS when the file has none, or to override a wrong ``.prj``: ``EPSG:4547``,
        ``4549``, ``cgcs2000``, ``wgs84``, ``gcj02``, ``bd09``...
    layer
        The layer of a multi-layer file (default: its only line layer).

    Returns
    -------
    geopandas.GeoDataFrame
        The lines with their attributes, in a metric CRS; ``attrs["read"]`` says what was read.

    Raises
    ------
    InputFileError
        Unreadable or empty file, polygons or points instead of lines, no CRS and no ``crs``,
        coordinates that do not fit the CRS.

    """
    path = require_file(path, what="road-line")
    name = _pick_layer(path, layer)
    try:
        gdf = gpd.read_file(path, layer=name, engine="pyogrio", use_arrow=True)
    except Exception as err:
        raise InputFileError(f"cannot read the road lines ({type(err).__name__}: {err})", file=path,
                             fix="give a GeoPackage, Shapefile (with .shx/.dbf/.prj), GeoJSON or .gdb") from err
    missing = (gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy()
    if len(gdf) == 0 or missing.all():
        raise InputFileError("the road layer has no line features", file=path, field=name,
                             fix="check the layer name and export the road centre lines again")
    kinds = gdf.geometry[~missing].geom_type.value_counts()
    bad = {k: int(v) for k, v in kinds.items() if k not in ("LineString", "MultiLineString")}
    if bad:
        found = ", ".join(f"{v:,} {k}" for k, v in bad.items())
        lines = int(kinds.drop(list(bad)).sum())
        raise InputFileError(f"road centre lines must be LineStrings; the layer has {found} "
                             f"(and {lines:,} lines)", file=path, field=f"geometry of layer {name}",
                             fix="export the road centre-line layer (道路中心线), not road surfaces "
                                 "(polygons) or points; layer= picks one layer of a multi-layer file")
    gdf = gdf.loc[~missing].reset_index(drop=True)
    gdf["geometry"] = shapely.force_2d(gdf.geometry.to_numpy())
    read = {"layer": name, "features_read": len(missing), "empty_geometries_dropped": int(missing.sum())}
    gdf = _set_crs(gdf, crs, path, read)
    gdf.attrs["read"] = read
    return gdf


def _pick_layer(path: Path, layer: str | None) -> str:
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception as err:
        raise InputFileError(f"cannot open the road lines ({type(err).__name__}: {err})", file=path,
                             fix="give a GeoPackage, Shapefile (with .shx/.dbf/.prj), GeoJSON or .gdb") from err
    names = [str(n) for n, _ in layers]
    if layer is not None:
        if layer not in names:
            raise InputFileError(f"no layer {layer!r} in the file", file=path, field="layer",
                                 fix="use one of: " + ", ".join(names))
        return layer
    if len(names) == 1:
        return names[0]
    lines = [str(n) for n, kind in layers if kind and "LINE" in str(kind).upper()]
    if len(lines) == 1:
        return lines[0]
    raise InputFileError(f"the file has {len(names)} layers ({', '.join(names[:12])}) and "
                         f"{len(lines)} of them are lines", file=path, field="layer",
                         fix="pass layer=NAME for the road centre-line layer")


def _set_crs(gdf: gpd.GeoDataFrame, crs, path: Path, read: dict) -> gpd.GeoDataFrame:
    """Give the layer its CRS (checked against its coordinates) and project it to metres."""
    given = parse_crs(crs) if crs is not None else None
    if given is None and gdf.crs is None:
        raise InputFileError("the road layer has no CRS (no .prj, no CRS in the file)", file=path, field="crs",
                             fix="pass --crs EPSG:4547 (CGCS2000 3-degree Gauss-Krüger, CM 114°E), "
                                 "EPSG:4549 (CM 120°E)... or the layer's EPSG code, or add the .prj")
    if isinstance(given, str):  # GCJ-02 / BD-09 lon/lat: to WGS-84 by formula
        geoms = shapely.transform(gdf.geometry.to_numpy(),
                                  lambda c: np.column_stack(to_wgs84(c[:, 0], c[:, 1], given)))
        gdf = gpd.GeoDataFrame(gdf.drop(columns="geometry"), geometry=geoms, crs=WGS84)
        read["source_crs"] = given
    else:
        if given is not None:
            if gdf.crs is not None and not gdf.crs.equals(given):
                read["crs_overridden"] = gdf.crs.to_string()
            gdf = gdf.set_crs(given, allow_override=True)
        read["source_crs"] = gdf.crs.to_string()
    src = pyproj.CRS(gdf.crs)
    x0, y0, x1, y1 = gdf.total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    wrong = None
    if src.is_geographic:
        if max(abs(x0), abs(x1)) > 180 or max(abs(y0), abs(y1)) > 90:
            wrong = "look projected (metres), not longitude/latitude"
        lon, lat = cx, cy
    else:
        try:
            lon, lat = pyproj.Transformer.from_crs(src, WGS84, always_xy=True).transform(cx, cy)
        except pyproj.exceptions.ProjError as err:
            raise InputFileError(f"the layer's CRS ({src.name}) cannot be related to longitude/latitude",
                                 file=path, field="crs",
                                 fix="a local city grid (城市独立坐标系) must be transformed to CGCS2000 in a GIS "
                                     "first; or pass --crs with the layer's real CRS") from err
        aou, m = src.area_of_use, _AREA_MARGIN_DEG
        if not (np.isfinite(lon) and np.isfinite(lat)) or (aou is not None and not (
                aou.west - m <= lon <= aou.east + m and aou.south - m <= lat <= aou.north + m)):
            wrong = f"fall outside the area of {src.name}"
    if wrong:
        raise InputFileError(f"the coordinates (centre x={cx:,.2f}, y={cy:,.2f}) {wrong}", file=path, field="crs",
                             fix="pass --crs with the layer's real CRS: EPSG:4547 is CGCS2000 3-degree CM 114°E "
                                 "without zone prefix; an easting like 38 500 000 carries the zone number "
                                 "(EPSG:4526 for zone 38)")
    metric = not src.is_geographic and src.axis_info and src.axis_info[0].unit_name in ("metre", "meter")
    if metric and _scale_error(src, lon, lat) <= _MAX_SCALE_ERROR:
        return gdf
    target = utm_crs(lon, lat)
    read["reprojected_to"] = target.to_string()
    return gdf.to_crs(target)


def _scale_error(crs: pyproj.CRS, lon: float, lat: float) -> float:
    f = pyproj.Proj(crs).get_factors(lon, lat)
    return max(abs(f.meridional_scale - 1), abs(f.parallel_scale - 1))


# --- repair --------------------------------------------------------------------------------------

def repair_lines(gdf: gpd.GeoDataFrame, *, snap_metres: float = 2.0, node_crossings: bool = True
                 ) -> tuple[gpd.GeoDataFrame, dict]:
    """Node, snap and deduplicate road lines in a metric CRS.

    Parameters
    ----------
    gdf
        Lines (as :func:`read_road_lines` returns them); a ``level`` column, or
        ``bridge``/``tunnel``/``layer`` (桥梁/隧道/层), keeps a bridge off the street below.
    snap_metres
        Dangling ends within this of another end or line are joined to it (0: no snapping).
    node_crossings
        Join lines where they cross on one level; ``False`` for routable layers (OSM exports),
        whose lines meet only where they share a vertex.

    Returns
    -------
    geopandas.GeoDataFrame
        The repaired pieces: ``u``, ``v`` (node index of the first and last point), ``level``,
        ``source_row`` (1-based row of ``gdf``) and the source row's attributes.
    dict
        Counts of every fix: ``multilines_split``, ``zero_length_dropped``, ``duplicates_dropped``,
        ``gaps_closed``, ``short_lines_collapsed``, ``ends_joined_to_lines``, ``overshoots_trimmed``,
        ``crossings_noded``, ``overlap_metres_dropped``, ``overlaps_merged``, ``rings_split``,
        ``lines_split``, ``slivers_dropped``.

    """
    pieces, _, report, _ = _repair(gdf, snap_metres=snap_metres, node_crossings=node_crossings)
    return pieces, report


def _repair(gdf: gpd.GeoDataFrame, *, snap_metres: float, node_crossings: bool
            ) -> tuple[gpd.GeoDataFrame, np.ndarray, dict, gpd.GeoDataFrame]:
    if gdf.crs is None or pyproj.CRS(gdf.crs).is_geographic:
        raise NetworkError("road lines must be in a projected CRS in metres to be repaired",
                           fix="read them with read_road_lines, or to_crs() a metric CRS first")
    if not np.isfinite(snap_metres) or snap_metres < 0:
        raise DataError(f"snap_metres must be 0 or more, not {snap_metres}", field="snap_metres",
                        fix="give the largest digitising gap to close, in metres (default 2)")
    level_all = (gdf["level"].to_numpy(float) if "level" in gdf.columns and pd.api.types.is_numeric_dtype(gdf["level"])
                 else line_levels(gdf))
    geom = gdf.geometry.to_numpy()
    parts, row = shapely.get_parts(geom, return_index=True)
    report = {"multilines_split": int((shapely.get_num_geometries(geom) > 1).sum())}
    parts = shapely.force_2d(parts)
    zero = ~(shapely.length(parts) > MM)
    report["zero_length_dropped"] = int(zero.sum())
    fixes = [_fixes("zero_length_dropped", shapely.get_point(parts[zero], 0), 0.0)]
    parts, row = parts[~zero], row[~zero]
    level = level_all[row]
    # Whole lines drawn twice (either direction): GEOS noding would merge them without a count.
    key = shapely.to_wkb(shapely.normalize(shapely.set_precision(parts, MM, mode="pointwise")))
    dup = pd.DataFrame({"k": key, "l": level}).duplicated().to_numpy()
    fixes.append(_fixes("duplicate_dropped", shapely.line_interpolate_point(parts[dup], 0.5, normalized=True), 0.0))
    parts, row, level = parts[~dup], row[~dup], level[~dup]
    if not len(parts):
        raise NetworkError("no line with a length is left to repair", fix="check the layer's geometries")
    out = repair_linework(parts, level, snap_metres=snap_metres, node_crossings=node_crossings)
    rep = out.pop("report")
    report["duplicates_dropped"] = int(dup.sum()) + rep.pop("duplicate_pieces_dropped")
    report.update(rep)
    src = row[out["line"]]
    attrs = gdf.drop(columns=[gdf.geometry.name, *(["level"] if "level" in gdf.columns else [])])
    attrs = attrs.iloc[src].reset_index(drop=True)
    attrs = attrs.rename(columns={c: f"source_{c}" for c in attrs.columns if c in ("u", "v")})
    base = pd.DataFrame({"u": out["u"], "v": out["v"], "level": level_all[src]})
    if "source_row" not in attrs.columns:  # network_from_roads passes the file's own rows
        base["source_row"] = src + 1
    pieces = gpd.GeoDataFrame(pd.concat([base, attrs], axis=1), geometry=out["geometry"], crs=gdf.crs)
    f = pd.concat([*(_frame(x) for x in fixes), out["fixes"]], ignore_index=True)
    fix_gdf = gpd.GeoDataFrame(f[["kind", "metres"]], geometry=shapely.points(f[["x", "y"]].to_numpy()),
                               crs=gdf.crs)
    return pieces, out["node_xy"], report, fix_gdf


def _fixes(kind: str, points: np.ndarray, metres: float) -> tuple:
    return kind, shapely.get_coordinates(points), metres


def _frame(fix: tuple) -> pd.DataFrame:
    kind, xy, metres = fix
    return pd.DataFrame({"kind": kind, "x": xy[:, 0], "y": xy[:, 1], "metres": float(metres)})


def _node_ids(lines: gpd.GeoDataFrame, cols: tuple[str, str], path
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Topology from the layer's own from/to node columns, checked against the line ends."""
    uid = pd.to_numeric(lines["_u"], errors="coerce").to_numpy(float)
    vid = pd.to_numeric(lines["_v"], errors="coerce").to_numpy(float)
    bad = ~(np.isfinite(uid) & np.isfinite(vid))
    if bad.any():
        raise InputFileError("blank node ids", file=path, row=int(lines["source_row"].iloc[np.flatnonzero(bad)[0]]),
                             field="/".join(cols), fix="fill the node columns, or drop them to node by geometry")
    ids, inv = np.unique(np.concatenate([uid, vid]).astype(np.int64), return_inverse=True)
    m = len(lines)
    g = lines.geometry.to_numpy()
    ends = np.vstack([shapely.get_coordinates(shapely.get_point(g, 0)),
                      shapely.get_coordinates(shapely.get_point(g, -1))])
    # A node's position: the median of the ends that name it (robust to a few reversed lines).
    pos = pd.DataFrame({"n": inv, "x": ends[:, 0], "y": ends[:, 1]}).groupby("n")[["x", "y"]].median()
    xy = pos.to_numpy()
    u, v = inv[:m], inv[m:]
    fwd = np.hypot(*(ends[:m] - xy[u]).T) + np.hypot(*(ends[m:] - xy[v]).T)
    rev = np.hypot(*(ends[:m] - xy[v]).T) + np.hypot(*(ends[m:] - xy[u]).T)
    off = np.minimum(fwd, rev) > 1.0
    if off.any():
        r = int(lines["source_row"].iloc[np.flatnonzero(off)[0]])
        raise InputFileError(f"{int(off.sum()):,} lines do not end at the nodes their node ids name",
                             file=path, row=r, field="/".join(cols),
                             fix="fix or drop the node columns, or build without node_crossings=False")
    return u, v, xy, ids


# --- the network -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoadOptions:
    """How to read a road-line layer (see :func:`read_road_network`).

    Attributes
    ----------
    crs
        The layer's CRS when the file has none (``EPSG:4547``...), see :func:`read_road_lines`.
    layer
        The layer of a multi-layer file.
    snap_metres
        Dangling ends within this of another end or line are joined (default 2 m; 0: none).
    add_osm
        An OSM extract whose footways, paths, steps and pedestrian ways are added where the
        city's layer lacks them; those running parallel within 10 m of a city line are left out.
    class_column
        The road-class column (default: 等级/道路等级/class/highway...), kept as ``road_class``.
    walkable_column
        The walkable column (default: 步行/walkable...): 是/否, yes/no, 1/0, true/false; rows
        marked not walkable are dropped and counted.
    node_crossings
        Join lines that cross on one level (the default, for drawn layers). ``False`` trusts the
        layer's topology (an export of a routable network): lines meet where they share a vertex,
        or where from/to node columns (``u``/``v``, ``fnode``/``tnode``) say so.

    """

    crs: str | int | pyproj.CRS | None = None
    layer: str | None = None
    snap_metres: float = 2.0
    add_osm: str | Path | None = None
    class_column: str | None = None
    walkable_column: str | None = None
    node_crossings: bool = True

    @classmethod
    def from_options(cls, options: dict) -> RoadOptions:
        """The options from keyword arguments, an unknown name being a clear error."""
        return cls(**known_options(cls, options, what="road-line"))


@dataclass(frozen=True)
class RoadLines:
    """A road-line layer read and repaired, ready to become a network.

    Attributes
    ----------
    pieces : geopandas.GeoDataFrame
        One row per edge, in a metric CRS: ``u``, ``v`` (positions in ``node_xy``), ``road_class``,
        ``name``, ``level``, ``origin`` (``city``/``osm``), ``source_row``.
    node_xy : numpy.ndarray
        Node coordinates, shape (n, 2).
    node_id : numpy.ndarray or None
        The layer's own node ids, when its from/to node columns were used.
    fixes : geopandas.GeoDataFrame or None
        Where each repair was made.
    report : dict
        What was read and every fix, counted (``repairs``).
    extent : shapely.Polygon
        The layer's bounding box in ``pieces.crs``.
    source : str
        The file.

    """

    pieces: gpd.GeoDataFrame
    node_xy: np.ndarray
    node_id: np.ndarray | None
    fixes: gpd.GeoDataFrame | None
    report: dict
    extent: object
    source: str


def read_road_network(path: str | Path, options: RoadOptions | None = None, *,
                      progress: Callable[[str], None] | None = None) -> RoadLines:
    """A city's road centre lines, read, filtered to the walkable ones and repaired.

    Parameters
    ----------
    path
        GeoPackage, Shapefile, GeoJSON or File Geodatabase of LineStrings/MultiLineStrings.
    options
        How to read it (:class:`RoadOptions`).
    progress
        Called with each stage's name.

    Returns
    -------
    RoadLines
        Build the network with :meth:`circles.WalkNetwork.from_road_lines`.

    Raises
    ------
    InputFileError
        See :func:`read_road_lines`; unknown values in the walkable column.
    NetworkError
        No walkable line left.

    """
    opt = options or RoadOptions()
    _tick(progress, "read")
    gdf = read_road_lines(path, crs=opt.crs, layer=opt.layer)
    lines, ids, repairs = _walkable_lines(gdf, opt, path)
    if opt.add_osm is not None:
        _tick(progress, "osm")
        extra, osm = osm_paths(opt.add_osm, lines)
        lines = gpd.GeoDataFrame(pd.concat([lines, extra], ignore_index=True), crs=lines.crs)
        repairs.update(osm)
    _tick(progress, "repair")
    node_id = fixes = None
    if ids and (shapely.get_num_geometries(lines.geometry.to_numpy()) == 1).all():
        u, v, node_xy, node_id = _node_ids(lines, ids, path)
        pieces = gpd.GeoDataFrame(lines.drop(columns=["_u", "_v"]).assign(u=u, v=v), crs=lines.crs)
        repairs["topology"] = "node columns " + "/".join(ids)
    else:
        pieces, node_xy, more, fixes = _repair(lines.drop(columns=["_u", "_v"], errors="ignore"),
                                               snap_metres=opt.snap_metres,
                                               node_crossings=opt.node_crossings)
        repairs.update(more)
    return RoadLines(pieces=pieces, node_xy=node_xy, node_id=node_id, fixes=fixes,
                     report={**gdf.attrs.get("read", {}), "repairs": repairs},
                     extent=shapely.box(*gdf.total_bounds), source=str(path))


def _walkable_lines(gdf: gpd.GeoDataFrame, opt: RoadOptions, path
                    ) -> tuple[gpd.GeoDataFrame, tuple[str, str] | None, dict]:
    """The walkable lines with their attributes, the node-id columns to trust, the drops counted."""
    walk, wcol = walkable_rows(gdf, opt.walkable_column, path)
    ccol = find_column(gdf, opt.class_column, _CLASS, path, "class_column")
    ncol = find_column(gdf, None, _NAME, path, None)
    lines = gpd.GeoDataFrame({
        "source_row": np.arange(1, len(gdf) + 1), "origin": "city",
        "road_class": gdf[ccol].astype("string").fillna("").to_numpy() if ccol else "",
        "name": gdf[ncol].astype("string").fillna("").to_numpy() if ncol else "",
        "level": line_levels(gdf)}, geometry=gdf.geometry.to_numpy(), crs=gdf.crs)
    ids = None if opt.node_crossings or opt.add_osm is not None else next(
        (c for c in _NODE_COLUMNS if find_column(gdf, None, c[:1], path, None)
         and find_column(gdf, None, c[1:], path, None)), None)
    if ids:
        lines["_u"] = gdf[find_column(gdf, None, ids[:1], path, None)].to_numpy()
        lines["_v"] = gdf[find_column(gdf, None, ids[1:], path, None)].to_numpy()
    lines = lines.loc[walk].reset_index(drop=True)
    if not len(lines):
        raise NetworkError("no walkable line: every line is marked not walkable", file=path, field=wcol,
                           fix="check the walkable column's values (是 = walkable)")
    return lines, ids, {"non_walkable_dropped": int((~walk).sum())}


def _tick(progress: Callable[[str], None] | None, stage: str) -> None:
    if progress is not None:
        progress(stage)
