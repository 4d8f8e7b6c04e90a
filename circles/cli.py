"""The ``circles`` command. It parses, calls a runner (:mod:`circles.runs`) and prints the lines
:mod:`circles.outputs.console` words; it never computes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._version import __version__
from .engine.isochrones import facility_areas_note
from .errors import CirclesError
from .outputs import console
from .outputs.map_facility_areas import MAP_FACILITY_AREAS_MAX
from .outputs.maps import draw_run_map
from .outputs.runfolder import Manifest, abandon_unfinished, held_runs
from .outputs.tiles import tile_provider
from .readers.profiles import get_profile, list_profiles
from .readers.services import load_catalogue
from .runs import runners
from .runs.audit import run_audit
from .runs.audit_progress import CityProgress
from .runs.background import limit_malloc_arenas, release_memory_every
from .runs.inputs import RunInputs
from .runs.pipeline import coverage_run

__all__ = ["main"]


def _say(lines, *, err: bool = False) -> None:
    for line in lines:
        print(line, file=sys.stderr if err else sys.stdout)


def _with_bar(call):
    """``call(tick)`` with a network progress bar on stderr."""
    bar, tick = console.progress_bar("network")
    try:
        return call(tick)
    finally:
        bar.close()


def _run(runner, args: argparse.Namespace, stem: str, **options):
    """A runner on the command's inputs, in its claimed folder (``main`` abandons it on failure)."""
    manifest = Manifest(args.command, vars(args))
    out = runners.claim_run_folder(args.out, stem)
    inputs = RunInputs.from_args(args)
    return _with_bar(lambda tick: runner(inputs, out, manifest=manifest, progress=tick, **options))


def _cmd_network(args: argparse.Namespace) -> int:
    flags = {"snap_metres": args.snap_metres, "add_osm": args.add_osm, "repaired": args.repaired,
             "node_crossings": False if args.keep_crossings else None,
             "class_column": args.class_column, "walkable_column": args.walkable_column}
    options = {k: v for k, v in flags.items() if v is not None and v != ""}
    built = _with_bar(lambda tick: runners.network_run(args.source, crs=args.crs, out=args.out,
                                                       options=options, progress=tick))
    _say(console.network_lines(built, args.source))
    return 0


def _cmd_isochrones(args: argparse.Namespace) -> int:
    facility_areas_note(0, args.facility_areas)  # a bad setting fails before any folder is made
    run = _run(runners.isochrones_run, args, "circles-isochrones")
    _say(console.facility_notes(run.extras["facilities"]), err=True)
    _say(console.isochrones_lines(run))
    return 0


def _cmd_coverage(args: argparse.Namespace) -> int:
    if args.command == "demo" and args.services is None:
        args.services = "osm"  # the demo shows the service mix OSM has in the extract
    run = _run(coverage_run, args, f"circles-{args.command}", lang=args.lang)
    _say(console.facility_notes(run.result.facilities), err=True)
    _say(console.coverage_lines(run))
    _say(console.service_notes(run.extras.get("services")), err=True)
    return 0


def _cmd_site(args: argparse.Namespace) -> int:
    site = runners.SiteRequest.from_args(args)
    if site.refusal():  # checked before the run folder exists: a refused request leaves nothing
        print(f"circles site: {site.refusal()}", file=sys.stderr)
        return 2
    _say(console.site_lines(_run(runners.site_folder_run, args, "circles-site", site=site, lang=args.lang)))
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    progress = CityProgress(show=args.progress)
    try:
        summary = run_audit(args.config, compare=args.compare, scheduler=args.scheduler,
                            workers=args.workers, out_root=args.out_root, progress=progress)
    finally:
        progress.close()
    _say(console.audit_notes(summary), err=True)
    print(summary.text())
    return 1 if len(summary.failed) else 0


def _cmd_explore(args: argparse.Namespace) -> int:
    _say(console.explorer_lines(runners.explore_run(args.dir, lang=args.lang, spacing_metres=args.spacing)))
    return 0


def _cmd_map(args: argparse.Namespace) -> int:
    page = {k: getattr(args, k) for k in ("lang", "tiles", "tiles_key", "tiles_crs", "basemap", "online", "offline",
                                          "facility_areas")}
    print(console.written(draw_run_map(args.dir, **page)))
    if args.png:
        from .outputs.print_map import print_run_map  # Matplotlib is loaded only for a print

        print(console.written(print_run_map(args.dir, lang=args.lang)))
    return 0


def _cmd_services(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile)
    _say(console.services_lines(load_catalogue(args.catalogue or profile.services or None, profile=profile)))
    return 0


def _cmd_profiles(args: argparse.Namespace) -> int:
    _say([get_profile(args.name).to_yaml()] if args.name else
         console.profile_lines((name, get_profile(name)) for name in list_profiles()))
    return 0


