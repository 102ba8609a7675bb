"""Normalized regression loss: derivatives against finite differences, structure, safety."""

import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton import DomainError, InputError, NormalizedRegressionLoss, minimize
from sketchnewton.datasets import make_regression_problem
from sketchnewton.losses import LINKS

from conftest import central_gradient, central_jacobian, planted_target, random_sparse, rel_err

N, D = 60, 6
REGULARISERS = {
    "none": dict(),
    "lam": dict(lam=0.05),
    "w_scalar": dict(w=0.2),
    "w_vector": dict(w=np.linspace(0.1, 0.5, N)),
    "both": dict(lam=0.01, w=0.1),
}
FORMATS = ["dense", "csr", "csc", "coo", "csr_array", "float32", "float32_csr"]


def _make(link, fmt, reg, seed=0):
    A = random_sparse(N, D, 0.5, seed, empty_rows=3)
    if fmt == "dense":
        A = A.toarray()
    elif fmt in ("csc", "coo"):
        A = A.asformat(fmt)
    elif fmt == "csr_array":
        A = sp.csr_array(A)
    elif fmt == "float32":
        A = A.toarray().astype(np.float32)
    elif fmt == "float32_csr":
        A = A.astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    x = rng.normal(size=D)
    z = np.asarray(A @ x, dtype=np.float64).ravel()
    phi_sum = {"resnet": np.exp(z) + z, "sinh": np.sinh(z)}.get(link, np.ones(1)).sum()
    if phi_sum < 0:
        x = -x
    b = planted_target(A.astype(np.float64), rng.normal(size=D) * 0.5, "softmax")
    return NormalizedRegressionLoss(A, b, link=link, **REGULARISERS[reg]), x


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("reg", list(REGULARISERS))
@pytest.mark.parametrize("link", LINKS)
def test_gradient_and_hessians_match_finite_differences(link, reg, fmt):
    loss, x = _make(link, fmt, reg)
    state = loss.evaluate(x)
    assert state.fun == pytest.approx(loss.loss(x), rel=1e-14)
    assert rel_err(state.grad, central_gradient(loss.loss, x)) <= 1e-6

    H_fd = central_jacobian(loss.gradient, x)
    H = loss.hessian(state, "full")
    assert np.allclose(H, H.T, rtol=0, atol=1e-14 * np.abs(H).max())
    assert rel_err(H, H_fd) <= 1e-6

    J = central_jacobian(loss.residual, x)
    Ad = np.asarray(loss.A.dense if loss.A.dense is not None else loss.A.csr.toarray())
    w2 = loss.w2 if loss.w2.size else np.zeros(N)
    GN_fd = J.T @ J + Ad.T @ (w2[:, None] * Ad) + loss.lam * np.eye(D)
    assert rel_err(loss.hessian(state, "gauss_newton"), GN_fd) <= 1e-6


@pytest.mark.parametrize("kind", ["full", "gauss_newton"])
@pytest.mark.parametrize("link", LINKS)
def test_hessp_equals_dense_hessian(link, kind):
    for fmt in ("csr", "dense"):
        loss, x = _make(link, fmt, "both", seed=3)
        state = loss.evaluate(x)
        H = loss.hessian(state, kind)
        for p in np.random.default_rng(4).normal(size=(3, D)):
            assert rel_err(loss.hessp(state, p, kind), H @ p) <= 1e-10


@pytest.mark.parametrize("link", LINKS)
def test_gauss_newton_root_reproduces_gauss_newton(link):
    loss, x = _make(link, "csr", "both")
    F = loss.hessian_factors(x, "gauss_newton")
    Ad = loss.A.csr.toarray()
    J = F.root.row_scale[:, None] * Ad - np.outer(F.root.shift, F.root.k)
    G = J.T @ J + Ad.T @ (F.root.extra_diag[:, None] * Ad) + loss.lam * np.eye(D)
    assert rel_err(G, F.dense()) <= 1e-12


@pytest.mark.parametrize("link", LINKS)
def test_gauss_newton_is_psd(link):
    for seed in range(10):
        loss, x = _make(link, "csr", "none", seed=seed)
        G = loss.hessian(x, "gauss_newton")
        ev = np.linalg.eigvalsh(G)
        assert ev.min() >= -1e-12 * ev.max()


def test_full_hessian_psd_once_regularised():
    """The full Hessian can be indefinite; a large enough ``w`` makes it PSD."""
    loss, x = _make("resnet", "csr", "none", seed=5)
    b = loss.b.copy()
    b[::2] *= 3  # far from attainable: large residual, indefinite curvature
    x = x * 2
    ev0 = np.linalg.eigvalsh(NormalizedRegressionLoss(loss.A, b).hessian(x))
    assert ev0.min() < 0
    ev = np.linalg.eigvalsh(NormalizedRegressionLoss(loss.A, b, w=1.0).hessian(x))
    assert ev.min() > 0


def test_softmax_shift_invariance_gives_null_direction():
    A = random_sparse(N, D, 0.5, 0).toarray()
    A[:, 0] = 1.0
    b = planted_target(A, np.full(D, 0.1))
    loss = NormalizedRegressionLoss(A, b, link="softmax")
    x = np.random.default_rng(0).normal(size=D) * 0.3
    e0 = np.eye(D)[0]
    assert loss.loss(x + 5 * e0) == pytest.approx(loss.loss(x), rel=1e-12)
    for kind in ("full", "gauss_newton"):
        H = loss.hessian(x, kind)
        assert np.linalg.norm(H @ e0) <= 1e-12 * np.linalg.norm(H)


