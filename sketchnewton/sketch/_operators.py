"""Drawn sketching operators (the second of three stages: settings -> drawn operator -> ``@``).

A :class:`SketchSettings` is a small frozen description (kind, sketch size,
sampling scheme). ``settings.draw(random_state, n=..., probabilities=...)``
draws a :class:`SketchOperator` that holds all its randomness (bucket
indices, signs, kept rows and weights, a seed for Gaussian blocks), so the
*same* operator can be applied to several inputs, e.g. to ``diag(r) A`` and
to a vector ``f`` when sketching the Gauss-Newton factor
``J = diag(r) A - f k^T``::

    S = SketchSettings("countsketch", 800).draw(0, n=A.shape[0])
    SJ = S.apply(A, row_scale=r) - np.outer(S @ f, k)

Every operator ``S`` (shape (s, n)) satisfies ``E[S^T S] = I_n``.
"""


import numpy as np
import scipy.sparse as sp

from .._kernels import n_chunks
from .._kernels.sketch import (
    countsketch_csr,
    countsketch_dense,
    csr_scaled_rows,
    fwht_inplace,
    fwht_inplace_parallel,
)
from .._matrix import DataMatrix, shifted_row_gram
from .._validation import check_int, check_vector
from ..exceptions import InputError

__all__ = [
    "KINDS",
    "SCHEMES",
    "SketchOperator",
    "GaussianOperator",
    "CountSketchOperator",
    "SRHTOperator",
    "RowSamplingOperator",
]

KINDS = ("gaussian", "countsketch", "srht", "uniform", "leverage")
SCHEMES = ("bernoulli", "replacement")

# Gaussian operators generate S in column blocks of this many entries.
_GAUSS_BLOCK_ENTRIES = 1 << 22
# SRHT works on dense (n_pad, k_block) buffers of at most this many entries.
_SRHT_BLOCK_ENTRIES = 1 << 25




def _fwht(X):
    # parallel regions have a start-up cost; small transforms run serially
    if X.size < (1 << 16):
        return fwht_inplace(X)
    return fwht_inplace_parallel(X)


def check_sketch_size(sketch_size, name="sketch_size"):
    """Return ``sketch_size`` as a positive int or raise :class:`InputError`."""
    return check_int(sketch_size, name, minimum=1)


# ---------------------------------------------------------------------------
# input normalisation
# ---------------------------------------------------------------------------

def _as_operand(M, n):
    """Normalise ``M`` to (kind, object): 'vec' (n,), 'dense' (n, k) or 'csr' DataMatrix."""
    if isinstance(M, DataMatrix):
        if M.n != n:
            raise InputError(f"operand has {M.n} rows, the sketch expects {n}")
        return ("csr", M) if M.is_sparse else ("dense", M.dense)
    if sp.issparse(M):
        if M.shape[0] != n:
            raise InputError(f"operand has {M.shape[0]} rows, the sketch expects {n}")
        return "csr", DataMatrix(M, "M")
    arr = np.asarray(M)
    if arr.ndim == 1:
        if arr.shape[0] != n:
            raise InputError(f"operand has length {arr.shape[0]}, the sketch expects {n}")
        return "vec", np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim == 2:
        if arr.shape[0] != n:
            raise InputError(f"operand has {arr.shape[0]} rows, the sketch expects {n}")
        return "dense", np.ascontiguousarray(arr, dtype=np.float64)
    raise InputError(f"operand must be 1-D or 2-D, got shape {arr.shape}")


def _check_row_scale(row_scale, n):
    if row_scale is None:
        return None
    return check_vector(row_scale, "row_scale", n)


class _Adjoint:
    """``S.T``: supports ``S.T @ y`` for y of shape (s,) or (s, k)."""

    def __init__(self, op):
        self._op = op
        self.shape = (op.shape[1], op.shape[0])

    def __matmul__(self, Y):
        return self._op.adjoint(Y)

    @property
    def T(self):
        return self._op


# ---------------------------------------------------------------------------
# drawn operators
# ---------------------------------------------------------------------------

