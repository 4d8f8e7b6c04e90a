"""Reading the explorer and the report (issue 21, item 4): the explorer's legend of point colours,
"load the proposals" disabled when a run has none, the scenario's total gain after loading, every
figure rounded to whole people and 0.1 min, and the pages' words in the page's language only.

The explorer is read in headless Chromium (``document.body.innerText``, tooltips and titles); the
report is parsed. What may stand in the other language is data: the names and words of the run's
files (facility, unit and service names, the documents' quotes, the notes circles wrote into the
CSV files, paths and versions in the manifest), the files' column names (the report's tables
are headed as the CSV files and the sheets are), a few proper names, and on a Chinese report the
English gloss of a heading, which :func:`circles.outputs.i18n.bilingual` adds on purpose.
"""

from __future__ import annotations

import json
import re
import shutil
import string
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from browser import browser_page
from bs4 import BeautifulSoup

from circles.cli import main
from circles.outputs.explorer import render, write_explorer
from circles.outputs.i18n import STRINGS, t
from circles.outputs.report import write_report
from circles.runs.compare import compare_audits
from circles.runs.pipeline import RunInputs, coverage_run

UNITS = Path(__file__).parent.parent / "data" / "chengdu_communities.gpkg"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
LATIN = re.compile(r"[A-Za-z]+")
# Names that are the same in every language: products, formats and the command that sites.
PROPER = ("OpenStreetMap", "Leaflet", "GeoJSON", "CSV", "ODbL", "SHA-256", "report.xlsx", "map.html",
          "circles site", "H3")
_LEGEND_KEYS = ("covered", "uncovered", "unplaced", "added", "candidate", "closed")


