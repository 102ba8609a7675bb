"""scikit-learn estimators on the one Newton driver.

:class:`SketchedLogisticRegression` (binary and multinomial),
:class:`SketchedPoissonRegressor` and :class:`SoftmaxRegression` (the
normalized regression). They follow scikit-learn's estimator contract
(parameters stored verbatim by ``__init__``, validated in ``fit``; fitted
attributes end in ``_``), so they work with ``clone``, ``Pipeline``,
``GridSearchCV`` and pickle; only scikit-learn's public API is used.
"""

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import d2_tweedie_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import softmax
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import distributed
from ._kernels.links import LINK_CODES, link_numpy
from ._matrix import DataMatrix
from ._validation import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_sparse_structure,
    check_vector,
)
from .api import minimize, solve
from .exceptions import InputError
from .hessian import PRECONDITIONERS, ROW_SAMPLERS, SKETCHES
from .losses import LogisticLoss, MultinomialLoss, PoissonLoss
from .newton import METHODS

__all__ = ["SoftmaxRegression", "SketchedLogisticRegression", "SketchedPoissonRegressor",
           "SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS"]

#: scikit-learn checks that cannot hold for :class:`SoftmaxRegression` because of
#: what the model is; pass as ``check_estimator(..., expected_failed_checks=...)``.
SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance":
        "predict normalises phi(Ax) over the rows passed together, so predicting on a "
        "subset of rows rescales the outputs (a single row always predicts 1)",
}


def _validate(estimator, X, *args, **kwargs):
    """scikit-learn's ``validate_data`` after a check of a sparse ``X``'s index structure:
    scipy's conversion to CSR trusts the indices of CSC, BSR and COO input, and corrupt ones
    would crash the interpreter instead of raising."""
    if sp.issparse(X):
        check_sparse_structure(X, "X")
    return validate_data(estimator, X, *args, **kwargs)


def _weight_scale(sw):
    """``(sw / s, s)`` with ``s = max(sw)``: the solver works with weights in (0, 1] and a ridge
    divided by ``s`` (the same minimiser), so that huge weights (1e200) do not overflow the
    squares of the gradient and Hessian."""
    scale = float(sw.max())
    return (sw / scale, scale) if scale > 0 and scale != 1.0 else (sw, 1.0)


def _sample_weight(sample_weight, n):
    """Validated non-negative sample weights (ones when None)."""
    if sample_weight is None:
        return np.ones(n)
    arr = np.asarray(sample_weight)
    if arr.ndim == 0:
        return np.full(n, check_real(arr.item(), "sample_weight", nonnegative=True))
    sw = check_vector(arr, "sample_weight", n)
    if np.any(sw < 0):
        raise InputError("sample_weight must be non-negative")
    if not np.any(sw > 0):
        raise InputError("sample_weight is zero for every sample: nothing to fit")
    return sw


class _SolverParams:
    """Validation of the solver parameters shared by the estimators."""

    def _check_solver(self):
        check_int(self.max_iter, "max_iter", minimum=0)
        check_choice(self.method, "method", METHODS)
        check_choice(self.sketch, "sketch", ROW_SAMPLERS)
        check_choice(self.preconditioner, "preconditioner", ("auto",) + PRECONDITIONERS)
        check_int(self.sketch_size, "sketch_size", minimum=1, allow_none=True)
        check_int(self.verbose, "verbose", minimum=0)
        return check_real(self.tol, "tol", positive=True)

    def _minimize(self, loss, tol):
        res = minimize(loss, tol=tol, method=self.method, sketch=self.sketch,
                       sketch_size=self.sketch_size, preconditioner=self.preconditioner,
                       max_iter=self.max_iter,
                       random_state=self.random_state, verbose=self.verbose)
        self.n_iter_ = np.array([res.nit], dtype=np.int32)
        self.result_ = res
        return res


