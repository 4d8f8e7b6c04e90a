"""A coverage run from inputs to a finished run folder: used by the CLI and by audits alike."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from ..outputs.runfolder import Manifest
from ..readers.files import require_file
from ..readers.units import unit_levels
from .background import in_background
from .inputs import RunInputs, default_facilities

if TYPE_CHECKING:
    from .proposals import SiteRequest

# RunInputs and default_facilities live in runs.inputs; named here too for ``circles.pipeline``.
__all__ = ["RunInputs", "RunOutput", "coverage_run", "default_facilities", "facility_anchor_frame",
           "isochrone_layers", "load_demand", "load_facilities", "load_inputs",
           "load_network_facilities", "site_run"]


@dataclass
class RunOutput:
    """A finished run: its folder, the coverage result and what was written."""

    folder: Path
    result: object
    files: list[Path]
    manifest: Manifest
    extras: dict = field(default_factory=dict)


def load_inputs(inputs: RunInputs, manifest: Manifest, *, progress=None):
    """Read the network, profile, facilities, population and units of a run.

    Returns
    -------
    tuple
        ``(net, profile, facilities, demand, units)``.

    """
    net, profile, fac = load_network_facilities(inputs, manifest, progress=progress)
    return (net, profile, fac, *load_demand(inputs, manifest, net, profile))


def load_network_facilities(inputs: RunInputs, manifest: Manifest, *, progress=None):
    """The first half of :func:`load_inputs`: ``(net, profile, facilities)``, the facilities snapped."""
    from ..readers.profiles import get_profile
    from .load import load_network

    with manifest.timed("network"):
        net = load_network(inputs.network, progress=progress, **inputs.network_options)
    manifest.add_input("network", net.report.get("source") or inputs.network)
    profile = get_profile(inputs.profile)
    if inputs.profile is not None and Path(str(inputs.profile)).exists():
        manifest.add_input("profile", inputs.profile)
    return net, profile, load_facilities(inputs, net, profile, manifest)


def load_demand(inputs: RunInputs, manifest: Manifest, net, profile):
    """The second half of :func:`load_inputs`: ``(demand, units)``."""
    from ..readers.files import default_network_path
    from ..readers.osm import is_osm_file
    from .load import read_population

    src = str(net.report.get("source") or "")
    osm_path = src if src and is_osm_file(src) else str(default_network_path())
    manifest.add_input("population", inputs.population)
    with manifest.timed("population"):
        # Polygon counts go onto housing: the --residential file, else the OSM extract the
        # network came from (a road-line network has no buildings to offer).
        residential = inputs.residential or (src if src and is_osm_file(src) else None)
        if inputs.residential:
            manifest.add_input("residential", inputs.residential)
        demand = read_population(inputs.population, network=net, pop_column=inputs.pop_column,
                                 households_column=inputs.households_column,
                                 crs=inputs.population_crs, osm_path=osm_path, profile=profile,
                                 residential=residential, drop_invalid=inputs.drop_invalid)
    units = None
    paths = inputs.units if isinstance(inputs.units, list | tuple) else [inputs.units] if inputs.units else []
    if paths:
        frames = []
        for k, path in enumerate(paths):
            manifest.add_input("units" if k == 0 else f"units_{k + 1}", path)
            frames.append(gpd.read_file(require_file(path, what="units"), engine="pyogrio"))
        units = unit_levels(frames if len(frames) > 1 else frames[0], unit_column=inputs.unit_column,
                            files=[str(p) for p in paths] if len(frames) > 1 else [str(paths[0])])
    return demand, units


def load_facilities(inputs: RunInputs, net, profile, manifest: Manifest):
    """The run's facilities on ``net`` (the sample ones by default), with its scenario applied."""
    from .load import read_facilities

    fac_path = inputs.facilities or default_facilities()
    manifest.add_input("facilities", fac_path)
    with manifest.timed("facilities"):
        fac = read_facilities(fac_path, profile=profile, crs=inputs.crs, network=net)
        if inputs.scenario:
            from .scenario import apply_scenario

            manifest.add_input("scenario", inputs.scenario)
            fac = apply_scenario(fac, inputs.scenario, profile=profile, network=net)
    return fac


def facility_anchor_frame(fac):
    """Anchors of the usable (``status == "ok"``) facilities and that mask."""
    from ..engine.routing import Anchors

    ok = (fac["status"] == "ok").to_numpy()
    anchors = Anchors.from_snap(fac[["edge", "along_m", "offset_m"]].assign(
        snapped=fac["edge"].to_numpy() >= 0))
    return anchors.subset(ok), ok


