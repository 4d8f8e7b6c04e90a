"""The layers of the coverage map (folium), one function each, composable in a notebook.

The pages need Leaflet only (no jQuery, Bootstrap or icon fonts): markers are circle markers and
``DivIcon`` numbers, popups and tooltips are bound from JSON strings. Every user-provided string
(facility, unit and file names, custom tier names) is HTML-escaped before it reaches a popup,
tooltip, layer name or title, including the characters that would end or interpolate a
JavaScript template literal.
"""

from __future__ import annotations

import html
import itertools
import json

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..readers.profiles import Profile, Tier
from .i18n import html_lang, localized, t
from .map_elements import BOX, Attribution, Bind, Legend, PageWords, Pane, ScaleBar, Title, swatch
from .map_encoding import EncodedShapes
from .offline import LEAFLET_CSS, LEAFLET_JS
from .tiles import Tiles, convert_geometry, convert_lonlat, tile_provider

__all__ = [
    "ATTRIBUTION",
    "MAP_FACILITIES_MAX",
    "base_map",
    "classes",
    "esc",
    "facilities_layer",
    "feature_collection",
    "fmt",
    "gaps_layer",
    "in_pane",
    "minutes_text",
    "popup_table",
    "proposals_layer",
    "service_area_layer",
    "service_layers",
    "share_text",
    "wgs84_values",
]

ATTRIBUTION = "© OpenStreetMap contributors"
#: Facility markers drawn on a map at most: a POI dump of 100,000 facilities makes a 30 MB page a
#: browser can hardly open; every facility stays in facilities.csv.
MAP_FACILITIES_MAX = 5000
_GAP_COLOURS = ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"]
_SHARE_COLOURS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"]
# Rules failed: 0 (green), 1, 2, 3, 4 or more (red); grey where no rule could be evaluated.
_FAILED_COLOURS = ["#1a9850", "#fee08b", "#fdae61", "#f46d43", "#d73027"]
_NO_DATA = "#cccccc"
_SERVICE_COLOURS = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf",
                    "#999999", "#66c2a5", "#fc8d62"]
# html.escape leaves these alone, yet inside a JavaScript template literal (folium's own
# popups and tooltips use them) they would interpolate `${...}` or end the string.
_JS_TEMPLATE_CHARS = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;"})


def esc(value) -> str:
    """``value`` as text that is safe in HTML and in a JavaScript template literal."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return html.escape(str(value)).translate(_JS_TEMPLATE_CHARS)


def fmt(value, unit: str = "", *, missing: str = "") -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return missing
    return f"{f:,.0f}{unit}" if np.isfinite(f) else missing


def share_text(value) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{f:.1%}" if np.isfinite(f) else ""


def minutes_text(value, lang: str) -> str:
    """A walk in minutes to 0.1 min (``7.5 分钟``); empty when unknown."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return ""
    return f"{f:.1f} {t('minutes', lang)}" if np.isfinite(f) else ""


def wgs84_values(geometry: gpd.GeoSeries) -> np.ndarray:
    """The geometries in WGS-84 (a layer without a CRS is taken as WGS-84, as the run folders' are)."""
    return np.asarray(convert_geometry(geometry, "wgs84").values)


def feature_collection(geometry: gpd.GeoSeries, props: pd.DataFrame) -> dict:
    """A FeatureCollection in WGS-84 with coordinates rounded to 6 decimals (~0.1 m), which
    keeps polygon layers about 40 % smaller with no visible change."""
    geoms = shapely.transform(wgs84_values(geometry), lambda c: np.round(c, 6))
    gdf = gpd.GeoDataFrame(props.reset_index(drop=True), geometry=list(geoms), crs=4326)
    return json.loads(gdf.to_json(drop_id=False))


def _overloaded(df: pd.DataFrame) -> np.ndarray:
    """Which rows of ``facilities.csv`` are overloaded (the column is text once read back)."""
    if "overloaded" not in df:
        return np.zeros(len(df), bool)
    return df["overloaded"].astype(str).str.lower().isin(["true", "1", "yes"]).to_numpy()


