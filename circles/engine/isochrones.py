"""Service-area polygons: the reached street segments, cut exactly where time runs out, buffered.

An area is never a hull: it is the streets a person can walk within the limit, each partly
reached edge cut at the exact point along its geometry where the limit is met, buffered by a
street width, so blocks nobody can reach stay holes. Per-facility areas, a dissolved area per
tier (honouring the profile's nesting) and 0-5 / 5-10 / 10-15 minute rings all come from the same
reached pieces; for one facility or tier, a smaller limit reaches a subset of a larger one's
pieces, and each larger area is merged with the smaller one, so areas nest (up to the overlay's
floating-point noise, far below a square millimetre).

Everything is in the network CRS and in metres; :func:`to_wgs84` converts a layer for output.
The reached stretches are cut in :mod:`circles.engine.street_pieces`; one area per facility is
buffered in :mod:`circles.engine.street_buffers`; the dissolved areas and rings, whose cost must
follow the reached frontier and not the whole city, in :mod:`circles.engine.street_areas` (on
the network's faces, :mod:`circles.engine.street_faces`) and :mod:`circles.engine.area_rings`.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike

from ..errors import DataError
from .anchors import Anchors, anchor_status, check_anchors
from .area_rings import area_polygon, ring_polygons
from .facility_areas import forget_index
from .network import WalkNetwork
from .routing import nearest, reach, tier_codes
from .street_areas import AreaParts, dissolved_parts
from .street_buffers import ReachedNodes, reached_areas
from .street_faces import forget_faces, street_faces

if TYPE_CHECKING:
    import pyproj

    from ..readers.profiles import Profile, Tier

__all__ = [
    "FACILITY_AREAS_DEFAULT",
    "distance_bands",
    "facility_area_cap",
    "facility_areas_note",
    "facility_isochrones",
    "forget_areas",
    "tier_isochrones",
    "to_wgs84",
]

#: Per-facility areas are drawn for up to this many facilities unless asked otherwise: their cost
#: grows with the count (a POI dump of 100,000 facilities needs hours and gigabytes), while the
#: coverage figures, the dissolved tier areas and the rings do not need them.
FACILITY_AREAS_DEFAULT = 2000

_THREADS = 2
_PARTS_KEPT = 3  # dissolved areas kept per network: a run reuses one (a city's are 100s of MB)
_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PARTS_LOCK = threading.Lock()


def forget_areas(net: WalkNetwork) -> None:
    """Drop what drawing areas keeps with a network: its faces, their index and the last
    dissolved areas. A run calls it once its layers are drawn: at 1M nodes they hold gigabytes
    that the writing, the basemap and the map do not need. Drawn again, they are rebuilt."""
    with _PARTS_LOCK:
        _PARTS.pop(net, None)
    forget_faces(net)
    forget_index(net)


def to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The frame in WGS-84 lon/lat (outputs are written in WGS-84)."""
    return gdf.to_crs(4326)


def facility_area_cap(value: str | int | None = None) -> int | None:
    """The most facilities to draw per-facility areas for, from ``all``, ``none`` or a count.

    Parameters
    ----------
    value
        ``"all"`` (no cap), ``"none"`` (0), a whole number, or ``None`` for
        :data:`FACILITY_AREAS_DEFAULT`.

    Returns
    -------
    int or None
        The cap; ``None`` when every facility gets its area.

    """
    if value is None:
        return FACILITY_AREAS_DEFAULT
    text = str(value).strip().lower().replace(",", "").replace("_", "")
    if text == "all":
        return None
    if text == "none":
        return 0
    try:
        number = float(text)
    except ValueError:
        number = -1.0
    if not (number >= 0 and number.is_integer()):
        raise DataError(f"facility areas must be all, none or a whole number, got {value!r}",
                        field="facility_areas",
                        fix=f"pass --facility-areas all, none or a count such as {FACILITY_AREAS_DEFAULT}")
    return int(number)


