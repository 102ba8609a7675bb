"""The front door (sketchnewton/api.py): its documentation runs, and its warnings point at the
caller's line and say what to try."""

import doctest
import warnings

import numpy as np
import pytest

import sketchnewton as sn
from sketchnewton import ConvergenceWarning, api
from sketchnewton.datasets import make_classification_problem, make_regression_problem


def _caught(fn):
    """Run ``fn()`` recording every warning; the ConvergenceWarnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if issubclass(w.category, ConvergenceWarning)]


@pytest.fixture(scope="module")
def planted():
    return make_regression_problem(3000, 10, link="resnet", nnz_per_row=5, random_state=0)


@pytest.fixture(scope="module")
def classes():
    return make_classification_problem(600, 8, random_state=0)[:2]


def test_docstring_examples_run():
    for fn in (api.solve, api.minimize):
        tests = doctest.DocTestFinder().find(fn, globs={})
        assert tests and tests[0].examples, fn.__name__
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        for t in tests:
            runner.run(t)
        assert runner.failures == 0, fn.__name__


@pytest.mark.parametrize("section", ["Parameters", "Returns", "Raises", "Warns", "See Also",
                                     "Notes", "Examples"])
def test_docstrings_have_numpydoc_sections(section):
    for fn in (api.solve, api.minimize):
        assert f"\n    {section}\n    {'-' * len(section)}\n" in fn.__doc__, (fn.__name__, section)
    assert "**Dask inputs.**" in api.solve.__doc__ and "**Error bound.**" in api.solve.__doc__


def test_solve_warning_points_at_the_caller_and_says_what_to_try(planted):
    caught = _caught(lambda: sn.solve(planted.A, planted.b, 1e-10, method="exact", max_iter=1))
    assert len(caught) == 1
    assert caught[0].filename == __file__
    assert "what to try: increase max_iter (now 1) or use a larger eps" in str(caught[0].message)


def test_minimize_warning_points_at_the_caller(classes):
    X, y = classes
    loss = sn.LogisticLoss(X, y, lam=1.0)
    caught = _caught(lambda: sn.minimize(loss, tol=1e-12, max_iter=1))
    assert len(caught) == 1 and caught[0].filename == __file__
    assert "increase max_iter (now 1) or use a larger tol" in str(caught[0].message)


def test_unattainable_eps_says_so(planted):
    caught = _caught(lambda: sn.solve(planted.A, planted.b, 1e-300, method="exact"))
    assert len(caught) == 1 and caught[0].filename == __file__
    assert "use a larger eps" in str(caught[0].message)


def test_estimator_warnings_point_at_the_caller(classes, planted):
    X, y = classes
    fits = [lambda: sn.SketchedLogisticRegression(max_iter=1, tol=1e-12).fit(X, y),
            lambda: sn.SketchedPoissonRegressor(max_iter=1).fit(X, np.abs(X[:, 0]) + 1.0)]
    for fit in fits:
        caught = _caught(fit)
        assert caught, fit
        assert all(w.filename == __file__ for w in caught), [w.filename for w in caught]
        assert all("what to try" in str(w.message) for w in caught)


def test_callback_stop_does_not_warn(planted):
    caught = _caught(lambda: sn.solve(planted.A, planted.b, 1e-10, callback=lambda xk: True))
    assert caught == []


# -- the warm start from a row sample (presolve; docs/math.md 6.6) --------------------------------
@pytest.fixture(scope="module")
def tall():
    """A tall noisy normalized regression (the sample estimates its minimiser, not exactly)."""
    return make_regression_problem(16_000, 8, link="resnet", nnz_per_row=4, z_std=1.5,
                                   noise=0.5, random_state=3)


def test_presolve_reaches_the_cold_solution_with_fewer_iterations(tall):
    cold = sn.solve(tall.A, tall.b, 1e-9, presolve="none", random_state=0)
    warm = sn.solve(tall.A, tall.b, 1e-9, presolve="sample", random_state=0)
    assert cold.success and warm.success
    assert "presolve" not in cold and "presolve" not in cold.timings
    assert np.linalg.norm(warm.x - cold.x) <= 2e-9 + 1e-9 * np.linalg.norm(cold.x)
    assert warm.nit < cold.nit
    info = warm.presolve
    assert info["rows"] == 1000 and info["nit"] >= 1 and "x" not in info and info["used"]
    # its cost is part of the solve's: passes over A (the sample's share), seconds
    assert 0 < info["passes"] < info["nit"] * 3 * 1000 / 16_000 + 1
    assert warm.timings["presolve"] == info["seconds"] > 0
    assert warm.passes >= info["passes"] + warm.history[-1]["passes"] - 1e-12
    assert warm.time >= info["seconds"]


def test_a_failed_sample_solve_is_not_used_but_its_cost_is_reported(tall):
    with pytest.warns(ConvergenceWarning, match="maximum number of iterations"):
        res = sn.solve(tall.A, tall.b, 1e-12, presolve="sample", max_iter=2, random_state=0)
    info = res.presolve
    assert not info["used"] and not info["success"] and info["nit"] == 2
    assert res.passes >= info["passes"] > 0 and res.timings["presolve"] == info["seconds"]


def test_presolve_is_reproducible_and_draws_from_random_state(tall):
    a = sn.solve(tall.A, tall.b, 1e-9, presolve="sample", random_state=5)
    b = sn.solve(tall.A, tall.b, 1e-9, presolve="sample", random_state=5)
    assert np.array_equal(a.x, b.x) and a.presolve["nit"] == b.presolve["nit"]


def test_presolve_of_a_classifier_gives_the_cold_minimiser():
    X, y, _ = make_classification_problem(12_000, 6, n_classes=3, random_state=1)
    loss = sn.MultinomialLoss(X, y, 3, lam=1.0)
    cold = sn.minimize(loss, tol=1e-12, presolve="none", random_state=0)
    warm = sn.minimize(loss, tol=1e-12, presolve="sample", random_state=0)
    assert cold.success and warm.success and warm.presolve["rows"] == 1800  # 100 per parameter (3 x 6)
    scale = np.abs(cold.x).max()
    assert np.abs(warm.x - cold.x).max() <= 1e-5 * scale
    assert warm.fun <= cold.fun * (1 + 1e-11)


def test_presolve_auto_skips_small_or_wide_problems_and_given_starts(tall):
    assert "presolve" not in sn.solve(tall.A, tall.b, 1e-8, random_state=0)  # few non-zeros
    # 600 rows, 10 columns: a sample of 100 rows per parameter is more than all of them
    short = make_regression_problem(600, 10, link="resnet", nnz_per_row=5, random_state=0)
    assert "presolve" not in sn.solve(short.A, short.b, 1e-8, presolve="sample", random_state=0)
    x0 = np.zeros(tall.A.shape[1])
    assert "presolve" not in sn.solve(tall.A, tall.b, 1e-8, x0=x0, presolve="sample",
                                      random_state=0)
    loss = sn.LogisticLoss(tall.A, (tall.b > np.median(tall.b)).astype(float), lam=1.0)
    assert "presolve" not in sn.minimize(loss, tol=1e-8, l1=0.01, presolve="sample",
                                         random_state=0)


def test_presolve_rejects_unknown_values(planted):
    with pytest.raises(sn.InputError, match="presolve"):
        sn.solve(planted.A, planted.b, 1e-6, presolve="always")