class SketchOperator:
    """A drawn sketch ``S`` of shape (s, n). Apply with ``S @ M``.

    ``M`` may be a vector of shape (n,), a dense array of shape (n, k), a
    scipy sparse matrix or a :class:`~sketchnewton._matrix.DataMatrix` of
    shape (n, d); the result is a dense array of shape (s,) / (s, k) / (s, d).
    ``S.T @ y`` applies the adjoint (y of shape (s,) or (s, k) -> (n,) or
    (n, k)).
    """

    kind = None

    def __init__(self, n, s):
        self.n = int(n)
        self.shape = (int(s), int(n))

    # public API ---------------------------------------------------------
    def __matmul__(self, M):
        return self.apply(M)

    @property
    def T(self):
        return _Adjoint(self)

    def apply(self, M, row_scale=None):
        """Return ``S @ diag(row_scale) @ M`` as a dense array.

        Parameters
        ----------
        M : array of shape (n,) or (n, k), scipy sparse or DataMatrix (n, d)
        row_scale : array of shape (n,), optional
            Row weights applied before sketching (never forms ``diag(r) M``).

        Returns
        -------
        ndarray of shape (s,) or (s, k)
        """
        kind, obj = _as_operand(M, self.n)
        r = _check_row_scale(row_scale, self.n)
        if kind == "vec":
            out = self._apply_dense(obj[:, None] if r is None else (obj * r)[:, None], None)
            return out[:, 0]
        if kind == "dense":
            return self._apply_dense(obj, r)
        return self._apply_csr(obj, r)

    def adjoint(self, Y):
        """Return ``S.T @ Y``; ``Y`` of shape (s,) or (s, k) -> (n,) or (n, k)."""
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim not in (1, 2) or Y.shape[0] != self.shape[0]:
            raise InputError(f"adjoint operand must have {self.shape[0]} rows, got shape {Y.shape}")
        if Y.ndim == 1:
            return self._adjoint(np.ascontiguousarray(Y[:, None]))[:, 0]
        return self._adjoint(np.ascontiguousarray(Y))

    def to_dense(self):
        """Return ``S`` as a dense (s, n) array (small ``n`` only; for tests)."""
        return self.adjoint(np.eye(self.shape[0])).T.copy()

    def gram(self, M, row_scale=None, shift=None, extra_diag=None):
        """Return ``(S F)^T (S F)`` (d x d) for ``F = diag(row_scale) M - f k^T``.

        With ``extra_diag`` (n,), non-negative here, also adds the sketch of
        ``M^T diag(extra_diag) M`` (row samplers accept any sign).

        Parameters
        ----------
        M : scipy sparse, DataMatrix or dense array of shape (n, d)
        row_scale : array of shape (n,), optional
        shift : tuple (f, k), optional
            Rank-one shift with ``f`` of shape (n,) and ``k`` of shape (d,);
            this is how the Gauss-Newton factor ``J`` (rows ``r_i a_i - f_i k``)
            is sketched with one operator.

        Returns
        -------
        ndarray of shape (d, d), symmetric positive semidefinite.
        """
        SF = self.apply(M, row_scale=row_scale)
        if SF.ndim == 1:
            SF = SF[:, None]
        if shift is not None:
            f, k = shift
            f = check_vector(f, "f", self.n)
            k = check_vector(k, "k", SF.shape[1])
            SF = SF - np.outer(self @ f, k)
        G = SF.T @ SF
        if extra_diag is not None:
            e = check_vector(extra_diag, "extra_diag", self.n)
            if np.any(e < 0):
                raise InputError("extra_diag must be >= 0 for a sketching embedding")
            SE = self.apply(M, row_scale=np.sqrt(e))
            G += SE.T @ SE
        return 0.5 * (G + G.T)

    # to implement -------------------------------------------------------
    def _apply_dense(self, M, r):  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_csr(self, dm, r):  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, Y):  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(shape={self.shape})"


