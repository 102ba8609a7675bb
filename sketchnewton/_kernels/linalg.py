"""CSR products: ``A @ x``, ``A.T @ Y`` and weighted Gram matrices of row subsets.

The transposed products split their work with :func:`~sketchnewton._kernels.scatter_plan`
(private per-thread buffers when the output is small against the non-zeros, else a
column split with one output) and sum buffers with :func:`~sketchnewton._kernels.sum_chunks`.
Their last argument ``ratio`` is :data:`~sketchnewton._kernels.BUFFER_RATIO` (tests pass
other values to exercise both plans). Column splits need sorted column indices within rows
(canonical CSR, as :class:`~sketchnewton._matrix.DataMatrix` stores).
"""

import numpy as np
from numba import njit, prange

from . import (BUFFER_RATIO, buffer_count, chunk_range, csr_plan, nonzeros, owns, part_buffer, part_cuts,
               scatter_plan, sum_chunks)

__all__ = ["csr_matvec", "csr_matmat", "csr_rmatvec", "csr_rmatmat", "csr_rmatmat_add", "csr_rmatmat_rows",
           "csr_gram", "csr_col_counts", "csr_take_columns", "csr_normal_matvec", "csr_weighted_col_sq", "csr_class_blocks", "csr_abs_rmatmat",
           "row_dot", "axpy_row", "outer_row"]


@njit(cache=True, inline="always")
def row_dot(indptr, indices, data, i, x):
    """``a_i . x`` for row ``i`` of the CSR matrix."""
    acc = 0.0
    for p in nonzeros(indptr[i], indptr[i + 1]):
        acc += data[p] * x[indices[p]]
    return acc


@njit(parallel=True, cache=True, fastmath=False)
def csr_matvec(indptr, indices, data, x, out):
    """``out[:] = A @ x`` for CSR ``A``; ``x`` of shape (d,), ``out`` of shape (n,)."""
    n = indptr.shape[0] - 1
    for i in prange(n):
        out[i] = row_dot(indptr, indices, data, i, x)
    return out


@njit(parallel=True, cache=True)
def csr_matmat(indptr, indices, data, XT, out):
    """``out[:] = A @ XT`` for CSR ``A`` (n x d) and dense ``XT`` (d, k), one sweep."""
    n = indptr.shape[0] - 1
    k = XT.shape[1]
    for i in prange(n):
        for t in range(k):
            out[i, t] = 0.0
        for p in nonzeros(indptr[i], indptr[i + 1]):
            a = data[p]
            j = indices[p]
            for t in range(k):
                out[i, t] += a * XT[j, t]
    return out


@njit(cache=True, inline="always")
def axpy_row(buf, b, indices, data, start, stop, t, square=False):
    """``buf[b, j] += a_ij t`` (``a_ij^2 t`` if ``square``) over the non-zeros ``start:stop`` of
    a row (none read if ``t == 0``)."""
    if t != 0.0:
        if square:
            for p in nonzeros(start, stop):
                a = data[p]
                buf[b, indices[p]] += a * a * t
        else:
            for p in nonzeros(start, stop):
                buf[b, indices[p]] += data[p] * t


@njit(cache=True, inline="always")
def outer_row(buf, b, indices, data, start, stop, W, r):
    """``buf[b, j, :] += a_ij W[r, :]`` over the non-zeros ``start:stop`` of a row."""
    k = W.shape[1]
    for p in nonzeros(start, stop):
        j = np.uint64(indices[p])  # unsigned: no wraparound test per non-zero
        a = data[p]
        for t in range(k):
            buf[b, j, t] += a * W[r, t]


@njit(parallel=True, cache=True)
def _scatter(indptr, indices, data, y, d, e, square, n_chunks, ratio):
    """``sum_i y_i a_i`` (or ``sum_i y_i a_i^2`` elementwise, ``square``) into ``e >= d`` entries."""
    nb, plan, cuts = csr_plan(indptr, indices, d, e, n_chunks, ratio)
    buf = np.zeros((nb, e))
    for c in prange(plan.shape[0]):
        b = part_buffer(buf, c)
        if cuts.shape[0] == 0:
            for i in range(plan[c, 0], plan[c, 1]):
                axpy_row(buf, b, indices, data, indptr[i], indptr[i + 1], y[i], square)
        else:
            lo, hi = part_cuts(plan, cuts, c)
            for i in range(plan[c, 0], plan[c, 1]):
                axpy_row(buf, b, indices, data, cuts[lo + i], cuts[hi + i], y[i], square)
    return buf


