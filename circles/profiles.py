"""Profiles: the tiers of service complexes, their thresholds, walking speed, nesting and standards.

Built-in: ``deyang`` (the default: service complexes, 15 / 10 / 5 min, nested), ``gb50180``
(GB 50180-2018 life circles: 1000 / 500 / 300 m of network distance, not nested) and ``tdt1062``
(TD/T 1062-2021 community life circles). Any profile can be written as YAML or TOML, optionally
``extends:`` a built-in, and is validated with errors that name the file and key.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import DataError, ProfileError

__all__ = ["Profile", "Tier", "get_profile", "list_profiles"]


@dataclass(frozen=True)
class Tier:
    """One tier of service complex.

    Attributes
    ----------
    code : str
        Stable code used in tables (``district``, ``community``, ``station``).
    name_zh, name_en : str
        Display names.
    minutes, metres : float or None
        The threshold: exactly one is set; the other follows from the walking speed.
    colour : str
        Hex colour on maps.
    rank : int
        Larger is higher (district > community > station); nesting follows rank.
    population_range, dwellings_range : tuple or None
        The population and dwellings a complex of this tier serves (GB 50180 Table 4.0.1).
    min_floor_area_m2 : float or None
        Minimum floor area of a complex of this tier.
    """

    code: str
    name_zh: str
    name_en: str
    minutes: float | None = None
    metres: float | None = None
    colour: str = "#3388ff"
    rank: int = 0
    population_range: tuple[int, int] | None = None
    dwellings_range: tuple[int, int] | None = None
    min_floor_area_m2: float | None = None


_STANDARDS = {
    "floor_area_m2_per_100_households": 30.0,
    "min_community_space_m2": 300.0,
    "min_complex_floor_area_m2": 600.0,
    "preferred_complex_floor_area_m2": 800.0,
    "workers_per_10000_residents": 18.0,
    "kindergarten_households": 1500.0,
    "primary_school_households": 3000.0,
    "persons_per_household": 2.62,
}
_SOURCES = {
    "floor_area_m2_per_100_households": "community service floor area >= 30 m2 per 100 households "
                                        "(national community service facility standard)",
    "min_community_space_m2": "every urban community's service space >= 300 m2 (Deyang)",
    "min_complex_floor_area_m2": "embedded service complex >= 600 m2, 800 preferred (Deyang)",
    "workers_per_10000_residents": "18 community workers per 10,000 residents",
    "kindergarten_households": "a kindergarten per >= 1,500 households (Baoji)",
    "primary_school_households": "a primary school per >= 3,000 households (Baoji)",
    "persons_per_household": "2.62 persons per household, China's 2020 census",
}
_OSM_TAGS = {
    "district": {"amenity": ["townhall"], "office": ["government"]},
    "community": {"amenity": ["community_centre", "social_facility"]},
    "station": {"amenity": ["social_centre"], "social_facility": ["outreach"]},
}


@dataclass
class Profile:
    """Tiers, walking speed, nesting and indicator standards of one planning framework.

    Attributes
    ----------
    name, title_zh, title_en : str
        Identification.
    tiers : tuple of Tier
        Ordered from the highest tier to the lowest.
    walk_kmh : float
        Walking speed.
    nested : bool
        Whether a higher-tier facility also serves the lower tiers.
    standards : dict
        Indicator numbers (floor area per 100 households, persons per household...).
    osm_tags : dict
        Per tier code, the OSM tags (key -> values) that identify its facilities.
    snap_cap_metres : float
        Beyond this straight walk from a walkable street a point is off-network.
    street_buffer_metres : float
        Width of the street buffer of service-area polygons.
    lang : str
        Default language of maps and reports.
    sources : dict
        Where the numbers come from.
    services : dict
        The service catalogue configuration (interpreted by :mod:`circles.services`).
    """

    name: str
    title_zh: str
    title_en: str
    tiers: tuple[Tier, ...]
    walk_kmh: float = 4.5
    nested: bool = True
    standards: dict[str, float] = field(default_factory=lambda: dict(_STANDARDS))
    osm_tags: dict[str, dict[str, list[str]]] = field(default_factory=lambda: copy.deepcopy(_OSM_TAGS))
    snap_cap_metres: float = 300.0
    street_buffer_metres: float = 30.0
    lang: str = "zh"
    sources: dict[str, str] = field(default_factory=lambda: dict(_SOURCES))
    services: dict = field(default_factory=dict)

    @property
    def metres_per_minute(self) -> float:
        """Walking speed in metres per minute."""
        return self.walk_kmh * 1000.0 / 60.0

    def _tier(self, tier: str | Tier) -> Tier:
        return tier if isinstance(tier, Tier) else self.tier(tier)

    def threshold_metres(self, tier: str | Tier) -> float:
        """A tier's threshold as network metres."""
        t = self._tier(tier)
        return float(t.metres) if t.metres is not None else float(t.minutes) * self.metres_per_minute

    def threshold_minutes(self, tier: str | Tier) -> float:
        """A tier's threshold as walking minutes at the profile's speed."""
        t = self._tier(tier)
        return float(t.minutes) if t.minutes is not None else float(t.metres) / self.metres_per_minute

    def tier(self, key: str | float | int) -> Tier:
        """Resolve a tier from its code, Chinese or English name, or minutes (``5``, ``"5min"``,
        ``"5分钟"``).

        Raises
        ------
        DataError
            An unknown tier, with the list of known ones.
        """
        text = str(key).strip()
        low = text.lower()
        for t in self.tiers:
            if low in (t.code.lower(), t.name_en.lower()) or text == t.name_zh:
                return t
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(?:min|mins|minutes|分钟|分|m|metres|meters|米)?", low)
        if m:
            value = float(m.group(1))
            unit_metres = low.endswith(("m", "metres", "meters", "米")) and not low.endswith(("min",))
            for t in self.tiers:
                if not unit_metres and abs(self.threshold_minutes(t) - value) < 1e-6:
                    return t
                if unit_metres and abs(self.threshold_metres(t) - value) < 1e-6:
                    return t
            if not unit_metres:
                for t in self.tiers:  # a bare number may be metres in a distance-based profile
                    if t.metres is not None and abs(t.metres - value) < 1e-6:
                        return t
        raise DataError(f"unknown tier {key!r}",
                        fix="use one of: " + "; ".join(
                            f"{t.code} / {t.name_zh} / {self.threshold_minutes(t):g} min"
                            for t in self.tiers))

    def eligible(self, tier_code: str) -> list[str]:
        """Tier codes whose facilities count for coverage of ``tier_code``."""
        t = self.tier(tier_code)
        if not self.nested:
            return [t.code]
        return [o.code for o in self.tiers if o.rank >= t.rank]

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON/YAML/TOML-serialisable dict (``None`` values left out)."""
        d = asdict(self)
        d["tiers"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in t.items() if v is not None}
                      for t in d["tiers"]]
        return json.loads(json.dumps(d))

    def to_yaml(self) -> str:
        """The profile as YAML, a file to start a city's own profile from."""
        head = (f"# circles profile '{self.name}': {self.title_en}\n"
                "# Save as my_profile.yaml, edit, and use with --profile my_profile.yaml.\n")
        return head + yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    def to_toml(self) -> str:
        """The profile as TOML."""
        return _toml_dump(self.to_dict())


