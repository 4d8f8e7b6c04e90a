"""Facility tables: reading, validating and attaching tiered service complexes to the network.

Every problem in a table is reported at once (row, column, value, what is wrong, what to do).
Facilities outside the network's area or beyond the snap cap are not errors: they keep a
``status`` (``outside_area``, ``off_network``) and stay in the output, left out of routing.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from ..errors import DataError, ValidationError
from .profiles import Profile, get_profile
from .tables import find_column, first_row, match_column, read_table, table_points

__all__ = ["FUNCTION_HEADERS", "facilities_from_frame", "from_osm", "read_facilities", "split_functions"]

_OUT = ["facility_id", "name", "tier", "tier_name", "floor_area_m2", "households_capacity",
        "capacity_pop", "status", "source_row"]
# The numeric columns, with the unit a fix names.
_NUMBERS = {"floor_area_m2": "square metres", "households_capacity": "households",
            "capacity_pop": "people"}
# The headers of the column listing what a complex offers, first found wins.
FUNCTION_HEADERS = ("functions", "服务功能")  # 功能 alone already names the services column
_FUNCTION_SEPARATORS = re.compile(r"[;；、,，]")


def read_facilities(path: str | Path, *, profile: Profile | str | None = None, crs: str = "wgs84",
                    layer: str | None = None) -> gpd.GeoDataFrame:
    """Read and validate a facility table.

    Parameters
    ----------
    path
        CSV (UTF-8 or GBK), Excel, GeoJSON, GeoPackage or Shapefile. Columns: name, tier (code,
        Chinese name such as 社区级, or minutes), lon/lat or x/y or a geometry, optional
        floor_area_m2, households_capacity, capacity_pop (服务人口: people it can serve), id,
        services, functions (服务功能: what the
        complex offers, separated by ``;``, ``；``, ``、``, ``,`` or ``，``); Chinese headers (名称,
        级别/等级, 经度, 纬度, 面积) are recognised. Polygon footprints are kept (column ``footprint``), so
        that placing them on a network (:func:`circles.engine.placement.attach`) connects them where
        their boundary comes nearest a street, unless ``entrance_lon``/``entrance_lat``
        (入口经度/入口纬度) give the entrance.
    profile
        Resolves tier names (default ``deyang``).
    crs
        Coordinates of the table: ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09`` or ``EPSG:code``;
        a geometry file's own CRS wins.
    layer
        Layer or sheet name.

    Returns
    -------
    geopandas.GeoDataFrame
        WGS-84 points with ``facility_id``, ``name``, ``tier``, ``tier_name``, ``floor_area_m2``,
        ``households_capacity``, ``capacity_pop``, ``status``, ``source_row`` (the row as the spreadsheet shows
        it: header = row 1; a GIS layer's features count from 1) and the table's other columns;
        with a functions column also ``functions``, its names as written joined by ``"; "``
        (:func:`split_functions`).

    Raises
    ------
    ValidationError
        Listing every problem of the table at once.

    """
    df = read_table(path, layer=layer, what="facility table")
    return facilities_from_frame(df, profile=profile, crs=crs, file=path)


def facilities_from_frame(df: pd.DataFrame, *, profile: Profile | str | None = None,
                          crs: str = "wgs84", file: str | Path | None = None) -> gpd.GeoDataFrame:
    """Validate a facility table already in memory (see :func:`read_facilities`)."""
    profile = get_profile(profile)
    if len(df) == 0:
        raise ValidationError([dict(row=None, field=None, value=None, problem="the table is empty",
                                    fix="add one row per facility")], file=file)
    cols = {f: find_column(df.columns, f) for f in ("id", "name", "tier", *_NUMBERS)}
    first = first_row(df)  # the spreadsheet row of position 0, kept before pandas may drop attrs
    df = df.reset_index(drop=True)
    lon, lat, problems = table_points(df, crs=crs, file=file)
    lon, lat, given = _entrance_columns(df, lon, lat, crs)
    footprints = _footprints(df, _polygon_rows(df) & ~given)
    tiers, tier_problems = _tier_codes(df, cols["tier"], profile, first)
    ids, id_problems = _ids(df, cols["id"], first)
    numbers, number_problems = _numbers(df, cols, first)
    problems = [*tier_problems, *problems, *id_problems, *number_problems]
    if problems:
        raise ValidationError(sorted(problems, key=lambda p: (p["row"] or 0)), file=file)
    tier_names = {t.code: t.name_zh for t in profile.tiers}
    out = pd.DataFrame({"facility_id": ids.to_numpy(), "name": _names(df, cols["name"], ids), "tier": tiers,
                        "tier_name": [tier_names[t] for t in tiers], **numbers,
                        "status": "ok", "source_row": np.arange(first, first + len(df))})
    used = {c for c in cols.values() if c} | {"geometry", "footprint"} | set(_OUT)
    for col in df.columns:
        if col not in used and find_column([col], "lon") is None and find_column([col], "lat") is None:
            out[str(col)] = df[col].to_numpy()
    if find_column(df.columns, "services") and "services" not in out.columns:
        out["services"] = df[find_column(df.columns, "services")].to_numpy()
    functions = match_column(df.columns, FUNCTION_HEADERS)
    if functions is not None:
        out["functions"] = ["; ".join(split_functions(v)) for v in df[functions].tolist()]
    if footprints is not None:
        out["footprint"] = footprints
    gdf = gpd.GeoDataFrame(out, geometry=shapely.points(lon, lat), crs=4326)
    gdf.attrs["file"] = None if file is None else str(file)
    return gdf


def split_functions(value: object) -> list[str]:
    """The functions one cell of a ``functions`` column lists.

    Parameters
    ----------
    value
        A cell: names separated by ``;``, ``；``, ``、``, ``,`` or ``，``; empty or missing for none.

    Returns
    -------
    list of str
        The names as written, stripped of spaces, each once, in the cell's order.

    """
    if not isinstance(value, str):
        if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
            return []
        value = str(value)
    names: list[str] = []
    for part in _FUNCTION_SEPARATORS.split(value):
        name = part.strip()
        if name and name not in names:
            names.append(name)
    return names


def _tier_codes(df: pd.DataFrame, col: str | None, profile: Profile, first: int
                ) -> tuple[np.ndarray, list[dict]]:
    """Each row's tier code, and a problem for each row without a known tier."""
    tiers = np.full(len(df), None, dtype=object)
    if col is None:
        return tiers, [dict(row=None, field="tier", value=None,
                            problem=f"no tier column (found: {', '.join(map(str, df.columns))})",
                            fix="add a 'tier' (级别) column: district/community/station, 片区级/社区级/驿站级 or minutes")]
    problems = []
    for i, raw in enumerate(df[col].tolist()):
        if _blank(raw):
            problems.append(dict(row=first + i, field=col, value=None, problem="no tier",
                                 fix="give the tier: " + ", ".join(t.code for t in profile.tiers)))
            continue
        try:
            tiers[i] = profile.tier(raw).code
        except DataError:
            problems.append(dict(row=first + i, field=col, value=raw, problem="unknown tier",
                                 fix="use one of: " + "; ".join(
                                     f"{t.code} / {t.name_zh} / {profile.threshold_minutes(t):g}"
                                     for t in profile.tiers)))
    return tiers, problems


def _blank(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def _ids(df: pd.DataFrame, col: str | None, first: int) -> tuple[pd.Series, list[dict]]:
    """The facility ids (``F0001``... without a column), and a problem for each duplicate."""
    ids = (df[col].astype(str).str.strip() if col else
           pd.Series([f"F{i + 1:04d}" for i in range(len(df))]))
    return ids, [dict(row=first + int(i), field=col, value=ids.iloc[i], problem="duplicate id",
                      fix="give every facility its own id")
                 for i in np.flatnonzero(ids.duplicated(keep=False).to_numpy())]


def _names(df: pd.DataFrame, col: str | None, ids: pd.Series) -> np.ndarray:
    """The names; an empty name is the facility's id, so every facility can be told apart."""
    if col is None:
        return ids.to_numpy()
    names = np.array([None if _blank(v) else str(v) for v in df[col].tolist()], dtype=object)
    return np.where(pd.isna(names), ids.to_numpy(), names)


def _numbers(df: pd.DataFrame, cols: dict, first: int) -> tuple[dict, list[dict]]:
    """Floor area and households capacity as floats (NaN when empty); a problem for each bad value."""
    numbers, problems = {}, []
    for field in _NUMBERS:
        col = cols[field]
        if col is None:
            numbers[field] = np.full(len(df), np.nan)
            continue
        raw = df[col]
        vals = pd.to_numeric(raw, errors="coerce").to_numpy(float)
        bad = (raw.notna() & raw.astype(str).str.strip().ne("")).to_numpy() & ~np.isfinite(vals)
        bad |= np.isfinite(vals) & (vals < 0)
        problems += [dict(row=first + int(i), field=col, value=raw.iloc[i], problem="not a non-negative number",
                          fix=f"give {_NUMBERS[field]} as a number, or leave it empty")
                     for i in np.flatnonzero(bad)]
        numbers[field] = vals
    return numbers, problems


_ENTRANCE = (("entrance_lon", "入口经度"), ("entrance_lat", "入口纬度"))


def _entrance_columns(df: pd.DataFrame, lon: np.ndarray, lat: np.ndarray, crs: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A facility's entrance, where the table gives one, is where it meets the street; the third
    array says where one was given."""
    cx = next((c for c in df.columns if str(c).lower() in _ENTRANCE[0]), None)
    cy = next((c for c in df.columns if str(c).lower() in _ENTRANCE[1]), None)
    if cx is None or cy is None:
        return lon, lat, np.zeros(len(df), dtype=bool)
    ex = pd.to_numeric(df[cx], errors="coerce").to_numpy(float)
    ey = pd.to_numeric(df[cy], errors="coerce").to_numpy(float)
    has = np.isfinite(ex) & np.isfinite(ey)
    if has.any():
        from .crs import to_wgs84

        lon, lat = lon.copy(), lat.copy()
        lon[has], lat[has] = to_wgs84(ex[has], ey[has], crs)
    return lon, lat, has


def _polygon_rows(df: pd.DataFrame) -> np.ndarray:
    if not isinstance(df, gpd.GeoDataFrame) or df.geometry is None:
        return np.zeros(len(df), dtype=bool)
    kinds = shapely.get_type_id(df.geometry.to_numpy())
    return np.isin(kinds, (3, 6))  # Polygon, MultiPolygon


def _footprints(df: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """The footprint polygons (WGS-84) of ``rows``, ``None`` elsewhere; ``None`` when there are none."""
    if not rows.any():
        return None
    geom = df.geometry if df.geometry.crs is not None else df.geometry.set_crs(4326)
    out = np.full(len(df), None, dtype=object)
    out[rows] = geom[rows].to_crs(4326).to_numpy()
    return out


def from_osm(source: str | Path, profile: Profile | str | None = None) -> gpd.GeoDataFrame:
    """Tiered facilities from an OSM extract, by the profile's tag mapping.

    Parameters
    ----------
    source
        An OSM extract.
    profile
        Its ``osm_tags`` say which tags make a facility of which tier (a feature matching several
        tiers takes the highest).

    Returns
    -------
    geopandas.GeoDataFrame
        Same columns as :func:`read_facilities` (without network attachment); footprint polygons
        become their representative point, with ``floor_area_m2`` from footprint × levels.

    """
    from .osm import read_osm_features

    profile = get_profile(profile)
    frames = []
    for tier in sorted(profile.tiers, key=lambda t: t.rank):  # low first: higher tiers overwrite
        tags = profile.osm_tags.get(tier.code)
        if not tags:
            continue
        pois = read_osm_features(source, kind="pois", custom_filter=tags)
        if not len(pois):
            continue
        keep = np.zeros(len(pois), dtype=bool)
        for key, values in tags.items():
            if key in pois.columns:
                keep |= pois[key].isin(values).to_numpy()
        pois = pois[keep]
        if len(pois):
            frames.append(pois.assign(tier=tier.code))
    if not frames:
        raise DataError("the extract has no feature matching the profile's OSM tags", file=source,
                        fix="give a facility table instead, or extend the profile's osm_tags")
    pois = pd.concat(frames, ignore_index=True)
    pois["osm_key"] = pois.get("osm_type", "").astype(str) + "/" + pois["id"].astype(str)
    pois = pois.drop_duplicates("osm_key", keep="last").reset_index(drop=True)
    geom = gpd.GeoSeries(pois.geometry, crs=4326)
    local = geom.to_crs(geom.estimate_utm_crs())
    levels = pd.to_numeric(pois.get("building:levels"), errors="coerce") if "building:levels" in pois else None
    area = np.where(shapely.get_type_id(local.to_numpy()) >= 3, local.area.to_numpy(), np.nan)
    if levels is not None:
        area = area * levels.fillna(1).to_numpy()
    name = pois["name"].fillna("") if "name" in pois else pd.Series([""] * len(pois))
    if "tags" in pois:
        zh = pois["tags"].astype(str).str.extract(r'"name:zh"\s*:\s*"([^"]+)"')[0]
        name = name.where(name != "", zh.fillna(""))
    name = name.where(name != "", "OSM " + pois["osm_key"])
    df = pd.DataFrame({"id": pois["osm_key"], "name": name, "tier": pois["tier"],
                       "floor_area_m2": np.round(area, 1)})
    gdf = gpd.GeoDataFrame(df, geometry=shapely.point_on_surface(geom.to_numpy()), crs=4326)
    return facilities_from_frame(gdf, profile=profile, file=source)
