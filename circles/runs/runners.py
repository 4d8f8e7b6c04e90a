"""The runs behind the commands: a network, isochrones, a site run (coverage, new sites, the map and
the explorer, for ``circles site`` and every audit city alike) and the explorer of a finished run.

Each reads through :class:`~circles.runs.inputs.RunInputs`, writes its folder and returns what it
made; none prints (the CLI words the results with :mod:`circles.outputs.console`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..outputs.runfolder import Manifest, RunFolder
from .inputs import RunInputs
from .pipeline import RunOutput, coverage_run, isochrone_layers, load_facilities, site_run
from .proposals import SiteRequest

__all__ = ["ExplorerOutput", "NetworkOutput", "SiteRequest", "claim_run_folder", "explore_run",
           "isochrones_run", "network_run", "site_folder_run"]


def claim_run_folder(out: str | Path | None, stem: str) -> RunFolder:
    """Claim ``out`` for a run, or without one a new ``{stem}-{date-time}`` folder here."""
    if out:
        return RunFolder.claim(out, command=stem)
    return RunFolder.claim_unique(Path.cwd() / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}", command=stem)


@contextlib.contextmanager
def _claimed(out, command: str) -> Iterator[RunFolder]:
    """The run folder ``out`` (claimed here unless it is a caller's claim); a run that fails in
    it leaves nothing behind, but a caller's claim stays the caller's to abandon."""
    claim = out if isinstance(out, RunFolder) else RunFolder.claim(out, command=command)
    try:
        yield claim
    except BaseException:
        if claim is not out:
            claim.abandon()
        raise


def site_folder_run(inputs: RunInputs, out, *, site: SiteRequest | None = None,
                    manifest: Manifest | None = None, progress: Callable | None = None,
                    stages: Callable[[str], None] | None = None, lang: str | None = None,
                    finish: bool = True) -> RunOutput:
    """Coverage, new sites (when ``site`` is given), the map and the explorer into one run folder.

    Parameters
    ----------
    inputs
        What to read.
    out
        The run folder: a path, or a :class:`~circles.io.RunFolder` the caller has claimed.
    site
        What to site; ``None``: coverage and the map only (an audit city without ``site:``).
    manifest
        A manifest to fill (a new one by default).
    progress, stages
        Called with each network stage, and with each stage of this run (``coverage``, ``siting``).
    lang
        Language of the map and the explorer (default: the profile's).
    finish
        Mark the run complete; ``False`` when more files follow (an audit's report).

    Returns
    -------
    RunOutput
        The run; its proposals, if any, in ``extras["proposals"]``.

    """
    with _claimed(out, "site") as claim:
        _tick(stages, "coverage")
        run = coverage_run(inputs, claim, manifest=manifest, progress=progress, draw_map=False,
                           finish=False)
        manifest = run.manifest
        if site is not None:
            _tick(stages, "siting")
            manifest.add_input("candidates", site.candidates)
            with manifest.timed("siting"):
                site_run(run, site)
        _pages(run, lang=lang, explorer=site is not None)
        if finish:
            claim.finish(manifest)
    return run


def _pages(run: RunOutput, *, lang: str | None, explorer: bool) -> None:
    """The map (read from the folder, so after the manifest) and the explorer of a sited run."""
    from ..outputs.explorer import write_explorer
    from ..outputs.maps import draw_run_map

    with run.manifest.timed("map"):
        run.manifest.write(run.folder)
        draw_run_map(run.folder, lang=lang)
    if explorer:
        with run.manifest.timed("explorer"):
            write_explorer(run.folder, run=run, lang=lang)


def _tick(stages: Callable[[str], None] | None, stage: str) -> None:
    if stages is not None:
        stages(stage)


def isochrones_run(inputs: RunInputs, out, *, manifest: Manifest | None = None,
                   progress: Callable | None = None) -> RunOutput:
    """Service areas per tier, per facility (up to ``inputs.facility_areas``) and the rings, written
    as ``isochrones.gpkg`` into the run folder ``out``.

    Returns
    -------
    RunOutput
        With ``result=None``; the layers in ``extras["layers"]``, the facilities in
        ``extras["facilities"]``.

    """
    from ..engine.isochrones import facility_areas_note
    from ..outputs.tables import write_layers
    from ..readers.profiles import get_profile
    from .load import load_network

    facility_areas_note(0, inputs.facility_areas)  # a bad setting fails before any work
    manifest = manifest or Manifest("isochrones", dict(vars(inputs)))
    with _claimed(out, "isochrones") as claim:
        with manifest.timed("network"):
            net = load_network(inputs.network, progress=progress, **inputs.network_options)
        manifest.add_input("network", net.report.get("source"))
        profile = get_profile(inputs.profile)
        fac = load_facilities(inputs, net, profile, manifest)
        with manifest.timed("isochrones"):
            layers = isochrone_layers(net, fac, profile, facility_areas=inputs.facility_areas)
        files = [write_layers(layers, claim.path / "isochrones.gpkg")]
        ok = int((fac["status"] == "ok").sum())
        manifest.count(facilities=len(fac), facilities_ok=ok, nodes=net.n_nodes)
        manifest.set("facility_areas", facility_areas_note(ok, inputs.facility_areas))
        claim.finish(manifest)
    return RunOutput(folder=claim.path, result=None, files=files, manifest=manifest,
                     extras={"layers": layers, "facilities": fac})


@dataclass
class NetworkOutput:
    """A network built by :func:`network_run`: the network, the seconds it took, where it was saved."""

    network: object
    seconds: float
    saved: Path | None = None
    options: dict = field(default_factory=dict)


def network_run(source: str | None, *, crs: str | None = None, out: str | Path | None = None,
                options: dict | None = None, progress: Callable | None = None) -> NetworkOutput:
    """Build the walking network of ``source`` (see :func:`circles.load_network`, whose keyword
    options ``options`` holds) and save it as a GeoPackage when ``out`` is given."""
    from ..outputs.network_file import save_network
    from .load import load_network

    t0 = time.perf_counter()
    net = load_network(source, crs=crs, progress=progress, **(options or {}))
    seconds = time.perf_counter() - t0
    return NetworkOutput(network=net, seconds=seconds, saved=save_network(net, out) if out else None,
                         options=dict(options or {}))


@dataclass
class ExplorerOutput:
    """The explorer written by :func:`explore_run`: its data, its estimated size and its path."""

    data: dict
    size: int
    path: Path


def explore_run(folder: str | Path, *, lang: str | None = None,
                spacing_metres: float = 150.0) -> ExplorerOutput:
    """Rebuild a finished run from its folder and write its ``explorer.html`` there."""
    from ..outputs.explorer import estimate_size, explorer_data, render
    from ..outputs.runfolder import write_text
    from .rerun import rerun

    folder = Path(folder)
    run = rerun(folder)
    data = explorer_data(run, spacing_metres=spacing_metres)
    path = write_text(folder / "explorer.html",
                      render(data, lang=lang or run.result.profile.lang, title=folder.name))
    return ExplorerOutput(data=data, size=estimate_size(data), path=path)
