"""The Leaflet pieces the coverage map's layers are made of, beyond folium's: legends that follow
their layer, popups bound from JSON strings, stacked panes, the attribution of a map without
tiles, the title box, a metric scale bar and the basemap's plain GeoJSON."""

from __future__ import annotations

import html

import folium
from branca.element import MacroElement
from folium.template import Template

__all__ = ["BOX", "PANES", "Attribution", "Bind", "ClickThrough", "Legend", "PageWords", "Pane",
           "ScaleBar", "Title", "swatch"]

#: The style of the map's boxes (title, legends).
BOX = ("background:rgba(255,255,255,.92);padding:6px 10px;font:12px/1.5 sans-serif;"
       "border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3)")


def swatch(colour: str, *, round_: bool = False) -> str:
    """A small square (or dot, ``round_``) of ``colour`` for layer names and legends."""
    radius = "50%" if round_ else "2px"
    return (f'<span style="display:inline-block;width:12px;height:12px;margin-right:4px;'
            f'vertical-align:-1px;border-radius:{radius};background-color:{html.escape(colour)}"></span>')


class Legend(MacroElement):
    """A legend box that is on the map exactly while its layer is."""

    _template = Template("""{% macro script(this, kwargs) %}
        (function () {
            var layer = {{ this._parent.get_name() }};
            var legend = L.control({position: "bottomleft"});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "circles-legend");
                div.style.cssText = {{ this.style|tojson }};
                div.innerHTML = {{ this.html|tojson }};
                return div;
            };
            // Child layers' events bubble up to the group: react to the group's own only.
            layer.on("add", function (e) { if (e.target === layer) { legend.addTo(layer._map); } });
            layer.on("remove", function (e) { if (e.target === layer) { legend.remove(); } });
        })();
    {% endmacro %}""")

    def __init__(self, html_: str):
        super().__init__()
        self._name = "Legend"
        self.html = html_
        self.style = BOX

    @staticmethod
    def rows(title: str, colours: list[str], labels: list[str], note: str = "") -> str:
        items = "".join(f"<div>{swatch(c)}{lab}</div>" for c, lab in zip(colours, labels, strict=False))
        return f"<b>{title}</b>" + (f"<br><small>{note}</small>" if note else "") + items


class Bind(MacroElement):
    """A popup and/or tooltip bound from JSON strings (no jQuery, no template literal)."""

    _template = Template("""{% macro script(this, kwargs) %}
        {% if this.popup %}{{ this._parent.get_name() }}.bindPopup({{ this.popup|tojson }}, {maxWidth: 320});{% endif %}
        {% if this.tooltip %}{{ this._parent.get_name() }}.bindTooltip({{ this.tooltip|tojson }});{% endif %}
    {% endmacro %}""")

    def __init__(self, *, popup: str = "", tooltip: str = ""):
        super().__init__()
        self._name = "Bind"
        self.popup, self.tooltip = popup, tooltip


# Each kind of layer draws in its own pane (and so on its own canvas), stacked so that switching
# a layer off and on again does not bury the facilities under the hexagons: the basemap drawn
# from the extract just above the tiles (200), units, then gaps, service areas (Leaflet's overlay
# pane, 400), points; proposals are DOM markers (600).
PANES = {"basemap": 250, "units": 380, "gaps": 390, "short": 395, "points": 450}


class Pane(MacroElement):
    """Creates the named map pane (once) before its layer's features are added to the map."""

    _template = Template("""{% macro script(this, kwargs) %}
        if (!{{ this.map_name }}.getPane({{ this.pane|tojson }})) {
            {{ this.map_name }}.createPane({{ this.pane|tojson }}).style.zIndex = {{ this.z_index }};
        }
    {% endmacro %}""")

    def __init__(self, kind: str):
        super().__init__()
        self._name = "Pane"
        self.pane, self.z_index = f"circles-{kind}", PANES[kind]
        self.map_name = ""

    def render(self, **kwargs):
        parent = self._parent
        while parent is not None and not isinstance(parent, folium.Map):
            parent = getattr(parent, "_parent", None)
        if parent is None:
            raise ValueError("add the layer to a folium.Map before rendering it")
        self.map_name = parent.get_name()
        super().render(**kwargs)


