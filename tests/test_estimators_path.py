"""logistic_regression_path and SketchedLogisticRegressionCV (sketchnewton/estimators/_path.py):
warm-started Newton along C gives the cold fits' coefficients, with fewer iterations; the CV
estimator agrees with scikit-learn's LogisticRegressionCV on the same folds."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sketchnewton import (
    SketchedLogisticRegression,
    SketchedLogisticRegressionCV,
    logistic_regression_path,
)
from sketchnewton.datasets import make_classification_problem


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _cold(X, y, C, **kw):
    return SketchedLogisticRegression(C=C, **kw).fit(X, y)


@pytest.mark.parametrize("K, fit_intercept, method", [(2, True, "exact"), (3, True, "exact"),
                                                     (2, False, "pcg"), (4, True, "pcg")])
def test_path_equals_cold_fits_within_1e_8(K, fit_intercept, method):
    X, y, _ = make_classification_problem(1500, 12, n_classes=K, nnz_per_row=6, random_state=K)
    Cs = [10.0, 0.01, 1.0, 0.1]  # any order: solved from the smallest C up
    kw = dict(fit_intercept=fit_intercept, method=method, tol=1e-13, random_state=0)
    W, Cs_out, n_iter = logistic_regression_path(X, y, Cs, **kw)
    rows = 1 if K == 2 else K
    assert W.shape == (4, rows, 12 + fit_intercept) and n_iter.shape == (4,)
    np.testing.assert_array_equal(Cs_out, Cs)
    cold_iter = 0
    for w, C, it in zip(W, Cs, n_iter):
        est = _cold(X, y, C, **kw)
        coef = np.column_stack([est.coef_, est.intercept_]) if fit_intercept else est.coef_
        assert np.abs(w - coef).max() <= 1e-8, (C, np.abs(w - coef).max())
        cold_iter += est.n_iter_[0]
        assert it <= est.n_iter_[0] or C == min(Cs)
    assert n_iter.sum() < cold_iter
    assert n_iter[np.argmin(Cs)] == _cold(X, y, min(Cs), **kw).n_iter_[0]  # the first is cold


def test_path_with_no_penalty_and_class_weight():
    X, y, _ = make_classification_problem(800, 6, n_classes=3, random_state=1)
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    W, _, _ = logistic_regression_path(X, y, [1.0, np.inf], class_weight=cw, method="exact",
                                       tol=1e-10)
    est = _cold(X, y, np.inf, class_weight=cw, method="exact", tol=1e-10)
    assert np.abs(W[1, :, :-1] - est.coef_).max() <= 1e-8


def test_path_int_cs_and_bad_cs():
    X, y, _ = make_classification_problem(200, 4, random_state=2)
    _, Cs, _ = logistic_regression_path(X, y, 3)
    np.testing.assert_allclose(Cs, [1e-4, 1.0, 1e4])
    for bad in ([], [0.0], [-1.0, 1.0], ["a"], 0):
        with pytest.raises(ValueError, match="Cs"):
            logistic_regression_path(X, y, bad)


def _sklearn_cv(X, y, Cs, cv, scoring):
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegressionCV(Cs=Cs, cv=cv, scoring=scoring, solver="newton-cholesky",
                                    tol=1e-12, max_iter=1000).fit(X, y)


@pytest.mark.parametrize("scoring", ["neg_log_loss", None])
def test_cv_agrees_with_sklearn(breast_cancer, scoring):
    X, y = breast_cancer
    Cs = [0.001, 0.01, 0.1, 1.0, 10.0]
    cv = StratifiedKFold(4)
    ours = SketchedLogisticRegressionCV(Cs=Cs, cv=cv, scoring=scoring, method="exact",
                                        tol=1e-12).fit(X, y)
    ref = _sklearn_cv(X, y, Cs, cv, scoring or "accuracy")
    np.testing.assert_allclose(ours.scores_, ref.scores_[1], rtol=1e-6, atol=1e-9)
    assert ours.C_ == pytest.approx(np.ravel(ref.C_)[0])
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-6, atol=1e-8)
    assert ours.coefs_paths_.shape == (4, 5, 1, X.shape[1] + 1)
    assert ours.n_iter_.shape == (4, 5)
    # the refit is the plain estimator's fit at C_
    cold = _cold(X, y, ours.C_, method="exact", tol=1e-12)
    np.testing.assert_array_equal(cold.coef_, ours.coef_)


def test_cv_multinomial_refit_false_and_pandas():
    X, y, _ = make_classification_problem(900, 5, n_classes=3, random_state=4)
    df = pd.DataFrame(X, columns=list("abcde"))
    est = SketchedLogisticRegressionCV(Cs=[0.1, 1.0, 10.0], cv=3, refit=False,
                                       method="exact").fit(df, y)
    assert list(est.feature_names_in_) == list("abcde")
    assert est.coef_.shape == (3, 5) and est.intercept_.shape == (3,)
    np.testing.assert_allclose(est.coef_.sum(axis=0), 0.0, atol=1e-12)  # centred
    assert 0.1 <= est.C_ <= 10.0
    assert est.score(df, y) > 0.5
    with pytest.raises(ValueError, match="refit=True"):
        est.coef_table(df, y)


def test_cv_verbose(capsys):
    X, y, _ = make_classification_problem(300, 4, random_state=5)
    SketchedLogisticRegressionCV(Cs=[0.1, 1.0], cv=2, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert out.count("fold") == 2 and "refit at C_" in out and "|grad|" not in out
    SketchedLogisticRegressionCV(Cs=[0.1, 1.0], cv=2, verbose=2).fit(X, y)
    assert "|grad|" in capsys.readouterr().out  # the solves' tables too
