"""Row blocks on a ``dask.distributed`` cluster: the :class:`~sketchnewton._blocks.RowBlocks`
interface over one persisted block object per row chunk of a dask array.

Each task runs on the worker holding its block; its result stays there as a
future. Only scalars, d-vectors and d x d matrices reach the client, summed in
the cluster by a tree of reduction tasks (fan-in :data:`FAN_IN`), so thousands
of blocks cost a few reduction levels, not one task with thousands of inputs.
Images (``A p``) are :class:`~sketchnewton._blocks.BlockVector` objects: lazy
linear combinations of per-block pieces evaluated inside the task that consumes
them (``z + t A p`` in the line search costs no extra round).

Without a ``dask.distributed`` client every task runs in-process (same code,
no cluster). This module imports ``distributed`` only inside a worker's task:
dask is optional. Building the blocks from dask arrays is the front door's job
(:mod:`sketchnewton.distributed`).
"""

import sys
import uuid
from contextlib import nullcontext

import numpy as np

from .._kernels import kernel_threads, threads_for
from ..exceptions import InputError
from ._base import BlockVector, RowBlocks, add_results

__all__ = ["DaskBlocks", "FAN_IN"]

#: inputs per reduction task: a tree of reductions over B blocks has log_16(B) levels
FAN_IN = 16
#: bytes of inputs one reduction task may hold: large results (a d x d Gram, a CountSketch of
#: 4 d rows at d = 1,000: 32 MB) are added by a tree of smaller fan-in
_REDUCE_BYTES = 64 << 20
#: reductions run before the block tasks still queued on a worker, so that per-block results
#: are added and freed as they arrive instead of piling up until every block is done
_REDUCE_PRIORITY = 1
#: task arguments larger than this are scattered to the workers once per round, not
#: serialised with every task
_SCATTER_BYTES = 1 << 16


def _worker_threads():
    """The threads of the Dask worker running this task (None outside a worker)."""
    if "distributed" not in sys.modules:
        return None
    from distributed import get_worker

    try:
        return getattr(get_worker(), "nthreads", None)
    except ValueError:  # not in a worker
        return None


class _OnBlock:
    """A task on one block. Its kernels use the worker's threads, not every core: the worker
    processes of a host share its cores (2 workers x 1 thread on 2 cores running kernels on 2
    threads each made a pass 6x slower); numba's workqueue layer also needs kernel launches
    serialised across the threads of a worker process (``kernel_threads`` holds that lock)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, blk, *args):
        blk = blk.open()  # a read-only block: its matrix from its files, for this task only
        with kernel_threads(blk.A.nnz if blk.A is not None else 0, _worker_threads()):
            return self.fn(blk, *args)


def _add_group(item, *parts):
    if item is not None:
        parts = [p[item] for p in parts]
    return add_results(*parts)


def _add_list(parts, item):
    return _add_group(item, *parts)


def _apply(cols, fn, item, args):
    """``[fn(*items_j, *args)[item] for the blocks j of cols]`` (``fn`` None: the item itself)."""
    out = []
    for items in zip(*cols):
        v = items[0] if fn is None else fn(*items, *args)
        out.append(v if item is None else v[item])
    return out


def _apply_add(cols, fn, item, args):
    """The sum of :func:`_apply`'s list (one first-level reduction task)."""
    return add_results(*_apply(cols, fn, item, args))


def _add_collected(lists):
    """The sum of the lists of :func:`_apply` from the workers sharing a group of blocks."""
    return add_results(*[v for part in lists for v in part])


def _info(blk):
    """The block's shape and statistics, and the sweeps of its fused products with the kernels
    on the worker's threads."""
    blk = blk.open()
    threads = threads_for(blk.A.nnz, _worker_threads())
    return np.append(blk.info(), [blk.A.fused_sweeps(False, threads=threads),
                                  blk.A.fused_sweeps(True, threads=threads)])


