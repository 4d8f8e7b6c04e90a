from __future__ import annotations

import numpy as np
import pyproj
import pytest

from circles import DataError
from circles.readers.crs import (
    WGS84,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    parse_crs,
    to_wgs84,
    utm_crs,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = pyproj.Geod(ellps="WGS84")


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


# (wgs_lon, wgs_lat, gcj_lon, gcj_lat): the reference pairs in googollee/eviltransform's tests
# (python/test.py and go/transform_test.go, "shanghai", "shenzhen", "beijing").
EVILTRANSFORM = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),
]
# wandergis/coordtransform test/app.js: every function applied to (116.404, 39.915), with the
# printed results. bd09togcj02 is the closed-form inverse and gcj02towgs84 the one-step one.
WANDERGIS_IN = (116.404, 39.915)
WANDERGIS = {
    "wgs84togcj02": (116.41024449916938, 39.91640428150164),
    "gcj02tobd09": (116.41036949371029, 39.92133699351021),
    "bd09togcj02": (116.39762729119315, 39.90865673957631),
    "gcj02towgs84": (116.39775550083061, 39.91359571849836),
}


@pytest.mark.parametrize(("wlon", "wlat", "glon", "glat"), EVILTRANSFORM)
def test_eviltransform_reference_pairs(wlon, wlat, glon, glat):
    lon, lat = wgs84_to_gcj02(wlon, wlat)
    assert lon == pytest.approx(glon, abs=1e-9)
    assert lat == pytest.approx(glat, abs=1e-9)
    back = gcj02_to_wgs84(glon, glat)
    assert _metres(*back, wlon, wlat) < 0.01  # eviltransform's own bound for its exact inverse: 0.5 m


def test_wandergis_reference_values():
    lon, lat = wgs84_to_gcj02(*WANDERGIS_IN)
    assert (lon, lat) == pytest.approx(WANDERGIS["wgs84togcj02"], abs=1e-9)
    lon, lat = gcj02_to_bd09(*WANDERGIS_IN)
    assert (lon, lat) == pytest.approx(WANDERGIS["gcj02tobd09"], abs=1e-9)


def test_inverses_beat_the_published_approximations():
    # The closed-form BD-09 inverse and the one-step GCJ-02 inverse miss by centimetres here (and
    # by up to metres elsewhere in China); ours map back onto the input exactly.
    ours = bd09_to_gcj02(*WANDERGIS_IN)
    assert _metres(*ours, *WANDERGIS["bd09togcj02"]) < 0.1
    assert _metres(*gcj02_to_bd09(*ours), *WANDERGIS_IN) < 1e-6
    assert _metres(*gcj02_to_bd09(*WANDERGIS["bd09togcj02"]), *WANDERGIS_IN) > 0.01

    ours = gcj02_to_wgs84(*WANDERGIS_IN)
    assert _metres(*ours, *WANDERGIS["gcj02towgs84"]) < 0.5
    assert _metres(*wgs84_to_gcj02(*ours), *WANDERGIS_IN) < 1e-6
    assert _metres(*wgs84_to_gcj02(*WANDERGIS["gcj02towgs84"]), *WANDERGIS_IN) > 0.01


def test_bd09_is_gcj02_plus_baidus_offset():
    blon, blat = wgs84_to_bd09(*EVILTRANSFORM[2][:2])
    glon, glat = EVILTRANSFORM[2][2:]
    assert 0.005 < blon - glon < 0.008
    assert 0.005 < blat - glat < 0.008


@pytest.fixture(scope="module")
def china_grid() -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.meshgrid(np.linspace(73.6, 134.9, 60), np.linspace(18.2, 53.4, 60))
    return lon.ravel(), lat.ravel()


@pytest.mark.parametrize(("fwd", "back"), [(wgs84_to_gcj02, gcj02_to_wgs84),
                                           (gcj02_to_wgs84, wgs84_to_gcj02),
                                           (wgs84_to_bd09, bd09_to_wgs84),
                                           (bd09_to_wgs84, wgs84_to_bd09),
                                           (gcj02_to_bd09, bd09_to_gcj02)])
