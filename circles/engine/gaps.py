"""The gap surface: uncovered population per tier on an H3 hexagon grid."""

from __future__ import annotations

import geopandas as gpd
import h3
import h3.api.numpy_int as h3n
import numpy as np
import pandas as pd
import shapely

__all__ = ["gap_hexagons", "h3_cells", "h3_resolution"]


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
    if resolution is None:
        resolution = h3_resolution(result.network.hull.area / 1e6)
    status = d["status"].to_numpy()
    keep = status != "outside"
    lon, lat = d.geometry.x.to_numpy()[keep], d.geometry.y.to_numpy()[keep]
    cells = h3_cells(lon, lat, resolution)
    pop = d["pop"].to_numpy(float)[keep]
    offnet = status[keep] == "off_network"
    frames = []
    for tier in result.profile.tiers:
        covered = result.covered_mask(tier.code)[keep]
        minutes = d[f"{tier.code}_minutes"].to_numpy(float)[keep]
        unc = ~covered & ~offnet
        df = pd.DataFrame({"h3": cells, "pop": pop, "uncovered_pop": np.where(unc, pop, 0.0),
                           "offnetwork_pop": np.where(offnet, pop, 0.0),
                           "wmin": np.where(unc, minutes * pop, 0.0), "min": np.where(unc, minutes, -np.inf)})
        g = df.groupby("h3", sort=False).agg(pop=("pop", "sum"), uncovered_pop=("uncovered_pop", "sum"),
                                             offnetwork_pop=("offnetwork_pop", "sum"),
                                             wmin=("wmin", "sum"), max_minutes=("min", "max"))
        g = g[(g["uncovered_pop"] > 0) | (g["offnetwork_pop"] > 0)]
        with np.errstate(invalid="ignore", divide="ignore"):
            g["mean_minutes"] = np.where(g["uncovered_pop"] > 0, g["wmin"] / g["uncovered_pop"], np.nan)
        g["max_minutes"] = g["max_minutes"].where(g["uncovered_pop"] > 0)
        g = g.drop(columns="wmin").reset_index()
        g.insert(1, "tier", tier.code)
        frames.append(g)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["h3", "tier"])
    out = out.sort_values(["tier", "uncovered_pop"], ascending=[True, False], kind="stable")
    out["h3"] = out["h3"].astype(np.uint64)
    geoms = [shapely.Polygon([(lo, la) for la, lo in h3.cell_to_boundary(h3.int_to_str(int(c)))])
             for c in out["h3"].to_numpy()]
    out["h3"] = [h3.int_to_str(int(c)) for c in out["h3"].to_numpy()]
    gdf = gpd.GeoDataFrame(out.reset_index(drop=True), geometry=geoms, crs=4326)
    gdf["resolution"] = resolution
    return gdf