def facility_areas_note(n_facilities: int, value: str | int | None = None
                        ) -> dict[str, str | int | bool]:
    """Whether per-facility areas are drawn for ``n_facilities`` under the setting, and why not.

    Parameters
    ----------
    n_facilities
        The usable (snapped) facilities.
    value
        The setting, as for :func:`facility_area_cap`.

    Returns
    -------
    dict
        ``setting`` (``all``, ``none`` or the cap), ``facilities``, ``written`` (bool) and
        ``message`` (empty when written): what the manifest records and the CLI says.

    """
    cap = facility_area_cap(value)
    setting = "all" if cap is None else "none" if cap == 0 else cap
    written = cap is None or n_facilities <= cap
    message = ""
    if not written and cap == 0:
        message = "per-facility areas and pop_in_circle not written (--facility-areas none)"
    elif not written:
        message = (f"per-facility areas and pop_in_circle not written for {n_facilities:,} "
                   f"facilities (more than {cap:,}); pass --facility-areas all to write them")
    return {"setting": setting, "facilities": int(n_facilities), "written": bool(written),
            "message": message}


def facility_isochrones(net: WalkNetwork, facilities: Anchors, *,
                        limit_metres: float | Sequence[float], buffer_metres: float = 30.0,
                        ids: ArrayLike | None = None, metres_per_minute: float | None = None,
                        by_faces: bool = True) -> gpd.GeoDataFrame:
    """One service-area polygon per facility (and per limit).

    Parameters
    ----------
    net
        The walking network.
    facilities
        The facilities; those not snapped get an empty polygon and ``status`` ``not_snapped``.
    limit_metres
        The walking limit, or several (one row per facility per limit; each facility's smaller
        limits give areas inside its larger ones).
    buffer_metres
        Half the street width drawn around each reached segment.
    ids
        Facility ids for the ``id`` column (default: the row numbers).
    metres_per_minute
        Walking speed, to add ``minutes``.
    by_faces
        Draw the areas from the network's faces (:mod:`circles.engine.facility_areas`: the
        same polygons, faster for many facilities); ``False`` nodes and polygonizes each
        facility's streets, the previous way (kept for comparison).

    Returns
    -------
    geopandas.GeoDataFrame
        In the network CRS: ``facility`` (row in ``facilities``), ``id``, ``status`` (``ok``,
        ``not_snapped``, ``island``: reaches only its own part of a broken network),
        ``metres``, ``minutes`` (when the speed is given), ``area_km2``.

    """
    check_anchors(net, facilities, "facilities")
    limits = np.sort(np.atleast_1d(np.asarray(limit_metres, dtype=float)))
    if len(limits) == 0 or not np.isfinite(limits).all() or (limits < 0).any():
        raise DataError(f"walking limits must be finite and not negative, got {limit_metres}",
                        field="limit_metres", fix="give limits in metres, such as 375, 750, 1125")
    k, m = len(facilities), len(limits)
    dist = reach(net, facilities, limit_metres=float(limits[-1])).tocoo()
    # Origin r = facility * m + limit position; its nodes are the facility's within that limit.
    fac_r = np.repeat(np.arange(k), m)
    lim_r = np.tile(limits, k)
    within = dist.data[:, None] <= limits[None, :]
    rr, jj = np.nonzero(within)
    origin = dist.row[rr] * m + jj
    src = np.flatnonzero(facilities.ok)
    src_origin = (src[:, None] * m + np.arange(m)[None, :]).ravel()
    src_rows = np.repeat(src, m)
    geom = reached_areas(net, ReachedNodes(origin, dist.col[rr], dist.data[rr]), limits, src_origin,
                         facilities.subset(src_rows), buffer_metres=buffer_metres, n_groups=k,
                         by_faces=by_faces)
    status = anchor_status(net, facilities)
    out = pd.DataFrame({"facility": fac_r,
                        "id": np.repeat(np.arange(k) if ids is None else np.asarray(ids), m),
                        "status": status[fac_r], "metres": lim_r})
    if metres_per_minute:
        out["minutes"] = lim_r / float(metres_per_minute)
    out["area_km2"] = shapely.area(geom) / 1e6
    return gpd.GeoDataFrame(out, geometry=geom, crs=net.crs)


