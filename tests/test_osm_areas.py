"""The basemap's areas, read with pyosmium: a hand-made extract, and Chengdu beside pyrosm."""

import numpy as np
import pytest
import shapely

from circles.readers.osm_areas import read_osm_areas

_XML = """<?xml version='1.0' encoding='UTF-8'?>
<osm version="0.6" generator="test">
  {nodes}
  <way id="1"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/></way>
  <way id="2"><nd ref="5"/><nd ref="6"/><nd ref="7"/><nd ref="8"/><nd ref="5"/></way>
  <way id="3"><nd ref="9"/><nd ref="10"/><nd ref="11"/><nd ref="12"/><nd ref="9"/>
    <tag k="building" v="yes"/></way>
  <way id="4"><nd ref="1"/><nd ref="9"/><nd ref="3"/><tag k="landuse" v="residential"/></way>
  <way id="5"><nd ref="2"/><nd ref="10"/><tag k="waterway" v="river"/><tag k="name" v="=HYPERLINK(1)"/></way>
  <way id="6"><nd ref="4"/><nd ref="12"/><tag k="waterway" v="ditch"/></way>
  <way id="7"><nd ref="4"/><nd ref="99"/><tag k="waterway" v="river"/></way>
  <relation id="1"><member type="way" ref="1" role="outer"/><member type="way" ref="2" role="inner"/>
    <tag k="type" v="multipolygon"/><tag k="natural" v="water"/></relation>
</osm>
"""
_COORDS = {1: (0, 0), 2: (0.01, 0), 3: (0.01, 0.01), 4: (0, 0.01), 5: (0.003, 0.003), 6: (0.007, 0.003),
           7: (0.007, 0.007), 8: (0.003, 0.007), 9: (0.02, 0.02), 10: (0.021, 0.02), 11: (0.021, 0.021),
           12: (0.02, 0.021)}


def test_a_multipolygon_with_a_hole_a_building_and_a_river(tmp_path):
    nodes = "\n  ".join(f'<node id="{i}" lat="{30 + y}" lon="{104 + x}"/>' for i, (x, y) in _COORDS.items())
    path = tmp_path / "small.osm"
    path.write_text(_XML.format(nodes=nodes))
    got = read_osm_areas(path, keys=["natural", "building", "landuse", "waterway"],
                         lines={"waterway": ["river"]})
    water = got[got["natural"] == "water"]
    assert water.geom_type.tolist() == ["Polygon"]
    assert shapely.get_num_interior_rings(water.geometry.values)[0] == 1
    assert water.geometry.area.iloc[0] == pytest.approx(0.01**2 - 0.004**2, rel=1e-9)
    building = got[got["building"] == "yes"]
    assert building.geometry.area.iloc[0] == pytest.approx(0.001**2, rel=1e-9)
    river = got[got["waterway"] == "river"]
    assert river.geom_type.tolist() == ["LineString"]
    assert river.length.iloc[0] == pytest.approx(np.hypot(0.011, 0.02), rel=1e-9)
    assert "ditch" not in set(got["waterway"].dropna())  # not asked for as a line, and no area
    assert got["landuse"].isna().all()  # an open way is no area
    assert str(got.crs) == "EPSG:4326"
    assert got.attrs["skipped"] == 1  # way 7's node 99 is not in the extract: counted, not read


def test_chengdu_layers_match_pyrosm(chengdu_pbf):
    """The basemap's layers against pyrosm's reading of the same extract (a second reader):
    libosmium leaves out a couple of rings that do not close, nothing else."""
    from circles.readers.osm import read_osm_features

    keys = ["landuse", "building", "natural", "leisure"]
    ours = read_osm_areas(chengdu_pbf, keys=keys)
    theirs = read_osm_features(chengdu_pbf, kind="pois", custom_filter=dict.fromkeys(keys, True))
    theirs = theirs[theirs.geom_type.isin(["Polygon", "MultiPolygon"])]
    for key in keys:
        a = ours[ours[key].notna()] if key in ours else ours.iloc[:0]
        b = theirs[theirs[key].notna()] if key in theirs else theirs.iloc[:0]
        assert abs(len(a) - len(b)) <= max(2, 0.01 * len(b)), key
        assert np.isclose(shapely.area(a.geometry.values).sum(), shapely.area(b.geometry.values).sum(), rtol=0.01), key
    assert len(ours) > 1000
