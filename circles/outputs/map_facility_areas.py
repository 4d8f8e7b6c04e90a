"""Each facility's own service area on the map: a layer per tier, off when the page opens.

A run writes one area per facility into ``isochrones.gpkg`` (layer ``facilities``, up to the
``--facility-areas`` count). The map draws them by default for up to
:data:`MAP_FACILITY_AREAS_MAX` facilities, and beyond that only on request (``circles map DIR
--facility-areas``): a city's hundreds of overlapping areas would outweigh the rest of the page.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from ..readers.profiles import Profile
from .i18n import localized, t
from .map_elements import swatch
from .map_encoding import EncodedShapes
from .map_layers import esc, wgs84_values

__all__ = ["MAP_FACILITY_AREAS_MAX", "facility_area_layers", "read_facility_areas"]

#: Facilities whose own areas a map draws unless asked (``facility_areas=True``) to draw more.
MAP_FACILITY_AREAS_MAX = 100


def read_facility_areas(path: str | Path, facilities: pd.DataFrame | None, *,
                        wanted: bool | None = None) -> gpd.GeoDataFrame | None:
    """The per-facility areas of a run's ``isochrones.gpkg``, with each facility's name.

    Parameters
    ----------
    path
        The run's ``isochrones.gpkg``.
    facilities
        The run's ``facilities.csv`` rows (``facility_id`` and ``name`` label the areas).
    wanted
        ``True``: every area the file has; ``False``: none; ``None``: all when there are at most
        :data:`MAP_FACILITY_AREAS_MAX`, else none (the file is not read).

    Returns
    -------
    geopandas.GeoDataFrame or None
        ``facility``, ``id``, ``tier``, ``minutes``, ``name`` and the area (non-empty ones only).

    """
    import pyogrio

    path = Path(path)
    if wanted is False:
        return None
    if not path.exists() or "facilities" not in {str(n) for n, _ in pyogrio.list_layers(path)}:
        if wanted:  # asked for by name: say why there are none rather than draw a map without them
            warnings.warn(f"{path}: no per-facility areas (layer 'facilities'); the run writes them for up to "
                          "--facility-areas facilities: rerun it with --facility-areas all to draw them",
                          UserWarning, stacklevel=2)
        return None
    if wanted is None and pyogrio.read_info(path, layer="facilities")["features"] > MAP_FACILITY_AREAS_MAX:
        return None
    areas = gpd.read_file(path, layer="facilities")
    areas = areas[~(areas.geometry.isna() | areas.geometry.is_empty)]
    names = pd.Series("", index=areas.index, dtype=object)
    if facilities is not None and {"facility_id", "name"} <= set(facilities.columns):
        by_id = dict(zip(facilities["facility_id"].astype(str), facilities["name"].fillna("").astype(str),
                         strict=True))
        names = areas["id"].astype(str).map(by_id).fillna("")
    return areas.assign(name=names.to_numpy())


def facility_area_layers(areas: gpd.GeoDataFrame | None, profile: Profile, *,
                         lang: str = "zh") -> list[folium.FeatureGroup]:
    """A layer per tier of its facilities' own service areas, outlined in the tier's colour.

    Parameters
    ----------
    areas
        :func:`read_facility_areas` (or ``isochrones["facilities"]`` with a ``name``).
    profile
        The tiers, their names and colours.
    lang
        ``zh`` or ``en``.

    Returns
    -------
    list of folium.FeatureGroup
        Off when the page opens; each area's tooltip names its facility, tier and minutes.

    """
    if areas is None or not len(areas) or "tier" not in areas:
        return []
    groups = []
    tiers = areas["tier"].astype(str).to_numpy()
    for tier in profile.tiers:
        sub = areas[tiers == tier.code]
        if not len(sub):
            continue
        tier_name = esc(localized(tier, "name", lang))
        minutes = sub["minutes"].to_numpy(float) if "minutes" in sub else np.full(len(sub), np.nan)
        names = sub["name"].astype(str).to_numpy() if "name" in sub else np.full(len(sub), "")
        tips = [" · ".join(p for p in (esc(n), tier_name, f"{m:g} {t('minutes', lang)}" if np.isfinite(m) else "")
                           if p) for n, m in zip(names, minutes, strict=True)]
        fg = folium.FeatureGroup(name=f"{swatch(tier.colour)}{tier_name} · {t('facility_areas', lang)} ({len(sub)})",
                                 show=False)
        fg.add_child(EncodedShapes(wgs84_values(sub.geometry), kind="polygons", tooltips=tips, styles=[
            {"color": tier.colour, "weight": 1.5, "fill": True, "fillColor": tier.colour, "fillOpacity": 0.05}]))
        groups.append(fg)
    return groups
