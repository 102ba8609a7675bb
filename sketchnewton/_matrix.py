"""The data matrix ``A``: validation and the products every layer needs.

:class:`DataMatrix` holds ``A`` once, as CSR (float64 data, sorted indices)
for sparse input or as a C-contiguous float64 array for dense input, and
exposes the few operations the losses, sketches and driver use. Sparse input
is never densified.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import dsyrk

from ._kernels import PARALLEL_MIN_NNZ, blas_threads_for, kernel_threads, n_chunks
from ._kernels.glm import csr_multinomial_hessp, multinomial_hess_weights
from ._kernels.linalg import (
    csr_abs_rmatmat,
    csr_class_blocks,
    csr_gram,
    csr_matmat,
    csr_matvec,
    csr_normal_matvec,
    csr_rmatmat,
    csr_rmatvec,
    csr_weighted_col_sq,
)
from ._validation import (
    check_array_values,
    check_csr_structure,
    check_dtype,
    check_sparse_structure,
)
from .exceptions import InputError

__all__ = ["DataMatrix", "InterceptMatrix", "as_data_matrix"]




class MatrixShape:
    """``n``, ``d`` and the non-zero statistics of a matrix object with ``shape``."""

    @property
    def n(self):
        return self.shape[0]

    @property
    def d(self):
        return self.shape[1]

    def row_nnz_squares(self):
        """``sum_i nnz_i^2``: the work of the exact Gram (float)."""
        r = self.row_nnz().astype(np.float64)
        return float(r @ r)

    def col_nnz_squares(self):
        """``sum_j nnz_j^2`` over the columns: the work of the outer Gram ``A A^T`` (float)."""
        c = self.col_nnz().astype(np.float64)
        return float(c @ c)

    def __matmul__(self, x):
        """``A @ x`` for x of shape (d,) or ``A @ X`` (one sweep) for X of shape (d, k)."""
        x = np.asarray(x, dtype=np.float64)
        return self.matvec(x) if x.ndim == 1 else self.matmat(x)


class DataMatrix(MatrixShape):
    """A validated n x d matrix, sparse (CSR) or dense.

    Parameters
    ----------
    A : sparse matrix/array (CSR, CSC, COO, ...) or array-like of shape (n, d)
        Integer, boolean, float32 and float64 input are accepted; values are
        stored as float64. Complex, non-numeric, empty or non-finite input
        raises :class:`~sketchnewton.exceptions.InputError`.
    name : str
        Name used in error messages.
    check_finite : bool, default=True
        Scan the values for NaN / Inf. Pass False only when the caller has
        already checked them (scikit-learn's ``validate_data`` does): the scan
        reads all of ``A`` once.

    Attributes
    ----------
    shape : tuple (n, d)
    is_sparse : bool
    nnz : int
        Stored non-zeros (``n * d`` for dense input).
    """

    def __init__(self, A, name="A", check_finite=True):
        if isinstance(A, DataMatrix):
            self.__dict__.update(A.__dict__)
            return
        if sp.issparse(A):
            check_dtype(A.dtype, name)
            if A.ndim != 2:
                raise InputError(f"{name} must be 2-D, got {A.ndim}-D")
            # CSR, CSC, BSR, COO: checked before scipy's conversion trusts their indices
            check_sparse_structure(A, name)
            csr = sp.csr_matrix(A, dtype=np.float64, copy=False)
            if A.format != "csr":  # converted by scipy: check what the kernels will read
                check_csr_structure(csr.indptr, csr.indices, csr.shape[0], csr.shape[1], name,
                                    n_values=csr.data.shape[0])
            if not csr.has_canonical_format:
                # canonicalise a private copy of every array (data, indices, indptr): the
                # caller's matrix is never modified, whatever its dtype
                csr = sp.csr_matrix((np.array(csr.data, dtype=np.float64, copy=True),
                                     csr.indices.copy(), csr.indptr.copy()), shape=csr.shape)
                csr.sum_duplicates()
                csr.sort_indices()
            if check_finite:
                check_array_values(csr.data, name)
            self.csr = csr
            self.kernel_csr = _kernel_csr(csr)
            self.dense = None
            self.is_sparse = True
            self.shape = csr.shape
            self.nnz = int(csr.nnz)
        else:
            if hasattr(A, "dask") or hasattr(A, "compute"):
                raise InputError(f"{name} is a lazy (dask) array; use the distributed backend")
            arr = np.asarray(A)
            check_dtype(arr.dtype, name)
            if arr.ndim != 2:
                raise InputError(f"{name} must be 2-D, got shape {arr.shape}")
            arr = np.ascontiguousarray(arr, dtype=np.float64)
            if check_finite:
                check_array_values(arr, name)
            self.csr = None
            self.kernel_csr = None
            self.dense = arr
            self.is_sparse = False
            self.shape = arr.shape
            self.nnz = int(arr.size)
        n, d = self.shape
        if n == 0 or d == 0:
            raise InputError(f"{name} is empty (shape {self.shape})")

    def __getstate__(self):
        # ``kernel_csr`` views the indices: pickled (a Dask worker spilling a block to disk, a
        # transfer) it would be a second copy of them, and unpickled a separate array
        return {**self.__dict__, "kernel_csr": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.kernel_csr = None if self.csr is None else _kernel_csr(self.csr)

    def row_nnz(self):
        """Non-zeros per row, shape (n,)."""
        if self.is_sparse:
            return np.diff(self.csr.indptr)
        return np.full(self.n, self.d, dtype=np.int64)

    def col_nnz(self):
        """Non-zeros per column, shape (d,)."""
        if self.is_sparse:
            return np.bincount(self.csr.indices, minlength=self.d)
        return np.full(self.d, self.n, dtype=np.int64)

    def column_sums(self):
        """Return ``A.T @ 1``, shape (d,) (one sweep)."""
        return self.rmatvec(np.ones(self.n))

    def matvec(self, x, out=None):
        """Return ``A @ x``; ``x`` of shape (d,), result of shape (n,)."""
        if out is None:
            out = np.empty(self.n)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_matvec(*self.kernel_csr, x, out)
        with blas_threads_for(self.dense.size):
            return np.dot(self.dense, x, out=out)

    def matmat(self, X):
        """Return ``A @ X``; ``X`` of shape (d, k), result (n, k), in one sweep."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_matmat(*self.kernel_csr, X, np.empty((self.n, X.shape[1])))
        with blas_threads_for(self.dense.size):
            return self.dense @ X

    def rmatmat(self, Y):
        """Return ``A.T @ Y``; ``Y`` of shape (n, k), result of shape (d, k)."""
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_rmatmat(*self.kernel_csr, Y, self.d, n_chunks())
        with blas_threads_for(self.dense.size):
            return self.dense.T @ Y

    def rmatvec(self, y):
        """Return ``A.T @ y``; ``y`` of shape (n,), result of shape (d,)."""
        if self.is_sparse:
            y = np.ascontiguousarray(y, dtype=np.float64)
            with kernel_threads(self.nnz):
                return csr_rmatvec(*self.kernel_csr, y, self.d, n_chunks())
        with blas_threads_for(self.dense.size):
            return self.dense.T @ y

    def gram(self, weights, rows=None, ones=False):
        """Return ``sum_r weights[r] a_{rows[r]} a_{rows[r]}^T`` (d x d, dense).

        ``rows=None`` means all rows (then this is ``A.T @ diag(weights) @ A``).
        ``ones=True``: the Gram of ``[A, 1]`` (an intercept column appended
        without copying ``A``), shape (d + 1, d + 1).
        Sparse cost is ``O(sum_r nnz_r^2)``; dense input uses BLAS (SYRK for
        non-negative weights), row blocks split over the kernel threads.
        """
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if self.is_sparse:
            if rows is None:
                rows = np.arange(self.n, dtype=np.int64)
            rows = np.ascontiguousarray(rows, dtype=np.int64)
            with kernel_threads(self.nnz):
                return csr_gram(*self.kernel_csr, rows, weights, self.d, n_chunks(), ones)
        M = self.dense if rows is None else self.dense[rows]
        return _dense_gram(M, weights, ones)

    def normal_matvec(self, h, v, ones=False):
        """Return ``(A.T @ (h * (A @ v)), A @ v)`` in one sweep over ``A``.

        The Hessian-vector product of a loss with per-row curvature ``h``;
        each row (or block of rows, dense) is read once for both products.
        ``ones=True``: products of ``[A, 1]`` (``v`` and the first result of
        length d + 1).
        """
        h = np.ascontiguousarray(h, dtype=np.float64)
        v = np.ascontiguousarray(v, dtype=np.float64)
        z = np.empty(self.n)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_normal_matvec(*self.kernel_csr, h, v, ones, self.d, n_chunks(), z), z
        return _dense_normal_matvec(self.dense, h, v, ones, z), z

    def weighted_col_sq(self, w, ones=False):
        """``sum_i w_i a_ij^2`` per column: the diagonal of ``A^T diag(w) A`` (one sweep).

        ``ones=True``: of ``[A, 1]`` (length d + 1).
        """
        w = np.ascontiguousarray(w, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_weighted_col_sq(*self.kernel_csr, w, ones, self.d, n_chunks())
        out = np.einsum("ij,ij,i->j", self.dense, self.dense, w)
        return np.append(out, w.sum()) if ones else out

    def class_blocks(self, P, sw, ones=False):
        """``sum_i a_ij^2 sw_i (diag(p_i) - p_i p_i^T)`` per column: (d, K, K) (one sweep)."""
        P = np.ascontiguousarray(P, dtype=np.float64)
        sw = np.ascontiguousarray(sw, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz * P.shape[1] ** 2):
                return csr_class_blocks(*self.kernel_csr, P, sw, ones, self.d, n_chunks())
        M2 = self.dense * self.dense
        blocks = np.einsum("ij,ik,i->jk", M2, P, sw)[:, :, None] * np.eye(P.shape[1])
        blocks -= np.einsum("ij,ik,il,i->jkl", M2, P, P, sw)
        if ones:
            last = np.diag(P.T @ sw) - (P * sw[:, None]).T @ P
            blocks = np.concatenate([blocks, last[None]])
        return blocks

    def abs_rmatmat(self, Y, ones=False):
        """``|A|^T Y`` for Y (n,) or (n, k): the gradient's rounding bound (one sweep; sparse: no
        copy of ``|A|``'s values). ``ones``: of ``[A, 1]``."""
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        Y2 = Y[:, None] if Y.ndim == 1 else Y
        if self.is_sparse:
            with kernel_threads(self.nnz):
                out = csr_abs_rmatmat(*self.kernel_csr, Y2, self.d, n_chunks())
        else:
            out = np.abs(self.dense).T @ Y2
        if ones:
            out = np.vstack([out, Y2.sum(axis=0)[None, :]])
        return out[:, 0] if Y.ndim == 1 else out

    def multinomial_hessp(self, P, sw, V, ones=False):
        """``(A^T M, A V)`` with ``M_i = sw_i (diag(p_i) - p_i p_i^T) (A V)_i``, V (d, K).

        The multinomial Hessian-vector product in one sweep (sparse); ``ones``:
        of ``[A, 1]`` (``V`` and the result with d + 1 rows).
        """
        P = np.ascontiguousarray(P, dtype=np.float64)
        V = np.ascontiguousarray(V, dtype=np.float64)
        Zd = np.empty_like(P)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_multinomial_hessp(*self.kernel_csr, P, sw, V, ones, self.d, n_chunks(),
                                             Zd), Zd
        Zd = self.matmat(V[:self.d])
        if ones:
            Zd += V[self.d]
        M = multinomial_hess_weights(P, sw, Zd, np.empty_like(Zd))
        out = self.rmatmat(M)
        return (np.vstack([out, M.sum(axis=0)]) if ones else out), Zd

    def outer_gram(self):
        """``A A^T`` as a dense (n, n) array (the dual Newton system; moderate n only)."""
        if self.is_sparse:
            return np.asarray((self.csr @ self.csr.T).toarray())
        with blas_threads_for(self.dense.size):
            return self.dense @ self.dense.T

    def take_rows(self, rows):
        """Rows ``rows`` of A as a scipy CSR matrix or dense array."""
        return self.csr[rows] if self.is_sparse else self.dense[rows]


def _kernel_csr(csr):
    """The kernels' ``(indptr, unsigned view of indices, data)``: no wraparound test (1.4x)."""
    unsigned = np.uint32 if csr.indices.dtype.itemsize == 4 else np.uint64
    return csr.indptr, csr.indices.view(unsigned), csr.data


def as_data_matrix(A, name="A"):
    """Return ``A`` as a :class:`DataMatrix` (no copy if it already is one)."""
    return A if isinstance(A, (DataMatrix, InterceptMatrix)) else DataMatrix(A, name)


_ROW_BLOCK_BYTES = 1 << 21  # dense row blocks of ~2 MiB stay in cache between the products on them


def row_block_size(n_cols):
    """Rows of a ~2 MiB block of a dense float64 matrix with ``n_cols`` columns."""
    return max(1, _ROW_BLOCK_BYTES // (8 * max(n_cols, 1)))


def over_row_ranges(M, chunk):
    """``[chunk(lo, hi), ...]`` over contiguous row ranges of the dense ``M``, one per kernel thread.

    The ranges run in Python threads (NumPy's BLAS calls release the GIL; one
    BLAS thread each) when ``M`` is large, else as one range.
    """
    n, d = M.shape
    n_threads = n_chunks() if n * d >= PARALLEL_MIN_NNZ else 1
    if n_threads == 1:
        return [chunk(0, n)]
    bounds = np.linspace(0, n, n_threads + 1).astype(np.int64)
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(chunk, bounds[:-1], bounds[1:]))


def _dense_gram(M, weights, ones):
    """``[M, 1]^T diag(weights) [M, 1]`` (``1`` only when ``ones``) by blocks of rows.

    Non-negative weights: SYRK on ``sqrt(w) [M, 1]`` (half the flops of a
    GEMM), upper triangle mirrored at the end. Blocks are split over the
    kernel threads (one BLAS thread each; BLAS releases the GIL).
    """
    n, d = M.shape
    e = d + 1 if ones else d
    nonneg = n == 0 or float(weights.min()) >= 0.0
    root = np.sqrt(weights) if nonneg else None
    step = row_block_size(e)

    def chunk(lo, hi):
        buf = np.empty((min(step, hi - lo), e))
        C = np.zeros((e, e), order="F")
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            blk = buf[:b - a]
            if nonneg:
                np.multiply(M[a:b], root[a:b, None], out=blk[:, :d])
                if ones:
                    blk[:, d] = root[a:b]
                C = dsyrk(1.0, blk.T, beta=1.0, c=C, trans=0, lower=0, overwrite_c=1)
            else:
                blk[:, :d] = M[a:b]
                if ones:
                    blk[:, d] = 1.0
                C += blk.T @ (blk * weights[a:b, None])
        return C

    G = np.ascontiguousarray(sum(over_row_ranges(M, chunk)))
    if nonneg:
        lower = np.tril_indices(e, -1)
        G[lower] = G.T[lower]
    return G


def _dense_normal_matvec(M, h, v, ones, z):
    """``[M, 1]^T (h * ([M, 1] v))`` by cache-sized row blocks; ``[M, 1] v`` written to ``z``.

    Blocks are split over the kernel threads (:func:`over_row_ranges`): 0.082 s
    on one thread, 0.045 s on two at n = 1e6, d = 100.
    """
    n, d = M.shape
    e = d + 1 if ones else d
    w = v[:d]
    step = row_block_size(d)

    def chunk(lo, hi):
        out = np.zeros(e)
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            blk = M[a:b]
            zb = np.dot(blk, w, out=z[a:b])
            if ones:
                zb += v[d]
            t = h[a:b] * zb
            out[:d] += t @ blk
            if ones:
                out[d] += t.sum()
        return out

    return sum(over_row_ranges(M, chunk))


class InterceptMatrix(MatrixShape):
    """``[A, 1]``: a :class:`DataMatrix` with a column of ones appended, never copied.

    Exposes the products of :class:`DataMatrix` for the (n, d + 1) matrix;
    the last column is handled inside each product (``A x[:d] + x[d]``,
    ``[A^T y; sum(y)]``, ``gram(..., ones=True)``), so fitting an intercept
    costs no copy of ``A``.

    Parameters
    ----------
    base : DataMatrix of shape (n, d)
    """

    def __init__(self, base):
        self.base = base
        self.is_sparse = base.is_sparse
        self.shape = (base.n, base.d + 1)
        self.nnz = base.nnz + base.n

    def row_nnz(self):
        return self.base.row_nnz() + 1

    def col_nnz(self):
        return np.append(self.base.col_nnz(), self.n)

    def column_sums(self):
        """Return ``[A.T @ 1; n]``, shape (d + 1,) (one sweep)."""
        return np.append(self.base.column_sums(), float(self.n))

    def matvec(self, x, out=None):
        x = np.asarray(x, dtype=np.float64)
        out = self.base.matvec(np.ascontiguousarray(x[:-1]), out=out)
        out += x[-1]
        return out

    def matmat(self, X):
        X = np.asarray(X, dtype=np.float64)
        out = self.base.matmat(X[:-1])
        out += X[-1]
        return out

    def rmatvec(self, y):
        y = np.asarray(y, dtype=np.float64)
        return np.append(self.base.rmatvec(y), y.sum())

    def rmatmat(self, Y):
        Y = np.asarray(Y, dtype=np.float64)
        # column sums by BLAS: Y.sum(axis=0) on an (n, K) array is 4x slower
        return np.vstack([self.base.rmatmat(Y), (Y.T @ np.ones(self.n))[None, :]])

    def gram(self, weights, rows=None):
        return self.base.gram(weights, rows=rows, ones=True)

    def normal_matvec(self, h, v):
        return self.base.normal_matvec(h, v, ones=True)

    def weighted_col_sq(self, w):
        return self.base.weighted_col_sq(w, ones=True)

    def class_blocks(self, P, sw):
        return self.base.class_blocks(P, sw, ones=True)

    def multinomial_hessp(self, P, sw, V):
        return self.base.multinomial_hessp(P, sw, V, ones=True)

    def abs_rmatmat(self, Y):
        return self.base.abs_rmatmat(Y, ones=True)

    def outer_gram(self):
        return self.base.outer_gram() + 1.0

    def take_rows(self, rows):
        R = self.base.take_rows(rows)
        if self.is_sparse:
            return sp.hstack([R, np.ones((R.shape[0], 1))], format="csr")
        return np.hstack([R, np.ones((R.shape[0], 1))])

    def toarray(self):
        """``[A, 1]`` as a dense array (tests and small problems only)."""
        A = self.base.csr.toarray() if self.is_sparse else self.base.dense
        return np.hstack([A, np.ones((self.n, 1))])
