"""Interactive coverage maps: :func:`coverage_map` composes the layers of
:mod:`circles.map_layers`, :func:`draw_run_map` draws ``map.html`` from any run folder, and
:func:`result_map` maps an in-memory result. Pages inline Leaflet and load nothing from the
internet unless asked to (``online``, tiles); without tiles they are drawn on the basemap made
from the extract (:mod:`circles.outputs.basemap`). On GCJ-02 tiles (Amap) every overlay is
converted before it is drawn (:mod:`circles.outputs.tiles`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from ..errors import CirclesError
from ..readers.profiles import Profile, get_profile
from ..readers.units import unit_levels
from .basemap import basemap_layer, page_styles, read_basemap, street_lines
from .i18n import LANGS, localized, t
from .map_facility_areas import MAP_FACILITY_AREAS_MAX, facility_area_layers, read_facility_areas
from .map_layers import (
    ATTRIBUTION,
    base_map,
    facilities_layer,
    gaps_layer,
    proposals_layer,
    service_area_layer,
    service_layers,
)
from .map_provision import read_capacity_short, short_layer, short_layers
from .map_units import scorecard_layer, units_layer
from .offline import inline_assets
from .runfolder import read_run_manifest, write_text
from .tables import read_csv
from .tiles import convert_frame, convert_lonlat, tile_provider

__all__ = [
    "ATTRIBUTION",
    "MapLayers",
    "MapPage",
    "base_map",
    "coverage_map",
    "draw_run_map",
    "facilities_layer",
    "gaps_layer",
    "proposals_layer",
    "result_map",
    "save_map",
    "scorecard_layer",
    "service_area_layer",
    "service_layers",
    "short_layer",
    "short_layers",
    "units_layer",
]


@dataclass(frozen=True)
class MapLayers:
    """The data layers of a coverage map; each may be missing (see :func:`coverage_map`)."""

    areas: dict[str, gpd.GeoDataFrame] | None = None
    facilities: pd.DataFrame | None = None
    gaps: gpd.GeoDataFrame | None = None
    proposals: pd.DataFrame | None = None
    units: gpd.GeoDataFrame | None = None
    services: gpd.GeoDataFrame | None = None
    scorecard: gpd.GeoDataFrame | None = None
    standards_by_unit: pd.DataFrame | None = None
    capacity_short: gpd.GeoDataFrame | None = None
    basemap: dict[str, gpd.GeoDataFrame] | None = None
    facility_areas: gpd.GeoDataFrame | None = None


@dataclass(frozen=True)
class MapPage:
    """How the map page is drawn: extent, title, language, tiles and basemap (see :func:`coverage_map`)."""

    bounds: tuple[float, float, float, float] | None = None
    title: str = ""
    lang: str = "zh"
    offline: bool = False
    tiles: str | None = None
    tiles_key: str | None = None
    tiles_crs: str | None = None
    online: bool = False
    basemap: bool | None = None
    facility_areas: bool | None = None


# The page options a run's parameters may carry (its command's --tiles..., an audit city's keys).
# A Tianditu key is never among them: it is read at drawing time (TIANDITU_KEY), never saved.
_RUN_PAGE_OPTIONS = ("tiles", "tiles_crs", "online", "basemap")


def _options(layers: MapLayers | None, page: MapPage | None,
             keywords: dict) -> tuple[MapLayers, MapPage]:
    """The layers and page, with the one-keyword-per-option form (``facilities=...``) applied."""
    layers, page = layers or MapLayers(), page or MapPage()
    own = {f.name for f in fields(MapLayers)}, {f.name for f in fields(MapPage)}
    unknown = set(keywords) - own[0] - own[1]
    if unknown:
        raise TypeError(f"coverage_map() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    layers = replace(layers, **{k: v for k, v in keywords.items() if k in own[0]})
    return layers, replace(page, **{k: v for k, v in keywords.items() if k in own[1]})


def _bounds(layers: MapLayers) -> tuple[float, float, float, float]:
    series = [g.geometry.to_crs(4326) for g in [*(layers.areas or {}).values(), layers.gaps, layers.units,
                                                 layers.scorecard, layers.capacity_short] if g is not None and len(g)]
    for df in (layers.facilities, layers.proposals):
        if df is not None and len(df):
            series.append(gpd.GeoSeries(gpd.points_from_xy(df["lon"], df["lat"]), crs=4326))
    if not series:
        return (103.95, 30.55, 104.25, 30.80)  # central Chengdu: the demo's city
    minx, miny, maxx, maxy = pd.concat(series).total_bounds
    return (minx, miny, maxx, maxy)


def coverage_map(*, profile: Profile, layers: MapLayers | None = None, page: MapPage | None = None,
                 **keywords) -> folium.Map:
    """Compose the full coverage map from its layers, with a layer control.

    Parameters
    ----------
    profile
        Tier names and colours.
    layers
        The data layers (WGS-84), or give them one by one as keywords: ``areas`` (per tier code,
        the dissolved service area), ``facilities`` (``facilities.csv`` rows, see
        :func:`facilities_layer`), ``gaps`` (hexagons with a ``tier`` column, of one tier or
        several: one layer per tier, the lowest tier's on when the page opens), ``proposals``
        (``proposals.csv`` rows), ``units`` (polygons with ``unit`` and
        ``{tier}_covered_share``), ``services`` (points with ``service`` and ``name``, a layer
        per category, off at first), ``scorecard`` (unit polygons with the ``scorecard.csv``
        columns, shaded by the rules failed), ``standards_by_unit`` (its rows, for the popups;
        see :func:`scorecard_layer`), ``capacity_short`` (hexagons with ``tier`` and
        ``covered_unserved_pop``: a layer per tier, the one of the tier whose gaps are on shown;
        see :func:`short_layers`), ``basemap`` (:func:`circles.outputs.basemap.basemap_layers`)
        and ``facility_areas`` (one area per facility with ``tier``, ``minutes`` and ``name``: a
        layer per tier, off at first).
    page
        How the page is drawn, or as keywords: ``bounds`` (WGS-84; default: from the layers),
        ``title`` (escaped), ``lang`` (``zh`` or ``en``), ``tiles`` with ``tiles_key`` and
        ``tiles_crs`` (see :func:`circles.outputs.tiles.tile_provider`; default none),
        ``basemap`` (draw the basemap layer; default: only when there are no tiles),
        ``facility_areas`` (draw each facility's area; default: for up to
        :data:`~circles.outputs.map_facility_areas.MAP_FACILITY_AREAS_MAX` facilities) and
        ``online`` (for :func:`save_map`: Leaflet from its CDN).
    **keywords
        The fields of :class:`MapLayers` and :class:`MapPage`; they override ``layers`` and ``page``.

    Returns
    -------
    folium.Map
        On GCJ-02 tiles (``amap``, or a URL with ``tiles_crs="gcj02"``) every layer is drawn
        converted to GCJ-02; popups give coordinates in WGS-84 and GCJ-02.

    """
    layers, page = _options(layers, page, keywords)
    own = layers.facility_areas
    if own is not None and (page.facility_areas is False or (
            page.facility_areas is None and len(own) > MAP_FACILITY_AREAS_MAX)):
        layers = replace(layers, facility_areas=None)
    provider = tile_provider(page.tiles, key=page.tiles_key, crs=page.tiles_crs)
    crs = provider.crs if provider is not None else "wgs84"
    minx, miny, maxx, maxy = page.bounds or _bounds(layers)
    (x0, x1), (y0, y1) = convert_lonlat([minx, maxx], [miny, maxy], crs)
    m = base_map((x0, y0, x1, y1), tiles=provider, title=page.title, lang=page.lang)
    if layers.basemap and (page.basemap if page.basemap is not None else provider is None):
        basemap_layer(layers.basemap, lang=page.lang, crs=crs).add_to(m)
    for fg in _overlays(_in_crs(layers, crs), profile, page.lang):
        fg.add_to(m)
    if layers.proposals is not None and len(layers.proposals):
        # Converted in the layer: its popups give the WGS-84 coordinates as well.
        proposals_layer(layers.proposals, lang=page.lang, profile=profile, crs=crs).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _in_crs(layers: MapLayers, crs: str) -> MapLayers:
    """The layers drawn as they are in ``crs`` (all but the basemap and the proposals, which convert their own)."""
    if crs == "wgs84":
        return layers
    frames = {f.name: convert_frame(getattr(layers, f.name), crs) for f in fields(MapLayers)
              if f.name not in ("areas", "basemap", "proposals", "standards_by_unit")}
    areas = {code: convert_frame(gdf, crs) for code, gdf in (layers.areas or {}).items()}
    return replace(layers, areas=areas, **frames)


def _overlays(layers: MapLayers, profile: Profile, lang: str) -> list[folium.FeatureGroup]:
    """The overlays but the proposals, bottom first: units, scorecard, gaps, capacity short, service
    areas, facilities, service points."""
    groups = []
    if layers.units is not None and len(layers.units):
        groups.append(units_layer(layers.units, lang=lang, profile=profile))
    if layers.scorecard is not None and len(layers.scorecard):
        groups.append(scorecard_layer(layers.scorecard, by_unit=layers.standards_by_unit, lang=lang))
    groups += _gap_layers(layers.gaps, profile, lang)
    groups += short_layers(layers.capacity_short, profile, lang=lang, prefer=_shown_gaps(layers.gaps, profile))
    areas = layers.areas or {}
    groups += [service_area_layer(areas[tier.code], tier, lang=lang) for tier in profile.tiers
               if areas.get(tier.code) is not None]
    groups += facility_area_layers(layers.facility_areas, profile, lang=lang)
    if layers.facilities is not None and len(layers.facilities):
        groups += facilities_layer(layers.facilities, profile, lang=lang)
    if layers.services is not None and len(layers.services):
        groups += service_layers(layers.services, lang=lang)
    return groups


def save_map(m: folium.Map, path: str | Path, *, online: bool = False) -> Path:
    """Write a map page atomically: self-contained (Leaflet inlined, nothing loaded but tiles)
    unless ``online`` (Leaflet from its CDN: a smaller file that needs the internet).

    Returns
    -------
    Path
        The page written.

    """
    page = m.get_root().render()
    return write_text(Path(path), page if online else inline_assets(page))


def _gap_tiers(gaps: gpd.GeoDataFrame | None, profile: Profile) -> list:
    """The profile's tiers that have gap hexagons, in order."""
    if gaps is None or not len(gaps) or "tier" not in gaps:
        return []
    present = set(gaps["tier"].astype(str))
    return [tr for tr in profile.tiers if tr.code in present]


def _shown_gaps(gaps: gpd.GeoDataFrame | None, profile: Profile) -> str | None:
    """The tier whose gap layer is on when the page opens: the lowest with gaps."""
    tiers = _gap_tiers(gaps, profile)
    return tiers[-1].code if tiers else None


def _gap_layers(gaps: gpd.GeoDataFrame | None, profile: Profile, lang: str) -> list[folium.FeatureGroup]:
    """One gap layer per tier present, the lowest tier's shown; one layer for untagged hexagons."""
    if gaps is None or not len(gaps):
        return []
    if "tier" not in gaps:
        return [gaps_layer(gaps, lang=lang)]  # hexagons of one tier that does not say which
    shown = _shown_gaps(gaps, profile)
    return [gaps_layer(gaps[gaps["tier"].astype(str) == tier.code], lang=lang, tier=tier,
                       show=tier.code == shown) for tier in _gap_tiers(gaps, profile)]


def _read_csv(path: Path, **kwargs) -> pd.DataFrame | None:
    # read_csv removes the quote write_csv puts before formula-like names: popups show them as given.
    return read_csv(path, **kwargs) if path.exists() else None


def _read_areas(path: Path, profile: Profile) -> dict[str, gpd.GeoDataFrame]:
    """Dissolved service areas per tier: a layer named by the tier code, else any layer with a
    ``tier`` column and no per-facility column."""
    import pyogrio

    if not path.exists():
        return {}
    layers = [str(n) for n, _ in pyogrio.list_layers(path)]
    codes = {tr.code for tr in profile.tiers}
    areas = {n: gpd.read_file(path, layer=n) for n in layers if n in codes}
    for name in layers:
        fields = set(pyogrio.read_info(path, layer=name)["fields"])
        if name not in codes and "tier" in fields and not fields & {"facility", "facility_id", "id"}:
            gdf = gpd.read_file(path, layer=name)
            areas.update({code: g for code, g in gdf.groupby(gdf["tier"].astype(str)) if code in codes
                          and code not in areas})
    return areas


def _read_gaps(path: Path) -> gpd.GeoDataFrame | None:
    import pyogrio

    if not path.exists():
        return None
    frames = [gpd.read_file(path, layer=n) for n, _ in pyogrio.list_layers(path)]
    frames = [f.to_crs(4326) for f in frames if len(f) and "tier" in f and "uncovered_pop" in f]
    gaps = pd.concat(frames, ignore_index=True) if frames else None
    return gaps[gaps["uncovered_pop"] > 0] if gaps is not None else None


def draw_run_map(run_dir: str | Path, *, out: str | Path | None = None, **options) -> Path:
    """(Re)draw ``map.html`` from a run folder's files, atomically.

    Parameters
    ----------
    run_dir
        A folder written by ``circles coverage``, ``isochrones``, ``site``, ``demo`` or ``audit``.
        Every file but ``manifest.json`` is optional: the map shows what the folder has, on the
        basemap of its ``basemap.gpkg``.
    out
        Where to write (default ``run_dir/map.html``).
    **options
        The page's options (:class:`MapPage`): ``lang`` (default: the profile's), ``tiles``,
        ``tiles_key`` (default: ``TIANDITU_KEY``), ``tiles_crs``, ``basemap``, ``online``,
        ``facility_areas`` (each facility's area: ``True`` however many, ``False`` none; default
        for up to :data:`~circles.outputs.map_facility_areas.MAP_FACILITY_AREAS_MAX`);
        ``offline=True`` is ``online=False``. Those not given (or ``None``) are the run's own:
        its command's ``--tiles``, ``--tiles-crs``, ``--online`` and ``--basemap``, or its audit
        city's keys, else the defaults (self-contained, no tiles, the basemap).

    Returns
    -------
    Path
        The page written.

    Raises
    ------
    CirclesError
        A folder that is not a run folder, an unknown language or tiles, Tianditu without a key.

    """
    run = Path(run_dir)
    manifest = read_run_manifest(run)  # refuses a missing, unfinished, running or corrupt run
    profile = get_profile(manifest.get("profile") or manifest.get("parameters", {}).get("profile"))
    page = _run_page(manifest, options, profile)
    layers = _run_layers(run, profile, manifest, facility_areas=page.facility_areas)
    m = coverage_map(profile=profile, layers=layers, page=replace(page, title=_run_title(run, manifest, profile, page.lang)))
    return save_map(m, Path(out) if out else run / "map.html", online=page.online)


def _run_page(manifest: dict, options: dict, profile: Profile) -> MapPage:
    """The page of a run's map: the options given, else the run's parameters, else the defaults."""
    unknown = set(options) - ({f.name for f in fields(MapPage)} - {"bounds", "title"})
    if unknown:
        raise TypeError(f"draw_run_map() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    params = manifest.get("parameters") or {}
    given = {k: v for k, v in options.items() if v is not None and k != "offline"}
    if options.get("offline") and "online" not in given:
        given["online"] = False  # self-contained, whatever the run asked
    own = {k: params[k] for k in _RUN_PAGE_OPTIONS if params.get(k) is not None}
    page = MapPage(**{**own, **given})
    lang = page.lang if "lang" in given else profile.lang
    if lang not in LANGS:
        raise CirclesError(f"unknown map language {lang!r}", field="lang", fix="use zh or en")
    return replace(page, lang=lang, online=bool(page.online))


def _run_layers(run: Path, profile: Profile, manifest: dict, *, facility_areas: bool | None = None) -> MapLayers:
    """The layers a run folder has files for (the per-facility areas only when the page draws them)."""
    import pyogrio

    facilities = _read_csv(run / "facilities.csv")
    if facilities is not None and "status" in facilities:
        facilities = facilities[facilities["status"] == "ok"]
    services = None
    if (run / "service_points.gpkg").exists() and "service_points" in \
            {str(n) for n, _ in pyogrio.list_layers(run / "service_points.gpkg")}:
        services = gpd.read_file(run / "service_points.gpkg", layer="service_points")
    units, levels = _read_units(run)
    return MapLayers(areas=_read_areas(run / "isochrones.gpkg", profile), facilities=facilities,
                     gaps=_read_gaps(run / "gaps.gpkg"), proposals=_read_csv(run / "proposals.csv"),
                     units=units, services=services, scorecard=_read_scorecard(run, manifest, levels),
                     standards_by_unit=_read_csv(run / "standards_by_unit.csv", dtype={"unit": str}),
                     capacity_short=read_capacity_short(run / "capacity_short.gpkg"),
                     basemap=read_basemap(run / "basemap.gpkg", styles=_basemap_styles(manifest)),
                     facility_areas=read_facility_areas(run / "isochrones.gpkg", facilities, wanted=facility_areas))


def _basemap_styles(manifest: dict) -> list[str] | None:
    """The basemap styles the page will draw, from the vertices the run counted (a city's streets
    past the page's budget are not read back at all); ``None`` (read all) for an older run."""
    vertices = (manifest.get("basemap") or {}).get("vertices")
    return page_styles(vertices) if isinstance(vertices, dict) else None


def _read_units(run: Path) -> tuple[gpd.GeoDataFrame | None, list[gpd.GeoDataFrame]]:
    """The finest units (layer ``units``; an earlier run's only layer) and every level's layer."""
    import pyogrio

    path = run / "units.gpkg"
    if not path.exists():
        return None, []
    layers = {str(n): gpd.read_file(path, layer=str(n)) for n, _ in pyogrio.list_layers(path)}
    return layers.get("units", next(iter(layers.values()))), list(layers.values())


def _input_units(manifest: dict) -> list[gpd.GeoDataFrame]:
    """Every level of the units files the manifest names (``units``, ``units_2``...), read as the run did."""
    paths = [Path(str(v.get("path", ""))) for k, v in manifest.get("inputs", {}).items()
             if k == "units" or k.startswith("units_")]
    if not paths or not all(p.is_file() for p in paths):
        return []
    frames = [gpd.read_file(p) for p in paths]
    levels = unit_levels(frames if len(frames) > 1 else frames[0],
                         unit_column=manifest.get("parameters", {}).get("unit_column"))
    return [level.polygons.assign(level=level.name) for level in levels]


def _read_scorecard(run: Path, manifest: dict, levels: list[gpd.GeoDataFrame]) -> gpd.GeoDataFrame | None:
    """The communities of ``scorecard.csv`` on their polygons: the run's ``units.gpkg`` (every
    level), else the units files the manifest names; a unit drawn as several rows keeps each."""
    card = _read_csv(run / "scorecard.csv", dtype={"unit": str})
    if card is None:
        return None
    levels = [g for g in levels or _input_units(manifest) if "unit" in g]
    if not levels:
        return None
    units = gpd.GeoDataFrame(pd.concat(levels, ignore_index=True), crs=levels[0].crs)
    on = [c for c in ("level", "unit") if c in units.columns and c in card.columns]
    shapes = units[[*on, units.geometry.name]].astype(dict.fromkeys(on, str))
    return shapes.merge(card.astype(dict.fromkeys(on, str)), on=on, how="inner")


def _run_title(run: Path, manifest: dict, profile: Profile, lang: str) -> str:
    """The map's title: what it shows, the profile, the run's date and folder, an estimate's note."""
    parts = [t("title", lang), f"{t('profile', lang)}: {localized(profile, 'title', lang)}",
             f"{t('date', lang)}: {str(manifest.get('created', ''))[:10]}", run.resolve().name]
    if manifest.get("population", {}).get("is_estimate"):
        parts.append(t("estimate", lang))
    return " · ".join(parts)


def result_map(result, *, isochrones: dict | None = None, gaps: gpd.GeoDataFrame | None = None,
               proposals: pd.DataFrame | None = None, capacity_short: gpd.GeoDataFrame | None = None,
               provision=None, basemap: dict | bool | None = None, **page) -> folium.Map:
    """The coverage map of an in-memory :class:`circles.coverage.CoverageResult` (notebooks).

    Parameters
    ----------
    result
        The coverage result.
    isochrones
        Layers from :func:`circles.pipeline.isochrone_layers` (WGS-84).
    gaps
        Gap hexagons (:func:`circles.gaps.gap_hexagons`): a layer per tier.
    proposals
        Proposed sites (``rank``, ``lon``, ``lat``, ``tier``, ``new_covered_pop``...).
    capacity_short
        Capacity-short hexagons (``tier``, ``covered_unserved_pop``, ``served_pop``,
        ``population``): a layer per tier. Default: ``result.extras["capacity_short"]``, else
        made from ``provision``.
    provision
        A :class:`circles.engine.provision_tiers.ProvisionResult` (default:
        ``result.extras["provision"]``): the facilities' popups gain capacity, people assigned
        and utilisation.
    basemap
        The basemap's layers (:func:`circles.outputs.basemap.basemap_layers`, with the extract's
        water, green areas and buildings), ``False`` for none; default: the streets of
        ``result.network``.
    **page
        The fields of :class:`MapPage`: ``lang`` (default: the profile's), ``tiles``,
        ``tiles_key``, ``tiles_crs``, ``title``, ``bounds``. Write the page with :func:`save_map`.

    Returns
    -------
    folium.Map

    """
    profile = result.profile
    page["lang"] = page.get("lang") or profile.lang
    page["title"] = page.get("title") or t("title", page["lang"])
    prov = provision if provision is not None else result.extras.get("provision")
    fac = result.facility_table()
    if prov is not None and "capacity_pop" not in fac:
        fac = fac.join(prov.facility_columns())
    fac = fac[fac["status"] == "ok"]
    if gaps is not None and len(gaps):
        gaps = gaps[gaps["uncovered_pop"] > 0]
    short = capacity_short if capacity_short is not None else result.extras.get("capacity_short")
    if short is None and prov is not None:
        from ..engine.gaps import short_hexagons  # the run's capacity_short.gpkg, in memory

        short = short_hexagons(result, prov)
    if basemap is None:
        basemap = {"streets": street_lines(result.network)}
    own = (isochrones or {}).get("facilities")
    if own is not None and "name" not in own:  # row ``facility`` of the result's facilities
        names = result.facilities["name"].fillna("").astype(str).to_numpy() if "name" in result.facilities \
            else np.full(len(result.facilities), "", dtype=object)
        own = own.assign(name=names[own["facility"].to_numpy(int)])
    return coverage_map(profile=profile, areas=isochrones or {}, facilities=fac, gaps=gaps, proposals=proposals,
                        capacity_short=short, basemap=basemap or None, facility_areas=own, **page)
