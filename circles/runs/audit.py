"""Annual audits: one config file to a complete audit folder per city, many cities on Dask.

A config names one city (``name``, ``year``, ``network``, ``facilities``...) or a list of them
under ``cities:`` (top-level keys are defaults for every city). Relative paths are relative to
the config file. Each city's audit folder is ``{name}-{year}`` beside the config (or under
``out_root``); an existing folder is never overwritten (``-2``, ``-3``... instead), and a re-run
skips a city whose latest audit folder was made from the same inputs (by their sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ..errors import CirclesError, DataError, InputFileError
from ..outputs.runfolder import CLAIM_NAME, Manifest, RunFolder, file_sha256, write_json
from .compare import check_compare_folder

__all__ = ["AuditSummary", "audit_city", "load_config", "run_audit"]

_PATH_KEYS = ("network", "facilities", "population", "units", "services", "candidates", "residential")
_KEYS = {"name", "year", "network", "facilities", "crs", "population", "pop_column",
         "households_column", "population_crs", "units", "unit_column", "profile", "site",
         "services", "lang", "compare", "candidates", "residential", "drop_invalid", "shared",
         "tiles", "tiles_crs", "basemap", "online"}
_SITE_KEYS = {"tier", "new", "target", "exact", "candidates", "crs", "capacity", "time_limit_s",
              "landuse", "seconds"}


def load_config(path: str | Path) -> list[dict]:
    """Read an audit config into one resolved dict per city.

    Raises
    ------
    DataError
        Unknown keys, a city without ``name``, a bad ``site`` block.

    """
    path = Path(path)
    if not path.exists():
        raise InputFileError("the audit config does not exist", file=path,
                             fix="give the path of a YAML file (see scripts/audit.example.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise DataError(f"not valid YAML ({err})", file=path, fix="check indentation and colons") from err
    if not isinstance(raw, dict):
        raise DataError("the config must be a mapping of keys", file=path,
                        fix="start from scripts/audit.example.yaml")
    base = {k: v for k, v in raw.items() if k != "cities"}
    blocks = raw.get("cities") or [{}]
    if not isinstance(blocks, list):
        raise DataError("'cities' must be a list of city blocks", file=path, field="cities",
                        fix="write each city as a '- name: ...' item")
    cities = []
    for i, block in enumerate(blocks, start=1):
        city = {**base, **(block or {})}
        _check_city(city, path, i, in_list="cities" in raw)
        city.setdefault("year", time.localtime().tm_year)
        _resolve_paths(city, path.parent)
        city["_config"] = str(path.resolve())
        cities.append(city)
    return cities


def _check_city(city: dict, path: Path, i: int, *, in_list: bool) -> None:
    """Refuse a city block with unknown keys, no name, or a bad ``drop_invalid`` or ``site``."""
    unknown = set(city) - _KEYS
    if unknown:
        raise DataError(f"unknown key(s) {sorted(unknown)}", file=path,
                        field=f"cities[{i}]" if in_list else None,
                        fix=f"use only: {', '.join(sorted(_KEYS))}")
    if not city.get("name"):
        raise DataError("a city has no name", file=path, field=f"cities[{i}].name",
                        fix="give every city a 'name' (it names the audit folder)")
    if not isinstance(city.get("drop_invalid", False), bool):
        raise DataError(f"drop_invalid must be true or false (got {city['drop_invalid']!r})", file=path,
                        field=f"{city['name']}.drop_invalid", fix="write drop_invalid: true (no quotes)")
    if city.get("tiles") or city.get("tiles_crs"):  # a bad tile source or a missing key fails first
        from ..outputs.tiles import tile_provider

        try:
            tile_provider(city.get("tiles"), crs=city.get("tiles_crs"))
        except CirclesError as err:
            raise DataError(f"bad tiles for {city['name']}: {err.message}", file=path,
                            field=f"{city['name']}.tiles", fix=err.fix) from err
    site = city.get("site")
    if site is not None and (not isinstance(site, dict) or set(site) - _SITE_KEYS):
        raise DataError("bad 'site' block", file=path, field=f"{city['name']}.site",
                        fix=f"use keys {sorted(_SITE_KEYS)}, e.g. {{tier: station, new: 5}}")


def _resolve_paths(city: dict, base: Path) -> None:
    """Relative paths in a city block are relative to the config file's folder."""
    def resolved(value) -> str:
        p = Path(str(value))
        return str(p if p.is_absolute() else (base / p))

    for key in _PATH_KEYS:
        if isinstance(city.get(key), list):  # units at several levels, top first
            city[key] = [resolved(v) for v in city[key]]
        elif city.get(key) and str(city[key]).lower() != "osm":
            city[key] = resolved(city[key])
    if city.get("compare"):
        city["compare"] = resolved(city["compare"])
    site = city.get("site")
    if isinstance(site, dict) and site.get("candidates"):
        site["candidates"] = resolved(site["candidates"])


