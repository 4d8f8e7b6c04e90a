"""The audit report: ``report.html`` (readable, self-contained) and ``report.xlsx`` (the tables as
sheets, as Chinese offices expect), both built from a run folder's files."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .i18n import FALLBACK, bilingual, bilingual_text, city_name, html_lang, t
from .runfolder import atomic_path, write_text
from .tables import FORMULA_TRIGGERS, clean_text, read_csv

__all__ = ["write_report"]

# (file, sheet): each table's heading is the i18n key "report_" + sheet.
_TABLES = [("coverage_by_tier.csv", "coverage_by_tier"), ("coverage_by_unit.csv", "coverage_by_unit"),
           ("coverage_by_service.csv", "coverage_by_service"), ("life_circle_score.csv", "life_circle_score"),
           ("service_gaps.csv", "service_gaps"), ("standards.csv", "standards"), ("facilities.csv", "facilities"),
           ("proposals.csv", "proposals"), ("changes.csv", "changes")]

_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei","PingFang SC",Arial,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45}
h1{border-bottom:3px solid #2b83ba;padding-bottom:.3em}h2{margin-top:1.8em;color:#2b4a6b}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 7px}
th{background:#eef3f8}.fail{background:#fde0dc}.pass{background:#e6f4ea}.note{color:#a15c00}
.kpi{display:inline-block;margin:0 1.2em 1em 0;padding:.6em 1em;border-radius:6px;background:#eef3f8}
.kpi b{font-size:1.6em;display:block}img{max-width:100%}
.headline{font-size:1.35em;font-weight:bold;color:#2b4a6b}
"""


def _read(folder: Path, name: str) -> pd.DataFrame | None:
    p = folder / name
    return read_csv(p) if p.exists() else None


def _text_cells(ws, df: pd.DataFrame) -> None:
    """Make every text cell of a sheet written from ``df`` a string cell.

    openpyxl stores any string starting with ``=`` as a formula, which Excel then runs (OWASP
    "CSV injection"); a string cell shows it as typed. The quote prefix keeps it text when a
    planner edits the cell, for ``+``, ``-`` and ``@`` too.
    """
    text = [j for j, col in enumerate(df.columns, start=1)
            if df[col].dtype == object or pd.api.types.is_string_dtype(df[col].dtype)
            or isinstance(df[col].dtype, pd.CategoricalDtype)]
    cells = [ws[1]] + [col for j in text for col in ws.iter_cols(min_col=j, max_col=j, min_row=2)]
    for cell in (c for group in cells for c in group):
        if isinstance(cell.value, str):
            cell.data_type = "s"
            if cell.value.startswith(FORMULA_TRIGGERS):
                cell.quotePrefix = True


def _write_xlsx(sheets: dict[str, pd.DataFrame], path: Path) -> Path:
    with atomic_path(path) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as writer:
        for name, frame in (sheets or {"empty": pd.DataFrame()}).items():
            df = clean_text(frame)
            df.to_excel(writer, sheet_name=name[:31], index=False)
            _text_cells(writer.sheets[name[:31]], df)
    return path


def _table(df: pd.DataFrame, *, lang: str = FALLBACK, max_rows: int = 60) -> str:
    shown = df.head(max_rows)
    text = shown.to_html(index=False, escape=True, na_rep="", float_format=lambda v: f"{v:,.3f}"
                         if abs(v) < 1 else f"{v:,.0f}")
    if {"passed", "all_passed"} & set(df.columns):
        text = text.replace("<td>False</td>", '<td class="fail">False</td>').replace(
            "<td>True</td>", '<td class="pass">True</td>')
    if len(df) > max_rows:
        text += f"<p>{html.escape(t('report_more_rows', lang).format(n=len(df) - max_rows))}</p>"
    return text


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _share_chart(by_tier: pd.DataFrame) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2.6))
    labels = by_tier["tier"].astype(str)
    ax.barh(labels, by_tier["covered_share"] * 100, color="#2b83ba")
    ax.barh(labels, 100 - by_tier["covered_share"].fillna(0) * 100,
            left=by_tier["covered_share"].fillna(0) * 100, color="#f4a582")
    ax.set_xlim(0, 100)
    # English: the chart is drawn with matplotlib's default font, which has no Chinese glyphs.
    ax.set_xlabel(t("report_share_axis", FALLBACK))
    for i, v in enumerate(by_tier["covered_share"].fillna(0)):
        ax.text(min(v * 100 + 1, 90), i, f"{v:.1%}", va="center")
    fig.tight_layout()
    out = _png(fig)
    plt.close(fig)
    return out


