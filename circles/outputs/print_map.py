"""The printed map (issue 21): a run folder on an A3 landscape sheet at 200 dpi, ``map.png``.

The layers of ``map.html`` (the basemap drawn from the extract, ``basemap.gpkg``; the tiers'
service areas; the gaps; the capacity-short hexagons; the facilities and the proposals) drawn in
the UTM zone of the run's extent, so that the scale bar and the printed scale (1:n at A3) are
true on the ground, with a legend, a north arrow, the run's title and the attribution. The map
furniture (scale bar, north arrow) is in :mod:`circles.outputs.figures`.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..readers.crs import utm_crs
from ..readers.profiles import Profile, Tier, get_profile
from .figures import cjk_font, north_arrow, scale_bar
from .i18n import FALLBACK, LANGS, localized, t, writes_cjk
from .map_layers import classes
from .map_provision import read_capacity_short
from .runfolder import atomic_path, read_run_manifest
from .tables import read_csv

__all__ = ["A3_LANDSCAPE_MM", "PRINT_DPI", "print_figure", "print_run_map"]

#: The sheet, width × height in millimetres, and its resolution.
A3_LANDSCAPE_MM = (420.0, 297.0)
PRINT_DPI = 200
_MM_PER_INCH = 25.4
# Figure fractions (left, bottom, width, height): the map frame, and the legend panel on its right.
_MAP_BOX = (0.02, 0.075, 0.735, 0.83)
_PANEL_BOX = (0.775, 0.075, 0.205, 0.83)
_DEFAULT_BOUNDS = (103.95, 30.55, 104.25, 30.80)  # central Chengdu, as the web map's default
# The basemap is light and under every overlay: it says where a hexagon is without competing.
_BASEMAP_FILLS = {"residential": "#efebe4", "green": "#d6ebcc", "water": "#bcd7ee", "buildings": "#dcd6cd"}
_STREETS = {"foot": ("#c9c9c9", 0.3), "minor": ("#b3b3b3", 0.6), "major": ("#9b9b9b", 1.4)}
_BASEMAP_KEYS = {"major": "print_streets_major", "minor": "print_streets_minor", "foot": "print_streets_foot",
                 "water": "print_water", "green": "print_green", "residential": "print_residential",
                 "buildings": "print_buildings"}
# ColorBrewer Reds and Purples, as the web map's gaps and capacity-short classes.
_GAP_COLOURS = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"]
_SHORT_COLOURS = ["#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"]


def print_run_map(run_dir: str | Path, *, lang: str | None = None, title: str | None = None,
                  out: str | Path | None = None, dpi: int = PRINT_DPI) -> Path:
    """Print a run folder as ``map.png``: an A3 landscape sheet (420 × 297 mm), atomically.

    Parameters
    ----------
    run_dir
        A finished run folder (or one this process is writing, such as an audit's); every file
        but ``manifest.json`` is optional. Without ``basemap.gpkg`` the map is drawn without
        streets, with a warning.
    lang
        ``zh`` or ``en`` (default: the profile's). Chinese needs a CJK font
        (:func:`circles.outputs.figures.cjk_font`); without one the sheet is in English, with a
        warning.
    title
        What the sheet is of, before the map's title (default: an audit's city and year).
    out
        Where to write (default ``run_dir/map.png``).
    dpi
        Dots per inch: 200 gives 3307 × 2339 pixels.

    Returns
    -------
    Path
        The PNG written.

    """
    fig = print_figure(run_dir, lang=lang, title=title)
    path = Path(out) if out else Path(run_dir) / "map.png"
    with atomic_path(path) as tmp:
        # No tight bounding box: the sheet keeps its A3 size exactly.
        fig.savefig(tmp, dpi=dpi, format="png", facecolor="white")
    return path


def print_figure(run_dir: str | Path, *, lang: str | None = None, title: str | None = None):
    """The A3 sheet of :func:`print_run_map`, as a Matplotlib figure (not drawn yet).

    The map axes carry ``gid="map"``; the scale bar, its label, the printed scale, the north
    arrow and the title carry ``gid`` values ``scale_bar``, ``scale_bar_label``, ``print_scale``,
    ``north_arrow`` and ``title``, so that a test can find them.

    Returns
    -------
    matplotlib.figure.Figure
        In the run's UTM zone (``fig.circles_crs``).

    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    run = Path(run_dir)
    manifest = read_run_manifest(run)  # refuses a missing, unfinished or corrupt run
    profile = get_profile(manifest.get("profile") or manifest.get("parameters", {}).get("profile"))
    lang, families = _language(lang or profile.lang)
    data = _read_data(run, profile)
    crs = utm_crs(*np.array(_bounds(data, manifest)).reshape(2, 2).T)
    box_mm = (A3_LANDSCAPE_MM[0] * _MAP_BOX[2], A3_LANDSCAPE_MM[1] * _MAP_BOX[3])
    frame = _frame(_bounds(data, manifest), crs, box_mm)
    with rc_context({"font.family": families}):  # each text keeps these families when drawn later
        fig = Figure(figsize=(A3_LANDSCAPE_MM[0] / _MM_PER_INCH, A3_LANDSCAPE_MM[1] / _MM_PER_INCH))
        ax = fig.add_axes(_MAP_BOX, gid="map")
        ax.set_xlim(frame[0], frame[1])
        ax.set_ylim(frame[2], frame[3])
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
        handles = _draw_basemap(ax, run, frame, crs, lang)
        handles = _draw_data(ax, data, crs, profile, lang) + handles
        ax.set_xlabel("")  # GeoPandas names the axes after the CRS (Easting [metre]): a print has no axes
        ax.set_ylabel("")
        scale_bar(ax, label=lambda m: _scale_label(m, lang), scale=t("print_scale", lang), width_mm=box_mm[0])
        north_arrow(ax, crs, label=t("print_north", lang))
        _legend(fig.add_axes(_PANEL_BOX), handles)
        _texts(fig, run, manifest, profile, lang, title=title, crs=crs)
    fig.circles_crs = crs
    return fig


def _scale_label(metres: float, lang: str) -> str:
    """A scale bar's length in metres or kilometres, in ``lang``'s unit words."""
    if metres >= 1000:
        return f"{metres / 1000:g} {t('print_km', lang)}"
    return f"{metres:g} {t('print_metres', lang)}"


def _language(lang: str) -> tuple[str, list[str]]:
    """The sheet's language and font families: English when Chinese has no font to draw it."""
    if lang not in LANGS:
        from ..errors import CirclesError

        raise CirclesError(f"unknown map language {lang!r}", field="lang", fix="use zh or en")
    font = cjk_font()
    if writes_cjk(lang) and font is None:
        warnings.warn("no font with Chinese glyphs is installed: map.png is labelled in English "
                      "(install one, e.g. apt-get install fonts-noto-cjk)", UserWarning, stacklevel=3)
        return FALLBACK, ["DejaVu Sans"]
    # The CJK font also draws names that come from data (a city, a tier) on an English sheet.
    families = [font, "DejaVu Sans"] if writes_cjk(lang) else ["DejaVu Sans", font]
    return lang, [f for f in families if f]


def _read_data(run: Path, profile: Profile) -> dict:
    """The run's layers in WGS-84: ``areas`` per tier code, ``gaps`` and ``short`` (one tier
    each, with the tier), ``units``, ``facilities`` and ``proposals`` (points)."""
    import pyogrio

    iso = run / "isochrones.gpkg"
    names = {str(n) for n, _ in pyogrio.list_layers(iso)} if iso.exists() else set()
    areas = {tr.code: gpd.read_file(iso, layer=tr.code).to_crs(4326) for tr in profile.tiers if tr.code in names}
    facilities = _points(run / "facilities.csv")
    if facilities is not None and "status" in facilities:
        facilities = facilities[facilities["status"].astype(str) == "ok"]
    proposals = _points(run / "proposals.csv")
    gap_tier = _gap_tier(profile, proposals)
    gaps = _one_tier(_gap_layers(run / "gaps.gpkg"), "uncovered_pop", gap_tier)
    short = read_capacity_short(run / "capacity_short.gpkg")
    short = _one_tier(short, "covered_unserved_pop", None if short is None else _most_short(short, profile, gap_tier))
    units = None
    if (run / "units.gpkg").exists():
        layers = [str(n) for n, _ in pyogrio.list_layers(run / "units.gpkg")]
        units = gpd.read_file(run / "units.gpkg", layer="units" if "units" in layers else layers[0]).to_crs(4326)
    return {"areas": areas, "gaps": gaps, "short": short, "units": units, "facilities": facilities,
            "proposals": proposals}


def _points(path: Path) -> gpd.GeoDataFrame | None:
    df = read_csv(path) if path.exists() else None
    if df is None or not len(df) or not {"lon", "lat"} <= set(df.columns):
        return None
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs=4326)


