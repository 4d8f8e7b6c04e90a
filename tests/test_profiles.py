from __future__ import annotations

import json

import pytest
import yaml

from circles import DataError, InputFileError, ProfileError
from circles.readers.profiles import Profile, Tier, get_profile, list_profiles

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# --- built-ins ----------------------------------------------------------------------------------


def test_list_and_default():
    assert list_profiles() == ["deyang", "gb50180", "tdt1062", "baoji", "neijiang", "weinan"]
    assert get_profile(None).name == "deyang"
    assert get_profile("DeYang").name == "deyang"


def test_deyang_minutes_at_four_and_a_half_kmh():
    d = get_profile("deyang")
    assert d.nested
    assert d.walk_kmh == 4.5
    assert d.metres_per_minute == pytest.approx(75)
    assert [t.code for t in d.tiers] == ["district", "community", "station"]
    assert [t.name_zh for t in d.tiers] == ["片区级", "社区级", "驿站级"]
    assert [d.threshold_minutes(t) for t in d.tiers] == [15, 10, 5]
    assert [d.threshold_metres(t) for t in d.tiers] == pytest.approx([1125, 750, 375])
    assert d.standards["floor_area_m2_per_100_households"] == 30
    assert d.standards["persons_per_household"] == 2.62
    assert d.osm_tags["district"] == {"amenity": ["townhall"]}
    assert d.lang == "zh"
    assert d.snap_cap_metres == 300
    assert d.street_buffer_metres == 30


def test_gb50180_distances_and_table_4_0_1():
    g = get_profile("gb50180")
    assert not g.nested
    assert [t.code for t in g.tiers] == ["district", "community", "station"]
    assert [g.threshold_metres(t) for t in g.tiers] == [1000, 500, 300]
    assert g.threshold_minutes("station") == pytest.approx(4.0)  # 300 m at 75 m/min
    assert [t.population_range for t in g.tiers] == [(50000, 100000), (15000, 25000), (5000, 12000)]
    assert [t.dwellings_range for t in g.tiers] == [(17000, 32000), (5000, 8000), (1500, 4000)]
    assert g.tier("district").name_zh == "十五分钟生活圈居住区"


def test_tdt1062_fifteen_minutes_is_one_kilometre():
    t = get_profile("tdt1062")
    assert t.threshold_metres("district") == 1000  # exactly, at the profile's 4.0 km/h
    assert t.tier("district").population_range == (50000, 100000)
    assert "choice" in t.sources["tiers"]
    assert "TD/T 1062-2021" in t.sources["tiers"]


def test_builtins_are_fresh_copies():
    p = get_profile("deyang")
    p.standards["persons_per_household"] = 9
    p.walk_kmh = 3
    assert get_profile("deyang").standards["persons_per_household"] == 2.62
    assert get_profile("deyang").walk_kmh == 4.5
    assert get_profile(p) is p


def test_every_tier_has_a_hex_colour_and_distinct_rank():
    for name in list_profiles():
        p = get_profile(name)
        assert len({t.rank for t in p.tiers}) == len(p.tiers)
        assert [t.rank for t in p.tiers] == sorted((t.rank for t in p.tiers), reverse=True)
        assert all(t.colour.startswith("#") and len(t.colour) == 7 for t in p.tiers)
        assert set(p.osm_tags) <= {t.code for t in p.tiers}


# --- tier resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["station", "Station", " station ", "驿站级", 5, 5.0, "5", "5.0",
                                 "5min", "5 min", "5分钟", "5分", "五分钟", "５分钟", "375m", "375 米"])
def test_deyang_tier_by_every_form(key):
    assert get_profile("deyang").tier(key).code == "station"


@pytest.mark.parametrize(("key", "code"), [("15", "district"), ("十五分钟", "district"),
                                           ("片区级", "district"), ("10分钟", "community"),
                                           ("community", "community")])
def test_deyang_other_tiers(key, code):
    assert get_profile("deyang").tier(key).code == code


