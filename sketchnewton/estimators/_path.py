"""The regularisation path of logistic regression and its cross-validated estimator.

Newton's method converges quadratically near the solution: started at the
solution of the previous, slightly stronger penalty, a solve along the path
takes a few iterations (often two or three) instead of a cold start's
five to ten. With an L1 part (``l1_ratio > 0``) the path starts at the solution
with every coefficient zero (the loss's start: intercepts at the label
statistics, exact for every ``C <= C_min``, :func:`c_min`), and each solve
discards the coefficients the sequential strong rule of Tibshirani et al.
(2012) predicts to stay zero; the KKT conditions are checked after the solve
and violators put back (docs/math.md 9.5).
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
from ._base import (
    FLOAT_DTYPES,
    check_l1_ratio,
    check_sparse_X,
    l1_weights,
    run_newton,
    sample_weights,
    validate,
)
from ._logistic import (
    LinearClassifier,
    SketchedLogisticRegression,
    check_C,
    l1_strength,
    logistic_loss,
    prepare_classification,
    split_coef,
)

__all__ = ["logistic_regression_path", "SketchedLogisticRegressionCV", "c_min"]


def check_Cs(Cs):
    """An int ``k``: ``np.logspace(-4, 4, k)`` (as scikit-learn); else the values, each > 0
    (``np.inf`` allowed)."""
    if isinstance(Cs, numbers.Integral) and not isinstance(Cs, bool):
        return np.logspace(-4, 4, check_int(Cs, "Cs", minimum=1))
    values = np.atleast_1d(np.asarray(Cs, dtype=object)).ravel()
    if values.size == 0:
        raise InputError("Cs must be a positive integer or a non-empty list of C values")
    return np.array([check_C(c, "each value of Cs") for c in values], dtype=np.float64)


def fit_path(X64, codes, K, sw, Cs, fit_intercept, options, tol, name, l1_ratio=0.0):
    """Solve at every ``C`` of ``Cs`` in increasing order, each solve started at the previous
    solution (with ``l1_ratio > 0``: strong rules and a KKT check, :func:`_screened_solve`).
    Returns ``(W, n_iter)`` in the order of ``Cs``: ``W`` (n_Cs, rows, d + fit_intercept) the
    coefficients with the intercept last (multinomial ones centred), ``n_iter`` (n_Cs,)."""
    d = X64.shape[1]
    W = np.empty((len(Cs), 1 if K == 2 else K, d + fit_intercept))
    n_iter = np.zeros(len(Cs), dtype=np.int32)
    x0, previous = None, None
    for i in np.argsort(Cs, kind="stable"):
        loss, scale = logistic_loss(X64, codes, K, Cs[i], sw, fit_intercept, l1_ratio)
        strength = l1_strength(Cs[i], scale, l1_ratio)
        label = f"{name} C={Cs[i]:.4g}"
        if strength > 0:
            res, previous = _screened_solve(loss, options, tol, label, x0, strength, previous)
        else:
            res = run_newton(label, loss, options, x0=x0, tol=tol)
        x0 = res.x
        coef, icpt = split_coef(res.x, d, fit_intercept, l1=strength > 0)
        W[i] = np.column_stack([coef, icpt]) if fit_intercept else coef
        n_iter[i] = res.nit
    return W, n_iter


#: a discarded coordinate's L1 weight: it stays at zero (soft thresholding never moves it)
_DISCARDED = 1e300


def _screened_solve(loss, options, tol, label, x0, strength, previous):
    """One L1 solve of the path with the sequential strong rule [TBF+12] and a KKT check.

    ``previous``: ``(gradient of the previous solution's smooth part, its L1 weight)`` or None.
    A penalised coordinate ``j`` is discarded when ``|grad_j f_C(x_prev)| < 2 w_C - w_prev``
    (``f_C`` this ``C``'s smooth part at the previous solution: the rule's
    ``|grad_j| < 2 lambda_k - lambda_{k-1}``); it is held at zero by an infinite weight. After
    the solve, a discarded coordinate whose gradient exceeds ``w_C`` violates the KKT
    conditions: it is put back and the solve resumed. Returns ``(result, (grad, w_C))``.
    """
    weights = l1_weights(loss, strength)
    x = loss.start(None)[0] if x0 is None else x0
    g = loss.gradient(x)
    w_prev = previous[1] if previous is not None else strength
    discard = (weights > 0) & (x == 0) & (np.abs(g) < 2 * strength - w_prev)
    nit = 0
    while True:
        trial = np.where(discard, _DISCARDED, weights)
        res = run_newton(label, loss, options, x0=x, tol=tol, l1=trial)
        nit += res.nit
        x = res.x
        violators = discard & (np.abs(res.jac) > weights * (1 + 1e-12))
        if not violators.any():
            break
        discard &= ~violators
    res.nit = nit
    return res, (res.jac, strength)


def c_min(X, y, sample_weight=None, fit_intercept=True, l1_ratio=1.0):
    """The largest ``C`` whose L1 (elastic-net) solution has every coefficient zero:
    ``l1_ratio / max_j |x_j^T (s * (y - ybar))|`` (binary; the largest over the classes'
    one-vs-rest indicators for more), ``ybar`` the weighted mean of ``y`` with an intercept and
    1/2 without (the fitted probability at zero coefficients). ``inf`` for ``l1_ratio = 0``."""
    X, y = check_X_y(X, y, accept_sparse="csr", dtype=FLOAT_DTYPES)
    classes, codes = np.unique(y, return_inverse=True)
    sw = sample_weights(sample_weight, X.shape[0])
    Y = np.eye(len(classes))[codes][:, 1:] if len(classes) == 2 else np.eye(len(classes))[codes]
    if fit_intercept:
        P = np.broadcast_to((sw @ Y) / sw.sum(), Y.shape)
    else:
        P = np.full(Y.shape, 1.0 / max(len(classes), 2))
    top = float(np.abs(X.T @ (sw[:, None] * (Y - P))).max())
    return np.inf if top == 0 or l1_ratio == 0 else float(l1_ratio) / top


def logistic_regression_path(X: Any, y: ArrayLike, Cs=10, *, fit_intercept=True, tol=1e-8,
                             max_iter=100, method="auto", sketch="leverage", sketch_size=None,
                             preconditioner="auto", class_weight=None,
                             sample_weight: ArrayLike | None = None, random_state=None, verbose=0,
                             l1_ratio=0.0):
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
    random_state, l1_ratio
        As :class:`SketchedLogisticRegression` (``tol`` the relative
        Newton-decrement tolerance of every solve). With ``l1_ratio > 0`` the
        path starts from zero coefficients (the solution for ``C <= c_min``)
        with strong rules and a KKT check at every ``C``.
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
                                     verbose=verbose, l1_ratio=l1_ratio)
    _, options, tol = est._check_params()
    l1_ratio = est._l1_ratio()
    Cs = check_Cs(Cs)
    check_sparse_X(X)
    X, y = check_X_y(X, y, accept_sparse="csr", dtype=FLOAT_DTYPES)
    X64, codes, classes, sw = prepare_classification(X, y, sample_weight, class_weight)
    W, n_iter = fit_path(X64, codes, len(classes), sw, Cs, fit_intercept, options, tol,
                         "logistic_regression_path", l1_ratio)
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
    l1_ratio : float in [0, 1], default=0.0
        The elastic-net mix of every fit (the path's strong rules as
        :func:`logistic_regression_path`).
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
                 class_weight=None, refit=True, random_state=None, verbose=0, l1_ratio=0.0):
        self.Cs = Cs
        self.l1_ratio = l1_ratio
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
        r = check_l1_ratio(self.l1_ratio)
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
                             f"fold {k}", r)
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
            loss, scale = logistic_loss(X64, codes, K, self.C_, sw, fit_intercept, r)
            res = self._minimize(loss, inner, tol=tol,
                                 l1=l1_weights(loss, l1_strength(self.C_, scale, r)))
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
        model = SketchedLogisticRegression(C=C, fit_intercept=self.fit_intercept,
                                           l1_ratio=self.l1_ratio)
        model.classes_ = self.classes_
        model.n_features_in_ = self.n_features_in_
        model._set_coef(w.ravel(), self.n_features_in_)
        return model
