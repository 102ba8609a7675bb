"""Tests for the synthetic data generators (sketchnewton.datasets)."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton.datasets import _planted, _sparse
from sketchnewton.datasets import (
    LINKS,
    PlantedProblem,
    make_classification_problem,
    make_regression_problem,
    make_sparse_matrix,
)
from sketchnewton.exceptions import InputError


def _assert_same_csr(A, B):
    assert A.shape == B.shape
    np.testing.assert_array_equal(A.indptr, B.indptr)
    np.testing.assert_array_equal(A.indices, B.indices)
    np.testing.assert_array_equal(A.data, B.data)


def _row_columns(A):
    """Column indices as an (n, k) array (every row has k entries)."""
    k = A.indptr[1] - A.indptr[0]
    return A.indices.reshape(A.shape[0], k)


# ----------------------------------------------------------------------------
# make_sparse_matrix
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    {},
    {"coherence": 1.0},
    {"column_scale": (1e-2, 1e2)},
    {"coherence": 0.5, "n_heavy": 3, "column_scale": (0.1, 10.0), "dtype": np.float32},
])
def test_sparse_reproducible(kwargs):
    A = make_sparse_matrix(3000, 60, nnz_per_row=7, random_state=42, **kwargs)
    B = make_sparse_matrix(3000, 60, nnz_per_row=7, random_state=42, **kwargs)
    C = make_sparse_matrix(3000, 60, nnz_per_row=7, random_state=43, **kwargs)
    _assert_same_csr(A, B)
    assert not np.array_equal(A.indices, C.indices)
    assert not np.array_equal(A.data, C.data)
    # A Generator is accepted and advanced.
    rng = np.random.default_rng(42)
    _assert_same_csr(A, make_sparse_matrix(3000, 60, nnz_per_row=7, random_state=rng, **kwargs))


def test_sparse_independent_of_thread_count():
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        A = make_sparse_matrix(20000, 300, nnz_per_row=20, coherence=1.0, random_state=5)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        B = make_sparse_matrix(20000, 300, nnz_per_row=20, coherence=1.0, random_state=5)
    finally:
        numba.set_num_threads(old)
    _assert_same_csr(A, B)


def test_sparse_block_size_does_not_change_result(monkeypatch):
    A = make_sparse_matrix(5000, 40, nnz_per_row=6, random_state=9)
    monkeypatch.setattr(_sparse, "_BLOCK_ENTRIES", 1000)  # several uniform blocks
    B = make_sparse_matrix(5000, 40, nnz_per_row=6, random_state=9)
    _assert_same_csr(A, B)


@pytest.mark.parametrize("n, d, k", [
    (5000, 100, 10),
    (2000, 10, 10),      # full rows
    (2000, 50, 1),
    (1000, 1000, 100),   # k > insertion-sort limit, sparse rows: np.sort path
    (1000, 300, 100),    # dense rows: marks scanned in order
    (1, 7, 3),
])
def test_sparse_rows_have_distinct_sorted_columns(n, d, k):
    A = make_sparse_matrix(n, d, nnz_per_row=k, random_state=0)
    assert isinstance(A, sp.csr_matrix)
    assert A.shape == (n, d)
    assert A.nnz == n * k
    assert A.data.dtype == np.float64
    assert A.indices.dtype == np.int32 and A.indptr.dtype == np.int32
    np.testing.assert_array_equal(np.diff(A.indptr), k)
    cols = _row_columns(A)
    assert cols.min() >= 0 and cols.max() < d
    assert np.all(np.diff(cols, axis=1) > 0)  # strictly increasing: sorted and distinct
    assert A.has_canonical_format
    # scipy's own check agrees
    B = A.copy()
    B.has_canonical_format = False
    B.sum_duplicates()
    assert B.nnz == A.nnz


def test_sparse_density():
    A = make_sparse_matrix(500, 200, density=0.1, random_state=1)
    np.testing.assert_array_equal(np.diff(A.indptr), 20)
    A = make_sparse_matrix(500, 200, density=1e-6, random_state=1)  # at least one per row
    np.testing.assert_array_equal(np.diff(A.indptr), 1)
    A = make_sparse_matrix(500, 7, random_state=1)  # default min(10, d)
    np.testing.assert_array_equal(np.diff(A.indptr), 7)


def test_sparse_columns_uniform_and_values_normal():
    n, d, k = 200_000, 50, 5
    A = make_sparse_matrix(n, d, nnz_per_row=k, random_state=3)
    counts = np.bincount(A.indices, minlength=d)
    expected = n * k / d
    # each count ~ Binomial(n, k/d): allow 5 standard deviations
    sd = np.sqrt(n * (k / d) * (1 - k / d))
    assert np.max(np.abs(counts - expected)) < 5 * sd
    # position-in-row is not biased: the smallest column of each row has the
    # distribution of the minimum of a uniform k-subset
    first = _row_columns(A)[:, 0]
    from math import comb
    p0 = comb(d - 1, k - 1) / comb(d, k)  # P(min == 0)
    assert abs(np.mean(first == 0) - p0) < 5 * np.sqrt(p0 * (1 - p0) / n)
    assert abs(A.data.mean()) < 0.01
    assert abs(A.data.std() - 1) < 0.01


def test_sparse_float32():
    A = make_sparse_matrix(1000, 30, nnz_per_row=4, dtype=np.float32, column_scale=(1, 4),
                           random_state=0)
    assert A.dtype == np.float32


def test_integral_float_sizes_accepted():
    A = make_sparse_matrix(1e3, 20.0, nnz_per_row=3, random_state=0)
    assert A.shape == (1000, 20)


def test_column_scale_spans_range():
    lo, hi = 1e-2, 1e2
    d = 80
    A, info = make_sparse_matrix(20000, d, nnz_per_row=8, column_scale=(lo, hi),
                                 random_state=2, return_info=True)
    s = info.column_scale
    assert s.shape == (d,)
    assert np.isclose(s.min(), lo, rtol=1e-12) and np.isclose(s.max(), hi, rtol=1e-12)
    np.testing.assert_allclose(np.sort(s), np.geomspace(lo, hi, d), rtol=1e-12)
    assert not np.all(np.diff(s) > 0)  # randomly permuted
    # A = A0 diag(s) with A0 standard normal
    A0 = A @ sp.diags(1.0 / s)
    assert abs(A0.data.std() - 1) < 0.02
    col_rms = np.sqrt(np.asarray(A.power(2).mean(axis=0)).ravel() * A.shape[0] / (A.nnz / d))
    ratio = col_rms / s
    assert np.all((ratio > 0.8) & (ratio < 1.2))


def test_coherent_heavy_rows():
    n, d, k, coherence, n_heavy = 20000, 100, 10, 2.0, 6
    A, info = make_sparse_matrix(n, d, nnz_per_row=k, coherence=coherence, n_heavy=n_heavy,
                                 random_state=11, return_info=True)
    assert info.n_heavy == n_heavy
    assert np.all(np.diff(info.heavy_rows) > 0)
    assert len(np.unique(info.heavy_columns)) == n_heavy
    expected_norm = 1e3 * coherence * np.sqrt(k)
    assert info.heavy_norm == pytest.approx(expected_norm, rel=1e-15)

    row_norms = np.sqrt(np.asarray(A.power(2).sum(axis=1)).ravel())
    np.testing.assert_allclose(row_norms[info.heavy_rows], expected_norm, rtol=1e-12)
    ordinary = np.setdiff1d(np.arange(n), info.heavy_rows)
    assert row_norms[ordinary].max() < 3 * np.sqrt(k)

    cols = _row_columns(A)
    assert np.all(np.diff(cols, axis=1) > 0)
    # every private column is hit exactly once, by its own heavy row
    counts = np.bincount(A.indices, minlength=d)
    np.testing.assert_array_equal(counts[info.heavy_columns], 1)
    for r, c in zip(info.heavy_rows, info.heavy_columns):
        assert c in cols[r]
    assert not np.isin(cols[ordinary], info.heavy_columns).any()
    # leverage score of each heavy row is exactly 1
    G = (A.T @ A).toarray()
    lev = np.asarray(A.multiply(A @ sp.csr_matrix(np.linalg.inv(G))).sum(axis=1)).ravel()
    np.testing.assert_allclose(lev[info.heavy_rows], 1.0, atol=1e-10)
    assert lev[ordinary].max() < 0.5


def test_coherent_with_column_scale_norms():
    A, info = make_sparse_matrix(3000, 50, nnz_per_row=5, coherence=1.0, column_scale=(0.1, 10),
                                 random_state=4, return_info=True)
    A0 = A @ sp.diags(1.0 / info.column_scale)
    norms = np.sqrt(np.asarray(A0.power(2).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms[info.heavy_rows], info.heavy_norm, rtol=1e-12)
    # default number of heavy rows: min(10, d // 10, d - k, n)
    assert info.n_heavy == 5


def test_no_coherence_info():
    A, info = make_sparse_matrix(100, 10, nnz_per_row=3, random_state=0, return_info=True)
    assert info.n_heavy == 0 and info.heavy_norm == 0.0
    np.testing.assert_array_equal(info.column_scale, 1.0)


# ----------------------------------------------------------------------------
# make_regression_problem
# ----------------------------------------------------------------------------

def test_regression_reproducible():
    p = make_regression_problem(3000, 40, link="softmax", noise=0.1, random_state=7)
    q = make_regression_problem(3000, 40, link="softmax", noise=0.1, random_state=7)
    r = make_regression_problem(3000, 40, link="softmax", noise=0.1, random_state=8)
    assert isinstance(p, PlantedProblem)
    _assert_same_csr(p.A, q.A)
    np.testing.assert_array_equal(p.b, q.b)
    np.testing.assert_array_equal(p.x_true, q.x_true)
    assert not np.array_equal(p.b, r.b)
    assert not np.array_equal(p.x_true, r.x_true)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("z_std", [0.3, 1.5, 5.0])
def test_regression_z_std_and_b(link, z_std):
    n, d = 20000, 60
    p = make_regression_problem(n, d, link=link, z_std=z_std, nnz_per_row=8, random_state=1)
    assert p.A.shape == (n, d) and p.b.shape == (n,) and p.x_true.shape == (d,)
    assert p.link == link and p.z_std == z_std and p.noise == 0.0
    z = p.A @ p.x_true
    assert np.std(z) == pytest.approx(z_std, rel=1e-12)
    assert np.all(np.isfinite(p.b))
    assert p.b.sum() == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(p.b, p.f_true)
    # b really is phi(z) / sum(phi(z)) (no overflow at these z)
    phi = {"resnet": lambda t: np.exp(t) + t, "softmax": np.exp,
           "cosh": np.cosh, "sinh": np.sinh}[link](z)
    assert phi.sum() > 0
    np.testing.assert_allclose(p.b, phi / phi.sum(), rtol=1e-9, atol=1e-15 * np.abs(p.b).max())


@pytest.mark.parametrize("link", LINKS)
def test_regression_large_z_no_overflow(link):
    # z_std = 60 would overflow exp without the shift (max z ~ 4.5 * 60 = 270 ... 700+)
    p = make_regression_problem(200_000, 50, link=link, z_std=200.0, nnz_per_row=5,
                                random_state=2)
    assert np.all(np.isfinite(p.b))
    assert p.b.sum() == pytest.approx(1.0, rel=1e-12)
    assert np.std(p.A @ p.x_true) == pytest.approx(200.0, rel=1e-12)


def test_regression_sinh_alpha_positive():
    flips = []
    for seed in range(8):
        p = make_regression_problem(2000, 20, link="sinh", random_state=seed)
        z = p.A @ p.x_true
        assert np.sinh(z).sum() > 0
        flips.append(p.alpha_sign_flipped)
    assert any(flips) and not all(flips)  # the flip is needed about half the time


def test_regression_noise():
    p = make_regression_problem(20000, 30, link="resnet", noise=0.5, random_state=3)
    assert p.noise == 0.5
    assert not np.allclose(p.b, p.f_true)
    assert p.b.sum() == pytest.approx(1.0, rel=1e-10)
    resid = p.b - p.f_true
    assert np.std(resid) == pytest.approx(0.5 * np.std(p.f_true), rel=0.05)
    assert abs(resid.sum()) < 1e-12


@pytest.mark.parametrize("link", LINKS)
def test_regression_coherent(link):
    p = make_regression_problem(20000, 50, link=link, nnz_per_row=6, coherence=1.0,
                                column_scale=(0.1, 10), z_std=1.0, random_state=4)
    z = p.A @ p.x_true
    assert np.std(z) == pytest.approx(1.0, rel=1e-12)
    # heavy rows have typical z, so f is not concentrated on them
    heavy = p.info.heavy_rows
    assert p.info.n_heavy == 5
    assert np.abs(z[heavy]).max() < 6
    ordinary = np.setdiff1d(np.arange(p.A.shape[0]), heavy)
    assert np.abs(p.b[heavy]).max() < np.abs(p.b[ordinary]).max()
    assert p.b.sum() == pytest.approx(1.0, rel=1e-12)


def test_regression_density():
    p = make_regression_problem(1000, 100, density=0.05, random_state=0)
    np.testing.assert_array_equal(np.diff(p.A.indptr), 5)
    p = make_regression_problem(1000, 100, random_state=0)
    np.testing.assert_array_equal(np.diff(p.A.indptr), 10)


def test_regression_alpha_never_positive_raises(monkeypatch):
    monkeypatch.setattr(_planted, "link_numpy", lambda z, link: (-np.ones_like(z),) * 3 + (0.0,))
    with pytest.raises(InputError, match="alpha"):
        make_regression_problem(100, 10, link="resnet", random_state=0)


# ----------------------------------------------------------------------------
# make_classification_problem
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("sparse_kwargs", [{}, {"nnz_per_row": 5}, {"density": 0.25}])
@pytest.mark.parametrize("K", [2, 5])
def test_classification(sparse_kwargs, K):
    n, d = 4000, 20
    X, y, W = make_classification_problem(n, d, n_classes=K, separation=2.0, random_state=0,
                                          **sparse_kwargs)
    assert X.shape == (n, d)
    assert sp.issparse(X) == bool(sparse_kwargs)
    assert y.shape == (n,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= K - 1
    assert len(np.unique(y)) == K
    assert W.shape == (d, K)
    np.testing.assert_allclose(W.sum(axis=1), 0, atol=1e-12)
    logits = np.asarray(X @ W)
    assert np.std(logits) == pytest.approx(2.0, rel=1e-12)
    # labels are sampled, not the argmax: informative but not separable
    agree = np.mean(logits.argmax(axis=1) == y)
    assert 1.0 / K + 0.1 < agree < 0.99

    X2, y2, W2 = make_classification_problem(n, d, n_classes=K, separation=2.0, random_state=0,
                                             **sparse_kwargs)
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(W, W2)
    _, y3, _ = make_classification_problem(n, d, n_classes=K, separation=2.0, random_state=1,
                                           **sparse_kwargs)
    assert not np.array_equal(y, y3)


def test_classification_label_frequencies_match_model():
    X, y, W = make_classification_problem(50000, 10, n_classes=3, separation=1.0, random_state=5)
    logits = X @ W
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    freq = np.bincount(y, minlength=3) / len(y)
    np.testing.assert_allclose(freq, P.mean(axis=0), atol=0.01)


def test_classification_zero_separation_and_scales():
    X, y, W = make_classification_problem(3000, 8, n_classes=3, separation=0.0,
                                          column_scale=(1e-2, 1e2), random_state=0)
    np.testing.assert_array_equal(W, 0.0)
    assert len(np.unique(y)) == 3
    col_std = X.std(axis=0)
    assert col_std.max() / col_std.min() > 1e3


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0, "d": 5}, "n must be >= 1"),
    ({"n": -3, "d": 5}, "n must be"),
    ({"n": 10.5, "d": 5}, "n must be an integer"),
    ({"n": True, "d": 5}, "n must be an integer"),
    ({"n": "10", "d": 5}, "n must be an integer"),
    ({"n": 10, "d": 0}, "d must be"),
    ({"n": 10, "d": 5, "nnz_per_row": 6}, "exceeds"),
    ({"n": 10, "d": 5, "nnz_per_row": 0}, "nnz_per_row must be >= 1"),
    ({"n": 10, "d": 5, "nnz_per_row": 2, "density": 0.5}, "at most one"),
    ({"n": 10, "d": 5, "density": 0.0}, "density"),
    ({"n": 10, "d": 5, "density": 1.5}, "density"),
    ({"n": 10, "d": 5, "density": float("nan")}, "density"),
    ({"n": 10, "d": 5, "coherence": -1.0}, "coherence"),
    ({"n": 10, "d": 5, "coherence": float("inf")}, "coherence"),
    ({"n": 10, "d": 5, "nnz_per_row": 5, "coherence": 1.0}, "private column"),
    ({"n": 10, "d": 5, "nnz_per_row": 3, "coherence": 1.0, "n_heavy": 3}, "n_heavy"),
    ({"n": 2, "d": 50, "nnz_per_row": 3, "coherence": 1.0, "n_heavy": 3}, "n_heavy"),
    ({"n": 10, "d": 5, "nnz_per_row": 3, "n_heavy": 2}, "coherence"),
    ({"n": 10, "d": 5, "column_scale": (1.0,)}, "column_scale"),
    ({"n": 10, "d": 5, "column_scale": 3.0}, "column_scale"),
    ({"n": 10, "d": 5, "column_scale": (0.0, 1.0)}, "column_scale"),
    ({"n": 10, "d": 5, "column_scale": (2.0, 1.0)}, "lo <= hi"),
    ({"n": 10, "d": 5, "dtype": np.int64}, "dtype"),
])
def test_sparse_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        make_sparse_matrix(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"link": "tanh"}, "link"),
    ({"link": None}, "link"),
    ({"z_std": 0.0}, "z_std"),
    ({"z_std": -1.0}, "z_std"),
    ({"z_std": float("nan")}, "z_std"),
    ({"noise": -0.1}, "noise"),
    ({"n": 1}, "n must be >= 2"),
    ({"nnz_per_row": 11}, "exceeds"),
    ({"coherence": 1.0, "n_heavy": 9, "n": 10, "d": 100, "nnz_per_row": 3}, "ordinary rows"),
])
def test_regression_bad_arguments(kwargs, match):
    args = {"n": 100, "d": 10, "random_state": 0, **kwargs}
    with pytest.raises(InputError, match=match):
        make_regression_problem(**args)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_classes": 1}, "n_classes"),
    ({"n_classes": 2.5}, "n_classes"),
    ({"separation": -1.0}, "separation"),
    ({"n": 1}, "n must be >= 2"),
    ({"nnz_per_row": 20}, "exceeds"),
    ({"column_scale": (1.0, 0.5)}, "lo <= hi"),
])
def test_classification_bad_arguments(kwargs, match):
    args = {"n": 100, "d": 10, "random_state": 0, **kwargs}
    with pytest.raises(InputError, match=match):
        make_classification_problem(**args)