@pytest.mark.parametrize(("key", "code"), [
    ("district", "district"), ("十五分钟生活圈居住区", "district"), ("15-minute life circle", "district"),
    (15, "district"), ("15min", "district"), ("15分钟", "district"), ("十五分钟生活圈", "district"),
    (1000, "district"), ("1000m", "district"), ("10", "community"), (500, "community"),
    ("5分钟", "station"), (300, "station"), ("300 metres", "station"),
])
def test_gb50180_tiers_by_nominal_minutes_and_metres(key, code):
    assert get_profile("gb50180").tier(key).code == code


def test_tier_object_and_thresholds_by_any_key():
    d = get_profile("deyang")
    t = d.tier("station")
    assert d.tier(t) is t
    assert d.threshold_metres("驿站级") == d.threshold_metres(t) == d.threshold_metres(5)


@pytest.mark.parametrize("key", ["超级", "7", "7min", "station2", "", "5km"])
def test_unknown_tier_lists_the_known_ones(key):
    with pytest.raises(DataError) as err:
        get_profile("deyang").tier(key)
    text = str(err.value)
    assert repr(key) in text
    for known in ("district", "片区级", "community", "社区级", "station", "驿站级", "15 min", "5 min"):
        assert known in text


# --- eligibility --------------------------------------------------------------------------------


def test_eligibility_nested():
    d = get_profile("deyang")
    assert d.eligible("station") == ["district", "community", "station"]
    assert d.eligible("community") == ["district", "community"]
    assert d.eligible("district") == ["district"]
    assert d.eligible("驿站级") == d.eligible(5)


@pytest.mark.parametrize("name", ["gb50180", "tdt1062"])
def test_eligibility_not_nested(name):
    p = get_profile(name)
    assert [p.eligible(t.code) for t in p.tiers] == [["district"], ["community"], ["station"]]


# --- dumps and round trips ----------------------------------------------------------------------


def _custom() -> Profile:
    p = get_profile("gb50180")
    p.name = "my-city"
    p.title_en = 'A "quoted" title \\ with a backslash'
    p.walk_kmh = 4.0
    p.standards["own_indicator"] = 12.5
    p.sources["own_indicator"] = "城市自定：每千人 12.5 m²\nsecond line"
    p.services = {"categories": [{"code": "canteen", "metres": 500, "osm": {"amenity": ["restaurant"]},
                                  "nested": {"deep": [1, 2.5, True]}}], "enabled": True}
    return p


@pytest.mark.parametrize("profile", [*list_profiles(), "custom"])
def test_yaml_and_toml_round_trip(tmp_path, profile):
    p = _custom() if profile == "custom" else get_profile(profile)
    (tmp_path / "p.yaml").write_text(p.to_yaml(), encoding="utf-8")
    (tmp_path / "p.toml").write_text(p.to_toml(), encoding="utf-8")
    assert get_profile(tmp_path / "p.yaml") == p
    assert get_profile(tmp_path / "p.toml") == p
    assert get_profile(str(tmp_path / "p.yaml")) == p


def test_dumps_are_plain_documents():
    p = get_profile("gb50180")
    d = p.to_dict()
    json.dumps(d)
    assert d["tiers"][0]["population_range"] == [50000, 100000]
    assert "minutes" not in d["tiers"][0]  # unset fields are left out
    assert yaml.safe_load(p.to_yaml()) == d
    assert tomllib.loads(p.to_toml())["tiers"][2]["metres"] == 300
    assert p.to_yaml().startswith("# circles profile 'gb50180'")
    assert "十五分钟生活圈居住区" in p.to_yaml()  # Chinese kept readable, not escaped


def test_toml_cannot_hold_null():
    p = get_profile("deyang")
    p.services = {"canteen": None}
    with pytest.raises(ProfileError, match="YAML"):
        p.to_toml()
    assert "canteen: null" in p.to_yaml()


# --- extends ------------------------------------------------------------------------------------


