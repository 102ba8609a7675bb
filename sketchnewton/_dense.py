"""Products of a dense matrix kept as given: float32 or float64, C- or Fortran-ordered.

:class:`~sketchnewton._matrix.DataMatrix` stores dense input without a copy
(:func:`as_dense`) and calls these functions for its products. Every result
is float64. Two precisions:

``precise=True`` (the default)
    The float64 product. A float64 matrix goes to BLAS (dgemv/dgemm) as it
    is; a float32 matrix is read by cache-sized row blocks, each upcast into a
    small reused float64 buffer (a float32 number is exact in float64) before
    dgemv/dgemm: the answer of a float64 copy of ``A`` with ``O(block)`` extra
    memory. This is what the loss value, the gradient and the line search use.

``precise=False``
    For a float32 matrix, float32 BLAS (sgemv/sgemm/ssyrk) on the matrix as
    it is, the operand cast to float32 and per-block partial results summed in
    float64: about 1e-7 relative error (a Hessian-vector product for conjugate
    gradients, a preconditioner, a sketch). For a float64 matrix the same as
    ``precise=True``.

Memory order: whole-matrix BLAS calls take a C- or Fortran-ordered array as
it is (no copy). Row blocks of a Fortran-ordered matrix are ``d`` short
strided runs, so its upcast products read tall narrow tiles instead (each
column of a tile one long contiguous run), its fused Hessian-vector product
is two sweeps, and its Gram blocks are copied into a Fortran-ordered buffer.
``python -m benchmarks dense_input`` measures every product in both orders.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.linalg.blas import dsyrk, ssyrk

from ._kernels import PARALLEL_MIN_NNZ, blas_threads_for, n_chunks
from ._validation import check_array_values, dense_storage_dtype

__all__ = ["as_dense", "product", "rproduct", "matvec", "rmatvec", "matmat", "rmatmat", "gram",
           "rproduct_rows", "normal_matvec", "weighted_col_sq", "class_blocks", "abs_rmatmat",
           "outer_gram", "over_row_ranges", "row_block_size"]

_ROW_BLOCK_BYTES = 1 << 21  # dense row blocks of ~2 MiB stay in cache between the products on them
#: fewest rows of a block whose product with a wide operand is formed block by block (the
#: GEMMs stay efficient)
_MIN_BLOCK_ROWS = 256


def row_block_size(n_cols, itemsize=8):
    """Rows of a ~2 MiB block of a dense matrix with ``n_cols`` columns of ``itemsize`` bytes."""
    return max(1, _ROW_BLOCK_BYTES // (itemsize * max(n_cols, 1)))


def over_row_ranges(M, chunk, shape=None):
    """``[chunk(lo, hi), ...]`` over contiguous row ranges of the dense ``M`` (or of a matrix of
    ``shape``), one per kernel thread.

    The ranges run in Python threads (NumPy's BLAS calls and copies release the
    GIL; one BLAS thread each inside the solver) when ``M`` is large, else as
    one range.
    """
    n, d = M.shape if shape is None else shape
    n_threads = min(n_chunks(), n) if n * d >= PARALLEL_MIN_NNZ else 1
    if n_threads <= 1:
        return [chunk(0, n)]
    bounds = np.linspace(0, n, n_threads + 1).astype(np.int64)
    with ThreadPoolExecutor(n_threads) as pool:
        return list(pool.map(chunk, bounds[:-1], bounds[1:]))


def as_dense(A, name, check_finite=True):
    """``A`` as the 2-D array a DataMatrix keeps: float32 / float64 (native byte order) C- or
    Fortran-contiguous arrays as given (a view, no copy); other layouts copied in their own
    precision (C order); integer, boolean and other float dtypes converted to float64."""
    arr = np.asarray(A)
    dtype = dense_storage_dtype(arr.dtype, name)
    if arr.dtype != dtype or not (arr.flags.c_contiguous or arr.flags.f_contiguous):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if check_finite and arr.ndim == 2:
        check_array_values(arr, name)
    return arr


def _fortran(M):
    return M.flags.f_contiguous and not M.flags.c_contiguous


def _upcast(M, precise):
    return precise and M.dtype != np.float64


def _fast32(M, precise):
    return not precise and M.dtype == np.float32


def _blocks(M, lo, hi, dtype=None, step=None, rows=None):
    """``(a, b, block)`` over rows ``[lo, hi)`` of ``M``: ``M[a:b]`` itself, or (``dtype``
    given) its copy into one reused buffer of that dtype in ``M``'s memory order. ``rows``: of
    the matrix ``M[rows]``, each block gathered (``M[rows[a:b]]``, a block-sized copy)."""
    d = M.shape[1]
    if step is None:
        step = row_block_size(d, 8 if dtype is None else np.dtype(dtype).itemsize)
    if rows is not None:  # gathered into one reused buffer (no page faults of a new one)
        gather = np.empty((min(step, hi - lo), d), dtype=M.dtype)
        up = None if dtype in (None, M.dtype) else np.empty(gather.shape, dtype=dtype)
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            blk = gather[:b - a]
            if M.flags.c_contiguous:  # np.take would copy a Fortran-ordered M whole first
                np.take(M, rows[a:b], axis=0, out=blk)
            else:
                blk[...] = M[rows[a:b]]
            if up is not None:
                blk = up[:b - a]
                np.copyto(blk, gather[:b - a], casting="same_kind")
            yield a, b, blk
        return
    if dtype is None:
        for a in range(lo, hi, step):
            yield a, min(hi, a + step), M[a:min(hi, a + step)]
        return
    flat = np.empty(min(step, hi - lo) * d, dtype=dtype)
    order = "F" if _fortran(M) else "C"
    for a in range(lo, hi, step):
        b = min(hi, a + step)
        blk = flat[:(b - a) * d].reshape((b - a, d), order=order)
        np.copyto(blk, M[a:b], casting="same_kind")
        yield a, b, blk


#: tiles of a Fortran-ordered matrix: at most this many rows (each column of a tile is one
#: contiguous run of the matrix) and, for products with k > 1 columns, at least this many
#: columns (``max(_F_TILE_MIN_COLS, 3 k)``: the (rows, k) slab of the other operand is then
#: small beside the tile)
_F_TILE_ROWS = 1 << 15
_F_TILE_MIN_COLS = 32


def _tiles(M, lo, hi, row_width=1):
    """``(a, b, j, k, tile)`` covering rows ``[lo, hi)`` of ``M``, each tile ``M[a:b, j:k]``
    copied into one reused float64 buffer of about 2 MiB.

    C order: full-width row blocks (``j, k = 0, d``). Fortran order (full-width
    row blocks would be ``d`` short strided runs): tiles whose columns are long
    contiguous runs. ``row_width`` is the width ``k`` of the (n, k) operand or
    product read or written with each tile: for ``k = 1`` tall narrow tiles
    (32768 x 8: matvec 94 ms, rmatvec 72 ms at n = 1e5, d = 1000, against 79 and
    58 ms in C order); for ``k > 1`` tiles of ``max(32, 3 k)`` columns (k = 10:
    315 / 216 ms for matmat / rmatmat against 406 / 312 ms for 32768 x 8 tiles;
    k = 100: 1176 ms against 1504 ms; C order 208 / 204 and 1052 ms).
    """
    d = M.shape[1]
    if not _fortran(M):
        for a, b, blk in _blocks(M, lo, hi, np.float64):
            yield a, b, 0, d, blk
        return
    if row_width <= 1:
        mb = max(1, min(hi - lo, _F_TILE_ROWS))
        cb = max(1, min(d, _ROW_BLOCK_BYTES // (8 * mb)))
    else:
        cb = min(d, max(_F_TILE_MIN_COLS, 3 * row_width))
        mb = max(1, min(hi - lo, _F_TILE_ROWS, max(256, _ROW_BLOCK_BYTES // (8 * cb))))
    flat = np.empty(mb * cb)
    for a in range(lo, hi, mb):
        b = min(hi, a + mb)
        for j in range(0, d, cb):
            k = min(d, j + cb)
            tile = flat[:(b - a) * (k - j)].reshape((b - a, k - j), order="F")
            np.copyto(tile, M[a:b, j:k], casting="same_kind")
            yield a, b, j, k, tile


def _f32(x):
    return np.asarray(x, dtype=np.float32)


# -- products with a vector or a few columns -----------------------------------------------------
def _width(X):
    return X.shape[1] if X.ndim == 2 else 1


def product(M, X, out, precise=True):
    """``M @ X`` for ``X`` (d,) or (d, k), written to ``out`` (float64, (n,) or (n, k)): one sweep
    (BLAS-3 for many columns: one GEMM per block, not k GEMVs)."""
    if _upcast(M, precise):
        def chunk(lo, hi):
            for a, b, j, k, tile in _tiles(M, lo, hi, _width(X)):
                if j == 0:
                    np.matmul(tile, X[:k], out=out[a:b])
                else:
                    out[a:b] += tile @ X[j:k]

        over_row_ranges(M, chunk)
        return out
    if M.dtype == np.float64:
        with blas_threads_for(M.size):
            return np.matmul(M, X, out=out)
    X32 = _f32(X)

    def fast(lo, hi):  # float32 products of row blocks (views): no float32 (n, k) temporary
        step = max(_MIN_BLOCK_ROWS, row_block_size(_width(X), 4))
        tmp = np.empty((min(step, hi - lo),) + X.shape[1:], dtype=np.float32)
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            out[a:b] = np.matmul(M[a:b], X32, out=tmp[:b - a])

    over_row_ranges(M, fast)
    return out


def rproduct(M, Y, precise=True):
    """``M.T @ Y`` for ``Y`` (n,) or (n, k): float64 (d,) or (d, k), one sweep."""
    if _upcast(M, precise):
        def chunk(lo, hi):
            acc = np.zeros((M.shape[1],) + Y.shape[1:])
            for a, b, j, k, tile in _tiles(M, lo, hi, _width(Y)):
                acc[j:k] += tile.T @ Y[a:b]
            return acc

        return sum(over_row_ranges(M, chunk))
    if M.dtype == np.float64:
        with blas_threads_for(M.size):
            return M.T @ Y
    return _fast_rmatmat(M, _f32(Y))


def matvec(M, x, out, precise=True):
    """``M @ x`` written to ``out`` (float64, shape (n,))."""
    return product(M, x, out, precise)


def rmatvec(M, y, precise=True):
    """``M.T @ y`` (float64, shape (d,))."""
    return rproduct(M, y, precise)


def matmat(M, X, precise=True):
    """``M @ X`` for ``X`` (d, k): float64 (n, k)."""
    return product(M, X, np.empty((M.shape[0], X.shape[1])), precise)


def rmatmat(M, Y, precise=True):
    """``M.T @ Y`` for ``Y`` (n, k): float64 (d, k)."""
    return rproduct(M, Y, precise)


#: rows of the float32 products ``M[a:b].T @ Y[a:b]`` whose results are summed in float64
_FAST_ROWS = 1 << 13


def _fast_rmatmat(M, Y32):
    """``M.T @ Y32`` for float32 ``M`` and ``Y32`` ((n,) or (n, k)): sgemv/sgemm on blocks of
    :data:`_FAST_ROWS` rows (views, no copy), their results summed in float64. Measured at
    n = 1e5, d = 1000 against one sgemv of all rows: as fast (23 vs 43 ms, C order, loaded
    machine) and 3x more accurate (relative error 6e-7 vs 2e-6: float32 sums over 8192 rows
    instead of 1e5)."""
    def chunk(lo, hi):
        acc = np.zeros((M.shape[1],) + Y32.shape[1:])
        for a in range(lo, hi, _FAST_ROWS):
            b = min(hi, a + _FAST_ROWS)
            acc += M[a:b].T @ Y32[a:b]
        return acc

    return sum(over_row_ranges(M, chunk))


def _product_into(blk, w, out, fast, shift=None):
    """``out = blk @ w`` (plus ``shift``, the intercept column's row) in the float64 ``out``:
    written in place, or from float32 BLAS when ``fast``."""
    if fast:
        out[...] = blk @ w
    else:
        np.dot(blk, w, out=out)
    if shift is not None:
        out += shift
    return out


def rproduct_rows(M, rows_of, k, ones, precise=True, X=None, rows=None):
    """``[M, 1]^T Y`` (``1`` only when ``ones``) for an (n, k) ``Y`` that is never formed whole:
    ``rows_of(a, b, out)`` writes ``Y[a:b]`` into ``out`` (float64 (b - a, k), a reused buffer)
    and returns it, once per block of rows. Float64 (d, k) or (d + 1, k), one sweep.

    The transposed product of the multinomial loss's per-row weights (gradient,
    Hessian-vector product) without an ``n x k`` temporary: memory ``O(block (d + k))``
    per thread. ``rows_of`` runs in the product's threads on disjoint rows (it
    must release the GIL or be cheap). Precision as :func:`rproduct`.
    ``X`` ((d, r), or (d + 1, r) with ``ones``): ``rows_of(a, b, out, AX)`` also receives the
    rows ``a:b`` of ``[M, 1] X`` (float64 (b - a, r)), made from the same block of ``M`` (a
    fused product: each block read once for both); ``k = 0`` with ``X``: only those blocks
    are wanted (a forward sweep by blocks, the result empty). ``rows``: the product of
    ``M[rows]`` (row blocks gathered, no copy of those rows).
    """
    n, d = M.shape if rows is None else (len(rows), M.shape[1])
    fast, up = _fast32(M, precise), _upcast(M, precise)
    step = max(_MIN_BLOCK_ROWS, min(row_block_size(d, 8 if up else M.dtype.itemsize),
                                    row_block_size(max(k, 0 if X is None else X.shape[1]))))
    Xd = None if X is None else (_f32(X[:d]) if fast else np.ascontiguousarray(X[:d]))

    def chunk(lo, hi):
        acc, col = np.zeros((d, k)), np.zeros(k)
        if hi <= lo:
            return acc, col
        ybuf = np.empty((min(step, hi - lo), k))
        y32 = np.empty((min(step, hi - lo), k), dtype=np.float32) if fast else None
        tmp = np.empty((d, k), dtype=np.float32 if fast else np.float64)
        xbuf = None if X is None else np.empty((min(step, hi - lo), X.shape[1]))
        for a, b, blk in _blocks(M, lo, hi, np.float64 if up else None, step, rows):
            if X is None:
                yb = rows_of(a, b, ybuf[:b - a])
            else:
                xb = _product_into(blk, Xd, xbuf[:b - a], fast, X[d] if ones else None)
                yb = rows_of(a, b, ybuf[:b - a], xb)
            if k == 0:
                continue
            if ones:
                col += yb.sum(axis=0)
            if fast:
                np.copyto(y32[:b - a], yb, casting="same_kind")
                yb = y32[:b - a]
            np.matmul(blk.T, yb, out=tmp)
            acc += tmp
        return acc, col

    parts = over_row_ranges(M, chunk, (n, d))
    acc = sum(p[0] for p in parts)
    return np.vstack([acc, sum(p[1] for p in parts)[None, :]]) if ones else acc


def normal_matvec(M, h, v, ones, z, precise=True):
    """``[M, 1]^T (h * ([M, 1] v))`` by cache-sized row blocks; ``[M, 1] v`` written to ``z``.

    C order: each block is read once for both products. Blocks are split over
    the kernel threads (:func:`over_row_ranges`): 0.082 s on one thread, 0.045 s
    on two at n = 1e6, d = 100 (float64). Fortran order: two sweeps,
    :func:`matvec` then :func:`rmatvec` (row blocks of a Fortran array are
    strided: fused, 337 ms float64 and 308 ms float32 against 231 and 266 ms for
    two sweeps at n = 1e5, d = 1000; bands of rows read twice from cache, 411
    and 406 ms).
    """
    n, d = M.shape
    e = d + 1 if ones else d
    if _fortran(M):
        matvec(M, v[:d], z, precise)
        if ones:
            z += v[d]
        t = h * z
        out = rmatvec(M, t, precise)
        return np.append(out, t.sum()) if ones else out
    fast = _fast32(M, precise)
    w = _f32(v[:d]) if fast else v[:d]
    buf = np.float64 if _upcast(M, precise) else None
    step = row_block_size(d, M.dtype.itemsize if buf is None else 8)

    def chunk(lo, hi):
        out = np.zeros(e)
        for a, b, blk in _blocks(M, lo, hi, buf, step):
            zb = _product_into(blk, w, z[a:b], fast, v[d] if ones else None)
            t = h[a:b] * zb
            out[:d] += (t.astype(np.float32) if fast else t) @ blk
            if ones:
                out[d] += t.sum()
        return out

    return sum(over_row_ranges(M, chunk))


# -- Grams and diagonals -------------------------------------------------------------------------
def gram(M, weights, ones, rows=None, precise=True, tail=None):
    """``[M_R, 1]^T diag(weights) [M_R, 1]`` (``1`` only when ``ones``, ``tail`` (one value per
    row) in its place when given; ``M_R`` the rows ``rows``, all when None) by blocks of rows,
    gathered into one reused buffer (the rows are never copied whole).

    Non-negative weights: SYRK on ``sqrt(w) [M, 1]`` (half the flops of a
    GEMM), upper triangle mirrored at the end; ssyrk on float32 blocks for
    ``precise=False`` and float32 ``M`` (block sums in float64). Blocks are
    split over the kernel threads (one BLAS thread each).
    """
    d = M.shape[1]
    n = M.shape[0] if rows is None else rows.shape[0]
    e = d + 1 if ones else d
    nonneg = n == 0 or float(weights.min()) >= 0.0
    fast = _fast32(M, precise)
    dtype = np.float32 if fast else np.float64
    root = np.sqrt(weights).astype(dtype, copy=False) if nonneg else None
    step = row_block_size(e, np.dtype(dtype).itemsize)
    fortran = _fortran(M) and rows is None

    def chunk(lo, hi):
        flat = np.empty(min(step, hi - lo) * e, dtype=dtype)
        C = np.zeros((e, e), order="F")
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            blk = flat[:(b - a) * e].reshape((b - a, e), order="F" if fortran else "C")
            src = M[a:b] if rows is None else M[rows[a:b]]
            if nonneg:
                np.multiply(src, root[a:b, None], out=blk[:, :d], casting="same_kind")
                if ones:
                    blk[:, d] = root[a:b] if tail is None else root[a:b] * tail[a:b]
                a_op, trans = (blk, 1) if fortran else (blk.T, 0)
                if fast:  # a float32 block's Gram, summed in float64
                    C += ssyrk(1.0, a_op, trans=trans, lower=0)
                else:
                    C = dsyrk(1.0, a_op, beta=1.0, c=C, trans=trans, lower=0, overwrite_c=1)
            else:
                np.copyto(blk[:, :d], src, casting="same_kind")
                if ones:
                    blk[:, d] = 1.0 if tail is None else tail[a:b]
                C += blk.T @ (blk * weights[a:b, None].astype(dtype, copy=False))
        return C

    G = np.ascontiguousarray(sum(over_row_ranges(M, chunk, shape=(n, d))))
    if nonneg:
        lower = np.tril_indices(e, -1)
        G[lower] = G.T[lower]
    return G


def weighted_col_sq(M, w, ones):
    """``sum_i w_i M_ij^2`` per column (float64; ``ones``: and ``sum_i w_i``): one sweep of
    squared row blocks in a float64 buffer."""
    def chunk(lo, hi):
        acc = np.zeros(M.shape[1])
        for a, b, j, k, tile in _tiles(M, lo, hi):
            np.square(tile, out=tile)
            acc[j:k] += w[a:b] @ tile
        return acc

    out = sum(over_row_ranges(M, chunk))
    return np.append(out, w.sum()) if ones else out


#: bytes of the per-row outer-product weights :func:`class_blocks` forms at once
_CLASS_WEIGHT_BYTES = 1 << 23


def class_blocks(M, P, sw, ones):
    """``sum_i M_ij^2 sw_i (diag(p_i) - p_i p_i^T)`` per column, (d, K, K) (``ones``: and the
    intercept's block last): one sweep, two GEMMs per block of squared rows."""
    d, K = M.shape[1], P.shape[1]
    # the outer-product weights of at most `sub` rows at once (K^2 numbers a row: a row block
    # of the matrix would make them ~1 GB at K = 200)
    sub = max(16, _CLASS_WEIGHT_BYTES // (8 * K * K))

    def chunk(lo, hi):
        diag, outer = np.zeros((d, K)), np.zeros((d, K * K))
        for a, b, j, k, tile in _tiles(M, lo, hi, 2 * K * (K + 1)):
            np.square(tile, out=tile)
            for a2 in range(a, b, sub):
                b2 = min(b, a2 + sub)
                Pw = P[a2:b2] * sw[a2:b2, None]
                rows = tile[a2 - a:b2 - a]
                diag[j:k] += rows.T @ Pw
                outer[j:k] += rows.T @ (Pw[:, :, None] * P[a2:b2, None, :]).reshape(-1, K * K)
        return diag, outer

    parts = over_row_ranges(M, chunk)
    diag = sum(p[0] for p in parts)
    blocks = -sum(p[1] for p in parts).reshape(d, K, K)
    blocks[:, np.arange(K), np.arange(K)] += diag
    if ones:
        last = np.diag(P.T @ sw) - (P * sw[:, None]).T @ P
        blocks = np.concatenate([blocks, last[None]])
    return blocks


def abs_rmatmat(M, Y2):
    """``|M|^T Y2`` for ``Y2`` (n, k), float64 (d, k): blocks of ``|M|`` in a float64 buffer."""
    def chunk(lo, hi):
        acc = np.zeros((M.shape[1], Y2.shape[1]))
        for a, b, j, k, tile in _tiles(M, lo, hi, Y2.shape[1]):
            np.abs(tile, out=tile)
            acc[j:k] += tile.T @ Y2[a:b]
        return acc

    return sum(over_row_ranges(M, chunk))


def outer_gram(M, precise=True):
    """``M M^T`` (n, n) float64 (the dual Newton system; moderate n only). A float32 ``M`` is
    upcast by blocks of columns (a float64 ``n x c`` buffer, ``c >= 256``) for dsyrk."""
    if not _upcast(M, precise):
        with blas_threads_for(M.size):
            G = M @ M.T
        return G.astype(np.float64, copy=False)
    n, d = M.shape
    c = min(d, max(256, _ROW_BLOCK_BYTES // (8 * n)))
    buf = np.empty((n, c), order="F")
    G = np.zeros((n, n), order="F")
    with blas_threads_for(M.size):
        for j in range(0, d, c):
            k = min(d, j + c) - j
            blk = buf[:, :k]
            np.copyto(blk, M[:, j:j + k], casting="same_kind")
            G = dsyrk(1.0, blk, beta=1.0, c=G, trans=0, lower=0, overwrite_c=1)
    G = np.ascontiguousarray(G)
    lower = np.tril_indices(n, -1)
    G[lower] = G.T[lower]
    return G
