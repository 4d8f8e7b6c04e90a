from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from circles import ValidationError, facilities_from_frame, from_osm, read_facilities
from circles.readers.crs import from_wgs84

ROWS = [
    {"名称": "锦江片区中心", "级别": "片区级", "经度": 104.0810, "纬度": 30.6570, "面积": 1800, "编号": "A1"},
    {"名称": "社区中心", "级别": "社区级", "经度": 104.0700, "纬度": 30.6700, "面积": 650, "编号": "A2"},
    {"名称": "驿站", "级别": "5分钟", "经度": 104.0650, "纬度": 30.6650, "面积": 320, "编号": "A3"},
]
GEOD = pyproj.Geod(ellps="WGS84")


def _metres(a: gpd.GeoDataFrame, b: gpd.GeoDataFrame) -> np.ndarray:
    return GEOD.inv(a.geometry.x, a.geometry.y, b.geometry.x, b.geometry.y)[2]


def test_gbk_csv_with_chinese_headers_and_tier_names(tmp_path):
    path = tmp_path / "fac.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False, encoding="gbk")
    fac = read_facilities(path)
    assert list(fac["tier"]) == ["district", "community", "station"]
    assert list(fac["facility_id"]) == ["A1", "A2", "A3"]
    assert list(fac["name"]) == ["锦江片区中心", "社区中心", "驿站"]
    assert fac["floor_area_m2"].tolist() == [1800, 650, 320]
    assert fac.crs.to_epsg() == 4326
    assert fac.geometry.x.iloc[0] == pytest.approx(104.081)


@pytest.mark.parametrize("fmt", ["xlsx", "geojson", "gpkg", "shp"])
def test_every_format_reads_the_same(tmp_path, fmt):
    df = pd.DataFrame(ROWS).rename(columns={"名称": "name", "级别": "tier", "面积": "area", "编号": "id"})
    if fmt == "xlsx":
        path = tmp_path / "fac.xlsx"
        df.to_excel(path, index=False)
    else:
        gdf = gpd.GeoDataFrame(df.drop(columns=["经度", "纬度"]),
                               geometry=shapely.points(df["经度"], df["纬度"]), crs=4326)
        path = tmp_path / f"fac.{fmt}"
        gdf.to_file(path)
    fac = read_facilities(path)
    assert list(fac["tier"]) == ["district", "community", "station"]
    np.testing.assert_allclose(fac.geometry.x, [r["经度"] for r in ROWS], atol=1e-9)


def test_polygon_footprint_connects_at_its_boundary_nearest_the_network(tmp_path, chengdu_net):
    x, y = chengdu_net.x[100], chengdu_net.y[100]
    square = shapely.box(x + 40, y - 20, x + 80, y + 20)  # 40 m east of a street node
    gdf = gpd.GeoDataFrame({"name": ["footprint"], "tier": ["community"]}, geometry=[square],
                           crs=chengdu_net.crs)
    path = tmp_path / "footprint.gpkg"
    gdf.to_file(path)
    fac = read_facilities(path, network=chengdu_net)
    assert fac["status"].iloc[0] == "ok"
    px, py = chengdu_net.from_wgs84(fac.geometry.x.to_numpy(), fac.geometry.y.to_numpy())
    assert shapely.distance(shapely.boundary(square), shapely.points(px[0], py[0])) < 1e-6
    assert fac["offset_m"].iloc[0] <= 40 + 1e-6


def test_every_problem_reported_at_once(tmp_path):
    bad = pd.DataFrame([
        {"name": "ok", "tier": "community", "lon": 104.07, "lat": 30.67, "id": "X"},
        {"name": "no lon", "tier": "community", "lon": None, "lat": 30.67, "id": "Y"},
        {"name": "text lat", "tier": "station", "lon": 104.07, "lat": "north", "id": "Z"},
        {"name": "swapped", "tier": "station", "lon": 30.67, "lat": 104.07, "id": "W"},
        {"name": "bad tier", "tier": "super", "lon": 104.07, "lat": 30.67, "id": "V"},
        {"name": "dup", "tier": "station", "lon": 104.07, "lat": 30.67, "id": "X"},
        {"name": "neg area", "tier": "station", "lon": 104.07, "lat": 30.67, "id": "U", "floor_area_m2": -5},
    ])
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValidationError) as err:
        read_facilities(path)
    problems = {(p["row"], p["problem"]) for p in err.value.problems}
    # Rows as the spreadsheet shows them: the header is row 1, the first facility row 2.
    assert (3, "missing") in problems
    assert (4, "not a number") in problems
    assert any(r == 5 and "swapped" in p for r, p in problems)
    assert (6, "unknown tier") in problems
    assert {(2, "duplicate id"), (7, "duplicate id")} <= problems
    assert (8, "not a non-negative number") in problems
    text = str(err.value)
    assert str(path) in text
    assert "片区级" in text  # the unknown tier's fix lists the known ones


