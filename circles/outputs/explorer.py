"""The offline scenario explorer: one HTML file where a planner adds stations, closes facilities
and watches coverage change at once.

The page never routes: it carries, per tier threshold, a sparse site × demand coverage matrix
(CSR as base64 typed arrays) computed here by the routing kernel, and only adds and subtracts
rows. Exported scenarios go back into ``circles coverage --scenario`` and give the same numbers.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.placement import in_study_area, snap_cap_metres
from ..engine.routing import Anchors, coverage_matrix
from ..engine.siting import candidate_nodes
from ..readers.crs import from_wgs84
from .i18n import html_lang, localized, t
from .offline import leaflet_assets
from .runfolder import write_text

__all__ = ["explorer_data", "write_explorer"]

_MAX_DEMAND_POINTS = 60_000


def _b64(a: np.ndarray, dtype) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def _aggregate(result) -> tuple[pd.DataFrame, Anchors, bool]:
    """Demand as the explorer sees it: the run's points, or H3 cells when there are too many."""
    d = result.demand
    lon, lat = d.geometry.x.to_numpy(), d.geometry.y.to_numpy()
    frame = pd.DataFrame({"lon": lon, "lat": lat, "pop": d["pop"].to_numpy(float),
                          "unit": d["unit"].astype(str).to_numpy(), "status": d["status"].to_numpy()})
    if len(frame) <= _MAX_DEMAND_POINTS:
        return frame, result.demand_anchors, False
    from ..engine.gaps import h3_cells

    cells = h3_cells(lon, lat, 9)
    frame["cell"] = cells
    frame["wx"], frame["wy"] = lon * frame["pop"], lat * frame["pop"]
    g = frame.groupby(["cell", "unit", "status"], sort=False).agg(pop=("pop", "sum"), wx=("wx", "sum"),
                                                                  wy=("wy", "sum"), lon=("lon", "mean"),
                                                                  lat=("lat", "mean")).reset_index()
    has = g["pop"] > 0
    g.loc[has, "lon"] = g.loc[has, "wx"] / g.loc[has, "pop"]
    g.loc[has, "lat"] = g.loc[has, "wy"] / g.loc[has, "pop"]
    net = result.network
    x, y = net.from_wgs84(g["lon"].to_numpy(), g["lat"].to_numpy())
    snap = net.snap(np.where(g["status"] == "ok", x, np.nan), np.where(g["status"] == "ok", y, np.nan),
                    max_metres=snap_cap_metres(result.profile))
    return g[["lon", "lat", "pop", "unit", "status"]], Anchors.from_snap(snap), True


