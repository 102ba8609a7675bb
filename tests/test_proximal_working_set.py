"""The working-set model of proximal Newton (strategies/_working_set.py, hessian/_restricted.py):
``H_WW`` equals the block of the exact Gram, its fits equal the whole Gram's, its steps are the
exact proximal Newton steps and are certified."""

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton.hessian._restricted import ColumnStore, column_counts, restricted_gram
from sketchnewton.losses import L1Penalty, LogisticLoss, PoissonLoss
from sketchnewton.strategies import STRATEGIES, Iterate, StrategySettings
from sketchnewton.strategies import _proximal, _working_set

from test_proximal import exact_prox_step


def wide_problem(n=800, d=80, seed=0, density=0.05, dense=False):
    """Sparse columns of unequal frequency (a few common, most rare), as one-hot data."""
    rng = np.random.default_rng(seed)
    freq = np.clip(density * rng.pareto(1.5, d), 0.005, 0.6)
    X = sp.csr_matrix((rng.random((n, d)) < freq) * rng.standard_normal((n, d)))
    w = np.zeros(d)
    w[:8] = rng.standard_normal(8)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ w)))).astype(float)
    return (X.toarray() if dense else X), y


def evaluated(loss, seed=1, support=5):
    rng = np.random.default_rng(seed)
    x = np.zeros(loss.n_params)
    x[rng.choice(loss.data.d - 1, support, replace=False)] = rng.standard_normal(support) * 0.3
    return loss.evaluate(x)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("dense", [False, True])
def test_restricted_gram_is_the_block_of_the_gram(fit_intercept, dense):
    X, y = wide_problem(dense=dense)
    loss = LogisticLoss(X, y, lam=0.3, fit_intercept=fit_intercept)
    state = evaluated(loss)
    H = loss.hessian(state)
    factors = loss.hessian_factors(state)
    counts = column_counts(factors.A)[0]
    p = loss.n_params
    rng = np.random.default_rng(2)
    W0 = np.sort(rng.choice(p, 40, replace=False))
    if fit_intercept:
        W0 = np.union1d(W0, [p - 1])
    G, store, read = restricted_gram(factors, W0, None, counts)
    np.testing.assert_allclose(G, H[np.ix_(W0, W0)], rtol=1e-13, atol=1e-13 * np.abs(H).max())
    assert read > 0
    # a working set inside the stored columns: the store reused (most of its non-zeros), or
    # its columns taken from it in place (few)
    for W in (W0[2:], W0[::7]):
        if fit_intercept:
            W = np.union1d(W, [p - 1])
        before = None if store is None else store.cols.copy()
        G, store, _ = restricted_gram(factors, W, store, counts)
        np.testing.assert_allclose(G, H[np.ix_(W, W)], rtol=1e-13, atol=1e-13 * np.abs(H).max())
        if not dense:
            inner = W[W < loss.data.d - fit_intercept] if fit_intercept else W
            assert np.all(np.isin(inner, before))
    # a working set outside them: taken from A again
    W = np.arange(p)
    G, store, _ = restricted_gram(factors, W, store, counts)
    np.testing.assert_allclose(G, H, rtol=1e-13, atol=1e-13 * np.abs(H).max())


def test_column_store_take_keeps_the_columns():
    X, _ = wide_problem(n=300, d=30, seed=3)
    from sketchnewton._matrix import DataMatrix

    A = DataMatrix(X)
    counts = column_counts(A)[0]
    cols = np.array([0, 3, 4, 10, 29])
    store = ColumnStore.take(A, cols, cols, counts[cols])
    np.testing.assert_array_equal(store.matrix.csr.toarray(), X[:, cols].toarray())
    sub = np.array([3, 29])
    kept = ColumnStore.take(store.matrix, np.searchsorted(cols, sub), sub, counts[sub],
                            in_place=True)
    np.testing.assert_array_equal(kept.matrix.csr.toarray(), X[:, sub].toarray())


