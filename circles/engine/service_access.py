"""Per-category access for a coverage result: who reaches each service within its threshold, the
15-minute life-circle score, what is missing where, and what each complex could add."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse

from ..readers.services import Category, parse_services
from .placement import snap_cap_metres
from .routing import Anchors, coverage_matrix, nearest

if TYPE_CHECKING:
    from .coverage import CoverageResult

__all__ = ["ServiceAccess", "service_access"]


@dataclass
class ServiceAccess:
    """Walking access of every demand point to every service category.

    Attributes
    ----------
    result : CoverageResult
        The coverage run it extends (demand, units, facilities, network).
    catalogue : list of Category
    metres : dict
        Per category, network metres to the nearest provider (``inf`` beyond twice the threshold).
    covered : dict
        Per category, the demand points within its threshold.
    points : GeoDataFrame
        The service points used.
    warnings : list of str
        Categories with no provider at all, and groups missing from the population.

    """

    result: CoverageResult
    catalogue: list[Category]
    metres: dict[str, np.ndarray]
    covered: dict[str, np.ndarray]
    points: gpd.GeoDataFrame
    warnings: list[str] = field(default_factory=list)

    def weights(self, c: Category) -> tuple[np.ndarray, float, str]:
        """The people a category counts (its group's column when the population has one), the
        people outside the study area it adds to the total, and the group's name."""
        d = self.result.demand
        if c.group and c.group in d.columns:
            return d[c.group].to_numpy(float), 0.0, c.group
        return d["pop"].to_numpy(float), self.result.outside_extra_pop, ""

    def by_service(self) -> pd.DataFrame:
        """Coverage per category: the columns of ``coverage_by_service.csv``."""
        mpm = self.result.profile.metres_per_minute
        everyone = np.ones(len(self.result.demand), dtype=bool)
        rows = []
        for c in self.catalogue:
            w, extra, group = self.weights(c)
            metres = c.threshold_metres(mpm)
            rows.append({"service": c.code, "service_name": c.name_zh,
                         "threshold_minutes": round(metres / mpm, 2), "threshold_metres": round(metres, 1),
                         "group": group, **self.result.account(everyone, self.covered[c.code], w, extra)})
        return pd.DataFrame(rows)

    @property
    def required(self) -> list[Category]:
        """The categories the life-circle score counts."""
        return [c for c in self.catalogue if c.required]

    def score(self) -> pd.Series:
        """Per resident, how many required categories are within their thresholds."""
        return pd.Series(np.sum([self.covered[c.code] for c in self.required], axis=0).astype(int),
                         index=self.result.demand.index, name="life_circle_score")

    def score_summary(self) -> pd.DataFrame:
        """Share of the population reaching all required categories, overall and per unit."""
        d = self.result.demand
        s = self.score().to_numpy()
        n = len(self.required)
        pop = d["pop"].to_numpy(float)
        rows = []
        for unit, mask in [("study area", np.ones(len(d), dtype=bool))] + [
                (u, d["unit"].astype(str).to_numpy() == u) for u in sorted(set(d["unit"].astype(str)))
                if self.result.units is not None]:
            total = pop[mask].sum() + (self.result.outside_extra_pop if unit == "study area" else 0.0)
            full = pop[mask & (s == n)].sum()
            missing = self._missing(mask)
            rows.append({"unit": unit, "required_categories": n, "population": total,
                         "reach_all_pop": full, "reach_all_share": full / total if total else np.nan,
                         "mean_score": float(np.average(s[mask], weights=pop[mask])) if pop[mask].sum() else np.nan,
                         "most_missing": "; ".join(f"{k} ({v:,.0f})" for k, v in missing[:3])})
        return pd.DataFrame(rows)

    def _missing(self, mask: np.ndarray) -> list[tuple[str, float]]:
        ok = self.result.demand["status"].to_numpy() == "ok"
        out = []
        for c in self.required:
            w, _, _ = self.weights(c)
            lacking = float(w[mask & ok & ~self.covered[c.code]].sum())
            if lacking > 0:
                out.append((c.code, lacking))
        return sorted(out, key=lambda kv: -kv[1])

    def gaps_by_unit(self) -> pd.DataFrame:
        """Per unit and category, the people (or group) lacking it within threshold; largest first."""
        d = self.result.demand
        units = d["unit"].astype(str).to_numpy()
        rows = []
        for u in sorted(set(units)):
            for code, lacking in self._missing(units == u):
                rows.append({"kind": "unit", "subject": u, "service": code, "people_lacking": round(lacking, 1),
                             "gain_if_offered": np.nan})
        return pd.DataFrame(rows, columns=["kind", "subject", "service", "people_lacking", "gain_if_offered"]) \
            .sort_values("people_lacking", ascending=False, kind="stable")

    def gaps_by_complex(self) -> pd.DataFrame:
        """Per complex: the categories its catchment lacks, and the people who would gain if the
        complex offered each (those lacking it who are within its threshold of the complex)."""
        res = self.result
        fac = res.facilities
        ok_fac = np.flatnonzero(fac["status"].to_numpy() == "ok")
        ok = res.demand["status"].to_numpy() == "ok"
        mpm = res.profile.metres_per_minute
        columns = ["kind", "subject", "service", "people_lacking", "gain_if_offered"]
        if not len(ok_fac):
            return pd.DataFrame(columns=columns)
        anchors = res.facility_anchors.subset(_mask(len(fac), ok_fac))
        catchment = self._catchments(anchors, fac["tier"].to_numpy()[ok_fac])
        offers = (parse_services(fac["services"].iloc[ok_fac], self.catalogue, file=None, field="services")
                  if "services" in fac else [[] for _ in ok_fac])
        names = fac["name"].astype(str).to_numpy()[ok_fac]
        frames = []
        for c in self.required:
            w, _, _ = self.weights(c)
            lacking = np.where(ok & ~self.covered[c.code], w, 0.0)
            near = coverage_matrix(res.network, anchors, res.demand_anchors,
                                   limit_metres=c.threshold_metres(mpm)).astype(bool).astype(float).tocsr()
            # people_lacking: in the complex's own catchment; gain: everyone lacking it within
            # the category's threshold of the complex, who would gain if it offered the service.
            people, gain = catchment @ lacking, near @ lacking
            keep = (people > 0) & np.array([c.code not in o for o in offers], dtype=bool)
            frames.append(pd.DataFrame({"kind": "complex", "subject": names[keep], "service": c.code,
                                        "people_lacking": np.round(people[keep], 1),
                                        "gain_if_offered": np.round(gain[keep], 1)}))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
        return out[columns].sort_values("gain_if_offered", ascending=False, kind="stable")

    def _catchments(self, anchors: Anchors, tiers: np.ndarray) -> sparse.csr_matrix:
        """Complexes × demand points: 1 where the point is within the complex's own tier threshold."""
        res = self.result
        rows = np.zeros(len(tiers), dtype=np.int64)
        blocks, order = [], []
        for t in res.profile.tiers:
            sel = np.flatnonzero(tiers == t.code)
            if len(sel):
                blocks.append(coverage_matrix(res.network, anchors.subset(_mask(len(tiers), sel)),
                                              res.demand_anchors,
                                              limit_metres=res.profile.threshold_metres(t.code)).astype(bool))
                order.append(sel)
        n = len(res.demand)
        if not blocks:
            return sparse.csr_matrix((len(tiers), n))
        stacked = sparse.vstack(blocks).astype(float).tocsr()
        rows[np.concatenate(order)] = np.arange(len(tiers))
        return stacked[rows]

    def score_hexagons(self, *, resolution: int | None = None):
        """The life-circle score on H3 hexagons: people, people reaching every required category,
        that share and the mean score (WGS-84 polygons), weakest first."""
        import geopandas as gpd
        import h3
        import shapely

        from .gaps import h3_cells, h3_resolution

        d = self.result.demand
        ok = d["status"].to_numpy() == "ok"
        res = resolution or h3_resolution(self.result.network.hull.area / 1e6)
        cells = h3_cells(d.geometry.x.to_numpy()[ok], d.geometry.y.to_numpy()[ok], res)
        pop = d["pop"].to_numpy(float)[ok]
        s = self.score().to_numpy()[ok]
        full = s == len(self.required)
        g = pd.DataFrame({"h3": cells, "pop": pop, "reach_all_pop": np.where(full, pop, 0.0), "ws": s * pop}) \
            .groupby("h3", sort=False).sum()
        g = g[g["pop"] > 0]
        g["reach_all_share"] = g["reach_all_pop"] / g["pop"]
        g["mean_score"] = g["ws"] / g["pop"]
        g = g.drop(columns="ws").reset_index().sort_values("reach_all_share", kind="stable")
        names = [h3.int_to_str(int(c)) for c in g["h3"].to_numpy()]
        geoms = [shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(n)]) for n in names]
        return gpd.GeoDataFrame(g.assign(h3=names).reset_index(drop=True), geometry=geoms, crs=4326)

    def demand_columns(self) -> pd.DataFrame:
        """``svc_{code}_minutes`` per demand point and the score, for ``demand.gpkg``."""
        mpm = self.result.profile.metres_per_minute
        cols = {f"svc_{c.code}_minutes": np.round(self.metres[c.code] / mpm, 3) for c in self.catalogue}
        cols["life_circle_score"] = self.score().to_numpy()
        return pd.DataFrame(cols, index=self.result.demand.index)


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[rows] = True
    return m


