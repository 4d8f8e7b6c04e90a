"""Provision under capacity on the map and in the report (issue 19): the capacity-short hexagons
per tier, capacity and utilisation in the facility popups, the report's provision section and
its sheets, and a run folder from before provision still drawing."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from browser import browser_page
from bs4 import BeautifulSoup

from circles.engine.provision_tiers import provision
from circles.outputs.i18n import bilingual, localized, t
from circles.outputs.map_provision import read_capacity_short, short_layers
from circles.outputs.maps import draw_run_map, result_map
from circles.outputs.report import write_report
from circles.outputs.tables import write_csv, write_layers
from circles.runs.pipeline import RunInputs, coverage_run

DATA = Path(__file__).resolve().parent.parent / "data"
FORMULA = '=HYPERLINK("http://evil.example","x")'
CAPACITY = 300.0
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
PROVISION_FILES = ("provision_by_tier.csv", "provision_by_unit.csv", "provision_by_complex.csv",
                   "capacity_short.gpkg")


def _short_hexagons(result, prov, res: int) -> gpd.GeoDataFrame:
    """People within reach but not served per H3 cell and tier, summed here by hand (pandas on the
    demand points) at resolution ``res``: what ``capacity_short.gpkg`` holds."""
    d = result.demand
    cells = [h3.latlng_to_cell(y, x, res) for x, y in zip(d.geometry.x, d.geometry.y, strict=True)]
    frames = []
    for tier in result.profile.tiers:
        df = pd.DataFrame({"h3": cells, "covered_unserved_pop": prov.unserved(tier.code),
                           "served_pop": prov.served[tier.code], "population": d["pop"].to_numpy(float)})
        g = df.groupby("h3", sort=False).sum()
        g = g[g["covered_unserved_pop"] >= 0.5].sort_values("covered_unserved_pop", ascending=False)
        frames.append(g.reset_index().assign(tier=tier.code))
    out = pd.concat(frames, ignore_index=True)
    geoms = [shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(c)]) for c in out["h3"]]
    return gpd.GeoDataFrame(out, geometry=geoms, crs=4326)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A Chengdu coverage run whose complexes each serve at most 300 people (some people within
    reach go unserved), with the provision files the run writes: the run's own where it writes
    them, else written here from the engine's result."""
    tmp = tmp_path_factory.mktemp("provision")
    fac = pd.read_csv(DATA / "chengdu_facilities.csv")
    fac["capacity_pop"] = CAPACITY
    fac.loc[0, "name"] = FORMULA
    fac.to_csv(tmp / "fac.csv", index=False)
    run = coverage_run(RunInputs(facilities=tmp / "fac.csv", units=DATA / "chengdu_communities.gpkg"),
                       tmp / "run", draw_map=False)
    folder, result = run.folder, run.result
    prov = run.extras.get("provision") or provision(result)
    if not (folder / "provision_by_tier.csv").exists():
        write_csv(prov.by_tier(), folder / "provision_by_tier.csv")
        write_csv(prov.by_unit(), folder / "provision_by_unit.csv")
        write_csv(prov.by_complex(), folder / "provision_by_complex.csv")
        short = _short_hexagons(result, prov, _resolution(folder))
        write_layers({f"capacity_short_{c}": g for c, g in short.groupby("tier", sort=False)},
                     folder / "capacity_short.gpkg")
        write_csv(result.facility_table().join(prov.facility_columns()), folder / "facilities.csv")
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        manifest["provision"] = {"rule": prov.rule}
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder, result, prov


def _csv(folder: Path, name: str) -> pd.DataFrame:
    # Read by hand, not through circles: the figures the pages must agree with.
    return pd.read_csv(folder / name, encoding="utf-8-sig")


def _gpkg(folder: Path) -> dict[str, gpd.GeoDataFrame]:
    """Each tier's capacity-short hexagons, as written."""
    path = folder / "capacity_short.gpkg"
    layers = [gpd.read_file(path, layer=n) for n, _ in pyogrio.list_layers(path)]
    return {str(g["tier"].iloc[0]): g for g in layers if len(g)}


def _decoded(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _numbers(text: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"-?[\d,]*\.?\d+", text)]


def _features(fg) -> list[dict]:
    geojson = next(c for c in fg._children.values() if hasattr(c, "data"))
    return [f["properties"] for f in geojson.data["features"]]


def _resolution(folder: Path) -> int:
    gaps = folder / "gaps.gpkg"
    return int(gpd.read_file(gaps, layer=str(pyogrio.list_layers(gaps)[0][0]))["resolution"].iloc[0])