@njit(cache=True)
def csr_rmatvec(indptr, indices, data, y, d, n_chunks, ratio=BUFFER_RATIO):
    """Return ``A.T @ y`` for CSR ``A`` (n x d) and ``y`` of shape (n,)."""
    return sum_chunks(_scatter(indptr, indices, data, y, d, d, False, n_chunks, ratio))


@njit(cache=True)
def csr_rmatmat(indptr, indices, data, Y, d, n_chunks, ratio=BUFFER_RATIO):
    """Return ``A.T @ Y`` for CSR ``A`` (n x d) and ``Y`` of shape (n, k)."""
    return csr_rmatmat_add(indptr, indices, data, Y, d, n_chunks, np.zeros((d, Y.shape[1])), ratio)


@njit(parallel=True, cache=True)
def csr_rmatmat_add(indptr, indices, data, Y, d, n_chunks, out, ratio=BUFFER_RATIO):
    """``out += A.T @ Y`` for CSR ``A`` (n x d), ``Y`` (n, k), ``out`` C-contiguous (d, k);
    returns ``out``.

    ``A`` may be a run of rows of a larger matrix (``indptr[a:b + 1]`` with the whole
    ``indices`` and ``data``): a product over row blocks accumulates into one output. With
    one buffer (one thread, or a column split) the rows are accumulated into ``out`` itself.
    """
    nb, plan, cuts = csr_plan(indptr, indices, d, d, n_chunks, ratio)
    k = Y.shape[1]
    buf = out.reshape((1, d, k)) if nb == 1 else np.zeros((nb, d, k))
    for c in prange(plan.shape[0]):
        b = part_buffer(buf, c)
        if cuts.shape[0] == 0:
            for i in range(plan[c, 0], plan[c, 1]):
                outer_row(buf, b, indices, data, indptr[i], indptr[i + 1], Y, i)
        else:
            lo, hi = part_cuts(plan, cuts, c)
            for i in range(plan[c, 0], plan[c, 1]):
                outer_row(buf, b, indices, data, cuts[lo + i], cuts[hi + i], Y, i)
    if nb > 1:
        s = sum_chunks(buf)
        for j in range(d):
            for t in range(k):
                out[j, t] += s[j, t]
    return out


def csr_rmatmat_rows(indptr, indices, data, rows_of, k, d, step, n_chunks, ones=False):
    """``A^T Y`` (d, k), or ``[A, 1]^T Y`` (d + 1, k) with ``ones``, for CSR ``A`` and a ``Y``
    (n, k) never formed whole: ``rows_of(a, b, out)`` writes ``Y[a:b]`` into ``out`` (one
    reused buffer of ``step`` rows) and returns it; each block of rows is accumulated into
    one output in block order (:func:`csr_rmatmat_add`). Plain Python around the kernel.

    ``Y`` formed whole was a fresh ``n x k`` array on every call, written, first-touched
    (page faults) and streamed back: the softmax gradient at n = 1e6, d = 200, 10
    non-zeros a row, K = 8 took 24 ms that way, 16-21 ms by 2 MiB blocks (one thread;
    benchmarks/RESULTS.md, kernel table).
    """
    n = indptr.shape[0] - 1
    out, col = np.zeros((d, k)), np.zeros(k)
    ybuf = np.empty((max(1, min(step, n)), k))
    for a in range(0, n, step):
        b = min(n, a + step)
        Y = rows_of(a, b, ybuf[:b - a])
        csr_rmatmat_add(indptr[a:b + 1], indices, data, Y, d, n_chunks, out)
        if ones:
            col += Y.T @ np.ones(b - a)
    return np.vstack([out, col[None, :]]) if ones else out


@njit(parallel=True, cache=True)
def csr_abs_rmatmat(indptr, indices, data, Y, d, n_chunks, ratio=BUFFER_RATIO):
    """Return ``|A|.T @ Y`` for CSR ``A`` (n x d) and ``Y`` of shape (n, k), without a copy of
    ``|A|``'s values (a rounding bound, once a solve: one loop for both plans)."""
    nb, plan, cuts = csr_plan(indptr, indices, d, d, n_chunks, ratio)
    buf = np.zeros((nb, d, Y.shape[1]))
    for c in prange(plan.shape[0]):
        b = part_buffer(buf, c)
        split = cuts.shape[0] > 0
        lo, hi = part_cuts(plan, cuts, c) if split else (0, 0)
        for i in range(plan[c, 0], plan[c, 1]):
            start = cuts[lo + i] if split else indptr[i]
            stop = cuts[hi + i] if split else indptr[i + 1]
            for p in nonzeros(start, stop):
                j = indices[p]
                a = abs(data[p])
                for t in range(Y.shape[1]):
                    buf[b, j, t] += a * Y[i, t]
    return sum_chunks(buf)


