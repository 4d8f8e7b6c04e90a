"""The words of the ``circles`` command: a run's results as the lines it prints, its progress bars
and its ``note:`` lines on stderr.

Each ``*_lines`` function takes what a runner returned and gives lines (``note``/``facility`` lines
for stderr come from their own functions); the CLI only prints them.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator

__all__ = ["audit_notes", "coverage_lines", "explorer_lines", "facility_notes",
           "isochrones_lines", "network_lines", "profile_lines", "progress_bar", "service_notes",
           "services_lines", "site_lines", "warnings_as_notes", "written"]

_PROPOSAL_COLUMNS = ["rank", "lon", "lat", "new_covered_pop", "cumulative_covered_share",
                     "nearest_existing_minutes"]


def written(path) -> str:
    """The last line of every command that writes."""
    return f"written: {path}"


def facility_notes(fac) -> list[str]:
    """One stderr line per facility left out of routing (not snapped, outside the area...)."""
    return [f"facility {row.facility_id} ({row.name}): {row.status}, left out of routing"
            for row in fac[fac["status"] != "ok"].itertuples()]


def network_lines(built, source: str | None) -> list[str]:
    """What ``circles network`` built (``built`` from :func:`circles.runs.runners.network_run`)."""
    net = built.network
    rep = net.summary()
    lines = [f"network:    {rep.get('source') or source or 'embedded Chengdu extract'}",
             f"nodes:      {net.n_nodes:,}", f"edges:      {net.n_edges:,}",
             f"walkable:   {net.km:,.1f} km"]
    if "segments_not_walkable" in rep:
        lines.append(f"not walkable (filtered out): {rep['segments_not_walkable']:,} segments, "
                     f"{rep.get('km_not_walkable', 0):,.1f} km")
    lines.append(f"components dropped: {rep.get('components_dropped', 0):,} "
                 f"({rep.get('nodes_dropped', 0):,} nodes, {rep.get('km_dropped', 0):,.1f} km)")
    for key, value in (rep.get("repairs") or {}).items():
        lines.append(f"repair {key}: {value:,}" if isinstance(value, int) else f"repair {key}: {value}")
    lines.append(f"crs:        {net.crs.to_string()}")
    lines.append(f"extent:     {rep.get('extent', 'none')} {rep.get('extent_bounds_wgs84') or ''}".rstrip())
    lines.append(f"time:       {built.seconds:.2f} s")
    if built.saved:
        lines.append(f"saved:      {built.saved}")
    return lines


def isochrones_lines(run) -> list[str]:
    """Polygons per layer of an isochrones run, the per-facility areas' note and the folder."""
    lines = [f"{name:28s} {len(gdf):5d} polygons" for name, gdf in run.extras["layers"].items()]
    return [*lines, *_areas_note(run.manifest), written(run.folder)]


def _areas_note(manifest) -> list[str]:
    message = (manifest.data.get("facility_areas") or {}).get("message")
    return [message] if message else []


def _population_lines(manifest) -> list[str]:
    """What the population reader decided: spread per polygon, separators read, rows dropped."""
    return [f"population: {note}" for note in manifest.data.get("population", {}).get("notes", [])]


def coverage_lines(run) -> list[str]:
    """A coverage run: the summary, population notes, access per service, the folder."""
    return [run.result.summary_text(), *_provision_lines(run.extras.get("provision")),
            *_population_lines(run.manifest), *_service_lines(run.extras.get("services")),
            *_scorecard_lines(run.manifest), *_areas_note(run.manifest), written(run.folder)]


def _provision_lines(prov) -> list[str]:
    """Served under capacity per tier (a :class:`circles.engine.provision_tiers.ProvisionResult`):
    served, within reach but not served, and the floor area that would serve them; then the rule."""
    if prov is None:
        return []
    lines = [f"\nserved under capacity\n{'tier':10s} {'served':>10s} {'covered, unserved':>17s} "
             f"{'share':>6s} {'extra floor m²':>14s}"]
    for r in prov.by_tier().itertuples():
        lines.append(f"{r.tier:10s} {r.served_pop:10,.0f} {r.covered_unserved_pop:17,.0f} "
                     f"{r.served_share:6.1%} {r.extra_floor_area_m2:14,.0f}")
    return [*lines, prov.rule]


