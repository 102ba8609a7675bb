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


@njit(parallel=True, cache=True)
def _shift(z, link):
    n = z.shape[0]
    m = -np.inf
    if link == COSH or link == SINH:
        for i in prange(n):
            m = max(m, abs(z[i]))
    else:
        for i in prange(n):
            m = max(m, z[i])
        if link == RESNET:
            m = max(m, 0.0)
    return m


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
def normalized_pass(z, b, w2, link, f, va, qa):
    """One O(n) pass from ``z = A x`` to everything the loss needs.

    Writes ``f = phi(z) / alpha``, ``va = phi'(z) / alpha`` and
    ``qa = phi''(z) / alpha`` into the given (n,) buffers and returns
    ``(alpha_scaled, log_scale, <f, c>, ||f||^2, ||c||^2, sum w2 z^2)`` with
    ``c = f - b``. ``alpha = alpha_scaled * exp(log_scale)``; a non-positive
    ``alpha_scaled`` means ``alpha <= 0`` (the caller raises) and the buffers
    are then left unnormalised. ``w2`` may have length 0 (no ``w`` term).
    """
    n = z.shape[0]
    m = _shift(z, link)
    em = np.exp(-m)
    alpha = 0.0
    for i in prange(n):
        u, v, q = _link_scaled(z[i], link, m, em)
        f[i] = u
        va[i] = v
        qa[i] = q
        alpha += u
    if not (alpha > 0.0):
        return alpha, m, 0.0, 0.0, 0.0, 0.0
    inv = 1.0 / alpha
    fc = 0.0
    ff = 0.0
    cc = 0.0
    wz = 0.0
    has_w = w2.shape[0] > 0
    for i in prange(n):
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
    return alpha, m, fc, ff, cc, wz


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
