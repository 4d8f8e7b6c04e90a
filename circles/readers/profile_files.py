"""Profile files: reading a YAML or TOML profile and checking every key, with errors naming the
file and the key.

:mod:`circles.readers.profiles` owns the :class:`~circles.readers.profiles.Profile` and
:class:`~circles.readers.profiles.Tier` classes and the built-in profiles. It tells this module
what a file may hold (a :class:`ProfileSchema`) and how to load the profile a file ``extends``, so
that this module needs no profile class and the two import no cycle: what comes back is the
checked fields of a profile, its tiers as mappings ready for ``Tier(**row)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputFileError, ProfileError
from .city_rules import CITIES

__all__ = ["ProfileSchema", "profile_fields", "read_profile_mapping"]

_PALETTE = ("#7b3294", "#2b83ba", "#1a9641", "#fdae61", "#d7191c", "#abdda4")
# The mappings a file that extends another merges key by key (the rest it replaces).
_MERGED = ("standards", "sources", "osm_tags", "services", "functions")


@dataclass(frozen=True)
class ProfileSchema:
    """What a profile file may hold, as the profile classes define it.

    Attributes
    ----------
    top_keys : frozenset of str
        The keys a profile mapping may have (the fields of ``Profile`` and ``extends``).
    tier_keys : frozenset of str
        The keys a tier mapping may have (the fields of ``Tier``).
    builtin : tuple of str
        The built-in profiles' names, for the messages about ``extends``.

    """

    top_keys: frozenset[str]
    tier_keys: frozenset[str]
    builtin: tuple[str, ...]


def read_profile_mapping(path: Path) -> dict:
    """The mapping a YAML or TOML profile file holds.

    Parameters
    ----------
    path
        A ``.toml`` file, or YAML under any other suffix.

    Returns
    -------
    dict
        The file's top-level mapping, not yet checked.

    Raises
    ------
    InputFileError
        A file that cannot be read or is not UTF-8.
    ProfileError
        A file that does not parse, or holds no mapping.

    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputFileError("the profile file is not UTF-8 text", file=path,
                             fix="save it as UTF-8") from err
    except OSError as err:
        raise InputFileError(f"cannot read the profile file ({err.strerror})", file=path,
                             fix="check the path and its permissions") from err
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
        else:
            data = yaml.safe_load(text)
    except Exception as err:
        raise ProfileError(f"cannot parse the profile ({err})", file=path,
                           fix="check the file's syntax (circles profiles deyang prints a valid one)") from err
    if not isinstance(data, dict):
        raise ProfileError("a profile file must be a mapping of keys", file=path,
                           fix="start from: circles profiles deyang > my_profile.yaml")
    return data


def _fail(path: Path, key: str, message: str, fix: str) -> ProfileError:
    return ProfileError(message, file=path, field=key, fix=fix)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _positive(v: Any) -> bool:
    return _is_number(v) and v > 0


def _texts(v: Any) -> bool:
    return isinstance(v, list | tuple) and all(isinstance(x, str) for x in v)


def _is_range(v: Any) -> bool:
    return (isinstance(v, list | tuple) and len(v) == 2 and all(_is_number(x) for x in v)
            and 0 <= v[0] <= v[1])


