"""Each Newton strategy on its own: constructed on a small loss, one step checked against the exact
Newton step within the accuracy the strategy states (sketchnewton/strategies)."""

import numpy as np
import pytest
import scipy.linalg as sla

import sketchnewton as sn
from conftest import scaled_dense_logistic
from sketchnewton.datasets import make_classification_problem, make_regression_problem
from sketchnewton.strategies import STRATEGIES, Iterate, StrategySettings, _inexact


def _normalized():
    pb = make_regression_problem(4000, 10, link="resnet", nnz_per_row=4, noise=0.1,
                                 random_state=0)
    return sn.NormalizedRegressionLoss(pb.A, pb.b, lam=1e-4)


def _logistic():
    X, y, _ = make_classification_problem(4000, 10, nnz_per_row=4, random_state=0)
    return sn.LogisticLoss(X, y, lam=1.0, fit_intercept=True)


def _multinomial():
    X, y, _ = make_classification_problem(4000, 10, n_classes=3, nnz_per_row=4, random_state=0)
    return sn.MultinomialLoss(X, y, 3, lam=1.0, fit_intercept=True)


def _iterate(loss):
    """A point away from the minimiser, where the Hessian is positive definite."""
    rng = np.random.default_rng(1)
    x = 0.1 * rng.standard_normal(loss.n_params)
    state = loss.evaluate(x)
    return Iterate(state.x, state, float(np.linalg.norm(state.grad)))


def _newton_step(loss, it):
    H = loss.hessian(it.state)
    N = loss.null_space()
    if N is not None:  # the class shift: the minimum-norm step
        return -np.linalg.lstsq(H, it.grad, rcond=None)[0], H
    return -sla.solve(H, it.grad, assume_a="pos"), H


def _h_norm(H, v):
    return float(np.sqrt(v @ H @ v))


@pytest.mark.parametrize("make", [_normalized, _logistic, _multinomial])
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_one_step_against_the_exact_newton_step(make, name):
    loss = make()
    if name == "dual" and not loss.diagonal_curvature:
        pytest.skip("the dual form needs a diagonal row curvature")
    if name == "subsampled" and not loss.row_subsets:
        with pytest.raises(sn.InputError, match="row subsets"):
            STRATEGIES[name](loss, StrategySettings(), np.random.default_rng(0))
        return
    if name.startswith("prox"):
        return _check_proximal_without_penalty(loss, name)
    strategy = STRATEGIES[name](loss, StrategySettings(sketch_size=40 * loss.n_params),
                                np.random.default_rng(0))
    it = _iterate(loss)
    strategy.update(it, None)
    assert strategy.fresh and strategy.model is not None
    drawn = (getattr(strategy, "_sub", None), getattr(strategy, "_sub_state", None))
    step = strategy.step(it)
    p_star, H = _newton_step(loss, it)
    p = step.direction
    assert step.decrement == pytest.approx(-float(it.grad @ p))
    err = _h_norm(H, p - p_star) / _h_norm(H, p_star)
    if name in ("exact", "dual"):
        assert err <= 1e-8, err
    elif name == "sketch":
        e = strategy.model.spectral_error
        assert 0 < e < 1 and err <= e / (1 - e), (err, e)
    elif name == "subsampled":  # CG on the Hessian of the row sample, to the forcing term
        sub, sub_state = drawn  # dropped after the step (m x K arrays for many classes)
        assert strategy._sub is None and strategy._sub_state is None
        assert sub is not None and sub.data.n == strategy.rows < loss.data.n
        H_R = sub.hessian(sub_state)
        residual = np.linalg.norm(H_R @ p + it.grad) / np.linalg.norm(it.grad)
        assert residual <= step.accuracy * (1 + 1e-8), (residual, step.accuracy)
        assert step.image is None  # the sample's images are not A p
        assert err < 1.0  # still a Newton-like step
    else:  # conjugate gradients to the forcing term eta: ||H p + g|| <= eta ||g||
        residual = np.linalg.norm(H @ p + it.grad) / np.linalg.norm(it.grad)
        assert residual <= step.accuracy * (1 + 1e-8), (residual, step.accuracy)
        if not loss.accumulate_images:  # the multinomial loss in memory: no n x K image kept
            assert step.image is None
            return
        assert step.image is not None  # A p comes with the products
        np.testing.assert_allclose(np.asarray(step.image).ravel(),
                                   np.asarray(loss.image(p)).ravel(), rtol=1e-8, atol=1e-10)


