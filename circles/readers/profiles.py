"""Profiles: the tiers of service complexes, their thresholds, walking speed, nesting and standards.

Built-in: ``deyang`` (the default: service complexes, 15 / 10 / 5 min, nested), ``gb50180``
(GB 50180-2018 life circles: 1000 / 500 / 300 m of network distance, not nested) and ``tdt1062``
(TD/T 1062-2021 community life circles). Any profile can be written as YAML or TOML, optionally
``extends:`` a built-in or another file, and is validated with errors that name the file and key
(:mod:`circles.readers.profile_files` reads and checks the files).
"""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..constants import PERSONS_PER_HOUSEHOLD, SNAP_CAP_METRES, STREET_BUFFER_METRES, WALK_KMH
from ..errors import DataError, InputFileError, ProfileError
from .city_rules import DEYANG_FUNCTIONS, Rule, rules_for
from .profile_files import ProfileSchema, profile_fields, read_profile_mapping

__all__ = ["Profile", "Tier", "get_profile", "list_profiles"]


@dataclass(frozen=True)
class Tier:
    """One tier of service complex (or one level of a life circle).

    Attributes
    ----------
    code : str
        Stable code used in tables and column names (``district``, ``community``, ``station``).
    name_zh, name_en : str
        Display names; tables may use either.
    minutes, metres : float or None
        The threshold: exactly one is set; the other follows from the profile's walking speed
        (:meth:`Profile.threshold_metres`, :meth:`Profile.threshold_minutes`).
    colour : str
        Hex colour on maps.
    rank : int
        Larger is higher (district > community > station); nesting follows rank.
    population_range, dwellings_range : tuple of int or None
        People and dwellings one circle of this tier serves (GB 50180 Table 4.0.1).
    min_floor_area_m2 : float or None
        Minimum floor area of a complex of this tier.
    aliases : tuple of str
        Other names tables may use, e.g. ``"15min"`` for a tier whose threshold is in metres.

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
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.minutes is None) == (self.metres is None):
            raise ProfileError(f"tier {self.code!r} needs exactly one of minutes or metres",
                               field="minutes", fix="give minutes: 5 or metres: 300, not both")


_STANDARDS = {
    "floor_area_m2_per_100_households": 30.0,
    "min_community_space_m2": 300.0,
    "workers_per_10000_residents": 18.0,
    "kindergarten_households": 1500.0,
    "primary_school_households": 3000.0,
    "persons_per_household": PERSONS_PER_HOUSEHOLD,
}
_SOURCES = {
    "floor_area_m2_per_100_households": "Baoji: community office and service space >= 30 m2 per 100 "
                                        "households (按照每百户30平方米以上标准落实社区办公服务场所)",
    "min_community_space_m2": "Deyang: every urban community's service space >= 300 m2, per community "
                              "(全市208个城市社区,阵地面积全部达到300平方米以上)",
    "workers_per_10000_residents": "Baoji and Neijiang: >= 18 community workers per 10,000 urban "
                                   "residents (每万城镇常住人口拥有社区工作者18人)",
    "kindergarten_households": "Baoji: a public-benefit kindergarten in every community of >= 1,500 "
                               "households (1500户以上居民社区设有1所以上普惠性幼儿园), checked per community",
    "primary_school_households": "Baoji: a primary school in every community of >= 3,000 households "
                                 "(3000户以上居民社区设有1所以上小学), checked per community",
    "persons_per_household": "2.62 persons per household, China's 2020 census",
    "snap_cap_metres": "choice: beyond 300 m of straight walk to a walkable street a point is "
                       "reported as off-network",
    "street_buffer_metres": "choice: 30 m either side of a reached street in service-area polygons",
}
# Service complexes are rarely tagged as such in China's OSM; these are the closest tags, a
# choice of this profile (a facility table is the reliable source for an audit).
_COMPLEX_TAGS = {
    "district": {"amenity": ["townhall"]},
    "community": {"amenity": ["community_centre", "social_facility"], "office": ["government"]},
    "station": {"amenity": ["social_centre"]},
}
# Facility kinds per life-circle level after GB 50180-2018 Appendix B (middle school, hospital,
# culture centre, elderly home at 15 min; primary school, market, bank, post at 10 min;
# kindergarten, clinic, community station, day care, fitness at 5 min). OSM seldom tells primary
# from middle schools, so all schools sit at the 10-minute level.
_LEVEL_TAGS = {
    "district": {"amenity": ["hospital", "townhall", "police", "arts_centre"],
                 "social_facility": ["nursing_home"], "leisure": ["sports_centre"]},
    "community": {"amenity": ["school", "marketplace", "bank", "post_office"],
                  "shop": ["supermarket"], "leisure": ["pitch"]},
    "station": {"amenity": ["kindergarten", "childcare", "clinic", "community_centre"],
                "social_facility": ["day_care"], "leisure": ["fitness_station"]},
}
_ZH_DIGITS = dict(zip("零一二两三四五六七八九", (0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_MINUTES_RE = re.compile(r"(\d+(?:\.\d+)?|[零一二两三四五六七八九十]+)\s*"
                         r"(min|mins|minute|minutes|-minute|分钟|分)?")
_METRES_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(m|metre|metres|meter|meters|米)")


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
        Walking speed (1-10 km/h).
    nested : bool
        Whether a higher-tier facility also serves the lower tiers.
    standards : dict
        Indicator numbers (floor area per 100 households, persons per household...).
    osm_tags : dict
        Per tier code, the OSM tags (key -> values) that identify its facilities.
    snap_cap_metres : float
        Beyond this straight walk from a walkable street a point is off-network.
    street_buffer_metres : float
        Half-width of the street buffer of service-area polygons.
    lang : str
        Default language of maps and reports (``zh`` or ``en``).
    sources : dict
        Where the numbers come from, and which are this profile's choices.
    services : dict
        The service catalogue configuration, carried unchanged (read by :mod:`circles.services`).
    city : str or None
        The city whose documents' rules (:mod:`circles.readers.city_rules`) the communities are held
        to, per community, with ``--units`` (``deyang``, ``baoji``, ``neijiang``, ``weinan``).
    functions : dict
        Per tier code, the functions a complex of that tier must offer (names as a facility
        table's ``functions`` column writes them); empty: none asked.

    """

    name: str
    title_zh: str
    title_en: str
    tiers: tuple[Tier, ...]
    walk_kmh: float = WALK_KMH
    nested: bool = True
    standards: dict[str, float] = field(default_factory=lambda: dict(_STANDARDS))
    osm_tags: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    snap_cap_metres: float = SNAP_CAP_METRES
    street_buffer_metres: float = STREET_BUFFER_METRES
    lang: str = "zh"
    sources: dict[str, str] = field(default_factory=lambda: dict(_SOURCES))
    services: dict = field(default_factory=dict)
    city: str | None = None
    functions: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tiers = tuple(self.tiers)
        self.functions = {code: tuple(names) for code, names in self.functions.items()}

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules of the city's documents, each with its source (none without a city)."""
        return rules_for(self.city) if self.city else ()

    @property
    def persons_per_household(self) -> float:
        """Persons per household: the profile's standard, else China's 2020 census figure."""
        return float(self.standards.get("persons_per_household", PERSONS_PER_HOUSEHOLD))

    @property
    def metres_per_minute(self) -> float:
        """Walking speed in metres per minute."""
        return self.walk_kmh * 1000.0 / 60.0

    def threshold_metres(self, tier: str | float | Tier) -> float:
        """A tier's threshold as network metres (given, or minutes times the walking speed)."""
        t = tier if isinstance(tier, Tier) else self.tier(tier)
        return float(t.metres) if t.metres is not None else float(t.minutes) * self.walk_kmh * 1000.0 / 60.0

    def threshold_minutes(self, tier: str | float | Tier) -> float:
        """A tier's threshold as walking minutes at the profile's speed."""
        t = tier if isinstance(tier, Tier) else self.tier(tier)
        return float(t.minutes) if t.minutes is not None else float(t.metres) * 60.0 / (self.walk_kmh * 1000.0)

    def tier(self, key: str | float | Tier) -> Tier:
        """Resolve a tier from its code, Chinese or English name, an alias, or its minutes.

        Parameters
        ----------
        key
            ``"station"``, ``"驿站级"``, ``"Station"``, ``5``, ``5.0``, ``"5"``, ``"5min"``,
            ``"5分钟"``, ``"五分钟"``; in a profile with metre thresholds also ``300`` or ``"300m"``.

        Returns
        -------
        Tier

        Raises
        ------
        DataError
            An unknown tier, listing the known ones.

        """
        if isinstance(key, Tier):
            key = key.code
        text = unicodedata.normalize("NFKC", str(key)).strip()
        low = text.lower()
        for t in self.tiers:
            names = {t.code.lower(), t.name_en.lower(), t.name_zh.lower(), *(a.lower() for a in t.aliases)}
            if low in names:
                return t
        minutes = _parse_minutes(low)
        found = self._by_minutes(minutes) if minutes is not None else None
        if found is not None:
            return found
        metres = _parse_metres(low)
        if metres is None and minutes is not None and _MINUTES_RE.fullmatch(low).group(2) is None:
            metres = minutes  # a bare number may be metres in a distance-based profile
        if metres is not None:
            for t in self.tiers:
                if abs(self.threshold_metres(t) - metres) < 1e-6:
                    return t
        known = "; ".join(f"{t.code} / {t.name_zh} / {self.threshold_minutes(t):g} min"
                          for t in self.tiers)
        raise DataError(f"unknown tier {key!r} in profile '{self.name}'", field="tier",
                        fix=f"use one of: {known}")

    def _by_minutes(self, minutes: float) -> Tier | None:
        for t in self.tiers:
            if abs(self.threshold_minutes(t) - minutes) < 1e-6:
                return t
        for t in self.tiers:  # the nominal minutes of a tier measured in metres (GB 50180)
            if any(_parse_minutes(a.lower()) == minutes for a in t.aliases):
                return t
        return None

    def eligible(self, tier_code: str | float | Tier) -> list[str]:
        """Tier codes whose facilities count for coverage of ``tier_code``.

        Returns
        -------
        list of str
            Nested profiles: the tier and every higher-ranked one, highest first; otherwise the
            tier alone.

        """
        t = self.tier(tier_code)
        if not self.nested:
            return [t.code]
        return [o.code for o in self.tiers if o.rank >= t.rank]

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON/YAML/TOML-serialisable dict (unset tier fields left out)."""
        d = {k: v for k, v in asdict(self).items() if v is not None}
        d["tiers"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in t.items()
                       if v is not None and v != ()} for t in d["tiers"]]
        return json.loads(json.dumps(d, ensure_ascii=False))

    def to_yaml(self) -> str:
        """The profile as YAML, a file to start a city's own profile from."""
        head = (f"# circles profile '{self.name}': {self.title_en}\n"
                "# Save as my_profile.yaml, edit, and use with --profile my_profile.yaml.\n")
        return head + yaml.safe_dump(self.to_dict(), allow_unicode=True, sort_keys=False)

    def to_toml(self) -> str:
        """The profile as TOML.

        Raises
        ------
        ProfileError
            The profile holds a value TOML cannot (``null``, e.g. in ``services``).

        """
        import tomli_w

        try:
            return tomli_w.dumps(self.to_dict())
        except TypeError as err:  # TOML has no null: only services/sources can hold one
            raise ProfileError(f"profile '{self.name}' holds an empty value (null), which TOML "
                               f"cannot write ({err})", fix="write it as YAML, or give every key a value") from err


