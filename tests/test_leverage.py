"""Leverage scores: exact vs QR, approximate within a constant factor, edge cases."""

import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton._blocks import Block, DaskBlocks, LocalBlocks
from sketchnewton._kernels.leverage import (bucket_order, countsketch_csr_codes,
                                            countsketch_dense_sorted, dense_row_scores)
from sketchnewton._matrix import DataMatrix
from sketchnewton.datasets import make_sparse_matrix
from sketchnewton.exceptions import InputError
from sketchnewton.sketch import _leverage, leverage_scores, sampling_probabilities
from sketchnewton.sketch._leverage import _choose_estimator, _cholesky_r, _r_inverse, sketch_factor


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


# -- the pipeline of block_leverage_raw: accuracy on coherent and spread matrices, its sweeps ---
def _accuracy_matrices(seed):
    rng = np.random.default_rng(seed)
    near = rng.standard_normal((2000, 20))
    near[:, -1] = near[:, 0] + 1e-9 * rng.standard_normal(2000)  # cond ~ 1e9: the QR path
    return {
        "spread": make_sparse_matrix(3000, 40, nnz_per_row=8, random_state=seed),
        # 5 rows of leverage exactly 1 (private columns), norm 1e3 times the others'
        "coherent": make_sparse_matrix(3000, 40, nnz_per_row=8, coherence=1.0, n_heavy=5,
                                       random_state=seed),
        # columns eight decades apart: the Cholesky path, after scaling the columns
        "column scales": rng.standard_normal((2000, 30)) * np.logspace(-4, 4, 30),
        "near collinear": near,
    }


@pytest.mark.parametrize("seed", range(5))
def test_approx_within_stated_factor_of_exact(seed):
    """Approximate / exact scores, every row with a positive score, five seeds (the bounds:
    measured over 30 seeds, with a margin):

    * exact given ``R`` (``estimator="quadratic"``): within ``[1/2, 4]`` (the 4d-row
      CountSketch's distortion, largest at d = 20, 80 rows: measured [0.69, 3.03]; the scores are
      biased up by about ``s / (s - d) = 4/3``, which sampling normalises away);
    * default JL, k = 8 (relative s.d. 0.5): 95% of the rows within ``[1/5, 5]`` (measured at
      least 96.2%), all within ``[1/40, 15]`` (measured [0.039, 8.3]);
    * coherent rows (exact leverage 1) are found: at least 1/2 exact given ``R``.
    """
    for name, A in _accuracy_matrices(seed).items():
        w = np.random.default_rng(seed).uniform(0.1, 2.0, A.shape[0])
        ex = leverage_scores(A, w, method="exact")
        pos = ex > 1e-12
        quad = leverage_scores(A, w, estimator="quadratic", random_state=seed)
        jl = leverage_scores(A, w, random_state=seed)
        for sc in (quad, jl):
            assert np.all(sc[~pos] == 0) and np.all((sc >= 0) & (sc <= 1)), name
        rq, rj = quad[pos] / ex[pos], jl[pos] / ex[pos]
        assert 0.5 < rq.min() and rq.max() < 4.0, (name, rq.min(), rq.max())
        assert np.mean((rj > 0.2) & (rj < 5.0)) > 0.95, name
        assert 1 / 40 < rj.min() and rj.max() < 15, (name, rj.min(), rj.max())
        heavy = ex > 0.999
        if name == "coherent":
            assert heavy.sum() == 5 and np.all(quad[heavy] > 0.5), quad[heavy]


