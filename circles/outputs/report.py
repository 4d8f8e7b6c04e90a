"""The audit report: ``report.html`` (readable, self-contained) and ``report.xlsx`` (the tables as
sheets, as Chinese offices expect), both built from a run folder's files."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from .i18n import FALLBACK, STRINGS, bilingual, bilingual_text, city_name, html_lang, t, writes_cjk
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


# How the page shows a column's figures (the sheets keep every digit): people (and households)
# whole, minutes to 0.1, shares in % to 0.1, degrees to 1e-6 (about 0.1 m), any other figure to 0.1.
_DEGREES = frozenset({"lon", "lat", "gcj02_lon", "gcj02_lat"})
_PEOPLE = frozenset({"pop", "population", "people_lacking", "gain_if_offered", "households", "served_households",
                     "households_capacity"})
_SHARES = frozenset({"utilisation"})
# The columns whose True/False is a verdict, shaded pass or fail.
_VERDICTS = frozenset({"passed", "all_passed"})
# changes.csv holds figures of several kinds in these columns: each row's detail names the kind.
_MIXED = ("before", "after", "change")


def _kind(column: str) -> str:
    """How the figures of ``column`` are shown: ``people``, ``minutes``, ``share``, ``degrees`` or ``number``."""
    if column in _DEGREES:
        return "degrees"
    if "share" in column or column in _SHARES:
        return "share"
    if "minutes" in column:
        return "minutes"
    if column in _PEOPLE or column.endswith("_pop") or column.startswith("pop_") or "_pop_" in column:
        return "people"
    return "number"


def _figure(value: float, kind: str) -> str:
    """One figure as the page shows it (see :func:`_kind`); ``+ 0.0`` keeps a rounded -0 from showing."""
    if not math.isfinite(value):
        return ""
    if kind == "share":
        return f"{value:.1%}"
    if kind == "degrees":
        return f"{value:.6f}"
    if kind == "people":
        return f"{round(value):,}"
    text = f"{round(value, 1) + 0.0:,.1f}"
    return text.removesuffix(".0")


def _cell(value, kind: str, lang: str, *, verdict: bool) -> str:
    """A table cell: a figure rounded by its kind, a yes/no in the page's language, or text as written."""
    if isinstance(value, bool | np.bool_) or (isinstance(value, str) and value in ("True", "False")):
        yes = value in (True, "True")
        word = html.escape(t("yes" if yes else "no", lang))
        return f"<td class=\"{'pass' if yes else 'fail'}\">{word}</td>" if verdict else f"<td>{word}</td>"
    if isinstance(value, int | float | np.integer | np.floating):
        return "<td></td>" if pd.isna(value) else f"<td>{_figure(float(value), kind)}</td>"
    if value is None or value is pd.NA or value is pd.NaT:
        return "<td></td>"
    return f"<td>{html.escape(str(value), quote=False)}</td>"


def _row_kinds(df: pd.DataFrame) -> list[list[str]]:
    """The kind of every cell of ``df``, row by row: its column's, or in changes.csv's mixed columns its row's."""
    columns = [_kind(str(c)) for c in df.columns]
    if not ("detail" in df and "kind" in df):
        return [columns] * len(df)
    mixed = [c in _MIXED for c in df.columns]
    return [[_change_kind(d, k) if m else c for c, m in zip(columns, mixed, strict=True)]
            for d, k in zip(df["detail"], df["kind"], strict=True)]


def _change_kind(detail, kind) -> str:
    """A row of changes.csv: a coverage or provision row names its figure in ``detail`` (``covered_pop``);
    a gap row counts uncovered people; a moved facility, metres."""
    named = _kind(str(detail))
    return "people" if named == "number" and str(kind).startswith("gaps") else named


def _table(df: pd.DataFrame, *, lang: str = FALLBACK, max_rows: int = 60) -> str:
    """A table of the page: every figure through :func:`_figure`, yes/no in the page's language."""
    shown = df.head(max_rows)
    # changes.csv's mixed columns hold tier codes and figures: the figures are read as numbers.
    shown = shown.assign(**{c: [_number_or_text(v) for v in shown[c]] for c in _MIXED if c in shown})
    head = "".join(f"<th>{html.escape(str(c), quote=False)}</th>" for c in shown.columns)
    verdicts = [c in _VERDICTS for c in shown.columns]
    rows = []
    # itertuples keeps each column's type (iterrows would make a row of ints and floats all floats).
    for values, kinds in zip(shown.itertuples(index=False, name=None), _row_kinds(shown), strict=True):
        rows.append("<tr>" + "".join(_cell(v, k, lang, verdict=j) for v, k, j in
                                     zip(values, kinds, verdicts, strict=True)) + "</tr>")
    text = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    if len(df) > max_rows:
        text += f"<p>{html.escape(t('report_more_rows', lang).format(n=len(df) - max_rows))}</p>"
    return text


