from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin

from circles import DataError, InputFileError, read_population
from circles.engine.coverage import compute_coverage
from circles.readers.crs import wgs84_to_gcj02
from circles.readers.population import (
    estimate_from_osm,
    from_points,
    from_polygons,
    from_raster,
    osm_residential,
)
from circles.readers.population_osm import DEFAULT_DENSITY_PER_KM2
from circles.readers.profiles import get_profile

LON0, LAT0, STEP = 104.06, 30.69, 0.001  # a 0.001° (~100 m) grid over central Chengdu


def _grid(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, size=(n, n)).astype("float32")


def _raster(path, values, *, step=STEP, origin=(LON0, LAT0), crs="EPSG:4326", nodata=-9999.0):
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1],
                       count=1, dtype="float32", crs=crs, nodata=nodata,
                       transform=from_origin(*origin, step, step)) as dst:
        dst.write(values, 1)
    return path


def _cells(values, step=STEP):
    rows, cols = np.indices(values.shape)
    boxes = shapely.box(LON0 + cols.ravel() * step, LAT0 - (rows.ravel() + 1) * step,
                        LON0 + (cols.ravel() + 1) * step, LAT0 - rows.ravel() * step)
    return gpd.GeoDataFrame({"pop": values.ravel()}, geometry=boxes, crs=4326)


def _per_cell(points, shape, step=STEP):
    """People per cell of the test grid, by where each point lies."""
    col = np.floor((points.geometry.x.to_numpy() - LON0) / step).astype(int)
    row = np.floor((LAT0 - points.geometry.y.to_numpy()) / step).astype(int)
    out = np.zeros(shape)
    np.add.at(out, (row, col), points["pop"].to_numpy())
    return out


def _conserved(d):
    assert d.points["pop"].sum() + d.excluded["pop"].sum() == pytest.approx(d.input_pop, rel=1e-9)
    assert d.points.crs.to_epsg() == 4326
    assert (d.points["pop"] > 0).all()


def _area_m2(geom):
    return gpd.GeoSeries([geom], crs=4326).to_crs(32648).area.iloc[0]


# ---------------------------------------------------------------- rasters

def test_raster_cells_become_centre_points_and_bad_cells_are_reported(tmp_path):
    v = _grid()
    v[0, 0] = -9999.0   # nodata: ignored
    v[1, 1] = -5.0      # negative: not people
    v[2, 2] = np.nan    # NaN but not the nodata value
    path = _raster(tmp_path / "p.tif", v)
    with pytest.raises(DataError, match="1 cell holds a negative count") as err:
        from_raster(path, max_cell_metres=150)
    msg = str(err.value)
    assert "p.tif" in msg
    assert "band 1" in msg
    assert "row 2, column 2" in msg
    assert "holds -5" in msg
    assert "--drop-invalid" in msg
    d = from_raster(path, max_cell_metres=150, drop_invalid=True)
    _conserved(d)
    assert d.counts["invalid_dropped"] == 1
    assert any("negative" in n and "--drop-invalid" in n for n in d.notes)
    assert d.input_pop == pytest.approx(v[np.isfinite(v) & (v > 0)].sum())
    reasons = " ".join(d.excluded["reason"])
    assert "negative" in reasons
    assert "NaN" in reasons
    assert "-9999" not in reasons
    np.testing.assert_allclose(_per_cell(d.points, v.shape), np.where(np.isfinite(v) & (v > 0), v, 0))
    first = d.points.iloc[0]  # row 0, column 1: its centre
    assert (first.geometry.x, first.geometry.y) == pytest.approx((LON0 + 1.5 * STEP, LAT0 - 0.5 * STEP))


def test_raster_is_read_over_the_study_area_only(tmp_path):
    v = _grid(seed=1)
    path = _raster(tmp_path / "p.tif", v)
    area = shapely.Polygon([(104.0655, 30.6725), (104.0745, 30.6725), (104.0655, 30.6845)])
    d = from_raster(path, area=area)
    _conserved(d)
    # Read: the cells meeting the area's bounding box (columns 5-14, rows 5-17), not the rest.
    assert d.input_pop == pytest.approx(v[5:18, 5:15].sum())
    assert shapely.contains_xy(area, d.points.geometry.x, d.points.geometry.y).all()
    outside = d.excluded[d.excluded["reason"].str.contains("outside")]
    assert outside["pop"].sum() > 0
    assert d.points["pop"].sum() < d.input_pop


