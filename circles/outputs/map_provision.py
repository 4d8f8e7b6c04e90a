"""Provision under capacity on the coverage map (issue 19): the capacity-short hexagons.

People within reach of a complex of their tier yet not served, because every complex in reach is
full, on the same H3 hexagons as the gaps (``capacity_short.gpkg``, laid out as ``gaps.gpkg``).
The gaps say where a new complex is needed; these say where the existing ones need room.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from ..readers.profiles import Profile, Tier
from .i18n import localized, t
from .map_elements import ClickThrough, Legend, swatch
from .map_layers import classes, esc, feature_collection, fmt, in_pane, popup_table

__all__ = ["read_capacity_short", "short_layer", "short_layers"]

# Purples: the gaps are reds, and a hexagon may hold both kinds of shortfall.
_SHORT_COLOURS = ["#f2f0f7", "#cbc9e2", "#9e9ac8", "#756bb1", "#54278f"]
_COLUMN = "covered_unserved_pop"


def _figure(gdf: gpd.GeoDataFrame, *names: str) -> np.ndarray:
    """The first of ``names`` the layer has, as floats (NaN where it has none)."""
    for name in names:
        if name in gdf:
            return pd.to_numeric(gdf[name], errors="coerce").to_numpy(float)
    return np.full(len(gdf), np.nan)


def short_layer(gdf: gpd.GeoDataFrame, *, lang: str = "zh", tier: Tier | None = None,
                show: bool = True) -> folium.FeatureGroup:
    """People within reach but not served on hexagons, as a choropleth with its legend.

    Parameters
    ----------
    gdf
        Capacity-short hexagons of one tier (a layer of ``capacity_short.gpkg``):
        ``covered_unserved_pop`` and, where present, ``served_pop`` and ``population``.
    lang
        ``zh`` or ``en``.
    tier
        The tier the hexagons are for (names the layer).
    show
        Whether the layer (and its legend) is on when the page opens.

    Returns
    -------
    folium.FeatureGroup
        Classes as the gaps layer's (quantiles, rounded); a click opens the hexagon's covered
        unserved, served and total people, in whole people.

    """
    name = t("short", lang) + (f" · {esc(localized(tier, 'name', lang))}" if tier is not None else "")
    fg = folium.FeatureGroup(name=swatch(_SHORT_COLOURS[3]) + name, show=show)
    values = _figure(gdf, _COLUMN)
    edges = classes(values, len(_SHORT_COLOURS))
    colours = _SHORT_COLOURS[len(_SHORT_COLOURS) - (len(edges) - 1):]
    if len(gdf):
        idx = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, len(colours) - 1)
        served, pop = _figure(gdf, "served_pop"), _figure(gdf, "population", "pop")
        people = f" {t('people', lang)}"
        popups = [popup_table([(t("covered_unserved", lang), fmt(u, people)), (t("short_served", lang),
                                fmt(s, people)), (t("population", lang), fmt(p, people))])
                  for u, s, p in zip(values, served, pop, strict=True)]
        labels = [f"{fmt(u)}{people} {t('covered_unserved', lang)} / {fmt(p)}" for u, p in zip(values, pop, strict=True)]
        props = pd.DataFrame({"label": labels, "popup": popups, "colour": np.asarray(colours)[idx]}, index=gdf.index)
        folium.GeoJson(feature_collection(gdf.geometry, props), style_function=lambda f: {
            "color": f["properties"]["colour"], "weight": 0.5, "fillColor": f["properties"]["colour"],
            "fillOpacity": 0.7}, tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=320),
            pane=in_pane(fg, "short")).add_child(ClickThrough()).add_to(fg)
    labels = [f"{lo:,.0f}–{hi:,.0f}" for lo, hi in itertools.pairwise(edges)]
    fg.add_child(Legend(Legend.rows(name, colours, labels, t("legend_short", lang))))
    return fg


def short_layers(short: gpd.GeoDataFrame | None, profile: Profile, *, lang: str = "zh",
                 prefer: str | None = None) -> list[folium.FeatureGroup]:
    """One capacity-short layer per tier with people short, one of them on when the page opens.

    Parameters
    ----------
    short
        Hexagons with ``tier`` and ``covered_unserved_pop`` (every tier's, or ``None``).
    profile
        Tier names, in order.
    lang
        ``zh`` or ``en``.
    prefer
        The tier whose layer is on: the one whose gaps are on, so the page opens on one tier's
        two shortfalls (out of reach, and within reach of full complexes). When that tier has
        none, the tier with the most people short is on instead.

    Returns
    -------
    list of folium.FeatureGroup

    """
    if short is None or not len(short) or "tier" not in short:
        return []
    short = short[_figure(short, _COLUMN) > 0]
    codes = short["tier"].astype(str)
    totals = short.groupby(codes)[_COLUMN].sum()
    tiers = [tr for tr in profile.tiers if totals.get(tr.code, 0.0) > 0]
    if not tiers:
        return []
    shown = prefer if prefer in {tr.code for tr in tiers} else max(tiers, key=lambda tr: totals[tr.code]).code
    return [short_layer(short[(codes == tier.code).to_numpy()], lang=lang, tier=tier, show=tier.code == shown)
            for tier in tiers]


def read_capacity_short(path: str | Path) -> gpd.GeoDataFrame | None:
    """Every tier's hexagons with people short in ``capacity_short.gpkg`` (WGS-84), or ``None``
    when the run has no such file (runs before provision was written)."""
    import pyogrio

    path = Path(path)
    if not path.exists():
        return None
    frames = [gpd.read_file(path, layer=n) for n, _ in pyogrio.list_layers(path)]
    frames = [f.to_crs(4326) for f in frames if len(f) and "tier" in f and _COLUMN in f]
    short = pd.concat(frames, ignore_index=True) if frames else None
    return short[short[_COLUMN] > 0] if short is not None else None
