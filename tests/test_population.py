from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from circles import DataError, InputFileError
from circles.coverage import compute_coverage
from circles.population import (
    estimate_from_osm,
    from_points,
    from_polygons,
    from_raster,
    read_population,
)

LON0, LAT0, STEP = 104.06, 30.69, 0.001  # a 0.001° (~100 m) grid over central Chengdu


def _grid(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 200, size=(n, n)).astype("float32")


def _raster(path, values, step=STEP, nodata=-9999.0):
    with rasterio.open(path, "w", driver="GTiff", height=values.shape[0], width=values.shape[1],
                       count=1, dtype="float32", crs="EPSG:4326", nodata=nodata,
                       transform=from_origin(LON0, LAT0, step, step)) as dst:
        dst.write(values, 1)
    return path


def _cells(values, step=STEP):
    rows, cols = np.indices(values.shape)
    boxes = shapely.box(LON0 + cols.ravel() * step, LAT0 - (rows.ravel() + 1) * step,
                        LON0 + (cols.ravel() + 1) * step, LAT0 - rows.ravel() * step)
    return gpd.GeoDataFrame({"pop": values.ravel()}, geometry=boxes, crs=4326)


def _conserved(d):
    assert d.points["pop"].sum() + d.excluded["pop"].sum() == pytest.approx(d.input_pop)


def test_raster_conserved_with_nodata_and_negative_cells(tmp_path):
    v = _grid()
    v[0, 0] = -9999.0  # nodata
    v[1, 1] = -5.0     # negative: not people
    d = from_raster(_raster(tmp_path / "p.tif", v))
    _conserved(d)
    good = v[(v > 0)]
    assert d.input_pop == pytest.approx(good.sum())
    assert "negative" in " ".join(d.excluded["reason"])


def test_large_cells_split_into_sub_points(tmp_path):
    v = np.full((3, 3), 90.0, dtype="float32")
    d = from_raster(_raster(tmp_path / "big.tif", v, step=0.003), max_cell_metres=100)
    assert len(d.points) == 9 * 16  # ~290 m cells -> 4 x 4 points each
    assert d.points["pop"].sum() == pytest.approx(810)


def test_raster_and_polygon_grid_give_the_same_coverage(tmp_path, chengdu_net, data_dir):
    from circles.facilities import read_facilities

    v = _grid()
    d_r = from_raster(_raster(tmp_path / "p.tif", v), max_cell_metres=200)  # a point per cell
    cells = _cells(v)
    path = tmp_path / "cells.gpkg"
    cells.to_file(path)
    # A grid coarser than the cells leaves each cell its representative point: its centre.
    d_p = from_polygons(path, pop_column="pop", spacing_metres=10_000)
    assert d_p.input_pop == pytest.approx(d_r.input_pop)
    fac = read_facilities(data_dir / "chengdu_facilities.csv", network=chengdu_net)
    a = compute_coverage(chengdu_net, fac, d_r).by_tier()
    b = compute_coverage(chengdu_net, fac, d_p).by_tier()
    np.testing.assert_allclose(a["covered_pop"], b["covered_pop"], rtol=1e-6)


def test_households_times_persons_and_area_weighted_split(tmp_path):
    poly = shapely.box(104.060, 30.660, 104.070, 30.670)
    gdf = gpd.GeoDataFrame({"households": [1000]}, geometry=[poly], crs=4326)
    resid = gpd.GeoDataFrame(geometry=[shapely.box(104.060, 30.660, 104.065, 30.670)], crs=4326)
    d = from_polygons(gdf, households_column="households", residential=resid)
    assert d.input_pop == pytest.approx(2620)
    assert d.points["pop"].sum() == pytest.approx(2620)
    assert (d.points.geometry.x < 104.065 + 1e-9).all()  # only the residential half holds people
    uniform = from_polygons(gdf, households_column="households")
    assert (uniform.points.geometry.x > 104.065).any()


def test_points_with_groups_and_bad_counts(tmp_path):
    df = pd.DataFrame({"lon": [104.06, 104.07, 104.08, None], "lat": [30.66, 30.67, 30.68, 30.69],
                       "人口": [100, None, -3, 50], "children": [10, 0, 0, 5]})
    path = tmp_path / "pts.csv"
    df.to_csv(path, index=False)
    d = from_points(path, group_columns=("children",))
    _conserved(d)
    assert d.points["pop"].sum() == pytest.approx(100)
    assert d.input_pop == pytest.approx(150)  # 100 located + 50 without coordinates
    assert d.points["children"].sum() == pytest.approx(10)
    reasons = " ".join(d.excluded["reason"])
    assert "missing" in reasons
    assert "negative" in reasons
    assert "coordinates" in reasons


def test_osm_estimate_is_labelled_and_scaled(chengdu_pbf):
    d = estimate_from_osm(chengdu_pbf, total_pop=500_000)
    assert d.is_estimate
    assert "estimate" in d.label
    assert d.points["pop"].sum() == pytest.approx(500_000)
    assert (d.points["source"].str.contains("estimate")).all()
    d2 = estimate_from_osm(chengdu_pbf, density_per_km2=10_000)
    d3 = estimate_from_osm(chengdu_pbf, density_per_km2=20_000)
    assert d3.input_pop == pytest.approx(2 * d2.input_pop)


def test_bad_inputs_are_clear(tmp_path, chengdu_net):
    far = _raster(tmp_path / "far.tif", _grid())
    with rasterio.open(far) as src:
        assert src.bounds.left == LON0
    moved = tmp_path / "elsewhere.tif"
    with rasterio.open(moved, "w", driver="GTiff", height=5, width=5, count=1, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(10.0, 50.0, 0.01, 0.01)) as dst:
        dst.write(np.ones((5, 5), dtype="float32"), 1)
    with pytest.raises(DataError, match="does not overlap"):
        read_population(moved, network=chengdu_net)
    pts = tmp_path / "pts.csv"
    pd.DataFrame({"lon": [104.06], "lat": [30.66], "people": [3]}).to_csv(pts, index=False)
    with pytest.raises(DataError, match="people"):
        read_population(pts, pop_column="residents")
    allbad = tmp_path / "allbad.csv"
    pd.DataFrame({"lon": [104.06], "lat": [30.66], "pop": [float("nan")]}).to_csv(allbad, index=False)
    with pytest.raises(DataError, match="no usable count"):
        read_population(allbad)
    nocrs = tmp_path / "nocrs.geojson"
    nocrs.write_text('{"type":"FeatureCollection","features":[]}')
    with pytest.raises(InputFileError):
        read_population(nocrs)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputFileError, match="empty"):
        read_population(empty)


def test_polygons_in_another_crs_are_reprojected(tmp_path):
    poly = gpd.GeoDataFrame({"pop": [500]}, geometry=[shapely.box(104.06, 30.66, 104.07, 30.67)],
                            crs=4326).to_crs(4544)
    d = from_polygons(poly)
    assert d.points.crs.to_epsg() == 4326
    assert d.points.geometry.x.between(104.06, 104.07).all()
    assert d.points["pop"].sum() == pytest.approx(500)
