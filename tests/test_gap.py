"""The duality bracket of a proximal model's decrement (strategies/_gap.py) and its use by the
matrix-free form (strategies/_proximal_cd.py): the bound is below the model's minimum for any
step, equal to it at the minimiser, and a certified fit through it reaches the Gram form's
objective."""

import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton._auto import FACE_PASSES
from sketchnewton.estimators import SketchedLogisticRegression
from sketchnewton.losses import L1Penalty, LogisticLoss, PoissonLoss
from sketchnewton.strategies import STRATEGIES, Iterate, StrategySettings
from sketchnewton.strategies._gap import bracket_decrement, model_dual_bound, model_value
from sketchnewton.strategies._proximal import ProximalNewton
from sketchnewton.strategies._proximal_cd import MatrixFreeProximalNewton

from test_proximal import binary_problem, exact_prox_step, poisson_problem


def model_at(loss, x, w):
    """``(g, D, rho, lam, H, A)`` of the model at ``x`` (the Hessian's factors)."""
    state = loss.evaluate(x)
    f = loss.hessian_factors(state)
    lam = np.broadcast_to(np.asarray(f.lam, dtype=float), x.shape).copy()
    return state.grad, f.diag, f.residual, lam, loss.hessian(state), f.A


def bound_at(x, w, g, D, rho, lam, H, A, d):
    """The dual bound at ``d``, the intercept's coordinate (the last, unpenalised) minimised
    exactly first, as the strategy does."""
    d = d.copy()
    G = g + H @ d
    free = np.flatnonzero(w == 0)
    if free.size:
        d[free] -= np.linalg.solve(H[np.ix_(free, free)], G[free])
        G = g + H @ d
        G[free] = 0.0
    r = A.matvec(d)
    return model_value(g, x, w, lam, D, d, r), model_dual_bound(x, w, lam, D, rho, d, r, G)


@pytest.mark.parametrize("ridge", [0.0, 0.3])
@pytest.mark.parametrize("family", ["logistic", "poisson"])
def test_dual_bound_is_below_the_model_minimum_and_tight_at_it(family, ridge):
    if family == "logistic":
        X, y = binary_problem(n=300, d=10, seed=11)
        loss, wj = LogisticLoss(X, y, lam=ridge, fit_intercept=True), 4.0
    else:
        X, y = poisson_problem(n=300, d=8, seed=12)
        loss, wj = PoissonLoss(sp.csr_matrix(X), y, lam=ridge, fit_intercept=True), 15.0
    rng = np.random.default_rng(0)
    w = np.full(loss.n_params, wj)
    w[-1] = 0.0
    x = np.zeros(loss.n_params)
    x[:3] = [0.2, -0.1, 0.05]
    g, D, rho, lam, H, A = model_at(loss, x, w)
    np.testing.assert_allclose(A.rmatvec(rho) + lam * x, g, rtol=0, atol=1e-12 * np.abs(g).max())
    dstar = exact_prox_step(H, g, w, x)
    qstar = model_value(g, x, w, lam, D, dstar, A.matvec(dstar))
    assert qstar < 0
    slack = 1e-10 * abs(qstar)
    for d in [np.zeros_like(x), dstar + 1e-3 * rng.standard_normal(x.size),
              dstar * 0.9, dstar + 0.1 * rng.standard_normal(x.size)]:
        q, dual = bound_at(x, w, g, D, rho, lam, H, A, d)
        assert dual <= qstar + slack <= q + 2 * slack
    q, dual = bound_at(x, w, g, D, rho, lam, H, A, dstar)
    assert dual == pytest.approx(qstar, rel=1e-7)  # tight at the minimiser


def test_dual_bound_refuses_an_unpenalised_coordinate_off_its_optimum():
    x, w = np.zeros(3), np.array([1.0, 1.0, 0.0])
    G = np.array([0.1, -0.2, 1e-3])
    D, rho, r = np.ones(4), np.zeros(4), np.zeros(4)
    assert model_dual_bound(x, w, np.zeros(3), D, rho, np.zeros(3), r, G) == -np.inf


def test_bracket_stops_at_the_first_round_that_tells():
    calls = []

    def solve(values):
        def f(tol):
            calls.append(tol)
            return values[len(calls) - 1]
        return f

    # upper bound -2 dual below the target at the second round: certified below
    value, decided = bracket_decrement(solve([(-1.0, -5.0), (-0.2, -0.3)]), 1.0, 10.0)
    assert decided and value == pytest.approx(0.6) and calls == [1.0, 0.1]
    calls.clear()
    # -q(d) above the target: the exact decrement is above it too
    value, decided = bracket_decrement(solve([(-3.0, -9.0)]), 1.0, 10.0)
    assert decided and value == 3.0
    calls.clear()
    value, decided = bracket_decrement(lambda tol: (-0.4, -0.6), 1.0, 1.0)
    assert not decided  # never told: the caller falls back to the exact solve


