"""The gap surfaces on an H3 hexagon grid: uncovered population per tier, and (under capacity)
people within reach but not served."""

from __future__ import annotations

import geopandas as gpd
import h3
import h3.api.numpy_int as h3n
import numpy as np
import pandas as pd
import shapely

__all__ = ["gap_hexagons", "h3_cells", "h3_resolution", "short_hexagons"]

# A hexagon is short once at least one person (rounded) is: below that is the solver's rounding.
_MIN_SHORT_POP = 0.5


def h3_resolution(area_km2: float) -> int:
    """The H3 resolution for a study area: ~0.1 km² hexagons (res 9) for a city district,
    ~0.7 km² (res 8) for a whole city, so a map shows a few thousand hexagons at most."""
    if area_km2 <= 1500:
        return 9
    if area_km2 <= 15000:
        return 8
    return 7


def h3_cells(lon: np.ndarray, lat: np.ndarray, res: int) -> np.ndarray:
    """The H3 cell (as uint64) of each WGS-84 point at resolution ``res``."""
    # h3 has no vectorised point-to-cell call; its integer API is the fastest per-point path.
    return np.fromiter((h3n.latlng_to_cell(a, b, res) for a, b in zip(lat.tolist(), lon.tolist(),
                                                                        strict=True)),
                       dtype=np.uint64, count=len(lat))


def gap_hexagons(result, *, resolution: int | None = None) -> gpd.GeoDataFrame:
    """Uncovered population per tier on H3 hexagons, largest gaps first.

    Parameters
    ----------
    result
        A :class:`circles.coverage.CoverageResult`.
    resolution
        H3 resolution (default: chosen from the network's area).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per hexagon and tier with uncovered people: ``h3``, ``tier``, ``uncovered_pop``,
        ``offnetwork_pop``, ``pop`` (everyone in the hexagon), ``mean_minutes`` and
        ``max_minutes`` to the nearest facility of the tier (population-weighted; ``inf`` when
        some are beyond the search horizon), WGS-84 polygons.

    """
    d = result.demand
    cells, keep, resolution = _demand_cells(result, resolution)
    status = d["status"].to_numpy()[keep]
    pop = d["pop"].to_numpy(float)[keep]
    offnet = status == "off_network"
    frames = []
    for tier in result.profile.tiers:
        covered = result.covered_mask(tier.code)[keep]
        minutes = d[f"{tier.code}_minutes"].to_numpy(float)[keep]
        unc = ~covered & ~offnet
        g = _per_hexagon(cells, {"pop": pop, "uncovered_pop": np.where(unc, pop, 0.0),
                                 "offnetwork_pop": np.where(offnet, pop, 0.0),
                                 "wmin": np.where(unc, minutes * pop, 0.0)},
                         maxima={"max_minutes": np.where(unc, minutes, -np.inf)})
        g = g[(g["uncovered_pop"] > 0) | (g["offnetwork_pop"] > 0)]
        with np.errstate(invalid="ignore", divide="ignore"):
            g["mean_minutes"] = np.where(g["uncovered_pop"] > 0, g["wmin"] / g["uncovered_pop"], np.nan)
        g["max_minutes"] = g["max_minutes"].where(g["uncovered_pop"] > 0)
        frames.append(g.drop(columns="wmin"))
    return _hexagon_layer(frames, result, "uncovered_pop", resolution)


def short_hexagons(result, prov, *, resolution: int | None = None) -> gpd.GeoDataFrame:
    """People within reach but not served (every complex in reach full) per tier on H3 hexagons,
    largest first: the capacity-short surface beside :func:`gap_hexagons`.

    Parameters
    ----------
    result
        A :class:`circles.coverage.CoverageResult`.
    prov
        Its provision (:func:`circles.engine.provision_tiers.provision`).
    resolution
        H3 resolution (default: chosen from the network's area, as for the gaps).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per hexagon and tier where at least half a person is short: ``h3``, ``tier``,
        ``covered_unserved_pop``, ``served_pop``, ``population`` (everyone in the hexagon),
        ``resolution``, WGS-84 polygons.

    """
    cells, keep, resolution = _demand_cells(result, resolution)
    pop = result.demand["pop"].to_numpy(float)[keep]
    frames = []
    for tier in result.profile.tiers:
        g = _per_hexagon(cells, {"covered_unserved_pop": prov.unserved(tier.code)[keep],
                                 "served_pop": prov.served[tier.code][keep], "population": pop})
        # The solver counts people in hundredths, so a fully served point can keep a few
        # hundredths "unserved": a hexagon is short once that rounds to one person.
        frames.append(g[g["covered_unserved_pop"] >= _MIN_SHORT_POP])
    return _hexagon_layer(frames, result, "covered_unserved_pop", resolution)


def _demand_cells(result, resolution: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The H3 cell of each demand point inside the study area, that mask, and the resolution
    (found once per resolution and kept in ``result.extras``: h3 takes a point at a time, and
    the gaps and the capacity-short surface both ask)."""
    d = result.demand
    if resolution is None:
        resolution = h3_resolution(result.network.hull.area / 1e6)
    keep = d["status"].to_numpy() != "outside"
    kept = result.extras.get(f"h3_cells_{resolution}")
    if kept is None or not np.array_equal(kept[0], keep):
        lon, lat = d.geometry.x.to_numpy()[keep], d.geometry.y.to_numpy()[keep]
        kept = result.extras[f"h3_cells_{resolution}"] = (keep, h3_cells(lon, lat, resolution))
    return kept[1], keep, resolution


def _per_hexagon(cells: np.ndarray, sums: dict[str, np.ndarray],
                 maxima: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Per-point weights summed (and ``maxima`` maximised) per cell in one group-by."""
    maxima = maxima or {}
    frame = pd.DataFrame({"h3": cells, **sums, **maxima})
    agg = {**{k: (k, "sum") for k in sums}, **{k: (k, "max") for k in maxima}}
    return frame.groupby("h3", sort=False).agg(**agg).reset_index()


def _hexagon_layer(frames: list[pd.DataFrame], result, sort_by: str, resolution: int) -> gpd.GeoDataFrame:
    """The tiers' hexagon tables as one WGS-84 layer, each tier's largest ``sort_by`` first."""
    frames = [f.assign(tier=code)[["h3", "tier", *[c for c in f.columns if c != "h3"]]]
              for f, code in zip(frames, [t.code for t in result.profile.tiers], strict=True)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["h3", "tier", sort_by])
    out = out.sort_values(["tier", sort_by], ascending=[True, False], kind="stable")
    # Each hexagon drawn once, however many tiers it is a row of.
    cells, row = np.unique(out["h3"].to_numpy(np.uint64), return_inverse=True)
    names = np.array([h3.int_to_str(int(c)) for c in cells], dtype=object)
    geoms = np.array([shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(n)]) for n in names],
                     dtype=object)
    geoms, out["h3"] = geoms[row], names[row]
    gdf = gpd.GeoDataFrame(out.reset_index(drop=True), geometry=geoms, crs=4326)
    gdf["resolution"] = resolution
    return gdf
