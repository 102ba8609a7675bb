"""Elementwise link kernels for the normalized regression family.

All quantities are returned *scaled* by ``exp(-m)`` for a shift ``m`` chosen
per link so that no exponential overflows for ``|z|`` up to ~1e300 (in
practice, whatever float64 ``z`` the data produce). Everything the loss needs
is a ratio of scaled quantities (``f = u / alpha``, ``v / alpha``,
``q / alpha``), so the scale cancels.
"""

import numpy as np
from numba import njit, prange

RESNET, SOFTMAX, COSH, SINH = 0, 1, 2, 3
LINK_CODES = {"resnet": RESNET, "softmax": SOFTMAX, "exp": SOFTMAX, "cosh": COSH, "sinh": SINH}

__all__ = ["LINK_CODES", "normalized_pass"]


@njit(cache=True)
def _chunk(c, n, n_chunks):
    step = (n + n_chunks - 1) // n_chunks
    lo = c * step
    return lo, min(n, lo + step)


@njit(cache=True, inline="always")
def _link_scaled(zi, link, m, em):
    """Return ``exp(-m) * (phi, phi', phi'')`` at ``zi``; ``em = exp(-m)``."""
    if link == SOFTMAX:
        e = np.exp(zi - m)
        return e, e, e
    if link == RESNET:
        e = np.exp(zi - m)
        return e + zi * em, e + em, e
    ep = np.exp(zi - m)
    en = np.exp(-zi - m)
    ch = 0.5 * (ep + en)
    sh = 0.5 * (ep - en)
    if link == COSH:
        return ch, sh, ch
    return sh, ch, sh


@njit(parallel=True, cache=True)
def normalized_pass(z, b, w2, link, f, va, qa, n_chunks):
    """One O(n) pass from ``z = A x`` to everything the loss needs.

    Writes ``f = phi(z) / alpha``, ``va = phi'(z) / alpha`` and
    ``qa = phi''(z) / alpha`` into the given (n,) buffers and returns
    ``(alpha_scaled, log_scale, <f, c>, ||f||^2, ||c||^2, sum w2 z^2)`` with
    ``c = f - b``. ``alpha = alpha_scaled * exp(log_scale)``; a non-positive
    ``alpha_scaled`` means ``alpha <= 0`` (the caller raises) and the buffers
    are then left unnormalised. ``w2`` may have length 0 (no ``w`` term).
    Reductions run over ``n_chunks`` contiguous blocks with private partial
    sums (deterministic for a fixed ``n_chunks``).
    """
    n = z.shape[0]
    part = np.zeros((n_chunks, 5))
    for c in prange(n_chunks):
        lo, hi = _chunk(c, n, n_chunks)
        m = -np.inf
        if link == COSH or link == SINH:
            for i in range(lo, hi):
                m = max(m, abs(z[i]))
        else:
            for i in range(lo, hi):
                m = max(m, z[i])
        part[c, 0] = m
    m = part[0, 0]
    for c in range(1, n_chunks):
        m = max(m, part[c, 0])
    if link == RESNET:
        m = max(m, 0.0)
    em = np.exp(-m)
    for c in prange(n_chunks):
        lo, hi = _chunk(c, n, n_chunks)
        acc = 0.0
        for i in range(lo, hi):
            u, v, q = _link_scaled(z[i], link, m, em)
            f[i] = u
            va[i] = v
            qa[i] = q
            acc += u
        part[c, 0] = acc
    alpha = 0.0
    for c in range(n_chunks):
        alpha += part[c, 0]
    if not (alpha > 0.0):
        return alpha, m, 0.0, 0.0, 0.0, 0.0
    inv = 1.0 / alpha
    has_w = w2.shape[0] > 0
    for c in prange(n_chunks):
        lo, hi = _chunk(c, n, n_chunks)
        fc = 0.0
        ff = 0.0
        cc = 0.0
        wz = 0.0
        for i in range(lo, hi):
            fi = f[i] * inv
            f[i] = fi
            va[i] *= inv
            qa[i] *= inv
            ci = fi - b[i]
            fc += fi * ci
            ff += fi * fi
            cc += ci * ci
            if has_w:
                wz += w2[i] * z[i] * z[i]
        part[c, 1] = fc
        part[c, 2] = ff
        part[c, 3] = cc
        part[c, 4] = wz
    tot = part[:, 1:].sum(axis=0)
    return alpha, m, tot[0], tot[1], tot[2], tot[3]


@njit(parallel=True, cache=True)
def normalized_weights(z, b, w2, f, va, qa, fc, out):
    """Fill ``out`` (n, 4) with the columns that ``A.T`` multiplies.

    ``out[:, 0] = va (c - <f,c>) + w2 z`` (gradient), ``out[:, 1] = va``,
    ``out[:, 2] = (f + c) va`` and ``out[:, 3] = f va`` (the low-rank factors of
    the full and Gauss-Newton Hessians).
    """
    n = z.shape[0]
    has_w = w2.shape[0] > 0
    for i in prange(n):
        ci = f[i] - b[i]
        r = va[i] * (ci - fc)
        if has_w:
            r += w2[i] * z[i]
        out[i, 0] = r
        out[i, 1] = va[i]
        out[i, 2] = (f[i] + ci) * va[i]
        out[i, 3] = f[i] * va[i]
    return out