def _check_proximal_without_penalty(loss, name):
    """Without a penalty a proximal Newton step is the Newton step of its model (the last of
    the loss's Hessian kinds: always positive semidefinite), exact on its face."""
    strategy = STRATEGIES[name]
    try:
        strategy.check_fits(loss)
    except sn.InputError:
        return
    strategy = strategy(loss, StrategySettings(sketch_size=40 * loss.n_params),
                        np.random.default_rng(0))
    it = _iterate(loss)
    strategy.update(it, None)
    step = strategy.step(it)
    H = loss.hessian(it.state, loss.hessian_kinds[-1])
    p_star = -np.linalg.lstsq(H, it.grad, rcond=None)[0]
    p = step.direction
    assert step.decrement == pytest.approx(-float(it.grad @ p))
    err = _h_norm(H, p - p_star) / _h_norm(H, p_star)
    e = strategy.model.spectral_error
    assert err <= (1e-8 if e == 0 else e / (1 - e)), (err, e)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_model_estimate_is_the_step_length(name):
    """The error estimate ``||H~^{-1} g|| / (1 - e)`` of a model that approximates the Hessian;
    a matrix-free preconditioner gives none (its CG step does)."""
    loss = _logistic()
    strategy = STRATEGIES[name](loss, StrategySettings(), np.random.default_rng(0))
    it = _iterate(loss)
    assert strategy.estimate(it) == np.inf  # no model yet
    strategy.update(it, None)
    step = strategy.step(it)
    e = strategy.model.spectral_error
    if name == "subsampled":  # sampled products: no estimate until the sample is full
        assert step.error_estimate == np.inf and strategy.estimate(it) == it.error_estimate
    elif e is None:
        assert step.error_estimate == pytest.approx(
            np.linalg.norm(step.direction) / (1 - step.accuracy))
        assert strategy.estimate(it) == it.error_estimate
    elif name in ("exact", "dual", "sketch"):
        assert strategy.estimate(it) == pytest.approx(np.linalg.norm(step.direction) / (1 - e))


def test_pcg_keeps_its_preconditioner_while_it_fits():
    """Kept after a step that barely moved the linear predictor and needed few CG iterations;
    rebuilt after a large move."""
    loss = _logistic()
    strategy = STRATEGIES["pcg"](loss, StrategySettings(), np.random.default_rng(0))
    it = _iterate(loss)
    strategy.update(it, None)
    it.step = strategy.step(it)
    model = strategy.model
    it.last_dz = 0.05
    strategy.update(it, None)
    assert strategy.model is model and not strategy.fresh
    it.last_dz = 5.0
    strategy.update(it, None)
    assert strategy.model is not model and strategy.fresh


def test_sketch_size_doubles_when_contraction_is_poor():
    loss = _normalized()
    strategy = STRATEGIES["sketch"](loss, StrategySettings(), np.random.default_rng(0))
    it = _iterate(loss)
    size = strategy.builder.sketch_size
    it.step_size = 1.0
    strategy.update(it, 0.1)  # fast enough
    assert strategy.builder.sketch_size == size
    strategy.update(it, 0.8)
    assert strategy.builder.sketch_size == 2 * size
    fixed = STRATEGIES["sketch"](loss, StrategySettings(sketch_size=100), np.random.default_rng(0))
    fixed.update(it, 0.8)
    assert fixed.builder.sketch_size == 100  # a size given by the user is kept


def test_newton_cg_resolves_auto_and_grows_nystrom():
    loss = _logistic()
    cg = STRATEGIES["cg"](loss, StrategySettings(preconditioner="auto"), np.random.default_rng(0))
    it = _iterate(loss)
    cg.update(it, None)
    assert cg.preconditioner in ("diagonal", "none") and cg.describe()["preconditioner"] \
        == cg.preconditioner
    ny = STRATEGIES["cg"](loss, StrategySettings(preconditioner="nystrom"),
                          np.random.default_rng(0))
    ny.update(it, None)
    rank = ny.builder.rank
    ny.cg_iterations = 100  # CG was slow with this rank: the next build doubles it
    it.step, it.last_dz = ny.step(it), 10.0
    ny.cg_iterations = 100
    ny.update(it, None)
    assert ny.builder.rank == min(2 * rank, loss.n_params)


