"""Static figures for reports: the coverage map as a PNG (matplotlib, no basemap: offline)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from .io import atomic_path
from .profiles import get_profile

__all__ = ["cjk_font", "coverage_figure"]


def cjk_font() -> str | None:
    """The name of an installed font that has Chinese glyphs, or ``None``."""
    from matplotlib import font_manager

    for f in font_manager.fontManager.ttflist:
        if any(k in f.name for k in ("Noto Sans CJK", "Noto Serif CJK", "WenQuanYi", "SimHei",
                                     "Microsoft YaHei", "PingFang", "Source Han")):
            return f.name
    return None


def coverage_figure(run_dir: str | Path, path: str | Path, *, lang: str = "zh", dpi: int = 120) -> Path:
    """Draw service areas, uncovered hexagons and facilities of a run folder into a PNG.

    Chinese labels need a CJK font; without one the labels are English (never empty boxes).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pyogrio

    run = Path(run_dir)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8")) \
        if (run / "manifest.json").exists() else {}
    profile = get_profile(manifest.get("profile"))
    font = cjk_font() if lang == "zh" else None
    if lang == "zh" and font is None:
        lang = "en"
    if font:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
    fig, ax = plt.subplots(figsize=(8, 8))
    handles = []
    if (run / "gaps.gpkg").exists():
        layer = f"gaps_{profile.tiers[-1].code}"
        if layer in {n for n, _ in pyogrio.list_layers(run / "gaps.gpkg")}:
            gaps = gpd.read_file(run / "gaps.gpkg", layer=layer).to_crs(3857)
            if len(gaps):
                gaps.plot(ax=ax, column="uncovered_pop", cmap="Reds", alpha=0.6, linewidth=0)
    if (run / "isochrones.gpkg").exists():
        layers = {n for n, _ in pyogrio.list_layers(run / "isochrones.gpkg")}
        for tier in profile.tiers:
            if tier.code in layers:
                g = gpd.read_file(run / "isochrones.gpkg", layer=tier.code).to_crs(3857)
                if len(g):
                    g.plot(ax=ax, color=tier.colour, alpha=0.18, edgecolor=tier.colour, linewidth=0.6)
    fac = pd.read_csv(run / "facilities.csv", encoding="utf-8-sig") if (run / "facilities.csv").exists() else None
    if fac is not None and len(fac):
        pts = gpd.GeoDataFrame(fac, geometry=gpd.points_from_xy(fac["lon"], fac["lat"]), crs=4326).to_crs(3857)
        for tier in profile.tiers:
            sub = pts[pts["tier"] == tier.code]
            if len(sub):
                label = tier.name_zh if lang == "zh" else tier.name_en
                handles.append(ax.scatter(sub.geometry.x, sub.geometry.y, s=10 + tier.rank * 12,
                                          color=tier.colour, edgecolor="white", linewidth=0.8, zorder=5,
                                          label=label))
    if (run / "proposals.csv").exists():
        prop = pd.read_csv(run / "proposals.csv", encoding="utf-8-sig")
        if len(prop):
            pp = gpd.GeoDataFrame(prop, geometry=gpd.points_from_xy(prop["lon"], prop["lat"]), crs=4326).to_crs(3857)
            handles.append(ax.scatter(pp.geometry.x, pp.geometry.y, marker="*", s=120, color="#d7191c",
                                      edgecolor="white", zorder=6,
                                      label="建议新增" if lang == "zh" else "proposed"))
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_axis_off()
    ax.set_title("十五分钟生活圈覆盖" if lang == "zh" else "15-minute service circle coverage")
    ax.annotate("© OpenStreetMap contributors", xy=(0.01, 0.01), xycoords="axes fraction", fontsize=7)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
