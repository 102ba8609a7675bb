"""Dask front door: the losses on row-blocked ``dask.array`` inputs.

Each row chunk of ``A`` (with its slices of ``b``, ``w``, ``y``,
``sample_weight``) becomes one block object, built by the loss's
``make_block`` and persisted on a worker in contiguous row ranges; the blocks
are then run by :class:`~sketchnewton._blocks.DaskBlocks`, the distributed
implementation of the block interface every loss computes through.

Without a ``dask.distributed`` client the blocks are computed once with
dask's default scheduler and every task runs in-process (same code, no
cluster).

Each Newton iteration costs a fixed number of rounds (a round: one task per
block, plus the reduction tree); randomness is drawn per block from
``default_rng([seed, block])`` with one seed per round from the solver's
generator, so a fixed ``random_state`` gives the same result whichever worker
runs what, even when Dask re-runs the tasks of a lost worker.

Row blocks stored in files (:func:`save_blocks`, opened by :func:`from_files`) are either
loaded once into the workers' memory (``persist=True``, as a dask array is) or kept as
*read-only blocks* (``persist=False``): each task maps its block's files into memory,
computes and returns only its small results, so nothing of ``A`` is held by a worker nor
spilled by Dask, and every round over the blocks reads the files once (from the OS page cache
when they fit there). ``persist="auto"`` (the default) keeps them in memory when they fill at
most half of the workers' memory limits.

This module imports dask only when a dask input is given: dask is optional.
"""

import sys

import numpy as np

from ._blocks import FAN_IN, BlockFile, DaskBlocks, FileBlock, read_block_files, write_block_files
from ._matrix import as_data_matrix
from ._validation import available_memory, check_choice, check_int, check_real
from .exceptions import InputError
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss, PoissonLoss

__all__ = ["is_dask_collection", "DaskBlocks", "normalized_loss", "logistic_loss",
           "multinomial_loss", "poisson_loss", "build_blocks", "FAN_IN", "BlockFiles",
           "save_blocks", "from_files"]


def is_dask_collection(x):
    """True for the inputs of this backend: dask collections and :class:`BlockFiles` (False,
    without importing dask, when it is not loaded)."""
    if isinstance(x, BlockFiles):
        return True
    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(x)


# -- row blocks stored in files ----------------------------------------------------------------
_PERSIST = ("auto", True, False)
#: ``persist="auto"`` keeps the blocks in memory when they fill at most this share of the
#: workers' memory limits (Dask starts spilling at 60%; the per-row vectors and the kernels'
#: temporaries need the rest)
AUTO_PERSIST_SHARE = 0.5


class BlockFiles:
    """The row blocks of a matrix ``A`` stored in a folder (:func:`save_blocks`).

    Accepted as ``A`` / ``X`` wherever a row-chunked dask array is (``sketchnewton.solve``, the
    estimators, the losses of this module); the other inputs are split by its row blocks.

    Attributes
    ----------
    folder : str
    files : list of BlockFile
    shape : tuple (n, d)
    chunks : tuple
        ``(rows of each block, (d,))``, as a dask array's.
    nnz : int
    nbytes : int
        Bytes of the files: what the workers read in one round over the blocks.
    persist : "auto", True or False
        True: the blocks are loaded once into the workers' memory (Dask spills what does not
        fit). False: read-only blocks, reloaded from the files by every task and never held
        in memory. "auto": True when ``nbytes`` is at most half of the workers' memory limits
        (:data:`AUTO_PERSIST_SHARE`; without a cluster, of the memory available).
    """

    ndim = 2

    def __init__(self, folder, files, persist="auto"):
        self.folder = folder
        self.files = files
        self.persist = _check_persist(persist)
        self.shape = (sum(f.shape[0] for f in files), files[0].shape[1])
        self.chunks = (tuple(f.shape[0] for f in files), (self.shape[1],))
        self.nnz = sum(f.nnz for f in files)
        self.nbytes = sum(f.nbytes() for f in files)
        self.is_sparse = files[0].sparse

    @property
    def dtype(self):
        return np.dtype(np.float64)

    def __repr__(self):
        kind = "sparse" if self.is_sparse else "dense"
        return (f"BlockFiles({self.folder!r}: {self.shape[0]} x {self.shape[1]} {kind}, "
                f"{len(self.files)} blocks, {self.nbytes / 2**20:.1f} MiB, "
                f"persist={self.persist!r})")

    def in_memory(self, client):
        """Whether the blocks are loaded into the workers' memory (``persist`` resolved)."""
        if self.persist != "auto":
            return self.persist
        if client is None:
            memory = available_memory()
        else:
            limits = [w.get("memory_limit") or 0
                      for w in client.scheduler_info()["workers"].values()]
            memory = None if not limits or min(limits) <= 0 else sum(limits)  # 0: no limit
        return memory is None or self.nbytes <= AUTO_PERSIST_SHARE * memory