def explorer_data(run, *, spacing_metres: float = 150.0) -> dict:
    """Everything the page needs, as plain JSON-serialisable data."""
    result = run.result if hasattr(run, "result") else run
    profile, net = result.profile, result.network
    demand, d_anchors, aggregated = _aggregate(result)
    fac = result.facilities
    ok = (fac["status"] == "ok").to_numpy()
    existing = fac[ok]
    nodes = candidate_nodes(net, spacing_metres=spacing_metres,
                            exclude_xy=(existing["x"].to_numpy(float), existing["y"].to_numpy(float)))
    nodes = nodes[in_study_area(net, net.x[nodes], net.y[nodes], profile)]
    clon, clat = net.to_wgs84(net.x[nodes], net.y[nodes])
    proposals = getattr(run, "extras", {}).get("proposals") if hasattr(run, "extras") else None
    prop_lon = np.asarray(proposals["lon"], float) if proposals is not None and len(proposals) else np.array([])
    prop_lat = np.asarray(proposals["lat"], float) if proposals is not None and len(proposals) else np.array([])
    # Sites: existing facilities, then the proposals, then the thinned candidate nodes.
    px, py = net.from_wgs84(prop_lon, prop_lat)
    p_snap = net.snap(px, py, max_metres=snap_cap_metres(profile))
    anchors = _concat([result.facility_anchors.subset(ok), Anchors.from_snap(p_snap),
                       Anchors.at_nodes(net, nodes)])
    lon = np.concatenate([existing.geometry.x.to_numpy(), prop_lon, np.asarray(clon)])
    lat = np.concatenate([existing.geometry.y.to_numpy(), prop_lat, np.asarray(clat)])
    glon, glat = from_wgs84(lon, lat, "gcj02")
    kind = ["existing"] * len(existing) + ["proposal"] * len(prop_lon) + ["candidate"] * len(nodes)
    tiers = list(existing["tier"]) + [str(proposals["tier"].iloc[0]) if len(prop_lon) else ""] * len(prop_lon) \
        + [""] * len(nodes)
    names = list(existing["name"].astype(str)) + [f"#{r}" for r in (proposals["rank"] if len(prop_lon) else [])] \
        + [""] * len(nodes)
    ids = list(existing["facility_id"].astype(str)) + [f"P{i + 1}" for i in range(len(prop_lon))] \
        + [f"C{i + 1}" for i in range(len(nodes))]
    matrices = {}
    for tier in profile.tiers:
        m = coverage_matrix(net, anchors, d_anchors, limit_metres=profile.threshold_metres(tier.code)).tocsr()
        m.sort_indices()
        matrices[tier.code] = {"indptr": _b64(m.indptr, "<u4"), "indices": _b64(m.indices, "<u4"),
                               "nnz": int(m.nnz)}
    units = sorted(set(demand["unit"]))
    return {
        "tiers": [{"code": tr.code, "name": tr.name_zh, "name_zh": tr.name_zh, "name_en": tr.name_en,
                   "colour": tr.colour,
                   "minutes": round(profile.threshold_minutes(tr.code), 2),
                   "metres": round(profile.threshold_metres(tr.code), 1),
                   "eligible": profile.eligible(tr.code)} for tr in profile.tiers],
        "demand": {"lon": np.round(demand["lon"], 6).tolist(), "lat": np.round(demand["lat"], 6).tolist(),
                   "pop": np.round(demand["pop"], 3).tolist(),
                   "unit": [units.index(u) for u in demand["unit"]],
                   "ok": (demand["status"] == "ok").astype(int).tolist()},
        "outside_pop": float(result.outside_extra_pop), "units": units, "aggregated": aggregated,
        "sites": {"lon": np.round(lon, 7).tolist(), "lat": np.round(lat, 7).tolist(),
                  "gcj_lon": np.round(glon, 7).tolist(), "gcj_lat": np.round(glat, 7).tolist(),
                  "kind": kind, "tier": tiers, "name": names, "id": ids},
        "matrices": matrices, "profile": profile.name,
        "population_label": result.population_label, "is_estimate": bool(result.is_estimate),
    }


def _concat(parts: list[Anchors]) -> Anchors:
    return Anchors(edge=np.concatenate([p.edge for p in parts]),
                   along_m=np.concatenate([p.along_m for p in parts]),
                   offset_m=np.concatenate([p.offset_m for p in parts]))


def write_explorer(folder: str | Path, *, run, lang: str | None = None,
                   spacing_metres: float = 150.0) -> Path:
    """Write ``explorer.html`` for ``run`` (a finished run, or one rebuilt with
    :func:`circles.runs.rerun.rerun`) into ``folder``. Prints nothing; returns the path."""
    folder = Path(folder)
    data = explorer_data(run, spacing_metres=spacing_metres)
    lang = lang or run.result.profile.lang
    page = render(data, lang=lang, title=folder.name)
    return write_text(folder / "explorer.html", page)


def estimate_size(data: dict) -> int:
    """Bytes the page will take (the data's JSON plus Leaflet)."""
    return len(json.dumps(data)) + 200_000


_WORDS = ("title", "facilities", "units", "covered_share", "gain", "people", "proposals", "tier", "estimate",
          "add_as", "hint", "load", "reset", "export_csv", "export_geojson", "covered", "last", "closed", "view",
          "minutes", "attribution", "explorer_legend", "explorer_people_at", "explorer_people_covered",
          "explorer_people_uncovered", "explorer_people_unplaced", "explorer_dot_size", "explorer_sites",
          "explorer_existing", "explorer_added", "explorer_candidate", "explorer_closed", "explorer_no_proposals",
          "explorer_scenario_gain", "explorer_zoom_in", "explorer_zoom_out")