# key: (test, what it must be, an example of a right value)
_TOP_RULES = {
    "name": (lambda v: isinstance(v, str) and v.strip(), "text", "name: my_city"),
    "title_zh": (lambda v: isinstance(v, str), "text", 'title_zh: "某市社区生活圈"'),
    "title_en": (lambda v: isinstance(v, str), "text", 'title_en: "My city"'),
    "walk_kmh": (lambda v: _is_number(v) and 1 <= v <= 10, "a walking speed within 1-10 km/h",
                 "walk_kmh: 4.5 (default), 4.0 or 5.0; slower for the elderly"),
    "nested": (lambda v: isinstance(v, bool), "true or false",
               "nested: true (complexes) or false (GB 50180 levels)"),
    "snap_cap_metres": (_positive, "a positive number of metres", "snap_cap_metres: 300"),
    "street_buffer_metres": (_positive, "a positive number of metres", "street_buffer_metres: 30"),
    "lang": (lambda v: v in ("zh", "en"), "zh or en", "lang: zh"),
    "standards": (lambda v: isinstance(v, dict), "a mapping", "standards: {persons_per_household: 2.62}"),
    "sources": (lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
                "a mapping of names to text", 'sources: {walk_kmh: "city survey 2025"}'),
    "osm_tags": (lambda v: isinstance(v, dict), "a mapping of tier codes to OSM tags",
                 'osm_tags: {community: {amenity: ["community_centre"]}}'),
    "services": (lambda v: isinstance(v, dict), "a mapping", "services: {...}"),
    "city": (lambda v: v is None or str(v).lower() in CITIES, "one of " + ", ".join(CITIES), "city: baoji"),
    "functions": (lambda v: isinstance(v, dict), "a mapping of tier codes to lists of functions",
                  'functions: {community: ["社区管理", "便民服务"]}'),
}
_TIER_RULES = {
    "code": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", v),
             "a plain word of letters, digits and _", "code: station"),
    "name_zh": (lambda v: isinstance(v, str), "text", 'name_zh: "驿站级"'),
    "name_en": (lambda v: isinstance(v, str), "text", 'name_en: "station"'),
    "minutes": (_positive, "a positive number", "minutes: 5"),
    "metres": (_positive, "a positive number", "metres: 300"),
    "colour": (lambda v: isinstance(v, str) and re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", v),
               "a hex colour", 'colour: "#1a9641" (quoted in YAML)'),
    "rank": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number", "rank: 1"),
    "population_range": (_is_range, "a range [low, high]", "population_range: [5000, 12000]"),
    "dwellings_range": (_is_range, "a range [low, high]", "dwellings_range: [1500, 4000]"),
    "min_floor_area_m2": (_positive, "a positive area in m²", "min_floor_area_m2: 300"),
    "aliases": (_texts, "a list of names", 'aliases: ["15min", "十五分钟"]'),
}


def _merge(base: dict, data: dict, path: Path) -> dict:
    merged = {**base, **{k: v for k, v in data.items() if k != "extends"}}
    for key in _MERGED:
        if isinstance(data.get(key), dict):
            merged[key] = {**base.get(key, {}), **data[key]}
    if "tiers" in data:
        if not isinstance(data["tiers"], list):
            raise _fail(path, "tiers", "tiers must be a list", "give a list of tier mappings")
        tiers = [dict(t) for t in base["tiers"]]
        index = {t["code"]: i for i, t in enumerate(tiers)}
        for t in data["tiers"]:
            if isinstance(t, dict) and t.get("code") in index:
                old = tiers[index[t["code"]]]
                if "minutes" in t or "metres" in t:  # the override's unit replaces the base's
                    old = {k: v for k, v in old.items() if k not in ("minutes", "metres")}
                tiers[index[t["code"]]] = {**old, **t}
            else:
                tiers.append(t)
        merged["tiers"] = tiers
    return merged


def profile_fields(data: dict, path: Path, *, schema: ProfileSchema,
                   load_base: Callable[[str], dict]) -> dict:
    """The checked fields of a profile from the mapping of its file.

    Parameters
    ----------
    data
        The file's mapping (:func:`read_profile_mapping`).
    path
        The file, for messages.
    schema
        The keys a profile and a tier may have.
    load_base
        Given the value of ``extends``, the profile it names as a plain dict (``Profile.to_dict``).

    Returns
    -------
    dict
        The keyword arguments of ``Profile``; ``tiers`` is a list of ``Tier`` keyword mappings,
        highest rank first, and ``functions`` maps tier codes to tuples of text.

    Raises
    ------
    ProfileError
        The first key that is unknown or holds a wrong value, named with the file.

    """
    unknown = sorted(set(map(str, data)) - schema.top_keys)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key(s) {unknown}",
                    f"allowed keys: {', '.join(sorted(schema.top_keys))}")
    if "extends" in data:
        if not isinstance(data["extends"], str):
            raise _fail(path, "extends", "extends must be a profile name or a file path",
                        f"e.g. extends: deyang ({', '.join(schema.builtin)})")
        merged = _merge(load_base(data["extends"]), data, path)
    else:
        merged = dict(data)
    for key in ("name", "tiers"):
        if not merged.get(key):
            raise _fail(path, key, f"the profile has no '{key}'",
                        "add it, or 'extends: deyang' to start from a built-in profile")
    for key, (ok, what, example) in _TOP_RULES.items():
        if key in merged and not ok(merged[key]):
            raise _fail(path, key, f"{key} must be {what}, not {merged[key]!r}", example)
    for k, v in merged.get("standards", {}).items():
        if not _is_number(v) or v < 0:
            raise _fail(path, f"standards.{k}", f"standard {k!r} must be a non-negative number, "
                        f"not {v!r}", "give a number, e.g. persons_per_household: 2.62")
    tiers = _check_tiers(merged["tiers"], path, schema.tier_keys)
    codes = {t["code"] for t in tiers}
    fields = {k: v for k, v in merged.items() if k != "tiers"}
    fields.setdefault("title_zh", fields["name"])
    fields.setdefault("title_en", fields["name"])
    fields["osm_tags"] = _osm_tags(merged.get("osm_tags", {}), codes, path)
    fields["functions"] = _functions(merged.get("functions", {}), codes, path)
    fields["tiers"] = sorted(tiers, key=lambda t: -t["rank"])
    return fields