def _tiers(*rows) -> tuple[Tier, ...]:
    return tuple(Tier(**r) for r in rows)


_BUILTIN: dict[str, Profile] = {
    "deyang": Profile(
        name="deyang", title_zh="城市社区便民服务综合体（德阳）", title_en="Community service complexes (Deyang)",
        tiers=_tiers(
            dict(code="district", name_zh="片区级", name_en="district", minutes=15, colour="#7b3294",
                 rank=3, min_floor_area_m2=800),
            dict(code="community", name_zh="社区级", name_en="community", minutes=10, colour="#2b83ba",
                 rank=2, min_floor_area_m2=600),
            dict(code="station", name_zh="驿站级", name_en="station", minutes=5, colour="#1a9641",
                 rank=1, min_floor_area_m2=300)),
        walk_kmh=4.5, nested=True,
        sources={**_SOURCES, "tiers": "Deyang service complexes: 80 = 8 district (15 min) + 40 "
                                      "community (10 min) + 32 station (5 min); nested",
                 "walk_kmh": "4.5 km/h default walking speed"}),
    "gb50180": Profile(
        name="gb50180", title_zh="城市居住区规划设计标准 GB 50180-2018",
        title_en="Urban residential area planning standard GB 50180-2018",
        tiers=_tiers(
            dict(code="district", name_zh="十五分钟生活圈居住区", name_en="15-minute life circle",
                 metres=1000, colour="#7b3294", rank=3, population_range=(50000, 100000),
                 dwellings_range=(17000, 32000)),
            dict(code="community", name_zh="十分钟生活圈居住区", name_en="10-minute life circle",
                 metres=500, colour="#2b83ba", rank=2, population_range=(15000, 25000),
                 dwellings_range=(5000, 8000)),
            dict(code="station", name_zh="五分钟生活圈居住区", name_en="5-minute life circle",
                 metres=300, colour="#1a9641", rank=1, population_range=(5000, 12000),
                 dwellings_range=(1500, 4000))),
        walk_kmh=4.5, nested=False,
        sources={**_SOURCES, "tiers": "GB 50180-2018 Table 4.0.1: 15-min 800-1000 m, 50,000-100,000 "
                                      "people, 17,000-32,000 dwellings; 10-min 500 m, 15,000-25,000 "
                                      "people, 5,000-8,000 dwellings; 5-min 300 m, 5,000-12,000 "
                                      "people, 1,500-4,000 dwellings; levels stack, not nested",
                 "population_range": "GB 50180-2018 Table 4.0.1"}),
    "tdt1062": Profile(
        name="tdt1062", title_zh="社区生活圈规划技术指南 TD/T 1062-2021",
        title_en="Community life circle planning guide TD/T 1062-2021",
        tiers=_tiers(
            dict(code="district", name_zh="15分钟社区生活圈", name_en="15-minute level", minutes=15,
                 colour="#7b3294", rank=3, population_range=(50000, 100000)),
            dict(code="community", name_zh="10分钟层级", name_en="10-minute level", minutes=10,
                 colour="#2b83ba", rank=2),
            dict(code="station", name_zh="5分钟层级", name_en="5-minute level", minutes=5,
                 colour="#1a9641", rank=1)),
        walk_kmh=4.0, nested=True,
        sources={**_SOURCES, "tiers": "TD/T 1062-2021: a 15-minute level (about 1 km, 50,000-100,000 "
                                      "people) and a 5-10-minute level; the split into 10 and 5 "
                                      "minutes is this profile's choice",
                 "walk_kmh": "4.0 km/h, so that 15 minutes is 1 km as the guide states"}),
}