def isochrone_layers(net, fac, profile, *, facility_areas: str | int | None = None) -> dict:
    """The isochrone layers of a run: a dissolved layer per tier, the rings and, for up to
    ``facility_areas`` facilities (``all``, ``none`` or a count; default
    :data:`circles.isochrones.FACILITY_AREAS_DEFAULT`), the per-facility areas."""
    from ..engine.facility_areas import forget_index
    from ..engine.isochrones import (
        distance_bands,
        facility_areas_note,
        forget_areas,
        tier_isochrones,
        to_wgs84,
    )

    anchors, ok = facility_anchor_frame(fac)
    layers = tier_isochrones(net, anchors, fac["tier"].to_numpy()[ok], profile,
                             ids=fac["facility_id"].to_numpy()[ok],
                             per_facility=facility_areas_note(int(ok.sum()), facility_areas)["written"])
    forget_index(net)  # the per-facility areas' face index: the rings do not use it (0.17 GB at 1M nodes)
    if ok.any():
        # The rings view: 0-5, 5-10, 10-15 minutes from the nearest facility of any tier.
        minutes = sorted(profile.threshold_minutes(t) for t in profile.tiers)
        layers["bands"] = distance_bands(net, anchors, minutes=minutes, profile=profile)
    forget_areas(net)  # the layers are drawn: what drew them is not needed again by this run
    return {name: to_wgs84(gdf) for name, gdf in layers.items()}


def _timed_isochrones(net, fac, profile, manifest: Manifest, facility_areas) -> dict:
    with manifest.timed("isochrones"):
        return isochrone_layers(net, fac, profile, facility_areas=facility_areas)


def coverage_run(inputs: RunInputs, out, *, manifest: Manifest | None = None, progress=None,
                 draw_map: bool = True, lang: str | None = None, finish: bool = True) -> RunOutput:
    """Run coverage end to end and write the run folder ``out`` (which must be new or empty).

    Parameters
    ----------
    inputs
        What to read.
    out
        The run folder: a path (claimed here, see :class:`circles.io.RunFolder`) or a
        :class:`~circles.io.RunFolder` the caller has claimed.
    manifest
        A manifest to fill (a new one by default).
    progress
        Called with each network stage.
    draw_map
        Also write ``map.html``.
    lang
        Map language (default: the profile's).
    finish
        Mark the run complete at the end; ``False`` when more steps (siting, a report) follow,
        whose caller then calls ``extras["run_folder"].finish(manifest)``.

    Returns
    -------
    RunOutput

    """
    from ..outputs.runfolder import RunFolder

    claim = out if isinstance(out, RunFolder) else RunFolder.claim(out, command="coverage")
    try:
        run = _coverage_run(inputs, claim.path, manifest=manifest, progress=progress,
                            draw_map=draw_map, lang=lang)
    except BaseException:
        if claim is not out:  # a failed run leaves no partial folder; a caller's claim is its own
            claim.abandon()
        raise
    run.extras["run_folder"] = claim
    if finish:
        claim.finish(run.manifest)
    return run


def _coverage_run(inputs: RunInputs, folder: Path, *, manifest: Manifest | None, progress,
                  draw_map: bool, lang: str | None) -> RunOutput:
    """The steps of :func:`coverage_run` in a claimed folder."""
    from ..engine.coverage import compute_coverage
    from ..engine.gaps import gap_hexagons, short_hexagons
    from ..engine.isochrones import facility_areas_note
    from ..engine.standards import check_standards
    from ..outputs.tables import write_coverage_run, write_layers

    facility_areas_note(0, inputs.facility_areas)  # a bad setting fails before any work
    manifest = manifest or Manifest("coverage", dict(vars(inputs).items()))
    net, profile, fac = load_network_facilities(inputs, manifest, progress=progress)
    # The service areas need only the network and the snapped facilities (compute_coverage snaps
    # them again to the same anchors), and they are most of a city's time: drawn on a thread of
    # their own while the population is read, coverage computed and the tables written.
    drawing = in_background(_timed_isochrones, net, fac, profile, manifest, inputs.facility_areas,
                            name="circles-isochrones")
    demand, units = load_demand(inputs, manifest, net, profile)
    with manifest.timed("coverage"):
        result = compute_coverage(net, fac, demand, profile=profile, units=units,
                                  unit_column=inputs.unit_column, facility_areas=inputs.facility_areas)
    access = None
    if inputs.services or "services" in result.facilities.columns:
        with manifest.timed("services"):
            access = _services(inputs, net, result, profile, manifest)
    prov = _provision(result, manifest, inputs.facility_areas)
    with manifest.timed("gaps"):
        gaps = gap_hexagons(result)
        short = None if prov is None else short_hexagons(result, prov)
    manifest.set("facility_areas", facility_areas_note(
        int((result.facilities["status"] == "ok").sum()), inputs.facility_areas))
    with manifest.timed("write"):
        files = write_coverage_run(result, folder, gaps=gaps, standards=check_standards(result),
                                   capacity_short=short)
        if access is not None:
            files += _write_services(access, folder)
        if units is not None and profile.rules:
            files += _write_scorecard(result, units, access, folder, manifest)
        if "functions" in result.facilities.columns and any(profile.functions.values()):
            files += _write_functions(result, folder, manifest)
    files += _write_basemap(net, folder, manifest)
    iso = drawing.result()
    with manifest.timed("write"):
        if iso:
            files.append(write_layers(iso, folder / "isochrones.gpkg"))
    manifest.count(nodes=net.n_nodes, facilities=len(fac),
                   facilities_ok=int((result.facilities["status"] == "ok").sum()),
                   demand_points=len(result.demand), population=round(result.input_pop, 1))
    manifest.set("profile", profile.name)
    manifest.set("network", net.summary())
    manifest.set("population", {"label": result.population_label, "is_estimate": result.is_estimate,
                                **demand.record()})
    manifest.set("study_area", result.study_area_summary())
    manifest.set("coverage_by_tier", result.by_tier().replace({np.nan: None}).to_dict(orient="records"))
    out_run = RunOutput(folder=folder, result=result, files=files, manifest=manifest,
                        extras={"gaps": gaps, "isochrones": iso, "demand": demand, "services": access,
                                "provision": prov, "capacity_short": short})
    if draw_map:
        with manifest.timed("map"):
            _draw_map(folder, manifest, lang)
    manifest.write(folder)
    return out_run


