"""Functions of a complex: what each service complex offers against what its tier must offer.

A facility table's ``functions`` column (:func:`circles.readers.facilities.split_functions`) says
what a complex offers; a profile's ``functions`` say what each tier must offer. Names match after
NFKC normalisation, trimming and case-folding, and through the names that stand for the same
Deyang function (its Chinese and English names, and :data:`ALIASES`).
"""

from __future__ import annotations

import unicodedata

import pandas as pd

from ..readers.city_rules import DEYANG_FUNCTIONS
from ..readers.facilities import FUNCTION_HEADERS, split_functions
from ..readers.profiles import Profile, get_profile

__all__ = ["ALIASES", "COLUMNS", "functions_record", "missing_functions"]

COLUMNS = ["facility_id", "name", "tier", "offered", "required", "missing", "all_offered"]
# city_rules.Function has no aliases field, so the other names a table may use live here. The
# issue's short names (文化, 商业) stand for the documents' scenes; 社区治理 is the other text's name
# of the category 社区管理 (city_rules: "perhaps the same"), read here as the same.
ALIASES: dict[str, tuple[str, ...]] = {
    "社区管理": ("社区治理",),
    "文化交流": ("文化",),
    "商业商贸": ("商业",),
}


def _key(name: str) -> str:
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


def _equivalents() -> dict[str, frozenset[str]]:
    """Each known name (as a key) -> every key that stands for the same function."""
    groups = [{f.name_zh, f.name_en, *ALIASES.get(f.name_zh, ())} for f in DEYANG_FUNCTIONS]
    same: dict[str, frozenset[str]] = {}
    for group in groups:
        keys = {_key(n) for n in group}
        for k in list(keys):  # a name in two groups (社区治理) joins them
            keys |= same.get(k, frozenset())
        for k in keys:
            same[k] = frozenset(keys)
    return same


def missing_functions(facilities: pd.DataFrame, profile: Profile | str | None = None) -> pd.DataFrame:
    """Per usable complex, the functions its tier must offer that it does not.

    Parameters
    ----------
    facilities
        Facilities as :func:`circles.readers.facilities.read_facilities` returns them, with a
        ``functions`` column; only those with ``status`` ``ok`` (all, without a status) count.
    profile
        Its ``functions`` (tier code -> names) say what each tier must offer (default ``deyang``).

    Returns
    -------
    pandas.DataFrame
        One row per complex: ``facility_id``, ``name``, ``tier``, ``offered`` (how many of the
        required functions it offers), ``required`` (how many its tier asks for), ``missing``
        (``"; "``-joined, in the profile's order) and ``all_offered``; worst first (most missing,
        then the smallest share offered). Empty, with ``attrs["note"]`` saying why, without a
        functions column or when the profile asks for no functions.

    """
    profile = get_profile(profile)
    if "functions" not in facilities.columns:
        return _empty("not evaluated: needs column functions (" + " / ".join(FUNCTION_HEADERS) + ")")
    if not any(profile.functions.values()):
        return _empty(f"not evaluated: profile '{profile.name}' asks for no functions")
    usable = (facilities if "status" not in facilities.columns
              else facilities[facilities["status"].to_numpy() == "ok"])
    same = _equivalents()
    rows = []
    for fid, name, tier, cell in zip(usable["facility_id"], usable["name"], usable["tier"],
                                     usable["functions"], strict=True):
        offered = {_key(n) for n in split_functions(cell)}
        required = _unique(profile.functions.get(str(tier), ()))
        missing = [r for r in required if not same.get(_key(r), frozenset({_key(r)})) & offered]
        rows.append({"facility_id": fid, "name": name, "tier": tier,
                     "offered": len(required) - len(missing), "required": len(required),
                     "missing": "; ".join(missing), "all_offered": not missing})
    table = pd.DataFrame(rows, columns=COLUMNS)
    worst = table.assign(lacking=table["required"] - table["offered"],
                         share=(table["offered"] / table["required"]).astype(float).fillna(1.0))
    worst = worst.sort_values(["lacking", "share"], ascending=[False, True], kind="stable")
    return table.loc[worst.index].reset_index(drop=True)


def _unique(names: tuple[str, ...]) -> list[str]:
    """The names, each once by its normalised form, in the given order."""
    seen: set[str] = set()
    out: list[str] = []
    for n in names:
        if _key(n) not in seen:
            seen.add(_key(n))
            out.append(n)
    return out


def _empty(note: str) -> pd.DataFrame:
    table = pd.DataFrame(columns=COLUMNS)
    table.attrs["note"] = note
    return table


def functions_record(table: pd.DataFrame) -> dict[str, int | str]:
    """What a run's manifest says of :func:`missing_functions`: complexes checked, how many offer
    every required function, and the note of a table that could not be made."""
    record: dict[str, int | str] = {"complexes": len(table),
                                    "all_offered": int(table["all_offered"].astype(bool).sum())}
    if table.attrs.get("note"):
        record["note"] = table.attrs["note"]
    return record