# -----------------------------------------------------------------------------------------------
class SketchedLogisticRegression(_SolverParams, ClassifierMixin, BaseEstimator):
    """L2-regularised logistic (binary) and softmax (multinomial) regression by sketched Newton.

    Minimises ``C * sum_i sw_i loss_i + 1/2 ||W||^2`` (intercept not
    penalised), the objective of ``sklearn.linear_model.LogisticRegression(C=C)``
    with the l2 penalty; two classes give binary logistic regression, more
    give multinomial (softmax) cross-entropy. Internally the losses
    :class:`~sketchnewton.losses.LogisticLoss` /
    :class:`~sketchnewton.losses.MultinomialLoss` with ``lam = 1/C`` are
    minimised (same minimiser; docs/math.md section 3).

    Parameters
    ----------
    C : float > 0, default=1.0
        Inverse regularisation strength.
    fit_intercept : bool, default=True
    tol : float > 0, default=1e-8
        Stop when half the squared Newton decrement of a unit step is below
        ``tol`` times the objective (relative objective accuracy ~``tol``
        before the last step, much better after it).
    max_iter : int, default=100
        Newton iterations.
    method : {"auto", "exact", "dual", "pcg", "cg", "sketch"}, default="auto"
        ``"exact"``: exact dense Hessian (``(dK) x (dK)`` for ``K`` classes).
        ``"dual"``: the exact step through the (n x n) dual system (binary,
        n < d, finite ``C``). ``"pcg"``: conjugate gradients on exact
        Hessian-vector products, preconditioned by a Hessian built from
        leverage-sampled rows (n >> d). ``"cg"``: the same with a
        preconditioner that needs no (dK x dK) matrix (``preconditioner``;
        many features). ``"sketch"``: the sketched Hessian's step (linear
        convergence). ``"auto"``: :func:`~sketchnewton.newton.choose_method`
        (cost model; the choice is ``result_.method``).
    sketch : {"leverage", "uniform"}, default="leverage"
        Row sampling distribution of the sketched Hessian.
    sketch_size : int or None, default=None
        Sampled rows (default ``20 * n_features``).
    preconditioner : {"auto", "diagonal", "nystrom", "none"}, default="auto"
        Method ``"cg"``: the Hessian's (block) diagonal, a randomized Nystrom
        approximation, or none.
    class_weight : dict, "balanced" or None, default=None
    random_state : None, int or numpy Generator
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) (binary) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Multinomial intercepts are centred (sum to zero), as the model is
        invariant to a common shift.
    n_iter_ : ndarray of shape (1,)
    result_ : SolveResult (history, passes, timings, method used)
    n_features_in_ : int
    """

    def __init__(self, C=1.0, fit_intercept=True, tol=1e-8, max_iter=100, method="auto",
                 sketch="leverage", sketch_size=None, preconditioner="auto", class_weight=None,
                 random_state=None, verbose=0):
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.preconditioner = preconditioner
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _check_params(self):
        C = check_real(self.C, "C", positive=True)
        check_bool(self.fit_intercept, "fit_intercept")
        return C, self._check_solver()

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> "SketchedLogisticRegression":
        """Fit the model; ``sample_weight`` multiplies each sample's loss.

        ``X`` may be a ``dask.array`` chunked by rows only (chunks scipy sparse
        or dense), with ``y`` and ``sample_weight`` dask arrays chunked like its
        rows (or in-memory arrays, then split by ``X``'s row chunks). The solve
        then runs on the active ``dask.distributed`` client (or in-process with
        dask's default scheduler when there is none): each block stays on a
        worker, each Newton iteration costs a fixed number of distributed
        rounds, and only the classes and ``O((dK)^2 + s dK)`` numbers reach the
        client. With dask input ``class_weight`` is not supported (use
        ``sample_weight``).
        """
        C, tol = self._check_params()
        if distributed.is_dask_collection(X) or distributed.is_dask_collection(y):
            return self._fit_dask(X, y, sample_weight, C, tol)
        X, y = _validate(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32],
                             order="C")
        check_classification_targets(y)
        enc = LabelEncoder()
        codes = enc.fit_transform(y)
        self.classes_ = enc.classes_
        K = self._check_classes()
        sw = _sample_weight(sample_weight, X.shape[0])
        if self.class_weight is not None:
            # as scikit-learn >= 1.6: "balanced" counts classes by sample weight
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                      sample_weight=sample_weight)
            sw = sw * cw[codes]
        # validate_data has checked the values: wrap X once (as float64), without a second scan
        X64 = DataMatrix(X, "X", check_finite=False)
        sw, scale = _weight_scale(sw)
        lam = 1.0 / C / scale
        if K == 2:
            loss = LogisticLoss(X64, codes, lam=lam, sample_weight=sw,
                                fit_intercept=self.fit_intercept)
        else:
            loss = MultinomialLoss(X64, codes, K, lam=lam, sample_weight=sw,
                                   fit_intercept=self.fit_intercept)
        return self._solve(loss, X.shape[1], K, tol)

    def _check_classes(self):
        K = len(self.classes_)
        if K < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                             f"data contains only one class: {self.classes_[0]!r}")
        return K

    def _fit_dask(self, X, y, sample_weight, C, tol):
        """``fit`` on row-blocked dask arrays (see :meth:`fit`); only the classes reach the client."""
        import dask.array as da

        if self.class_weight is not None:
            raise ValueError("class_weight is not supported with dask inputs; pass the weights "
                             "as sample_weight")
        if not isinstance(y, da.Array):
            y = np.asarray(y)
            if y.ndim != 1 or y.shape[0] != X.shape[0]:
                raise InputError(f"y must have shape ({X.shape[0]},) like the rows of X, got "
                                 f"{y.shape}")
            y = da.from_array(y, chunks=(X.chunks[0],))
        classes = np.unique(da.unique(y).compute())
        check_classification_targets(classes)
        self.classes_ = classes
        K = self._check_classes()
        codes = y.map_blocks(lambda blk: np.searchsorted(classes, blk), dtype=np.int64)
        scale = 1.0
        if sample_weight is not None:  # the weights scaled into (0, 1], as in memory
            top = sample_weight.max() if hasattr(sample_weight, "max") else np.max(sample_weight)
            scale = float(top.compute() if hasattr(top, "compute") else top)
            if scale > 0:
                sample_weight = sample_weight / scale
            else:
                scale = 1.0
        kw = dict(lam=1.0 / C / scale, sample_weight=sample_weight,
                  fit_intercept=self.fit_intercept)
        loss = (distributed.logistic_loss(X, codes, **kw) if K == 2
                else distributed.multinomial_loss(X, codes, K, **kw))
        self.n_features_in_ = loss.n_features
        return self._solve(loss, loss.n_features, K, tol)

    def _solve(self, loss, d, K, tol):
        res = self._minimize(loss, tol)
        W = res.x.reshape(-1, d + self.fit_intercept)
        coef, icpt = W[:, :d], (W[:, d] if self.fit_intercept else np.zeros(W.shape[0]))
        if K > 2:
            coef = coef - coef.mean(axis=0)
            icpt = icpt - icpt.mean()
        self.coef_ = np.ascontiguousarray(coef)
        self.intercept_ = np.asarray(icpt, dtype=np.float64).copy()
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores ``X coef_^T + intercept_``: shape (n,) for two classes, (n, n_classes) else."""
        check_is_fitted(self)
        X = _validate(self, X, accept_sparse="csr", reset=False)
        scores = np.asarray(X @ self.coef_.T) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        scores = self.decision_function(X)
        idx = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(axis=1)
        return self.classes_[idx]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = np.empty((scores.shape[0], 2))
            p[:, 1] = 1.0 / (1.0 + np.exp(-np.clip(scores, -700, 700)))
            p[:, 0] = 1.0 - p[:, 1]
            return p
        return softmax(scores, copy=False)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba` (computed stably)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        m = scores.max(axis=1, keepdims=True)
        return scores - m - np.log(np.exp(scores - m).sum(axis=1, keepdims=True))


# -----------------------------------------------------------------------------------------------
class SketchedPoissonRegressor(_SolverParams, RegressorMixin, BaseEstimator):
    """Poisson regression with the log link by sketched Newton.

    Minimises ``1/(2 sum_i s_i) sum_i s_i deviance(y_i, exp(x_i^T coef + b)) +
    alpha/2 ||coef||^2``, the objective of
    ``sklearn.linear_model.PoissonRegressor(alpha)``; internally
    :class:`~sketchnewton.losses.PoissonLoss` with ``lam = alpha sum_i s_i``
    (same minimiser; docs/math.md section 4).

    Parameters
    ----------
    alpha : float >= 0, default=1.0
        L2 penalty strength (not on the intercept).
    fit_intercept : bool, default=True
    tol : float > 0, default=1e-8
        Relative Newton-decrement tolerance (see :class:`SketchedLogisticRegression`).
    max_iter, method, sketch, sketch_size, random_state, verbose
        As :class:`SketchedLogisticRegression`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    intercept_ : float
    n_iter_ : ndarray of shape (1,)
    result_ : SolveResult
    n_features_in_ : int
    """

    def __init__(self, alpha=1.0, fit_intercept=True, tol=1e-8, max_iter=100, method="auto",
                 sketch="leverage", sketch_size=None, preconditioner="auto", random_state=None,
                 verbose=0):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.preconditioner = preconditioner
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.positive_only = True
        return tags

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> "SketchedPoissonRegressor":
        """Fit the model to non-negative targets ``y`` (counts or rates); dask arrays accepted
        as for :meth:`SketchedLogisticRegression.fit`."""
        alpha = check_real(self.alpha, "alpha", nonnegative=True)
        check_bool(self.fit_intercept, "fit_intercept")
        tol = self._check_solver()
        if distributed.is_dask_collection(X) or distributed.is_dask_collection(y):
            sw_total = self._dask_weight_total(X, sample_weight)
            loss = distributed.poisson_loss(X, y, lam=alpha * sw_total, sample_weight=sample_weight,
                                            fit_intercept=self.fit_intercept)
            self.n_features_in_ = loss.n_features
        else:
            X, y = _validate(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32],
                                 order="C", y_numeric=True)
            if np.any(y < 0):
                raise ValueError("Some value(s) of y are out of the valid range of the loss: "
                                 "the Poisson loss needs y >= 0")
            sw, _ = _weight_scale(_sample_weight(sample_weight, X.shape[0]))
            loss = PoissonLoss(DataMatrix(X, "X", check_finite=False), y, lam=alpha * sw.sum(),
                               sample_weight=sw, fit_intercept=self.fit_intercept)
        res = self._minimize(loss, tol)
        d = loss.n_features
        self.coef_ = res.x[:d].copy()
        self.intercept_ = float(res.x[d]) if self.fit_intercept else 0.0
        return self

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
        X = _validate(self, X, accept_sparse="csr", reset=False)
        return np.exp(np.asarray(X @ self.coef_).ravel() + self.intercept_)

    def score(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """D^2, the fraction of Poisson deviance explained (as scikit-learn's PoissonRegressor)."""
        return d2_tweedie_score(y, self.predict(X), sample_weight=sample_weight, power=1)


# -----------------------------------------------------------------------------------------------
class SoftmaxRegression(RegressorMixin, BaseEstimator):
    """Normalized (softmax / ResNet) regression ``min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + ...``.

    A thin scikit-learn wrapper of :func:`sketchnewton.solve`. The model's
    output is normalised over the rows of one problem: ``predict(A)`` returns
    ``phi(A x) / sum_i phi(A x)_i`` over *the rows given*, so predictions
    depend on which rows are passed together (a single row always predicts
    1). ``fit(X, y)`` takes ``A`` as ``X`` and ``b`` as ``y``.

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
        Target accuracy ``||x - x*||``.
    method : {"auto", "exact", "sketch", "pcg"}, default="auto"
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}, default="leverage"
    sketch_size : int or None, default=None
    max_iter : int, default=100
    random_state : None, int or numpy Generator
    verbose : int, default=0

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
    n_iter_ : int
    result_ : SolveResult
    n_features_in_ : int
    """

    def __init__(self, link="resnet", lam=0.0, w=None, eps=1e-8, method="auto", sketch="leverage",
                 sketch_size=None, max_iter=100, random_state=None, verbose=0):
        self.link = link
        self.lam = lam
        self.w = w
        self.eps = eps
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.max_iter = max_iter
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

    def fit(self, X: Any, y: ArrayLike) -> "SoftmaxRegression":
        """Solve the normalized regression on all rows of ``X`` (``A``) with target ``y`` (``b``)."""
        check_choice(self.link, "link", tuple(LINK_CODES))
        check_choice(self.method, "method", METHODS)
        check_choice(self.sketch, "sketch", SKETCHES)
        check_real(self.w, "w", nonnegative=True, allow_none=True)
        A, b = _validate(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=True)
        res = solve(A, b, eps=self.eps, link=self.link, lam=self.lam, w=self.w, method=self.method,
                    sketch=self.sketch, sketch_size=self.sketch_size, max_iter=self.max_iter,
                    random_state=self.random_state, verbose=self.verbose)
        self.coef_ = res.x
        self.n_iter_ = int(res.nit)
        self.result_ = res
        return self

    def predict(self, X: Any) -> np.ndarray:
        """``phi(X coef_) / sum_i phi(X coef_)_i``, normalised over the rows of ``X``."""
        check_is_fitted(self)
        A = _validate(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        u = link_numpy(np.asarray(A @ self.coef_).ravel(), self.link)[0]
        return u / u.sum()
