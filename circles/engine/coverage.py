"""Coverage: who is inside each circle, who is left out, and where.

Every person read in ends in exactly one of four places per tier: covered, uncovered, off-network
(farther than the snap cap from any walkable street) or outside the study area. Every table shows
all four and they add up to the input.

The study area is the network's hull widened by the snap cap and cut at the extract's own edge
(:meth:`circles.network.WalkNetwork.study_area`). People inside it but within the largest tier's
threshold of that edge are counted and warned about: the facility nearest them may lie beyond it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError
from ..readers.profiles import Profile, get_profile
from ..readers.units import UnitLevel, unit_levels, unit_of
from .network import WalkNetwork
from .placement import attach, place
from .routing import Anchors, coverage_matrix, nearest_by_tier

__all__ = ["TABLE_COLUMNS", "CoverageResult", "compute_coverage"]

TABLE_COLUMNS = ["population", "covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop",
                 "covered_share"]
_NO_UNIT = "(no unit)"


@dataclass
class CoverageResult:
    """Walking access of every demand point to every tier, and the tables built from it.

    Attributes
    ----------
    profile : Profile
        The tiers, thresholds and standards used.
    demand : geopandas.GeoDataFrame
        One row per demand point (WGS-84): ``pop``, ``status`` (``ok``, ``off_network``,
        ``outside``), ``unit``, ``offset_m`` and per tier ``{tier}_minutes``, ``{tier}_metres``
        (``inf`` beyond the search horizon) and ``{tier}_facility`` (row of the nearest eligible
        facility, -1 when none within the horizon).
    facilities : geopandas.GeoDataFrame
        The facilities as read, with ``pop_in_circle``, ``served_pop``,
        ``m2_per_100_households`` and ``overloaded``.
    outside_extra_pop : float
        People the population reader already placed outside the study area (cells it did not
        turn into points); counted as outside.
    population_label : str
        Where the population came from; says "estimate" when it is one.
    is_estimate : bool
        True when the population is an estimate (from OSM).
    unit_levels : list of UnitLevel
        Every level of units, from the top down (:func:`circles.readers.units.unit_levels`).
    level_units : dict
        Per level name, the unit each demand point lies in (``(no unit)`` for none).
    network : WalkNetwork
        The network routed on.
    demand_anchors, facility_anchors : Anchors
        Where each demand point and facility (every row) sits on the network, for further
        routing (service categories, siting, scenarios).
    edge_pop : float or None
        People inside the study area within ``edge_metres`` of the extract's edge (``None``
        when the network has no known extent).
    edge_metres : float
        The largest tier's threshold in metres: the margin an extract needs around the people.
    notes : list of str
        Warnings raised while computing (people near the extract's edge).
    extras : dict
        Results that later steps attach (service access, proposals).

    """

    profile: Profile
    demand: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    network: WalkNetwork
    demand_anchors: Anchors
    facility_anchors: Anchors
    outside_extra_pop: float = 0.0
    population_label: str = ""
    is_estimate: bool = False
    unit_levels: list[UnitLevel] = field(default_factory=list)
    level_units: dict[str, np.ndarray] = field(default_factory=dict)
    edge_pop: float | None = None
    edge_metres: float = 0.0
    notes: list = field(default_factory=list)
    extras: dict = field(default_factory=dict)

    @property
    def units(self) -> gpd.GeoDataFrame | None:
        """The finest level's units (``unit``, ``parent``, geometry), ``None`` without units."""
        return self.unit_levels[-1].polygons[["unit", "parent", "geometry"]] if self.unit_levels else None

    @property
    def input_pop(self) -> float:
        """Everyone read in: the four categories of every table add up to this."""
        return float(self.demand["pop"].sum() + self.outside_extra_pop)

    def covered_mask(self, tier: str) -> np.ndarray:
        """Demand points within ``tier``'s threshold of an eligible facility."""
        return (self.demand["status"].to_numpy() == "ok") & (
            self.demand[f"{tier}_metres"].to_numpy() <= self.profile.threshold_metres(tier) + 1e-9)

    def account(self, mask: np.ndarray, covered: np.ndarray, weights: np.ndarray,
                extra_outside: float) -> dict:
        """The four-way account (covered, uncovered, off-network, outside) of ``weights`` over the
        rows in ``mask``; ``extra_outside`` adds people the reader placed outside."""
        status = self.demand["status"].to_numpy()
        w = weights[mask]
        st = status[mask]
        cov = covered[mask]
        covered_pop = float(w[cov].sum())
        ok_pop = float(w[st == "ok"].sum())
        offnet = float(w[st == "off_network"].sum())
        outside = float(w[st == "outside"].sum()) + extra_outside
        population = ok_pop + offnet + outside
        return {"population": population, "covered_pop": covered_pop,
                "uncovered_pop": ok_pop - covered_pop, "offnetwork_pop": offnet,
                "outside_pop": outside,
                "covered_share": covered_pop / population if population > 0 else np.nan}

    def by_tier(self) -> pd.DataFrame:
        """Coverage per tier: the columns of ``coverage_by_tier.csv``."""
        rows = []
        pop = self.demand["pop"].to_numpy(float)
        everyone = np.ones(len(pop), dtype=bool)
        for tier in self.profile.tiers:
            eligible = self.profile.eligible(tier.code)
            n_fac = int((self.facilities["tier"].isin(eligible)
                         & (self.facilities["status"] == "ok")).sum())
            rows.append({"tier": tier.code, "tier_name": tier.name_zh,
                         "threshold_minutes": round(self.profile.threshold_minutes(tier.code), 3),
                         "threshold_metres": round(self.profile.threshold_metres(tier.code), 1),
                         "facilities": n_fac,
                         **self.account(everyone, self.covered_mask(tier.code), pop,
                                     self.outside_extra_pop)})
        return pd.DataFrame(rows)

    def by_unit(self) -> pd.DataFrame:
        """Coverage per unit and tier, level by level from the top down (points in no unit of a
        level under ``(no unit)``): each level's rows add up to the city's, and to the level above."""
        pop = self.demand["pop"].to_numpy(float)
        levels = [(lv.name, list(lv.polygons["unit"].astype(str)), dict(zip(
            lv.polygons["unit"].astype(str), lv.polygons["parent"].astype(str), strict=True)))
            for lv in self.unit_levels] or [("unit", [], {})]
        frames = []
        for level, names, parents in levels:
            units = self.level_units.get(level, self.demand["unit"].astype(str).to_numpy())
            for tier in self.profile.tiers:
                table = self._account_by(units, self.covered_mask(tier.code), pop, names)
                frames.append(table.assign(
                    level=level, parent=table["unit"].map(parents).fillna(""), tier=tier.code,
                    threshold_minutes=round(self.profile.threshold_minutes(tier.code), 3),
                    threshold_metres=round(self.profile.threshold_metres(tier.code), 1)))
        out = pd.concat(frames, ignore_index=True)
        return out[["level", "unit", "parent", "tier", "threshold_minutes", "threshold_metres",
                    "population", "covered_pop", "uncovered_pop", "offnetwork_pop", "outside_pop",
                    "covered_share"]]

    def _account_by(self, units: np.ndarray, covered: np.ndarray, pop: np.ndarray,
                    names: list[str]) -> pd.DataFrame:
        """The four-way account of every unit at once (one group-by, not one pass per unit)."""
        status = self.demand["status"].to_numpy()
        frame = pd.DataFrame({"unit": units, "covered_pop": np.where(covered, pop, 0.0),
                              "ok": np.where(status == "ok", pop, 0.0),
                              "offnetwork_pop": np.where(status == "off_network", pop, 0.0),
                              "outside_pop": np.where(status == "outside", pop, 0.0)})
        sums = frame.groupby("unit", sort=False).sum()
        order = list(dict.fromkeys([*names, *sorted(set(units) - set(names))]))
        sums = sums.reindex(order, fill_value=0.0)
        if self.outside_extra_pop or _NO_UNIT in sums.index:
            sums.loc[_NO_UNIT, "outside_pop"] = sums["outside_pop"].get(_NO_UNIT, 0.0) + self.outside_extra_pop
            sums = sums.fillna(0.0)
        sums["population"] = sums["ok"] + sums["offnetwork_pop"] + sums["outside_pop"]
        sums["uncovered_pop"] = sums["ok"] - sums["covered_pop"]
        with np.errstate(invalid="ignore", divide="ignore"):
            sums["covered_share"] = np.where(sums["population"] > 0, sums["covered_pop"] / sums["population"], np.nan)
        return sums.rename_axis("unit").reset_index()

    def facility_table(self) -> pd.DataFrame:
        """Each facility: tier, floor area, population in its circle and served, m² per 100
        households, overloaded (the columns of ``facilities.csv``), then, once provision is solved
        (``extras["provision"]``), its capacity, people assigned in its own tier, utilisation and
        the capacity it would need added."""
        fac = self.facilities
        lon, lat = fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy()
        cols = [c for c in ("facility_id", "name", "tier", "tier_name", "status", "floor_area_m2",
                            "households_capacity", "pop_in_circle", "served_pop",
                            "served_households", "m2_per_100_households", "overloaded")
                if c in fac.columns]
        table = pd.DataFrame(fac[cols]).assign(lon=np.round(lon, 7), lat=np.round(lat, 7))
        prov = self.extras.get("provision")
        return table if prov is None else table.join(prov.facility_columns())

    def study_area_summary(self) -> dict:
        """Where the study area stops and who lives near that edge (for the run manifest)."""
        rep = self.network.report
        return {"extent": rep.get("extent", "none"), "extent_bounds_wgs84": rep.get("extent_bounds_wgs84"),
                "outside_pop": round(float(self.demand["pop"][self.demand["status"] == "outside"].sum())
                                     + self.outside_extra_pop, 1),
                "edge_metres": round(self.edge_metres, 1),
                "edge_pop": None if self.edge_pop is None else round(self.edge_pop, 1), "notes": list(self.notes)}

    def summary_text(self) -> str:
        """The per-tier table as text for the terminal."""
        t = self.by_tier()
        lines = [f"population: {self.input_pop:,.0f} ({self.population_label})"]
        lines.append(f"{'tier':10s} {'minutes':>7s} {'metres':>7s} {'fac.':>5s} {'covered':>10s} "
                     f"{'uncovered':>10s} {'off-net':>8s} {'outside':>8s} {'share':>6s}")
        for r in t.itertuples():
            lines.append(f"{r.tier:10s} {r.threshold_minutes:7.1f} {r.threshold_metres:7.0f} "
                         f"{r.facilities:5d} {r.covered_pop:10,.0f} {r.uncovered_pop:10,.0f} "
                         f"{r.offnetwork_pop:8,.0f} {r.outside_pop:8,.0f} {r.covered_share:6.1%}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def facility_anchors(facilities: gpd.GeoDataFrame, net: WalkNetwork, profile: Profile
                     ) -> tuple[gpd.GeoDataFrame, Anchors]:
    """Snap facilities (WGS-84) to ``net`` (see :func:`circles.engine.placement.attach`); returns the
    frame with ``status`` and anchors for every row."""
    fac = attach(facilities, net, profile)
    snap = fac[["edge", "along_m", "offset_m"]].assign(snapped=fac["edge"].to_numpy() >= 0)
    return fac, Anchors.from_snap(snap)


def compute_coverage(net: WalkNetwork, facilities: gpd.GeoDataFrame, demand, *,
                     profile: Profile | str | None = None,
                     units: gpd.GeoDataFrame | list[gpd.GeoDataFrame] | None = None,
                     unit_column: str | None = None, horizon_factor: float = 2.0,
                     facility_areas: str | int | None = None) -> CoverageResult:
    """Walking access from every demand point to the nearest facility of each tier.

    Parameters
    ----------
    net
        The walking network.
    facilities
        Facilities in WGS-84 with ``tier`` codes (as returned by ``read_facilities``).
    demand
        A :class:`circles.population.Demand` (or a GeoDataFrame of points with ``pop``).
    profile
        The profile (default ``deyang``).
    units
        Administrative unit polygons (any CRS) for the per-unit table: one layer (a ``level`` /
        层级 column splits it into levels, a ``parent`` / 上级 column names each unit's parent), or
        one layer per level from the top down (街道, 社区, 网格...; see
        :func:`circles.readers.units.unit_levels`).
    unit_column
        The column naming each unit (default: the first of unit/name/名称/社区...).
    horizon_factor
        Times are computed up to this multiple of each tier's threshold; farther is ``inf``
        (reported as "more than").
    facility_areas
        Each facility's own circle (``pop_in_circle``) is counted for up to this many usable
        facilities (``all``, ``none`` or a count; default
        :data:`circles.isochrones.FACILITY_AREAS_DEFAULT`), beyond it left empty: it costs a
        routing pass per overlapping facility. Coverage, ``served_pop`` and ``overloaded`` do not
        depend on it.

    Returns
    -------
    CoverageResult

    """
    profile = get_profile(profile)
    points, outside_extra, label, is_estimate = _demand_parts(demand)
    pts = points.to_crs(4326) if points.crs is not None else points.set_crs(4326)
    # Beyond the study area (which stops at the extract's edge) people are outside, not uncovered.
    placed = place(net, pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy(), profile=profile,
                   crs="wgs84")
    x, y, snap, status, inside = placed.x, placed.y, placed.snap, placed.status, placed.inside
    fac, fac_anchors = facility_anchors(facilities, net, profile)
    usable = fac["status"].to_numpy() == "ok"
    demand_anchors = Anchors.from_snap(snap)
    out = pts.assign(status=status, offset_m=snap["offset_m"].to_numpy())
    times = _tier_times(net, fac, fac_anchors, demand_anchors, profile, horizon_factor=horizon_factor)
    for col in times.columns:
        # Nobody off the network or outside reaches a facility, whatever the snap found.
        out[col] = np.where(status == "ok", times[col].to_numpy(), -1 if col.endswith("_facility") else np.inf)
    levels, level_units = _assign_units(units, out, unit_column)
    out["unit"] = level_units[levels[-1].name] if levels else _NO_UNIT
    edge_metres = max(profile.threshold_metres(t.code) for t in profile.tiers)
    edge_pop, notes = _edge_population(net, x, y, inside, out["pop"].to_numpy(float), edge_metres)
    result = CoverageResult(profile=profile, demand=out, facilities=fac, network=net,
                            outside_extra_pop=outside_extra, population_label=label,
                            is_estimate=is_estimate, unit_levels=levels, level_units=level_units,
                            demand_anchors=demand_anchors, facility_anchors=fac_anchors,
                            edge_pop=edge_pop, edge_metres=edge_metres, notes=notes)
    from .isochrones import facility_areas_note

    own = bool(facility_areas_note(int(usable.sum()), facility_areas)["written"])
    _facility_loads(result, fac_anchors, demand_anchors, own_circles=own)
    return result


def _tier_times(net: WalkNetwork, fac: gpd.GeoDataFrame, fac_anchors: Anchors, demand_anchors: Anchors,
                profile: Profile, *, horizon_factor: float) -> pd.DataFrame:
    """Metres to the nearest usable facility of each tier (nesting honoured) and its row in ``fac``."""
    usable = fac["status"].to_numpy() == "ok"
    tiers = fac["tier"].astype(str).to_numpy()
    limit = horizon_factor * max(profile.threshold_metres(t.code) for t in profile.tiers)
    times = nearest_by_tier(net, fac_anchors.subset(usable), tiers[usable], profile,
                            targets=demand_anchors, limit_metres=limit)
    # Facility columns index the usable subset; map back to rows of the facility frame.
    rows = np.flatnonzero(usable)
    for tier in profile.tiers:
        col = f"{tier.code}_facility"
        idx = times[col].to_numpy()
        times[col] = np.where(idx >= 0, rows[np.maximum(idx, 0)] if len(rows) else -1, -1)
    return times


def _edge_population(net: WalkNetwork, x: np.ndarray, y: np.ndarray, inside: np.ndarray,
                     pop: np.ndarray, metres: float) -> tuple[float | None, list[str]]:
    """People in the study area within ``metres`` of the extract's edge, and the warning.

    Their figures are only as good as the extract past its edge: a facility just beyond it, or the
    streets to it, are not in the data, so they may show as uncovered or farther than they are.
    """
    if net.extent is None:
        return None, []
    core = net.extent.buffer(-metres)
    shapely.prepare(core)
    near = inside & ~shapely.contains_xy(core, x, y)
    edge_pop = float(np.nan_to_num(pop[near]).sum())
    if edge_pop <= 0:
        return 0.0, []
    margin_km = math.ceil(metres / 100 - 1e-9) / 10
    note = (f"{edge_pop:,.0f} people live within {metres:,.0f} m of the extract's edge; their nearest "
            f"facility may lie beyond it: use an extract with a margin of at least {margin_km:.1f} km")
    warnings.warn(note, UserWarning, stacklevel=3)
    return edge_pop, [note]


def _demand_parts(demand) -> tuple[gpd.GeoDataFrame, float, str, bool]:
    if isinstance(demand, gpd.GeoDataFrame):
        if "pop" not in demand.columns:
            raise DataError("the demand points have no 'pop' column", field="pop",
                            fix="give each point its population in a 'pop' column")
        return demand, 0.0, "demand points", False
    excluded = getattr(demand, "excluded", None)
    outside = 0.0
    if excluded is not None and len(excluded):
        reason = excluded["reason"].astype(str).str.lower()
        pops = pd.to_numeric(excluded["pop"], errors="coerce").fillna(0).clip(lower=0)
        outside = float(pops[reason.str.contains("outside")].sum())
    return demand.points, outside, getattr(demand, "label", ""), bool(getattr(demand, "is_estimate", False))


def _assign_units(units, points: gpd.GeoDataFrame, unit_column: str | None
                  ) -> tuple[list[UnitLevel], dict[str, np.ndarray]]:
    """The levels of ``units`` (one layer or one per level) and the unit of each point at each level."""
    if units is None:
        return [], {}
    given = isinstance(units, list) and len(units) > 0 and isinstance(units[0], UnitLevel)
    levels = units if given else unit_levels(units, unit_column=unit_column)
    return levels, {lv.name: unit_of(points.geometry, lv.polygons, missing=_NO_UNIT) for lv in levels}


def _facility_loads(result: CoverageResult, fac_anchors: Anchors, demand_anchors: Anchors, *,
                    own_circles: bool = True) -> None:
    """Population within each facility's own circle (when ``own_circles``; else NaN) and
    population it serves as the nearest."""
    fac = result.facilities
    profile = result.profile
    pop = result.demand["pop"].to_numpy(float)
    ok = result.demand["status"].to_numpy() == "ok"
    in_circle = np.zeros(len(fac)) if own_circles else np.full(len(fac), np.nan)
    served = np.zeros(len(fac))
    usable = fac["status"].to_numpy() == "ok"
    for tier in profile.tiers:
        rows = np.flatnonzero(usable & (fac["tier"].to_numpy() == tier.code))
        if len(rows) == 0:
            continue
        if own_circles:
            m = coverage_matrix(result.network, fac_anchors.subset(_mask(len(fac), rows)),
                                demand_anchors, limit_metres=profile.threshold_metres(tier.code))
            in_circle[rows] = np.asarray(m.astype(bool) @ np.where(ok, pop, 0.0)).ravel()
        # A higher-tier complex nearest for this tier serves it too (nesting), but its load is
        # counted under its own tier only, so nobody is counted twice for one facility.
        nearest = result.demand[f"{tier.code}_facility"].to_numpy()
        hit = result.covered_mask(tier.code) & (nearest >= 0)
        load = np.bincount(nearest[hit], weights=pop[hit], minlength=len(fac))
        served[rows] = load[rows]
    pph = profile.persons_per_household
    fac["pop_in_circle"] = np.round(in_circle, 1)
    fac["served_pop"] = np.round(served, 1)
    fac["served_households"] = np.round(served / pph, 1)
    area = pd.to_numeric(fac.get("floor_area_m2", pd.Series(np.nan, index=fac.index)), errors="coerce")
    with np.errstate(divide="ignore", invalid="ignore"):
        per100 = area.to_numpy(float) / (served / pph) * 100
    fac["m2_per_100_households"] = np.where(served > 0, np.round(per100, 2), np.nan)
    need = float(profile.standards.get("floor_area_m2_per_100_households", 30))
    fac["overloaded"] = np.where(np.isfinite(fac["m2_per_100_households"]),
                                 fac["m2_per_100_households"] < need, False)


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[rows] = True
    return m
