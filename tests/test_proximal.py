"""Proximal Newton (strategies/_proximal.py, _kernels/cd.py) and the estimators' ``l1_ratio``:
coefficients and support against independent references (glum, scikit-learn's saga), one step
of every model form against the exact proximal Newton step, Dask input."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton.estimators import SketchedLogisticRegression, SketchedPoissonRegressor
from sketchnewton.exceptions import InputError
from sketchnewton.losses import LogisticLoss, MultinomialLoss, PoissonLoss
from sketchnewton.strategies import STRATEGIES, Iterate, StrategySettings
from sketchnewton.losses import L1Penalty
from sketchnewton.strategies._proximal import INNER_FORCING_MIN
from sketchnewton.strategies._face import _face_solve

glum = pytest.importorskip("glum")

#: coefficients equal the reference within this share of the largest coefficient
RTOL = 1e-6


def binary_problem(n=600, d=30, seed=0, dense=False):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.3, random_state=rng, format="csr")
    X.data = rng.standard_normal(X.nnz)
    w = np.zeros(d)
    k = min(6, d)
    w[:k] = rng.standard_normal(k) * 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w) - 0.3))).astype(float)
    return (X.toarray() if dense else X), y


def poisson_problem(n=600, d=20, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * 0.5
    w = np.zeros(d)
    w[:5] = rng.standard_normal(5) * 0.4
    y = rng.poisson(np.exp(X @ w + 0.5)).astype(float)
    return X, y


def multinomial_problem(n=200, d=6, K=3, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((K, d))
    W[:, 3:] = 0
    z = X @ W.T
    P = np.exp(z - z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = np.array([rng.choice(K, p=p) for p in P])
    return X, y


def assert_same_fit(coef, ref, rtol=RTOL):
    coef, ref = np.ravel(coef), np.ravel(ref)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(coef, ref, rtol=0, atol=rtol * scale)
    # the support: the reference's zeros are exact; ours too (coordinate descent sets zeros)
    np.testing.assert_array_equal(coef != 0, np.abs(ref) > 1e-12 * scale)


def glum_fit(X, y, family, alpha, l1_ratio):
    g = glum.GeneralizedLinearRegressor(family=family, alpha=alpha, l1_ratio=l1_ratio,
                                        gradient_tol=1e-12, max_iter=1000, fit_intercept=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g.fit(X, y)
    return g


# -- against independent references ---------------------------------------------------------------
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("C", [0.05, 0.5])
def test_binary_logistic_equals_glum(l1_ratio, C):
    """scikit-learn's objective ``C sum l_i + (1-r)/2 ||w||^2 + r ||w||_1`` is glum's mean loss
    plus ``alpha (r ||w||_1 + (1-r)/2 ||w||^2)`` with ``alpha = 1 / (C n)``."""
    X, y = binary_problem()
    n = X.shape[0]
    est = SketchedLogisticRegression(C=C, l1_ratio=l1_ratio, tol=1e-14, random_state=0).fit(X, y)
    ref = glum_fit(X, y, "binomial", 1.0 / (C * n), l1_ratio)
    assert est.result_.success
    assert 0 < np.count_nonzero(est.coef_) < X.shape[1]
    assert_same_fit(np.r_[est.coef_.ravel(), est.intercept_], np.r_[ref.coef_, ref.intercept_])


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("alpha", [0.02, 0.1])
def test_poisson_equals_glum(l1_ratio, alpha):
    X, y = poisson_problem()
    est = SketchedPoissonRegressor(alpha=alpha, l1_ratio=l1_ratio, tol=1e-14,
                                   random_state=0).fit(X, y)
    ref = glum_fit(X, y, "poisson", alpha, l1_ratio)
    assert est.result_.success
    assert 0 < np.count_nonzero(est.coef_) < X.shape[1]
    assert_same_fit(np.r_[est.coef_, est.intercept_], np.r_[ref.coef_, ref.intercept_])


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("C", [0.02, 0.2])
def test_multinomial_equals_saga(l1_ratio, C):
    """scikit-learn's saga on the same objective (multinomial, unpenalised intercepts), run to
    its tightest tolerance."""
    from sklearn.linear_model import LogisticRegression

    X, y = multinomial_problem()
    est = SketchedLogisticRegression(C=C, l1_ratio=l1_ratio, tol=1e-14, random_state=0).fit(X, y)
    kw = dict(penalty="elasticnet") if l1_ratio < 1 else dict(penalty="l1")
    ref = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", tol=1e-15, max_iter=100_000,
                             **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    assert est.result_.success
    assert 0 < np.count_nonzero(est.coef_) < est.coef_.size
    # saga's iterates reach exact zeros only up to its tolerance: compare values, and the
    # support where saga's coefficient is clearly non-zero or clearly zero
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=RTOL * scale)
    # intercepts: both are the unpenalised minimisers (saga's not centred)
    np.testing.assert_allclose(est.intercept_, ref.intercept_ - ref.intercept_.mean(), rtol=0,
                               atol=RTOL * scale)
    clear = np.abs(ref.coef_) > 10 * RTOL * scale
    np.testing.assert_array_equal(est.coef_[clear] != 0, True)


def test_l1_ratio_zero_is_the_ridge_fit():
    X, y = binary_problem(seed=3)
    a = SketchedLogisticRegression(C=0.3, random_state=0).fit(X, y)
    b = SketchedLogisticRegression(C=0.3, l1_ratio=0.0, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.result_.method == b.result_.method != "prox"


@pytest.mark.parametrize("value", [-0.1, 1.5, np.nan, "a"])
def test_l1_ratio_validated(value):
    X, y = binary_problem(n=50, d=4)
    with pytest.raises((InputError, ValueError)):
        SketchedLogisticRegression(l1_ratio=value).fit(X, y)
    with pytest.raises((InputError, ValueError)):
        SketchedPoissonRegressor(l1_ratio=value).fit(X, np.abs(y))


def test_coef_table_refuses_l1():
    X, y = binary_problem(n=100, d=5)
    est = SketchedLogisticRegression(C=1.0, l1_ratio=1.0).fit(X, y)
    with pytest.raises(ValueError, match="l1_ratio"):
        est.coef_table(X, y)


# -- each model form: one step against the exact proximal Newton step -----------------------------
def exact_prox_step(H, g, w, x, sweeps=20000):
    """The model's minimiser by plain cyclic coordinate descent on the dense ``H`` (numpy)."""
    d = np.zeros_like(x)
    for _ in range(sweeps):
        old = d.copy()
        for j in range(x.size):
            G = g[j] + H[j] @ d
            z = x[j] + d[j]
            v = z - G / H[j, j]
            d[j] = np.sign(v) * max(abs(v) - w[j] / H[j, j], 0.0) - x[j]
        if np.abs(d - old).max() <= 1e-15 * max(np.abs(d).max(), 1e-300):
            break
    return d