def test_extends_overrides_scalars_and_merges_dicts(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text("extends: deyang\nname: elderly\nwalk_kmh: 3.0\n"
                    "standards: {persons_per_household: 2.8}\n", encoding="utf-8")
    p = get_profile(path)
    assert p.name == "elderly"
    assert p.walk_kmh == 3.0
    assert p.nested
    assert p.threshold_metres("station") == pytest.approx(250)
    assert p.standards["persons_per_household"] == 2.8
    assert p.standards["floor_area_m2_per_100_households"] == 30  # kept from deyang
    assert [t.code for t in p.tiers] == ["district", "community", "station"]


def test_extends_merges_tiers_by_code(tmp_path):
    path = tmp_path / "city.yaml"
    path.write_text(
        "extends: deyang\nname: city\ntiers:\n"
        "  - {code: station, minutes: 6}\n"
        "  - {code: community, metres: 600}\n"
        "  - {code: kiosk, name_zh: 便民点, minutes: 3, rank: 0, colour: '#ff0000'}\n"
        "osm_tags: {kiosk: {amenity: vending_machine}}\n", encoding="utf-8")
    p = get_profile(path)
    assert [t.code for t in p.tiers] == ["district", "community", "station", "kiosk"]
    assert p.threshold_minutes("station") == 6
    assert p.tier("station").name_zh == "驿站级"
    assert p.tier("community").minutes is None
    assert p.threshold_metres("community") == 600
    assert p.tier("便民点").code == "kiosk"
    assert p.eligible("kiosk") == ["district", "community", "station", "kiosk"]
    assert p.osm_tags["kiosk"] == {"amenity": ["vending_machine"]}
    assert p.osm_tags["district"] == {"amenity": ["townhall"]}


def test_extends_a_file_beside_it(tmp_path):
    (tmp_path / "base.toml").write_text(get_profile("gb50180").to_toml(), encoding="utf-8")
    sub = tmp_path / "cities"
    sub.mkdir()
    (sub / "x.yml").write_text("extends: ../base.toml\nname: x\nnested: true\n", encoding="utf-8")
    p = get_profile(sub / "x.yml")
    assert p.nested
    assert p.threshold_metres("district") == 1000
    assert p.name == "x"


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="cycle"):
        get_profile(tmp_path / "a.yaml")


# --- validation ---------------------------------------------------------------------------------

_T = "name: x\ntiers: "