def _parse_minutes(text: str) -> float | None:
    m = _MINUTES_RE.fullmatch(text)
    if not m:
        return None
    num = m.group(1)
    if num[0].isdigit():
        return float(num)
    tens, ten, ones = num.partition("十")
    if len(tens) > 1 or len(ones) > 1 or "十" in ones or (not ten and len(num) > 1):
        return None
    if not ten:
        return float(_ZH_DIGITS[num])
    return float((_ZH_DIGITS[tens] if tens else 1) * 10 + (_ZH_DIGITS[ones] if ones else 0))


def _parse_metres(text: str) -> float | None:
    m = _METRES_RE.fullmatch(text)
    return float(m.group(1)) if m else None


def _tiers(district: dict, community: dict, station: dict) -> tuple[Tier, ...]:
    # The three codes, colours and ranks are shared by the built-ins so that tables stay compatible.
    return (Tier(code="district", colour="#7b3294", rank=3, **district),
            Tier(code="community", colour="#2b83ba", rank=2, **community),
            Tier(code="station", colour="#1a9641", rank=1, **station))


_GB_TIERS = ("GB 50180-2018 Table 4.0.1: 15-min life circle 800-1000 m walk, 50,000-100,000 people, "
             "17,000-32,000 dwellings; 10-min 500 m, 15,000-25,000 people, 5,000-8,000 dwellings; "
             "5-min 300 m, 5,000-12,000 people, 1,500-4,000 dwellings. 1000 m for the 15-min level "
             "(the upper end) is this profile's choice")

