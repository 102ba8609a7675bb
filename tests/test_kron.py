"""The Kronecker-factored preconditioner of the multinomial Hessian (sketchnewton/hessian/_kron.py,
docs/math.md 8.7) and the solves that use it: its spectrum within the bounds of its theory, exact
solutions, float32 input, no copy of the data."""

import tracemalloc
import warnings

import numba
import numpy as np
import pytest

import sketchnewton as sn
from sketchnewton.hessian import ModelBuilder, kronecker_model
from sketchnewton.losses._multinomial import probs


def _problem(n=300, d=5, K=4, lam=0.5, fit_intercept=False, seed=0, dtype=np.float64,
             order="C"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.linspace(0.5, 2.0, d)
    W = rng.standard_normal((d, K))
    y = np.argmax(X @ W + rng.gumbel(size=(n, K)), axis=1)
    X = np.asarray(X, dtype=dtype, order=order)
    return X, y, sn.MultinomialLoss(X, y, K, lam=lam, fit_intercept=fit_intercept)


def _state(loss, seed=1, scale=0.5):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(loss.n_params)
    K = loss.image_width
    x = (x.reshape(K, -1) - x.reshape(K, -1).mean(axis=0)).ravel()  # centred, as iterates are
    return loss.evaluate(x)


def _probabilities(state):
    """The softmax probabilities (n, K) of an in-memory multinomial state (formed from its
    logits and their per-row statistics)."""
    st = state.handles[0]
    return probs(st.Z, st.cache[0])


def _row_bounds(loss, state):
    """``alpha, beta``: the extreme eigenvalues of ``S^{+1/2} T_i S^{+1/2}`` on ``1_K^perp`` over
    the rows, ``T_i = B_i / tr B_i`` (docs/math.md 8.7), and ``lambda_min+(S)``."""
    P, sw = _probabilities(state), loss.sw
    K = P.shape[1]
    B = sw[:, None, None] * (np.einsum("ik,kl->ikl", P, np.eye(K)) - P[:, :, None] * P[:, None, :])
    c = np.trace(B, axis1=1, axis2=2)
    S = B.sum(axis=0) / c.sum()
    Q = np.linalg.qr(np.hstack([np.ones((K, 1)), np.eye(K)[:, :K - 1]]))[0][:, 1:]  # 1_K^perp
    w, V = np.linalg.eigh(Q.T @ S @ Q)
    R = V / np.sqrt(w)  # (Q^T S Q)^{-1/2} up to a rotation
    T = np.einsum("ab,ibc,cd->iad", (Q @ R).T, B / c[:, None, None], Q @ R)
    ev = np.linalg.eigvalsh(T)
    return float(ev.min()), float(ev.max()), float(w.min()), S


def test_factors_are_the_weighted_gram_and_the_average_curvature():
    X, y, loss = _problem()
    state = _state(loss)
    G, S = loss.kronecker_factors(state)
    P = _probabilities(state)
    c = 1.0 - np.sum(P * P, axis=1)
    np.testing.assert_allclose(G, X.T @ (c[:, None] * X), rtol=1e-12)
    S_ref = (np.diag(P.sum(axis=0)) - P.T @ P) / c.sum()
    np.testing.assert_allclose(S, S_ref, rtol=1e-12, atol=1e-15)
    assert np.trace(S) == pytest.approx(1.0)
    np.testing.assert_allclose(S @ np.ones(S.shape[0]), 0.0, atol=1e-14)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spectrum_within_the_theory_bounds(seed):
    """Eigenvalues of ``M^{-1} H`` in ``[min(alpha, 1), max(beta, 1)]``, ``beta <= 1 /
    lambda_min+(S)``, and at least ``mu / (||S|| ||G|| + mu)`` (docs/math.md 8.7)."""
    X, y, loss = _problem(seed=seed)
    state = _state(loss, seed=seed + 10, scale=1.0)
    G, S = loss.kronecker_factors(state)
    mu = loss.lam
    model = kronecker_model(G, S, mu, "full", loss.null_space())
    M, H = model.matrix(), loss.hessian(state)
    ev = np.sort(np.linalg.eigvals(np.linalg.solve(M, H)).real)
    alpha, beta, smin, S_ref = _row_bounds(loss, state)
    np.testing.assert_allclose(S, S_ref, rtol=1e-10, atol=1e-14)
    tol = 1e-10
    assert alpha <= 1.0 + tol and beta >= 1.0 - tol  # S averages the T_i
    assert ev.min() >= min(alpha, 1.0) - tol and ev.max() <= max(beta, 1.0) + tol, \
        (ev.min(), ev.max(), alpha, beta)
    assert beta <= 1.0 / smin + tol
    floor = mu / (np.linalg.norm(S, 2) * np.linalg.norm(G, 2) + mu)
    assert ev.min() >= floor - tol
    # the preconditioner does what it is for: a far smaller spread than the Hessian's
    h = np.linalg.eigvalsh(H)
    assert ev.max() / ev.min() < 0.2 * h.max() / h.min()


def test_solve_applies_the_inverse_through_the_eigenbases():
    X, y, loss = _problem(K=5, d=4)
    state = _state(loss)
    G, S = loss.kronecker_factors(state)
    model = kronecker_model(G, S, 0.7, "full")
    g = np.random.default_rng(3).standard_normal(loss.n_params)
    np.testing.assert_allclose(model.solve(g), np.linalg.solve(model.matrix(), g), rtol=1e-10)


def test_without_ridge_the_shift_is_projected_out():
    """``lam = 0``: ``S (x) G`` vanishes on the class shift ``1_K (x) R^d``, the loss's null
    space; on its complement ``M^{-1} H`` keeps the bounds."""
    X, y, loss = _problem(lam=0.0, seed=4)
    state = _state(loss, seed=5)
    G, S = loss.kronecker_factors(state)
    N = loss.null_space()
    model = kronecker_model(G, S, 0.0, "full", N)
    Q = np.linalg.qr(np.hstack([N, np.eye(loss.n_params)]))[0][:, N.shape[1]:loss.n_params]
    H = Q.T @ loss.hessian(state) @ Q
    Minv = Q.T @ np.column_stack([model.solve(q) for q in Q.T])
    ev = np.linalg.eigvals(Minv @ H).real
    alpha, beta, _, _ = _row_bounds(loss, state)
    assert ev.min() >= alpha - 1e-9 and ev.max() <= beta + 1e-9
    g = state.grad
    np.testing.assert_allclose(N.T @ model.solve(g), 0.0, atol=1e-12)


def test_sampled_factors_from_every_row_are_exact():
    X, y, loss = _problem(n=200)
    state = _state(loss)
    exact = loss.kronecker_factors(state)
    builder = ModelBuilder(loss, "exact", 10_000, np.random.default_rng(0))
    model = builder.kronecker(state)
    assert model.sketch_size == 0  # every row
    ref = kronecker_model(*exact, loss.lam, "full", loss.null_space())
    g = state.grad
    np.testing.assert_allclose(model.solve(g), ref.solve(g), rtol=1e-10)
    small = ModelBuilder(loss, "exact", 100, np.random.default_rng(0)).kronecker(state)
    assert 0 < small.sketch_size <= 100
    assert loss.data.sweeps > 0


def test_refuses_a_loss_without_class_blocks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 3))
    loss = sn.LogisticLoss(X, (X[:, 0] > 0).astype(float), lam=1.0)
    with pytest.raises(sn.InputError, match="multinomial"):
        ModelBuilder(loss, "exact", 100, rng).kronecker(loss.evaluate(np.zeros(3)))