class Attribution(MacroElement):
    """The OSM attribution on a map without tiles (the data is OSM's all the same)."""

    _template = Template("""{% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.attributionControl.addAttribution({{ this.text|tojson }});
    {% endmacro %}""")

    def __init__(self, text: str):
        super().__init__()
        self.text = text


class ClickThrough(MacroElement):
    """Opens the popup of the feature under a map click no other layer took: the canvases of the
    panes above (gaps, service areas, points) take every click, so a lower layer's own never fires."""

    _template = Template("""{% macro script(this, kwargs) %}
        (function () {
            var layer = {{ this._parent.get_name() }}, on = null;
            function open(e) {
                var map = layer._map;
                if (!map || (map._popup && map.hasLayer(map._popup))) { return; }  // a layer above took it
                var p = map.latLngToLayerPoint(e.latlng);
                layer.eachLayer(function (f) {
                    if (f._containsPoint && f._containsPoint(p)) { f.fire("click", {latlng: e.latlng}, true); }
                });
            }
            function attach(map) {
                if (on) { on.off("click", open); }
                on = map;
                if (map) { map.on("click", open); }
            }
            // Child layers' events bubble up to the group: react to the group's own only.
            layer.on("add", function (e) { if (e.target === layer) { attach(layer._map); } });
            layer.on("remove", function (e) { if (e.target === layer) { attach(null); } });
            attach(layer._map || null);
        })();
    {% endmacro %}""")


class Title(MacroElement):
    """Moves the page's title box (``#circles-title``) into the map's top-right corner, above the
    layer control: Leaflet stacks the controls of a corner, so the list of layers, however long
    and whatever the window's width, sits under the title instead of over it. Add it to the map
    before the layer control."""

    _template = Template("""{% macro script(this, kwargs) %}
        (function () {
            var box = document.getElementById("circles-title");
            if (!box) { return; }
            var title = L.control({position: "topright"});
            title.onAdd = function () {
                L.DomEvent.disableClickPropagation(box);
                L.DomEvent.disableScrollPropagation(box);
                box.style.display = "block";
                return box;
            };
            title.addTo({{ this._parent.get_name() }});
        })();
    {% endmacro %}""")

    def __init__(self):
        super().__init__()
        self._name = "Title"


class ScaleBar(MacroElement):
    """A metric scale bar (m, km): the miles and feet of Leaflet's default are left out."""

    _template = Template("""{% macro script(this, kwargs) %}
        L.control.scale({imperial: false, metric: true, maxWidth: 150}).addTo({{ this._parent.get_name() }});
    {% endmacro %}""")

    def __init__(self):
        super().__init__()
        self._name = "ScaleBar"


class PageWords(MacroElement):
    """Leaflet's own words in the page's language: the zoom buttons' and the layer control's hover
    titles, and the attribution's prefix without its English hover title ("A JavaScript library...")."""

    _template = Template("""{% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }};
            if (map.zoomControl) {
                map.zoomControl.remove();
                map.zoomControl = L.control.zoom({zoomInTitle: {{ this.zoom_in|tojson }},
                                                  zoomOutTitle: {{ this.zoom_out|tojson }}}).addTo(map);
            }
            if (map.attributionControl) {
                map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
            }
            // The layer control is added after every layer: name its button once the page's script has run.
            setTimeout(function () {
                document.querySelectorAll(".leaflet-control-layers-toggle").forEach(function (a) {
                    a.title = {{ this.layers|tojson }};
                });
            }, 0);
        })();
    {% endmacro %}""")

    def __init__(self, zoom_in: str, zoom_out: str, layers: str):
        super().__init__()
        self._name = "PageWords"
        self.zoom_in, self.zoom_out, self.layers = zoom_in, zoom_out, layers
