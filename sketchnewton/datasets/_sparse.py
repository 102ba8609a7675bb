"""Random sparse matrices with a fixed number of distinct columns per row (:func:`make_sparse_matrix`).

Also the argument checks shared with the planted-problem generators of
:mod:`sketchnewton.datasets._planted` (:func:`_resolve_nnz_per_row`,
:func:`_column_scales`) and :func:`_make_sparse`, the generator they draw
their matrices from with their own random generator.
"""

import math
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from .._kernels.random import sample_distinct_columns
from .._validation import check_int, check_random_state, check_real
from ..exceptions import InputError

__all__ = ["SparseMatrixInfo", "make_sparse_matrix"]

# Uniforms for the column sampler are drawn in blocks of about this many
# entries, so peak extra memory stays ~32 MB whatever n is. The block size
# depends only on the arguments, so the output does not depend on it.
_BLOCK_ENTRIES = 1 << 22

# Norm factor of the heavy rows per unit of ``coherence``.
_HEAVY_FACTOR = 1e3

_DEFAULT_NNZ_PER_ROW = 10


# ----------------------------------------------------------------------------
# argument checking
# ----------------------------------------------------------------------------

def _resolve_nnz_per_row(nnz_per_row, density, d, *, default):
    """Number of non-zeros per row from ``nnz_per_row`` or ``density``."""
    if nnz_per_row is not None and density is not None:
        raise InputError("give at most one of nnz_per_row and density, not both")
    if density is not None:
        density = check_real(density, "density", positive=True)
        if density > 1:
            raise InputError(f"density must be in (0, 1], got {density}")
        return max(1, int(math.floor(density * d + 0.5)))
    if nnz_per_row is None:
        return min(default, d)
    k = check_int(nnz_per_row, "nnz_per_row", minimum=1)
    if k > d:
        raise InputError(f"nnz_per_row={k} exceeds the number of columns d={d}")
    return k


def _column_scales(column_scale, d, rng):
    """``None`` or an array of ``d`` scales: a random permutation of ``geomspace(lo, hi, d)``."""
    if column_scale is None:
        return None
    if (isinstance(column_scale, (str, bytes)) or np.ndim(column_scale) != 1
            or len(column_scale) != 2):
        raise InputError(f"column_scale must be None or a (lo, hi) pair, got {column_scale!r}")
    lo = check_real(column_scale[0], "column_scale[0]", positive=True)
    hi = check_real(column_scale[1], "column_scale[1]", positive=True)
    if lo > hi:
        raise InputError(f"column_scale=(lo, hi) needs lo <= hi, got ({lo}, {hi})")
    scales = np.geomspace(lo, hi, d) if d > 1 else np.array([math.sqrt(lo * hi)])
    return scales[rng.permutation(d)]


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


# ----------------------------------------------------------------------------
# sparse matrices
# ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SparseMatrixInfo:
    """How a matrix from :func:`make_sparse_matrix` was built.

    The matrix is ``A = A0 @ diag(column_scale)``, where the rows of ``A0``
    are standard normal on their support, except the heavy rows.

    Attributes
    ----------
    nnz_per_row : int
        Non-zeros in every row.
    column_scale : ndarray of shape (d,)
        Column scales (all ones when ``column_scale=None``).
    heavy_rows : ndarray of shape (n_heavy,), int64
        Indices of the heavy rows, increasing (empty without coherence).
    heavy_columns : ndarray of shape (n_heavy,), int64
        ``heavy_columns[h]`` is the private column of ``heavy_rows[h]``: no
        other row has a non-zero in it.
    heavy_norm : float
        Euclidean norm of every heavy row of ``A0``
        (``1e3 * coherence * sqrt(nnz_per_row)``; 0 without coherence).
    """

    nnz_per_row: int
    column_scale: np.ndarray
    heavy_rows: np.ndarray
    heavy_columns: np.ndarray
    heavy_norm: float

    @property
    def n_heavy(self):
        return int(self.heavy_rows.shape[0])


def _n_blocks(n_rows):
    return max(1, min(n_rows, 4 * numba.get_num_threads()))