def test_large_cells_are_split_into_sub_points(tmp_path):
    v = np.full((3, 3), 90.0, dtype="float32")
    d = from_raster(_raster(tmp_path / "big.tif", v, step=0.003), max_cell_metres=100)
    _conserved(d)
    # 0.003° at 30.7°N is ~287 m wide and ~332 m tall: 3 x 4 points per cell.
    assert len(d.points) == 9 * 12
    assert d.points["pop"].to_numpy() == pytest.approx(90 / 12)
    np.testing.assert_allclose(_per_cell(d.points, v.shape, step=0.003), v)
    assert "split 3×4" in d.label

    x0, y0 = Transformer.from_crs(4326, 32648, always_xy=True).transform(LON0, LAT0)
    utm = from_raster(_raster(tmp_path / "utm.tif", v, step=250, origin=(x0, y0), crs="EPSG:32648"))
    _conserved(utm)
    assert len(utm.points) == 9 * 9  # 250 m cells: 3 x 3 points of 83 m
    assert utm.points.geometry.x.between(104.05, 104.07).all()


def test_raster_and_polygon_grid_describe_the_same_people(tmp_path, chengdu_net, data_dir):
    from circles import read_facilities

    v = _grid()
    d_r = from_raster(_raster(tmp_path / "p.tif", v))
    path = tmp_path / "cells.gpkg"
    _cells(v).to_file(path)
    d_p = from_polygons(path, pop_column="pop")  # 50 m points: about 2 x 2 per cell
    _conserved(d_p)
    assert "split 1×2" in d_r.label  # 96 m x 111 m cells
    assert len(d_p.points) > 1.5 * len(d_r.points)
    assert d_p.input_pop == pytest.approx(d_r.input_pop)
    np.testing.assert_allclose(_per_cell(d_p.points, v.shape), _per_cell(d_r.points, v.shape))
    fac = read_facilities(data_dir / "chengdu_facilities.csv", network=chengdu_net)
    a = compute_coverage(chengdu_net, fac, d_r).by_tier()
    b = compute_coverage(chengdu_net, fac, d_p).by_tier()
    # Points within ~30 m of the cell centres: covered shares within a point of each other.
    np.testing.assert_allclose(b["covered_pop"], a["covered_pop"], atol=0.01 * d_r.input_pop)
    np.testing.assert_allclose(b["population"], a["population"])


# ---------------------------------------------------------------- polygons

def test_households_are_split_by_area_over_residential_parts(tmp_path):
    block = shapely.box(104.060, 30.660, 104.070, 30.670)
    empty_block = shapely.box(104.070, 30.660, 104.080, 30.670)
    gdf = gpd.GeoDataFrame({"户数": [1000, 500], "children": [100, 40]},
                           geometry=[block, empty_block], crs=4326)
    compound = shapely.box(104.060, 30.660, 104.064, 30.670)
    building = shapely.box(104.0680, 30.6680, 104.0681, 30.6681)  # ~10 m: one point
    resid = gpd.GeoDataFrame(geometry=[compound, shapely.box(104.061, 30.661, 104.062, 30.662), building,
                                       shapely.box(104.09, 30.66, 104.10, 30.67)], crs=4326).to_crs(4544)
    d = from_polygons(gdf, residential=resid, group_columns=("children",))
    _conserved(d)
    assert d.input_pop == pytest.approx(1500 * 2.62)
    in_block = d.points.geometry.x.to_numpy() < 104.070
    pts = d.points[in_block]
    assert pts["pop"].sum() == pytest.approx(2620)
    in_building = shapely.contains_xy(building, pts.geometry.x, pts.geometry.y)
    assert in_building.sum() == 1
    share = _area_m2(building) / (_area_m2(building) + _area_m2(compound))  # the overlap counts once
    assert pts["pop"][in_building].sum() == pytest.approx(2620 * share, rel=1e-4)
    assert shapely.contains_xy(compound, pts.geometry.x[~in_building], pts.geometry.y[~in_building]).all()
    np.testing.assert_allclose(pts["children"], pts["pop"] * 100 / 2620)
    rest = d.points[~in_block]  # no residential part: uniform on the 50 m grid
    assert rest["pop"].sum() == pytest.approx(500 * 2.62)
    np.testing.assert_allclose(rest["pop"], rest["pop"].iloc[0])
    assert len(rest) == pytest.approx(_area_m2(empty_block) / 2500, rel=0.05)
    assert "households" in d.label


