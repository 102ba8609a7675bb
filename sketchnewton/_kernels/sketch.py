"""Sketching kernels: CountSketch of CSR / dense rows, fast Walsh-Hadamard
transform, and projected row norms for approximate leverage scores.

All randomness (bucket indices, signs, Gaussian test matrices) is drawn in
Python and passed in as arrays.
"""

import numpy as np
from numba import njit, prange

from . import (BUFFER_RATIO, buffer_count, chunk_range, nonzeros, part_buffer, part_cuts, scatter_plan,
               sum_chunks)

__all__ = [
    "countsketch_csr",
    "countsketch_dense",
    "fwht_inplace",
    "fwht_inplace_parallel",
    "csr_projected_rownorms",
    "csr_scaled_rows",
    "csr_row_quadforms",
    "bernoulli_saturation",
    "bernoulli_rows",
]


@njit(cache=True, inline="always")
def _sketch_row(buf, t, bucket, indices, data, start, stop, a):
    """``buf[t, bucket, j] += a a_ij`` over the non-zeros ``start:stop`` of a row."""
    if a != 0.0:
        for p in nonzeros(start, stop):
            buf[t, bucket, indices[p]] += a * data[p]


@njit(parallel=True, cache=True)
def countsketch_csr(indptr, indices, data, row_scale, buckets, signs, s, d, n_chunks, ratio=BUFFER_RATIO):
    """Return ``S @ diag(row_scale) @ A`` as a dense (s, d) array, O(nnz).

    ``S`` is the CountSketch with one non-zero per column: column ``i`` has
    value ``signs[i]`` in row ``buckets[i]``. The work is split by
    :func:`~sketchnewton._kernels.scatter_plan`: row chunks with private (s, d)
    buffers while they are small against the non-zeros, else column ranges.
    """
    nb, plan, cuts = scatter_plan(indptr, indices, np.empty(0, np.int64), d, d, s * d,
                                  indices.shape[0], n_chunks, ratio)
    buf = np.zeros((nb, s, d))
    for c in prange(plan.shape[0]):
        t = part_buffer(buf, c)
        if cuts.shape[0] == 0:
            for i in range(plan[c, 0], plan[c, 1]):
                _sketch_row(buf, t, buckets[i], indices, data, indptr[i], indptr[i + 1],
                            signs[i] * row_scale[i])
        else:
            lo, hi = part_cuts(plan, cuts, c)
            for i in range(plan[c, 0], plan[c, 1]):
                _sketch_row(buf, t, buckets[i], indices, data, cuts[lo + i], cuts[hi + i],
                            signs[i] * row_scale[i])
    return sum_chunks(buf)


@njit(parallel=True, cache=True)
def countsketch_dense(M, row_scale, buckets, signs, s, n_chunks, ratio=BUFFER_RATIO):
    """Return ``S @ diag(row_scale) @ M`` for a dense (n, k) ``M`` (CountSketch ``S``)."""
    n, k = M.shape
    nb = buffer_count(n_chunks, s * k, n * k, ratio)
    parts = nb if nb > 1 else min(n_chunks, k)  # no buffers: threads split the columns
    buf = np.zeros((nb, s, k))
    for c in prange(parts):
        t = part_buffer(buf, c)
        lo, hi = (0, n) if nb == 1 else chunk_range(c, n, parts)
        jlo, jhi = chunk_range(c, k, parts) if nb == 1 else (0, k)
        for i in range(lo, hi):
            a = signs[i] * row_scale[i]
            if a == 0.0:
                continue
            b = buckets[i]
            for j in range(jlo, jhi):
                buf[t, b, j] += a * M[i, j]
    return sum_chunks(buf)


@njit(cache=True)
def fwht_inplace(X):
    """Unnormalised fast Walsh-Hadamard transform of the columns of ``X`` in place.

    ``X`` has shape (n, k) with ``n`` a power of two (C-contiguous). After the
    call ``X = H @ X`` with ``H`` the Sylvester-Hadamard matrix (entries +-1,
    ``H @ H = n I``). Cost ``O(n log2(n) k)``. Serial version for small inputs
    (a parallel region costs milliseconds to start on some machines); see
    :func:`fwht_inplace_parallel`.
    """
    n, k = X.shape
    h = 1
    while h < n:
        for base in range(0, n, 2 * h):
            for i in range(base, base + h):
                for j in range(k):
                    x = X[i, j]
                    y = X[i + h, j]
                    X[i, j] = x + y
                    X[i + h, j] = x - y
        h *= 2
    return X


