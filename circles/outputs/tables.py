"""Writing a run folder's tables and layers, each file atomically, and reading its CSVs back.

CSV files are UTF-8 with a byte-order mark, so Excel on a Chinese Windows desktop shows Chinese
names correctly when a planner double-clicks them.

Every CSV circles writes goes through :func:`write_csv`, which defuses "CSV injection" (OWASP): a
text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return would run as a formula
in Excel or WPS, so it is written with a leading ``'``. :func:`read_csv` removes exactly that
``'`` again, so names round-trip when circles reads its own files back (maps, figures, compare,
the explorer). C0 control characters other than tab, newline and carriage return are removed from
text cells by every writer here: spreadsheets and GIS programs choke on them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from .runfolder import atomic_path

__all__ = ["FORMULA_TRIGGERS", "clean_text", "escape_formulas", "read_csv", "unescape_formulas",
           "write_coverage_run", "write_csv", "write_layers"]

#: First characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Quoting also a value that already starts with quotes before a trigger keeps the rule reversible:
# "'=x" is written "''=x" and read back as "'=x", never as "=x".
_QUOTE = re.compile(r"^(?='*[=+\-@\t\r])")
_UNQUOTE = re.compile(r"^'(?='*[=+\-@\t\r])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_TEXT_KINDS = ("string", "mixed", "mixed-integer", "empty")


def _is_text(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return _is_text(s.cat.categories.to_series())
    if not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        return False
    # Object columns of only numbers or booleans (e.g. True/False with gaps) have no text to change.
    return pd.api.types.infer_dtype(s, skipna=True) in _TEXT_KINDS


def _sub_text(df: pd.DataFrame, pattern: re.Pattern, repl: str, *, headers: bool = True) -> pd.DataFrame:
    """``df`` with ``pattern`` replaced in every string cell of its text columns (and headers)."""
    out = df.copy()
    for i in range(df.shape[1]):
        s = df.iloc[:, i]
        if not _is_text(s):
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        out.isetitem(i, _sub_cells(s, pattern, repl))
    if headers:
        out.columns = [pattern.sub(repl, c) if isinstance(c, str) else c for c in df.columns]
    out.attrs = dict(df.attrs)
    return out


def _sub_cells(s: pd.Series, pattern: re.Pattern, repl: str) -> pd.Series:
    """``s`` with ``pattern`` replaced in its string cells: matched on the distinct values only
    (a city's 250,000 demand points repeat a few tier and unit names), the others left as they are."""
    code, distinct = pd.factorize(s)
    values = pd.Series(distinct, dtype=object)
    # Non-string cells of a mixed column come back missing from .str: they never match.
    hit = values.str.contains(pattern, regex=True).fillna(False).to_numpy(bool)
    if not hit.any():
        return s
    fixed = values.to_numpy(object).copy()
    fixed[hit] = values[hit].str.replace(pattern, repl, regex=True).to_numpy(object)
    rows = np.flatnonzero((code >= 0) & hit[np.maximum(code, 0)])
    out = s.copy()
    out.iloc[rows] = fixed[code[rows]]
    return out


def clean_text(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with C0 control characters (all but tab, newline and carriage return) removed from its
    text cells and column names: the last line of defence before a file is written."""
    return _sub_text(df, _CONTROL, "")


def escape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` as :func:`write_csv` writes it: text cells and column names cleaned of control
    characters, and a ``'`` put before those that start with a :data:`FORMULA_TRIGGERS` character.

    Numeric columns are left alone: a negative number stays a number.
    """
    return _sub_text(clean_text(df), _QUOTE, "'")


def unescape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`escape_formulas` on text cells: remove the one ``'`` it added."""
    return _sub_text(df, _UNQUOTE, "")


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as UTF-8 (with BOM) CSV, atomically, with formula-like text defused.

    Parameters
    ----------
    df
        The table (its index is not written).
    path
        The file to write.

    Returns
    -------
    Path
        ``path``.

    """
    with atomic_path(path) as tmp:
        # CRLF rows (RFC 4180, as Excel writes them) make the writer quote a cell holding a bare
        # carriage return, which would otherwise end the row early for every reader.
        escape_formulas(df).to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return Path(path)


def read_csv(path: str | Path, **kwargs) -> pd.DataFrame:
    """Read a CSV written by :func:`write_csv`, with the ``'`` it put before formula-like text
    removed, so a facility named ``=HYPERLINK(...)`` reads back under that name.

    Parameters
    ----------
    path
        The file.
    **kwargs
        Passed to :func:`pandas.read_csv` (the encoding is UTF-8 with or without a BOM).

    Returns
    -------
    pandas.DataFrame

    """
    return unescape_formulas(pd.read_csv(path, encoding="utf-8-sig", **kwargs))


def _gpkg_ready(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = clean_text(gdf)
    for col in out.columns:
        if col == out.geometry.name:
            continue
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str"):
            out[col] = out[col].astype("string")
        elif np.issubdtype(out[col].dtype, np.floating):
            # GeoPackage readers disagree on infinity; an empty value means "beyond the horizon".
            out[col] = out[col].where(np.isfinite(out[col]))
    return out


def write_layers(layers: dict[str, gpd.GeoDataFrame | Iterable[gpd.GeoDataFrame]], path: str | Path) -> Path:
    """Write several layers into one GeoPackage, atomically (all layers or none).

    A layer is a GeoDataFrame, or frames in turn (appended one after the other), so that a large
    layer need never be whole in memory; it then needs at least one frame, empty or not.
    """
    with atomic_path(path) as tmp:
        for name, frames in layers.items():
            for k, gdf in enumerate([frames] if isinstance(frames, gpd.GeoDataFrame) else frames):
                # Through Arrow: half the time of the row-by-row writer for 250k points, same file.
                _gpkg_ready(gdf).to_file(tmp, layer=name, driver="GPKG", engine="pyogrio", use_arrow=True,
                                         mode="a" if k else "w")
    return Path(path)


def write_coverage_run(result, out: str | Path, *, isochrones: dict[str, gpd.GeoDataFrame] | None = None,
                       gaps: gpd.GeoDataFrame | None = None, standards: pd.DataFrame | None = None,
                       capacity_short: gpd.GeoDataFrame | None = None) -> list[Path]:
    """Write the tables and layers of a coverage run into the folder ``out``.

    Parameters
    ----------
    result
        A :class:`circles.coverage.CoverageResult`.
    out
        The run folder (claimed beforehand with :meth:`circles.io.RunFolder.claim`).
    isochrones
        Layers for ``isochrones.gpkg`` (name → GeoDataFrame).
    gaps
        The gap hexagons for ``gaps.gpkg``.
    standards
        The standards checks for ``standards.csv``.
    capacity_short
        The capacity-short hexagons for ``capacity_short.gpkg``
        (:func:`circles.engine.gaps.short_hexagons`).

    With provision solved (``result.extras["provision"]``) it also writes
    ``provision_by_tier.csv``, ``provision_by_complex.csv`` and, with units,
    ``provision_by_unit.csv``; ``facilities.csv`` then has the capacity columns.

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
        layers = {}
        for k, level in enumerate(result.unit_levels):
            rows = by_unit[by_unit["level"] == level.name]
            shares = rows.pivot_table(index="unit", columns="tier", values="covered_share", aggfunc="first")
            shares.columns = [f"{c}_covered_share" for c in shares.columns]
            polys = level.polygons[["unit", "parent", "geometry"]].assign(level=level.name)
            # "units" is the finest level (what maps and earlier runs read); every level has its own layer.
            name = "units" if k == len(result.unit_levels) - 1 else f"units_{k + 1}"
            layers[name] = polys.merge(shares, left_on="unit", right_index=True, how="left")
        written.append(write_layers(layers, out / "units.gpkg"))
    written.append(write_csv(result.facility_table(), out / "facilities.csv"))
    demand = result.demand.copy()
    if "provision" in result.extras:
        demand = demand.join(result.extras["provision"].demand_columns())
    if result.is_estimate:
        demand["pop_source"] = result.population_label
    written.append(write_layers({"demand": demand}, out / "demand.gpkg"))
    if gaps is not None:
        written.append(write_layers(_tier_layers(gaps, "gaps"), out / "gaps.gpkg"))
    prov = result.extras.get("provision")
    if prov is not None:
        written += _write_provision(prov, out, units=result.units is not None)
    if capacity_short is not None:
        written.append(write_layers(_tier_layers(capacity_short, "capacity_short"), out / "capacity_short.gpkg"))
    if isochrones:
        written.append(write_layers(isochrones, out / "isochrones.gpkg"))
    if standards is not None:
        written.append(write_csv(standards, out / "standards.csv"))
    return written


def _tier_layers(hexagons: gpd.GeoDataFrame, stem: str) -> dict[str, gpd.GeoDataFrame]:
    """One layer per tier (``{stem}_{tier}``), or one empty ``{stem}`` layer when there is none."""
    if not len(hexagons):
        return {stem: hexagons}
    return {f"{stem}_{t}": g for t, g in hexagons.groupby("tier", sort=False)}


def _write_provision(prov, out: Path, *, units: bool) -> list[Path]:
    """The provision tables of a run: per tier, per complex and (with units, as coverage) per unit."""
    written = [write_csv(prov.by_tier(), out / "provision_by_tier.csv")]
    if units:
        written.append(write_csv(prov.by_unit(), out / "provision_by_unit.csv"))
    written.append(write_csv(prov.by_complex(), out / "provision_by_complex.csv"))
    return written
