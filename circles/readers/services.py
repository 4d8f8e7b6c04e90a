"""The service mix: which services each resident can reach, category by category.

A catalogue of categories (code, names, threshold, OSM tags, the population group it serves,
whether the life-circle score requires it, where the number comes from); service points from a
facility table's ``services`` column, a table of points, or OSM; per-category walking access with
one multi-source pass per category; tables, the life-circle score and what is missing where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml

from ..errors import DataError, ProfileError, ValidationError
from .profiles import Profile, get_profile
from .tables import find_column, read_table, table_points

__all__ = ["Category", "builtin_catalogue", "load_catalogue", "parse_services", "service_points"]

_SEPARATORS = re.compile(r"[;；,，、|/]+")


@dataclass(frozen=True)
class Category:
    """One service category; ``minutes``, ``metres`` or ``tier`` gives its threshold.

    A category the standards give no radius of names the ``tier`` of the profile it belongs to and
    takes that tier's threshold (:meth:`for_profile`), so the profile is the one place a tier's
    minutes are set.
    """

    code: str
    name_zh: str
    name_en: str
    minutes: float | None = None
    metres: float | None = None
    osm_tags: dict = field(default_factory=dict)
    group: str | None = None
    required: bool = True
    aliases: tuple[str, ...] = ()
    source: str = ""
    tier: str | None = None

    def threshold_metres(self, metres_per_minute: float) -> float:
        """The threshold as network metres."""
        if self.metres is None and self.minutes is None:
            raise ProfileError(f"category {self.code!r} takes the threshold of tier {self.tier!r}, "
                               "which no profile has given it yet", field="tier",
                               fix="load the catalogue with its profile: load_catalogue(..., profile=...)")
        return float(self.metres) if self.metres is not None else float(self.minutes) * metres_per_minute

    def for_profile(self, profile: Profile) -> Category:
        """The category with its tier's threshold in ``profile`` (unchanged when it has its own)."""
        if self.tier is None or self.minutes is not None or self.metres is not None:
            return self
        tier = profile.tier(self.tier)
        if tier.minutes is not None:
            return replace(self, minutes=profile.threshold_minutes(tier),
                           source=f"{self.source}: {tier.code} tier of {profile.name}, "
                                  f"{profile.threshold_minutes(tier):g} min")
        return replace(self, metres=profile.threshold_metres(tier),
                       source=f"{self.source}: {tier.code} tier of {profile.name}, "
                              f"{profile.threshold_metres(tier):g} m")


_GB = "GB 50180-2018 facility table: service radius"
_TIER = "GB 50180-2018 Appendix B places it in the {} circle; no radius is published, so the threshold of that tier"
_BUILTIN = [
    Category("kindergarten", "幼儿园", "kindergarten / nursery", metres=300,
             osm_tags={"amenity": ["kindergarten", "childcare"]}, group="children",
             aliases=("托儿所", "幼儿园/托儿所", "nursery", "托育"), source=f"{_GB} <= 300 m"),
    Category("primary_school", "小学", "primary school", metres=500, osm_tags={"amenity": ["school"]},
             group="school_age", source=f"{_GB} <= 500 m"),
    Category("middle_school", "中学", "middle school", metres=1000, osm_tags={"amenity": ["school"]},
             group="school_age", aliases=("初中",), source=f"{_GB} <= 1000 m"),
    Category("health", "社区卫生服务站", "community health station", tier="station",
             osm_tags={"amenity": ["clinic", "doctors", "hospital"], "healthcare": ["clinic", "centre"]},
             aliases=("社区卫生服务中心", "卫生服务站", "卫生站", "clinic"), source=_TIER.format("five-minute")),
    Category("elderly_care", "日间照料中心", "elderly day care", tier="station",
             osm_tags={"amenity": ["social_facility"], "social_facility": ["day_care", "nursing_home"]},
             group="elderly", aliases=("日间照料", "养老服务", "养老", "老年服务"),
             source=_TIER.format("five-minute")),
    Category("market", "菜市场", "market / fresh food", tier="community",
             osm_tags={"amenity": ["marketplace"], "shop": ["greengrocer", "supermarket"]},
             aliases=("生鲜超市", "农贸市场", "市场"), source=_TIER.format("ten-minute")),
    Category("community_service", "社区服务站", "community service station", tier="station",
             osm_tags={"amenity": ["community_centre", "townhall"], "office": ["government"]},
             aliases=("党群服务中心", "社区服务中心", "便民服务"), source=_TIER.format("five-minute")),
    Category("culture_sport", "文化活动站", "culture and sport", tier="station",
             osm_tags={"leisure": ["fitness_centre", "sports_centre", "fitness_station", "pitch"],
                       "amenity": ["library", "arts_centre"]},
             aliases=("健身场地", "文体活动", "文化站"), source=_TIER.format("five-minute")),
    Category("canteen", "社区食堂", "community canteen", tier="station",
             osm_tags={"amenity": ["canteen", "food_court"]}, required=False,
             aliases=("长者食堂", "食堂"), source=_TIER.format("five-minute") + "; optional in the score"),
]
_FIELDS = set(Category.__dataclass_fields__)


