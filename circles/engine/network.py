"""The walking network: projected nodes, a CSR adjacency of edge lengths, edge geometries, snapping.

Every source (an OSM extract, a city's road lines, an osmnx graph, a saved network, a synthetic
city) ends up as one :class:`WalkNetwork`, which every later step uses through its arrays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse

from ..errors import NetworkError
from ..readers.crs import WGS84, utm_crs
from ..readers.network_file import read_saved_network
from .edge_index import EdgeIndex
from .graph_build import (
    MIN_LENGTH_M,
    component_nodes,
    csr,
    distinct_edges,
    edge_ends,
    edge_lines,
    edge_rows,
    line_ends,
    osm_extent,
    osmnx_arrays,
    osmnx_graph,
    straight_lengths,
)

if TYPE_CHECKING:
    from ..readers.roads import RoadLines

__all__ = ["WalkNetwork"]


class WalkNetwork:
    """An undirected walking network in a projected (metric) CRS.

    Build one with :func:`circles.load_network`, :meth:`from_lines`, :meth:`from_osmnx` or
    :meth:`load`; pedestrians ignore one-way rules, so every edge is walkable both ways.

    Attributes
    ----------
    crs : pyproj.CRS
        The projected CRS (the local UTM zone unless given).
    x, y : numpy.ndarray
        Node coordinates in metres.
    node_id : numpy.ndarray
        The source's node ids (OSM ids, or 0..n-1).
    edge_u, edge_v : numpy.ndarray
        Edge end node indices; each edge's geometry runs from ``edge_u`` to ``edge_v``.
    edge_length : numpy.ndarray
        Edge lengths in metres (the projected geometry's length).
    edge_geometry : numpy.ndarray
        Shapely LineStrings in ``crs``. A network built without geometries (an OSM extract's
        two-node segments, a synthetic city) draws its straight segments when first asked:
        lengths, the graph and snapping need only the ends.
    edge_attrs : pandas.DataFrame
        Per-edge attributes kept from the source (``osm_id``, ``highway``, ``name``...).
    report : dict
        How the network was built: source, counts read, kept and dropped, km, seconds, and
        where the extent came from (``extent``, ``extent_bounds_wgs84``).
    extent : shapely.Polygon or None
        The source data's own bounds in ``crs``: an OSM extract's header box (or, without one,
        the box of its streets), a road-line layer's extent, an online place's polygon;
        ``None`` when unknown (a network saved before extents were kept). The study area
        stops at it (:meth:`study_area`).

    """

    # One keyword per array of the graph: grouping them would only rename the arrays.
    def __init__(self, *, x: np.ndarray, y: np.ndarray, node_id: np.ndarray, edge_u: np.ndarray,  # noqa: PLR0913
                 edge_v: np.ndarray, edge_geometry: np.ndarray | None, crs: pyproj.CRS,
                 edge_attrs: pd.DataFrame | None = None, report: dict | None = None) -> None:
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.node_id = np.asarray(node_id, dtype=np.int64)
        self.edge_u = np.asarray(edge_u, dtype=np.int64)
        self.edge_v = np.asarray(edge_v, dtype=np.int64)
        # None: straight segments between the ends, drawn only when someone asks for them.
        self._edge_geometry = None if edge_geometry is None else np.asarray(edge_geometry, dtype=object)
        self.edge_length = np.maximum(
            straight_lengths(self.x, self.y, self.edge_u, self.edge_v) if self._edge_geometry is None
            else shapely.length(self._edge_geometry), MIN_LENGTH_M)
        self.crs = pyproj.CRS(crs)
        self.edge_attrs = (edge_attrs if edge_attrs is not None
                           else pd.DataFrame(index=pd.RangeIndex(len(self.edge_u))))
        self.report = report or {}
        self.extent = None

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_lines(cls, *, x: np.ndarray, y: np.ndarray, node_id: np.ndarray | None,  # noqa: PLR0913
                   edge_u: np.ndarray, edge_v: np.ndarray, edge_geometry: np.ndarray | None,
                   crs: pyproj.CRS, edge_attrs: pd.DataFrame | None = None,
                   keep_largest: bool = True, source: str = "", report: dict | None = None,
                   ) -> WalkNetwork:
        """Build a clean network from projected nodes and edges.

        Removes self-loops and duplicate edges (same ends, same length), orients each geometry
        from ``u`` to ``v`` and keeps the largest connected component, reporting what was
        dropped.

        Parameters
        ----------
        x, y
            Node coordinates in ``crs`` (metres).
        node_id
            Ids of the nodes (``None``: 0..n-1).
        edge_u, edge_v
            Node indices of each edge's ends.
        edge_geometry
            LineStrings in ``crs``; ``None``: straight segments between the ends, drawn only
            when first asked for (see ``edge_geometry``).
        crs
            A projected CRS.
        edge_attrs
            Attributes per edge, kept aligned.
        keep_largest
            Keep only the largest connected component.
        source
            Where the network came from, for the report.
        report
            Facts to start the report with (counts read by the reader, repairs made).

        Returns
        -------
        WalkNetwork

        """
        t0 = time.perf_counter()
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        u, v = edge_ends(edge_u, edge_v, len(x), source)
        node_id = np.arange(len(x), dtype=np.int64) if node_id is None else np.asarray(node_id)
        geom = None if edge_geometry is None else edge_lines(x, y, u, v, edge_geometry)
        length = straight_lengths(x, y, u, v) if geom is None else shapely.length(geom)
        rep = {**(report or {}), "source": str(source), "nodes_read": len(x), "edges_read": len(u)}
        edges = np.flatnonzero(distinct_edges(u, v, length, len(x), rep))
        if len(edges) == 0:
            raise NetworkError("no walkable edge left to build a network from", file=source or None,
                               fix="check the source covers streets a pedestrian may use")
        u, v, length = u[edges], v[edges], length[edges]
        keep, graph = component_nodes(u, v, length, len(x), rep, keep_largest=keep_largest)
        inside = np.flatnonzero(keep[u] & keep[v])
        new_index = np.cumsum(keep) - 1  # kept nodes renumbered 0..k-1 in their order
        net = cls(x=x[keep], y=y[keep], node_id=node_id[keep], edge_u=new_index[u[inside]],
                  edge_v=new_index[v[inside]], edge_geometry=None if geom is None else geom[edges[inside]],
                  crs=crs, edge_attrs=edge_rows(edge_attrs, edges[inside], len(edge_u)), report=rep)
        net.graph = graph  # built for the components already, on the same edges and lengths
        net.report.update(nodes=net.n_nodes, edges=net.n_edges, km=round(net.km, 3),
                          crs=net.crs.to_string(), build_s=round(time.perf_counter() - t0, 3))
        return net

    @classmethod
    def from_road_lines(cls, lines: RoadLines) -> WalkNetwork:
        """Build from a road-line layer read and repaired by :func:`circles.readers.roads.read_road_network`.

        Edges carry ``road_class``, ``name``, ``level``, ``origin`` (``city``/``osm``) and
        ``source_row``; ``report["repairs"]`` counts every fix; the layer's extent bounds the study area.
        """
        pieces = lines.pieces
        net = cls.from_lines(
            x=lines.node_xy[:, 0], y=lines.node_xy[:, 1], node_id=lines.node_id,
            edge_u=pieces["u"].to_numpy(), edge_v=pieces["v"].to_numpy(),
            edge_geometry=pieces.geometry.to_numpy(), crs=pieces.crs,
            edge_attrs=pieces[["road_class", "name", "level", "origin", "source_row"]],
            source=lines.source, report=dict(lines.report))
        net.set_extent(lines.extent, crs=pieces.crs, source="extent of the road-line layer")
        return net

    @classmethod
    def from_osm(cls, path: str | Path, *, progress: Callable[[str], None] | None = None
                 ) -> WalkNetwork:
        """Read an OSM extract, apply the walking filter and build the network.

        Parameters
        ----------
        path
            ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz``.
        progress
            Called with the name of each stage as it starts.

        """
        from ..readers.osm import read_osm_bounds, read_osm_segments

        t0 = time.perf_counter()
        _tick(progress, "read")
        seg = read_osm_segments(path)  # arrays, the walking filter applied per segment
        _tick(progress, "filter")
        lon, lat, drop = seg.lon, seg.lat, ~seg.walkable
        crs = utm_crs(lon, lat)
        px, py = pyproj.Transformer.from_crs(WGS84, crs, always_xy=True).transform(lon, lat)
        dx, dy = px[seg.u[drop]] - px[seg.v[drop]], py[seg.u[drop]] - py[seg.v[drop]]
        dropped_m = np.sqrt(dx * dx + dy * dy)  # a two-point line's length, as GEOS takes it
        read = {"segments_in_extract": len(drop), "segments_not_walkable": int(drop.sum()),
                "km_not_walkable": round(float(dropped_m.sum()) / 1000, 3)}
        if drop.all():
            raise NetworkError("the extract has streets but none a pedestrian may use", file=path,
                               fix="check the extract; motorways and foot=no ways are not walkable")
        _tick(progress, "build")
        # Two-node segments, so straight lines between the projected ends are exact.
        net = cls.from_lines(x=px, y=py, node_id=seg.node_id, edge_u=seg.u[~drop], edge_v=seg.v[~drop],
                             edge_geometry=None, crs=crs, edge_attrs=seg.attrs, source=str(path),
                             report=read)
        extent, how = osm_extent(read_osm_bounds(path), lon, lat)
        net.set_extent(extent, source=how)
        net.report["read_s"] = round(time.perf_counter() - t0, 3)
        return net

    @classmethod
    def from_osmnx(cls, graph, *, keep_largest: bool = True) -> WalkNetwork:
        """Build from an osmnx ``MultiDiGraph`` (projected to UTM first when in lon/lat)."""
        return cls.from_lines(**osmnx_arrays(graph), keep_largest=keep_largest, source="osmnx graph")

    # --- arrays ---------------------------------------------------------------------------------

    @property
    def edge_geometry(self) -> np.ndarray:
        """Shapely LineStrings in ``crs``, each from its ``edge_u`` end to its ``edge_v`` end.

        A network of straight segments (OSM, synthetic) makes them anew at each call and keeps
        none: at 1M nodes they hold 0.4 GB, and only a few stages need them all at once. Ask
        :meth:`edge_lines` for some.
        """
        if self._edge_geometry is None:
            return edge_lines(self.x, self.y, self.edge_u, self.edge_v, None)
        return self._edge_geometry

    @edge_geometry.setter
    def edge_geometry(self, geometry: np.ndarray) -> None:
        self._edge_geometry = np.asarray(geometry, dtype=object)

    @property
    def straight(self) -> bool:
        """Whether the edges are the straight segments between their nodes, with no geometry
        of their own (an OSM or synthetic network): their lines are made from the nodes."""
        return self._edge_geometry is None

    def edge_lines(self, edges: np.ndarray) -> np.ndarray:
        """The LineStrings of ``edges`` (indices), as :attr:`edge_geometry` holds them."""
        edges = np.asarray(edges, dtype=np.int64)
        if self._edge_geometry is None:
            return edge_lines(self.x, self.y, self.edge_u[edges], self.edge_v[edges], None)
        return self._edge_geometry[edges]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.x)

    @property
    def n_edges(self) -> int:
        """Number of edges (geometries; parallel edges included)."""
        return len(self.edge_u)

    @property
    def km(self) -> float:
        """Total length of walkable street in kilometres."""
        return float(self.edge_length.sum()) / 1000

    @cached_property
    def graph(self) -> sparse.csr_matrix:
        """Symmetric CSR adjacency in metres; parallel edges keep the shortest, never their sum."""
        return csr(self.edge_u, self.edge_v, self.edge_length, self.n_nodes)

    @cached_property
    def edge_tree(self) -> shapely.STRtree:
        """A spatial index of ``edge_geometry`` (positions are edge indices); it keeps the lines.
        Snapping a network of straight edges uses the lighter :attr:`edge_index` instead."""
        return shapely.STRtree(self.edge_geometry)

    @cached_property
    def edge_index(self) -> EdgeIndex | None:
        """The exact nearest-edge search of a network whose edges are all straight segments
        (no GEOS line is kept); ``None`` when some edge bends."""
        return None if self._segments is None else EdgeIndex(*self._segments)

    @cached_property
    def hull(self):
        """The network's area: the convex hull of its nodes, in ``crs``."""
        return shapely.convex_hull(shapely.multipoints(np.column_stack([self.x, self.y])))

    def set_extent(self, polygon, *, source: str, crs=None) -> None:
        """Record the source data's own bounds (see ``extent``).

        Parameters
        ----------
        polygon
            A shapely polygon, or ``None`` when the source has no known bounds.
        source
            What the bounds are, for the report ("OSM header bounds", ...).
        crs
            The polygon's CRS (default WGS-84).

        """
        if polygon is None or shapely.is_empty(polygon):
            self.extent = None
            self.report.update(extent=f"none ({source})", extent_bounds_wgs84=None)
            return
        src = pyproj.CRS(crs if crs is not None else WGS84)
        if not src.equals(self.crs):
            # Densify first: a box's straight sides in lon/lat are curves in metres.
            step = 1e-3 if src.is_geographic else 100.0
            t = pyproj.Transformer.from_crs(src, self.crs, always_xy=True)
            polygon = shapely.transform(shapely.segmentize(polygon, step),
                                        lambda c: np.column_stack(t.transform(c[:, 0], c[:, 1])))
        self.extent = shapely.make_valid(polygon)
        lon, lat = self.to_wgs84(*shapely.get_coordinates(self.extent).T)
        self.report.update(extent=source, extent_bounds_wgs84=[
            round(float(v), 7) for v in (np.min(lon), np.min(lat), np.max(lon), np.max(lat))])

    def study_area(self, margin_metres: float):
        """The study area in ``crs``: the network's hull widened by ``margin_metres`` (the snap
        cap, so people along the outermost streets are in it), cut at the ``extent``.

        People beyond the extent are outside even near a street: the extract has no streets,
        facilities or people past its own edge, so their walks could not be measured.

        Parameters
        ----------
        margin_metres
            How far beyond the outermost nodes the area reaches.

        Returns
        -------
        shapely.Polygon
            Prepared for fast ``shapely.contains_xy``.

        """
        area = self.hull.buffer(float(margin_metres))
        if self.extent is not None:
            area = shapely.intersection(area, self.extent)
        shapely.prepare(area)
        return area

    def in_study_area(self, x: np.ndarray, y: np.ndarray, *, margin_metres: float) -> np.ndarray:
        """True for the points (in ``crs``) inside :meth:`study_area` of ``margin_metres``."""
        return shapely.contains_xy(self.study_area(margin_metres), np.asarray(x, float), np.asarray(y, float))

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        """Node coordinates in WGS-84 (lon, lat)."""
        return self.to_wgs84(self.x, self.y)

    def to_wgs84(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project coordinates from the network CRS to WGS-84 lon/lat."""
        t = pyproj.Transformer.from_crs(self.crs, WGS84, always_xy=True)
        return t.transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))

    def from_wgs84(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project WGS-84 lon/lat into the network CRS."""
        t = pyproj.Transformer.from_crs(WGS84, self.crs, always_xy=True)
        return t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))

    # --- snapping -------------------------------------------------------------------------------

    def snap(self, x: np.ndarray, y: np.ndarray, *, max_metres: float | None = None) -> pd.DataFrame:
        """Snap points (in the network CRS) to the nearest edge.

        Parameters
        ----------
        x, y
            Point coordinates in ``crs``.
        max_metres
            The off-network cap: points farther than this from every edge are not snapped.

        Returns
        -------
        pandas.DataFrame
            One row per point: ``edge`` (-1 when not snapped), ``along_m`` (distance from the
            edge's ``u`` end along its geometry), ``offset_m`` (straight walk from the point to
            the edge; ``inf`` when not snapped), ``snap_x``, ``snap_y``, ``snapped`` (bool).

        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        n = len(x)
        edge = np.full(n, -1, dtype=np.int64)
        offset = np.full(n, np.inf)
        valid = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if len(valid):
            e, d = self._nearest_edges(x[valid], y[valid], max_metres)
            edge[valid], offset[valid] = e, d
        ok = edge >= 0
        along = np.full(n, np.nan)
        sx, sy = np.full(n, np.nan), np.full(n, np.nan)
        if ok.any():
            along[ok], sx[ok], sy[ok] = self._project(x[ok], y[ok], edge[ok])
        return pd.DataFrame({"edge": edge, "along_m": along, "offset_m": offset,
                             "snap_x": sx, "snap_y": sy, "snapped": ok})

    @cached_property
    def _segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """End coordinates when every edge is a straight two-point segment (OSM, synthetic), so
        point-to-edge distances and projections are plain array arithmetic."""
        if self._edge_geometry is None:  # straight by construction: no geometry to look at
            return self.x[self.edge_u], self.y[self.edge_u], self.x[self.edge_v], self.y[self.edge_v]
        if (shapely.get_num_coordinates(self.edge_geometry) != 2).any():
            return None
        a, b = line_ends(self.edge_geometry)
        return a[:, 0], a[:, 1], b[:, 0], b[:, 1]

    def _nearest_edges(self, x: np.ndarray, y: np.ndarray, cap: float | None
                       ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest edge and distance per point; -1 / inf beyond ``cap``.

        Straight edges are searched in :attr:`edge_index`. Bent ones: a first pass looks only
        at edges whose boxes meet a small box around each point (exact for points that find an
        edge within that box's half-width); the rest go to the tree's nearest-neighbour search.
        """
        if self.edge_index is not None:
            return self.edge_index.nearest(x, y, max_metres=cap)
        n = len(x)
        edge = np.full(n, -1, dtype=np.int64)
        dist = np.full(n, np.inf)
        r = float(np.clip(np.median(self.edge_length) / 2, 15.0, cap if cap else np.inf))
        i, j = self.edge_tree.query(shapely.box(x - r, y - r, x + r, y + r))
        if len(i):
            d = shapely.distance(shapely.points(x[i], y[i]), self.edge_geometry[j])
            order = np.argsort(i, kind="stable")  # the tree returns pairs grouped by input
            i, j, d = i[order], j[order], d[order]
            starts = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])
            dmin = np.minimum.reduceat(d, starts)
            is_min = d == np.repeat(dmin, np.diff(np.r_[starts, len(i)]))
            first = np.flatnonzero(is_min & np.r_[True, ~(is_min[:-1] & (i[1:] == i[:-1]))])
            pts_i = i[first]
            keep = d[first] <= r
            edge[pts_i[keep]], dist[pts_i[keep]] = j[first][keep], d[first][keep]
        rest = np.flatnonzero(edge < 0)
        if len(rest):
            idx, dd = self.edge_tree.query_nearest(shapely.points(x[rest], y[rest]), max_distance=cap,
                                               return_distance=True, all_matches=False)
            edge[rest[idx[0]]], dist[rest[idx[0]]] = idx[1], dd
        if cap is not None:
            far = dist > cap
            edge[far], dist[far] = -1, np.inf
        return edge, dist

    def _project(self, x: np.ndarray, y: np.ndarray, e: np.ndarray):
        """Position along each edge (metres from ``u``) and the snapped point."""
        if self.edge_index is not None:
            t, px, py, _ = self.edge_index.project(x, y, e)
            return t * self.edge_length[e], px, py
        g = self.edge_geometry[e]
        pts = shapely.points(x, y)
        along = shapely.line_locate_point(g, pts)
        p = shapely.line_interpolate_point(g, along)
        along = np.clip(along * self.edge_length[e] / np.maximum(shapely.length(g), MIN_LENGTH_M),
                        0, self.edge_length[e])
        return along, shapely.get_x(p), shapely.get_y(p)

    # --- frames ---------------------------------------------------------------------------------

    def nodes_gdf(self) -> gpd.GeoDataFrame:
        """The nodes as a GeoDataFrame in the network CRS."""
        return gpd.GeoDataFrame({"node_id": self.node_id},
                                geometry=shapely.points(self.x, self.y), crs=self.crs)

    def edges_gdf(self) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame in the network CRS (``u``, ``v``, ``length_m``, attributes)."""
        df = pd.DataFrame({"u": self.edge_u, "v": self.edge_v, "length_m": self.edge_length})
        df = pd.concat([df, self.edge_attrs.reset_index(drop=True)], axis=1)
        return gpd.GeoDataFrame(df, geometry=self.edge_geometry, crs=self.crs)

    def summary(self) -> dict:
        """The build report plus the current size."""
        return {**self.report, "nodes": self.n_nodes, "edges": self.n_edges,
                "km": round(self.km, 3), "crs": self.crs.to_string()}

    # --- persistence ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> WalkNetwork:
        """Load a network saved with :meth:`save` (its extent too; none for files saved before
        extents were kept)."""
        saved = read_saved_network(path)
        nodes, edges = saved["nodes"], saved["edges"]
        attrs = edges.drop(columns=["u", "v", "length_m", "geometry"])
        net = cls(x=nodes.geometry.x.to_numpy(), y=nodes.geometry.y.to_numpy(),
                  node_id=nodes["node_id"].to_numpy(), edge_u=edges["u"].to_numpy(),
                  edge_v=edges["v"].to_numpy(), edge_geometry=edges.geometry.to_numpy(),
                  crs=nodes.crs, edge_attrs=attrs, report=saved["report"])
        if saved["extent"] is not None:
            net.extent = saved["extent"]
        elif not str(net.report.get("extent", "")).startswith("none"):
            net.report["extent"] = "none (saved without one)"
        return net

    def to_osmnx(self):
        """The network as an osmnx ``MultiDiGraph`` (both directions, ``length`` in metres)."""
        return osmnx_graph(self)


def _tick(progress: Callable[[str], None] | None, stage: str) -> None:
    if progress is not None:
        progress(stage)