def test_households_use_the_profile_persons_per_household(tmp_path):
    path = tmp_path / "xiaoqu.geojson"
    gpd.GeoDataFrame({"name": ["A"], "hh": ["1,000"]}, geometry=[shapely.box(104.06, 30.66, 104.062, 30.662)],
                     crs=4326).to_file(path)
    profile = get_profile("deyang")
    profile.standards["persons_per_household"] = 3.0
    d = read_population(path, households_column="hh", profile=profile)
    assert d.input_pop == pytest.approx(3000)
    assert read_population(path).input_pop == pytest.approx(2620)  # 'hh' found as households


def test_polygons_in_another_crs_are_reprojected_and_a_missing_crs_is_an_error(tmp_path):
    poly = gpd.GeoDataFrame({"pop": [500]}, geometry=[shapely.box(104.06, 30.66, 104.07, 30.67)],
                            crs=4326).to_crs(4544)
    d = from_polygons(poly)
    _conserved(d)
    assert d.points.geometry.x.between(104.06, 104.07).all()
    assert d.points["pop"].sum() == pytest.approx(500)
    path = tmp_path / "noprj.shp"
    poly.to_file(path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(DataError, match="no CRS") as err:
        from_polygons(path)
    assert "crs=" in str(err.value)
    assert "noprj.shp" in str(err.value)
    assert from_polygons(path, crs="EPSG:4544").points.geometry.x.between(104.06, 104.07).all()


# ---------------------------------------------------------------- points

def test_points_with_groups_bad_counts_and_bad_coordinates(tmp_path):
    df = pd.DataFrame({"经度": [104.06, 104.07, 104.08, None, 30.68], "纬度": [30.66, 30.67, 30.68, 30.69, 104.08],
                       "人口": ["1,200", None, -3, 50, 7], "children": [10, 0, 0, 5, None]})
    path = tmp_path / "pts.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match="'' is not a count of people: empty") as err:
        from_points(path, group_columns=("children",))
    assert err.value.row == 3
    assert err.value.field == "人口"
    d = from_points(path, group_columns=("children",), drop_invalid=True)
    _conserved(d)
    assert d.points["pop"].sum() == pytest.approx(1200)
    assert d.input_pop == pytest.approx(1257)  # 1200 located + 50 and 7 not located
    assert d.points["children"].sum() == pytest.approx(10)
    # Rows as the spreadsheet shows them: the header is row 1, the first data row row 2.
    ex = d.excluded[~d.excluded["reason"].str.contains("'children'")].set_index("rows")
    assert "empty" in ex.loc["3", "reason"]
    assert "--drop-invalid" in ex.loc["3", "reason"]
    assert "negative" in ex.loc["4", "reason"]
    assert ex.loc["5", "pop"] == 50
    assert "swapped" in ex.loc["6", "reason"]
    assert ex.loc["6", "pop"] == 7
    group = d.excluded[d.excluded["reason"].str.contains("'children'")]
    assert group["rows"].tolist() == ["6"]
    assert "taken as 0" in group["reason"].iloc[0]
    assert d.counts["invalid_dropped"] == 3
    assert d.counts["thousands_separators"] == 1


def test_points_in_gcj02_and_in_a_projected_layer(tmp_path):
    lon, lat = np.array([104.065, 104.075]), np.array([30.665, 30.675])
    glon, glat = wgs84_to_gcj02(lon, lat)
    path = tmp_path / "amap.csv"
    pd.DataFrame({"lng": glon, "lat": glat, "人数": [10, 20]}).to_csv(path, index=False)
    d = read_population(path, crs="gcj02")
    np.testing.assert_allclose(d.points.geometry.x, lon, atol=1e-6)
    np.testing.assert_allclose(d.points.geometry.y, lat, atol=1e-6)
    layer = gpd.GeoDataFrame({"pop": [10, 20]}, geometry=shapely.points(lon, lat), crs=4326).to_crs(4544)
    layer_path = tmp_path / "entrances.gpkg"
    layer.to_file(layer_path)
    d2 = read_population(layer_path)
    _conserved(d2)
    np.testing.assert_allclose(d2.points.geometry.x, lon, atol=1e-7)
    assert "entrances.gpkg" in d2.label


# ---------------------------------------------------------------- the OSM estimate

def test_osm_estimate_is_labelled_and_scales(chengdu_pbf):
    d = estimate_from_osm(chengdu_pbf, total_pop=500_000)
    _conserved(d)
    assert d.is_estimate
    assert d.points.attrs["is_estimate"]
    assert d.label.startswith("estimate")
    assert d.points["pop"].sum() == pytest.approx(500_000, rel=1e-12)
    assert d.input_pop == 500_000
    assert set(d.points["source"]) == {"estimate: OSM residential buildings", "estimate: OSM residential land use"}
    d10 = estimate_from_osm(chengdu_pbf, density_per_km2=10_000)
    d20 = estimate_from_osm(chengdu_pbf, density_per_km2=20_000)
    assert d20.input_pop == pytest.approx(2 * d10.input_pop)
    np.testing.assert_allclose(d.points["pop"] / d.input_pop, d10.points["pop"] / d10.input_pop)

    res = osm_residential(chengdu_pbf)
    land = res[res["kind"] == "land use"]
    land_km2 = land.to_crs(32648).area.sum() / 1e6
    default = estimate_from_osm(chengdu_pbf)
    assert "default" in default.label
    # Residential land holds at least the default density; buildings outside it add to that.
    assert default.input_pop >= DEFAULT_DENSITY_PER_KM2 * land_km2 * (1 - 1e-9)
    assert default.input_pop < 2 * DEFAULT_DENSITY_PER_KM2 * land_km2
    assert 150 < (res["kind"] == "land use").sum() < 250
    assert (res["kind"] == "building").sum() > 100


def test_osm_residential_levels_follow_the_stated_rule(chengdu_pbf):
    b = osm_residential(chengdu_pbf)
    b = b[b["kind"] == "building"]
    houses = b[b["building"] == "house"]
    assert len(houses)
    assert set(houses["levels"]) <= {2.0} | set(houses["levels"][houses["levels"] != 2.0])
    untagged = b[b["building"].isin(["yes", "apartments"])]
    assert (untagged["levels"] == 6.0).any()
    footprint = b.to_crs(32648).area.to_numpy()
    np.testing.assert_allclose(b["floor_m2"], footprint * b["levels"], rtol=1e-6)


def test_read_population_estimates_over_the_network_area(chengdu_pbf, chengdu_net):
    d = read_population(None, osm_path=chengdu_pbf, network=chengdu_net)
    _conserved(d)
    assert d.is_estimate
    area = gpd.GeoSeries([chengdu_net.hull.buffer(300)], crs=chengdu_net.crs).to_crs(4326).iloc[0]
    assert shapely.contains_xy(area.buffer(1e-6), d.points.geometry.x, d.points.geometry.y).all()
    assert read_population("osm", osm_path=chengdu_pbf).is_estimate
    part = shapely.box(104.06, 30.66, 104.08, 30.68)
    small = estimate_from_osm(chengdu_pbf, total_pop=1000, area=part)
    assert small.input_pop == 1000
    assert small.points["pop"].sum() == pytest.approx(1000)
    assert shapely.contains_xy(part, small.points.geometry.x, small.points.geometry.y).all()


# ---------------------------------------------------------------- bad input

def test_a_raster_off_the_study_area_or_without_people_is_an_error(tmp_path, chengdu_net):
    elsewhere = _raster(tmp_path / "elsewhere.tif", np.ones((5, 5), "float32"), origin=(10.0, 50.0))
    with pytest.raises(DataError, match="does not overlap") as err:
        read_population(elsewhere, network=chengdu_net)
    assert "elsewhere.tif" in str(err.value)
    blank = _raster(tmp_path / "blank.tif", np.full((5, 5), -9999.0, "float32"))
    with pytest.raises(DataError, match="no people"):
        from_raster(blank)
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", height=2, width=2, count=1, dtype="float32") as dst:
        dst.write(np.ones((2, 2), "float32"), 1)
    with pytest.raises(DataError, match="no CRS"):
        from_raster(nocrs)
    fake = tmp_path / "fake.tif"
    fake.write_text("not a raster")
    with pytest.raises(InputFileError, match="cannot read"):
        from_raster(fake)


def test_bad_columns_and_files_are_clear_errors(tmp_path):
    pts = tmp_path / "pts.csv"
    pd.DataFrame({"lon": [104.06], "lat": [30.66], "residents_2020": [3], "note": ["x"]}).to_csv(pts, index=False)
    with pytest.raises(DataError, match="no column 'people'") as err:
        read_population(pts, pop_column="people")
    assert "residents_2020" in str(err.value)
    assert "note" not in str(err.value).split("found:")[1]
    with pytest.raises(DataError, match="no population or household column"):
        read_population(pts)
    with pytest.raises(DataError, match="give one of them"):
        read_population(pts, pop_column="residents_2020", households_column="residents_2020")
    with pytest.raises(DataError, match="no column 'kids'"):
        from_points(pts, pop_column="residents_2020", group_columns=("kids",))

    allbad = tmp_path / "allbad.csv"
    pd.DataFrame({"lon": [104.06, 104.07], "lat": [30.66, 30.67], "pop": [None, -1]}).to_csv(allbad, index=False)
    with pytest.raises(DataError, match="not a count of people"):
        read_population(allbad)
    with pytest.raises(DataError, match="no people in column 'pop'"):
        read_population(allbad, drop_invalid=True)
    nocoords = tmp_path / "nocoords.csv"
    pd.DataFrame({"place": ["a"], "pop": [3]}).to_csv(nocoords, index=False)
    with pytest.raises(DataError, match="coordinate"):
        read_population(nocoords)

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputFileError, match="empty"):
        read_population(empty)
    no_features = tmp_path / "none.geojson"
    no_features.write_text('{"type":"FeatureCollection","features":[]}')
    with pytest.raises(InputFileError, match="no rows"):
        read_population(no_features)
    with pytest.raises(DataError, match="no OSM extract"):
        read_population(None)


