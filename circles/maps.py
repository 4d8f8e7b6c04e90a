"""Interactive coverage maps (folium): one function per layer, composable in a notebook, and
:func:`draw_run_map` to draw ``map.html`` from any run folder.

Every user-provided string (facility, unit and file names) is HTML-escaped before it reaches a
popup, tooltip or title. Offline maps inline Leaflet and load nothing from the internet.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement
from jinja2 import Template

from .i18n import t
from .io import write_text
from .offline import inline_assets
from .profiles import Profile, get_profile

__all__ = [
    "base_map",
    "coverage_map",
    "draw_run_map",
    "facilities_layer",
    "gaps_layer",
    "proposals_layer",
    "result_map",
    "service_area_layer",
    "units_layer",
]

ATTRIBUTION = "© OpenStreetMap contributors"
# folium's popups build their HTML with jQuery; nothing else of its defaults (Bootstrap, fonts,
# awesome-markers) is needed, so offline pages stay small.
_LEAFLET_ONLY_JS = [("leaflet", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js"),
                    ("jquery", "https://code.jquery.com/jquery-3.7.1.min.js")]
_LEAFLET_ONLY_CSS = [("leaflet_css", "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.css")]
_GAP_COLOURS = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"]


class _Attribution(MacroElement):
    """The OSM attribution on a map without tiles (the data is OSM's all the same)."""

    _template = Template("""{% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution(""" + json.dumps(ATTRIBUTION) + """);
    {% endmacro %}""")


def _esc(value) -> str:
    return html.escape("" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value))


def _escaped_frame(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """String properties escaped, so nothing in the embedded GeoJSON can become markup."""
    out = gdf.copy()
    for col in out.columns:
        if col != out.geometry.name and (out[col].dtype == object or str(out[col].dtype) in ("str", "string")):
            out[col] = out[col].map(_esc)
    return out


def base_map(bounds, *, offline: bool = False, tiles: str | None = None, title: str = "",
             lang: str = "zh") -> folium.Map:
    """An empty map fitted to ``bounds`` (minx, miny, maxx, maxy in WGS-84), with a scale bar,
    the OSM attribution and a title. Offline without ``tiles``: no tile layer at all."""
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    m.default_js = list(_LEAFLET_ONLY_JS)
    m.default_css = list(_LEAFLET_ONLY_CSS)
    if tiles:
        folium.TileLayer(tiles=tiles, attr=ATTRIBUTION, name="tiles").add_to(m)
    elif not offline:
        folium.TileLayer("OpenStreetMap", attr=ATTRIBUTION, name="OpenStreetMap").add_to(m)
    else:
        m.add_child(_Attribution())
    minx, miny, maxx, maxy = bounds
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    if title:
        m.get_root().html.add_child(folium.Element(
            '<div id="circles-title" style="position:fixed;top:10px;left:60px;z-index:1000;'
            'background:rgba(255,255,255,.9);padding:6px 12px;border-radius:4px;font:15px sans-serif;'
            f'box-shadow:0 1px 4px rgba(0,0,0,.3)">{_esc(title)}</div>'))
    return m


def service_area_layer(gdf: gpd.GeoDataFrame, *, name: str, colour: str, show: bool = True
                       ) -> folium.FeatureGroup:
    """A tier's service area (dissolved polygons), toggleable."""
    fg = folium.FeatureGroup(name=_esc(name), show=show)
    if len(gdf):
        folium.GeoJson(_escaped_frame(gdf[["geometry"]].to_crs(4326)).to_json(), name=_esc(name),
                       style_function=lambda _f, c=colour: {"color": c, "weight": 1, "fillColor": c,
                                                            "fillOpacity": 0.22},
                       tooltip=_esc(name)).add_to(fg)
    return fg


def _popup(rows: list[tuple[str, object]]) -> folium.Popup:
    body = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{_esc(k)}</th>"
                   f"<td>{_esc(v)}</td></tr>" for k, v in rows)
    return folium.Popup(f"<table>{body}</table>", max_width=320, parse_html=False)


