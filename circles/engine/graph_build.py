"""Building a walking network's arrays: cleaning edges, the adjacency, a source's extent.

Pure functions on arrays and frames, used by :class:`circles.engine.network.WalkNetwork` when it
builds itself from lines (loops, duplicates, orientation, the largest component), from an osmnx
graph (and back), and for its CSR adjacency.

Edges are grouped by their end pair with a sort of one integer key (``min * n + max``), never a
group-by: the duplicates, the shortest of parallel edges and the CSR's row order all come from
it, the components are found on the upper triangle, and the symmetric adjacency is that
triangle plus its transpose. Straight edges are measured from their ends' coordinates, so a
network without geometries needs none to be built (see ``WalkNetwork.edge_geometry``).
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy import sparse
from scipy.sparse import csgraph

from ..errors import NetworkError
from ..readers.crs import WGS84, utm_crs

__all__ = ["MIN_LENGTH_M", "component_nodes", "csr", "distinct_edges", "edge_ends", "edge_lines",
           "edge_rows", "line_ends", "osm_extent", "osmnx_arrays", "osmnx_graph", "straight_lengths"]

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


def osmnx_graph(net):
    """A network as an osmnx ``MultiDiGraph``: both directions, ``length`` in metres.

    Parameters
    ----------
    net
        A :class:`circles.engine.network.WalkNetwork`.

    Returns
    -------
    networkx.MultiDiGraph

    """
    import osmnx as ox

    nodes = gpd.GeoDataFrame({"x": net.x, "y": net.y}, geometry=shapely.points(net.x, net.y),
                             crs=net.crs, index=pd.Index(net.node_id, name="osmid"))
    fwd = pd.DataFrame({"u": net.node_id[net.edge_u], "v": net.node_id[net.edge_v],
                        "length": net.edge_length, "geometry": net.edge_geometry})
    back = fwd.assign(u=fwd["v"], v=fwd["u"], geometry=shapely.reverse(net.edge_geometry))
    both = pd.concat([fwd, back], ignore_index=True)
    both["key"] = both.groupby(["u", "v"]).cumcount()
    edges = gpd.GeoDataFrame(both.set_index(["u", "v", "key"]), geometry="geometry", crs=net.crs)
    return ox.graph_from_gdfs(nodes, edges, graph_attrs={"crs": net.crs})


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


def edge_ends(edge_u, edge_v, n: int, source: str) -> tuple[np.ndarray, np.ndarray]:
    """The edges' end node indices as ``int64`` arrays, refused unless they index ``n`` nodes
    (a negative or too large index would wrap around or fall off the arrays).

    Returns
    -------
    u, v : numpy.ndarray

    Raises
    ------
    NetworkError
        When ``u`` and ``v`` differ in length or an end lies outside ``0..n-1``.

    """
    u, v = np.asarray(edge_u, dtype=np.int64), np.asarray(edge_v, dtype=np.int64)
    if len(u) != len(v):
        raise NetworkError(f"{len(u)} edge starts but {len(v)} edge ends", file=source or None,
                           fix="give edge_u and edge_v one entry per edge")
    if len(u) and (min(u.min(), v.min()) < 0 or max(u.max(), v.max()) >= n):
        raise NetworkError(f"edge ends must be node indices 0..{n - 1}", file=source or None,
                           fix="number the edges' ends by the position of their node in x and y")
    return u, v


def edge_rows(attrs: pd.DataFrame | None, edges: np.ndarray, n_read: int) -> pd.DataFrame:
    """The attribute rows of the edges kept, renumbered ``0..k-1``.

    Parameters
    ----------
    attrs
        Attributes per edge read (``None`` or no column: an empty frame).
    edges
        Positions of the edges kept among the ``n_read`` read, ascending.
    n_read
        The number of edges read.

    Returns
    -------
    pandas.DataFrame

    """
    if attrs is None or not attrs.shape[1]:
        return pd.DataFrame(index=pd.RangeIndex(len(edges)))
    if len(attrs) != n_read:
        raise NetworkError(f"{len(attrs)} attribute rows for {n_read} edges",
                           fix="give edge_attrs one row per edge, in the edges' order")
    if len(edges) == n_read:  # nothing dropped: the rows as they are, no copy of every column
        return attrs.reset_index(drop=True)
    return attrs.iloc[edges].reset_index(drop=True)


def straight_lengths(x: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The length of each straight edge from ``u`` to ``v``, as shapely measures its segment.

    ``sqrt(dx * dx + dy * dy)`` is GEOS's own formula, so these equal ``shapely.length`` of the
    straight LineStrings bit for bit (``numpy.hypot`` differs in the last digit now and then).

    Parameters
    ----------
    x, y
        Node coordinates.
    u, v
        Node indices of each edge's ends.

    Returns
    -------
    numpy.ndarray
        Lengths in the coordinates' unit.

    """
    dx = x[v] - x[u]
    dy = y[v] - y[u]
    return np.sqrt(dx * dx + dy * dy)


