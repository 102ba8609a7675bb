"""Logistic and multinomial cross-entropy: derivatives, structure, validation."""

import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton import InputError, LogisticLoss, MultinomialLoss

from conftest import central_gradient, central_jacobian, random_sparse, rel_err

N, D = 80, 5


def _data(fmt, seed=0):
    A = random_sparse(N, D, 0.6, seed, empty_rows=2)
    if fmt == "dense":
        return A.toarray()
    if fmt == "float32":
        return A.astype(np.float32)
    if fmt == "csc":
        return A.tocsc()
    return A


def _losses(fmt, lam, fit_intercept, seed=0):
    A = _data(fmt, seed)
    rng = np.random.default_rng(seed)
    sw = rng.uniform(0.5, 2.0, N)
    yield LogisticLoss(A, rng.integers(0, 2, N), lam=lam, sample_weight=sw,
                       fit_intercept=fit_intercept)
    yield MultinomialLoss(A, rng.integers(0, 4, N), 4, lam=lam, sample_weight=sw,
                          fit_intercept=fit_intercept)


@pytest.mark.parametrize("fit_intercept", [False, True])
@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("fmt", ["csr", "csc", "dense", "float32"])
def test_derivatives_match_finite_differences(fmt, lam, fit_intercept):
    for loss in _losses(fmt, lam, fit_intercept):
        x = np.random.default_rng(1).normal(size=loss.n_params)
        fun, g = loss.loss_gradient(x)
        assert fun == pytest.approx(loss.loss(x), rel=1e-14)
        assert rel_err(g, central_gradient(loss.loss, x)) <= 1e-6
        H = loss.hessian(x)
        assert rel_err(H, central_jacobian(loss.gradient, x)) <= 1e-6
        for p in np.random.default_rng(2).normal(size=(3, loss.n_params)):
            assert rel_err(loss.hessp(x, p), H @ p) <= 1e-10


def test_logistic_matches_multinomial_with_two_classes():
    A = _data("csr")
    y = np.random.default_rng(0).integers(0, 2, N)
    w = np.random.default_rng(1).normal(size=D)
    bin_loss = LogisticLoss(A, y).loss(w)
    # softmax with logits (0, z) is the sigmoid of z
    multi = MultinomialLoss(A, y, 2).loss(np.concatenate([np.zeros(D), w]))
    assert bin_loss == pytest.approx(multi, rel=1e-12)


def test_multinomial_hessian_psd_and_singular_along_class_shift():
    loss = MultinomialLoss(_data("csr"), np.arange(N) % 3, 3, fit_intercept=True)
    x = np.random.default_rng(0).normal(size=loss.n_params)
    H = loss.hessian(x)
    ev = np.linalg.eigvalsh(H)
    assert ev.min() >= -1e-12 * ev.max()
    v = np.random.default_rng(1).normal(size=loss.A.d)
    shift = np.tile(v, 3)  # add the same vector to every class's coefficients
    assert np.linalg.norm(H @ shift) <= 1e-12 * np.linalg.norm(H) * np.linalg.norm(shift)
    assert loss.loss(x + shift) == pytest.approx(loss.loss(x), rel=1e-12)
    ridged = MultinomialLoss(_data("csr"), np.arange(N) % 3, 3, lam=0.1)
    assert np.linalg.eigvalsh(ridged.hessian(np.zeros(ridged.n_params))).min() >= 0.1 - 1e-12


def test_no_overflow_for_huge_logits():
    A = sp.csr_matrix(np.array([[1.0], [-1.0], [2.0]]))
    for loss in (LogisticLoss(A, [1, 0, 0]), MultinomialLoss(A, [1, 0, 2], 3)):
        x = np.full(loss.n_params, 800.0) * np.arange(1, loss.n_params + 1)
        fun, g = loss.loss_gradient(x)
        assert np.isfinite(fun) and np.all(np.isfinite(g))
        assert np.all(np.isfinite(loss.hessian(x)))


def test_intercept_is_not_penalised():
    loss = LogisticLoss(_data("csr"), np.arange(N) % 2, lam=1.0, fit_intercept=True)
    x = np.zeros(loss.n_params)
    x[-1] = 2.0
    unpen = LogisticLoss(_data("csr"), np.arange(N) % 2, lam=0.0, fit_intercept=True)
    assert loss.loss(x) == pytest.approx(unpen.loss(x))


@pytest.mark.parametrize("make", [
    lambda A: LogisticLoss(A, np.full(N, 2)),
    lambda A: LogisticLoss(A, np.ones(N - 1)),
    lambda A: LogisticLoss(A, np.full(N, 0.5)),
    lambda A: LogisticLoss(A, np.ones(N), sample_weight=-np.ones(N)),
    lambda A: MultinomialLoss(A, np.zeros(N), 1),
    lambda A: MultinomialLoss(A, np.full(N, 3), 3),
    lambda A: MultinomialLoss(A, np.zeros(N), 3, lam=np.nan),
])
def test_bad_input(make):
    with pytest.raises(InputError):
        make(_data("csr"))


def test_l1_duality_gap_bounds_the_objective_gap():
    """``LogisticLoss.duality_gap``: at least ``F(x) - F*`` (``F*`` from a tight L1 fit), about
    zero at the minimiser, and ``inf`` where no dual point is formed (a ridge, an
    unpenalised coordinate, a loss other than the binary one)."""
    from sketchnewton import PoissonLoss, SketchedLogisticRegression

    rng = np.random.default_rng(0)
    X = sp.random(300, 20, density=0.3, random_state=0, format="csr")
    y = (X @ rng.standard_normal(20) > 0).astype(int)
    sw = rng.uniform(0.5, 2.0, 300)
    C = 2.0
    est = SketchedLogisticRegression(C=C, l1_ratio=1.0, fit_intercept=False, tol=1e-13)
    est.fit(X, y, sample_weight=sw)
    loss = LogisticLoss(X, y.astype(float), sample_weight=sw)
    w = np.full(20, 1.0 / C)
    xs = est.coef_.ravel()
    f_star = loss.evaluate(xs).fun + w @ np.abs(xs)
    for x in (xs, 1.01 * xs, xs + 0.1 * rng.standard_normal(20), np.zeros(20)):
        st = loss.evaluate(x)
        gap = loss.duality_gap(st, w)
        assert gap >= st.fun + w @ np.abs(x) - f_star - 1e-12 * abs(f_star)
    assert loss.duality_gap(loss.evaluate(xs), w) <= 1e-9 * f_star
    ridge = LogisticLoss(X, y.astype(float), lam=0.1)
    assert ridge.duality_gap(ridge.evaluate(xs), w) == np.inf
    intercept = LogisticLoss(X, y.astype(float), fit_intercept=True)
    w1 = np.r_[w, 0.0]
    assert intercept.duality_gap(intercept.evaluate(np.r_[xs, 0.0]), w1) == np.inf
    pois = PoissonLoss(X, y.astype(float))
    assert pois.duality_gap(pois.evaluate(0 * xs), w) == np.inf
