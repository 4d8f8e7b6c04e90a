"""Year-over-year comparison of two run or audit folders: what changed, and what it did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyproj

from ..errors import InputFileError
from ..outputs.runfolder import read_run_manifest
from ..outputs.tables import read_csv, write_csv

__all__ = ["check_compare_folder", "compare_audits", "match_facilities"]

_MOVED_METRES = 50.0
_SAME_NAME_METRES = 500.0
_GEOD = pyproj.Geod(ellps="WGS84")
_COLUMNS = ["kind", "subject", "tier", "unit", "before", "after", "change", "detail"]


def check_compare_folder(folder: str | Path) -> Path:
    """An earlier run or audit folder fit to compare with, or a clear error.

    Raises
    ------
    InputFileError
        The path is a file or does not exist, the run in it did not finish or is corrupt, or it
        lacks ``facilities.csv`` or ``coverage_by_tier.csv``.

    """
    path = Path(folder)
    fix = "give --compare the folder of an earlier audit (or coverage run)"
    if path.exists() and not path.is_dir():
        raise InputFileError("this is a file; --compare needs the folder of an earlier audit", file=path,
                             fix=fix)
    if not path.exists():
        raise InputFileError("the folder to compare with does not exist", file=path, fix=fix)
    read_run_manifest(path)
    for name in ("facilities.csv", "coverage_by_tier.csv"):
        if not (path / name).is_file():
            raise InputFileError(f"the folder to compare with has no {name}", file=path, fix=fix)
    return path


def _read(folder: Path, name: str, *, required: bool = True) -> pd.DataFrame | None:
    path = folder / name
    if not path.exists():
        if required:
            raise InputFileError(f"the folder has no {name}", file=folder,
                                 fix="compare with a folder written by 'circles audit' or 'circles coverage'")
        return None
    return read_csv(path, dtype={"facility_id": str})


def _metres(a: pd.DataFrame, b: pd.DataFrame) -> np.ndarray:
    _, _, d = _GEOD.inv(a["lon"].to_numpy(float), a["lat"].to_numpy(float),
                        b["lon"].to_numpy(float), b["lat"].to_numpy(float))
    return np.asarray(d)


def match_facilities(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Pair facilities of two years: by id, else by the same name within 500 m.

    Returns
    -------
    pandas.DataFrame
        One row per facility of either year: ``id_before``, ``id_after``, ``name``,
        ``tier_before``, ``tier_after``, ``moved_m`` and ``status`` (``added``, ``removed``,
        ``moved``, ``retiered``, ``moved+retiered``, ``unchanged``).

    """
    b = before.reset_index(drop=True).assign(_i=lambda d: np.arange(len(d)))
    a = after.reset_index(drop=True).assign(_j=lambda d: np.arange(len(d)))
    pairs = b.merge(a, on="facility_id", suffixes=("_b", "_a"))[["_i", "_j"]]
    left_b = b[~b["_i"].isin(pairs["_i"])]
    left_a = a[~a["_j"].isin(pairs["_j"])]
    # Only a real name pairs two facilities: pandas would match a missing name with a missing name.
    named_b = left_b[left_b["name"].notna() & left_b["name"].astype(str).str.strip().ne("")]
    by_name = named_b.merge(left_a[left_a["name"].notna()], on="name", suffixes=("_b", "_a"))
    if len(by_name):
        near = _metres(by_name[["lon_b", "lat_b"]].set_axis(["lon", "lat"], axis=1),
                       by_name[["lon_a", "lat_a"]].set_axis(["lon", "lat"], axis=1)) <= _SAME_NAME_METRES
        by_name = by_name[near].drop_duplicates("_i").drop_duplicates("_j")
        pairs = pd.concat([pairs, by_name[["_i", "_j"]]], ignore_index=True)
    pb, pa = b.loc[pairs["_i"]].reset_index(drop=True), a.loc[pairs["_j"]].reset_index(drop=True)
    moved = _metres(pb, pa) if len(pairs) else np.array([])
    retiered = pb["tier"].astype(str).to_numpy() != pa["tier"].astype(str).to_numpy()
    status = np.where(moved > _MOVED_METRES, np.where(retiered, "moved+retiered", "moved"),
                      np.where(retiered, "retiered", "unchanged"))
    matched = pd.DataFrame({"id_before": pb["facility_id"], "id_after": pa["facility_id"],
                            "name": pa["name"], "tier_before": pb["tier"], "tier_after": pa["tier"],
                            "moved_m": np.round(moved, 1), "status": status})
    removed = b[~b["_i"].isin(pairs["_i"])]
    added = a[~a["_j"].isin(pairs["_j"])]
    return pd.concat([
        matched,
        pd.DataFrame({"id_before": removed["facility_id"], "id_after": None, "name": removed["name"],
                      "tier_before": removed["tier"], "tier_after": None, "moved_m": np.nan,
                      "status": "removed"}),
        pd.DataFrame({"id_before": None, "id_after": added["facility_id"], "name": added["name"],
                      "tier_before": None, "tier_after": added["tier"], "moved_m": np.nan,
                      "status": "added"}),
    ], ignore_index=True)