def _check_persist(persist):
    if isinstance(persist, str):
        return check_choice(persist, "persist", ("auto",))
    if isinstance(persist, (bool, np.bool_)):
        return bool(persist)
    raise InputError(f"persist must be 'auto', True or False, got {persist!r}")


def save_blocks(A, folder, rows_per_block=None):
    """Write the rows of ``A`` as row blocks into ``folder``, for :func:`from_files`.

    Parameters
    ----------
    A : sparse matrix or array of shape (n, d), or an iterable of them
        A matrix is split into blocks of ``rows_per_block`` rows; an iterable (a generator
        writing a matrix larger than memory block by block) gives one block per item, all
        with the same columns.
    folder : str
        Created if needed; must not already hold row blocks. Each block is validated and
        written as plain ``.npy`` files (sparse: canonical CSR, float64 values; dense: as
        given in float32 or float64), then the manifest ``blocks.json``.
    rows_per_block : int, optional
        Required when ``A`` is a matrix. Blocks of 50-200 MB keep the tasks few and the
        workers' transient memory small.

    Returns
    -------
    BlockFiles
        The stored blocks (``persist="auto"``).
    """
    if hasattr(A, "shape") and getattr(A, "ndim", 2) == 2:
        if rows_per_block is None:
            raise InputError("rows_per_block is required to split a matrix into row blocks")
        step = check_int(rows_per_block, "rows_per_block", minimum=1)
        dm = as_data_matrix(A)
        M = dm.csr if dm.is_sparse else dm.dense
        parts = (M[i:i + step] for i in range(0, dm.n, step))
    else:
        parts = A
    write_block_files(parts, folder)
    return from_files(folder)


def from_files(folder, persist="auto"):
    """The row blocks written by :func:`save_blocks` into ``folder``, as an input of a solve.

    Parameters
    ----------
    folder : str
    persist : "auto", True or False, default "auto"
        See :class:`BlockFiles`. ``False``: out of core without spilling; each Newton
        iteration's rounds read the files once each (the OS page cache permitting). The files
        must not change while a solve runs (checked: size and modification time).

    Returns
    -------
    BlockFiles

    Examples
    --------
    >>> import scipy.sparse as sp, sketchnewton as sn                  # doctest: +SKIP
    >>> from sketchnewton.distributed import save_blocks, from_files   # doctest: +SKIP
    >>> save_blocks(A, "/data/A_blocks", rows_per_block=500_000)       # doctest: +SKIP
    >>> res = sn.solve(from_files("/data/A_blocks", persist=False), b, eps=1e-6)  # doctest: +SKIP
    """
    return BlockFiles(folder, read_block_files(folder), persist)


# -- building the blocks from dask arrays -------------------------------------------------------
def _client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _row_chunks(A, name):
    import dask.array as da

    if not isinstance(A, da.Array):
        raise InputError(f"{name} must be a dask.array.Array, got {type(A).__name__}")
    if any(np.isnan(c) for c in A.chunks[0]):
        raise InputError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    return A.chunks[0]


