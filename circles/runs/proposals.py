"""Proposals for a coverage run: candidates, the solver, an explained list of sites and the
before/after scenario, written into the run folder.

Under a capacity (``--capacity``) the existing complexes keep theirs: the people a new site can
gain are those provision leaves unserved at the siting tier (within reach of a full complex, or
of none), and each new site serves at most its own capacity. The greedy's claim is a feasible
assignment of the provision model with the new sites added, so provision re-solved with the first
k proposals serves at least the people claimed; both are reported.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..engine.capacity import capacity_rule, people_for_floor_area
from ..engine.placement import snap_cap_metres
from ..engine.provision_tiers import ProvisionResult, provision
from ..engine.routing import Anchors, coverage_matrix, nearest
from ..engine.siting import (
    CoverageTarget,
    MaximalCovering,
    served_with_sites,
    unserved_pop,
)
from ..errors import DataError
from ..outputs.tables import write_csv, write_layers
from ..readers.crs import from_wgs84
from ..readers.options import known_options
from .candidates import candidate_anchors

__all__ = ["SiteRequest", "candidate_anchors", "propose", "scenario_table"]


@dataclass(frozen=True)
class SiteRequest:
    """What to site: the options of :func:`circles.site_run` (``--new``/``--target``...).

    Attributes
    ----------
    tier
        The tier of the new sites (default ``station``); only people not covered for it count
        (under ``capacity``: not served).
    new, target
        How many sites (maximal covering), or the coverage share to reach (fewest sites).
    exact
        Solve the maximal covering exactly (HiGHS, within ``time_limit_s``) instead of greedily.
    seconds
        The default solver's time budget: it stops sooner when its answer is proven optimal,
        otherwise it searches until then and states the gap to its proven bound.
    candidates, crs, spacing_metres
        A file of candidate sites (coordinates in ``crs``); default: network nodes, one per
        ``spacing_metres`` square.
    capacity
        Each new site serves at most the people its floor area provides for, and the existing
        complexes at most theirs: the sites go where people are left unserved, within reach of
        a full complex or of none, and provision is re-solved with them to check the gains.
    time_limit_s
        Seconds the exact solver (and the LP bound) may take.
    landuse
        Keep only candidates on these land-use types (see :func:`candidate_anchors`).
    service
        Site for a service category instead of a tier (its threshold, its population group,
        the people who lack it); needs the run's service access (``--services``).
    gcj02
        Also give GCJ-02 coordinates (for Amap).
    write
        Write the files into the run folder (``False``: only return the proposals, e.g. to
        compare solvers in a notebook).

    """

    tier: str = "station"
    new: int | None = None
    target: float | None = None
    exact: bool = False
    seconds: float = 2.0
    candidates: str | Path | None = None
    crs: str = "wgs84"
    capacity: bool = False
    time_limit_s: float = 60.0
    spacing_metres: float = 100.0
    landuse: list[str] | str | None = None
    service: str | None = None
    gcj02: bool = True
    write: bool = True

    @classmethod
    def of(cls, request: SiteRequest | None = None, **options) -> SiteRequest:
        """``request`` (default: the defaults) with ``options`` set; an unknown option is an error."""
        return replace(request or cls(), **known_options(cls, options, what="siting"))

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SiteRequest:
        """The request of ``circles site``'s arguments."""
        return cls(tier=args.tier, new=args.new, target=args.target, exact=args.exact, seconds=args.seconds,
                   candidates=args.candidates, crs=args.crs, capacity=args.capacity,
                   time_limit_s=args.time_limit,
                   landuse=args.landuse.split(",") if args.landuse else None, service=args.service)

    @classmethod
    def from_config(cls, block: dict) -> SiteRequest:
        """The request of an audit city's ``site:`` block (its keys are this class's fields)."""
        return cls.of(**block)

    def refusal(self) -> str | None:
        """Why no siting can answer this request (in ``circles site``'s flags), or ``None``.
        Asked before any run folder exists, so a refused request leaves nothing behind."""
        if (self.new is None) == (self.target is None):
            return "give either --new N or --target SHARE"
        if self.new is not None and self.new < 1:
            return f"--new {self.new}: give at least one new site, e.g. --new 5"
        if self.target is not None and not 0 < self.target <= 1:
            return f"--target {self.target}: give a share in (0, 1], e.g. --target 0.9 for 90%"
        return None


