"""Hessian models: sketched models approximate the exact Hessian; singular and indefinite cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton import NormalizedRegressionLoss
from sketchnewton.datasets import make_regression_problem
from sketchnewton.hessian import SKETCHES, ModelBuilder, factorize, factorize_psd


def spectral_error(H, H_approx):
    values, V = np.linalg.eigh(H)
    Hm12 = V @ np.diag(values ** -0.5) @ V.T
    return np.abs(np.linalg.eigvalsh(Hm12 @ H_approx @ Hm12) - 1).max()


@pytest.fixture(scope="module")
def problem():
    pb = make_regression_problem(8_000, 10, link="resnet", nnz_per_row=4, z_std=1.0,
                                 noise=0.05, random_state=0)
    loss = NormalizedRegressionLoss(pb.A, pb.b, lam=1e-6)
    return loss, loss.evaluate(pb.x_true)


def _sketched(loss, state, sketch, seed, kind="gauss_newton", size=400):
    return ModelBuilder(loss, sketch, size, np.random.default_rng(seed)).sketched(state, kind)


@pytest.mark.parametrize("sketch", SKETCHES)
def test_sketched_gauss_newton_is_spectral_approximation(problem, sketch):
    loss, state = problem
    exact = loss.hessian(state, "gauss_newton")
    errs = []
    for seed in range(5):
        H, s = _sketched(loss, state, sketch, seed)
        errs.append(spectral_error(exact, H))
        assert np.allclose(H, H.T)
    # (1 + sqrt(d/s))^2 - 1 = 0.34 for a Gaussian sketch at s = 40 d; leverage
    # sampling and embeddings are allowed 2x that. The Gauss-Newton weights
    # va^2 ~ exp(2 z) are heavy-tailed, so diag(va) A is coherent: uniform
    # sampling is expected to be much worse than leverage sampling here.
    if sketch == "uniform":
        lev = [spectral_error(exact, _sketched(loss, state, "leverage", seed)[0])
               for seed in range(5)]
        assert np.median(errs) > 1.5 * np.median(lev)
    else:
        assert max(errs) < 0.7


@pytest.mark.parametrize("sketch", ["leverage"])
def test_sampled_full_hessian_is_unbiased(problem, sketch):
    loss, state = problem
    exact = loss.hessian(state, "full")
    mean = np.mean([_sketched(loss, state, sketch, seed, "full")[0] for seed in range(100)], axis=0)
    assert spectral_error(exact, mean) < 0.05


def test_sketch_keeps_softmax_null_direction():
    pb = make_regression_problem(5000, 6, link="softmax", nnz_per_row=3, random_state=1)
    A = sp.hstack([pb.A, np.ones((5000, 1))], format="csr")
    loss = NormalizedRegressionLoss(A, pb.b, link="softmax")
    state = loss.evaluate(np.r_[pb.x_true, 0.3])
    e = np.eye(7)[-1]
    for sketch in SKETCHES:
        H, _ = _sketched(loss, state, sketch, 0, size=200)
        assert np.linalg.norm(H @ e) <= 1e-10 * np.linalg.norm(H)


def test_factorize_rejects_singular_and_psd_model_uses_pseudo_inverse():
    rng = np.random.default_rng(0)
    V = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    H = V @ np.diag([0.0, 1e-3, 1.0, 2.0, 3.0]) @ V.T
    assert factorize(H, "full") is None
    model = factorize_psd(H, "gauss_newton")
    assert model.damping == 0.0
    g = H @ rng.normal(size=5)  # in the range of H
    assert np.allclose(H @ model.solve(g), g)
    assert abs(V[:, 0] @ model.solve(g + V[:, 0])) < 1e-10  # null direction gets no step


def test_indefinite_model_is_damped_to_positive_definite():
    H = np.diag([-2.0, 1.0, 3.0])
    model = factorize_psd(H, "gauss_newton")
    assert model.damping > 2.0
    g = np.array([1.0, 1.0, 1.0])
    assert g @ model.solve(g) > 0


# -- matrix-free preconditioners and the dual form -------------------------------------------
def _preconditioned_spectrum(H, solve, null_space=None):
    """Eigenvalues of ``P^{-1} H`` on the complement of the loss's declared null space."""
    Pinv = np.column_stack([solve(e) for e in np.eye(H.shape[0])])
    Pinv = 0.5 * (Pinv + Pinv.T)
    w, V = np.linalg.eigh(Pinv)
    root = (V * np.sqrt(np.maximum(w, 0.0))) @ V.T
    ev = np.linalg.eigvalsh(root @ H @ root)
    if null_space is not None:
        ev = np.sort(ev)[null_space.shape[1]:]
    return ev


@pytest.fixture(scope="module", params=["binary", "multinomial"])
def classification(request):
    from sketchnewton import LogisticLoss, MultinomialLoss
    from sketchnewton.datasets import make_classification_problem

    X, y, _ = make_classification_problem(500, 40, n_classes=3, nnz_per_row=6,
                                          column_scale=(1e-2, 1e2), random_state=2)
    if request.param == "binary":
        loss = LogisticLoss(X, (y == 1).astype(int), lam=0.01, fit_intercept=True)
    else:
        loss = MultinomialLoss(X, y, 3, lam=0.01, fit_intercept=True)
    state = loss.evaluate(np.random.default_rng(0).normal(size=loss.n_params) * 0.1)
    return loss, state