@pytest.fixture(scope="module")
def sited(tmp_path_factory) -> Path:
    """A Baoji-profile site run with communities and the extract's services: every report table."""
    out = tmp_path_factory.mktemp("reading") / "run"
    assert main(["site", "--profile", "baoji", "--units", str(UNITS), "--services", "osm", "--new", "3",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def pages(sited, tmp_path_factory) -> dict[str, Path]:
    """The run's own explorer (Chinese, the profile's language) and the same data in English."""
    zh = sited / "explorer.html"
    text = zh.read_text(encoding="utf-8")
    data = json.loads(text.split('type="application/json">')[1].split("</script>")[0])["data"]
    en = tmp_path_factory.mktemp("reading_en") / "explorer.html"
    en.write_text(render(data, lang="en", title=sited.name), encoding="utf-8")
    return {"zh": zh, "en": en}


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Path:
    """The explorer of a coverage run: no proposals."""
    run = coverage_run(RunInputs(), tmp_path_factory.mktemp("bare") / "run", draw_map=False)
    return write_explorer(run.folder, run=run, lang="zh")


def _open(page, path: Path) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(15_000)
    page.goto(path.as_uri())
    page.wait_for_function("window.circles !== undefined")
    return errors


# What a page shows, read in one visit per page (each visit costs seconds): the legend's rows and
# the colours the markers are drawn in, the panel and every text, before and after loading.
_LEGEND = """() => Object.fromEntries([...document.querySelectorAll('#legend [data-key]')].map(r => [r.dataset.key,
    {text: r.innerText.trim(), fill: getComputedStyle(r.querySelector('i')).backgroundColor}]))"""
_USED = """() => ({dots: [...new Set(dots.map(d => d.options.fillColor))],
    sites: [...new Set(marks.map(m => m.options.fillColor))], rings: [...new Set(marks.map(m => m.options.color))]})"""
_PANEL = """() => ({covered: Object.fromEntries([...document.querySelectorAll('#tiers tr[data-tier]')].map(r =>
    [r.dataset.tier, r.querySelector('td.covered').innerText])),
    gain: Object.fromEntries([...document.querySelectorAll('#tiers tr[data-tier]')].map(r =>
    [r.dataset.tier, r.querySelector('td.gain').innerText])),
    text: document.getElementById('panel').innerText,
    note: document.getElementById('scenarioNote') ? document.getElementById('scenarioNote').innerText : null})"""
# Everything the page says: its visible text, its title, every title attribute and marker tooltip.
_TEXT = """() => [document.body.innerText, document.title,
    ...[...document.querySelectorAll('[title]')].map(e => e.getAttribute('title')),
    ...marks.map(m => m.getTooltip() ? String(m.getTooltip().getContent()) : '')].join('\\n')"""


def _visit(page, path: Path) -> dict:
    seen: dict = {"errors": _open(page, path)}
    seen |= page.evaluate("""() => ({colours: window.circles.colours, tiers: D.tiers, units: D.units,
        names: D.sites.name, covered: window.circles.covered()})""")
    seen["legend"], seen["used"] = page.evaluate(_LEGEND), page.evaluate(_USED)
    seen["heading"] = page.locator("#legend .head").first.inner_text()
    seen["panel"], seen["text"] = page.evaluate(_PANEL), [page.evaluate(_TEXT)]
    button = page.locator("#loadProposals")
    seen["button"] = {"disabled": button.is_disabled(), "text": button.inner_text(),
                      "title": button.get_attribute("title"),
                      "span": page.evaluate("() => { const b = document.getElementById('loadProposals');"
                                            " return b.parentElement.tagName === 'SPAN' ? b.parentElement.title : null; }")}
    button.click(force=True)  # disabled: the click does nothing
    seen["loaded"] = {"covered": page.evaluate("window.circles.covered()"), "panel": page.evaluate(_PANEL),
                      "rows": page.evaluate("window.circles.scenarioRows()"), "rings": page.evaluate(_USED)["rings"]}
    seen["text"].append(page.evaluate(_TEXT))
    page.select_option("#viewTier", index=0)  # the unit table of another tier
    seen["other_view"] = page.evaluate(_PANEL)["text"]
    # A second change is the last change: the scenario's note goes.
    page.evaluate("window.circles.toggle(window.circles.sites.kind.indexOf('candidate'))")
    seen["note_after_toggle"] = page.evaluate(_PANEL)["note"]
    return seen


@pytest.fixture(scope="module")
def seen(pages, bare) -> dict[str, dict]:
    out = {}
    with browser_page() as page:
        for key, path in (("zh", pages["zh"]), ("en", pages["en"]), ("bare", bare)):
            out[key] = _visit(page, path)
            assert out[key]["errors"] == [], key
            page.goto("about:blank")
    return out


# ---------------------------------------------------------------- the explorer

_WORDS = {"covered": "explorer_people_covered", "uncovered": "explorer_people_uncovered",
          "unplaced": "explorer_people_unplaced", "added": "explorer_added", "candidate": "explorer_candidate",
          "closed": "explorer_closed"}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_legend_names_every_colour_the_points_use(seen, lang):
    page = seen[lang]
    rows, colours, tiers, used = page["legend"], page["colours"], page["tiers"], page["used"]
    for key, word in _WORDS.items():
        assert rows[key]["text"] == t(word, lang), key
    for tier in tiers:
        assert rows[f"existing-{tier['code']}"]["text"] == f"{tier[f'name_{lang}']} · {t('explorer_existing', lang)}"
        assert rows[f"existing-{tier['code']}"]["fill"] == _rgb(tier["colour"])
    assert page["heading"] == t("explorer_people_at", lang).format(tier=tiers[-1][f"name_{lang}"])
    # Every colour a demand point is drawn in has its row, and so has every site's fill and outline.
    people = ("covered", "uncovered", "unplaced")
    assert set(used["dots"]) <= {colours[k] for k in people}
    assert {rows[k]["fill"] for k in people} == {_rgb(colours[k]) for k in people}
    assert rows["candidate"]["fill"] == _rgb(colours["candidate"])
    assert rows["closed"]["fill"] == _rgb(colours["closed"])
    assert set(used["sites"]) <= {colours["candidate"], colours["closed"], *(tr["colour"] for tr in tiers)}
    rings = set(used["rings"]) | set(page["loaded"]["rings"])
    assert rings <= {colours["existing"], colours["added"], colours["closedRing"], colours["candidateRing"]}
    assert colours["added"] in page["loaded"]["rings"]  # loaded proposals are drawn as the legend's added sites


def _rgb(hex_colour: str) -> str:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def test_load_is_disabled_without_proposals_and_says_why(seen):
    bare, sited = seen["bare"], seen["zh"]
    assert bare["button"] == {"disabled": True, "text": t("load", "zh"), "title": t("explorer_no_proposals", "zh"),
                              "span": t("explorer_no_proposals", "zh")}
    # The click did nothing: no site opened, no last change, no note.
    assert bare["loaded"]["covered"] == bare["covered"]
    assert set(bare["loaded"]["panel"]["gain"].values()) == {""}
    assert bare["loaded"]["panel"]["note"] is None
    assert bare["loaded"]["rows"] == []
    assert sited["button"] == {"disabled": False, "text": t("load", "zh"), "title": None, "span": None}


def test_loading_the_proposals_shows_the_scenario_gain(sited, seen):
    proposals = pd.read_csv(sited / "proposals.csv", encoding="utf-8-sig")
    tier = str(proposals["tier"].iloc[0])
    page = seen["zh"]
    before, after, panel = page["covered"], page["loaded"]["covered"], page["loaded"]["panel"]
    assert page["panel"]["note"] is None
    # Whole people: the sum of proposals.csv's gains (each written to 0.1) to within its rounding.
    total = proposals["new_covered_pop"].sum()
    shown = panel["gain"][tier]
    assert shown.startswith("+")
    assert abs(int(shown.replace(",", "")) - total) <= 0.5 + 0.05 * len(proposals)
    assert int(panel["covered"][tier].replace(",", "")) == round(after[tier])
    for code, text in panel["gain"].items():  # every tier shows its own part of the scenario's gain
        expected = round(after[code] - before[code])
        assert text == ("" if expected == 0 else f"{expected:+,}"), code
    assert panel["note"] == t("explorer_scenario_gain", "zh")
    assert page["note_after_toggle"] is None
    # Loaded at the tier they were sited for.
    assert sorted(r["tier"] for r in page["loaded"]["rows"]) == [tier] * len(proposals)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_explorer_figure_is_rounded(seen, lang):
    page = seen[lang]
    panels = [page["panel"], page["loaded"]["panel"]]
    for panel in panels:
        assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", c) for c in panel["covered"].values())
        assert all(re.fullmatch(r"([+-]\d{1,3}(,\d{3})*)?", g) for g in panel["gain"].values())
    assert any(panels[1]["gain"].values())
    minutes = re.escape(t("minutes", lang))
    for text in (*(p["text"] for p in panels), page["other_view"]):
        assert not re.search(r"\d\.\d{2,}", text)
        for m in re.finditer(r"\d+\.\d", text):  # a decimal is a share in % or a walking time in minutes
            after = text[m.end():m.end() + 8]
            assert after.startswith("%") or re.match(r"\s*" + minutes, after), text[m.start() - 10:m.end() + 10]
        shares = re.findall(r"[\d.]+%", text)
        assert shares
        assert all(re.fullmatch(r"\d+\.\d%", s) for s in shares)
        assert re.search(r"\(\d+(\.\d)? " + minutes + r"\)", text)


def _without(text: str, values) -> str:
    for value in sorted({str(v) for v in values if str(v)}, key=len, reverse=True):
        text = text.replace(value, " ")
    return text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_explorer_speaks_the_page_language_only(seen, pages, bare, lang):
    visits = [(seen[lang], pages[lang])] + ([(seen["bare"], bare)] if lang == "zh" else [])
    other = LATIN if lang == "zh" else CJK
    for page, path in visits:
        for text in page["text"]:  # before and after loading the proposals
            # Data: unit and facility names, and the run folder's name in the title.
            rest = _without(_without(text, [*page["units"], *page["names"], path.parent.name]), PROPER)
            rest = re.sub(r"\b\d+ k?m\b", " ", rest)  # the scale bar's SI symbols read the same everywhere
            assert not other.search(rest), sorted(set(other.findall(rest)))
            assert t("explorer_legend", lang) in rest
    assert t("explorer_no_proposals", "zh") in seen["bare"]["text"][0]


# ---------------------------------------------------------------- the report

@pytest.fixture(scope="module")
def reports(sited, tmp_path_factory) -> dict[str, Path]:
    """report.html in both languages, each with a comparison (changes.csv) against the run itself."""
    out = {}
    for lang in ("zh", "en"):
        folder = Path(shutil.copytree(sited, tmp_path_factory.mktemp(f"report_{lang}") / sited.name))
        compare_audits(sited, folder)
        out[lang] = write_report(folder, lang=lang)[0]
    return out


def _data_strings(folder: Path) -> tuple[set[str], set[str]]:
    """The text values and the column names of the run's files, and the manifest's words."""
    values: set[str] = set()
    columns: set[str] = set()
    frames = [pd.read_csv(p, encoding="utf-8-sig") for p in folder.glob("*.csv")]
    import geopandas as gpd

    frames += [gpd.read_file(folder / "gaps.gpkg", layer=n).drop(columns="geometry")
               for n, _ in pyogrio.list_layers(folder / "gaps.gpkg")]
    for df in frames:
        columns |= set(map(str, df.columns))
        for c in df.columns:
            values |= {v.lstrip("'") for v in df[c].dropna() if isinstance(v, str)}
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))

    def walk(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)
        elif isinstance(node, str):
            yield node

    values |= set(walk({k: manifest.get(k) for k in ("inputs", "versions", "profile", "created", "population",
                                                      "provision")}))
    values |= set(manifest.get("versions", {}))  # the packages' names
    return values | {folder.name}, columns


