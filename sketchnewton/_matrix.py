"""The data matrix ``A``: validation and the products every layer needs.

:class:`DataMatrix` holds ``A`` once, as CSR (float64 data, sorted indices)
for sparse input or as a C-contiguous float64 array for dense input, and
exposes the few operations the losses, sketches and driver use. Sparse input
is never densified.
"""

import numba
import numpy as np
import scipy.sparse as sp

from ._kernels import kernel_threads
from ._kernels.linalg import csr_gram, csr_matmat, csr_matvec, csr_rmatmat, csr_rmatvec
from ._validation import _check_dtype, check_array_values
from .exceptions import InputError

__all__ = ["DataMatrix", "as_data_matrix"]


def _n_chunks():
    return max(1, numba.get_num_threads())


class DataMatrix:
    """A validated n x d matrix, sparse (CSR) or dense.

    Parameters
    ----------
    A : sparse matrix/array (CSR, CSC, COO, ...) or array-like of shape (n, d)
        Integer, boolean, float32 and float64 input are accepted; values are
        stored as float64. Complex, non-numeric, empty or non-finite input
        raises :class:`~sketchnewton.exceptions.InputError`.
    name : str
        Name used in error messages.

    Attributes
    ----------
    shape : tuple (n, d)
    is_sparse : bool
    nnz : int
        Stored non-zeros (``n * d`` for dense input).
    sweeps : float
        Number of sweeps over ``A`` made through this object so far (one per
        ``A @ x`` or ``A.T @ Y``; a Gram of a row subset counts the fraction of
        non-zeros it touches). A *pass* is two sweeps.
    """

    def __init__(self, A, name="A"):
        if isinstance(A, DataMatrix):
            self.__dict__.update(A.__dict__)
            return
        if sp.issparse(A):
            _check_dtype(A.dtype, name)
            if A.ndim != 2:
                raise InputError(f"{name} must be 2-D, got {A.ndim}-D")
            csr = sp.csr_matrix(A, dtype=np.float64, copy=False)
            if not csr.has_canonical_format:
                # canonicalise a private copy: never mutate the caller's matrix
                if csr is A or csr.data is getattr(A, "data", None):
                    csr = csr.copy()
                csr.sum_duplicates()
                csr.sort_indices()
            check_array_values(csr.data, name)
            self.csr = csr
            # kernels index with an unsigned view of the column indices: numba
            # then skips the negative-index wraparound test (measured 1.4x on matvec)
            unsigned = np.uint32 if csr.indices.dtype.itemsize == 4 else np.uint64
            self.kernel_csr = (csr.indptr, csr.indices.view(unsigned), csr.data)
            self.dense = None
            self.is_sparse = True
            self.shape = csr.shape
            self.nnz = int(csr.nnz)
        else:
            if hasattr(A, "dask") or hasattr(A, "compute"):
                raise InputError(f"{name} is a lazy (dask) array; use the distributed backend")
            arr = np.asarray(A)
            _check_dtype(arr.dtype, name)
            if arr.ndim != 2:
                raise InputError(f"{name} must be 2-D, got shape {arr.shape}")
            arr = np.ascontiguousarray(arr, dtype=np.float64)
            check_array_values(arr, name)
            self.csr = None
            self.kernel_csr = None
            self.dense = arr
            self.is_sparse = False
            self.shape = arr.shape
            self.nnz = int(arr.size)
        self.sweeps = 0.0
        n, d = self.shape
        if n == 0 or d == 0:
            raise InputError(f"{name} is empty (shape {self.shape})")

    @property
    def n(self):
        return self.shape[0]

    @property
    def d(self):
        return self.shape[1]

    def row_nnz(self):
        """Non-zeros per row, shape (n,)."""
        if self.is_sparse:
            return np.diff(self.csr.indptr)
        return np.full(self.n, self.d, dtype=np.int64)

    def row_nnz_squares(self):
        """``sum_i nnz_i^2``: the work of the exact Gram (float)."""
        r = self.row_nnz().astype(np.float64)
        return float(r @ r)

    def column_sums(self):
        """Return ``A.T @ 1``, shape (d,) (one sweep)."""
        return self.rmatvec(np.ones(self.n))

    def matvec(self, x, out=None):
        """Return ``A @ x``; ``x`` of shape (d,), result of shape (n,)."""
        if out is None:
            out = np.empty(self.n)
        self.sweeps += 1
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_matvec(*self.kernel_csr, x, out)
        return np.dot(self.dense, x, out=out)

    def matmat(self, X):
        """Return ``A @ X``; ``X`` of shape (d, k), result (n, k), in one sweep."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        self.sweeps += 1
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_matmat(*self.kernel_csr, X, np.empty((self.n, X.shape[1])))
        return self.dense @ X

    def rmatmat(self, Y):
        """Return ``A.T @ Y``; ``Y`` of shape (n, k), result of shape (d, k)."""
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        self.sweeps += 1
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_rmatmat(*self.kernel_csr, Y, self.d, _n_chunks())
        return self.dense.T @ Y

    def rmatvec(self, y):
        """Return ``A.T @ y``; ``y`` of shape (n,), result of shape (d,)."""
        self.sweeps += 1
        if self.is_sparse:
            y = np.ascontiguousarray(y, dtype=np.float64)
            with kernel_threads(self.nnz):
                return csr_rmatvec(*self.kernel_csr, y, self.d, _n_chunks())
        return self.dense.T @ y

    def gram(self, weights, rows=None):
        """Return ``sum_r weights[r] a_{rows[r]} a_{rows[r]}^T`` (d x d, dense).

        ``rows=None`` means all rows (then this is ``A.T @ diag(weights) @ A``).
        Sparse cost is ``O(sum_r nnz_r^2)``; dense input uses BLAS.
        """
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        self.sweeps += 1 if rows is None else self.row_nnz()[rows].sum() / max(self.nnz, 1)
        if self.is_sparse:
            if rows is None:
                rows = np.arange(self.n, dtype=np.int64)
            rows = np.ascontiguousarray(rows, dtype=np.int64)
            with kernel_threads(self.nnz):
                return csr_gram(*self.kernel_csr, rows, weights, self.d, _n_chunks())
        M = self.dense if rows is None else self.dense[rows]
        G = np.zeros((self.d, self.d))
        step = max(1, (1 << 24) // (8 * self.d))  # row blocks of ~16 MiB: no n x d temporary
        for lo in range(0, M.shape[0], step):
            blk = M[lo:lo + step]
            G += blk.T @ (blk * weights[lo:lo + step, None])
        return G

    @property
    def passes(self):
        """Sweeps over ``A`` so far divided by two (see ``sweeps``)."""
        return self.sweeps / 2

    def take_rows(self, rows):
        """Rows ``rows`` of A as a scipy CSR matrix or dense array."""
        return self.csr[rows] if self.is_sparse else self.dense[rows]

    def __matmul__(self, x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            return self.matvec(x)
        return np.column_stack([self.matvec(np.ascontiguousarray(col)) for col in x.T])


def as_data_matrix(A, name="A"):
    """Return ``A`` as a :class:`DataMatrix` (no copy if it already is one)."""
    return A if isinstance(A, DataMatrix) else DataMatrix(A, name)