def _signature(city: dict) -> str:
    """A digest of the city's config block and the contents of every input file."""
    h = hashlib.sha256()
    clean = {k: v for k, v in city.items() if not k.startswith("_") and k != "compare"}
    h.update(json.dumps(clean, sort_keys=True, default=str).encode())
    for key in _PATH_KEYS:
        values = city.get(key) if isinstance(city.get(key), list) else [city.get(key)]
        for value in values:
            if value and Path(str(value)).exists():
                h.update(file_sha256(value).encode())
    return h.hexdigest()


def _finished(out_root: Path, stem: str, signature: str) -> tuple[Path, dict] | None:
    """The latest finished audit folder made from the same inputs, and its audit record."""
    for folder in sorted(out_root.glob(f"{stem}*")):
        m = folder / "manifest.json"
        if not m.is_file() or (folder / CLAIM_NAME).exists():
            continue
        try:
            data = json.loads(m.read_text(encoding="utf-8"))
            audit = data.get("audit", {})
        except (ValueError, OSError, AttributeError):
            continue
        if data.get("complete") is not False and audit.get("complete") \
                and audit.get("input_signature") == signature:
            return folder, audit
    return None


def audit_city(city: dict, *, out_root: str | Path | None = None, compare: str | Path | None = None,
               progress=None) -> dict:
    """Run one city's audit and write its folder.

    Parameters
    ----------
    city
        One resolved block from :func:`load_config`.
    out_root
        Where audit folders go (default: beside the config).
    compare
        A previous audit folder to compare with (also ``compare:`` in the config).
    progress
        Called with each stage name.

    Returns
    -------
    dict
        The city's summary row: city, year, status (``done``/``skipped``), folder, seconds,
        covered share per tier.

    """
    t0 = time.perf_counter()
    root = Path(out_root) if out_root else Path(city.get("_config", ".")).parent
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputFileError(f"cannot create the audit folder root ({err.strerror or err})", file=root,
                             fix="give --out-root a folder you can write to") from err
    stem = f"{_slug(city['name'])}-{city['year']}"
    signature = _signature(city)
    compare = compare or city.get("compare")
    if compare:  # before the re-run check and any work: a bad folder is an error, never "skipped"
        check_compare_folder(compare)
    done = _finished(root, stem, signature)
    if done is not None:
        folder, audit = done
        counts = {k: audit[k] for k in ("facilities", "facilities_ok", "facilities_outside") if k in audit}
        return {"city": city["name"], "year": city["year"], "status": "skipped", "folder": str(folder),
                "seconds": round(time.perf_counter() - t0, 2), "error": "", **counts}
    # A failed city leaves no folder: the claim is abandoned (its folder removed) on any error.
    with RunFolder.claim_unique(root / stem, command="audit") as claim:
        row = _audit_steps(city, claim, compare=compare, signature=signature, progress=progress)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _audit_steps(city: dict, claim: RunFolder, *, compare, signature: str, progress) -> dict:
    """The city's site run (coverage, siting, map, explorer), comparison and report in the claimed folder."""
    from ..outputs.report import write_report
    from .inputs import RunInputs
    from .runners import SiteRequest, site_folder_run

    folder = claim.path
    manifest = Manifest("audit", {k: v for k, v in city.items() if not k.startswith("_")})
    manifest.add_input("config", city.get("_config"))
    site = SiteRequest.from_config(city["site"]) if city.get("site") else None
    run = site_folder_run(RunInputs.from_config(city), claim, site=site, manifest=manifest,
                          stages=progress, lang=city.get("lang"), finish=False)
    proposals = run.extras.get("proposals")
    changes = None
    if compare:
        from .compare import compare_audits

        _tick(progress, "compare")
        with manifest.timed("compare"):
            changes = compare_audits(compare, folder)
    _tick(progress, "report")
    with manifest.timed("report"):
        manifest.write(folder)
        write_report(folder, run=run, changes=changes, title=f"{city['name']} {city['year']}",
                     lang=city.get("lang"))
        # After the report, whose own small figure is also map.png: the audit keeps the A3 sheet.
        from ..outputs.print_map import print_run_map

        print_run_map(folder, lang=city.get("lang"), title=f"{city['name']} {city['year']}")
    status = run.result.facilities["status"].astype(str)
    counts = {"facilities": len(status), "facilities_ok": int((status == "ok").sum()),
              "facilities_outside": int((status == "outside_area").sum())}
    manifest.set("audit", {"city": city["name"], "year": city["year"], "input_signature": signature,
                           "complete": True, "compared_with": str(compare) if compare else None,
                           "proposals": 0 if proposals is None else len(proposals), **counts})
    claim.finish(manifest)
    row = {"city": city["name"], "year": city["year"], "status": "done", "folder": str(folder),
           "seconds": None, "error": "", **counts}
    row.update({f"{r.tier}_covered_share": round(float(r.covered_share), 4)
                for r in run.result.by_tier().itertuples()})
    prov = run.result.extras.get("provision")
    if prov is not None:
        row.update({f"{r.tier}_served_share": round(float(r.served_share), 4)
                    for r in prov.by_tier().itertuples()})
    return row


