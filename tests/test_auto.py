"""The cost model of ``method="auto"`` (sketchnewton/_auto.py)."""

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton._auto import (
    DENSE_BYTES,
    PRESOLVE_MIN_NNZ,
    choose_method,
    method_costs,
    presolve_rows,
)
from sketchnewton.datasets import make_classification_problem
from sketchnewton.losses import LogisticLoss, MultinomialLoss


def _binary(n, d, lam, nnz_per_row=10, seed=0):
    X, y, _ = make_classification_problem(n, d, n_classes=2, nnz_per_row=nnz_per_row,
                                          random_state=seed)
    return X, y, LogisticLoss(X, y, lam=lam, fit_intercept=True)


def test_many_rows_few_features_use_a_dense_model():
    _, _, loss = _binary(20_000, 30, 1.0)
    assert choose_method(loss)[0] in ("exact", "pcg")


def test_few_rows_many_features_use_cg_or_the_dual_form():
    """Evenly scaled features with a ridge: CG needs few products (Newton-CG); features on
    different scales and few rows: CG needs many, and the (n x n) dual system is cheaper."""
    _, _, loss = _binary(1000, 5_000, 1.0, nnz_per_row=50)
    costs = method_costs(loss)
    assert costs["exact"] > costs["dual"] > costs["cg"]
    assert choose_method(loss) == ("cg", "auto")
    X, y, _ = _binary(300, 3_000, 1.0, nnz_per_row=20)
    scaled = sp.csr_matrix(X @ sp.diags(np.logspace(-1, 2, X.shape[1])))
    assert choose_method(LogisticLoss(scaled, y, lam=1.0, fit_intercept=True))[0] == "dual"


def test_dual_needs_a_ridge_one_column_per_row_and_memory():
    _, _, loss = _binary(300, 2_000, 0.0)
    assert "dual" not in method_costs(loss)
    X, y, _ = make_classification_problem(300, 2_000, n_classes=3, nnz_per_row=10,
                                          random_state=0)
    assert "dual" not in method_costs(MultinomialLoss(X, y, 3, lam=1.0))
    n = int(np.sqrt(DENSE_BYTES / 24)) + 50  # its (n x n) system would not fit the budget
    _, _, big = _binary(n, 50, 1.0, nnz_per_row=2)
    assert "dual" not in method_costs(big)


def test_no_dense_model_once_p_squared_is_too_big():
    X, y, _ = make_classification_problem(200, 20_000, n_classes=4, nnz_per_row=5,
                                          random_state=1)
    costs = method_costs(MultinomialLoss(X, y, 4, lam=1.0))
    assert set(costs) == {"cg"}


@pytest.mark.parametrize("n, d", [(300, 20_000), (20_000, 30)])
def test_auto_solves_like_the_method_it_chose(n, d):
    """``auto`` reports its choice and gives the coefficients of that method run explicitly."""
    X, y, loss = _binary(n, d, 1.0, nnz_per_row=20 if n < d else 10)
    chosen = choose_method(loss)[0]
    auto = sn.minimize(loss, tol=1e-10, random_state=0)
    same = sn.minimize(loss, tol=1e-10, method=chosen, random_state=0)
    assert auto.success and same.success and auto.method == chosen
    np.testing.assert_allclose(auto.x, same.x, rtol=0, atol=1e-7 * max(1, np.abs(same.x).max()))


def test_presolve_rows_needs_a_tall_problem_in_memory_with_many_non_zeros():
    X = sp.random(64_000, 20, density=0.05, format="csr", random_state=0)
    loss = LogisticLoss(X, np.arange(64_000) % 2, lam=1.0)
    assert X.nnz < PRESOLVE_MIN_NNZ and presolve_rows(loss) == 0
    assert presolve_rows(loss, forced=True) == 4000  # n / 16, above 100 rows a parameter
    wide = LogisticLoss(X[:1000], np.arange(1000) % 2, lam=1.0)
    assert presolve_rows(wide, forced=True) == 0  # 2,100 rows: more than all of them
    big = sp.random(200_000, 50, density=0.11, format="csr", random_state=0)
    assert presolve_rows(LogisticLoss(big, np.arange(200_000) % 2, lam=1.0)) == 12_500