@njit(cache=True, inline="always")
def _add_row(acc, indptr, indices, data, i, y0, y1, y2, y3, n_cols):
    """``acc[:, :n_cols] += a_i^T [y0, y1, y2, y3][:n_cols]`` (``n_cols`` 3 or 4)."""
    for p in range(indptr[i], indptr[i + 1]):
        j = indices[p]
        a = data[p]
        acc[j, 0] += a * y0
        acc[j, 1] += a * y1
        acc[j, 2] += a * y2
        if n_cols == 4:
            acc[j, 3] += a * y3


@njit(parallel=True, cache=True)
def normalized_csr_rmatmat(indptr, indices, data, z, b, w2, f, va, fc, d, n_ccols, n_chunks):
    """``A.T @ Y`` for the columns ``Y`` of :func:`normalized_weights`, fused.

    The row weights are computed on the fly, so the (n, 4) array ``Y`` is
    never written or read. ``n_ccols`` is 1 (gradient only) or 4 (gradient
    and the low-rank factors). Returns (d, n_ccols).
    """
    n = indptr.shape[0] - 1
    buf = np.zeros((n_chunks, d, n_ccols))
    step = (n + n_chunks - 1) // n_chunks
    has_w = w2.shape[0] > 0
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        acc = buf[c]
        for i in range(lo, hi):
            ci = f[i] - b[i]
            y0 = va[i] * (ci - fc)
            if has_w:
                y0 += w2[i] * z[i]
            if n_ccols == 1:
                for p in range(indptr[i], indptr[i + 1]):
                    acc[indices[p], 0] += data[p] * y0
            else:
                _add_row(acc, indptr, indices, data, i, y0, va[i], (f[i] + ci) * va[i],
                         f[i] * va[i], 4)
    out = np.zeros((d, n_ccols))
    for c in range(n_chunks):
        out += buf[c]
    return out


@njit(cache=True)
def scaled_link_sums(z, b, w2, link, m, u, v, q):
    """Link values at a *given* scale: the per-block half of a distributed forward pass.

    Writes ``u, v, q = exp(-m) (phi, phi', phi'')(z)`` into the (n,) buffers
    and returns the sums ``[sum u, sum u^2, sum u r, sum u b, sum r^2, sum r b,
    sum b^2, sum w2 z^2]`` with ``r = u - b``. With ``m = log(alpha_hat)`` for
    a guess ``alpha_hat`` of the normaliser, ``u = phi / alpha_hat``, and the
    caller recovers every global quantity from the block sums with
    ``rho = alpha_hat / alpha = 1 / sum u``: ``f = rho u``,
    ``c = rho r + (rho - 1) b`` (no cancellation when ``rho`` is near 1).
    """
    n = z.shape[0]
    em = np.exp(-m)
    has_w = w2.shape[0] > 0
    out = np.zeros(8)
    for i in range(n):
        ui, vi, qi = _link_scaled(z[i], link, m, em)
        u[i] = ui
        v[i] = vi
        q[i] = qi
        ri = ui - b[i]
        out[0] += ui
        out[1] += ui * ui
        out[2] += ui * ri
        out[3] += ui * b[i]
        out[4] += ri * ri
        out[5] += ri * b[i]
        out[6] += b[i] * b[i]
        if has_w:
            out[7] += w2[i] * z[i] * z[i]
    return out


@njit(cache=True, inline="always")
def _scaled_row_weights(i, z, b, w2, u, v, has_w):
    return v[i] * (u[i] - b[i]), v[i] * u[i], v[i], w2[i] * z[i] if has_w else 0.0


@njit(parallel=True, cache=True)
def scaled_weights(z, b, w2, u, v, out):
    """Fill ``out`` (n, 3 or 4) with ``[v r, v u, v, w2 z]``, ``r = u - b``.

    The normaliser-free pieces of the gradient and low-rank columns of
    :func:`normalized_weights` for link values ``u, v`` at a reference scale
    (see :func:`scaled_link_sums`); the ``w2 z`` column only when ``out`` has 4.
    """
    has_w = out.shape[1] == 4
    for i in prange(z.shape[0]):
        y0, y1, y2, y3 = _scaled_row_weights(i, z, b, w2, u, v, has_w)
        out[i, 0] = y0
        out[i, 1] = y1
        out[i, 2] = y2
        if has_w:
            out[i, 3] = y3
    return out


@njit(parallel=True, cache=True)
def scaled_csr_rmatmat(indptr, indices, data, z, b, w2, u, v, d, n_cols, n_chunks):
    """``A.T @ Y`` for the columns ``Y`` of :func:`scaled_weights`, fused (Y never stored).

    ``n_cols`` is 4 when ``w2`` is given, else 3. Returns (d, n_cols).
    """
    n = indptr.shape[0] - 1
    buf = np.zeros((n_chunks, d, n_cols))
    step = (n + n_chunks - 1) // n_chunks
    has_w = n_cols == 4
    for c in prange(n_chunks):
        lo = c * step
        hi = min(n, lo + step)
        acc = buf[c]
        for i in range(lo, hi):
            y0, y1, y2, y3 = _scaled_row_weights(i, z, b, w2, u, v, has_w)
            _add_row(acc, indptr, indices, data, i, y0, y1, y2, y3, n_cols)
    out = np.zeros((d, n_cols))
    for c in range(n_chunks):
        out += buf[c]
    return out
