"""NormalizedRegressor (sketchnewton/estimators/_normalized.py): the regressor of a distribution
over the rows, its targets, its deprecated alias SoftmaxRegression, warm starts, pandas names."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import planted_target, random_sparse

import sketchnewton as sn
from sketchnewton.estimators import (
    NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS,
    SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS,
    NormalizedRegressor,
    SoftmaxRegression,
)


@pytest.fixture(scope="module")
def problem():
    A = random_sparse(500, 7, 0.5, seed=3)
    x_true = np.random.default_rng(3).standard_normal(7) * 0.4
    return A, planted_target(A, x_true, link="softmax"), x_true


@pytest.mark.parametrize("y", [np.arange(500) % 3, (np.arange(500) % 2).astype(bool),
                               np.array(["a", "b"] * 250), np.array(["a", "b"] * 250, dtype=object),
                               list(np.arange(500) % 2)],
                         ids=["int", "bool", "str", "object", "list-of-int"])
def test_class_labels_are_refused_pointing_to_logistic_regression(problem, y):
    A = problem[0]
    with pytest.raises(ValueError, match="SketchedLogisticRegression") as info:
        NormalizedRegressor().fit(A, y)
    assert "class labels" in str(info.value)
    assert not hasattr(NormalizedRegressor(), "coef_")


def test_negative_or_zero_targets_are_refused(problem):
    A, b, _ = problem
    bad = b.copy()
    bad[3] = -1e-3
    with pytest.raises(ValueError, match="negative entries"):
        NormalizedRegressor().fit(A, bad)
    with pytest.raises(ValueError, match="zero on every row"):
        NormalizedRegressor().fit(A, np.zeros(A.shape[0]))


def test_target_is_divided_by_its_sum(problem):
    """Weights of the rows in any scale give the fit of the distribution they define."""
    A, b, _ = problem
    ref = NormalizedRegressor(link="softmax", method="exact").fit(A, b)
    scaled = NormalizedRegressor(link="softmax", method="exact").fit(A, 37.5 * b)
    np.testing.assert_allclose(scaled.coef_, ref.coef_, rtol=1e-12, atol=1e-14)
    assert ref.score(A, b) == pytest.approx(ref.score(A, 37.5 * b), rel=1e-12)


def test_softmax_regression_is_a_deprecated_alias(problem):
    A, b, _ = problem
    with pytest.warns(FutureWarning, match="NormalizedRegressor"):
        old = SoftmaxRegression(link="softmax", method="exact")
    with pytest.warns(FutureWarning, match="SketchedLogisticRegression"):
        old.fit(A, b)
    new = NormalizedRegressor(link="softmax", method="exact").fit(A, b)
    assert isinstance(old, NormalizedRegressor)
    np.testing.assert_array_equal(old.coef_, new.coef_)
    assert sn.SoftmaxRegression is SoftmaxRegression
    assert SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS is NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        assert SoftmaxRegression(lam=0.5).get_params()["lam"] == 0.5  # clone-able signature
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="SketchedLogisticRegression"):
        SoftmaxRegression().fit(A, np.arange(A.shape[0]) % 2)


def test_predict_recovers_the_planted_distribution(problem):
    A, b, x_true = problem
    est = NormalizedRegressor(link="softmax", eps=1e-10, random_state=0).fit(A, b)
    np.testing.assert_allclose(est.coef_, x_true, atol=1e-8)
    np.testing.assert_allclose(est.predict(A), b, atol=1e-10)
    np.testing.assert_allclose(est.predict(A[:1]), [1.0])  # normalised over the rows given


def test_eps_is_the_error_bound(problem):
    """``eps`` bounds ||x - x*||: a loose eps stops earlier, and its error stays below eps."""
    A, b, x_true = problem
    for eps in (1e-2, 1e-5, 1e-10):
        est = NormalizedRegressor(link="softmax", eps=eps, method="exact").fit(A, b)
        assert np.linalg.norm(est.coef_ - x_true) <= eps
    assert "tol" not in NormalizedRegressor().get_params()


@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_warm_start_gives_the_cold_solution(problem, method):
    A, b, _ = problem
    kw = dict(link="softmax", method=method, eps=1e-12, random_state=0)
    cold = NormalizedRegressor(lam=1e-3, **kw).fit(A, b)
    warm = NormalizedRegressor(lam=1e-2, warm_start=True, **kw).fit(A, b)
    warm.set_params(lam=1e-3).fit(A, b)
    assert np.abs(warm.coef_ - cold.coef_).max() <= 1e-8
    assert warm.n_iter_ <= cold.n_iter_
    # started at the previous solution (lam=1e-2), not at the loss's default start
    assert warm.result_.history[0]["loss"] < cold.result_.history[0]["loss"]
    # not warm: the previous solution is ignored
    again = NormalizedRegressor(lam=1e-2, **kw).fit(A, b).set_params(lam=1e-3).fit(A, b)
    assert again.result_.history[0]["loss"] == cold.result_.history[0]["loss"]
    np.testing.assert_array_equal(again.coef_, cold.coef_)


def test_pandas_feature_names(problem):
    A, b, _ = problem
    df = pd.DataFrame(A.toarray(), columns=[f"f{j}" for j in range(A.shape[1])])
    est = NormalizedRegressor(link="softmax", method="exact").fit(df, pd.Series(b))
    assert list(est.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        plain = est.predict(A.toarray())
    np.testing.assert_allclose(est.predict(df), plain, rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df.rename(columns={"f0": "other"}))
