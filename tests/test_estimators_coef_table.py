"""coef_table (sketchnewton/estimators/_coef_table.py): standard errors, z and p-values from the
Hessian of the fitted objective, checked against an independent computation: the objective
written here in numpy, its Hessian by central differences of its gradient, inverted by numpy."""

import builtins
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logsumexp

from sketchnewton import SketchedLogisticRegression, SketchedPoissonRegressor
from sketchnewton.datasets import make_classification_problem


def _fd_hessian(grad, theta, h=1e-5):
    H = np.empty((theta.size, theta.size))
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        H[:, j] = (grad(theta + e) - grad(theta - e)) / (2 * h)
    return 0.5 * (H + H.T)


def _design(X, fit_intercept):
    return np.column_stack([X, np.ones(len(X))]) if fit_intercept else X


def _penalty_mask(d, fit_intercept):
    return np.r_[np.ones(d), np.zeros(int(fit_intercept))]


def _binary_grad(X, y, sw, C, fit_intercept):
    """Gradient of sum_i sw_i log(1 + exp(-s_i z_i)) + ||w||^2 / (2C) (intercept unpenalised)."""
    Z, s = _design(X, fit_intercept), 2.0 * y - 1.0
    mask = _penalty_mask(X.shape[1], fit_intercept) / C
    return lambda t: -Z.T @ (sw * s * expit(-s * (Z @ t))) + mask * t


def _multinomial_grad(X, y, sw, C, K, fit_intercept):
    Z = _design(X, fit_intercept)
    Y = np.eye(K)[y]
    mask = _penalty_mask(X.shape[1], fit_intercept) / C

    def grad(t):
        W = t.reshape(K, -1)
        S = Z @ W.T
        P = np.exp(S - logsumexp(S, axis=1, keepdims=True))
        return (((P - Y) * sw[:, None]).T @ Z + mask * W).ravel()
    return grad


def _poisson_grad(X, y, sw, alpha, fit_intercept):
    """Gradient of sum_i sw_i (exp(eta_i) - y_i eta_i) + alpha sum(sw) / 2 ||w||^2."""
    Z = _design(X, fit_intercept)
    mask = _penalty_mask(X.shape[1], fit_intercept) * alpha * sw.sum()
    return lambda t: Z.T @ (sw * (np.exp(Z @ t) - y)) + mask * t


def _check(table, theta, cov):
    se = np.sqrt(np.diag(cov))
    np.testing.assert_allclose(table["coef"], theta, rtol=1e-12)
    np.testing.assert_allclose(table["se"], se, rtol=1e-5)
    np.testing.assert_allclose(table["z"], theta / se, rtol=1e-5)
    p = [math.erfc(abs(z) / math.sqrt(2)) for z in theta / se]
    np.testing.assert_allclose(table["p_value"], p, rtol=1e-4, atol=1e-300)


@pytest.mark.parametrize("C, fit_intercept", [(np.inf, True), (0.3, True), (2.0, False)])
def test_binary_logistic_against_finite_differences(C, fit_intercept):
    X, y, _ = make_classification_problem(700, 5, random_state=0)
    sw = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    est = SketchedLogisticRegression(C=C, fit_intercept=fit_intercept, method="exact",
                                     tol=1e-14).fit(X, y, sample_weight=sw)
    table = est.coef_table(X, y, sample_weight=sw)
    theta = np.r_[est.coef_.ravel(), est.intercept_] if fit_intercept else est.coef_.ravel()
    H = _fd_hessian(_binary_grad(X, y, sw, C, fit_intercept), theta)
    _check(table, theta, np.linalg.inv(H))
    names = [f"x{j}" for j in range(5)] + (["intercept"] if fit_intercept else [])
    assert list(table.index) == names and list(table.columns) == ["coef", "se", "z", "p_value"]
    if np.isinf(C):  # the classical maximum-likelihood formula (X^T W X)^{-1}
        Z = _design(X, True)
        p = expit(Z @ theta)
        cov = np.linalg.inv(Z.T @ (Z * (sw * p * (1 - p))[:, None]))
        np.testing.assert_allclose(table["se"], np.sqrt(np.diag(cov)), rtol=1e-8)


def test_multinomial_is_the_pseudo_inverse_on_centred_parameters():
    X, y, _ = make_classification_problem(900, 4, n_classes=3, random_state=1)
    sw = np.ones(len(y))
    est = SketchedLogisticRegression(C=1.0, method="exact", tol=1e-14).fit(X, y)
    table = est.coef_table(X, y)
    theta = np.column_stack([est.coef_, est.intercept_]).ravel()
    H = _fd_hessian(_multinomial_grad(X, y, sw, 1.0, 3, True), theta)
    cov = np.linalg.pinv(H, rcond=1e-7, hermitian=True)  # the intercept shift is a null direction
    _check(table, theta, cov)
    assert table.index.names == ["class", "name"]
    assert list(table.loc[2].index) == ["x0", "x1", "x2", "x3", "intercept"]


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_poisson_against_finite_differences(alpha):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 4)) * 0.5
    y = rng.poisson(np.exp(X @ [0.3, -0.2, 0.5, 0.0] + 0.4)).astype(float)
    sw = rng.uniform(0.5, 1.5, len(y))
    est = SketchedPoissonRegressor(alpha=alpha, method="exact", tol=1e-14).fit(X, y, sw)
    table = est.coef_table(X, y, sw)
    theta = np.r_[est.coef_, est.intercept_]
    H = _fd_hessian(_poisson_grad(X, y, sw, alpha, True), theta)
    _check(table, theta, np.linalg.inv(H))


def test_pandas_names_and_dict_without_pandas(monkeypatch):
    X, y, _ = make_classification_problem(300, 3, random_state=3)
    df = pd.DataFrame(X, columns=["age", "dose", "weight"])
    est = SketchedLogisticRegression(method="exact").fit(df, y)
    table = est.coef_table(df, y)
    assert list(table.index) == ["age", "dose", "weight", "intercept"]
    real_import = builtins.__import__

    def no_pandas(name, *args, **kwargs):
        if name == "pandas":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.warns(UserWarning, match="feature names"):  # a numpy X (pandas is "missing")
        plain = est.coef_table(df.to_numpy(), y)
    assert isinstance(plain, dict) and list(plain["name"]) == list(table.index)
    np.testing.assert_allclose(plain["se"], table["se"])


def test_wrong_data_warns_and_singular_hessian_refused():
    X, y, _ = make_classification_problem(400, 3, random_state=4)
    est = SketchedLogisticRegression(method="exact").fit(X, y)
    with pytest.warns(UserWarning, match="not the minimiser"):
        est.coef_table(X[::-1] * 2.0, y)
    Xc = np.column_stack([X, X[:, 0]])  # collinear columns, no penalty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flat = SketchedLogisticRegression(C=np.inf, method="exact").fit(Xc, y)
    with pytest.raises(ValueError, match="singular"):
        flat.coef_table(Xc, y)
    with pytest.raises(ValueError, match="not fitted on"):
        est.coef_table(X, y + 7)