def test_empty_table_and_missing_tier_column(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("name,tier,lon,lat\n")
    with pytest.raises(Exception, match="no rows"):
        read_facilities(empty)
    no_tier = tmp_path / "no_tier.csv"
    pd.DataFrame([{"name": "a", "lon": 104.07, "lat": 30.67}]).to_csv(no_tier, index=False)
    with pytest.raises(ValidationError, match="no tier column"):
        read_facilities(no_tier)


def test_swap_detected_against_the_network(chengdu_net):
    # Both values within ±90, so only the network tells that they are swapped.
    df = pd.DataFrame([{"name": "s", "tier": "station", "lon": 30.67, "lat": 104.07 - 90}])
    df.loc[0, "lat"] = 104.07
    df2 = pd.DataFrame([{"name": "s", "tier": "station", "lon": 30.67, "lat": 80.0}])
    with pytest.raises(ValidationError):
        facilities_from_frame(df, network=chengdu_net)
    fac = facilities_from_frame(df2, network=chengdu_net)  # far away, not a swap: reported, kept
    assert fac["status"].iloc[0] == "outside_area"


def test_status_outside_and_off_network_are_kept(chengdu_net):
    lon, lat = chengdu_net.lonlat()
    df = pd.DataFrame([
        {"name": "on", "tier": "station", "lon": lon[100], "lat": lat[100]},
        {"name": "far", "tier": "station", "lon": 103.5, "lat": 30.2},
    ])
    fac = facilities_from_frame(df, network=chengdu_net)
    assert list(fac["status"]) == ["ok", "outside_area"]
    assert len(fac) == 2
    assert fac["edge"].iloc[1] == -1


def test_gcj02_table_lands_within_a_metre_of_its_wgs84_twin(tmp_path, data_dir, chengdu_net):
    wgs = read_facilities(data_dir / "chengdu_facilities.csv", network=chengdu_net)
    src = pd.read_csv(data_dir / "chengdu_facilities.csv")
    glon, glat = from_wgs84(src["lon"].to_numpy(), src["lat"].to_numpy(), "gcj02")
    assert np.all(np.hypot(glon - src["lon"], glat - src["lat"]) > 1e-4)  # GCJ-02 is offset
    path = tmp_path / "gcj.csv"
    src.assign(lon=glon, lat=glat).to_csv(path, index=False)
    gcj = read_facilities(path, crs="gcj02", network=chengdu_net)
    assert _metres(wgs, gcj).max() < 1.0
    np.testing.assert_array_equal(wgs["edge"], gcj["edge"])


def test_facilities_from_osm_on_chengdu(chengdu_pbf):
    fac = from_osm(chengdu_pbf, "deyang")
    assert len(fac) > 0
    assert set(fac["tier"]) <= {"district", "community", "station"}
    assert fac["name"].str.len().min() > 0
    assert fac.crs.to_epsg() == 4326


def test_entrance_columns_set_where_a_complex_meets_the_street(tmp_path, chengdu_net):
    lon, lat = chengdu_net.lonlat()
    df = pd.DataFrame([{"name": "gate", "tier": "station", "lon": lon[10] + 0.001, "lat": lat[10],
                        "入口经度": lon[200], "入口纬度": lat[200]}])
    fac = facilities_from_frame(df, network=chengdu_net)
    assert fac.geometry.x.iloc[0] == pytest.approx(lon[200])
    assert fac["offset_m"].iloc[0] < 1.0


def test_an_empty_name_is_the_facility_id():
    df = pd.DataFrame({"id": ["S1", "S2"], "name": ["社区服务站", ""], "tier": ["驿站级", "驿站级"],
                       "lon": [104.06, 104.07], "lat": [30.66, 30.67]})
    fac = facilities_from_frame(df)
    assert list(fac["name"]) == ["社区服务站", "S2"]