class GaussianOperator(SketchOperator):
    """Dense Gaussian sketch, entries i.i.d. ``N(0, 1/s)``.

    ``S`` is never stored: its column blocks (of ``block`` columns) are
    regenerated from ``(seed, block index)``, so memory is ``O(s * block)``.
    Cost of ``S @ M``: ``O(s * nnz(M))``; the yardstick, not a fast sketch.
    """

    kind = "gaussian"

    def __init__(self, n, s, seed):
        super().__init__(n, s)
        self.seed = int(seed)
        self.block = max(1, min(n, _GAUSS_BLOCK_ENTRIES // max(s, 1)))

    def _block(self, b):
        lo = b * self.block
        hi = min(self.n, lo + self.block)
        rng = np.random.default_rng([self.seed, b])
        s = self.shape[0]
        return lo, hi, rng.standard_normal((s, hi - lo)) / np.sqrt(s)

    def _blocks(self):
        nb = (self.n + self.block - 1) // self.block
        for b in range(nb):
            yield self._block(b)

    def _apply_dense(self, M, r):
        out = np.zeros((self.shape[0], M.shape[1]))
        for lo, hi, Sb in self._blocks():
            Mb = M[lo:hi] if r is None else M[lo:hi] * r[lo:hi, None]
            out += Sb @ Mb
        return out

    def _apply_csr(self, dm, r):
        csr = dm.csr
        out = np.zeros((self.shape[0], dm.d))
        for lo, hi, Sb in self._blocks():
            Mb = csr[lo:hi]
            if r is not None:
                Mb = sp.diags(r[lo:hi]) @ Mb
            out += (Mb.T @ Sb.T).T
        return out

    def _adjoint(self, Y):
        out = np.empty((self.n, Y.shape[1]))
        for lo, hi, Sb in self._blocks():
            out[lo:hi] = Sb.T @ Y
        return out


class CountSketchOperator(SketchOperator):
    """CountSketch (sparse embedding with one non-zero per column).

    Column ``i`` of ``S`` has the single entry ``signs[i]`` (+-1) in row
    ``buckets[i]`` (uniform in ``[0, s)``). ``S @ A`` costs ``O(nnz(A))``
    (numba kernel on CSR) plus ``O(s d)`` to allocate the output.
    """

    kind = "countsketch"

    def __init__(self, n, s, buckets, signs):
        super().__init__(n, s)
        self.buckets = np.ascontiguousarray(buckets, dtype=np.int64)
        self.signs = np.ascontiguousarray(signs, dtype=np.float64)

    def _scale(self, r):
        return np.ones(self.n) if r is None else r

    def _apply_dense(self, M, r):
        return countsketch_dense(M, self._scale(r), self.buckets, self.signs,
                                 self.shape[0], n_chunks())

    def _apply_csr(self, dm, r):
        c = dm.csr
        return countsketch_csr(c.indptr, c.indices, c.data, self._scale(r), self.buckets,
                               self.signs, self.shape[0], dm.d, n_chunks())

    def _adjoint(self, Y):
        return self.signs[:, None] * Y[self.buckets]


class SRHTOperator(SketchOperator):
    """Subsampled randomized Hadamard transform ``S = sqrt(n_pad/s) P H D``.

    ``D`` = random signs (n,), the input is zero-padded to ``n_pad`` (next
    power of two), ``H`` = orthonormal Walsh-Hadamard matrix (applied with a
    numba FWHT, ``O(n_pad log n_pad)`` per column), ``P`` = ``s`` rows drawn
    uniformly *without* replacement. With the unnormalised ``H`` this is
    ``S = P H D / sqrt(s)``; ``E[S^T S] = I_n``. Columns are processed in
    blocks so that the dense buffer has at most 2^25 entries.
    """

    kind = "srht"

    def __init__(self, n, s, signs, rows):
        super().__init__(n, s)
        self.n_pad = 1 << max(0, int(np.ceil(np.log2(max(n, 1)))))
        self.signs = np.ascontiguousarray(signs, dtype=np.float64)
        self.rows = np.ascontiguousarray(rows, dtype=np.int64)

    def _col_block(self, k):
        return max(1, min(k, _SRHT_BLOCK_ENTRIES // self.n_pad))

    def _transform(self, X):
        # X: (n_pad, kb), first n rows filled with D-scaled input
        _fwht(X)
        return X[self.rows] / np.sqrt(self.shape[0])

    def _apply_dense(self, M, r):
        k = M.shape[1]
        scale = self.signs if r is None else self.signs * r
        out = np.empty((self.shape[0], k))
        kb = self._col_block(k)
        for c0 in range(0, k, kb):
            c1 = min(k, c0 + kb)
            X = np.zeros((self.n_pad, c1 - c0))
            X[: self.n] = M[:, c0:c1] * scale[:, None]
            out[:, c0:c1] = self._transform(X)
        return out

    def _apply_csr(self, dm, r):
        scale = self.signs if r is None else self.signs * r
        csc = (sp.diags(scale) @ dm.csr).tocsc()
        k = dm.d
        out = np.empty((self.shape[0], k))
        kb = self._col_block(k)
        for c0 in range(0, k, kb):
            c1 = min(k, c0 + kb)
            X = np.zeros((self.n_pad, c1 - c0))
            X[: self.n] = csc[:, c0:c1].toarray()
            out[:, c0:c1] = self._transform(X)
        return out

    def _adjoint(self, Y):
        k = Y.shape[1]
        out = np.empty((self.n, k))
        kb = self._col_block(k)
        for c0 in range(0, k, kb):
            c1 = min(k, c0 + kb)
            X = np.zeros((self.n_pad, c1 - c0))
            X[self.rows] = Y[:, c0:c1] / np.sqrt(self.shape[0])
            _fwht(X)
            out[:, c0:c1] = X[: self.n] * self.signs[:, None]
        return out


class RowSamplingOperator(SketchOperator):
    """Row sampler: row ``r`` of ``S`` is ``row_weights[r] * e_{rows[r]}^T``.

    Attributes
    ----------
    rows : ndarray of shape (m,)
        Kept row indices (sorted, distinct for Bernoulli sampling; may repeat
        for sampling with replacement).
    row_weights : ndarray of shape (m,)
        ``1/sqrt(pi_i)`` (Bernoulli, ``pi_i = min(1, c p_i)``) or
        ``1/sqrt(s p_i)`` (with replacement).
    probabilities : ndarray of shape (n,)
        The sampling distribution ``p`` (sums to 1).
    scheme : {"bernoulli", "replacement"}
    unsampled : ndarray of bool (n,) or None
        Rows with no chance of being drawn (see :class:`~sketchnewton._blocks.RowSample`:
        the operator has that type's fields).

    ``m`` (= ``shape[0]``) is random for Bernoulli sampling, with mean
    ``sketch_size``. The Gram of sampled rows is assembled with
    :meth:`DataMatrix.gram` in ``O(sum_r nnz(a_{rows[r]})^2)``.
    """

    def __init__(self, n, rows, row_weights, probabilities, scheme, sketch_size, kind,
                 unsampled=None):
        super().__init__(n, len(rows))
        self.unsampled = unsampled
        self.rows = np.ascontiguousarray(rows, dtype=np.int64)
        self.row_weights = np.ascontiguousarray(row_weights, dtype=np.float64)
        self.probabilities = probabilities
        self.scheme = scheme
        self.sketch_size = int(sketch_size)
        self.kind = kind

    def _apply_dense(self, M, r):
        w = self.row_weights if r is None else self.row_weights * r[self.rows]
        return M[self.rows] * w[:, None]

    def _apply_csr(self, dm, r):
        w = self.row_weights if r is None else self.row_weights * r[self.rows]
        c = dm.csr
        return csr_scaled_rows(c.indptr, c.indices, c.data, self.rows, w, dm.d)

    def _adjoint(self, Y):
        out = np.zeros((self.n, Y.shape[1]))
        np.add.at(out, self.rows, Y * self.row_weights[:, None])
        return out

    def gram(self, M, row_scale=None, shift=None, extra_diag=None):
        """Return ``(S F)^T (S F)`` for ``F = diag(row_scale) M - f k^T``, (d, d).

        Sparse ``M`` uses :meth:`DataMatrix.gram` on the kept rows only:
        ``O(sum_r nnz_r^2)``, never ``O(nnz(M) d)``. The rank-one shift adds
        ``- u k^T - k u^T + (sum_r w_r^2 f_r^2) k k^T`` with
        ``u = sum_r w_r^2 r_r f_r a_r`` (one small sparse product).
        ``extra_diag`` (n,), of any sign, adds the unbiased estimate
        ``sum_r w_r^2 extra_r a_r a_r^T`` of ``M^T diag(extra_diag) M`` in the
        same Gram pass.
        """
        kind, obj = _as_operand(M, self.n)
        if kind == "vec":
            return super().gram(M, row_scale, shift, extra_diag)
        r = _check_row_scale(row_scale, self.n)
        w = self.row_weights if r is None else self.row_weights * r[self.rows]
        dm = obj if kind == "csr" else DataMatrix(obj, "M")
        weights = w * w
        if extra_diag is not None:
            e = check_vector(extra_diag, "extra_diag", self.n)
            weights = weights + self.row_weights ** 2 * e[self.rows]
        if shift is None:
            G = dm.gram(weights, rows=self.rows)
            return 0.5 * (G + G.T)
        f, k = shift
        f = check_vector(f, "f", self.n)
        k = check_vector(k, "k", dm.d)
        fw = f[self.rows] * self.row_weights
        # u = (S diag(r) M)^T (S f)
        return shifted_row_gram(dm, self.rows, weights, w * fw, k, float(fw @ fw))
