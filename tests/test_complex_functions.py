"""Functions of a complex (issue 18, item 4): the column, the profile's lists and what is missing,
on hand-made complexes whose answers are known by hand."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from circles.engine.complex_functions import COLUMNS, functions_record, missing_functions
from circles.errors import ProfileError
from circles.readers.city_rules import DEYANG_FUNCTIONS
from circles.readers.facilities import facilities_from_frame, split_functions
from circles.readers.profiles import get_profile

THREE = ("社区管理", "便民服务", "养老托幼")


def _profile(**functions):
    return replace(get_profile("deyang"), name="three", functions=functions)


def _complexes(*rows):
    """Facilities read from a table: (name, tier, functions cell) per row, 0.001° apart."""
    return facilities_from_frame(pd.DataFrame(
        [{"name": n, "tier": t, "lon": 104.0 + i / 1000, "lat": 30.6, "functions": f}
         for i, (n, t, f) in enumerate(rows)]))


def test_a_community_complex_offering_two_of_three():
    fac = _complexes(("东街社区综合体", "社区级", "社区管理、便民服务"))
    table = missing_functions(fac, _profile(community=THREE))
    assert list(table.columns) == COLUMNS
    row = table.iloc[0]
    assert (row["facility_id"], row["name"], row["tier"]) == ("F0001", "东街社区综合体", "community")
    assert (row["offered"], row["required"], row["missing"]) == (2, 3, "养老托幼")
    assert not row["all_offered"]


def test_every_separator_and_space_and_the_names_as_written():
    cell = " 社区管理;便民服务；教育培训、 文化 ,商业，Youth  Centre ;; "
    assert split_functions(cell) == ["社区管理", "便民服务", "教育培训", "文化", "商业", "Youth  Centre"]
    fac = _complexes(("a", "community", cell), ("b", "station", None), ("c", "station", ""),
                     ("d", "station", "便民服务、便民服务"))
    assert fac["functions"].tolist() == ["社区管理; 便民服务; 教育培训; 文化; 商业; Youth  Centre", "", "",
                                         "便民服务"]
    assert split_functions(float("nan")) == []
    assert split_functions(pd.NA) == []


@pytest.mark.parametrize("header", ["functions", "Functions", "服务功能"])
def test_the_column_headers(header):
    df = pd.DataFrame([{"name": "a", "tier": "community", "lon": 104.0, "lat": 30.6, header: "社区管理，便民服务"}])
    assert facilities_from_frame(df)["functions"].tolist() == ["社区管理; 便民服务"]


def test_a_column_headed_gongneng_alone_is_the_services_column_not_the_functions():
    df = pd.DataFrame([{"name": "a", "tier": "community", "lon": 104.0, "lat": 30.6, "功能": "幼儿园"}])
    fac = facilities_from_frame(df)
    assert "functions" not in fac.columns
    assert fac["services"].tolist() == ["幼儿园"]


def test_names_match_normalised_and_through_the_aliases():
    # 文化 ~ 文化交流, 商业 ~ 商业商贸, 社区治理 ~ 社区管理; NFKC, spaces and case; English names.
    asked = ("社区管理", "文化交流", "商业商贸", "便民服务", "养老托幼", "Youth Centre")
    fac = _complexes(("a", "community", "社区治理、 文化、商业、CONVENIENCE SERVICES、ｙｏｕｔｈ ｃｅｎｔｒｅ"))
    row = missing_functions(fac, _profile(community=asked)).iloc[0]
    assert (row["offered"], row["required"], row["missing"]) == (5, 6, "养老托幼")
    back = _complexes(("b", "community", "社区管理、文化交流"))
    row = missing_functions(back, _profile(community=("社区治理", "文化"))).iloc[0]
    assert row["all_offered"]
    assert row["missing"] == ""


def test_one_row_per_usable_complex_worst_first_missing_in_the_profiles_order():
    fac = _complexes(("full", "community", "养老托幼、社区管理、便民服务"),
                     ("none", "community", ""),
                     ("one", "community", "便民服务"),
                     ("station", "station", "便民服务"),  # asked for one, offers it
                     ("district", "district", ""),  # its tier asks for nothing
                     ("off", "community", ""))
    fac.loc[fac["name"] == "off", "status"] = "off_network"
    table = missing_functions(fac, _profile(community=THREE, station=("便民服务", "社区管理")))
    assert table["name"].tolist() == ["none", "one", "station", "full", "district"]
    assert table["missing"].tolist() == ["社区管理; 便民服务; 养老托幼", "社区管理; 养老托幼", "社区管理", "", ""]
    assert table["offered"].tolist() == [0, 1, 1, 3, 0]
    assert table["required"].tolist() == [3, 3, 2, 3, 0]
    assert table["all_offered"].tolist() == [False, False, False, True, True]
    assert functions_record(table) == {"complexes": 5, "all_offered": 2}


def test_without_a_functions_column_an_empty_table_and_a_note():
    fac = facilities_from_frame(pd.DataFrame([{"name": "a", "tier": "community", "lon": 104.0, "lat": 30.6}]))
    assert "functions" not in fac.columns
    table = missing_functions(fac, _profile(community=THREE))
    assert table.empty
    assert list(table.columns) == COLUMNS
    assert "needs column functions" in table.attrs["note"]
    assert functions_record(table)["complexes"] == 0
    assert "asks for no functions" in missing_functions(_complexes(("a", "community", "x")),
                                                        get_profile("gb50180")).attrs["note"]


def test_deyang_asks_every_tier_for_the_documents_categories():
    p = get_profile("deyang")
    names = {f.name_zh for f in DEYANG_FUNCTIONS}
    assert set(p.functions) == {"district", "community", "station"}
    for asked in p.functions.values():
        assert len(asked) == 8
        assert set(asked) <= names
        assert {"社区管理", "便民服务", "文化交流", "商业商贸", "养老托幼"} <= set(asked)
    assert "this profile's reading" in p.sources["functions"]
    assert "53" in p.sources["functions"]
    for other in ("baoji", "neijiang", "weinan", "gb50180", "tdt1062"):
        assert get_profile(other).functions == {}
        assert "functions" not in get_profile(other).sources
    fac = _complexes(("a", "社区级", "社区管理、便民服务"))
    row = missing_functions(fac).iloc[0]  # the default profile is deyang
    assert (row["offered"], row["required"]) == (2, 8)


def test_a_profile_file_sets_functions_merged_by_tier(tmp_path):
    path = tmp_path / "city.yaml"
    path.write_text("extends: deyang\nname: city\nfunctions:\n  community: [社区管理, 便民服务, 养老托幼]\n",
                    encoding="utf-8")
    p = get_profile(path)
    assert p.functions["community"] == THREE
    assert p.functions["station"] == get_profile("deyang").functions["station"]  # kept from deyang
    (tmp_path / "back.yaml").write_text(p.to_yaml(), encoding="utf-8")
    (tmp_path / "back.toml").write_text(p.to_toml(), encoding="utf-8")
    assert get_profile(tmp_path / "back.yaml") == p == get_profile(tmp_path / "back.toml")


def test_an_unknown_tier_in_functions_is_a_profile_error_naming_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: deyang\nfunctions: {neighbourhood: [社区管理]}\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="neighbourhood") as err:
        get_profile(path)
    assert err.value.field == "functions.neighbourhood"
    assert "bad.yaml" in str(err.value)


@pytest.mark.parametrize(("text", "field"), [
    ("functions: {community: 社区管理}\n", "functions.community"),
    ("functions: {community: [社区管理, 3]}\n", "functions.community"),
    ("functions: {community: [\"  \"]}\n", "functions.community"),
    ("functions: [社区管理]\n", "functions"),
])
def test_functions_must_be_lists_of_text(tmp_path, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text("extends: deyang\n" + text, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        get_profile(path)
    assert err.value.field == field


def test_a_coverage_run_writes_what_each_complex_lacks(tmp_path):
    from pathlib import Path

    from circles.cli import main

    sample = pd.read_csv(Path(__file__).resolve().parent.parent / "data" / "chengdu_facilities.csv",
                         encoding="utf-8-sig")
    sample["服务功能"] = ["社区管理、便民服务、教育培训、康养理疗、青少年发展、文化交流、养老托幼、商业商贸"] + [
        "社区管理、便民服务"] * (len(sample) - 1)
    sample.to_csv(tmp_path / "fac.csv", index=False, encoding="utf-8-sig")
    out = tmp_path / "run"
    assert main(["coverage", "--facilities", str(tmp_path / "fac.csv"), "--out", str(out)]) == 0
    table = pd.read_csv(out / "functions_by_complex.csv", encoding="utf-8-sig")
    usable = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig").query("status == 'ok'")
    assert len(table) == len(usable)
    # deyang asks every tier for its 8 named categories: the first complex offers them all, the rest 2.
    first = table[table["facility_id"] == sample["id"].iloc[0]].iloc[0] if "id" in sample else table.iloc[-1]
    assert bool(first["all_offered"])
    assert (table.loc[~table["all_offered"], "offered"] == 2).all()
    assert table["all_offered"].tolist() == sorted(table["all_offered"].tolist())  # worst first