def render(data: dict, *, lang: str = "zh", title: str = "") -> str:
    """The page: Leaflet and the data inlined, no request to anywhere."""
    js, css = leaflet_assets()
    words: dict = {k: t(k, lang) for k in _WORDS}
    # Tier names come from the profile (data): picked here, so the page never branches on language.
    words["tier_names"] = {tr["code"]: localized(tr, "name", lang) for tr in data["tiers"]}
    # The locale groups digits as the page's readers expect (Intl.NumberFormat in the page).
    payload = json.dumps({"data": data, "words": words, "lang": lang, "locale": html_lang(lang)},
                         ensure_ascii=False)
    payload = payload.replace("</", "<\\/")  # nothing in the data can close the script element
    return _PAGE.replace("%TITLE%", html.escape(f"{words['title']} · {title}")) \
        .replace("%LANG%", html.escape(html_lang(lang))) \
        .replace("%LEAFLET_CSS%", css).replace("%LEAFLET_JS%", js.replace("</script", "<\\/script")) \
        .replace("%PAYLOAD%", payload).replace("%APP%", _APP)


_PAGE = """<!doctype html><html lang="%LANG%"><head><meta charset="utf-8"><title>%TITLE%</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>%LEAFLET_CSS%</style>
<style>
html,body{margin:0;height:100%;font:13px "Noto Sans CJK SC","Microsoft YaHei",Arial,sans-serif}
#map{position:absolute;left:0;top:0;bottom:0;right:380px}
#panel{position:absolute;right:0;top:0;bottom:0;width:380px;overflow:auto;padding:10px;box-sizing:border-box;
background:#fafafa;border-left:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border-bottom:1px solid #ddd;padding:3px 4px;text-align:right}
th:first-child,td:first-child{text-align:left}button{margin:2px}.note{color:#a15c00}.gain{color:#1a9641;font-weight:bold}
.legend{background:rgba(255,255,255,.92);padding:6px 9px;border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.3);
line-height:1.6;max-width:250px}.legend .head{margin-top:4px;font-weight:bold}.legend .hint{color:#666}
.legend i{display:inline-block;border-radius:50%;margin:0 6px 0 2px;vertical-align:middle;box-sizing:border-box;
box-shadow:0 0 0 1px #888}
</style></head><body><div id="map"></div><div id="panel"></div>
<script>%LEAFLET_JS%</script>
<script id="circles-data" type="application/json">%PAYLOAD%</script>
<script>%APP%</script></body></html>"""

