"""Static figures for reports: the coverage map as a PNG (matplotlib, no basemap: offline), the
font that draws Chinese, and the furniture of a printed map (a metric scale bar, a north arrow)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ..readers.profiles import Profile, get_profile
from .i18n import FALLBACK, localized, t, writes_cjk
from .runfolder import atomic_path
from .tables import read_csv

__all__ = ["cjk_font", "coverage_figure", "north_arrow", "scale_bar"]

_CJK_FAMILIES = ("Noto Sans CJK", "Noto Serif CJK", "Source Han", "WenQuanYi", "SimHei", "Microsoft YaHei",
                 "PingFang", "Droid Sans Fallback", "AR PL")
_CJK_FILES = ("cjk", "sourcehan", "wqy", "simhei", "msyh", "pingfang", "droidsansfallback", "uming", "ukai")
_WEB_MERCATOR = 3857


def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or ``None``.

    Returns
    -------
    str or None
        For example ``"Noto Sans CJK JP"`` where Debian's ``fonts-noto-cjk`` is installed.

    """
    from matplotlib import font_manager

    found = _cjk_family(font_manager.fontManager.ttflist)
    if found is None:
        # Matplotlib's font cache predates fonts installed later (apt-get install fonts-noto-cjk):
        # register the system's CJK font files it has not seen.
        known = {f.fname for f in font_manager.fontManager.ttflist}
        for fname in font_manager.findSystemFonts():
            if fname not in known and any(k in Path(fname).name.lower() for k in _CJK_FILES):
                try:
                    font_manager.fontManager.addfont(fname)
                except (OSError, RuntimeError, ValueError):  # an unreadable font file is skipped
                    continue
        found = _cjk_family(font_manager.fontManager.ttflist)
    return found


def _cjk_family(fonts) -> str | None:
    names = sorted({f.name for f in fonts})
    # Sans before serif, the families in the order of _CJK_FAMILIES.
    for family in _CJK_FAMILIES:
        matches = [n for n in names if n.startswith(family)]
        if matches:  # Simplified Chinese glyph forms where the family has several
            return min(matches, key=lambda n: (not n.endswith((" SC", " CN")), n))
    return None


def _layer(path: Path, name: str) -> gpd.GeoDataFrame | None:
    import pyogrio

    if not path.exists() or name not in {str(n) for n, _ in pyogrio.list_layers(path)}:
        return None
    gdf = gpd.read_file(path, layer=name)
    return gdf.to_crs(_WEB_MERCATOR) if len(gdf) else None


def _points(df: pd.DataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326).to_crs(_WEB_MERCATOR)


