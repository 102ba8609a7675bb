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
def factors():
    pb = make_regression_problem(8_000, 10, link="resnet", nnz_per_row=4, z_std=1.0,
                                 noise=0.05, random_state=0)
    loss = NormalizedRegressionLoss(pb.A, pb.b, lam=1e-6)
    state = loss.evaluate(pb.x_true)
    return loss.hessian_factors(state, "full"), loss.hessian_factors(state, "gauss_newton")


@pytest.mark.parametrize("sketch", SKETCHES)
def test_sketched_gauss_newton_is_spectral_approximation(factors, sketch):
    full, gn = factors
    exact = gn.dense()
    errs = []
    for seed in range(5):
        H, s = ModelBuilder(sketch, 400, np.random.default_rng(seed)).sketched(full, gn, "gauss_newton")
        errs.append(spectral_error(exact, H))
        assert np.allclose(H, H.T)
    # (1 + sqrt(d/s))^2 - 1 = 0.34 for a Gaussian sketch at s = 40 d; leverage
    # sampling and embeddings are allowed 2x that. The Gauss-Newton weights
    # va^2 ~ exp(2 z) are heavy-tailed, so diag(va) A is coherent: uniform
    # sampling is expected to be much worse than leverage sampling here.
    if sketch == "uniform":
        lev = [spectral_error(exact, ModelBuilder("leverage", 400, np.random.default_rng(seed))
                              .sketched(full, gn, "gauss_newton")[0]) for seed in range(5)]
        assert np.median(errs) > 1.5 * np.median(lev)
    else:
        assert max(errs) < 0.7


@pytest.mark.parametrize("sketch", ["leverage"])
def test_sampled_full_hessian_is_unbiased(factors, sketch):
    full, gn = factors
    exact = full.dense()
    mean = np.mean([ModelBuilder(sketch, 400, np.random.default_rng(seed)).sketched(full, gn, "full")[0]
                    for seed in range(100)], axis=0)
    assert spectral_error(exact, mean) < 0.05


def test_sketch_keeps_softmax_null_direction():
    pb = make_regression_problem(5000, 6, link="softmax", nnz_per_row=3, random_state=1)
    A = sp.hstack([pb.A, np.ones((5000, 1))], format="csr")
    loss = NormalizedRegressionLoss(A, pb.b, link="softmax")
    state = loss.evaluate(np.r_[pb.x_true, 0.3])
    full, gn = loss.hessian_factors(state), loss.hessian_factors(state, "gauss_newton")
    e = np.eye(7)[-1]
    for sketch in SKETCHES:
        H, _ = ModelBuilder(sketch, 200, np.random.default_rng(0)).sketched(full, gn, "gauss_newton")
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
