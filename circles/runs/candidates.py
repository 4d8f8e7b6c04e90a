"""Candidate sites for siting: a file's sites, or network nodes thinned to a spacing, optionally
limited to land-use types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from ..engine.placement import in_study_area, place
from ..engine.routing import Anchors
from ..engine.siting import candidate_nodes
from ..errors import DataError
from ..readers.tables import find_column, read_table, table_points

__all__ = ["candidate_anchors"]

_LANDUSE_COLUMNS = ("landuse", "land_use", "type", "用地", "用地性质", "用地类型", "类型")


def candidate_anchors(result, *, candidates: str | Path | None = None, crs: str = "wgs84",
                      spacing_metres: float = 100.0, landuse: list[str] | None = None
                      ) -> tuple[Anchors, np.ndarray, np.ndarray]:
    """Candidate sites on the network: a file's sites (snapped; off-network ones dropped and
    counted) or network nodes thinned to ``spacing_metres``, existing facilities excluded.

    ``landuse`` keeps only candidates on those land-use types: a file's ``landuse``/``type``
    (用地性质) column, or for network nodes the OSM ``landuse`` polygons of the network's
    extract (a node within 50 m of one, since streets run along parcels).

    Returns
    -------
    anchors, lon, lat
        The candidates on the network and their WGS-84 coordinates.
    floor_area_m2 : numpy.ndarray
        Each candidate's floor area from the file's ``floor_area_m2`` (建筑面积) column; NaN
        where it gives none, and for network nodes.

    """
    net, profile = result.network, result.profile
    if isinstance(landuse, str):
        landuse = [v.strip() for v in landuse.split(",") if v.strip()]
    fac = result.facilities[result.facilities["status"] == "ok"]
    if candidates is None:
        nodes = candidate_nodes(net, spacing_metres=spacing_metres,
                                exclude_xy=(fac["x"].to_numpy(float), fac["y"].to_numpy(float)))
        nodes = nodes[in_study_area(net, net.x[nodes], net.y[nodes], profile)]
        if landuse:
            nodes = nodes[_on_landuse(net, nodes, landuse)]
        lon, lat = net.to_wgs84(net.x[nodes], net.y[nodes])
        return Anchors.at_nodes(net, nodes), np.asarray(lon), np.asarray(lat), np.full(len(nodes), np.nan)
    df = read_table(candidates, what="candidate sites")
    if landuse:
        col = next((c for c in df.columns if str(c).lower() in _LANDUSE_COLUMNS), None)
        if col is None:
            raise DataError("the candidate file has no land-use column to filter on", file=candidates,
                            field="landuse", fix=f"add one of {', '.join(_LANDUSE_COLUMNS)} or drop --landuse")
        df = df[df[col].astype(str).isin(landuse)].reset_index(drop=True)
        if not len(df):
            raise DataError(f"no candidate has land use {landuse}", file=candidates, field=str(col),
                            fix="check the land-use values")
    lon, lat, problems = table_points(df, crs=crs, file=candidates)
    if problems:
        from ..errors import ValidationError

        raise ValidationError(problems, file=candidates)
    x, y = net.from_wgs84(lon, lat)
    placed = place(net, x, y, profile=profile)
    snap, ok = placed.snap, placed.ok
    if not ok.any():
        raise DataError("no candidate site lies in the study area within the snap cap of a walkable street",
                        file=candidates, fix="check the coordinates and --crs of the candidates")
    anchors = Anchors.from_snap(snap.assign(), x=x, y=y).subset(ok)
    area_col = find_column(df.columns, "floor_area_m2")
    area = (pd.to_numeric(df[area_col], errors="coerce").to_numpy(float) if area_col is not None
            else np.full(len(df), np.nan))
    return anchors, lon[ok], lat[ok], np.where(area > 0, area, np.nan)[ok]


def _on_landuse(net, nodes: np.ndarray, kinds: list[str]) -> np.ndarray:
    from ..readers.files import default_network_path
    from ..readers.osm import is_osm_file, read_osm_features

    src = str(net.report.get("source") or "")
    osm = src if src and is_osm_file(src) else str(default_network_path())
    lu = read_osm_features(osm, kind="landuse")
    if not len(lu) or "landuse" not in lu:
        raise DataError("the extract has no land-use polygons to limit candidates to", file=osm,
                        fix="give --candidates with a land-use column, or drop --landuse")
    lu = lu[lu["landuse"].isin(kinds)].to_crs(net.crs)
    if not len(lu):
        raise DataError(f"the extract has no land use of type {kinds}", file=osm, field="landuse",
                        fix="use OSM landuse values such as residential, commercial, retail")
    tree = shapely.STRtree(lu.geometry.to_numpy())
    pts = shapely.points(net.x[nodes], net.y[nodes])
    keep = np.zeros(len(nodes), dtype=bool)
    keep[tree.query(pts, predicate="dwithin", distance=50.0)[0]] = True
    return keep
