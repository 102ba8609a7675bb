"""Cross-entropy of linear logistic (binary) and softmax (multinomial) classifiers.

Every Hessian is ``A^T B A`` with a per-sample weight block
``B_i = s_i (diag(p_i) - p_i p_i^T)``: diagonal plus rank one (docs/math.md
section 3). The implementation is shared with the other row-separable losses
(:mod:`sketchnewton.losses._separable`).
"""

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validation import check_int
from ..exceptions import InputError
from . import _multinomial as mn
from ._separable import LOGISTIC, MULTINOMIAL, SeparableLoss, make_separable_block

__all__ = ["LogisticLoss", "MultinomialLoss"]


class LogisticLoss(SeparableLoss):
    """Binary cross-entropy ``sum_i s_i (log(1 + e^{z_i}) - y_i z_i) + lam/2 ||coef||^2``.

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

    family = LOGISTIC
    label_classes = 2

    def __init__(self, A: Any, y: ArrayLike, lam: float = 0.0,
                 sample_weight: ArrayLike | None = None, fit_intercept: bool = False):
        self._setup(self._local(A, y, sample_weight, fit_intercept, 2), lam, fit_intercept, 1)

    def _start_intercept(self, sums):
        p1 = sums[0] / sums[1] if sums[1] > 0 else 0.5
        p1 = min(max(p1, 1e-6), 1 - 1e-6)
        return np.array([np.log(p1 / (1 - p1))])


class MultinomialLoss(SeparableLoss):
    """Softmax cross-entropy ``-sum_i s_i log P[i, y_i] + lam/2 ||W||^2``.

    ``P = softmax(A W^T + intercept)`` row-wise. Parameters are ``x`` of
    length ``K * d_aug`` viewed as ``(K, d_aug)``: row ``k`` is class ``k``'s
    coefficients followed, with ``fit_intercept``, by its intercept.

    The loss is invariant to adding one vector to every class's row along
    unpenalised coordinates (all of them when ``lam = 0``): :meth:`null_space`
    declares these directions, and the driver keeps iterates centred.

    Parameters
    ----------
    A : sparse or dense matrix of shape (n, d)
    y : array-like of shape (n,), integer codes in [0, n_classes)
    n_classes : int >= 2
    lam, sample_weight, fit_intercept : see :class:`LogisticLoss`.
    """

    family = MULTINOMIAL
    softmax_curvature = True

    def __init__(self, A: Any, y: ArrayLike, n_classes: int, lam: float = 0.0,
                 sample_weight: ArrayLike | None = None, fit_intercept: bool = False):
        K = check_int(n_classes, "n_classes", minimum=2)
        self.n_classes = K
        self._setup(self._local(A, y, sample_weight, fit_intercept, K), lam, fit_intercept, K)

    @classmethod
    def from_blocks(cls, blocks, n_classes, lam=0.0, fit_intercept=False):
        loss = cls.__new__(cls)
        loss.n_classes = check_int(n_classes, "n_classes", minimum=2)
        loss._setup(blocks, lam, fit_intercept, loss.n_classes)
        return loss

    @staticmethod
    def make_block(A, index, y, n_classes, sample_weight=None, fit_intercept=False):
        """One row block: ``A`` (n_j, d) with the implicit intercept column, codes, weights."""
        return make_separable_block(A, index, y, sample_weight, MULTINOMIAL, n_classes,
                                    fit_intercept)

    def softmax_blocks(self, state):
        """``(A, P, sw)`` at ``state`` (in memory): the data matrix, the probabilities (n, K;
        those a sparse state keeps after its first Hessian product, else formed from the
        logits: a new array) and the sample weights."""
        if not self.data.in_memory:
            raise InputError("the softmax row blocks need the data in memory (not on Dask)")
        st = self._state(state).handles[0]
        P = st.cache[1] if st.cache[1] is not None else mn.probs(st.Z, st.cache[0])
        return self.A, P, self.sw

    def _start_intercept(self, freq):
        freq = np.maximum(freq / max(freq.sum(), np.finfo(float).tiny), 1e-6)
        b = np.log(freq)
        return b - b.mean()

    def null_space(self, fixed=None):
        """``(1_K (x) e_j) / sqrt(K)`` for every unpenalised coordinate ``j``: the class shift
        (none along a column ``j`` with a coordinate in ``fixed``)."""
        K, d = self.image_width, self.data.d
        free = self._ridge_block == 0.0
        if fixed is not None:
            free &= ~np.asarray(fixed, dtype=bool).reshape(K, d).any(axis=0)
        free = np.flatnonzero(free)
        if free.size == 0:
            return None
        N = np.zeros((K * d, free.size))
        for k in range(K):
            N[k * d + free, np.arange(free.size)] = 1.0 / np.sqrt(K)
        return N