_COMMANDS = {"network": _cmd_network, "isochrones": _cmd_isochrones, "coverage": _cmd_coverage,
             "demo": _cmd_coverage, "site": _cmd_site, "audit": _cmd_audit, "explore": _cmd_explore,
             "map": _cmd_map, "services": _cmd_services, "profiles": _cmd_profiles}
_NETWORK_HELP = "OSM extract, road-line file, saved network{} or place name (default: the embedded Chengdu extract)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="circles",
        description="15-minute service circles on the real walking network: coverage, gaps, siting.")
    p.add_argument("--version", action="version", version=f"circles {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    net = sub.add_parser("network", help="build a walking network and print what it holds")
    net.add_argument("source", nargs="?", default=None, help=_NETWORK_HELP.format(" (.gpkg)"))
    net.add_argument("--out", help="save the network as a GeoPackage")
    net.add_argument("--crs", help="CRS of a road-line file without one (e.g. EPSG:4547)")
    net.add_argument("--snap-metres", type=float, default=None, help="road lines: close endpoint gaps up to this (default 2)")
    net.add_argument("--add-osm", help="road lines: add the footways of this OSM extract")
    net.add_argument("--repaired", help="road lines: write the repaired lines to this GeoPackage")
    net.add_argument("--class-column", help="road lines: the road-class column (default 等级/class)")
    net.add_argument("--walkable-column", help="road lines: the walkable yes/no column (default 步行/walkable)")
    net.add_argument("--keep-crossings", action="store_true",
                     help="road lines: do not join lines that cross without a shared vertex "
                          "(for layers that are already routable, such as OSM exports)")
    _routing_args(sub.add_parser("isochrones", help="service areas per facility and per tier"))
    _routing_args(sub.add_parser("coverage", help="who is inside each circle, who is left out, and where"),
                  population=True)
    _routing_args(sub.add_parser("demo", help="coverage on the embedded Chengdu data"), population=True, required=False)
    _site_args(sub.add_parser("site", help="propose new sites that cover the most people left out"))
    _folder_args(sub)
    aud = sub.add_parser("audit", help="a config file to a complete audit folder per city")
    aud.add_argument("config", help="the audit config (YAML)")
    aud.add_argument("--compare", default=None, help="an earlier audit folder to compare with")
    aud.add_argument("--scheduler", default=None, help="address of an existing Dask scheduler")
    aud.add_argument("--workers", type=int, default=2, help="local Dask workers (default 2)")
    aud.add_argument("--out-root", default=None, help="where audit folders go (default: beside the config)")
    aud.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="progress over the cities on stderr: done / running / failed, elapsed "
                          "(default: on a terminal; --progress in a batch job's log writes a line per change)")
    svc = sub.add_parser("services", help="list the service catalogue")
    svc.add_argument("--catalogue", default=None, help="a YAML or Excel catalogue to list instead")
    svc.add_argument("--profile", default=None, help="a profile whose catalogue to list")
    sub.add_parser("profiles", help="list the built-in profiles, or print one").add_argument(
        "name", nargs="?", help="a profile to print as YAML")
    return p


def _routing_args(sp, *, population: bool = False, required: bool = True) -> None:
    sp.add_argument("--network", default=None, help=_NETWORK_HELP.format(""))
    sp.add_argument("--facilities", required=False, default=None,
                    help="facility table: CSV/Excel/GeoJSON/GeoPackage/Shapefile (default: the sample Chengdu facilities)")
    sp.add_argument("--profile", default=None, help="built-in profile name or a YAML/TOML file (default: deyang)")
    sp.add_argument("--crs", default="wgs84", help="coordinates of the tables: wgs84, cgcs2000, gcj02, bd09 or EPSG:code")
    sp.add_argument("--out", required=required, default=None, help="new (or empty) output folder")
    sp.add_argument("--facility-areas", default=None, metavar="all|none|N",
                    help="write each facility's own service area for up to N facilities "
                         "(default 2000), for all, or for none; tier areas are always written")
    if not population:
        return
    sp.add_argument("--population", default=None, help="raster, polygons/grid with counts, or points "
                                                       "(default: an estimate from OSM residential buildings)")
    sp.add_argument("--pop-column", default=None, help="the population count column")
    sp.add_argument("--households-column", default=None, help="a households column (× persons per household)")
    sp.add_argument("--population-crs", default=None, help="CRS of a population file that has none")
    sp.add_argument("--residential", default=None, metavar="FILE",
                    help="residential buildings (footprint × levels) or land-use polygons, any CRS, "
                         "to place polygon counts on (default: the OSM extract of the network)")
    sp.add_argument("--drop-invalid", action="store_true",
                    help="exclude population rows with empty, non-numeric or negative counts and "
                         "count them, instead of stopping at the first")
    sp.add_argument("--units", action="append", default=None,
                    help="administrative unit polygons; repeat for levels from the top down (街道, 社区, 网格)")
    sp.add_argument("--lang", choices=("zh", "en"), default=None, help="map language")
    _page_options(sp)
    sp.add_argument("--services", default=None,
                    help="service points table, or 'osm' for the extract's own (kindergartens, "
                         "schools, clinics, markets...); a facility 'services' column counts too")
    sp.add_argument("--scenario", default=None,
                    help="a scenario exported from explorer.html: sites added and facilities closed")
    sp.add_argument("--unit-column", default=None, help="the unit name column")