class DaskBlocks(RowBlocks):
    """Row blocks on a ``dask.distributed`` cluster (or in-process without a client).

    Parameters
    ----------
    client : distributed.Client or None
    blocks : list
        Futures of the block objects (objects themselves without a client).
    expected : list of (rows, cols)
        The shape each block must have (from the dask arrays' chunks).
    placement : list of int or None
        The worker each block was placed on (an index; None: not known). Consecutive blocks
        on one worker are reduced by one task there (:meth:`_pieces`).
    """

    eager_gradient = True

    def __init__(self, client, blocks, expected, placement=None):
        self.client = client
        self.blocks = blocks
        self.placement = placement
        info = np.array(self.gather([self._submit(_info, b) for b in blocks]))
        for j, ((rows, cols), got) in enumerate(zip(expected, info)):
            if int(got[0]) != rows or int(got[1]) != cols:
                raise InputError(f"row block {j} of A has shape ({int(got[0])}, {int(got[1])}) "
                                 f"but the dask array declares ({rows}, {cols})")
        self.shapes = [(int(r),) for r in info[:, 0]]
        self.n_blocks = len(blocks)
        self.shape = (int(info[:, 0].sum()), int(info[0, 1]))
        self.nnz = int(info[:, 2].sum())
        self._row_nnz_squares = float(info[:, 3].sum())
        self.is_sparse = bool(info[:, 4].all())
        weights = info[:, 2] / max(float(info[:, 2].sum()), 1.0)
        self._fused = (float(weights @ info[:, 5]), float(weights @ info[:, 6]))
        self.sweeps = 0.0
        self._backwards = False  # direction of the last round over the blocks

    def _submit(self, fn, *args, name=None):
        if self.client is None:
            return fn(*args)
        key = f"{name or getattr(fn, '__name__', 'task').strip('_')}-{uuid.uuid4().hex}"
        return self.client.submit(fn, *args, pure=False, key=key)

    def _broadcast(self, args):
        if self.client is None:
            return args
        return tuple(self.client.scatter(a, broadcast=False, hash=False)
                     if isinstance(a, np.ndarray) and a.nbytes > _SCATTER_BYTES else a
                     for a in args)

    def _map(self, fn, name, iterables, args, backwards=False, priority=0):
        """One task per element of the iterables, submitted in one message (``client.map``);
        a worker runs them in submission order (``backwards``: last element first), tasks of
        a higher ``priority`` first."""
        if self.client is None:
            return [fn(*items, *args) for items in zip(*iterables)]
        m = len(iterables[0])
        if backwards:
            iterables = [list(it)[::-1] for it in iterables]
        keys = [f"{name}-{uuid.uuid4().hex}" for _ in range(m)]
        out = self.client.map(fn, *iterables, *[[a] * m for a in args], key=keys, pure=False,
                              priority=priority)
        return out[::-1] if backwards else out

    def _run(self, fn, per_block, args, block):
        name = fn.__name__.strip("_")
        if block:
            # Rounds over the blocks alternate direction: Dask spills the least recently used
            # data, so out of core a round in the same direction would find none of the blocks
            # the previous round loaded still in memory; backwards it starts with them. Tasks
            # that read only per-block results follow the round that made them.
            self._backwards = not self._backwards
            fn, per_block = _OnBlock(fn), (self.blocks, *per_block)
        return self._map(fn, name, list(per_block), self._broadcast(args), self._backwards)

    def _pieces(self):
        """The groups of ``FAN_IN`` consecutive blocks (the reduction tree's first level), each
        as its runs ``(lo, hi)`` of blocks placed on one worker (a block alone: not known)."""
        groups = []
        for lo in range(0, self.n_blocks, FAN_IN):
            hi = min(lo + FAN_IN, self.n_blocks)
            if self.placement is None:
                groups.append([(j, j + 1) for j in range(lo, hi)])
                continue
            runs, start = [], lo
            for j in range(lo + 1, hi):
                if self.placement[j] != self.placement[start]:
                    runs.append((start, j))
                    start = j
            groups.append(runs + [(start, hi)])
        return groups

    def _first_level(self, fn, per_block, args, item):
        """Level one of the reduction of ``fn(per_block_j..., *args)[item]``: per group of blocks,
        one task evaluating and adding them where they are; a group on several workers, one
        task per worker (``collect``) and one adding their lists in block order."""
        cols = [list(p) for p in per_block]
        groups = self._pieces()
        whole = [g[0] for g in groups if len(g) == 1]
        split = [run for g in groups if len(g) > 1 for run in g]
        sums = self._map(_apply_add, "sum", [[[c[lo:hi] for c in cols] for lo, hi in whole]],
                         (fn, item, args), priority=_REDUCE_PRIORITY) if whole else []
        collected = iter(self._map(_apply, "collect", [[[c[lo:hi] for c in cols]
                                                        for lo, hi in split]], (fn, item, args),
                                   priority=_REDUCE_PRIORITY)
                         if split else [])
        lists = [[next(collected) for _ in g] for g in groups if len(g) > 1]
        joined = iter(self._map(_add_collected, "sum", [lists], (), priority=_REDUCE_PRIORITY)
                      if lists else [])
        sums = iter(sums)
        return [next(sums) if len(g) == 1 else next(joined) for g in groups]

    def _tree(self, level, fan_in=FAN_IN):
        while len(level) > 1:
            groups = [level[i:i + fan_in] for i in range(0, len(level), fan_in)]
            level = self._map(_add_list, "sum", [groups], (None,), priority=_REDUCE_PRIORITY)
        return self.client.gather(level[0])

    def sum(self, handles, item=None, fresh=False, nbytes=None):
        if self.client is None:
            return _add_group(item, *handles)
        if item is None:  # whole results: the tree's tasks fetch them
            fan_in = FAN_IN if nbytes is None else int(np.clip(_REDUCE_BYTES // max(nbytes, 1),
                                                               2, FAN_IN))
            return self._tree(list(handles), fan_in)
        return self._tree(self._first_level(None, [handles], (), item))

    def map_sum(self, fn, *per_block, args=()):
        if self.client is None:
            return add_results(*[fn(*items, *args) for items in zip(*per_block)])
        return self._tree(self._first_level(fn, per_block, self._broadcast(args), None))

    def map_gather(self, fn, *per_block, args=()):
        if self.client is None:
            return [fn(*items, *args) for items in zip(*per_block)]
        cols = [list(p) for p in per_block]
        runs = [run for g in self._pieces() for run in g]
        lists = self._map(_apply, "collect", [[[c[lo:hi] for c in cols] for lo, hi in runs]],
                          (fn, None, self._broadcast(args)))
        return [v for part in self.client.gather(lists) for v in part]

    def gather(self, handles):
        return list(handles) if self.client is None else self.client.gather(list(handles))

    def vector(self, handles, key=None, width=None):
        shapes = self.shapes if width is None else [(s[0], width) for s in self.shapes]
        return BlockVector(self, shapes, [(1.0, handles, key)])

    def items(self, image):
        if image is None:
            return [None] * self.n_blocks
        if not isinstance(image, BlockVector):
            raise InputError("a distributed loss needs images held by its blocks")
        return [image.block(j) for j in range(self.n_blocks)]

    def fused_sweeps(self, blocks=False):
        return self._fused[1 if blocks else 0]

    def threads(self):
        # the client runs no kernels; holding the launch lock would block in-process workers
        return nullcontext()

    def constant(self, value, width=None):
        shapes = self.shapes if width is None else [(s[0], width) for s in self.shapes]
        return BlockVector(self, shapes, [], np.array(value, dtype=np.float64))
