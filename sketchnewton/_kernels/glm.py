"""Row-wise kernels of the row-separable losses: logistic, softmax cross-entropy, Poisson.

Each pass reads the linear predictor of every row once and writes the
gradient weights ``r`` and the curvature weights ``h`` (or the class
probabilities) the loss needs; see docs/math.md sections 3 and 4.
"""

import numpy as np
from numba import njit, prange

from . import BUFFER_RATIO, chunk_range, nonzeros, sum_chunks, vmath
from .linalg import csr_rmatmat, fused_sweep

__all__ = ["logistic_pass", "poisson_pass", "multinomial_pass", "multinomial_row_terms",
           "block_total", "multinomial_probs", "multinomial_residual", "multinomial_hess_weights",
           "multinomial_curvature", "csr_multinomial_hessp"]


#: rows per block of the row passes: a block's temporaries stay in the L1 cache
_BLOCK = 512
#: the row passes' compiler options: ``error_model="numpy"`` (no zero-divisor test per
#: division, which keeps a loop scalar) and fused multiply-adds (``contract``: 3.7 ms instead
#: of 4.3 ms for the logistic pass of 1e6 rows; ``exp`` and ``log`` stay within 1 ulp, tests)
_ROW_PASS = dict(parallel=True, cache=True, error_model="numpy", fastmath={"contract"})


#: the blocks split into at most this many contiguous runs, the parallel loop's iterations
#: (one scratch buffer each; the thread count is not read inside a cached kernel)
_RUNS = 64


@njit(cache=True, inline="always")
def _blocks(n):
    """``(n_blocks, n_runs)``: :data:`_BLOCK`-row blocks of ``range(n)`` and the contiguous
    runs of blocks the parallel loop hands out."""
    nb = (n + _BLOCK - 1) // _BLOCK
    return nb, max(1, min(_RUNS, nb))


@njit(cache=True, inline="always")
def _block_rows(b, n):
    """``(m, ulo)``: block ``b`` has rows ``ulo + j``, ``j < m``, unsigned.

    With a signed row index numba tests each ``z[lo + j]`` for a negative (wraparound) index,
    and LLVM turned the loads into gathers: the logistic pass took 8.1 ms instead of 4.8 ms
    (1e6 rows, one thread).
    """
    lo = b * _BLOCK
    return np.uint64(min(n - lo, _BLOCK)), np.uint64(lo)


@njit(cache=True)
def _total(partial):
    """Sum of the blocks' partial losses in block order (the same for any thread count)."""
    s = 0.0
    for b in range(partial.shape[0]):
        s += partial[b]
    return s


@njit(cache=True, error_model="numpy")
def _write_back(W, ulo, m, h):
    """Copy a block's ``W[0]`` out to ``h[ulo:ulo + m]``; return the sum of its loss terms
    ``W[1, :m]``.

    The block's loop writes ``r`` and the scratch ``W`` (one array, rows at a constant
    distance) and reads three arrays: written straight into ``r``, ``h`` and a third array,
    it needed more runtime tests that the arrays do not overlap than LLVM emits, and stayed
    scalar (3.5x slower).
    """
    for j in range(m):
        h[ulo + j] = W[0, j]
    return vmath.block_sum(W[1, :m])


