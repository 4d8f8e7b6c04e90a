"""The cities' documented rules, unit by unit, and the scorecard built from them.

:func:`evaluate_units` checks each :class:`circles.readers.city_rules.Rule` the data can answer on
every unit (社区 by default): floor area of the complexes located in the unit, households from the
unit's column or from the people inside it, schools present in the unit or reached on foot, staff
columns of the units layer. A rule the data cannot answer still gets its row, with the reason in
``note`` ("not evaluated: needs column households"), so nothing passes by default.
:func:`scorecard` turns those rows into one line per unit, worst first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import DataError
from ..readers.city_rules import Rule
from ..readers.population_values import parse_counts
from ..readers.services import Category, service_points
from ..readers.tables import header_key, match_column
from ..readers.units import UNIT_COLUMN_ALIASES, unit_of, unit_polygons
from .service_access import ServiceAccess, service_access

if TYPE_CHECKING:
    from .coverage import CoverageResult

__all__ = ["ALL_UNITS", "BY_UNIT_COLUMNS", "CITY", "NO_UNIT", "evaluate_units", "scorecard"]

CITY = "(city)"
NO_UNIT = "(no unit)"
ALL_UNITS = "(all units)"
BY_UNIT_COLUMNS = ["level", "unit", "rule", "part", "source", "value", "threshold",
                   "unit_of_measure", "passed", "note"]

_LEVELS = {"community": ("community", "社区"), "grid": ("grid", "网格")}
_STRUCTURES = ("unit_levels", "criteria", "catalogue")
_REPORTED = "reported, no pass mark in the document"
_PER_UNIT = "counted in the unit; the plan is city-wide"
_SHORT = "the plan is city-wide: a study area smaller than the city falls short"
_HALF = 0.5  # a school nearby counts when at least half the unit's residents reach it


def _within(frame: gpd.GeoDataFrame, points: gpd.GeoSeries) -> np.ndarray:
    """The unit (``frame``'s index) each point lies in, ``NO_UNIT`` for none."""
    return unit_of(points, frame.rename_axis("unit").reset_index(), missing=NO_UNIT).astype(str)


def _context(result: CoverageResult, units: gpd.GeoDataFrame, unit_column: str | None,
             level: str, access: ServiceAccess | None, file: str | None) -> _Context:
    raw = unit_polygons(units, unit_column, file=file)
    # A unit drawn as several rows is one unit: its parts are joined, its figures added up.
    frame = gpd.GeoDataFrame({"unit": raw["unit"]}, geometry=raw.geometry, crs=4326) \
        .dissolve(by="unit", sort=False)
    # compute_coverage(units=) already placed everyone at a level with the same names: reuse it, so
    # the scorecard adds up to coverage_by_unit; otherwise place the demand here the same way.
    names = set(frame.index.astype(str))
    same = next((lv.name for lv in result.unit_levels if set(lv.polygons["unit"].astype(str)) == names), None)
    point_unit = (result.level_units[same].astype(str) if same is not None
                  else _within(frame, result.demand.geometry.to_crs(4326)))
    return _Context(result=result, access=access, level=level, frame=frame, raw=pd.DataFrame(raw),
                    point_unit=point_unit, file=file,
                    facility_unit=_within(frame, result.facilities.geometry.to_crs(4326)))


@dataclass
class _Context:
    """What every evaluator reads: the run, the units (one row per name, WGS-84), where each
    demand point and facility lies, and the figures per unit."""

    result: CoverageResult
    access: ServiceAccess | None
    level: str
    frame: gpd.GeoDataFrame
    raw: pd.DataFrame
    point_unit: np.ndarray
    facility_unit: np.ndarray
    file: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [str(n) for n in self.frame.index]

    def column(self, need: str, part: str = "") -> str | None:
        """The units layer's column holding ``need`` (or the part's own name)."""
        aliases = (*UNIT_COLUMN_ALIASES.get(need, (need,)), *((part,) if part else ()))
        return match_column([c for c in self.raw.columns if c != "unit"], aliases)

    def values(self, column: str) -> pd.Series:
        """A numeric column per unit; units drawn as several rows add up, blanks stay NaN.

        A value that is not a number (``约300``, ``1,20``) is an error naming its feature: it would
        otherwise turn into a blank and the rule into a guess from the population.
        """
        values, why, _ = parse_counts(self.raw[column].reset_index(drop=True))
        bad = np.flatnonzero((why != "") & (why != "empty"))
        if len(bad):
            raw = self.raw[column].iloc[bad[0]]
            reason = "" if why[bad[0]] == "not a number" else f" ({why[bad[0]]})"
            raise DataError(f"'{raw}' is not a number{reason}; {len(bad)} such cell(s) in the column",
                            file=self.file, row=int(bad[0]) + 1, field=column,
                            fix="give a number (户数 1600), or leave the cell empty for a figure not known")
        num = pd.Series(values, index=self.raw.index)
        return num.groupby(self.raw["unit"], sort=False).sum(min_count=1).reindex(self.frame.index)

    def population(self) -> pd.Series:
        """People per unit (every status: they are the unit's residents either way)."""
        s = pd.Series(self.result.demand["pop"].to_numpy(float)).groupby(self.point_unit).sum()
        return s.reindex(self.frame.index, fill_value=0.0).astype(float)

    def households(self) -> tuple[pd.Series, pd.Series]:
        """Households per unit and where each figure comes from."""
        pop, pph = self.population(), self.result.profile.persons_per_household
        col = self.column("households")
        given = self.values(col) if col else pd.Series(np.nan, index=pop.index)
        ok = given.notna() & (given >= 0)
        how = pd.Series(np.where(ok, "column", f"population / {pph:g}"), index=pop.index)
        return given.where(ok, pop / pph), how

    def residents(self) -> pd.Series:
        col = self.column("residents")
        pop = self.population()
        return pop if col is None else self.values(col).fillna(pop)

    def share(self, within: np.ndarray) -> pd.Series:
        """Share of each unit's residents for whom ``within`` holds."""
        pop_at = self.result.demand["pop"].to_numpy(float)
        hit = pd.Series(np.where(within, pop_at, 0.0)).groupby(self.point_unit).sum()
        hit = hit.reindex(self.frame.index, fill_value=0.0)
        pop = self.population()
        return (hit / pop.where(pop > 0)).astype(float)

    def usable(self) -> np.ndarray:
        return self.result.facilities["status"].to_numpy() == "ok"

    def floor_area(self) -> tuple[pd.Series, pd.Series, pd.Series]:
        """Per unit: known floor area of its usable complexes, how many lack one, how many there are."""
        fac = self.result.facilities
        area = pd.to_numeric(fac.get("floor_area_m2", pd.Series(np.nan, index=fac.index)),
                             errors="coerce").to_numpy(float)
        ok = self.usable()
        where = self.facility_unit[ok]
        index = pd.Index([*self.names, NO_UNIT])
        known = pd.Series(np.nan_to_num(area[ok])).groupby(where).sum().reindex(index, fill_value=0.0)
        missing = pd.Series(np.isnan(area[ok]).astype(int)).groupby(where).sum()
        count = pd.Series(np.ones(int(ok.sum()), dtype=int)).groupby(where).sum()
        return known, missing.reindex(index, fill_value=0), count.reindex(index, fill_value=0)

    def points(self) -> gpd.GeoDataFrame | None:
        """Service points: the access run's, else the complexes' own ``services`` column."""
        if "points" not in self.cache:
            fac = self.result.facilities[self.usable()]
            listed = "services" in fac.columns and fac["services"].fillna("").astype(str).str.strip().ne("").any()
            self.cache["points"] = self.access.points if self.access is not None else (
                service_points(facilities=fac) if listed else None)
        return self.cache["points"]


def _row(rule: Rule, unit: str, value: float | None, passed: bool | None, note: str = "", *,
         part: str = "", threshold: float | None = None) -> dict:
    thr = threshold if threshold is not None else (
        rule.threshold if isinstance(rule.threshold, int | float) else None)
    clean = None if value is None or not np.isfinite(value) else round(float(value), 3)
    return {"unit": unit, "rule": rule.code, "part": part, "source": rule.source, "value": clean,
            "threshold": thr, "unit_of_measure": rule.unit_of_measure, "passed": passed,
            "note": note}


def _each(ctx: _Context, rule: Rule, note: str, *, part: str = "", threshold: float | None = None
          ) -> list[dict]:
    """A row for every unit, neither passed nor failed: a rule the data cannot answer."""
    return [_row(rule, u, None, None, note, part=part, threshold=threshold) for u in ctx.names]


def _parts(rule: Rule) -> list[tuple[str, float]]:
    """``(part, threshold)`` of a rule: one unnamed part, or one per key of a dict threshold."""
    if isinstance(rule.threshold, dict):
        return [(str(k), float(v)) for k, v in rule.threshold.items()]
    return [("", float(rule.threshold))] if rule.threshold is not None else []


def _scalar(rule: Rule) -> float:
    return float(rule.threshold) if isinstance(rule.threshold, int | float) else np.nan


def _judge(value: float, threshold: float, *, at_most: bool = False) -> bool | None:
    if not np.isfinite(value):
        return None
    return bool(value <= threshold + 1e-9) if at_most else bool(value >= threshold - 1e-9)


def _floor_rows(ctx: _Context, rule: Rule, per_households: bool) -> list[dict]:
    """Floor area of the usable complexes located in each unit (or per 100 of its households)."""
    known, missing, count = ctx.floor_area()
    if int(count.sum()) and int(missing.sum()) == int(count.sum()):
        return _each(ctx, rule, "not evaluated: needs column floor_area_m2")
    households, how = ctx.households()
    rows = []
    for u in ctx.names:
        value = float(known[u])
        note = "no complex in the unit" if not count[u] else f"{count[u]} complex(es) in the unit"
        if per_households:
            value = value / households[u] * 100 if households[u] > 0 else np.nan
            note += f"; {households[u]:,.0f} households ({how[u]})"
        passed = _judge(value, _scalar(rule))
        if passed is None:
            note = f"not evaluated: no households; {note}"
        elif missing[u] and passed is False:
            passed, note = None, f"not evaluated: {missing[u]} complex(es) in the unit have no floor area"
        rows.append(_row(rule, u, value, passed, note))
    if count[NO_UNIT]:
        fac = ctx.result.facilities
        lost = ctx.usable() & (ctx.facility_unit == NO_UNIT)
        names = fac.get("name", fac.get("facility_id", pd.Series("", index=fac.index)))
        rows.append(_row(rule, NO_UNIT, float(known[NO_UNIT]), None,
                         f"{count[NO_UNIT]} usable complex(es) lie in no unit, not counted: "
                         + ", ".join(map(str, names[lost]))))
    return rows


def _column_rows(ctx: _Context, rule: Rule, *, at_most: bool = False) -> list[dict]:
    """A figure the units layer carries (全科社工, 绿化率 ...) against the threshold, per part."""
    needs = [n for n in rule.needs if n != "floor_area_m2"] or list(rule.needs)
    rows = []
    for k, (part, thr) in enumerate(_parts(rule)):
        need = needs[min(k, len(needs) - 1)]
        col = ctx.column(need, part)
        if col is None:
            rows += _each(ctx, rule, f"not evaluated: needs column {need}", part=part, threshold=thr)
            continue
        values = ctx.values(col)
        rows += [_row(rule, u, values[u], _judge(values[u], thr, at_most=at_most),
                      "" if np.isfinite(values[u]) else f"not evaluated: no figure in column {col}",
                      part=part, threshold=thr) for u in ctx.names]
    return rows


def _min_value(ctx: _Context, rule: Rule) -> list[dict]:
    if "floor_area_m2" in rule.needs:
        return _floor_rows(ctx, rule, per_households=False)
    return _column_rows(ctx, rule)


def _max_share(ctx: _Context, rule: Rule) -> list[dict]:
    """The committees' share of the unit's floor area (the first part of the threshold) at most."""
    need = next((n for n in rule.needs if n != "floor_area_m2"), "")
    part, thr = _parts(rule)[0]
    col = ctx.column(need, part)
    if col is None:
        return _each(ctx, rule, f"not evaluated: needs column {need}", part=part, threshold=thr)
    known, _, _ = ctx.floor_area()
    share = ctx.values(col) / known.reindex(ctx.frame.index).where(lambda s: s > 0)
    return [_row(rule, u, share[u], _judge(share[u], thr, at_most=True),
                 "" if np.isfinite(share[u]) else "not evaluated: no floor area or no figure",
                 part=part, threshold=thr) for u in ctx.names]


def _per_residents(ctx: _Context, rule: Rule) -> list[dict]:
    """Workers per 10,000 residents: per unit, and once city-wide where the document sets it so."""
    need = next((n for n in rule.needs if n != "residents"), "workers")
    col = ctx.column(need)
    if col is None:
        rows = _each(ctx, rule, f"not evaluated: needs column {need}")
        return [_row(rule, CITY, None, None, f"not evaluated: needs column {need}"), *rows] \
            if rule.scope == "city" else rows
    workers, residents = ctx.values(col), ctx.residents()
    ratio = workers / residents.where(residents > 0) * 10_000
    city_wide = rule.scope == "city"
    # The document names no unit for a city-wide ratio: per unit it is shown, not judged.
    said = "reported; the document sets the ratio city-wide" if city_wide else ""
    rows = [_row(rule, u, ratio[u], None if city_wide else _judge(ratio[u], _scalar(rule)),
                 said if np.isfinite(ratio[u]) else f"not evaluated: no figure in column {col}")
            for u in ctx.names]
    if not city_wide:
        return rows
    has = workers.notna() & (residents > 0)
    total = float(workers[has].sum()) / float(residents[has].sum()) * 10_000 if has.any() else np.nan
    left = int((~has).sum())
    note = f"{int(has.sum())} units with a figure" + (f"; {left} without, left out" if left else "")
    return [_row(rule, CITY, total, _judge(total, _scalar(rule)), note), *rows]


def _presence_if_households(ctx: _Context, rule: Rule) -> list[dict]:
    """A provider in the unit, or one within the category's threshold of half its residents."""
    if rule.category is None:
        return _each(ctx, rule, "not evaluated: the rule names no service category")
    points = ctx.points()
    if points is None:
        return _each(ctx, rule, "not evaluated: needs service points (--services)")
    mine = points[points["service"].astype(str).to_numpy() == rule.category]
    inside = pd.Series(_within(ctx.frame, mine.geometry.to_crs(4326))).value_counts()
    covered = ctx.access.covered.get(rule.category) if ctx.access is not None else None
    reach = ctx.share(covered) if covered is not None else None
    households, how = ctx.households()
    thr = _scalar(rule)
    rows = []
    for u in ctx.names:
        h, n = float(households[u]), int(inside.get(u, 0))
        if h < thr:
            rows.append(_row(rule, u, h, None,
                             f"not applicable: {h:,.0f} households < {thr:,.0f} (households: {how[u]})"))
            continue
        share = None if reach is None else float(reach[u])
        passed = n > 0 or (share is not None and share >= _HALF)
        said = "not computed (needs --services)" if share is None else f"{share:.0%}"
        rows.append(_row(rule, u, h, passed, f"{rule.category} in the unit: {n}; residents within its "
                                             f"walking threshold: {said} (households: {how[u]})"))
    return rows


def _within_minutes(ctx: _Context, code: str, minutes: float) -> np.ndarray | None:
    """Demand points within ``minutes`` of a provider of ``code`` (routed anew past the run's horizon)."""
    access = ctx.access
    if access is None:
        return None
    cat = next((c for c in access.catalogue if c.code == code), None)
    if cat is None:
        return None
    mpm = ctx.result.profile.metres_per_minute
    limit = minutes * mpm
    # service_access routes each category to twice its threshold: beyond that, route again.
    if limit <= 2 * cat.threshold_metres(mpm) + 1e-9:
        return _ok(ctx) & (access.metres[code] <= limit + 1e-9)
    longer: Category = dataclasses.replace(cat, minutes=minutes, metres=None)
    mine = access.points[access.points["service"].astype(str).to_numpy() == code]
    if not len(mine):
        return np.zeros(len(ctx.result.demand), dtype=bool)
    return service_access(ctx.result, mine, [longer]).covered[code]


def _ok(ctx: _Context) -> np.ndarray:
    return ctx.result.demand["status"].to_numpy() == "ok"


def _tier_within(ctx: _Context, tier: str | None, minutes: float) -> np.ndarray | None:
    """Demand points within ``minutes`` of a complex of ``tier`` (any tier when ``None``)."""
    codes = [t.code for t in ctx.result.profile.tiers]
    if tier is not None and tier not in codes:
        return None
    cols = [f"{t}_minutes" for t in ([tier] if tier else codes)]
    times = ctx.result.demand[cols].to_numpy(float).min(axis=1)
    return _ok(ctx) & (times <= minutes + 1e-9)


def _max_minutes(ctx: _Context, rule: Rule) -> list[dict]:
    """Share of each unit's residents within the minutes; the documents set no pass mark."""
    measure = f"share of residents within the threshold ({rule.unit_of_measure})"
    rows = []
    for part, minutes in _parts(rule):
        if rule.category is not None:
            within = _within_minutes(ctx, rule.category, minutes)
            missing = f"not evaluated: needs service points of {rule.category} (--services)"
        elif rule.scope == "tier":
            within = _tier_within(ctx, part or None, minutes)
            missing = f"not evaluated: no tier {part} in the profile"
        else:
            within, missing = None, "not evaluated: no service category code for it"
        shares = ctx.share(within) if within is not None else None
        for u in ctx.names:
            value = None if shares is None else float(shares[u])
            row = _row(rule, u, value, None, _REPORTED if shares is not None else missing,
                       part=part, threshold=minutes)
            rows.append({**row, "unit_of_measure": measure})
    return rows


def _planned_counts(ctx: _Context, rule: Rule) -> list[dict]:
    """Usable complexes per tier, city-wide, against the plan."""
    fac = ctx.result.facilities
    tiers = fac["tier"].astype(str).to_numpy()[ctx.usable()]
    codes = {t.code for t in ctx.result.profile.tiers}
    rows = []
    for part, planned in _parts(rule):
        have = int((tiers == part).sum())
        passed, note = (None, f"not evaluated: no tier {part} in the profile") if part not in codes \
            else (have >= planned, "" if have >= planned else _SHORT)
        rows.append(_row(rule, CITY, None if passed is None else have, passed, note, part=part,
                         threshold=planned))
        # Per unit the count is told, not judged: the documents plan complexes city-wide only.
        units = ctx.facility_unit[ctx.usable()][tiers == part]
        rows += [_row(rule, u, float((units == u).sum()), None, _PER_UNIT, part=part) for u in ctx.names]
    return rows


_EVALUATORS: dict[str, Callable[[_Context, Rule], list[dict]]] = {
    "min_value": _min_value, "per_households": lambda c, r: _floor_rows(c, r, per_households=True),
    "max_share": _max_share, "presence_if_households": _presence_if_households,
    "per_residents": _per_residents, "min_count": lambda c, r: _column_rows(c, r),
    "planned_counts": _planned_counts, "max_minutes": _max_minutes,
}


def _evaluate(ctx: _Context, rule: Rule) -> list[dict]:
    if rule.kind in _STRUCTURES:
        return []
    level = ctx.level
    if rule.scope in _LEVELS and header_key(level) not in {header_key(n) for n in _LEVELS[rule.scope]}:
        return [_row(rule, ALL_UNITS, None, None,
                     f"not evaluated: a rule per {rule.scope}; these units are {level}")]
    evaluator = _EVALUATORS.get(rule.kind)
    if evaluator is None:
        return [_row(rule, ALL_UNITS, None, None, f"not evaluated: no evaluation of kind {rule.kind}")]
    return evaluator(ctx, rule)


def evaluate_units(result: CoverageResult, units: gpd.GeoDataFrame, rules: Sequence[Rule], *,
                   unit_column: str | None = None, level: str = "community",
                   access: ServiceAccess | None = None, file: str | None = None) -> pd.DataFrame:
    """Every rule the data can answer, unit by unit (``standards_by_unit.csv``).

    Parameters
    ----------
    result
        A coverage run; its demand's ``unit`` is reused when it was computed with these units.
    units
        The units layer as given (any CRS): a name column, and optionally households (户数),
        residents (常住人口/人口), workers (社区工作者), 全科社工 and the other columns rules need.
    rules
        The rules (:func:`circles.readers.city_rules.rules_for`); structure kinds are skipped.
    unit_column
        The name column (default: the first of unit/name/名称/社区...).
    level
        What the units are: rules per community are judged on ``community`` (社区) units, rules per
        grid on ``grid`` (网格) units; the others get one "not evaluated" row.
    access
        Per-category walking access (:func:`circles.engine.service_access.service_access`), for
        schools reached on foot and walking-time rules.
    file
        The units file, named in the error when one of its figures is not a number.

    Returns
    -------
    pandas.DataFrame
        One row per unit and rule (and part, for a rule with one figure per tier or part):
        ``level``, ``unit``, ``rule``, ``part``, ``source``, ``value``, ``threshold``,
        ``unit_of_measure``, ``passed`` (True, False, or None when not evaluated or not
        applicable), ``note``. City-wide rows (unit ``(city)``) first, then units with the most
        failures first, then rows for no single unit.

    """
    ctx = _context(result, units, unit_column, level, access, file)
    rows = [r for rule in rules for r in _evaluate(ctx, rule)]
    out = pd.DataFrame(rows, columns=BY_UNIT_COLUMNS[1:])
    out.insert(0, "level", level)
    out["passed"] = out["passed"].astype(object).where(out["passed"].notna(), None)
    out[["value", "threshold"]] = out[["value", "threshold"]].astype(float)
    failed = out[out["passed"].eq(False)].groupby("unit").size()
    rank = out["unit"].map(lambda u: 0 if u == CITY else 2 if u in (NO_UNIT, ALL_UNITS) else 1)
    order = pd.DataFrame({"rank": rank, "failed": -out["unit"].map(failed).fillna(0),
                          "first": out["unit"].map({u: i for i, u in enumerate(ctx.names)})})
    keep = order.sort_values(["rank", "failed", "first"], kind="stable", na_position="last").index
    return out.loc[keep].reset_index(drop=True)


def scorecard(result: CoverageResult, units: gpd.GeoDataFrame, by_unit: pd.DataFrame, *,
              unit_column: str | None = None, level: str = "community") -> pd.DataFrame:
    """One line per unit: people, households, coverage per tier and the rules it fails.

    Parameters
    ----------
    result
        The coverage run.
    units
        The units layer, as given to :func:`evaluate_units`.
    by_unit
        What :func:`evaluate_units` returned (rows of other levels are ignored).
    unit_column
        The name column (default: as :func:`evaluate_units`).
    level
        The level of these units.

    Returns
    -------
    pandas.DataFrame
        ``level``, ``unit``, ``population`` (the demand inside the unit: the rows add up to the
        people in units of ``coverage_by_unit``), ``households``, ``households_source``
        (``column`` or ``population / 2.62``), ``covered_share_<tier>`` per tier,
        ``rules_evaluated``, ``rules_failed``, ``failed`` (codes, ``; ``), ``all_passed`` (None
        when no rule could be evaluated); the units failing most rules first, then those with
        the lowest covered share of the lowest tier.

    """
    ctx = _context(result, units, unit_column, level, None, None)
    households, how = ctx.households()
    out = pd.DataFrame({"level": level, "unit": ctx.names,
                        "population": ctx.population().round(1).to_numpy(),
                        "households": households.round(1).to_numpy(), "households_source": how.to_numpy()})
    for tier in result.profile.tiers:
        out[f"covered_share_{tier.code}"] = ctx.share(result.covered_mask(tier.code)).round(4).to_numpy()
    rows = by_unit[by_unit["level"] == level] if "level" in by_unit.columns else by_unit
    judged = rows[rows["passed"].notna()]
    bad = judged[judged["passed"].eq(False)]
    label = bad["rule"].where(bad["part"].fillna("").eq(""), bad["rule"] + " (" + bad["part"].astype(str) + ")") \
        if "part" in bad.columns else bad["rule"]
    out["rules_evaluated"] = out["unit"].map(judged.groupby("unit").size()).fillna(0).astype(int)
    out["rules_failed"] = out["unit"].map(bad.groupby("unit").size()).fillna(0).astype(int)
    listed = label.groupby(bad["unit"]).agg("; ".join).to_dict()
    out["failed"] = [listed.get(u, "") for u in out["unit"]]
    out["all_passed"] = [None if n == 0 else f == 0 for n, f in
                         zip(out["rules_evaluated"], out["rules_failed"], strict=True)]
    lowest = min(result.profile.tiers, key=lambda t: t.rank).code
    out = out.sort_values(["rules_failed", f"covered_share_{lowest}"], ascending=[False, True],
                          kind="stable", na_position="last")
    return out.reset_index(drop=True)