def _dissolved(net: WalkNetwork, sources: Anchors, limits: np.ndarray, buffer_metres: float, *,
               keep: bool = True) -> list[AreaParts]:
    """The area within each limit of the nearest source (one multi-source pass for all).

    The last few are kept with the network when to ``keep`` them: a run draws the station
    tier's area (every facility, 5 minutes) and then the 0-5 minute ring, the same area. The
    other tiers' areas are never asked for again, and at 1M nodes each holds most of a gigabyte.
    Otherwise this is their last use, and those found kept are let go.
    """
    digest = _anchors_digest(sources)
    keys = [(digest, float(x), float(buffer_metres)) for x in np.asarray(limits, dtype=float)]
    with _PARTS_LOCK:
        kept = _PARTS.setdefault(net, OrderedDict())
        found = {k: kept[k] for k in keys if k in kept}  # held here: another thread may evict them
        if not keep:
            for k in found:
                kept.pop(k, None)
    missing = sorted({k[1] for k in keys if k not in found})
    if missing:
        dist, _ = nearest(net, sources, limit_metres=max(missing))
        done = dissolved_parts(net, dist, np.array(missing), sources, buffer_metres=buffer_metres)
        new = {(digest, limit, float(buffer_metres)): parts for limit, parts in zip(missing, done, strict=True)}
        found.update(new)
        if keep:
            with _PARTS_LOCK:
                kept.update(new)
                while len(kept) > _PARTS_KEPT:
                    kept.popitem(last=False)
    return [found[k] for k in keys]


def _anchors_digest(anchors: Anchors) -> str:
    """A digest of the anchors' arrays (equal anchors, equal digest)."""
    h = hashlib.blake2b(digest_size=16)
    for a in (anchors.edge, anchors.along_m, anchors.offset_m, anchors.x, anchors.y):
        h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def tier_isochrones(net: WalkNetwork, facilities: Anchors, tiers: np.ndarray, profile: Profile, *,
                    buffer_metres: float | None = None, ids: ArrayLike | None = None,
                    per_facility: bool = True) -> dict[str, gpd.GeoDataFrame]:
    """Service areas per tier: a dissolved area per tier and each facility's own area.

    Parameters
    ----------
    net
        The walking network.
    facilities
        The facilities.
    tiers
        Each facility's tier (code, Chinese name or minutes).
    profile
        The :class:`circles.profiles.Profile`: thresholds, speed, nesting.
    buffer_metres
        Street buffer (default ``profile.street_buffer_metres``).
    ids
        Facility ids for the per-facility layer.
    per_facility
        Also draw each facility's own area (the cost grows with the facility count; the tier
        layers' does not).

    Returns
    -------
    dict of str to geopandas.GeoDataFrame
        In the network CRS (:func:`to_wgs84` for output). One layer per tier code, a single row
        (``tier``, ``name_zh``, ``name_en``, ``minutes``, ``metres``, ``facilities`` counted
        under nesting, ``area_km2``; empty when no facility counts) and, with ``per_facility``,
        ``facilities``: each facility at its own tier's threshold (columns of
        :func:`facility_isochrones` plus ``tier``).

    """
    buffer = float(profile.street_buffer_metres if buffer_metres is None else buffer_metres)
    codes = tier_codes(np.asarray(tiers), profile)
    fac_ids = np.arange(len(facilities)) if ids is None else np.asarray(ids)
    speed = float(profile.metres_per_minute)
    layers: dict[str, gpd.GeoDataFrame] = {}
    parts = []
    areas = _tier_areas(net, facilities, codes, profile, buffer)
    for tier, geom in zip(profile.tiers, areas, strict=True):
        metres = float(profile.threshold_metres(tier.code))
        eligible = np.isin(codes, list(profile.eligible(tier.code))) & facilities.ok
        layers[tier.code] = _tier_layer(tier, geom, metres, speed, int(eligible.sum()), net.crs)
        own = np.flatnonzero(codes == tier.code)
        if per_facility and len(own):
            part = facility_isochrones(net, facilities.subset(own), limit_metres=metres,
                                       buffer_metres=buffer, ids=fac_ids[own], metres_per_minute=speed)
            part["facility"] = own
            part.insert(2, "tier", tier.code)
            parts.append(part)
    if per_facility:
        layers["facilities"] = _facilities_layer(parts, net.crs)
    return layers


