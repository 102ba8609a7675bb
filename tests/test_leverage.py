"""Leverage scores: exact vs QR, approximate within a constant factor, edge cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton.exceptions import InputError
from sketchnewton.sketch import leverage_scores, sampling_probabilities


def _problem(n=2000, d=15, seed=0):
    rng = np.random.default_rng(seed)
    A = sp.random(n, d, density=0.3, random_state=rng, format="csr",
                  data_rvs=rng.standard_normal)
    w = rng.uniform(0.1, 2.0, n)
    # a few coherent rows
    A = A.tolil()
    for i in range(3):
        A[i] = 0
        A[i, i] = 50.0
    return A.tocsr(), w


def test_exact_matches_qr():
    A, w = _problem()
    M = np.sqrt(w)[:, None] * A.toarray()
    Q, _ = np.linalg.qr(M)
    expected = (Q ** 2).sum(axis=1)
    got = leverage_scores(A, w, method="exact")
    np.testing.assert_allclose(got, expected, atol=1e-10)
    assert abs(got.sum() - A.shape[1]) < 1e-8
    assert np.all((got >= -1e-12) & (got <= 1 + 1e-12))


def test_exact_dense_input_and_default_weights():
    A, _ = _problem(n=300, d=6)
    dense = A.toarray()
    Q, _ = np.linalg.qr(dense)
    np.testing.assert_allclose(leverage_scores(dense, method="exact"), (Q ** 2).sum(1),
                               atol=1e-10)


def test_rank_deficient_and_zero_rows():
    A, w = _problem(n=500, d=8)
    dense = A.toarray()
    dense = np.column_stack([dense, dense[:, 0] + dense[:, 1], np.zeros(500)])  # rank 8 of 10
    dense[10] = 0.0  # empty row
    w[20] = 0.0  # zero-weight row
    M = np.sqrt(w)[:, None] * dense
    hat = np.einsum("ij,ji->i", M, np.linalg.pinv(M))  # diag of M M^+
    for method, tol in (("exact", 1e-8), ("approx", None)):
        for operand in (dense, sp.csr_matrix(dense)):
            sc = leverage_scores(operand, w, method=method, random_state=0)
            assert sc[10] == 0 and sc[20] == 0
            assert np.all(np.isfinite(sc))
            if tol is not None:
                np.testing.assert_allclose(sc, hat, atol=tol)
                assert abs(sc.sum() - 8) < 1e-8
            else:
                # JL estimate of the sum: relative sd about sqrt(2 / (k rank))
                assert 4 < sc.sum() < 16


def test_approx_within_constant_factor():
    """With many projections the approximate scores are within a factor 2 of exact.

    The CountSketch embedding (4d rows) distorts by at most
    ``sigma_max^2 / sigma_min^2`` of ``S U``; with k = 200 Gaussian
    projections the chi^2_k / k factor is in [0.6, 1.5] for all 2000 rows
    (fixed seed).
    """
    A, w = _problem()
    ex = leverage_scores(A, w, method="exact")
    ap = leverage_scores(A, w, method="approx", n_projections=200, sketch_size=20 * 15,
                         random_state=1)
    pos = ex > 0
    assert np.all(ap[~pos] == 0)
    ap, ex = ap[pos], ex[pos]
    ratio = ap / ex
    assert 0.5 < ratio.min() and ratio.max() < 2.0, (ratio.min(), ratio.max())
    # default settings: cruder (k = 8, 4d rows) but still a constant factor on the bulk
    ap8 = leverage_scores(A, w, random_state=1)[pos]
    r8 = ap8 / ex
    assert 0.4 < np.median(r8) < 2.5
    assert np.quantile(r8, 0.01) > 0.05 and np.quantile(r8, 0.99) < 10
    # heavy coherent rows (leverage ~ 1) are found
    assert np.all(ap8[:3] > 0.2)


def test_approx_dense_equals_sparse():
    A, w = _problem(n=400, d=6)
    a = leverage_scores(A, w, random_state=3)
    b = leverage_scores(A.toarray(), w, random_state=3)
    np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)


def test_approx_reproducible():
    A, w = _problem(n=400, d=6)
    np.testing.assert_array_equal(leverage_scores(A, w, random_state=5),
                                  leverage_scores(A, w, random_state=5))


def test_all_zero_weights():
    A, w = _problem(n=100, d=5)
    assert np.all(leverage_scores(A, np.zeros(100), method="exact") == 0)
    assert np.all(leverage_scores(A, np.zeros(100)) == 0)
    with pytest.raises(InputError, match="zero"):
        sampling_probabilities(np.zeros(100))


def test_sampling_probabilities():
    sc = np.array([0.0, 1.0, 0.5, 0.5])
    np.testing.assert_allclose(sampling_probabilities(sc), [0, 0.5, 0.25, 0.25])
    p = sampling_probabilities(sc, uniform_mix=0.5)
    np.testing.assert_allclose(p, [0, 0.5 * 0.5 + 0.5 / 3, 0.125 + 0.5 / 3, 0.125 + 0.5 / 3])
    with pytest.raises(InputError, match="uniform_mix"):
        sampling_probabilities(sc, uniform_mix=2.0)
    with pytest.raises(InputError, match="negative"):
        sampling_probabilities([-1.0, 2.0])


def test_validation():
    A, w = _problem(n=100, d=5)
    with pytest.raises(InputError, match="method"):
        leverage_scores(A, w, method="qr")
    with pytest.raises(InputError, match="negative"):
        leverage_scores(A, -w)
    with pytest.raises(InputError, match="length"):
        leverage_scores(A, w[:-1])
    with pytest.raises(InputError, match="non-finite"):
        leverage_scores(A, np.full(100, np.nan))
    with pytest.raises(InputError, match=">= d"):
        leverage_scores(A, w, sketch_size=3)
