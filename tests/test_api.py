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