def make_sparse_matrix(n, d, *, nnz_per_row=None, density=None, coherence=0.0,
                       n_heavy=None, column_scale=None, dtype=np.float64,
                       random_state=None, return_info=False):
    """Random sparse matrix with a fixed number of distinct columns per row.

    Every row has exactly ``k`` non-zeros in distinct columns drawn uniformly
    at random (``k = nnz_per_row``, or ``round(density * d)`` but at least 1);
    column indices are sorted within each row and unique. Values are standard
    normal, multiplied by the column scales when ``column_scale`` is given.

    **Coherence.** With ``coherence > 0`` the matrix gets ``n_heavy`` heavy
    rows, built as follows:

    1. ``n_heavy`` distinct *private* columns are drawn uniformly from
       ``range(d)``; the other ``d - n_heavy`` columns are *public*.
    2. ``n_heavy`` distinct heavy rows are drawn uniformly from ``range(n)``.
    3. Ordinary rows draw their ``k`` columns from the public columns only.
    4. Heavy row ``h`` has ``k - 1`` uniformly drawn public columns plus its
       own private column, which no other row touches. Its values are a
       standard normal vector normalised to norm exactly
       ``heavy_norm = 1e3 * coherence * sqrt(k)`` (``sqrt(k)`` is the
       root-mean-square norm of an ordinary row), then multiplied by the
       column scales like every other row.

    Each heavy row is then the only row in its private column, so its
    leverage score is exactly 1 (every spectral approximation of ``A^T A``
    must keep it), while uniform sampling of ``s`` rows picks it with
    probability only about ``s / n``. Its large norm also makes it dominate
    row-norm sampling. ``coherence`` only controls the norm: leverage is 1 for
    any ``coherence > 0``.

    Parameters
    ----------
    n, d : int
        Shape of the matrix, ``n, d >= 1``. Integral floats such as ``1e6``
        are accepted.
    nnz_per_row : int, optional
        Non-zeros per row, ``1 <= nnz_per_row <= d`` (``<= d - n_heavy`` with
        coherence). Default ``min(10, d)`` unless ``density`` is given.
    density : float in (0, 1], optional
        Alternative to ``nnz_per_row``: ``nnz_per_row = max(1, round(density * d))``.
    coherence : float >= 0, default 0
        0 means no heavy rows; otherwise heavy rows of norm
        ``1e3 * coherence * sqrt(nnz_per_row)`` (see above).
    n_heavy : int, optional
        Number of heavy rows when ``coherence > 0``; default
        ``min(10, max(1, d // 10), d - nnz_per_row, n)``. Must be left unset
        (or 0) when ``coherence == 0``.
    column_scale : (lo, hi) pair of positive floats, optional
        Scale column ``j`` by ``s_j``, where ``s`` is a random permutation of
        ``numpy.geomspace(lo, hi, d)``: log-uniformly spread over
        ``[lo, hi]`` with both ends attained, so the scaling alone has
        condition number exactly ``hi / lo``. E.g. ``(1e-2, 1e2)``.
    dtype : float32 or float64, default float64
        dtype of the values.
    random_state : None, int or numpy.random.Generator
    return_info : bool, default False
        Also return a :class:`SparseMatrixInfo` (heavy rows, private
        columns, column scales).

    Returns
    -------
    A : scipy.sparse.csr_matrix of shape (n, d)
        Sorted, unique indices (``has_canonical_format`` is set),
        ``nnz = n * nnz_per_row``. Indices and indptr are int32 when
        ``nnz < 2**31`` and int64 otherwise (scipy requires one index dtype
        for both arrays).
    info : SparseMatrixInfo
        Only if ``return_info=True``.

    Notes
    -----
    Columns are sampled with Floyd's algorithm in a numba kernel from
    uniforms drawn in Python, in blocks whose size depends only on the
    arguments: the result depends on the seed alone, not on the thread
    count. Memory is ``nnz * (itemsize + 4)`` bytes plus ``4 (n + 1)`` for
    indptr, plus a 32 MB scratch block. Cost is about 30 ns per non-zero
    on this 2-core machine (3 s for 1e8 non-zeros), dominated by numpy's
    single-threaded normal generator; the column kernel is ~10 ns per
    non-zero.
    """
    A, info = _make_sparse(n, d, nnz_per_row=nnz_per_row, density=density,
                           coherence=coherence, n_heavy=n_heavy,
                           column_scale=column_scale, dtype=dtype,
                           rng=check_random_state(random_state))
    return (A, info) if return_info else A