def _scorecard_lines(manifest) -> list[str]:
    card = manifest.data.get("scorecard")
    if not card:
        return []
    lines = [f"scorecard ({card['city']}'s documents): {card['all_passed']:,} of {card['communities']:,} "
             "communities meet every rule (scorecard.csv, standards_by_unit.csv)"]
    return lines + [f"  {note}" for note in card["not_evaluated"]]


def _service_lines(access) -> list[str]:
    if access is None:
        return []
    lines = [f"\n{'service':18s} {'metres':>7s} {'group':>9s} {'covered':>10s} {'uncovered':>10s} {'share':>6s}"]
    for r in access.by_service().itertuples():
        lines.append(f"{r.service:18s} {r.threshold_metres:7.0f} {r.group or '-':>9s} {r.covered_pop:10,.0f} "
                     f"{r.uncovered_pop:10,.0f} {r.covered_share:6.1%}")
    s = access.score_summary().iloc[0]
    lines.append(f"life-circle score: {s.reach_all_share:.1%} of the population reach all "
                 f"{s.required_categories} required categories (mean {s.mean_score:.1f}); "
                 f"most missing: {s.most_missing}")
    return lines


def service_notes(access) -> list[str]:
    """The service access warnings, as ``note:`` lines for stderr."""
    return [] if access is None else [f"note: {w}" for w in access.warnings]


def site_lines(run) -> list[str]:
    """A site run: the coverage summary, the proposals table, the solver and its explanation."""
    proposals = run.extras["proposals"]
    lines = [run.result.summary_text(), *_provision_lines(run.extras.get("provision")),
             *_population_lines(run.manifest), "", proposals[_PROPOSAL_COLUMNS].to_string(index=False),
             proposals["solver"].iloc[0] if len(proposals) else "no site adds coverage"]
    if run.extras.get("explanation"):
        lines.append(run.extras["explanation"])
    return [*lines, written(run.folder)]


def explorer_lines(explorer) -> list[str]:
    """What ``circles explore`` wrote (``explorer`` from :func:`circles.runs.runners.explore_run`)."""
    data = explorer.data
    return [f"explorer: {len(data['demand']['pop']):,} demand {'cells' if data['aggregated'] else 'points'}, "
            f"{len(data['sites']['lon']):,} sites; about {explorer.size / 1e6:.1f} MB", written(explorer.path)]


def audit_notes(summary) -> list[str]:
    """Each city's notes (its Python warnings), as ``note: CITY: ...`` lines for stderr."""
    table = summary.table
    return [f"note: {city}: {note}"
            for city, notes in zip(table["city"], table.get("notes", []), strict=False)
            for note in (notes if isinstance(notes, list) else [])]


def services_lines(catalogue) -> list[str]:
    """The service catalogue, one category a line."""
    lines = []
    for c in catalogue:
        threshold = f"{c.metres:g} m" if c.metres is not None else f"{c.minutes:g} min"
        lines.append(f"{c.code:18s} {c.name_zh:10s} {threshold:>8s}  group {c.group or '-':10s} "
                     f"{'required' if c.required else 'optional':8s}  {c.source}")
    return lines


def profile_lines(profiles) -> list[str]:
    """The built-in profiles (name, profile pairs), one a line, and how to start from one."""
    lines = []
    for name, p in profiles:
        tiers = " / ".join(f"{t.name_zh} {p.threshold_minutes(t.code):g} min "
                           f"({p.threshold_metres(t.code):g} m)" for t in p.tiers)
        lines.append(f"{name:10s} {p.title_en}: {tiers}; {'nested' if p.nested else 'not nested'}")
    return [*lines, "\nprint one as a file to start from: circles profiles NAME > my_profile.yaml"]


def progress_bar(desc: str):
    """A stage progress bar on stderr (quiet when stderr is not a terminal) and its tick."""
    from tqdm import tqdm

    bar = tqdm(total=3, desc=desc, unit="stage", leave=False, file=sys.stderr,
               disable=not sys.stderr.isatty())

    def tick(stage: str) -> None:
        bar.set_postfix_str(stage)
        bar.update(1 if bar.n < bar.total else 0)

    return bar, tick


@contextlib.contextmanager
def warnings_as_notes() -> Iterator[None]:
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
