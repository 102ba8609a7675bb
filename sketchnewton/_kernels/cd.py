"""Coordinate descent on the quadratic model of a composite objective (docs/math.md section 9).

The model at ``x`` is ``q(d) = g^T d + 1/2 d^T H d + sum_j w_j |x_j + d_j|``; its
minimiser is the proximal Newton step. Each coordinate is minimised exactly
(soft thresholding). Two forms of ``H``:

* :func:`gram_cd`: a dense ``H`` (the exact or the sketched Gram), ``H d`` kept
  on the working set (glmnet's covariance updates);
* :func:`csc_cd`: ``H = A^T diag(D) A + diag(lam)`` on the data itself, ``A``'s
  columns in CSC, the model's residual ``r = A d`` kept (newGLMNET): a sweep
  costs the non-zeros of the columns it visits.

Both sweep the working set ``work`` once, then only its non-zero coordinates
until their violations settle (glmnet's active-set cycling), and stop when a
full sweep's violation (the norm of the model's minimum-norm subgradient on
``work``, each coordinate's measured before its update) is at most ``tol``.
"""

import numpy as np
from numba import njit

__all__ = ["gram_cd", "csc_cd", "coordinate_min", "coordinate_violation"]


@njit(cache=True)
def coordinate_min(z, G, h, w):
    """The minimiser of ``G (t - z) + h/2 (t - z)^2 + w |t|`` over ``t`` (``h > 0``)."""
    v = z - G / h
    t = w / h
    if v > t:
        return v - t
    if v < -t:
        return v + t
    return 0.0


@njit(cache=True)
def coordinate_violation(z, G, w):
    """The minimum-norm element of ``G + w d|z|``: 0 when ``z`` is optimal for its coordinate."""
    if z > 0.0:
        return G + w
    if z < 0.0:
        return G - w
    a = abs(G) - w
    return a if a > 0.0 else 0.0


@njit(cache=True)
def _gram_sweep(H, g, w, x, coords, m, work, nw, d, Hd, active):
    """One sweep over ``coords[:m]``; returns ``(sum of squared violations, non-zeros found)``
    and writes those non-zero coordinates to ``active``."""
    v2 = 0.0
    na = 0
    for k in range(m):
        j = coords[k]
        z = x[j] + d[j]
        G = g[j] + Hd[j]
        s = coordinate_violation(z, G, w[j])
        v2 += s * s
        h = H[j, j]
        if h > 0.0:
            znew = coordinate_min(z, G, h, w[j])
            delta = znew - z
            if delta != 0.0:
                d[j] += delta
                for kk in range(nw):  # H symmetric: row j is contiguous
                    i = work[kk]
                    Hd[i] += delta * H[j, i]
            z = znew
        if z != 0.0:
            active[na] = j
            na += 1
    return v2, na


@njit(cache=True)
def gram_cd(H, g, w, x, work, d, Hd, tol, max_sweeps):
    """Minimise the model with a dense ``H`` (p, p) over the coordinates ``work``.

    ``d`` and ``Hd`` (length p) are updated in place (start: zeros); ``Hd`` is kept on
    ``work`` only. Returns ``(sweeps, violation of the last full sweep)``.
    """
    nw = work.shape[0]
    active = np.empty(nw, dtype=np.int64)
    scratch = np.empty(nw, dtype=np.int64)
    sweeps = 0
    viol = np.inf
    while sweeps < max_sweeps:
        v2, na = _gram_sweep(H, g, w, x, work, nw, work, nw, d, Hd, active)
        sweeps += 1
        viol = np.sqrt(v2)
        if viol <= tol:
            break
        while sweeps < max_sweeps and na > 0:
            va, nb = _gram_sweep(H, g, w, x, active, na, work, nw, d, Hd, scratch)
            sweeps += 1
            active[:nb] = scratch[:nb]
            na = nb
            if np.sqrt(va) <= 0.5 * tol:
                break
    return sweeps, viol


@njit(cache=True)
def _csc_sweep(indptr, indices, data, D, lam, hdiag, g, w, x, ones, coords, m, d, r, active):
    """One sweep over ``coords[:m]`` of the data form; returns ``(sum of squared violations,
    non-zeros found, non-zeros of A read)``. Column ``ones`` (>= 0) is a column of ones."""
    v2 = 0.0
    na = 0
    read = 0
    for k in range(m):
        j = coords[k]
        G = g[j] + lam[j] * d[j]
        if j == ones:
            n = r.shape[0]
            for i in range(n):
                G += D[i] * r[i]
            read += n
        else:
            for q in range(indptr[j], indptr[j + 1]):
                i = indices[q]
                G += data[q] * D[i] * r[i]
            read += indptr[j + 1] - indptr[j]
        z = x[j] + d[j]
        s = coordinate_violation(z, G, w[j])
        v2 += s * s
        h = hdiag[j]
        if h > 0.0:
            znew = coordinate_min(z, G, h, w[j])
            delta = znew - z
            if delta != 0.0:
                d[j] += delta
                if j == ones:
                    for i in range(r.shape[0]):
                        r[i] += delta
                else:
                    for q in range(indptr[j], indptr[j + 1]):
                        r[indices[q]] += delta * data[q]
            z = znew
        if z != 0.0:
            active[na] = j
            na += 1
    return v2, na, read


@njit(cache=True)
def csc_cd(indptr, indices, data, D, lam, hdiag, g, w, x, ones, work, d, r, tol, max_sweeps):
    """Minimise the model ``H = A^T diag(D) A + diag(lam)`` (``hdiag`` its diagonal) over
    ``work``, ``A`` in CSC (``ones``: index of an implicit column of ones, -1 for none).

    ``d`` (p) and ``r = A d`` (n) are updated in place. Returns ``(sweeps, violation of the
    last full sweep, non-zeros of A read)``.
    """
    nw = work.shape[0]
    active = np.empty(nw, dtype=np.int64)
    scratch = np.empty(nw, dtype=np.int64)
    sweeps = 0
    read = 0
    viol = np.inf
    while sweeps < max_sweeps:
        v2, na, rd = _csc_sweep(indptr, indices, data, D, lam, hdiag, g, w, x, ones, work, nw,
                                d, r, active)
        sweeps += 1
        read += rd
        viol = np.sqrt(v2)
        if viol <= tol:
            break
        while sweeps < max_sweeps and na > 0:
            va, nb, rd = _csc_sweep(indptr, indices, data, D, lam, hdiag, g, w, x, ones, active,
                                    na, d, r, scratch)
            sweeps += 1
            read += rd
            active[:nb] = scratch[:nb]
            na = nb
            if np.sqrt(va) <= 0.5 * tol:
                break
    return sweeps, viol, read
