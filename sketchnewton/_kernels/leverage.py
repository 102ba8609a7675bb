"""Kernels of the leverage-score pipeline: the CountSketch of ``diag(sqrt(w)) A`` and the
score sweep ``||a_i^T Z||^2``.

Adapted from :mod:`sketchnewton._kernels.sketch` (``countsketch_csr``,
``countsketch_dense``, ``csr_projected_rownorms``) for the sizes the pipeline
meets (a ``4d x d`` sketch of up to 1e8 non-zeros), measured against one
scipy ``A.T @ (A @ x)`` (``python -m benchmarks leverage``):

* the CountSketch's hash comes as one integer per row, ``code = 2 bucket +
  sign bit``, and the row scale as the weight ``w_i`` (its square root taken
  per row): no ``(n,)`` temporaries of buckets, signs and scales;
* offsets into the sketch and into ``Z``, and the loop counters over the
  non-zeros, are unsigned: numba tests a signed index for wraparound at every
  access (two compare-and-moves per non-zero; the CountSketch sweep went
  from 1.2 to 0.75 time-passes on one thread without them);
* the quadratic estimator reads ``K`` flattened, at unsigned offsets (1.5-2x
  ``csr_row_quadforms``);
* the score sweep keeps eight columns of ``a_i^T Z`` in one 8-wide vector
  register (an LLVM vector written out in :func:`_row_times_z8`: numba leaves
  the scalar form unvectorised) and writes one number per row;
* the dense CountSketch sorts the rows by bucket once and adds each bucket's
  rows while its row of the sketch stays in cache, buckets in parallel (no
  private copies of the sketch).

Randomness is drawn in Python and passed in (the codes), as everywhere in
:mod:`sketchnewton._kernels`.
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["countsketch_csr_codes", "bucket_order", "countsketch_dense_sorted", "csr_row_scores",
           "dense_row_scores"]


@njit(cache=True)
def _countsketch_rows(indptr, indices, data, weights, codes, d, lo, hi, B):
    """``B += S diag(sqrt(weights)) A`` over rows ``lo:hi`` (``B`` the flat (s * d) sketch)."""
    ud = np.uint64(d)
    for i in range(lo, hi):
        wi = weights[i]
        if wi == 0.0:
            continue
        code = np.uint64(codes[i])
        a = np.sqrt(wi)
        if code & np.uint64(1):
            a = -a
        base = (code >> np.uint64(1)) * ud
        for p in range(np.uint64(indptr[i]), np.uint64(indptr[i + 1])):
            B[base + np.uint64(indices[p])] += a * data[p]


@njit(parallel=True, cache=True)
def countsketch_csr_codes(indptr, indices, data, weights, codes, d, buffers):
    """``buffers[c] += S diag(sqrt(weights)) A`` over the ``c``-th of ``m`` contiguous row ranges,
    one sweep over ``A`` (``buffers`` (m, s * d): each range's (s, d) sketch in C order; their
    sum is the sketch). ``m = 1`` runs on the calling thread (no parallel region).

    Column ``i`` of the CountSketch ``S`` has its non-zero in row
    ``codes[i] >> 1``, with value ``+1`` (``codes[i]`` even) or ``-1`` (odd).
    Rows with ``weights[i] == 0`` are skipped. ``indices`` should be an
    unsigned view (``DataMatrix.kernel_csr``). The caller allocates the
    buffers with NumPy (its large allocations get huge pages: faulting in a
    few MB of small pages, numba's allocator, took as long as half the
    sweep) and adds them up (a second parallel region cost more than that
    addition on a busy machine).
    """
    n = indptr.shape[0] - 1
    n_chunks = buffers.shape[0]
    if n_chunks == 1:
        _countsketch_rows(indptr, indices, data, weights, codes, d, 0, n, buffers[0])
        return buffers
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        _countsketch_rows(indptr, indices, data, weights, codes, d, c * step,
                          min(n, (c + 1) * step), buffers[c])
    return buffers


@njit(cache=True)
def bucket_order(weights, codes, s):
    """The rows with ``weights[i] > 0`` sorted by bucket ``codes[i] >> 1`` (counting sort).

    Returns ``(starts, order)``: bucket ``b`` holds rows
    ``order[starts[b]:starts[b + 1]]``, in increasing order.
    """
    n = codes.shape[0]
    starts = np.zeros(s + 1, np.int64)
    for i in range(n):
        if weights[i] != 0.0:
            starts[(codes[i] >> 1) + 1] += 1
    for b in range(s):
        starts[b + 1] += starts[b]
    fill = starts[:s].copy()
    order = np.empty(starts[s], np.int64)
    for i in range(n):
        if weights[i] != 0.0:
            b = codes[i] >> 1
            order[fill[b]] = i
            fill[b] += 1
    return starts, order


@njit(inline="always")
def _signed_sqrt(w, code):
    """``+-sqrt(w)``, negative when the sign bit ``code & 1`` is set."""
    a = np.sqrt(w)
    return -a if code & 1 else a


@njit(parallel=True, cache=True)
def countsketch_dense_sorted(M, weights, codes, starts, order, out):
    """``out += S diag(sqrt(weights)) M`` for a dense (n, d) ``M`` and (s, d) ``out`` (allocated
    by the caller: see :func:`countsketch_csr_codes`); ``starts, order`` from
    :func:`bucket_order`.

    Each bucket's row of the sketch is written once, after adding its rows of
    ``M`` while it stays in cache; buckets are split over the threads (no
    private copies of the sketch). ``M``'s rows are read in bucket order, each
    row contiguous, four rows in one loop: the rows come from random places of
    ``M``, and one row at a time kept one stream from memory in flight (85 ms
    against 27 ms for the same rows in order, n = 1e5, d = 1000, one thread;
    four at a time 53 ms; software prefetches of the next rows did not help).
    """
    s = starts.shape[0] - 1
    d = M.shape[1]
    for b in prange(s):
        row = out[b]
        t = starts[b]
        end = starts[b + 1]
        while t + 4 <= end:  # four rows of M at once: four streams from memory in flight
            i0 = order[t]
            i1 = order[t + 1]
            i2 = order[t + 2]
            i3 = order[t + 3]
            a0 = _signed_sqrt(weights[i0], codes[i0])
            a1 = _signed_sqrt(weights[i1], codes[i1])
            a2 = _signed_sqrt(weights[i2], codes[i2])
            a3 = _signed_sqrt(weights[i3], codes[i3])
            for j in range(d):
                row[j] += (a0 * M[i0, j] + a1 * M[i1, j]) + (a2 * M[i2, j] + a3 * M[i3, j])
            t += 4
        for u in range(t, end):
            i = order[u]
            a = _signed_sqrt(weights[i], codes[i])
            for j in range(d):
                row[j] += a * M[i, j]
    return out



@njit(inline="always")
def _cap(h, w):
    """``min(h, 1 / w)`` (``h`` itself when ``w <= 0``)."""
    return 1.0 / w if w * h > 1.0 else h


_VEC8 = ir.VectorType(ir.DoubleType(), 8)
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


@intrinsic
def _row_times_z8(typingctx, data, indices, Zf, start, stop, offset, k):
    """``||sum_{start <= p < stop} data[p] Z[indices[p], t:t + 8]||^2`` (``offset = t``, ``Zf`` the
    (d, k) ``Z`` flattened in C order; the bounds unsigned).

    The eight columns are one LLVM ``<8 x double>`` accumulator: one 64-byte
    load of a row of ``Z``, one vector multiply and one vector add per
    non-zero (AVX-512 here; the backend splits the vector on narrower
    machines). numba does not vectorise the scalar form (its SLP vectoriser
    is off), which issued eight loads and eight multiply-adds per non-zero:
    the score sweep took 1.3-1.5 time-passes against 0.9-1.1 (n = 4e5, 50
    non-zeros a row, one thread). Same rounding as the scalar loop (no fused
    multiply-add, each column summed in order).
    """
    sig = types.float64(data, indices, Zf, types.uint64, types.uint64, types.uint64,
                        types.uint64)

    def codegen(context, builder, signature, args):
        data_v, idx_v, z_v, start_v, stop_v, offset_v, k_v = args
        dptr = context.make_array(signature.args[0])(context, builder, data_v).data
        iptr = context.make_array(signature.args[1])(context, builder, idx_v).data
        zptr = context.make_array(signature.args[2])(context, builder, z_v).data
        acc = cgutils.alloca_once_value(builder, ir.Constant(_VEC8, [0.0] * 8))
        splat = ir.Constant(ir.VectorType(_I32, 8), [0] * 8)
        undef = ir.Constant(_VEC8, ir.Undefined)
        with cgutils.for_range_slice(builder, start_v, stop_v, ir.Constant(_I64, 1),
                                     inc=True) as (p, _):
            a = builder.load(builder.gep(dptr, [p]))
            j = builder.load(builder.gep(iptr, [p]))
            if j.type.width < 64:
                j = builder.zext(j, _I64)
            row = builder.gep(zptr, [builder.add(builder.mul(j, k_v), offset_v)])
            z = builder.load(builder.bitcast(row, _VEC8.as_pointer()), align=8)
            av = builder.shuffle_vector(builder.insert_element(undef, a, ir.Constant(_I32, 0)),
                                        undef, splat)
            builder.store(builder.fadd(builder.load(acc), builder.fmul(av, z)), acc)
        v = builder.load(acc)
        sq = builder.fmul(v, v)
        tot = builder.extract_element(sq, ir.Constant(_I32, 0))
        for t in range(1, 8):
            tot = builder.fadd(tot, builder.extract_element(sq, ir.Constant(_I32, t)))
        return tot

    return sig, codegen


@njit(inline="always")
def _row_projection(data, indices, Zf, start, stop, k):
    """``||a_i^T Z||^2`` for the row ``start:stop``, eight columns at a time
    (:func:`_row_times_z8`)."""
    tot = 0.0
    for t0 in range(0, k, 8):
        tot += _row_times_z8(data, indices, Zf, start, stop, np.uint64(t0), np.uint64(k))
    return tot


@njit(inline="always")
def _row_quadform(data, indices, Kf, start, stop, d):
    """``a_i^T K a_i`` for the row ``start:stop``: ``K[j_p, j_q]`` for ``j_p <= j_q`` only."""
    ud = np.uint64(d)
    tot = 0.0
    for p in range(start, stop):
        jp = np.uint64(indices[p])
        ap = data[p]
        row = jp * ud
        acc = 0.5 * ap * Kf[row + jp]
        for q in range(p + np.uint64(1), stop):
            acc += data[q] * Kf[row + np.uint64(indices[q])]
        tot += ap * acc
    return 2.0 * tot


@njit(parallel=True, cache=True)
def csr_row_scores(indptr, indices, data, Mf, m, quadratic, weights, out):
    """``out[i] = min(h_i, 1 / weights[i])`` for every row, one sweep (the cap: a leverage score
    ``weights[i] h_i`` is at most 1); ``indices`` an unsigned view.

    ``quadratic``: ``h_i = a_i^T K a_i`` with ``Mf`` the symmetric (m, m) ``K``
    flattened in C order, reading only ``K[j_p, j_q]`` with ``j_p <= j_q``
    (column indices sorted within rows): ``nnz_i (nnz_i + 1) / 2`` reads at
    random places of ``K``. Else ``h_i = ||a_i^T Z||^2`` with ``Mf`` the
    (d, m) ``Z`` flattened in C order, ``m`` a multiple of 8 (pad with zero
    columns): ``m nnz_i`` multiply-adds, ``A Z`` never stored.
    """
    n = indptr.shape[0] - 1
    for i in prange(n):
        start = np.uint64(indptr[i])
        stop = np.uint64(indptr[i + 1])
        if quadratic:
            h = _row_quadform(data, indices, Mf, start, stop, m)
        else:
            h = _row_projection(data, indices, Mf, start, stop, m)
        out[i] = _cap(h, weights[i])
    return out


# the dense score sweep reassociates its sums (vectorised over the columns of ``X``) and fuses
# multiply-adds
@njit(inline="always", fastmath={"reassoc", "contract"})
def _rows4_times_z4(X, Zt, i, t):
    """``sum_q (x_r^T z_q)^2`` for the rows ``r = i..i+3`` of ``X`` and the columns ``q = t..t+3``
    of ``Z`` (rows of ``Zt``): sixteen sums over ``X``'s columns in one loop, each element of
    ``X`` and ``Zt`` loaded once for four products."""
    d = X.shape[1]
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0.0
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = 0.0
    for j in range(d):
        x0 = X[i, j]
        x1 = X[i + 1, j]
        x2 = X[i + 2, j]
        x3 = X[i + 3, j]
        z0 = Zt[t, j]
        z1 = Zt[t + 1, j]
        z2 = Zt[t + 2, j]
        z3 = Zt[t + 3, j]
        s00 += x0 * z0
        s01 += x0 * z1
        s02 += x0 * z2
        s03 += x0 * z3
        s10 += x1 * z0
        s11 += x1 * z1
        s12 += x1 * z2
        s13 += x1 * z3
        s20 += x2 * z0
        s21 += x2 * z1
        s22 += x2 * z2
        s23 += x2 * z3
        s30 += x3 * z0
        s31 += x3 * z1
        s32 += x3 * z2
        s33 += x3 * z3
    return (s00 * s00 + s01 * s01 + s02 * s02 + s03 * s03,
            s10 * s10 + s11 * s11 + s12 * s12 + s13 * s13,
            s20 * s20 + s21 * s21 + s22 * s22 + s23 * s23,
            s30 * s30 + s31 * s31 + s32 * s32 + s33 * s33)


@njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
def dense_row_scores(X, Zt, weights, out):
    """``out[i] = min(||x_i^T Z||^2, 1 / weights[i])`` for every row of the C-ordered dense (n, d)
    ``X`` (float32 or float64, read as it is), one sweep; ``Zt`` the (m, d) ``Z^T`` in C order,
    ``m`` a multiple of 4 (pad with zero rows). ``X Z`` is never stored.

    Four rows of ``X`` against four columns of ``Z`` at a time (:func:`_rows4_times_z4`):
    BLAS's ``X @ Z`` with eight columns runs at a third of the memory's speed (it packs ``X``
    into buffers, ``n = 1e5``, ``d = 1000``: 145 ms on one thread against 25 ms for reading
    ``X``); this kernel took 65 ms on one thread, 33 ms on two.
    """
    n = X.shape[0]
    m = Zt.shape[0]
    n4 = n // 4
    for b in prange(n4):
        i = 4 * b
        h0 = h1 = h2 = h3 = 0.0
        for t in range(0, m, 4):
            a0, a1, a2, a3 = _rows4_times_z4(X, Zt, i, t)
            h0 += a0
            h1 += a1
            h2 += a2
            h3 += a3
        out[i] = _cap(h0, weights[i])
        out[i + 1] = _cap(h1, weights[i + 1])
        out[i + 2] = _cap(h2, weights[i + 2])
        out[i + 3] = _cap(h3, weights[i + 3])
    for i in range(4 * n4, n):
        h = 0.0
        for t in range(m):
            acc = 0.0
            for j in range(X.shape[1]):
                acc += X[i, j] * Zt[t, j]
            h += acc * acc
        out[i] = _cap(h, weights[i])
    return out