def test_the_folder_leaves_people_short(built):
    folder, result, prov = built
    by_tier = _csv(folder, "provision_by_tier.csv")
    assert (by_tier["covered_unserved_pop"] > 0).all()
    layers = _gpkg(folder)
    assert set(layers) == set(by_tier["tier"])
    hand = _short_hexagons(result, prov, _resolution(folder))
    for tier, g in layers.items():
        mine = hand[hand["tier"] == tier].set_index("h3")
        assert set(g["h3"]) == set(mine.index)
        assert np.allclose(g["covered_unserved_pop"], mine.loc[g["h3"], "covered_unserved_pop"])
        assert np.allclose(g["population"], mine.loc[g["h3"], "population"])
        row = by_tier.set_index("tier").loc[tier]
        # Hexagons with less than half a person short (the solver's hundredths) are left out.
        assert g["covered_unserved_pop"].sum() == pytest.approx(row["covered_unserved_pop"], abs=2.0)
        assert (g["covered_unserved_pop"] >= 0.5).all()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_layer_per_tier_with_the_hexagons_and_their_figures(built, lang):
    folder, result, _ = built
    profile = result.profile
    layers = _gpkg(folder)
    totals = {k: g["covered_unserved_pop"].sum() for k, g in layers.items()}
    groups = short_layers(read_capacity_short(folder / "capacity_short.gpkg"), profile, lang=lang,
                          prefer=profile.tiers[-1].code)
    names = [fg.layer_name for fg in groups]
    tiers = [tr for tr in profile.tiers if tr.code in layers]
    assert len(groups) == len(tiers)
    people = t("people", lang)
    for fg, tier in zip(groups, tiers, strict=True):
        assert f"{t('short', lang)} · {localized(tier, 'name', lang)}" in fg.layer_name
        props = _features(fg)
        gpkg = layers[tier.code]
        assert len(props) == len(gpkg)
        for p, row in zip(props, gpkg.itertuples(), strict=True):
            cells = re.findall(r"<td>(.*?)</td>", p["popup"])
            assert all(c.endswith(f" {people}") for c in cells)
            shown = [_numbers(c)[0] for c in cells]
            for got, want in zip(shown, (row.covered_unserved_pop, row.served_pop, row.population), strict=True):
                assert abs(got - want) <= 0.5  # whole people
    # The lowest tier's layer is on, as its gaps are; the others a click away.
    assert [fg.show for fg in groups] == [tr is profile.tiers[-1] for tr in tiers]
    # Without a preference, the tier with the most people short.
    most = max(totals, key=totals.get)
    assert [fg.show for fg in short_layers(read_capacity_short(folder / "capacity_short.gpkg"), profile,
                                           lang=lang)] == [tr.code == most for tr in tiers]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_run_map_draws_the_layers_legend_and_facility_figures(built, tmp_path, lang):
    folder, result, _ = built
    page = _decoded(draw_run_map(folder, lang=lang, out=tmp_path / f"{lang}.html").read_text(encoding="utf-8"))
    layers = _gpkg(folder)
    for tier in result.profile.tiers:
        if tier.code in layers:
            assert f"{t('short', lang)} · {localized(tier, 'name', lang)}" in page
    assert t("legend_short", lang) in page
    assert '"circles-short"' in page  # its own pane
    rows = sum(len(g) for g in layers.values())
    assert page.count(f"<th style='text-align:left;padding-right:8px;white-space:nowrap'>"
                      f"{t('covered_unserved', lang)}</th>") == rows
    for key in ("capacity", "assigned", "utilisation", "extra_floor_area"):
        assert t(key, lang) in page
    other = "en" if lang == "zh" else "zh"
    assert t("legend_short", other) not in page


def test_facility_popups_say_capacity_assigned_and_utilisation(built):
    from circles.outputs.map_layers import facilities_layer
    from circles.outputs.tables import read_csv

    folder, result, _ = built
    fac = read_csv(folder / "facilities.csv")
    fac = fac[fac["status"] == "ok"]
    groups = facilities_layer(fac, result.profile, lang="en")
    props = [p for fg in groups if any(hasattr(c, "data") for c in fg._children.values()) for p in _features(fg)]
    assert len(props) == len(fac)
    by_name = {p["name"]: p for p in props}
    hand = pd.read_csv(folder / "facilities.csv", encoding="utf-8-sig")
    hand = hand[hand["status"] == "ok"]
    for r in hand.itertuples():
        p = by_name[r.name.lstrip("'").replace('"', "&quot;")]
        assert p["capacity"] == f"{CAPACITY:,.0f} people"
        assert abs(_numbers(p["assigned"])[0] - r.assigned_pop) <= 0.5
        assert p["utilisation"].endswith("%")
        assert abs(_numbers(p["utilisation"])[0] - 100 * r.utilisation) <= 0.05
        assert r.assigned_pop <= CAPACITY + 1e-6