def test_subsampled_newton_grows_its_sample_and_ends_exact():
    """The sample doubles after a slow unit step or a cut step, and holds every row (exact
    products; images kept where the loss keeps them: not the multinomial loss in memory) from
    n / 2 rows on."""
    loss = _multinomial()
    strategy = STRATEGIES["subsampled"](loss, StrategySettings(), np.random.default_rng(0))
    assert strategy.preconditioner == "kronecker"  # "auto" for the multinomial loss
    it = _iterate(loss)
    strategy.update(it, None)
    rows = strategy.rows
    assert rows < loss.data.n and strategy._sub.data.n == rows
    it.step = strategy.step(it)
    it.step_size = 1.0
    strategy.update(it, 0.1)  # fast enough
    assert strategy.rows == rows
    strategy.update(it, 0.8)
    assert strategy.rows == 2 * rows
    it.step_size = 0.25
    strategy.update(it, 0.1)
    assert strategy.rows in (4 * rows, loss.data.n)
    while not strategy.full:
        strategy.update(it, 0.8)
    assert strategy.rows == loss.data.n
    step = strategy.step(it)
    # float64 data: the exact products of every row (their n x K images are not kept)
    assert (step.image is not None) == loss.accumulate_images
    H = loss.hessian(it.state)
    residual = np.linalg.norm(H @ step.direction + it.grad) / np.linalg.norm(it.grad)
    assert residual <= step.accuracy * (1 + 1e-8)


def _check_cg_step(loss, it, step):
    p_star, H = _newton_step(loss, it)
    residual = np.linalg.norm(H @ step.direction + it.grad) / np.linalg.norm(it.grad)
    assert residual <= step.accuracy * (1 + 1e-8), (residual, step.accuracy)


@pytest.mark.parametrize("lam, escalates", [(1e5, False), (1e-3, True)])
def test_pcg_defers_its_preconditioner_on_dense_rows(monkeypatch, lam, escalates):
    """Dense rows: plain CG while a step converges within the budget (no leverage scores, no
    Gram); past it, the sketched preconditioner is built and the step solved again with it."""
    loss = scaled_dense_logistic(lam)
    monkeypatch.setattr(_inexact, "DEFER_SHARE", 0.0)
    assert STRATEGIES["pcg"](loss, StrategySettings(), np.random.default_rng(0)).budget == 0
    monkeypatch.setattr(_inexact, "DEFER_SHARE", 1e3)  # a budget on a problem this small
    strategy = STRATEGIES["pcg"](loss, StrategySettings(), np.random.default_rng(0))
    strategy.budget = 6  # the first step takes 3 products at lam = 1e5, 12 at 1e-3
    assert strategy.deferred and strategy.describe()["preconditioner"] == "none"
    it = _iterate(loss)
    strategy.update(it, None)
    step = strategy.step(it)
    _check_cg_step(loss, it, step)
    built = strategy.builder.timings["gram"] > 0
    assert strategy.deferred is not escalates and built is escalates
    if escalates:
        assert step.inner_iterations > strategy.budget
        assert strategy.describe()["preconditioner"] == "sketched"
        assert strategy.model.spectral_error is not None
    else:
        assert step.inner_iterations <= strategy.budget
        assert strategy.model.spectral_error is None  # no approximation claimed


def test_pcg_does_not_defer_on_sparse_rows():
    strategy = STRATEGIES["pcg"](_logistic(), StrategySettings(), np.random.default_rng(0))
    assert strategy.budget == 0 and not strategy.deferred
    assert strategy.describe()["preconditioner"] == "sketched"


def test_a_deferred_pcg_solve_reaches_the_exact_solution(monkeypatch):
    """Through the driver, either way the same minimiser as exact Newton."""
    monkeypatch.setattr(_inexact, "DEFER_SHARE", 1e3)
    for lam in (1e5, 1e-3):
        loss = scaled_dense_logistic(lam)
        exact = sn.minimize(loss, method="exact", tol=1e-10)
        res = sn.minimize(loss, method="pcg", tol=1e-10, random_state=0)
        assert res.success and res.method == "pcg"
        assert res.preconditioner in ("none", "sketched")
        np.testing.assert_allclose(res.x, exact.x, rtol=1e-6, atol=1e-8 * np.abs(exact.x).max())
