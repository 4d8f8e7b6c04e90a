"""Synthetic cities: perturbed-grid street networks of any size, for scale benchmarks and tests."""

from __future__ import annotations

import numpy as np
import pyproj

from .network import WalkNetwork

__all__ = ["city_arrays", "make_city", "random_points"]

# Placed in UTM zone 48N around central Chengdu, so lon/lat outputs are plausible.
_CRS = pyproj.CRS.from_epsg(32648)
_ORIGIN = (404_000.0, 3_390_000.0)


def make_city(n_nodes: int, *, block_metres: float = 80.0, missing_share: float = 0.05,
              diagonal_share: float = 0.03, jitter_metres: float = 8.0, seed: int = 0
              ) -> WalkNetwork:
    """A perturbed-grid walking network of about ``n_nodes`` nodes.

    Parameters
    ----------
    n_nodes
        Approximate number of nodes (a square grid of ``ceil(sqrt(n))`` per side).
    block_metres
        Grid spacing.
    missing_share
        Share of grid links removed (dead ends, superblocks).
    diagonal_share
        Share of blocks crossed by a diagonal path.
    jitter_metres
        Standard deviation of the random shift of each node.
    seed
        Random seed; the same seed gives the same city.

    Returns
    -------
    WalkNetwork
        The largest connected component, in UTM zone 48N.

    """
    x, y, u, v = city_arrays(n_nodes, block_metres=block_metres, missing_share=missing_share,
                             diagonal_share=diagonal_share, jitter_metres=jitter_metres, seed=seed)
    side = max(2, int(np.ceil(np.sqrt(n_nodes))))
    return WalkNetwork.from_lines(x=x, y=y, node_id=None, edge_u=u, edge_v=v, edge_geometry=None,
                                  crs=_CRS, source=f"synthetic city ({side}x{side} grid, seed {seed})")


def city_arrays(n_nodes: int, *, block_metres: float = 80.0, missing_share: float = 0.05,
                diagonal_share: float = 0.03, jitter_metres: float = 8.0, seed: int = 0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The node coordinates (UTM 48N metres) and edge ends :func:`make_city` builds from, before
    the network drops loops, duplicates and small components (for benchmarks of that step)."""
    rng = np.random.default_rng(seed)
    side = max(2, int(np.ceil(np.sqrt(n_nodes))))
    ii, jj = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    idx = (ii * side + jj).ravel()
    x = _ORIGIN[0] + ii.ravel() * block_metres + rng.normal(0, jitter_metres, side * side)
    y = _ORIGIN[1] + jj.ravel() * block_metres + rng.normal(0, jitter_metres, side * side)
    grid = idx.reshape(side, side)
    u = np.concatenate([grid[:-1, :].ravel(), grid[:, :-1].ravel()])
    v = np.concatenate([grid[1:, :].ravel(), grid[:, 1:].ravel()])
    keep = rng.random(len(u)) >= missing_share
    u, v = u[keep], v[keep]
    cells = grid[:-1, :-1].ravel()
    diag = cells[rng.random(len(cells)) < diagonal_share]
    return x, y, np.concatenate([u, diag]), np.concatenate([v, diag + side + 1])


def random_points(net: WalkNetwork, n: int, *, seed: int = 0, spread_metres: float = 40.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random points near the network's nodes (for demand or facilities in benchmarks)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, net.n_nodes, n)
    return (net.x[pick] + rng.uniform(-spread_metres, spread_metres, n),
            net.y[pick] + rng.uniform(-spread_metres, spread_metres, n))
