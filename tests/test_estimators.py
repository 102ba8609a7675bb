"""scikit-learn estimators: API contract (check_estimator for every estimator), agreement with
LogisticRegression, solver methods.

The features of issue 19 have their own files mirroring the package's modules:
tests/test_estimators_normalized.py, _path.py, _coef_table.py and _options.py (warm starts,
no penalty, no intercept, verbose levels, pandas feature names, class weights, tolerances)."""

import pickle
import warnings

import numpy as np
import pytest
from conftest import planted_target, random_sparse
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from sketchnewton import solve
from sketchnewton.datasets import make_classification_problem
from sketchnewton.estimators import (
    NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS,
    NormalizedRegressor,
    SketchedLogisticRegression,
    SketchedLogisticRegressionCV,
    SketchedPoissonRegressor,
)


def _rel(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-300)


def _centered(est):
    """Coefficients and intercepts, multinomial intercepts centred (the model is shift invariant)."""
    b = np.asarray(est.intercept_, dtype=float)
    if b.size > 1:
        b = b - b.mean()
    return est.coef_, b


def _sklearn(X, y, C, sample_weight=None, fit_intercept=True, class_weight=None):
    with threadpool_limits(limits=1, user_api="blas"):  # small problems: no BLAS threads
            return LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000,
                                  fit_intercept=fit_intercept, class_weight=class_weight
                                  ).fit(X, y, sample_weight=sample_weight)


def _assert_same(ours, ref, rtol=1e-5):
    c1, b1 = _centered(ours)
    c2, b2 = _centered(ref)
    assert c1.shape == c2.shape and b1.shape == np.shape(b2)
    assert _rel(c1, c2) <= rtol, _rel(c1, c2)
    scale = max(np.linalg.norm(c2), 1.0)
    assert np.linalg.norm(b1 - b2) / scale <= rtol, np.linalg.norm(b1 - b2) / scale


# -- scikit-learn's estimator suite -------------------------------------------------------
#: every public estimator, with its default parameters; CV: fewer C values (quicker) and
#: method="exact" (check_sample_weight_equivalence_on_sparse_data compares predictions to rtol
#: 1e-7; on its 45 x 30 three-class data "auto" picks "cg", whose inexact inner solves leave the
#: refits on weighted and on repeated rows 1e-7 apart)
ALL_ESTIMATORS = [SketchedLogisticRegression(random_state=0),
                  SketchedLogisticRegressionCV(Cs=2, cv=2, method="exact", random_state=0),
                  SketchedPoissonRegressor(random_state=0),
                  NormalizedRegressor(random_state=0)]


def _expected_failures(est):
    """Only NormalizedRegressor declares checks it cannot pass (targets that are no
    distribution over the rows; see its module). The others pass everything."""
    return NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS if isinstance(est, NormalizedRegressor) else {}


