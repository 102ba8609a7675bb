"""Preconditioned conjugate gradients on Hessian-vector products (docs/math.md section 6.3)."""

import numpy as np

__all__ = ["preconditioned_cg"]


def preconditioned_cg(product, model, b, eta, max_iter):
    """Conjugate gradients on ``H x = b`` preconditioned by ``model``.

    Parameters
    ----------
    product : callable
        ``product(v) -> (H v, A v)``: the Hessian product and the image ``A v``
        it computes on the way (one pass over ``A``).
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
    """
    x = np.zeros_like(b)
    Ax = None
    r = b.copy()
    z = model.solve(r)
    rz = float(r @ z)
    if not rz > 0:
        return x, None, 0, False
    d = z.copy()
    bnorm = np.linalg.norm(b)
    for k in range(1, max_iter + 1):
        Hd, Ad = product(d)
        curv = float(d @ Hd)
        if not curv > 0:
            return x, Ax, k, False
        a = rz / curv
        x += a * d
        Ax = a * Ad if Ax is None else Ax + a * Ad
        r -= a * Hd
        if np.linalg.norm(r) <= eta * bnorm:
            return x, Ax, k, True
        z = model.solve(r)
        rz_new = float(r @ z)
        if not rz_new > 0:  # residual in the preconditioner's null space
            return x, Ax, k, True
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, Ax, max_iter, True