def _tick(progress, stage: str) -> None:
    if progress is not None:
        progress(stage)


def _slug(name: str) -> str:
    keep = "".join(c if (c.isalnum() or c in "-_") else "-" for c in str(name).strip())
    return keep.strip("-") or "city"


def _audit_task(city: dict, out_root: str | None, compare: str | None, progress=None) -> dict:
    """One city (on a Dask worker or here): a failure becomes a summary row, never a lost batch.

    Python warnings become the row's ``notes``: a worker's own stderr would print them as raw
    ``UserWarning`` lines with source paths, and the CLI prints notes as its own lines.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            row = audit_city(city, out_root=out_root, compare=compare, progress=progress)
        except CirclesError as err:
            row = _failed(city, str(err))
        except Exception as err:
            row = _failed(city, f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")
    notes = [" ".join(str(w.message).split()) for w in caught]
    row["notes"] = list(dict.fromkeys(n for n in notes if n))
    return row


def _failed(city: dict, error: str) -> dict:
    return {"city": city.get("name"), "year": city.get("year"), "status": "failed",
            "folder": "", "seconds": None, "error": error}


def _flag(row) -> str:
    """Why a finished city's figures cannot be trusted as they stand, or ''."""
    total, ok = getattr(row, "facilities", None), getattr(row, "facilities_ok", None)
    if row.status == "failed" or total is None or pd.isna(total) or not total:
        return ""
    if not ok:
        outside = getattr(row, "facilities_outside", 0)
        outside = 0 if outside is None or pd.isna(outside) else int(outside)
        return (f"none of its {int(total)} facilities is usable ({outside} outside the network's area), "
                "so nobody is covered: check the facilities file, its coordinates and 'crs'")
    return ""


@dataclass
class AuditSummary:
    """The outcome of an audit config: one row per city."""

    table: pd.DataFrame

    @property
    def failed(self) -> pd.DataFrame:
        """The cities whose audit failed, with the error."""
        return self.table[self.table["status"] == "failed"]

    @property
    def flagged(self) -> pd.DataFrame:
        """The cities that finished with figures that cannot stand as they are (e.g. every
        facility outside the area), with the reason in ``flag``."""
        flags = pd.Series([_flag(r) for r in self.table.itertuples()], index=self.table.index, dtype=object)
        return self.table.assign(flag=flags)[flags != ""]

    def text(self) -> str:
        """A one-screen summary."""
        lines = [f"{'city':20s} {'year':>5s} {'status':8s} {'seconds':>8s}  folder / error"]
        for r in self.table.itertuples():
            secs = "" if r.seconds is None or pd.isna(r.seconds) else f"{r.seconds:8.1f}"
            detail = r.folder if r.status != "failed" else str(r.error).splitlines()[0]
            lines.append(f"{str(r.city)[:20]:20s} {r.year!s:>5s} {r.status:8s} {secs:>8s}  {detail}")
        for r in self.flagged.itertuples():
            lines.append(f"  ! {r.city}: {r.flag}")
        for suffix, label in (("_covered_share", "covered share"), ("_served_share", "served under capacity")):
            lines += self._share_lines(suffix, label)
        return "\n".join(lines)

    def _share_lines(self, suffix: str, label: str) -> list[str]:
        """Each finished city's ``{tier}{suffix}`` figures on one line, or nothing without them."""
        shares = [c for c in self.table.columns if c.endswith(suffix)]
        if not shares:
            return []
        return ["", f"{label}: " + "; ".join(
            f"{r.city}: " + ", ".join(f"{c.removesuffix(suffix)} {getattr(r, c):.1%}"
                                      for c in shares if pd.notna(getattr(r, c)))
            for r in self.table.itertuples() if r.status != "failed")]


