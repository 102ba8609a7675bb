"""DataMatrix: formats, products, Gram kernels, sweep counting."""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton import InputError
from sketchnewton._matrix import DataMatrix, InterceptMatrix

from conftest import random_sparse


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "csr_array", "coo_array", "dense",
                                 "float32", "int"])
def test_products_match_dense(fmt):
    A = random_sparse(300, 17, 0.2, 0, empty_rows=5)
    dense = A.toarray()
    if fmt == "dense":
        M = DataMatrix(dense)
    elif fmt == "float32":
        M = DataMatrix(A.astype(np.float32))
        dense = A.astype(np.float32).toarray().astype(np.float64)
    elif fmt == "int":
        Ai = sp.csr_matrix(np.round(dense * 10).astype(np.int64))
        M, dense = DataMatrix(Ai), Ai.toarray().astype(float)
    elif fmt.endswith("_array"):
        M = DataMatrix(getattr(sp, fmt)(A))
    else:
        M = DataMatrix(A.asformat(fmt))
    rng = np.random.default_rng(0)
    x, y, Y = rng.normal(size=17), rng.normal(size=300), rng.normal(size=(300, 3))
    w = rng.uniform(-1, 2, 300)
    assert np.allclose(M.matvec(x), dense @ x, atol=1e-12)
    assert np.allclose(M.rmatvec(y), dense.T @ y, atol=1e-12)
    assert np.allclose(M.rmatmat(Y), dense.T @ Y, atol=1e-12)
    assert np.allclose(M.gram(w), dense.T @ (w[:, None] * dense), atol=1e-12)
    rows = rng.integers(0, 300, 50)  # with repeats
    wr = rng.uniform(0, 1, 50)
    expect = sum(wi * np.outer(dense[i], dense[i]) for i, wi in zip(rows, wr))
    assert np.allclose(M.gram(wr, rows=rows), expect, atol=1e-12)
    assert np.allclose(M.abs_rmatmat(y), np.abs(dense).T @ y, atol=1e-12)
    assert np.allclose(M.abs_rmatmat(Y), np.abs(dense).T @ Y, atol=1e-12)
    assert np.allclose(M.weighted_col_sq(w), (dense * dense).T @ w, atol=1e-12)
    assert M.is_sparse == (fmt != "dense")


def test_wide_matrix_products():
    """p >> n above the parallel threshold: with several threads the transposed products split
    the columns among them (no per-thread length-p buffers); scipy is the reference."""
    A = random_sparse(250, 100_000, 0.009, 1, empty_rows=3)  # ~225,000 non-zeros
    M = DataMatrix(A)
    rng = np.random.default_rng(1)
    y, Y, h, v = rng.normal(size=250), rng.normal(size=(250, 3)), rng.uniform(0, 1, 250), rng.normal(size=100_000)
    np.testing.assert_allclose(M.rmatvec(y), A.T @ y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M.rmatmat(Y), A.T @ Y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M.weighted_col_sq(h), A.multiply(A).T @ h, rtol=1e-12, atol=1e-12)
    out, z = M.normal_matvec(h, v)
    np.testing.assert_allclose(z, A @ v, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out, A.T @ (h * (A @ v)), rtol=1e-12, atol=1e-12)


def test_duplicates_are_summed_without_touching_input():
    A = sp.coo_matrix(([1.0, 2.0, 3.0], ([0, 0, 1], [1, 1, 0])), shape=(2, 2))
    M = DataMatrix(A)
    assert np.array_equal(M.csr.toarray(), [[0.0, 3.0], [3.0, 0.0]])
    assert A.nnz == 3


@pytest.mark.parametrize("A, match", [
    (np.zeros((0, 4)), "empty"), (sp.csr_matrix((3, 0)), "empty"),
    (np.full((2, 2), np.inf), "Inf"), (np.ones((2, 2), dtype=complex), "complex"),
    (np.ones(3), "2-D"), (np.array([[object()]]), "non-numeric"),
])
def test_bad_matrices(A, match):
    with pytest.raises(InputError, match=match):
        DataMatrix(A)


def test_nnz_counts_of_rows_and_columns():
    """The cost model's work counts ``sum_i nnz_i^2`` and ``sum_j nnz_j^2``; the intercept adds
    one full column."""
    A = sp.random(40, 15, density=0.2, format="csr", random_state=3)
    r, c = np.diff(A.indptr), np.diff(A.tocsc().indptr)
    M = DataMatrix(A)
    assert M.row_nnz_squares() == float(r @ r) and M.col_nnz_squares() == float(c @ c)
    np.testing.assert_array_equal(InterceptMatrix(M).col_nnz(), np.append(c, 40))
    D = DataMatrix(A.toarray())
    assert D.col_nnz_squares() == 15 * 40.0 ** 2



@pytest.mark.parametrize("ones", [False, True])
@pytest.mark.parametrize("dense", [False, True])
def test_rmatmat_rows_is_the_product_with_the_rows(ones, dense):
    """``A^T Y`` with ``Y`` formed by rows (the softmax gradient's weights ``sw (P - onehot)``)
    equals the product with ``Y`` whole."""
    rng = np.random.default_rng(3)
    n, d, K = 700, 12, 4
    A = sp.random(n, d, density=0.3, random_state=rng, format="csr")
    P = rng.random((n, K))
    y = rng.integers(0, K, n)
    sw = rng.random(n) + 0.5
    R = sw[:, None] * (P - np.eye(K)[y])
    M = A.toarray() if dense else A
    ref = np.vstack([M.T @ R, R.sum(axis=0)]) if ones else M.T @ R

    def rows_of(a, b, out):
        out[...] = R[a:b]
        return out

    got = DataMatrix(M).rmatmat_rows(rows_of, K, ones=ones)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("ones", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_rmatmat_rows_sparse_by_blocks(ones, threads):
    """Sparse: ``Y`` in blocks of rows (never whole), accumulated into one output, equals the
    product with ``Y`` whole, on any thread count."""
    rng = np.random.default_rng(4)
    n, d, K = 1300, 12, 512  # ~2 MiB blocks of 512 rows: three blocks
    A = sp.random(n, d, density=0.3, random_state=rng, format="csr")
    Y = rng.standard_normal((n, K))
    ref = np.vstack([A.T @ Y, Y.sum(axis=0)]) if ones else A.T @ Y
    sizes = []

    def rows_of(a, b, out):
        sizes.append(b - a)
        out[...] = Y[a:b]
        return out

    previous = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        got = DataMatrix(A).rmatmat_rows(rows_of, K, ones=ones)
    finally:
        numba.set_num_threads(previous)
    assert len(sizes) > 1 and sum(sizes) == n and max(sizes) < n
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
