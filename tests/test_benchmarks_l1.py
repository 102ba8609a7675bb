"""The ``l1`` benchmark study's pieces: its one objective (binary and multinomial) equals
scikit-learn's, the warm-up slice keeps every class and the problem's shape, the peer choice
(``--solvers``, no multinomial loss), and a child whose setup exceeds its cap is reported."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("sklearn")

from sklearn.metrics import log_loss  # noqa: E402

from benchmarks._common import SETUP_TIMED_OUT, run_child  # noqa: E402
from benchmarks.studies import l1  # noqa: E402


def _problem(n, d, K, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.05, format="csr", random_state=seed)
    y = rng.integers(0, K, n)
    return X, (np.where(y == 1, 1.0, -1.0) if K == 2 else y)


@pytest.mark.parametrize("K", [2, 4])
def test_objective_is_the_penalised_log_loss(K):
    X, y = _problem(60, 15, K)
    rng = np.random.default_rng(1)
    C, r = 0.7, 0.5
    if K == 2:
        w = rng.standard_normal(15)
        z = X @ w
        P = np.column_stack([1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))])
        labels = (y > 0).astype(int)
    else:
        w = rng.standard_normal((K, 15))
        Z = X @ w.T
        P = np.exp(Z - Z.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        labels = y
    expected = (C * 60 * log_loss(labels, P, labels=np.arange(max(K, 2)))
                + 0.5 * (1 - r) * np.sum(w * w) + r * np.abs(w).sum())
    assert l1.objective(X, y, C, r, w) == pytest.approx(expected, rel=1e-12)
    assert l1.is_multinomial(y) == (K > 2)


def test_warm_up_slice_keeps_classes_and_shape():
    X, y = _problem(400, 2000, 5)
    Xw, yw = l1.warm_up_slice(X, y, rows=300, cols=100)
    assert Xw.shape[1] == 100 and Xw.shape[1] > Xw.shape[0] >= 50  # wide stays wide
    assert set(np.unique(yw)) == set(np.unique(y))
    Xt, _ = _problem(500, 20, 2)
    assert l1.warm_up_slice(Xt, np.ones(500), rows=300, cols=100)[0].shape == (300, 20)
    assert sp.isspmatrix_csr(Xw) and X.nnz == _problem(400, 2000, 5)[0].nnz  # input intact


def test_solvers_for_multinomial_and_choice():
    peers, skipped = l1.solvers_for(1.0)
    assert peers == ["liblinear", "saga", "glum", "skglm", "celer"] and not skipped
    peers, skipped = l1.solvers_for(0.5, multinomial=True)
    assert peers == ["saga"] and set(skipped) == {"glum", "skglm"}
    peers, _ = l1.solvers_for(1.0, chosen=["skglm", "celer"])
    assert peers == ["skglm", "celer"]


def test_setup_over_its_cap_is_reported_not_raised():
    cmd = [sys.executable, "-c", "import time; time.sleep(30)"]
    assert run_child(cmd, 5.0, setup_cap=1.0) is SETUP_TIMED_OUT
    with pytest.raises(RuntimeError):
        run_child(cmd, 5.0, setup_timeout=1.0)
