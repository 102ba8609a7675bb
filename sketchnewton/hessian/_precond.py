"""Matrix-free preconditioners for Newton-CG: no (p x p) matrix (docs/math.md section 8).

* :class:`DiagonalModel`: the Hessian's diagonal (Jacobi), or its per-feature
  ``K x K`` blocks for the multinomial loss; one sweep over ``A``, ``O(p K)``
  memory.
* :class:`NystromModel`: a randomized Nystrom approximation of rank ``r`` of
  the Jacobi-scaled Hessian from one block product ``H Omega`` of ``r``
  vectors (Frangella, Tropp, Udell, SIMAX 2023), ``O(r p)`` memory: the top
  ``r`` eigen-directions are inverted exactly, the rest scaled by the
  ``r``-th eigenvalue, so the preconditioned spectrum lies in
  ``[lambda_min / lambda_r, 1]`` up to the approximation error.

Both only precondition: ``spectral_error`` is None (they are not spectral
approximations of the Hessian, so the driver takes its error estimate from
the conjugate-gradient step instead).
"""

import numpy as np
import scipy.linalg as sla

__all__ = ["DiagonalModel", "IdentityModel", "JacobiScale", "NystromModel", "nystrom_model", "spread"]


def _max_diagonal(diag):
    d = diag if diag.ndim == 1 else np.einsum("jkk->jk", diag)
    return float(d.max()) if d.size else 0.0


def _project(null_space, g):
    return g if null_space is None else g - null_space @ (null_space.T @ g)


def spread(diag):
    """``q90 / q10`` of the positive entries of a (per-feature) diagonal: how unevenly the
    features are scaled (1 when there are none)."""
    positive = diag[diag > 0]
    if positive.size == 0:
        return 1.0
    lo, hi = np.quantile(positive, [0.1, 0.9])
    return float(hi / lo)


class DiagonalModel:
    """``D^{-1} g`` for the Hessian's diagonal ``D`` (p,), or per-feature blocks (d, K, K).

    Blocks are laid out as the multinomial parameters: coordinate ``k * d + j``
    belongs to block ``j``, row ``k``. Singular blocks (the class shift of an
    unpenalised feature) get the smallest scaling on their null directions;
    ``null_space`` (the loss's declared invariances) is projected out of every
    solve.
    """

    spectral_error = None
    sketch_size = 0
    null_vectors = None

    def __init__(self, diag, kind, null_space=None):
        self.kind = kind
        self.null_space = null_space
        self.curvature_scale = _max_diagonal(diag)
        #: ``q90 / q10`` of the (per-feature) diagonal: how unevenly the features are scaled
        self.spread = spread(diag if diag.ndim == 1 else np.trace(diag, axis1=1, axis2=2))
        if diag.ndim == 1:
            top = max(float(np.abs(diag).max()), np.finfo(float).tiny)
            # a coordinate without curvature gets the smallest scaling, not none: its
            # gradient may still be non-zero
            self.inv = np.where(diag > 1e-12 * top, 1.0 / np.maximum(diag, 1e-300), 1.0 / top)
            self.blocks = None
        else:
            w, V = np.linalg.eigh(diag)
            top = max(float(np.abs(w).max()), np.finfo(float).tiny)
            inv = np.where(w > 1e-12 * top, 1.0 / np.maximum(w, 1e-300), 1.0 / top)
            self.blocks = np.einsum("jkm,jm,jlm->jkl", V, inv, V)
            self.inv = None

    def solve(self, g):
        g = _project(self.null_space, g)
        if self.blocks is None:
            out = self.inv * g
        else:
            d, K = self.blocks.shape[0], self.blocks.shape[1]
            out = np.einsum("jkl,jl->jk", self.blocks, g.reshape(K, d).T).T.ravel()
        return _project(self.null_space, out)


class JacobiScale:
    """The symmetric scaling ``S = D^{-1/2}``: of the diagonal (p,), or blockwise
    ``B_j^{-1/2}`` of per-feature ``K x K`` blocks (d, K, K), so that ``S H S`` has a unit
    (block) diagonal. Directions without curvature keep scale 1."""

    def __init__(self, diag):
        if diag.ndim == 1:
            top = max(float(np.abs(diag).max()), np.finfo(float).tiny)
            self.vec = np.where(diag > 1e-12 * top, 1.0 / np.sqrt(np.maximum(diag, 1e-300)), 1.0)
            self.blocks = None
        else:
            w, V = np.linalg.eigh(diag)
            top = max(float(np.abs(w).max()), np.finfo(float).tiny)
            r = np.where(w > 1e-12 * top, 1.0 / np.sqrt(np.maximum(w, 1e-300)), 1.0)
            self.blocks = np.einsum("jkm,jm,jlm->jkl", V, r, V)
            self.vec = None

    def __call__(self, X):
        """``S X`` for X of shape (p,) or (p, r)."""
        if self.blocks is None:
            return self.vec * X if X.ndim == 1 else self.vec[:, None] * X
        d, K = self.blocks.shape[0], self.blocks.shape[1]
        Xr = X.reshape(K, d, -1)
        out = np.einsum("jkl,ljr->kjr", self.blocks, Xr)
        return out.reshape(X.shape)


