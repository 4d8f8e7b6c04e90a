"""A network saved by circles (one GeoPackage, layers ``circles_nodes`` and ``circles_edges``) read
back as frames; :meth:`circles.WalkNetwork.load` builds the network from them."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import shapely

__all__ = ["EDGE_LAYER", "NODE_LAYER", "is_saved_network", "read_saved_network"]

NODE_LAYER, EDGE_LAYER = "circles_nodes", "circles_edges"


def read_saved_network(path: str | Path) -> dict:
    """The saved nodes and edges, the build report and the extent (``None`` when not saved).

    Returns
    -------
    dict
        ``nodes`` and ``edges`` (GeoDataFrames in the network CRS), ``report`` (dict), ``extent``
        (a shapely polygon in the network CRS, or ``None``).

    """
    import pyogrio

    path = Path(path)
    nodes = gpd.read_file(path, layer=NODE_LAYER, engine="pyogrio")
    edges = gpd.read_file(path, layer=EDGE_LAYER, engine="pyogrio")
    meta = pyogrio.read_info(path, layer=EDGE_LAYER).get("layer_metadata") or {}
    extent = shapely.from_wkt(meta["circles_extent"]) if meta.get("circles_extent") else None
    return {"nodes": nodes, "edges": edges, "report": json.loads(meta.get("circles_report", "{}")),
            "extent": extent}


def is_saved_network(path: Path) -> bool:
    """Whether ``path`` is a GeoPackage holding a saved circles network."""
    import pyogrio

    try:
        layers = {name for name, _ in pyogrio.list_layers(path)}
    except Exception:
        return False
    return {NODE_LAYER, EDGE_LAYER} <= layers