def test_two_heavy_rows_in_one_bucket_are_not_inflated():
    """Two rows of leverage 1 hashed to the same CountSketch bucket leave ``S M`` rank-deficient
    and were estimated ~6000 times too high (a score sum of 13,000 for rank 40: every other row's
    share of a sample shrank 300-fold); the estimate is capped at ``l_i <= 1``."""
    A = make_sparse_matrix(3000, 40, nnz_per_row=8, coherence=1.0, n_heavy=5, random_state=2)
    w = np.random.default_rng(2).uniform(0.1, 2.0, 3000)
    ex = leverage_scores(A, w, method="exact")
    for est in ("quadratic", "jl"):
        sc = leverage_scores(A, w, estimator=est, random_state=2)  # this seed: a collision
        assert sc.max() <= 1.0
        assert sc.sum() < 1.6 * ex.sum()


def test_cholesky_and_qr_give_the_same_r():
    """The sketch's ``R`` by Cholesky of the column-scaled Gram equals Householder QR's up to
    rounding (the scores' metric ``diag(1/c) R^{-1} R^{-T} diag(1/c)``); an ill-conditioned
    sketch falls back to QR and a rank-deficient one to the pivoted QR."""
    rng = np.random.default_rng(0)
    SM = rng.standard_normal((200, 50)) * np.logspace(-5, 5, 50)
    R, c, cols = sketch_factor(SM)
    assert _cholesky_r(SM) is not None and np.array_equal(cols, np.arange(50))
    Q = SM @ _r_inverse(R, c)
    np.testing.assert_allclose(Q.T @ Q, np.eye(50), atol=1e-8)
    near = rng.standard_normal((200, 10))
    near[:, -1] = near[:, 0] + 1e-9 * rng.standard_normal(200)
    assert _cholesky_r(near) is None
    R, c, cols = sketch_factor(near)
    assert cols.size == 10 and np.all(c == 1)
    Q = near @ _r_inverse(R, c)
    np.testing.assert_allclose(Q.T @ Q, np.eye(10), atol=1e-5)
    deficient = np.column_stack([near[:, :9], near[:, 0] + near[:, 1]])
    assert sketch_factor(deficient)[2].size == 9


def test_auto_estimator_by_cost():
    """``"auto"`` scores short rows by the exact quadratic form and long rows by JL (the
    quadratic form's cost grows with ``nnz_i^2``, measured 4-34x JL's at 10-50 non-zeros)."""
    def choice(n, d, nnz):
        A = make_sparse_matrix(n, d, nnz_per_row=nnz, random_state=0)
        return _choose_estimator(LocalBlocks(Block(DataMatrix(A))), 8)

    assert choice(20000, 50, 2) == "quadratic"
    assert choice(20000, 50, 4) == "quadratic"
    assert choice(20000, 200, 10) == "jl"
    assert choice(20000, 500, 50) == "jl"
    assert choice(20000, 500, 2) == "jl"  # K (500 x 500) costs more than the sweep saves
    assert _choose_estimator(LocalBlocks(Block(DataMatrix(np.ones((10, 3))))), 8) == "quadratic"
    assert _choose_estimator(LocalBlocks(Block(DataMatrix(np.ones((10, 30))))), 8) == "jl"


def _split_blocks(A, w, n_blocks):
    """In-process DaskBlocks (no client) of ``A``'s rows in ``n_blocks`` blocks."""

    bounds = np.linspace(0, A.shape[0], n_blocks + 1).astype(int)
    blocks = [Block(DataMatrix(A[lo:hi]), index=j) for j, (lo, hi)
              in enumerate(zip(bounds[:-1], bounds[1:]))]
    return (DaskBlocks(None, blocks, [(hi - lo, A.shape[1]) for lo, hi
                                      in zip(bounds[:-1], bounds[1:])]),
            [w[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])])