@njit(parallel=True, cache=True)
def csr_gram(indptr, indices, data, rows, weights, d, n_chunks, ones=False, ratio=BUFFER_RATIO,
             tail=np.empty(0)):
    """Return ``sum_r weights[r] * a_{rows[r]} a_{rows[r]}^T`` as a dense (d, d) matrix.

    Costs ``O(sum_r nnz(a_{rows[r]})^2)``: only the upper triangle of each
    row's outer product is accumulated (column indices must be sorted within
    rows), then mirrored. ``rows`` may repeat (sampling with replacement).
    ``ones=True`` treats every row as ending with one more entry, 1 (an
    intercept column) or ``tail[r]`` when ``tail`` is given (m,): the result is
    then (d + 1, d + 1), its last column ``sum_r weights[r] tail[r] a_r`` read
    in the same sweep. The plan splits the sampled rows (buffered) or the Gram's
    rows (column split).
    """
    m = rows.shape[0]
    e = d + 1 if ones else d
    work = 0
    for r in range(m):
        k = indptr[rows[r] + 1] - indptr[rows[r]]
        work += k * (k + 1) // 2
    nb, plan, cuts = scatter_plan(indptr, indices, rows, d, e, e * e, work, n_chunks, ratio)
    buf = np.zeros((nb, e, e))
    for c in prange(plan.shape[0]):
        b = part_buffer(buf, c)
        last = owns(plan, c, d)
        split = cuts.shape[0] > 0
        lo, hi = part_cuts(plan, cuts, c) if split else (0, 0)
        for r in range(plan[c, 0], plan[c, 1]):  # O(nnz_r^2) a row: one loop for both plans
            i = rows[r]
            w = weights[r]
            t = tail[r] if tail.shape[0] > 0 else 1.0
            start = cuts[lo + r] if split else indptr[i]
            stop = cuts[hi + r] if split else indptr[i + 1]
            end = indptr[i + 1]
            for p in nonzeros(start, stop):
                jp = indices[p]
                wa = w * data[p]
                for q in nonzeros(p, end):
                    buf[b, jp, indices[q]] += wa * data[q]
                if ones:
                    buf[b, jp, d] += wa * t
            if ones and last:
                buf[b, d, d] += w * t * t
    out = sum_chunks(buf)
    for j in range(e):
        for k in range(j + 1, e):
            out[k, j] = out[j, k]
    return out


@njit(cache=True)
def fused_sweep(n_chunks, e, nnz, ratio):
    """Whether a fused product (forward and transposed product row by row) runs as one sweep:
    only while every thread may keep a private output buffer (:func:`buffer_count`) and that
    output is small against the non-zeros. Else two sweeps: the forward products row-parallel,
    then the transposed product on its own plan (a gather from ``v`` and a scatter into a
    large output at once thrash the cache: 1.24x a scipy pass at p = 2^20 on one thread)."""
    return e * ratio <= nnz and buffer_count(n_chunks, e, nnz, ratio) == n_chunks


@njit(parallel=True, cache=True)
def csr_normal_matvec(indptr, indices, data, h, v, ones, d, n_chunks, z, ratio=BUFFER_RATIO):
    """Return ``A.T @ (h * (A @ v))``, writing ``A @ v`` into ``z`` (n,).

    ``ones=True`` treats every row as ending with one more entry equal to 1
    (an intercept column): ``v`` and the result then have length ``d + 1``.
    One sweep (:func:`fused_sweep`): row ``i`` read once for both products (still in cache).
    """
    n = indptr.shape[0] - 1
    e = d + 1 if ones else d
    vd = v[d] if ones else 0.0
    if not fused_sweep(n_chunks, e, indices.shape[0], ratio):
        t = np.empty(n)
        for i in prange(n):
            z[i] = vd + row_dot(indptr, indices, data, i, v)
            t[i] = h[i] * z[i]
        out = sum_chunks(_scatter(indptr, indices, data, t, d, e, False, n_chunks, ratio))
        if ones:
            out[d] += t.sum()
        return out
    buf = np.zeros((n_chunks, e))
    for c in prange(n_chunks):
        lo, hi = chunk_range(c, n, n_chunks)
        for i in range(lo, hi):
            zi = vd + row_dot(indptr, indices, data, i, v)
            z[i] = zi
            t = h[i] * zi
            axpy_row(buf, c, indices, data, indptr[i], indptr[i + 1], t)
            if ones:
                buf[c, d] += t
    return sum_chunks(buf)