def facilities_layer(df: pd.DataFrame, profile: Profile, *, lang: str = "zh") -> list[folium.FeatureGroup]:
    """One toggleable layer of facility markers per tier, with popups (name, tier, floor area,
    population served, overloaded)."""
    groups = []
    for tier in profile.tiers:
        sub = df[df["tier"] == tier.code]
        label = tier.name_zh if lang == "zh" else tier.name_en
        fg = folium.FeatureGroup(name=f"{_esc(label)} · {t('facilities', lang)} ({len(sub)})")
        for r in sub.itertuples(index=False):
            d = r._asdict()
            over = d.get("overloaded")
            rows = [(t("name", lang), d.get("name")), (t("tier", lang), label),
                    (t("floor_area", lang), _fmt(d.get("floor_area_m2"), " m²")),
                    (t("in_circle", lang), _fmt(d.get("pop_in_circle"))),
                    (t("served", lang), _fmt(d.get("served_pop"))),
                    (t("overloaded", lang), t("yes", lang) if over in (True, "True") else t("no", lang))]
            folium.CircleMarker(location=[d["lat"], d["lon"]], radius=4 + tier.rank * 2,
                                color="#222" if over in (True, "True") else "white", weight=2,
                                fill=True, fill_color=tier.colour, fill_opacity=0.95,
                                popup=_popup(rows), tooltip=_esc(d.get("name"))).add_to(fg)
        groups.append(fg)
    return groups


def _fmt(v, unit: str = "") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return ""
    return "" if np.isnan(f) else f"{f:,.0f}{unit}"


def _breaks(values: np.ndarray) -> np.ndarray:
    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return np.array([0, 1, 2, 3, 4, 5], dtype=float)
    q = np.unique(np.quantile(v, [0, 0.2, 0.4, 0.6, 0.8, 1.0]).round())
    return q if len(q) > 1 else np.array([0, q[0] + 1])


def gaps_layer(gdf: gpd.GeoDataFrame, *, name: str, lang: str = "zh", show: bool = True
               ) -> tuple[folium.FeatureGroup, str]:
    """Uncovered population hexagons as a choropleth; returns the layer and its legend HTML."""
    fg = folium.FeatureGroup(name=_esc(name), show=show)
    breaks = _breaks(gdf["uncovered_pop"].to_numpy(float) if len(gdf) else np.array([]))
    if len(gdf):
        g = gdf[["uncovered_pop", "geometry"]].copy()
        g["label"] = [f"{v:,.0f} {t('people', lang)}" for v in g["uncovered_pop"]]
        idx = np.clip(np.searchsorted(breaks, g["uncovered_pop"].to_numpy(), side="right") - 1,
                      0, len(_GAP_COLOURS) - 1)
        g["colour"] = np.array(_GAP_COLOURS)[idx]
        folium.GeoJson(g.to_json(), style_function=lambda f: {
            "color": f["properties"]["colour"], "weight": 0.5, "fillColor": f["properties"]["colour"],
            "fillOpacity": 0.6}, tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False)).add_to(fg)
    items = "".join(
        f'<div><span style="display:inline-block;width:14px;height:10px;background:{c};margin-right:6px">'
        f"</span>{lo:,.0f}–{hi:,.0f}</div>"
        for c, lo, hi in zip(_GAP_COLOURS, breaks[:-1], breaks[1:], strict=False))
    legend = (f'<div class="circles-legend"><b>{_esc(name)}</b><br><small>{t("legend_gaps", lang)}'
              f"</small>{items or '<div>0</div>'}</div>")
    return fg, legend


def proposals_layer(df: pd.DataFrame, *, lang: str = "zh") -> folium.FeatureGroup:
    """Proposed sites numbered by rank, with their gain."""
    fg = folium.FeatureGroup(name=t("proposals", lang))
    for r in df.itertuples(index=False):
        d = r._asdict()
        icon = folium.DivIcon(html=(
            '<div style="background:#d7191c;color:#fff;border:2px solid #fff;border-radius:50%;'
            'width:24px;height:24px;line-height:20px;text-align:center;font:bold 12px sans-serif;'
            f'box-shadow:0 0 3px #000">{int(d["rank"])}</div>'), icon_size=(24, 24), icon_anchor=(12, 12))
        rows = [(t("rank", lang), int(d["rank"])), (t("tier", lang), d.get("tier")),
                (t("gain", lang), _fmt(d.get("new_covered_pop"))),
                (t("covered_share", lang), f"{float(d.get('cumulative_covered_share', np.nan)):.1%}")]
        folium.Marker([d["lat"], d["lon"]], icon=icon, popup=_popup(rows),
                      tooltip=f"#{int(d['rank'])} +{_fmt(d.get('new_covered_pop'))}").add_to(fg)
    return fg


def units_layer(gdf: gpd.GeoDataFrame, *, share_column: str, lang: str = "zh") -> folium.FeatureGroup:
    """Administrative units outlined, with their coverage share in the tooltip."""
    fg = folium.FeatureGroup(name=t("units", lang), show=False)
    g = _escaped_frame(gdf.to_crs(4326))
    g["label"] = [f"{u}: {s:.1%}" if pd.notna(s) else u for u, s in zip(g["unit"], gdf[share_column], strict=True)]
    folium.GeoJson(g[["label", "geometry"]].to_json(), style_function=lambda _f: {
        "color": "#444", "weight": 1.5, "fill": False, "dashArray": "4 3"},
        tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False)).add_to(fg)
    return fg