def test_one_step_is_the_exact_proximal_newton_step():
    X, y = wide_problem(seed=4)
    loss = LogisticLoss(X, y, lam=0.01, fit_intercept=True)
    w = np.full(loss.n_params, 4.0)
    w[-1] = 0.0
    state = evaluated(loss, seed=5)
    strategy = STRATEGIES["prox"](loss, StrategySettings(), np.random.default_rng(0),
                                  L1Penalty(w))
    it = Iterate(state.x, state, float(np.linalg.norm(state.grad)))
    strategy.update(it, None)
    assert strategy._gram_ws is not None  # the working set is used
    assert strategy._gram_ws.cols.size < loss.n_params
    strategy.decrement(it, 0.0)
    step = strategy._step
    H = loss.hessian(state)
    ref = exact_prox_step(H, state.grad, w, state.x)
    np.testing.assert_allclose(step.direction, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    assert step.missing == 0.0 and step.accuracy == 0.0  # the face solve: exact
    np.testing.assert_allclose(step.image, loss.image(step.direction), atol=1e-12)
    # the model's curvature: the whole Hessian's diagonal, on demand
    assert strategy.model.curvature_scale == pytest.approx(np.diag(H).max(), rel=1e-13)
    F = strategy.model.free
    np.testing.assert_allclose(strategy.model.restrict(F), H[np.ix_(F, F)], rtol=1e-13,
                               atol=1e-13 * np.abs(H).max())


def _fit(loss, w, monkeypatch, working_sets, share=None, **kw):
    with monkeypatch.context() as m:
        m.setattr(_proximal.ProximalNewton, "working_sets", working_sets)
        if share is not None:
            m.setattr(_working_set, "WORKING_SHARE", share)
        grown = []
        extend = _working_set.WorkingSetGram.extend

        def counting(self, cols, first=False):  # 0: a working-set model made; > 0: grown
            n = self.cols.size
            extend(self, cols, first)
            if first or self.cols.size > n:
                grown.append(self.cols.size - n if not first else 0)

        m.setattr(_working_set.WorkingSetGram, "extend", counting)
        res = sn.minimize(loss, method="prox", l1=w, random_state=0, **kw)
    return res, grown


@pytest.mark.parametrize("share", [None, 10.0])
@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_fit_equals_the_whole_gram_fit(family, share, monkeypatch):
    """The fit on working sets equals the fit on the whole Gram within 1e-8 (relative to the
    largest coefficient), and is certified; ``share=10``: the working sets start with the free
    coordinates only, so the check on the other coordinates must put the violators back."""
    X, y = wide_problem(n=1500, d=120, seed=6)
    if family == "logistic":
        loss = LogisticLoss(X, y, lam=0.05, fit_intercept=True)
        strength = 10.0
    else:
        rng = np.random.default_rng(7)
        loss = PoissonLoss(X, rng.poisson(np.exp(0.3 * (X @ rng.standard_normal(120)) + 0.2)),
                           lam=0.5, fit_intercept=True)
        strength = 150.0
    w = np.full(loss.n_params, strength)
    w[-1] = 0.0
    ref, _ = _fit(loss, w, monkeypatch, False, tol=1e-14)
    res, grown = _fit(loss, w, monkeypatch, True, share, tol=1e-14)
    assert ref.success and res.success
    assert 0 < np.count_nonzero(res.x[:-1]) < loss.n_params - 1
    scale = np.abs(ref.x).max()
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-8 * scale)
    np.testing.assert_array_equal(res.x != 0, ref.x != 0)
    assert res.grad_norm < 1e-6
    assert 0 in grown  # working-set models were made
    if share is not None:
        assert any(grown)  # violators outside the first working set were put back
    # eps: the certified distance holds
    cert, _ = _fit(loss, w, monkeypatch, True, share, eps=1e-7)
    assert cert.success
    assert np.linalg.norm(cert.x - ref.x) <= 1e-7
