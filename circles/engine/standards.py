"""Standards checks: the profile's indicator numbers against what a coverage run found."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..readers.profiles import Profile
    from .coverage import CoverageResult

__all__ = ["check_standards"]

_COLUMNS = ["check", "subject", "tier", "value", "standard", "unit", "passed", "source"]


def _services(fac: pd.DataFrame) -> pd.Series:
    if "services" not in fac.columns:
        return pd.Series([""] * len(fac), index=fac.index)
    return fac["services"].fillna("").astype(str)


def check_standards(result: CoverageResult) -> pd.DataFrame:
    """Pass/fail of every standard the profile sets that the data can answer.

    Checks per facility: floor area per 100 households served (e.g. ≥ 30 m²), a tier's minimum
    floor area where the profile sets one (a city's own setting: no document gives one per
    complex), population served against the tier's population range. The documents' rules per
    community (300 m² per community, a kindergarten in every community of 1,500 households...)
    are checked per unit by :func:`circles.engine.community_rules.evaluate_units`.

    Parameters
    ----------
    result
        A :class:`circles.coverage.CoverageResult`.

    Returns
    -------
    pandas.DataFrame
        ``check``, ``subject``, ``tier``, ``value``, ``standard``, ``unit``, ``passed``,
        ``source``. A check with no data is left out, never passed by default.

    """
    p = result.profile
    src = p.sources if hasattr(p, "sources") else {}
    fac = result.facilities[result.facilities["status"] == "ok"]
    name = fac.get("name", fac.get("facility_id")).astype(str)
    rows = [*_floor_area_per_household(fac, name, p.standards, src),
            *_minimum_floor_area(fac, name, p, src),
            *_population_range(fac, name, p, src)]
    return pd.DataFrame(rows, columns=_COLUMNS)


def _floor_area_per_household(fac: pd.DataFrame, name: pd.Series, std: dict,
                              src: dict) -> list[dict]:
    per100 = std.get("floor_area_m2_per_100_households")
    if per100 is None or "m2_per_100_households" not in fac.columns:
        return []
    rows = []
    v = fac["m2_per_100_households"].to_numpy(float)
    for n, t, val in zip(name, fac["tier"], v, strict=True):
        if np.isfinite(val):
            rows.append(dict(check="floor area per 100 households served", subject=n, tier=t,
                             value=round(float(val), 2), standard=f">= {per100}", unit="m²",
                             passed=bool(val >= per100),
                             source=src.get("floor_area_m2_per_100_households", "")))
    return rows


def _minimum_floor_area(fac: pd.DataFrame, name: pd.Series, p: Profile, src: dict) -> list[dict]:
    area = pd.to_numeric(fac.get("floor_area_m2"), errors="coerce") if "floor_area_m2" in fac else None
    if area is None:
        return []
    rows = []
    for tier in p.tiers:
        minimum = tier.min_floor_area_m2
        if minimum is None:
            continue
        sel = (fac["tier"] == tier.code).to_numpy() & area.notna().to_numpy()
        for n, val in zip(name[sel], area[sel], strict=True):
            rows.append(dict(check="minimum floor area", subject=n, tier=tier.code,
                             value=float(val), standard=f">= {minimum}", unit="m²",
                             passed=bool(val >= minimum), source=src.get("min_floor_area", "")))
    return rows


def _population_range(fac: pd.DataFrame, name: pd.Series, p: Profile, src: dict) -> list[dict]:
    rows = []
    for tier in p.tiers:
        rng = tier.population_range
        if not rng:
            continue
        sel = (fac["tier"] == tier.code).to_numpy()
        for n, val in zip(name[sel], fac["served_pop"][sel], strict=True):
            rows.append(dict(check="population served within the tier's range", subject=n,
                             tier=tier.code, value=round(float(val)), standard=f"{rng[0]}–{rng[1]}",
                             unit="people", passed=bool(rng[0] <= val <= rng[1]),
                             source=src.get("population_range", "")))
    return rows
