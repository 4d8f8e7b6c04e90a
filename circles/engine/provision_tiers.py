"""Provision of every tier over a coverage result: served, covered but unserved, and what closes it.

Each tier is its own problem (:class:`circles.engine.provision.Provision`) over the complexes that
serve it (the tier and every higher one, as coverage nests them): a district complex houses the
community- and station-level services too, so its capacity holds in full in each tier it
serves. Every person read in ends in exactly one of five places per tier: served, covered but
unserved (within reach, every complex in reach full), uncovered, off-network, outside.

What closes the gap: the least capacity that would let existing complexes serve everyone within
reach equals the people the maximum leaves out (each added place raises the maximum by at most
one person), and it is reached by adding, at the complex nearest each of them, room for those
left out. It is stated per complex in people and in floor area at the profile's rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .capacity import capacity_rule, complex_capacity, floor_area_for
from .provision import Provision
from .routing import coverage_matrix

if TYPE_CHECKING:
    from .coverage import CoverageResult

__all__ = ["PROVISION_COLUMNS", "ProvisionResult", "provision"]

PROVISION_COLUMNS = ["population", "served_pop", "covered_unserved_pop", "uncovered_pop",
                     "offnetwork_pop", "outside_pop", "served_share"]
_NO_UNIT = "(no unit)"


@dataclass
class ProvisionResult:
    """Provision per tier over a :class:`circles.engine.coverage.CoverageResult`.

    Attributes
    ----------
    coverage : CoverageResult
        The coverage it was solved on.
    capacity_pop : numpy.ndarray
        Per facility row, the people it can serve (``inf``: unlimited).
    capacity_source : numpy.ndarray
        Per facility row, where that figure comes from
        (:data:`circles.engine.capacity.CAPACITY_SOURCES`).
    served : dict
        Per tier, people served at each demand point.
    provider : dict
        Per tier, the facility row serving most of each demand point (-1: none).
    assigned : dict
        Per tier, people each facility row serves in that tier.
    extra_pop : dict
        Per tier, the capacity each facility row would need added so that everyone within
        reach is served (the least total).
    seconds : dict
        Per tier, the solve time.
    stats : dict
        Per tier, the model's size.

    """

    coverage: CoverageResult
    capacity_pop: np.ndarray
    capacity_source: np.ndarray
    served: dict[str, np.ndarray] = field(default_factory=dict)
    provider: dict[str, np.ndarray] = field(default_factory=dict)
    assigned: dict[str, np.ndarray] = field(default_factory=dict)
    extra_pop: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    stats: dict[str, dict] = field(default_factory=dict)

    @property
    def rule(self) -> str:
        """How capacities were found, in one sentence, with the counts per source."""
        counts = pd.Series(self.capacity_source[self.coverage.facilities["status"].to_numpy() == "ok"]
                           ).value_counts()
        said = ", ".join(f"{int(n):,} from {k}" for k, n in counts.items())
        return f"{capacity_rule(self.coverage.profile)}; {said or 'no usable complex'}"

    def unserved(self, tier: str) -> np.ndarray:
        """People at each demand point within reach but not served (capacity short)."""
        pop = self.coverage.demand["pop"].to_numpy(float)
        covered = self.coverage.covered_mask(tier)
        return np.where(covered, np.maximum(pop - self.served[tier], 0.0), 0.0)

    def _account(self, tier: str, keys: np.ndarray, names: list[str]) -> pd.DataFrame:
        """The five-way account of each key (a unit, or one key for the city)."""
        cov = self.coverage
        pop = cov.demand["pop"].to_numpy(float)
        status = cov.demand["status"].to_numpy()
        covered = cov.covered_mask(tier)
        served = self.served[tier]
        frame = pd.DataFrame({
            "unit": keys, "served_pop": served,
            "covered_unserved_pop": np.where(covered, pop - served, 0.0),
            "uncovered_pop": np.where((status == "ok") & ~covered, pop, 0.0),
            "offnetwork_pop": np.where(status == "off_network", pop, 0.0),
            "outside_pop": np.where(status == "outside", pop, 0.0)})
        sums = frame.groupby("unit", sort=False).sum()
        order = list(dict.fromkeys([*names, *sorted(set(keys) - set(names))]))
        sums = sums.reindex(order, fill_value=0.0)
        extra_key = _NO_UNIT if len(names) else "(city)"
        if cov.outside_extra_pop:
            if extra_key not in sums.index:
                sums.loc[extra_key] = 0.0
            sums.loc[extra_key, "outside_pop"] += cov.outside_extra_pop
        parts = ["served_pop", "covered_unserved_pop", "uncovered_pop", "offnetwork_pop", "outside_pop"]
        sums["population"] = sums[parts].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sums["served_share"] = np.where(sums["population"] > 0, sums["served_pop"] / sums["population"], np.nan)
        return sums.rename_axis("unit").reset_index()

    def by_tier(self) -> pd.DataFrame:
        """Provision per tier: the columns of ``provision_by_tier.csv``."""
        prof = self.coverage.profile
        fac = self.coverage.facilities
        rows = []
        for tier in prof.tiers:
            code = tier.code
            acc = self._account(code, np.full(len(self.coverage.demand), "(city)", dtype=object), [])
            usable = (fac["status"] == "ok").to_numpy() & fac["tier"].isin(prof.eligible(code)).to_numpy()
            cap = self.capacity_pop[usable]
            extra = float(self.extra_pop[code].sum())
            rows.append({"tier": code, "tier_name": tier.name_zh,
                         "threshold_minutes": round(prof.threshold_minutes(code), 3),
                         "facilities": int(usable.sum()),
                         "unlimited_facilities": int((~np.isfinite(cap)).sum()),
                         "capacity_pop": float(cap[np.isfinite(cap)].sum()),
                         **acc.iloc[0][PROVISION_COLUMNS].to_dict(),
                         "extra_capacity_pop": extra,
                         "extra_floor_area_m2": float(floor_area_for(extra, prof))})
        return pd.DataFrame(rows)

    def by_unit(self) -> pd.DataFrame:
        """Provision per unit and tier, level by level (``provision_by_unit.csv``)."""
        cov = self.coverage
        levels = [(lv.name, list(lv.polygons["unit"].astype(str)), dict(zip(
            lv.polygons["unit"].astype(str), lv.polygons["parent"].astype(str), strict=True)))
            for lv in cov.unit_levels] or [("unit", [], {})]
        frames = []
        for level, names, parents in levels:
            keys = cov.level_units.get(level, cov.demand["unit"].astype(str).to_numpy())
            for tier in cov.profile.tiers:
                t = self._account(tier.code, np.asarray(keys, dtype=object), names)
                frames.append(t.assign(level=level, parent=t["unit"].map(parents).fillna(""),
                                       tier=tier.code))
        out = pd.concat(frames, ignore_index=True)
        return out[["level", "unit", "parent", "tier", *PROVISION_COLUMNS]]

    def by_complex(self) -> pd.DataFrame:
        """Per tier and complex serving it: capacity, assigned, utilisation and what it would need
        added (``provision_by_complex.csv``)."""
        fac = self.coverage.facilities
        prof = self.coverage.profile
        frames = []
        for tier in prof.tiers:
            rows = np.flatnonzero((fac["status"] == "ok").to_numpy()
                                  & fac["tier"].isin(prof.eligible(tier.code)).to_numpy())
            frames.append(pd.DataFrame({
                "tier": tier.code, "facility_id": fac["facility_id"].to_numpy()[rows],
                "name": fac["name"].to_numpy()[rows], "facility_tier": fac["tier"].to_numpy()[rows],
                **self._complex_figures(tier.code, rows)}))
        return pd.concat(frames, ignore_index=True)

    def _complex_figures(self, tier: str, rows: np.ndarray) -> dict:
        cap = self.capacity_pop[rows]
        assigned = self.assigned[tier][rows]
        extra = self.extra_pop[tier][rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(np.isfinite(cap) & (cap > 0), assigned / cap, np.nan)
        return {"capacity_pop": np.round(cap, 1), "capacity_source": self.capacity_source[rows],
                "assigned_pop": np.round(assigned, 1), "utilisation": np.round(util, 4),
                "extra_capacity_pop": np.round(extra, 1),
                "extra_floor_area_m2": np.round(floor_area_for(extra, self.coverage.profile), 1)}

    def demand_columns(self) -> pd.DataFrame:
        """Per demand point and tier: ``{tier}_served_pop``, ``{tier}_served_share`` and
        ``{tier}_provider`` (the id of the complex serving most of it, '' for none)."""
        pop = self.coverage.demand["pop"].to_numpy(float)
        ids = self.coverage.facilities["facility_id"].astype(str).to_numpy()
        cols = {}
        for tier in self.coverage.profile.tiers:
            served = self.served[tier.code]
            who = self.provider[tier.code]
            cols[f"{tier.code}_served_pop"] = np.round(served, 2)
            with np.errstate(invalid="ignore", divide="ignore"):
                cols[f"{tier.code}_served_share"] = np.where(pop > 0, np.round(served / pop, 4), np.nan)
            cols[f"{tier.code}_provider"] = np.where(who >= 0, ids[np.maximum(who, 0)] if len(ids) else "", "")
        return pd.DataFrame(cols, index=self.coverage.demand.index)

    def facility_columns(self) -> pd.DataFrame:
        """Each facility row's figures in its own tier (the provision columns of ``facilities.csv``)."""
        fac = self.coverage.facilities
        n = len(fac)
        out = {k: np.full(n, np.nan) for k in ("assigned_pop", "utilisation", "extra_capacity_pop",
                                                 "extra_floor_area_m2")}
        for tier in self.coverage.profile.tiers:
            rows = np.flatnonzero((fac["status"] == "ok").to_numpy() & (fac["tier"] == tier.code).to_numpy())
            figs = self._complex_figures(tier.code, rows)
            for k in out:
                out[k][rows] = figs[k]
        cap = np.round(self.capacity_pop, 1)
        return pd.DataFrame({"capacity_pop": np.where(np.isfinite(cap), cap, np.nan),
                             "capacity_source": self.capacity_source, **out}, index=fac.index)