def _osm_tags(given: dict, codes: set[str], path: Path) -> dict[str, dict[str, list[str]]]:
    """A profile's ``osm_tags``, checked: tier codes it has, keys mapped to lists of values."""
    osm_tags = {}
    for code, tags in given.items():
        where = f"osm_tags.{code}"
        if code not in codes:
            raise _fail(path, where, f"osm_tags names tier {code!r}, which the profile does not have",
                        f"use one of the tier codes: {', '.join(sorted(codes))}")
        if not isinstance(tags, dict) or not all(isinstance(v, str) or _texts(v) for v in tags.values()):
            raise _fail(path, where, "OSM tags must map keys to lists of values",
                        'e.g. community: {amenity: ["community_centre"]}')
        osm_tags[code] = {k: [v] if isinstance(v, str) else list(v) for k, v in tags.items()}
    return osm_tags


def _functions(given: dict, codes: set[str], path: Path) -> dict[str, tuple[str, ...]]:
    """A profile's ``functions``, checked: tier codes it has, each with a list of non-empty text."""
    functions = {}
    for code, names in given.items():
        where = f"functions.{code}"
        if code not in codes:
            raise _fail(path, where, f"functions names tier {code!r}, which the profile does not have",
                        f"use one of the tier codes: {', '.join(sorted(codes))}")
        if not _texts(names) or not all(n.strip() for n in names):
            raise _fail(path, where, f"the functions of a tier must be a list of names, not {names!r}",
                        f'e.g. {code}: ["社区管理", "便民服务"]')
        functions[code] = tuple(names)
    return functions


def _check_tiers(rows: Any, path: Path, keys: frozenset[str]) -> list[dict]:
    if not isinstance(rows, list):
        raise _fail(path, "tiers", "tiers must be a list", "give a list of tier mappings")
    ranked = any(isinstance(r, dict) and "rank" in r for r in rows)
    tiers: list[dict] = []
    ranks: dict[int, str] = {}
    for i, t in enumerate(rows, start=1):
        t = _tier_row(t, i, path, keys)
        where = f"tiers[{i}] ({t['code']})"
        if t["code"] in {x["code"] for x in tiers}:
            raise _fail(path, where, f"duplicate tier code {t['code']!r}", "give every tier its own code")
        if ranked and "rank" not in t:
            raise _fail(path, f"{where}.rank", "this tier has no rank while others have one",
                        "give every tier a rank (larger = higher), or none to rank them in order")
        rank = t.get("rank", len(rows) - i + 1)
        if rank in ranks:
            raise _fail(path, f"{where}.rank", f"rank {rank} is also the rank of tier {ranks[rank]!r}",
                        "give every tier its own rank (larger = higher)")
        ranks[rank] = t["code"]
        t.setdefault("colour", _PALETTE[(i - 1) % len(_PALETTE)])
        tiers.append({"name_zh": t["code"], "name_en": t["code"], **t, "rank": rank,
                      "aliases": tuple(t.get("aliases", ()))})
    return tiers


def _tier_row(t: Any, i: int, path: Path, keys: frozenset[str]) -> dict:
    """One tier mapping, checked on its own: known keys, a code, valid values, minutes or metres."""
    where = f"tiers[{i}]"
    if not isinstance(t, dict):
        raise _fail(path, where, "a tier must be a mapping",
                    "give code, name_zh, name_en and minutes or metres")
    bad = sorted(set(map(str, t)) - keys)
    if bad:
        raise _fail(path, where, f"unknown tier key(s) {bad}",
                    f"allowed: {', '.join(sorted(keys))}")
    t = {k: v for k, v in t.items() if v is not None}
    if "code" not in t:
        raise _fail(path, f"{where}.code", "a tier has no code", "code: station")
    for key, (ok, what, example) in _TIER_RULES.items():
        if key in t and not ok(t[key]):
            raise _fail(path, f"{where}.{key}", f"{key} must be {what}, not {t[key]!r}", example)
    if ("minutes" in t) == ("metres" in t):
        raise _fail(path, f"tiers[{i}] ({t['code']})", "a tier needs exactly one of minutes or metres",
                    "keep minutes: 5 or metres: 300, not both and not neither")
    for key in ("population_range", "dwellings_range"):
        if key in t:
            t[key] = (int(t[key][0]), int(t[key][1]))
    return t