def _strategy_at(method, lam, weight):
    """``(loss, w, x, state, strategy, it)``: a binary L1 model at a fixed ``x``, the strategy
    built there (the sketched Gram keeps every row: it equals the exact one)."""
    X, y = binary_problem(n=400, d=12, seed=4)
    loss = LogisticLoss(X, y, lam=lam, fit_intercept=True)
    w = np.full(loss.n_params, weight)
    w[-1] = 0.0
    x = np.zeros(loss.n_params)
    x[:4] = [0.3, -0.2, 0.0, 0.5]
    state = loss.evaluate(x)
    strategy = STRATEGIES[method](loss, StrategySettings(sketch="uniform",
                                                         sketch_size=loss.data.n),
                                  np.random.default_rng(0), L1Penalty(w))
    it = Iterate(x, state, float(np.linalg.norm(state.grad)))
    strategy.update(it, None)
    return loss, w, x, state, strategy, it


@pytest.mark.parametrize("method", ["prox", "prox_cd", "prox_sketch"])
def test_one_step_equals_the_exact_proximal_newton_step(method):
    loss, w, x, state, strategy, it = _strategy_at(method, 0.01, 2.0)
    step = strategy._solve(it, INNER_FORCING_MIN)  # the model solved as a confirmation does
    H = loss.hessian(state)
    if method == "prox_sketch":  # uniform sampling of all n rows with replacement: H~
        H = strategy._H
    ref = exact_prox_step(H, state.grad, w, x)
    np.testing.assert_allclose(step.direction, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    change = state.grad @ ref + w @ (np.abs(x + ref) - np.abs(x))
    assert step.decrement == pytest.approx(-change, rel=1e-8)
    if method == "prox_cd":  # the image A p kept by coordinate descent
        np.testing.assert_allclose(step.image, loss.image(step.direction), atol=1e-12)


def test_sketched_form_converges_to_the_exact_minimiser():
    X, y = binary_problem(n=3000, d=20, seed=5)
    loss = LogisticLoss(X, y, lam=0.0, fit_intercept=True)
    w = np.full(loss.n_params, 5.0)
    w[-1] = 0
    a = sn.minimize(loss, tol=1e-13, method="prox", l1=w, random_state=0)
    b = sn.minimize(loss, tol=1e-13, method="prox_sketch", l1=w, random_state=0)
    assert a.success and b.success
    assert_same_fit(b.x, a.x)


# -- minimize(l1=...) ----------------------------------------------------------------------------
def test_minimize_l1_result_and_auto():
    X, y = binary_problem(n=400, d=15, seed=6)
    loss = LogisticLoss(X, y, lam=0.0, fit_intercept=False)
    res = sn.minimize(loss, tol=1e-12, l1=3.0, random_state=0)
    assert res.method.startswith("prox") and res.success
    # fun is the composite objective, grad_norm the minimum-norm subgradient
    assert res.fun == pytest.approx(loss.loss(res.x) + 3.0 * np.abs(res.x).sum(), rel=1e-14)
    s = L1Penalty(np.full(15, 3.0)).subgradient(res.x, loss.gradient(res.x))
    assert res.grad_norm == pytest.approx(np.linalg.norm(s), rel=1e-6, abs=1e-13)
    assert res.grad_norm < 1e-6
    with pytest.raises(InputError, match="cannot minimise a penalised"):
        sn.minimize(loss, tol=1e-8, l1=3.0, method="exact")
    with pytest.raises(InputError, match="l1"):
        sn.minimize(loss, tol=1e-8, l1=-1.0)


def test_eps_rule_certifies_the_distance():
    X, y = binary_problem(n=500, d=10, seed=7)
    loss = LogisticLoss(X, y, lam=0.1, fit_intercept=True)
    w = np.full(loss.n_params, 2.0)
    w[-1] = 0
    ref = sn.minimize(loss, tol=1e-15, method="prox", l1=w)
    for method in ("prox", "prox_cd"):
        res = sn.minimize(loss, eps=1e-7, method=method, l1=w)
        assert res.success
        assert np.linalg.norm(res.x - ref.x) <= 1e-7
        assert res.error_bound >= np.linalg.norm(res.x - ref.x) * 0.5


def test_poisson_minimize_all_forms_agree():
    X, y = poisson_problem(n=400, d=10, seed=8)
    loss = PoissonLoss(sp.csr_matrix(X), y, lam=1.0, fit_intercept=True)
    w = np.full(loss.n_params, 20.0)
    w[-1] = 0
    xs = [sn.minimize(loss, tol=1e-14, method=m, l1=w, random_state=0).x
          for m in ("prox", "prox_cd")]
    assert_same_fit(xs[1], xs[0])


def test_multinomial_l1_keeps_penalised_coordinates_out_of_the_null_space():
    X, y = multinomial_problem(n=150, d=4)
    loss = MultinomialLoss(X, y, 3, lam=0.0, fit_intercept=True)
    w = np.full(loss.n_params, 5.0)
    w.reshape(3, -1)[:, -1] = 0
    strategy = STRATEGIES["prox"](loss, StrategySettings(), np.random.default_rng(0), L1Penalty(w))
    N = strategy.builder.null_space
    assert N is not None and N.shape[1] == 1  # the intercepts' shift only
    assert np.all(N[w > 0] == 0)


# -- Dask ----------------------------------------------------------------------------------------
def test_dask_equals_in_memory():
    da = pytest.importorskip("dask.array")
    import dask

    X, y = binary_problem(n=600, d=20, seed=9)
    Xd = da.from_array(X, chunks=(200, X.shape[1]), asarray=False)
    yd = da.from_array(y, chunks=(200,))
    with dask.config.set(scheduler="synchronous"):
        for r in (1.0, 0.5):
            a = SketchedLogisticRegression(C=0.2, l1_ratio=r, tol=1e-14, random_state=0).fit(X, y)
            b = SketchedLogisticRegression(C=0.2, l1_ratio=r, tol=1e-14, random_state=0).fit(Xd, yd)
            assert b.result_.success
            assert_same_fit(b.coef_, a.coef_)
        Xp, yp = poisson_problem(n=400, d=10)
        Xpd = da.from_array(Xp, chunks=(100, Xp.shape[1]))
        ypd = da.from_array(yp, chunks=(100,))
        a = SketchedPoissonRegressor(alpha=0.05, l1_ratio=0.5, tol=1e-14).fit(Xp, yp)
        b = SketchedPoissonRegressor(alpha=0.05, l1_ratio=0.5, tol=1e-14).fit(Xpd, ypd)
        assert_same_fit(b.coef_, a.coef_)


# -- the regularisation path -----------------------------------------------------------------------
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
@pytest.mark.parametrize("classes", [2, 3])
def test_path_equals_cold_fits(l1_ratio, classes):
    from sketchnewton.estimators import c_min, logistic_regression_path

    if classes == 2:
        X, y = binary_problem(n=500, d=25, seed=10)
    else:
        X, y = multinomial_problem(n=300, d=8, K=3, seed=11)
    c0 = c_min(X, y, l1_ratio=l1_ratio)
    Cs = c0 * np.logspace(-0.5, 2.5, 6)  # not c_min itself: a tie of |g_j| and w_j
    W, _, n_iter = logistic_regression_path(X, y, Cs, tol=1e-14, l1_ratio=l1_ratio,
                                            random_state=0)
    assert np.all(W[0][:, :-1] == 0)  # C below c_min: every coefficient zero
    assert np.count_nonzero(W[1][:, :-1]) > 0  # above it: some
    for C, w in zip(Cs, W):
        cold = SketchedLogisticRegression(C=C, l1_ratio=l1_ratio, tol=1e-14,
                                          random_state=0).fit(X, y)
        ref = np.column_stack([cold.coef_, cold.intercept_])
        np.testing.assert_allclose(w, ref, rtol=0, atol=RTOL * max(np.abs(ref).max(), 1e-300))
        np.testing.assert_array_equal(w[:, :-1] != 0, ref[:, :-1] != 0)


def test_strong_rule_kkt_check_puts_violators_back():
    """A rule that discards everything (previous weight far above this one) is corrected by
    the KKT check: the screened solve equals the plain one."""
    from sketchnewton.estimators._path import _screened_solve
    from sketchnewton.estimators._base import SolverParams

    X, y = binary_problem(n=400, d=20, seed=12)
    loss = LogisticLoss(X, y, lam=0.0, fit_intercept=True)
    est = SketchedLogisticRegression(tol=1e-14, random_state=0)
    options = SolverParams._solver_options(est)
    res, _ = _screened_solve(loss, options, 1e-14, "t", None, 3.0, (None, 1e6))
    w = np.full(loss.n_params, 3.0)
    w[-1] = 0
    ref = sn.minimize(loss, tol=1e-14, l1=w, random_state=0)
    assert_same_fit(res.x, ref.x)


def test_cv_with_l1_ratio():
    from sketchnewton.estimators import SketchedLogisticRegressionCV

    X, y = binary_problem(n=400, d=20, seed=13)
    cv = SketchedLogisticRegressionCV(Cs=[0.01, 0.1, 1.0], l1_ratio=1.0, cv=3, tol=1e-10).fit(X, y)
    ref = SketchedLogisticRegression(C=cv.C_, l1_ratio=1.0, tol=1e-10).fit(X, y)
    assert_same_fit(cv.coef_, ref.coef_, rtol=1e-6)
    assert np.any(cv.coefs_paths_[:, 0, :, :-1] == 0)


def test_auto_picks_the_form():
    from sketchnewton._auto import choose_prox

    X, y = binary_problem(n=2000, d=20, seed=14)
    assert choose_prox(LogisticLoss(X, y)) == "prox"  # p^2 << nnz: the Gram
    rng = np.random.default_rng(0)
    wide = sp.random(200, 5000, density=0.01, random_state=rng, format="csr")
    yw = (rng.random(200) < 0.5).astype(float)
    assert choose_prox(LogisticLoss(wide, yw)) == "prox_cd"  # p^2 >> nnz: on the data
    Xm, ym = multinomial_problem(n=100, d=5)
    assert choose_prox(MultinomialLoss(Xm, ym, 3)) == "prox"  # no matrix-free form


def test_an_unfinished_solve_says_so():
    X, y = binary_problem(n=500, d=20, seed=15)
    with pytest.warns(sn.ConvergenceWarning):
        est = SketchedLogisticRegression(C=1.0, l1_ratio=1.0, max_iter=1).fit(X, y)
    assert not est.result_.success


def test_a_multinomial_l1_fit_too_wide_for_a_dense_model_says_what_to_try():
    """Many features times classes on dense data: no proximal form fits (the matrix-free one
    is for sparse data under ``auto``), and the message says what to try instead of a method
    that cannot help; sparse data take the matrix-free form."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 20_000))
    y = rng.integers(0, 8, 20)
    with pytest.raises(sn.InputError, match="prox_cd") as err:
        sn.SketchedLogisticRegression(C=1.0, l1_ratio=1.0).fit(X, y)
    assert "GiB" in str(err.value) and "method='auto'" not in str(err.value)
    Xs = sp.random(300, 200_000, density=1e-4, format="csr", random_state=0)
    est = sn.SketchedLogisticRegression(C=1.0, l1_ratio=1.0).fit(Xs, rng.integers(0, 8, 300))
    assert est.result_.method == "prox_cd" and est.result_.success


def test_matrix_free_form_skips_face_solves_that_cost_more_than_passes():
    """Above ``restricted_max`` (|F|^3 / 3 flops against a few passes over A) the matrix-free
    form neither polishes on the face nor forms ``H_FF``; it still reaches the Gram form's
    minimiser and certifies it."""
    from sketchnewton._auto import restricted_max
    from sketchnewton.strategies._proximal import RESTRICTED_MAX

    rng = np.random.default_rng(0)
    X = sp.random(1000, 2000, density=0.01, format="csr", random_state=1)
    y = (X @ rng.standard_normal(2000) + 0.1 * rng.standard_normal(1000) > 0).astype(int)
    cap = restricted_max(LogisticLoss(X, y), RESTRICTED_MAX)
    fits = {m: SketchedLogisticRegression(C=50.0, l1_ratio=1.0, method=m, tol=1e-10).fit(X, y)
            for m in ("prox", "prox_cd")}
    assert np.count_nonzero(fits["prox_cd"].coef_) > cap
    assert all(f.result_.success for f in fits.values())
    f = {m: fit.result_.fun for m, fit in fits.items()}
    assert abs(f["prox_cd"] - f["prox"]) <= 1e-10 * abs(f["prox"])  # what tol promises
    ref = fits["prox"].coef_  # n < p: a flat minimum, coefficients agree to about sqrt(tol)
    np.testing.assert_allclose(fits["prox_cd"].coef_, ref, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("method", ["prox", "prox_cd"])
def test_strong_penalty_leaves_the_intercept_alone_on_the_face(method):
    """Every coefficient at zero: the face of the step is the intercept alone (``prox_cd``
    formed a Gram of no columns and raised "A is empty"); the fit is the base rate's log-odds."""
    X = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 2.0]]))
    y = np.array([0, 1, 1, 1])
    est = SketchedLogisticRegression(C=1e-3, l1_ratio=1.0, method=method).fit(X, y)
    assert est.result_.success
    assert np.all(est.coef_ == 0)
    np.testing.assert_allclose(est.intercept_, [np.log(3.0)], rtol=1e-7)


