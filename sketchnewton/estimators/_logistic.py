"""SketchedLogisticRegression: the objective of scikit-learn's LogisticRegression(C), l2 penalty."""

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import softmax
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .. import distributed
from .._matrix import DataMatrix
from .._validation import check_bool, check_real
from ..exceptions import InputError
from ..losses import LogisticLoss, MultinomialLoss
from ._base import (
    FLOAT_DTYPES,
    check_l1_ratio,
    l1_weights,
    SolverParams,
    dask_weight_scale,
    drop_feature_names,
    linear_predictor,
    sample_weights,
    validate,
    weight_scale,
)
from ._coef_table import CoefTableMixin

__all__ = ["SketchedLogisticRegression", "LinearClassifier", "logistic_loss", "prepare_classification",
           "split_coef", "check_C", "l1_strength"]


def check_C(C, name="C"):
    """``C > 0``; ``np.inf`` means no penalty."""
    return check_real(C, name, positive=True, allow_inf=True)


def logistic_loss(X64, codes, K, C, sw, fit_intercept, l1_ratio=0.0):
    """``(loss, scale)``: the solver's loss for ``C sum_i sw_i l_i + (1 - l1_ratio)/2 ||W||^2``,
    the weights scaled by ``1/scale`` into (0, 1] and the ridge
    ``lam = (1 - l1_ratio) / (C scale)`` (0 for ``C = inf``), the same minimiser (docs/math.md
    section 3); the L1 part is :func:`l1_strength`."""
    sw, scale = weight_scale(sw)
    kw = dict(lam=0.0 if np.isinf(C) else (1.0 - l1_ratio) / C / scale, sample_weight=sw,
              fit_intercept=fit_intercept)
    loss = LogisticLoss(X64, codes, **kw) if K == 2 else MultinomialLoss(X64, codes, K, **kw)
    return loss, scale


def l1_strength(C, scale, l1_ratio):
    """The L1 weight of the solver's loss: ``l1_ratio / (C scale)`` (0 for ``C = inf``)."""
    return 0.0 if np.isinf(C) else l1_ratio / C / scale


def _class_weighted(sw, class_weight, classes, y, codes, sample_weight):
    if class_weight is None:
        return sw
    # as scikit-learn >= 1.6: "balanced" counts classes by sample weight
    cw = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sample_weight)
    return sw * cw[codes]


def prepare_classification(X, y, sample_weight, class_weight):
    """``(X64, codes, classes, sw)`` from validated ``X, y``: labels encoded, at least two
    classes, sample weights times the class weights."""
    if np.issubdtype(y.dtype, np.number) or y.dtype == bool:
        # one sort (LabelEncoder and the targets' check sort twice more): two distinct
        # values have the type of the targets (binary, or continuous); more are checked on
        # the targets themselves (the check warns about many classes per sample)
        classes = np.unique(y)
        check_classification_targets(classes if classes.size <= 2 else y)
        codes = np.searchsorted(classes, y)
    else:
        check_classification_targets(y)
        enc = LabelEncoder()
        codes = enc.fit_transform(y)
        classes = enc.classes_
    if len(classes) < 2:
        raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                         f"data contains only one class: {classes[0]!r}")
    sw = _class_weighted(sample_weights(sample_weight, X.shape[0]), class_weight, classes, y, codes,
                         sample_weight)
    # validate_data has checked the values: wrap X as it is (float32 or float64, C or F order;
    # no copy), without a second scan
    return DataMatrix(X, "X", check_finite=False), codes, classes, sw


def split_coef(x, d, fit_intercept, l1=False):
    """``(coef (rows, d), intercept (rows,))`` from the loss's parameters; multinomial ones
    centred over the classes (the model is invariant to a common shift), the coefficients only
    without an L1 penalty (which the shift changes)."""
    W = np.asarray(x, dtype=np.float64).reshape(-1, d + fit_intercept)
    coef, icpt = W[:, :d], (W[:, d] if fit_intercept else np.zeros(W.shape[0]))
    if W.shape[0] > 1:
        if not l1:
            coef = coef - coef.mean(axis=0)
        icpt = icpt - icpt.mean()
    return np.ascontiguousarray(coef), np.array(icpt, dtype=np.float64)


