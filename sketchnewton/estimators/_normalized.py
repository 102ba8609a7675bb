"""NormalizedRegressor: the normalized (softmax / ResNet) regression of arXiv:2309.13482, and
its deprecated former name SoftmaxRegression."""

import functools
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted

from .._links import LINK_CODES, link_numpy
from .._validation import check_bool, check_choice, check_real
from ..hessian import SKETCHES
from ..losses import NormalizedRegressionLoss
from ._base import FLOAT_DTYPES, SolverParams, linear_predictor, validate

__all__ = ["NormalizedRegressor", "SoftmaxRegression", "NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS",
           "SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS"]

#: the target each generic scikit-learn check fits (scikit-learn 1.9's estimator_checks) when
#: it is no set of non-negative weights over the rows: fit raises the ValueError that
#: NormalizedRegressor raises for such targets, and the check fails at its first fit
_CHECK_TARGETS = {
    "integer class labels (0..2, or 1 and 2)": (
        "check_dtype_object", "check_estimators_dtypes", "check_fit_score_takes_y",
        "check_supervised_y_2d", "check_regressors_int", "check_estimator_sparse_tag",
        "check_estimator_sparse_array", "check_estimator_sparse_matrix"),
    "the iris class labels 0..2 (integers)": (
        "check_positive_only_tag_during_fit", "check_non_transformer_estimators_n_iter"),
    "make_blobs cluster labels 0..2 (integers)": (
        "check_estimators_fit_returns_self", "check_estimators_overwrite_params",
        "check_estimators_pickle", "check_pipeline_consistency", "check_readonly_memmap_input"),
    "X[:, 0] cast to integers (class-label like)": (
        "check_dict_unchanged", "check_dont_overwrite_parameters",
        "check_f_contiguous_array_estimator", "check_fit2d_1feature", "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_methods_sample_order_invariance"),
    "standard normal draws (negative entries)": (
        "check_fit_check_is_fitted", "check_fit_idempotent", "check_n_features_in",
        "check_n_features_in_after_fitting"),
    "a make_regression target or X[:, 0] (negative entries)": (
        "check_regressor_data_not_an_array", "check_regressors_train",
        "check_regressors_no_decision_function"),
}

#: scikit-learn checks that cannot hold for :class:`NormalizedRegressor` because of what the
#: model is; pass as ``check_estimator(..., expected_failed_checks=...)``. The contracts these
#: checks would test are tested with distribution targets in tests/test_estimators_normalized.py.
NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS = {
    check: f"fits y = {target}: no distribution over the rows (non-negative float weights), "
           "which fit rejects by design"
    for target, checks in _CHECK_TARGETS.items() for check in checks}
NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS["check_methods_subset_invariance"] = (
    "predict normalises phi(Ax) over the rows passed together, so predicting on a subset of rows "
    "rescales the outputs (a single row always predicts 1); and its target, X[:, 0] cast to "
    "integers, is no distribution")
#: deprecated name of :data:`NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS`
SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS = NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS


def _refuse(name, problem, labels):
    hint = (" It looks like class labels:" if labels else " For classification") + (
        " use sketchnewton.SketchedLogisticRegression (binary or multinomial logistic "
        "regression, i.e. softmax regression in the usual sense).")
    raise ValueError(
        f"{name} regresses one probability distribution over the rows of X (the normalized "
        "regression phi(Xw) / <phi(Xw), 1> ~ y of arXiv:2309.13482): y must hold non-negative "
        f"float weights of the rows (divided by their sum), but y {problem}.{hint}")


def check_labels(y, name):
    """Refuse string labels (before scikit-learn's validation, which would fail to convert them);
    return a refusal of integer or boolean ones (class labels: a distribution over the rows is a
    float array), to call after the validation of ``X`` (whose errors come first)."""
    kind = getattr(y, "dtype", np.asarray(y if y is not None else np.nan).dtype).kind
    if kind in "OUS":
        try:
            np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            _refuse(name, "holds strings", True)
    if kind in "iub":
        what = "boolean" if kind == "b" else "integer"
        return lambda: _refuse(name, f"has {what} dtype", True)
    return lambda: None


def normalized_target(b, name):
    """``b / sum(b)`` of a validated float target ``b`` (non-negative, positive sum); else the
    ValueError of :func:`check_labels`."""
    if np.any(b < 0):
        _refuse(name, f"has negative entries (smallest {float(np.min(b)):.4g})", False)
    total = float(np.sum(b))
    if not total > 0:
        _refuse(name, "is zero on every row", False)
    return b / total