def _gloss_patterns() -> list[re.Pattern]:
    """The English of every report string, as :func:`bilingual` puts it after its Chinese: at the
    end of a heading or a note, after " · " (or a space)."""
    out = []
    for key, entry in STRINGS.items():
        if key.startswith(("report_", "city_")):
            parts = [re.escape(lit) + (".+?" if field is not None else "")
                     for lit, field, _, _ in string.Formatter().parse(entry["en"])]
            out.append(re.compile("(?: · | )" + "".join(parts) + r"[\s:：]*$"))
    return sorted(out, key=lambda p: -len(p.pattern))


def _report_text(path: Path) -> tuple[str, BeautifulSoup]:
    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    for el in soup(["style", "script"]):
        el.decompose()
    alts = [img.get("alt", "") for img in soup.find_all("img")]
    return "\n".join([soup.get_text("\n"), *alts]), soup


def _unexplained(soup: BeautifulSoup, lang: str, values: set[str], columns: set[str]) -> list[str]:
    """The report's texts that are neither data nor, on a Chinese page, an English gloss."""
    found = []
    for table in soup.find_all("table"):
        found += [th.get_text() for th in table.find_all("th") if th.get_text() not in columns]
        # A cell is data, or the report's words around data (a package's name and 版本).
        found += [_without(td.get_text(), values) for td in table.find_all("td")
                  if td.get_text().lstrip("'") not in values]
    glosses = _gloss_patterns() if lang == "zh" else []
    for el in soup.find_all(["h1", "h2", "h3", "p", "span"]):
        if el.find_parent("table"):
            continue
        text = el.get_text()
        # A gloss ends a heading, or stands before data (the capacity rule): before and after the data goes.
        for pattern in glosses:
            text = pattern.sub("", text)
        text = _without(text, values)
        for pattern in glosses:
            text = pattern.sub("", text)
        found.append(text)
    found += [img.get("alt", "") for img in soup.find_all("img")]
    return [_without(x, PROPER) for x in found]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_report_speaks_the_page_language_outside_the_data(reports, lang):
    path = reports[lang]
    values, columns = _data_strings(path.parent)
    text, soup = _report_text(path)
    # The report's own tables (provenance) are labelled in the page's language.
    heads = [th.get_text() for th in soup.find_all("th")]
    for key in ("report_input", "report_path", "report_sha256", "report_fact", "report_value"):
        assert t(key, lang) in heads, key
    assert t("report_part_network", lang) in text
    rest = _unexplained(soup, lang, values, columns)
    other = LATIN if lang == "zh" else CJK
    assert not [x for x in rest if other.search(x)], [x for x in rest if other.search(x)]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_verdicts_say_yes_or_no_in_the_page_language(reports, lang):
    _, soup = _report_text(reports[lang])
    seen = set()
    for table in soup.find_all("table"):
        head = [th.get_text() for th in table.find("thead").find_all("th")]
        for col in ("passed", "all_passed", "overloaded"):
            if col in head:
                i = head.index(col)
                cells = [tr.find_all("td")[i] for tr in table.find("tbody").find_all("tr")]
                seen |= {c.get_text() for c in cells}
                for c in cells:
                    if col != "overloaded" and c.get_text():
                        assert c["class"] == ["pass" if c.get_text() == t("yes", lang) else "fail"]
    assert seen - {""}
    assert seen <= {t("yes", lang), t("no", lang), ""}


