"""How many people a complex can serve, from what its table says.

One rule, used by provision (existing complexes) and by siting under a capacity (new sites):
people = floor area ÷ the profile's m² per 100 households × 100 × persons per household. A
``capacity_pop`` column (people) comes first, then ``households_capacity`` (households × persons
per household), then the floor area; a complex with none of them is unlimited, and said so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..readers.profiles import Profile

__all__ = ["CAPACITY_SOURCES", "capacity_rule", "complex_capacity", "floor_area_for", "people_for_floor_area"]

# How each complex's capacity was found, in the order tried.
CAPACITY_SOURCES = ("capacity_pop", "households_capacity", "floor_area_m2", "unlimited")


def _m2_per_person(profile: Profile) -> float:
    per100 = float(profile.standards.get("floor_area_m2_per_100_households", 30.0))
    return per100 / (100.0 * profile.persons_per_household)


def people_for_floor_area(area_m2: np.ndarray | float, profile: Profile) -> np.ndarray:
    """People a floor area provides for under the profile's m² per 100 households."""
    return np.asarray(area_m2, float) / _m2_per_person(profile)


def floor_area_for(pop: np.ndarray | float, profile: Profile) -> np.ndarray:
    """The floor area (m²) that serves ``pop`` people under the profile's m² per 100 households."""
    return np.asarray(pop, float) * _m2_per_person(profile)


def capacity_rule(profile: Profile) -> str:
    """The capacity rule in one sentence, with the profile's figures."""
    per100 = float(profile.standards.get("floor_area_m2_per_100_households", 30.0))
    return (f"capacity: a complex serves at most its floor area ÷ {per100:g} m² per 100 households "
            f"× {profile.persons_per_household:g} persons")


def complex_capacity(facilities: pd.DataFrame, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Each complex's capacity in people and where it comes from.

    Parameters
    ----------
    facilities
        Facilities with any of ``capacity_pop`` (people), ``households_capacity`` and
        ``floor_area_m2`` (NaN where not given).
    profile
        Gives the m² per 100 households and the persons per household.

    Returns
    -------
    capacity_pop : numpy.ndarray
        People; ``inf`` where the table gives nothing to go by.
    source : numpy.ndarray
        Per complex, one of :data:`CAPACITY_SOURCES`.

    """
    n = len(facilities)
    cap = np.full(n, np.inf)
    source = np.full(n, "unlimited", dtype=object)
    people = {
        "capacity_pop": _column(facilities, "capacity_pop"),
        "households_capacity": _column(facilities, "households_capacity") * profile.persons_per_household,
        "floor_area_m2": people_for_floor_area(_column(facilities, "floor_area_m2"), profile),
    }
    # The last filled wins, so fill from the least to the most direct figure.
    for name in reversed(CAPACITY_SOURCES[:-1]):
        given = np.isfinite(people[name])
        cap[given] = people[name][given]
        source[given] = name
    return cap, source


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