@parametrize_with_checks(ALL_ESTIMATORS, expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def test_only_normalized_regressor_declares_failures():
    assert all(_expected_failures(e) == {} for e in ALL_ESTIMATORS[:3])
    assert "check_methods_subset_invariance" in _expected_failures(ALL_ESTIMATORS[3])


# -- same answers as scikit-learn --------------------------------------------------------
@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("method", ["exact", "pcg", "auto"])
def test_breast_cancer_matches_sklearn(breast_cancer, C, method):
    X, y = breast_cancer
    ours = SketchedLogisticRegression(C=C, method=method, sketch_size=300, random_state=0).fit(X, y)
    assert ours.coef_.shape == (1, X.shape[1]) and ours.intercept_.shape == (1,)
    _assert_same(ours, _sklearn(X, y, C))


@pytest.mark.parametrize("C", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_digits_matches_sklearn(digits, C, method):
    X, y = digits
    # tol is relative accuracy of the objective: coefficients within 1e-5 need about its square
    ours = SketchedLogisticRegression(C=C, method=method, sketch_size=600, tol=1e-10,
                                      random_state=0).fit(X, y)
    assert ours.coef_.shape == (10, 64) and ours.intercept_.shape == (10,)
    ref = _sklearn(X, y, C)
    _assert_same(ours, ref)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("K", [2, 4])
@pytest.mark.parametrize("sparse", [True, False])
def test_generated_ill_conditioned_matches_sklearn(K, sparse):
    X, y, _ = make_classification_problem(3000, 30, n_classes=K, nnz_per_row=8 if sparse else None,
                                          column_scale=(1e-2, 1e2), random_state=1)
    for C in (0.01, 100.0):
        ref = _sklearn(X, y, C)
        for method in ("exact", "pcg"):
            ours = SketchedLogisticRegression(C=C, method=method, random_state=0).fit(X, y)
            _assert_same(ours, ref)


def test_sample_weight_class_weight_and_no_intercept_match_sklearn():
    X, y, _ = make_classification_problem(800, 12, n_classes=3, random_state=2)
    sw = np.random.default_rng(0).uniform(0.1, 3.0, size=len(y))
    for fit_intercept in (True, False):
        ref = _sklearn(X, y, 0.5, sample_weight=sw, fit_intercept=fit_intercept, class_weight="balanced")
        ours = SketchedLogisticRegression(C=0.5, fit_intercept=fit_intercept, class_weight="balanced",
                                          method="pcg", random_state=0).fit(X, y, sample_weight=sw)
        _assert_same(ours, ref)
        if not fit_intercept:
            assert np.all(ours.intercept_ == 0)
    # integer sample weights are repetitions
    Xb, yb = X[y < 2], y[y < 2]
    rep = np.random.default_rng(1).integers(0, 3, size=len(yb))
    a = SketchedLogisticRegression(method="exact").fit(Xb, yb, sample_weight=rep)
    b = SketchedLogisticRegression(method="exact").fit(np.repeat(Xb, rep, axis=0), np.repeat(yb, rep))
    _assert_same(a, b, rtol=1e-7)


# -- API ---------------------------------------------------------------------------------
def test_string_labels_sparse_and_dense_agree():
    X, y, _ = make_classification_problem(600, 10, n_classes=3, nnz_per_row=5, random_state=3)
    labels = np.array(["cat", "dog", "emu"])[y]
    a = SketchedLogisticRegression(method="pcg", random_state=0).fit(X, labels)
    b = SketchedLogisticRegression(method="exact").fit(X.toarray(), labels)
    assert list(a.classes_) == ["cat", "dog", "emu"]
    _assert_same(a, b, rtol=1e-5)
    P = a.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(a.predict_log_proba(X)), P, rtol=1e-10)
    np.testing.assert_array_equal(a.predict(X), a.classes_[P.argmax(axis=1)])
    assert a.decision_function(X).shape == (600, 3)


def test_binary_shapes_proba_and_log_proba():
    X, y, _ = make_classification_problem(500, 6, random_state=4)
    est = SketchedLogisticRegression(C=10.0).fit(X, y + 5)
    assert est.coef_.shape == (1, 6) and est.intercept_.shape == (1,) and est.n_iter_.shape == (1,)
    s = est.decision_function(X)
    assert s.shape == (500,)
    P = est.predict_proba(X)
    np.testing.assert_allclose(P[:, 1], 1 / (1 + np.exp(-s)))
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(P), rtol=1e-10)
    assert set(est.predict(X)) <= {5, 6}
    assert 0.5 < est.score(X, y + 5) <= 1.0