class NystromModel:
    """Preconditioner ``S (U diag(1/lam) U^T + (I - U U^T) / lam_r) S`` (docs/math.md 8.3).

    ``S`` the Jacobi scaling, ``U lam U^T`` the rank-``r`` Nystrom
    approximation of ``S H S``, ``lam_r`` its smallest kept eigenvalue.
    """

    spectral_error = None
    null_vectors = None

    def __init__(self, U, lam, scale, kind, rank, null_space=None, curvature_scale=np.nan):
        # scale: a JacobiScale
        self.curvature_scale = curvature_scale
        self.U, self.lam, self.scale, self.kind = U, lam, scale, kind
        self.sketch_size = 0
        self.rank = rank
        self.null_space = null_space

    def solve(self, g):
        gs = self.scale(_project(self.null_space, g))
        t = self.U.T @ gs
        out = self.U @ (t / self.lam) + (gs - self.U @ t) / self.lam[-1]
        return _project(self.null_space, self.scale(out))


def nystrom_model(matmat, diag, rank, rng, kind, null_space=None):
    """Randomized Nystrom preconditioner of rank ``rank`` from one block product.

    Parameters
    ----------
    matmat : callable
        ``matmat(V) -> H V`` for ``V`` of shape (p, r).
    diag : ndarray
        The Hessian's diagonal (p,) or per-feature blocks (d, K, K): the (block) Jacobi
        scaling ``S``; the Nystrom approximation is of ``S H S``.
    rank : int
    rng : numpy Generator
    kind : str

    Returns
    -------
    NystromModel

    Notes
    -----
    Frangella, Tropp & Udell's stable algorithm: ``Omega`` an orthonormalised
    Gaussian (p, r), ``Y = S H S Omega``, a shift ``nu = sqrt(p) eps ||Y||``
    for stability, ``B = (Y + nu Omega) chol(Omega^T (Y + nu Omega))^{-1}``,
    ``U, sigma = svd(B)``, ``lam = max(sigma^2 - nu, 0)``.
    """
    scale = JacobiScale(diag)
    p = diag.shape[0] if diag.ndim == 1 else diag.shape[0] * diag.shape[1]
    r = int(min(rank, p))
    Omega = np.linalg.qr(rng.standard_normal((p, r)))[0]
    Y = scale(matmat(scale(Omega)))
    # the stabilising shift of Frangella, Tropp & Udell, with the Frobenius norm (an upper
    # bound of the 2-norm that costs no SVD)
    nu = np.sqrt(p) * np.finfo(float).eps * max(np.linalg.norm(Y), np.finfo(float).tiny)
    Y += nu * Omega
    M = 0.5 * (Omega.T @ Y + Y.T @ Omega)
    try:
        C = sla.cholesky(M, lower=False)
        B = sla.solve_triangular(C, Y.T, trans="T", lower=False).T  # Y C^{-1}
    except np.linalg.LinAlgError:  # rounding made M indefinite: its PSD square root instead
        w, V = np.linalg.eigh(M)
        B = Y @ ((V / np.sqrt(np.maximum(w, nu))) @ V.T)
    U, sigma, _ = np.linalg.svd(B, full_matrices=False)
    lam = np.maximum(sigma ** 2 - nu, 0.0)
    keep = lam > 1e-12 * max(float(lam[0]) if lam.size else 0.0, np.finfo(float).tiny)
    if not np.any(keep):  # a zero Hessian: plain Jacobi
        U, lam = np.zeros((p, 0)), np.ones(1)
    else:
        U, lam = U[:, keep], lam[keep]
    return NystromModel(U, lam, scale, kind, r, null_space, _max_diagonal(diag))


class IdentityModel:
    """No preconditioning: ``g`` itself (with the loss's invariances projected out)."""

    spectral_error = None
    sketch_size = 0
    null_vectors = None

    curvature_scale = np.nan  # unknown: no curvature is computed

    def __init__(self, kind, null_space=None):
        self.kind, self.null_space = kind, null_space

    def solve(self, g):
        return _project(self.null_space, g)