@njit(parallel=True, cache=True)
def fwht_inplace_parallel(X):
    """Parallel version of :func:`fwht_inplace` (same result).

    ``X`` has shape (n, k) with ``n`` a power of two (C-contiguous). After the
    call ``X = H @ X`` with ``H`` the Sylvester-Hadamard matrix (entries +-1,
    ``H @ H = n I``). Cost ``O(n log2(n) k)``. The butterflies act on whole
    rows (length ``k``), which keeps memory access contiguous.
    """
    n, k = X.shape
    h = 1
    while h < n:
        # n // (2h) independent blocks of size 2h
        nblocks = n // (2 * h)
        if nblocks >= 2:
            for blk in prange(nblocks):
                base = blk * 2 * h
                for i in range(base, base + h):
                    for j in range(k):
                        x = X[i, j]
                        y = X[i + h, j]
                        X[i, j] = x + y
                        X[i + h, j] = x - y
        else:
            for i in prange(h):
                for j in range(k):
                    x = X[i, j]
                    y = X[i + h, j]
                    X[i, j] = x + y
                    X[i + h, j] = x - y
        h *= 2
    return X


@njit(parallel=True, cache=True)
def csr_projected_rownorms(indptr, indices, data, row_scale, Z, n_chunks):
    """Return ``||row_scale[i] * a_i^T Z||^2`` for every row ``i``, shape (n,).

    ``Z`` is a dense (d, k) C-contiguous matrix; the (n, k) product ``A Z`` is
    never formed (one k-vector accumulator per thread). Cost ``O(nnz k)``.
    """
    n = indptr.shape[0] - 1
    k = Z.shape[1]
    out = np.zeros(n)
    for c in prange(n_chunks):
        lo, hi = chunk_range(c, n, n_chunks)
        acc = np.empty(k)
        for i in range(lo, hi):
            w = row_scale[i]
            if w == 0.0 or indptr[i] == indptr[i + 1]:
                continue
            for t in range(k):
                acc[t] = 0.0
            for p in nonzeros(indptr[i], indptr[i + 1]):
                a = data[p]
                j = indices[p]
                for t in range(k):
                    acc[t] += a * Z[j, t]
            tot = 0.0
            for t in range(k):
                tot += acc[t] * acc[t]
            out[i] = w * w * tot
    return out


@njit(cache=True)
def csr_scaled_rows(indptr, indices, data, rows, row_weights, d):
    """Return the dense (m, d) array with row ``r`` equal to ``row_weights[r] * a_{rows[r]}``."""
    m = rows.shape[0]
    out = np.zeros((m, d))
    for r in range(m):
        i = rows[r]
        w = row_weights[r]
        for p in nonzeros(indptr[i], indptr[i + 1]):
            out[r, indices[p]] += w * data[p]
    return out


@njit(parallel=True, cache=True)
def csr_row_quadforms(indptr, indices, data, row_scale, K):
    """Return ``row_scale[i]^2 * a_i^T K a_i`` for every row, shape (n,).

    ``K`` is a symmetric dense (d, d) matrix (C-contiguous; only entries
    ``K[j_p, j_q]`` with ``j_p <= j_q`` are read, column indices must be
    sorted within rows). Cost ``O(sum_i nnz_i^2 / 2)``, reads only: with
    ``K = R^{-1} R^{-T}`` this gives the leverage scores relative to ``R``
    without Johnson-Lindenstrauss noise.
    """
    n = indptr.shape[0] - 1
    out = np.zeros(n)
    for i in prange(n):
        w = row_scale[i]
        if w == 0.0:
            continue
        start = indptr[i]
        stop = indptr[i + 1]
        tot = 0.0
        for p in nonzeros(start, stop):
            jp = indices[p]
            ap = data[p]
            acc = 0.5 * ap * K[jp, jp]
            for q in nonzeros(p + np.uint64(1), stop):
                acc += data[q] * K[jp, indices[q]]
            tot += ap * acc
        out[i] = 2.0 * w * w * tot
    return out


@njit(cache=True)
def bernoulli_saturation(scores, a, bconst, c):
    """Rows saturated at inclusion probability 1 for the scale ``c``: ``(count, sum of p_i)``.

    ``p_i = a scores_i + bconst`` on rows with a positive score; row ``i`` is
    saturated when ``c p_i >= 1`` (one step of the fixed point for ``c``,
    docs/math.md section 5.5).
    """
    n_sat = 0
    p_sat = 0.0
    for i in range(scores.shape[0]):
        sc = scores[i]
        if sc > 0:
            p = a * sc + bconst
            if c * p >= 1.0:
                n_sat += 1
                p_sat += p
    return n_sat, p_sat


@njit(cache=True)
def bernoulli_rows(scores, a, bconst, c, u):
    """Keep row ``i`` when ``u_i < pi_i = min(1, c (a scores_i + bconst))`` (positive scores only).

    Returns ``(rows, 1 / sqrt(pi[rows]))``. ``u`` holds the pre-drawn
    uniforms (float32 or float64).
    """
    n = scores.shape[0]
    rows = np.empty(n, np.int64)
    out_w = np.empty(n)
    k = 0
    for i in range(n):
        sc = scores[i]
        if sc > 0:
            pi = min(1.0, c * (a * sc + bconst))
            if u[i] < pi:
                rows[k] = i
                out_w[k] = 1.0 / np.sqrt(pi)
                k += 1
    return rows[:k].copy(), out_w[:k].copy()
