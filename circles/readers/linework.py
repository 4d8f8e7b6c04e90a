"""Topology repair of line work drawn for maps: gaps closed, crossings noded per level, duplicates
dropped, and a node index for the pieces.

The engine under :func:`circles.roads.repair_lines`. Everything works on flat coordinate arrays
(``coords`` with a line index ``idx``, as :func:`shapely.get_coordinates` returns them), GEOS does
the noding, SciPy's KD-tree the endpoint search; no step loops over lines or pairs in Python.
Gaps are closed in :mod:`circles.readers.linework_gaps`; the array helpers both use are in
:mod:`circles.readers.linework_arrays`.

Levels: lines on one level meet wherever they touch or cross; lines on different levels (a bridge,
the street below) meet only where one of them ends, as a bridge lands or steps reach a footbridge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .linework_arrays import (
    MM,
    bounds,
    codes,
    fix_frame,
    fix_points,
    insert_points,
    isin,
    position_key,
    split_lines,
)
from .linework_gaps import close_gaps

__all__ = ["repair_linework"]


def repair_linework(geoms: np.ndarray, level: np.ndarray, *, snap_metres: float,
                    node_crossings: bool) -> dict:
    """Repair projected LineStrings (no multi-parts, no empties) and index their nodes.

    Parameters
    ----------
    geoms
        LineStrings in a metric CRS.
    level
        One level per line: 0 on the ground, the layer (or +1 bridge, -1 tunnel) otherwise.
    snap_metres
        Dangling ends this close to another end or line are joined to it (0: none).
    node_crossings
        Node lines where they cross on one level (GEOS noding); ``False`` trusts the line work:
        lines meet only at shared vertices, whatever their level (OSM's rule).

    Returns
    -------
    dict
        ``geometry`` (pieces), ``line`` (index of the input line each piece lies on), ``u``,
        ``v`` (node index of each piece's first and last point), ``node_xy``, ``report``
        (counts of every fix) and ``fixes`` (``kind``, ``x``, ``y``, ``metres`` of each fix).

    """
    level = np.asarray(level, dtype=float)
    report: dict = {}
    fixes: list[pd.DataFrame] = []
    coords, idx, line = _snapped(geoms, level, snap_metres, report, fixes)
    if node_crossings:
        coords, idx, piece_line = _node(coords, idx, level[line], report, fixes)
        line = line[piece_line]
        cut = _landing_cuts(coords, idx, level[line])
    else:
        report["crossings_noded"] = 0
        cut = _shared_vertex_cuts(coords, idx)
    coords, idx, line = split_lines(coords, idx, line, cut)
    coords, idx, line = _split_rings(coords, idx, line, report)
    pieces = shapely.linestrings(coords, indices=idx)
    first, last = bounds(idx)
    report["lines_split"] = int(max(len(pieces) - len(geoms), 0))

    # Noding leaves sub-millimetre slivers where GEOS met nearly coincident points.
    ok = shapely.length(pieces) > MM
    report["slivers_dropped"] = int((~ok).sum())
    pieces, line, first, last = pieces[ok], line[ok], first[ok], last[ok]
    a, b = coords[first], coords[last]
    u, v, node_xy = _node_index(a, b, level[line], by_level=node_crossings)
    keep = _not_duplicates(pieces, u, v, level[line], snap_metres)
    report["duplicate_pieces_dropped"] = int((~keep).sum())
    fixes.append(fix_points("duplicate_dropped", shapely.line_interpolate_point(
        pieces[~keep], 0.5, normalized=True), 0.0))
    return {"geometry": pieces[keep], "line": line[keep], "u": u[keep], "v": v[keep],
            "node_xy": node_xy, "report": report,
            "fixes": pd.concat(fixes, ignore_index=True) if fixes else fix_frame()}


def _snapped(geoms, level, snap_metres, report, fixes):
    """The lines' coordinates with their gaps closed, and the input line each line left is."""
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    line = np.arange(len(geoms))
    if not snap_metres > 0:
        report.update(gaps_closed=0, short_lines_collapsed=0, ends_joined_to_lines=0, overshoots_trimmed=0)
        return coords, idx, line
    coords, idx, collapsed = close_gaps(coords, idx, level, snap_metres, report, fixes)
    if collapsed.any():  # renumber the lines left, remembering which input line each is
        line = np.flatnonzero(~collapsed)
        vertex = ~collapsed[idx]
        coords, idx = coords[vertex], np.cumsum(~collapsed)[idx[vertex]] - 1
    return coords, idx, line


# --- noding ---------------------------------------------------------------------------------------

def _node(coords, idx, level, report, fixes):
    """Node each level's lines with GEOS; each piece remembers the line it lies on."""
    lines = shapely.linestrings(coords, indices=idx)
    same = idx[1:] == idx[:-1]
    sa = np.flatnonzero(same)
    seg_line = idx[sa]
    in_key = position_key(coords)
    out_coords, out_idx, out_line = [], [], []
    new_points, overlaps = [], []
    base = 0
    overlap = 0.0
    for lv in np.sort(pd.unique(level)):  # a handful of levels: one GEOS call each
        mine = np.flatnonzero(level == lv)
        try:
            noded = shapely.node(shapely.multilinestrings(lines[mine]))
        except shapely.errors.GEOSException:  # a robustness failure: snap-rounding overlay instead
            noded = shapely.union_all(lines[mine], grid_size=MM)
        pieces = shapely.get_parts(noded)
        overlap += float(shapely.length(lines[mine]).sum() - shapely.length(pieces).sum())
        segs = np.flatnonzero(level[seg_line] == lv)
        tree = shapely.STRtree(shapely.linestrings(np.stack([coords[sa[segs]], coords[sa[segs] + 1]], axis=1)))
        # A piece's midpoint lies on the segment it came from (to rounding): a box query finds it.
        mid = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
        pi, sj = tree.query(mid, predicate="dwithin", distance=MM)
        order = np.argsort(pi, kind="stable")
        pi, sj = pi[order], sj[order]
        at = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.zeros(0, dtype=bool)
        nearest = np.zeros(len(pieces), dtype=np.int64)
        nearest[pi[at]] = sj[at]
        found = np.zeros(len(pieces), dtype=bool)
        found[pi] = True
        lost = np.flatnonzero(~found)
        if len(lost):  # GEOS moved a piece by more than a millimetre: take the nearest segment
            nearest[lost] = tree.query_nearest(mid[lost], all_matches=False)[1]
        owner = seg_line[segs[nearest]]
        # A piece on segments of two or more lines is where GEOS merged overlapping lines.
        share = pd.DataFrame({"p": pi, "l": seg_line[segs[sj]]}).drop_duplicates()["p"].value_counts()
        share = share[share > 1]
        overlaps.append(fix_points("overlap_merged", mid[share.index.to_numpy()],
                                    shapely.length(pieces[share.index.to_numpy()]) * (share.to_numpy() - 1)))
        c, i = shapely.get_coordinates(pieces, return_index=True)
        f, la = bounds(i)
        ek = position_key(np.vstack([c[f], c[la]]))
        new_points.append(ek[~isin(ek, pd.unique(in_key[level[idx] == lv]))])
        out_coords.append(c)
        out_idx.append(i + base)
        out_line.append(owner)
        base += len(pieces)
    new = pd.unique(np.concatenate(new_points))
    report["crossings_noded"] = len(new)
    report["overlap_metres_dropped"] = round(max(overlap, 0.0), 1)
    overlaps = pd.concat(overlaps, ignore_index=True)
    report["overlaps_merged"] = len(overlaps)
    fixes.append(overlaps)
    fixes.append(fix_points("crossing_noded", np.column_stack([new.real, new.imag]), 0.0))
    return np.concatenate(out_coords), np.concatenate(out_idx), np.concatenate(out_line)


def _shared_vertex_cuts(coords: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Interior vertices that another vertex shares: where routable line work meets (any level)."""
    first, last = bounds(idx)
    interior = np.ones(len(idx), dtype=bool)
    interior[first] = interior[last] = False
    inv, _ = codes(position_key(coords))
    return interior & (np.bincount(inv)[inv] >= 2)


def _landing_cuts(coords: np.ndarray, idx: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Interior vertices where a line of another level ends alone (a bridge lands, steps arrive).

    Same-level meetings were noded by GEOS already.
    """
    first, last = bounds(idx)
    is_end = np.zeros(len(idx), dtype=bool)
    is_end[first] = is_end[last] = True
    pos, uniq = codes(position_key(coords))
    df = pd.DataFrame({"p": pos, "l": level[idx], "end": is_end})
    g = df.groupby(["p", "l"], sort=False)["end"].agg(["sum", "size"])
    lone = np.zeros(len(uniq), dtype=bool)
    lone[g.index[(g["sum"] == 1) & (g["size"] == 1)].get_level_values("p")] = True
    return ~is_end & lone[pos]


def _split_rings(coords, idx, line, report):
    """A closed piece would be a self-loop (dropped by the graph): cut it in three."""
    first, last = bounds(idx)
    k = position_key(coords)
    seg = np.r_[np.hypot(*np.diff(coords, axis=0).T), 0.0]
    seg[last] = 0.0  # no segment from one line's last vertex to the next line's first
    cum = np.r_[0.0, np.cumsum(seg)[:-1]]
    ring = np.flatnonzero((k[first] == k[last]) & (cum[last] - cum[first] > 3 * MM))
    report["rings_split"] = len(ring)
    if not len(ring):
        return coords, idx, line
    total = cum[last[ring]] - cum[first[ring]]
    at = np.concatenate([cum[first[ring]] + total / 3, cum[first[ring]] + 2 * total / 3])
    rr = np.concatenate([ring, ring])
    vtx = np.clip(np.searchsorted(cum, at, side="right") - 1, first[rr], last[rr] - 1)
    frac = np.clip((at - cum[vtx]) / np.maximum(seg[vtx], 1e-18), 0, 1)
    xy = coords[vtx] + frac[:, None] * (coords[vtx + 1] - coords[vtx])
    pos = (vtx - first[rr]) + frac
    coords2, idx2, cut = insert_points(coords, idx, rr, pos, xy)
    return split_lines(coords2, idx2, line, cut)


# --- nodes and duplicates -------------------------------------------------------------------------

def _node_index(a: np.ndarray, b: np.ndarray, level: np.ndarray, *, by_level: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node of each piece end: one per position (within 1 mm); on separate levels unless one ends alone."""
    m = len(a)
    ends = np.vstack([a, b])
    inv, pk = codes(position_key(ends))
    pxy = np.column_stack([pk.real, pk.imag])
    pairs = cKDTree(pxy).query_pairs(1.5 * MM, output_type="ndarray")
    g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pk), len(pk)))
    _, pos = connected_components(g, directed=False)
    pos = pos[inv]
    if by_level:
        lev = np.concatenate([level, level])
        lcode, _ = codes(lev)
        df = pd.DataFrame({"p": pos, "l": lcode})
        n = df.groupby(["p", "l"])["l"].transform("size").to_numpy()
        lone = pd.Series(n == 1).groupby(pos).transform("max").to_numpy()
        levels = df.groupby("p")["l"].transform("nunique").to_numpy()
        split = ~lone & (levels > 1)
        pos = pos.astype(np.int64) * (lcode.max() + 2) + np.where(split, lcode + 1, 0)
    node, _ = pd.factorize(pos)
    cnt = np.bincount(node)
    node_xy = np.column_stack([np.bincount(node, ends[:, 0]) / cnt, np.bincount(node, ends[:, 1]) / cnt])
    return node[:m], node[m:], node_xy


def _not_duplicates(pieces, u, v, level, snap_metres: float) -> np.ndarray:
    """Drop pieces that repeat another between the same nodes on one level, within the snap tolerance."""
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    df = pd.DataFrame({"lo": lo, "hi": hi, "l": level})
    grp = df.groupby(["lo", "hi", "l"], sort=False)
    ref = grp.ngroup().to_numpy()
    first = grp.cumcount().to_numpy() == 0
    ref_piece = np.full(ref.max() + 1 if len(ref) else 0, -1)
    ref_piece[ref[first]] = np.flatnonzero(first)
    keep = np.ones(len(pieces), dtype=bool)
    cand = np.flatnonzero(~first)
    if len(cand):
        hd = shapely.hausdorff_distance(pieces[cand], pieces[ref_piece[ref[cand]]])
        keep[cand] = ~(hd <= max(snap_metres, 0.01))
    return keep
