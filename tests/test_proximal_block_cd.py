"""The block step of matrix-free proximal Newton (strategies/_block_cd.py) and the inner solve
that alternates it with coordinate descent (``MatrixFreeProximalNewton._sweep``)."""

import numpy as np
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton.losses import L1Penalty, LogisticLoss
from sketchnewton.strategies import STRATEGIES, Iterate, StrategySettings
from sketchnewton.strategies import _block_cd, _proximal_cd
from sketchnewton.strategies._gap import model_value
from sketchnewton.strategies._proximal import INNER_FORCING_MIN

from test_proximal import exact_prox_step


def collinear_problem(n=300, d=40, seed=0):
    """Sparse columns plus a few dense, nearly collinear ones (the code corpus's frequent
    tokens: what coordinate descent converges slowly on)."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.05, random_state=rng, format="lil")
    base = (rng.random(n) < 0.9).astype(float)
    for j in range(5):
        X[:, j] = (base * (1.0 + 1e-3 * rng.standard_normal(n)))[:, None]
    X = X.tocsr()
    w = rng.standard_normal(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w)))).astype(float)
    return X, y


def _violation(G, z, w):
    return np.where(z != 0, G + w * np.sign(z), np.sign(G) * np.maximum(np.abs(G) - w, 0.0))


def _block_problem(seed, ones):
    rng = np.random.default_rng(seed)
    n, d = 200, 30
    M = sp.random(n, d, density=0.2, random_state=rng, format="lil")
    M.data = np.array([rng.standard_normal(len(v)).tolist() for v in M.data], dtype=object)
    M[:, :4] = np.outer(np.ones(n), [1.0, 1.0, 0.9, 1.1]) + 1e-2 * rng.standard_normal((n, 4))
    M = sp.csc_matrix(M)
    M.sort_indices()
    D = rng.random(n) * 0.25
    lam = np.full(d, 0.01)
    g = rng.standard_normal(d)
    w = np.full(d, 0.5)
    x = np.where(rng.random(d) < 0.5, rng.standard_normal(d), 0.0)
    if ones >= 0:  # the last column the intercept's column of ones, unpenalised
        M = sp.csc_matrix(M[:, :-1])
        w[ones] = 0.0
    return M, D, lam, g, w, x


def _full(M, ones):
    """``A`` with the intercept's column of ones explicit."""
    if ones < 0:
        return M
    return sp.hstack([M, sp.csc_matrix(np.ones((M.shape[0], 1)))], format="csc")


def test_block_step_minimises_the_model_on_the_most_violated_coordinates(monkeypatch):
    monkeypatch.setattr(_block_cd, "BLOCK_SIZE", 6)
    for seed, ones in ((0, -1), (1, 29)):
        M, D, lam, g, w, x = _block_problem(seed, ones)
        A = _full(M, ones)
        p = np.zeros(x.size)
        r = np.zeros(A.shape[0])
        z = x + p
        S = np.flatnonzero((z != 0) | (w == 0))
        G = g + lam * p + A.T @ (D * r)
        top = S[np.argsort(-np.abs(_violation(G, z, w)[S]))[:6]]
        before = model_value(g, x, w, lam, D, p, r)
        _block_cd.block_step(M, ones, D, lam, g, w, x, p, r, 1e-12)
        assert model_value(g, x, w, lam, D, p, r) < before
        np.testing.assert_allclose(r, A @ p, atol=1e-12)  # the image kept
        moved = np.flatnonzero(p)
        assert set(moved) <= set(top)  # only the block moves
        # the block's model is minimised: its coordinates' violations vanish
        G = g + lam * p + A.T @ (D * r)
        v = _violation(G, x + p, w)
        assert np.abs(v[top]).max() <= 1e-9


def test_sweep_reaches_the_exact_step_on_collinear_columns(monkeypatch):
    calls = []
    step_of = _proximal_cd.block_step
    monkeypatch.setattr(_proximal_cd, "block_step", lambda *a: calls.append(1) or step_of(*a))
    X, y = collinear_problem()
    loss = LogisticLoss(X, y, lam=0.0, fit_intercept=True)
    w = np.full(loss.n_params, 1.0)
    w[-1] = 0.0
    x = np.zeros(loss.n_params)
    x[:6] = [2.0, -1.0, 0.5, 1.5, 0.0, 0.7]
    state = loss.evaluate(x)
    strategy = STRATEGIES["prox_cd"](loss, StrategySettings(), np.random.default_rng(0),
                                     L1Penalty(w))
    strategy.face_max = 0  # no face solve: the inner solve alone must reach the minimiser
    it = Iterate(x, state, float(np.linalg.norm(state.grad)))
    strategy.update(it, None)
    step = strategy._solve(it, INNER_FORCING_MIN)
    # the block steps were needed: 33 sweeps, where coordinate descent alone takes 279
    assert strategy.reached and calls and strategy._last_sweeps <= 100
    ref = exact_prox_step(loss.hessian(state), state.grad, w, x)
    np.testing.assert_allclose(step.direction, ref, rtol=0, atol=1e-7 * np.abs(ref).max())
    np.testing.assert_allclose(step.image, loss.image(step.direction), atol=1e-10)


def test_sweep_says_when_its_budget_ends_first(monkeypatch):
    X, y = collinear_problem(seed=1)
    loss = LogisticLoss(X, y, lam=0.0, fit_intercept=False)
    w = np.full(loss.n_params, 0.5)
    monkeypatch.setattr(_proximal_cd, "MAX_SWEEPS", 2)
    monkeypatch.setattr(_proximal_cd, "CD_FIRST_SWEEPS", 1)
    x = np.zeros(loss.n_params)
    x[:5] = [2.0, -1.0, 0.5, 1.5, 0.3]
    state = loss.evaluate(x)
    strategy = STRATEGIES["prox_cd"](loss, StrategySettings(), np.random.default_rng(0),
                                     L1Penalty(w))
    it = Iterate(x, state, float(np.linalg.norm(state.grad)))
    strategy.update(it, None)
    strategy._inner(it, np.arange(x.size), 1e-14)
    assert not strategy.reached and strategy._last_sweeps <= 2


def test_fit_on_collinear_columns_equals_the_gram_form():
    X, y = collinear_problem(n=400, d=60, seed=2)
    fits = [sn.SketchedLogisticRegression(C=50.0, l1_ratio=1.0, tol=1e-12, method=m,
                                          random_state=0).fit(X, y) for m in ("prox", "prox_cd")]
    assert all(f.result_.success for f in fits)
    ref = np.ravel(fits[0].coef_)
    np.testing.assert_allclose(np.ravel(fits[1].coef_), ref, rtol=0,
                               atol=1e-6 * np.abs(ref).max())