_LEGEND_CSS = ("<style>.circles-legend{background:rgba(255,255,255,.92);padding:6px 10px;"
               "font:12px sans-serif;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);"
               "margin-bottom:6px}</style>")


def coverage_map(*, profile: Profile, areas: dict[str, gpd.GeoDataFrame] | None = None,
                 facilities: pd.DataFrame | None = None, gaps: gpd.GeoDataFrame | None = None,
                 proposals: pd.DataFrame | None = None, units: gpd.GeoDataFrame | None = None,
                 bounds=None, title: str = "", lang: str = "zh", offline: bool = False,
                 tiles: str | None = None) -> folium.Map:
    """Compose the full coverage map from its layers.

    Parameters
    ----------
    profile
        Tier names and colours.
    areas
        Per tier code, the dissolved service area (WGS-84).
    facilities
        ``facilities.csv`` rows (lon, lat, tier, name, floor_area_m2, served_pop, overloaded).
    gaps
        Gap hexagons of one tier (the lowest by default in :func:`draw_run_map`).
    proposals
        ``proposals.csv`` rows.
    units
        Unit polygons with ``unit`` and ``covered_share``.
    bounds
        Map extent; default: from the layers.
    title
        The title shown on the map (escaped).
    lang
        ``zh`` or ``en``.
    offline, tiles
        As in :func:`base_map`.

    """
    if bounds is None:
        frames = [g.to_crs(4326) for g in (areas or {}).values() if len(g)]
        if facilities is not None and len(facilities):
            frames.append(gpd.GeoDataFrame(geometry=gpd.points_from_xy(facilities["lon"], facilities["lat"]), crs=4326))
        if gaps is not None and len(gaps):
            frames.append(gaps.to_crs(4326))
        bounds = pd.concat([f.geometry for f in frames]).total_bounds if frames else (104.0, 30.6, 104.2, 30.8)
    m = base_map(bounds, offline=offline, tiles=tiles, title=title, lang=lang)
    area_items, legends = [], []
    for tier in profile.tiers:
        gdf = (areas or {}).get(tier.code)
        if gdf is None:
            continue
        name = f"{tier.name_zh if lang == 'zh' else tier.name_en} · {t('service_area', lang)}"
        service_area_layer(gdf, name=name, colour=tier.colour).add_to(m)
        area_items.append(f'<div><span style="display:inline-block;width:14px;height:10px;'
                       f'background:{tier.colour};opacity:.6;margin-right:6px"></span>{_esc(name)}</div>')
    if gaps is not None:
        tier = str(gaps["tier"].iloc[0]) if len(gaps) else profile.tiers[-1].code
        tname = profile.tier(tier).name_zh if lang == "zh" else profile.tier(tier).name_en
        layer, legend = gaps_layer(gaps, name=f"{t('gaps', lang)} · {tname}", lang=lang)
        layer.add_to(m)
        legends.append(legend)
    if facilities is not None:
        for fg in facilities_layer(facilities, profile, lang=lang):
            fg.add_to(m)
    if units is not None and len(units):
        units_layer(units, share_column="covered_share", lang=lang).add_to(m)
    if proposals is not None and len(proposals):
        proposals_layer(proposals, lang=lang).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    if area_items:
        legends.insert(0, f'<div class="circles-legend">{"".join(area_items)}</div>')
    m.get_root().html.add_child(folium.Element(
        f'{_LEGEND_CSS}<div id="circles-legend" style="position:fixed;bottom:60px;left:10px;'
        f'z-index:1000">{"".join(legends)}</div>'))
    return m


def _read_csv(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path, encoding="utf-8-sig") if path.exists() else None


