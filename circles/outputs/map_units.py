"""The units on the coverage map: covered share per unit and the community scorecard (rules failed).

Split from :mod:`circles.outputs.map_layers`, whose escaping and GeoJSON helpers it uses, so every
user-provided string (unit names, rule notes) is escaped the same way.
"""

from __future__ import annotations

import itertools

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from ..readers.profiles import Profile
from .i18n import localized, t
from .map_elements import ClickThrough, Legend, swatch
from .map_layers import esc, feature_collection, fmt, in_pane, share_text

__all__ = ["scorecard_layer", "units_layer"]

_SHARE_COLOURS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"]
# Rules failed: 0 (green) ... 4 or more (red); grey where no rule could be judged.
_FAILED_COLOURS = ["#1a9850", "#fee08b", "#fdae61", "#f46d43", "#d73027"]
_NO_DATA = "#cccccc"


def _share_columns(gdf: pd.DataFrame, profile: Profile | None) -> dict[str, str]:
    """Tier code (or ``""``) → share column, in the profile's tier order."""
    found = {c.removesuffix("_covered_share"): c for c in gdf.columns if c.endswith("_covered_share")}
    if profile is not None:
        found = {tr.code: found[tr.code] for tr in profile.tiers if tr.code in found} | found
    if not found and "covered_share" in gdf:
        found = {"": "covered_share"}
    return found


def units_layer(gdf: gpd.GeoDataFrame, *, lang: str = "zh", profile: Profile | None = None,
                tier: str | None = None, show: bool = False) -> folium.FeatureGroup:
    """Administrative units shaded by their coverage share, every tier's share in the tooltip.

    Parameters
    ----------
    gdf
        Unit polygons with ``unit`` and ``{tier}_covered_share`` columns (``units.gpkg``), or a
        single ``covered_share`` column.
    lang
        ``zh`` or ``en``.
    profile
        Names the tiers; without it tier codes are shown.
    tier
        The tier whose share shades the units; default the lowest tier with a share.
    show
        Whether the layer (and its legend) is on when the page opens.

    Returns
    -------
    folium.FeatureGroup

    """
    shares = _share_columns(gdf, profile)

    def tier_label(code: str) -> str:
        if profile is not None and code in {tr.code for tr in profile.tiers}:
            return esc(localized(profile.tier(code), "name", lang))
        return esc(code or t("covered_share", lang))

    shade = tier if tier in shares else (list(shares)[-1] if shares else None)
    name = t("units", lang) + (f" · {t('covered_share', lang)} {tier_label(shade)}" if shade is not None else "")
    fg = folium.FeatureGroup(name=swatch(_SHARE_COLOURS[-1]) + name, show=show)
    if not len(gdf):
        return fg
    units = gdf["unit"] if "unit" in gdf else pd.Series(gdf.index, index=gdf.index)
    lines = [f"<b>{esc(u)}</b>" for u in units]
    for code, column in shares.items():
        lines = [f"{line}<br>{tier_label(code)}: {share_text(s)}" for line, s in zip(lines, gdf[column], strict=True)]
    edges = np.linspace(0, 1, len(_SHARE_COLOURS) + 1)
    if shade is not None:
        values = pd.to_numeric(gdf[shares[shade]], errors="coerce").to_numpy(float)
        idx = np.clip(np.searchsorted(edges[1:-1], values, side="right"), 0, len(_SHARE_COLOURS) - 1)
        fill = np.where(np.isfinite(values), np.asarray(_SHARE_COLOURS)[idx], _NO_DATA)
    else:
        fill = np.full(len(gdf), _NO_DATA)
    props = pd.DataFrame({"label": lines, "fill": fill}, index=gdf.index)
    folium.GeoJson(feature_collection(gdf.geometry, props), style_function=lambda f: {
        "color": "#444444", "weight": 1.5, "dashArray": "4 3", "fillColor": f["properties"]["fill"],
        "fillOpacity": 0.35}, tooltip=folium.GeoJsonTooltip(fields=["label"], labels=False),
        pane=in_pane(fg, "units")).add_to(fg)
    labels = [f"{lo:.0%}–{hi:.0%}" for lo, hi in itertools.pairwise(edges)]
    fg.add_child(Legend(Legend.rows(name, _SHARE_COLOURS, labels)))
    return fg


