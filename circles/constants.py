"""The domain's numbers, each written once with where it comes from.

A profile (``circles/readers/profiles.py``) starts from these and a city may set its own; the rest of the
package reads them from the profile, or from here where no profile is at hand.
"""

from __future__ import annotations

__all__ = ["PERSONS_PER_HOUSEHOLD", "SNAP_CAP_METRES", "STREET_BUFFER_METRES", "WALK_KMH"]

# China's 2020 census: 2.62 persons per family household (第七次全国人口普查).
PERSONS_PER_HOUSEHOLD = 2.62
# A choice: beyond 300 m of straight walk from every walkable street a point is off the network.
SNAP_CAP_METRES = 300.0
# A choice: a service area's polygon reaches 30 m either side of a reached street.
STREET_BUFFER_METRES = 30.0
# Walking speed: 4.5 km/h (75 m a minute), the usual planning figure for an unhurried adult.
WALK_KMH = 4.5