@pytest.mark.parametrize("layout", ["sparse", "dense", "sparse blocks", "dense blocks"])
@pytest.mark.parametrize("estimator", ["jl", "quadratic"])
def test_sweeps_counted_are_the_sweeps_made(monkeypatch, layout, estimator):
    """``block_leverage_raw`` from scratch reads ``A`` twice (one pass, the issue's budget is 3):
    one CountSketch sweep and one score sweep. Every kernel that reads the matrix is wrapped to
    count the entries it reads; their total equals the sweeps the maps declare."""
    A, w = _problem(n=1500, d=12)
    if layout.startswith("dense"):
        A = A.toarray()
    read = []

    def counting(fn):
        def wrapper(first, *args):  # the dense matrix (n d entries) or CSR's indptr (nnz at -1)
            read.append(first.size if first.ndim == 2 else first[-1])
            return fn(first, *args)
        return wrapper

    for name in ("countsketch_csr_codes", "countsketch_dense_sorted", "csr_row_scores",
                 "_dense_row_norms"):
        monkeypatch.setattr(_leverage, name, counting(getattr(_leverage, name)))
    if layout.endswith("blocks"):
        blocks, weights = _split_blocks(A, w, 3)
    else:
        blocks, weights = LocalBlocks(Block(DataMatrix(A))), [w]
    raw = blocks.gather(_leverage.block_leverage_raw(blocks, weights, np.random.default_rng(0),
                                                     estimator=estimator))
    entries = A.size if isinstance(A, np.ndarray) else A.nnz
    assert sum(read) / entries == blocks.sweeps == 2.0
    assert blocks.passes == 1.0 <= 3
    sc = np.concatenate(raw) * w
    ex = leverage_scores(A, w, method="exact")
    assert 0.5 * ex.sum() < sc.sum() < 2 * ex.sum()


def test_countsketch_kernels_match_the_definition():
    """``S diag(sqrt(w)) A`` from the codes (bucket ``code >> 1``, sign bit ``code & 1``): the
    sparse kernel with 1, 2 and 3 private sketches and the dense kernel in bucket order equal the
    product with the explicit ``S``."""
    A, w = _problem(n=500, d=7)
    w[::7] = 0.0
    s = 11
    codes = np.random.default_rng(0).integers(0, 2 * s, 500).astype(np.uint16)
    S = np.zeros((s, 500))
    S[codes >> 1, np.arange(500)] = 1.0 - 2.0 * (codes & 1)
    expected = S @ (np.sqrt(w)[:, None] * A.toarray())
    dm = DataMatrix(A)
    for m in (1, 2, 3):
        parts = countsketch_csr_codes(*dm.kernel_csr, w, codes, 7, np.zeros((m, s * 7)))
        np.testing.assert_allclose(parts.sum(axis=0).reshape(s, 7), expected, atol=1e-12)
    starts, order = bucket_order(w, codes, s)
    np.testing.assert_allclose(countsketch_dense_sorted(A.toarray(), w, codes, starts, order,
                                                        np.zeros((s, 7))), expected, atol=1e-12)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dense_score_sweep_matches_the_definition(order, dtype):
    """``min(||x_i^T Z||^2, 1 / w_i)`` over a dense ``X`` kept as given (float32 read as it is, a
    Fortran-ordered one by BLAS blocks): a row count and a ``Z`` width that are not multiples of
    the kernel's four, rows with ``w_i = 0`` (no cap) and rows capped at ``1 / w_i``."""
    rng = np.random.default_rng(0)
    X = np.asarray(rng.standard_normal((103, 37)), dtype=dtype, order=order)
    Z = rng.standard_normal((37, 5))
    w = rng.uniform(0.0, 0.2, 103)
    w[::9] = 0.0
    h = np.einsum("ij,ij->i", X.astype(np.float64) @ Z, X.astype(np.float64) @ Z)
    expected = np.where(w * h > 1.0, 1.0 / np.where(w > 0, w, 1.0), h)
    assert 0 < np.count_nonzero(expected < h) < 103
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(_leverage._dense_row_norms(X, Z, w), expected, rtol=rtol)
    Zt = np.zeros((8, 37))
    Zt[:5] = Z.T
    if order == "C":
        np.testing.assert_allclose(dense_row_scores(X, Zt, w, np.empty(103)), expected, rtol=rtol)