def _make_sparse(n, d, *, nnz_per_row, density, coherence, n_heavy, column_scale,
                 dtype, rng, default_nnz=_DEFAULT_NNZ_PER_ROW):
    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=1)
    k = _resolve_nnz_per_row(nnz_per_row, density, d, default=default_nnz)
    coherence = check_real(coherence, "coherence", nonnegative=True)
    dtype = _check_dtype(dtype)

    if coherence == 0:
        if n_heavy is not None and check_int(n_heavy, "n_heavy", minimum=0) > 0:
            raise InputError(
                "n_heavy > 0 requires coherence > 0 (coherence=0 means no heavy rows)")
        n_heavy = 0
    else:
        if d - k < 1:
            raise InputError(
                f"coherence > 0 needs at least one column besides the nnz_per_row={k} "
                f"columns of a row (private column per heavy row), but d={d}")
        if n_heavy is None:
            n_heavy = min(10, max(1, d // 10), d - k, n)
        else:
            n_heavy = check_int(n_heavy, "n_heavy", minimum=1)
            if n_heavy > n:
                raise InputError(f"n_heavy={n_heavy} exceeds the number of rows n={n}")
            if n_heavy > d - k:
                raise InputError(
                    f"n_heavy={n_heavy} private columns leave d - n_heavy = {d - n_heavy} "
                    f"public columns, fewer than nnz_per_row={k}; "
                    f"need n_heavy <= d - nnz_per_row = {d - k}")

    nnz = n * k
    idx_dtype = np.int32 if nnz < 2**31 and d < 2**31 else np.int64

    # All randomness in a fixed order: scales, private columns, values,
    # column uniforms (in blocks), heavy rows.
    scales = _column_scales(column_scale, d, rng)
    if n_heavy:
        private = np.sort(rng.choice(d, size=n_heavy, replace=False)).astype(np.int64)
        public_mask = np.ones(d, dtype=bool)
        public_mask[private] = False
        colmap = np.flatnonzero(public_mask).astype(idx_dtype)
    else:
        private = np.empty(0, dtype=np.int64)
        colmap = np.arange(d, dtype=idx_dtype)
    m = colmap.shape[0]

    data = rng.standard_normal(nnz, dtype=dtype)
    indices = np.empty(nnz, dtype=idx_dtype)
    scale_arg = None if scales is None else scales.astype(dtype)
    rows_per_block = max(1, _BLOCK_ENTRIES // k)
    u_buf = np.empty(min(n, rows_per_block) * k)  # reused: no page faults per block
    for r0 in range(0, n, rows_per_block):
        r1 = min(n, r0 + rows_per_block)
        u = rng.random(out=u_buf[:(r1 - r0) * k])
        block = slice(r0 * k, r1 * k)
        sample_distinct_columns(u, k, m, colmap, indices[block], _n_blocks(r1 - r0))
        if scale_arg is not None:
            data[block] *= scale_arg[indices[block]]
    del u_buf, u

    heavy_norm = 0.0
    if n_heavy:
        heavy_norm = _HEAVY_FACTOR * coherence * math.sqrt(k)
        heavy_rows = np.sort(rng.choice(n, size=n_heavy, replace=False)).astype(np.int64)
        # Pair private columns with heavy rows at random.
        heavy_cols = private[rng.permutation(n_heavy)]
        g = rng.standard_normal((n_heavy, k))
        g *= heavy_norm / np.linalg.norm(g, axis=1, keepdims=True)
        for h in range(n_heavy):
            cols = np.empty(k, dtype=np.int64)
            cols[:k - 1] = colmap[rng.choice(m, size=k - 1, replace=False)]
            cols[k - 1] = heavy_cols[h]
            cols.sort()
            vals = g[h] if scales is None else g[h] * scales[cols]
            start = heavy_rows[h] * k
            indices[start:start + k] = cols
            data[start:start + k] = vals
    else:
        heavy_rows = np.empty(0, dtype=np.int64)
        heavy_cols = np.empty(0, dtype=np.int64)

    indptr = np.arange(0, nnz + 1, k, dtype=idx_dtype) if n else np.zeros(1, idx_dtype)
    A = sp.csr_matrix((data, indices, indptr), shape=(n, d), copy=False)
    A.has_sorted_indices = True
    A.has_canonical_format = True
    info = SparseMatrixInfo(
        nnz_per_row=k,
        column_scale=np.ones(d) if scales is None else scales,
        heavy_rows=heavy_rows,
        heavy_columns=heavy_cols,
        heavy_norm=heavy_norm,
    )
    return A, info