def builtin_catalogue(*, profile: Profile | str | None = None) -> list[Category]:
    """The built-in catalogue (codes are a stable contract), its tier-named thresholds taken from
    ``profile`` (default ``deyang``)."""
    return _for_profile(list(_BUILTIN), profile)


def load_catalogue(source: str | Path | list | dict | None = None, *,
                   profile: Profile | str | None = None) -> list[Category]:
    """A catalogue from YAML, an Excel sheet, a profile's ``services`` config, or the built-in.

    A YAML file holds ``categories:`` (a list of mappings with the fields of :class:`Category`);
    ``extends: builtin`` starts from the built-in catalogue. An Excel sheet has one row per
    category with those columns.
    """
    if source is None or (isinstance(source, dict | list) and not source):
        return builtin_catalogue(profile=profile)
    file = None
    if isinstance(source, str | Path):
        file = Path(source)
        if file.suffix.lower() in (".xlsx", ".xls"):
            rows = read_table(file, what="service catalogue").to_dict(orient="records")
            data = {"categories": [{k: v for k, v in r.items() if pd.notna(v)} for r in rows]}
        else:
            try:
                data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            except (OSError, yaml.YAMLError) as err:
                raise DataError(f"cannot read the catalogue ({err})", file=file,
                                fix="give a YAML file with 'categories:' or an Excel sheet") from err
    else:
        data = source if isinstance(source, dict) else {"categories": source}
    base = {c.code: c for c in _BUILTIN} if data.get("extends") else {}
    for i, raw in enumerate(data.get("categories") or [], start=1):
        if not isinstance(raw, dict) or not raw.get("code"):
            raise DataError("a category needs a code", file=file, row=i, field="code",
                            fix="give each category a code, e.g. code: kindergarten")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise DataError(f"unknown keys {sorted(unknown)}", file=file, row=i, field=sorted(unknown)[0],
                            fix=f"use {', '.join(sorted(_FIELDS))}")
        item = {**(base[raw["code"]].__dict__ if raw["code"] in base else {}), **raw}
        if sum(item.get(k) is not None for k in ("minutes", "metres", "tier")) != 1:
            raise DataError("a category needs exactly one of minutes, metres or tier", file=file, row=i,
                            field=str(raw["code"]), fix="give minutes: 10, metres: 500 or tier: station")
        if isinstance(item.get("aliases"), str):
            item["aliases"] = tuple(a.strip() for a in _SEPARATORS.split(item["aliases"]) if a.strip())
        item.setdefault("name_zh", item["code"])
        item.setdefault("name_en", item["code"])
        item["aliases"] = tuple(item.get("aliases") or ())
        base[item["code"]] = Category(**item)
    if not base:
        raise DataError("the catalogue has no category", file=file, fix="list categories under 'categories:'")
    return _for_profile(list(base.values()), profile)


