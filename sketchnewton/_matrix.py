"""The data matrix ``A``: validation and the products every layer needs.

:class:`DataMatrix` holds ``A`` once, as CSR (float64 data, sorted indices)
for sparse input or, for dense input, as the caller's float32 or float64,
C- or Fortran-ordered array itself (no copy; :mod:`sketchnewton._dense`), and
exposes the few operations the losses, sketches and driver use. Sparse input
is never densified.
"""

import time

import numpy as np
import scipy.sparse as sp

from . import _dense
from ._dense import over_row_ranges, row_block_size
from ._kernels import BUFFER_RATIO, kernel_threads, n_chunks, threads_for
from ._kernels.glm import csr_multinomial_hessp, multinomial_hess_weights, multinomial_probs
from ._kernels.linalg import (
    csr_abs_rmatmat,
    csr_class_blocks,
    csr_gram,
    csr_matmat,
    csr_matvec,
    csr_normal_matvec,
    csr_rmatmat,
    csr_rmatmat_rows,
    csr_rmatvec,
    csr_weighted_col_sq,
    fused_sweep,
)
from ._validation import (
    check_array_values,
    check_csr_structure,
    check_dtype,
    check_sparse_structure,
)
from .exceptions import InputError

__all__ = ["DataMatrix", "InterceptMatrix", "as_data_matrix", "shifted_row_gram", "over_row_ranges",
           "row_block_size"]


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
        Integer, boolean, float32 and float64 input are accepted. Sparse
        values are stored as float64. A dense float32 or float64 array that is
        C- or Fortran-contiguous is kept as given (``dense`` is a view of it:
        no copy, no upcast); other dense layouts are copied in their own
        precision (C order), and integer, boolean and other float dtypes are
        converted to float64. Complex, non-numeric, empty or non-finite input
        raises :class:`~sketchnewton.exceptions.InputError`.
    name : str
        Name used in error messages.
    check_finite : bool, default=True
        Scan the values for NaN / Inf, and a sparse ``A``'s index structure. Pass False
        only when the caller has checked both (the estimators: ``validate`` does): each
        scan reads all of ``A`` once.

    Attributes
    ----------
    shape : tuple (n, d)
    is_sparse : bool
    dtype : numpy dtype
        Of the stored values: float64 for sparse input, float32 or float64 for dense.
    nnz : int
        Stored non-zeros (``n * d`` for dense input).

    Notes
    -----
    Every product returns float64. With ``precise=True`` (the default) it is
    the float64 product even for float32 data (row blocks upcast on the fly):
    the loss, the gradient and the line search use these. ``precise=False``
    lets float32 data use float32 BLAS (about 1e-7 relative error: Hessian
    products for conjugate gradients, preconditioners, sketches); it changes
    nothing for float64 or sparse data.
    """

    def __init__(self, A, name="A", check_finite=True):
        if isinstance(A, DataMatrix):
            self.__dict__.update(A.__dict__)
            return
        if sp.issparse(A):
            check_dtype(A.dtype, name)
            if A.ndim != 2:
                raise InputError(f"{name} must be 2-D, got {A.ndim}-D")
            if check_finite:  # CSR, CSC, BSR, COO: before scipy's conversion trusts them
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
            self.dtype = csr.dtype
            self.shape = csr.shape
            self.nnz = int(csr.nnz)
        else:
            if hasattr(A, "dask") or hasattr(A, "compute"):
                raise InputError(f"{name} is a lazy (dask) array; use the distributed backend")
            arr = np.asarray(A)
            check_dtype(arr.dtype, name)
            if arr.ndim != 2:
                raise InputError(f"{name} must be 2-D, got shape {arr.shape}")
            arr = _dense.as_dense(arr, name, check_finite)
            self.csr, self.kernel_csr, self.dense, self.is_sparse = None, None, arr, False
            self.dtype, self.shape, self.nnz = arr.dtype, arr.shape, int(arr.size)
        n, d = self.shape
        if n == 0 or d == 0:
            raise InputError(f"{name} is empty (shape {self.shape})")

    @classmethod
    def trusted(cls, A):
        """A :class:`DataMatrix` of arrays that a :class:`DataMatrix` already validated and
        stored (a row block reloaded from the files it was written to): no check, no copy.

        Parameters
        ----------
        A : tuple ``(data, indices, indptr, shape)`` of a canonical float64 CSR matrix, or a
            float32 / float64 C- or Fortran-contiguous 2-D array
        """
        dm = cls.__new__(cls)
        if isinstance(A, tuple):
            data, indices, indptr, shape = A
            csr = sp.csr_matrix((data, indices, indptr), shape=shape, copy=False)
            csr.has_canonical_format = True  # as validated when written: no scan of the indices
            dm.csr, dm.kernel_csr, dm.dense, dm.is_sparse = csr, _kernel_csr(csr), None, True
            dm.dtype, dm.shape, dm.nnz = csr.dtype, csr.shape, int(csr.nnz)
        else:
            dm.csr, dm.kernel_csr, dm.dense, dm.is_sparse = None, None, A, False
            dm.dtype, dm.shape, dm.nnz = A.dtype, A.shape, int(A.size)
        return dm

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

    def matvec(self, x, out=None, precise=True):
        """Return ``A @ x``; ``x`` of shape (d,), result of shape (n,).

        ``precise=False``: float32 BLAS for float32 data (see the class notes).
        """
        if out is None:
            out = np.empty(self.n)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_matvec(*self.kernel_csr, x, out)
        return _dense.matvec(self.dense, np.asarray(x, dtype=np.float64), out, precise)

    def matmat(self, X, precise=True):
        """Return ``A @ X``; ``X`` of shape (d, k), result (n, k), in one sweep (BLAS-3 on
        dense row blocks). ``precise=False``: float32 BLAS for float32 data."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_matmat(*self.kernel_csr, X, np.empty((self.n, X.shape[1])))
        return _dense.matmat(self.dense, X, precise)

    def rmatmat(self, Y, precise=True):
        """Return ``A.T @ Y``; ``Y`` of shape (n, k), result of shape (d, k). ``precise=False``:
        float32 BLAS for float32 data."""
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_rmatmat(*self.kernel_csr, Y, self.d, n_chunks())
        return _dense.rmatmat(self.dense, Y, precise)

    def rmatvec(self, y, precise=True):
        """Return ``A.T @ y``; ``y`` of shape (n,), result of shape (d,). ``precise=False``:
        float32 BLAS for float32 data."""
        if self.is_sparse:
            y = np.ascontiguousarray(y, dtype=np.float64)
            with kernel_threads(self.nnz):
                return csr_rmatvec(*self.kernel_csr, y, self.d, n_chunks())
        return _dense.rmatvec(self.dense, np.asarray(y, dtype=np.float64), precise)

    def gram(self, weights, rows=None, ones=False, precise=True, tail=None):
        """Return ``sum_r weights[r] a_{rows[r]} a_{rows[r]}^T`` (d x d, dense).

        ``rows=None`` means all rows (then this is ``A.T @ diag(weights) @ A``).
        ``ones=True``: the Gram of ``[A, 1]`` (an intercept column appended
        without copying ``A``), shape (d + 1, d + 1); ``tail`` (one value per row
        used) in place of the 1s: its last column is then ``sum_r weights[r]
        tail[r] a_r``, read in the same sweep.
        Sparse cost is ``O(sum_r nnz_r^2)``; dense input uses BLAS (SYRK for
        non-negative weights), row blocks (the sampled rows gathered block by
        block) split over the kernel threads. ``precise=False``: float32 SYRK
        on the blocks of float32 data, their sums in float64.
        """
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if self.is_sparse:
            rows = np.ascontiguousarray(np.arange(self.n) if rows is None else rows, dtype=np.int64)
            extra = np.empty(0) if tail is None else np.ascontiguousarray(tail, dtype=np.float64)
            with kernel_threads(self.nnz):
                return csr_gram(*self.kernel_csr, rows, weights, self.d, n_chunks(), ones,
                                BUFFER_RATIO, extra)
        if rows is not None:
            rows = np.asarray(rows, dtype=np.intp)
        return _dense.gram(self.dense, weights, ones, rows, precise, tail)

    def normal_matvec(self, h, v, ones=False, precise=True):
        """Return ``(A.T @ (h * (A @ v)), A @ v)`` in one sweep over ``A``.

        The Hessian-vector product of a loss with per-row curvature ``h``;
        each row (or block of rows, dense) is read once for both products.
        ``ones=True``: products of ``[A, 1]`` (``v`` and the first result of
        length d + 1). ``precise=False``: float32 BLAS for float32 data (both
        results then carry about 1e-7 relative error).
        """
        h = np.ascontiguousarray(h, dtype=np.float64)
        v = np.ascontiguousarray(v, dtype=np.float64)
        z = np.empty(self.n)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_normal_matvec(*self.kernel_csr, h, v, ones, self.d, n_chunks(), z), z
        return _dense.normal_matvec(self.dense, h, v, ones, z, precise), z

    def weighted_col_sq(self, w, ones=False):
        """``sum_i w_i a_ij^2`` per column: the diagonal of ``A^T diag(w) A`` (one sweep).

        ``ones=True``: of ``[A, 1]`` (length d + 1).
        """
        w = np.ascontiguousarray(w, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz):
                return csr_weighted_col_sq(*self.kernel_csr, w, ones, self.d, n_chunks())
        return _dense.weighted_col_sq(self.dense, w, ones)

    def class_blocks(self, P, sw, ones=False):
        """``sum_i a_ij^2 sw_i (diag(p_i) - p_i p_i^T)`` per column: (d, K, K) (one sweep)."""
        P, sw = np.ascontiguousarray(P, dtype=np.float64), np.ascontiguousarray(sw, dtype=np.float64)
        if self.is_sparse:
            with kernel_threads(self.nnz * P.shape[1] ** 2):
                return csr_class_blocks(*self.kernel_csr, P, sw, ones, self.d, n_chunks())
        return _dense.class_blocks(self.dense, P, sw, ones)

    def abs_rmatmat(self, Y, ones=False):
        """``|A|^T Y`` for Y (n,) or (n, k): the gradient's rounding bound (one sweep; sparse: no
        copy of ``|A|``'s values, dense: a row block's). ``ones``: of ``[A, 1]``."""
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        Y2 = Y[:, None] if Y.ndim == 1 else Y
        if self.is_sparse:
            with kernel_threads(self.nnz):
                out = csr_abs_rmatmat(*self.kernel_csr, Y2, self.d, n_chunks())
        else:
            out = _dense.abs_rmatmat(self.dense, Y2)
        if ones:
            out = np.vstack([out, Y2.sum(axis=0)[None, :]])
        return out[:, 0] if Y.ndim == 1 else out

    def fused_sweeps(self, blocks=False, ones=False, threads=None):
        """Sweeps over ``A`` of one fused product: :meth:`normal_matvec`, or
        :meth:`multinomial_hessp` with ``blocks``. One when each row is read once for both of
        its products; two when they run one after the other: sparse with an output too large
        for per-thread buffers (:func:`~sketchnewton._kernels.linalg.fused_sweep`), a dense
        Fortran-ordered matrix, the dense multinomial product (two BLAS-3 products, counted
        as two sweeps though a row block is read once).
        ``threads``: the kernels' thread count (default: what :func:`kernel_threads` gives)."""
        if not self.is_sparse:
            return 2 if blocks or not self.dense.flags.c_contiguous else 1
        threads = threads_for(self.nnz) if threads is None else threads
        e = self.d + 1 if ones else self.d
        return 1 if fused_sweep(threads, e, self.nnz, BUFFER_RATIO) else 2

    def rmatmat_rows(self, rows_of, k, ones=False, precise=True, X=None):
        """``A^T Y`` (``[A, 1]`` with ``ones``), ``Y`` (n, k) never whole: ``rows_of(a, b, out)``
        writes ``Y[a:b]`` into float64 ``out``, returns it (by ~2 MiB row blocks, sparse:
        :func:`~sketchnewton._kernels.linalg.csr_rmatmat_rows`; dense: ``_dense.rproduct_rows``).
        ``X`` (d, r): ``rows_of(a, b, out, AX)`` also gets the rows of ``A X`` (``k = 0``: only
        those, a forward sweep by blocks)."""
        if not self.is_sparse:
            return _dense.rproduct_rows(self.dense, rows_of, k, ones, precise, X)
        csr = self.kernel_csr
        if X is not None:
            Xd, each = np.ascontiguousarray(X[:self.d]), rows_of

            def rows_of(a, b, out):
                AX = csr_matmat(csr[0][a:b + 1], *csr[1:], Xd, np.empty((b - a, Xd.shape[1])))
                return each(a, b, out, AX + X[self.d] if ones else AX)
        step = row_block_size(max(k, 0 if X is None else X.shape[1]))
        with kernel_threads(self.nnz):
            return csr_rmatmat_rows(*csr, rows_of, k, self.d, step, n_chunks(), ones)

    def multinomial_hessp(self, Z, stats, sw, V, ones=False, precise=True, image=True, P=None):
        """``(A^T M, A V)``, ``M_i = sw_i (diag(p_i) - p_i p_i^T) (A V)_i``, V (d, K), ``p_i`` from
        ``P`` or the softmax of ``Z_i`` and its ``stats`` (``glm.multinomial_pass``). One sweep
        (dense: a row block read once for both BLAS-3 products, ``p``, ``M`` by blocks); ``A V``
        (None with ``image=False``). ``ones``: of ``[A, 1]``; ``precise=False``: f32 BLAS."""
        V = np.ascontiguousarray(V, dtype=np.float64)
        Zd = np.empty((self.n if image else 0, V.shape[1]))
        if self.is_sparse:
            with kernel_threads(self.nnz):
                out = csr_multinomial_hessp(*self.kernel_csr, multinomial_probs(Z, stats, np.empty_like(Z)) if P is None else P, sw, V, ones, self.d, n_chunks(), Zd)
        else:
            def weights(a, b, out, Zb):
                if image:
                    Zd[a:b] = Zb
                return multinomial_hess_weights(multinomial_probs(Z[a:b], stats[a:b], out), sw[a:b], Zb, out)

            out = self.rmatmat_rows(weights, V.shape[1], ones, precise, V)
        return out, (Zd if image else None)

    def outer_gram(self, precise=True):
        """``A A^T`` as a dense (n, n) array (the dual Newton system; moderate n only).
        ``precise=False``: float32 BLAS for float32 data."""
        if self.is_sparse:
            return np.asarray((self.csr @ self.csr.T).toarray())
        return _dense.outer_gram(self.dense, precise)

    def take_rows(self, rows):
        """Rows ``rows`` of A as a scipy CSR matrix or dense array."""
        return self.csr[rows] if self.is_sparse else self.dense[rows]

    def reference_pass_seconds(self):
        """Seconds of one *reference pass*: scipy's (or numpy's) ``A.T @ (A @ x)`` on this
        matrix, the unit of ``time_passes`` (best of 3, measured once, then cached)."""
        cached = self.__dict__.get("_reference_pass")
        if cached is None:
            M = self.csr if self.is_sparse else self.dense
            x = np.ones(self.d, dtype=M.dtype)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                M.T @ (M @ x)
                times.append(time.perf_counter() - t0)
            cached = self.__dict__["_reference_pass"] = min(times)
        return cached