def test_hessian_diagonal_and_block_products_are_exact(classification):
    loss, state = classification
    H = loss.hessian(state)
    D = loss.hessian_diagonal(state)
    if D.ndim == 1:
        np.testing.assert_allclose(D, np.diag(H), rtol=1e-12)
    else:  # per-feature K x K blocks: coordinates k * d + j
        K, d = D.shape[1], D.shape[0]
        for j in range(d):
            idx = np.arange(K) * d + j
            np.testing.assert_allclose(D[j], H[np.ix_(idx, idx)], rtol=1e-10, atol=1e-12)
    V = np.random.default_rng(1).normal(size=(loss.n_params, 5))
    np.testing.assert_allclose(loss.hessian_matmat(state, V), H @ V, rtol=1e-10,
                               atol=1e-10 * np.abs(H @ V).max())


def test_jacobi_preconditioner_equilibrates_badly_scaled_columns(classification):
    """Column scales 1e-2..1e2 give a condition number ~1e7; the (block) Jacobi
    preconditioner brings it to O(10)."""
    from sketchnewton.hessian import DiagonalModel

    loss, state = classification
    H = loss.hessian(state)
    N = loss.null_space()
    plain = _preconditioned_spectrum(H, lambda g: g if N is None else g - N @ (N.T @ g), N)
    jac = _preconditioned_spectrum(H, DiagonalModel(loss.hessian_diagonal(state), "full", N).solve, N)
    assert plain[-1] / plain[0] > 1e6
    assert jac[-1] / jac[0] < 100


def test_nystrom_preconditioned_spectrum_is_bounded_as_the_theory_says():
    """Frangella, Tropp & Udell: with a rank-r Nystrom approximation of S H S (S the Jacobi
    scaling), the preconditioned spectrum lies in [lambda_min / lambda_r, 1] up to the
    approximation error; with a low-rank-dominated Hessian it collapses as r grows past
    its effective dimension."""
    from sketchnewton.hessian import nystrom_model

    rng = np.random.default_rng(0)
    p, k = 120, 10  # spectrum: 10 large eigenvalues over a ridge of 1e-3
    Q = np.linalg.qr(rng.normal(size=(p, p)))[0]
    values = np.r_[np.geomspace(1e3, 1e1, k), np.full(p - k, 0.0)] + 1e-3
    H = (Q * values) @ Q.T
    conds = []
    for r in (4, 12, 48):
        model = nystrom_model(lambda V: H @ V, np.diag(H), r, np.random.default_rng(1), "full")
        ev = _preconditioned_spectrum(H, model.solve)
        S = np.diag(1 / np.sqrt(np.diag(H)))
        lam_min = np.linalg.eigvalsh(S @ H @ S)[0]
        # the lower end is lambda_min / lambda_r; once r covers the large eigenvalues the
        # upper end is O(1) (1 on the captured directions, up to the approximation error)
        assert ev[0] >= 0.5 * lam_min / model.lam[-1]
        if r > k:
            assert ev[-1] <= 10 and ev[-1] / ev[0] < 25
        conds.append(ev[-1] / ev[0])
    assert conds[-1] < 15 and conds[-1] < 1e-4 * conds[0]


def test_dual_model_is_the_exact_inverse():
    """The (n x n) dual form solves with the Hessian exactly: logistic with an unpenalised
    intercept (Schur complement), and the normalized loss's rank-2 term (Woodbury)."""
    from sketchnewton import LogisticLoss
    from sketchnewton.hessian import ModelBuilder

    rng = np.random.default_rng(3)
    X = sp.random(60, 150, density=0.1, random_state=rng, format="csr")  # n < p
    loss = LogisticLoss(X, rng.integers(0, 2, 60), lam=0.3, fit_intercept=True)
    state = loss.evaluate(rng.normal(size=loss.n_params) * 0.1)
    g = rng.normal(size=loss.n_params)
    model = ModelBuilder(loss, "exact", 0, rng).dual(state)
    np.testing.assert_allclose(loss.hessian(state) @ model.solve(g), g, rtol=1e-9, atol=1e-9)
    pb = make_regression_problem(80, 200, link="resnet", nnz_per_row=5, random_state=4)
    nloss = NormalizedRegressionLoss(pb.A, pb.b, lam=1e-4, w=0.01)
    nstate = nloss.evaluate(pb.x_true * 0.5)
    for kind in ("gauss_newton", "full"):
        dual = ModelBuilder(nloss, "exact", 0, rng).dual(nstate, kind)
        g = rng.normal(size=200)
        np.testing.assert_allclose(nloss.hessian(nstate, kind) @ dual.solve(g), g, rtol=1e-8,
                                   atol=1e-8 * np.abs(g).max())


def test_sampled_model_is_unbiased_with_empty_rows():
    """Rows with a_i = 0 are never sampled (zero leverage), yet their row of the Gauss-Newton
    factor, -f_i k, is not zero: the sampled model adds their share exactly. Constructed so that
    the empty rows carry most of f (the others have z ~ -3): without that share the mean of the
    sketched models misses the exact matrix by 0.21 (spectral error); with it, by Monte Carlo
    noise only."""
    rng = np.random.default_rng(0)
    A = sp.random(2000, 6, density=0.5, random_state=rng, format="lil")
    A[:1000] = 0
    A = A.tocsr()
    A.data = np.abs(A.data) + 0.5
    loss = NormalizedRegressionLoss(A, np.full(2000, 1 / 2000), link="softmax", lam=1e-8)
    state = loss.evaluate(np.full(6, -2.0))
    exact = loss.hessian(state, "gauss_newton")
    mean = np.mean([_sketched(loss, state, "leverage", seed, size=120)[0] for seed in range(200)],
                   axis=0)
    assert spectral_error(exact, mean) < 0.03