def _check_matrix(A, name):
    if isinstance(A, BlockFiles):
        return A.chunks[0]
    if A.ndim != 2:
        raise InputError(f"{name} must be 2-D, got {A.ndim}-D")
    rows = _row_chunks(A, name)
    if len(A.chunks[1]) != 1:
        raise InputError(
            f"{name} must be chunked by rows only (one chunk spanning all {A.shape[1]} columns), "
            f"got column chunks {A.chunks[1]}; rechunk with {name}.rechunk({{1: -1}})")
    return rows


def _vector_blocks(v, name, rows, matrix, required=True):
    """The row blocks of an (n,) input as delayed objects, checked against the matrix's chunks."""
    import dask.array as da

    if v is None:
        if required:
            raise InputError(f"{name} is required")
        return [None] * len(rows)
    n = sum(rows)
    if not is_dask_collection(v):
        arr = np.asarray(v)
        if arr.ndim == 0:
            return [arr.item()] * len(rows)
        if arr.ndim != 1 or arr.shape[0] != n:
            raise InputError(f"{name} must have shape ({n},) like the rows of {matrix}, got "
                             f"{arr.shape}")
        v = da.from_array(arr, chunks=(rows,))
    if not isinstance(v, da.Array) or v.ndim != 1:
        raise InputError(f"{name} must be a 1-D dask array")
    if v.shape[0] != n:
        raise InputError(f"{name} must have shape ({n},) like the rows of {matrix}, got {v.shape}")
    if tuple(_row_chunks(v, name)) != tuple(rows):
        raise InputError(
            f"{name} must be chunked like the rows of {matrix}: expected chunks {tuple(rows)}, "
            f"got {v.chunks[0]}; rechunk with {name}.rechunk({matrix}.chunks[0])")
    return list(v.to_delayed().ravel())


class _MakeBlock:
    """Builds block ``index`` on a worker; input errors name the block. From a
    :class:`~sketchnewton._blocks.BlockFile`: the block read and validated once, kept in
    memory (``persist``) or as a read-only :class:`~sketchnewton._blocks.FileBlock`."""

    def __init__(self, make, kwargs, persist=True):
        self.make, self.kwargs, self.persist = make, kwargs, persist

    def __call__(self, A, *vectors, index):
        try:
            if not isinstance(A, BlockFile):
                return self.make(A, index, *vectors, **self.kwargs)
            stamp = A.stamp()
            blk = self.make(A.load(check=True), index, *vectors, **self.kwargs)
            return blk if self.persist else FileBlock(blk, A, stamp)
        except InputError as exc:
            raise InputError(f"row block {index}: {exc}") from None


def build_blocks(A, vectors, make, *, matrix="A", extra_cols=0, **kwargs):
    """:class:`DaskBlocks` from a row-chunked dask matrix (or :class:`BlockFiles`) and aligned
    vectors.

    ``vectors``: ``[(name, value, required), ...]`` passed positionally to
    ``make(A_j, index, *vector_blocks, **kwargs)`` (a loss's ``make_block``).
    """
    import dask

    if not is_dask_collection(A):
        raise InputError(f"{matrix} must be a dask array when the other inputs are")
    rows = _check_matrix(A, matrix)
    cols = [_vector_blocks(v, name, rows, matrix, required) for name, v, required in vectors]
    client = _client()
    if isinstance(A, BlockFiles):
        builder = _MakeBlock(make, kwargs, A.in_memory(client))
        delayed_A = A.files
    else:
        builder = _MakeBlock(make, kwargs)
        delayed_A = A.to_delayed()[:, 0]
    keep = [j for j in range(len(rows)) if rows[j] > 0]
    delayed = [dask.delayed(builder, pure=True)(delayed_A[j], *[c[j] for c in cols], index=i)
               for i, j in enumerate(keep)]
    expected = [(rows[j], A.shape[1] + extra_cols) for j in keep]
    if client is None:
        return DaskBlocks(None, list(dask.compute(*delayed)), expected)
    futures, placement = _compute_placed(client, delayed, [rows[j] for j in keep])
    return DaskBlocks(client, futures, expected, placement)