_WHOLE = re.compile(r"-?\d{1,3}(,\d{3})*")
_TENTH = re.compile(r"-?\d{1,3}(,\d{3})*(\.\d)?")
_SHARE = re.compile(r"-?\d+\.\d%")


def _expected(column: str) -> re.Pattern:
    """What a figure of ``column`` must look like, decided here apart from the report's own rules."""
    if column in ("lon", "lat", "gcj02_lon", "gcj02_lat"):
        return re.compile(r"\d+\.\d{6}")
    if "share" in column or column == "utilisation":
        return _SHARE
    if "_pop" in column or column.startswith("pop") or column in ("population", "people_lacking", "gain_if_offered",
                                                                   "households", "served_households"):
        return _WHOLE
    return _TENTH  # minutes, metres, floor areas, ratios: 0.1 at most


def test_every_report_figure_is_rounded(reports, sited):
    checked = 0
    for lang, path in reports.items():
        _, soup = _report_text(path)
        for table in soup.find_all("table"):
            head = [th.get_text() for th in table.find("thead").find_all("th")]
            rows = [[td.get_text() for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
            kinds = head.index("detail") if "detail" in head else None
            for row in rows:
                for col, text in zip(head, row, strict=True):
                    if not re.fullmatch(r"-?[\d,]*\.?\d+%?", text):  # a figure (not a version)
                        continue
                    if kinds is not None and col in ("before", "after", "change"):
                        col = row[kinds] if "_" in row[kinds] else "people_lacking"  # a gap row counts people
                    assert _expected(col).fullmatch(text), (lang, col, text)
                    checked += 1
        # The headline figures: shares to 0.1 %, people whole, minutes to 0.1.
        for kpi in soup.select("span.kpi"):
            assert re.fullmatch(r".+ \(\d+(\.\d)? " + re.escape(t("minutes", lang)) + r"\)\d+\.\d%[\d,]+ / [\d,]+",
                                kpi.get_text()), kpi.get_text()
    assert checked > 1000
    # The figures agree with the files they are rounded from.
    by_tier = pd.read_csv(sited / "coverage_by_tier.csv", encoding="utf-8-sig")
    _, soup = _report_text(reports["zh"])
    kpis = [k.get_text() for k in soup.select("span.kpi")]
    for kpi, r in zip(kpis, by_tier.itertuples(), strict=True):
        assert f"{r.covered_share:.1%}{r.covered_pop:,.0f} / {r.population:,.0f}" in kpi