def _gap_layers(path: Path) -> gpd.GeoDataFrame | None:
    import pyogrio

    if not path.exists():
        return None
    frames = [gpd.read_file(path, layer=n).to_crs(4326) for n, _ in pyogrio.list_layers(path)]
    frames = [f for f in frames if len(f) and "tier" in f and "uncovered_pop" in f]
    return pd.concat(frames, ignore_index=True) if frames else None


def _gap_tier(profile: Profile, proposals: gpd.GeoDataFrame | None) -> Tier:
    """The tier whose gaps are printed: the proposals' (they fill them), else the lowest, as
    the web map opens with."""
    codes = {tr.code: tr for tr in profile.tiers}
    if proposals is not None and "tier" in proposals and str(proposals["tier"].iloc[0]) in codes:
        return codes[str(proposals["tier"].iloc[0])]
    return profile.tiers[-1]


def _most_short(short: gpd.GeoDataFrame, profile: Profile, prefer: Tier) -> Tier | None:
    """The gaps' tier where it has people short (one tier on the sheet), else the tier with the
    most, as the web map opens with."""
    totals = short.groupby(short["tier"].astype(str))["covered_unserved_pop"].sum()
    tiers = [tr for tr in profile.tiers if totals.get(tr.code, 0.0) > 0]
    if prefer in tiers:
        return prefer
    return max(tiers, key=lambda tr: totals[tr.code]) if tiers else None


