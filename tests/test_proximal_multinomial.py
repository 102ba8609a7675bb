"""Matrix-free proximal Newton for the multinomial loss (strategies/_proximal_cd.py,
``softmax_cd`` in _kernels/cd.py): the kernel against the exact model's minimiser, one step
against the exact proximal Newton step, fits against scikit-learn's saga and the dense ``prox``
form, ``auto``'s choice, and success only when certified."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton._auto import choose_prox
from sketchnewton._kernels.cd import class_shifts, softmax_cd, softmax_curvature_diag
from sketchnewton.estimators import SketchedLogisticRegression
from sketchnewton.losses import L1Penalty, MultinomialLoss
from sketchnewton.strategies import STRATEGIES, Iterate, SoftmaxProximalNewton, StrategySettings

from test_proximal import RTOL, exact_prox_step, multinomial_problem


def sparse_problem(n=300, d=12, K=3, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.4, random_state=rng, format="csr")
    X.data = rng.standard_normal(X.nnz)
    W = rng.standard_normal((K, d)) * 1.5
    W[:, 5:] = 0
    z = X @ W.T
    P = np.exp(z - z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    return X, np.array([rng.choice(K, p=p) for p in P])


def softmax_hessian(X, P, sw, lam):
    """``sum_i sw_i B_i (x) a_i a_i^T + lam`` in the loss's layout (numpy, independent)."""
    n, K = P.shape
    d = X.shape[1]
    H = np.zeros((K * d, K * d))
    for i in range(n):
        B = sw[i] * (np.diag(P[i]) - np.outer(P[i], P[i]))
        H += np.kron(B, np.outer(X[i], X[i]))
    return H + np.diag(lam)


def penalty_weights(loss, value, intercept):
    w = np.full(loss.n_params, value)
    if intercept:
        w.reshape(loss.n_classes, -1)[:, -1] = 0.0
    return w


# -- the kernel ---------------------------------------------------------------------------------
def test_kernel_minimises_the_model_and_keeps_its_image():
    rng = np.random.default_rng(1)
    n, d, K = 40, 5, 3
    A = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.6)
    P = rng.dirichlet(np.ones(K), size=n)
    sw = rng.random(n) + 0.5
    lam = np.full(K * d, 0.5)
    H = softmax_hessian(A, P, sw, lam)
    g, x = rng.standard_normal(K * d), np.where(rng.random(K * d) < 0.3, 0.4, 0.0)
    w = np.full(K * d, 0.8)
    M = sp.csc_matrix(A)
    args = (M.indptr.astype(np.int64), M.indices.astype(np.int64), M.data)
    hdiag = softmax_curvature_diag(*args, P, sw, -1, d) + lam
    np.testing.assert_allclose(hdiag, np.diag(H), rtol=1e-12)
    p, R, s = np.zeros(K * d), np.zeros((n, K)), np.zeros(n)
    work = np.arange(K * d, dtype=np.int64)

    def q(v):
        return g @ v + 0.5 * v @ H @ v + w @ np.abs(x + v)

    values = [q(p)]
    for _ in range(2000):  # one sweep a call: the model never increases
        softmax_cd(*args, P, sw, lam, hdiag, g, w, x, -1, d, work, p, R, s, 0.0, 1)
        values.append(q(p))
    assert np.all(np.diff(values) <= 1e-12 * abs(values[0]))
    ref = exact_prox_step(H, g, w, x)
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    np.testing.assert_allclose(R, A @ p.reshape(K, d).T, atol=1e-12)
    np.testing.assert_allclose(s, np.sum(P * R, axis=1), atol=1e-12)
    # coordinate optimality: the model's minimum-norm subgradient vanishes
    viol = L1Penalty(w).subgradient(x + p, g + H @ p)
    assert np.abs(viol).max() <= 1e-9


