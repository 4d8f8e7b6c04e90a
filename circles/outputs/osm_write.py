"""A walking network written as an OpenStreetMap extract (``.osm.pbf``), atomically.

Benchmarks and tests need cities circles reads the way it reads a real extract: the synthetic
grids of :mod:`circles.synthetic` become PBFs that go through the same reader, walking filter and
study area as a downloaded one. Every edge is one way whose ``highway`` tag the walking filter
keeps; an edge's interior vertices become nodes of its way, so curved edges survive the trip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

from ..errors import DataError, InputFileError
from ..readers.osm import walkable
from .runfolder import atomic_path

__all__ = ["write_osm_pbf"]

_WGS84 = pyproj.CRS.from_epsg(4326)


def write_osm_pbf(net, path: str | Path, *, highway: str = "residential", name: str | None = None
                  ) -> Path:
    """Write ``net`` as an OSM extract that circles reads back as the same network.

    Parameters
    ----------
    net : circles.WalkNetwork
        The network (any projected CRS; written in WGS-84 at OSM's 1e-7 degree precision).
    path
        An ``.osm.pbf`` (or ``.osm``) file; written to a temporary name and renamed into place.
    highway
        The ``highway`` tag of every way; it must be one the walking filter keeps
        (``residential``, ``footway``, ``path``...).
    name
        A ``name`` tag for every way (none by default).

    Returns
    -------
    Path

    Raises
    ------
    DataError
        ``highway`` is a value pedestrians may not use (``motorway``...).
    InputFileError
        ``path`` does not end in ``.pbf`` or ``.osm``.

    """
    import osmium

    path = Path(path)
    if path.suffix.lower() not in (".pbf", ".osm"):
        raise InputFileError("an OSM extract is written as .osm.pbf or .osm", file=path,
                             fix="give the output file an .osm.pbf suffix")
    _check_walkable(highway)
    node_ids, lon, lat, ways = _osm_arrays(net)
    tags = {"highway": highway, **({"name": str(name)} if name else {})}
    header = osmium.io.Header()
    west, south, east, north = _bounds(net, lon, lat)
    header.add_box(osmium.osm.Box(osmium.osm.Location(west, south), osmium.osm.Location(east, north)))
    with atomic_path(path) as tmp:
        writer = osmium.SimpleWriter(str(tmp), header=header)
        try:
            # pyosmium takes one object per call: there is no bulk writer to hand arrays to.
            for i, x, y in zip(node_ids.tolist(), lon.tolist(), lat.tolist(), strict=True):
                writer.add_node(osmium.osm.mutable.Node(id=i, location=(x, y), version=1))
            for way_id, refs in enumerate(ways, start=1):
                writer.add_way(osmium.osm.mutable.Way(id=way_id, nodes=refs, tags=tags, version=1))
        finally:
            writer.close()
    return path


def _check_walkable(highway: str) -> None:
    """Refuse a ``highway`` value circles' own walking filter would drop."""
    row = pd.DataFrame({"highway": [highway], "foot": [None], "access": [None], "area": [None],
                        "tags": [None], "sidewalk": [None]})
    if not walkable(row)[0]:
        raise DataError(f"highway={highway} is not walkable, so circles would read no streets back",
                        field="highway", fix="use residential, footway, path or pedestrian")


def _osm_arrays(net) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]:
    """Node ids, lon, lat (network nodes, then edge interior vertices) and each way's node ids."""
    n = net.n_nodes
    ids = np.asarray(net.node_id, dtype=np.int64)
    if len(ids) != n or (ids <= 0).any() or len(np.unique(ids)) != n:
        ids = np.arange(1, n + 1, dtype=np.int64)  # OSM ids are positive and unique
    coords, owner = shapely.get_coordinates(net.edge_geometry, return_index=True)
    counts = np.bincount(owner, minlength=net.n_edges)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    # A geometry's ends are its edge's nodes; only the vertices between them become new nodes.
    position = np.arange(len(owner)) - first[owner]
    interior = (position > 0) & (position < counts[owner] - 1)
    extra_ids = ids.max() + 1 + np.arange(int(interior.sum()), dtype=np.int64)
    vertex_ids = np.zeros(len(owner), dtype=np.int64)
    vertex_ids[interior] = extra_ids
    is_first, is_last = position == 0, position == counts[owner] - 1
    vertex_ids[is_first] = ids[net.edge_u[owner[is_first]]]
    vertex_ids[is_last] = ids[net.edge_v[owner[is_last]]]
    x = np.concatenate([net.x, coords[interior, 0]])
    y = np.concatenate([net.y, coords[interior, 1]])
    lon, lat = pyproj.Transformer.from_crs(net.crs, _WGS84, always_xy=True).transform(x, y)
    all_ids = np.concatenate([ids, extra_ids])
    order = np.argsort(all_ids)  # a PBF lists nodes by id
    ways = np.split(vertex_ids, np.cumsum(counts)[:-1]) if net.n_edges else []
    return all_ids[order], np.asarray(lon)[order], np.asarray(lat)[order], [w.tolist() for w in ways]


def _bounds(net, lon: np.ndarray, lat: np.ndarray) -> tuple[float, float, float, float]:
    """The header box: the network's extent when it has one, else the box of its nodes."""
    if net.extent is not None:
        ex, ey = shapely.get_coordinates(net.extent).T
        elon, elat = net.to_wgs84(ex, ey)
        return float(np.min(elon)), float(np.min(elat)), float(np.max(elon)), float(np.max(elat))
    return float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())