_COVERAGE_FIGURES = (("covered_pop", "people"), ("covered_share", "share"))
_PROVISION_FIGURES = (("served_pop", "served"), ("covered_unserved_pop", "covered unserved"),
                      ("served_share", "served share"))


def _coverage_changes(before: pd.DataFrame, after: pd.DataFrame, keys: list[str], kind: str,
                      figures: tuple[tuple[str, str], ...] = _COVERAGE_FIGURES) -> list[dict]:
    m = before.merge(after, on=keys, how="outer", suffixes=("_b", "_a"))
    rows = []
    for r in m.itertuples(index=False):
        d = r._asdict()
        for col, label in figures:
            vb, va = d.get(f"{col}_b"), d.get(f"{col}_a")
            vb = float(vb) if vb is not None and pd.notna(vb) else np.nan
            va = float(va) if va is not None and pd.notna(va) else np.nan
            subject = d.get("unit", "study area")
            if d.get("level") and d["level"] != "unit":
                subject = f"{d['level']} {subject}"
            rows.append({"kind": f"{kind} {label}", "subject": subject,
                         "tier": d["tier"], "unit": d.get("unit", ""), "before": vb, "after": va,
                         "change": va - vb, "detail": col})
    return rows


def _unit_changes(prev: Path, new: Path, name: str, kind: str,
                  figures: tuple[tuple[str, str], ...]) -> list[dict]:
    """Changes per unit (and level, when both folders have levels) of a by-unit table both have."""
    ub, ua = _read(prev, name, required=False), _read(new, name, required=False)
    if ub is None or ua is None:
        return []
    keys = ["level", "unit", "tier"] if "level" in ub.columns and "level" in ua.columns else ["unit", "tier"]
    return _coverage_changes(ub, ua, keys, kind, figures)


def _provision_changes(prev: Path, new: Path) -> list[dict]:
    """Served under capacity per tier and per unit; a folder from before provision (no
    ``provision_by_tier.csv``) is not compared, and one row says so."""
    pb, pa = _read(prev, "provision_by_tier.csv", required=False), _read(new, "provision_by_tier.csv", required=False)
    if pb is None and pa is None:
        return []
    if pb is None or pa is None:
        which = "earlier" if pb is None else "later"
        return [{"kind": "provision not compared", "subject": "provision_by_tier.csv", "tier": "", "unit": "",
                 "before": np.nan, "after": np.nan, "change": np.nan,
                 "detail": f"the {which} folder has no provision_by_tier.csv (written before provision)"}]
    return (_coverage_changes(pb, pa, ["tier"], "provision", _PROVISION_FIGURES)
            + _unit_changes(prev, new, "provision_by_unit.csv", "unit provision", _PROVISION_FIGURES))