def test_class_shift_steps_minimise_along_the_shift():
    """Each column's step is the exact minimiser of its one-dimensional model (against a grid
    and the breakpoints), a coordinate it brings to zero exactly there; 0 where 0 is one."""
    rng = np.random.default_rng(7)
    m, K = 400, 4
    x = np.round(rng.standard_normal(m * K), 1) * (rng.random(m * K) < 0.7)
    d = rng.standard_normal(m * K) * (rng.random(m * K) < 0.5)
    groups = np.arange(m * K, dtype=np.int64).reshape(m, K)
    G = 0.4 * rng.standard_normal((m, K))
    lam = np.where(rng.random((m, 1)) < 0.7, 0.3, 0.0) * np.ones(K)
    w = np.full((m, K), 0.5)
    z0 = (x + d)[groups]
    d1 = d.copy()
    t = class_shifts(G, lam, w, x, d1, groups)

    def phi(r, u):
        return u * G[r].sum() + 0.5 * u * u * lam[r].sum() + w[r] @ np.abs(z0[r] + u)

    grid = np.linspace(-6, 6, 4001)
    for r in range(m):
        if lam[r].sum() == 0 and abs(G[r].sum()) > w[r].sum():  # unbounded below: no step
            assert t[r] == 0
            continue
        best = min(min(phi(r, u) for u in grid), min(phi(r, u) for u in -z0[r]))
        assert phi(r, t[r]) <= best + 1e-12
        z1 = (x + d1)[groups[r]]
        np.testing.assert_allclose(z1, z0[r] + t[r], rtol=0, atol=1e-14)
        assert np.count_nonzero(z1 == 0) >= np.count_nonzero(np.abs(z0[r] + t[r]) < 1e-15)
        if t[r] == 0:
            np.testing.assert_array_equal(d1[groups[r]], d[groups[r]])


def test_one_step_equals_the_exact_proximal_newton_step():
    X, y = sparse_problem(n=200, d=8, seed=2)
    loss = MultinomialLoss(X, y, 3, lam=0.02)
    w = np.full(loss.n_params, 1.0)
    x = np.zeros(loss.n_params)
    x[[0, 9, 17]] = [0.3, -0.2, 0.5]
    state = loss.evaluate(x)
    strategy = STRATEGIES["prox_cd"](loss, StrategySettings(), np.random.default_rng(0),
                                     L1Penalty(w))
    assert isinstance(strategy, SoftmaxProximalNewton)
    it = Iterate(x, state, float(np.linalg.norm(state.grad)))
    strategy.update(it, None)
    strategy.decrement(it, 0.0)
    step = strategy._step
    ref = exact_prox_step(loss.hessian(state), state.grad, w, x)
    np.testing.assert_allclose(step.direction, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    change = state.grad @ ref + w @ (np.abs(x + ref) - np.abs(x))
    assert step.decrement == pytest.approx(-change, rel=1e-8)
    np.testing.assert_allclose(step.image, loss.image(step.direction), atol=1e-12)


# -- fits ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_equals_saga(l1_ratio, intercept):
    """scikit-learn's saga on the same objective, run to its tightest tolerance (sparse data)."""
    from sklearn.linear_model import LogisticRegression

    X, y = sparse_problem()
    C = 0.1
    est = SketchedLogisticRegression(C=C, l1_ratio=l1_ratio, fit_intercept=intercept,
                                     method="prox_cd", tol=1e-14, random_state=0).fit(X, y)
    kw = dict(penalty="elasticnet") if l1_ratio < 1 else dict(penalty="l1")
    ref = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", tol=1e-15,
                             max_iter=100_000, fit_intercept=intercept, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(X, y)
    assert est.result_.method == "prox_cd" and est.result_.success
    assert 0 < np.count_nonzero(est.coef_) < est.coef_.size
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=RTOL * scale)
    if intercept:  # both the unpenalised minimisers (saga's not centred)
        np.testing.assert_allclose(est.intercept_, ref.intercept_ - ref.intercept_.mean(),
                                   rtol=0, atol=RTOL * scale)
    # saga reaches exact zeros only up to its tolerance: the support where it is clear
    clear = np.abs(ref.coef_) > 10 * RTOL * scale
    np.testing.assert_array_equal(est.coef_[clear] != 0, True)
    assert np.all(est.coef_[np.abs(ref.coef_) < 1e-10 * scale] == 0)


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_equals_the_dense_form(lam, intercept):
    """The dense ``prox`` form's minimiser (K = 3: odd, so an L1 minimiser is unique along the
    class shifts), the intercepts compared centred (the dense form's drift along their
    shift)."""
    X, y = sparse_problem(seed=3)
    loss = MultinomialLoss(X, y, 3, lam=lam, fit_intercept=intercept)
    w = penalty_weights(loss, 3.0, intercept)
    a = sn.minimize(loss, tol=1e-14, method="prox", l1=w, random_state=0)
    b = sn.minimize(loss, tol=1e-14, method="prox_cd", l1=w, random_state=0)
    assert a.success and b.success and b.method == "prox_cd"
    A, B = a.x.reshape(3, -1).copy(), b.x.reshape(3, -1)
    if intercept:
        A[:, -1] -= A[:, -1].mean()
        np.testing.assert_allclose(B[:, -1].sum(), 0.0, atol=1e-12)  # ours stay centred
    np.testing.assert_allclose(B, A, rtol=0, atol=1e-8 * np.abs(A).max())
    np.testing.assert_array_equal(B != 0, A != 0)