def _for_profile(catalogue: list[Category], profile: Profile | str | None) -> list[Category]:
    """The catalogue with each tier-named threshold taken from ``profile`` (default ``deyang``)."""
    resolved = get_profile(profile)
    try:
        return [c.for_profile(resolved) for c in catalogue]
    except DataError as err:
        raise DataError(f"a category names a tier the profile '{resolved.name}' does not have ({err.message})",
                        field="tier", fix="use one of: " + ", ".join(t.code for t in resolved.tiers)) from err


def _resolver(catalogue: list[Category]) -> dict[str, str]:
    names = {}
    for c in catalogue:
        for n in (c.code, c.name_zh, c.name_en, *c.aliases):
            names[str(n).strip().lower()] = c.code
    return names


def parse_services(values: pd.Series, catalogue: list[Category], *, file, field: str) -> list[list[str]]:
    """Category codes of each cell of a services column (codes or Chinese names, `;`/`、`/`,`-separated)."""
    names = _resolver(catalogue)
    out, problems = [], []
    for i, raw in enumerate(values.tolist(), start=1):
        codes = []
        if isinstance(raw, str) and raw.strip():
            for part in _SEPARATORS.split(raw):
                key = part.strip().lower()
                if not key:
                    continue
                if key not in names:
                    problems.append(dict(row=i, field=field, value=part.strip(), problem="unknown service",
                                         fix="use one of: " + ", ".join(f"{c.code} ({c.name_zh})" for c in catalogue)))
                    continue
                codes.append(names[key])
        out.append(sorted(set(codes)))
    if problems:
        raise ValidationError(problems, file=file)
    return out


def service_points(*, facilities: gpd.GeoDataFrame | None = None, table: str | Path | None = None,
                   osm: str | Path | None = None, catalogue: list[Category] | None = None,
                   crs: str = "wgs84", merge_metres: float = 30.0) -> gpd.GeoDataFrame:
    """Points that provide each category (one row per point and category), WGS-84.

    Parameters
    ----------
    facilities
        A facility frame whose ``services`` column lists codes or Chinese names (``;``, ``、``
        or ``,`` separated); each complex provides those categories at its location.
    table
        A table of service points: name, service (服务/类别), lon/lat (经度/纬度) or a geometry.
    osm
        An OSM extract: points matching each category's tags.
    catalogue
        The categories (default: built-in).
    crs
        Coordinates of ``table``.
    merge_metres
        OSM points within this of a table or facility point of the same category are the same
        place: merged (counted in ``attrs["merged"]``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``service``, ``name``, ``source`` (``facility``, ``table``, ``osm``), ``facility_id``.

    """
    catalogue = catalogue or builtin_catalogue()
    frames = []
    if facilities is not None and "services" in facilities.columns:
        own = _from_facilities(facilities, catalogue)
        if own is not None:
            frames.append(own)
    if table is not None:
        frames.append(_from_table(table, catalogue, crs))
    merged = 0
    if osm is not None:
        o = _osm_points(osm, catalogue)
        if frames and len(o):
            o, merged = _drop_near(o, pd.concat(frames, ignore_index=True), merge_metres)
        frames.append(o)
    out = (gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326) if frames else
           gpd.GeoDataFrame({"service": [], "name": [], "source": [], "facility_id": []}, geometry=[], crs=4326))
    out.attrs["merged"] = merged
    return out