def _number_or_text(value):
    """A number written as text (a mixed column read back from CSV) as a number; anything else as it is."""
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return value
    return value


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _share_chart(by_tier: pd.DataFrame, lang: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import cjk_font

    # The page's language where a font has its glyphs (matplotlib's default font has no Chinese);
    # English, and the tier codes, otherwise.
    font = cjk_font() if writes_cjk(lang) else None
    words = lang if font or not writes_cjk(lang) else FALLBACK
    rc = {"font.sans-serif": [font, "DejaVu Sans"], "font.family": "sans-serif"} if font else {}
    named = font is not None and "tier_name" in by_tier
    with plt.rc_context(rc):
        fig, ax = plt.subplots(figsize=(6, 2.6))
        labels = by_tier["tier_name" if named else "tier"].astype(str)
        share = by_tier["covered_share"].fillna(0) * 100
        ax.barh(labels, by_tier["covered_share"] * 100, color="#2b83ba")
        ax.barh(labels, 100 - share, left=share, color="#f4a582")
        ax.set_xlim(0, 100)
        ax.set_xlabel(t("report_share_axis", words))
        for i, v in enumerate(by_tier["covered_share"].fillna(0)):
            ax.text(min(v * 100 + 1, 90), i, _figure(v, "share"), va="center")
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
    parts += _provenance(manifest, lang)
    parts.append(f"<p>{html.escape(t('report_network', lang))}</p></body></html>")
    html_path = write_text(folder / "report.html", "\n".join(parts))
    return [html_path, _write_xlsx(sheets, folder / "report.xlsx")]


def _provenance(manifest: dict, lang: str) -> list[str]:
    """Where the run's files came from and what ran, labelled in the page's language."""
    parts = [f"<h2>{html.escape(bilingual('report_provenance', lang))}</h2>"]
    labels = {"path": t("report_path", lang), "sha256": t("report_sha256", lang)}
    rows = [{t("report_input", lang): _part(role, lang), **{labels.get(f, f): v for f, v in entry.items()}}
            for role, entry in manifest.get("inputs", {}).items()]
    inputs = clean_text(pd.DataFrame(rows))
    if len(inputs):
        parts.append(_table(inputs, lang=lang))
    facts = [(t("profile", lang), manifest.get("profile")), (t("report_created", lang), manifest.get("created")),
             *((t("report_version", lang).format(name=k), v) for k, v in manifest.get("versions", {}).items()),
             *((t("report_seconds", lang).format(step=_part(k, lang)), _figure(float(v), "number"))
               for k, v in manifest.get("timings_s", {}).items() if isinstance(v, int | float))]
    parts.append(_table(pd.DataFrame({t("report_fact", lang): [f for f, _ in facts],
                                      t("report_value", lang): ["" if v is None else str(v) for _, v in facts]}),
                        lang=lang))
    return parts


def _part(name: str, lang: str) -> str:
    """An input's role or a step of the run (``network``, ``units_2``, ``isochrones``) in the page's language."""
    stem, _, level = name.partition("_")
    key = f"report_part_{stem if level.isdigit() else name}"
    if key not in STRINGS:
        return name
    return f"{t(key, lang)} {level}" if level.isdigit() else t(key, lang)


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
            f" ({_figure(r.threshold_minutes, 'minutes')} {t('minutes', lang)})<b>{_figure(r.covered_share, 'share')}"
            f"</b>{_figure(r.covered_pop, 'people')} / {_figure(r.population, 'people')}</span>"
            for r in by_tier.itertuples()) + "</div>")
        parts.append(f"<img alt=\"{html.escape(t('report_share_alt', lang))}\" src=\"{_share_chart(by_tier, lang)}\">")
    static = _static_map(folder, lang)
    if static:
        parts.append(f"<h2>{html.escape(bilingual('report_map', lang))}</h2>"
                     f"<img alt=\"{html.escape(t('report_map', lang))}\" src=\"{static}\">"
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
    parts.append(_table(by_tier[[c for c in _PROVISION_TIER if c in by_tier]], lang=lang))
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
                     f"{_table(busiest[shown].head(10), lang=lang)}")
    need = df[df["extra_floor_area_m2"] > 0]
    order = pd.factorize(need["tier"])[0] if "tier" in need else np.zeros(len(need))
    need = need.assign(order_=order).sort_values(["order_", "extra_floor_area_m2"], ascending=[True, False],
                                                 kind="stable")
    parts.append(f"<h3>{html.escape(bilingual('report_provision_extra', lang))}</h3>")
    parts.append(_table(need[shown], lang=lang, max_rows=len(need)) if len(need)
                 else f"<p>{html.escape(bilingual('report_provision_no_extra', lang, sep=' '))}</p>")
    return parts

