"""Proposals for a coverage run: candidates, the solver, an explained list of sites and the
before/after scenario, written into the run folder."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..engine.placement import in_study_area, place, snap_cap_metres
from ..engine.routing import Anchors, coverage_matrix, nearest
from ..engine.siting import CoverageTarget, MaximalCovering, candidate_nodes
from ..errors import DataError
from ..outputs.tables import write_csv, write_layers
from ..readers.crs import from_wgs84
from ..readers.options import known_options
from ..readers.tables import find_column, read_table, table_points

__all__ = ["SiteRequest", "candidate_anchors", "propose", "scenario_table"]


@dataclass(frozen=True)
class SiteRequest:
    """What to site: the options of :func:`circles.site_run` (``--new``/``--target``...).

    Attributes
    ----------
    tier
        The tier of the new sites (default ``station``); only people not covered for it count.
    new, target
        How many sites (maximal covering), or the coverage share to reach (fewest sites).
    exact
        Solve the maximal covering exactly (HiGHS, within ``time_limit_s``) instead of greedily.
    candidates, crs, spacing_metres
        A file of candidate sites (coordinates in ``crs``); default: network nodes, one per
        ``spacing_metres`` square.
    capacity
        Each new site serves at most the people its floor area provides for.
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
        return cls(tier=args.tier, new=args.new, target=args.target, exact=args.exact,
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
    per100 = float(profile.standards.get("floor_area_m2_per_100_households", 30.0))
    pph = profile.persons_per_household
    area = np.where(np.isfinite(floor_area), floor_area, assumed)
    cap = area / per100 * 100.0 * pph
    given = int(np.isfinite(floor_area).sum())
    rule = f"capacity: a site serves at most its floor area ÷ {per100:g} m² per 100 households × {pph:g} persons"
    if given == len(floor_area):
        return cap, area, rule + " (floor areas from the candidate file)"
    where = "every candidate" if given == 0 else f"the {len(floor_area) - given:,} candidates without one"
    return cap, area, (f"{rule}; floor area assumed {assumed:g} m² for {where} ({source}), "
                       f"so {assumed / per100 * 100.0 * pph:,.0f} people a site")


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
        ``attrs["explanation"]``.

    """
    req = SiteRequest.of(request, **options)
    if req.service is not None:
        return _propose_service(run, req)
    result = run.result
    profile = result.profile
    code = profile.tier(req.tier).code
    _check_request(req.new, req.target)
    cand, lon, lat, floor = candidate_anchors(result, candidates=req.candidates, crs=req.crs,
                                              spacing_metres=req.spacing_metres, landuse=req.landuse)
    matrix = coverage_matrix(result.network, cand, result.demand_anchors,
                             limit_metres=profile.threshold_metres(code))
    pop = result.demand["pop"].to_numpy(float)
    already = result.covered_mask(code)
    cap, area, cap_text = _capacity(profile, code, floor) if req.capacity else (None, None, "")
    model, solver = _solve(matrix, pop, req, already=already, capacity=cap,
                           offnetwork=float(pop[result.demand["status"].to_numpy() == "off_network"].sum()))
    explanation = "; ".join(t for t in (model.explanation, cap_text) if t)
    sel = model.selected
    total = result.input_pop
    cum = (float(pop[already].sum()) + np.cumsum(model.gains)) / total if total else np.full(len(sel), np.nan)
    out = pd.DataFrame({"rank": np.arange(1, len(sel) + 1), "lon": np.round(lon[sel], 7),
                        "lat": np.round(lat[sel], 7), "tier": code,
                        "new_covered_pop": np.round(model.gains, 1),
                        "cumulative_covered_share": np.round(cum, 5),
                        "nearest_existing_minutes": np.round(_nearest_existing(result, code, cand, sel), 2),
                        "solver": solver})
    if cap is not None:
        out["floor_area_m2"] = area[sel]
        out["floor_area_source"] = np.where(np.isfinite(floor[sel]), "candidate file", "assumed (profile minimum)")
        out["capacity_pop"] = np.round(cap[sel], 1)
    gdf = _geo(out, result, req.gcj02)
    siting = {"tier": code, "candidates": len(cand), "capacity_pop": None if cap is None else float(np.median(cap)),
              "capacity_rule": cap_text}
    return _keep(run, req, gdf, scenario_table(run, gdf), model, solver, explanation, siting)


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
                                "new_covered_pop": float(model.gains.sum()), "explanation": explanation})
    run.extras.update(proposals=gdf, siting_model=model, explanation=explanation)
    write_csv(pd.DataFrame(gdf.drop(columns="geometry")), run.folder / "proposals.csv")
    write_layers({"proposals": gdf}, run.folder / "proposals.gpkg")
    write_csv(scen, run.folder / "scenario_comparison.csv")
    return gdf


def _solve(matrix, weights, req: SiteRequest, *, already, capacity=None, offnetwork=0.0):
    """The solver for a request and its one-line description (objective, bound, gap)."""
    if req.target is None:
        model = MaximalCovering.from_cost_matrix(matrix, weights, already_covered=already, capacity=capacity)
        model.solve(int(req.new), method="exact" if req.exact else "greedy", time_limit_s=req.time_limit_s)
        return model, (f"{model.solver}; objective {model.objective:,.0f}, proven bound "
                       f"{model.upper_bound:,.0f}, gap {model.gap:.2%}")
    model = CoverageTarget.from_cost_matrix(matrix, weights, already_covered=already, capacity=capacity,
                                            offnetwork_pop=offnetwork)
    model.solve(float(req.target), time_limit_s=min(req.time_limit_s, 3.0))
    return model, model.solver


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


def scenario_table(run, proposals: gpd.GeoDataFrame) -> pd.DataFrame:
    """Coverage per tier before and after adding the proposals as facilities (re-routed).

    When the proposals carry ``capacity_pop`` (siting with a capacity), the people they newly
    reach are served under the siting's rule: site by site in rank order, the nearest first,
    up to each site's capacity (distances routed again from the proposals' coordinates).
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
    return pd.DataFrame({"tier": b["tier"], "covered_pop_before": b["covered_pop"],
                         "covered_pop_after": covered_after,
                         "change_pop": covered_after - b["covered_pop"].to_numpy(float),
                         "covered_share_before": b["covered_share"], "covered_share_after": share_after})


def _capped_gains(result, after, proposals: gpd.GeoDataFrame, tiers: list[str]) -> np.ndarray:
    """People the proposals newly cover per tier when each serves at most its capacity."""
    net, profile = result.network, result.profile
    x, y = net.from_wgs84(proposals["lon"].to_numpy(float), proposals["lat"].to_numpy(float))
    sites = Anchors.from_points(net, x, y, max_metres=snap_cap_metres(profile))
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
