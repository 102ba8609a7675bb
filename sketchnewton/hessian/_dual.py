"""Exact Newton steps in the n-dimensional (dual, Woodbury) form, for n < p (docs/math.md 8.4).

With ``H = lam I_P + A^T diag(D) A`` on the penalised coordinates (all with
one ridge ``lam > 0``) and ``s = sqrt(|D|)``, ``sigma = sign(D)``::

    H^{-1} y = (y - A^T s (lam diag(sigma) + s A A^T s)^{-1} s A y) / lam,

an (n x n) system: ``A A^T`` is formed once per solve (``O(sum_j nnz_j^2)``
over the columns), each Newton iteration factorizes ``O(n^3 / 3)`` instead
of ``O(p^3 / 3)``, and each solve costs one pass over ``A``. An unpenalised
intercept column is eliminated by a 1 x 1 Schur complement; the normalized
family's rank-2 term by one more Woodbury update (docs/math.md 8.6).
"""

import numpy as np
import scipy.linalg as sla

from ..exceptions import InputError

__all__ = ["DualModel", "dual_supported"]


def dual_supported(factors):
    """``(lam, reason)``: the common ridge of the penalised coordinates, or None and why not."""
    lam = np.atleast_1d(np.asarray(factors.lam, dtype=np.float64))
    penalised = lam[lam > 0]
    if penalised.size == 0:
        return None, "the dual form needs a ridge (lam > 0 or finite C)"
    n_free = lam.size - penalised.size if lam.size > 1 else 0
    if not np.allclose(penalised, penalised[0], rtol=1e-12, atol=0.0):
        return None, "the dual form needs one common ridge"
    if n_free > 1 or (n_free == 1 and lam[-1] != 0.0):
        return None, "the dual form allows one unpenalised coordinate, the last (an intercept)"
    return float(penalised[0]), None


class DualModel:
    """The exact inverse of the Hessian through the (n x n) dual system.

    Parameters
    ----------
    base : DataMatrix of shape (n, d)
        The penalised columns of ``A`` (without the implicit intercept column).
    G : ndarray (n, n)
        ``base @ base.T``.
    factors : HessianFactors
        ``A^T diag(D) A + K C K^T + diag(lam)``; ``A`` is ``base`` or ``[base, 1]``.
    kind : str
    count_sweeps : callable
        ``count_sweeps(k)`` records ``k`` sweeps over ``A`` (two per application, one for the
        intercept's column), for the solver's pass count.
    """

    spectral_error = 0.0
    sketch_size = 0
    null_vectors = None

    def __init__(self, base, G, factors, kind, count_sweeps):
        lam, why = dual_supported(factors)
        if lam is None:
            raise InputError(why)
        self.base, self.lam, self.kind, self.count = base, lam, kind, count_sweeps
        D = np.asarray(factors.diag, dtype=np.float64)
        self.curvature_scale = float(np.max(np.abs(D))) if D.size else 0.0
        self.intercept = factors.A.d == base.d + 1
        rows = np.flatnonzero(D != 0.0)  # rows without curvature add nothing
        self.rows = rows
        self.s = np.sqrt(np.abs(D[rows]))
        sigma = np.sign(D[rows])
        M = self.s[:, None] * G[np.ix_(rows, rows)] * self.s[None, :]
        M[np.diag_indices_from(M)] += lam * sigma
        if np.all(sigma > 0):
            self.fact, self.chol = sla.cho_factor(M, lower=False, check_finite=False), True
        else:
            self.fact, self.chol = sla.lu_factor(M, check_finite=False), False
        if not np.all(np.isfinite(self.fact[0])):
            raise np.linalg.LinAlgError("the dual system is singular")
        self.K, self.C = factors.K, factors.C
        if self.intercept:  # H = [[S, u], [u^T, t0]]
            self.u = base.rmatvec(D)
            self.count(1)
            self.Su = self._S_inv(self.u)
            self.schur = float(D.sum() - self.u @ self.Su)
        if self.K.shape[1]:  # (S + K C K^T)^{-1} by Woodbury
            self.SK = self._S_inv(self.K)
            self.W = np.linalg.inv(np.linalg.inv(self.C) + self.K.T @ self.SK)

    def _solve_n(self, r):
        if self.chol:
            return sla.cho_solve(self.fact, r, check_finite=False)
        return sla.lu_solve(self.fact, r, check_finite=False)

    def _S_inv(self, Y):
        """``(lam I + base^T diag(D) base)^{-1} Y`` for Y (d,) or (d, m): one pass."""
        self.count(2)
        AY = self.base.matmat(Y) if Y.ndim == 2 else self.base.matvec(Y)
        s = self.s if Y.ndim == 1 else self.s[:, None]
        Z = s * self._solve_n(s * AY[self.rows])
        full = np.zeros(AY.shape)
        full[self.rows] = Z
        back = self.base.rmatmat(full) if Y.ndim == 2 else self.base.rmatvec(full)
        return (Y - back) / self.lam

    def solve(self, g):
        if not self.intercept:
            x = self._S_inv(g)
            if self.K.shape[1]:
                x -= self.SK @ (self.W @ (self.K.T @ x))
            return x
        gP, gF = g[:-1], g[-1]
        SgP = self._S_inv(gP)
        xF = (gF - self.u @ SgP) / self.schur
        return np.append(SgP - self.Su * xF, xF)
