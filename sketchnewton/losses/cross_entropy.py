"""Cross-entropy of linear logistic (binary) and softmax (multinomial) classifiers.

The intercept, when fitted, is an extra column of ones appended to ``A``
(implicitly: :class:`~sketchnewton._matrix.InterceptMatrix` handles it inside
every product, ``A`` is never copied) and excluded from the ridge penalty, so
that every Hessian is again ``A^T B A`` with a per-sample weight block
``B_i = sw_i (diag(p_i) - p_i p_i^T)``: diagonal plus rank one.
"""

from dataclasses import dataclass

import numpy as np

from .._kernels.classification import logistic_pass, multinomial_hess_weights, multinomial_pass
from .._matrix import DataMatrix, InterceptMatrix, as_data_matrix
from .._validation import check_finite_scalar, check_vector
from ..exceptions import InputError
from ._base import HessianFactors

__all__ = ["LogisticLoss", "MultinomialLoss", "BlockHessianFactors"]


def _augment(A, fit_intercept):
    A = as_data_matrix(A)
    return InterceptMatrix(A) if fit_intercept else A


def _check_labels(y, n, n_classes):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"y must have shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
            raise InputError("y must hold integer class codes 0..K-1")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        raise InputError(f"class codes must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    return y


class _CrossEntropyBase:
    def __init__(self, A, lam, sample_weight, fit_intercept):
        self.fit_intercept = bool(fit_intercept)
        self.A = _augment(A, self.fit_intercept)
        self.n_features = self.A.d - self.fit_intercept
        self.lam = check_finite_scalar(lam, "lam", nonnegative=True)
        if sample_weight is None:
            self.sw = np.ones(self.A.n)
        else:
            self.sw = check_vector(sample_weight, "sample_weight", self.A.n)
            if np.any(self.sw < 0):
                raise InputError("sample_weight must be non-negative")
        ridge = np.full(self.A.d, self.lam)
        if self.fit_intercept:
            ridge[-1] = 0.0
        self._ridge_block = ridge

    def _check_x(self, x):
        return check_vector(x, "x", self.n_params)


class LogisticLoss(_CrossEntropyBase):
    """Binary cross-entropy ``sum_i sw_i log(1 + exp(-s_i z_i)) + lam/2 ||coef||^2``.

    Parameters
    ----------
    A : sparse or dense matrix of shape (n, d)
    y : array-like of shape (n,) with values in {0, 1}
    lam : float >= 0
        Ridge on the coefficients (not the intercept).
    sample_weight : array-like of shape (n,), optional
    fit_intercept : bool
        If True the parameters are ``[coef (d), intercept]``.
    """

    def __init__(self, A, y, lam=0.0, sample_weight=None, fit_intercept=False):
        super().__init__(A, lam, sample_weight, fit_intercept)
        self.y = _check_labels(y, self.A.n, 2).astype(np.float64)

    @property
    def n_params(self):
        return self.A.d

    def _forward(self, x):
        z = self.A.matvec(x)
        p, r = np.empty_like(z), np.empty_like(z)
        fun = logistic_pass(z, self.y, self.sw, p, r)
        fun += 0.5 * float(self._ridge_block @ (x * x))
        return fun, p, r

    def loss(self, x):
        return self._forward(self._check_x(x))[0]

    def loss_gradient(self, x):
        x = self._check_x(x)
        fun, _, r = self._forward(x)
        return fun, self.A.rmatvec(r) + self._ridge_block * x

    def gradient(self, x):
        return self.loss_gradient(x)[1]

    def hessian_factors(self, x, kind="full"):
        """``A^T diag(sw p (1 - p)) A + ridge``; the Hessian is its own Gauss-Newton matrix."""
        x = self._check_x(x)
        _, p, _ = self._forward(x)
        empty = np.zeros((self.A.d, 0))
        return HessianFactors(self.A, self.sw * p * (1 - p), empty, np.zeros((0, 0)),
                              self._ridge_block, kind)

    def hessp(self, x, v, kind="full"):
        return self.hessian_factors(x, kind).matvec(v)

    def hessian(self, x, kind="full"):
        return self.hessian_factors(x, kind).dense()


@dataclass(frozen=True)
class BlockHessianFactors:
    """Multinomial Hessian ``sum_i B_i (x) a_i a_i^T + ridge``, ``B_i = sw_i (diag(p_i) - p_i p_i^T)``.

    Parameters are laid out as ``x.reshape(K, d)`` (one row per class), so
    block ``(k, l)`` of the Hessian is ``A^T diag(sw (p_k delta_kl - p_k p_l)) A``.

    Attributes
    ----------
    A : DataMatrix (n, d)
    P : ndarray (n, K)  class probabilities
    sw : ndarray (n,)
    ridge : ndarray (K * d,)
    """

    A: DataMatrix
    P: np.ndarray
    sw: np.ndarray
    ridge: np.ndarray

    @property
    def shape(self):
        m = self.P.shape[1] * self.A.d
        return (m, m)

    def matvec(self, v):
        K, d = self.P.shape[1], self.A.d
        V = np.asarray(v, dtype=np.float64).reshape(K, d)
        Zd = self.A.matmat(V.T)
        M = multinomial_hess_weights(self.P, self.sw, Zd, np.empty_like(Zd))
        return self.A.rmatmat(M).T.ravel() + self.ridge * v

    def dense(self):
        K, d = self.P.shape[1], self.A.d
        H = np.zeros((K * d, K * d))
        for k in range(K):
            for l in range(k, K):
                wkl = -self.sw * self.P[:, k] * self.P[:, l]
                if k == l:
                    wkl += self.sw * self.P[:, k]
                blk = self.A.gram(wkl)
                H[k * d:(k + 1) * d, l * d:(l + 1) * d] = blk
                H[l * d:(l + 1) * d, k * d:(k + 1) * d] = blk
        H[np.diag_indices_from(H)] += self.ridge
        return H


class MultinomialLoss(_CrossEntropyBase):
    """Softmax cross-entropy ``-sum_i sw_i log P[i, y_i] + lam/2 ||W||^2``.

    ``P = softmax(A W^T + intercept)`` row-wise. Parameters are ``x`` of
    length ``K * d_aug`` viewed as ``(K, d_aug)``: row ``k`` is class ``k``'s
    coefficients followed, with ``fit_intercept``, by its intercept.

    Parameters
    ----------
    A : sparse or dense matrix of shape (n, d)
    y : array-like of shape (n,), integer codes in [0, n_classes)
    n_classes : int >= 2
    lam, sample_weight, fit_intercept : see :class:`LogisticLoss`.
    """

    def __init__(self, A, y, n_classes, lam=0.0, sample_weight=None, fit_intercept=False):
        super().__init__(A, lam, sample_weight, fit_intercept)
        if int(n_classes) < 2:
            raise InputError(f"n_classes must be >= 2, got {n_classes}")
        self.n_classes = int(n_classes)
        self.y = _check_labels(y, self.A.n, self.n_classes)
        self._ridge = np.tile(self._ridge_block, self.n_classes)

    @property
    def n_params(self):
        return self.n_classes * self.A.d

    def _forward(self, x):
        W = x.reshape(self.n_classes, self.A.d)
        Z = self.A.matmat(W.T)
        P, R = np.empty_like(Z), np.empty_like(Z)
        fun = multinomial_pass(Z, self.y, self.sw, P, R)
        fun += 0.5 * float(self._ridge @ (x * x))
        return fun, P, R

    def loss(self, x):
        return self._forward(self._check_x(x))[0]

    def loss_gradient(self, x):
        x = self._check_x(x)
        fun, _, R = self._forward(x)
        return fun, self.A.rmatmat(R).T.ravel() + self._ridge * x

    def gradient(self, x):
        return self.loss_gradient(x)[1]

    def hessian_factors(self, x, kind="full"):
        """Block factors; the Hessian is its own Gauss-Newton matrix."""
        x = self._check_x(x)
        _, P, _ = self._forward(x)
        return BlockHessianFactors(self.A, P, self.sw, self._ridge)

    def hessp(self, x, v, kind="full"):
        return self.hessian_factors(x, kind).matvec(v)

    def hessian(self, x, kind="full"):
        return self.hessian_factors(x, kind).dense()
