"""scikit-learn estimators: :class:`SoftmaxRegression` and :class:`SketchedLogisticRegression`.

Both follow scikit-learn's estimator contract (parameters stored verbatim by
``__init__``, validated in ``fit``; fitted attributes end in ``_``), so they
work with ``clone``, ``Pipeline``, ``GridSearchCV`` and pickle.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import softmax
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._classifier_solver import CLASSIFIER_METHODS, solve_classifier
from ._matrix import DataMatrix
from .losses import LINKS, LogisticLoss, MultinomialLoss
from .newton import METHODS, solve

__all__ = ["SoftmaxRegression", "SketchedLogisticRegression",
           "SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS"]

#: scikit-learn checks that cannot hold for :class:`SoftmaxRegression` because of
#: what the model is; pass as ``check_estimator(..., expected_failed_checks=...)``.
SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS = {
    "check_methods_subset_invariance":
        "predict normalises phi(Ax) over the rows passed together, so predicting on a "
        "subset of rows rescales the outputs (a single row always predicts 1)",
}


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(value, name, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) \
            or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} finite "
                         f"number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
class SoftmaxRegression(RegressorMixin, BaseEstimator):
    """Normalized (softmax / ResNet) regression ``min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + ...``.

    A thin scikit-learn wrapper of :func:`sketchnewton.solve`. The model's
    output is normalised over the rows of one problem: ``predict(A)`` returns
    ``phi(A x) / sum_i phi(A x)_i`` over *the rows given*, so predictions
    depend on which rows are passed together (a single row always predicts
    1). ``n`` in the paper's normalisation is the number of rows of ``A``.

    ``fit(X, y)`` takes ``A`` as ``X`` and ``b`` as ``y`` (scikit-learn's names).

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
        The full result of the solve (history, passes, timings).
    n_features_in_ : int

    Notes
    -----
    ``score(A, b)`` is the coefficient of determination ``R^2`` of
    ``predict(A)`` (normalised over the rows of ``A``) against ``b``
    (``RegressorMixin.score``). Compare on the full problem, not on
    subsets of rows: the normalisation makes predictions on a subset differ
    from the subset of predictions.
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

    def fit(self, X, y):
        """Solve the normalized regression on all rows of ``X`` (``A``) with target ``y`` (``b``).

        Per-row sample weights are not part of the loss, so ``fit`` takes none.
        """
        if self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, got {self.link!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        _check_positive(self.lam, "lam", allow_zero=True)
        _check_positive(self.eps, "eps")
        _check_int(self.max_iter, "max_iter", 0)
        if self.w is not None:
            _check_positive(self.w, "w", allow_zero=True)
        A, b = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=True)
        res = solve(A, b, eps=self.eps, link=self.link, lam=self.lam, w=self.w, method=self.method,
                    sketch=self.sketch, sketch_size=self.sketch_size, max_iter=self.max_iter,
                    random_state=self.random_state, verbose=self.verbose)
        self.coef_ = res.x
        self.n_iter_ = int(res.nit)
        self.result_ = res
        return self

    def predict(self, X):
        """``phi(X coef_) / sum_i phi(X coef_)_i``, normalised over the rows of ``X``."""
        check_is_fitted(self)
        A = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        z = np.asarray(A @ self.coef_).ravel()
        m = float(z.max())
        if self.link == "softmax":
            u = np.exp(z - m)
        elif self.link == "resnet":
            u = np.exp(z - m) + z * np.exp(-m)
        elif self.link == "cosh":
            u = 0.5 * (np.exp(z - m) + np.exp(-z - m))
        else:
            u = 0.5 * (np.exp(z - m) - np.exp(-z - m))
        alpha = u.sum()
        return u / alpha


# ---------------------------------------------------------------------------------------------
class SketchedLogisticRegression(LinearClassifierMixin, BaseEstimator):
    """L2-regularised logistic (binary) and softmax (multinomial) regression by sketched Newton.

    Minimises ``C * sum_i sw_i loss_i + 1/2 ||W||^2`` (intercept not
    penalised), the objective of ``sklearn.linear_model.LogisticRegression(C=C)``
    with the l2 penalty; two classes give binary logistic regression, more
    give multinomial (softmax) cross-entropy. Internally the losses
    :class:`~sketchnewton.losses.LogisticLoss` /
    :class:`~sketchnewton.losses.MultinomialLoss` with ``lam = 1/C`` are
    minimised (same minimiser).

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
    method : {"auto", "exact", "pcg", "sketch"}, default="auto"
        ``"exact"``: exact dense Hessian (``(dK) x (dK)`` for ``K`` classes).
        ``"pcg"``: conjugate gradients on exact Hessian-vector products,
        preconditioned by a Hessian built from leverage-sampled rows.
        ``"sketch"``: the sketched Hessian's step (linear convergence).
        ``"auto"``: cost model (``choose_classifier_method``).
    sketch : {"leverage", "uniform"}, default="leverage"
        Row sampling distribution of the preconditioner.
    sketch_size : int or None, default=None
        Sampled rows (default ``20 * n_features``).
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
    result_ : OptimizeResult (history, passes, timings, method used)
    n_features_in_ : int
    """

    def __init__(self, C=1.0, fit_intercept=True, tol=1e-8, max_iter=100, method="auto",
                 sketch="leverage", sketch_size=None, class_weight=None, random_state=None,
                 verbose=0):
        self.C = C
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _check_params(self):
        C = _check_positive(self.C, "C")
        tol = _check_positive(self.tol, "tol")
        _check_int(self.max_iter, "max_iter", 0)
        if self.method not in CLASSIFIER_METHODS:
            raise ValueError(f"method must be one of {CLASSIFIER_METHODS}, got {self.method!r}")
        if self.sketch not in ("leverage", "uniform"):
            raise ValueError(f"sketch must be 'leverage' or 'uniform', got {self.sketch!r}")
        if self.sketch_size is not None:
            _check_int(self.sketch_size, "sketch_size", 1)
        return C, tol

    def fit(self, X, y, sample_weight=None):
        """Fit the model; ``sample_weight`` multiplies each sample's loss.

        ``X`` may be a ``dask.array`` chunked by rows only (chunks scipy sparse
        or dense), with ``y`` and ``sample_weight`` dask arrays chunked like its
        rows (or in-memory arrays, then split by ``X``'s row chunks). The solve
        then runs on the active ``dask.distributed`` client (or in-process with
        dask's default scheduler when there is none): each block stays on a
        worker, each Newton iteration costs a fixed number of distributed
        rounds, and only the classes and ``O((dK)^2 + s dK)`` numbers reach the
        client. The result equals the in-memory fit to the solver's tolerance;
        randomness is drawn per block from ``random_state`` so it is
        reproducible even when Dask retries tasks of a lost worker. With dask
        input ``sketch`` samples rows Bernoulli-wise and ``class_weight`` is
        not supported (use ``sample_weight``).
        """
        C, tol = self._check_params()
        from ._dask import is_dask_collection

        if is_dask_collection(X) or is_dask_collection(y):
            return self._fit_dask(X, y, sample_weight, C, tol)
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32],
                             order="C")
        check_classification_targets(y)
        enc = LabelEncoder()
        codes = enc.fit_transform(y)
        self.classes_ = enc.classes_
        K = len(self.classes_)
        if K < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                             f"data contains only one class: {self.classes_[0]!r}")
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is not None:
            # as scikit-learn >= 1.6: "balanced" counts classes by sample weight
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y,
                                      sample_weight=sample_weight)
            sw = sw * cw[codes]
        # validate_data has checked the values: wrap X once (as float64), without a second scan
        X64 = DataMatrix(X, "X", check_finite=False)
        if K == 2:
            loss = LogisticLoss(X64, codes, lam=1.0 / C, sample_weight=sw,
                                fit_intercept=self.fit_intercept)
        else:
            loss = MultinomialLoss(X64, codes, K, lam=1.0 / C, sample_weight=sw,
                                   fit_intercept=self.fit_intercept)
        return self._solve(loss, X.shape[1], K, tol)

    def _fit_dask(self, X, y, sample_weight, C, tol):
        """``fit`` on row-blocked dask arrays (see :meth:`fit`); only the classes reach the client."""
        import dask.array as da

        from ._dask import DaskClassifierLoss

        if self.class_weight is not None:
            raise ValueError("class_weight is not supported with dask inputs; pass the weights "
                             "as sample_weight")
        y = y if isinstance(y, da.Array) else da.from_array(np.asarray(y), chunks=(X.chunks[0],))
        classes = np.unique(da.unique(y).compute())
        check_classification_targets(classes)
        self.classes_ = classes
        K = len(classes)
        if K < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                             f"data contains only one class: {classes[0]!r}")
        codes = y.map_blocks(lambda blk: np.searchsorted(classes, blk), dtype=np.int64)
        loss = DaskClassifierLoss(X, codes, K, lam=1.0 / C, sample_weight=sample_weight,
                                  fit_intercept=self.fit_intercept)
        self.n_features_in_ = loss.n_features
        return self._solve(loss, loss.n_features, K, tol)

    def _solve(self, loss, d, K, tol):
        # warns with sklearn's ConvergenceWarning when not converged
        res = solve_classifier(loss, tol=tol, method=self.method, sketch=self.sketch,
                               sketch_size=self.sketch_size, max_iter=self.max_iter,
                               random_state=self.random_state, verbose=self.verbose)
        W = res.x.reshape(-1, loss.A.d)
        coef, icpt = W[:, :d], (W[:, d] if self.fit_intercept else np.zeros(W.shape[0]))
        if K > 2:
            coef = coef - coef.mean(axis=0)
            icpt = icpt - icpt.mean()
        self.coef_ = np.ascontiguousarray(coef)
        self.intercept_ = np.asarray(icpt, dtype=np.float64).copy()
        self.n_iter_ = np.array([res.nit], dtype=np.int32)
        self.result_ = res
        return self

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``."""
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = np.empty((scores.shape[0], 2))
            p[:, 1] = 1.0 / (1.0 + np.exp(-np.clip(scores, -700, 700)))
            p[:, 0] = 1.0 - p[:, 1]
            return p
        return softmax(scores, copy=False)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (computed stably)."""
        check_is_fitted(self)
        scores = self.decision_function(X)
        if scores.ndim == 1:
            scores = np.column_stack([np.zeros_like(scores), scores])
        m = scores.max(axis=1, keepdims=True)
        return scores - m - np.log(np.exp(scores - m).sum(axis=1, keepdims=True))