def _first_markers(df: pd.DataFrame, profile: Profile, cap: int | None) -> pd.DataFrame:
    """The ``cap`` facilities a planner looks at first: overloaded, higher tier, more served."""
    if cap is None or len(df) <= cap:
        return df
    over = _overloaded(df)
    rank = {tr.code: tr.rank for tr in profile.tiers}
    tier_rank = df["tier"].astype(str).map(rank).fillna(-1).to_numpy(float)
    served = pd.to_numeric(df.get("served_pop", pd.Series(0.0, index=df.index)),
                           errors="coerce").fillna(0.0).to_numpy(float)
    order = np.lexsort((-served, -tier_rank, ~over))
    return df.iloc[np.sort(order[:cap])]


def in_pane(fg: folium.FeatureGroup, kind: str) -> str:
    fg.add_child(Pane(kind))
    return f"circles-{kind}"


def _marker(pane: str, **options) -> folium.CircleMarker:
    marker = folium.CircleMarker(**options)
    marker.options["pane"] = pane  # folium's path options leave the pane out
    return marker


def popup_table(rows: list[tuple[str, str]]) -> str:
    """A popup table; the values must already be escaped."""
    body = "".join(f"<tr><th style='text-align:left;padding-right:8px;white-space:nowrap'>{k}</th><td>{v}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


def base_map(bounds, *, offline: bool = False, tiles: str | Tiles | None = None, title: str = "",
             lang: str = "zh") -> folium.Map:
    """An empty map fitted to ``bounds``, with a metric scale bar, the attribution and a title.

    Parameters
    ----------
    bounds
        ``(minx, miny, maxx, maxy)`` in the tiles' coordinates (WGS-84 degrees, GCJ-02 for Amap).
    offline
        Kept for old scripts: a page has no tiles unless ``tiles`` names some, and
        :func:`circles.outputs.maps.save_map` inlines Leaflet unless told otherwise.
    tiles
        A tile source (:func:`circles.outputs.tiles.tile_provider`: ``osm``, ``tianditu``,
        ``tianditu-img``, ``amap`` or a URL template such as
        ``http://tiles.city.local/{z}/{x}/{y}.png``); default none: a light background for the
        basemap drawn from the extract (:func:`circles.outputs.basemap.basemap_layer`).
    title
        The title shown on the map and in the browser tab (escaped here).
    lang
        ``zh`` or ``en``: the page's language, its attributions included.

    Returns
    -------
    folium.Map

    """
    del offline  # what it asked for is the default now
    provider = tile_provider(tiles)
    m = folium.Map(tiles=None, control_scale=False, prefer_canvas=True)
    # Only Leaflet: folium's defaults (jQuery, Bootstrap, awesome-markers, Font Awesome) are
    # not used by any layer here, and a page then inlines one library.
    m.default_js = [("leaflet", LEAFLET_JS)]
    m.default_css = [("leaflet_css", LEAFLET_CSS)]
    for layer in provider.layers if provider is not None else ():
        # Leaflet shows each attribution text once: a layer without its own repeats OSM's.
        folium.TileLayer(tiles=layer.url, attr=html.escape(t(layer.attribution or "attribution", lang)),
                         name=t("tiles", lang), control=False, subdomains=layer.subdomains or "abc",
                         max_zoom=layer.max_zoom, max_native_zoom=layer.max_zoom).add_to(m)
    m.add_child(Attribution(t("attribution", lang)))  # the streets and the data are OSM's, whatever the tiles
    m.add_child(ScaleBar())
    m.add_child(PageWords(t("map_zoom_in", lang), t("map_zoom_out", lang), t("map_layers", lang)))
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    root = m.get_root()
    root.title = esc(title) or None
    background = "" if provider is not None else "body .leaflet-container{background:#f7f6f3}"
    root.header.add_child(folium.Element(
        f'<meta name="language" content="{html_lang(lang)}">'
        "<style>.leaflet-popup-content th{text-align:left;padding-right:8px;white-space:nowrap}"
        f"#circles-title{{display:none;max-width:calc(100vw - 90px);box-sizing:border-box}}{background}</style>"))
    if title:
        root.html.add_child(folium.Element(f'<div id="circles-title" style="{BOX};font-size:15px">{esc(title)}</div>'))
        m.add_child(Title())
    return m


def service_area_layer(gdf: gpd.GeoDataFrame, tier: Tier, *, lang: str = "zh", colour: str | None = None,
                       show: bool = True) -> folium.FeatureGroup:
    """A tier's service area (dissolved polygons) as a toggleable layer.

    Parameters
    ----------
    gdf
        The tier's service-area polygons (any CRS).
    tier
        The tier (its name labels the layer; its colour fills it unless ``colour`` is given).
    lang
        ``zh`` or ``en``.
    colour
        Fill colour; default ``tier.colour``.
    show
        Whether the layer is on when the page opens.

    Returns
    -------
    folium.FeatureGroup

    """
    colour = colour or tier.colour
    minutes = f" ({tier.minutes:g} {t('minutes', lang)})" if tier.minutes else ""
    label = f"{esc(localized(tier, 'name', lang))} · {t('service_area', lang)}{minutes}"
    fg = folium.FeatureGroup(name=swatch(colour) + label, show=show)
    if len(gdf):
        fg.add_child(EncodedShapes(wgs84_values(gdf.geometry), kind="polygons", tooltips=label, styles=[
            {"color": colour, "weight": 1, "fillColor": colour, "fillOpacity": 0.25}]))
    return fg


def _facility_props(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The popup values of each facility, escaped and formatted, and its marker's ring colour."""

    def col(name: str, fmt) -> list[str]:
        return [fmt(v) for v in df[name]] if name in df else [""] * len(df)

    over = _overloaded(df)
    props = pd.DataFrame({
        "name": col("name", esc),
        "floor": col("floor_area_m2", lambda v: fmt(v, " m²")),
        "in_circle": col("pop_in_circle", fmt),
        "served": col("served_pop", fmt),
        "m2": col("m2_per_100_households", lambda v: fmt(v, " m²")),
        "over": np.where(over, t("yes", lang), t("no", lang)),
        "ring": np.where(over, "#222222", "#ffffff"),
    }, index=df.index)
    if "capacity_pop" not in df:  # a run from before provision
        return props
    people = f" {t('people', lang)}"
    return props.assign(capacity=col("capacity_pop", lambda v: fmt(v, people, missing=t("unlimited", lang))),
                        assigned=col("assigned_pop", lambda v: fmt(v, people)),
                        utilisation=col("utilisation", share_text),
                        extra=col("extra_floor_area_m2", lambda v: fmt(v, " m²")))


def facilities_layer(df: pd.DataFrame, profile: Profile, *, lang: str = "zh",
                     max_markers: int | None = MAP_FACILITIES_MAX) -> list[folium.FeatureGroup]:
    """One toggleable layer of facility markers per tier, with popups.

    Parameters
    ----------
    df
        ``facilities.csv`` rows: ``lon``, ``lat``, ``tier`` and, where known, ``name``,
        ``floor_area_m2``, ``pop_in_circle``, ``served_pop``, ``m2_per_100_households``,
        ``overloaded`` and the provision columns ``capacity_pop`` (empty: unlimited),
        ``assigned_pop``, ``utilisation`` (shown as %) and ``extra_floor_area_m2``.
    profile
        Tier names and colours.
    lang
        ``zh`` or ``en``.
    max_markers
        Draw at most this many (``None``: all): overloaded ones first, then higher tiers, then
        those serving more people. Each layer's name says how many of its facilities are shown.

    Returns
    -------
    list of folium.FeatureGroup
        One per tier of the profile, highest first. Overloaded facilities have a dark ring.

    """
    total = df["tier"].astype(str).value_counts()
    df = _first_markers(df, profile, max_markers)
    props = _facility_props(df, lang)
    fields = ["name", "tier", "floor", "in_circle", "served", "m2", "over"]
    aliases = [t(k, lang) for k in ("name", "tier", "floor_area", "in_circle", "served",
                                    "m2_per_100_households", "overloaded")]
    if "capacity" in props:
        fields += ["capacity", "assigned", "utilisation", "extra"]
        aliases += [t(k, lang) for k in ("capacity", "assigned", "utilisation", "extra_floor_area")]
    points = gpd.GeoSeries(gpd.points_from_xy(df["lon"], df["lat"]), index=df.index, crs=4326)
    groups = []
    for tier in profile.tiers:
        mask = (df["tier"].astype(str) == tier.code).to_numpy()
        name = esc(localized(tier, "name", lang))
        count, of = int(mask.sum()), int(total.get(tier.code, 0))
        shown = f"{count}" if count == of else t("shown_of", lang).format(shown=f"{count:,}", total=f"{of:,}")
        fg = folium.FeatureGroup(name=f"{swatch(tier.colour, round_=True)}{name} · "
                                      f"{t('facilities', lang)} ({shown})")
        if mask.any():
            sub = props[mask].assign(tier=name)
            pane = in_pane(fg, "points")
            folium.GeoJson(
                feature_collection(points[mask], sub),
                marker=_marker(pane, radius=4 + 2 * tier.rank, weight=2, fill=True, fill_opacity=0.95),
                style_function=lambda f, c=tier.colour: {"color": f["properties"]["ring"], "fillColor": c},
                popup=folium.GeoJsonPopup(fields=fields, aliases=aliases, max_width=320),
                tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
            ).add_to(fg)
        groups.append(fg)
    return groups


def _nice(x: float) -> float:
    """``x`` rounded to two significant figures."""
    if x <= 0 or not np.isfinite(x):
        return 0.0
    return float(np.round(x, 1 - int(np.floor(np.log10(x)))))


def classes(values: np.ndarray, k: int) -> np.ndarray:
    """Class edges for a choropleth legend: quantiles of the positive values, rounded."""
    v = values[np.isfinite(values) & (values > 0)]
    if not len(v):
        return np.array([0.0, 1.0])
    edges = np.unique([_nice(q) for q in np.quantile(v, np.linspace(0, 1, k + 1))])
    edges[0], edges[-1] = min(edges[0], np.floor(v.min())), max(edges[-1], np.ceil(v.max()))
    return edges if len(edges) > 1 else np.array([edges[0], edges[0] + 1])


def gaps_layer(gdf: gpd.GeoDataFrame, *, lang: str = "zh", tier: Tier | None = None,
               show: bool = True) -> folium.FeatureGroup:
    """Uncovered population on hexagons as a choropleth, with its legend in people.

    Parameters
    ----------
    gdf
        Gap hexagons of one tier (``gaps.gpkg``): ``uncovered_pop`` and, where present,
        ``pop`` and ``mean_minutes``.
    lang
        ``zh`` or ``en``.
    tier
        The tier the gaps are for (names the layer).
    show
        Whether the layer (and its legend) is on when the page opens.

    Returns
    -------
    folium.FeatureGroup
        The layer; its legend shows while the layer is on.

    """
    name = t("gaps", lang) + (f" · {esc(localized(tier, 'name', lang))}" if tier is not None else "")
    fg = folium.FeatureGroup(name=swatch(_GAP_COLOURS[3]) + name, show=show)
    values = gdf["uncovered_pop"].to_numpy(float) if len(gdf) else np.array([])
    edges = classes(values, len(_GAP_COLOURS))
    colours = _GAP_COLOURS[len(_GAP_COLOURS) - (len(edges) - 1):]
    if len(gdf):
        idx = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, len(colours) - 1)
        minutes = gdf["mean_minutes"].to_numpy(float) if "mean_minutes" in gdf else np.full(len(gdf), np.nan)
        pop = gdf["pop"].to_numpy(float) if "pop" in gdf else values
        label = [f"{fmt(u)} {t('people', lang)} {t('uncovered', lang)} / {fmt(p)}<br>"
                 f"{t('mean_walk', lang)}: " + (f"{m:.1f} {t('minutes', lang)}" if np.isfinite(m)
                                                 else t("unreachable", lang))
                 for u, p, m in zip(values, pop, minutes, strict=True)]
        styles = [{"color": c, "weight": 0.5, "fillColor": c, "fillOpacity": 0.6} for c in colours]
        fg.add_child(EncodedShapes(wgs84_values(gdf.geometry), kind="polygons", styles=styles,
                                   style_index=idx, tooltips=label, pane=in_pane(fg, "gaps")))
    labels = [f"{lo:,.0f}–{hi:,.0f}" for lo, hi in itertools.pairwise(edges)]
    fg.add_child(Legend(Legend.rows(name, colours, labels, t("legend_gaps", lang))))
    return fg


def proposals_layer(df: pd.DataFrame, *, lang: str = "zh", profile: Profile | None = None,
                    crs: str = "wgs84") -> folium.FeatureGroup:
    """Proposed sites numbered by rank, with their gain in the tooltip and popup.

    Parameters
    ----------
    df
        ``proposals.csv`` rows: ``rank``, ``lon``, ``lat`` (WGS-84) and, where known, ``tier``,
        ``new_covered_pop``, ``cumulative_covered_share``, ``nearest_existing_minutes``.
    lang
        ``zh`` or ``en``.
    profile
        Names the tiers; without it tier codes are shown.
    crs
        The tiles' coordinate system: ``gcj02`` draws the markers converted (Amap).

    Returns
    -------
    folium.FeatureGroup
        A popup gives the site's WGS-84 and GCJ-02 coordinates, whatever the tiles.

    """
    names = {tr.code: localized(tr, "name", lang) for tr in profile.tiers} if profile is not None else {}
    fg = folium.FeatureGroup(name=swatch("#d7191c", round_=True) + t("proposals", lang) + f" ({len(df)})")
    lon, lat = df["lon"].to_numpy(float), df["lat"].to_numpy(float)
    drawn, gcj = convert_lonlat(lon, lat, crs), convert_lonlat(lon, lat, "gcj02")
    # One marker per proposal: the numbers differ, and a siting run proposes tens, not thousands.
    for i, r in enumerate(df.to_dict("records")):
        rank = int(r["rank"])
        gain = fmt(r.get("new_covered_pop"))
        icon = folium.DivIcon(html=(
            '<div style="background:#d7191c;color:#fff;border:2px solid #fff;border-radius:50%;'
            'width:24px;height:24px;line-height:20px;text-align:center;font:bold 12px sans-serif;'
            f'box-sizing:border-box;box-shadow:0 0 3px #000">{rank}</div>'), icon_size=(24, 24), icon_anchor=(12, 12))
        rows = [(t("rank", lang), str(rank)), (t("tier", lang), esc(names.get(str(r.get("tier")), r.get("tier")))),
                (t("gain", lang), f"{gain} {t('people', lang)}"),
                (t("cumulative_share", lang), share_text(r.get("cumulative_covered_share"))),
                (t("nearest_existing", lang), minutes_text(r.get("nearest_existing_minutes"), lang)),
                (t("coords_wgs84", lang), f"{lat[i]:.6f}, {lon[i]:.6f}"),
                (t("coords_gcj02", lang), f"{gcj[1][i]:.6f}, {gcj[0][i]:.6f}")]
        marker = folium.Marker([round(float(drawn[1][i]), 6), round(float(drawn[0][i]), 6)], icon=icon)
        marker.add_child(Bind(popup=popup_table(rows), tooltip=f"#{rank} +{gain} {t('people', lang)}"))
        marker.add_to(fg)
    return fg


def service_layers(points: gpd.GeoDataFrame, *, lang: str = "zh") -> list[folium.FeatureGroup]:
    """One toggleable layer of service points per category (off until switched on).

    Parameters
    ----------
    points
        ``service_points.gpkg`` points with ``service`` and ``name``.
    lang
        ``zh`` or ``en``.

    Returns
    -------
    list of folium.FeatureGroup

    """
    from ..readers.services import builtin_catalogue

    names = {c.code: localized(c, "name", lang) for c in builtin_catalogue()}
    groups = []
    for i, (code, sub) in enumerate(points.groupby("service", sort=True)):
        colour = _SERVICE_COLOURS[i % len(_SERVICE_COLOURS)]
        label = esc(names.get(code, code))
        fg = folium.FeatureGroup(name=f"{swatch(colour, round_=True)}{label} ({len(sub)})", show=False)
        names_ = sub["name"] if "name" in sub else pd.Series("", index=sub.index)
        props = pd.DataFrame({"label": [f"{label}: {esc(n)}" for n in names_]}, index=sub.index)
        folium.GeoJson(feature_collection(sub.geometry, props),
                       marker=_marker(in_pane(fg, "points"), radius=4, color=colour, weight=1, fill=True,
                                      fill_color=colour, fill_opacity=0.9),
                       tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False)).add_to(fg)
        groups.append(fg)
    return groups
