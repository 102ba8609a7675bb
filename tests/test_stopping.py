"""Stopping rules and the result (sketchnewton/_stopping.py): SolveResult's short repr and the
history as columns; the advice of a ConvergenceWarning; messages agree with their numbers; asking
for more than float64 can deliver stops at the attainable accuracy."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from conftest import scaled_dense_logistic
from sketchnewton import ConvergenceWarning, SketchedLogisticRegression
from sketchnewton._outcome import Reason
from sketchnewton._stopping import Decrement, ErrorBound, Evidence, Phase, what_to_try
from sketchnewton.datasets import make_classification_problem, make_regression_problem


def _result():
    pb = make_regression_problem(2000, 8, link="resnet", nnz_per_row=4, random_state=0)
    return sn.solve(pb.A, pb.b, 1e-8, method="exact", random_state=0)


def test_repr_is_one_short_line_without_the_history():
    res = _result()
    text = repr(res)
    assert "\n" not in text and len(text) < 400
    assert text.startswith("SolveResult(success=True") and "x=<array of 8>" in text
    assert "history" not in text and "nit=" in text and "method='exact'" in text


def test_history_columns():
    res = _result()
    cols = res.history_columns()
    assert set(cols) == set(res.history[0])
    assert all(len(v) == res.nit + 1 for v in cols.values())
    assert np.array_equal(cols["loss"], [row["loss"] for row in res.history])
    assert cols["iter"].dtype.kind == "i" and cols["model"].dtype.kind == "U"
    assert sn.SolveResult(history=[]).history_columns() == {}


def test_scipy_fields():
    res = _result()
    for key in ("x", "fun", "jac", "nit", "nfev", "njev", "nhev", "success", "status", "message"):
        assert key in res, key
    assert res.nfev >= res.nit and np.isclose(np.linalg.norm(res.jac), res.grad_norm)


def test_what_to_try():
    eps, tol = ErrorBound(1e-8), Decrement(1e-8)
    assert "increase max_iter (now 7) or use a larger eps" in what_to_try(Reason.MAX_ITER, eps, 7)
    assert "larger tol" in what_to_try(Reason.MAX_ITER, tol, 7)
    assert "larger eps" in what_to_try(Reason.BELOW_FLOOR, eps, 7)
    assert "larger eps" in what_to_try(Reason.NOISE_FLOOR, eps, 7)
    assert "ridge" in what_to_try(Reason.ASYMPTOTE, tol, 7)
    assert "method='exact'" in what_to_try(Reason.NO_DECREASE, eps, 7)


# -- the rules as functions of their evidence ----------------------------------------------------
def _ev(phase, **kw):
    base = dict(fun=1.0, grad_norm=1e-3, g0_norm=1.0)
    base.update(kw)
    return Evidence(phase, **base)


def _floor(err, dec=0.0):
    return lambda: (err, dec)


def test_error_bound_judges_a_fresh_exact_model_with_its_contraction():
    rule = ErrorBound(1e-6)
    # first estimate: taken as it is, plus the floor
    v = rule.judge(_ev(Phase.MODEL, estimate=5e-7, exact_model=True, fresh=True,
                       floor=_floor(1e-7)))
    assert v.reason is Reason.CONVERGED and v.error_estimate == pytest.approx(6e-7)
    # a slow contraction (rho = 0.625) multiplies the estimate by 1 / (1 - rho): above eps
    v = rule.judge(_ev(Phase.MODEL, estimate=5e-7, exact_model=True, fresh=True,
                       previous_exact=8e-7))
    assert not v.done and v.error_estimate == pytest.approx(5e-7 / 0.375)


def test_error_bound_confirms_a_kept_or_sketched_model_only_in_the_local_regime():
    rule = ErrorBound(1e-6)
    calls = []

    def stale():
        calls.append(1)
        return 3.0

    # a model from an earlier iterate, after a damped step: no verdict, no Hessian product
    v = rule.judge(_ev(Phase.KEPT, estimate=1e-7, has_model=True, local=False, staleness=stale))
    assert not v.done and calls == []
    # after a unit step: confirmed against the Hessian (factor 3 -> 3e-7 <= eps)
    v = rule.judge(_ev(Phase.KEPT, estimate=1e-7, has_model=True, local=True, staleness=stale))
    assert v.reason is Reason.CONVERGED and v.error_estimate == pytest.approx(3e-7)
    # the factor can withhold success
    v = rule.judge(_ev(Phase.MODEL, estimate=5e-7, fresh=True, staleness=stale))
    assert not v.done and v.error_estimate == pytest.approx(1.5e-6)


def test_error_bound_scales_the_floor_by_the_model_overstatement():
    """A model that overstates the curvature at x by ``stale`` understates ``H^{-1}`` by as much:
    the floor computed with it is scaled like the estimate (a sampled model 1e16 above a
    Hessian at its rounding level certified a point 208 from the minimiser)."""
    rule = ErrorBound(1e-6)
    for phase in (Phase.MODEL, Phase.STALLED):
        v = rule.judge(_ev(phase, estimate=3e-23, fresh=True, noise_limited=True,
                           staleness=lambda: 1e16, floor=_floor(1e-16)))
        assert not v.success and v.reason is Reason.BELOW_FLOOR, phase
        assert v.error_estimate == pytest.approx(3e-7 + 1.0)
    # a good model (factor 2): the floor stays negligible
    v = rule.judge(_ev(Phase.MODEL, estimate=1e-7, fresh=True, staleness=lambda: 2.0,
                       floor=_floor(1e-16)))
    assert v.success and v.error_estimate == pytest.approx(2e-7 + 2e-16)


def test_error_bound_below_the_floor_fails_and_a_stall_says_why():
    rule = ErrorBound(1e-10)
    v = rule.judge(_ev(Phase.MODEL, estimate=1e-12, exact_model=True, fresh=True,
                       floor=_floor(1e-9)))
    assert v.reason is Reason.BELOW_FLOOR and not v.success and v.status == 2
    v = rule.judge(_ev(Phase.STALLED, estimate=1e-9, floor=_floor(1e-11), noise_limited=True))
    assert v.reason is Reason.NOISE_FLOOR and v.status == 2
    v = rule.judge(_ev(Phase.STALLED, estimate=1e-9, noise_limited=False))
    assert v.reason is Reason.NO_DECREASE
    v = rule.judge(_ev(Phase.STALLED, estimate=1e-11, noise_limited=True))
    assert v.reason is Reason.CONVERGED and v.success
    # the step of a matrix-free CG judges itself; any other step does not
    assert rule.judge(_ev(Phase.STEP, estimate=1e-11, matrix_free=True)).success
    assert not rule.judge(_ev(Phase.STEP, estimate=1e-11, matrix_free=False)).done


def test_decrement_rule():
    rule = Decrement(1e-8)
    # only after a unit step
    assert not rule.judge(_ev(Phase.KEPT, decrement=1e-12, unit_step=False)).done
    assert rule.judge(_ev(Phase.KEPT, decrement=1e-12, unit_step=True)).success
    # a small gradient alone is no evidence (issue 27's fuzz: separable data with C = inf)
    assert not rule.judge(_ev(Phase.KEPT, grad_norm=1e-12, decrement=1.0)).done
    # extrapolation after two contracting unit steps
    v = rule.judge(_ev(Phase.KEPT, decrement=1e-7, previous_decrement=1e-3, unit_step=True))
    assert v.success and "extrapolated" in v.message
    # no quadratic progress at the rounding floor, above tol |f|: stopped, honestly failed
    v = rule.judge(_ev(Phase.KEPT, decrement=1e-7, previous_decrement=2e-7, unit_step=True,
                       has_model=True, floor=_floor(0.0, 1e-7)))
    assert v.reason is Reason.NOISE_FLOOR and not v.success and "attainable" in v.message
    # issue 27: a step the loss cannot verify: the decrement at x judges x
    v = rule.judge(_ev(Phase.STALLED, fun=1478.8, decrement=2e-11, noise_limited=True))
    assert v.reason is Reason.CONVERGED
    v = rule.judge(_ev(Phase.STALLED, decrement=1.0, noise_limited=True))
    assert v.reason is Reason.NOISE_FLOOR and not v.success
    # rules change nothing: the same evidence gives the same verdict
    ev = _ev(Phase.KEPT, decrement=1e-7, previous_decrement=1e-3, unit_step=True)
    assert rule.judge(ev) == rule.judge(ev)


NUMBER = r"([0-9.e+-]+|inf|nan)"


def assert_message_agrees(message, eps):
    """Every ``estimated error A > eps = B`` / ``A <= eps = B`` in ``message`` is true."""
    found = False
    for a, op, b in re.findall(rf"estimated error {NUMBER} (>|<=) eps = {NUMBER}", message):
        found = True
        assert float(b) == pytest.approx(eps, rel=1e-2), message
        assert (float(a) > float(b)) if op == ">" else (float(a) <= float(b)), message
    return found


def _cases():
    pb = make_regression_problem(2000, 6, link="resnet", nnz_per_row=3, z_std=1.0, random_state=0)
    dup = sp.hstack([pb.A, pb.A[:, [0]]], format="csr")
    wide = make_regression_problem(1000, 200, link="resnet", nnz_per_row=20, z_std=1.0,
                                   random_state=0)
    return [
        ("duplicated column", dup, pb.b, dict(eps=1e-8, method="exact")),
        ("pcg sketch-size 5", pb.A, pb.b, dict(eps=1e-12, method="pcg", sketch_size=5, max_iter=3)),
        ("max_iter", pb.A, pb.b, dict(eps=1e-12, method="sketch", max_iter=2)),
        ("d > n", wide.A, wide.b, dict(eps=1e-6, max_iter=3)),
    ]


@pytest.mark.parametrize("name, A, b, kwargs", _cases(), ids=[c[0] for c in _cases()])
def test_messages_agree_with_their_numbers(name, A, b, kwargs):
    """'estimated error 1.9e-08 > eps = 1e-06' used to be printed (e.g. after the flat-direction
    test failed, or by ``solve --method pcg --sketch-size 5``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = sn.solve(A, b, random_state=0, **kwargs)
    assert_message_agrees(res.message, kwargs["eps"])
    if not res.success and "estimated error" in res.message:
        assert res.error_bound == pytest.approx(float(re.search(
            rf"estimated error {NUMBER}", res.message).group(1)), rel=1e-2), res.message


@pytest.fixture(scope="module")
def tiny_class():
    """Five classes, one of 6 rows among 4000 (as the issue's 52 of 494,021)."""
    X, y, _ = make_classification_problem(4000, 12, n_classes=5, separation=3.0, nnz_per_row=4,
                                          random_state=0)
    y = np.where(y == 4, 3, y)
    idx = np.flatnonzero(y == 0)[:6]
    y[y == 0] = 1
    y[idx] = 0
    return X, y


@pytest.mark.parametrize("tol", [1e-24, 1e-30])
def test_tol_below_float64_stops_at_the_rounding_floor(tiny_class, tol):
    """pcg used to iterate to max_iter (100 iterations, 20x the time) for the same objective."""
    X, y = tiny_class
    ref = SketchedLogisticRegression(C=1e3, tol=1e-8, method="pcg", random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="attainable accuracy"):
        clf = SketchedLogisticRegression(C=1e3, tol=tol, method="pcg", random_state=0,
                                         max_iter=100).fit(X, y)
    assert max(clf.n_iter_) <= 20, (clf.n_iter_, clf.result_.message)
    # tol |f| is far below the loss's rounding error: no solve can certify it, and this one
    # says so instead of iterating (or claiming success)
    assert not clf.result_.success and "attainable accuracy" in clf.result_.message
    if "rounding floor" in clf.result_.message:
        m = re.search(rf"decrement \({NUMBER}\) is within .* \({NUMBER}\)", clf.result_.message)
        assert m and float(m.group(1)) <= float(m.group(2)), clf.result_.message
    p, p_ref = clf.predict_proba(X), ref.predict_proba(X)
    obj = -np.log(p[np.arange(y.size), y]).sum()
    obj_ref = -np.log(p_ref[np.arange(y.size), y]).sum()
    assert obj == pytest.approx(obj_ref, rel=1e-8)


def test_time_account():
    """The timings add up to the wall time (``other``: the driver's own work and the checks);
    ``time_passes`` is the time over one reference pass, measured on demand and not pickled."""
    import pickle

    res = _result()
    assert sum(res.timings.values()) == pytest.approx(res.time, rel=1e-9)
    assert res.timings["other"] >= 0
    assert 0 < res.reference_pass < res.time and res.time_passes == pytest.approx(
        res.time / res.reference_pass)
    again = pickle.loads(pickle.dumps(res))
    assert again.nit == res.nit and np.isnan(again.time_passes)


def test_decrement_of_an_inexact_step_is_confirmed():
    """A CG step's -g^T p may miss most of the decrement (issue 27's fuzz: the objective 29x tol
    above the optimum): with a bound of what it misses (a preconditioner that approximates H)
    the bound is added; without one (a matrix-free preconditioner) the decrement at x is
    computed accurately before success."""
    rule = Decrement(1e-8)
    asked = []

    def confirm(target):
        asked.append(target)
        return 1.0  # far above the target: not converged

    ev = _ev(Phase.KEPT, decrement=1e-12, unit_step=True, missing=np.inf, confirm=confirm)
    assert not rule.judge(ev).done and asked == [pytest.approx(2e-8)]
    ev = _ev(Phase.KEPT, decrement=1e-12, unit_step=True, missing=1.0, confirm=confirm)
    assert not rule.judge(ev).done and len(asked) == 1  # the bound says it: no confirmation
    ev = _ev(Phase.KEPT, decrement=1e-12, unit_step=True, missing=1e-12, confirm=confirm)
    assert rule.judge(ev).success and len(asked) == 1


def test_decrement_predicted_below_the_target_is_computed_at_x():
    """A contracting inexact step whose next decrement is predicted below the target: the
    decrement at x is computed (to the target) instead of one more step; success only when it
    is below the target, and never on the prediction alone."""
    rule = Decrement(1e-6)  # fun = 1: half decrement <= 1e-6, i.e. decrement <= 2e-6
    answers = []

    def confirm(target):
        answers.append(target)
        return values.pop(0)

    # half = 5e-6 > 1e-6, predicted 5e-6 * (1e-5 / 1e-3) = 5e-8 <= 0.5 * 1e-6
    kw = dict(decrement=1e-5, previous_decrement=1e-3, unit_step=True, missing=np.inf,
              confirm=confirm)
    values = [1e-7]
    v = rule.judge(_ev(Phase.KEPT, **kw))
    assert v.success and "at x" in v.message and answers == [pytest.approx(2e-6)]
    values = [1e-5]  # the decrement at x is above the target after all: go on
    assert not rule.judge(_ev(Phase.KEPT, **kw)).done
    # a prediction above PREDICTION_SAFETY tol |f|, or no contraction: no computation
    answers.clear()
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, previous_decrement=5e-5))).done  # 1e-6
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, previous_decrement=2e-5))).done
    assert answers == []
    # a step whose missing decrement is bounded (a spectral preconditioner) is judged by the
    # bound, never computed
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, missing=1.0))).done and answers == []