@njit(**_ROW_PASS)
def logistic_pass(z, y, sw, r, h):
    """Binary cross-entropy ``sum_i sw_i (log(1 + e^{z_i}) - y_i z_i)``, ``y`` in {0, 1}.

    Writes the gradient weights ``r = sw (p - y)`` and the curvature
    ``h = sw p (1 - p)`` with ``p = sigmoid(z)``; returns the loss. Stable for
    any finite ``z``: with ``e = exp(-|z|)``, ``log(1 + e^z) = max(z, 0) + log1p(e)``,
    ``p = 1 / (1 + e)`` (``z > 0``) or ``e / (1 + e)``. Branch-free, in blocks whose
    loop LLVM vectorizes (:mod:`~sketchnewton._kernels.vmath`); the loss is summed per
    block, then over the blocks in order.
    """
    n = z.shape[0]
    nb, T = _blocks(n)
    partial = np.empty(nb)
    for c in prange(T):
        W = np.empty((2, _BLOCK))  # h and the loss terms of a block
        b0, b1 = chunk_range(c, nb, T)
        for b in range(b0, b1):
            m, ulo = _block_rows(b, n)
            for j in range(m):
                zi = z[ulo + j]
                yi = y[ulo + j]
                s = sw[ulo + j]
                e = vmath.exp(-abs(zi))
                u = 1.0 + e
                inv = 1.0 / u
                lse = max(zi, 0.0) + (vmath.log(u) + (e - (u - 1.0)) * inv)
                pi = inv if zi > 0 else e * inv
                r[ulo + j] = s * (pi - yi)
                W[0, j] = s * pi * (1.0 - pi)
                W[1, j] = s * (lse - yi * zi)
            partial[b] = _write_back(W, ulo, m, h)
    return _total(partial)


@njit(**_ROW_PASS)
def poisson_pass(z, y, sw, r, h):
    """Half the Poisson deviance with log link, ``sum_i sw_i (y_i log(y_i / mu_i) - y_i + mu_i)``.

    ``mu = exp(z)``; each row's term is computed as ``y (log y - z) + (mu - y)``
    (``0 log 0 = 0``), non-negative and zero at a perfect fit, so the loss is
    a meaningful scale for relative tolerances. Writes ``r = sw (mu - y)`` and
    ``h = sw mu``; returns the loss (``inf`` when an ``exp`` overflows, which
    the line search rejects). Vectorized in blocks like :func:`logistic_pass`.
    """
    n = z.shape[0]
    nb, T = _blocks(n)
    partial = np.empty(nb)
    for c in prange(T):
        W = np.empty((2, _BLOCK))
        b0, b1 = chunk_range(c, nb, T)
        for b in range(b0, b1):
            m, ulo = _block_rows(b, n)
            for j in range(m):
                zi = z[ulo + j]
                yi = y[ulo + j]
                s = sw[ulo + j]
                mu = vmath.exp(zi)
                lg = vmath.log(yi)
                r[ulo + j] = s * (mu - yi)
                W[0, j] = s * mu
                W[1, j] = s * (mu - yi + (yi * (lg - zi) if yi > 0 else 0.0))
            partial[b] = _write_back(W, ulo, m, h)
    return _total(partial)


@njit(cache=True, inline="always")
def _softmax_rows(Z, y, sw, stats, E, sums, terms, ulo, m):
    """Rows ``ulo + j``, ``j < m <= _BLOCK``, of :func:`multinomial_pass`: their shifted logits
    ``Z_ik - max_k Z_ik`` in the contiguous buffer ``E``, their ``exp`` in one vectorized loop,
    then per row ``stats = (max, 1 / sum of exps)`` and the loss term
    ``sw (max - z_y) + sw log(sum)`` written to ``terms[j]`` (``sums``: scratch (m,))."""
    K = Z.shape[1]
    for j in range(m):
        i = ulo + j
        mi = Z[i, 0]
        for k in range(1, K):
            mi = max(mi, Z[i, k])
        stats[i, 0] = mi
        for k in range(K):
            E[j * K + k] = Z[i, k] - mi
    for q in range(m * K):
        E[q] = vmath.exp(E[q])
    for j in range(m):
        i = ulo + j
        si = 0.0
        for k in range(K):
            si += E[j * K + k]
        stats[i, 1] = 1.0 / si
        terms[j] = sw[i] * (stats[i, 0] - Z[i, y[i]])
        sums[j] = si
    for j in range(m):
        terms[j] += sw[ulo + j] * vmath.log(sums[j])