def service_access(result, points, catalogue: list[Category]) -> ServiceAccess:
    """Walking access from every demand point to each category: one bounded multi-source pass per
    category on the CSR arrays (never a pass per facility).

    Parameters
    ----------
    result
        A :class:`circles.coverage.CoverageResult`.
    points
        Service points (:func:`circles.services.service_points`), WGS-84 with ``service``.
    catalogue
        The categories.

    """
    net = result.network
    mpm = result.profile.metres_per_minute
    ok = result.demand["status"].to_numpy() == "ok"
    x, y = net.from_wgs84(points.geometry.x.to_numpy(), points.geometry.y.to_numpy()) if len(points) else \
        (np.array([]), np.array([]))
    snap = net.snap(x, y, max_metres=snap_cap_metres(result.profile))
    codes = points["service"].to_numpy() if len(points) else np.array([])
    metres, covered, notes = {}, {}, []
    for c in catalogue:
        limit = c.threshold_metres(mpm)
        sel = (codes == c.code) & snap["snapped"].to_numpy()
        if not sel.any():
            notes.append(f"no provider of {c.code} ({c.name_zh}) within reach of the network: everyone is "
                         "counted as uncovered for it")
            metres[c.code] = np.full(len(result.demand), np.inf)
        else:
            anchors = Anchors.from_snap(snap[sel])
            metres[c.code], _ = nearest(net, anchors, limit_metres=2 * limit, targets=result.demand_anchors)
            metres[c.code] = np.where(ok, metres[c.code], np.inf)
        covered[c.code] = ok & (metres[c.code] <= limit + 1e-9)
        if c.group and c.group not in result.demand.columns:
            notes.append(f"{c.code} serves '{c.group}', which the population does not carry: counted in people")
    for n in notes:
        if n.startswith("no provider"):
            warnings.warn(n, stacklevel=2)
    return ServiceAccess(result=result, catalogue=catalogue, metres=metres, covered=covered, points=points,
                         warnings=notes)
