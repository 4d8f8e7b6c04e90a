"""Page strings live in one place: ``circles/outputs/i18n.py``.

What the source check counts, in every module of ``circles/outputs/`` but ``i18n.py`` and in
``circles/cli.py`` (readers and profiles are out of scope: their Chinese literals are data, such
as the column-name aliases 名称/经度 and the tier names of the built-in profiles):

* a language branch: a comparison (``==``, ``!=``, ``in``, ``not in``) between a name or
  attribute called ``lang`` (or ending in ``_lang``) and a string literal or a tuple, list or set
  of string literals; and in any string literal (JavaScript inside Python), ``lang ==``/``===``
  or ``!=``/``!==`` followed by a quote;
* page text in Chinese: a string literal (f-string parts included) holding a CJK character
  (ideographs, CJK punctuation, full-width forms). Docstrings are not page text, nor is the
  ``help=`` of a command-line option (it names the readers' default column names, e.g. 等级).
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest

from circles.outputs.i18n import LANGS, STRINGS, bilingual, localized, t
from circles.outputs.maps import draw_run_map
from circles.readers.profiles import get_profile
from circles.runs.pipeline import RunInputs, coverage_run

ROOT = Path(__file__).resolve().parents[1] / "circles"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
JS_LANG = re.compile(r"lang\s*(?:===?|!==?)\s*['\"]")


def _scope() -> list[Path]:
    files = sorted(p for p in (ROOT / "outputs").glob("*.py") if p.name != "i18n.py")
    return [*files, ROOT / "cli.py"]


def _is_lang(node: ast.AST) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name == "lang" or name.endswith("_lang")


def _is_str_literal(node: ast.AST) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_str_literal(e) for e in node.elts)
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _exempt(tree: ast.AST) -> set[int]:
    """The ids of the string constants that are not page text: docstrings and ``help=`` values."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                skip.add(id(body[0].value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            skip.update(id(n) for n in ast.walk(node.value))
    return skip


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip, found = _exempt(tree), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_lang(s) for s in sides) and any(_is_str_literal(s) for s in sides):
                found.append(f"{path.name}:{node.lineno}: language branch")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            if CJK.search(node.value):
                found.append(f"{path.name}:{node.lineno}: Chinese literal {node.value[:20]!r}")
            if JS_LANG.search(node.value):
                found.append(f"{path.name}:{node.lineno}: language branch in embedded script")
    return found


def test_no_page_strings_or_language_branches_outside_i18n():
    found = [v for p in _scope() for v in _violations(p)]
    assert not found, "\n".join(found)


def test_the_check_finds_what_it_is_meant_to(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""文档 is fine."""\n'
                   'def f(lang, p):\n'
                   '    """说明 is fine too."""\n'
                   '    a = "设施" if lang == "zh" else "facilities"\n'
                   '    b = p.lang in ("zh",)\n'
                   '    c = f"{a} · 人"\n'
                   '    d = "x = P.lang === \'zh\'"\n'
                   '    e = lang == other\n'
                   '    parser.add_argument("--c", help="default 等级/class")\n', encoding="utf-8")
    found = _violations(bad)
    assert [v.split(": ", 1)[1][:16] for v in found].count("language branch") == 2, found
    assert sum("Chinese literal" in v for v in found) == 2, found
    assert sum("embedded script" in v for v in found) == 1, found


def test_every_key_has_both_languages():
    for key, entry in STRINGS.items():
        assert set(entry) == set(LANGS), key
        assert all(entry[lang].strip() for lang in LANGS), key
        fields = [{f for _, f, _, _ in string.Formatter().parse(entry[lang]) if f} for lang in LANGS]
        assert fields[0] == fields[1], key  # the same placeholders in both
        assert not CJK.search(entry["en"]), key
        assert CJK.search(entry["zh"]), key  # every Chinese entry is written in Chinese


def test_lookups():
    assert t("facilities", "en") == "facilities"
    assert t("facilities", "fr") == "facilities"  # an unknown language reads English
    assert bilingual("report_provenance", "zh") == "数据来源 · Provenance"
    assert bilingual("report_provenance", "en") == "Provenance"
    tier = get_profile("deyang").tiers[-1]
    assert localized(tier, "name", "zh") == tier.name_zh
    assert localized(tier, "name", "en") == tier.name_en
    assert localized({"name_zh": "甲", "name_en": ""}, "name", "en") == ""
    assert localized({"name_zh": "甲", "name_en": "a"}, "name", "zh") == "甲"


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    run = coverage_run(RunInputs(), tmp_path_factory.mktemp("i18n") / "run", draw_map=False)
    return run.folder


def _decoded(path: Path) -> str:
    page = path.read_text(encoding="utf-8")
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)


def _data_values(folder: Path) -> list[str]:
    """Strings of the run's data (facility, unit and service point names), longest first."""
    import geopandas as gpd
    import pyogrio

    from circles.outputs.tables import read_csv

    values: set[str] = set()
    for name, column in (("facilities.csv", "name"), ("proposals.csv", "name")):
        if (folder / name).exists():
            df = read_csv(folder / name)
            values |= set(df[column].dropna().astype(str)) if column in df else set()
    for name, column in (("units.gpkg", "unit"), ("service_points.gpkg", "name")):
        if (folder / name).exists():
            for layer, _ in pyogrio.list_layers(folder / name):
                gdf = gpd.read_file(folder / name, layer=layer)
                values |= set(gdf[column].dropna().astype(str)) if column in gdf else set()
    import html

    return sorted({v for x in values for v in (x, html.escape(x), html.escape(x, quote=False))},
                  key=len, reverse=True)


def test_english_page_has_no_chinese_outside_data(run_folder, tmp_path):
    page = _decoded(draw_run_map(run_folder, lang="en", out=tmp_path / "en.html"))
    assert t("legend_gaps", "en") in page
    for value in _data_values(run_folder):
        page = page.replace(value, "")
    left = sorted(set(CJK.findall(page)))
    assert not left, "".join(left)


def test_chinese_page_has_its_words(run_folder, tmp_path):
    page = _decoded(draw_run_map(run_folder, lang="zh", out=tmp_path / "zh.html"))
    profile = get_profile(None)
    for key in ("service_area", "facilities", "gaps", "legend_gaps", "profile", "date", "name", "served"):
        assert t(key, "zh") in page, key
    assert localized(profile.tiers[-1], "name", "zh") in page
    assert t("legend_gaps", "en") not in page