class LinearClassifier(SolverParams, CoefTableMixin, ClassifierMixin, BaseEstimator):
    """Prediction, coefficients and standard errors of the linear (softmax) classifiers."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _set_coef(self, x, d):
        self.coef_, self.intercept_ = split_coef(x, d, self.fit_intercept,
                                                 l1=self._l1_ratio() > 0)

    def _l1_ratio(self):
        return check_l1_ratio(getattr(self, "l1_ratio", 0.0))

    def _training_loss(self, X, y, sample_weight):
        """The fitted objective on the training data (for :meth:`coef_table`)."""
        X, y = validate(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False)
        codes = np.searchsorted(self.classes_, y)
        K = len(self.classes_)
        if np.any(codes >= K) or np.any(self.classes_[np.minimum(codes, K - 1)] != y):
            raise ValueError("y has labels the model was not fitted on: pass the training data")
        sw = _class_weighted(sample_weights(sample_weight, X.shape[0]), self.class_weight,
                             self.classes_, y, codes, sample_weight)
        if self._l1_ratio() > 0:
            raise ValueError("standard errors of an L1-penalised fit (l1_ratio > 0) are not "
                             "defined by the Hessian: refit with l1_ratio=0")
        return logistic_loss(DataMatrix(X, "X", check_finite=False), codes, K, self._fitted_C(),
                             sw, self.fit_intercept)

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores ``X coef_^T + intercept_``: shape (n,) for two classes, (n, n_classes) else."""
        check_is_fitted(self)
        X = validate(self, X, accept_sparse="csr", dtype=FLOAT_DTYPES, reset=False)
        scores = linear_predictor(X, self.coef_.T) + self.intercept_
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
class SketchedLogisticRegression(LinearClassifier):
    """Regularised logistic (binary) and softmax (multinomial) regression by sketched Newton.

    Minimises ``C * sum_i sw_i loss_i + (1 - l1_ratio)/2 ||W||^2 + l1_ratio ||W||_1``
    (intercept not penalised), the objective of
    ``sklearn.linear_model.LogisticRegression(C=C, l1_ratio=l1_ratio)`` (``l1_ratio=0``:
    the l2 penalty; ``C=np.inf``: no penalty, scikit-learn's ``penalty=None``); an
    L1 part is solved by proximal Newton (methods ``"prox"``, ``"prox_sketch"``,
    ``"prox_cd"``; docs/math.md section 9); two classes give binary logistic regression, more
    give multinomial (softmax) cross-entropy. Internally the losses
    :class:`~sketchnewton.losses.LogisticLoss` /
    :class:`~sketchnewton.losses.MultinomialLoss` with ``lam = 1/C`` are
    minimised (same minimiser; docs/math.md section 3).

    Parameters
    ----------
    C : float > 0 or np.inf, default=1.0
        Inverse regularisation strength; ``np.inf`` fits without a penalty
        (the maximum-likelihood estimate, which does not exist for separable
        classes: the solve then stops with a ConvergenceWarning).
    l1_ratio : float in [0, 1], default=0.0
        The elastic-net mix: 0 the ridge (l2) penalty, 1 the lasso (l1).
    fit_intercept : bool, default=True
    tol : float > 0, default=1e-8
        Relative objective accuracy: stop when half the squared Newton
        decrement of a unit step is below ``tol * |f|`` (docs/math.md 7.2;
        the error left after that step is quadratically smaller). See
        "Tolerances" in :mod:`sketchnewton.estimators`.
    max_iter : int, default=100
        Newton iterations.
    method : {"auto", "exact", "dual", "pcg", "cg", "subsampled", "sketch"}, default="auto"
        ``"exact"``: exact dense Hessian (``(dK) x (dK)`` for ``K`` classes).
        ``"dual"``: the exact step through the (n x n) dual system (binary,
        n < d, finite ``C``). ``"pcg"``: conjugate gradients on exact
        Hessian-vector products, preconditioned by a Hessian built from
        leverage-sampled rows (n >> d). ``"cg"``: the same with a
        preconditioner that needs no (dK x dK) matrix (``preconditioner``;
        many features). ``"subsampled"``: conjugate gradients on the Hessian
        of a row sample that grows while convergence is slow, exact gradient
        (docs/math.md 8.8; dense many-class problems). ``"sketch"``: the sketched Hessian's step (linear
        convergence). ``"auto"``: :func:`~sketchnewton.newton.choose_method`
        (cost model; the choice is ``result_.method``).
    sketch : {"leverage", "uniform"}, default="leverage"
        Row sampling distribution of the sketched Hessian.
    sketch_size : int or None, default=None
        Sampled rows (default ``20 * n_features``).
    preconditioner : {"auto", "diagonal", "nystrom", "kronecker", "none"}, default="auto"
        Methods ``"cg"`` and ``"subsampled"``: the Hessian's (block) diagonal, a
        randomized Nystrom approximation, the Kronecker-factored ``S (x) G``
        of the multinomial Hessian (K x K and d x d factors, docs/math.md
        8.7; the default of ``"subsampled"`` with many classes), or none.
    class_weight : dict, "balanced" or None, default=None
    warm_start : bool, default=False
        Start from the previous fit's ``coef_`` and ``intercept_`` when their
        shape matches (as scikit-learn's LogisticRegression); else from the
        loss's default start.
    random_state : None, int or numpy Generator
    verbose : int, default=0
        0 silent; 1 one line per Newton iteration; 2 also the method choice
        (with the cost model's estimates for ``"auto"``) and a summary line.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) (binary) or (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Multinomial coefficients and intercepts are centred (sum to zero over
        the classes), as the model is invariant to a common shift.
    n_iter_ : ndarray of shape (1,)
    result_ : SolveResult (history, passes, timings, method used)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string column names (a pandas DataFrame).

    Notes
    -----
    Threads: see "Threads" in :mod:`sketchnewton.estimators` (there is no
    ``n_jobs``). Standard errors: :meth:`coef_table`.
    """

    def __init__(self, C=1.0, fit_intercept=True, tol=1e-8, max_iter=100, method="auto",
                 sketch="leverage", sketch_size=None, preconditioner="auto", class_weight=None,
                 warm_start=False, random_state=None, verbose=0, l1_ratio=0.0):
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.preconditioner = preconditioner
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self):
        C = check_C(self.C)
        check_bool(self.fit_intercept, "fit_intercept")
        check_bool(self.warm_start, "warm_start")
        self._l1_ratio()
        return (C,) + self._check_solver()

    def _fitted_C(self):
        return check_C(self.C)

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> "SketchedLogisticRegression":
        """Fit the model; ``sample_weight`` multiplies each sample's loss.

        ``X`` may be a pandas DataFrame (``feature_names_in_`` records its
        columns), or a ``dask.array`` chunked by rows only (chunks scipy sparse
        or dense), with ``y`` and ``sample_weight`` dask arrays chunked like its
        rows (or in-memory arrays, then split by ``X``'s row chunks). The solve
        then runs on the active ``dask.distributed`` client (or in-process with
        dask's default scheduler when there is none): each block stays on a
        worker, each Newton iteration costs a fixed number of distributed
        rounds, and only the classes and ``O((dK)^2 + s dK)`` numbers reach the
        client. With dask input ``class_weight`` is not supported (use
        ``sample_weight``).
        """
        C, options, tol = self._check_params()
        if distributed.is_dask_collection(X) or distributed.is_dask_collection(y):
            return self._fit_dask(X, y, sample_weight, C, options, tol)
        X, y = validate(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES)
        X64, codes, self.classes_, sw = prepare_classification(X, y, sample_weight,
                                                               self.class_weight)
        r = self._l1_ratio()
        loss, scale = logistic_loss(X64, codes, len(self.classes_), C, sw, self.fit_intercept, r)
        return self._solve(loss, options, tol, l1_strength(C, scale, r))

    def _fit_dask(self, X, y, sample_weight, C, options, tol):
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
        if len(classes) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but the "
                             f"data contains only one class: {classes[0]!r}")
        self.classes_ = classes
        K = len(classes)
        codes = y.map_blocks(lambda blk: np.searchsorted(classes, blk), dtype=np.int64)
        sample_weight, scale = dask_weight_scale(sample_weight)
        r = self._l1_ratio()
        kw = dict(lam=0.0 if np.isinf(C) else (1.0 - r) / C / scale, sample_weight=sample_weight,
                  fit_intercept=self.fit_intercept)
        loss = (distributed.logistic_loss(X, codes, **kw) if K == 2
                else distributed.multinomial_loss(X, codes, K, **kw))
        self.n_features_in_ = loss.n_features
        drop_feature_names(self)
        return self._solve(loss, options, tol, l1_strength(C, scale, r))

    def _solve(self, loss, options, tol, l1=0.0):
        K, d = len(self.classes_), loss.n_features
        x0 = self._warm_start(1 if K == 2 else K, d)
        res = self._minimize(loss, options, x0, tol=tol, l1=l1_weights(loss, l1))
        self._set_coef(res.x, d)
        return self