def _compute_placed(client, delayed, rows):
    """Futures of the blocks, persisted in contiguous ranges of rows, one per worker (in
    proportion to its threads): a group of consecutive blocks then lies on one worker, where
    a reduction reads their results (``DaskBlocks._first_level``). The placement is loose: a
    lost worker's blocks are recomputed anywhere. Returns ``(futures, placement)``."""
    workers = client.scheduler_info()["workers"]
    if not workers:  # none yet (an adaptive cluster): let the scheduler place them
        return client.compute(delayed), None
    names = sorted(workers)
    share = np.cumsum([workers[w]["nthreads"] for w in names], dtype=np.float64)
    mid = (np.cumsum(rows) - 0.5 * np.asarray(rows, dtype=np.float64)) / max(sum(rows), 1)
    placement = np.minimum(np.searchsorted(share / share[-1], mid, side="right"), len(names) - 1)
    futures = [None] * len(delayed)
    for w, name in enumerate(names):
        idx = np.flatnonzero(placement == w)
        if idx.size:
            got = client.compute([delayed[j] for j in idx], workers=[name],
                                 allow_other_workers=True)
            for j, f in zip(idx, got):
                futures[j] = f
    return futures, [int(p) for p in placement]


def normalized_loss(A, b, *, link="resnet", lam=0.0, w=None):
    """:class:`~sketchnewton.losses.NormalizedRegressionLoss` on row-blocked dask arrays."""
    if w is not None and np.ndim(w) == 0 and not is_dask_collection(w):
        w = check_real(w, "w")
    blocks = build_blocks(A, [("b", b, True), ("w", w, False)],
                          NormalizedRegressionLoss.make_block)
    return NormalizedRegressionLoss.from_blocks(blocks, link=link, lam=lam)


def logistic_loss(X, y, *, lam=0.0, sample_weight=None, fit_intercept=False):
    """:class:`~sketchnewton.losses.LogisticLoss` on row-blocked dask arrays (``y`` in {0, 1})."""
    blocks = build_blocks(X, [("y", y, True), ("sample_weight", sample_weight, False)],
                          LogisticLoss.make_block, matrix="X", extra_cols=int(fit_intercept),
                          fit_intercept=fit_intercept)
    return LogisticLoss.from_blocks(blocks, lam=lam, fit_intercept=fit_intercept)


def multinomial_loss(X, y, n_classes, *, lam=0.0, sample_weight=None, fit_intercept=False):
    """:class:`~sketchnewton.losses.MultinomialLoss` on row-blocked dask arrays (integer codes)."""
    blocks = build_blocks(X, [("y", y, True), ("sample_weight", sample_weight, False)],
                          _multinomial_block, matrix="X", extra_cols=int(fit_intercept),
                          n_classes=n_classes, fit_intercept=fit_intercept)
    return MultinomialLoss.from_blocks(blocks, n_classes, lam=lam, fit_intercept=fit_intercept)


def poisson_loss(X, y, *, lam=0.0, sample_weight=None, fit_intercept=False):
    """:class:`~sketchnewton.losses.PoissonLoss` on row-blocked dask arrays."""
    blocks = build_blocks(X, [("y", y, True), ("sample_weight", sample_weight, False)],
                          PoissonLoss.make_block, matrix="X", extra_cols=int(fit_intercept),
                          fit_intercept=fit_intercept)
    return PoissonLoss.from_blocks(blocks, lam=lam, fit_intercept=fit_intercept)


def _multinomial_block(A, index, y, sample_weight=None, *, n_classes, fit_intercept):
    return MultinomialLoss.make_block(A, index, y, n_classes, sample_weight, fit_intercept)
