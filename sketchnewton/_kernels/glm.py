"""Row-wise kernels of the row-separable losses: logistic, softmax cross-entropy, Poisson.

Each pass reads the linear predictor of every row once and writes the
gradient weights ``r`` and the curvature weights ``h`` (or the class
probabilities) the loss needs; see docs/math.md sections 3 and 4.
"""

import numpy as np
from numba import njit, prange

from . import BUFFER_RATIO, chunk_range, nonzeros, sum_chunks
from .linalg import csr_rmatmat, fused_sweep, outer_row

__all__ = ["logistic_pass", "poisson_pass", "multinomial_pass", "multinomial_residual",
           "multinomial_hess_weights", "multinomial_curvature", "csr_multinomial_hessp"]


@njit(parallel=True, cache=True)
def logistic_pass(z, y, sw, r, h):
    """Binary cross-entropy ``sum_i sw_i (log(1 + e^{z_i}) - y_i z_i)``, ``y`` in {0, 1}.

    Writes the gradient weights ``r = sw (p - y)`` and the curvature
    ``h = sw p (1 - p)`` with ``p = sigmoid(z)``; returns the loss. Stable for
    any finite ``z``.
    """
    n = z.shape[0]
    loss = 0.0
    for i in prange(n):
        zi = z[i]
        if zi > 0:
            e = np.exp(-zi)
            lse = zi + np.log1p(e)
            pi = 1.0 / (1.0 + e)
        else:
            e = np.exp(zi)
            lse = np.log1p(e)
            pi = e / (1.0 + e)
        r[i] = sw[i] * (pi - y[i])
        h[i] = sw[i] * pi * (1.0 - pi)
        loss += sw[i] * (lse - y[i] * zi)
    return loss


@njit(parallel=True, cache=True)
def poisson_pass(z, y, sw, r, h):
    """Half the Poisson deviance with log link, ``sum_i sw_i (y_i log(y_i / mu_i) - y_i + mu_i)``.

    ``mu = exp(z)``; each row's term is computed as ``y (log y - z) + (mu - y)``
    (``0 log 0 = 0``), non-negative and zero at a perfect fit, so the loss is
    a meaningful scale for relative tolerances. Writes ``r = sw (mu - y)`` and
    ``h = sw mu``; returns the loss (``inf`` when an ``exp`` overflows, which
    the line search rejects).
    """
    n = z.shape[0]
    loss = 0.0
    for i in prange(n):
        mu = np.exp(z[i])
        yi = y[i]
        r[i] = sw[i] * (mu - yi)
        h[i] = sw[i] * mu
        term = mu - yi
        if yi > 0:
            term += yi * (np.log(yi) - z[i])
        loss += sw[i] * term
    return loss


@njit(parallel=True, cache=True)
def multinomial_pass(Z, y, sw, P):
    """Softmax cross-entropy ``sum_i sw_i (logsumexp(Z_i) - Z_{i, y_i})``.

    ``Z`` (n, K) logits, ``y`` (n,) integer labels in [0, K). Writes the row
    probabilities into ``P``; returns the loss. The gradient weights
    ``sw (P - onehot(y))`` are not stored: :func:`multinomial_residual` forms
    them by row blocks inside the gradient's product.
    """
    n, K = Z.shape
    loss = 0.0
    for i in prange(n):
        m = Z[i, 0]
        for k in range(1, K):
            m = max(m, Z[i, k])
        s = 0.0
        for k in range(K):
            e = np.exp(Z[i, k] - m)
            P[i, k] = e
            s += e
        inv = 1.0 / s
        for k in range(K):
            P[i, k] *= inv
        loss += sw[i] * (m + np.log(s) - Z[i, y[i]])
    return loss


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
def csr_multinomial_hessp(indptr, indices, data, P, sw, V, ones, d, n_chunks, Zd, ratio=BUFFER_RATIO):
    """The multinomial Hessian-vector product ``A^T M``, ``M_i = B_i (A V)_i``.

    ``B_i = sw_i (diag(p_i) - p_i p_i^T)``; ``V`` (d, K) the direction per
    class (``(d + 1, K)`` with the intercept column, ``ones``). One sweep
    (:func:`~sketchnewton._kernels.linalg.fused_sweep`): row ``i`` read once:
    ``zd = a_i^T V`` (written to ``Zd[i]``), ``m = B_i zd``, then ``a_i m^T``
    is accumulated; else ``Zd`` and ``M`` row-parallel, then ``A^T M``.
    Returns (d, K) or (d + 1, K).
    """
    n, K = P.shape
    e = d + 1 if ones else d
    if not fused_sweep(n_chunks, e, indices.shape[0], ratio):
        M = np.empty((n, K))
        for i in prange(n):
            _multinomial_forward(indptr, indices, data, V, ones, d, i, Zd)
            _multinomial_weights(P, sw, Zd, i, M, i)
        out = csr_rmatmat(indptr, indices, data, M, d, n_chunks, ratio)
        if ones:
            return np.vstack((out, M.sum(axis=0).reshape((1, K))))
        return out
    buf = np.zeros((n_chunks, e, K))
    for c in prange(n_chunks):
        lo, hi = chunk_range(c, n, n_chunks)
        m = np.empty((1, K))
        for i in range(lo, hi):
            _multinomial_forward(indptr, indices, data, V, ones, d, i, Zd)
            _multinomial_weights(P, sw, Zd, i, m, 0)
            outer_row(buf, c, indices, data, indptr[i], indptr[i + 1], m, 0)
            if ones:
                buf[c, d] += m[0]
    return sum_chunks(buf)


@njit(cache=True, inline="always")
def _multinomial_weights(P, sw, Zd, i, m, r):
    """``m[r] = B_i Zd[i]`` with ``B_i = sw_i (diag(p_i) - p_i p_i^T)``."""
    K = P.shape[1]
    s = 0.0
    for k in range(K):
        s += P[i, k] * Zd[i, k]
    for k in range(K):
        m[r, k] = sw[i] * P[i, k] * (Zd[i, k] - s)


@njit(cache=True, inline="always")
def _multinomial_forward(indptr, indices, data, V, ones, d, i, Zd):
    """``Zd[i] = a_i^T V`` (plus ``V[d]`` with the intercept column)."""
    K = Zd.shape[1]
    for k in range(K):
        Zd[i, k] = V[d, k] if ones else 0.0
    for p in nonzeros(indptr[i], indptr[i + 1]):
        a = data[p]
        j = indices[p]
        for k in range(K):
            Zd[i, k] += a * V[j, k]
