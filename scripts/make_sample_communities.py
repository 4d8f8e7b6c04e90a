"""Write data/chengdu_communities.gpkg: six ILLUSTRATIVE communities over the embedded Chengdu extract.

They are a 3 x 2 grid over the extract's streets, hand-named, with made-up households and workers: sample
data to try ``--units`` and the scorecard on, not Chengdu's real 社区 boundaries or figures.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

import circles

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    net = circles.load_network(ROOT / "data" / "chengdu.osm.pbf")
    lon, lat = net.lonlat()
    xs = np.linspace(lon.min(), lon.max(), 4)
    ys = np.linspace(lat.min(), lat.max(), 3)
    names = ["示例一社区", "示例二社区", "示例三社区", "示例四社区", "示例五社区", "示例六社区"]
    households = [1600, 3200, 1200, None, 2500, 900]
    workers = [8, 12, 3, None, 10, 2]
    cells = [shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(2) for i in range(3)]
    gdf = gpd.GeoDataFrame({"社区": names, "户数": households, "社区工作者": workers,
                            "note": "illustrative sample, not real boundaries or figures"},
                           geometry=cells, crs=4326)
    gdf.to_file(ROOT / "data" / "chengdu_communities.gpkg", engine="pyogrio")


if __name__ == "__main__":
    main()
