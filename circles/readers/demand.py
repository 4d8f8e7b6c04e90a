"""Demand points and the account of everyone read: the frame every population reader returns.

Shared by the population readers (tables, polygons, rasters, the OSM estimate), so none of them has
to reach into another's private helpers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError

__all__ = ["Demand", "area_wgs84", "excluded_frame", "grid_points", "make_demand", "numbers"]

_MAX_GRID_POINTS = 20_000_000


@dataclass
class Demand:
    """Weighted demand points and the account of everyone read.

    Attributes
    ----------
    points : geopandas.GeoDataFrame
        WGS-84 points: ``pop`` (float), ``source``, and group columns (``children``...) split
        the same way as ``pop``. ``points.attrs`` carries ``label`` and ``is_estimate`` too.
    input_pop : float
        Everyone read: ``points.pop.sum() + excluded.pop.sum()``.
    excluded : pandas.DataFrame
        ``reason``, ``pop``, ``rows`` (spreadsheet rows, header = row 1; or a cell count) and
        ``n`` (how many rows or cells): what was read but not turned into points. Reasons
        containing "outside" are people outside the study area; rows dropped with
        ``drop_invalid`` carry ``pop`` 0, their count being unknown.
    is_estimate : bool
        True for the OSM estimate.
    label : str
        Where the numbers come from (starts with "estimate" when they are one).
    notes : list of str
        What the reader decided and a planner should know (thousands separators read, how
        polygons were spread, rows dropped).
    counts : dict
        The same as numbers for the manifest: ``spread`` (polygons per method),
        ``thousands_separators``, ``invalid_dropped``.

    """

    points: gpd.GeoDataFrame
    input_pop: float
    excluded: pd.DataFrame = field(default_factory=lambda: excluded_frame([]))
    is_estimate: bool = False
    label: str = ""
    notes: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    @property
    def excluded_pop(self) -> float:
        """People read but not turned into points."""
        return float(self.excluded["pop"].sum()) if len(self.excluded) else 0.0

    def summary(self) -> str:
        """A few lines for a log or the CLI: source, people read, points, exclusions."""
        lines = [f"population: {self.label}",
                 f"  read {self.input_pop:,.0f} people; {self.points['pop'].sum():,.0f} in "
                 f"{len(self.points):,} demand points"]
        lines += [f"  excluded {r.pop:,.0f}: {r.reason} (rows {r.rows})" for r in self.excluded.itertuples()]
        return "\n".join(lines)

    def record(self) -> dict:
        """What the manifest keeps: label, people read, exclusions, notes and counts."""
        excl = self.excluded.assign(pop=self.excluded["pop"].round(1))
        return {"label": self.label, "is_estimate": self.is_estimate, "input_pop": round(self.input_pop, 1),
                "excluded": excl.to_dict(orient="records"), "notes": list(self.notes), **self.counts}


def excluded_frame(rows: list[dict]) -> pd.DataFrame:
    rows = [{"n": 0, **r} for r in rows]
    return pd.DataFrame(rows, columns=["reason", "pop", "rows", "n"]).astype({"pop": float, "n": int})


def make_demand(points: gpd.GeoDataFrame, input_pop: float, excl: list[dict], label: str, *,
            is_estimate: bool = False, notes: list | None = None, counts: dict | None = None) -> Demand:
    excluded = excluded_frame(excl)
    located = float(points["pop"].sum())
    if abs(located + float(excluded["pop"].sum()) - input_pop) > 1e-6 * max(1.0, input_pop):
        raise RuntimeError(f"population not conserved: {located} + {excluded['pop'].sum()} != {input_pop}")
    points = points.reset_index(drop=True)
    points.attrs.update(label=label, is_estimate=is_estimate)
    counts = dict(counts or {})
    dropped = excluded["reason"].str.contains("--drop-invalid", regex=False)
    if dropped.any():
        counts["invalid_dropped"] = int(excluded.loc[dropped, "n"].sum())
        notes = [*(notes or []), *(f"excluded {r.reason}: {r.n:,}"
                                   + ("" if str(r.rows).endswith("cells") else f" (rows {r.rows})")
                                   for r in excluded[dropped].itertuples())]
    return Demand(points=points, input_pop=float(input_pop), excluded=excluded,
                  is_estimate=is_estimate, label=label, notes=list(notes or []), counts=counts)


def numbers(s: pd.Series) -> pd.Series:
    # Spreadsheets exported in China often write 12,345 with a thousands separator.
    if not pd.api.types.is_numeric_dtype(s):
        s = s.astype(str).str.replace(",", "", regex=False).str.replace("，", "", regex=False).str.strip()
    return pd.to_numeric(s, errors="coerce")


def area_wgs84(area):
    if isinstance(area, gpd.GeoDataFrame | gpd.GeoSeries):
        return shapely.union_all(area.to_crs(4326).geometry.to_numpy())
    return area


def grid_points(geoms: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points of one regular lattice inside each projected geometry: (owner, x, y).

    The lattice is shared, so neighbouring polygons tile without gaps or doubles; a geometry
    holding no lattice point (smaller than a cell) gets its representative point.
    """
    b = shapely.bounds(geoms)
    i0 = np.ceil(b[:, 0] / spacing - 0.5)
    j0 = np.ceil(b[:, 1] / spacing - 0.5)
    nx = np.maximum(np.floor(b[:, 2] / spacing - 0.5) - i0 + 1, 0).astype(np.int64)
    ny = np.maximum(np.floor(b[:, 3] / spacing - 0.5) - j0 + 1, 0).astype(np.int64)
    per = nx * ny
    if per.sum() > _MAX_GRID_POINTS:
        raise DataError(f"the polygons span too large an area for a {spacing:g} m grid "
                        f"({per.sum():,} candidate points)", fix="clip them to the study area first")
    owner = np.repeat(np.arange(len(geoms)), per)
    k = np.arange(len(owner)) - np.repeat(np.cumsum(per) - per, per)
    x = (i0[owner] + k % np.maximum(nx[owner], 1) + 0.5) * spacing
    y = (j0[owner] + k // np.maximum(nx[owner], 1) + 0.5) * spacing
    shapely.prepare(geoms)
    inside = shapely.contains_xy(geoms[owner], x, y)
    owner, x, y = owner[inside], x[inside], y[inside]
    lone = np.setdiff1d(np.arange(len(geoms)), owner)
    rep = shapely.point_on_surface(geoms[lone])
    return (np.concatenate([owner, lone]), np.concatenate([x, shapely.get_x(rep)]),
            np.concatenate([y, shapely.get_y(rep)]))
