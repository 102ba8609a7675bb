"""Numba kernels: every loop over the data lives in this package.

Kernels are small and pure: they take arrays (CSR as ``indptr, indices,
data``), write into preallocated outputs where that saves a copy, and never
draw random numbers (randomness is drawn in Python and passed in).
"""

import functools
import threading
from contextlib import contextmanager

import numba

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
        wanted = 1 if nnz < PARALLEL_MIN_NNZ else _MAX_THREADS
        if limit is not None:
            wanted = max(1, min(wanted, int(limit)))
        if wanted == previous:
            yield
            return
        numba.set_num_threads(wanted)
        try:
            yield
        finally:
            numba.set_num_threads(previous)


def n_chunks():
    """Number of row chunks a parallel kernel splits its reductions into (its thread count)."""
    return max(1, numba.get_num_threads())


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
