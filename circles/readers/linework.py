"""Topology repair of line work drawn for maps: gaps closed, crossings noded per level, duplicates
dropped, and a node index for the pieces.

The engine under :func:`circles.roads.repair_lines`. Everything works on flat coordinate arrays
(``coords`` with a line index ``idx``, as :func:`shapely.get_coordinates` returns them), GEOS does
the noding, SciPy's KD-tree the endpoint search; no step loops over lines or pairs in Python.

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

__all__ = ["repair_linework"]

MM = 1e-3  # positions closer than this are one point; lines shorter than this are no lines


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
    coords, idx = shapely.get_coordinates(geoms, return_index=True)
    line = np.arange(len(geoms))
    if snap_metres > 0:
        coords, idx, collapsed = _close_gaps(coords, idx, level, snap_metres, report, fixes)
        if collapsed.any():  # renumber the lines left, remembering which input line each is
            line = np.flatnonzero(~collapsed)
            vertex = ~collapsed[idx]
            coords, idx = coords[vertex], np.cumsum(~collapsed)[idx[vertex]] - 1
    else:
        report.update(gaps_closed=0, short_lines_collapsed=0, ends_joined_to_lines=0, overshoots_trimmed=0)
    if node_crossings:
        coords, idx, piece_line = _node(coords, idx, level[line], report, fixes)
        line = line[piece_line]
        cut = _landing_cuts(coords, idx, level[line])
    else:
        report["crossings_noded"] = 0
        cut = _shared_vertex_cuts(coords, idx)
    coords, idx, line = _split(coords, idx, line, cut)
    coords, idx, line = _split_rings(coords, idx, line, report)
    pieces = shapely.linestrings(coords, indices=idx)
    first, last = _bounds(idx)
    report["lines_split"] = int(max(len(pieces) - len(geoms), 0))

    # Noding leaves sub-millimetre slivers where GEOS met nearly coincident points.
    ok = shapely.length(pieces) > MM
    report["slivers_dropped"] = int((~ok).sum())
    pieces, line, first, last = pieces[ok], line[ok], first[ok], last[ok]
    a, b = coords[first], coords[last]
    u, v, node_xy = _node_index(a, b, level[line], by_level=node_crossings)
    keep = _not_duplicates(pieces, u, v, level[line], snap_metres)
    report["duplicate_pieces_dropped"] = int((~keep).sum())
    fixes.append(_fix_points("duplicate_dropped", shapely.line_interpolate_point(
        pieces[~keep], 0.5, normalized=True), 0.0))
    return {"geometry": pieces[keep], "line": line[keep], "u": u[keep], "v": v[keep],
            "node_xy": node_xy, "report": report,
            "fixes": pd.concat(fixes, ignore_index=True) if fixes else _fix_frame()}


# --- coordinate-array helpers --------------------------------------------------------------------

def _bounds(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last vertex of each line of a sorted line index."""
    first = np.r_[0, np.flatnonzero(np.diff(idx)) + 1]
    return first, np.r_[first[1:] - 1, len(idx) - 1]