def test_estimate_options_are_checked(chengdu_pbf):
    with pytest.raises(DataError, match="not both"):
        estimate_from_osm(chengdu_pbf, total_pop=10, density_per_km2=10)
    with pytest.raises(DataError, match="positive"):
        estimate_from_osm(chengdu_pbf, total_pop=0)
    with pytest.raises(DataError, match="no residential"):
        estimate_from_osm(chengdu_pbf, area=shapely.box(0, 0, 0.01, 0.01))


# ---------------------------------------------------------------- invalid counts (issue 16, item 5)

@pytest.mark.parametrize(("value", "why"), [("约300", "not a number"), ("abc", "not a number"), ("", "empty"),
                                            ("1,2", "an ambiguous thousands"), ("1,20", "an ambiguous thousands"),
                                            ("-5", "negative")])
def test_an_invalid_point_count_names_file_row_field_value_and_fix(tmp_path, value, why):
    path = tmp_path / "pts.csv"
    path.write_text(f'lon,lat,人口\n104.06,30.66,10\n104.07,30.67,20\n104.08,30.68,"{value}"\n',
                    encoding="utf-8")
    with pytest.raises(DataError) as err:
        from_points(path)
    e = err.value
    assert (e.file, e.row, e.field) == (str(path), 4, "人口")  # the fourth spreadsheet row
    assert f"'{value}' is not a count of people: {why}" in str(e)
    assert "--drop-invalid" in e.fix
    assert "correct the value" in e.fix
    d = from_points(path, drop_invalid=True)
    _conserved(d)
    assert d.input_pop == 30
    assert d.counts["invalid_dropped"] == 1
    assert d.excluded["rows"].tolist() == ["4"]
    assert d.excluded["n"].tolist() == [1]


