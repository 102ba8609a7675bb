"""Coordinate descent on the quadratic model of a composite objective (docs/math.md section 9).

The model at ``x`` is ``q(d) = g^T d + 1/2 d^T H d + sum_j w_j |x_j + d_j|``; its
minimiser is the proximal Newton step. Each coordinate is minimised exactly
(soft thresholding). Three forms of ``H``:

* :func:`gram_cd`: a dense ``H`` (the exact or the sketched Gram), ``H d`` kept
  on the working set (glmnet's covariance updates);
* :func:`csc_cd`: ``H = A^T diag(D) A + diag(lam)`` on the data itself, ``A``'s
  columns in CSC, the model's residual ``r = A d`` kept (newGLMNET): a sweep
  costs the non-zeros of the columns it visits;
* :func:`softmax_cd`: the multinomial ``H = sum_i sw_i a_i a_i^T (x) B_i + diag(lam)``
  (``K x K`` row blocks ``B_i = diag(p_i) - p_i p_i^T``) on the data, ``R = A D^T`` and
  ``s_i = <p_i, R_i>`` kept: a coordinate costs its column's non-zeros.

All sweep the working set ``work`` once, then only its non-zero coordinates
until their violations settle (glmnet's active-set cycling), and stop when a
full sweep's violation (the norm of the model's minimum-norm subgradient on
``work``, each coordinate's measured before its update) is at most ``tol``.
"""

import numpy as np
from numba import njit

__all__ = ["gram_cd", "csc_cd", "softmax_cd", "softmax_curvature_diag", "cycle",
           "coordinate_min", "coordinate_violation", "coordinate_step", "class_shifts"]


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
def coordinate_step(z, G, h, w):
    """``(violation, new value)`` of a coordinate at ``z`` with model gradient ``G`` and
    curvature ``h`` (``z`` kept when ``h = 0``)."""
    return coordinate_violation(z, G, w), (coordinate_min(z, G, h, w) if h > 0.0 else z)


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
        s, znew = coordinate_step(z, g[j] + Hd[j], H[j, j], w[j])
        v2 += s * s
        delta = znew - z
        if delta != 0.0:
            d[j] += delta
            for kk in range(nw):  # H symmetric: row j is contiguous
                i = work[kk]
                Hd[i] += delta * H[j, i]
        if znew != 0.0:
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
        s, znew = coordinate_step(z, G, hdiag[j], w[j])
        v2 += s * s
        delta = znew - z
        if delta != 0.0:
            d[j] += delta
            if j == ones:
                for i in range(r.shape[0]):
                    r[i] += delta
            else:
                for q in range(indptr[j], indptr[j + 1]):
                    r[indices[q]] += delta * data[q]
        if znew != 0.0:
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


# -- the multinomial model: K x K row blocks (docs/math.md 9.2, "The multinomial model") -------
@njit(cache=True)
def softmax_curvature_diag(indptr, indices, data, P, sw, ones, dcols):
    """The model's diagonal without the ridge, ``h_kj = sum_i sw_i a_ij^2 p_ik (1 - p_ik)``,
    at coordinate ``k * dcols + j`` (``K dcols``; ``ones``: the column of ones, -1 for none)."""
    n, K = P.shape
    h = np.zeros(K * dcols)
    for j in range(dcols):
        if j == ones:
            for i in range(n):
                for k in range(K):
                    h[k * dcols + j] += sw[i] * P[i, k] * (1.0 - P[i, k])
            continue
        for q in range(indptr[j], indptr[j + 1]):
            i = indices[q]
            a2 = data[q] * data[q] * sw[i]
            for k in range(K):
                h[k * dcols + j] += a2 * P[i, k] * (1.0 - P[i, k])
    return h


@njit(cache=True)
def _softmax_sweep(indptr, indices, data, P, sw, lam, hdiag, g, w, x, ones, dcols, coords, m, d,
                   R, s, active):
    """One sweep over ``coords[:m]`` of the multinomial form (see :func:`softmax_cd`)."""
    v2 = 0.0
    na = 0
    read = 0
    n = R.shape[0]
    for t in range(m):
        c = coords[t]
        k = c // dcols
        j = c - k * dcols
        G = g[c] + lam[c] * d[c]
        if j == ones:
            for i in range(n):
                G += sw[i] * P[i, k] * (R[i, k] - s[i])
            read += n
        else:
            for q in range(indptr[j], indptr[j + 1]):
                i = indices[q]
                G += data[q] * sw[i] * P[i, k] * (R[i, k] - s[i])
            read += indptr[j + 1] - indptr[j]
        z = x[c] + d[c]
        v, znew = coordinate_step(z, G, hdiag[c], w[c])
        v2 += v * v
        delta = znew - z
        if delta != 0.0:
            d[c] += delta
            if j == ones:
                for i in range(n):
                    R[i, k] += delta
                    s[i] += delta * P[i, k]
            else:
                for q in range(indptr[j], indptr[j + 1]):
                    i = indices[q]
                    u = delta * data[q]
                    R[i, k] += u
                    s[i] += u * P[i, k]
        if znew != 0.0:
            active[na] = c
            na += 1
    return v2, na, read


