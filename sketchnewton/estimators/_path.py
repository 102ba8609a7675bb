"""The regularisation path of logistic regression and its cross-validated estimator.

Newton's method converges quadratically near the solution: started at the
solution of the previous, slightly stronger penalty, a solve along the path
takes a few iterations (often two or three) instead of a cold start's
five to ten.
"""

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import check_scoring
from sklearn.model_selection import check_cv
from sklearn.utils import check_X_y

from .._matrix import DataMatrix
from .._validation import check_bool, check_int
from ..exceptions import InputError
from ._base import FLOAT_DTYPES, check_sparse_X, run_newton, sample_weights, validate
from ._logistic import (
    LinearClassifier,
    SketchedLogisticRegression,
    check_C,
    logistic_loss,
    prepare_classification,
    split_coef,
)

__all__ = ["logistic_regression_path", "SketchedLogisticRegressionCV"]


def check_Cs(Cs):
    """An int ``k``: ``np.logspace(-4, 4, k)`` (as scikit-learn); else the values, each > 0
    (``np.inf`` allowed)."""
    if isinstance(Cs, numbers.Integral) and not isinstance(Cs, bool):
        return np.logspace(-4, 4, check_int(Cs, "Cs", minimum=1))
    values = np.atleast_1d(np.asarray(Cs, dtype=object)).ravel()
    if values.size == 0:
        raise InputError("Cs must be a positive integer or a non-empty list of C values")
    return np.array([check_C(c, "each value of Cs") for c in values], dtype=np.float64)


def fit_path(X64, codes, K, sw, Cs, fit_intercept, options, tol, name):
    """Solve at every ``C`` of ``Cs`` in increasing order, each solve started at the previous
    solution. Returns ``(W, n_iter)`` in the order of ``Cs``: ``W`` (n_Cs, rows, d + fit_intercept)
    the coefficients with the intercept last (multinomial ones centred), ``n_iter`` (n_Cs,)."""
    d = X64.shape[1]
    W = np.empty((len(Cs), 1 if K == 2 else K, d + fit_intercept))
    n_iter = np.zeros(len(Cs), dtype=np.int32)
    x0 = None
    for i in np.argsort(Cs, kind="stable"):
        loss, _ = logistic_loss(X64, codes, K, Cs[i], sw, fit_intercept)
        res = run_newton(f"{name} C={Cs[i]:.4g}", loss, options, x0=x0, tol=tol)
        x0 = res.x
        coef, icpt = split_coef(res.x, d, fit_intercept)
        W[i] = np.column_stack([coef, icpt]) if fit_intercept else coef
        n_iter[i] = res.nit
    return W, n_iter


def logistic_regression_path(X: Any, y: ArrayLike, Cs=10, *, fit_intercept=True, tol=1e-8,
                             max_iter=100, method="auto", sketch="leverage", sketch_size=None,
                             preconditioner="auto", class_weight=None,
                             sample_weight: ArrayLike | None = None, random_state=None, verbose=0):
    """Coefficients of :class:`SketchedLogisticRegression` for every ``C`` of ``Cs``.

    The solves run from the strongest penalty (smallest ``C``) to the weakest,
    each started at the previous solution (warm starts), whatever the order
    of ``Cs``; the first starts at the loss's default start.

    Parameters
    ----------
    X : sparse matrix or array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels (two classes: binary, more: multinomial).
    Cs : int or array-like of float, default=10
        An int ``k``: ``np.logspace(-4, 4, k)`` (as LogisticRegressionCV);
        values ``> 0``, ``np.inf`` for no penalty.
    fit_intercept, tol, max_iter, method, sketch, sketch_size, preconditioner, class_weight,
    random_state
        As :class:`SketchedLogisticRegression` (``tol`` the relative
        Newton-decrement tolerance of every solve).
    sample_weight : array-like of shape (n_samples,), optional
    verbose : int, default=0
        Of every solve, as :class:`SketchedLogisticRegression`.

    Returns
    -------
    coefs : ndarray of shape (n_Cs, n_rows, n_features + fit_intercept)
        ``n_rows`` 1 for two classes (the coefficients of the second class of
        ``np.unique(y)``), else one row per class in the order of
        ``np.unique(y)`` (centred over the classes); the intercept last.
    Cs : ndarray of shape (n_Cs,)
        The C values, in the order given.
    n_iter : ndarray of shape (n_Cs,)
        Newton iterations of each solve.
    """
    est = SketchedLogisticRegression(fit_intercept=fit_intercept, tol=tol, max_iter=max_iter,
                                     method=method, sketch=sketch, sketch_size=sketch_size,
                                     preconditioner=preconditioner, random_state=random_state,
                                     verbose=verbose)
    _, options, tol = est._check_params()
    Cs = check_Cs(Cs)
    check_sparse_X(X)
    X, y = check_X_y(X, y, accept_sparse="csr", dtype=FLOAT_DTYPES)
    X64, codes, classes, sw = prepare_classification(X, y, sample_weight, class_weight)
    W, n_iter = fit_path(X64, codes, len(classes), sw, Cs, fit_intercept, options, tol,
                         "logistic_regression_path")
    return W, Cs, n_iter