def distinct_edges(u: np.ndarray, v: np.ndarray, length: np.ndarray, n: int, report: dict
                   ) -> np.ndarray:
    """The edges to keep: no self-loops and no exact duplicates (same ends, same length).

    Self-loops add nothing to shortest paths; exact duplicates (a two-way street read in both
    directions) would double the edges to buffer and snap to. The first of each set of duplicates
    is kept. One sort of the end pairs finds the pairs met more than once; only their edges are
    compared by length.

    Parameters
    ----------
    u, v
        Node indices of each edge's ends, in ``0..n-1``.
    length
        Edge lengths in metres (compared to the centimetre).
    n
        The number of nodes.
    report
        Gets ``duplicate_or_loop_edges_dropped``.

    Returns
    -------
    numpy.ndarray
        True for the edges kept.

    """
    keep = u != v
    edges = np.flatnonzero(keep)
    key, order, starts = _pair_groups(u[edges], v[edges], n)
    size = np.diff(np.append(starts, len(key)))
    shared = np.repeat(size > 1, size)  # in sorted order: the pair is met more than once
    if shared.any():
        # The few edges sharing their ends, back in input order, so that the first one is kept.
        at = np.sort(order[shared])
        pairs = pd.DataFrame({"k": _pair_key(u[edges[at]], v[edges[at]], n),
                              "l": np.round(length[edges[at]], 2)})
        keep[edges[at[pairs.duplicated().to_numpy()]]] = False
    report["duplicate_or_loop_edges_dropped"] = int((~keep).sum())
    return keep


def component_nodes(u: np.ndarray, v: np.ndarray, length: np.ndarray, n: int, report: dict, *,
                    keep_largest: bool) -> tuple[np.ndarray, sparse.csr_matrix]:
    """The nodes to keep: those of the largest connected component, or all used ones.

    Parameters
    ----------
    u, v
        Node indices of each edge's ends, in ``0..n-1``.
    length
        Edge lengths in metres.
    n
        The number of nodes.
    report
        Gets ``components``, ``components_dropped``, ``nodes_dropped`` and ``km_dropped``.
    keep_largest
        Keep only the largest connected component.

    Returns
    -------
    keep : numpy.ndarray
        True for the nodes kept.
    graph : scipy.sparse.csr_matrix
        :func:`csr` of the edges between kept nodes, the kept nodes numbered ``0..k-1`` in
        their order: the network's own adjacency.

    """
    upper, loops = _triangle(u, v, length, n)
    # The upper triangle alone says who is connected to whom: half the entries to walk.
    n_comp, labels = csgraph.connected_components(upper, directed=False)
    used = np.bincount(u, minlength=n) + np.bincount(v, minlength=n) > 0
    # A node no edge uses is a component of its own; those are not the network's components.
    n_comp -= int(n - used.sum())
    keep = used
    if keep_largest and n_comp > 1:
        # Labels follow the lowest node of each component, so ties go to the one met first.
        keep = used & (labels == int(np.argmax(np.bincount(labels[used]))))
    inside = keep[u] & keep[v]
    report.update(components=int(n_comp), components_dropped=int(n_comp - 1 if keep_largest else 0),
                  nodes_dropped=int(used.sum() - keep.sum()),
                  km_dropped=round(float(length[~inside].sum()) / 1000, 3))
    return keep, _restricted(_symmetric(upper, *loops), keep)


def csr(u: np.ndarray, v: np.ndarray, length: np.ndarray, n: int) -> sparse.csr_matrix:
    """A symmetric CSR adjacency in metres; parallel edges keep the shortest, never their sum.

    Parameters
    ----------
    u, v
        Node indices of each edge's ends, in ``0..n-1``.
    length
        Edge lengths in metres (raised to :data:`MIN_LENGTH_M`).
    n
        The number of nodes.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(n, n)``, sorted indices, one entry per neighbour.

    """
    upper, loops = _triangle(u, v, length, n)
    return _symmetric(upper, *loops)


