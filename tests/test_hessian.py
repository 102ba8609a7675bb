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