@pytest.mark.parametrize("link", LINKS)
def test_no_overflow_for_large_z(link):
    A = sp.csr_matrix(np.vstack([np.eye(3), -np.eye(3), np.ones((1, 3))]))
    b = np.full(7, 1 / 7)
    loss = NormalizedRegressionLoss(A, b, link=link)
    for scale in (1e2, 7e2, 1e3):
        x = np.array([scale, 0.5, -0.5]) if link != "sinh" else np.array([scale, 0.0, 0.0])
        state = loss.evaluate(x)
        assert np.isfinite(state.fun) and np.all(np.isfinite(state.grad))
        assert np.all(np.isfinite(loss.hessian(state)))
        assert state.f.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("link", ["resnet", "sinh"])
def test_nonpositive_alpha_raises_domain_error(link):
    A = sp.csr_matrix(np.ones((5, 1)))
    loss = NormalizedRegressionLoss(A, np.full(5, 0.2), link=link)
    with pytest.raises(DomainError, match="alpha"):
        loss.loss(np.array([-3.0]))
    with pytest.raises(DomainError, match="alpha"):
        loss.evaluate(np.array([-3.0]))


@pytest.mark.parametrize("bad, match", [
    (dict(A=np.zeros((0, 3))), "empty"),
    (dict(A=np.ones((4, 3)) * np.nan), "NaN"),
    (dict(A=sp.csr_matrix(np.array([[np.inf, 0, 0]] * 4))), "Inf"),
    (dict(A=np.ones((4, 3), dtype=complex)), "complex"),
    (dict(A=np.array([["a"] * 3] * 4)), "non-numeric"),
    (dict(A=np.ones(4)), "2-D"),
    (dict(b=np.ones(5)), "length 5"),
    (dict(b=np.array([1, np.nan, 1, 1.0])), "NaN"),
    (dict(lam=-1.0), "lam"),
    (dict(lam=np.inf), "lam"),
    (dict(w=np.ones(3)), "w"),
    (dict(link="tanh"), "link"),
])
def test_bad_input_raises_clear_error(bad, match):
    kw = dict(A=np.ones((4, 3)), b=np.full(4, 0.25), link="softmax")
    kw.update(bad)
    with pytest.raises(InputError, match=match):
        NormalizedRegressionLoss(**kw)


def test_bad_x_raises():
    loss = NormalizedRegressionLoss(np.ones((4, 3)), np.full(4, 0.25))
    with pytest.raises(InputError, match="length 2"):
        loss.loss(np.ones(2))
    with pytest.raises(InputError, match="NaN"):
        loss.evaluate(np.array([0.0, np.nan, 0.0]))


def test_input_matrix_not_modified_and_not_densified():
    A = random_sparse(N, D, 0.3, 1, fmt="coo")
    before = A.copy()
    loss = NormalizedRegressionLoss(A, np.full(N, 1 / N))
    assert loss.A.is_sparse and loss.A.dense is None
    assert (A != before).nnz == 0


# -- the subproblem of a row sample (the warm start, docs/math.md 6.6) --------------------------
@pytest.mark.parametrize("reg", ["none", "both", "w_vector"])
@pytest.mark.parametrize("fmt", ["dense", "csr", "float32_csr"])
def test_subproblem_of_every_row_is_the_loss(reg, fmt):
    loss, x = _make("resnet", fmt, reg)
    sub = loss.subproblem(np.arange(N))  # the targets already sum to one
    assert loss.subproblems and sub.A.dtype == loss.A.dtype
    assert rel_err(sub.loss(x), loss.loss(x)) < 1e-13
    assert rel_err(sub.gradient(x), loss.gradient(x)) < 1e-12


def test_subproblem_scales_its_terms_by_the_share_of_rows():
    loss, x = _make("resnet", "csr", "both")
    rows = np.arange(0, N, 3)  # a third of the rows: residuals about 3 times the full ones
    sub = loss.subproblem(rows)
    assert sub.A.shape == (len(rows), D) and sub.lam == pytest.approx(3 * loss.lam)
    np.testing.assert_allclose(sub.b, loss.b[rows] / loss.b[rows].sum(), rtol=1e-15)
    np.testing.assert_allclose(sub.w2, 9 * loss.w2[rows], rtol=1e-15)


def test_subproblem_minimiser_of_a_noiseless_problem_is_the_planted_one():
    pb = make_regression_problem(4000, 6, link="resnet", nnz_per_row=3, random_state=2)
    rows = np.sort(np.random.default_rng(0).choice(4000, 500, replace=False))
    res = minimize(NormalizedRegressionLoss(pb.A, pb.b).subproblem(rows), eps=1e-10,
                   presolve="none", random_state=0)
    assert res.success and np.linalg.norm(res.x - pb.x_true) < 1e-8


def test_subproblem_refuses_targets_without_a_positive_sum():
    loss, _ = _make("resnet", "csr", "none")
    b = loss.b.copy()
    b[:10] = -1.0
    with pytest.raises(InputError, match="sum to a positive"):
        NormalizedRegressionLoss(loss.A, b).subproblem(np.arange(10))
