"""Elementwise link kernels for the normalized regression family (docs/math.md section 2).

The link ``phi`` and its derivatives are written once, in :func:`_link_scaled`
(numba), with one numpy twin, :func:`sketchnewton._links.link_numpy`, for reference code,
the estimators' predictions and the tests. All values are *scaled* by ``exp(-m)``
for a shift ``m`` chosen per link (:func:`sketchnewton._links.link_shift`) so that no
exponential overflows; everything the loss needs is a ratio of scaled quantities, so the
scale cancels.

A block of rows is evaluated in two kernels:

* :func:`link_values`: ``u, v, q = exp(-m) (phi, phi', phi'')(z)`` and the
  sums the loss is assembled from (docs/math.md section 2.7). With
  ``normalize=True`` (the block holds every row) the kernel finds the exact
  normaliser itself, so that ``sum u = 1``: the in-memory case, with no
  reference scale.
* :func:`link_weights`: the row weights ``Y`` of the gradient and of the
  low-rank Hessian columns, whose ``A^T Y`` is one transposed product of the
  matrix (``DataMatrix.rmatmat``), either combined (``mode=COMBINED``: the normaliser is
  exact, ``<f, c>`` known) or as the normaliser-free partials of a
  distributed evaluation (``mode=PARTIAL``).
"""

import numpy as np
from numba import njit, prange

from .._links import COSH, RESNET, SINH, SOFTMAX
from . import chunk_range, sum_chunks

#: modes of :func:`link_weights`
COMBINED, PARTIAL = 0, 1
#: number of sums returned by :func:`link_values` (the last one is the scale ``m`` used)
N_SUMS = 9

__all__ = ["COMBINED", "PARTIAL", "link_values", "link_weights", "scaled_exponentials"]


def scaled_exponentials(z, link, m, u, v):
    """Write ``exp(z - m)`` into ``u`` and, for cosh and sinh, ``exp(-z - m)`` into ``v``: the
    exponentials :func:`link_values` expects on entry. numpy's exp is vectorized (about 7x
    numba's scalar one: 0.8 against 5.9 ms for 1e6 numbers, one thread), and at 10 non-zeros a
    row the exponentials cost as much as a sweep of the matrix. (:mod:`.vmath`'s exp inside
    :func:`link_values` instead: 7.7 against 4.9 ms a call at n = 1e6, its loop of three
    outputs does not vectorize.)"""
    np.subtract(z, m, out=u)
    np.exp(u, out=u)
    if link == COSH or link == SINH:
        np.negative(z, out=v)
        v -= m
        np.exp(v, out=v)


@njit(cache=True, inline="always")
def _link_scaled(zi, e1, e2, link, em):
    """Return ``exp(-m) * (phi, phi', phi'')`` at ``zi`` from ``e1 = exp(zi - m)`` and
    ``e2 = exp(-zi - m)`` (cosh, sinh); ``em = exp(-m)``."""
    if link == SOFTMAX:
        return e1, e1, e1
    if link == RESNET:
        return e1 + zi * em, e1 + em, e1
    ch = 0.5 * (e1 + e2)
    sh = 0.5 * (e1 - e2)
    if link == COSH:
        return ch, sh, ch
    return sh, ch, sh