def _one_tier(layer: gpd.GeoDataFrame | None, column: str, tier: Tier | None) -> tuple | None:
    """``(tier, hexagons)`` of one tier with people in ``column``, or ``None``."""
    if layer is None or tier is None:
        return None
    sub = layer[(layer["tier"].astype(str) == tier.code).to_numpy() & (layer[column].to_numpy(float) > 0)]
    return (tier, sub) if len(sub) else None


def _bounds(data: dict, manifest: dict) -> tuple[float, float, float, float]:
    """The WGS-84 extent of what is drawn (else the run's study area)."""
    boxes = [g.total_bounds for g in [*data["areas"].values(), data["units"], data["facilities"],
                                      data["proposals"]] if g is not None and len(g)]
    boxes += [pair[1].total_bounds for pair in (data["gaps"], data["short"]) if pair is not None]
    boxes = [b for b in boxes if np.isfinite(b).all()]  # a layer of empty geometries has no extent
    # The extract's own box reaches as far as its longest road: only a run with nothing to draw uses it.
    extent = manifest.get("study_area", {}).get("extent_bounds_wgs84") \
        or manifest.get("network", {}).get("extent_bounds_wgs84")
    if not boxes:
        return tuple(float(v) for v in extent) if extent else _DEFAULT_BOUNDS
    b = np.vstack(boxes)
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


def _frame(bounds: tuple, crs, box_mm: tuple[float, float]) -> tuple[float, float, float, float]:
    """The map's limits in ``crs``: the extent with a margin, widened to the frame's shape."""
    from shapely.geometry import box

    x0, y0, x1, y1 = gpd.GeoSeries([box(*bounds)], crs=4326).to_crs(crs).total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    w, h = max(x1 - x0, 100.0) * 1.04, max(y1 - y0, 100.0) * 1.04
    # Equal metres per millimetre across and up: widen whichever side is short of the frame's shape.
    w, h = max(w, h * box_mm[0] / box_mm[1]), max(h, w * box_mm[1] / box_mm[0])
    return (cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2)


def _read_basemap(path: Path, frame: tuple, crs) -> dict[str, gpd.GeoDataFrame]:
    """The basemap's layers within the frame, in ``crs``; none, with a warning, without the file."""
    import pyogrio
    from shapely.geometry import box

    if not path.exists():
        warnings.warn(f"{path.parent} has no basemap.gpkg (a run from before circles wrote one): "
                      "map.png is printed without streets, water or buildings", UserWarning, stacklevel=4)
        return {}
    window = tuple(gpd.GeoSeries([box(frame[0], frame[2], frame[1], frame[3])], crs=crs).to_crs(4326).total_bounds)
    names = {str(n) for n, _ in pyogrio.list_layers(path)}
    layers = {n: gpd.read_file(path, layer=n, bbox=window) for n in [*_BASEMAP_FILLS, "streets"] if n in names}
    return {n: g.to_crs(crs) for n, g in layers.items() if len(g)}


