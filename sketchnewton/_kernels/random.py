"""Kernels for the synthetic data generators: distinct column sampling per row.

Like every kernel in this package these never draw random numbers: the caller
draws uniforms with a ``numpy.random.Generator`` and passes them in, so the
output depends only on those arrays, not on the number of threads.
"""

import numpy as np
from numba import njit, prange

from . import chunk_range

__all__ = ["sample_distinct_columns"]

# Below this many columns per row an insertion sort beats everything else.
_INSERTION_SORT_MAX = 64


@njit(parallel=True, cache=True)
def sample_distinct_columns(u, k, m, colmap, indices, n_blocks):
    """Fill ``indices`` with ``k`` distinct sorted columns per row (Floyd's algorithm).

    Row ``i`` uses the uniforms ``u[i*k:(i+1)*k]`` (in ``[0, 1)``): step ``t``
    draws ``r = floor(u * (j + 1))`` with ``j = m - k + t`` and keeps ``r``
    unless already taken, in which case it keeps ``j``. This yields a uniform
    random ``k``-subset of ``range(m)``, which is sorted and mapped through
    ``colmap`` (an increasing array of length ``m``, so rows stay sorted).

    Parameters
    ----------
    u : float64 array of shape (n_rows * k,)
    k : int, columns per row, ``1 <= k <= m``
    m : int, number of candidate columns
    colmap : int array of shape (m,), strictly increasing column ids
    indices : int array of shape (n_rows * k,), output
    n_blocks : int
        Rows are split into this many contiguous blocks (one scratch buffer
        each); it affects speed only, never the result.
    """
    n = u.shape[0] // k
    scan = m <= 8 * k  # dense rows: read the sorted set off the marks
    for b in prange(n_blocks):
        lo, hi = chunk_range(b, n, n_blocks)
        mark = np.zeros(m, dtype=np.bool_)
        buf = np.empty(k, dtype=np.int64)
        for i in range(lo, hi):
            base = i * k
            for t in range(k):
                j = m - k + t
                r = np.int64(u[base + t] * (j + 1))
                if r > j:  # guard against rounding at u -> 1
                    r = j
                if mark[r]:
                    r = j
                mark[r] = True
                buf[t] = r
            if scan:
                t = 0
                for c in range(m):
                    if mark[c]:
                        mark[c] = False
                        buf[t] = c
                        t += 1
            else:
                for t in range(k):
                    mark[buf[t]] = False
                if k <= _INSERTION_SORT_MAX:
                    for t in range(1, k):
                        v = buf[t]
                        s = t - 1
                        while s >= 0 and buf[s] > v:
                            buf[s + 1] = buf[s]
                            s -= 1
                        buf[s + 1] = v
                else:
                    buf.sort()
            for t in range(k):
                indices[base + t] = colmap[buf[t]]
    return indices