def softmax_cd(indptr, indices, data, P, sw, lam, hdiag, g, w, x, ones, dcols, work, d, R, s,
               tol, max_sweeps, shifts=None):
    """Minimise the model ``H = sum_i sw_i a_i a_i^T (x) B_i + diag(lam)``,
    ``B_i = diag(p_i) - p_i p_i^T`` (``P`` (n, K)), over the coordinates ``work``: coordinate
    ``c = k * dcols + j`` is class ``k``'s coefficient of column ``j`` of ``A`` (CSC; ``ones``:
    an implicit column of ones, -1 for none). ``hdiag``: ``H``'s diagonal.

    With ``R = A D^T`` (n, K), ``D = d.reshape(K, dcols)``, and ``s_i = <p_i, R_i>`` kept,
    ``(H d)_c = sum_i sw_i a_ij p_ik (R_ik - s_i) + lam_c d_c``, and a change ``delta`` of
    ``d_c`` adds ``delta a_ij`` to ``R_ik`` and ``delta a_ij p_ik`` to ``s_i`` on the column's
    non-zeros. ``d``, ``R`` and ``s`` are updated in place. Returns ``(sweeps, violation of
    the last full sweep, non-zeros of A read)``. The sweeps are driven from Python
    (:func:`cycle`): each reads ``K`` values a non-zero, milliseconds on the data this form is
    for, where a call costs microseconds.

    ``shifts``: ``(groups, moved)``, each sweep then followed by the class-shift steps of
    :func:`class_shifts` on the columns whose ``K`` coordinates are the rows of ``groups``
    (m, K); ``moved`` (m) accumulates their shifts, whose image is left out of ``R`` and ``s``
    (the caller adds it): ``R_i - s_i 1`` and so the model's gradient do not change along a
    class shift (``sum_k p_ik = 1``), only the ridge's part, ``lam d``.
    """
    args = (indptr, indices, data, P, sw, lam, hdiag, g, w, x, ones, dcols)
    if shifts is None:
        return cycle(lambda coords, m, active: _softmax_sweep(*args, coords, m, d, R, s, active),
                     work, tol, max_sweeps)
    groups, moved = shifts

    def sweep(coords, m, active):
        out = _softmax_sweep(*args, coords, m, d, R, s, active)
        moved[:] += class_shifts(g[groups] + lam[groups] * d[groups], lam[groups], w[groups], x,
                                 d, groups)
        return out

    return cycle(sweep, work, tol, max_sweeps)


@njit(cache=True)
def class_shifts(G, lam, w, x, d, groups):
    """Class-shift steps: for each row ``c`` of ``groups`` (m, K; the coordinates of one
    column's ``K`` classes), the exact minimiser ``t`` of the model along the column's class
    shift, ``t sum_k G_k + t^2/2 sum_k lam_k + sum_k w_k |x_c + d_c + t|`` (``G``, ``lam``,
    ``w``: (m, K), the model's gradient, curvature along the shift and L1 weights there; the
    softmax model's curvature along a class shift is its ridge). ``d[c] += t`` in place, a
    coordinate the step brings to zero set exactly there; returns the steps ``t`` (m)."""
    m, K = groups.shape
    out = np.zeros(m)
    z = np.empty(K)
    for r in range(m):
        a = 0.0
        b = 0.0
        for k in range(K):
            a += G[r, k]
            b += lam[r, k]
            z[k] = x[groups[r, k]] + d[groups[r, k]]
        t = _shift_minimiser(a, b, z, w[r])
        if t == 0.0:
            continue
        out[r] = t
        for k in range(K):
            c = groups[r, k]
            if z[k] + t == 0.0:
                d[c] = -x[c]
            else:
                d[c] += t
    return out


@njit(cache=True)
def _shift_minimiser(a, b, z, w):
    """A minimiser of ``phi(t) = a t + b/2 t^2 + sum_k w_k |z_k + t|`` (``b >= 0``): 0 when 0
    is one, else found along the breakpoints ``-z_k`` in the descent direction (one of them
    exactly, or between two where ``phi'`` vanishes); 0 when ``phi`` is unbounded below."""
    up = 0.0  # phi'(0+) and phi'(0-)
    down = 0.0
    for k in range(z.size):
        up += w[k] if z[k] >= 0.0 else -w[k]
        down += w[k] if z[k] > 0.0 else -w[k]
    if a + down <= 0.0 <= a + up:
        return 0.0
    sign = 1.0 if a + up < 0.0 else -1.0  # the descent direction
    # along u = sign t >= 0: phi' = sign a + b u + sum_k w_k sign(sign z_k + u)
    zs = sign * z
    slope = sign * a
    for k in range(z.size):
        slope += w[k] if zs[k] >= 0.0 else -w[k]
    order = np.argsort(-zs)  # breakpoints u = -zs_k > 0, ascending
    for q in range(z.size):
        k = order[q]
        if zs[k] >= 0.0:
            continue
        u = -zs[k]
        if b > 0.0 and slope + b * u > 0.0:  # phi' vanishes before this breakpoint
            return sign * (-slope / b)
        if slope + b * u + 2.0 * w[k] >= 0.0:
            return sign * u
        slope += 2.0 * w[k]
    return sign * (-slope / b) if b > 0.0 else 0.0


def cycle(sweep, work, tol, max_sweeps):
    """The sweeps of the module docstring: ``sweep(coords, m, active) -> (sum of squared
    violations, non-zeros found (written to active), non-zeros of A read)`` over ``work``, then
    over its non-zeros until they settle, until a full sweep's violation is at most ``tol``.
    Returns ``(sweeps, violation of the last full sweep, non-zeros read)``."""
    nw = work.shape[0]
    active = np.empty(nw, dtype=np.int64)
    scratch = np.empty(nw, dtype=np.int64)
    sweeps, read, viol = 0, 0, np.inf
    while sweeps < max_sweeps:
        v2, na, rd = sweep(work, nw, active)
        sweeps, read, viol = sweeps + 1, read + rd, float(np.sqrt(v2))
        if viol <= tol:
            break
        while sweeps < max_sweeps and na > 0:
            va, na, rd = sweep(active, na, scratch)
            sweeps, read = sweeps + 1, read + rd
            active, scratch = scratch, active
            if np.sqrt(va) <= 0.5 * tol:
                break
    return sweeps, viol, int(read)