class SketchedLogisticRegressionCV(LinearClassifier):
    """:class:`SketchedLogisticRegression` with ``C`` chosen by cross-validation on a path.

    On each fold the path over ``Cs`` is solved with warm starts (see
    :func:`logistic_regression_path`) and scored on the held-out rows; the
    ``C`` with the best mean score is refitted on all data from the default
    start: the refit is ``SketchedLogisticRegression(C=C_).fit(X, y)``
    exactly, whatever the folds (so sample weights and repeated rows give the
    same model, as scikit-learn's checks ask).

    Parameters
    ----------
    Cs : int or array-like of float, default=10
        An int ``k``: ``np.logspace(-4, 4, k)``; values ``> 0`` (``np.inf``:
        no penalty).
    cv : int, cross-validation generator or iterable, default=None
        :func:`sklearn.model_selection.check_cv` (classifier): None is 5-fold
        stratified.
    scoring : str, callable or None, default=None
        :func:`sklearn.metrics.check_scoring`; None is the estimator's
        ``score``, the accuracy (as LogisticRegressionCV's current default;
        ``"neg_log_loss"`` separates close values of C better). Sample weights
        given to ``fit`` are passed to the scorer.
    fit_intercept, tol, max_iter, method, sketch, sketch_size, preconditioner, class_weight,
    random_state
        As :class:`SketchedLogisticRegression`; ``class_weight="balanced"`` is
        computed once on all of ``y`` (as LogisticRegressionCV).
    refit : bool, default=True
        Refit at the best ``C`` on all data; False: ``coef_`` is the mean of
        the folds' coefficients at each fold's best ``C`` and ``C_`` the mean
        of those ``C``.
    verbose : int, default=0
        1 one line per fold (iterations and scores per C) and for the refit;
        ``k >= 2``: every solve at level ``k - 1`` of
        :class:`SketchedLogisticRegression` too.

    Attributes
    ----------
    Cs_ : ndarray of shape (n_Cs,)
    C_ : float
        The chosen C (a float, as LogisticRegressionCV with
        ``use_legacy_attributes=False``).
    scores_ : ndarray of shape (n_folds, n_Cs)
    coefs_paths_ : ndarray of shape (n_folds, n_Cs, n_rows, n_features + fit_intercept)
        Each fold's path (intercept last; ``n_rows`` 1 for binary problems).
    n_iter_ : ndarray of shape (n_folds, n_Cs)
        Newton iterations of each solve of the paths (the refit's are in
        ``result_.nit``).
    classes_, coef_, intercept_, n_features_in_, feature_names_in_
        As :class:`SketchedLogisticRegression`.
    result_ : SolveResult
        The refit's (with ``refit=True``).
    """

    def __init__(self, Cs=10, cv=None, scoring=None, fit_intercept=True, tol=1e-8, max_iter=100,
                 method="auto", sketch="leverage", sketch_size=None, preconditioner="auto",
                 class_weight=None, refit=True, random_state=None, verbose=0):
        self.Cs = Cs
        self.cv = cv
        self.scoring = scoring
        self.fit_intercept = fit_intercept
        self.tol = tol
        self.max_iter = max_iter
        self.method = method
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.preconditioner = preconditioner
        self.class_weight = class_weight
        self.refit = refit
        self.random_state = random_state
        self.verbose = verbose

    def _fitted_C(self):
        if not self.refit:
            raise ValueError("with refit=False coef_ averages the folds' solutions, the minimiser "
                             "of no objective: standard errors need refit=True")
        return self.C_

    def fit(self, X: Any, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> "SketchedLogisticRegressionCV":
        """Choose ``C`` by cross-validation and fit (see the class docstring)."""
        fit_intercept = check_bool(self.fit_intercept, "fit_intercept")
        check_bool(self.refit, "refit")
        options, tol = self._check_solver()
        self.Cs_ = Cs = check_Cs(self.Cs)
        X, y = validate(self, X, y, accept_sparse="csr", dtype=FLOAT_DTYPES)
        X64, codes, self.classes_, sw = prepare_classification(X, y, sample_weight,
                                                               self.class_weight)
        K, d = len(self.classes_), X.shape[1]
        folds = list(check_cv(self.cv, y, classifier=True).split(X, y))
        scorer = check_scoring(self, scoring=self.scoring)
        raw_sw = None if sample_weight is None else sample_weights(sample_weight, X.shape[0])
        inner = dict(options, verbose=max(options["verbose"] - 1, 0))
        paths, scores, n_iter = [], [], []
        for k, (train, test) in enumerate(folds):
            W, it = fit_path(DataMatrix(X[train], "X", check_finite=False), codes[train], K,
                             sw[train], Cs, fit_intercept, inner, tol, f"{type(self).__name__} "
                             f"fold {k}")
            kw = {} if raw_sw is None else {"sample_weight": raw_sw[test]}
            scores.append([scorer(self._fold_model(w, C), X[test], y[test], **kw)
                           for w, C in zip(W, Cs)])
            paths.append(W)
            n_iter.append(it)
            if options["verbose"]:
                print(f"[{type(self).__name__}] fold {k}: Newton iterations {it.tolist()}, "
                      f"scores {np.round(scores[-1], 6).tolist()}", flush=True)
        self.scores_ = np.array(scores, dtype=np.float64)
        self.coefs_paths_ = np.array(paths)
        self.n_iter_ = np.array(n_iter, dtype=np.int32)
        if self.refit:
            best = int(np.argmax(self.scores_.sum(axis=0)))
            self.C_ = float(Cs[best])
            loss, _ = logistic_loss(X64, codes, K, self.C_, sw, fit_intercept)
            res = self._minimize(loss, inner, tol=tol)
            self.n_iter_ = np.array(n_iter, dtype=np.int32)  # _minimize set the refit's
            if options["verbose"]:
                print(f"[{type(self).__name__}] refit at C_ = {self.C_:.6g}: {res.nit} Newton "
                      "iterations", flush=True)
            self._set_coef(res.x, d)
        else:
            best = np.argmax(self.scores_, axis=1)
            self.C_ = float(np.mean(Cs[best]))
            self._set_coef(np.mean([W[b] for W, b in zip(self.coefs_paths_, best)], axis=0), d)
        return self

    def _fold_model(self, w, C):
        """A fitted :class:`SketchedLogisticRegression` with the coefficients ``w`` (rows,
        d + fit_intercept): what the scorer scores."""
        model = SketchedLogisticRegression(C=C, fit_intercept=self.fit_intercept)
        model.classes_ = self.classes_
        model.n_features_in_ = self.n_features_in_
        model._set_coef(w.ravel(), self.n_features_in_)
        return model