def test_ill_scaled_multinomial_lasso_converges_with_the_gram():
    """Three classes, a third of the entries scaled by 1e4, an intercept: the Gram form's
    coordinate descent stalled at 500 sweeps every step, and the fit stopped at its iteration
    limit 0.3% above the minimum; with the active-set cycles it converges to the objective
    of the matrix-free form."""
    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.2, random_state=1, format="csr")
    X.data[::3] *= 1e4
    y = rng.integers(0, 3, 300)
    fits = {m: SketchedLogisticRegression(C=1e-3, l1_ratio=1.0, tol=1e-10, max_iter=100,
                                          method=m, random_state=0).fit(X, y)
            for m in ("prox", "prox_cd")}
    assert all(f.result_.success for f in fits.values())
    assert fits["prox"].result_.nit < 20
    a, b = (f.result_.fun for f in fits.values())
    assert abs(a - b) <= 1e-9 * abs(b)


def _l1_objective(est, X, y, C, r):
    """``C sum_i loss_i + (1 - r)/2 ||W||^2 + r ||W||_1`` by numpy (intercept unpenalised)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    W, b = np.atleast_2d(est.coef_), np.atleast_1d(est.intercept_)
    if len(est.classes_) == 2:
        z = X @ W[0] + b[0]
        loss = np.sum(np.logaddexp(0, z) - (y == est.classes_[1]) * z)
    else:
        Z = X @ W.T + b
        Y = y[:, None] == est.classes_[None, :]
        loss = np.sum(np.logaddexp.reduce(Z, axis=1) - np.sum(Y * Z, axis=1))
    return C * loss + (1 - r) / 2 * np.sum(W ** 2) + r * np.sum(np.abs(W))


def _hostile(name):
    rng = np.random.default_rng(0)
    X = sp.random(120, 12, density=0.3, random_state=1, format="csr")
    y = (X @ rng.standard_normal(12) > 0).astype(int)
    if name == "duplicated_columns":
        return sp.hstack([X, X[:, :4]], format="csr"), rng.integers(0, 3, 120)
    if name == "zero_and_constant_columns":
        return sp.hstack([X, sp.csr_matrix((120, 2)), sp.csr_matrix(np.ones((120, 2)))],
                         format="csr"), y
    if name == "zero_rows":
        X = X.tolil()
        X[:40] = 0
        return X.tocsr(), y
    if name == "one_positive":
        y = np.zeros(120, dtype=int)
        y[3] = 1
        return X, y
    if name == "mixed_scale":
        X.data[::3] *= 1e4
        return X, rng.integers(0, 3, 120)
    if name == "separable":
        return X, (X[:, 0].toarray().ravel() > 0).astype(int)
    raise ValueError(name)


@pytest.mark.parametrize("name", ["duplicated_columns", "zero_and_constant_columns",
                                  "zero_rows", "one_positive", "mixed_scale", "separable"])
@pytest.mark.parametrize("r, C", [(1.0, 1e-3), (1.0, 1.0), (0.5, 1e2)])
def test_hostile_inputs_never_a_crash_nor_a_false_success(name, r, C):
    """Every form either succeeds within ``tol`` of the best objective any of them found, or
    warns; nothing raises, nothing is non-finite (the intercept alone on a face raised "A is
    empty" in ``prox_cd``)."""
    X, y = _hostile(name)
    fits = []
    for method in ("prox", "prox_cd"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = SketchedLogisticRegression(C=C, l1_ratio=r, tol=1e-8, max_iter=200,
                                             method=method, random_state=0).fit(X, y)
        warned = any(issubclass(w.category, sn.ConvergenceWarning) for w in caught)
        assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
        assert warned != est.result_.success
        fits.append((est.result_.success, _l1_objective(est, X, y, C, r)))
    best = min(f for _, f in fits)
    for success, f in fits:
        if success:
            assert f - best <= 1e-7 * abs(best) + 1e-12


@pytest.mark.parametrize("method", ["prox", "prox_cd", "prox_sketch"])
def test_an_unfinished_confirmation_confirms_nothing(method, monkeypatch):
    """The decrement that confirms ``tol`` comes from the model solved to ``1e-10``; when the
    sweeps stop short of that (above the rounding level of the gradient) and no face solve
    makes the step exact, the decrement is a lower bound of unknown slack: ``inf``. (On the
    p = 2^20 lasso cell the confirmation stopped at 500 sweeps with violation 7.4e-5, and its
    decrement was taken as the model's.)"""
    import sketchnewton.strategies._proximal as prox
    import sketchnewton.strategies._proximal_cd as prox_cd

    strategy, it = _strategy_at(method, 0.0, 0.5)[4:]
    assert np.isfinite(strategy.decrement(it, 1e-3))  # solved: a finite decrement
    for module in (prox, prox_cd):
        monkeypatch.setattr(module, "MAX_SWEEPS", 1)
    monkeypatch.setattr(type(strategy), "_polish", lambda *args, **kw: None)
    monkeypatch.setattr(type(strategy), "_cycle_faces", lambda *args, **kw: None)
    monkeypatch.setattr(type(strategy), "_bracket", lambda *args: (np.inf, False),
                        raising=False)
    monkeypatch.setattr(type(strategy), "_on_face", lambda *args: None, raising=False)
    strategy.update(it, None)
    assert strategy.decrement(it, 1e-3) == np.inf
    assert not strategy.reached


def test_multinomial_lasso_weak_penalty_success_is_within_tol():
    """Found by the hostile-input probe: 3 classes, C = 1e4, lasso, an intercept. Both forms
    at ``tol = 1e-13`` agree on the minimum; the ``tol = 1e-8`` fit claimed success 1.6e-7
    above it (25 of the probe's 934 successes were such, 12-61 times ``tol``), all of it along
    the columns' class shifts, where the loss is flat and only the L1 term changes: the
    steps now end at each column's median (``_centre_columns``)."""
    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.2, random_state=1, format="csr")
    rng.standard_normal(40)
    rng.standard_normal(300)
    y = rng.integers(0, 3, 300)
    fits = {tol: SketchedLogisticRegression(C=1e4, l1_ratio=1.0, tol=tol, max_iter=300,
                                            method="prox", random_state=0).fit(X, y)
            for tol in (1e-8, 1e-13)}
    f = {tol: _l1_objective(fit, X, y, 1e4, 1.0) for tol, fit in fits.items()}
    assert fits[1e-8].result_.success
    assert f[1e-8] - f[1e-13] <= 10 * 1e-8 * abs(f[1e-13])


def test_a_singular_face_is_left_along_its_null_space():
    """A duplicated column with coefficients of opposite signs: on that face ``H_FF`` is singular
    along ``e_j - e_j'`` and the right-hand side has ``2 w`` there, so the quadratic is unbounded
    below on the face. The pseudo-inverse solve left that part as its residual and the result
    was taken as the model's exact minimiser (violation ``w`` on the pair); the face solve now
    moves along the null direction until a coordinate leaves the face, and ends at the KKT
    point."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((30, 3))
    A = np.hstack([a, a[:, :1]])  # column 3 duplicates column 0
    H = A.T @ A
    x = np.array([0.5, 0.3, -0.4, -0.2])
    w = np.full(4, 0.1)
    g = A.T @ (0.01 * rng.standard_normal(30))
    q = _face_solve(H, g, w, x, np.zeros(4), np.zeros(4))
    assert q is not None
    G, z = g + H @ q, x + q
    viol = np.where(z != 0, G + w * np.sign(z), np.sign(G) * np.maximum(np.abs(G) - w, 0.0))
    assert np.abs(viol).max() <= 1e-12
    assert z[0] * z[3] >= 0  # the pair's signs agree (one at zero)


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_multinomial_lasso_with_duplicated_columns_success_is_within_tol(fit_intercept):
    """Found by the hostile-input probe: 3 classes, C = 1e4, lasso, four duplicated columns. The
    loss sees ``W_j + W_j'`` (and is flat along each column's class shift): the face solves'
    ``H_FF`` were singular with the right-hand side along the null space, the pseudo-inverse
    left it out and the step was taken as the model's minimiser, so the decrement certified
    ``tol = 1e-8`` up to 1.2e-6 above the minimum (pairs of coefficients with opposite signs).
    The face solve now follows the null directions to the minimiser's face."""
    rng = np.random.default_rng(0)
    X = sp.random(120, 12, density=0.3, random_state=1, format="csr")
    X = sp.hstack([X, X[:, :4]], format="csr")
    y = rng.integers(0, 3, 120)
    fits = [SketchedLogisticRegression(C=1e4, l1_ratio=1.0, tol=tol, max_iter=300,
                                       fit_intercept=fit_intercept, method=m,
                                       random_state=0).fit(X, y)
            for m, tol in (("prox", 1e-8), ("prox_cd", 1e-8), ("prox", 1e-13))]
    f = [_l1_objective(fit, X, y, 1e4, 1.0) for fit in fits]
    assert all(fit.result_.success for fit in fits)
    assert max(f) - min(f) <= 10 * 1e-8 * abs(min(f))