def _static_map(folder: Path, lang: str) -> str | None:
    try:
        from .figures import coverage_figure
    except ImportError:
        return None
    path = folder / "map.png"
    coverage_figure(folder, path, lang=lang)
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _top_gaps(folder: Path) -> pd.DataFrame | None:
    p = folder / "gaps.gpkg"
    if not p.exists():
        return None
    import geopandas as gpd
    import pyogrio

    frames = [gpd.read_file(p, layer=name).drop(columns="geometry").head(10)
              for name, _ in pyogrio.list_layers(p)]
    frames = [f for f in frames if len(f)]
    return clean_text(pd.concat(frames, ignore_index=True)) if frames else None


def write_report(folder: str | Path, *, run=None, changes: pd.DataFrame | None = None,
                 title: str | None = None, lang: str | None = None) -> list[Path]:
    """Write ``report.html`` and ``report.xlsx`` into a run or audit folder.

    Parameters
    ----------
    folder
        The run folder (its CSV files and ``manifest.json`` are read).
    run
        The in-memory run, if at hand (not required).
    changes
        The comparison with an earlier audit (read from ``changes.csv`` when absent).
    title
        The report's title (default: the folder's name).
    lang
        ``"zh"`` or ``"en"`` for section titles (default and ``"zh"``: Chinese and English).

    Returns
    -------
    list of Path
        The two files written.

    """
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8")) \
        if (folder / "manifest.json").exists() else {}
    lang = lang or "zh"
    title = title or folder.name
    first, scorecard = _scorecard(folder, manifest, lang)
    parts = [*_opening(title, lang), *scorecard, *_head(folder, manifest, lang)]
    if changes is not None:
        # An in-memory table has not been through write_csv: openpyxl refuses control characters.
        changes = clean_text(changes)
    sheets, tables = _tables(folder, changes, manifest, lang)
    sheets = {**first, **sheets}
    parts += tables
    parts.append(f"<h2>{html.escape(bilingual('report_provenance', lang))}</h2>")
    inputs = clean_text(pd.DataFrame([{"role": k, **v} for k, v in manifest.get("inputs", {}).items()]))
    if len(inputs):
        parts.append(_table(inputs, lang=lang))
    facts = {"profile": manifest.get("profile"), "created": manifest.get("created"),
             **{f"version {k}": v for k, v in manifest.get("versions", {}).items()},
             **{f"seconds {k}": v for k, v in manifest.get("timings_s", {}).items()}}
    parts.append(_table(pd.DataFrame({"fact": list(facts), "value": [str(v) for v in facts.values()]}), lang=lang))
    parts.append(f"<p>{html.escape(t('report_network', lang))}</p></body></html>")
    html_path = write_text(folder / "report.html", "\n".join(parts))
    return [html_path, _write_xlsx(sheets, folder / "report.xlsx")]


def _opening(title: str, lang: str) -> list[str]:
    """The page's head and title."""
    return [f"<!doctype html><html lang=\"{html_lang(lang)}\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(t('report_title', lang))} · {html.escape(title)}</h1>"]