@njit(**_ROW_PASS)
def multinomial_pass(Z, y, sw, stats):
    """Softmax cross-entropy ``sum_i sw_i (logsumexp(Z_i) - Z_{i, y_i})``.

    ``Z`` (n, K) logits, ``y`` (n,) integer labels in [0, K). Writes per row
    ``stats[i] = (max_k Z_ik, 1 / sum_k exp(Z_ik - max))`` (n, 2), from which
    :func:`multinomial_probs` forms the probabilities of any rows (the same numbers as
    formed here); returns the loss. In blocks of rows (:func:`_softmax_rows`), each
    block's terms summed, then the blocks in order (the same for any thread count).
    """
    n, K = Z.shape
    nb, T = _blocks(n)
    partial = np.empty(nb)
    for c in prange(T):
        E = np.empty(_BLOCK * K)  # the block's shifted logits, then their exponentials
        S = np.empty((2, _BLOCK))  # the rows' sums of exps and loss terms
        b0, b1 = chunk_range(c, nb, T)
        for b in range(b0, b1):
            m, ulo = _block_rows(b, n)
            _softmax_rows(Z, y, sw, stats, E, S[0], S[1], ulo, m)
            partial[b] = vmath.block_sum(S[1, :m])
    return _total(partial)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def multinomial_row_terms(Z, y, sw, stats, terms):
    """Serial :func:`multinomial_pass` of a few rows (a block called from a product's thread,
    without the GIL): writes ``stats`` and the rows' loss terms ``terms`` (n,), whose sum
    :func:`block_total` takes as :func:`multinomial_pass` does."""
    n, K = Z.shape
    E, sums = np.empty(_BLOCK * K), np.empty(_BLOCK)
    for lo in range(0, n, _BLOCK):
        m = min(n - lo, _BLOCK)
        _softmax_rows(Z, y, sw, stats, E, sums, terms[lo:lo + m], np.uint64(lo), np.uint64(m))
    return terms


@njit(cache=True, error_model="numpy")
def block_total(terms):
    """``sum(terms)`` summed as :func:`multinomial_pass` sums its rows' terms (per block of
    ``_BLOCK`` rows, then the blocks in order)."""
    n = terms.shape[0]
    nb = (n + _BLOCK - 1) // _BLOCK
    partial = np.empty(nb)
    for b in range(nb):
        partial[b] = vmath.block_sum(terms[b * _BLOCK:min(n, (b + 1) * _BLOCK)])
    return _total(partial)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def multinomial_probs(Z, stats, out):
    """``out_ik = exp(Z_ik - stats_i0) stats_i1``: the softmax probabilities of the rows of
    ``Z`` from their :func:`multinomial_pass` statistics (bit for bit the numbers it forms),
    ``out`` (n, K). Serial and without the GIL (row blocks in a product's threads)."""
    n, K = Z.shape
    for i in range(n):
        mi = stats[i, 0]
        inv = stats[i, 1]
        for k in range(K):
            out[i, k] = vmath.exp(Z[i, k] - mi) * inv
    return out


@njit(cache=True, nogil=True)
def multinomial_residual(P, y, sw, out):
    """``out_i = sw_i (p_i - e_{y_i})`` row-wise (the gradient weights), ``out`` (n, K).

    Serial and without the GIL: called on a block of rows by each thread of a
    product (:meth:`~sketchnewton._matrix.DataMatrix.rmatmat_rows`).
    """
    n, K = P.shape
    for i in range(n):
        for k in range(K):
            out[i, k] = sw[i] * P[i, k]
        out[i, y[i]] -= sw[i]
    return out


@njit(cache=True, nogil=True)
def multinomial_hess_weights(P, sw, Zd, out):
    """``out_i = sw_i (diag(p_i) - p_i p_i^T) zd_i`` row-wise (Hessian action).

    Serial and without the GIL, like :func:`multinomial_residual`.
    """
    n, K = P.shape
    for i in range(n):
        s = 0.0
        for k in range(K):
            s += P[i, k] * Zd[i, k]
        for k in range(K):
            out[i, k] = sw[i] * P[i, k] * (Zd[i, k] - s)
    return out