def test_matrix_free_confirmation_by_duality_certifies(monkeypatch):
    """Elastic net above the face-solve cap: the stopping test's confirmations are decided by
    the bracket (the exact solve is never asked for) and the fit reaches the Gram form's
    objective within tol."""
    rng = np.random.default_rng(0)
    X = sp.random(800, 1500, density=0.01, format="csr", random_state=3)
    y = (X @ rng.standard_normal(1500) + 0.1 * rng.standard_normal(800) > 0).astype(int)
    tol = 1e-10
    ref = SketchedLogisticRegression(C=20.0, l1_ratio=0.5, method="prox", tol=tol).fit(X, y)

    def refuse(self, it, target):
        raise AssertionError("the exact confirmation was asked for")

    monkeypatch.setattr(ProximalNewton, "decrement", refuse)
    told = []
    bracket = MatrixFreeProximalNewton._bracket

    def record(self, it, target):
        out = bracket(self, it, target)
        told.append(out[1])
        return out

    monkeypatch.setattr(MatrixFreeProximalNewton, "_bracket", record)
    monkeypatch.setattr("sketchnewton.strategies._proximal_cd.restricted_max",
                        lambda loss, cap, passes=0: 0)
    fit = SketchedLogisticRegression(C=20.0, l1_ratio=0.5, method="prox_cd", tol=tol).fit(X, y)
    assert fit.result_.success and ref.result_.success and told and all(told)
    assert abs(fit.result_.fun - ref.result_.fun) <= tol * abs(ref.result_.fun)


def test_refined_step_replaces_the_step_at_x():
    X, y = binary_problem(n=400, d=12, seed=4)
    loss = LogisticLoss(X, y, lam=0.2, fit_intercept=True)
    w = np.full(loss.n_params, 2.0)
    w[-1] = 0.0
    x = np.zeros(loss.n_params)
    state = loss.evaluate(x)
    strategy = STRATEGIES["prox_cd"](loss, StrategySettings(), np.random.default_rng(0),
                                     L1Penalty(w))
    it = Iterate(x, state, float(np.linalg.norm(state.grad)))
    strategy.update(it, None)
    strategy.face_max = 0
    first = strategy.step(it)
    value = strategy.decrement(it, 1e-12)
    refined = strategy.step(it)
    assert refined is not first and refined.accuracy <= first.accuracy
    np.testing.assert_allclose(refined.image, loss.image(refined.direction), atol=1e-10)
    ref = exact_prox_step(loss.hessian(state), state.grad, w, x)
    change = state.grad @ ref + w @ (np.abs(x + ref) - np.abs(x))
    assert 1e-12 < value <= -change * (1 + 1e-9)  # above the target: a lower bound of it


def test_lasso_confirmation_by_one_face_solve(monkeypatch):
    """Lasso with the per-step face solves switched off: the confirmation solves the model
    once on the face of ``x`` (no 1e-10 coordinate descent) and the fit is certified at the
    Gram form's objective."""
    rng = np.random.default_rng(1)
    X = sp.random(800, 1500, density=0.01, format="csr", random_state=4)
    y = (X @ rng.standard_normal(1500) + 0.1 * rng.standard_normal(800) > 0).astype(int)
    tol = 1e-10
    ref = SketchedLogisticRegression(C=20.0, l1_ratio=1.0, method="prox", tol=tol).fit(X, y)
    monkeypatch.setattr("sketchnewton.strategies._proximal_cd.restricted_max",
                        lambda loss, cap, passes=FACE_PASSES: 0 if passes == FACE_PASSES else cap)
    faces = []
    on_face = MatrixFreeProximalNewton._on_face

    def record(self, it):
        faces.append(on_face(self, it))
        return faces[-1]

    monkeypatch.setattr(MatrixFreeProximalNewton, "_on_face", record)
    fit = SketchedLogisticRegression(C=20.0, l1_ratio=1.0, method="prox_cd", tol=tol).fit(X, y)
    assert fit.result_.success and ref.result_.success
    assert faces and faces[-1] is not None and faces[-1].accuracy == 0.0
    assert abs(fit.result_.fun - ref.result_.fun) <= tol * abs(ref.result_.fun)