def test_unambiguous_thousands_separators_are_read_and_said(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text('lon,lat,pop\n104.06,30.66,"1,200"\n104.07,30.67,"12,345,678"\n104.08,30.68,"3，400"\n'
                    '104.09,30.69,7\n', encoding="utf-8")
    d = from_points(path)
    assert d.points["pop"].tolist() == [1200, 12_345_678, 3400, 7]
    assert d.counts == {"thousands_separators": 3}
    assert "3 'pop' values written with thousands separators" in d.notes[0]
    assert "rows 2,3,4" in d.notes[0]


def test_invalid_polygon_counts_are_an_error_or_counted_exclusions():
    boxes = [shapely.box(104.06 + i * 0.002, 30.66, 104.062 + i * 0.002, 30.662) for i in range(4)]
    gdf = gpd.GeoDataFrame({"pop": [100.0, np.nan, -3.0, 50.0]}, geometry=boxes, crs=4326)
    with pytest.raises(DataError, match="'' is not a count of people: empty \\(1 more row like it\\)") as err:
        from_polygons(gdf)
    assert err.value.row == 3
    assert err.value.field == "pop"
    d = from_polygons(gdf, drop_invalid=True)
    _conserved(d)
    assert d.input_pop == 150
    assert d.counts["invalid_dropped"] == 2
    assert dict(zip(d.excluded["rows"], d.excluded["n"], strict=True)) == {"3": 1, "4": 1}
    assert [n for n in d.notes if "--drop-invalid" in n] == [
        "excluded rows with an invalid 'pop' (empty; row dropped with --drop-invalid): 1 (rows 3)",
        "excluded rows with an invalid 'pop' (negative; row dropped with --drop-invalid): 1 (rows 4)"]


# ---------------------------------------------------------------- residential spread (issue 16, item 1)

def _owner_sums(points, polys):
    """People per polygon by where each point lies (a separate point-in-polygon test)."""
    x, y = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    return np.array([points["pop"].to_numpy()[shapely.contains_xy(p, x, y)].sum() for p in polys])


def test_polygon_people_go_to_buildings_by_floor_area_else_land_use_else_evenly(tmp_path):
    # Three 200 m cells: one half covered by two equal buildings of 3 and 1 levels, one holding a
    # residential land-use block only, one with nothing residential.
    cells = [shapely.box(104.060 + i * 0.002, 30.660, 104.062 + i * 0.002, 30.662) for i in range(3)]
    tall = shapely.box(104.0600, 30.6600, 104.0610, 30.6610)
    low = shapely.box(104.0610, 30.6600, 104.0620, 30.6610)
    block = shapely.box(104.0625, 30.6605, 104.0635, 30.6615)
    pop = gpd.GeoDataFrame({"人口": [1000, 600, 300]}, geometry=cells, crs=4326)
    pop.to_file(tmp_path / "cells.gpkg")
    gpd.GeoDataFrame({"层数": [3, 1]}, geometry=[tall, low], crs=4326).to_crs(4547).to_file(tmp_path / "bld.shp")
    gpd.GeoDataFrame({"name": ["小区"]}, geometry=[block], crs=4326).to_crs(3857).to_file(tmp_path / "lu.geojson")
    res = pd.concat([gpd.read_file(tmp_path / "bld.shp").to_crs(4326).assign(kind="building", levels=[3, 1]),
                     gpd.read_file(tmp_path / "lu.geojson").to_crs(4326).assign(kind="land use", levels=np.nan)])
    d = read_population(tmp_path / "cells.gpkg", residential=res[["kind", "levels", "geometry"]])
    _conserved(d)
    np.testing.assert_allclose(_owner_sums(d.points, cells), [1000, 600, 300], rtol=1e-9)  # each cell keeps its own
    x, y = d.points.geometry.x.to_numpy(), d.points.geometry.y.to_numpy()
    people = d.points["pop"].to_numpy()
    # Equal footprints, 3 and 1 levels: 750 and 250; nobody on the empty half.
    assert people[shapely.contains_xy(tall, x, y)].sum() == pytest.approx(750, rel=1e-6)
    assert people[shapely.contains_xy(low, x, y)].sum() == pytest.approx(250, rel=1e-6)
    assert people[shapely.contains_xy(block, x, y)].sum() == pytest.approx(600)
    rest = d.points[shapely.contains_xy(cells[2], x, y)]
    np.testing.assert_allclose(rest["pop"], 300 / len(rest))
    assert d.counts["spread"] == {"buildings": 1, "landuse": 1, "even": 1}
    assert set(d.points["source"]) == {"polygons: cells.gpkg, buildings", "polygons: cells.gpkg, landuse",
                                       "polygons: cells.gpkg, even"}
    assert "1 over residential buildings (footprint × levels), 1 over residential land use, 1 evenly" in d.notes[0]
    # The same from the two files: 层数 makes the Shapefile buildings; the GeoJSON is land use.
    for file, expect in ((tmp_path / "bld.shp", {"buildings": 1, "landuse": 0, "even": 2}),
                         (tmp_path / "lu.geojson", {"buildings": 0, "landuse": 1, "even": 2})):
        f = read_population(tmp_path / "cells.gpkg", residential=file)
        assert f.counts["spread"] == expect
        np.testing.assert_allclose(_owner_sums(f.points, cells), [1000, 600, 300], rtol=1e-9)
    f = read_population(tmp_path / "cells.gpkg", residential=tmp_path / "bld.shp")
    fx, fy = f.points.geometry.x.to_numpy(), f.points.geometry.y.to_numpy()
    assert f.points["pop"].to_numpy()[shapely.contains_xy(tall, fx, fy)].sum() == pytest.approx(750, rel=1e-4)


def test_polygons_are_spread_over_the_extracts_residential_buildings(chengdu_pbf, chengdu_net):
    cells = [shapely.box(104.050 + i * 0.004, 30.652, 104.054 + i * 0.004, 30.660) for i in range(4)]
    gdf = gpd.GeoDataFrame({"pop": [4000, 3000, 2000, 1000]}, geometry=cells, crs=4326)
    d = read_population(gdf, network=chengdu_net, residential=chengdu_pbf)
    _conserved(d)
    np.testing.assert_allclose(_owner_sums(d.points, cells), [4000, 3000, 2000, 1000], rtol=1e-9)
    assert d.counts["spread"]["buildings"] >= 1
    b = osm_residential(chengdu_pbf)
    b = b[b["kind"] == "building"]
    on_b = d.points[d.points["source"].str.endswith("buildings")]
    x, y = on_b.geometry.x.to_numpy(), on_b.geometry.y.to_numpy()
    housing = shapely.union_all(shapely.buffer(b.geometry.to_numpy(), 1e-7))
    assert shapely.contains_xy(housing, x, y).all()  # every person of a 'buildings' cell stands in a residential building
    assert sum(d.counts["spread"].values()) == 4


def test_a_residential_layer_without_crs_or_polygons_is_a_clear_error(tmp_path):
    gdf = gpd.GeoDataFrame({"pop": [10]}, geometry=[shapely.box(104.06, 30.66, 104.062, 30.662)], crs=4326)
    with pytest.raises(DataError, match="residential layer has no CRS"):
        from_polygons(gdf, residential=gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]))
    pts = tmp_path / "res.geojson"
    gpd.GeoDataFrame(geometry=[shapely.Point(104.06, 30.66)], crs=4326).to_file(pts)
    with pytest.raises(DataError, match="no polygons") as err:
        from_polygons(gdf, residential=pts)
    assert "res.geojson" in str(err.value)


