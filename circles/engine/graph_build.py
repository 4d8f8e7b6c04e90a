"""Building a walking network's arrays: cleaning edges, the adjacency, a source's extent.

Pure functions on arrays and frames, used by :class:`circles.engine.network.WalkNetwork` when it
builds itself from lines (loops, duplicates, orientation, the largest component), from an osmnx
graph, and for its CSR adjacency.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from ..readers.crs import WGS84, utm_crs

__all__ = ["MIN_LENGTH_M", "component_nodes", "csr", "edge_lines", "osm_extent", "osmnx_arrays",
           "without_loops_and_duplicates"]

MIN_LENGTH_M = 1e-3  # zero-length edges would be dropped by SciPy's sparse graph routines


def osm_extent(box, lon: np.ndarray, lat: np.ndarray) -> tuple[object, str]:
    """An extract's extent: its header box when that covers some of its streets, else the box of
    every street node it holds.

    Parameters
    ----------
    box
        The extract's header bounds (a polygon in WGS-84), or ``None``.
    lon, lat
        Every street node of the extract (all highways, walkable or not).

    Returns
    -------
    extent : shapely.Polygon or None
        The extent in WGS-84 (``None`` when the streets lie on one line).
    source : str
        Where it came from, for the report.

    """
    data = shapely.box(float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat)))
    if data.area == 0:  # streets on one line: no box to stop at
        data = None
    if box is None:
        return data, "bounding box of the extract's streets (its header gives no bounds)"
    if not shapely.contains_xy(box, lon, lat).any():
        return data, "bounding box of the extract's streets (its header bounds miss them)"
    return box, "OSM header bounds"


def osmnx_arrays(graph) -> dict[str, Any]:
    """An osmnx ``MultiDiGraph``'s nodes and edges, projected to UTM first when in lon/lat.

    Parameters
    ----------
    graph
        An osmnx ``MultiDiGraph``.

    Returns
    -------
    dict
        The keywords ``x``, ``y``, ``node_id``, ``edge_u``, ``edge_v``, ``edge_geometry``,
        ``crs`` and ``edge_attrs`` (``highway``, ``name``) of ``WalkNetwork.from_lines``.

    """
    import osmnx as ox

    crs = pyproj.CRS(graph.graph.get("crs", WGS84))
    nodes, edges = ox.graph_to_gdfs(graph, nodes=True, edges=True, fill_edge_geometry=True)
    if crs.is_geographic:
        target = utm_crs(nodes["x"].to_numpy(), nodes["y"].to_numpy())
        nodes = nodes.to_crs(target)
        edges = edges.to_crs(target)
        crs = target
    ids = nodes.index.to_numpy()
    order = np.argsort(ids)
    ids = ids[order]
    xs, ys = nodes.geometry.x.to_numpy()[order], nodes.geometry.y.to_numpy()[order]
    uu = edges.index.get_level_values(0).to_numpy()
    vv = edges.index.get_level_values(1).to_numpy()
    attrs = pd.DataFrame({c: edges[c].astype(str).to_numpy() for c in ("highway", "name")
                          if c in edges.columns})
    return {"x": xs, "y": ys, "node_id": ids, "edge_u": np.searchsorted(ids, uu),
            "edge_v": np.searchsorted(ids, vv), "edge_geometry": edges.geometry.to_numpy(),
            "crs": crs, "edge_attrs": attrs}


def edge_lines(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray,
               given: np.ndarray | None) -> np.ndarray:
    """Each edge's line from its ``u`` end to its ``v`` end: the given ones oriented, else straight.

    Parameters
    ----------
    x, y
        Node coordinates.
    u, v
        Node indices of each edge's ends.
    given
        The edges' LineStrings in either direction, or ``None``.

    Returns
    -------
    numpy.ndarray
        LineStrings, each starting at its ``u`` end.

    """
    if given is None:
        return shapely.linestrings(np.stack([np.column_stack([x[u], y[u]]),
                                             np.column_stack([x[v], y[v]])], axis=1))
    return _orient(np.asarray(given, dtype=object), x[u], y[u])


def without_loops_and_duplicates(u: np.ndarray, v: np.ndarray, geom: np.ndarray, attrs: pd.DataFrame,
                                 report: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    """The edges without self-loops and exact duplicates (same ends, same length).

    Self-loops add nothing to shortest paths; exact duplicates (a two-way street read in both
    directions) would double the edges to buffer and snap to.

    Parameters
    ----------
    u, v
        Node indices of each edge's ends.
    geom
        The edges' LineStrings.
    attrs
        Attributes per edge, aligned with ``u``.
    report
        Gets ``duplicate_or_loop_edges_dropped``.

    Returns
    -------
    u, v, geom, attrs
        The edges kept.

    """
    keep = u != v
    key = pd.DataFrame({"a": np.minimum(u, v), "b": np.maximum(u, v),
                        "l": np.round(shapely.length(geom), 2)})
    keep &= ~key.duplicated().to_numpy()
    report["duplicate_or_loop_edges_dropped"] = int((~keep).sum())
    return u[keep], v[keep], geom[keep], attrs[keep]


def component_nodes(u: np.ndarray, v: np.ndarray, length: np.ndarray, report: dict, *,
                    keep_largest: bool) -> np.ndarray:
    """The nodes to keep: those of the largest connected component, or all used ones.

    Parameters
    ----------
    u, v
        Node indices of each edge's ends.
    length
        Edge lengths in metres.
    report
        Gets ``components``, ``components_dropped``, ``nodes_dropped`` and ``km_dropped``.
    keep_largest
        Keep only the largest connected component.

    Returns
    -------
    numpy.ndarray
        The node indices kept, sorted.

    """
    used = np.unique(np.concatenate([u, v]))
    graph = csr(np.searchsorted(used, u), np.searchsorted(used, v), length, len(used))
    n_comp, labels = csgraph.connected_components(graph, directed=False)
    keep_nodes = used
    if keep_largest and n_comp > 1:
        keep_nodes = used[labels == int(np.argmax(np.bincount(labels)))]
    inside = np.isin(u, keep_nodes) & np.isin(v, keep_nodes)
    report.update(components=int(n_comp), components_dropped=int(n_comp - 1 if keep_largest else 0),
                  nodes_dropped=int(len(used) - len(keep_nodes)),
                  km_dropped=round(float(length[~inside].sum()) / 1000, 3))
    return keep_nodes


def csr(u: np.ndarray, v: np.ndarray, length: np.ndarray, n: int) -> sparse.csr_matrix:
    """A symmetric CSR adjacency in metres; parallel edges keep the shortest, never their sum.

    Parameters
    ----------
    u, v
        Node indices of each edge's ends.
    length
        Edge lengths in metres (raised to :data:`MIN_LENGTH_M`).
    n
        The number of nodes.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(n, n)``.

    """
    rows = np.concatenate([u, v])
    cols = np.concatenate([v, u])
    data = np.maximum(np.concatenate([length, length]), MIN_LENGTH_M)
    # SciPy sums duplicate COO entries; keep the shortest of parallel edges instead.
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return sparse.csr_matrix((data[first], (rows[first], cols[first])), shape=(n, n))


def _orient(geom: np.ndarray, ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """Reverse the geometries that start nearer their ``v`` end than their ``u`` end."""
    start = shapely.get_point(geom, 0)
    end = shapely.get_point(geom, -1)
    d_start = np.hypot(shapely.get_x(start) - ux, shapely.get_y(start) - uy)
    d_end = np.hypot(shapely.get_x(end) - ux, shapely.get_y(end) - uy)
    flip = d_end < d_start
    if flip.any():
        geom = geom.copy()
        geom[flip] = shapely.reverse(geom[flip])
    return geom