def _triangle(u: np.ndarray, v: np.ndarray, length: np.ndarray, n: int
              ) -> tuple[sparse.csr_matrix, tuple[np.ndarray, np.ndarray]]:
    """The strict upper triangle of the adjacency, and the self-loops (rows, lengths) apart."""
    key, order, starts = _pair_groups(u, v, n)
    # SciPy would sum parallel edges; the sort put them side by side, so take their minimum.
    data = (np.minimum.reduceat(np.maximum(length[order], MIN_LENGTH_M), starts) if len(key)
            else np.zeros(0))
    rows, cols = np.divmod(key[starts], n)
    loop = rows == cols
    return _sorted_csr(rows[~loop], cols[~loop], data[~loop], n), (rows[loop], data[loop])


def _symmetric(upper: sparse.csr_matrix, loop_rows: np.ndarray, loop_data: np.ndarray
               ) -> sparse.csr_matrix:
    """``upper + upper.T``, plus the loops on the diagonal.

    The triangles are disjoint, so SciPy's sum adds nothing to anything; it only merges sorted
    rows, which is faster here than placing the entries by hand.
    """
    n = upper.shape[0]
    graph = upper + upper.T.tocsr()
    if len(loop_rows):
        graph = graph + _sorted_csr(loop_rows, loop_rows, loop_data, n)
    return graph


def _restricted(graph: sparse.csr_matrix, keep: np.ndarray) -> sparse.csr_matrix:
    """The graph on the kept nodes only, renumbered in their order, without a sort.

    Every neighbour of a kept node is kept (the kept nodes are whole components), so the kept
    rows keep all their entries and only the column numbers change, in the same order.
    """
    if keep.all():
        return graph
    counts = np.diff(graph.indptr)
    entries = np.repeat(keep, counts)
    new_index = (np.cumsum(keep) - 1).astype(graph.indices.dtype)
    indptr = np.zeros(int(keep.sum()) + 1, dtype=graph.indptr.dtype)
    np.cumsum(counts[keep], out=indptr[1:])
    return sparse.csr_matrix((graph.data[entries], new_index[graph.indices[entries]], indptr),
                             shape=(len(indptr) - 1, len(indptr) - 1))


def _pair_key(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """One integer per unordered end pair: ``min * n + max``, ordered like (row, column)."""
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    return np.minimum(u, v) * n + np.maximum(u, v)


def _pair_groups(u: np.ndarray, v: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The end pairs sorted: the sorted keys, the order that sorts them, each group's start.

    Stable sorting is not needed for the results (they take minima, or go back to input order)
    but is the fast one here: street data come mostly in sorted runs, which timsort merges in
    near-linear time (a grid city's 2M edges in 5 ms, against 130 ms for quicksort).
    """
    key = _pair_key(u, v, n)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
    return key, order, starts


def _sorted_csr(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> sparse.csr_matrix:
    """A CSR matrix from entries already sorted by (row, column), with no duplicate: no sort."""
    index = np.int32 if max(n, 2 * len(rows)) < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=index)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sparse.csr_matrix((data, cols.astype(index), indptr), shape=(n, n))


def line_ends(geom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and last coordinates of each LineString, NaN for anything else.

    Read from the coordinate array, not through ``shapely.get_point``, which makes a point
    object per line (about 1.5 s per million lines on this machine).

    Parameters
    ----------
    geom
        Geometries (LineStrings, normally).

    Returns
    -------
    first, last : numpy.ndarray
        Shape ``(len(geom), 2)``.

    """
    count = shapely.get_num_coordinates(geom)
    coords = shapely.get_coordinates(geom)
    end = np.cumsum(count)
    kind = shapely.get_type_id(geom)
    line = ((kind == shapely.GeometryType.LINESTRING) | (kind == shapely.GeometryType.LINEARRING)
            ) & (count > 0)
    if line.all():  # the usual case, without the slow masked row copies
        return coords[end - count], coords[end - 1]
    first = np.full((len(geom), 2), np.nan)
    last = np.full((len(geom), 2), np.nan)
    first[line] = coords[(end - count)[line]]
    last[line] = coords[end[line] - 1]
    return first, last


def _orient(geom: np.ndarray, ux: np.ndarray, uy: np.ndarray) -> np.ndarray:
    """Reverse the geometries that start nearer their ``v`` end than their ``u`` end."""
    start, end = line_ends(geom)
    d_start = np.hypot(start[:, 0] - ux, start[:, 1] - uy)
    d_end = np.hypot(end[:, 0] - ux, end[:, 1] - uy)
    flip = d_end < d_start
    if flip.any():
        geom = geom.copy()
        geom[flip] = shapely.reverse(geom[flip])
    return geom
