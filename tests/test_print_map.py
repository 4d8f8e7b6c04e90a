"""The printed map (issue 21, item 5): ``circles map DIR --png`` writes an A3 landscape sheet at
200 dpi, drawn in the run's UTM zone so that its scale bar and printed scale are true, with the
basemap, tiers, gaps, capacity-short hexagons, facilities, proposals, legend, north arrow, title
and attribution; a folder without ``basemap.gpkg`` still prints, with a warning."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from circles.cli import main
from circles.outputs.figures import cjk_font
from circles.outputs.i18n import t
from circles.outputs.print_map import A3_LANDSCAPE_MM, PRINT_DPI, print_figure, print_run_map
from circles.outputs.tables import write_layers
from circles.readers.osm import read_osm_features
from circles.runs.inputs import RunInputs
from circles.runs.proposals import SiteRequest
from circles.runs.runners import site_folder_run

DATA = Path(__file__).resolve().parent.parent / "data"
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
GEOD = pyproj.Geod(ellps="WGS84")
_MAJOR = {"primary", "secondary", "tertiary", "trunk", "motorway"}
_FOOT = {"footway", "path", "pedestrian", "steps", "cycleway"}


def _basemap(run, folder: Path) -> None:
    """``basemap.gpkg`` in the layout the runs write (layers streets with class major/minor/foot,
    water, green, residential, buildings; WGS-84), from the run's network and the extract, for a
    checkout whose runs do not write it yet."""
    edges = run.result.network.edges_gdf().to_crs(4326)
    highway = edges["highway"].astype(str).str.removesuffix("_link")
    edges["class"] = np.where(highway.isin(_MAJOR), "major", np.where(highway.isin(_FOOT), "foot", "minor"))
    landuse = read_osm_features(DATA / "chengdu.osm.pbf", kind="landuse")
    landuse = landuse[landuse.geom_type.isin(["Polygon", "MultiPolygon"])]
    buildings = read_osm_features(DATA / "chengdu.osm.pbf", kind="buildings")
    kinds = {"water": {"basin", "reservoir"}, "green": {"grass", "meadow", "village_green", "allotments"},
             "residential": {"residential"}}
    layers = {"streets": edges[["class", "geometry"]], "buildings": buildings[["geometry"]],
              **{k: landuse[landuse["landuse"].isin(v)][["geometry"]] for k, v in kinds.items()}}
    write_layers(layers, folder / "basemap.gpkg")


@pytest.fixture(scope="module")
def site_run(tmp_path_factory) -> Path:
    """A Chengdu site run whose complexes each serve at most 150 people: gaps, capacity-short
    hexagons and three proposals, on the embedded extract."""
    tmp = tmp_path_factory.mktemp("print")
    fac = pd.read_csv(DATA / "chengdu_facilities.csv")
    fac["capacity_pop"] = 150
    fac.to_csv(tmp / "fac.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the extract has no schools: service notes
        run = site_folder_run(RunInputs(facilities=str(tmp / "fac.csv")), tmp / "run",
                              site=SiteRequest(tier="station", new=3, capacity=True))
    if not (run.folder / "basemap.gpkg").exists():
        _basemap(run, run.folder)
    return run.folder


def _drawn(fig):
    """The figure drawn once (its final limits), and its map axes."""
    FigureCanvasAgg(fig).draw()
    return next(ax for ax in fig.axes if ax.get_gid() == "map")


def _shown(lang: str) -> str:
    """The language a sheet asked for in ``lang`` is drawn in: English without a CJK font."""
    return "en" if lang == "zh" and cjk_font() is None else lang


def _artist(ax, gid: str):
    return next(a for a in [*ax.patches, *ax.texts] if a.get_gid() == gid)


def test_the_cli_prints_an_a3_sheet_at_200_dpi(site_run, capsys):
    assert main(["map", str(site_run), "--png", "--lang", "en"]) == 0
    assert "written: " in capsys.readouterr().out
    with Image.open(site_run / "map.png") as im:
        width, height = im.size
        grey = np.asarray(im.convert("L"), dtype=float)
        colours = len(im.convert("RGB").getcolors(maxcolors=1 << 20) or [])
    assert abs(width - A3_LANDSCAPE_MM[0] / 25.4 * PRINT_DPI) <= 1
    assert abs(height - A3_LANDSCAPE_MM[1] / 25.4 * PRINT_DPI) <= 1
    # Not blank: the map frame (left three quarters) holds streets, hexagons and points.
    frame = grey[int(0.1 * height):int(0.9 * height), int(0.03 * width):int(0.75 * width)]
    assert frame.var() > 300, frame.var()
    assert colours > 200


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_scale_bar_is_true_on_the_ground(site_run, lang):
    fig = print_figure(site_run, lang=lang)
    ax = _drawn(fig)
    bar, label, scale = (_artist(ax, g) for g in ("scale_bar", "scale_bar_label", "print_scale"))
    number, unit = re.fullmatch(r"([\d.]+) (\S+)", label.get_text()).groups()
    shown = _shown(lang)
    metres = float(number) * {t("print_km", shown): 1000.0, t("print_metres", shown): 1.0}[unit]
    # The bar's length on the figure is its label's metres through the axes' own transform.
    x0, y0 = bar.get_x(), bar.get_y()
    ends = ax.transData.transform([(x0, y0), (x0 + metres, y0)])
    expected_px = ends[1, 0] - ends[0, 0]
    drawn = bar.get_window_extent(fig.canvas.get_renderer())
    assert drawn.width == pytest.approx(expected_px, abs=1.0)
    assert expected_px > 100
    # ...and on the ground: its ends, back in WGS-84, are that far apart (the UTM scale factor aside).
    to_geo = pyproj.Transformer.from_crs(fig.circles_crs, 4326, always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_geo.transform([x0, x0 + bar.get_width()], [y0, y0])
    assert GEOD.inv(lon0, lat0, lon1, lat1)[2] == pytest.approx(metres, rel=1e-3)
    # The printed scale: ground metres per metre of paper at the sheet's size.
    paper_m = expected_px / fig.dpi * 0.0254
    denominator = float(re.search(r"1:([\d,]+)", scale.get_text()).group(1).replace(",", ""))
    assert denominator == pytest.approx(metres / paper_m, rel=5e-3)
    assert fig.get_size_inches() == pytest.approx(np.array(A3_LANDSCAPE_MM) / 25.4)


def test_the_north_arrow_points_at_true_north(site_run):
    fig = print_figure(site_run, lang="en")
    ax = _drawn(fig)
    tip, notch = _artist(ax, "north_arrow").get_xy()[:2]
    to_geo = pyproj.Transformer.from_crs(fig.circles_crs, 4326, always_xy=True)
    (lon0, lon1), (lat0, lat1) = to_geo.transform([notch[0], tip[0]], [notch[1], tip[1]])
    azimuth = GEOD.inv(lon0, lat0, lon1, lat1)[0]
    assert azimuth == pytest.approx(0.0, abs=0.05)
    # Chengdu lies west of zone 48's central meridian (105° E): there true north leans east of
    # grid north, towards the pole the meridians meet at, by about (lon - 105°) sin(lat) = -0.5°.
    lean = np.degrees(np.arctan2(tip[0] - notch[0], tip[1] - notch[1]))
    assert lean == pytest.approx(-(lon0 - 105.0) * np.sin(np.radians(lat0)), abs=0.05)
    assert lean > 0.3


def test_the_legend_names_every_layer(site_run):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no CJK font: the sheet is in English, and says so
        fig = print_figure(site_run, lang="zh")
    FigureCanvasAgg(fig).draw()
    legend = next(ax for ax in fig.axes if ax.get_legend() is not None).get_legend()
    texts = [x.get_text().replace("\n", "") for x in legend.get_texts()]
    shown = _shown("zh")
    for key in ("facilities", "service_area", "proposals", "gaps", "short", "print_basemap",
                "print_streets_major", "print_buildings"):
        assert any(t(key, shown) in s for s in texts), key
    words = " ".join([*texts, *(x.get_text() for x in fig.texts)])
    assert t("print_attribution", shown) in words
    if shown == "en":
        return
    assert not re.search(r"[A-Za-z]{3,}", words.replace("OpenStreetMap", "").replace("ODbL", "")
                         .replace("UTM", "").replace("EPSG", "").replace(site_run.name, "")), words


def test_a_folder_without_a_basemap_prints_with_a_warning(site_run, tmp_path):
    bare = tmp_path / "old-run"
    shutil.copytree(site_run, bare)
    (bare / "basemap.gpkg").unlink()
    (bare / "map.png").unlink(missing_ok=True)
    with pytest.warns(UserWarning, match="no basemap.gpkg"):
        path = print_run_map(bare, lang="en")
    with Image.open(path) as im:
        size = im.size
        grey = np.asarray(im.convert("L"), dtype=float)
    assert abs(size[0] - A3_LANDSCAPE_MM[0] / 25.4 * PRINT_DPI) <= 1
    assert abs(size[1] - A3_LANDSCAPE_MM[1] / 25.4 * PRINT_DPI) <= 1
    assert grey.var() > 100


def test_the_chinese_sheet_is_drawn_in_a_cjk_font(site_run):
    font = cjk_font()
    if font is None:
        pytest.skip("no font with Chinese glyphs is installed (apt-get install fonts-noto-cjk): "
                    "the sheet falls back to English, which the other tests draw")
    fig = print_figure(site_run, lang="zh")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _drawn(fig)
    assert not [w for w in caught if "missing from" in str(w.message)]  # no boxes for glyphs
    title = next(x for x in fig.texts if x.get_gid() == "title")
    assert CJK.search(title.get_text())
    assert title.get_fontproperties().get_family()[0] == font
    path = font_manager.findfont(font_manager.FontProperties(family=font), fallback_to_default=False)
    assert font_manager.FontProperties(fname=path).get_name() == font
    english = next(x for x in print_figure(site_run, lang="en").texts if x.get_gid() == "title")
    assert not CJK.search(english.get_text())
