"""SketchedPoissonRegressor: the objective of scikit-learn's PoissonRegressor(alpha)."""

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import d2_tweedie_score
from sklearn.utils.validation import check_is_fitted

from .. import distributed
from .._matrix import DataMatrix
from .._validation import check_bool, check_real
from ..losses import PoissonLoss
from ._base import (
    FLOAT_DTYPES,
    SolverParams,
    check_l1_ratio,
    dask_weight_scale,
    l1_weights,
    drop_feature_names,
    linear_predictor,
    sample_weights,
    validate,
    weight_scale,
)
from ._coef_table import CoefTableMixin

__all__ = ["SketchedPoissonRegressor"]


class SketchedPoissonRegressor(SolverParams, CoefTableMixin, RegressorMixin, BaseEstimator):
    """Poisson regression with the log link by sketched Newton.

    Minimises ``1/(2 sum_i s_i) sum_i s_i deviance(y_i, exp(x_i^T coef + b)) +
    alpha ((1 - l1_ratio)/2 ||coef||^2 + l1_ratio ||coef||_1)``, the objective of
    ``sklearn.linear_model.PoissonRegressor(alpha)`` (``l1_ratio=0``) and of glum's
    ``GeneralizedLinearRegressor(family="poisson", alpha, l1_ratio)``; internally
    :class:`~sketchnewton.losses.PoissonLoss` with ``lam = alpha (1 - l1_ratio) sum_i s_i``
    and the L1 weight ``alpha l1_ratio sum_i s_i`` (same minimiser; docs/math.md
    sections 4 and 9).

    Parameters
    ----------
    alpha : float >= 0, default=1.0
        Penalty strength (not on the intercept); 0 for no penalty.
    l1_ratio : float in [0, 1], default=0.0
        The elastic-net mix (glum's): 0 the ridge penalty, 1 the lasso.
    fit_intercept : bool, default=True
    tol : float > 0, default=1e-8
        Relative objective accuracy by the Newton decrement (docs/math.md 7.2;
        "Tolerances" in :mod:`sketchnewton.estimators`).
    max_iter, method, sketch, sketch_size, preconditioner, random_state
        As :class:`SketchedLogisticRegression`.
    warm_start : bool, default=False
        Start from the previous fit's ``coef_`` and ``intercept_`` when the
        number of features matches (as scikit-learn's PoissonRegressor).
    verbose : int, default=0
        0 silent; 1 one line per Newton iteration; 2 also the method choice
        and a summary line.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : ndarray of shape (1,)
    result_ : SolveResult
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string column names (a pandas DataFrame).

    Notes
    -----
    Threads: see "Threads" in :mod:`sketchnewton.estimators`. Standard errors:
    :meth:`coef_table`.
    """

    def __init__(self, alpha=1.0, fit_intercept=True, tol=1e-8, max_iter=100, method="auto",
                 sketch="leverage", sketch_size=None, preconditioner="auto", warm_start=False,
                 random_state=None, verbose=0, l1_ratio=0.0):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.preconditioner = preconditioner
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.positive_only = True
        return tags

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> "SketchedPoissonRegressor":
        """Fit the model to non-negative targets ``y`` (counts or rates); pandas DataFrames and
        dask arrays accepted as for :meth:`SketchedLogisticRegression.fit`."""
        alpha = check_real(self.alpha, "alpha", nonnegative=True)
        r = check_l1_ratio(self.l1_ratio)
        check_bool(self.fit_intercept, "fit_intercept")
        check_bool(self.warm_start, "warm_start")
        options, tol = self._check_solver()
        if distributed.is_dask_collection(X) or distributed.is_dask_collection(y):
            sample_weight, scale = dask_weight_scale(sample_weight)  # into (0, 1], as in memory
            sw_total = self._dask_weight_total(X, sample_weight)
            loss = distributed.poisson_loss(X, y, lam=alpha * (1.0 - r) * sw_total,
                                            sample_weight=sample_weight,
                                            fit_intercept=self.fit_intercept)
            self.n_features_in_ = loss.n_features
            drop_feature_names(self)
        else:
            loss, _ = self._loss(*validate(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES,
                                           y_numeric=True),
                                 sample_weight, alpha, r)
            sw_total = float(loss.sw.sum())
        d = loss.n_features
        res = self._minimize(loss, options, self._warm_start(1, d), tol=tol,
                             l1=l1_weights(loss, alpha * r * sw_total))
        self.coef_ = res.x[:d].copy()
        self.intercept_ = float(res.x[d]) if self.fit_intercept else 0.0
        return self

    def _loss(self, X, y, sample_weight, alpha, l1_ratio=0.0):
        """``(loss, scale)`` of validated in-memory data (weights scaled into (0, 1])."""
        if np.any(y < 0):
            raise ValueError("Some value(s) of y are out of the valid range of the loss: "
                             "the Poisson loss needs y >= 0")
        sw, scale = weight_scale(sample_weights(sample_weight, X.shape[0]))
        if self.fit_intercept and not np.any((y > 0) & (sw > 0)):
            # the loss decreases to its infimum 0 as the intercept goes to -inf: no minimiser
            raise ValueError("every target y with a positive weight is 0: a Poisson model with "
                             "an intercept has no minimiser (the intercept tends to -inf); fit "
                             "without an intercept, or check y")
        loss = PoissonLoss(DataMatrix(X, "X", check_finite=False), y,
                           lam=alpha * (1.0 - l1_ratio) * sw.sum(),
                           sample_weight=sw, fit_intercept=self.fit_intercept)
        return loss, scale

    def _training_loss(self, X, y, sample_weight):
        """The fitted objective on the training data (for :meth:`coef_table`)."""
        if check_l1_ratio(self.l1_ratio) > 0:
            raise ValueError("standard errors of an L1-penalised fit (l1_ratio > 0) are not "
                             "defined by the Hessian: refit with l1_ratio=0")
        X, y = validate(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES, y_numeric=True,
                        reset=False)
        return self._loss(X, y, sample_weight, check_real(self.alpha, "alpha", nonnegative=True))

    @staticmethod
    def _dask_weight_total(X, sample_weight):
        """``sum_i s_i`` (``n`` without weights): a dask ``sample_weight`` is summed by dask, an
        in-memory one (array or list) by numpy; its shape is checked when the blocks are built."""
        if sample_weight is None:
            return float(X.shape[0])
        if distributed.is_dask_collection(sample_weight):
            return float(sample_weight.sum().compute())
        return float(np.sum(np.asarray(sample_weight, dtype=np.float64)))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted means ``exp(X coef_ + intercept_)``."""
        check_is_fitted(self)
        X = validate(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False)
        return np.exp(linear_predictor(X, self.coef_).ravel() + self.intercept_)

    def score(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """D^2, the fraction of Poisson deviance explained (as scikit-learn's PoissonRegressor)."""
        return d2_tweedie_score(y, self.predict(X), sample_weight=sample_weight, power=1)