def _key(xy: np.ndarray) -> np.ndarray:
    """One comparable value per position, rounded to the millimetre."""
    return np.round(xy[:, 0], 3) + 1j * np.round(xy[:, 1], 3)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 of equal values and the k distinct values (hashing: NumPy's unique sorts)."""
    codes, uniques = pd.factorize(values)
    return codes, np.asarray(uniques)


def _isin(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    return pd.Index(pool).get_indexer(values) >= 0 if len(pool) else np.zeros(len(values), dtype=bool)


def _insert(coords: np.ndarray, idx: np.ndarray, line: np.ndarray, pos: np.ndarray,
            xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Insert points into lines; ``pos`` = segment ordinal + fraction along it.

    Returns the new coordinates, line index and a mask of the inserted vertices.
    """
    first, _ = _bounds(idx)
    ordinal = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
    all_line = np.concatenate([idx, line])
    all_pos = np.concatenate([ordinal.astype(float), pos])
    order = np.lexsort((all_pos, all_line))
    return np.concatenate([coords, xy])[order], all_line[order], order >= len(idx)


def _split(coords: np.ndarray, idx: np.ndarray, line: np.ndarray, cut: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split lines at the interior vertices marked ``cut`` (the vertex ends one piece, starts the next)."""
    first, _ = _bounds(idx)
    rep = 1 + cut.astype(np.int64)
    new_coords = np.repeat(coords, rep, axis=0)
    starts = np.zeros(len(idx), dtype=np.int64)
    starts[first] = 1
    # A cut vertex's second copy starts a piece.
    start = np.repeat(starts, rep)
    pos = np.cumsum(rep) - 1
    start[pos[cut]] = 1
    piece = np.cumsum(start) - 1
    owner = np.repeat(line[idx], rep)
    first_new, _ = _bounds(piece)
    return new_coords, piece, owner[first_new]


def _fix_frame() -> pd.DataFrame:
    return pd.DataFrame({"kind": pd.Series(dtype=str), "x": pd.Series(dtype=float),
                         "y": pd.Series(dtype=float), "metres": pd.Series(dtype=float)})


def _fix_points(kind: str, points, metres) -> pd.DataFrame:
    xy = shapely.get_coordinates(points) if not isinstance(points, np.ndarray) or points.dtype == object \
        else points
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return pd.DataFrame({"kind": kind, "x": xy[:, 0], "y": xy[:, 1],
                         "metres": np.broadcast_to(np.asarray(metres, dtype=float), len(xy))})


# --- gaps ----------------------------------------------------------------------------------------

# A line at least this share of the tolerance long keeps its two ends apart when gaps close (a 1.5 m
# connector between two junctions stays); a shorter one is digitising noise and may fold into its
# junction, which is counted (``short_lines_collapsed``).
_KEEP_SHARE = 0.25


def _close_gaps(coords, idx, level, tol, report, fixes):
    """Join dangling ends: with the ends around them within ``tol``, else to the nearest line.

    A dangling end is one no other vertex shares. Ends within ``tol`` of each other cluster
    transitively (see :func:`_end_groups`); a cluster moves onto the end another line already
    shares there, or else to its members' mean. A cluster with no shared end, or an end left alone,
    is then joined to the nearest line on its level within ``tol`` by inserting a vertex there (the
    noding then splits that line), and an end that overshot that line is cut back to the crossing.

    Returns the coordinates, line index and a mask of the lines that collapsed (shorter than
    ``_KEEP_SHARE * tol``, both ends in one cluster).
    """
    first, last = _bounds(idx)
    n = len(first)
    ends = np.concatenate([first, last])
    inv, _ = _codes(_key(coords))
    dangling = np.bincount(inv)[inv[ends]] == 1
    pinv, pkey = _codes(_key(coords[ends]))
    pxy = np.column_stack([pkey.real, pkey.imag])
    same = idx[1:] == idx[:-1]
    seg = np.hypot(*np.diff(coords, axis=0).T)
    line_len = np.bincount(idx[:-1][same], seg[same], minlength=n)
    group, fixed = _end_groups(pxy, pinv, dangling, np.concatenate([level, level]), line_len, tol)

    # Each group goes to its shared end (the first, should a chain hold two) or to its mean.
    size = np.bincount(group)
    sink = np.full(len(size), -1)
    sink[group[fixed][::-1]] = np.flatnonzero(fixed)[::-1]
    mean = np.column_stack([np.bincount(group, pxy[:, 0]), np.bincount(group, pxy[:, 1])]) / size[:, None]
    newp = np.where((sink[group] >= 0)[:, None], pxy[np.maximum(sink[group], 0)], mean[group])
    shift = np.hypot(*(newp - pxy).T)
    moved = shift > 0
    coords = coords.copy()
    coords[ends] = newp[pinv]
    report["gaps_closed"] = int((size[group] > 1).sum() - (size > 1).sum())
    fixes.append(_fix_points("gap_closed", pxy[moved], shift[moved]))
    collapsed = (group[pinv[:n]] == group[pinv[n:]]) & (line_len < 3 * tol) & (pinv[:n] != pinv[n:])
    report["short_lines_collapsed"] = int(collapsed.sum())
    fixes.append(_fix_points("short_line_collapsed", (pxy[pinv[:n]] + pxy[pinv[n:]])[collapsed] / 2,
                             line_len[collapsed]))

    # Groups with no shared end (lone ends included), from one end each: onto the nearest line.
    free = np.flatnonzero(sink[group] < 0)
    _, rep_of = np.unique(group[free], return_index=True)
    gi = pd.Index(group[free[rep_of]]).get_indexer(group[free])
    end_at = np.empty(len(pxy), dtype=np.int64)
    end_at[pinv] = np.arange(2 * n)  # a free position is a dangling end's: one end there
    e = end_at[free[rep_of]]
    live = ~collapsed[e % n]
    e, keep = e[live], np.flatnonzero(live)
    follow = pd.Index(keep).get_indexer(gi)
    f_ok = follow >= 0
    coords, idx, joined, trimmed = _join_to_lines(
        coords, idx, ends[e], e % n, ends[(e + n) % (2 * n)], line_len[e % n] < 3 * tol, level, tol, fixes,
        follow=ends[end_at[free[f_ok]]], follow_of=follow[f_ok])
    report["ends_joined_to_lines"] = joined
    report["overshoots_trimmed"] = trimmed
    return coords, idx, collapsed


def _end_groups(pxy, pinv, dangling, end_level, line_len, tol) -> tuple[np.ndarray, np.ndarray]:
    """Cluster end positions: a group code per position and whether another line shares it.

    Positions within ``tol`` link when one of them is a dangling end that may meet the other (same
    level, or it is itself a bridge or tunnel end landing), and not across a line's own two ends.
    The groups are the connected components of those links, so a junction whose every end moved
    stays one node. A component is split when it would merge two shared ends, fold a line longer
    than ``_KEEP_SHARE * tol`` (its ends fall in it) or spans more than ``2 * tol`` (a row of
    ends chaining into one blob): see :func:`_split_groups`.
    """
    m, npos = len(pinv), len(pxy)
    n = m // 2
    fixed = np.ones(npos, dtype=bool)
    fixed[pinv[dangling]] = False
    plev = np.empty(npos)
    plev[pinv] = end_level  # one level at a dangling position, any at a shared one (not used there)
    lev_codes = np.sort(pd.unique(end_level))
    pos_level = pd.unique(pinv * len(lev_codes) + np.searchsorted(lev_codes, end_level))
    end_at = np.empty(npos, dtype=np.int64)
    end_at[pinv] = np.arange(m)
    # Lines that keep their ends apart; from 3 tol on, a line may close on itself (a loop's gap).
    apart = (line_len >= _KEEP_SHARE * tol) & (line_len < 3 * tol)
    partner = np.where(~fixed & apart[end_at % n], pinv[(end_at + n) % m], -1)
    i, j = cKDTree(pxy).query_pairs(tol, output_type="ndarray").T.reshape(2, -1)

    def meets(a, b):
        lands = plev[a] != 0
        return ~fixed[a] & (lands | _isin(b * len(lev_codes) + np.searchsorted(lev_codes, plev[a]), pos_level))

    ok = (meets(i, j) | meets(j, i)) & (partner[i] != j) & (partner[j] != i)
    i, j = i[ok], j[ok]
    comp = _components(i, j, npos)
    a, b = pinv[:n], pinv[n:]
    inner = apart & (comp[a] == comp[b]) & (a != b)
    size = np.bincount(comp)
    centre = np.column_stack([np.bincount(comp, pxy[:, 0]), np.bincount(comp, pxy[:, 1])]) / size[:, None]
    span = np.zeros(len(size))
    np.maximum.at(span, comp, np.hypot(*(pxy - centre[comp]).T))
    bad = (np.bincount(comp[fixed], minlength=len(size)) > 1) | (span > tol)
    bad[comp[a[inner]]] = True
    if bad.any():
        comp = _split_groups(pxy, comp, bad, fixed, i, j, a[inner], b[inner], tol)
    return comp, fixed


def _split_groups(pxy, comp, bad, fixed, i, j, ia, ib, tol) -> np.ndarray:
    """Split the components marked ``bad`` around their anchors.

    Rule: the anchors of a component are its shared ends and the ends of the lines inside it.
    Anchors link only closer than half the shortest such line (never two shared ends, never a
    line's own ends); every other end joins its nearest anchor in the component. A component with
    no anchor (a chain of ends) is cut at links longer than ``tol / 2``.
    """
    npos = len(pxy)
    anchor = fixed & bad[comp]
    anchor[ia] = anchor[ib] = True
    rho = np.full(len(bad), float(tol))
    np.minimum.at(rho, comp[ia], np.hypot(*(pxy[ia] - pxy[ib]).T) / 2)
    d = np.hypot(*(pxy[i] - pxy[j]).T)
    in_bad = bad[comp[i]]
    own = pd.Index(np.r_[ia * npos + ib, ib * npos + ia]).get_indexer(i * npos + j) >= 0
    link = in_bad & anchor[i] & anchor[j] & (d < rho[comp[i]]) & ~(fixed[i] & fixed[j]) & ~own
    n_anchor = np.bincount(comp[anchor], minlength=len(bad))
    chain = in_bad & (n_anchor[comp[i]] == 0) & (d <= tol / 2)
    sub = _components(np.r_[i[link | chain]], np.r_[j[link | chain]], npos)
    label = np.where(bad[comp], npos + sub, comp)
    rest = np.flatnonzero(bad[comp] & ~anchor & (n_anchor[comp] > 0))
    anchors = np.flatnonzero(anchor)
    if len(rest) and len(anchors):
        k = int(min(8, len(anchors)))
        _, jj = cKDTree(pxy[anchors]).query(pxy[rest], k=k)
        jj = jj.reshape(len(rest), k)
        hit = comp[anchors[jj]] == comp[rest][:, None]  # nearest first: the first in the component
        col = np.argmax(hit, axis=1)
        found = hit[np.arange(len(rest)), col]
        label[rest[found]] = label[anchors[jj[found, col[found]]]]
    return pd.factorize(label)[0]


def _components(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    g = sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _join_to_lines(coords, idx, vert, vline, other, short, level, tol, fixes, *, follow, follow_of):
    """Move end vertices ``vert`` (of lines ``vline``) onto the nearest segment of another line.

    The vertices ``follow`` (ends clustered with ``vert[follow_of]``) move with them. No end joins
    a line that ends where it is (its own cluster), nor another line's end. A short line whose other end (vertex ``other``)
    is on that segment too is a stub hanging from it: joining would fold it onto the line, so it is
    left as it is.
    """
    if not len(vert):
        return coords, idx, 0, 0
    same = idx[1:] == idx[:-1]
    sa = np.flatnonzero(same)  # segment i runs from vertex sa[i] to sa[i] + 1
    a, b = coords[sa], coords[sa + 1]
    seg_line = idx[sa]
    first, last = _bounds(idx)
    seg_ord = sa - first[seg_line]
    segs = shapely.linestrings(np.stack([a, b], axis=1))
    tree = shapely.STRtree(segs)
    pts = shapely.points(coords[vert])
    pi, sj = tree.query(pts, predicate="dwithin", distance=tol)
    here = _key(coords[vert])[pi]
    ends_here = (_key(coords[first[seg_line[sj]]]) == here) | (_key(coords[last[seg_line[sj]]]) == here)
    ok = (seg_line[sj] != vline[pi]) & (level[seg_line[sj]] == level[vline[pi]]) & ~ends_here
    pi, sj = pi[ok], sj[ok]
    if not len(pi):
        return coords, idx, 0, 0
    p = coords[vert[pi]]
    ab = b[sj] - a[sj]
    ll = np.maximum((ab ** 2).sum(1), 1e-18)
    t = np.clip(((p - a[sj]) * ab).sum(1) / ll, 0, 1)
    q = a[sj] + t[:, None] * ab
    d = np.hypot(*(p - q).T)
    # Onto another line's end is an end meeting an end: the clustering kept those apart (a line's
    # own two ends, a split junction), so it is not undone here.
    run = np.sqrt(ll)
    at_end = (((sa[sj] == first[seg_line[sj]]) & (t * run <= MM))
              | ((sa[sj] + 1 == last[seg_line[sj]]) & ((1 - t) * run <= MM)))
    d = np.where(at_end, np.inf, d)
    order = np.lexsort((d, pi))
    best = order[np.r_[True, pi[order][1:] != pi[order][:-1]]]
    best = best[np.isfinite(d[best])]
    best = best[~(short[pi[best]] & (shapely.distance(shapely.points(coords[other[pi[best]]]), segs[sj[best]]) <= tol))]
    pi, sj, t, q, d = pi[best], sj[best], t[best], q[best], d[best]
    # An end past the line (its last segment crosses it) is cut back to the crossing instead.
    v = vert[pi]
    is_first = np.zeros(len(idx), dtype=bool)
    is_first[first] = True
    prev = np.where(is_first[v], v + 1, v - 1)
    r = coords[v] - coords[prev]
    s_ab = ab[best]
    den = r[:, 0] * s_ab[:, 1] - r[:, 1] * s_ab[:, 0]
    w = a[sj] - coords[prev]
    with np.errstate(divide="ignore", invalid="ignore"):
        s_r = (w[:, 0] * s_ab[:, 1] - w[:, 1] * s_ab[:, 0]) / den
        s_t = (w[:, 0] * r[:, 1] - w[:, 1] * r[:, 0]) / den
    cross = (np.abs(den) > 1e-12) & (s_r > 0) & (s_r <= 1) & (s_t >= 0) & (s_t <= 1)
    xq = coords[prev] + np.where(cross, s_r, 0.0)[:, None] * r
    cross &= np.hypot(*(xq - coords[v]).T) <= tol
    q = np.where(cross[:, None], xq, q)
    t = np.where(cross, s_t, t)
    seglen = np.sqrt(ll[best])
    # At an existing vertex the end just moves there; elsewhere the line gains a vertex.
    at_a, at_b = t * seglen <= MM, (1 - t) * seglen <= MM
    q = np.where(at_a[:, None], a[sj], np.where(at_b[:, None], b[sj], q))
    moved = np.hypot(*(q - coords[v]).T)
    fixes.append(_fix_points("end_joined_to_line", coords[v], moved))
    coords = coords.copy()
    coords[v] = q
    to = np.full((len(vert), 2), np.nan)
    to[pi] = q
    go = ~np.isnan(to[follow_of, 0])
    coords[follow[go]] = to[follow_of[go]]
    shift = np.zeros(len(vert))
    shift[pi] = moved
    ins = ~(at_a | at_b)
    coords, idx, _ = _insert(coords, idx, seg_line[sj[ins]], seg_ord[sj[ins]] + t[ins], q[ins])
    return coords, idx, int((shift[follow_of[go]] > 0).sum()), int(cross.sum())


# --- noding ---------------------------------------------------------------------------------------

def _node(coords, idx, level, report, fixes):
    """Node each level's lines with GEOS; each piece remembers the line it lies on."""
    lines = shapely.linestrings(coords, indices=idx)
    same = idx[1:] == idx[:-1]
    sa = np.flatnonzero(same)
    seg_line = idx[sa]
    in_key = _key(coords)
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
        overlaps.append(_fix_points("overlap_merged", mid[share.index.to_numpy()],
                                    shapely.length(pieces[share.index.to_numpy()]) * (share.to_numpy() - 1)))
        c, i = shapely.get_coordinates(pieces, return_index=True)
        f, la = _bounds(i)
        ek = _key(np.vstack([c[f], c[la]]))
        new_points.append(ek[~_isin(ek, pd.unique(in_key[level[idx] == lv]))])
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
    fixes.append(_fix_points("crossing_noded", np.column_stack([new.real, new.imag]), 0.0))
    return np.concatenate(out_coords), np.concatenate(out_idx), np.concatenate(out_line)


def _shared_vertex_cuts(coords: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Interior vertices that another vertex shares: where routable line work meets (any level)."""
    first, last = _bounds(idx)
    interior = np.ones(len(idx), dtype=bool)
    interior[first] = interior[last] = False
    inv, _ = _codes(_key(coords))
    return interior & (np.bincount(inv)[inv] >= 2)


def _landing_cuts(coords: np.ndarray, idx: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Interior vertices where a line of another level ends alone (a bridge lands, steps arrive).

    Same-level meetings were noded by GEOS already.
    """
    first, last = _bounds(idx)
    is_end = np.zeros(len(idx), dtype=bool)
    is_end[first] = is_end[last] = True
    pos, uniq = _codes(_key(coords))
    df = pd.DataFrame({"p": pos, "l": level[idx], "end": is_end})
    g = df.groupby(["p", "l"], sort=False)["end"].agg(["sum", "size"])
    lone = np.zeros(len(uniq), dtype=bool)
    lone[g.index[(g["sum"] == 1) & (g["size"] == 1)].get_level_values("p")] = True
    return ~is_end & lone[pos]


def _split_rings(coords, idx, line, report):
    """A closed piece would be a self-loop (dropped by the graph): cut it in three."""
    first, last = _bounds(idx)
    k = _key(coords)
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
    coords2, idx2, cut = _insert(coords, idx, rr, pos, xy)
    return _split(coords2, idx2, line, cut)


# --- nodes and duplicates -------------------------------------------------------------------------

def _node_index(a: np.ndarray, b: np.ndarray, level: np.ndarray, *, by_level: bool
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Node of each piece end: one per position (within 1 mm); on separate levels unless one ends alone."""
    m = len(a)
    ends = np.vstack([a, b])
    inv, pk = _codes(_key(ends))
    pxy = np.column_stack([pk.real, pk.imag])
    pairs = cKDTree(pxy).query_pairs(1.5 * MM, output_type="ndarray")
    g = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pk), len(pk)))
    _, pos = connected_components(g, directed=False)
    pos = pos[inv]
    if by_level:
        lev = np.concatenate([level, level])
        lcode, _ = _codes(lev)
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