@pytest.mark.parametrize(("text", "field", "match"), [
    ("extends: deyang\nspeed: 4\n", "speed", "(?s)unknown key.*allowed keys: .*walk_kmh"),
    ("extends: deyang\nwalk_kmh: 40\n", "walk_kmh", "within 1-10 km/h, not 40"),
    ("extends: deyang\nwalk_kmh: 0.5\n", "walk_kmh", "within 1-10"),
    ("extends: deyang\nwalk_kmh: fast\n", "walk_kmh", "within 1-10"),
    (_T + "[{code: a, minutes: 5, metres: 300}]\n", "tiers[1] (a)", "exactly one of minutes or metres"),
    (_T + "[{code: a, name_zh: 甲}]\n", "tiers[1] (a)", "exactly one of minutes or metres"),
    (_T + "[{code: a, minutes: -5}]\n", "tiers[1].minutes", "positive number"),
    (_T + "[{code: a, metres: 0}]\n", "tiers[1].metres", "positive number"),
    (_T + "[{code: a, minutes: true}]\n", "tiers[1].minutes", "positive number, not True"),
    (_T + "[{code: a, minutes: '5'}]\n", "tiers[1].minutes", "positive number"),
    (_T + "[{code: a, minutes: 5}, {code: a, minutes: 10}]\n", "tiers[2] (a)", "duplicate tier code"),
    (_T + "[{code: a, minutes: 5, rank: 1}, {code: b, minutes: 10, rank: 1}]\n", "tiers[2] (b).rank",
     "rank 1 is also the rank of tier 'a'"),
    (_T + "[{code: a, minutes: 5, rank: 1}, {code: b, minutes: 10}]\n", "tiers[2] (b).rank", "no rank"),
    (_T + "[{code: a, minutes: 5, rank: high}]\n", "tiers[1].rank", "whole number"),
    (_T + "[{code: a, minutes: 5, colour: red}]\n", "tiers[1].colour", "hex colour"),
    (_T + "[{code: a, minutes: 5, population_range: [10, 5]}]\n", "tiers[1].population_range", "range"),
    (_T + "[{code: a, minutes: 5, size: 3}]\n", "tiers[1]", r"unknown tier key.*\['size'\]"),
    (_T + "[{minutes: 5}]\n", "tiers[1].code", "no code"),
    (_T + "[{code: 5 min, minutes: 5}]\n", "tiers[1].code", "plain word"),
    (_T + "[5]\n", "tiers[1]", "must be a mapping"),
    (_T + "station\n", "tiers", "must be a list"),
    ("name: x\n", "tiers", "no 'tiers'"),
    ("tiers: [{code: a, minutes: 5}]\n", "name", "no 'name'"),
    ("extends: deyang\nstandards: 5\n", "standards", "mapping"),
    ("extends: deyang\nstandards: {persons_per_household: many}\n", "standards.persons_per_household",
     "non-negative number"),
    ("extends: deyang\nnested: yes please\n", "nested", "true or false"),
    ("extends: deyang\nsnap_cap_metres: -1\n", "snap_cap_metres", "positive number of metres"),
    ("extends: deyang\nlang: fr\n", "lang", "zh or en"),
    ("extends: deyang\nosm_tags: {kiosk: {amenity: [x]}}\n", "osm_tags.kiosk", "does not have"),
    ("extends: deyang\nosm_tags: {station: {amenity: [1, 2]}}\n", "osm_tags.station", "lists of values"),
    ("extends: deyang\nsources: {tiers: 5}\n", "sources", "mapping of names to text"),
    ("extends: [deyang]\n", "extends", "profile name or a file path"),
    ("extends: nowhere\n", None, "no built-in profile or profile file named 'nowhere'"),
])
def test_invalid_profiles_are_clear_errors(tmp_path, text, field, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=match) as err:
        get_profile(path)
    if field is not None:
        assert str(path) in str(err.value)
        assert err.value.field == field
    assert err.value.fix


def test_unparseable_files_name_the_file(tmp_path):
    for name, text in (("bad.yaml", "name: [unclosed\n"), ("bad.toml", "name = \n"),
                       ("list.yaml", "- a\n- b\n")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ProfileError, match=r"cannot parse|mapping") as err:
            get_profile(path)
        assert str(path) in str(err.value)


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(ProfileError, match="deyang, gb50180, tdt1062"):
        get_profile("nowhere")
    with pytest.raises(InputFileError, match="does not exist"):
        get_profile(tmp_path / "missing.yaml")
    (tmp_path / "p.txt").write_text("name: x\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"\.yaml, \.yml or \.toml"):
        get_profile(tmp_path / "p.txt")
    (tmp_path / "latin.yaml").write_bytes("name: café\n".encode("latin-1"))
    with pytest.raises(InputFileError, match="UTF-8"):
        get_profile(tmp_path / "latin.yaml")


def test_minimal_profile_gets_defaults(tmp_path):
    path = tmp_path / "min.toml"
    path.write_text('name = "two"\n[[tiers]]\ncode = "big"\nminutes = 12\n'
                    '[[tiers]]\ncode = "small"\nmetres = 250\n', encoding="utf-8")
    p = get_profile(path)
    assert [t.code for t in p.tiers] == ["big", "small"]
    assert [t.rank for t in p.tiers] == [2, 1]
    assert p.walk_kmh == 4.5
    assert p.nested
    assert p.title_en == "two"
    assert p.tier("small").name_zh == "small"
    assert p.tier("small").colour.startswith("#")
    assert p.tier(12).code == "big"
    assert p.tier("250m").code == "small"


def test_tier_needs_exactly_one_threshold():
    with pytest.raises(ProfileError, match="exactly one"):
        Tier(code="a", name_zh="甲", name_en="a", minutes=5, metres=300)
    with pytest.raises(ProfileError, match="exactly one"):
        Tier(code="a", name_zh="甲", name_en="a")
