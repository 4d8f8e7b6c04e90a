"""Units layers are read one way by coverage and the scorecard; keyword options are checked one way."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

import circles
from circles import DataError
from circles.readers.units import unit_name_column, unit_of, unit_polygons


def _layer(**cols):
    return gpd.GeoDataFrame(cols, geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], crs=4326)


def test_the_name_column_is_found_by_header_whatever_its_case():
    assert unit_name_column(_layer(Community_Name=["a", "b"], 社区=["东", "西"])) == "社区"
    assert unit_name_column(_layer(Unit=["a", "b"])) == "Unit"
    with pytest.raises(DataError, match="no unit name column"):
        unit_name_column(_layer(households=[1, 2]))
    with pytest.raises(DataError, match="no CRS"):
        unit_polygons(_layer(unit=["a", "b"]).set_crs(None, allow_override=True))


def test_a_point_lies_in_its_unit_and_one_on_the_border_in_the_first():
    units = unit_polygons(_layer(unit=["a", "b"]))
    pts = gpd.GeoSeries(shapely.points([0.5, 1.5, 1.0, 5.0], [0.5, 0.5, 0.5, 5.0]), crs=4326)
    # The border point (1.0, 0.5) is on both boxes' boundary, so "within" neither: no unit.
    assert list(unit_of(pts, units, missing="-")) == ["a", "b", "-", "-"]


def test_an_unknown_keyword_option_names_itself_and_the_known_ones():
    with pytest.raises(DataError, match="unknown population option bogus") as err:
        circles.read_population("osm", bogus=1)
    assert "pop_column" in err.value.fix
    with pytest.raises(DataError, match="unknown road-line option"):
        circles.network_from_roads("roads.gpkg", snap=2)
