"""Preconditioned conjugate gradients on Hessian-vector products (docs/math.md section 6.3)."""

import numpy as np
from scipy.linalg.blas import daxpy

__all__ = ["preconditioned_cg", "cg_decrement"]


def preconditioned_cg(product, model, b, eta, max_iter):
    """Conjugate gradients on ``H x = b`` preconditioned by ``model``.

    Parameters
    ----------
    product : callable
        ``product(v) -> (H v, A v)``: the Hessian product and the image ``A v``
        it computes on the way (one pass over ``A``), or ``(H v, None)`` when
        the image is not wanted (then ``Ax`` is None).
    model : HessianModel
        Preconditioner (``model.solve`` applies its (pseudo-)inverse).
    b : ndarray (m,)
    eta : float
        Stop when ``||b - H x|| <= eta ||b||``.
    max_iter : int

    Returns
    -------
    x : ndarray (m,)
    Ax : ndarray, BlockVector or None
        ``A x`` accumulated from the images (None when no product was taken),
        so a line search along ``x`` needs no extra pass.
    iterations : int
    curvature_ok : bool
        False when ``d^T H d <= 0`` was met (``x`` is then the iterate before
        that direction; zero at the first iteration).
    residual : float
        ``r^T M^{-1} r`` of the final residual ``r = b - H x`` (``M`` the model): what
        ``b^T x`` misses of ``b^T H^{-1} b`` is ``r^T H^{-1} r``, at most this over
        ``1 - e`` when ``M`` is a spectral approximation of ``H`` with error ``e``.
    """
    x = np.zeros_like(b)
    Ax = None
    r = b.copy()
    z = model.solve(r)
    rz = float(r @ z)
    if not rz > 0:
        return x, None, 0, False, max(rz, 0.0)
    d = z.copy()
    bnorm = np.linalg.norm(b)
    for k in range(1, max_iter + 1):
        Hd, Ad = product(d)
        curv = float(d @ Hd)
        if not curv > 0:
            return x, Ax, k, False, rz
        a = rz / curv
        # in place (BLAS axpy): at large p the vector work of an iteration is not small next
        # to its Hessian product, and temporaries of length p double it
        x = daxpy(d, x, a=a)
        if Ad is not None:
            Ax = _accumulate(Ax, Ad, a)
        Ad = None  # freed before the next product makes its image (n x K for many classes)
        r = daxpy(Hd, r, a=-a)
        z = model.solve(r)
        rz_new = float(r @ z)
        # converged, or the residual lies in the preconditioner's null space
        if np.linalg.norm(r) <= eta * bnorm or not rz_new > 0:
            return x, Ax, k, True, max(rz_new, 0.0)
        d *= rz_new / rz
        d = daxpy(z, d)
        rz = rz_new
    return x, Ax, max_iter, True, rz


#: rows of an image updated at once by :func:`_accumulate`
_ACCUMULATE_ROWS = 4096


def _accumulate(Ax, Ad, a):
    """``Ax + a Ad`` (``a Ad`` when ``Ax`` is None), in place for arrays, by blocks of rows: no
    temporary of an image's size (an ``n x K`` array for the multinomial loss), and the
    rounding of ``Ax + a * Ad`` (not an FMA's)."""
    if Ax is None:
        return a * Ad
    if isinstance(Ax, np.ndarray) and isinstance(Ad, np.ndarray):
        for lo in range(0, Ax.shape[0], _ACCUMULATE_ROWS):
            Ax[lo:lo + _ACCUMULATE_ROWS] += a * Ad[lo:lo + _ACCUMULATE_ROWS]
        return Ax
    return Ax + a * Ad


#: successive CG increments below 1% of the target after which :func:`cg_decrement` takes its
#: estimate as settled. Two were not enough: unpreconditioned CG near a minimiser can make
#: increments of 1e-9 for four iterations and then of 1e-8 to 9e-8 (dense logistic, columns on
#: scales 1 to 100, lam = 1e5: the estimate stopped at 5e-9, 50 times below the decrement)
SETTLED_INCREMENTS = 4


def cg_decrement(product, model, b, target, max_iter):
    """``b^T H^{-1} b`` by preconditioned CG, to decide whether it is below ``target``.

    CG's iterates increase ``b^T x_k = sum_j alpha_j r_j^T z_j`` monotonically to
    ``b^T H^{-1} b``; the increments of the last iterations estimate what is still
    missing (Hestenes-Stiefel; Strakos and Tichy 2002). CG stops as soon as the
    decrement exceeds ``target`` (the answer is then known: above), or when
    ``SETTLED_INCREMENTS`` successive increments are below ``target / 100``
    (converged to that accuracy), or after ``max_iter`` products. Returns the decrement plus the
    last increment (a margin for what the estimate misses), ``inf`` on negative
    curvature.
    """
    r = b.copy()
    z = model.solve(r)
    rz = float(r @ z)
    if not rz > 0:
        return 0.0
    d, dec, small = z.copy(), 0.0, 0
    step = np.inf
    for _ in range(max_iter):
        Hd = product(d)[0]  # the image is not kept
        curv = float(d @ Hd)
        if not curv > 0:
            return np.inf
        a = rz / curv
        step, dec = a * rz, dec + a * rz
        small = small + 1 if step <= 0.01 * target else 0
        if dec > target or small >= SETTLED_INCREMENTS:
            return dec + step
        r -= a * Hd
        z = model.solve(r)
        rz_new = float(r @ z)
        if not rz_new > 0:
            return dec
        d = z + (rz_new / rz) * d
        rz = rz_new
    return dec + step
