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

This module imports dask only when a dask input is given: dask is optional.
"""

import sys

import numpy as np

from ._blocks import FAN_IN, DaskBlocks
from ._validation import check_real
from .exceptions import InputError
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss, PoissonLoss

__all__ = ["is_dask_collection", "DaskBlocks", "normalized_loss", "logistic_loss",
           "multinomial_loss", "poisson_loss", "build_blocks", "FAN_IN"]


def is_dask_collection(x):
    """True for dask collections (False, without importing dask, when it is not loaded)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(x)


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
    """Builds block ``index`` on a worker; input errors name the block."""

    def __init__(self, make, kwargs):
        self.make, self.kwargs = make, kwargs

    def __call__(self, A, *vectors, index):
        try:
            return self.make(A, index, *vectors, **self.kwargs)
        except InputError as exc:
            raise InputError(f"row block {index}: {exc}") from None


def build_blocks(A, vectors, make, *, matrix="A", extra_cols=0, **kwargs):
    """:class:`DaskBlocks` from a row-chunked dask matrix and aligned vectors.

    ``vectors``: ``[(name, value, required), ...]`` passed positionally to
    ``make(A_j, index, *vector_blocks, **kwargs)`` (a loss's ``make_block``).
    """
    import dask

    if not is_dask_collection(A):
        raise InputError(f"{matrix} must be a dask array when the other inputs are")
    rows = _check_matrix(A, matrix)
    cols = [_vector_blocks(v, name, rows, matrix, required) for name, v, required in vectors]
    builder = _MakeBlock(make, kwargs)
    delayed_A = A.to_delayed()[:, 0]
    keep = [j for j in range(len(rows)) if rows[j] > 0]
    delayed = [dask.delayed(builder, pure=True)(delayed_A[j], *[c[j] for c in cols], index=i)
               for i, j in enumerate(keep)]
    client = _client()
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
