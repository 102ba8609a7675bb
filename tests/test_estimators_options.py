"""The options every estimator shares (sketchnewton/estimators/_base.py): warm starts, no penalty
(C=np.inf, alpha=0), fit_intercept=False, verbose levels, pandas feature names, class weights,
and the naming of the tolerances (tol for the GLMs' Newton decrement, eps for the error bound)."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from threadpoolctl import threadpool_limits

from sketchnewton import (
    NormalizedRegressor,
    SketchedLogisticRegression,
    SketchedLogisticRegressionCV,
    SketchedPoissonRegressor,
)
from sketchnewton.datasets import make_classification_problem

GLMS = (SketchedLogisticRegression, SketchedPoissonRegressor)


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((800, 6)) * 0.4
    y = rng.poisson(np.exp(X @ rng.standard_normal(6) * 0.5 + 0.3)).astype(float)
    return X, y


def _ref(cls, **kw):
    with threadpool_limits(limits=1, user_api="blas"):
        return cls(**kw)


def _max_diff(a, b):
    return max(np.abs(np.ravel(a.coef_) - np.ravel(b.coef_)).max(),
               np.abs(np.ravel(a.intercept_) - np.ravel(b.intercept_)).max())


# -- warm_start ----------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_logistic_warm_start_gives_the_cold_fit(K, method):
    X, y, _ = make_classification_problem(1200, 10, n_classes=K, random_state=K)
    kw = dict(method=method, tol=1e-13, random_state=0)
    cold = SketchedLogisticRegression(C=5.0, **kw).fit(X, y)
    warm = SketchedLogisticRegression(C=1.0, warm_start=True, **kw).fit(X, y)
    warm.set_params(C=5.0).fit(X, y)
    assert _max_diff(warm, cold) <= 1e-8
    assert warm.n_iter_[0] < cold.n_iter_[0]
    # a warm start from another problem's shape is ignored (a fresh start)
    other = SketchedLogisticRegression(warm_start=True, **kw).fit(X[:, :4], y).fit(X, y)
    assert other.coef_.shape == cold.coef_.shape


def test_poisson_warm_start_gives_the_cold_fit(counts):
    X, y = counts
    kw = dict(method="exact", tol=1e-13)
    cold = SketchedPoissonRegressor(alpha=1e-3, **kw).fit(X, y)
    warm = SketchedPoissonRegressor(alpha=1e-1, warm_start=True, **kw).fit(X, y)
    warm.set_params(alpha=1e-3).fit(X, y)
    assert _max_diff(warm, cold) <= 1e-8
    assert warm.n_iter_[0] < cold.n_iter_[0]


# -- no penalty ----------------------------------------------------------------------------------
@pytest.mark.parametrize("K", [2, 3])
def test_C_inf_is_no_penalty_as_sklearn(K):
    X, y, _ = make_classification_problem(2000, 5, n_classes=K, random_state=10 + K)
    ours = SketchedLogisticRegression(C=np.inf, method="exact", tol=1e-13).fit(X, y)
    ref = _ref(LogisticRegression, C=np.inf, solver="newton-cholesky", tol=1e-12,
               max_iter=1000).fit(X, y)
    c2 = ref.coef_ - ref.coef_.mean(axis=0) if K > 2 else ref.coef_
    assert np.abs(ours.coef_ - c2).max() <= 1e-6
    assert ours.result_.success


def test_alpha_zero_is_no_penalty_as_sklearn(counts):
    X, y = counts
    ours = SketchedPoissonRegressor(alpha=0.0, method="exact", tol=1e-13).fit(X, y)
    ref = _ref(PoissonRegressor, alpha=0.0, solver="newton-cholesky", tol=1e-12,
               max_iter=1000).fit(X, y)
    assert _max_diff(ours, ref) <= 1e-7


# -- fit_intercept=False -------------------------------------------------------------------------
def test_fit_intercept_false_everywhere(counts):
    X, y = counts
    p = SketchedPoissonRegressor(alpha=1e-2, fit_intercept=False, method="exact").fit(X, y)
    ref = _ref(PoissonRegressor, alpha=1e-2, fit_intercept=False, solver="newton-cholesky",
               tol=1e-12).fit(X, y)
    assert p.intercept_ == 0.0 and np.abs(p.coef_ - ref.coef_).max() <= 1e-7
    assert "intercept" not in p.coef_table(X, y).index
    Xc, yc, _ = make_classification_problem(600, 4, n_classes=3, random_state=20)
    cv = SketchedLogisticRegressionCV(Cs=[0.1, 1.0], cv=2, fit_intercept=False).fit(Xc, yc)
    assert np.all(cv.intercept_ == 0) and cv.coefs_paths_.shape[-1] == 4
    assert "fit_intercept" not in NormalizedRegressor().get_params()  # no intercept in that model


# -- verbose -------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", GLMS + (NormalizedRegressor,))
def test_verbose_levels(cls, capsys, counts):
    X, y = counts
    if cls is SketchedLogisticRegression:
        y = (y > 1).astype(int)
    elif cls is NormalizedRegressor:
        y = y / y.sum()
    name = cls.__name__
    est = cls(verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""
    cls(verbose=1).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["iter", "loss", "|grad|"]
    assert len(out) == est.result_.nit + 2 and not any(name in line for line in out)
    cls(verbose=2).fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"[{name}] method 'auto' chose") and "estimated passes" in out[0]
    assert out[-1].startswith(f"[{name}] converged in {est.result_.nit} Newton iterations")
    cls(verbose=2, method="exact").fit(X, y)
    assert "method 'exact' (as given)" in capsys.readouterr().out


# -- pandas --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", GLMS)
def test_feature_names_in_with_pandas(cls, counts):
    X, y = counts
    if cls is SketchedLogisticRegression:
        y = (y > 1).astype(int)
    df = pd.DataFrame(X, columns=[f"col{j}" for j in range(X.shape[1])])
    est = cls().fit(df, pd.Series(y))
    np.testing.assert_array_equal(est.feature_names_in_, df.columns)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[df.columns[::-1]])
    np.testing.assert_allclose(est.predict(df), cls().fit(X, y).predict(X), rtol=1e-12)
    assert not hasattr(cls().fit(X, y), "feature_names_in_")
    # a refit on unnamed data forgets the names
    assert not hasattr(est.fit(X, y), "feature_names_in_")


# -- class_weight --------------------------------------------------------------------------------
@pytest.mark.parametrize("class_weight", ["balanced", {0: 0.2, 1: 1.0, 2: 5.0}])
def test_class_weight_as_sklearn(class_weight):
    X, y, _ = make_classification_problem(900, 6, n_classes=3, random_state=21)
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:40]]  # imbalanced
    X, y = X[keep], y[keep]
    ours = SketchedLogisticRegression(C=0.5, class_weight=class_weight, method="exact",
                                      tol=1e-13).fit(X, y)
    ref = _ref(LogisticRegression, C=0.5, class_weight=class_weight, solver="newton-cholesky",
               tol=1e-12, max_iter=1000).fit(X, y)
    assert np.abs(ours.coef_ - (ref.coef_ - ref.coef_.mean(axis=0))).max() <= 1e-6
    unweighted = SketchedLogisticRegression(C=0.5, method="exact").fit(X, y)
    assert np.abs(ours.coef_ - unweighted.coef_).max() > 1e-2  # the weights matter


def test_class_weight_refused_with_bad_values():
    X, y, _ = make_classification_problem(100, 3, random_state=22)
    with pytest.raises(ValueError):
        SketchedLogisticRegression(class_weight="heavy").fit(X, y)


# -- tolerances ----------------------------------------------------------------------------------
def test_tolerance_names():
    """One name per meaning: ``tol`` (relative Newton decrement) for the GLM estimators and the
    path, ``eps`` (error bound ||x - x*||) for NormalizedRegressor, as sketchnewton.solve."""
    for cls in GLMS + (SketchedLogisticRegressionCV,):
        params = cls().get_params()
        assert "tol" in params and "eps" not in params
    params = NormalizedRegressor().get_params()
    assert "eps" in params and "tol" not in params
    for cls in GLMS + (SketchedLogisticRegressionCV, NormalizedRegressor):
        assert "n_jobs" not in cls().get_params()  # threads policy: the module docstring


def test_tol_is_relative_to_the_objective():
    """``tol`` bounds the objective error relative to |f|: scaling every sample weight by 1e6
    scales f by 1e6 and leaves the iterations and the solution unchanged."""
    X, y, _ = make_classification_problem(1000, 5, random_state=23)
    a = SketchedLogisticRegression(C=1.0, method="exact", tol=1e-6).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = SketchedLogisticRegression(C=1e-6, method="exact", tol=1e-6).fit(
            X, y, sample_weight=np.full(len(y), 1e6))
    assert a.n_iter_[0] == b.n_iter_[0]
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