class NormalizedRegressor(SolverParams, RegressorMixin, BaseEstimator):
    """Normalized (softmax / ResNet) regression ``min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + ...``.

    A regressor of *distributions*: the target ``b`` is one probability
    distribution over the rows, and the model ``phi(A x) / sum_i phi(A x)_i``
    is normalised over the rows of one problem: ``predict(A)`` returns a
    distribution over *the rows given*, so predictions depend on which rows
    are passed together (a single row always predicts 1). ``fit(X, y)`` takes
    ``A`` as ``X`` and ``b`` as ``y``: non-negative float weights of the rows,
    divided by their sum (a distribution already sums to 1; the rows of a
    cross-validation fold then carry the conditional distribution on them,
    so :class:`~sklearn.model_selection.GridSearchCV` works). Class labels
    (integer, boolean or string ``y``) and negative entries raise a
    ValueError; for classification (softmax regression in the usual,
    multinomial logistic sense) use :class:`SketchedLogisticRegression`. The
    loss and driver of :func:`sketchnewton.solve` (Song, Wang, Yin,
    arXiv:2309.13482).

    Parameters
    ----------
    link : {"resnet", "softmax", "cosh", "sinh"}, default="resnet"
    lam : float >= 0, default=0.0
        Ridge strength ``lam/2 ||x||^2``.
    w : float or None, default=None
        The papers' regulariser ``1/2 ||w * A x||^2`` (a scalar here, so that
        the estimator can be cloned and cross-validated; per-row weights are
        available through :func:`sketchnewton.solve`).
    eps : float > 0, default=1e-8
        Absolute bound on the distance ``||x - x*||`` to the minimiser,
        estimated by the Newton step length (docs/math.md 7.1; "Tolerances" in
        :mod:`sketchnewton.estimators`).
    method : {"auto", "exact", "dual", "sketch", "pcg", "cg"}, default="auto"
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}, default="leverage"
    sketch_size : int or None, default=None
    preconditioner : {"auto", "diagonal", "nystrom", "none"}, default="auto"
        Method ``"cg"``: see :func:`sketchnewton.minimize`.
    max_iter : int, default=100
    warm_start : bool, default=False
        Start from the previous fit's ``coef_`` when the number of features
        matches (it must lie in the link's domain).
    random_state : None, int or numpy Generator
    verbose : int, default=0
        0 silent; 1 one line per Newton iteration; 2 also the method choice
        and a summary line.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    n_iter_ : int
    result_ : SolveResult
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string column names (a pandas DataFrame).
    """

    _sketches = SKETCHES

    def __init__(self, link="resnet", lam=0.0, w=None, eps=1e-8, method="auto", sketch="leverage",
                 sketch_size=None, preconditioner="auto", max_iter=100, warm_start=False,
                 random_state=None, verbose=0):
        self.link = link
        self.lam = lam
        self.w = w
        self.eps = eps
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.preconditioner = preconditioner
        self.max_iter = max_iter
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        # the outputs are normalised to sum to 1 over the rows: arbitrary
        # targets (as in scikit-learn's generic regression checks) cannot be
        # fitted with R^2 > 0.5
        tags.regressor_tags.poor_score = True
        return tags

    def fit(self, X: Any, y: ArrayLike) -> "NormalizedRegressor":
        """Solve the normalized regression on all rows of ``X`` (``A``, shape (n, d)) with the
        distribution ``y / sum(y)`` (``b``, shape (n,): non-negative floats)."""
        link = check_choice(self.link, "link", tuple(LINK_CODES))
        lam = check_real(self.lam, "lam", nonnegative=True)
        eps = check_real(self.eps, "eps", positive=True)
        check_real(self.w, "w", nonnegative=True, allow_none=True)
        check_bool(self.warm_start, "warm_start")
        options = self._solver_options()
        refuse_labels = check_labels(y, type(self).__name__)
        A, b = validate(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES, y_numeric=True)
        refuse_labels()
        b = normalized_target(b, type(self).__name__)
        loss = NormalizedRegressionLoss(A, b, link=link, lam=lam, w=self.w)
        res = self._minimize(loss, options, self._warm_start(1, A.shape[1]), eps=eps)
        self.coef_ = res.x
        self.n_iter_ = int(res.nit)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``phi(X coef_) / sum_i phi(X coef_)_i``, normalised over the rows of ``X``."""
        check_is_fitted(self)
        A = validate(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False)
        u = link_numpy(linear_predictor(A, self.coef_).ravel(), self.link)[0]
        return u / u.sum()

    def score(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """R^2 of :meth:`predict` against ``y / sum(y)``: both distributions over the rows of
        ``X`` (so a held-out fold is scored on its conditional distribution)."""
        y = np.asarray(y, dtype=np.float64)
        return r2_score(y / y.sum(), self.predict(X), sample_weight=sample_weight)


def _deprecated():
    warnings.warn("SoftmaxRegression is deprecated and will be removed: it is the normalized "
                  "regression of a distribution over the rows, now named NormalizedRegressor; "
                  "for classification (softmax / multinomial logistic regression) use "
                  "SketchedLogisticRegression", FutureWarning, stacklevel=3)


class SoftmaxRegression(NormalizedRegressor):
    """Deprecated name of :class:`NormalizedRegressor` (a FutureWarning on construction and
    fit). For classification use :class:`SketchedLogisticRegression`."""

    @functools.wraps(NormalizedRegressor.__init__)
    def __init__(self, *args, **kwargs):
        _deprecated()
        super().__init__(*args, **kwargs)

    def fit(self, X: Any, y: ArrayLike) -> "SoftmaxRegression":
        """As :meth:`NormalizedRegressor.fit` (with a FutureWarning)."""
        _deprecated()
        return super().fit(X, y)