@njit(parallel=True, cache=True)
def multinomial_curvature(P, sw, out):
    """``out_i = sw_i (1 - ||p_i||^2) = tr B_i``, an upper bound of the largest eigenvalue of B_i."""
    n, K = P.shape
    for i in prange(n):
        s = 0.0
        for k in range(K):
            s += P[i, k] * P[i, k]
        out[i] = sw[i] * max(1.0 - s, 0.0)
    return out


@njit(parallel=True, cache=True)
def csr_multinomial_hessp(indptr, indices, data, P, sw, V, ones, d, n_chunks, Zd,
                          ratio=BUFFER_RATIO):
    """The multinomial Hessian-vector product ``A^T M``, ``M_i = B_i (A V)_i``.

    ``B_i = sw_i (diag(p_i) - p_i p_i^T)``, ``P`` (n, K) the probabilities (kept by the
    state of sparse rows: formed inside every product, an ``exp`` an entry took 40% of its
    time); ``V`` (d, K) the direction per class (``(d + 1, K)`` with the intercept column,
    ``ones``). One sweep (:func:`~sketchnewton._kernels.linalg.fused_sweep`): row ``i`` read
    once: ``zd = a_i^T V`` (written to ``Zd[i]`` unless ``Zd`` has no rows: the image not
    kept), ``m = B_i zd``, then ``a_i m^T`` is accumulated; else ``M`` over row chunks, then
    ``A^T M``. Returns (d, K) or (d + 1, K).
    """
    n, K = P.shape
    e = d + 1 if ones else d
    if not fused_sweep(n_chunks, e, indices.shape[0], ratio):
        M = np.empty((n, K))
        for c in prange(n_chunks):
            lo, hi = chunk_range(c, n, n_chunks)
            zd = np.empty(K)
            m = np.empty(K)
            for i in range(lo, hi):
                _multinomial_row(indptr, indices, data, P, sw, V, ones, d, i, zd, Zd, m)
                for k in range(K):
                    M[i, k] = m[k]
        out = csr_rmatmat(indptr, indices, data, M, d, n_chunks, ratio)
        if ones:
            return np.vstack((out, M.sum(axis=0).reshape((1, K))))
        return out
    buf = np.zeros((n_chunks, e, K))
    for c in prange(n_chunks):
        lo, hi = chunk_range(c, n, n_chunks)
        uc = np.uint64(c)
        zd = np.empty(K)
        m = np.empty(K)
        for i in range(lo, hi):
            _multinomial_row(indptr, indices, data, P, sw, V, ones, d, i, zd, Zd, m)
            for p in nonzeros(indptr[i], indptr[i + 1]):
                a = data[p]
                j = np.uint64(indices[p])
                for k in range(K):
                    buf[uc, j, k] += a * m[k]
            if ones:
                for k in range(K):
                    buf[uc, d, k] += m[k]
    return sum_chunks(buf)


@njit(cache=True, inline="always")
def _multinomial_row(indptr, indices, data, P, sw, V, ones, d, i, zd, Zd, m):
    """``zd = a_i^T V`` (plus ``V[d]`` with the intercept column; copied to ``Zd[i]`` when
    ``Zd`` has rows) and ``m = B_i zd`` (K,), ``B_i = sw_i (diag(p_i) - p_i p_i^T)``.

    The sum runs in the scratch row ``zd`` (K,), with the column index unsigned (no
    wraparound test per non-zero), and ``m`` is one row: with the sum in ``Zd[i]``, signed
    indices and ``m`` a (1, K) array the one-sweep product took 142 ms instead of 113 ms
    (n = 4e5, d = 500, 50 per row, K = 8, one thread).
    """
    K = zd.shape[0]
    for k in range(K):
        zd[k] = V[d, k] if ones else 0.0
    for p in nonzeros(indptr[i], indptr[i + 1]):
        a = data[p]
        j = np.uint64(indices[p])
        for k in range(K):
            zd[k] += a * V[j, k]
    s = 0.0
    for k in range(K):
        s += P[i, k] * zd[k]
    for k in range(K):
        m[k] = sw[i] * P[i, k] * (zd[k] - s)
    if Zd.shape[0] > 0:
        for k in range(K):
            Zd[i, k] = zd[k]