# ---------------------------------------------------------------- the run: CLI, manifest, report

def test_a_coverage_run_spreads_on_housing_and_counts_dropped_rows(tmp_path, capsys):
    import json

    from circles.cli import main
    from circles.outputs.report import write_report
    from circles.runs.audit import load_config

    cells = [shapely.box(104.050 + i * 0.004, 30.652, 104.054 + i * 0.004, 30.660) for i in range(4)]
    path = tmp_path / "cells.gpkg"
    gpd.GeoDataFrame({"pop": [4000, None, 2000, 1000]}, geometry=cells, crs=4326).to_file(path)
    assert main(["coverage", "--population", str(path), "--out", str(tmp_path / "refused")]) == 1
    err = capsys.readouterr().err
    assert "cells.gpkg" in err
    assert "'pop'" in err
    assert "--drop-invalid" in err
    out = tmp_path / "run"
    assert main(["coverage", "--population", str(path), "--drop-invalid", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # The network is the embedded OSM extract: its residential buildings take the people.
    assert "population: polygons spread 2 over residential buildings" in printed
    assert "population: excluded rows with an invalid 'pop' (empty; row dropped with --drop-invalid): 1" in printed
    pop = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["population"]
    assert pop["invalid_dropped"] == 1
    assert pop["spread"] == {"buildings": 2, "landuse": 0, "even": 1}
    assert pop["excluded"][0]["n"] == 1
    write_report(out, lang="en")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "row dropped with --drop-invalid): 1" in html
    assert "spread 2 over residential buildings" in html

    config = tmp_path / "audit.yaml"
    config.write_text("name: A\npopulation: cells.gpkg\nresidential: homes.gpkg\ndrop_invalid: true\n",
                      encoding="utf-8")
    city = load_config(config)[0]
    assert city["residential"] == str(tmp_path / "homes.gpkg")
    assert city["drop_invalid"] is True
    config.write_text("name: A\ndrop_invalid: 'no'\n", encoding="utf-8")
    with pytest.raises(DataError, match="drop_invalid must be true or false"):
        load_config(config)


def test_large_raster_cells_go_onto_housing_too(tmp_path):
    # A 2 x 2 raster of 250 m cells in UTM 48N; the top-left cell holds two equal buildings (3 and 1
    # levels), the top-right one a residential block, the bottom ones nothing residential.
    x0, y0 = 404_000.0, 3_396_000.0
    v = np.array([[800, 600], [200, 100]], dtype="float32")
    path = _raster(tmp_path / "census.tif", v, step=250, origin=(x0, y0), crs="EPSG:32648")
    tall, low = shapely.box(x0 + 20, y0 - 120, x0 + 100, y0 - 20), shapely.box(x0 + 120, y0 - 120, x0 + 200, y0 - 20)
    block = shapely.box(x0 + 300, y0 - 200, x0 + 450, y0 - 50)
    res = gpd.GeoDataFrame({"kind": ["building", "building", "land use"], "levels": [3, 1, np.nan]},
                           geometry=[tall, low, block], crs=32648)
    d = from_raster(path, residential=res)
    _conserved(d)
    pts = d.points.to_crs(32648)
    x, y, people = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy(), pts["pop"].to_numpy()
    cells = [shapely.box(x0 + c * 250, y0 - (r + 1) * 250, x0 + (c + 1) * 250, y0 - r * 250)
             for r in range(2) for c in range(2)]
    np.testing.assert_allclose([people[shapely.contains_xy(c, x, y)].sum() for c in cells], v.ravel(), rtol=1e-9)
    assert people[shapely.contains_xy(tall, x, y)].sum() == pytest.approx(600, rel=1e-6)  # 800 × 3/4
    assert people[shapely.contains_xy(low, x, y)].sum() == pytest.approx(200, rel=1e-6)
    assert people[shapely.contains_xy(block, x, y)].sum() == pytest.approx(600, rel=1e-6)
    assert d.counts["spread"] == {"buildings": 1, "landuse": 1, "even": 2}
    assert "cells spread over residential parts" in d.label
    assert "split" in from_raster(path).label  # without a layer: an even sub-grid, as before