# The functions every Deyang tier is asked for: the documents' categories as they name them, the
# issue's eight (社区治理, the other text's name of 社区管理, counts as it: engine.complex_functions).
_DEYANG_CATEGORIES = tuple(f.name_zh for f in DEYANG_FUNCTIONS if f.name_zh in {
    "社区管理", "便民服务", "教育培训", "康养理疗", "青少年发展", "养老托幼", "文化交流", "商业商贸"})


_BUILTIN: dict[str, Profile] = {
    "deyang": Profile(
        name="deyang", title_zh="城市社区便民服务综合体（德阳）", title_en="Community service complexes (Deyang)",
        tiers=_tiers(
            {"name_zh": "片区级", "name_en": "district", "minutes": 15},
            {"name_zh": "社区级", "name_en": "community", "minutes": 10},
            {"name_zh": "驿站级", "name_en": "station", "minutes": 5}),
        walk_kmh=WALK_KMH, nested=True, osm_tags=copy.deepcopy(_COMPLEX_TAGS), city="deyang",
        sources={**_SOURCES,
                 "tiers": "Deyang service complexes: 80 = 8 district (15 min) + 40 community (10 min) "
                          "+ 32 station (5 min); a higher tier also serves the lower ones (nested)",
                 "walk_kmh": "4.5 km/h (75 m/min) default walking speed; 4.0 and 5.0 are common",
                 "min_floor_area": "no tier minimum: no document sets one per complex; Deyang's 300 m2 "
                                   "is per community (min_community_space_m2), checked with --units",
                 "osm_tags": "choice: the closest OSM tags; complexes are rarely tagged, so give a "
                             "facility table for an audit",
                 "functions": "this profile's reading: the documents name a complex's functions without "
                              "tiers (从社区管理、便民服务、教育培训等8大类53小类公共服务…按需配置; 建设集"
                              "教育培训、文化交流、休闲娱乐、养老托幼、商业商贸等多种场景于一体的社区综合体), so "
                              "every tier is asked for the catalogue's categories as the documents name "
                              "them, eight (社区治理 counts as 社区管理; 休闲娱乐 is not asked); a city "
                              "fills in its own 53 items (functions: {tier: [...]})"},
        functions=dict.fromkeys(("district", "community", "station"), _DEYANG_CATEGORIES)),
    "gb50180": Profile(
        name="gb50180", title_zh="城市居住区规划设计标准 GB 50180-2018",
        title_en="Urban residential area planning standard GB 50180-2018",
        tiers=_tiers(
            {"name_zh": "十五分钟生活圈居住区", "name_en": "15-minute life circle", "metres": 1000,
             "population_range": (50000, 100000), "dwellings_range": (17000, 32000),
             "aliases": ("15min", "15分钟生活圈", "十五分钟生活圈")},
            {"name_zh": "十分钟生活圈居住区", "name_en": "10-minute life circle", "metres": 500,
             "population_range": (15000, 25000), "dwellings_range": (5000, 8000),
             "aliases": ("10min", "10分钟生活圈", "十分钟生活圈")},
            {"name_zh": "五分钟生活圈居住区", "name_en": "5-minute life circle", "metres": 300,
             "population_range": (5000, 12000), "dwellings_range": (1500, 4000),
             "aliases": ("5min", "5分钟生活圈", "五分钟生活圈")}),
        walk_kmh=WALK_KMH, nested=False, osm_tags=copy.deepcopy(_LEVEL_TAGS),
        sources={**_SOURCES, "tiers": _GB_TIERS,
                 "population_range": "GB 50180-2018 Table 4.0.1",
                 "dwellings_range": "GB 50180-2018 Table 4.0.1",
                 "nested": "GB 50180-2018: levels stack; a 15-minute facility does not provide "
                           "5-minute services",
                 "walk_kmh": "choice: 4.5 km/h only converts the standard's distances to minutes",
                 "osm_tags": "choice: GB 50180-2018 Appendix B facility kinds per level, mapped to "
                             "OSM tags; all schools at the 10-minute level"}),
    "tdt1062": Profile(
        name="tdt1062", title_zh="社区生活圈规划技术指南 TD/T 1062-2021",
        title_en="Community life circle planning guide TD/T 1062-2021",
        tiers=_tiers(
            {"name_zh": "15分钟层级", "name_en": "15-minute level", "minutes": 15,
             "population_range": (50000, 100000), "aliases": ("15分钟社区生活圈",)},
            {"name_zh": "10分钟层级", "name_en": "10-minute level", "minutes": 10},
            {"name_zh": "5分钟层级", "name_en": "5-minute level", "minutes": 5}),
        walk_kmh=4.0, nested=False, osm_tags=copy.deepcopy(_LEVEL_TAGS),
        sources={**_SOURCES,
                 "tiers": "TD/T 1062-2021: a 15-minute level (about 1 km walk, 50,000-100,000 "
                          "people) and a 5-10-minute level; splitting the latter into 10 and 5 "
                          "minutes is this profile's choice",
                 "population_range": "TD/T 1062-2021, 15-minute level",
                 "walk_kmh": "choice: 4.0 km/h, so that 15 minutes is the guide's 1 km",
                 "nested": "choice: the guide lists service elements per level, so levels stack "
                           "as in GB 50180 (set nested: true to let higher levels count)",
                 "osm_tags": "choice: the GB 50180-2018 Appendix B facility kinds per level"}),
}