def _draw_basemap(ax, run: Path, frame: tuple, crs, lang: str) -> list:
    """Land use, green, water, buildings, then the streets by class; their legend entries."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    layers = _read_basemap(run / "basemap.gpkg", frame, crs)
    if not layers:
        return []
    entries: list = [_heading(t("print_basemap", lang))]
    for z, (name, colour) in enumerate(_BASEMAP_FILLS.items()):
        if name in layers:
            gdf = layers[name]
            lines = gdf.geom_type.isin(("LineString", "MultiLineString")).to_numpy()
            if (~lines).any():
                gdf[~lines].plot(ax=ax, color=colour, linewidth=0, zorder=1 + z * 0.1)
            if lines.any():  # rivers and canals the extract draws as lines
                gdf[lines].plot(ax=ax, color=colour, linewidth=1.2, zorder=1 + z * 0.1)
            entries.append((Patch(facecolor=colour), t(_BASEMAP_KEYS[name], lang)))
    streets = layers.get("streets")
    if streets is not None:
        cls = streets["class"].astype(str) if "class" in streets else pd.Series("minor", index=streets.index)
        for z, (name, (colour, width)) in enumerate(_STREETS.items()):
            sub = streets[(cls == name).to_numpy()]
            if len(sub):
                sub.plot(ax=ax, color=colour, linewidth=width, zorder=2 + z * 0.1)
                entries.append((Line2D([], [], color=colour, linewidth=max(width, 0.6) * 1.5),
                                t(_BASEMAP_KEYS[name], lang)))
    return entries


def _draw_data(ax, data: dict, crs, profile: Profile, lang: str) -> list:
    """Service areas (the largest tier underneath), gaps, capacity short, units, facilities and
    proposals; their legend entries."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    entries: list = []
    areas = [(tr, data["areas"][tr.code]) for tr in sorted(profile.tiers, key=lambda tr: -tr.rank)
             if tr.code in data["areas"] and (~data["areas"][tr.code].geometry.is_empty).any()]
    if areas:
        entries.append(_heading(t("service_area", lang)))
    for tier, area in areas:
        area.to_crs(crs).plot(ax=ax, facecolor=tier.colour, alpha=0.16, edgecolor="none", zorder=4)
        # The outline over the gaps' hexagons: a hexagon is often only partly out of reach.
        area.to_crs(crs).boundary.plot(ax=ax, color=tier.colour, linewidth=1.0, zorder=6.5)
        minutes = f" ({tier.minutes:g} {t('minutes', lang)})" if tier.minutes else ""
        entries.append((Patch(facecolor=tier.colour, alpha=0.3, edgecolor=tier.colour),
                        f"{localized(tier, 'name', lang)}{minutes}"))
    for key, column, colours, z in (("gaps", "uncovered_pop", _GAP_COLOURS, 5),
                                    ("short", "covered_unserved_pop", _SHORT_COLOURS, 5.5)):
        if data[key] is not None:
            entries += _choropleth(ax, data[key], column=column, colours=colours, crs=crs, zorder=z,
                                   heading_key=key, lang=lang)
    if data["units"] is not None and len(data["units"]):
        data["units"].to_crs(crs).boundary.plot(ax=ax, color="#555555", linewidth=0.8, linestyle="--", zorder=6)
        entries.append((Line2D([], [], color="#555555", linewidth=0.8, linestyle="--"), t("units", lang)))
    return _draw_points(ax, data, crs, profile, lang) + entries


def _choropleth(ax, layer: tuple[Tier, gpd.GeoDataFrame], *, column: str, colours: list[str], crs,
                zorder: float, heading_key: str, lang: str) -> list:
    """One tier's hexagons in quantile classes of ``column`` (the web map's), and a legend row
    per class under the heading ``t(heading_key)``."""
    from matplotlib.patches import Patch

    tier, hexagons = layer
    values = hexagons[column].to_numpy(float)
    edges = classes(values, len(colours))
    colours = colours[len(colours) - (len(edges) - 1):]
    idx = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, len(colours) - 1)
    hexagons.to_crs(crs).plot(ax=ax, color=np.asarray(colours)[idx], alpha=0.7, linewidth=0, zorder=zorder)
    rows = [_heading(f"{t(heading_key, lang)} · {localized(tier, 'name', lang)}")]
    rows += [(Patch(facecolor=c, alpha=0.7), f"{lo:,.0f}–{hi:,.0f} {t('people', lang)}")
             for c, lo, hi in zip(colours, edges[:-1], edges[1:], strict=True)]
    return rows


