"""Numba kernels: every loop over the data lives in this package.

Kernels are small and pure: they take arrays (CSR as ``indptr, indices,
data``), write into preallocated outputs where that saves a copy, and never
draw random numbers (randomness is drawn in Python and passed in).
"""

import functools
import threading
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

#: below this many non-zeros a parallel region costs more than it saves
#: (waking the worker threads costs ~10 us idle and milliseconds on a busy
#: machine), so kernels run on one thread.
PARALLEL_MIN_NNZ = 200_000
_MAX_THREADS = numba.config.NUMBA_NUM_THREADS
# numba's workqueue threading layer (which a user may choose) must not run
# two parallel kernels at once: Python threads take turns
_LAUNCH_LOCK = threading.RLock()


@contextmanager
def kernel_threads(nnz, limit=None):
    """Run the enclosed kernels on one thread when ``nnz`` is small, else on all (at most
    ``limit``: a Dask worker's share of the cores).

    Also serialises kernel launches across Python threads (see ``_LAUNCH_LOCK``).
    """
    with _LAUNCH_LOCK:
        previous = numba.get_num_threads()
        wanted = threads_for(nnz, limit)
        if wanted == previous:
            yield
            return
        numba.set_num_threads(wanted)
        try:
            yield
        finally:
            numba.set_num_threads(previous)


def threads_for(nnz, limit=None):
    """The thread count :func:`kernel_threads` gives the kernels of a matrix of ``nnz``
    non-zeros."""
    wanted = 1 if nnz < PARALLEL_MIN_NNZ else _MAX_THREADS
    return wanted if limit is None else max(1, min(wanted, int(limit)))


def n_chunks():
    """Number of row chunks a parallel kernel splits its reductions into (its thread count)."""
    return max(1, numba.get_num_threads())


# -- the chunked reduction, written once ----------------------------------------------------
#
# A transposed product ``out = sum_i a_i t_i^T`` (``A.T @ Y``, the fused Hessian-vector
# products, weighted column squares, class blocks, CountSketch, Gram) splits its rows among
# the threads. Either each thread accumulates into a private buffer of the output's size and
# the buffers are summed (:func:`sum_chunks`), or, when those buffers would be large against
# the work (p = 1e6 features and ~9e6 non-zeros: 8 MB per thread, zeroed, page-faulted and
# summed on every sweep), the threads split the *columns*: each reads every row's part in its
# column range and writes its own slice of one output. The parts' row boundaries are found
# first (binary searches in the sorted rows, :func:`_column_cuts`): a search loop inside the
# scatter loop made numba's scatter 1.6x slower (measured). :func:`scatter_plan` chooses; a
# kernel loops over the plan's parts, each row's range given by :func:`part_cuts`.

#: a thread gets a private buffer of the output's size only while the buffers beyond the
#: first hold at most ``1 / BUFFER_RATIO`` of the work (non-zeros x output columns)
BUFFER_RATIO = 16
#: sums of chunk buffers at least this long run on every thread
_PARALLEL_SUM_MIN = 1 << 16


@njit(cache=True, inline="always")
def nonzeros(start, stop):
    """``range(start, stop)`` over the positions of non-zeros, unsigned.

    ``for p in nonzeros(indptr[i], indptr[i + 1])``: with a signed ``p`` numba tests every
    ``data[p]`` and ``indices[p]`` for a negative (wraparound) index; unsigned, ``A.T @ y``
    took 10.7 ms instead of 16.8 ms and ``A @ x`` 11.1 ms instead of 16.1 ms (n = 4e5,
    d = 500, 50 non-zeros a row, one thread; scipy: 12.3 ms and 11.6 ms).
    """
    return range(np.uint64(start), np.uint64(stop))


@njit(cache=True, inline="always")
def chunk_range(c, n, n_chunks):
    """``[lo, hi)``: chunk ``c`` of ``range(n)`` split into ``n_chunks`` contiguous chunks."""
    step = (n + n_chunks - 1) // n_chunks
    lo = min(n, c * step)
    return lo, min(n, lo + step)


@njit(cache=True)
def buffer_count(n_chunks, size, work, ratio):
    """``n_chunks`` private buffers of ``size`` entries if they are small against ``work``, else 1."""
    if n_chunks > 1 and (n_chunks - 1) * size * ratio <= work:
        return n_chunks
    return 1