def coverage_figure(run_dir: str | Path, path: str | Path, *, lang: str = "zh", dpi: int = 120) -> Path:
    """Draw a run folder's service areas, uncovered hexagons, units, facilities and proposals
    into a PNG, with a title naming the profile and the date.

    Parameters
    ----------
    run_dir
        A run folder (see :func:`circles.maps.draw_run_map`).
    path
        The PNG to write (atomically).
    lang
        ``zh`` or ``en``. Chinese labels need a CJK font (:func:`cjk_font`); without one the
        labels are English, never empty boxes.
    dpi
        Resolution of the 8 × 8 inch figure.

    Returns
    -------
    Path
        ``path``.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run_dir)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8")) \
        if (run / "manifest.json").exists() else {}
    profile = get_profile(manifest.get("profile") or manifest.get("parameters", {}).get("profile"))
    font = cjk_font() if writes_cjk(lang) else None
    if writes_cjk(lang) and font is None:
        lang = FALLBACK
    rc = {"font.sans-serif": [font, "DejaVu Sans"], "font.family": "sans-serif"} if font else {}
    with plt.rc_context(rc):
        fig, ax = plt.subplots(figsize=(8, 8))
        _draw_areas(ax, run, profile, lang)
        handles = _draw_points(ax, run, profile, lang)
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
        ax.set_axis_off()
        ax.set_aspect("equal")
        date = str(manifest.get("created", ""))[:10]
        ax.set_title(f"{t('title', lang)}\n{t('profile', lang)}: {localized(profile, 'title', lang)} · "
                     f"{t('date', lang)}: {date}", fontsize=11)
        ax.annotate(t("attribution", FALLBACK), xy=(0.01, 0.01), xycoords="axes fraction", fontsize=7)
        path = Path(path)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
        plt.close(fig)
    return path


def _draw_areas(ax, run: Path, profile: Profile, lang: str) -> None:
    """The lowest tier's uncovered hexagons (with a colour bar), the units and the service areas."""
    from matplotlib.colors import PowerNorm

    lowest = profile.tiers[-1]
    gaps = _layer(run / "gaps.gpkg", f"gaps_{lowest.code}")
    if gaps is not None:
        # A square-root scale: a few dense hexagons would otherwise wash out all the others.
        norm = PowerNorm(0.5, vmin=0, vmax=max(float(gaps["uncovered_pop"].max()), 1.0))
        label = f"{t('gaps', lang)} · {localized(lowest, 'name', lang)} ({t('people', lang)})"
        gaps.plot(ax=ax, column="uncovered_pop", cmap="Reds", norm=norm, alpha=0.7, linewidth=0, legend=True,
                  legend_kwds={"label": label, "shrink": 0.6})
    units = _layer(run / "units.gpkg", "units")
    if units is not None:
        units.boundary.plot(ax=ax, color="#444444", linewidth=0.8, linestyle="--")
    for tier in profile.tiers:
        area = _layer(run / "isochrones.gpkg", tier.code)
        if area is not None:
            area.plot(ax=ax, color=tier.colour, alpha=0.2, edgecolor=tier.colour, linewidth=0.6)


def _draw_points(ax, run: Path, profile: Profile, lang: str) -> list:
    """Facilities per tier and the numbered proposals; their legend handles."""
    handles = []
    fac = read_csv(run / "facilities.csv") if (run / "facilities.csv").exists() else None
    if fac is not None and len(fac):
        pts = _points(fac)
        for tier in profile.tiers:
            sub = pts[pts["tier"].astype(str) == tier.code]
            if len(sub):
                label = f"{localized(tier, 'name', lang)} · {t('facilities', lang)} ({len(sub)})"
                handles.append(ax.scatter(sub.geometry.x, sub.geometry.y, s=10 + tier.rank * 12,
                                          color=tier.colour, edgecolor="white", linewidth=0.8,
                                          zorder=5, label=label))
    prop = read_csv(run / "proposals.csv") if (run / "proposals.csv").exists() else None
    if prop is not None and len(prop):
        pp = _points(prop)
        handles.append(ax.scatter(pp.geometry.x, pp.geometry.y, s=160, color="#d7191c", edgecolor="white",
                                  zorder=6, label=f"{t('proposals', lang)} ({len(pp)})"))
        for x, y, rank in zip(pp.geometry.x, pp.geometry.y, pp["rank"], strict=True):
            ax.annotate(str(int(rank)), (x, y), ha="center", va="center", color="white", fontsize=7,
                        fontweight="bold", zorder=7)
    return handles