def test_weak_elastic_net_converges_along_the_class_shifts():
    """Elastic net at C = 1e4 (ridge 5e-5): the model's curvature along each column's class
    shift is the ridge alone, 40 eigenvalues of H_FF at 5e-5 against 1.5-132 for the rest;
    coordinate descent alone stopped at MAX_SWEEPS at every outer iteration and the fit at its
    iteration limit (the dense form's active-set cycles took 13 iterations). With the class-shift
    steps: a few iterations both, the same minimum."""
    rng = np.random.default_rng(0)
    X = sp.random(300, 40, density=0.2, random_state=1, format="csr")
    rng.standard_normal(40)
    y = rng.integers(0, 3, 300)
    kw = dict(C=1e4, l1_ratio=0.5, tol=1e-12, random_state=0)
    est = SketchedLogisticRegression(method="prox_cd", max_iter=30, **kw).fit(X, y)
    ref = SketchedLogisticRegression(method="prox", max_iter=300, **kw).fit(X, y)
    assert est.result_.success and ref.result_.success
    assert est.result_.nit <= 10 and ref.result_.nit <= 10  # 30 (the limit) and 13 before
    assert est.result_.fun == pytest.approx(ref.result_.fun, rel=1e-12)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-9 * scale)
    np.testing.assert_array_equal(est.coef_ != 0, ref.coef_ != 0)


def test_dense_input_and_uncertified_face(monkeypatch):
    """Dense ``A`` (its CSC copy), and the face solve left off (``H_FF`` not formed above
    ``restricted_max``): the step's own estimate certifies, the same minimiser."""
    import sketchnewton.strategies._proximal_cd as module

    X, y = multinomial_problem(n=200, d=6, K=3)
    loss = MultinomialLoss(X, y, 3, lam=0.05, fit_intercept=True)
    w = penalty_weights(loss, 4.0, True)
    ref = sn.minimize(loss, tol=1e-14, method="prox_cd", l1=w, random_state=0)
    monkeypatch.setattr(module, "restricted_max", lambda loss, cap: 0)
    res = sn.minimize(loss, eps=1e-9, method="prox_cd", l1=w, random_state=0)
    assert ref.success and res.success
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-8 * np.abs(ref.x).max())


def test_an_unfinished_solve_says_so():
    X, y = sparse_problem(seed=4)
    with pytest.warns(sn.ConvergenceWarning):
        est = SketchedLogisticRegression(C=1.0, l1_ratio=1.0, method="prox_cd",
                                         max_iter=1).fit(X, y)
    assert not est.result_.success


def test_auto_takes_the_data_form_for_wide_sparse_multinomial():
    rng = np.random.default_rng(5)
    wide = sp.random(300, 4000, density=0.01, random_state=rng, format="csr")
    loss = MultinomialLoss(wide, rng.integers(0, 4, 300), 4)
    assert choose_prox(loss) == "prox_cd"
    X, y = sparse_problem(n=3000, d=10, seed=6)  # p d << nnz: the Gram
    assert choose_prox(MultinomialLoss(X, y, 3)) == "prox"
    Xm, ym = multinomial_problem(n=100, d=5)  # dense: the Gram
    assert choose_prox(MultinomialLoss(Xm, ym, 3)) == "prox"
    est = SketchedLogisticRegression(C=1.0, l1_ratio=1.0).fit(wide, loss.y)
    assert est.result_.method == "prox_cd" and est.result_.success