def _failed_rules(rows: pd.DataFrame | None, lang: str) -> str:
    """A popup's failed rules: code, figure against threshold, the document's quote, the note."""
    items = []
    for r in ([] if rows is None else rows.to_dict("records")):
        part = f" ({esc(r['part'])})" if isinstance(r.get("part"), str) and r["part"] else ""
        figure = t("value_threshold", lang).format(value=_number(r.get("value")), unit=esc(r.get("unit_of_measure")),
                                                   threshold=_number(r.get("threshold")))
        items.append(f"<li><b>{esc(r.get('rule'))}{part}</b>: {figure}<br><small>{esc(r.get('source'))}<br>"
                     f"{esc(r.get('note'))}</small></li>")
    return f"<br>{t('rules_failed', lang)}:<ul style='margin:2px 0;padding-left:16px'>{''.join(items)}</ul>" \
        if items else ""


def _number(value) -> str:
    """A rule's figure: shares and small ratios keep their decimals (0.3, 2.01 workers per 10,000)."""
    f = pd.to_numeric(value, errors="coerce")
    return f"{f:.3g}" if pd.notna(f) and abs(f) < 100 else fmt(f)


def scorecard_layer(gdf: gpd.GeoDataFrame, *, by_unit: pd.DataFrame | None = None, lang: str = "zh",
                    show: bool = False) -> folium.FeatureGroup:
    """Communities shaded by the number of rules they fail (0 green ... 4 or more red), with a
    popup listing the failed rules.

    Parameters
    ----------
    gdf
        Unit polygons with the ``scorecard.csv`` columns ``unit``, ``rules_failed`` and
        ``rules_evaluated``; a unit with no rule evaluated is grey.
    by_unit
        ``standards_by_unit.csv`` rows: each failed rule's figure, threshold, source (the
        document's quote) and note go into its community's popup.
    lang
        ``zh`` or ``en``.
    show
        Whether the layer (and its legend) is on when the page opens (off, like the units' shares:
        the page opens on the gaps).

    Returns
    -------
    folium.FeatureGroup

    """
    name = t("scorecard", lang)
    fg = folium.FeatureGroup(name=swatch(_FAILED_COLOURS[-1]) + name, show=show)
    if not len(gdf):
        return fg
    failed, evaluated = (pd.to_numeric(gdf[c], errors="coerce").fillna(0).to_numpy(int)
                         for c in ("rules_failed", "rules_evaluated"))
    top = len(_FAILED_COLOURS) - 1
    fill = np.where(evaluated > 0, np.asarray(_FAILED_COLOURS)[np.clip(failed, 0, top)], _NO_DATA)
    bad = by_unit[by_unit["passed"].astype(str).str.lower().eq("false")] if by_unit is not None else None
    rows = {str(u): g for u, g in bad.groupby(bad["unit"].astype(str))} if bad is not None else {}
    labels = [f"<b>{esc(u)}</b><br>" + (t("of_evaluated", lang).format(failed=f, evaluated=e) if e
                                          else t("not_evaluated", lang))
              for u, f, e in zip(gdf["unit"], failed, evaluated, strict=True)]
    popups = [label + _failed_rules(rows.get(str(u)), lang) for label, u in zip(labels, gdf["unit"], strict=True)]
    props = pd.DataFrame({"popup": popups, "fill": fill}, index=gdf.index)
    folium.GeoJson(feature_collection(gdf.geometry, props), style_function=lambda f: {
        "color": "#444444", "weight": 1.5, "fillColor": f["properties"]["fill"], "fillOpacity": 0.5},
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, max_width=420),
        pane=in_pane(fg, "units")).add_child(ClickThrough()).add_to(fg)
    legend = [*map(str, range(top)), f"{top}+", t("not_evaluated", lang)]
    fg.add_child(Legend(Legend.rows(name, [*_FAILED_COLOURS, _NO_DATA], legend, t("legend_scorecard", lang))))
    return fg