@njit(cache=True)
def csr_weighted_col_sq(indptr, indices, data, w, ones, d, n_chunks, ratio=BUFFER_RATIO):
    """``sum_i w_i a_ij^2`` for every column ``j``: the diagonal of ``A^T diag(w) A``.

    ``ones=True`` appends the intercept column of ones (its entry is ``sum w``);
    the result then has length ``d + 1``.
    """
    buf = _scatter(indptr, indices, data, w, d, d + 1 if ones else d, True, n_chunks, ratio)
    if ones:
        buf[0, d] += w.sum()  # the intercept column's entry, added once (to the first buffer)
    return sum_chunks(buf)


@njit(parallel=True, cache=True)
def csr_class_blocks(indptr, indices, data, P, sw, ones, d, n_chunks, ratio=BUFFER_RATIO):
    """Per-column ``K x K`` blocks ``sum_i a_ij^2 B_i``, ``B_i = sw_i (diag(p_i) - p_i p_i^T)``.

    The block diagonal (over features) of the multinomial Hessian; ``O(nnz K^2)``.
    Returns (d, K, K), or (d + 1, K, K) with the intercept column (``ones``).
    """
    K = P.shape[1]
    e = d + 1 if ones else d
    nb, plan, cuts = csr_plan(indptr, indices, d, e, n_chunks, ratio)
    buf = np.zeros((nb, e, K, K))
    for c in prange(plan.shape[0]):
        b = part_buffer(buf, c)
        last = ones and owns(plan, c, d)
        split = cuts.shape[0] > 0
        lo, hi = part_cuts(plan, cuts, c) if split else (0, 0)
        B = np.empty((K, K))
        for i in range(plan[c, 0], plan[c, 1]):  # O(nnz_i K^2) a row: one loop for both plans
            start = cuts[lo + i] if split else indptr[i]
            stop = cuts[hi + i] if split else indptr[i + 1]
            if start == stop and not last:
                continue
            s = sw[i]
            for k in range(K):
                for l in range(K):
                    B[k, l] = -s * P[i, k] * P[i, l]
                B[k, k] += s * P[i, k]
            for p in nonzeros(start, stop):
                a2 = data[p] * data[p]
                j = indices[p]
                for k in range(K):
                    for l in range(K):
                        buf[b, j, k, l] += a2 * B[k, l]
            if last:
                for k in range(K):
                    for l in range(K):
                        buf[b, d, k, l] += B[k, l]
    return sum_chunks(buf)




@njit(cache=True)
def csr_col_counts(indices, data, d):
    """``(non-zeros, sum of squares)`` per column (d,) of a CSR matrix (one sweep)."""
    count = np.zeros(d, dtype=np.int64)
    sq = np.zeros(d)
    for p in range(indices.shape[0]):
        j = indices[p]
        count[j] += 1
        sq[j] += data[p] * data[p]
    return count, sq


@njit(cache=True)
def csr_take_columns(indptr, indices, data, pos, out_ptr, out_idx, out_val):
    """Writes the CSR matrix of the columns ``W`` of ``A`` into ``out_ptr`` (n + 1,),
    ``out_idx`` and ``out_val`` (at least the non-zeros of ``W`` plus one); returns its
    non-zeros. ``pos`` (d,) maps a column to its place in ``W`` (-1: not in ``W``; increasing
    on ``W``, so that the indices stay sorted within rows). One sweep; the outputs may be
    ``A``'s own arrays (the columns kept in place: an entry is written at or before where it
    was read).
    """
    n = indptr.shape[0] - 1
    k = 0
    start = indptr[0]
    for i in range(n):
        stop = indptr[i + 1]
        for p in nonzeros(start, stop):
            at = pos[indices[p]]
            out_idx[k] = at  # no branch (W's entries are unpredictable)
            out_val[k] = data[p]
            k += at >= 0
        out_ptr[i + 1] = k
        start = stop
    out_ptr[0] = 0
    return k
