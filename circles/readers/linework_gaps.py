"""Closing gaps in line work: dangling ends clustered with the ends around them, or joined to the
nearest line.

The first step of :func:`circles.readers.linework.repair_linework`. Ends within the tolerance
cluster (SciPy's KD-tree finds the pairs, connected components make the clusters); ends left
alone are joined to the nearest segment of another line (a GEOS tree finds it). No step loops over
lines or pairs in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .linework_arrays import MM, bounds, codes, fix_points, insert_points, isin, position_key

__all__ = ["close_gaps"]

# A line at least this share of the tolerance long keeps its two ends apart when gaps close (a 1.5 m
# connector between two junctions stays); a shorter one is digitising noise and may fold into its
# junction, which is counted (``short_lines_collapsed``).
_KEEP_SHARE = 0.25


@dataclass(frozen=True)
class _Ends:
    """Dangling ends to join to the nearest line, and the ends clustered with them."""

    vert: np.ndarray  # the end vertices
    line: np.ndarray  # the line of each
    other: np.ndarray  # the vertex at that line's other end
    short: np.ndarray  # whether that line is short enough to be a stub hanging from the line it meets
    follow: np.ndarray  # vertices clustered with an end, which move with it
    follow_of: np.ndarray  # the end (position in ``vert``) each of them follows


@dataclass(frozen=True)
class _Segments:
    """Every segment of the line work: segment ``k`` runs from vertex ``start[k]`` to ``start[k] + 1``."""

    start: np.ndarray
    a: np.ndarray
    b: np.ndarray
    line: np.ndarray
    ordinal: np.ndarray  # the segment's place along its line
    geoms: np.ndarray
    first: np.ndarray  # first and last vertex of each line
    last: np.ndarray


def close_gaps(coords, idx, level, tol, report, fixes):
    """Join dangling ends: with the ends around them within ``tol``, else to the nearest line.

    A dangling end is one no other vertex shares. Ends within ``tol`` of each other cluster
    transitively (see :func:`_end_groups`); a cluster moves onto the end another line already
    shares there, or else to its members' mean. A cluster with no shared end, or an end left alone,
    is then joined to the nearest line on its level within ``tol`` by inserting a vertex there (the
    noding then splits that line), and an end that overshot that line is cut back to the crossing.

    Parameters
    ----------
    coords, idx
        The lines' vertices and sorted line index.
    level
        The level of each line.
    tol
        The snap tolerance in metres.
    report, fixes
        The repair's counts (updated) and list of fix tables (appended to).

    Returns
    -------
    coords, idx, collapsed : numpy.ndarray
        The coordinates, line index and a mask of the lines that collapsed (shorter than
        ``_KEEP_SHARE * tol``, both ends in one cluster).

    """
    first, last = bounds(idx)
    n = len(first)
    ends = np.concatenate([first, last])
    inv, _ = codes(position_key(coords))
    dangling = np.bincount(inv)[inv[ends]] == 1
    pinv, pkey = codes(position_key(coords[ends]))
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
    fixes.append(fix_points("gap_closed", pxy[moved], shift[moved]))
    collapsed = (group[pinv[:n]] == group[pinv[n:]]) & (line_len < 3 * tol) & (pinv[:n] != pinv[n:])
    report["short_lines_collapsed"] = int(collapsed.sum())
    fixes.append(fix_points("short_line_collapsed", (pxy[pinv[:n]] + pxy[pinv[n:]])[collapsed] / 2,
                            line_len[collapsed]))
    free = _free_ends(group, sink, pinv, ends, collapsed, line_len < 3 * tol)
    coords, idx, joined, trimmed = _join_to_lines(coords, idx, free, level, tol, fixes)
    report["ends_joined_to_lines"] = joined
    report["overshoots_trimmed"] = trimmed
    return coords, idx, collapsed


def _free_ends(group, sink, pinv, ends, collapsed, short) -> _Ends:
    """Groups with no shared end (lone ends included), from one end each: to join onto the nearest line."""
    n = len(collapsed)
    free = np.flatnonzero(sink[group] < 0)
    _, rep_of = np.unique(group[free], return_index=True)
    gi = pd.Index(group[free[rep_of]]).get_indexer(group[free])
    end_at = np.empty(len(group), dtype=np.int64)
    end_at[pinv] = np.arange(2 * n)  # a free position is a dangling end's: one end there
    e = end_at[free[rep_of]]
    live = ~collapsed[e % n]
    e, keep = e[live], np.flatnonzero(live)
    follow = pd.Index(keep).get_indexer(gi)
    f_ok = follow >= 0
    return _Ends(vert=ends[e], line=e % n, other=ends[(e + n) % (2 * n)], short=short[e % n],
                 follow=ends[end_at[free[f_ok]]], follow_of=follow[f_ok])


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
        return ~fixed[a] & (lands | isin(b * len(lev_codes) + np.searchsorted(lev_codes, plev[a]), pos_level))

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
        comp = _split_groups(pxy, comp, bad, fixed, (i, j), (a[inner], b[inner]), tol)
    return comp, fixed


def _split_groups(pxy, comp, bad, fixed, links, inner, tol) -> np.ndarray:
    """Split the components marked ``bad`` around their anchors.

    Rule: the anchors of a component are its shared ends and the ends of the lines inside it.
    Anchors link only closer than half the shortest such line (never two shared ends, never a
    line's own ends); every other end joins its nearest anchor in the component. A component with
    no anchor (a chain of ends) is cut at links longer than ``tol / 2``.

    ``links`` holds the two positions of every link of the components, ``inner`` the two end
    positions of every line inside one.
    """
    (i, j), (ia, ib) = links, inner
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


# --- ends joined to lines -------------------------------------------------------------------------

def _join_to_lines(coords, idx, ends: _Ends, level, tol, fixes):
    """Move the end vertices ``ends.vert`` onto the nearest segment of another line.

    The vertices ``ends.follow`` (ends clustered with them) move with them. No end joins a line
    that ends where it is (its own cluster), nor another line's end. A short line whose other end
    is on that segment too is a stub hanging from it: joining would fold it onto the line, so it is
    left as it is.

    Returns the coordinates, line index, and the counts of ends joined and overshoots trimmed.
    """
    if not len(ends.vert):
        return coords, idx, 0, 0
    segs = _segments(coords, idx)
    found = _nearest_segments(coords, segs, ends, level, tol)
    if found is None:
        return coords, idx, 0, 0
    pi, sj, t, q = found
    v = ends.vert[pi]
    q, t, cross = _cut_back(coords, v, segs, sj, q, t, tol)
    seglen = np.sqrt(np.maximum(((segs.b[sj] - segs.a[sj]) ** 2).sum(1), 1e-18))
    # At an existing vertex the end just moves there; elsewhere the line gains a vertex.
    at_a, at_b = t * seglen <= MM, (1 - t) * seglen <= MM
    q = np.where(at_a[:, None], segs.a[sj], np.where(at_b[:, None], segs.b[sj], q))
    moved = np.hypot(*(q - coords[v]).T)
    fixes.append(fix_points("end_joined_to_line", coords[v], moved))
    coords = coords.copy()
    coords[v] = q
    to = np.full((len(ends.vert), 2), np.nan)
    to[pi] = q
    go = ~np.isnan(to[ends.follow_of, 0])
    coords[ends.follow[go]] = to[ends.follow_of[go]]
    shift = np.zeros(len(ends.vert))
    shift[pi] = moved
    ins = ~(at_a | at_b)
    coords, idx, _ = insert_points(coords, idx, segs.line[sj[ins]], segs.ordinal[sj[ins]] + t[ins], q[ins])
    return coords, idx, int((shift[ends.follow_of[go]] > 0).sum()), int(cross.sum())


def _segments(coords: np.ndarray, idx: np.ndarray) -> _Segments:
    same = idx[1:] == idx[:-1]
    start = np.flatnonzero(same)
    a, b = coords[start], coords[start + 1]
    line = idx[start]
    first, last = bounds(idx)
    return _Segments(start=start, a=a, b=b, line=line, ordinal=start - first[line],
                     geoms=shapely.linestrings(np.stack([a, b], axis=1)), first=first, last=last)


def _nearest_segments(coords, segs: _Segments, ends: _Ends, level, tol):
    """The segment each end may join and the point on it: (end, segment, fraction along, point).

    ``None`` when no end has a segment of another line on its level within ``tol``.
    """
    tree = shapely.STRtree(segs.geoms)
    pi, sj = tree.query(shapely.points(coords[ends.vert]), predicate="dwithin", distance=tol)
    here = position_key(coords[ends.vert])[pi]
    on = segs.line[sj]
    ends_here = (position_key(coords[segs.first[on]]) == here) | (position_key(coords[segs.last[on]]) == here)
    ok = (on != ends.line[pi]) & (level[on] == level[ends.line[pi]]) & ~ends_here
    pi, sj = pi[ok], sj[ok]
    if not len(pi):
        return None
    p = coords[ends.vert[pi]]
    a = segs.a[sj]
    ab = segs.b[sj] - a
    ll = np.maximum((ab ** 2).sum(1), 1e-18)
    t = np.clip(((p - a) * ab).sum(1) / ll, 0, 1)
    q = a + t[:, None] * ab
    d = np.hypot(*(p - q).T)
    # Onto another line's end is an end meeting an end: the clustering kept those apart (a line's
    # own two ends, a split junction), so it is not undone here.
    run = np.sqrt(ll)
    start, on = segs.start[sj], segs.line[sj]
    at_end = (((start == segs.first[on]) & (t * run <= MM))
              | ((start + 1 == segs.last[on]) & ((1 - t) * run <= MM)))
    d = np.where(at_end, np.inf, d)
    order = np.lexsort((d, pi))
    best = order[np.r_[True, pi[order][1:] != pi[order][:-1]]]
    best = best[np.isfinite(d[best])]
    stub = ends.short[pi[best]] & (
        shapely.distance(shapely.points(coords[ends.other[pi[best]]]), segs.geoms[sj[best]]) <= tol)
    best = best[~stub]
    return pi[best], sj[best], t[best], q[best]


def _cut_back(coords, v, segs: _Segments, sj, q, t, tol):
    """An end past the line (its last segment crosses it) is cut back to the crossing instead.

    Returns the point each end ``v`` goes to, its fraction along segment ``sj``, and a mask of the
    ends cut back.
    """
    is_first = np.zeros(len(coords), dtype=bool)
    is_first[segs.first] = True
    prev = np.where(is_first[v], v + 1, v - 1)
    r = coords[v] - coords[prev]
    s_ab = segs.b[sj] - segs.a[sj]
    den = r[:, 0] * s_ab[:, 1] - r[:, 1] * s_ab[:, 0]
    w = segs.a[sj] - coords[prev]
    with np.errstate(divide="ignore", invalid="ignore"):
        s_r = (w[:, 0] * s_ab[:, 1] - w[:, 1] * s_ab[:, 0]) / den
        s_t = (w[:, 0] * r[:, 1] - w[:, 1] * r[:, 0]) / den
    cross = (np.abs(den) > 1e-12) & (s_r > 0) & (s_r <= 1) & (s_t >= 0) & (s_t <= 1)
    xq = coords[prev] + np.where(cross, s_r, 0.0)[:, None] * r
    cross &= np.hypot(*(xq - coords[v]).T) <= tol
    return np.where(cross[:, None], xq, q), np.where(cross, s_t, t), cross
