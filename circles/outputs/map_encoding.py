"""Map shapes packed small: polygons and lines of a page layer as one encoded polyline string.

A city's service areas hold hundreds of thousands of vertices; as GeoJSON text each costs about
22 characters (``[104.403903, 30.679256], ``), which made a 250k-node city's ``map.html`` 15 MB.
:func:`encode_shapes` writes them the way Google's encoded polyline format does (coordinates
rounded to 1e-5 degree, about 1 m; each the difference from the one before, in base-64 digits):
about 4 characters a vertex. :class:`EncodedShapes` is the page layer that decodes them in the
browser and draws them with Leaflet, with a style and a tooltip per feature.
"""

from __future__ import annotations

import json

import numpy as np
import shapely
from branca.element import Element, MacroElement
from jinja2 import Template

__all__ = ["DECIMALS", "EncodedShapes", "encode_shapes", "polyline_text"]

#: Decimals of a degree the page keeps: 1e-5 degree is 1.1 m north-south, under a pixel at
#: street zooms, and the shapes are drawn, never measured, from the page.
DECIMALS = 5

_CHUNKS = 7  # 5-bit digits of the largest value: 35 bits, beyond any difference of degrees x 1e5


def polyline_text(values: np.ndarray) -> str:
    """Whole numbers as the digits of Google's encoded polyline format, one after another.

    Parameters
    ----------
    values
        Integers (the differences of rounded coordinates), each below 2**34 in size.

    Returns
    -------
    str
        Each value zig-zagged to a non-negative number, then written in 5-bit digits, lowest
        first, each plus 63, with 32 added to every digit but a value's last.

    """
    v = np.asarray(values, dtype=np.int64)
    z = ((v << 1) ^ (v >> 63)).astype(np.uint64)
    shifts = (5 * np.arange(_CHUNKS + 1)).astype(np.uint64)
    rest = z[:, None] >> shifts[None, :]  # what is left from each digit on
    digit = rest[:, :-1] & np.uint64(31)
    more = rest[:, 1:] > 0
    used = np.ones_like(more)
    used[:, 1:] = more[:, :-1]
    chars = (digit + np.uint64(63) + np.where(more, np.uint64(32), np.uint64(0))).astype(np.uint8)
    return chars[used].tobytes().decode("ascii")


def encode_shapes(geoms, *, kind: str, decimals: int = DECIMALS) -> dict:
    """Polygons or lines (WGS-84) packed as one polyline string and the counts that split it.

    Parameters
    ----------
    geoms
        One geometry per feature (polygons and multipolygons, or lines and multilines; other
        parts and empty geometries draw nothing).
    kind
        ``polygons`` or ``lines``.
    decimals
        Decimals of a degree kept.

    Returns
    -------
    dict
        ``s``: the (lat, lon) of every path's vertices, each as its difference from the vertex
        before (across paths), in polyline digits; ``n``: vertices per path; ``r`` (polygons):
        paths (rings, the outer first) per polygon; ``f``: parts per feature. A vertex equal
        to the one before once rounded is left out, as is a ring's closing vertex (Leaflet
        closes rings); a ring left with under 3 vertices (a line, under 2) is dropped, and a
        polygon whose outer ring is dropped goes with its holes.

    """
    if kind not in ("polygons", "lines"):
        raise ValueError(f"kind must be polygons or lines, got {kind!r}")
    geoms = np.asarray(geoms, dtype=object)
    parts, feature = shapely.get_parts(geoms, return_index=True)
    types = shapely.get_type_id(parts)
    wanted = np.isin(types, (3,) if kind == "polygons" else (1, 2))
    parts, feature = parts[wanted], feature[wanted]
    if kind == "polygons":
        paths, owner = shapely.get_rings(parts, return_index=True)
    else:
        paths, owner = parts, np.arange(len(parts))
    xy, path = shapely.get_coordinates(paths, return_index=True)
    if len(xy) and np.abs(xy).max() > 360:  # metres would overflow the digits, and mean a lost CRS
        raise ValueError("encode_shapes takes WGS-84 degrees; these coordinates reach "
                         f"{np.abs(xy).max():,.0f}: convert the layer to EPSG:4326 first")
    q = np.round(xy[:, ::-1] * 10.0 ** decimals).astype(np.int64)  # (lat, lon), as polylines are
    keep = _distinct_vertices(q, path, closed=kind == "polygons")
    per_path = np.bincount(path[keep], minlength=len(paths))
    path_ok = per_path >= (3 if kind == "polygons" else 2)
    # A polygon stands or falls with its outer ring (its first).
    outer = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, dtype=bool)
    part_ok = np.zeros(len(parts), dtype=bool)
    part_ok[owner[outer]] = path_ok[outer]
    path_ok &= part_ok[owner]
    q = q[keep & path_ok[path]]
    steps = np.diff(q, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)) if len(q) else q
    packed = {"s": polyline_text(steps.ravel()), "n": per_path[path_ok].tolist()}
    if kind == "polygons":
        packed["r"] = np.bincount(owner[path_ok], minlength=len(parts))[part_ok].tolist()
    packed["f"] = np.bincount(feature[part_ok], minlength=len(geoms)).tolist()
    return packed