def test_round_trips_over_china_within_a_millimetre(china_grid, fwd, back):
    lon, lat = china_grid
    moved = fwd(lon, lat)
    assert _metres(lon, lat, *moved).min() > 10  # every point moved (GCJ-02: 44 m to ~700 m)
    rl, rt = back(*moved)
    assert _metres(lon, lat, rl, rt).max() < 0.001  # required: < 0.5 m


@pytest.mark.parametrize(("lon", "lat"), [(2.3522, 48.8566), (-74.006, 40.7128), (139.6917, 35.6895),
                                          (151.2093, -33.8688), (37.6173, 55.7558)])
def test_gcj02_is_wgs84_outside_china(lon, lat):
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert to_wgs84(lon, lat, "gcj02") == (lon, lat)


def test_vectorised_shapes_and_scalars():
    lon = np.array([[104.06, 104.07], [104.08, 104.09]])
    lat = np.full((2, 2), 30.67)
    for f in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        x, y = f(lon, lat)
        assert x.shape == y.shape == (2, 2)
    x, y = to_wgs84([104.06, 104.07], 30.67, "gcj02")  # a scalar pairs with every value
    assert x.shape == (2,)
    x, y = gcj02_to_wgs84(104.06, 30.67)
    assert np.ndim(x) == 0
    x, y = gcj02_to_wgs84(np.array([np.nan, 104.06]), np.array([30.67, 30.67]))
    assert np.isnan(x[0])
    assert np.isfinite(x[1])
    with pytest.raises(DataError, match="3 x values but 2 y values"):
        to_wgs84([1, 2, 3], [1, 2], "bd09")


@pytest.mark.parametrize(("name", "expected"), [
    ("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("Amap", "gcj02"), ("tencent", "gcj02"), ("高德", "gcj02"),
    ("bd09", "bd09"), ("BD-09", "bd09"), ("baidu", "bd09"), ("百度", "bd09"),
])
def test_parse_chinese_names(name, expected):
    assert parse_crs(name) == expected


@pytest.mark.parametrize(("name", "epsg"), [
    ("wgs84", 4326), ("WGS 84", 4326), (None, 4326), ("cgcs2000", 4490), ("CGCS 2000", 4490),
    ("EPSG:4547", 4547), (4547, 4547), ("epsg:32648", 32648), (pyproj.CRS.from_epsg(4544), 4544),
])
def test_parse_pyproj_names(name, epsg):
    c = parse_crs(name)
    assert isinstance(c, pyproj.CRS)
    assert c.to_epsg() == epsg


@pytest.mark.parametrize(("crs", "lon", "lat", "cm"), [
    ("EPSG:4547", 114.30, 30.59, 114),  # CGCS2000 / 3-degree Gauss-Kruger CM 114E, Wuhan
    ("EPSG:4544", 104.06, 30.67, 105),  # CM 105E, Chengdu
])
def test_projected_round_trip(crs, lon, lat, cm):
    x, y = from_wgs84(lon, lat, crs)
    assert abs(x - 500000) < 200000
    assert 2e6 < y < 5e6
    assert np.sign(x - 500000) == np.sign(lon - cm)
    back = to_wgs84(x, y, crs)
    assert _metres(lon, lat, *back) < 1e-6


def test_utm_and_cgcs2000():
    c = utm_crs(104.06, 30.67)
    assert c.to_epsg() == 32648
    x, y = from_wgs84([104.06, 104.1], [30.67, 30.7], c)
    back = to_wgs84(x, y, c)
    assert _metres(np.array([104.06, 104.1]), np.array([30.67, 30.7]), *back).max() < 1e-6
    lon, lat = to_wgs84(104.06, 30.67, "cgcs2000")
    assert _metres(lon, lat, 104.06, 30.67) < 0.01  # CGCS2000 and WGS-84 agree to centimetres
    assert from_wgs84(104.06, 30.67, WGS84) == (104.06, 30.67)


@pytest.mark.parametrize("name", ["nonsense", "EPSG:99999999", "gcj-03"])
def test_unknown_systems_list_the_accepted_ones(name):
    with pytest.raises(DataError) as err:
        to_wgs84(104.06, 30.67, name)
    text = str(err.value)
    assert repr(name) in text
    assert err.value.field == "crs"
    for accepted in ("wgs84", "cgcs2000", "gcj02", "bd09", "EPSG:"):
        assert accepted in text
    with pytest.raises(DataError):
        from_wgs84(104.06, 30.67, name)
