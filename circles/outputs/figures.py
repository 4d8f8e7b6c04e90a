"""Static figures for reports: the coverage map as a PNG (matplotlib, no basemap: offline)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from ..readers.profiles import Profile, get_profile
from .i18n import FALLBACK, localized, t, writes_cjk
from .runfolder import atomic_path
from .tables import read_csv

__all__ = ["cjk_font", "coverage_figure"]

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