def _site_args(st) -> None:
    _routing_args(st, population=True)
    st.add_argument("--tier", default="station", help="tier of the new sites (default station)")
    st.add_argument("--new", type=int, default=None, help="how many new sites (maximal covering)")
    st.add_argument("--target", type=float, default=None, help="coverage share to reach with the fewest sites, e.g. 0.9")
    st.add_argument("--candidates", default=None,
                    help="candidate sites (table or layer, in --crs); default: network nodes every 100 m")
    st.add_argument("--service", default=None, help="site for a service category instead of a tier, "
                                                    "e.g. kindergarten (needs --services or a services column)")
    st.add_argument("--landuse", default=None,
                    help="only candidates on these land uses, e.g. residential,commercial "
                         "(the candidate file's landuse column, or OSM landuse polygons)")
    st.add_argument("--exact", action="store_true", help="solve exactly with HiGHS (time-limited)")
    st.add_argument("--time-limit", type=float, default=60.0, help="seconds for the exact solver")
    st.add_argument("--seconds", type=float, default=2.0,
                    help="time budget of the default solver (default 2): it stops as soon as its answer "
                         "is proven optimal, otherwise it improves until then and reports the gap")
    st.add_argument("--capacity", action="store_true", help="each new site serves at most what its floor area provides for")


def _tiles_arg(value: str) -> str:
    """``--tiles`` of a run command, checked before any work (its Tianditu key included)."""
    try:
        tile_provider(value)
    except CirclesError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    return value


def _page_options(sp, *, key: bool = False) -> None:
    """How map.html is drawn. A run command records them (its map, and ``circles map`` later, use
    them); a Tianditu key is never recorded, so only ``circles map`` takes one (else TIANDITU_KEY)."""
    sp.add_argument("--tiles", default=None, metavar="NAME|URL", type=None if key else _tiles_arg,
                    help="map tiles: none (default: the basemap drawn from the extract), osm, tianditu, "
                         "tianditu-img, amap (overlays converted to GCJ-02), or a URL template such as "
                         "http://tiles.city.local/{z}/{x}/{y}.png")
    sp.add_argument("--tiles-crs", choices=("wgs84", "gcj02"), default=None,
                    help="coordinates of a --tiles URL's server (default wgs84; gcj02 converts the overlays)")
    sp.add_argument("--basemap", action=argparse.BooleanOptionalAction, default=None,
                    help="draw the basemap from the extract (default: only when there are no tiles)")
    sp.add_argument("--online", action="store_true", default=None,
                    help="load Leaflet from its CDN instead of inlining it (a smaller page that needs the internet)")
    if key:
        sp.add_argument("--tiles-key", default=None, help="the Tianditu key (default: the TIANDITU_KEY variable)")


def _folder_args(sub) -> None:
    """The commands on a finished run folder: explore and map."""
    ex = sub.add_parser("explore", help="write the offline scenario explorer into a run folder")
    ex.add_argument("dir", help="a run folder")
    ex.add_argument("--lang", choices=("zh", "en"), default=None)
    ex.add_argument("--spacing", type=float, default=150.0, help="candidate site spacing in metres")
    mp = sub.add_parser("map", help="(re)draw map.html from a run folder")
    mp.add_argument("dir", help="a run folder")
    mp.add_argument("--offline", action="store_true",
                    help="Leaflet inlined (the default; also for a run made with --online)")
    mp.add_argument("--lang", choices=("zh", "en"), default=None, help="language (default: the profile's)")
    _page_options(mp, key=True)
    mp.add_argument("--facility-areas", action=argparse.BooleanOptionalAction, default=None,
                    help=f"draw each facility's own service area (default: for up to {MAP_FACILITY_AREAS_MAX} facilities)")
    mp.add_argument("--png", action="store_true", help="also print map.png: A3 landscape at 200 dpi")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``circles`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    before = held_runs()
    limit_malloc_arenas()  # before the runs' threads start
    release_memory_every(1.0)  # a city's polygons free gigabytes in small pieces
    try:
        with console.warnings_as_notes():
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
