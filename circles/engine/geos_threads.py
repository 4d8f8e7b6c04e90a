"""Element-wise GEOS work on two threads: shapely's vectorized functions release the GIL, so an
array split in halves runs on both cores of a planner's laptop."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["THREADS", "in_halves"]

THREADS = 2

_MIN_ROWS = 1000  # below this a thread costs more than it saves


def in_halves(func: Callable[..., np.ndarray], *arrays: np.ndarray, **options) -> np.ndarray:
    """``func(*arrays, **options)`` for an element-wise ``func``, the arrays in halves on two threads.

    Parameters
    ----------
    func
        An element-wise function of equal-length arrays (``shapely.difference``, say).
    *arrays
        Its arrays.
    **options
        Its keyword options, the same for both halves.

    Returns
    -------
    numpy.ndarray
        What ``func`` returns for the whole arrays.

    """
    if len(arrays[0]) < _MIN_ROWS:
        return func(*arrays, **options)
    parts = [np.array_split(a, THREADS) for a in arrays]
    with ThreadPoolExecutor(THREADS) as pool:
        done = pool.map(lambda i: func(*(p[i] for p in parts), **options), range(THREADS))
        return np.concatenate(list(done))