def test_error_bound_stops_a_stagnant_cut_step_at_the_rounding_floor():
    """A cut step that left the estimate where it was, near the rounding floor of the gradient:
    eps below that floor stops there (a failure, said so); far above the floor, or after a unit
    step or real progress, the solve goes on (the floor is not even computed)."""
    rule = ErrorBound(1e-300)
    asked = []

    def floor():
        asked.append(1)
        return (1e-16, 0.0)

    kw = dict(estimate=1.2e-16, previous_estimate=1.21e-16, unit_step=False, floor=floor,
              has_model=True)
    v = rule.judge(_ev(Phase.KEPT, **kw))
    assert v.reason is Reason.BELOW_FLOOR and not v.success and "attainable" in v.message
    # stagnant but far above the floor: go on
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, estimate=1e-3, previous_estimate=1.1e-3))).done
    asked.clear()
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, unit_step=True))).done
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, previous_estimate=1e-15))).done
    assert not rule.judge(_ev(Phase.KEPT, **dict(kw, has_model=False))).done  # no floor to ask
    assert asked == []


def test_decrement_target_with_a_reference_objective():
    """The warm start's rule: ``tol max(|f|, reference)`` (a noiseless problem's f* is 0)."""
    rule = Decrement(1e-6, reference=2.0)
    assert "tol |f| = 2e-06" in rule.shortfall(np.inf, 1.0, 0.0)
    assert "tol |f| = 5e-06" in rule.shortfall(np.inf, 1.0, -5.0)
    assert "tol |f| = 3e-06" in Decrement(1e-6).shortfall(np.inf, 1.0, 3.0)