_TOP_KEYS = {f for f in Profile.__dataclass_fields__} | {"extends"}
_TIER_KEYS = set(Tier.__dataclass_fields__)


def list_profiles() -> list[str]:
    """Names of the built-in profiles."""
    return list(_BUILTIN)


def get_profile(profile: str | Path | Profile | None = None) -> Profile:
    """A built-in profile by name, a profile file (YAML/TOML), or ``None`` for ``deyang``.

    Raises
    ------
    ProfileError
        Unknown name, unreadable file, or invalid contents (naming the file and key).
    """
    if isinstance(profile, Profile):
        return profile
    if profile is None:
        return copy.deepcopy(_BUILTIN["deyang"])
    key = str(profile)
    if key.lower() in _BUILTIN:
        return copy.deepcopy(_BUILTIN[key.lower()])
    path = Path(key)
    if not path.exists():
        raise ProfileError(f"no built-in profile or file named {key!r}",
                           fix=f"use one of {', '.join(_BUILTIN)} or the path of a .yaml/.toml file")
    return _from_file(path)


def _from_file(path: Path) -> Profile:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - YAML and TOML parsers raise their own kinds
        raise ProfileError(f"cannot parse the profile ({err})", file=path,
                           fix="check the file's syntax (circles profiles deyang prints a valid one)") from err
    if not isinstance(data, dict):
        raise ProfileError("a profile file must be a mapping of keys", file=path,
                           fix="start from: circles profiles deyang > my_profile.yaml")
    return _from_dict(data, path)


