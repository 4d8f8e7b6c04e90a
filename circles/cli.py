"""The ``circles`` command. It parses, calls the library and prints; it never computes."""

from __future__ import annotations

import argparse
import sys
import time
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
    from .network import load_network

    bar, tick = _progress("network")
    try:
        return load_network(source, crs=crs, progress=tick, **options)
    finally:
        bar.close()


@_command("network")
def _cmd_network(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    options = {}
    if args.snap_metres is not None:
        options["snap_metres"] = args.snap_metres
    if args.add_osm:
        options["add_osm"] = args.add_osm
    if args.repaired:
        options["repaired"] = args.repaired
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
    print(f"time:       {seconds:.2f} s")
    if args.out:
        path = net.save(args.out)
        print(f"saved:      {path}")
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``circles`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except CirclesError as err:
        print(f"circles {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _ensure_path(value: str | None) -> Path | None:
    return None if value is None else Path(value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
