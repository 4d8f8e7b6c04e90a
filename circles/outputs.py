"""Writing a run folder's tables and layers, each file atomically.

CSV files are UTF-8 with a byte-order mark, so Excel on a Chinese Windows desktop shows Chinese
names correctly when a planner double-clicks them.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .io import atomic_path

__all__ = ["write_coverage_run", "write_csv", "write_layers"]


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as UTF-8 (with BOM) CSV, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, encoding="utf-8-sig")
    return Path(path)


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = gdf.copy()
    for col in out.columns:
        if col == out.geometry.name:
            continue
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str"):
            out[col] = out[col].astype("string")
        elif np.issubdtype(out[col].dtype, np.floating):
            # GeoPackage readers disagree on infinity; an empty value means "beyond the horizon".
            out[col] = out[col].where(np.isfinite(out[col]))
    return out


def write_layers(layers: dict[str, gpd.GeoDataFrame], path: str | Path) -> Path:
    """Write several layers into one GeoPackage, atomically (all layers or none)."""
    with atomic_path(path) as tmp:
        for name, gdf in layers.items():
            _gpkg_ready(gdf).to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    return Path(path)


def write_coverage_run(result, out: str | Path, *, isochrones: dict[str, gpd.GeoDataFrame] | None = None,
                       gaps: gpd.GeoDataFrame | None = None, standards: pd.DataFrame | None = None
                       ) -> list[Path]:
    """Write the tables and layers of a coverage run into the folder ``out``.

    Parameters
    ----------
    result
        A :class:`circles.coverage.CoverageResult`.
    out
        The run folder (created beforehand with :func:`circles.io.new_run_dir`).
    isochrones
        Layers for ``isochrones.gpkg`` (name → GeoDataFrame).
    gaps
        The gap hexagons for ``gaps.gpkg``.
    standards
        The standards checks for ``standards.csv``.

    Returns
    -------
    list of Path
        The files written.

    """
    out = Path(out)
    written = [write_csv(result.by_tier(), out / "coverage_by_tier.csv")]
    if result.units is not None:
        by_unit = result.by_unit()
        written.append(write_csv(by_unit, out / "coverage_by_unit.csv"))
        shares = by_unit.pivot_table(index="unit", columns="tier", values="covered_share", aggfunc="first")
        shares.columns = [f"{c}_covered_share" for c in shares.columns]
        units = result.units.merge(shares, left_on="unit", right_index=True, how="left")
        written.append(write_layers({"units": units}, out / "units.gpkg"))
    written.append(write_csv(result.facility_table(), out / "facilities.csv"))
    demand = result.demand.copy()
    if result.is_estimate:
        demand["pop_source"] = result.population_label
    written.append(write_layers({"demand": demand}, out / "demand.gpkg"))
    if gaps is not None:
        by_tier = {f"gaps_{t}": g for t, g in gaps.groupby("tier", sort=False)} if len(gaps) else \
            {"gaps": gaps}
        written.append(write_layers(by_tier, out / "gaps.gpkg"))
    if isochrones:
        written.append(write_layers(isochrones, out / "isochrones.gpkg"))
    if standards is not None:
        written.append(write_csv(standards, out / "standards.csv"))
    return written