def shifted_row_gram(M, rows, weights, shift_weights, k, kk):
    """``sum_r weights_r a_r a_r^T - u k^T - k u^T + kk k k^T`` over the rows ``rows`` of ``M``,
    with ``u = sum_r shift_weights_r a_r``, (d, d), symmetric.

    The Gram of sampled rows of a factor ``F = diag(s) M - f k^T`` (rank-one shift):
    ``weights = w^2 s^2``, ``shift_weights = w^2 s f``, ``kk = sum w^2 f^2``. Reads the
    kept rows once (``O(sum_r nnz_r^2)`` for sparse ``M``): ``u`` is the last column of the
    Gram of the rows extended by ``shift_weights_r / weights_r`` (twice when a row has a
    shift but no weight).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if np.all(weights != 0) or not np.any(shift_weights):
        # u from the same sweep: the Gram of [a_r, t_r] with t_r = shift_weights_r / weights_r
        tail = np.divide(shift_weights, weights, out=np.zeros_like(weights), where=weights != 0)
        aug = M.gram(weights, rows=rows, ones=True, tail=tail)
        d = aug.shape[0] - 1
        G, u = np.array(aug[:d, :d]), aug[:d, d].copy()
    else:  # a row with a shift but no weight: u from a second read of the rows
        G = M.gram(weights, rows=rows)
        u = np.asarray(M.take_rows(rows).T @ shift_weights, dtype=np.float64).ravel()
    G -= np.outer(u, k) + np.outer(k, u)
    G += kk * np.outer(k, k)
    return 0.5 * (G + G.T)


def _kernel_csr(csr):
    """The kernels' ``(indptr, unsigned view of indices, data)``: no wraparound test (1.4x)."""
    unsigned = np.uint32 if csr.indices.dtype.itemsize == 4 else np.uint64
    return csr.indptr, csr.indices.view(unsigned), csr.data