@njit(parallel=True, cache=True)
def link_values(z, b, w2, link, m, normalize, u, v, q, n_chunks):
    """Link values of one block of rows and the sums the loss is assembled from.

    On entry ``u`` holds ``exp(z - m)`` and, for cosh and sinh, ``v`` holds
    ``exp(-z - m)`` (:func:`scaled_exponentials`). Writes ``u, v, q = exp(-m)
    (phi, phi', phi'')(z)`` into the (n,) buffers and returns ``[S_u, S_uu,
    S_ur, S_ub, S_rr, S_rb, S_bb, S_wz, m]``: the sums of ``u``, ``u^2``,
    ``u r``, ``u b``, ``r^2``, ``r b``, ``b^2`` and ``w2 z^2`` with
    ``r = u - b``, and the scale ``m`` used.

    ``normalize=False``: ``m`` is the given reference scale (the log of the
    normaliser at the last evaluated point: docs/math.md section 2.4).
    ``normalize=True``: ``m`` is the shift of :func:`link_shift`; the kernel
    computes the normaliser ``alpha`` and divides the values by it, so that
    ``u = f = phi / alpha`` exactly, ``S_u = 1`` and the returned ``m`` is
    ``m + log(alpha)``. A non-positive ``alpha`` is returned as ``S_u <= 0``
    (the buffers are then unnormalised and the caller raises). ``w2`` may
    have length 0 (no ``w`` term). Reductions run over ``n_chunks``
    contiguous blocks with private partial sums (deterministic for a fixed
    ``n_chunks``).
    """
    n = z.shape[0]
    part = np.zeros((n_chunks, 8))
    out = np.zeros(N_SUMS)
    inv = 1.0
    em = np.exp(-m)
    for c in prange(n_chunks):
        lo, hi = chunk_range(c, n, n_chunks)
        acc = 0.0
        for i in range(lo, hi):
            ui, vi, qi = _link_scaled(z[i], u[i], v[i], link, em)
            u[i] = ui
            v[i] = vi
            q[i] = qi
            acc += ui
        part[c, 0] = acc
    if normalize:
        alpha = part[:, 0].sum()
        if not (alpha > 0.0):
            out[0] = alpha
            out[8] = m
            return out
        inv = 1.0 / alpha
        m = m + np.log(alpha)
    has_w = w2.shape[0] > 0
    for c in prange(n_chunks):
        lo, hi = chunk_range(c, n, n_chunks)
        s_u = 0.0
        s_uu = 0.0
        s_ur = 0.0
        s_ub = 0.0
        s_rr = 0.0
        s_rb = 0.0
        s_bb = 0.0
        s_wz = 0.0
        for i in range(lo, hi):
            ui = u[i]
            if normalize:
                ui *= inv
                u[i] = ui
                v[i] *= inv
                q[i] *= inv
            bi = b[i]
            ri = ui - bi
            s_u += ui
            s_uu += ui * ui
            s_ur += ui * ri
            s_ub += ui * bi
            s_rr += ri * ri
            s_rb += ri * bi
            s_bb += bi * bi
            if has_w:
                s_wz += w2[i] * z[i] * z[i]
        part[c, 0] = s_u
        part[c, 1] = s_uu
        part[c, 2] = s_ur
        part[c, 3] = s_ub
        part[c, 4] = s_rr
        part[c, 5] = s_rb
        part[c, 6] = s_bb
        part[c, 7] = s_wz
    out[:8] = sum_chunks(part)
    if normalize:
        out[0] = 1.0  # u sums to one by construction; rho = 1 exactly
    out[8] = m
    return out


@njit(cache=True, inline="always")
def _row_weights(i, z, b, w2, u, v, fc, mode, has_w):
    """Row ``i``'s four weights: COMBINED ``[v (c - fc) + w2 z, v, (u + c) v, u v]`` with
    ``c = u - b`` (``u`` is ``f`` there); PARTIAL ``[v r, v u, v, w2 z]`` with ``r = u - b``."""
    ri = u[i] - b[i]
    wz = w2[i] * z[i] if has_w else 0.0
    if mode == COMBINED:
        return v[i] * (ri - fc) + wz, v[i], (u[i] + ri) * v[i], u[i] * v[i]
    return v[i] * ri, v[i] * u[i], v[i], wz


@njit(cache=True, inline="always")
def _fill_weights(i, z, b, w2, u, v, fc, mode, has_w, out, r):
    """``out[r, :k]`` = the first ``k`` row weights of row ``i`` (:func:`_row_weights`)."""
    k = out.shape[1]
    y0, y1, y2, y3 = _row_weights(i, z, b, w2, u, v, fc, mode, has_w)
    out[r, 0] = y0
    if k > 1:
        out[r, 1] = y1
        out[r, 2] = y2
    if k > 3:
        out[r, 3] = y3


@njit(parallel=True, cache=True)
def link_weights(z, b, w2, u, v, fc, mode, out):
    """Fill ``out`` (n, k) with the first ``k`` row weights of :func:`_row_weights`.

    Their transposed product ``A^T out`` is the caller's: with ``k = 4`` (a 32-byte row of the
    product's output, which the scatter vectorizes) it ran 1.1-1.6x faster than a kernel that
    computed three weights row by row inside the scatter (measured at n = 4e5, d = 500, 50
    non-zeros per row and n = 1e6, d = 200, 10 per row, one thread).
    """
    has_w = w2.shape[0] > 0
    for i in prange(z.shape[0]):
        _fill_weights(i, z, b, w2, u, v, fc, mode, has_w, out, i)
    return out