def draw_run_map(run_dir: str | Path, *, offline: bool = False, lang: str | None = None,
                 tiles: str | None = None, out: str | Path | None = None) -> Path:
    """(Re)draw ``map.html`` from a run folder's files, atomically.

    Parameters
    ----------
    run_dir
        A folder written by ``circles coverage``, ``site``, ``demo`` or ``audit``.
    offline
        Inline Leaflet and use no tile layer unless ``tiles`` is given.
    lang
        ``zh`` or ``en`` (default: the profile's).
    tiles
        A tile URL template (e.g. the city's intranet tile server).
    out
        Where to write (default ``run_dir/map.html``).

    """
    import pyogrio

    run = Path(run_dir)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8")) \
        if (run / "manifest.json").exists() else {}
    profile = get_profile(manifest.get("profile") or manifest.get("parameters", {}).get("profile"))
    lang = lang or profile.lang
    areas = {}
    if (run / "isochrones.gpkg").exists():
        layers = {n for n, _ in pyogrio.list_layers(run / "isochrones.gpkg")}
        areas = {tier.code: gpd.read_file(run / "isochrones.gpkg", layer=tier.code)
                 for tier in profile.tiers if tier.code in layers}
    gaps = None
    if (run / "gaps.gpkg").exists():
        lowest = profile.tiers[-1].code
        layers = {n for n, _ in pyogrio.list_layers(run / "gaps.gpkg")}
        gaps = gpd.read_file(run / "gaps.gpkg", layer=f"gaps_{lowest}") if f"gaps_{lowest}" in layers \
            else gpd.GeoDataFrame({"uncovered_pop": [], "tier": []}, geometry=[], crs=4326)
    units = None
    if (run / "units.gpkg").exists():
        units = gpd.read_file(run / "units.gpkg")
        lowest = profile.tiers[-1].code
        units["covered_share"] = units.get(f"{lowest}_covered_share", np.nan)
    facilities = _read_csv(run / "facilities.csv")
    if facilities is not None and "status" in facilities:
        facilities = facilities[facilities["status"] == "ok"]
    title = (f"{t('title', lang)} · {t('profile', lang)}: {profile.title_zh if lang == 'zh' else profile.title_en}"
             f" · {t('date', lang)}: {str(manifest.get('created', ''))[:10]} · {run.name}")
    if manifest.get("population", {}).get("is_estimate"):
        title += f" · {t('estimate', lang)}"
    m = coverage_map(profile=profile, areas=areas, facilities=facilities, gaps=gaps,
                     proposals=_read_csv(run / "proposals.csv"), units=units, title=title, lang=lang,
                     offline=offline, tiles=tiles)
    if (run / "service_points.gpkg").exists():
        for fg in service_layers(gpd.read_file(run / "service_points.gpkg", layer="service_points"), lang=lang):
            fg.add_to(m)
        _move_layer_control_last(m)
    page = m.get_root().render()
    if offline:
        page = inline_assets(page)
    return write_text(Path(out) if out else run / "map.html", page)


def result_map(result, *, isochrones: dict | None = None, gaps: gpd.GeoDataFrame | None = None,
               proposals: pd.DataFrame | None = None, lang: str | None = None, offline: bool = False,
               tiles: str | None = None, title: str = "") -> folium.Map:
    """The coverage map of an in-memory :class:`circles.coverage.CoverageResult` (notebooks).

    Parameters
    ----------
    result
        The coverage result.
    isochrones
        Layers from :func:`circles.pipeline.isochrone_layers` (WGS-84).
    gaps
        Gap hexagons (:func:`circles.gaps.gap_hexagons`); the lowest tier's are shown.
    proposals
        Proposed sites (``rank``, ``lon``, ``lat``, ``tier``, ``new_covered_pop``...).
    lang, offline, tiles, title
        As in :func:`coverage_map` (the language defaults to the profile's).

    """
    profile = result.profile
    lang = lang or profile.lang
    fac = result.facility_table()
    fac = fac[fac["status"] == "ok"]
    lowest = profile.tiers[-1].code
    g = gaps[gaps["tier"] == lowest] if gaps is not None and len(gaps) else gaps
    return coverage_map(profile=profile, areas=isochrones or {}, facilities=fac, gaps=g, proposals=proposals,
                        title=title or t("title", lang), lang=lang, offline=offline, tiles=tiles)


_SERVICE_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf",
                    "#999999", "#66c2a5", "#fc8d62"]


def service_layers(points: gpd.GeoDataFrame, *, lang: str = "zh") -> list[folium.FeatureGroup]:
    """One toggleable layer of service points per category (hidden until switched on)."""
    from .services import builtin_catalogue

    names = {c.code: (c.name_zh if lang == "zh" else c.name_en) for c in builtin_catalogue()}
    groups = []
    for i, (code, sub) in enumerate(points.groupby("service", sort=True)):
        colour = _SERVICE_COLOURS[i % len(_SERVICE_COLOURS)]
        fg = folium.FeatureGroup(name=f"{_esc(names.get(code, code))} ({len(sub)})", show=False)
        for r in sub.itertuples(index=False):
            folium.CircleMarker([r.geometry.y, r.geometry.x], radius=4, color=colour, fill=True,
                                fill_opacity=0.9, tooltip=_esc(f"{names.get(code, code)}: {r.name}")).add_to(fg)
        groups.append(fg)
    return groups


def _move_layer_control_last(m: folium.Map) -> None:
    # The layer control lists only the layers added before it: add it again at the end.
    for key, child in list(m._children.items()):
        if isinstance(child, folium.LayerControl):
            del m._children[key]
    folium.LayerControl(collapsed=False).add_to(m)
