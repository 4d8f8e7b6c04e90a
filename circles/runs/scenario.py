"""A scenario exported from the explorer (sites added, complexes closed) applied to a facility table."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from ..engine.placement import attach
from ..errors import DataError
from ..outputs.tables import unescape_formulas
from ..readers.facilities import facilities_from_frame
from ..readers.tables import read_table

__all__ = ["apply_scenario"]


def apply_scenario(facilities: gpd.GeoDataFrame, path: str | Path, *, profile, network=None
                   ) -> gpd.GeoDataFrame:
    """Facilities with an exported scenario applied: ``close`` rows removed (by id), ``add`` rows
    added as new facilities (WGS-84 lon/lat, their tier).

    Raises
    ------
    DataError
        A closed id that is not in the facility table, or a bad row.

    """
    # The page's export quotes formula-like text as write_csv does: take the quote off again.
    sc = unescape_formulas(read_table(path, what="scenario"))
    if "action" not in sc.columns:
        raise DataError("the scenario has no 'action' column", file=path, field="action",
                        fix="use a scenario exported from explorer.html (action, id, name, tier, lon, lat)")
    action = sc["action"].astype(str).str.strip().str.lower()
    bad = ~action.isin(["add", "close"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"unknown action {sc['action'].iloc[i]!r}", file=path, row=i + 1, field="action",
                        fix="use 'add' or 'close'")
    closed = set(sc.loc[action == "close", "id"].astype(str))
    missing = closed - set(facilities["facility_id"].astype(str))
    if missing:
        raise DataError(f"closed facilities not in the facility table: {sorted(missing)[:5]}", file=path,
                        field="id", fix="export the scenario from this run's explorer.html")
    kept = facilities[~facilities["facility_id"].astype(str).isin(closed)]
    adds = sc[action == "add"][["id", "name", "tier", "lon", "lat"]]
    out = kept.drop(columns=[c for c in ("x", "y", "edge", "along_m", "offset_m") if c in kept.columns])
    if len(adds):
        new = facilities_from_frame(adds.reset_index(drop=True), profile=profile, file=path)
        new["facility_id"] = "scenario-" + new["facility_id"].astype(str)
        out = gpd.GeoDataFrame(pd.concat([out, new], ignore_index=True), crs=4326)
    return attach(out, network, profile) if network is not None else out