def _capacity(profile, tier: str, floor_area: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """People each candidate can serve: its floor area ÷ the floor area per 100 households ×
    persons per household; a candidate without a floor area gets the tier's minimum.

    Returns
    -------
    capacity_pop, floor_area_m2, statement
        Per candidate, and one sentence naming the rule and the floor area assumed.

    """
    t = profile.tier(tier)
    if t.min_floor_area_m2:
        assumed, source = float(t.min_floor_area_m2), f"the profile's minimum for a {t.code} (tiers.{t.code}.min_floor_area_m2)"
    else:
        # No document sets a complex's size; a new site brings at least the space a community must have.
        assumed = float(profile.standards.get("min_community_space_m2", 300.0))
        source = "the space every community must have: standards.min_community_space_m2"
    area = np.where(np.isfinite(floor_area), floor_area, assumed)
    cap = people_for_floor_area(area, profile)
    given = int(np.isfinite(floor_area).sum())
    rule = capacity_rule(profile)
    if given == len(floor_area):
        return cap, area, rule + " (floor areas from the candidate file)"
    where = "every candidate" if given == 0 else f"the {len(floor_area) - given:,} candidates without one"
    return cap, area, (f"{rule}; floor area assumed {assumed:g} m² for {where} ({source}), "
                       f"so {float(people_for_floor_area(assumed, profile)):,.0f} people a site")


def _check_request(new, target) -> None:
    """Refuse a request no siting can answer, before any work."""
    if (new is None) == (target is None):
        raise DataError("give either the number of new sites or a target share", field="new/target",
                        fix="use --new 5 or --target 0.9")
    if new is not None and (isinstance(new, bool) or not float(new).is_integer() or new < 1):
        raise DataError(f"the number of new sites must be a whole number >= 1, not {new!r}", field="new",
                        fix="ask for at least one site, e.g. --new 5")
    if target is not None and not 0 < float(target) <= 1:
        raise DataError(f"the target share {target} is not in (0, 1]", field="target",
                        fix="give a share of everyone, e.g. --target 0.9 for 90%")


def propose(run, request: SiteRequest | None = None, **options) -> gpd.GeoDataFrame:
    """Choose new sites for ``run`` (a :class:`circles.pipeline.RunOutput`) and write
    ``proposals.csv``, ``proposals.gpkg`` and ``scenario_comparison.csv`` into its folder.

    Parameters
    ----------
    run
        A finished coverage run.
    request
        What to site (:class:`SiteRequest`).
    **options
        Fields of :class:`SiteRequest` set on ``request`` (``tier``, ``new``, ``target``,
        ``exact``, ``candidates``, ``crs``, ``capacity``, ``time_limit_s``, ``spacing_metres``,
        ``landuse``, ``service``, ``gcj02``, ``write``).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per site in rank order, with ``attrs["scenario"]`` (coverage before and after) and
        ``attrs["explanation"]``; under ``capacity`` also the served claimed and re-solved
        (``new_served_pop``, ``provision_gain_pop``, ``served_after_pop``).

    """
    req = SiteRequest.of(request, **options)
    if req.service is not None:
        return _propose_service(run, req)
    result, profile = run.result, run.result.profile
    code = profile.tier(req.tier).code
    _check_request(req.new, req.target)
    cand, lon, lat, floor = candidate_anchors(result, candidates=req.candidates, crs=req.crs,
                                              spacing_metres=req.spacing_metres, landuse=req.landuse)
    matrix = coverage_matrix(result.network, cand, result.demand_anchors,
                             limit_metres=profile.threshold_metres(code))
    pop, already = result.demand["pop"].to_numpy(float), result.covered_mask(code)
    cap, area, cap_text = _capacity(profile, code, floor) if req.capacity else (None, None, "")
    before = _provision_of(result) if req.capacity else None
    model, solver = _solve(matrix, pop, req, already=already, capacity=cap,
                           offnetwork=float(pop[result.demand["status"].to_numpy() == "off_network"].sum()),
                           unserved=None if before is None else _left(before, code))
    explanation = "; ".join(t for t in (model.explanation, cap_text) if t)
    sel = model.selected
    # Under a capacity the model counts the unserved; coverage is still what the sites newly reach.
    gains = model.gains if cap is None else _covered_gains(matrix, pop, already, cap, sel)
    total = result.input_pop
    cum = (float(pop[already].sum()) + np.cumsum(gains)) / total if total else np.full(len(sel), np.nan)
    out = pd.DataFrame({"rank": np.arange(1, len(sel) + 1), "lon": np.round(lon[sel], 7), "lat": np.round(lat[sel], 7),
                        "tier": code, "new_covered_pop": np.round(gains, 1), "cumulative_covered_share": np.round(cum, 5),
                        "nearest_existing_minutes": np.round(_nearest_existing(result, code, cand, sel), 2),
                        "solver": solver})
    siting = {"tier": code, "candidates": len(cand), "capacity_pop": None if cap is None else float(np.median(cap)),
              "capacity_rule": cap_text}
    if cap is not None:
        out["floor_area_m2"] = area[sel]
        out["floor_area_source"] = np.where(np.isfinite(floor[sel]), "candidate file", "assumed (profile minimum)")
        out["capacity_pop"] = np.round(cap[sel], 1)
        served = served_with_sites(before, code, cand.subset(sel), cap[sel])
        siting.update(_served_columns(out, model.gains, served), new_covered_pop=float(gains.sum()))
        explanation = "; ".join(t for t in (explanation, _served_text(before, code, served)) if t)
    gdf = _geo(out, result, req.gcj02)
    return _keep(run, req, gdf, scenario_table(run, gdf, provided=before), model, solver, explanation, siting)


def _provision_of(result) -> ProvisionResult:
    """Provision of the existing complexes: the coverage run's own when it has one."""
    got = result.extras.get("provision")
    return got if isinstance(got, ProvisionResult) else provision(result)


def _left(before: ProvisionResult, code: str) -> tuple[np.ndarray, float]:
    """People left unserved per demand point, and the people served, at tier ``code``."""
    return unserved_pop(before, code), float(before.served[code].sum())


def _covered_gains(matrix, pop: np.ndarray, already: np.ndarray, cap: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """People each site (rank order) newly brings within reach, serving at most its capacity."""
    return MaximalCovering.from_cost_matrix(matrix, pop, already_covered=already, capacity=cap).evaluate(sel)


def _served_columns(out: pd.DataFrame, claimed: np.ndarray, served: np.ndarray) -> dict:
    """The claim and the re-solved provision per proposal (columns of ``out``) and in all."""
    out["new_served_pop"] = np.round(claimed, 1)
    out["provision_gain_pop"] = np.round(np.diff(served), 1)
    out["served_after_pop"] = np.round(served[1:], 1)
    return {"served_before_pop": float(served[0]), "served_after_pop": float(served[-1]),
            "new_served_pop": float(np.sum(claimed)), "provision_gain_pop": float(served[-1] - served[0])}


def _served_text(before: ProvisionResult, code: str, served: np.ndarray) -> str:
    """One sentence: the existing complexes' capacities and the people served before and after."""
    fac = before.coverage.facilities
    usable = (fac["status"] == "ok").to_numpy() & fac["tier"].isin(before.coverage.profile.eligible(code)).to_numpy()
    counts = pd.Series(before.capacity_source[usable]).value_counts()
    said = ", ".join(f"{int(n):,} from {k}" for k, n in counts.items()) or "none"
    return (f"existing complexes keep their capacities ({said}); served at the {code} tier under "
            f"provision: {served[0]:,.0f} before, {served[-1]:,.0f} after the {len(served) - 1} new "
            f"site{'' if len(served) == 2 else 's'} (re-solved)")


def _nearest_existing(result, code: str, cand: Anchors, sel: np.ndarray) -> np.ndarray:
    """Minutes from each selected site (rank order) to the nearest existing facility serving ``code``."""
    profile, fac = result.profile, result.facilities
    eligible = np.isin(fac["tier"].to_numpy(), profile.eligible(code)) & (fac["status"].to_numpy() == "ok")
    if not eligible.any() or not len(sel):
        return np.full(len(sel), np.nan)
    # Targets in rank order (an index array, not a mask), so each figure is its own site's.
    metres, _ = nearest(result.network, result.facility_anchors.subset(eligible), limit_metres=None,
                        targets=cand.subset(sel))
    return np.where(np.isfinite(metres), metres / profile.metres_per_minute, np.nan)


def _keep(run, req: SiteRequest, gdf: gpd.GeoDataFrame, scen: pd.DataFrame, model, solver: str,
          explanation: str, siting: dict) -> gpd.GeoDataFrame:
    """Attach the scenario and explanation; record the siting in the run and, unless asked not to,
    write ``proposals.csv``, ``proposals.gpkg`` and ``scenario_comparison.csv``."""
    gdf.attrs.update(scenario=scen, explanation=explanation)
    if not req.write:
        return gdf
    run.manifest.set("siting", {**siting, "new": req.new, "target": req.target, "solver": solver,
                                "selected": len(model.selected),
                                "new_covered_pop": siting.get("new_covered_pop", float(model.gains.sum())),
                                "explanation": explanation})
    run.extras.update(proposals=gdf, siting_model=model, explanation=explanation)
    write_csv(pd.DataFrame(gdf.drop(columns="geometry")), run.folder / "proposals.csv")
    write_layers({"proposals": gdf}, run.folder / "proposals.gpkg")
    write_csv(scen, run.folder / "scenario_comparison.csv")
    return gdf


def _solve(matrix, weights, req: SiteRequest, *, already, capacity=None, offnetwork=0.0, unserved=None):
    """The solver for a request and its one-line description (objective, bound, gap).

    ``unserved`` (people left unserved per point, people served) makes the model count those
    instead of the people not ``already`` covered, as siting under provision does.
    """
    if req.target is None:
        model = MaximalCovering.from_cost_matrix(matrix, weights, already_covered=already, capacity=capacity)
    else:
        model = CoverageTarget.from_cost_matrix(matrix, weights, already_covered=already, capacity=capacity,
                                                offnetwork_pop=offnetwork)
    if unserved is not None:
        # A point within reach of a full complex still has people to gain, some of its people.
        model.problem = replace(model.problem, weights=unserved[0], already=unserved[1])
    if req.target is None:
        model.solve(int(req.new), method="exact" if req.exact else "greedy", seconds=req.seconds,
                    time_limit_s=req.time_limit_s)
        text = (f"{model.solver}; objective {model.objective:,.0f}, proven bound "
                f"{model.upper_bound:,.0f}, gap {model.gap:.2%}")
    else:
        model.solve(float(req.target), time_limit_s=min(req.time_limit_s, 3.0))
        text = model.solver
    if unserved is not None:  # the model's people left are the unserved: say so
        model.explanation = model.explanation.replace("covered", "served")
    return model, text


def _geo(out: pd.DataFrame, result, gcj02: bool) -> gpd.GeoDataFrame:
    """Proposals as points, with GCJ-02 coordinates and their unit when asked and known."""
    if gcj02:
        glon, glat = from_wgs84(out["lon"].to_numpy(), out["lat"].to_numpy(), "gcj02")
        out["gcj02_lon"], out["gcj02_lat"] = np.round(glon, 7), np.round(glat, 7)
    gdf = gpd.GeoDataFrame(out, geometry=shapely.points(out["lon"], out["lat"]), crs=4326)
    if getattr(result, "units", None) is not None:
        joined = gpd.sjoin(gdf[["geometry"]], result.units[["unit", "geometry"]], how="left", predicate="within")
        gdf["unit"] = joined[~joined.index.duplicated()]["unit"].reindex(gdf.index).fillna("(no unit)").to_numpy()
    return gdf


def scenario_table(run, proposals: gpd.GeoDataFrame, *, provided: ProvisionResult | None = None
                   ) -> pd.DataFrame:
    """Coverage per tier before and after adding the proposals as facilities (re-routed).

    When the proposals carry ``capacity_pop`` (siting with a capacity), the people they newly
    reach are served under the siting's rule: site by site in rank order, the nearest first,
    up to each site's capacity (distances routed again from the proposals' coordinates), and
    ``served_pop_before``/``_after`` and ``served_change_pop`` give provision per tier, the
    existing complexes with their capacities and the proposals with theirs.

    Parameters
    ----------
    run
        The coverage run.
    proposals
        The sites (``rank``, ``lon``, ``lat``, ``tier``, and ``capacity_pop`` under a capacity).
    provided
        Provision of the existing complexes, when already solved.

    Returns
    -------
    pandas.DataFrame
        One row per tier.

    """
    from ..engine.coverage import compute_coverage

    result = run.result
    fac = result.facilities
    added = gpd.GeoDataFrame({"facility_id": [f"NEW-{r:02d}" for r in proposals["rank"]],
                              "name": [f"proposal {r}" for r in proposals["rank"]],
                              "tier": proposals["tier"].to_numpy(), "status": "ok"},
                             geometry=proposals.geometry.to_numpy(), crs=4326)
    base = fac.drop(columns=[c for c in ("x", "y", "edge", "along_m", "offset_m") if c in fac.columns])
    both = gpd.GeoDataFrame(pd.concat([base, added], ignore_index=True), crs=4326)
    after = compute_coverage(result.network, both, run.extras.get("demand", result.demand),
                             profile=result.profile, units=None)
    b, a = result.by_tier(), after.by_tier()
    covered_after = a["covered_pop"].to_numpy(float)
    if "capacity_pop" in proposals.columns and len(proposals):
        covered_after = b["covered_pop"].to_numpy(float) + _capped_gains(result, after, proposals, list(b["tier"]))
    total = result.input_pop
    share_after = covered_after / total if total > 0 else a["covered_share"].to_numpy(float)
    table = pd.DataFrame({"tier": b["tier"], "covered_pop_before": b["covered_pop"],
                          "covered_pop_after": covered_after,
                          "change_pop": covered_after - b["covered_pop"].to_numpy(float),
                          "covered_share_before": b["covered_share"], "covered_share_after": share_after})
    if "capacity_pop" in proposals.columns:
        before = provided if provided is not None else _provision_of(result)
        served = np.array([float(before.served[t].sum()) for t in b["tier"]])
        table["served_pop_before"] = served
        table["served_pop_after"] = served + _served_gains(result, proposals, before, list(b["tier"]))
        table["served_change_pop"] = table["served_pop_after"] - served
    return table


def _sites_of(result, proposals: gpd.GeoDataFrame) -> Anchors:
    """The proposals on the network again, from their coordinates."""
    net = result.network
    x, y = net.from_wgs84(proposals["lon"].to_numpy(float), proposals["lat"].to_numpy(float))
    return Anchors.from_points(net, x, y, max_metres=snap_cap_metres(result.profile))


def _served_gains(result, proposals: gpd.GeoDataFrame, before: ProvisionResult, tiers: list[str]) -> np.ndarray:
    """People provision serves per tier beyond ``before`` once the proposals are complexes too."""
    gains = np.zeros(len(tiers))
    if not len(proposals):
        return gains
    sites, cap = _sites_of(result, proposals), proposals["capacity_pop"].to_numpy(float)
    new_tier = str(proposals["tier"].iloc[0])
    for k, t in enumerate(tiers):  # three tiers or so
        if new_tier in result.profile.eligible(t):
            gains[k] = served_with_sites(before, t, sites, cap, ks=[len(cap)])[0] - before.served[t].sum()
    return gains


def _capped_gains(result, after, proposals: gpd.GeoDataFrame, tiers: list[str]) -> np.ndarray:
    """People the proposals newly cover per tier when each serves at most its capacity."""
    net, profile = result.network, result.profile
    sites = _sites_of(result, proposals)
    pop = after.demand["pop"].to_numpy(float)
    cap = proposals["capacity_pop"].to_numpy(float)
    new_tier = str(proposals["tier"].iloc[0])
    gains = np.zeros(len(tiers))
    for k, t in enumerate(tiers):  # three tiers or so
        if new_tier not in profile.eligible(t):
            continue
        newly = after.covered_mask(t) & ~result.covered_mask(t)
        m = coverage_matrix(net, sites, after.demand_anchors, limit_metres=profile.threshold_metres(t))
        model = MaximalCovering.from_cost_matrix(m, pop, already_covered=~newly, capacity=cap)
        gains[k] = float(model.evaluate(np.arange(len(proposals))).sum())
    return gains


def _propose_service(run, req: SiteRequest) -> gpd.GeoDataFrame:
    """Sites for one service category: who lacks it (its group when the population has one)."""
    access = run.extras.get("services")
    if access is None:
        raise DataError("siting for a service needs the run's service points", field="service",
                        fix="add --services FILE (or --services osm), or a services column on the facilities")
    cat = {c.code: c for c in access.catalogue}
    names = {n.lower(): c.code for c in access.catalogue for n in (c.code, c.name_zh, c.name_en, *c.aliases)}
    code = names.get(str(req.service).strip().lower())
    if code is None:
        raise DataError(f"unknown service {req.service!r}", field="service",
                        fix="use one of: " + ", ".join(cat))
    _check_request(req.new, req.target)
    result, c = run.result, cat[code]
    limit = c.threshold_metres(result.profile.metres_per_minute)
    cand, lon, lat, _ = candidate_anchors(result, candidates=req.candidates, crs=req.crs,
                                          spacing_metres=req.spacing_metres, landuse=req.landuse)
    matrix = coverage_matrix(result.network, cand, result.demand_anchors, limit_metres=limit)
    weights = access.weights(c)[0]
    already = access.covered[code]
    model, solver = _solve(matrix, weights, req, already=already)
    sel = model.selected
    total = float(weights.sum())
    before = float(weights[already].sum())
    out = pd.DataFrame({"rank": np.arange(1, len(sel) + 1), "lon": np.round(lon[sel], 7), "lat": np.round(lat[sel], 7),
                        "tier": code, "service": code, "new_covered_pop": np.round(model.gains, 1),
                        "cumulative_covered_share": np.round((before + np.cumsum(model.gains)) / total, 5)
                        if total else np.nan,
                        "nearest_existing_minutes": np.round(_nearest_provider(access, code, cand, sel), 2),
                        "solver": solver})
    gdf = _geo(out, result, req.gcj02)
    after = already | (np.asarray(matrix[sel].astype(bool).sum(axis=0)).ravel() > 0 if len(sel) else already)
    scen = pd.DataFrame({"service": [code], "covered_pop_before": [before],
                         "covered_pop_after": [float(weights[after & (result.demand["status"] == "ok").to_numpy()].sum())]})
    scen["change_pop"] = scen["covered_pop_after"] - scen["covered_pop_before"]
    return _keep(run, req, gdf, scen, model, solver, model.explanation,
                 {"service": code, "candidates": len(cand)})


def _nearest_provider(access, code: str, cand: Anchors, sel: np.ndarray) -> np.ndarray:
    net = access.result.network
    pts = access.points[access.points["service"] == code]
    if not len(pts) or not len(sel):
        return np.full(len(sel), np.nan)
    x, y = net.from_wgs84(pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    snap = net.snap(x, y, max_metres=snap_cap_metres(access.result.profile))
    if not snap["snapped"].any():
        return np.full(len(sel), np.nan)
    # Targets in rank order (an index array, not a mask), so each figure is its own site's.
    metres, _ = nearest(net, Anchors.from_snap(snap[snap["snapped"]]), limit_metres=None,
                        targets=cand.subset(sel))
    return np.where(np.isfinite(metres), metres / access.result.profile.metres_per_minute, np.nan)