@pytest.mark.parametrize("tol", [1e-8, 1e-10])
def test_matrix_free_success_holds_where_cg_increments_stall(tol):
    """Unpreconditioned CG's decrement at the last iterate makes increments of 1e-9 for four
    iterations, then of 1e-8 to 9e-8: an estimate taken after two small ones claimed tol = 1e-10
    with the objective 1.4e-10 (relative) above the minimum."""
    loss = scaled_dense_logistic(1e5)
    best = sn.minimize(loss, method="exact", tol=1e-13)
    res = sn.minimize(loss, method="cg", preconditioner="none", tol=tol)
    assert res.success
    assert (res.fun - best.fun) <= tol * abs(best.fun), (res.fun - best.fun) / abs(best.fun)


def test_decrement_rule_never_succeeds_on_an_unconfirmed_decrement():
    """A stalled solve whose decrement is below the target but whose confirmation failed (the
    model's minimiser not computed to the accuracy that certifies it: ``inf``) stops, failed,
    and says so; the shortfall message does not claim the decrement is above the target."""
    rule = Decrement(1e-8)
    v = rule.judge(_ev(Phase.STALLED, decrement=1e-12, missing=np.inf,
                       confirm=lambda target: np.inf))
    assert not v.success and v.reason is Reason.NOISE_FLOOR
    assert "could not be confirmed" in v.message
    v = rule.judge(_ev(Phase.KEPT, decrement=1e-12, unit_step=True, missing=np.inf,
                       confirm=lambda target: np.inf))
    assert not v.done
    assert "was not confirmed" in rule.shortfall(np.inf, 1e-12, 1.0)
    assert "> tol" in rule.shortfall(np.inf, 1.0, 1.0)
