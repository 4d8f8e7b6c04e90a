"""Make data/chengdu_facilities.csv: an illustrative tiered set of service complexes for the
Chengdu extract, placed on real OSM features (government offices, markets, post offices,
libraries, supermarkets, parks). Deterministic: running it again gives the same file.

The facilities are illustrative, not the city's real complexes.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from circles.readers.osm import read_osm_features

ROOT = Path(__file__).resolve().parent.parent
TIERS = [  # tier (as Chinese offices write it), OSM tags, how many, floor area m², services
    ("片区级", {"office": ["government"], "amenity": ["townhall", "library"]}, 3, 1800,
     "community_service;health;elderly_care;culture_sport;canteen;market"),
    ("社区级", {"amenity": ["marketplace", "post_office", "library", "hospital", "police"]}, 10, 700,
     "community_service;elderly_care;health;culture_sport"),
    ("驿站级", {"shop": ["supermarket", "convenience"], "leisure": ["park"], "amenity": ["school", "kindergarten", "bank", "pharmacy", "post_office", "clinic"]}, 20, 320,
     "community_service;elderly_care"),
]


def _spread(points: np.ndarray, k: int, taken: np.ndarray) -> list[int]:
    """Farthest-point sampling: k indices spread over the area, away from those taken."""
    chosen: list[int] = []
    dist = np.full(len(points), np.inf)
    for t in taken:
        dist = np.minimum(dist, np.hypot(*(points - t).T))
    for _ in range(min(k, len(points))):
        i = int(np.argmax(dist)) if np.isfinite(dist).any() else 0
        chosen.append(i)
        dist = np.minimum(dist, np.hypot(*(points - points[i]).T))
        dist[i] = -1
    return chosen


def main() -> None:
    warnings.simplefilter("ignore")
    rows = []
    taken = np.empty((0, 2))
    lu = read_osm_features(ROOT / "data" / "chengdu.osm.pbf", kind="landuse")
    residential = shapely.union_all(lu[lu["landuse"] == "residential"].to_crs(32648).geometry.to_numpy())
    for tier, tags, k, area, services in TIERS:
        pois = read_osm_features(ROOT / "data" / "chengdu.osm.pbf", kind="pois", custom_filter=tags)
        keep = np.zeros(len(pois), dtype=bool)
        for key, values in tags.items():
            if key in pois:
                keep |= pois[key].isin(values).to_numpy()
        pois = pois[keep & pois["name"].notna().to_numpy()].sort_values("id").reset_index(drop=True)
        pts = gpd.GeoSeries(shapely.point_on_surface(pois.geometry.to_numpy()), crs=4326)
        # Complexes serve residents: keep features within 400 m of residential land use.
        near = pts.to_crs(32648).distance(residential).to_numpy() <= 400
        pois, pts = pois[near].reset_index(drop=True), pts[near].reset_index(drop=True)
        xy = np.column_stack([pts.to_crs(32648).x, pts.to_crs(32648).y])
        for n, i in enumerate(_spread(xy, k, taken)):
            rng = np.random.default_rng(1000 + len(rows))
            rows.append({"id": f"CD-{len(rows) + 1:03d}", "name": f"{pois['name'][i]}便民服务综合体",
                         "tier": tier, "lon": round(pts.x[i], 6), "lat": round(pts.y[i], 6),
                         "floor_area_m2": int(area * rng.uniform(0.7, 1.4)),
                         "households_capacity": "",
                         "services": services if n % 3 else services.split(";")[0]})
        taken = np.vstack([taken, xy[_spread(xy, k, taken)]])
    out = ROOT / "data" / "chengdu_facilities.csv"
    pd.DataFrame(rows).to_csv(out, index=False, encoding="utf-8")
    print(f"wrote {len(rows)} facilities to {out}")


if __name__ == "__main__":
    main()
