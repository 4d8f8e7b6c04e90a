"""The blocks found by walking a noded network's sides equal GEOS's polygonize of the same lines,
and the block said to lie on each side of a line is the one a point just beside it falls in."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from circles.engine.face_walk import walked_faces
from circles.engine.packed_polygons import PackedLines
from circles.engine.street_faces import street_faces
from circles.engine.synthetic import make_city

OFFSET_M = 1e-3


def _lines(*coords) -> np.ndarray:
    return np.array([shapely.LineString(c) for c in coords], dtype=object)


def _square(x0, y0, size):
    x1, y1 = x0 + size, y0 + size
    return [[(x0, y0), (x1, y0)], [(x1, y0), (x1, y1)], [(x1, y1), (x0, y1)], [(x0, y1), (x0, y0)]]


def _same_faces(links: np.ndarray) -> np.ndarray:
    """Assert the walked faces are polygonize's, one for one; return the walked ones."""
    faces, _left, _right = walked_faces(PackedLines(links))
    theirs = shapely.get_parts(shapely.polygonize(links))
    assert len(faces) == len(theirs)
    assert shapely.is_valid(faces).all()
    ours_n = shapely.normalize(faces)
    key = {shapely.to_wkb(g): k for k, g in enumerate(ours_n)}
    for g in shapely.normalize(theirs):
        assert shapely.to_wkb(g) in key, g.wkt[:200]
    return faces


def _face_beside(links: np.ndarray, faces: np.ndarray, side: float) -> np.ndarray:
    """The face containing a point just left (``side=1``) or right (``-1``) of each link's
    first segment's middle, by brute force over every face (-1 if none)."""
    xy = shapely.get_coordinates(links, return_index=True)
    coords, idx = xy
    first = np.searchsorted(idx, np.arange(len(links)))
    a, b = coords[first], coords[first + 1]
    mid = (a + b) / 2
    d = (b - a) / np.hypot(*(b - a).T)[:, None]
    probe = shapely.points(mid + side * OFFSET_M * np.stack([-d[:, 1], d[:, 0]], axis=1))
    inside = shapely.contains(faces[None, :], probe[:, None])  # links x faces
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)


def _check_sides(links: np.ndarray, faces: np.ndarray) -> None:
    _, left, right = walked_faces(PackedLines(links))
    bounding = (left >= 0) | (right >= 0)
    assert (left[bounding] == _face_beside(links, faces, 1.0)[bounding]).all()
    assert (right[bounding] == _face_beside(links, faces, -1.0)[bounding]).all()


CASES = {
    "two blocks and a dead end": _lines(
        [(0, 0), (5, 0)], [(5, 0), (10, 0)], [(10, 0), (20, 0)], [(20, 0), (20, 10)],
        [(20, 10), (10, 10)], [(10, 10), (0, 10)], [(0, 10), (0, 0)], [(10, 0), (10, 10)],
        [(5, 5), (5, 0)]),
    "a bridge between two blocks": _lines(*_square(0, 0, 10), *_square(20, 0, 10),
                                          [(10, 5), (20, 5)]),
    "an island block with a block inside it": _lines(*_square(0, 0, 100), *_square(20, 20, 40),
                                                     *_square(30, 30, 10)),
    "an island tied to its block by a bridge": _lines(*_square(0, 0, 100), *_square(40, 40, 20),
                                                      [(0, 50), (40, 50)]),
    "a loop touching its block at a node": _lines(
        [(0, 0), (50, 0)], [(50, 0), (100, 0)], [(100, 0), (100, 100)], [(100, 100), (0, 100)],
        [(0, 100), (0, 0)], [(50, 0), (40, 20), (60, 20), (50, 0)]),
    "an island of two blocks sharing a corner": _lines(*_square(0, 0, 100), *_square(20, 20, 20),
                                                       *_square(40, 40, 20)),
    "a curved street and a self-loop": _lines(
        [(0, 0), (5, -3), (10, 0)], [(10, 0), (10, 10)], [(10, 10), (0, 10)], [(0, 10), (0, 0)],
        [(10, 10), (15, 15), (10, 15), (10, 10)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_shapes_give_polygonize_faces_and_sides(name):
    links = CASES[name]
    faces = _same_faces(links)
    _check_sides(links, faces)


def test_dead_ends_and_bridges_bound_no_face():
    links = CASES["a bridge between two blocks"]
    _, left, right = walked_faces(PackedLines(links))
    assert left[-1] == right[-1] == -1
    links = CASES["two blocks and a dead end"]
    _, left, right = walked_faces(PackedLines(links))
    assert left[-1] == right[-1] == -1


def test_holes_are_kept():
    faces = _same_faces(CASES["an island block with a block inside it"])
    assert sorted(len(p.interiors) for p in faces) == [0, 1, 1]
    faces = _same_faces(CASES["a loop touching its block at a node"])
    assert sorted(len(p.interiors) for p in faces) == [0, 1]
    assert len(walked_faces(PackedLines(CASES["two blocks and a dead end"]))[0]) == 2


def test_chengdu_network_faces(chengdu_net):
    links = street_faces(chengdu_net).links.all()
    faces = _same_faces(links)
    sample = np.random.default_rng(0).choice(len(links), 400, replace=False)
    _, left, right = walked_faces(PackedLines(links))
    sub = links[sample]
    bounding = (left[sample] >= 0) | (right[sample] >= 0)
    assert (left[sample][bounding] == _face_beside(sub, faces, 1.0)[bounding]).all()
    assert (right[sample][bounding] == _face_beside(sub, faces, -1.0)[bounding]).all()


def test_synthetic_city_faces():
    _same_faces(street_faces(make_city(5_000, seed=4)).links.all())