def as_data_matrix(A, name="A"):
    """Return ``A`` as a :class:`DataMatrix` (no copy if it is one, or a matrix like one)."""
    return A if isinstance(A, MatrixShape) else DataMatrix(A, name)


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
        self.dtype = base.dtype
        self.shape = (base.n, base.d + 1)
        self.nnz = base.nnz + base.n

    def row_nnz(self):
        return self.base.row_nnz() + 1

    def col_nnz(self):
        return np.append(self.base.col_nnz(), self.n)

    def column_sums(self):
        """Return ``[A.T @ 1; n]``, shape (d + 1,) (one sweep)."""
        return np.append(self.base.column_sums(), float(self.n))

    def matvec(self, x, out=None, precise=True):
        x = np.asarray(x, dtype=np.float64)
        out = self.base.matvec(np.ascontiguousarray(x[:-1]), out=out, precise=precise)
        out += x[-1]
        return out

    def matmat(self, X, precise=True):
        X = np.asarray(X, dtype=np.float64)
        out = self.base.matmat(X[:-1], precise=precise)
        out += X[-1]
        return out

    def rmatvec(self, y, precise=True):
        y = np.asarray(y, dtype=np.float64)
        return np.append(self.base.rmatvec(y, precise=precise), y.sum())

    def rmatmat(self, Y, precise=True):
        Y = np.asarray(Y, dtype=np.float64)
        # column sums by BLAS: Y.sum(axis=0) on an (n, K) array is 4x slower
        return np.vstack([self.base.rmatmat(Y, precise=precise), (Y.T @ np.ones(self.n))[None, :]])

    def gram(self, weights, rows=None, precise=True):
        return self.base.gram(weights, rows=rows, ones=True, precise=precise)

    def normal_matvec(self, h, v, precise=True):
        return self.base.normal_matvec(h, v, ones=True, precise=precise)

    def weighted_col_sq(self, w):
        return self.base.weighted_col_sq(w, ones=True)

    def class_blocks(self, P, sw):
        return self.base.class_blocks(P, sw, ones=True)

    def multinomial_hessp(self, Z, stats, sw, V, precise=True, image=True, P=None):
        return self.base.multinomial_hessp(Z, stats, sw, V, ones=True, precise=precise,
                                           image=image, P=P)

    def rmatmat_rows(self, rows_of, k, precise=True, X=None):
        return self.base.rmatmat_rows(rows_of, k, ones=True, precise=precise, X=X)

    def fused_sweeps(self, blocks=False, threads=None):
        return self.base.fused_sweeps(blocks, ones=True, threads=threads)

    def abs_rmatmat(self, Y):
        return self.base.abs_rmatmat(Y, ones=True)

    def outer_gram(self, precise=True):
        return self.base.outer_gram(precise=precise) + 1.0

    def reference_pass_seconds(self):
        return self.base.reference_pass_seconds()

    def take_rows(self, rows):
        R = self.base.take_rows(rows)
        if self.is_sparse:
            return sp.hstack([R, np.ones((R.shape[0], 1))], format="csr")
        return np.hstack([R, np.ones((R.shape[0], 1))])

    def toarray(self):
        """``[A, 1]`` as a dense array (tests and small problems only)."""
        A = self.base.csr.toarray() if self.is_sparse else self.base.dense
        return np.hstack([A, np.ones((self.n, 1))])