@pytest.mark.parametrize("method", ["cg", "subsampled"])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_solve_reaches_the_exact_solution(method, fit_intercept):
    X, y, loss = _problem(n=3000, d=8, K=6, lam=1.0, fit_intercept=fit_intercept)
    ref = sn.minimize(loss, tol=1e-13, method="exact", random_state=0)
    res = sn.minimize(loss, tol=1e-10, method=method, preconditioner="kronecker",
                      random_state=0)
    assert res.success and ref.success
    assert res.preconditioner == "kronecker"
    assert (res.fun - ref.fun) / abs(ref.fun) <= 1e-10
    H = loss.hessian(ref.x)
    err = res.x - ref.x
    # the objective's gap bounds the error in the Hessian norm: f - f* ~ err^T H err / 2
    assert float(err @ H @ err) / 2 <= 2e-10 * abs(ref.fun)


@pytest.mark.parametrize("method", ["cg", "subsampled"])
def test_float32_input_gives_the_float64_answer(method):
    X, y, _ = _problem(n=4000, d=12, K=5, lam=1.0, fit_intercept=True, seed=3)
    X32 = X.astype(np.float32)
    loss32 = sn.MultinomialLoss(X32, y, 5, lam=1.0, fit_intercept=True)
    loss64 = sn.MultinomialLoss(X32.astype(np.float64), y, 5, lam=1.0, fit_intercept=True)
    tol = 1e-9
    ref = sn.minimize(loss64, tol=1e-13, method="exact", random_state=0)
    res = sn.minimize(loss32, tol=tol, method=method, preconditioner="kronecker", random_state=0)
    assert res.success
    f64 = loss64.loss(res.x)  # the float32 fit's objective, evaluated on the float64 data
    assert (f64 - ref.fun) / abs(ref.fun) <= tol
    assert res.fun == pytest.approx(f64, rel=1e-12)


@pytest.mark.parametrize("order", ["C", "F"])
def test_no_copy_of_float32_or_fortran_input(order):
    """The loss keeps the caller's buffer, a solve allocates less than the data at its peak (a
    copy alone would be its size, an upcast twice that), and the input is unchanged."""
    X, y, _ = _problem(n=10_000, d=256, K=3, lam=1.0, fit_intercept=True, seed=5,
                       dtype=np.float32, order=order)
    before = X.copy()
    loss = sn.MultinomialLoss(X, y, 3, lam=1.0, fit_intercept=True)
    assert loss.A.base.dense is X or np.shares_memory(loss.A.base.dense, X)
    for method in ("cg", "subsampled"):
        with warnings.catch_warnings():  # compile the kernels first (not the solve's memory)
            warnings.simplefilter("ignore")
            sn.minimize(loss, tol=1e-8, method=method, preconditioner="kronecker",
                        random_state=0, max_iter=2)
        tracemalloc.start()
        res = sn.minimize(loss, tol=1e-8, method=method, preconditioner="kronecker",
                          random_state=0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert res.success
        # the dense products' row blocks: two of 2 MiB per kernel thread (_dense.py)
        assert peak < X.nbytes + numba.get_num_threads() * 2 * 2**21, (method, peak, X.nbytes)
    np.testing.assert_array_equal(X, before)
