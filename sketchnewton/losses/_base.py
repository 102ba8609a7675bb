"""Pieces shared by the loss families: the Hessian-factor container."""

from dataclasses import dataclass, field

import numpy as np

from .._matrix import DataMatrix

__all__ = ["HessianFactors", "GaussNewtonRoot"]


@dataclass(frozen=True)
class GaussNewtonRoot:
    """A square-root factor ``J = diag(row_scale) A - outer(shift, k)``.

    The Gauss-Newton matrix of the normalized family is
    ``J.T @ J + A.T @ diag(extra_diag) @ A + lam I``; sketching ``J``'s rows
    (``row_scale[i] a_i - shift[i] k``) keeps the approximation PSD.

    Attributes
    ----------
    row_scale : ndarray of shape (n,)
    shift : ndarray of shape (n,)
    k : ndarray of shape (d,)
    extra_diag : ndarray of shape (n,) or None
        Non-negative weights of a PSD term ``A^T diag(extra_diag) A`` (the
        ``w`` regulariser), or None.
    """

    row_scale: np.ndarray
    shift: np.ndarray
    k: np.ndarray
    extra_diag: np.ndarray | None = None


@dataclass(frozen=True)
class HessianFactors:
    """``H = A^T diag(diag) A + K C K^T + lam I``: diagonal plus low rank.

    Attributes
    ----------
    A : DataMatrix of shape (n, d)
    diag : ndarray of shape (n,)
        The diagonal of ``B(x)``; may be negative for the full Hessian.
    K : ndarray of shape (d, r)
        ``A.T @ V`` for the low-rank factor ``V`` (n x r) of ``B(x)``.
    C : ndarray of shape (r, r)
        Symmetric core of the low-rank part (``B = diag + V C V^T``).
    lam : float
        Ridge added to the whole Hessian.
    kind : {"full", "gauss_newton"}
    root : GaussNewtonRoot or None
        Square-root factor, when the Hessian is a Gauss-Newton matrix.
    """

    A: DataMatrix
    diag: np.ndarray
    K: np.ndarray
    C: np.ndarray
    lam: float
    kind: str = "full"
    root: GaussNewtonRoot | None = field(default=None, repr=False)

    @property
    def shape(self):
        return (self.A.d, self.A.d)

    def lowrank(self):
        """The exact low-rank part ``K C K^T`` as a dense (d, d) matrix."""
        return self.K @ self.C @ self.K.T

    def matvec(self, p):
        """Return ``H @ p`` without forming ``H`` (one pass over A)."""
        return self.matvec_with_image(p)[0]

    def matvec_with_image(self, p):
        """Return ``(H @ p, A @ p)``; the image ``A p`` is a by-product of the pass."""
        p = np.asarray(p, dtype=np.float64)
        Ap = self.A.matvec(p)
        out = self.A.rmatvec(self.diag * Ap)
        out += self.K @ (self.C @ (self.K.T @ p))
        out += self.lam * p
        return out, Ap

    def dense(self):
        """Assemble ``H`` exactly as a dense (d, d) matrix.

        Costs ``O(sum_i nnz_i^2)`` for sparse A (row outer products in a numba
        kernel) and one GEMM for dense A.
        """
        H = self.A.gram(self.diag)
        H += self.lowrank()
        H[np.diag_indices_from(H)] += self.lam
        return H
