"""Units at several levels (街道 → 社区): every table per level, roll-ups that add up (issue 18, item 3)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from circles import DataError, RunInputs
from circles.cli import main
from circles.readers.units import unit_levels
from circles.runs.inputs import RunInputs as Inputs

W, E, S, N, MID_LON, MID_LAT = 104.0, 104.2, 30.6, 30.75, 104.08, 30.675


def _streets() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"街道": ["西街道", "东街道"]},
                            geometry=[shapely.box(W, S, MID_LON, N), shapely.box(MID_LON, S, E, N)], crs=4326)


def _communities() -> gpd.GeoDataFrame:
    boxes = {"西北社区": (W, MID_LAT, MID_LON, N), "西南社区": (W, S, MID_LON, MID_LAT),
             "东北社区": (MID_LON, MID_LAT, E, N), "东南社区": (MID_LON, S, E, MID_LAT)}
    return gpd.GeoDataFrame({"社区": list(boxes), "户数": [1600, 1200, 3200, None]},
                            geometry=[shapely.box(*b) for b in boxes.values()], crs=4326)


def test_levels_from_two_layers_find_each_units_parent_by_where_it_lies():
    levels = unit_levels([_streets(), _communities()])
    assert [lv.name for lv in levels] == ["街道", "社区"]
    parents = dict(zip(levels[1].polygons["unit"], levels[1].polygons["parent"], strict=True))
    assert parents == {"西北社区": "西街道", "西南社区": "西街道", "东北社区": "东街道", "东南社区": "东街道"}


def test_one_layer_with_level_and_parent_columns_and_a_wrong_parent():
    both = pd.concat([_streets().rename(columns={"街道": "name"}).assign(level="街道", parent=""),
                      _communities().rename(columns={"社区": "name"}).assign(
                          level="社区", parent=["西街道", "西街道", "东街道", "东街道"])], ignore_index=True)
    levels = unit_levels(gpd.GeoDataFrame(both, crs=4326))
    assert [lv.name for lv in levels] == ["街道", "社区"]
    both.loc[5, "parent"] = "北街道"
    with pytest.raises(DataError, match="北街道") as err:
        unit_levels(gpd.GeoDataFrame(both, crs=4326))
    assert err.value.field == "parent"


def test_a_run_with_two_levels_conserves_people_at_every_level_and_rolls_up(tmp_path):
    _streets().to_file(tmp_path / "streets.gpkg")
    _communities().to_file(tmp_path / "communities.gpkg")
    out = tmp_path / "run"
    assert main(["coverage", "--profile", "baoji", "--units", str(tmp_path / "streets.gpkg"),
                 "--units", str(tmp_path / "communities.gpkg"), "--out", str(out)]) == 0
    by_unit = pd.read_csv(out / "coverage_by_unit.csv", encoding="utf-8-sig")
    by_tier = pd.read_csv(out / "coverage_by_tier.csv", encoding="utf-8-sig").set_index("tier")
    for (level, tier), rows in by_unit.groupby(["level", "tier"]):
        # Each level holds everyone once: its rows (with "(no unit)") add up to the city's.
        assert rows["population"].sum() == pytest.approx(by_tier.loc[tier, "population"], abs=0.5), level
        assert rows["covered_pop"].sum() == pytest.approx(by_tier.loc[tier, "covered_pop"], abs=0.5), level
    streets = by_unit[by_unit["level"] == "街道"].set_index(["unit", "tier"])
    children = by_unit[by_unit["level"] == "社区"].groupby(["parent", "tier"])[["population", "covered_pop"]].sum()
    for (street, tier), row in children.iterrows():
        assert row["population"] == pytest.approx(streets.loc[(street, tier), "population"], abs=0.5)
        assert row["covered_pop"] == pytest.approx(streets.loc[(street, tier), "covered_pop"], abs=0.5)
    card = pd.read_csv(out / "scorecard.csv", encoding="utf-8-sig")
    assert set(card["unit"]) == set(_communities()["社区"])  # the scorecard is per community
    rules = pd.read_csv(out / "standards_by_unit.csv", encoding="utf-8-sig")
    assert set(rules["level"]) == {"街道", "社区"}
    assert {n for n, _ in pyogrio.list_layers(out / "units.gpkg")} == {"units", "units_1"}
    # The run can be read back with both levels, top first.
    inputs = Inputs.from_manifest(__import__("json").loads((out / "manifest.json").read_text(encoding="utf-8")))
    assert [p.rsplit("/", 1)[-1] for p in inputs.units] == ["streets.gpkg", "communities.gpkg"]
    assert isinstance(RunInputs(units=inputs.units).units, list)


def test_a_units_figure_that_is_no_number_is_an_error_naming_file_row_and_field(tmp_path, capsys):
    units = _communities().astype({"户数": object})
    units.loc[2, "户数"] = "约300"
    units.to_file(tmp_path / "c.gpkg")
    out = tmp_path / "run"
    assert main(["coverage", "--profile", "baoji", "--units", str(tmp_path / "c.gpkg"), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "c.gpkg, row 3, field '户数': '约300' is not a number" in err
    assert "fix:" in err
    assert not out.exists()  # a failed run leaves nothing behind