def _scorecard(folder: Path, manifest: dict, lang: str) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """What the report opens with when the run has a scorecard: how many communities meet every
    rule, the scorecard (worst first, as written) and every rule per community with its quote."""
    card = _read(folder, "scorecard.csv")
    if card is None:
        return {}, []
    met = int(card["all_passed"].astype(str).str.lower().eq("true").sum()) if "all_passed" in card else 0
    city = str(manifest.get("scorecard", {}).get("city") or manifest.get("profile") or "")
    headline = bilingual_text(lambda one: t("report_scorecard_headline", one).format(
        city=city_name(city, one), n=met, total=len(card)), lang)
    parts = [f"<p class=\"headline\">{html.escape(headline)}</p>"]
    unjudged = int(card["rules_evaluated"].eq(0).sum()) if "rules_evaluated" in card else 0
    if unjudged:
        note = bilingual_text(lambda one: t("report_scorecard_none", one).format(m=unjudged), lang)
        parts.append(f"<p class=\"note\">{html.escape(note)}</p>")
    sheets = {"scorecard": card}
    by_unit = _read(folder, "standards_by_unit.csv")
    if by_unit is not None:
        sheets["standards_by_unit"] = by_unit
    for sheet, df in sheets.items():
        parts.append(f"<h2>{html.escape(bilingual('report_' + sheet, lang))}</h2>{_table(df, lang=lang)}")
    return sheets, parts


def _head(folder: Path, manifest: dict, lang: str) -> list[str]:
    """The population notes, the headline figures and the static map."""
    parts: list[str] = []
    pop = manifest.get("population", {})
    if pop.get("is_estimate"):
        note = bilingual("report_estimate", lang, sep=" ").format(label=pop.get("label", ""))
        parts.append(f"<p class=\"note\">{html.escape(note)}</p>")
    # Rows dropped with --drop-invalid, separators read and how polygons were spread: a
    # reader of the figures must see what the population reader decided.
    parts += [f"<p class=\"note\">{html.escape(bilingual('report_population', lang))}: {html.escape(str(n))}</p>"
              for n in pop.get("notes", [])]
    by_tier = _read(folder, "coverage_by_tier.csv")
    if by_tier is not None:
        parts.append("<div>" + "".join(
            f"<span class=\"kpi\">{html.escape(str(r.tier_name if 'tier_name' in by_tier else r.tier))}"
            f" ({r.threshold_minutes:g} {t('minutes', lang)})<b>{r.covered_share:.1%}</b>{r.covered_pop:,.0f} / "
            f"{r.population:,.0f}</span>" for r in by_tier.itertuples()) + "</div>")
        parts.append(f"<img alt=\"{html.escape(t('report_share_alt', lang))}\" src=\"{_share_chart(by_tier)}\">")
    static = _static_map(folder, lang)
    if static:
        parts.append(f"<h2>{html.escape(bilingual('report_map', lang))}</h2><img alt=\"map\" src=\"{static}\">"
                     f"<p>{html.escape(t('report_map_note', lang))}</p>")
    return parts