def scale_bar(ax, *, label: Callable[[float], str], scale: str | None = None, width_mm: float | None = None,
              where: tuple[float, float] = (0.03, 0.045)) -> float:
    """Draw a metric scale bar on a map whose data coordinates are metres (a projected CRS).

    Parameters
    ----------
    ax
        The map's axes, with their final limits set.
    label
        The bar's length as text, given the metres (``2000`` -> ``"2 km"``).
    scale
        A text with ``{denominator}`` for the printed scale (``"1:{denominator}"``), drawn under the
        bar when ``width_mm`` is given.
    width_mm
        The map frame's width on paper.
    where
        The bar's left end, in fractions of the axes.

    Returns
    -------
    float
        The bar's length in metres: a 1, 2 or 5 times a power of ten, at most a fifth of the map.
        The bar's outline carries ``gid="scale_bar"``, its label ``"scale_bar_label"``, the
        printed scale ``"print_scale"``.

    """
    from matplotlib.patches import Rectangle

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    w, h = x1 - x0, y1 - y0
    metres = _nice_length(w / 5)
    left, bottom, height = x0 + where[0] * w, y0 + where[1] * h, 0.007 * h
    # A white ground under the bar and its words: they stay legible over hexagons and streets.
    ax.add_patch(Rectangle((left - 0.012 * w, bottom - 0.032 * h), metres + 0.05 * w, height + 0.07 * h,
                           facecolor="white", alpha=0.9, edgecolor="none", zorder=19))
    for i in range(4):
        ax.add_patch(Rectangle((left + i * metres / 4, bottom), metres / 4, height, zorder=20, linewidth=0.6,
                               facecolor="#222222" if i % 2 == 0 else "white", edgecolor="#222222"))
    ax.add_patch(Rectangle((left, bottom), metres, height, fill=False, edgecolor="#222222", linewidth=0.8,
                           zorder=21, gid="scale_bar"))
    above = bottom + height + 0.006 * h
    ax.text(left, above, "0", ha="center", va="bottom", fontsize=10, zorder=21)
    ax.text(left + metres, above, label(metres), ha="center", va="bottom", fontsize=10, zorder=21,
            gid="scale_bar_label")
    if scale is not None and width_mm:
        # Ground metres per metre of paper across the frame: 1:n when printed at full size.
        denominator = round(w / (width_mm / 1000.0), -2 if w / width_mm > 10 else 0)
        ax.text(left, bottom - 0.01 * h, scale.format(denominator=f"{denominator:,.0f}"), ha="left", va="top",
                fontsize=9, zorder=21, gid="print_scale")
    return metres


def _nice_length(at_most: float) -> float:
    """The largest 1, 2 or 5 times a power of ten not over ``at_most`` (at least 1)."""
    if at_most < 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(at_most))
    return max(step * power for step in (1, 2, 5) if step * power <= at_most)


def north_arrow(ax, crs, *, label: str = "N", where: tuple[float, float] = (0.955, 0.88),
                size: float = 0.07) -> float:
    """Draw a north arrow pointing at true north where it stands on a map in a projected CRS.

    Parameters
    ----------
    ax
        The map's axes (equal aspect), with their final limits set.
    crs
        The map's CRS: grid north in a UTM zone is off true north away from the central meridian.
    label
        The letter over the arrow (北 on a Chinese map).
    where
        The arrow's centre, in fractions of the axes.
    size
        Its length, as a fraction of the map's height.

    Returns
    -------
    float
        Degrees clockwise from grid north to true north. The arrow (its dark half, tip first, then
        the notch of its tail) carries ``gid="north_arrow"``.

    """
    import numpy as np
    import pyproj
    from matplotlib.patches import Polygon

    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    centre = np.array([x0 + where[0] * (x1 - x0), y0 + where[1] * (y1 - y0)])
    length = size * (y1 - y0)
    to_geo = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
    lon, lat = to_geo.transform(*centre)
    north = np.array(to_geo.transform(lon, min(lat + 0.01, 89.99), direction="INVERSE"))
    angle = math.atan2(*(north - centre))  # atan2(dx, dy): clockwise from grid north
    ahead, right = np.array([math.sin(angle), math.cos(angle)]), np.array([math.cos(angle), -math.sin(angle)])
    tip, tail = centre + ahead * length / 2, centre - ahead * length / 2
    notch = tail + ahead * length * 0.25
    style = {"edgecolor": "#222222", "linewidth": 0.8, "zorder": 20}
    ax.add_patch(Polygon([tip, notch, tail - right * length * 0.3], facecolor="#222222", gid="north_arrow", **style))
    ax.add_patch(Polygon([tip, tail + right * length * 0.3, notch], facecolor="white", **style))
    ax.text(*(tip + ahead * length * 0.08), label, ha="center", va="bottom", fontsize=16, fontweight="bold",
            rotation=-math.degrees(angle), rotation_mode="anchor", zorder=20)
    return math.degrees(angle)
