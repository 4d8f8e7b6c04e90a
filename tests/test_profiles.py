from __future__ import annotations

import numpy as np
import pyproj
import pytest

from circles import DataError, ProfileError
from circles.crs import (
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from circles.profiles import get_profile, list_profiles

GEOD = pyproj.Geod(ellps="WGS84")


def test_builtins_and_thresholds():
    assert list_profiles() == ["deyang", "gb50180", "tdt1062"]
    d = get_profile(None)
    assert d.name == "deyang" and d.nested
    assert [d.threshold_minutes(t) for t in d.tiers] == [15, 10, 5]
    assert d.threshold_metres("station") == pytest.approx(375)  # 4.5 km/h
    g = get_profile("gb50180")
    assert not g.nested
    assert [g.threshold_metres(t) for t in g.tiers] == [1000, 500, 300]
    assert g.tier("district").population_range == (50000, 100000)


@pytest.mark.parametrize("key", ["station", "驿站级", "5", 5, 5.0, "5min", "5分钟", "Station"])
def test_tier_resolves_every_form(key):
    assert get_profile("deyang").tier(key).code == "station"


def test_unknown_tier_lists_the_known_ones():
    with pytest.raises(DataError, match="片区级"):
        get_profile("deyang").tier("超级")


def test_eligibility_nested_and_not():
    assert get_profile("deyang").eligible("station") == ["district", "community", "station"]
    assert get_profile("deyang").eligible("district") == ["district"]
    assert get_profile("gb50180").eligible("station") == ["station"]


@pytest.mark.parametrize("name", ["deyang", "gb50180", "tdt1062"])
def test_yaml_and_toml_round_trip(tmp_path, name):
    p = get_profile(name)
    (tmp_path / "p.yaml").write_text(p.to_yaml(), encoding="utf-8")
    (tmp_path / "p.toml").write_text(p.to_toml(), encoding="utf-8")
    assert get_profile(tmp_path / "p.yaml") == p
    assert get_profile(tmp_path / "p.toml") == p


def test_extends_overrides_keys(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text("extends: deyang\nname: elderly\nwalk_kmh: 3.0\nstandards: {persons_per_household: 2.8}\n")
    p = get_profile(path)
    assert p.walk_kmh == 3.0
    assert p.threshold_metres("station") == pytest.approx(250)
    assert p.standards["persons_per_household"] == 2.8
    assert p.standards["floor_area_m2_per_100_households"] == 30  # kept from deyang


@pytest.mark.parametrize(("text", "match"), [
    ("extends: deyang\nspeed: 4\n", "unknown key"),
    ("extends: deyang\nwalk_kmh: 40\n", "outside 1-10"),
    ("name: x\ntiers: [{code: a, minutes: 5, metres: 300}]\n", "exactly one"),
    ("name: x\ntiers: [{code: a, minutes: -5}]\n", "positive"),
    ("name: x\ntiers: [{code: a, minutes: 5}, {code: a, minutes: 10}]\n", "duplicate"),
    ("name: x\n", "no 'tiers'"),
    ("name: [unclosed\n", "cannot parse"),
])
def test_invalid_profiles_are_clear_errors(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=match) as err:
        get_profile(path)
    assert str(path) in str(err.value)


def test_unknown_profile_name():
    with pytest.raises(ProfileError, match="deyang"):
        get_profile("nowhere")


# --- coordinate systems -------------------------------------------------------------------------

def test_gcj02_reference_point():
    # Tiananmen: WGS-84 (116.391265, 39.907339) is GCJ-02 (116.397506, 39.908749) in the
    # reference tables used by eviltransform and coordtransform's tests (about 550 m apart).
    lon, lat = wgs84_to_gcj02(116.391265, 39.907339)
    assert GEOD.inv(lon, lat, 116.397506, 39.908749)[2] < 5
    back = gcj02_to_wgs84(lon, lat)
    assert GEOD.inv(back[0], back[1], 116.391265, 39.907339)[2] < 0.01


def test_bd09_reference_point():
    # Baidu's documented offset from GCJ-02 is about 0.0065 / 0.006 degrees near Beijing.
    blon, blat = wgs84_to_bd09(116.391265, 39.907339)
    assert 0.010 < blon - 116.391265 < 0.016
    assert 0.006 < blat - 39.907339 < 0.009


def test_round_trips_inside_china_under_half_a_metre():
    lon, lat = np.meshgrid(np.linspace(74, 134, 30), np.linspace(19, 53, 30))
    lon, lat = lon.ravel(), lat.ravel()
    for fwd, back in ((wgs84_to_gcj02, gcj02_to_wgs84), (wgs84_to_bd09, bd09_to_wgs84)):
        rl, rt = back(*fwd(lon, lat))
        assert GEOD.inv(lon, lat, rl, rt)[2].max() < 0.5


def test_gcj02_is_wgs84_outside_china():
    lon, lat = wgs84_to_gcj02(np.array([2.35, -74.0]), np.array([48.85, 40.7]))
    np.testing.assert_allclose(lon, [2.35, -74.0])
    np.testing.assert_allclose(lat, [48.85, 40.7])


def test_named_and_epsg_systems():
    x, y = from_wgs84(104.06, 30.67, "EPSG:4544")
    lon, lat = to_wgs84(x, y, "EPSG:4544")
    assert abs(lon - 104.06) < 1e-9 and abs(lat - 30.67) < 1e-9
    lon2, lat2 = to_wgs84(104.06, 30.67, "cgcs2000")
    assert abs(lon2 - 104.06) < 1e-6  # CGCS2000 and WGS-84 agree to centimetres
    with pytest.raises(DataError, match="gcj02"):
        to_wgs84(1, 1, "mars")
