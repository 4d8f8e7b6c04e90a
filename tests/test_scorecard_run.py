"""``circles coverage --profile baoji --units FILE`` writes the scorecard (issue 18, item 5)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from circles.cli import main


def test_a_coverage_run_with_units_writes_the_scorecard(tmp_path, capsys):
    # Two communities splitting the Chengdu default west/east at 104.08 E, with households only in one.
    west, east = shapely.box(104.0, 30.6, 104.08, 30.75), shapely.box(104.08, 30.6, 104.2, 30.75)
    units = gpd.GeoDataFrame({"社区": ["西社区", "东社区"], "户数": [1600, None]},
                             geometry=[west, east], crs=4326)
    units.to_file(tmp_path / "communities.gpkg", engine="pyogrio")
    out = tmp_path / "run"
    assert main(["coverage", "--profile", "baoji", "--units", str(tmp_path / "communities.gpkg"),
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    card = pd.read_csv(out / "scorecard.csv", encoding="utf-8-sig")
    rules = pd.read_csv(out / "standards_by_unit.csv", encoding="utf-8-sig")
    by_unit = pd.read_csv(out / "coverage_by_unit.csv", encoding="utf-8-sig")
    assert set(card["unit"]) == {"西社区", "东社区"}
    # The scorecard's people are the coverage table's people, unit by unit.
    pop = by_unit[by_unit["tier"] == "district"].set_index("unit")["population"]
    for unit, people in card.set_index("unit")["population"].items():
        assert people == pytest.approx(pop[unit], abs=0.1)
    assert card.loc[card["unit"] == "西社区", "households"].iloc[0] == 1600
    # Every judged row cites Baoji's document; rules the data cannot answer say what they need.
    assert rules["source"].str.contains("宝鸡").all()
    assert rules["note"].fillna("").str.contains("not evaluated: needs").any()
    assert "communities meet every rule" in text
