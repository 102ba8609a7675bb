"""SolveResult (sketchnewton/_stopping.py): a short repr and the history as columns; the advice
of a ConvergenceWarning."""

import numpy as np

import sketchnewton as sn
from sketchnewton._stopping import Decrement, ErrorBound, what_to_try
from sketchnewton.datasets import make_regression_problem


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
    assert "increase max_iter (now 7) or use a larger eps" in what_to_try(1, "maximum", eps, 7)
    assert "larger tol" in what_to_try(1, "maximum", tol, 7)
    assert "larger eps" in what_to_try(2, "below the attainable accuracy", eps, 7)
    assert "ridge" in what_to_try(2, "flat direction (an asymptote: ...)", tol, 7)
    assert "method='exact'" in what_to_try(2, "no decrease possible", eps, 7)
