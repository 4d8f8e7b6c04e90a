"""Benchmark: where a city's memory goes, stage by stage, in one process.

The city, facilities and residents are ``bench_city.py``'s (the same files, written or reused
under ``--keep``). Each stage of ``circles coverage`` runs here one after another, not side by
side as the command runs them, so that each one's memory can be told apart: after a stage the
freed memory is given back to the system (``release_freed_memory``) and the resident set size
is read, so ``held`` is what the stage leaves behind for the later ones; ``peak`` is the highest
resident set size seen while it ran (sampled every 20 ms), so ``peak - before`` is what it needs
on top of what is held.

The floor beside it is ``bench_city.py``'s reference pipeline without polygons (read, snap,
coverage, two CSVs) in its own process: the memory a run needs before it draws any area. The
target (issue 20) is 3 GB for the whole run at 1M nodes; what the polygon stages hold beyond the
floor is what a lighter design would have to remove.

Usage: python scripts/bench_memory.py [--nodes 250k|1m] [--quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from bench_city import SIZES, _child, _inputs  # the same city, and its floor

_PAGE = os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", choices=["250k", "1m"], default="1m")
    ap.add_argument("--quick", action="store_true", help="a ~20k-node city (a smoke check)")
    ap.add_argument("--keep", metavar="DIR", help="write (and reuse) the inputs under DIR")
    args = ap.parse_args()
    size = "quick" if args.quick else args.nodes
    folder = Path(args.keep) / f"city_{size}" if args.keep else Path(tempfile.mkdtemp(prefix="bench-mem-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _inputs(folder, *SIZES[size])
        # First, while this process is small: a child's peak counts what it shares before exec.
        wall, peak, rc = _child([sys.executable, str(Path(__file__).with_name("bench_city.py")),
                                 "--floor", str(folder)])
        print(f"{'floor: reference pipeline, no polygons':<44}{wall:>7.1f} s {peak:>8.0f} MB peak  rc={rc}")
        _stages(folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


class _Meter:
    """The resident set size after each stage (freed memory given back) and its peak during it."""

    def __init__(self) -> None:
        from circles.runs.background import limit_malloc_arenas, release_freed_memory

        limit_malloc_arenas()  # as the command does
        self._release = release_freed_memory
        gc.collect()
        self._release()  # the first reading on the same footing as the later ones
        self.held = self._rss()
        self.high = self.held
        self.t = time.perf_counter()
        threading.Thread(target=self._sample, daemon=True).start()
        print(f"{'stage':<44}{'seconds':>9}{'held MB':>10}{'(+)':>8}{'peak MB':>10}{'(+)':>8}")

    @staticmethod
    def _rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20

    def _sample(self) -> None:
        while True:
            self.high = max(self.high, self._rss())
            time.sleep(0.02)

    def mark(self, stage: str) -> None:
        gc.collect()
        self._release()
        held, before = self._rss(), self.held
        print(f"{stage:<44}{time.perf_counter() - self.t:>9.1f}{held:>10.0f}{held - before:>+8.0f}"
              f"{self.high:>10.0f}{self.high - before:>+8.0f}", flush=True)
        self.held = self.high = held
        self.t = time.perf_counter()


def _stages(folder: Path) -> None:
    warnings.simplefilter("ignore")  # the synthetic city's notes (people near its edge) are expected
    meter = _Meter()
    from circles.engine import isochrones
    from circles.engine.coverage import compute_coverage
    from circles.engine.facility_areas import forget_index
    from circles.engine.gaps import gap_hexagons
    from circles.outputs.basemap import write_basemap
    from circles.outputs.runfolder import Manifest
    from circles.runs.inputs import RunInputs
    from circles.runs.pipeline import facility_anchor_frame, load_demand, load_network_facilities

    meter.mark("imports")
    inputs = RunInputs(network=folder / "city.osm.pbf", facilities=folder / "facilities.csv",
                       population=folder / "population.csv")
    manifest = Manifest("coverage", {})
    net, profile, fac = load_network_facilities(inputs, manifest)
    meter.mark("network, facilities snapped (edge index)")
    demand, _ = load_demand(inputs, manifest, net, profile)
    meter.mark("population snapped")
    result = compute_coverage(net, fac, demand, profile=profile)
    meter.mark("coverage")
    gaps = gap_hexagons(result)
    meter.mark("gap hexagons")
    with tempfile.TemporaryDirectory() as tmp:
        write_basemap(net, Path(tmp) / "basemap.gpkg")
    meter.mark("basemap written")
    anchors, ok = facility_anchor_frame(fac)
    isochrones.street_faces(net).cores(profile.street_buffer_metres)
    meter.mark("street faces and block cores")
    iso = isochrones.tier_isochrones(net, anchors, fac["tier"].to_numpy()[ok], profile,
                                     ids=fac["facility_id"].to_numpy()[ok])
    meter.mark("tier areas and per-facility areas")
    forget_index(net)
    meter.mark("face index let go")
    minutes = sorted(profile.threshold_minutes(t) for t in profile.tiers)
    iso["bands"] = isochrones.distance_bands(net, anchors, minutes=minutes, profile=profile)
    meter.mark("rings")
    isochrones.forget_areas(net)
    meter.mark("faces, cores and kept areas let go")
    del iso, gaps, result, demand
    meter.mark("layers and coverage let go")


if __name__ == "__main__":
    main()