def _distinct_vertices(q: np.ndarray, path: np.ndarray, *, closed: bool) -> np.ndarray:
    """The vertices that differ from the one before on their path (and are not a ring's last)."""
    keep = np.ones(len(q), dtype=bool)
    if len(q):
        new_path = np.r_[True, path[1:] != path[:-1]]
        keep[1:] = new_path[1:] | np.any(q[1:] != q[:-1], axis=1)
        if closed:
            keep[np.r_[new_path[1:], True]] = False  # the closing vertex repeats the first
            # Rounding may bring the last vertex left back onto the first (Leaflet drops it).
            kept = np.flatnonzero(keep)
            if len(kept):
                turn = path[kept][1:] != path[kept][:-1]
                last, first = kept[np.r_[turn, True]], kept[np.r_[True, turn]]
                keep[last[(last != first) & np.all(q[last] == q[first], axis=1)]] = False
    return keep


def _script_json(value) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>``, ``&`` nor JavaScript's line separators."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                       ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, code)
    return text


# Defined once in the page's header; every layer of encoded shapes calls it.
_DRAW = """<script>
window.circlesShapes = function (d, group, styles, tips, options) {
    var scale = Math.pow(10, d.d), s = d.s, at = 0, lat = 0, lon = 0;
    function next() {  // one zig-zagged value of 5-bit digits, lowest first
        var value = 0, step = 1, digit;
        do {
            digit = s.charCodeAt(at++) - 63;
            value += (digit & 31) * step;
            step *= 32;
        } while (digit >= 32);
        return value % 2 ? -(value + 1) / 2 : value / 2;
    }
    var paths = d.n.map(function (count) {
        var path = new Array(count);
        for (var k = 0; k < count; k++) {
            lat += next();
            lon += next();
            path[k] = [lat / scale, lon / scale];
        }
        return path;
    });
    var parts = paths, p = 0, q = 0;
    if (d.r) {
        parts = d.r.map(function (rings) { p += rings; return paths.slice(p - rings, p); });
    }
    var make = d.r ? L.polygon : L.polyline;
    d.f.forEach(function (count, i) {
        q += count;
        if (!count) { return; }
        var mine = parts.slice(q - count, q);
        var shape = make(count === 1 ? mine[0] : mine,
                         Object.assign({}, options, styles[d.k ? d.k[i] : 0]));
        var tip = Array.isArray(tips) ? tips[i] : tips;
        if (tip) { shape.bindTooltip(tip, {sticky: true}); }
        shape.addTo(group);
    });
};
</script>"""


class EncodedShapes(MacroElement):
    """A layer of encoded shapes (:func:`encode_shapes`), drawn by Leaflet as polygons or lines.

    Parameters
    ----------
    geoms
        One geometry per feature, WGS-84 (or the tiles' GCJ-02).
    kind
        ``polygons`` or ``lines``.
    styles
        Leaflet path options; feature ``i`` takes ``styles[style_index[i]]``.
    style_index
        Each feature's style (default: the first for all).
    tooltips
        One HTML text per feature, or one for all (escaped by the caller), or none.
    pane
        The map pane to draw in (default Leaflet's overlay pane).
    interactive
        Whether the shapes answer the mouse (a basemap does not).

    """

    # The call is rendered as a template a second time (branca renders each script piece it
    # collects), so it is kept raw: encoded text may hold "{{" and names may hold anything.
    _template = Template("""{% macro script(this, kwargs) %}
        {{ this.call }}
    {% endmacro %}""")

    def __init__(self, geoms, *, kind: str, styles: list[dict], style_index=None, tooltips=None,
                 pane: str | None = None, interactive: bool = True) -> None:
        super().__init__()
        self._name = "EncodedShapes"
        packed = encode_shapes(geoms, kind=kind)
        if style_index is not None:
            packed["k"] = np.asarray(style_index, dtype=np.int64).tolist()
        self.data = _script_json({**packed, "d": DECIMALS})
        self.styles = _script_json(list(styles))
        self.tips = _script_json(tooltips if tooltips is None or isinstance(tooltips, str) else list(tooltips))
        self.options = _script_json({"pane": pane or "overlayPane", "interactive": bool(interactive)})

    def render(self, **kwargs) -> None:
        """Adds the drawing function to the page's header (once), then this layer's call."""
        self.get_root().header.add_child(Element(_DRAW), name="circles_shapes")
        args = ", ".join([self.data, self._parent.get_name(), self.styles, self.tips, self.options])
        self.call = "{% raw %}circlesShapes(" + args + ");{% endraw %}"
        super().render(**kwargs)