@njit(cache=True)
def _column_bounds(indices, d, n_parts):
    """Column boundaries that split the non-zeros into ``n_parts`` near-equal shares.

    From a sample of at most ~16k column indices (every ``nnz / 16384``-th) counted in 4096
    bins of columns: balanced for any column order (a vocabulary sorted by frequency too).
    """
    nnz = indices.shape[0]
    stride = max(1, nnz // 16384)
    n_bins = max(1, min(4096, d))
    width = (d + n_bins - 1) // n_bins
    hist = np.zeros(n_bins, np.int64)
    total = 0
    for p in range(0, nnz, stride):
        hist[indices[p] // width] += 1
        total += 1
    bounds = np.empty(n_parts + 1, np.int64)
    bounds[0] = 0
    t = 1
    acc = 0
    for b in range(n_bins):
        acc += hist[b]
        while t < n_parts and acc * n_parts >= t * total:
            bounds[t] = min(d, (b + 1) * width)
            t += 1
    while t <= n_parts:
        bounds[t] = d
        t += 1
    return bounds


@njit(cache=True, inline="always")
def _lower_bound(indices, lo, hi, j):
    """First position in ``indices[lo:hi]`` (sorted) holding a column ``>= j``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if indices[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(parallel=True, cache=True)
def _column_cuts(indptr, indices, rows, bounds):
    """Flat ``(P + 1) * m`` array: entry ``t * m + r`` is the first position of row ``rows[r]``
    (row ``r`` when ``rows`` is empty) holding a column ``>= bounds[t]`` (``P`` parts)."""
    P = bounds.shape[0] - 1
    m = rows.shape[0] if rows.shape[0] > 0 else indptr.shape[0] - 1
    cuts = np.empty((P + 1) * m, indptr.dtype)
    for q in prange(m):
        r = np.int64(q)  # a parfor index may be unsigned: int64 + uint64 is a float in numba
        i = rows[r] if rows.shape[0] > 0 else r
        start = indptr[i]
        stop = indptr[i + 1]
        cuts[r] = start
        for t in range(1, P):
            start = _lower_bound(indices, start, stop, bounds[t])
            cuts[t * m + r] = start
        cuts[P * m + r] = stop
    return cuts


@njit(cache=True)
def scatter_plan(indptr, indices, rows, d, e, size, work, n_chunks, ratio):
    """How a transposed product over CSR rows splits among ``n_chunks`` threads.

    The rows are ``rows`` of ``A`` (``indptr, indices``; all rows when ``rows`` is empty);
    ``d`` columns of ``A``; ``e`` columns of the output (``d + 1`` with an intercept column:
    the last part owns it); ``size`` entries of one output buffer; ``work`` the entries
    updated (non-zeros x output width). Returns ``(n_buffers, plan, cuts)``: ``plan[c] =
    [row_lo, row_hi, col_lo, col_hi]`` for each part ``c`` (one per thread), which
    accumulates its rows ``row_lo:row_hi`` restricted to columns ``col_lo:col_hi`` into its
    buffer (index :func:`part_buffer`); :func:`part_cuts` reads the rows' ranges.

    * buffered (``n_buffers == n_chunks``): contiguous row chunks, every column;
    * column split (``n_buffers == 1``, more than one part): every row, disjoint column
      ranges, one shared output; ``cuts`` holds the parts' row boundaries (an integer per
      row and part, less memory than the buffers it replaces: else one part, one thread).
    """
    m = rows.shape[0] if rows.shape[0] > 0 else indptr.shape[0] - 1
    nb = buffer_count(n_chunks, size, work, ratio)
    parts = nb
    if nb == 1 and (n_chunks + 1) * m * indptr.itemsize <= (n_chunks - 1) * size * 8:
        parts = n_chunks
    plan = np.empty((parts, 4), np.int64)
    if parts == nb:
        for c in range(parts):
            lo, hi = chunk_range(c, m, parts)
            plan[c, 0] = lo
            plan[c, 1] = hi
            plan[c, 2] = 0
            plan[c, 3] = e
        return nb, plan, np.empty(0, indptr.dtype)
    bounds = _column_bounds(indices, d, parts)
    cuts = _column_cuts(indptr, indices, rows, bounds)
    bounds[parts] = e
    for c in range(parts):
        plan[c, 0] = 0
        plan[c, 1] = m
        plan[c, 2] = bounds[c]
        plan[c, 3] = bounds[c + 1]
    return nb, plan, cuts


@njit(cache=True)
def csr_plan(indptr, indices, d, e, n_chunks, ratio):
    """:func:`scatter_plan` of a sweep over every row of a CSR matrix, ``e`` output rows
    (``d`` or ``d + 1``) of any width: buffers of ``e`` rows against ``nnz`` updates."""
    return scatter_plan(indptr, indices, np.empty(0, np.int64), d, e, e, indices.shape[0],
                        n_chunks, ratio)


@njit(cache=True, inline="always")
def part_cuts(plan, cuts, c):
    """``(lo, hi)``: in a column split, part ``c``'s non-zeros of its ``r``-th row are
    ``cuts[lo + r]:cuts[hi + r]`` (``r`` the row of ``A``, or the position in ``rows``).

    Kernels loop over whole rows (no cuts) as ``indptr[i]:indptr[i + 1]``, in a loop of
    their own: read through offsets, numba's scatter loop ran at half the speed (measured).
    """
    m = cuts.shape[0] // (plan.shape[0] + 1)
    return np.int64(c) * m, (np.int64(c) + 1) * m


@njit(cache=True, inline="always")
def owns(plan, c, j):
    """Whether part ``c`` of a plan writes output column ``j``."""
    return plan[c, 2] <= j < plan[c, 3]


@njit(cache=True, inline="always")
def part_buffer(buf, c):
    """Index ``b`` into ``buf`` of the buffer that part ``c`` of a plan accumulates into: its
    own, or the one shared output (kernels index ``buf[b, j, t]``, no views of ``buf``)."""
    return np.int64(0) if buf.shape[0] == 1 else np.int64(c)


@njit(parallel=True, cache=True)
def sum_chunks(buf):
    """``buf.sum(axis=0)`` for the chunk buffers ``buf`` of shape (n_buffers, ...).

    One buffer is returned as it is (a view); long buffers are summed on every thread.
    """
    nb = buf.shape[0]
    if nb == 1:
        return buf[0]
    flat = buf.reshape((nb, -1))
    m = flat.shape[1]
    out = np.empty(m)
    if m >= _PARALLEL_SUM_MIN:
        for j in prange(m):
            s = flat[0, j]
            for c in range(1, nb):
                s += flat[c, j]
            out[j] = s
    else:
        for j in range(m):
            s = flat[0, j]
            for c in range(1, nb):
                s += flat[c, j]
            out[j] = s
    return out.reshape(buf.shape[1:])


_CONTROLLER = []


def _blas_controller():
    """The process's threadpoolctl controller, made on first use (inspecting the libraries is slow)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


@contextmanager
def single_threaded_blas():
    """Run the enclosed BLAS/LAPACK calls on one thread.

    The solver's dense linear algebra is small (QR of an O(d) x d sketch,
    d x d Cholesky and eigh). Multi-threaded OpenBLAS synchronises its
    threads per column in these; on a 2-core machine with any other load
    that made a pivoted QR of 800 x 200 take 2.3 s instead of 20 ms
    (measured). One thread is as fast when the machine is idle.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


#: dense products with at least this many entries of ``A`` run BLAS on every core
#: (inside :func:`single_threaded_blas` too): a 1e6 x 101 times 101 x 5 product
#: takes 0.14 s on one thread and 0.09 s on two (idle 2-core machine). Large
#: GEMMs split into big chunks, so a busy core costs at most a factor of the
#: thread count, unlike the per-column synchronisation of small factorizations.
PARALLEL_BLAS_MIN_SIZE = 1 << 22


@contextmanager
def blas_threads_for(size):
    """Let BLAS use every core for the enclosed call when ``size`` (entries) is large."""
    if size < PARALLEL_BLAS_MIN_SIZE:
        yield
        return
    with _blas_controller().limit(limits=_MAX_THREADS, user_api="blas"):
        yield


def with_single_threaded_blas(fn):
    """Decorator: run ``fn`` inside :func:`single_threaded_blas`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return fn(*args, **kwargs)

    return wrapper
