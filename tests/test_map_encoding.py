"""Encoded map shapes (circles.outputs.map_encoding), read back by the polyline package."""

from __future__ import annotations

import folium
import numpy as np
import polyline
import pytest
import shapely

from circles.outputs.map_encoding import EncodedShapes, encode_shapes, polyline_text


def _decoded(packed: dict) -> list:
    """The features' shapes rebuilt from the packed counts, with the polyline package's decoder."""
    lonlat = np.array(polyline.decode(packed["s"], 5)).reshape(-1, 2)[:, ::-1]
    paths = np.split(lonlat, np.cumsum(packed["n"])[:-1]) if packed["n"] else []
    if "r" in packed:
        ends = np.cumsum(packed["r"])
        parts = [shapely.Polygon(paths[e - r], paths[e - r + 1:e]) for r, e in zip(packed["r"], ends, strict=True)]
    else:
        parts = [shapely.LineString(p) for p in paths]
    ends = np.cumsum(packed["f"])
    return [parts[e - f:e] for f, e in zip(packed["f"], ends, strict=True)]


def test_digits_are_google_polyline_digits():
    rng = np.random.default_rng(7)
    for scale in (10, 100_000, 10_000_000):
        points = rng.uniform(-1, 1, (500, 2)) * scale / 1e5 + [30.6, 104.1]
        q = np.round(points * 1e5).astype(np.int64)
        steps = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
        assert polyline_text(steps.ravel()) == polyline.encode([tuple(p) for p in q / 1e5], 5)
    assert polyline_text(np.array([], dtype=np.int64)) == ""


def test_polygons_keep_holes_and_parts_rounded_to_a_metre():
    hole = [(104.0002, 30.0001), (104.0005, 30.0001), (104.0005, 30.0003), (104.0002, 30.0001)]
    square = shapely.Polygon([(104, 30), (104.001, 30), (104.001, 30.001), (104, 30.001)], [hole])
    two = shapely.MultiPolygon([shapely.box(104.01, 30.01, 104.02, 30.02), shapely.box(104.03, 30.03, 104.031, 30.031)])
    speck = shapely.box(104.1, 30.1, 104.100001, 30.100001)  # under a metre: nothing to draw
    speck_hole = shapely.Polygon(shapely.box(104.2, 30.2, 104.21, 30.21).exterior.coords,
                                 [shapely.box(104.205, 30.205, 104.205001, 30.205001).exterior.coords])
    geoms = [square, shapely.Polygon(), two, speck, speck_hole, shapely.Point(104, 30)]
    packed = encode_shapes(geoms, kind="polygons")
    drawn = _decoded(packed)
    assert [len(d) for d in drawn] == [1, 0, 2, 0, 1, 0]
    rounded = shapely.set_precision(np.array([square, two, shapely.box(104.2, 30.2, 104.21, 30.21)]), 1e-5)
    for got, want in zip([drawn[0], drawn[2], drawn[4]], rounded, strict=True):
        assert shapely.MultiPolygon(got).normalize().equals_exact(shapely.MultiPolygon(
            shapely.get_parts(want)).normalize(), 1e-9)
    assert len(drawn[0][0].interiors) == 1
    # No ring repeats its first vertex at its end (Leaflet closes rings, and would drop it).
    assert sum(packed["n"]) == 3 + 4 + 4 + 4 + 4


def test_lines_and_repeated_vertices():
    line = shapely.LineString([(104, 30), (104.000001, 30.000001), (104.001, 30), (104.001, 30)])
    multi = shapely.MultiLineString([[(104, 30), (104, 30.01)], [(104.1, 30.1), (104.1000001, 30.1)]])
    packed = encode_shapes([line, multi], kind="lines")
    drawn = _decoded(packed)
    assert [len(d) for d in drawn] == [1, 1]  # the second part of multi is under a metre long
    assert np.allclose(shapely.get_coordinates(drawn[0][0]), [(104, 30), (104.001, 30)])
    with pytest.raises(ValueError, match="polygons or lines"):
        encode_shapes([line], kind="points")
    with pytest.raises(ValueError, match="EPSG:4326"):  # metres, not degrees
        encode_shapes([shapely.LineString([(400_000, 3_400_000), (400_100, 3_400_000)])], kind="lines")


def test_page_text_is_kept_raw():
    """Names and encoded text that look like templates or end the script are drawn as written."""
    m = folium.Map()
    fg = folium.FeatureGroup(name="x").add_to(m)
    tip = "{{ 7 * 7 }} {% if 1 %}x{% endif %} </script><b>&"
    # A step of 974e-5 degree north is written "{{@" (zig-zagged 1948: digits 28+32, 28+32, 1).
    ring = shapely.Polygon([(104, 30), (104.0001, 30), (104.0001, 30.00974), (104, 30.00974)])
    assert "{{@" in encode_shapes([ring], kind="polygons")["s"]
    fg.add_child(EncodedShapes([ring], kind="polygons", styles=[{"color": "#123"}], tooltips=tip))
    page = m.get_root().render()
    assert "{{@" in page
    assert "{{ 7 * 7 }}" in page
    assert "</script><b>" not in page
    assert page.count("window.circlesShapes = ") == 1