def _provision(result, manifest: Manifest, facility_areas: str | int | None):
    """Provision under capacity per tier (stage ``provision``), kept in ``result.extras`` so the
    facility table carries it; the manifest's ``provision`` block gives the capacity rule, the
    figures per tier and each tier's model size and solve time."""
    from ..engine.isochrones import facility_areas_note
    from ..engine.provision_tiers import provision

    # Provision needs every complex's own circle, which is what --facility-areas governs: a POI
    # dump of 100,000 points would need billions of pairs, so above the cap it is left out, said.
    note = facility_areas_note(int((result.facilities["status"] == "ok").sum()), facility_areas)
    if not note["written"]:
        message = note["message"].replace("per-facility areas and pop_in_circle", "provision under capacity")
        manifest.set("provision", {"solved": False, "message": message})
        warnings.warn(message, UserWarning, stacklevel=2)
        return None
    with manifest.timed("provision"):
        prov = provision(result)
    result.extras["provision"] = prov
    manifest.set("provision", {
        "solved": True, "rule": prov.rule,
        "by_tier": prov.by_tier().replace({np.nan: None}).to_dict(orient="records"),
        "models": {code: {**prov.stats[code], "solve_seconds": round(prov.seconds[code], 3)}
                   for code in prov.stats}})
    return prov


def _write_scorecard(result, levels, access, folder: Path, manifest: Manifest) -> list[Path]:
    """The profile city's rules at every level of units (``standards_by_unit.csv``) and one row per
    community (``scorecard.csv``), worst first; the manifest says how many meet every rule."""
    from ..engine.community_rules import evaluate_units, scorecard
    from ..outputs.tables import write_csv

    frames, cards = [], []
    for level in levels:
        kind = _level_kind(level.name, finest=level is levels[-1])
        rows = evaluate_units(result, level.polygons, result.profile.rules, unit_column="unit", level=kind,
                              access=access, file=level.file)
        frames.append(rows.assign(level=level.name))
        if kind == "community":
            cards.append(scorecard(result, level.polygons, rows, unit_column="unit", level=kind)
                         .assign(level=level.name))
    by_unit = pd.concat(frames, ignore_index=True)
    # City-wide rows (the 8/40/32 plan, workers city-wide) come once, with the top level.
    city = by_unit["unit"] == "(city)"
    by_unit = by_unit[~city | ~by_unit[["rule", "part"]].duplicated()].reset_index(drop=True)
    card = pd.concat(cards, ignore_index=True) if cards else pd.DataFrame(columns=["level", "unit", "all_passed"])
    manifest.set("scorecard", {"city": result.profile.city, "communities": len(card),
                               "all_passed": int(card["all_passed"].fillna(False).astype(bool).sum()),
                               "rules_evaluated": int(by_unit["passed"].notna().sum()),
                               "not_evaluated": sorted(set(by_unit.loc[by_unit["note"].str.startswith(
                                   "not evaluated"), "note"]))})
    return [write_csv(by_unit, folder / "standards_by_unit.csv"), write_csv(card, folder / "scorecard.csv")]


