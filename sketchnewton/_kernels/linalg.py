"""CSR products: ``A @ x``, ``A.T @ Y`` and weighted Gram matrices of row subsets."""

import numpy as np
from numba import njit, prange

__all__ = ["csr_matvec", "csr_matmat", "csr_rmatvec", "csr_rmatmat", "csr_gram", "csr_normal_matvec",
           "csr_weighted_col_sq", "csr_class_blocks"]


@njit(parallel=True, cache=True, fastmath=False)
def csr_matvec(indptr, indices, data, x, out):
    """``out[:] = A @ x`` for CSR ``A``; ``x`` of shape (d,), ``out`` of shape (n,)."""
    n = indptr.shape[0] - 1
    for i in prange(n):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * x[indices[p]]
        out[i] = acc
    return out


@njit(parallel=True, cache=True)
def csr_matmat(indptr, indices, data, XT, out):
    """``out[:] = A @ XT`` for CSR ``A`` (n x d) and dense ``XT`` (d, k), one sweep."""
    n = indptr.shape[0] - 1
    k = XT.shape[1]
    for i in prange(n):
        for t in range(k):
            out[i, t] = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            a = data[p]
            j = indices[p]
            for t in range(k):
                out[i, t] += a * XT[j, t]
    return out


@njit(parallel=True, cache=True)
def csr_rmatvec(indptr, indices, data, y, d, n_chunks):
    """Return ``A.T @ y`` for CSR ``A`` (n x d) and ``y`` of shape (n,)."""
    n = indptr.shape[0] - 1
    buf = np.zeros((n_chunks, d))
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        acc = buf[c]
        for i in range(lo, hi):
            yi = y[i]
            if yi != 0.0:
                for p in range(indptr[i], indptr[i + 1]):
                    acc[indices[p]] += data[p] * yi
    out = np.zeros(d)
    for c in range(n_chunks):
        out += buf[c]
    return out


@njit(parallel=True, cache=True)
def csr_rmatmat(indptr, indices, data, Y, d, n_chunks):
    """Return ``A.T @ Y`` for CSR ``A`` (n x d) and ``Y`` of shape (n, k).

    Rows are split into ``n_chunks`` contiguous blocks; each block accumulates
    into its own (d, k) buffer so that threads never write to shared memory.
    """
    n = indptr.shape[0] - 1
    k = Y.shape[1]
    buf = np.zeros((n_chunks, d, k))
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        for i in range(lo, hi):
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                a = data[p]
                for t in range(k):
                    buf[c, j, t] += a * Y[i, t]
    out = np.zeros((d, k))
    for c in range(n_chunks):
        out += buf[c]
    return out


@njit(parallel=True, cache=True)
def csr_gram(indptr, indices, data, rows, weights, d, n_chunks, ones=False):
    """Return ``sum_r weights[r] * a_{rows[r]} a_{rows[r]}^T`` as a dense (d, d) matrix.

    Costs ``O(sum_r nnz(a_{rows[r]})^2)``: only the upper triangle of each
    row's outer product is accumulated (column indices must be sorted within
    rows), then mirrored. ``rows`` may repeat (sampling with replacement).
    ``ones=True`` treats every row as ending with one more entry equal to 1
    (an intercept column): the result is then (d + 1, d + 1).
    """
    m = rows.shape[0]
    e = d + 1 if ones else d
    buf = np.zeros((n_chunks, e, e))
    step = (m + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(m, lo + step)
        G = buf[c]
        for r in range(lo, hi):
            i = rows[r]
            w = weights[r]
            start = indptr[i]
            stop = indptr[i + 1]
            for p in range(start, stop):
                jp = indices[p]
                wa = w * data[p]
                for q in range(p, stop):
                    G[jp, indices[q]] += wa * data[q]
                if ones:
                    G[jp, d] += wa
            if ones:
                G[d, d] += w
    out = np.zeros((e, e))
    for c in range(n_chunks):
        out += buf[c]
    for j in range(e):
        for k in range(j + 1, e):
            out[k, j] = out[j, k]
    return out


@njit(parallel=True, cache=True)
def csr_normal_matvec(indptr, indices, data, h, v, ones, d, n_chunks, z):
    """Return ``A.T @ (h * (A @ v))`` in one sweep, writing ``A @ v`` into ``z`` (n,).

    ``ones=True`` treats every row as ending with one more entry equal to 1
    (an intercept column): ``v`` and the result then have length ``d + 1``.
    Row ``i`` is read once for both products (it is still in cache).
    """
    n = indptr.shape[0] - 1
    e = d + 1 if ones else d
    buf = np.zeros((n_chunks, e))
    step = (n + n_chunks - 1) // n_chunks
    vd = v[d] if ones else 0.0
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        acc = buf[c]
        for i in range(lo, hi):
            start = indptr[i]
            stop = indptr[i + 1]
            zi = vd
            for p in range(start, stop):
                zi += data[p] * v[indices[p]]
            z[i] = zi
            t = h[i] * zi
            if t != 0.0:
                for p in range(start, stop):
                    acc[indices[p]] += data[p] * t
                if ones:
                    acc[d] += t
    out = np.zeros(e)
    for c in range(n_chunks):
        out += buf[c]
    return out


@njit(parallel=True, cache=True)
def csr_weighted_col_sq(indptr, indices, data, w, ones, d, n_chunks):
    """``sum_i w_i a_ij^2`` for every column ``j``: the diagonal of ``A^T diag(w) A``.

    ``ones=True`` appends the intercept column of ones (its entry is ``sum w``);
    the result then has length ``d + 1``.
    """
    n = indptr.shape[0] - 1
    e = d + 1 if ones else d
    buf = np.zeros((n_chunks, e))
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        acc = buf[c]
        for i in range(lo, hi):
            wi = w[i]
            for p in range(indptr[i], indptr[i + 1]):
                a = data[p]
                acc[indices[p]] += wi * a * a
            if ones:
                acc[d] += wi
    out = np.zeros(e)
    for c in range(n_chunks):
        out += buf[c]
    return out


@njit(parallel=True, cache=True)
def csr_class_blocks(indptr, indices, data, P, sw, ones, d, n_chunks):
    """Per-column ``K x K`` blocks ``sum_i a_ij^2 B_i``, ``B_i = sw_i (diag(p_i) - p_i p_i^T)``.

    The block diagonal (over features) of the multinomial Hessian; ``O(nnz K^2)``.
    Returns (d, K, K), or (d + 1, K, K) with the intercept column (``ones``).
    """
    n, K = P.shape
    e = d + 1 if ones else d
    buf = np.zeros((n_chunks, e, K, K))
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        acc = buf[c]
        B = np.empty((K, K))
        for i in range(lo, hi):
            s = sw[i]
            for k in range(K):
                for l in range(K):
                    B[k, l] = -s * P[i, k] * P[i, l]
                B[k, k] += s * P[i, k]
            for p in range(indptr[i], indptr[i + 1]):
                a2 = data[p] * data[p]
                blk = acc[indices[p]]
                for k in range(K):
                    for l in range(K):
                        blk[k, l] += a2 * B[k, l]
            if ones:
                blk = acc[d]
                for k in range(K):
                    for l in range(K):
                        blk[k, l] += B[k, l]
    out = np.zeros((e, K, K))
    for c in range(n_chunks):
        out += buf[c]
    return out