def _tier_areas(net: WalkNetwork, facilities: Anchors, codes: np.ndarray, profile: Profile,
                buffer: float) -> list[np.ndarray]:
    """Each tier's dissolved area (a one-element array), the tiers side by side on two threads."""
    def one(tier: Tier) -> np.ndarray:
        eligible = np.isin(codes, list(profile.eligible(tier.code))) & facilities.ok
        geom = np.empty(1, dtype=object)
        # Only the tier every facility serves is drawn again (the rings' first band).
        geom[0] = area_polygon(_dissolved(net, facilities.subset(eligible),
                                          np.array([float(profile.threshold_metres(tier.code))]),
                                          buffer, keep=bool(eligible[facilities.ok].all()))[0])
        return geom

    street_faces(net).cores(buffer)  # built once, before the threads share them
    # The largest first (the most facilities times the reach), so the two threads end together.
    work = [np.isin(codes, list(profile.eligible(t.code))).sum() * profile.threshold_metres(t.code) ** 2
            for t in profile.tiers]
    order = np.argsort(work, kind="stable")[::-1]
    with ThreadPoolExecutor(_THREADS) as pool:  # GEOS and NumPy free the GIL
        done = list(pool.map(one, [profile.tiers[k] for k in order]))
    out: list[np.ndarray] = [np.empty(0)] * len(done)
    for k, geom in zip(order, done, strict=True):
        out[k] = geom
    return out


def _tier_layer(tier: Tier, geom: np.ndarray, metres: float, speed: float, n_facilities: int,
                crs: pyproj.CRS) -> gpd.GeoDataFrame:
    """The one-row layer of a tier's dissolved area."""
    return gpd.GeoDataFrame(
        {"tier": [tier.code], "name_zh": [tier.name_zh], "name_en": [tier.name_en],
         "minutes": [metres / speed], "metres": [metres], "facilities": [n_facilities],
         "area_km2": shapely.area(geom) / 1e6}, geometry=geom, crs=crs)


def _facilities_layer(parts: list[gpd.GeoDataFrame], crs: pyproj.CRS) -> gpd.GeoDataFrame:
    """Every facility's own area, in facility order (an empty layer with the columns if none)."""
    if parts:
        fac = pd.concat(parts, ignore_index=True).sort_values("facility", kind="stable")
        return gpd.GeoDataFrame(fac.reset_index(drop=True), geometry="geometry", crs=crs)
    return gpd.GeoDataFrame(
        {"facility": [], "id": [], "tier": [], "status": [], "metres": [], "minutes": [],
         "area_km2": []}, geometry=[], crs=crs)


def distance_bands(net: WalkNetwork, facilities: Anchors, *, minutes: Sequence[float] = (5, 10, 15),
                   profile: str | Path | Profile | None = None,
                   buffer_metres: float | None = None) -> gpd.GeoDataFrame:
    """Rings of walking time from the nearest facility: 0-5, 5-10, 10-15 minutes.

    Parameters
    ----------
    net
        The walking network.
    facilities
        The facilities (all of them count; pass a subset for one tier or one facility).
    minutes
        The band limits, increasing.
    profile
        The profile (name, file or :class:`Profile`; default ``deyang``) for the walking speed
        and the street buffer.
    buffer_metres
        Street buffer (default ``profile.street_buffer_metres``).

    Returns
    -------
    geopandas.GeoDataFrame
        In the network CRS, one row per band: ``band`` (``"0-5"``...), ``from_minutes``,
        ``to_minutes``, ``from_metres``, ``to_metres``, ``area_km2``; each geometry is the area
        within ``to_minutes`` less the area within ``from_minutes``.

    """
    from ..readers.profiles import get_profile

    profile = get_profile(profile)
    mins = np.asarray(minutes, dtype=float)
    if len(mins) == 0 or (np.diff(mins) <= 0).any() or mins[0] <= 0:
        raise DataError(f"band limits must be positive and increasing, got {list(minutes)}",
                        field="minutes", fix="give limits such as 5, 10, 15")
    speed = float(profile.metres_per_minute)
    buffer = float(profile.street_buffer_metres if buffer_metres is None else buffer_metres)
    # Each ring is the larger area less the smaller, from their grown regions and holes (their
    # last use: none is kept).
    rings = ring_polygons(_dissolved(net, facilities, mins * speed, buffer, keep=False))
    lo = np.concatenate([[0.0], mins[:-1]])
    out = pd.DataFrame({"band": [f"{a:g}-{b:g}" for a, b in zip(lo, mins, strict=True)], "from_minutes": lo,
                        "to_minutes": mins, "from_metres": lo * speed, "to_metres": mins * speed,
                        "area_km2": shapely.area(rings) / 1e6})
    return gpd.GeoDataFrame(out, geometry=rings, crs=net.crs)