def _draw_points(ax, data: dict, crs, profile: Profile, lang: str) -> list:
    """Facilities per tier (larger for higher tiers) and the proposals numbered by rank."""
    entries: list = []
    fac = data["facilities"]
    if fac is not None and len(fac):
        entries.append(_heading(t("facilities", lang)))
        pts = fac.to_crs(crs)
        for tier in profile.tiers:
            sub = pts[(pts["tier"].astype(str) == tier.code).to_numpy()] if "tier" in pts else pts.iloc[:0]
            if len(sub):
                handle = ax.scatter(sub.geometry.x, sub.geometry.y, s=18 + tier.rank * 16, color=tier.colour,
                                    edgecolor="white", linewidth=0.8, zorder=8)
                entries.append((handle, f"{localized(tier, 'name', lang)} ({len(sub)})"))
    prop = data["proposals"]
    if prop is not None and len(prop):
        pp = prop.to_crs(crs)
        handle = ax.scatter(pp.geometry.x, pp.geometry.y, s=260, color="#d7191c", edgecolor="white",
                            linewidth=1.2, zorder=9)
        ranks = pp["rank"] if "rank" in pp else pd.Series(range(1, len(pp) + 1), index=pp.index)
        for x, y, rank in zip(pp.geometry.x, pp.geometry.y, ranks, strict=True):
            ax.annotate(str(int(rank)), (x, y), ha="center", va="center", color="white", fontsize=8,
                        fontweight="bold", zorder=10)
        entries.append((handle, f"{t('proposals', lang)} ({len(pp)})"))
    return entries


def _heading(text: str) -> tuple:
    """A legend row with no symbol: a section's heading (set bold by :func:`_legend`)."""
    from matplotlib.lines import Line2D

    return (Line2D([], [], linestyle="none", gid="heading"), text)


def _legend(panel, entries: list) -> None:
    """The legend in the panel beside the map, its headings bold, long labels wrapped."""
    panel.set_axis_off()
    if not entries:
        return
    handles, labels = zip(*entries, strict=True)
    # Chinese characters are about twice as wide as Latin letters.
    labels = ["\n".join(textwrap.wrap(s, 34 if s.isascii() else 17)) or s for s in labels]
    legend = panel.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, 1.0), frameon=False,
                          fontsize=10, handlelength=2.4, borderaxespad=0.0, labelspacing=0.55)
    for handle, text in zip(handles, legend.get_texts(), strict=True):
        if handle.get_gid() == "heading":
            text.set_fontweight("bold")
            text.set_fontsize(11)


def _texts(fig, run: Path, manifest: dict, profile: Profile, lang: str, *, title: str | None, crs) -> None:
    """The title and its line of particulars above the map; the attribution and projection below."""
    params = manifest.get("parameters", {})
    place = title or (" ".join(str(params[k]) for k in ("name", "year") if params.get(k))
                      if manifest.get("command") == "audit" else "")
    head = f"{place} · {t('title', lang)}" if place else t("title", lang)
    fig.text(_MAP_BOX[0], 0.955, head, fontsize=24, fontweight="bold", va="baseline", gid="title")
    parts = [f"{t('profile', lang)}: {localized(profile, 'title', lang)}",
             f"{t('date', lang)}: {str(manifest.get('created', ''))[:10]}", run.resolve().name]
    if manifest.get("population", {}).get("is_estimate"):
        parts.append(t("estimate", lang))
    fig.text(_MAP_BOX[0], 0.925, " · ".join(parts), fontsize=12, color="#333333", va="baseline")
    fig.text(_MAP_BOX[0], 0.045, t("print_attribution", lang), fontsize=9, color="#333333", va="top")
    epsg = crs.to_epsg()
    zone = f"{epsg % 100}{'N' if epsg < 32700 else 'S'}"
    fig.text(_MAP_BOX[0] + _MAP_BOX[2], 0.045, t("print_crs", lang).format(zone=zone, epsg=epsg), fontsize=9,
             color="#333333", va="top", ha="right")