def _gap_changes(prev: Path, new: Path) -> list[dict]:
    import geopandas as gpd
    import pyogrio

    rows = []
    if not (prev / "gaps.gpkg").exists() or not (new / "gaps.gpkg").exists():
        return rows
    layers_b = {n for n, _ in pyogrio.list_layers(prev / "gaps.gpkg")}
    layers_a = {n for n, _ in pyogrio.list_layers(new / "gaps.gpkg")}
    for layer in sorted(layers_b | layers_a):
        gb = gpd.read_file(prev / "gaps.gpkg", layer=layer) if layer in layers_b else None
        ga = gpd.read_file(new / "gaps.gpkg", layer=layer) if layer in layers_a else None
        tier = layer.removeprefix("gaps_")

        def cells(g):
            return {} if g is None or not len(g) else dict(
                zip(g["h3"], g["uncovered_pop"].fillna(0), strict=True))

        cb = {k: v for k, v in cells(gb).items() if v > 0}
        ca = {k: v for k, v in cells(ga).items() if v > 0}
        closed, opened = set(cb) - set(ca), set(ca) - set(cb)
        rows.append({"kind": "gaps closed", "subject": f"{len(closed)} hexagons", "tier": tier,
                     "unit": "", "before": float(sum(cb[c] for c in closed)), "after": 0.0,
                     "change": -float(sum(cb[c] for c in closed)),
                     "detail": ";".join(sorted(closed))})
        rows.append({"kind": "gaps opened", "subject": f"{len(opened)} hexagons", "tier": tier,
                     "unit": "", "before": 0.0, "after": float(sum(ca[c] for c in opened)),
                     "change": float(sum(ca[c] for c in opened)), "detail": ";".join(sorted(opened))})
    return rows


def compare_audits(previous: str | Path, current: str | Path, *, write: bool = True) -> pd.DataFrame:
    """What changed between an earlier audit and this one; written as ``changes.csv``.

    Parameters
    ----------
    previous, current
        Run or audit folders (``facilities.csv``, ``coverage_by_tier.csv``, optionally
        ``coverage_by_unit.csv``, ``provision_by_tier.csv``, ``provision_by_unit.csv`` and
        ``gaps.gpkg``).
    write
        Write ``changes.csv`` into ``current``.

    Returns
    -------
    pandas.DataFrame
        ``kind`` (facility added/removed/moved/retiered, coverage people/share per tier and
        per unit, provision served / covered unserved / served share per tier and per unit,
        gaps closed/opened), ``subject``, ``tier``, ``unit``, ``before``, ``after``,
        ``change``, ``detail``.

    """
    prev, new = check_compare_folder(previous), Path(current)
    fb, fa = _read(prev, "facilities.csv"), _read(new, "facilities.csv")
    rows: list[dict] = []
    for r in match_facilities(fb, fa).itertuples():
        if r.status == "unchanged":
            continue
        rows.append({"kind": f"facility {r.status}", "subject": r.name,
                     "tier": r.tier_after if r.tier_after is not None else r.tier_before, "unit": "",
                     "before": r.tier_before, "after": r.tier_after,
                     "change": r.moved_m if pd.notna(r.moved_m) else np.nan,
                     "detail": f"id {r.id_before or ''} -> {r.id_after or ''}"})
    rows += _coverage_changes(_read(prev, "coverage_by_tier.csv"), _read(new, "coverage_by_tier.csv"),
                              ["tier"], "coverage")
    rows += _unit_changes(prev, new, "coverage_by_unit.csv", "unit coverage", _COVERAGE_FIGURES)
    rows += _provision_changes(prev, new)
    rows += _gap_changes(prev, new)
    out = pd.DataFrame(rows, columns=_COLUMNS)
    if write:
        write_csv(out, new / "changes.csv")
    return out
