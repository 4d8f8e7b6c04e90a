"""Where points meet the walking network: the snap cap, the study area, and snapping facilities,
demand and candidate sites.

Every part of a run places points the same way, so this is the one module that does it:

* the **snap cap** (:func:`snap_cap_metres`): beyond it of straight walk from every walkable street a
  point is ``off_network``;
* the **study area** (:func:`study_area`): the network's hull widened by the snap cap and cut at the
  source's own extent (:meth:`WalkNetwork.study_area`); beyond it a point is ``outside``;
* :func:`place` snaps points that lie inside and says which are ``ok``;
* :func:`attach` does it for a facility table: a footprint joins the street where its boundary comes
  nearest one, and rows whose coordinates are swapped are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..constants import SNAP_CAP_METRES
from ..errors import ValidationError
from ..readers.profiles import Profile
from .network import WalkNetwork

__all__ = ["Placement", "attach", "in_study_area", "place", "snap_cap_metres", "study_area",
           "study_area_wgs84"]

_SWAP_SEARCH_METRES = 2000.0  # a swapped pair lands thousands of km away; 2 km tells it from a typo


def snap_cap_metres(profile: Profile | None) -> float:
    """The off-network cap of ``profile`` in metres (the default 300 m without one)."""
    cap = getattr(profile, "snap_cap_metres", None)
    return float(cap) if cap else SNAP_CAP_METRES


def study_area(net: WalkNetwork, profile: Profile | None):
    """The study area in the network CRS: the hull widened by the snap cap, cut at the extent."""
    return net.study_area(snap_cap_metres(profile))


def study_area_wgs84(net: WalkNetwork, profile: Profile | None):
    """:func:`study_area` in WGS-84, for the readers that clip their sources to it."""
    return gpd.GeoSeries([study_area(net, profile)], crs=net.crs).to_crs(4326).iloc[0]


def in_study_area(net: WalkNetwork, x: np.ndarray, y: np.ndarray, profile: Profile | None) -> np.ndarray:
    """True for the points (network CRS) inside the study area."""
    return shapely.contains_xy(study_area(net, profile), np.asarray(x, float), np.asarray(y, float))


@dataclass(frozen=True)
class Placement:
    """Points placed on a network.

    Attributes
    ----------
    x, y : numpy.ndarray
        The points in the network CRS.
    snap : pandas.DataFrame
        :meth:`WalkNetwork.snap` of the points inside the study area (the rest are not snapped).
    inside : numpy.ndarray
        Inside the study area.
    status : numpy.ndarray
        ``ok``, ``off_network`` (beyond the snap cap) or ``outside`` (beyond the study area).

    """

    x: np.ndarray
    y: np.ndarray
    snap: pd.DataFrame
    inside: np.ndarray
    status: np.ndarray

    @property
    def ok(self) -> np.ndarray:
        """The points that reach the network."""
        return self.status == "ok"


def place(net: WalkNetwork, x: np.ndarray, y: np.ndarray, *, profile: Profile | None,
          crs: str = "network") -> Placement:
    """Snap points to ``net`` within the study area.

    Parameters
    ----------
    net
        The walking network.
    x, y
        The points: in the network CRS, or longitude and latitude with ``crs="wgs84"``.
    profile
        Gives the snap cap.
    crs
        ``network`` or ``wgs84``.

    Returns
    -------
    Placement

    """
    x, y = (net.from_wgs84(x, y) if crs == "wgs84" else (x, y))
    x, y = np.asarray(x, float), np.asarray(y, float)
    inside = in_study_area(net, x, y, profile)
    snap = net.snap(np.where(inside, x, np.nan), np.where(inside, y, np.nan),
                    max_metres=snap_cap_metres(profile))
    status = np.where(~inside, "outside", np.where(snap["snapped"].to_numpy(), "ok", "off_network"))
    return Placement(x=x, y=y, snap=snap, inside=inside, status=status.astype(object))


def attach(facilities: gpd.GeoDataFrame, net: WalkNetwork, profile: Profile) -> gpd.GeoDataFrame:
    """Snap facilities (WGS-84) to ``net``.

    Parameters
    ----------
    facilities
        As read by :func:`circles.read_facilities`; a ``footprint`` column (polygons in WGS-84, from a
        layer of footprints) places a row where its boundary comes nearest a walkable street.
    net
        The walking network.
    profile
        Gives the snap cap.

    Returns
    -------
    geopandas.GeoDataFrame
        With ``x``, ``y``, ``edge``, ``along_m``, ``offset_m``; ``status`` becomes ``outside_area``
        outside the study area and ``off_network`` beyond the snap cap from every walkable street.

    Raises
    ------
    ValidationError
        Rows far outside the network that fall inside it with longitude and latitude swapped.

    """
    fac = _footprint_entrances(facilities, net)
    lon, lat = fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()
    problems = _swapped(fac, lon, lat, net)
    if problems:
        raise ValidationError(problems, file=fac.attrs.get("file"))
    x, y = net.from_wgs84(lon, lat)
    inside = in_study_area(net, x, y, profile)
    # Facilities keep their snap even outside the area: the map shows where they would join.
    snap = net.snap(x, y, max_metres=snap_cap_metres(profile))
    status = (fac["status"].astype(str).to_numpy() if "status" in fac.columns
              else np.full(len(fac), "ok", dtype=object))
    status = np.where(~inside, "outside_area",
                      np.where(~snap["snapped"].to_numpy(), "off_network", status)).astype(object)
    fac["status"] = status
    fac["x"], fac["y"] = x, y
    for col in ("edge", "along_m", "offset_m"):
        fac[col] = snap[col].to_numpy()
    return fac


def _footprint_entrances(facilities: gpd.GeoDataFrame, net: WalkNetwork) -> gpd.GeoDataFrame:
    """A copy whose footprint rows sit where the footprint's boundary comes nearest a street."""
    fac = facilities.copy()
    if "footprint" not in fac.columns:
        return fac
    geoms = fac.pop("footprint").to_numpy()
    rows = np.flatnonzero(pd.notna(geoms))
    if len(rows):
        boundary = shapely.boundary(gpd.GeoSeries(geoms[rows], crs=4326).to_crs(net.crs).to_numpy())
        nearest = net.edge_tree.query_nearest(boundary, all_matches=False)[1]
        start = shapely.get_point(shapely.shortest_line(boundary, net.edge_lines(nearest)), 0)
        lon, lat = net.to_wgs84(shapely.get_x(start), shapely.get_y(start))
        points = fac.geometry.to_numpy().copy()
        points[rows] = shapely.points(lon, lat)
        fac = fac.set_geometry(gpd.GeoSeries(points, crs=fac.crs, index=fac.index))
    return fac


def _swapped(fac: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray, net: WalkNetwork) -> list[dict]:
    """Rows far outside the network whose swapped coordinates fall inside it."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return []
    area = net.hull.buffer(_SWAP_SEARCH_METRES)
    x, y = net.from_wgs84(np.where(ok, lon, 0), np.where(ok, lat, 0))
    sx, sy = net.from_wgs84(np.where(ok, lat, 0), np.where(ok, lon, 0))
    swapped = ok & ~shapely.contains_xy(area, x, y) & shapely.contains_xy(area, sx, sy)
    rows = fac["source_row"].to_numpy() if "source_row" in fac.columns else np.arange(1, len(fac) + 1)
    return [dict(row=int(rows[i]), field="lon/lat", value=f"{lon[i]:.6f}, {lat[i]:.6f}",
                 problem="far outside the network, but inside it with longitude and latitude swapped",
                 fix="swap the longitude and latitude columns") for i in np.flatnonzero(swapped)]