def _city_profile(city: str, title_zh: str, title_en: str, tiers_source: str) -> Profile:
    """A city's profile: Deyang's three complex tiers, the city's own documents' rules."""
    base = _BUILTIN["deyang"]
    sources = {k: v for k, v in base.sources.items() if k != "functions"}
    # Deyang's categories are Deyang's reading: the other cities' profiles ask for no functions.
    return replace(base, name=city, title_zh=title_zh, title_en=title_en, city=city,
                   standards=dict(base.standards), osm_tags=copy.deepcopy(base.osm_tags),
                   sources={**sources, "tiers": tiers_source}, functions={})


_BUILTIN.update({
    "baoji": _city_profile("baoji", "城市社区便民服务（宝鸡）", "Community services (Baoji)",
                           "Deyang's three complex tiers (15/10/5 min): Baoji's document sets no tiers "
                           "of its own; it sets a 15-minute walk to school (15分钟步行入学圈)"),
    "neijiang": _city_profile("neijiang", "城市社区便民服务（内江）", "Community services (Neijiang)",
                              "Deyang's three complex tiers (15/10/5 min): Neijiang's document names a "
                              "15-minute service circle (“15分钟服务圈”) but no lower tiers"),
    "weinan": _city_profile("weinan", "城市社区网格服务（渭南）", "Community grid services (Weinan)",
                            "Deyang's three complex tiers (15/10/5 min): Weinan's document sets grid "
                            "levels (小区—楼栋—单元), not service tiers"),
})