def provision(result: CoverageResult, *, capacity_pop: np.ndarray | None = None) -> ProvisionResult:
    """Solve provision for every tier of ``result``.

    Parameters
    ----------
    result
        A coverage result (its facilities' ``capacity_pop``, ``households_capacity`` or
        ``floor_area_m2`` give the capacities; see :func:`circles.engine.capacity.complex_capacity`).
    capacity_pop
        People per facility row, instead of what the table gives (``inf``: unlimited).

    Returns
    -------
    ProvisionResult

    """
    fac = result.facilities
    cap, source = complex_capacity(fac, result.profile)
    if capacity_pop is not None:
        cap = np.asarray(capacity_pop, float).copy()
        source = np.where(np.isfinite(cap), "given", "unlimited").astype(object)
    out = ProvisionResult(coverage=result, capacity_pop=cap, capacity_source=source)
    pop = result.demand["pop"].to_numpy(float)
    ok = result.demand["status"].to_numpy() == "ok"
    usable = (fac["status"] == "ok").to_numpy()
    for tier in result.profile.tiers:
        code = tier.code
        rows = np.flatnonzero(usable & fac["tier"].isin(result.profile.eligible(code)).to_numpy())
        matrix = coverage_matrix(result.network, result.facility_anchors.subset(rows),
                                 result.demand_anchors, limit_metres=result.profile.threshold_metres(code),
                                 dtype=np.float64)
        model = Provision.from_cost_matrix(matrix, np.where(ok, pop, 0.0), cap[rows]).solve()
        _store(out, code, rows, model, len(fac))
    return out


def _store(out: ProvisionResult, code: str, rows: np.ndarray, model: Provision, n_fac: int) -> None:
    """One tier's solution, mapped from the model's sites back to facility rows."""
    provider = model.provider()
    out.served[code] = np.asarray(model.served, float)
    out.provider[code] = np.where(provider >= 0, rows[np.maximum(provider, 0)] if len(rows) else -1, -1)
    assigned = np.zeros(n_fac)
    assigned[rows] = model.assigned
    out.assigned[code] = assigned
    # The least added capacity: room for each point's unserved people at its nearest complex.
    nearest = out.coverage.demand[f"{code}_facility"].to_numpy()
    left = out.unserved(code)
    hit = (left > 0) & (nearest >= 0)
    out.extra_pop[code] = np.bincount(nearest[hit], weights=left[hit], minlength=n_fac)
    out.seconds[code] = model.seconds
    out.stats[code] = dict(model.stats)