def _from_dict(data: dict, path: Path | str) -> Profile:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ProfileError(f"unknown key(s) {sorted(unknown)}", file=path, field=sorted(unknown)[0],
                           fix=f"allowed keys: {', '.join(sorted(_TOP_KEYS))}")
    base = get_profile(data["extends"]).to_dict() if data.get("extends") else {}
    merged = {**base, **{k: v for k, v in data.items() if k != "extends"}}
    for key in ("standards", "sources", "osm_tags") if base else ():
        if key in data and isinstance(data[key], dict):
            merged[key] = {**base.get(key, {}), **data[key]}
    for key in ("name", "tiers"):
        if not merged.get(key):
            raise ProfileError(f"the profile has no '{key}'", file=path, field=key,
                               fix="add it, or 'extends: deyang' to start from a built-in profile")
    tiers = []
    seen = set()
    for i, t in enumerate(merged["tiers"], start=1):
        where = f"tiers[{i}]"
        if not isinstance(t, dict):
            raise ProfileError("a tier must be a mapping", file=path, field=where,
                               fix="give code, name_zh, name_en and minutes or metres")
        bad = set(t) - _TIER_KEYS
        if bad:
            raise ProfileError(f"unknown tier key(s) {sorted(bad)}", file=path, field=where,
                               fix=f"allowed: {', '.join(sorted(_TIER_KEYS))}")
        if "code" not in t:
            raise ProfileError("a tier has no code", file=path, field=where, fix="add code: station")
        if (t.get("minutes") is None) == (t.get("metres") is None):
            raise ProfileError("a tier needs exactly one of minutes or metres", file=path,
                               field=f"{where}.{t['code']}", fix="keep minutes: 5 or metres: 300, not both")
        value = t.get("minutes") if t.get("minutes") is not None else t.get("metres")
        if not isinstance(value, int | float) or value <= 0:
            raise ProfileError(f"threshold {value!r} is not a positive number", file=path,
                               field=f"{where}.{t['code']}", fix="give a number such as 5 (minutes) or 300 (metres)")
        if t["code"] in seen:
            raise ProfileError(f"duplicate tier code {t['code']!r}", file=path, field=where,
                               fix="give every tier its own code")
        seen.add(t["code"])
        t = dict(t)
        t.setdefault("name_zh", t["code"])
        t.setdefault("name_en", t["code"])
        t.setdefault("rank", len(merged["tiers"]) - i + 1)
        for rk in ("population_range", "dwellings_range"):
            if t.get(rk) is not None:
                t[rk] = tuple(t[rk])
        tiers.append(Tier(**t))
    speed = merged.get("walk_kmh", 4.5)
    if not isinstance(speed, int | float) or not 1 <= speed <= 10:
        raise ProfileError(f"walking speed {speed!r} km/h is outside 1-10", file=path, field="walk_kmh",
                           fix="use 4.5 (default), 4.0 or 5.0; slower for the elderly")
    if not isinstance(merged.get("nested", True), bool):
        raise ProfileError("nested must be true or false", file=path, field="nested",
                           fix="nested: true (complexes) or false (GB 50180 levels)")
    fields = {k: v for k, v in merged.items() if k not in ("tiers",)}
    fields.setdefault("title_zh", fields["name"])
    fields.setdefault("title_en", fields["name"])
    try:
        return Profile(tiers=tuple(sorted(tiers, key=lambda t: -t.rank)), **fields)
    except TypeError as err:
        raise ProfileError(f"invalid profile ({err})", file=path, fix="compare with circles profiles deyang") from err


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v), ensure_ascii=False)


def _toml_dump(d: dict) -> str:
    lines = []
    tables = {}
    for k, v in d.items():
        if k == "tiers":
            continue
        if isinstance(v, dict):
            tables[k] = v
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{json.dumps(str(k), ensure_ascii=False)} = {_toml_value(v)}" for k, v in table.items())
    for t in d.get("tiers", []):
        lines.append("\n[[tiers]]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in t.items())
    return "\n".join(lines) + "\n"
