"""The Hessian restricted to a working set of coordinates, ``H_WW``, without forming ``H``
(proximal Newton's working-set model, docs/math.md 9.2)."""

from dataclasses import dataclass

import numpy as np

from .._kernels.linalg import csr_col_counts, csr_take_columns
from .._matrix import DataMatrix, InterceptMatrix
from ..losses import HessianFactors

__all__ = ["restricted_gram", "column_counts", "ColumnStore", "STORE_REUSE"]

#: a working set inside the stored columns reuses them while its columns hold at least this
#: share of their non-zeros (else its own columns are taken from them: a smaller Gram)
STORE_REUSE = 0.7


@dataclass(frozen=True)
class ColumnStore:
    """The columns ``cols`` of a sparse ``A`` as a CSR matrix of their own (n, m): the data
    a working set's Gram reads (taken once, reused while the working set stays inside).

    Attributes
    ----------
    cols : ndarray of int (m,)
        Sorted columns of ``A`` (without an intercept's column of ones).
    matrix : DataMatrix
    counts : ndarray of int (m,)
        Non-zeros per column.
    """

    cols: np.ndarray
    matrix: DataMatrix
    counts: np.ndarray

    @classmethod
    def take(cls, source: DataMatrix, at: np.ndarray, cols: np.ndarray, counts: np.ndarray,
             in_place: bool = False):
        """The columns ``at`` of ``source`` (``A``, or a store), which are the columns ``cols``
        of ``A`` with ``counts`` non-zeros each. ``in_place``: written over the arrays of
        ``source`` (a store that is not used any more): fresh arrays cost their first touch
        (page faults: 2.5 of 3.3 ms for half of a9a's non-zeros)."""
        pos = np.full(source.d, -1, dtype=np.int64)
        pos[at] = np.arange(at.size)
        csr = source.csr
        nnz = int(counts.sum())
        if in_place:
            indptr, indices, data = csr.indptr, csr.indices, csr.data
        else:
            indptr = np.empty(source.n + 1, dtype=np.int32 if nnz < 2 ** 31 else np.int64)
            indices, data = np.empty(nnz + 1, dtype=indptr.dtype), np.empty(nnz + 1)
        csr_take_columns(*source.kernel_csr, pos, indptr, indices, data)
        return cls(cols, DataMatrix.trusted((data[:nnz], indices[:nnz], indptr,
                                             (source.n, cols.size))), counts)


def column_counts(A) -> tuple[np.ndarray, np.ndarray]:
    """``(non-zeros, squared norms)`` per column of a
    :class:`~sketchnewton._matrix.DataMatrix` or :class:`~sketchnewton._matrix.InterceptMatrix`
    (its column of ones: ``n`` and ``n``); one sweep."""
    base = A.base if isinstance(A, InterceptMatrix) else A
    if base.is_sparse:
        counts, sq = csr_col_counts(*base.kernel_csr[1:], base.d)
    else:
        counts = np.full(base.d, base.n, dtype=np.int64)
        sq = base.weighted_col_sq(np.ones(base.n))
    if base is not A:
        return np.append(counts, base.n), np.append(sq, float(base.n))
    return counts, sq


def restricted_gram(factors: HessianFactors, cols: np.ndarray, store: ColumnStore | None,
                    counts: np.ndarray) -> tuple[np.ndarray, ColumnStore | None, float]:
    """``(H_WW, store, sweeps)`` of ``H = A^T diag(D) A + K C K^T + diag(lam)``; ``sweeps``
    over ``A``: 1 for taking columns from ``A``, the share of its non-zeros in the store for
    each read of the store.

    Parameters
    ----------
    factors : HessianFactors
        ``A`` a :class:`~sketchnewton._matrix.DataMatrix` or an
        :class:`~sketchnewton._matrix.InterceptMatrix` (its column of ones is the last).
    cols : ndarray of int (m,)
        ``W``, sorted, distinct.
    store : ColumnStore or None
        The columns taken for an earlier working set (sparse ``A``): reused when ``W`` is
        inside them (:data:`STORE_REUSE`), else ``W``'s columns are taken (from them, or from
        ``A``: one sweep) and returned as the new store.
    counts : ndarray of int (d,)
        Non-zeros per column of ``A`` (:func:`column_counts`).

    Sparse ``A`` costs ``O(sum_i nnz_{i,W}^2)`` (the project's row-outer-product Gram of the
    stored columns) plus the sweep that takes them; dense ``A`` copies its columns ``W``
    (``n x m`` in its dtype) for a BLAS Gram.
    """
    A = factors.A
    ones = isinstance(A, InterceptMatrix)
    base = A.base if ones else A
    d = base.d
    cols = np.ascontiguousarray(cols, dtype=np.int64)
    inner = cols[cols < d]
    icpt = bool(inner.size < cols.size)
    D = np.ascontiguousarray(factors.diag, dtype=np.float64)
    read = 0.0
    if base.is_sparse:
        inside = store is not None and np.all(np.isin(inner, store.cols, assume_unique=True))
        if store is None or not inside:
            read += 1.0
            store = ColumnStore.take(base, inner, inner, counts[inner])
        elif counts[inner].sum() < STORE_REUSE * store.matrix.nnz:
            read += store.matrix.nnz / A.nnz
            store = ColumnStore.take(store.matrix, np.searchsorted(store.cols, inner), inner,
                                     counts[inner], in_place=True)
        G = store.matrix.gram(D, ones=icpt)
        read += store.matrix.nnz / A.nnz
        loc = np.searchsorted(store.cols, inner)
        if icpt:
            loc = np.append(loc, store.cols.size)
        G = G[np.ix_(loc, loc)]
    else:
        G = DataMatrix(base.dense[:, inner], "A", check_finite=False).gram(D, ones=icpt)
        read += 1.0
    K, C = factors.K, factors.C
    if K.shape[1]:
        KW = K[cols]
        G += KW @ C @ KW.T
    lam = np.broadcast_to(np.asarray(factors.lam, dtype=np.float64), (A.d,))
    G[np.diag_indices_from(G)] += lam[cols]
    return G, store, read