def _tables(folder: Path, changes: pd.DataFrame | None, manifest: dict, lang: str
            ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The report's tables: the sheets of ``report.xlsx`` and their HTML sections."""
    sheets: dict[str, pd.DataFrame] = {}
    parts: list[str] = []
    if changes is not None and not (folder / "changes.csv").exists():
        sheets["changes"] = changes
    # Provision refines coverage (who of the covered is served): it closes the coverage section.
    provision: tuple | None = _provision(folder, manifest, lang)
    coverage_end = "coverage_by_unit" if (folder / "coverage_by_unit.csv").exists() else "coverage_by_tier"

    def provision_section() -> None:
        nonlocal provision
        if provision is not None:
            sheets.update(provision[0])
            parts.extend(provision[1])
            provision = None

    def gaps_section() -> None:
        gaps = _top_gaps(folder)
        if gaps is not None:
            sheets["largest_gaps"] = gaps
            parts.append(f"<h2>{html.escape(bilingual('report_largest_gaps', lang))}</h2>{_table(gaps, lang=lang)}")

    for file, sheet in _TABLES:
        df = _read(folder, file)
        if df is None and sheet == "changes" and changes is not None:
            df = changes
        if df is None:
            continue
        sheets[sheet] = df
        parts.append(f"<h2>{html.escape(bilingual('report_' + sheet, lang))}</h2>{_table(df, lang=lang)}")
        if sheet == "coverage_by_unit":
            gaps_section()
        if sheet == coverage_end:
            provision_section()
    if "coverage_by_unit" not in sheets:
        gaps_section()
    provision_section()
    return sheets, parts


# The columns of the provision section's tables (the CSV files hold more: the sheets have them all).
_PROVISION_TIER = ["tier", "tier_name", "served_pop", "covered_unserved_pop", "uncovered_pop", "offnetwork_pop",
                   "outside_pop", "served_share", "extra_floor_area_m2"]
_PROVISION_COMPLEX = ["tier", "facility_id", "name", "facility_tier", "capacity_pop", "assigned_pop", "utilisation",
                      "extra_capacity_pop", "extra_floor_area_m2"]


def _provision(folder: Path, manifest: dict, lang: str) -> tuple[dict[str, pd.DataFrame], list[str]] | None:
    """The provision section, from ``provision_*.csv`` (``None`` for a run from before provision):
    the capacity rule, the five-way account per tier, the fullest complexes and every complex
    needing extra floor area."""
    by_tier = _read(folder, "provision_by_tier.csv")
    if by_tier is None:
        return None
    sheets = {"provision_by_tier": by_tier}
    for name in ("provision_by_unit", "provision_by_complex"):
        df = _read(folder, f"{name}.csv")
        if df is not None:
            sheets[name] = df
    parts = [f"<h2>{html.escape(bilingual('report_provision', lang))}</h2>"]
    block = manifest.get("provision")
    rule = block.get("rule") if isinstance(block, dict) else None
    if rule:
        parts.append(f"<p>{html.escape(bilingual('report_provision_rule', lang))}: {html.escape(str(rule))}</p>")
    parts.append(_table(_percent(by_tier[[c for c in _PROVISION_TIER if c in by_tier]], "served_share"), lang=lang))
    complexes = sheets.get("provision_by_complex")
    if complexes is not None and {"utilisation", "extra_floor_area_m2"} <= set(complexes.columns):
        parts += _complex_tables(complexes, lang)
    return sheets, parts


def _complex_tables(complexes: pd.DataFrame, lang: str) -> list[str]:
    """The 10 most utilised complexes, each once at its fullest tier, and every (tier, complex)
    needing extra floor area, tier by tier as the file lists them, most needed first."""
    df = complexes.assign(**{c: pd.to_numeric(complexes[c], errors="coerce") for c in
                             ("utilisation", "extra_capacity_pop", "extra_floor_area_m2") if c in complexes})
    shown = [c for c in _PROVISION_COMPLEX if c in df]
    # Among equally full complexes, the one leaving the most people out first.
    keys = [c for c in ("utilisation", "extra_capacity_pop") if c in df]
    busiest = df[df["utilisation"].notna()].sort_values(keys, ascending=False, kind="stable")
    if "facility_id" in busiest:
        busiest = busiest.drop_duplicates("facility_id")
    parts = []
    if len(busiest):
        parts.append(f"<h3>{html.escape(bilingual('report_provision_busiest', lang))}</h3>"
                     f"{_table(_percent(busiest[shown].head(10), 'utilisation'), lang=lang)}")
    need = df[df["extra_floor_area_m2"] > 0]
    order = pd.factorize(need["tier"])[0] if "tier" in need else np.zeros(len(need))
    need = need.assign(order_=order).sort_values(["order_", "extra_floor_area_m2"], ascending=[True, False],
                                                 kind="stable")
    parts.append(f"<h3>{html.escape(bilingual('report_provision_extra', lang))}</h3>")
    parts.append(_table(_percent(need[shown], "utilisation"), lang=lang, max_rows=len(need)) if len(need)
                 else f"<p>{html.escape(bilingual('report_provision_no_extra', lang, sep=' '))}</p>")
    return parts


def _percent(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """``df`` with a share column as text in % (one decimal) for the page; the sheets keep the numbers."""
    if column not in df:
        return df
    share = pd.to_numeric(df[column], errors="coerce")
    return df.assign(**{column: [f"{v:.1%}" if pd.notna(v) else "" for v in share]})