def test_pipeline_gridsearch_clone_pickle():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), SketchedLogisticRegression(random_state=0))
    gs = GridSearchCV(pipe, {"sketchedlogisticregression__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert gs.best_score_ > 0.9
    est = gs.best_estimator_[-1]
    c = clone(est)
    assert c.get_params() == est.get_params() and not hasattr(c, "coef_")
    est2 = pickle.loads(pickle.dumps(gs.best_estimator_))
    np.testing.assert_array_equal(est2.predict_proba(X), gs.best_estimator_.predict_proba(X))


def test_convergence_warning_when_not_converged():
    X, y, _ = make_classification_problem(300, 5, n_classes=3, random_state=5)
    with pytest.warns(ConvergenceWarning):
        SketchedLogisticRegression(max_iter=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SketchedLogisticRegression().fit(X, y)


@pytest.mark.parametrize("bad", [dict(C=0.0), dict(C=-1.0), dict(tol=0.0), dict(max_iter=-1),
                                 dict(method="nope"), dict(sketch="srht"), dict(sketch_size=0)])
def test_invalid_parameters_raise(bad):
    X, y, _ = make_classification_problem(50, 3, random_state=6)
    with pytest.raises(ValueError):
        SketchedLogisticRegression(**bad).fit(X, y)


def test_one_class_raises():
    with pytest.raises(ValueError, match="class"):
        SketchedLogisticRegression().fit(np.ones((5, 2)), np.zeros(5))


def test_sketch_method_reaches_the_same_minimiser():
    X, y, _ = make_classification_problem(4000, 20, n_classes=3, random_state=7)
    ref = SketchedLogisticRegression(method="exact").fit(X, y)
    sk = SketchedLogisticRegression(method="sketch", max_iter=300, random_state=0).fit(X, y)
    _assert_same(sk, ref, rtol=1e-4)
    assert sk.result_.method == "sketch"


# -- NormalizedRegressor (more in test_estimators_normalized.py) --------------------------
def test_normalized_regressor_matches_solve_and_predicts_normalized():
    A = random_sparse(400, 8, 0.5, seed=0)
    x_true = np.random.default_rng(0).standard_normal(8) * 0.5
    b = planted_target(A, x_true, link="resnet")
    est = NormalizedRegressor(link="resnet", random_state=0).fit(A, b)
    res = solve(A, b, eps=1e-8, link="resnet", random_state=0)
    np.testing.assert_allclose(est.coef_, res.x, rtol=1e-10, atol=1e-12)
    assert est.n_iter_ == res.nit
    f = est.predict(A)
    np.testing.assert_allclose(f.sum(), 1.0)
    np.testing.assert_allclose(f, b, atol=1e-8)
    assert est.score(A, b) > 0.999
    assert isinstance(pickle.loads(pickle.dumps(est)), NormalizedRegressor)
    with pytest.warns(ConvergenceWarning):
        NormalizedRegressor(max_iter=1).fit(A, b)


def test_normalized_regressor_in_gridsearch():
    """Each fold fits the conditional distribution on its rows (y divided by its sum) and is
    scored against it: the planted (noise-free) model scores R^2 ~ 1 on held-out rows."""
    A = random_sparse(300, 6, 0.6, seed=1)
    b = planted_target(A, np.full(6, 0.3), link="softmax")
    gs = GridSearchCV(NormalizedRegressor(link="softmax"), {"lam": [0.0, 1e-4]}, cv=2).fit(A, b)
    assert gs.best_params_["lam"] == 0.0
    assert gs.best_score_ > 0.999
    assert clone(gs.best_estimator_).get_params()["link"] == "softmax"


# -- the high-dimensional methods --------------------------------------------------------
@pytest.mark.parametrize("method, preconditioner", [("cg", "diagonal"), ("cg", "nystrom"),
                                                    ("cg", "none"), ("dual", "auto"),
                                                    ("auto", "auto")])
@pytest.mark.parametrize("K", [2, 3])
def test_high_dimensional_methods_match_sklearn(method, preconditioner, K):
    """p > n (text-like, badly scaled columns): every method reaches scikit-learn's
    newton-cholesky coefficients within 1e-6."""
    if method == "dual" and K > 2:
        pytest.skip("the dual form needs a diagonal row curvature (binary, Poisson)")
    X, y, _ = make_classification_problem(150, 200, n_classes=K, nnz_per_row=10,
                                          column_scale=(0.1, 10), random_state=5)
    for C in (1.0, 100.0):
        ref = _sklearn(X, y, C)
        ours = SketchedLogisticRegression(C=C, method=method, preconditioner=preconditioner,
                                          tol=1e-12, max_iter=300, random_state=0).fit(X, y)
        assert ours.result_.success
        c1, b1 = _centered(ours)
        c2, b2 = _centered(ref)
        assert np.abs(c1 - c2).max() <= 1e-6 and np.abs(b1 - b2).max() <= 1e-6


def test_auto_never_builds_a_dense_model_that_does_not_fit():
    """Many features (p = K d large): auto chooses a method without a (p x p) matrix, and an
    explicit dense method is refused with a clear error before any allocation."""
    from sketchnewton.losses import MultinomialLoss
    from sketchnewton._auto import choose_method

    X, y, _ = make_classification_problem(300, 20_000, n_classes=4, nnz_per_row=5,
                                          random_state=6)
    loss = MultinomialLoss(X, y, 4, lam=1.0, fit_intercept=True)
    assert choose_method(loss)[0] in ("cg", "dual")
    with pytest.raises(ValueError, match="GiB"):
        SketchedLogisticRegression(method="exact").fit(X, y)


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("weight", [1e150, 1e200, 1e300])
def test_huge_sample_weights_solve_the_weighted_objective(K, weight):
    """Issue 18 item 4: weights of 1e200 used to overflow into an all-zero "converged" model.

    ``sample_weight = w * ones`` with ``C = 1`` is the objective of ``C = w``: compared with
    scikit-learn's fit at ``C = w`` (independent), for binary and multinomial alike.
    """
    X, y, _ = make_classification_problem(500, 5, n_classes=K, random_state=0)
    clf = SketchedLogisticRegression(C=1.0).fit(X, y, sample_weight=np.full(500, weight))
    ref = LogisticRegression(C=weight, tol=1e-12, max_iter=10000).fit(X, y)
    assert np.abs(clf.coef_).max() > 0.1
    assert _rel(clf.coef_, ref.coef_) <= 1e-6