def _section(page: str, heading: str) -> BeautifulSoup:
    """The elements from the ``<h2>`` saying ``heading`` up to the next ``<h2>``."""
    soup = BeautifulSoup(page, "html.parser")
    h2 = next(h for h in soup.find_all("h2") if h.get_text() == heading)
    parts = []
    for el in h2.find_next_siblings():
        if el.name == "h2":
            break
        parts.append(str(el))
    return BeautifulSoup("".join(parts), "html.parser")


def _rows(table) -> pd.DataFrame:
    head = [th.get_text() for th in table.find("thead").find_all("th")]
    body = [[td.get_text() for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
    return pd.DataFrame(body, columns=head)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_report_has_the_provision_section(built, lang):
    folder, _, prov = built
    write_report(folder, lang=lang)
    page = (folder / "report.html").read_text(encoding="utf-8")
    heading = bilingual("report_provision", lang)
    assert heading in page
    # After the coverage section (per tier, per unit, its gaps), before the service categories.
    order = [page.index(bilingual(k, lang)) for k in ("report_coverage_by_tier", "report_coverage_by_unit",
                                                      "report_largest_gaps", "report_provision")]
    assert order == sorted(order)
    if "report_coverage_by_service" in page or (folder / "coverage_by_service.csv").exists():
        assert page.index(heading) < page.index(bilingual("report_coverage_by_service", lang))
    section = _section(page, heading)
    assert prov.rule in section.get_text()
    tables = section.find_all("table")
    by_tier = _csv(folder, "provision_by_tier.csv")
    shown = _rows(tables[0])
    assert list(shown["tier"]) == list(by_tier["tier"])
    for col in ("served_pop", "covered_unserved_pop", "uncovered_pop", "offnetwork_pop", "outside_pop",
                "extra_floor_area_m2"):
        got = np.array([_numbers(v)[0] for v in shown[col]])
        assert (np.abs(got - by_tier[col].to_numpy()) <= 0.5).all(), col
    share = np.array([_numbers(v)[0] for v in shown["served_share"]])
    assert np.abs(share - 100 * by_tier["served_share"].to_numpy()).max() <= 0.05

    complexes = _csv(folder, "provision_by_complex.csv")
    busiest = _rows(tables[1])
    top = complexes.groupby("facility_id")["utilisation"].max().sort_values(ascending=False).head(10)
    assert len(busiest) == len(top)
    assert busiest["facility_id"].is_unique
    got = np.array([_numbers(v)[0] for v in busiest["utilisation"]])
    assert np.abs(got - 100 * top.to_numpy()).max() <= 0.05
    need = _rows(tables[2])
    short = complexes[complexes["extra_floor_area_m2"] > 0]
    assert len(need) == len(short)  # every one, however many
    for tier, rows in need.groupby("tier"):
        total = sum(_numbers(v)[0] for v in rows["extra_floor_area_m2"])
        assert total == pytest.approx(by_tier.set_index("tier").loc[tier, "extra_floor_area_m2"],
                                      abs=0.5 * len(rows) + 0.1)


def test_the_workbook_has_the_provision_sheets_as_text(built):
    folder, _, _ = built
    write_report(folder)
    wb = openpyxl.load_workbook(folder / "report.xlsx")
    for sheet, file in (("provision_by_tier", "provision_by_tier.csv"), ("provision_by_unit", "provision_by_unit.csv"),
                        ("provision_by_complex", "provision_by_complex.csv")):
        assert sheet in wb.sheetnames
        ws = wb[sheet]
        assert [c.value for c in ws[1]] == list(_csv(folder, file).columns)
        assert ws.max_row == len(_csv(folder, file)) + 1
    order = wb.sheetnames
    assert order.index("coverage_by_tier") < order.index("provision_by_tier") < order.index("facilities")
    ws = wb["provision_by_complex"]
    names = [c for c in next(ws.iter_cols(min_col=[c.value for c in ws[1]].index("name") + 1, min_row=2))
             if c.value == FORMULA]
    assert names  # the complex named like a formula, in every tier it serves
    assert all(c.data_type == "s" for c in names)
    formulas = [f"{w.title}!{c.coordinate}" for w in wb for row in w.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []


def test_an_english_page_has_no_chinese_outside_data(built, tmp_path):
    folder, _, _ = built
    page = _decoded(draw_run_map(folder, lang="en", out=tmp_path / "en.html").read_text(encoding="utf-8"))

    # Data: facility, unit and service point names, and the documents' words quoted by the rules.
    tables = [pd.read_csv(folder / n, encoding="utf-8-sig") for n in ("facilities.csv", "standards_by_unit.csv")
              if (folder / n).exists()]
    tables += [gpd.read_file(folder / n, layer=layer) for n in ("units.gpkg", "service_points.gpkg")
               if (folder / n).exists() for layer, _ in pyogrio.list_layers(folder / n)]
    values = {str(v).lstrip("'") for df in tables for c in df.columns
              if df[c].dtype == object or pd.api.types.is_string_dtype(df[c]) for v in df[c].dropna()}
    for value in sorted({x for v in values for x in (v, html.escape(v), html.escape(v, quote=False))}, key=len,
                        reverse=True):
        page = page.replace(value, "")
    assert not sorted(set(CJK.findall(page)))


def test_a_folder_from_before_provision_still_draws(built, tmp_path):
    folder, _, _ = built
    old = Path(shutil.copytree(folder, tmp_path / "old"))
    for name in PROVISION_FILES:
        (old / name).unlink()
    fac = pd.read_csv(old / "facilities.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    fac.drop(columns=["capacity_pop", "capacity_source", "assigned_pop", "utilisation", "extra_capacity_pop",
                      "extra_floor_area_m2"]).to_csv(old / "facilities.csv", index=False, encoding="utf-8-sig")
    manifest = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("provision", None)
    (old / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    page = _decoded(draw_run_map(old, lang="en").read_text(encoding="utf-8"))
    assert t("short", "en") not in page
    assert t("utilisation", "en") not in page
    assert t("legend_gaps", "en") in page
    write_report(old, lang="en")
    assert t("report_provision", "en") not in (old / "report.html").read_text(encoding="utf-8")
    assert not any(s.startswith("provision") for s in openpyxl.load_workbook(old / "report.xlsx").sheetnames)


def test_result_map_draws_provision_from_the_result(built):
    folder, result, prov = built
    short = read_capacity_short(folder / "capacity_short.gpkg")
    page = _decoded(result_map(result, capacity_short=short, provision=prov, lang="en").get_root().render())
    assert t("legend_short", "en") in page
    assert t("utilisation", "en") in page
    assert page.count(f"{t('covered_unserved', 'en')}</th>") == len(short)
    plain = _decoded(result_map(result, lang="en", title="plain").get_root().render())
    if "provision" not in result.extras:  # a run that keeps it maps it without being asked
        assert t("legend_short", "en") not in plain


def test_result_map_makes_the_hexagons_from_provision(built):
    gaps = pytest.importorskip("circles.engine.gaps")
    if not hasattr(gaps, "short_hexagons"):
        pytest.skip("circles.engine.gaps.short_hexagons lands with the run's capacity_short.gpkg")
    folder, result, prov = built
    page = _decoded(result_map(result, provision=prov, lang="en").get_root().render())
    rows = sum(len(g) for g in _gpkg(folder).values())
    assert page.count(f"{t('covered_unserved', 'en')}</th>") == rows


# The page point inside the first hexagon of the capacity-short layer named.
_HEXAGON_XY = """(name) => {
    const map = window[Object.keys(window).find(k => window[k] instanceof L.Map)];
    let found = null;
    map.eachLayer(l => { if (!found && l.feature && String(l.feature.properties.popup).includes(name)) { found = l; } });
    map.setView(found.getBounds().getCenter(), 16, {animate: false});
    const p = map.latLngToContainerPoint(found.getBounds().getCenter()), r = map.getContainer().getBoundingClientRect();
    return [r.left + p.x, r.top + p.y, found.feature.properties.popup];
}"""


def test_a_click_on_a_short_hexagon_opens_its_figures_in_chromium(built, tmp_path):
    # The service areas' and facilities' canvases lie above the hexagons' pane and take every
    # click: the layer opens the popup of the hexagon under a click no other layer took.
    folder, _, _ = built
    path = draw_run_map(folder, offline=True, lang="en", out=tmp_path / "en.html")
    with browser_page() as page:
        page.set_default_timeout(10_000)
        page.goto(path.as_uri())
        legends = page.locator(".circles-legend").all_inner_texts()
        assert any(t("legend_short", "en") in text for text in legends)
        x, y, popup = page.evaluate(_HEXAGON_XY, t("covered_unserved", "en"))
        page.mouse.click(x, y)
        page.wait_for_function("(n) => [...document.querySelectorAll('.leaflet-popup-content')]"
                               ".some(p => p.innerText.includes(n))", arg=t("covered_unserved", "en"))
        text = page.locator(".leaflet-popup-content").last.inner_text()
        want = re.findall(r"<td>(.*?)</td>", popup)
        assert all(w in text for w in want)
