"""A walking network saved as one GeoPackage (layers ``circles_nodes``, ``circles_edges``), atomically.

The engine writes no files: saving is an output. ``net.save(path)`` is this function, bound to
:class:`circles.WalkNetwork` at the package's door (``circles/__init__.py``) so it keeps working.
"""

from __future__ import annotations

import json
from pathlib import Path

import shapely

from ..errors import InputFileError
from ..readers.network_file import EDGE_LAYER, NODE_LAYER
from .runfolder import atomic_path

__all__ = ["save_network", "write_repaired_lines"]


def save_network(net, path: str | Path) -> Path:
    """Save ``net`` to the GeoPackage ``path`` (its build report and extent in the layer metadata).

    Parameters
    ----------
    net : circles.WalkNetwork
        The network.
    path
        A ``.gpkg`` file; written to a temporary name and renamed into place.

    Returns
    -------
    Path

    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputFileError("a network is saved as a GeoPackage", file=path,
                             fix="give the output file a .gpkg suffix")
    edges = net.edges_gdf()
    for col in edges.columns:
        if col != "geometry" and edges[col].dtype == object:
            edges[col] = edges[col].astype("string")
    meta = {"circles_report": json.dumps(net.report, default=str)}
    if net.extent is not None:
        meta["circles_extent"] = shapely.to_wkt(net.extent, rounding_precision=3)
    with atomic_path(path) as tmp:
        net.nodes_gdf().to_file(tmp, layer=NODE_LAYER, driver="GPKG", engine="pyogrio")
        edges.to_file(tmp, layer=EDGE_LAYER, driver="GPKG", engine="pyogrio", layer_metadata=meta)
    return path


def write_repaired_lines(path: str | Path, lines) -> Path:
    """Write road lines as repaired (layer ``repaired``) and the place of every fix (layer ``fixes``).

    Parameters
    ----------
    path
        A ``.gpkg`` file, written to a temporary name and renamed into place, so the bureau can fix
        its source.
    lines : circles.readers.roads.RoadLines
        The repaired layer.

    Returns
    -------
    pathlib.Path

    """
    path = Path(path)
    if path.suffix.lower() != ".gpkg":
        raise InputFileError("the repaired lines are written as a GeoPackage", file=path,
                             fix="give the file a .gpkg suffix")
    with atomic_path(path) as tmp:
        lines.pieces.to_file(tmp, layer="repaired", driver="GPKG", engine="pyogrio")
        if lines.fixes is not None and len(lines.fixes):
            lines.fixes.to_file(tmp, layer="fixes", driver="GPKG", engine="pyogrio")
    return path