def _from_facilities(facilities: gpd.GeoDataFrame, catalogue: list[Category]) -> gpd.GeoDataFrame | None:
    """A row per facility and category its ``services`` cell lists; ``None`` when none lists any."""
    codes = parse_services(facilities["services"], catalogue, file=None, field="services")
    rows = [(i, c) for i, cs in enumerate(codes) for c in cs]
    if not rows:
        return None
    idx = np.array([r[0] for r in rows])
    f = facilities.iloc[idx]
    return gpd.GeoDataFrame({"service": [r[1] for r in rows], "name": f["name"].astype(str).to_numpy(),
                             "source": "facility", "facility_id": f["facility_id"].astype(str).to_numpy()},
                            geometry=f.geometry.to_numpy(), crs=4326)


def _from_table(table: str | Path, catalogue: list[Category], crs: str) -> gpd.GeoDataFrame:
    """A row per point and category of a table of service points."""
    df = read_table(table, what="service points")
    col = find_column(df.columns, "service")
    if col is None:
        raise DataError(f"no service column (found {', '.join(map(str, df.columns))})", file=table,
                        field="service", fix="name it 'service' (服务/类别)")
    codes = parse_services(df[col], catalogue, file=table, field=str(col))
    lon, lat, problems = table_points(df, crs=crs, file=table)
    if problems:
        raise ValidationError(problems, file=table)
    name_col = find_column(df.columns, "name")
    rows = [(i, c) for i, cs in enumerate(codes) for c in cs]
    idx = np.array([r[0] for r in rows], dtype=int)
    return gpd.GeoDataFrame({"service": [r[1] for r in rows],
                             "name": (df[name_col].astype(str).to_numpy()[idx] if name_col else ""),
                             "source": "table", "facility_id": ""},
                            geometry=shapely.points(lon[idx], lat[idx]), crs=4326)


def _osm_points(osm, catalogue: list[Category]) -> gpd.GeoDataFrame:
    from .osm import read_osm_features

    tags: dict[str, set] = {}
    for c in catalogue:
        for k, vs in c.osm_tags.items():
            tags.setdefault(k, set()).update(vs)
    pois = read_osm_features(osm, kind="pois", custom_filter={k: sorted(v) for k, v in tags.items()})
    frames = []
    name = pois["name"].fillna("").astype(str) if "name" in pois else pd.Series([""] * len(pois))
    for c in catalogue:
        hit = np.zeros(len(pois), dtype=bool)
        for k, vs in c.osm_tags.items():
            if k in pois.columns:
                hit |= pois[k].isin(vs).to_numpy()
        if c.code in ("primary_school", "middle_school"):
            # OSM rarely says which school it is; the name usually does (小学 / 中学 / 初中).
            word = ("小学", "primary") if c.code == "primary_school" else ("中学", "初中", "middle")
            hit &= name.str.contains("|".join(word), case=False).to_numpy()
        if hit.any():
            sel = pois[hit]
            frames.append(gpd.GeoDataFrame({"service": c.code, "name": name[hit].to_numpy(), "source": "osm",
                                            "facility_id": ""},
                                           geometry=shapely.point_on_surface(sel.geometry.to_numpy()), crs=4326))
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326) if frames else \
        gpd.GeoDataFrame({"service": [], "name": [], "source": [], "facility_id": []}, geometry=[], crs=4326)


def _drop_near(osm: gpd.GeoDataFrame, own: gpd.GeoDataFrame, metres: float) -> tuple[gpd.GeoDataFrame, int]:
    from scipy.spatial import cKDTree

    crs = own.estimate_utm_crs()
    a, b = osm.to_crs(crs), own.to_crs(crs)
    drop = np.zeros(len(a), dtype=bool)
    for code in set(a["service"]) & set(b["service"]):
        ia = np.flatnonzero(a["service"].to_numpy() == code)
        pb = b[b["service"] == code]
        d, _ = cKDTree(np.column_stack([pb.geometry.x, pb.geometry.y])).query(
            np.column_stack([a.geometry.x.to_numpy()[ia], a.geometry.y.to_numpy()[ia]]))
        drop[ia[d <= metres]] = True
    return osm[~drop].reset_index(drop=True), int(drop.sum())
