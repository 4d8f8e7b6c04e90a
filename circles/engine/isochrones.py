"""Service-area polygons: the reached street segments, cut exactly where time runs out, buffered.

An area is never a hull: it is the streets a person can walk within the limit, each partly
reached edge cut at the exact point along its geometry where the limit is met, buffered by a
street width, so blocks nobody can reach stay holes. Per-facility areas, a dissolved area per
tier (honouring the profile's nesting) and 0-5 / 5-10 / 10-15 minute rings all come from the same
reached pieces; for one facility or tier, a smaller limit reaches a subset of a larger one's
pieces, and each larger area is merged with the smaller one, so areas nest (up to the overlay's
floating-point noise, far below a square millimetre).

Everything is in the network CRS and in metres; :func:`to_wgs84` converts a layer for output.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse

from ..errors import DataError
from .network import WalkNetwork
from .routing import Anchors, anchor_status, check_anchors, nearest, reach, tier_codes

__all__ = ["FACILITY_AREAS_DEFAULT", "distance_bands", "facility_area_cap", "facility_areas_note",
           "facility_isochrones", "tier_isochrones", "to_wgs84"]

#: Per-facility areas are drawn for up to this many facilities unless asked otherwise: their cost
#: grows with the count (a POI dump of 100,000 facilities needs hours and gigabytes), while the
#: coverage figures, the dissolved tier areas and the rings do not need them.
FACILITY_AREAS_DEFAULT = 2000

_QUAD_SEGS = 4  # arc segments per quarter circle at ends and bends: 30 m buffer, <= 0.6 m off
_THREADS = 2  # GEOS releases the GIL in shapely's vectorised functions
_EPS_M = 1e-9
_INCIDENCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def facility_areas_note(n_facilities: int, value: str | int | None = None) -> dict:
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
                        ids: Sequence | None = None, metres_per_minute: float | None = None
                        ) -> gpd.GeoDataFrame:
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
    geom = _areas(net, origin, dist.col[rr], dist.data[rr], limits, src_origin,
                  facilities.subset(src_rows), buffer_metres, k)
    status = anchor_status(net, facilities)
    out = pd.DataFrame({"facility": fac_r,
                        "id": np.repeat(np.arange(k) if ids is None else np.asarray(ids), m),
                        "status": status[fac_r], "metres": lim_r})
    if metres_per_minute:
        out["minutes"] = lim_r / float(metres_per_minute)
    out["area_km2"] = shapely.area(geom) / 1e6
    return gpd.GeoDataFrame(out, geometry=geom, crs=net.crs)


def _dissolved(net: WalkNetwork, sources: Anchors, limits: np.ndarray, buffer_metres: float
               ) -> np.ndarray:
    """One polygon per limit: the area within each limit of the nearest source."""
    limits = np.asarray(limits, dtype=float)
    dist, _ = nearest(net, sources, limit_metres=float(limits.max()) if len(limits) else 0.0)
    node = np.flatnonzero(np.isfinite(dist))
    within = dist[node][:, None] <= limits[None, :]
    nn, jj = np.nonzero(within)
    src = np.flatnonzero(sources.ok)
    m = len(limits)
    return _areas(net, jj, node[nn], dist[node[nn]], limits, np.tile(np.arange(m), len(src)),
                  sources.subset(np.repeat(src, m)), buffer_metres, 1)


def tier_isochrones(net: WalkNetwork, facilities: Anchors, tiers: np.ndarray, profile, *,
                    buffer_metres: float | None = None, ids: Sequence | None = None,
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
    ids = np.arange(len(facilities)) if ids is None else np.asarray(ids)
    speed = float(profile.metres_per_minute)
    layers: dict[str, gpd.GeoDataFrame] = {}
    parts = []
    for tier in profile.tiers:
        metres = float(profile.threshold_metres(tier.code))
        eligible = np.isin(codes, list(profile.eligible(tier.code))) & facilities.ok
        geom = _dissolved(net, facilities.subset(eligible), np.array([metres]), buffer)
        layers[tier.code] = gpd.GeoDataFrame(
            {"tier": [tier.code], "name_zh": [tier.name_zh], "name_en": [tier.name_en],
             "minutes": [metres / speed], "metres": [metres], "facilities": [int(eligible.sum())],
             "area_km2": shapely.area(geom) / 1e6}, geometry=geom, crs=net.crs)
        own = np.flatnonzero(codes == tier.code)
        if per_facility and len(own):
            part = facility_isochrones(net, facilities.subset(own), limit_metres=metres,
                                       buffer_metres=buffer, ids=ids[own], metres_per_minute=speed)
            part["facility"] = own
            part.insert(2, "tier", tier.code)
            parts.append(part)
    if not per_facility:
        return layers
    if parts:
        fac = pd.concat(parts, ignore_index=True).sort_values("facility", kind="stable")
        layers["facilities"] = gpd.GeoDataFrame(fac.reset_index(drop=True), geometry="geometry",
                                                crs=net.crs)
    else:
        layers["facilities"] = gpd.GeoDataFrame(
            {"facility": [], "id": [], "tier": [], "status": [], "metres": [], "minutes": [],
             "area_km2": []}, geometry=[], crs=net.crs)
    return layers


def distance_bands(net: WalkNetwork, facilities: Anchors, *, minutes: Sequence[float] = (5, 10, 15),
                   profile=None, buffer_metres: float | None = None) -> gpd.GeoDataFrame:
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
    areas = _dissolved(net, facilities, mins * speed, buffer)
    # Each area is built as a union that includes the one inside it, so they nest.
    rings = shapely.difference(areas, np.concatenate([[shapely.Polygon()], areas[:-1]]))
    lo = np.concatenate([[0.0], mins[:-1]])
    out = pd.DataFrame({"band": [f"{a:g}-{b:g}" for a, b in zip(lo, mins, strict=True)], "from_minutes": lo,
                        "to_minutes": mins, "from_metres": lo * speed, "to_metres": mins * speed,
                        "area_km2": shapely.area(rings) / 1e6})
    return gpd.GeoDataFrame(out, geometry=rings, crs=net.crs)


# --- reached pieces and polygons -----------------------------------------------------------------

def _areas(net: WalkNetwork, origin: np.ndarray, node: np.ndarray, dist: np.ndarray,
           limits: np.ndarray, src_origin: np.ndarray, src: Anchors, buffer_metres: float,
           n_groups: int) -> np.ndarray:
    """Buffered reached streets of each group (a facility, or all facilities) at each limit.

    Parameters
    ----------
    net
        The walking network.
    origin, node, dist
        Reached nodes: their origin ``group * len(limits) + level`` and their distance (within
        that level's limit).
    limits
        The limits in metres, increasing.
    src_origin, src
        The sources of each origin (for the stretch of their own edge and the walk to it).
    buffer_metres
        The street buffer.
    n_groups
        Number of groups; the result has ``n_groups * len(limits)`` polygons.

    """
    m = len(limits)
    lim_o = np.tile(limits, n_groups)
    p_origin, edge, t0, t1 = _pieces(net, origin, node, dist, lim_o, src_origin, src)
    lines = _substrings(net, edge, t0, t1)
    # The off-network walk from each source to its street belongs to its area too.
    if src.x is not None and len(src):
        sx, sy = src.snap_xy(net)
        ok = src.ok & np.isfinite(src.x) & (src.offset_m > 0) & (src.offset_m <= lim_o[src_origin])
        walk = shapely.linestrings(np.stack([np.column_stack([src.x[ok], src.y[ok]]),
                                             np.column_stack([sx[ok], sy[ok]])], axis=1))
        p_origin = np.concatenate([p_origin, src_origin[ok]])
        lines = np.concatenate([lines, walk])
    areas = _street_areas(p_origin, lines, n_groups * m, buffer_metres).reshape(n_groups, m)
    # A larger limit reaches a superset of the streets, so its area contains the smaller one's;
    # a union with it makes that hold exactly, where the buffers' arcs are drawn differently.
    for j in range(1, m):
        areas[:, j] = _threaded(shapely.union, areas[:, j], areas[:, j - 1])
    return areas.ravel()


def _pieces(net: WalkNetwork, origin: np.ndarray, node: np.ndarray, dist: np.ndarray,
            limit: np.ndarray, src_origin: np.ndarray, src: Anchors
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The reached stretches ``[t0, t1]`` (metres from ``u``) of each edge, per origin.

    A point ``t`` along edge ``(u, v)`` is reached when ``d(u) + t``, ``d(v) + length - t`` or,
    for a source on that edge, ``offset + |along - t|`` is within the limit: up to three
    intervals, merged where they overlap.
    """
    inc = _incidence(net)
    deg = np.diff(inc.indptr)[node]
    o = np.repeat(origin, deg)
    d = np.repeat(dist, deg)
    pos = np.repeat(inc.indptr[node], deg) + np.arange(deg.sum()) - np.repeat(np.cumsum(deg) - deg, deg)
    e = inc.indices[pos]
    from_u = inc.data[pos] > 0
    length = net.edge_length[e]
    room = limit[o] - d
    start = np.where(from_u, 0.0, np.maximum(length - room, 0.0))
    end = np.where(from_u, np.minimum(room, length), length)
    s_ok = np.flatnonzero(src.ok)
    s_e = src.edge[s_ok]
    s_room = limit[src_origin[s_ok]] - src.offset_m[s_ok]
    s_keep = s_room >= 0
    s_len = net.edge_length[s_e]
    s_a = np.minimum(src.along_m[s_ok], s_len)
    key = np.concatenate([o * net.n_edges + e, (src_origin[s_ok] * net.n_edges + s_e)[s_keep]])
    start = np.concatenate([start, np.maximum(s_a - s_room, 0.0)[s_keep]])
    end = np.concatenate([end, np.minimum(s_a + s_room, s_len)[s_keep]])
    key, start, end = _merge_intervals(key, start, end)
    return key // net.n_edges, key % net.n_edges, start, end


def _merge_intervals(key: np.ndarray, start: np.ndarray, end: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of intervals sharing a key (one row per disjoint piece)."""
    if len(key) == 0:
        return key, start, end
    order = np.lexsort((start, key))
    key, start, end = key[order], start[order], end[order]
    new_key = np.ones(len(key), dtype=bool)
    new_key[1:] = key[1:] != key[:-1]
    # Lift each key's values above every earlier key's so one running maximum serves all keys.
    lift = (np.cumsum(new_key) - 1) * (float(end.max()) + 1.0)
    reach_end = np.maximum.accumulate(end + lift) - lift
    new_piece = new_key.copy()
    new_piece[1:] |= start[1:] > reach_end[:-1]
    first = np.flatnonzero(new_piece)
    return key[first], start[first], np.maximum.reduceat(end, first)


def _incidence(net: WalkNetwork) -> sparse.csr_matrix:
    """Node × edge incidence; data 1 where the node is the edge's ``u`` end, -1 at ``v``."""
    inc = _INCIDENCE.get(net)
    if inc is None:
        e = np.arange(net.n_edges)
        inc = sparse.csr_matrix((np.concatenate([np.ones(net.n_edges), -np.ones(net.n_edges)]),
                                 (np.concatenate([net.edge_u, net.edge_v]), np.concatenate([e, e]))),
                                shape=(net.n_nodes, net.n_edges))
        _INCIDENCE[net] = inc  # a network's arrays never change once it is built
    return inc


def _substrings(net: WalkNetwork, edge: np.ndarray, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """The stretch ``[t0, t1]`` metres of each edge's geometry (whole edges reused as they are)."""
    length = net.edge_length[edge]
    out = net.edge_geometry[edge].copy()
    part = np.flatnonzero((t0 > _EPS_M) | (t1 < length - _EPS_M))
    if len(part) == 0:
        return out
    g = out[part]
    scale = shapely.length(g) / length[part]
    a, b = t0[part] * scale, t1[part] * scale
    coords, which = shapely.get_coordinates(g, return_index=True)
    step = np.hypot(*np.diff(coords, axis=0).T)
    step[which[1:] != which[:-1]] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(step)])
    cum -= cum[np.searchsorted(which, which)]  # distance along its own line
    inner = (cum > a[which]) & (cum < b[which])
    ends = shapely.get_coordinates(shapely.line_interpolate_point(np.concatenate([g, g]),
                                                                  np.concatenate([a, b])))
    n = len(part)
    pts = np.concatenate([ends[:n], coords[inner], ends[n:]])
    idx = np.concatenate([np.arange(n), which[inner], np.arange(n)])
    rank = np.concatenate([np.zeros(n), 1.0 + np.flatnonzero(inner), np.full(n, np.inf)])
    order = np.lexsort((rank, idx))
    out[part] = shapely.linestrings(pts[order], indices=idx[order])
    return out


def _threaded(func, *arrays: np.ndarray) -> np.ndarray:
    """``func`` over equal-length object arrays, in halves on two threads (GEOS frees the GIL)."""
    parts = [np.array_split(a, _THREADS) for a in arrays]
    with ThreadPoolExecutor(_THREADS) as pool:
        done = pool.map(lambda i: func(*(p[i] for p in parts)), range(_THREADS))
        return np.concatenate(list(done))


def _street_areas(group: np.ndarray, lines: np.ndarray, n: int, buffer_metres: float
                  ) -> np.ndarray:
    """The union of each group's lines buffered by ``buffer_metres``; empty where none."""
    out = np.array([shapely.Polygon()] * n, dtype=object)
    if len(lines) == 0:
        return out
    order = np.argsort(group, kind="stable")
    group, lines = group[order], lines[order]
    present = np.unique(group)
    # Cut the groups into contiguous runs of about equal work for the threads.
    counts = np.searchsorted(group, present, side="right") - np.searchsorted(group, present)
    cuts = np.searchsorted(np.cumsum(counts), np.arange(1, _THREADS) * counts.sum() / _THREADS)
    chunks = [c for c in np.split(present, cuts) if len(c)]

    def work(chunk: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(group, chunk[0])
        hi = np.searchsorted(group, chunk[-1], side="right")
        return _buffered(np.searchsorted(chunk, group[lo:hi]), lines[lo:hi], len(chunk),
                         buffer_metres)

    with ThreadPoolExecutor(len(chunks)) as pool:
        out[np.concatenate(chunks)] = np.concatenate(list(pool.map(work, chunks)))
    return out


def _buffered(group: np.ndarray, lines: np.ndarray, n: int, r: float) -> np.ndarray:
    """Buffer of each group's lines (``group`` sorted, every one of ``0..n-1`` present).

    A union of hundreds of overlapping street buffers is slow in GEOS, so the area is built
    from the faces (blocks) the lines enclose instead: within a block, a point is within ``r``
    of the streets exactly when it is within ``r`` of the block's edge or of a line inside it.
    So the area is the enclosed region grown by ``r``, less each block shrunk by ``r``, plus the
    buffers of the lines that bound no block (dead ends, partly reached edges, bridges).
    """
    # Noding first: pieces may cross without a shared node, and cuts end inside edges.
    solid = shapely.length(lines) > 0
    noded = shapely.union_all(_collect(lines[solid], group[solid], n)[:, None], axis=1)
    faces, cuts, dangles, rings = shapely.polygonize_full(noded[:, None], axis=1)
    f_parts, f_group = shapely.get_parts(faces, return_index=True)
    blocks = _collect(f_parts, f_group, n)[:, None]
    try:  # faces of one noded line set tile their region exactly: a coverage
        enclosed = shapely.coverage_union_all(blocks, axis=1)
    except shapely.errors.GEOSException:  # pragma: no cover - a robustness fallback
        enclosed = shapely.union_all(blocks, axis=1)
    # Chains of loose segments merged into one line each: fewer buffers to union.
    loose, l_group = shapely.get_parts(shapely.line_merge(shapely.union(shapely.union(
        cuts, dangles), rings)), return_index=True)
    # Pieces of zero length (a limit met exactly at a node) are points: buffered as discs.
    loose = np.concatenate([loose, lines[~solid]])
    l_group = np.concatenate([l_group, group[~solid]])
    extra = shapely.union_all(_collect(shapely.buffer(loose, r, quad_segs=_QUAD_SEGS), l_group,
                                       n)[:, None], axis=1)
    grown = shapely.union(shapely.buffer(enclosed, r, quad_segs=_QUAD_SEGS), extra)
    cores = shapely.buffer(f_parts, -r, quad_segs=_QUAD_SEGS)
    keep = ~shapely.is_empty(cores)
    cores, c_group = cores[keep], f_group[keep]
    near = shapely.intersects(cores, extra[c_group])
    cores[near] = shapely.difference(cores[near], extra[c_group[near]])
    c_parts, c_idx = shapely.get_parts(cores, return_index=True)
    c_parts, c_group = c_parts[shapely.area(c_parts) > 0], c_group[c_idx][shapely.area(c_parts) > 0]
    holes = _collect(c_parts, c_group, n, multipolygons=True)
    return shapely.difference(grown, holes)


def _collect(geoms: np.ndarray, group: np.ndarray, n: int, *, multipolygons: bool = False
             ) -> np.ndarray:
    """One collection per group ``0..n-1`` (empty where a group has nothing)."""
    empty = shapely.MultiPolygon() if multipolygons else shapely.GeometryCollection()
    out = np.array([empty] * n, dtype=object)
    if len(geoms):
        order = np.argsort(group, kind="stable")
        here, dense = np.unique(group[order], return_inverse=True)
        make = shapely.multipolygons if multipolygons else shapely.geometrycollections
        out[here] = make(geoms[order], indices=dense)
    return out
