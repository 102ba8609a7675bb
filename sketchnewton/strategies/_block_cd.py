"""A block step between coordinate-descent rounds on the data (``prox_cd``, the binary form;
docs/math.md 9.2, "Blocks of the most violated coordinates").

On the code corpus at p = 2^20 (lasso, 1% non-zeros, weak penalty: two thirds of the curvature
weights ``D_i`` below 1e-4) the model's violation is carried by a few dense, nearly collinear
columns (86,000 non-zeros of 100,000 rows, coefficients of 10-30): the top 20 coordinates held
89% of its square. Coordinate descent moves them one at a time and converges at the rate of their
coupling: 500 sweeps did not reach relative tolerance 0.1. The block step minimises the model
over the ``BLOCK_SIZE`` most violated coordinates of the support jointly, the others held
fixed (block coordinate descent with the Gauss-Southwell choice of Tseng & Yun 2009): the
block's ``H_BB = A_B^T diag(D) A_B + diag(lam_B)`` is formed from its columns, the block's
model is solved by coordinate descent on ``H_BB`` (glmnet's covariance updates, ``|B|`` a
coordinate) and made exact on its face when that is its minimiser. The model never increases.
"""

import numpy as np
import scipy.sparse as sp

from .._kernels.cd import gram_cd
from .._matrix import DataMatrix
from ._face import _face

__all__ = ["block_step", "BLOCK_SIZE", "BLOCK_SWEEPS"]

#: coordinates of a block (its Gram: ``sum_i nnz_{i,B}^2``, 0.07-0.15 s at 256 on the code
#: corpus, p = 2^20, where a data sweep over the support takes 0.03-0.07 s)
BLOCK_SIZE = 256
#: coordinate-descent sweeps on ``H_BB`` at most (``|B|^2`` each)
BLOCK_SWEEPS = 1000


def _columns(M: sp.csc_matrix, ones: int, cols: np.ndarray) -> sp.csc_matrix:
    """``A`` restricted to ``cols`` (sorted), (n, |cols|): the columns of the CSC ``M``, the
    intercept's column of ones (index ``ones``, the largest) appended when in ``cols``."""
    inner = cols[cols != ones]
    A = M[:, inner]
    if inner.size < cols.size:
        A = sp.hstack([A, sp.csc_matrix(np.ones((M.shape[0], 1)))], format="csc")
    return A


def block_step(M: sp.csc_matrix, ones: int, D: np.ndarray, lam: np.ndarray, g: np.ndarray,
               w: np.ndarray, x: np.ndarray, p: np.ndarray, r: np.ndarray, tol: float) -> int:
    """One block step from the step ``p`` (p,) with image ``r = A p`` (n,), both updated in
    place: the model over the ``BLOCK_SIZE`` most violated coordinates of the support of
    ``x + p`` (and the unpenalised ones), solved to a violation ``tol / 2``.

    ``M`` the CSC ``A`` (``ones``: the index of the intercept's column of ones, -1 for none),
    ``D`` (n,) the curvature weights, ``lam`` (p,) the ridge, ``g`` (p,) the gradient, ``w``
    (p,) the L1 weights. Returns the non-zeros of ``A`` read.
    """
    z = x + p
    S = np.flatnonzero((z != 0) | (w == 0))
    if S.size == 0:
        return 0
    AS = _columns(M, ones, S)
    G = g[S] + lam[S] * p[S] + AS.T @ (D * r)
    zS, wS = z[S], w[S]
    viol = np.where(zS != 0, G + wS * np.sign(zS), np.sign(G) * np.maximum(np.abs(G) - wS, 0.0))
    top = np.argsort(-np.abs(viol), kind="stable")[:BLOCK_SIZE]
    top = np.sort(top)
    B, GB, zB = S[top], G[top], zS[top]
    AB = AS[:, top]
    H = DataMatrix(AB.tocsr(), "A", check_finite=False).gram(D)
    H[np.diag_indices_from(H)] += lam[B]
    d, Hd = np.zeros(B.size), np.zeros(B.size)
    gram_cd(H, GB, w[B], zB, np.arange(B.size, dtype=np.int64), d, Hd, 0.5 * tol, BLOCK_SWEEPS)
    exact = _face(H, GB, w[B], zB, d, Hd)
    if exact is not None:
        d = exact
    p[B] += d
    r += AB @ d
    return AS.nnz + 2 * AB.nnz
