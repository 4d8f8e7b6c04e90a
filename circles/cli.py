"""The ``circles`` command. It parses, calls the library and prints; it never computes."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from ._version import __version__
from .errors import CirclesError

__all__ = ["main"]

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def _command(name: str):
    def register(func):
        _COMMANDS[name] = func
        return func
    return register


def _progress(desc: str):
    """A stage progress bar on stderr (quiet when stderr is not a terminal)."""
    from tqdm import tqdm

    bar = tqdm(total=3, desc=desc, unit="stage", leave=False, file=sys.stderr,
               disable=not sys.stderr.isatty())

    def tick(stage: str) -> None:
        bar.set_postfix_str(stage)
        bar.update(1 if bar.n < bar.total else 0)

    return bar, tick


def _load_network(source: str | None, *, crs: str | None = None, **options):
    from .engine.network import load_network

    bar, tick = _progress("network")
    try:
        return load_network(source, crs=crs, progress=tick, **options)
    finally:
        bar.close()


@_command("network")
def _cmd_network(args: argparse.Namespace) -> int:
    from .outputs.network_file import save_network

    t0 = time.perf_counter()
    options = {}
    if args.snap_metres is not None:
        options["snap_metres"] = args.snap_metres
    if args.add_osm:
        options["add_osm"] = args.add_osm
    if args.repaired:
        options["repaired"] = args.repaired
    if args.keep_crossings:
        options["node_crossings"] = False
    if args.class_column:
        options["class_column"] = args.class_column
    if args.walkable_column:
        options["walkable_column"] = args.walkable_column
    net = _load_network(args.source, crs=args.crs, **options)
    seconds = time.perf_counter() - t0
    rep = net.summary()
    print(f"network:    {rep.get('source') or args.source or 'embedded Chengdu extract'}")
    print(f"nodes:      {net.n_nodes:,}")
    print(f"edges:      {net.n_edges:,}")
    print(f"walkable:   {net.km:,.1f} km")
    if "segments_not_walkable" in rep:
        print(f"not walkable (filtered out): {rep['segments_not_walkable']:,} segments, "
              f"{rep.get('km_not_walkable', 0):,.1f} km")
    print(f"components dropped: {rep.get('components_dropped', 0):,} "
          f"({rep.get('nodes_dropped', 0):,} nodes, {rep.get('km_dropped', 0):,.1f} km)")
    for key, value in (rep.get("repairs") or {}).items():
        print(f"repair {key}: {value:,}" if isinstance(value, int) else f"repair {key}: {value}")
    print(f"crs:        {net.crs.to_string()}")
    print(f"extent:     {rep.get('extent', 'none')} {rep.get('extent_bounds_wgs84') or ''}".rstrip())
    print(f"time:       {seconds:.2f} s")
    if args.out:
        path = save_network(net, args.out)
        print(f"saved:      {path}")
    return 0


def _run_dir(out: str | None, default_stem: str):
    """Claim the run folder (see :class:`circles.io.RunFolder`); ``main`` abandons it on failure."""
    from .outputs.runfolder import RunFolder

    if out:
        return RunFolder.claim(out, command=default_stem)
    return RunFolder.claim_unique(Path.cwd() / f"{default_stem}-{time.strftime('%Y%m%d-%H%M%S')}",
                                  command=default_stem)


def _run_inputs(args: argparse.Namespace):
    from .runs.pipeline import RunInputs

    return RunInputs(network=args.network, facilities=args.facilities, profile=args.profile,
                     crs=args.crs,
                     population=getattr(args, "population", None),
                     units=getattr(args, "units", None),
                     unit_column=getattr(args, "unit_column", None),
                     pop_column=getattr(args, "pop_column", None),
                     households_column=getattr(args, "households_column", None),
                     population_crs=getattr(args, "population_crs", None),
                     services=getattr(args, "services", None),
                     scenario=getattr(args, "scenario", None),
                     facility_areas=getattr(args, "facility_areas", None),
                     residential=getattr(args, "residential", None),
                     drop_invalid=bool(getattr(args, "drop_invalid", False)))


def _print_population(manifest) -> None:
    """What the population reader decided: spread per polygon, separators read, rows dropped."""
    for note in manifest.data.get("population", {}).get("notes", []):
        print(f"population: {note}")


def _report_facilities(fac) -> None:
    for row in fac[fac["status"] != "ok"].itertuples():
        print(f"facility {row.facility_id} ({row.name}): {row.status}, left out of routing",
              file=sys.stderr)


@_command("isochrones")
def _cmd_isochrones(args: argparse.Namespace) -> int:
    from .engine.isochrones import facility_areas_note
    from .engine.network import load_network
    from .outputs.runfolder import Manifest
    from .outputs.tables import write_layers
    from .readers.facilities import read_facilities
    from .readers.profiles import get_profile
    from .runs.pipeline import default_facilities, isochrone_layers

    facility_areas_note(0, args.facility_areas)  # a bad setting fails before any work
    manifest = Manifest("isochrones", vars(args))
    claim = _run_dir(args.out, "circles-isochrones")
    out = claim.path
    bar, tick = _progress("network")
    with manifest.timed("network"):
        net = load_network(args.network, progress=tick)
    bar.close()
    manifest.add_input("network", net.report.get("source"))
    profile = get_profile(args.profile)
    fac_path = args.facilities or default_facilities()
    manifest.add_input("facilities", fac_path)
    fac = read_facilities(fac_path, profile=profile, crs=args.crs, network=net)
    _report_facilities(fac)
    with manifest.timed("isochrones"):
        layers = isochrone_layers(net, fac, profile, facility_areas=args.facility_areas)
    write_layers(layers, out / "isochrones.gpkg")
    manifest.count(facilities=len(fac), facilities_ok=int((fac["status"] == "ok").sum()),
                   nodes=net.n_nodes)
    note = facility_areas_note(int((fac["status"] == "ok").sum()), args.facility_areas)
    manifest.set("facility_areas", note)
    claim.finish(manifest)
    for name, gdf in layers.items():
        print(f"{name:28s} {len(gdf):5d} polygons")
    if note["message"]:
        print(note["message"])
    print(f"written: {out}")
    return 0


@_command("coverage")
def _cmd_coverage(args: argparse.Namespace) -> int:
    from .outputs.runfolder import Manifest
    from .runs.pipeline import coverage_run

    manifest = Manifest(args.command, vars(args))
    out = _run_dir(args.out, "circles-coverage" if args.command == "coverage" else "circles-demo")
    bar, tick = _progress("network")
    try:
        run = coverage_run(_run_inputs(args), out, manifest=manifest, progress=tick,
                           lang=getattr(args, "lang", None))
    finally:
        bar.close()
    _report_facilities(run.result.facilities)
    print(run.result.summary_text())
    _print_population(run.manifest)
    _print_services(run.extras.get("services"))
    if run.manifest.data.get("facility_areas", {}).get("message"):
        print(run.manifest.data["facility_areas"]["message"])
    print(f"written: {run.folder}")
    return 0


def _print_services(access) -> None:
    if access is None:
        return
    t = access.by_service()
    print(f"\n{'service':18s} {'metres':>7s} {'group':>9s} {'covered':>10s} {'uncovered':>10s} {'share':>6s}")
    for r in t.itertuples():
        print(f"{r.service:18s} {r.threshold_metres:7.0f} {r.group or '-':>9s} {r.covered_pop:10,.0f} "
              f"{r.uncovered_pop:10,.0f} {r.covered_share:6.1%}")
    s = access.score_summary().iloc[0]
    print(f"life-circle score: {s.reach_all_share:.1%} of the population reach all {s.required_categories} "
          f"required categories (mean {s.mean_score:.1f}); most missing: {s.most_missing}")
    for w in access.warnings:
        print(f"note: {w}", file=sys.stderr)


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.services is None:
        args.services = "osm"  # the demo shows the service mix OSM has in the extract
    return _cmd_coverage(args)


_COMMANDS["demo"] = _cmd_demo


@_command("audit")
def _cmd_audit(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .runs.audit import run_audit

    bars: dict[str, object] = {}

    def progress(city: str, stage: str) -> None:
        bar = bars.get(city)
        if bar is None:
            bar = bars[city] = tqdm(desc=city, total=None, unit="stage", file=sys.stderr,
                                    disable=not sys.stderr.isatty())
        bar.set_postfix_str(stage)
        bar.update(1)

    summary = run_audit(args.config, compare=args.compare, scheduler=args.scheduler,
                        workers=args.workers, out_root=args.out_root, progress=progress)
    for bar in bars.values():
        bar.close()
    for city, notes in zip(summary.table["city"], summary.table.get("notes", []), strict=False):
        for note in notes if isinstance(notes, list) else []:
            print(f"note: {city}: {note}", file=sys.stderr)
    print(summary.text())
    return 1 if len(summary.failed) else 0


@_command("site")
def _cmd_site(args: argparse.Namespace) -> int:
    from .outputs.maps import draw_run_map
    from .outputs.runfolder import Manifest
    from .runs.pipeline import coverage_run, site_run

    if (args.new is None) == (args.target is None):
        print("circles site: give either --new N or --target SHARE", file=sys.stderr)
        return 2
    # Checked before the run folder exists, so a refused request leaves nothing behind.
    if args.new is not None and args.new < 1:
        print(f"circles site: --new {args.new}: give at least one new site, e.g. --new 5", file=sys.stderr)
        return 2
    if args.target is not None and not 0 < args.target <= 1:
        print(f"circles site: --target {args.target}: give a share in (0, 1], e.g. --target 0.9 for 90%",
              file=sys.stderr)
        return 2
    manifest = Manifest("site", vars(args))
    out = _run_dir(args.out, "circles-site")
    bar, tick = _progress("network")
    try:
        run = coverage_run(_run_inputs(args), out, manifest=manifest, progress=tick, draw_map=False,
                           finish=False)
    finally:
        bar.close()
    manifest.add_input("candidates", args.candidates)
    with manifest.timed("siting"):
        proposals = site_run(run, tier=args.tier, new=args.new, target=args.target, exact=args.exact,
                             candidates=args.candidates, crs=args.crs, capacity=args.capacity,
                             time_limit_s=args.time_limit,
                             landuse=args.landuse.split(",") if args.landuse else None,
                             service=args.service)
    manifest.write(run.folder)
    draw_run_map(run.folder, lang=args.lang)
    _maybe_explorer(run.folder, args.lang, run=run)
    out.finish(manifest)
    print(run.result.summary_text())
    _print_population(manifest)
    print()
    cols = ["rank", "lon", "lat", "new_covered_pop", "cumulative_covered_share", "nearest_existing_minutes"]
    print(proposals[cols].to_string(index=False))
    print(proposals["solver"].iloc[0] if len(proposals) else "no site adds coverage")
    if run.extras.get("explanation"):
        print(run.extras["explanation"])
    print(f"written: {run.folder}")
    return 0


def _maybe_explorer(folder, lang, run=None) -> None:
    from .outputs.explorer import write_explorer

    write_explorer(folder, run=run, lang=lang)


@_command("explore")
def _cmd_explore(args: argparse.Namespace) -> int:
    from .outputs.explorer import estimate_size, explorer_data, render
    from .outputs.runfolder import write_text
    from .runs.rerun import rerun

    run = rerun(Path(args.dir))
    data = explorer_data(run, spacing_metres=args.spacing)
    size = estimate_size(data)
    print(f"explorer: {len(data['demand']['pop']):,} demand {'cells' if data['aggregated'] else 'points'}, "
          f"{len(data['sites']['lon']):,} sites; about {size / 1e6:.1f} MB")
    path = write_text(Path(args.dir) / "explorer.html",
                      render(data, lang=args.lang or run.result.profile.lang, title=Path(args.dir).name))
    print(f"written: {path}")
    return 0


@_command("map")
def _cmd_map(args: argparse.Namespace) -> int:
    from .outputs.maps import draw_run_map

    path = draw_run_map(args.dir, offline=args.offline, lang=args.lang, tiles=args.tiles)
    print(f"written: {path}")
    return 0


@_command("services")
def _cmd_services(args: argparse.Namespace) -> int:
    from .readers.profiles import get_profile
    from .readers.services import load_catalogue

    cat = load_catalogue(args.catalogue or get_profile(args.profile).services or None)
    for c in cat:
        threshold = f"{c.metres:g} m" if c.metres is not None else f"{c.minutes:g} min"
        print(f"{c.code:18s} {c.name_zh:10s} {threshold:>8s}  group {c.group or '-':10s} "
              f"{'required' if c.required else 'optional':8s}  {c.source}")
    return 0


@_command("profiles")
def _cmd_profiles(args: argparse.Namespace) -> int:
    from .readers.profiles import get_profile, list_profiles

    if args.name:
        print(get_profile(args.name).to_yaml())
        return 0
    for name in list_profiles():
        p = get_profile(name)
        tiers = " / ".join(f"{t.name_zh} {p.threshold_minutes(t.code):g} min "
                           f"({p.threshold_metres(t.code):g} m)" for t in p.tiers)
        print(f"{name:10s} {p.title_en}: {tiers}; {'nested' if p.nested else 'not nested'}")
    print("\nprint one as a file to start from: circles profiles NAME > my_profile.yaml")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="circles",
        description="15-minute service circles on the real walking network: coverage, gaps, siting.")
    p.add_argument("--version", action="version", version=f"circles {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    net = sub.add_parser("network", help="build a walking network and print what it holds")
    net.add_argument("source", nargs="?", default=None,
                     help="OSM extract, road-line file, saved network (.gpkg) or place name "
                          "(default: the embedded Chengdu extract)")
    net.add_argument("--out", help="save the network as a GeoPackage")
    net.add_argument("--crs", help="CRS of a road-line file without one (e.g. EPSG:4547)")
    net.add_argument("--snap-metres", type=float, default=None,
                     help="road lines: close endpoint gaps up to this (default 2)")
    net.add_argument("--add-osm", help="road lines: add the footways of this OSM extract")
    net.add_argument("--repaired", help="road lines: write the repaired lines to this GeoPackage")
    net.add_argument("--class-column", help="road lines: the road-class column (default 等级/class)")
    net.add_argument("--walkable-column", help="road lines: the walkable yes/no column (default 步行/walkable)")
    net.add_argument("--keep-crossings", action="store_true",
                     help="road lines: do not join lines that cross without a shared vertex "
                          "(for layers that are already routable, such as OSM exports)")
    def routing_args(sp, *, population: bool = False, required: bool = True) -> None:
        sp.add_argument("--network", default=None,
                        help="OSM extract, road-line file, saved network or place name "
                             "(default: the embedded Chengdu extract)")
        sp.add_argument("--facilities", required=False, default=None,
                        help="facility table: CSV/Excel/GeoJSON/GeoPackage/Shapefile "
                             "(default: the sample Chengdu facilities)")
        sp.add_argument("--profile", default=None, help="built-in profile name or a YAML/TOML file "
                                                        "(default: deyang)")
        sp.add_argument("--crs", default="wgs84",
                        help="coordinates of the tables: wgs84, cgcs2000, gcj02, bd09 or EPSG:code")
        sp.add_argument("--out", required=required, default=None, help="new (or empty) output folder")
        sp.add_argument("--facility-areas", default=None, metavar="all|none|N",
                        help="write each facility's own service area for up to N facilities "
                             "(default 2000), for all, or for none; tier areas are always written")
        if population:
            sp.add_argument("--population", default=None,
                            help="raster, polygons/grid with counts, or points "
                                 "(default: an estimate from OSM residential buildings)")
            sp.add_argument("--pop-column", default=None, help="the population count column")
            sp.add_argument("--households-column", default=None,
                            help="a households column (× persons per household)")
            sp.add_argument("--population-crs", default=None,
                            help="CRS of a population file that has none")
            sp.add_argument("--residential", default=None, metavar="FILE",
                            help="residential buildings (footprint × levels) or land-use polygons, any CRS, "
                                 "to place polygon counts on (default: the OSM extract of the network)")
            sp.add_argument("--drop-invalid", action="store_true",
                            help="exclude population rows with empty, non-numeric or negative counts and "
                                 "count them, instead of stopping at the first")
            sp.add_argument("--units", default=None, help="administrative unit polygons")
            sp.add_argument("--lang", choices=("zh", "en"), default=None, help="map language")
            sp.add_argument("--services", default=None,
                            help="service points table, or 'osm' for the extract's own (kindergartens, "
                                 "schools, clinics, markets...); a facility 'services' column counts too")
            sp.add_argument("--scenario", default=None,
                            help="a scenario exported from explorer.html: sites added and facilities closed")
            sp.add_argument("--unit-column", default=None, help="the unit name column")

    iso = sub.add_parser("isochrones", help="service areas per facility and per tier")
    routing_args(iso)
    cov = sub.add_parser("coverage", help="who is inside each circle, who is left out, and where")
    routing_args(cov, population=True)
    demo = sub.add_parser("demo", help="coverage on the embedded Chengdu data")
    routing_args(demo, population=True, required=False)
    st = sub.add_parser("site", help="propose new sites that cover the most people left out")
    routing_args(st, population=True)
    st.add_argument("--tier", default="station", help="tier of the new sites (default station)")
    st.add_argument("--new", type=int, default=None, help="how many new sites (maximal covering)")
    st.add_argument("--target", type=float, default=None,
                    help="coverage share to reach with the fewest sites, e.g. 0.9")
    st.add_argument("--candidates", default=None,
                    help="candidate sites (table or layer, in --crs); default: network nodes every 100 m")
    st.add_argument("--service", default=None,
                    help="site for a service category instead of a tier, e.g. kindergarten "
                         "(needs --services or a services column)")
    st.add_argument("--landuse", default=None,
                    help="only candidates on these land uses, e.g. residential,commercial "
                         "(the candidate file's landuse column, or OSM landuse polygons)")
    st.add_argument("--exact", action="store_true", help="solve exactly with HiGHS (time-limited)")
    st.add_argument("--time-limit", type=float, default=60.0, help="seconds for the exact solver")
    st.add_argument("--capacity", action="store_true",
                    help="each new site serves at most what its floor area provides for")
    ex = sub.add_parser("explore", help="write the offline scenario explorer into a run folder")
    ex.add_argument("dir", help="a run folder")
    ex.add_argument("--lang", choices=("zh", "en"), default=None)
    ex.add_argument("--spacing", type=float, default=150.0, help="candidate site spacing in metres")
    mp = sub.add_parser("map", help="(re)draw map.html from a run folder")
    mp.add_argument("dir", help="a run folder")
    mp.add_argument("--offline", action="store_true",
                    help="one self-contained file: Leaflet inlined, no tile layer unless --tiles")
    mp.add_argument("--lang", choices=("zh", "en"), default=None, help="language (default: the profile's)")
    mp.add_argument("--tiles", default=None, help="a tile URL template, e.g. an intranet tile server")
    aud = sub.add_parser("audit", help="a config file to a complete audit folder per city")
    aud.add_argument("config", help="the audit config (YAML)")
    aud.add_argument("--compare", default=None, help="an earlier audit folder to compare with")
    aud.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    aud.add_argument("--workers", type=int, default=2, help="local Dask workers (default 2)")
    aud.add_argument("--out-root", default=None, help="where audit folders go (default: beside the config)")
    svc = sub.add_parser("services", help="list the service catalogue")
    svc.add_argument("--catalogue", default=None, help="a YAML or Excel catalogue to list instead")
    svc.add_argument("--profile", default=None, help="a profile whose catalogue to list")
    prof = sub.add_parser("profiles", help="list the built-in profiles, or print one")
    prof.add_argument("name", nargs="?", help="a profile to print as YAML")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``circles`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    from .outputs.runfolder import abandon_unfinished, held_runs

    before = held_runs()
    try:
        with _warnings_as_notes():
            return _COMMANDS[args.command](args)
    except CirclesError as err:
        print(f"circles {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        # A command that failed leaves no half-written run folder behind.
        abandon_unfinished(keep=before)


@contextlib.contextmanager
def _warnings_as_notes():
    """Print Python warnings as the project's own ``note: ...`` lines: no source paths, each once."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text and text not in seen:
            seen.add(text)
            print(f"note: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.filterwarnings("default", category=UserWarning)
        warnings.showwarning = show
        yield


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