_SCHEMA = ProfileSchema(top_keys=frozenset(Profile.__dataclass_fields__) | {"extends"},
                        tier_keys=frozenset(Tier.__dataclass_fields__), builtin=tuple(_BUILTIN))
_SUFFIXES = (".yaml", ".yml", ".toml")


def list_profiles() -> list[str]:
    """Names of the built-in profiles."""
    return list(_BUILTIN)


def get_profile(profile: str | Path | Profile | None = None) -> Profile:
    """A built-in profile by name, a profile file (YAML/TOML), or ``None`` for ``deyang``.

    Parameters
    ----------
    profile
        A :class:`Profile` (returned as is), a built-in name (:func:`list_profiles`), or the
        path of a ``.yaml``/``.yml``/``.toml`` file. A file may say ``extends: NAME_OR_PATH`` to
        start from another profile: its scalar keys replace the base's, its dicts (standards,
        sources, osm_tags, services) are merged key by key, and its tiers are merged by code
        (a tier whose code is new is added and needs a ``rank``).

    Returns
    -------
    Profile
        A fresh copy: changing it does not change the built-in.

    Raises
    ------
    ProfileError
        Unknown name or invalid contents (naming the file and key).
    InputFileError
        A profile file that is missing or cannot be read.

    """
    return _load(profile, base_dir=None, seen=())


def _load(profile: str | Path | Profile | None, *, base_dir: Path | None,
          seen: tuple[Path, ...]) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if profile is None:
        return copy.deepcopy(_BUILTIN["deyang"])
    key = str(profile).strip()
    if not isinstance(profile, Path) and key.lower() in _BUILTIN:
        return copy.deepcopy(_BUILTIN[key.lower()])
    path = Path(key).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path  # an extended file is found beside the file that extends it
    if path.suffix.lower() not in _SUFFIXES:
        if path.exists():
            raise ProfileError("a profile file must end in .yaml, .yml or .toml", file=path,
                               fix="rename it, or print a valid one: circles profiles deyang > my.yaml")
        raise ProfileError(f"no built-in profile or profile file named {key!r}",
                           fix=f"use one of {', '.join(_BUILTIN)} or the path of a .yaml/.toml file")
    if not path.is_file():
        raise InputFileError("the profile file does not exist", file=path,
                             fix=f"check the path, or use a built-in profile: {', '.join(_BUILTIN)}")
    if path.resolve() in seen:
        raise ProfileError("the profile extends itself (a cycle of 'extends')", file=path,
                           field="extends", fix="point 'extends' at a built-in or another file")
    return _from_file(path, (*seen, path.resolve()))


def _from_file(path: Path, seen: tuple[Path, ...]) -> Profile:
    def base(extends: str) -> dict:
        return _load(extends, base_dir=path.parent, seen=seen).to_dict()

    fields = profile_fields(read_profile_mapping(path), path, schema=_SCHEMA, load_base=base)
    return Profile(tiers=tuple(Tier(**t) for t in fields.pop("tiers")), **fields)