_APP = r"""
const P = JSON.parse(document.getElementById('circles-data').textContent);
const D = P.data, W = P.words;
const esc = s => String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
// Every figure the page shows goes through these three: whole people, 0.1 min, shares to 0.1 %.
const WHOLE = new Intl.NumberFormat(P.locale, {maximumFractionDigits: 0});
const TENTH = new Intl.NumberFormat(P.locale, {maximumFractionDigits: 1});
const PERCENT = new Intl.NumberFormat(P.locale, {style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1});
const people = x => WHOLE.format(Math.round(x) || 0);  // "|| 0": a rounded -0.3 shows as 0, not -0
const gainText = x => { const r = Math.round(x) || 0; return r ? (r > 0 ? '+' : '') + WHOLE.format(r) : ''; };
const minutes = x => TENTH.format(Math.round(x * 10) / 10) + ' ' + W.minutes;
const share = (x, of) => PERCENT.format(of ? x / of : 0);
// The colours of the points, once: the markers and the legend both read them.
const COLOURS = {covered: '#2b83ba', uncovered: '#d7191c', unplaced: '#999', added: '#d7191c', existing: '#fff',
  candidate: '#ccc', candidateRing: '#999', closed: '#fff', closedRing: '#000'};
function u32(b64) { const s = atob(b64), a = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return new Uint32Array(a.buffer); }
const M = {}; for (const t of D.tiers) M[t.code] = {indptr: u32(D.matrices[t.code].indptr), indices: u32(D.matrices[t.code].indices)};
const nD = D.demand.pop.length, nS = D.sites.lon.length, pop = Float64Array.from(D.demand.pop);
const total = pop.reduce((a, b) => a + b, 0) + D.outside_pop;
const count = {}, covered = {}, unitCovered = {}, unitTotal = new Float64Array(D.units.length);
for (let d = 0; d < nD; d++) unitTotal[D.demand.unit[d]] += pop[d];
const siteTier = D.sites.tier.slice(), active = new Uint8Array(nS);
for (let s = 0; s < nS; s++) active[s] = D.sites.kind[s] === 'existing' ? 1 : 0;
const nProposals = D.sites.kind.filter(k => k === 'proposal').length;
let lastGain = {}, loaded = false;
function apply(s, sign) {
  const delta = {};
  for (const t of D.tiers) {
    delta[t.code] = 0;
    if (!t.eligible.includes(siteTier[s])) continue;
    const m = M[t.code], c = count[t.code];
    for (let k = m.indptr[s]; k < m.indptr[s + 1]; k++) {
      const d = m.indices[k];
      if (sign > 0) { if (c[d]++ === 0) { covered[t.code] += pop[d]; unitCovered[t.code][D.demand.unit[d]] += pop[d]; delta[t.code] += pop[d]; } }
      else { if (--c[d] === 0) { covered[t.code] -= pop[d]; unitCovered[t.code][D.demand.unit[d]] -= pop[d]; delta[t.code] -= pop[d]; } }
    }
  }
  return delta;
}
function recompute() {
  for (const t of D.tiers) { count[t.code] = new Int32Array(nD); covered[t.code] = 0; unitCovered[t.code] = new Float64Array(D.units.length); }
  for (let s = 0; s < nS; s++) if (active[s]) apply(s, 1);
}
recompute();
const base = Object.assign({}, covered);  // the run as it stands: what a scenario's gain is measured from
const map = L.map('map', {preferCanvas: true, zoomSnap: 0.25, zoomControl: false});
L.control.zoom({zoomInTitle: W.explorer_zoom_in, zoomOutTitle: W.explorer_zoom_out}).addTo(map);
// Leaflet's own prefix carries an English tooltip: the name alone reads the same in every language.
map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
map.attributionControl.addAttribution(esc(W.attribution));
L.control.scale({imperial: false}).addTo(map);
let view = D.tiers[D.tiers.length - 1].code, addTier = D.tiers[D.tiers.length - 1].code;
const dots = [];
for (let d = 0; d < nD; d++) dots.push(L.circleMarker([D.demand.lat[d], D.demand.lon[d]],
  {radius: 2 + Math.min(6, Math.sqrt(pop[d]) / 6), stroke: false, fillOpacity: 0.6}).addTo(map));
const tierOf = c => D.tiers.find(t => t.code === c);
const marks = [];
for (let s = 0; s < nS; s++) {
  // Weights are set here once: changing a weight later makes Leaflet re-measure bounds.
  const m = L.circleMarker([D.sites.lat[s], D.sites.lon[s]], {radius: D.sites.kind[s] === 'candidate' ? 2.5 : 7, weight: D.sites.kind[s] === 'candidate' ? 1 : 2});
  m.on('click', () => toggle(s)); m.addTo(map); marks.push(m);
}
function styleSite(s) {
  const k = D.sites.kind[s], on = active[s], t = tierOf(siteTier[s]);
  if (k === 'candidate' && !on) marks[s].setStyle({color: COLOURS.candidateRing, opacity: 0.5, fillColor: COLOURS.candidate, fillOpacity: 0.35});
  else if (!on) marks[s].setStyle({color: COLOURS.closedRing, fillColor: COLOURS.closed, fillOpacity: 0.9, dashArray: '2 2'});
  else marks[s].setStyle({color: k === 'existing' ? COLOURS.existing : COLOURS.added, opacity: 1, fillColor: t ? t.colour : COLOURS.added, fillOpacity: 1, dashArray: null});
  if (map._loaded) marks[s].setRadius(k === 'candidate' ? (on ? 6 : 2.5) : 7);
  const what = k === 'proposal' ? ' · ' + W.proposals : '';
  const label = (D.sites.name[s] ? esc(D.sites.name[s]) + what + ' · ' : '') + esc(t ? W.tier_names[t.code] : '') + (on || k !== 'existing' ? '' : ' · ' + W.closed);
  marks[s].bindTooltip(label);
}
const legend = L.control({position: 'bottomleft'});
legend.onAdd = () => { const div = L.DomUtil.create('div', 'legend'); div.id = 'legend'; L.DomEvent.disableClickPropagation(div); return div; };
legend.addTo(map);
function drawLegend() {
  const dot = (fill, ring, size, dashed) => '<i style="background:' + fill + ';border:' + (ring ? (dashed ? '1.5px dashed ' : '2px solid ') + ring : 'none') + ';width:' + size + 'px;height:' + size + 'px"></i>';
  const row = (key, swatch, text) => '<div data-key="' + key + '">' + swatch + esc(text) + '</div>';
  let h = '<b>' + esc(W.explorer_legend) + '</b><div class="head">' + esc(W.explorer_people_at.replace('{tier}', W.tier_names[view])) + '</div>';
  h += row('covered', dot(COLOURS.covered, null, 10), W.explorer_people_covered) + row('uncovered', dot(COLOURS.uncovered, null, 10), W.explorer_people_uncovered)
    + row('unplaced', dot(COLOURS.unplaced, null, 10), W.explorer_people_unplaced) + '<div class="hint">' + esc(W.explorer_dot_size) + '</div>';
  h += '<div class="head">' + esc(W.explorer_sites) + '</div>';
  for (const t of D.tiers) h += row('existing-' + esc(t.code), dot(t.colour, COLOURS.existing, 14), W.tier_names[t.code] + ' · ' + W.explorer_existing);
  h += row('added', dot(D.tiers[D.tiers.length - 1].colour, COLOURS.added, 14), W.explorer_added) + row('candidate', dot(COLOURS.candidate, COLOURS.candidateRing, 6), W.explorer_candidate)
    + row('closed', dot(COLOURS.closed, COLOURS.closedRing, 14, true), W.explorer_closed);
  document.getElementById('legend').innerHTML = h;
}
function styleDots() {
  const c = count[view];
  for (let d = 0; d < nD; d++) dots[d].setStyle({fillColor: !D.demand.ok[d] ? COLOURS.unplaced : (c[d] > 0 ? COLOURS.covered : COLOURS.uncovered)});
  drawLegend();
}
function flip(s) {
  // A candidate is added at the chosen tier; a proposal at the tier it was sited for.
  if (!active[s] && D.sites.kind[s] !== 'existing') siteTier[s] = D.sites.kind[s] === 'proposal' && D.sites.tier[s] ? D.sites.tier[s] : addTier;
  const delta = apply(s, active[s] ? -1 : 1); active[s] ^= 1; styleSite(s); return delta;
}
function toggle(s) { lastGain = flip(s); loaded = false; styleDots(); panel(); }
function scenarioRows() {
  const rows = [];
  for (let s = 0; s < nS; s++) {
    if (D.sites.kind[s] !== 'existing' && active[s]) rows.push({action: 'add', id: D.sites.id[s], name: D.sites.name[s] || D.sites.id[s], tier: siteTier[s], lon: D.sites.lon[s], lat: D.sites.lat[s], gcj02_lon: D.sites.gcj_lon[s], gcj02_lat: D.sites.gcj_lat[s]});
    if (D.sites.kind[s] === 'existing' && !active[s]) rows.push({action: 'close', id: D.sites.id[s], name: D.sites.name[s], tier: siteTier[s], lon: D.sites.lon[s], lat: D.sites.lat[s], gcj02_lon: D.sites.gcj_lon[s], gcj02_lat: D.sites.gcj_lat[s]});
  }
  return rows;
}
function download(name, text, type) {
  const a = document.createElement('a'); a.href = URL.createObjectURL(new Blob([text], {type}));
  a.download = name; document.body.appendChild(a); a.click(); a.remove();
}
const csvText = s => s.replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '').replace(/^(?='*[=+\-@\t\r])/, "'");
function exportCSV() {
  const cols = ['action', 'id', 'name', 'tier', 'lon', 'lat', 'gcj02_lon', 'gcj02_lat'];
  // Text cells as circles.outputs.write_csv writes them: control characters removed, and a quote
  // before one starting with = + - @ tab or CR, which Excel would run as a formula (CSV injection).
  const q = v => '"' + (typeof v === 'string' ? csvText(v) : String(v)).replace(/"/g, '""') + '"';
  const text = '\ufeff' + cols.join(',') + '\n' + scenarioRows().map(r => cols.map(c => q(r[c])).join(',')).join('\n') + '\n';
  window.__lastExport = text; download('scenario.csv', text, 'text/csv');
}
function exportGeoJSON() {
  const fc = {type: 'FeatureCollection', features: scenarioRows().map(r => ({type: 'Feature', properties: r, geometry: {type: 'Point', coordinates: [r.lon, r.lat]}}))};
  const text = JSON.stringify(fc); window.__lastGeoJSON = text; download('scenario.geojson', text, 'application/geo+json');
}
function loadProposals() {
  if (!nProposals) return;
  for (let s = 0; s < nS; s++) if (D.sites.kind[s] === 'proposal' && !active[s]) flip(s);
  // The last change is then the whole scenario's: every tier against the run as it stands.
  lastGain = {}; for (const t of D.tiers) lastGain[t.code] = covered[t.code] - base[t.code];
  loaded = true; styleDots(); panel();
}
function reset() { for (let s = 0; s < nS; s++) { active[s] = D.sites.kind[s] === 'existing' ? 1 : 0; siteTier[s] = D.sites.tier[s]; styleSite(s); } recompute(); lastGain = {}; loaded = false; styleDots(); panel(); }
function loadButton() {
  if (nProposals) return '<button id="loadProposals" onclick="loadProposals()">' + esc(W.load) + '</button>';
  // A disabled button gets no mouse events in every browser: the span carries the tooltip too.
  const why = esc(W.explorer_no_proposals);
  return '<span title="' + why + '"><button id="loadProposals" disabled title="' + why + '">' + esc(W.load) + '</button></span>';
}
function panel() {
  let h = '<h3>' + esc(W.title) + '</h3><p>' + esc(W.hint) + '</p>';
  if (D.is_estimate) h += '<p class="note">' + esc(W.estimate) + '</p>';
  h += '<label>' + esc(W.add_as) + ' <select id="addTier">' + D.tiers.map(t => '<option value="' + t.code + '"' + (t.code === addTier ? ' selected' : '') + '>' + esc(W.tier_names[t.code]) + '</option>').join('') + '</select></label> ';
  h += '<label>' + esc(W.view) + ' <select id="viewTier">' + D.tiers.map(t => '<option value="' + t.code + '"' + (t.code === view ? ' selected' : '') + '>' + esc(W.tier_names[t.code]) + '</option>').join('') + '</select></label>';
  h += '<table id="tiers"><tr><th>' + esc(W.tier) + '</th><th>' + esc(W.covered) + '</th><th>' + esc(W.covered_share) + '</th><th>' + esc(W.last) + '</th></tr>';
  for (const t of D.tiers) h += '<tr data-tier="' + t.code + '"><td>' + esc(W.tier_names[t.code]) + ' (' + esc(minutes(t.minutes)) + ')</td><td class="covered">' + people(covered[t.code]) + '</td><td>' + share(covered[t.code], total) + '</td><td class="gain">' + gainText(lastGain[t.code] || 0) + '</td></tr>';
  h += '</table>';
  if (loaded) h += '<p class="note" id="scenarioNote">' + esc(W.explorer_scenario_gain) + '</p>';
  h += loadButton() + '<button onclick="reset()">' + esc(W.reset) + '</button><button id="exportCsv" onclick="exportCSV()">' + esc(W.export_csv) + '</button><button onclick="exportGeoJSON()">' + esc(W.export_geojson) + '</button>';
  if (D.units.length > 1 || D.units[0] !== '(no unit)') {
    h += '<h4>' + esc(W.units) + ' · ' + esc(tierOf(view) ? W.tier_names[view] : '') + '</h4><table><tr><th></th><th>' + esc(W.covered) + '</th><th>' + esc(W.covered_share) + '</th></tr>';
    D.units.forEach((u, i) => { h += '<tr><td>' + esc(u) + '</td><td>' + people(unitCovered[view][i]) + '</td><td>' + share(unitCovered[view][i], unitTotal[i]) + '</td></tr>'; });
    h += '</table>';
  }
  h += '<p style="color:#666">' + esc(W.attribution) + '</p>';
  document.getElementById('panel').innerHTML = h;
  document.getElementById('addTier').onchange = e => { addTier = e.target.value; };
  document.getElementById('viewTier').onchange = e => { view = e.target.value; styleDots(); panel(); };
}
window.circles = {toggle, covered: () => Object.assign({}, covered), exportCSV, exportGeoJSON, loadProposals, reset,
  reachSize: (s, code) => M[code].indptr[s + 1] - M[code].indptr[s],
  setAddTier: c => { addTier = c; }, sites: D.sites, scenarioRows, colours: COLOURS};
for (let s = 0; s < nS; s++) styleSite(s);
styleDots(); panel();
const lats = D.demand.lat.length ? D.demand.lat : D.sites.lat, lons = D.demand.lon.length ? D.demand.lon : D.sites.lon;
map.fitBounds([[Math.min(...lats), Math.min(...lons)], [Math.max(...lats), Math.max(...lons)]], {padding: [20, 20]});
for (const m of marks) if (m.options.fillOpacity === 1) m.bringToFront();
"""
