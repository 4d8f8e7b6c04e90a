"""Points attached to the walking network: the edge, the distance along it and the walk to it.

An :class:`Anchors` is what every routing kernel takes for facilities and demand: a point sits
on an edge, not only on a node, so the kernels can count both the stretch along its edge and the
straight off-network walk to the street exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy.sparse import csgraph

from ..errors import DataError
from .network import WalkNetwork

__all__ = ["Anchors", "anchor_status", "check_anchors"]


@dataclass
class Anchors:
    """Points attached to the walking network.

    Attributes
    ----------
    edge : numpy.ndarray
        Index of the edge each point is attached to (int64); ``-1`` when it could not be snapped.
    along_m : numpy.ndarray
        Distance from the edge's ``u`` end along the edge, in metres.
    offset_m : numpy.ndarray
        The straight off-network walk from the point to the edge, in metres.
    x, y : numpy.ndarray or None
        The points themselves in the network CRS, when known (isochrones draw the walk to the
        street from them).

    """

    edge: np.ndarray
    along_m: np.ndarray
    offset_m: np.ndarray
    x: np.ndarray | None = None
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.edge = np.asarray(self.edge, dtype=np.int64).reshape(-1)
        n = len(self.edge)
        self.along_m = np.asarray(self.along_m, dtype=np.float64).reshape(-1)
        self.offset_m = np.asarray(self.offset_m, dtype=np.float64).reshape(-1)
        if self.x is not None:
            self.x = np.asarray(self.x, dtype=np.float64).reshape(-1)
            self.y = np.asarray(self.y, dtype=np.float64).reshape(-1)
        lengths = {len(a) for a in (self.along_m, self.offset_m, self.x, self.y) if a is not None}
        if lengths - {n}:
            raise DataError("anchor arrays differ in length", field="edge/along_m/offset_m",
                            fix="give one edge, along_m and offset_m per point")
        ok = self.edge >= 0
        bad = ok & ~(np.isfinite(self.along_m) & np.isfinite(self.offset_m) & (self.offset_m >= 0)
                     & (self.along_m >= 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError("a snapped point has a missing or negative distance", row=row,
                            field="along_m/offset_m",
                            fix="snap the points with WalkNetwork.snap, or set edge to -1")

    @classmethod
    def from_snap(cls, df: pd.DataFrame, *, x: np.ndarray | None = None,
                  y: np.ndarray | None = None) -> Anchors:
        """Anchors from :meth:`WalkNetwork.snap` output (``edge``, ``along_m``, ``offset_m``;
        ``snapped`` when present marks the usable rows)."""
        missing = [c for c in ("edge", "along_m", "offset_m") if c not in df.columns]
        if missing:
            raise DataError(f"snap table lacks {', '.join(missing)}", field=missing[0],
                            fix="pass the frame returned by WalkNetwork.snap")
        edge = pd.to_numeric(df["edge"], errors="coerce").fillna(-1).to_numpy(np.int64)
        if "snapped" in df.columns:
            edge = np.where(df["snapped"].to_numpy(bool), edge, -1)
        return cls(edge=edge, along_m=df["along_m"].to_numpy(np.float64),
                   offset_m=df["offset_m"].to_numpy(np.float64), x=x, y=y)

    @classmethod
    def from_points(cls, net: WalkNetwork, x: np.ndarray, y: np.ndarray, *,
                    max_metres: float | None) -> Anchors:
        """Snap points (network CRS) to ``net``; those beyond ``max_metres`` get ``edge == -1``."""
        snap = net.snap(x, y, max_metres=max_metres)
        return cls.from_snap(snap, x=np.asarray(x, dtype=float), y=np.asarray(y, dtype=float))

    @classmethod
    def at_nodes(cls, net: WalkNetwork, node_idx: np.ndarray) -> Anchors:
        """Points exactly on nodes (no off-network walk), attached to an edge at that node."""
        node_idx = np.asarray(node_idx, dtype=np.int64).reshape(-1)
        if len(node_idx) and (node_idx.min() < 0 or node_idx.max() >= net.n_nodes):
            raise DataError("a node index is outside the network", field="node",
                            fix=f"use node indices 0..{net.n_nodes - 1}")
        first = np.full(net.n_nodes, -1, dtype=np.int64)
        first[net.edge_v[::-1]] = np.arange(net.n_edges - 1, -1, -1)
        first[net.edge_u[::-1]] = np.arange(net.n_edges - 1, -1, -1)
        edge = first[node_idx]
        along = np.where(net.edge_u[edge] == node_idx, 0.0, net.edge_length[edge])
        return cls(edge=edge, along_m=along, offset_m=np.zeros(len(edge)),
                   x=net.x[node_idx], y=net.y[node_idx])

    @property
    def ok(self) -> np.ndarray:
        """True where the point is attached to the network."""
        return self.edge >= 0

    def subset(self, mask: np.ndarray) -> Anchors:
        """The anchors selected by a boolean mask or an index array."""
        pick = np.asarray(mask)
        return Anchors(edge=self.edge[pick], along_m=self.along_m[pick], offset_m=self.offset_m[pick],
                       x=None if self.x is None else self.x[pick],
                       y=None if self.y is None else self.y[pick])

    def __len__(self) -> int:
        return len(self.edge)

    def snap_xy(self, net: WalkNetwork) -> tuple[np.ndarray, np.ndarray]:
        """Where each point joins its edge (NaN when not snapped), in the network CRS."""
        sx = np.full(len(self), np.nan)
        sy = np.full(len(self), np.nan)
        ok = self.ok
        if ok.any():
            e = self.edge[ok]
            g = net.edge_lines(e)
            frac = self.along_m[ok] / net.edge_length[e]
            p = shapely.line_interpolate_point(g, frac, normalized=True)
            sx[ok], sy[ok] = shapely.get_x(p), shapely.get_y(p)
        return sx, sy


def check_anchors(net: WalkNetwork, anchors: Anchors, what: str) -> None:
    """Raise a DataError when ``anchors`` name edges this network does not have."""
    ok = anchors.ok
    if not ok.any():
        return
    e = anchors.edge[ok]
    if e.max() >= net.n_edges:
        row = int(np.flatnonzero(ok)[np.argmax(e)])
        raise DataError(f"{what}: an edge index is outside the network", row=row, field="edge",
                        fix="snap the points to this network (anchors from another network?)")
    over = anchors.along_m[ok] > net.edge_length[e] + 1e-6
    if over.any():
        row = int(np.flatnonzero(ok)[np.argmax(over)])
        raise DataError(f"{what}: along_m is beyond the end of its edge", row=row, field="along_m",
                        fix="snap the points to this network (anchors from another network?)")


def anchor_status(net: WalkNetwork, anchors: Anchors) -> np.ndarray:
    """``ok``, ``not_snapped`` (beyond the snapping cap) or ``island`` (attached to a part of the
    network cut off from its largest component: it reaches only that part)."""
    status = np.where(anchors.ok, "ok", "not_snapped").astype(object)
    n_comp, labels = csgraph.connected_components(net.graph, directed=False)
    if n_comp > 1 and anchors.ok.any():
        main = np.argmax(np.bincount(labels))
        ok = np.flatnonzero(anchors.ok)
        island = labels[net.edge_u[anchors.edge[ok]]] != main
        status[ok[island]] = "island"
    return status