def _write_functions(result, folder: Path, manifest: Manifest) -> list[Path]:
    """What each complex's tier asks of it and it lacks (``functions_by_complex.csv``), worst first."""
    from ..engine.complex_functions import functions_record, missing_functions
    from ..outputs.tables import write_csv

    table = missing_functions(result.facilities, result.profile)
    manifest.set("functions", functions_record(table))
    return [write_csv(table, folder / "functions_by_complex.csv")]


def _level_kind(name: str, *, finest: bool) -> str:
    """The level the documents' rules speak of: ``community`` for 社区 (and for the finest level when
    no header names it), ``grid`` for 网格, else the level's own name (its rules are then not judged)."""
    key = name.strip().lower()
    if key in ("community", "社区") or (finest and (key == "unit" or key.startswith("level "))):
        return "community"
    return "grid" if key in ("grid", "网格") else name


def _services(inputs: RunInputs, net, result, profile, manifest):
    """Service points (facility column, a table, or OSM) and per-category access; the
    per-category minutes and the score join the demand layer."""
    from ..engine.service_access import service_access
    from ..readers.files import default_network_path
    from ..readers.osm import is_osm_file
    from ..readers.services import load_catalogue, service_points

    catalogue = load_catalogue(profile.services or None, profile=profile)
    table = osm = None
    if inputs.services and str(inputs.services).lower() == "osm":
        src = str(net.report.get("source") or "")
        osm = src if src and is_osm_file(src) else str(default_network_path())
    elif inputs.services:
        table = inputs.services
        manifest.add_input("services", table)
    points = service_points(facilities=result.facilities[result.facilities["status"] == "ok"],
                            table=table, osm=osm, catalogue=catalogue, crs=inputs.crs)
    access = service_access(result, points, catalogue)
    for col, values in access.demand_columns().items():
        result.demand[col] = values.to_numpy()
    manifest.set("services", {"points": len(points), "merged_osm_duplicates": points.attrs.get("merged", 0),
                              "warnings": access.warnings,
                              "score": access.score_summary().replace({np.nan: None}).to_dict(orient="records")})
    return access


def _write_services(access, folder: Path) -> list[Path]:
    import pandas as pd

    from ..outputs.tables import write_csv, write_layers

    gaps = pd.concat([access.gaps_by_unit(), access.gaps_by_complex()], ignore_index=True)
    return [write_csv(access.by_service(), folder / "coverage_by_service.csv"),
            write_csv(access.score_summary(), folder / "life_circle_score.csv"),
            write_csv(gaps, folder / "service_gaps.csv"),
            write_layers({"service_points": access.points,
                          "life_circle_score": access.score_hexagons()}, folder / "service_points.gpkg")]


def _write_basemap(net, folder: Path, manifest: Manifest) -> list[Path]:
    """The map's light basemap (``basemap.gpkg``: streets from the network; water, green areas,
    residential land use and buildings from its OSM extract), so that ``circles map`` redraws the
    run without the extract; the manifest's ``basemap`` block counts each layer, or says why the
    areas were skipped."""
    from ..outputs.basemap import write_basemap

    with manifest.timed("basemap"):
        manifest.set("basemap", write_basemap(net, folder / "basemap.gpkg"))
        return [folder / "basemap.gpkg"]


def _draw_map(folder: Path, manifest: Manifest, lang: str | None) -> None:
    # The map reads the run folder's files (basemap.gpkg among them), so it needs the manifest
    # written first; its tiles and the like are the run's parameters (draw_run_map reads them).
    from ..outputs.maps import draw_run_map

    manifest.write(folder)
    draw_run_map(folder, lang=lang)


def site_run(run: RunOutput, request: SiteRequest | None = None, **options):
    """Propose new sites for a finished coverage run and write ``proposals.csv``,
    ``proposals.gpkg`` and ``scenario_comparison.csv`` (coverage per tier before and after) into its folder.

    Parameters
    ----------
    run
        A finished coverage run (:func:`coverage_run`).
    request
        What to site (:class:`circles.runs.proposals.SiteRequest`).
    **options
        Its fields, set one by one: ``tier``, ``new``, ``target``, ``exact``, ``candidates``,
        ``crs``, ``capacity``, ``time_limit_s``, ``spacing_metres``, ``landuse``, ``service``,
        ``gcj02``, ``write`` (e.g. ``site_run(run, tier="station", new=5)``).

    Returns
    -------
    geopandas.GeoDataFrame
        The proposals in rank order (see :func:`circles.runs.proposals.propose`).

    """
    from .proposals import propose

    return propose(run, request, **options)