def run_audit(config: str | Path, *, compare: str | Path | None = None, scheduler: str | None = None,
              workers: int = 2, out_root: str | Path | None = None, progress=None,
              scatter_bytes: int | None = None) -> AuditSummary:
    """Run every city of an audit config; several cities (or any with a scheduler) run as Dask tasks.

    On Dask each city runs in a worker's own temporary folder from input files the client ships
    (those the config marks ``shared`` excepted) and the client writes its audit folder; a city
    rerun after a lost worker says so in its row (``retried``).

    Parameters
    ----------
    config
        The YAML config.
    compare
        A previous audit folder (single-city configs).
    scheduler
        Address of an existing Dask scheduler; default: a ``LocalCluster``.
    workers
        Workers of the local cluster.
    out_root
        Where audit folders go (default: beside the config).
    progress
        Called with ``(city, stage)``: ``queued``, the stages as they start, then ``done``,
        ``skipped`` or ``failed`` (and ``retried``); :class:`circles.runs.audit_progress.CityProgress`
        draws them.
    scatter_bytes
        On Dask, input files larger than this go to the workers by ``client.scatter`` (default
        ``audit_cluster.SCATTER_BYTES``, 1 MiB).

    Returns
    -------
    AuditSummary

    """
    from .audit_shipping import shared_inputs

    cities = load_config(config)
    for city in cities:  # a bad value fails before any work; kept out of the signature and manifest
        city["_shared"] = shared_inputs(city)
        city.pop("shared", None)
    if compare:  # an error before any work, whatever the cities' state
        check_compare_folder(compare)
    root = None if out_root is None else str(out_root)
    if len(cities) == 1 and not scheduler:
        city = cities[0]
        tick = None if progress is None else (lambda stage: progress(city["name"], stage))
        rows = [_audit_task(city, root, compare, tick)]
        if progress is not None:
            progress(city["name"], rows[0]["status"])
    else:
        rows = _run_on_dask(cities, root, scheduler=scheduler, workers=workers, progress=progress,
                            compare=compare if len(cities) == 1 else None, scatter_bytes=scatter_bytes)
    for row in rows:  # a city run here, skipped or refused before Dask ran on no worker
        row.setdefault("retried", 0)
        row.setdefault("worker", "")
    summary = AuditSummary(pd.DataFrame(rows))
    summary_root = Path(root) if root else Path(config).resolve().parent
    write_json(summary_root / f"audit-summary-{time.strftime('%Y%m%d-%H%M%S')}.json",
               summary.table.to_dict(orient="records"))
    return summary


def _run_on_dask(cities: list[dict], root: str | None, *, scheduler: str | None, workers: int,
                 progress=None, compare: str | Path | None = None, scatter_bytes: int | None = None
                 ) -> list[dict]:
    """The cities on Dask: the re-run check here on the original files, the rest shipped."""
    from .audit_cluster import SCATTER_BYTES, CityJob, open_client, run_jobs

    rows: dict[int, dict] = {}
    jobs: dict[int, CityJob] = {}
    for i, city in enumerate(cities):
        t0 = time.perf_counter()
        city_root = Path(root) if root else Path(city.get("_config", ".")).parent
        stem = f"{_slug(city['name'])}-{city['year']}"
        job_compare = str(compare or city.get("compare") or "") or None
        try:
            if job_compare:  # before the re-run check: a bad folder is an error, never "skipped"
                check_compare_folder(job_compare)
            try:
                city_root.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise InputFileError(f"cannot create the audit folder root ({err.strerror or err})",
                                     file=city_root, fix="give --out-root a folder you can write to") from err
            signature = _signature(city)
            done = _finished(city_root, stem, signature)
        except CirclesError as err:
            rows[i] = _failed(city, str(err))
        else:
            if done is None:
                jobs[i] = CityJob(city=city, root=city_root, stem=stem, signature=signature,
                                  compare=job_compare, shared=city.get("_shared", frozenset()))
            else:
                folder, audit = done
                counts = {k: audit[k] for k in ("facilities", "facilities_ok", "facilities_outside") if k in audit}
                rows[i] = {"city": city["name"], "year": city["year"], "status": "skipped", "folder": str(folder),
                           "seconds": round(time.perf_counter() - t0, 2), "error": "", **counts}
        if progress is not None:
            progress(city["name"], rows[i]["status"] if i in rows else "queued")
    if jobs:
        with _quiet_dask(), open_client(scheduler, workers=workers) as client:
            done_rows = run_jobs(client, list(jobs.values()), task=_audit_task, path_keys=_PATH_KEYS,
                                 progress=progress,
                                 scatter_bytes=SCATTER_BYTES if scatter_bytes is None else scatter_bytes)
        rows.update(zip(jobs, done_rows, strict=True))
    return [rows[i] for i in range(len(cities))]


@contextlib.contextmanager
def _quiet_dask():
    """Silence distributed's own logging (start-up, shutdown chatter) while a cluster runs."""
    names = ("distributed", "distributed.comm", "distributed.worker", "distributed.nanny",
             "distributed.scheduler", "distributed.core", "distributed.client", "tornado", "asyncio")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