@pytest.mark.parametrize("method", ["prox", "prox_cd"])
def test_strong_convexity_bound_holds_and_certifies(method):
    """A ridge ``mu`` on every coordinate (elastic net, no intercept) makes ``F``
    ``mu``-strongly convex: ``(||s|| + ||dg||)^2 / (2 mu)`` bounds ``F(x) - F*`` at any ``x``
    (against a tight fit), and the confirmation returns it as ``2 G`` once it is below the
    target, without solving the model."""
    X, y = multinomial_problem(n=300, d=8, K=3, seed=5)
    X = sp.csr_matrix(X)
    loss = MultinomialLoss(X, y, 3, lam=0.05, fit_intercept=False)
    w = np.full(loss.n_params, 0.3)
    tight = sn.minimize(loss, tol=1e-13, l1=w, method="prox")
    f_star = tight.fun + float(w @ np.abs(tight.x))
    rng = np.random.default_rng(0)
    for scale in (1e-1, 1e-3, 1e-5):
        move = rng.standard_normal(loss.n_params) * (rng.random(loss.n_params) < 0.5)
        x = tight.x + scale * move
        state = loss.evaluate(x)
        strategy = STRATEGIES[method](loss, StrategySettings(), np.random.default_rng(0),
                                      L1Penalty(w))
        it = Iterate(x, state, float(np.linalg.norm(state.grad)))
        strategy.update(it, None)
        gap = state.fun + float(w @ np.abs(x)) - f_star
        bound = (strategy._subgradient_norm(it) + strategy._rounding(it)) ** 2 / (2 * 0.05)
        assert bound >= gap - 1e-12 * abs(f_star)
        assert strategy._gap_certifies(it, 2.0 * bound) == pytest.approx(2.0 * bound)
        assert strategy._gap_certifies(it, 1.9 * bound) is None
    # with an intercept (no ridge on it) there is no such bound
    loss1 = MultinomialLoss(X, y, 3, lam=0.05, fit_intercept=True)
    w1 = np.where(loss1.ridge > 0, 0.3, 0.0)  # the intercepts unpenalised, without ridge
    st = loss1.evaluate(np.zeros(loss1.n_params))
    s1 = STRATEGIES[method](loss1, StrategySettings(), np.random.default_rng(0), L1Penalty(w1))
    it1 = Iterate(np.zeros(loss1.n_params), st, float(np.linalg.norm(st.grad)))
    s1.update(it1, None)
    assert not np.isfinite(s1._gap_certifies(it1, np.inf))
