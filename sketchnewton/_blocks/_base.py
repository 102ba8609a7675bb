"""Row blocks: a loss's data split by rows, and how one task per block is run.

Every loss computes through a :class:`RowBlocks` object. A task is a
function ``fn(block, *per_block_items, *args)`` that runs where the block
lives; its result stays there as a *handle* (the value itself in memory, a
future on a Dask cluster) and only small results (scalars, d-vectors,
d x d matrices) are summed and brought back. :class:`LocalBlocks` is the
in-memory case: one block, every task a plain function call. The
distributed backend (:class:`~sketchnewton._blocks.DaskBlocks`) implements the same
interface over many blocks, so the losses, the sketch layer and the driver
are written once.

Images (``A p``, the linear predictor) are numpy arrays in memory and
:class:`BlockVector` objects on a cluster: both support what the driver does
with them (``z + t * Ap``, ``np.abs(Ap).max()``); a task receives its block's
piece through :meth:`RowBlocks.items` and reads it with :func:`resolve`.
"""

import numbers
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .._kernels import kernel_threads
from .._matrix import InterceptMatrix, MatrixShape

__all__ = ["Block", "RowBlocks", "LocalBlocks", "BlockVector", "RowSample", "resolve",
           "add_results", "block_seed_rng"]


class Block:
    """One row block: its matrix and its per-row vectors (targets, weights, ...).

    Parameters
    ----------
    A : DataMatrix or InterceptMatrix of shape (n_j, d)
    index : int
        Position of the block among all blocks (seeds per-block randomness).
    **vectors : ndarray of shape (n_j,) or (0,)
    """

    def __init__(self, A, index=0, **vectors):
        self.A = A
        self.index = int(index)
        self.vectors = vectors

    def __getitem__(self, name):
        return self.vectors[name]

    def open(self):
        """The block with its matrix, for the duration of one task (itself: the matrix is in
        memory; a :class:`~sketchnewton._blocks._files.FileBlock` loads it from its files)."""
        return self

    @property
    def leverage_matrix(self):
        """The matrix whose leverage scores guide row sampling: ``A`` without an intercept column.

        An implicit intercept column changes every score by about ``1/n``
        and sampling mixes in 10% uniform probability anyway.
        """
        return self.A.base if isinstance(self.A, InterceptMatrix) else self.A

    def info(self):
        A = self.A
        return np.array([A.n, A.d, A.nnz, A.row_nnz_squares(), A.is_sparse], dtype=np.float64)

    def __sizeof__(self):  # dask's memory accounting (spilling) reads this
        dm = self.leverage_matrix
        if dm.is_sparse:
            c = dm.csr
            total = c.data.nbytes + c.indices.nbytes + c.indptr.nbytes
        else:
            total = dm.dense.nbytes
        return total + sum(v.nbytes for v in self.vectors.values()) + 256


@dataclass(frozen=True)
class RowSample:
    """The rows of one block that a row sampler kept, and their weights.

    What a loss needs to assemble a sampled Hessian model on its block
    (``sum_r row_weights[r]^2 B_{rows[r]}``); the sketch layer draws it.

    Attributes
    ----------
    rows : ndarray of int64, shape (m,)
        Kept rows, sorted and distinct.
    row_weights : ndarray of shape (m,)
        ``1 / sqrt(pi_i)`` for inclusion probabilities ``pi_i``.
    unsampled : ndarray of bool, shape (n_j,) or None
        Rows the sampler can never draw (no curvature weight): a model must add their
        share exactly where the loss's rows have a part independent of that weight.
    """

    rows: np.ndarray
    row_weights: np.ndarray
    unsampled: np.ndarray | None = None


def block_seed_rng(seed, index):
    """The generator of block ``index`` for a round seeded by ``seed``.

    Each randomised round draws one ``seed`` from the solver's generator;
    block ``j`` draws from ``default_rng([seed, j])``, so a task re-run after
    a lost worker draws the same numbers, and the result does not depend on
    which worker runs what.
    """
    return np.random.default_rng([int(seed), int(index)])


def add_results(*parts):
    """Sum the results of per-block tasks: arrays, scalars, or tuples of those (fresh arrays)."""
    if isinstance(parts[0], tuple):
        return tuple(add_results(*col) for col in zip(*parts))
    out = np.array(parts[0], dtype=np.float64, copy=True)
    for p in parts[1:]:
        out += p
    return out


# -- images on a cluster ---------------------------------------------------------------------
def _piece(obj, key):
    if key is None:
        return obj
    if isinstance(key, str):
        return getattr(obj, key)
    return obj[key]


def resolve(item):
    """A block's piece of an image: the array itself (in memory) or the evaluated spec of a
    :class:`BlockVector` (on a worker); ``None`` stays ``None``."""
    if item is None or isinstance(item, np.ndarray):
        return item
    shape, const, terms = item
    out = None
    if const is not None:
        out = np.empty(shape)
        out[...] = const
    for coef, obj, key in terms:
        v = _piece(obj, key)
        if out is None:
            out = v * coef if coef != 1.0 else np.array(v, dtype=np.float64, copy=True)
        else:
            out += v * coef
    return out


def _max_abs(item):
    v = resolve(item)
    return float(np.abs(v).max()) if v.size else 0.0


def _moments(item):
    v = resolve(item)
    return np.array([v.size, v.sum(), float((v * v).sum())])


class BlockVector:
    """An (n,) or (n, K) array held where its row blocks live, one piece per block.

    The value is ``const + sum_t coef_t * piece_t``, kept lazy: scalar
    multiples and sums only extend the list of terms, and the task that
    consumes the vector evaluates its block (:func:`resolve`). Supports what
    the driver does with images: ``+``, scalar ``*``, ``np.abs(v).max()``,
    ``v.std()``, ``v.size``, ``v.shape``.
    """

    def __init__(self, blocks, shapes, terms, const=None):
        self.blocks = blocks
        self.shapes = shapes
        self.terms = terms  # list of (coef, [per-block handle], key)
        self.const = const

    @property
    def shape(self):
        return (sum(s[0] for s in self.shapes),) + tuple(self.shapes[0][1:])

    @property
    def size(self):
        return int(np.prod(self.shape))

    def block(self, j):
        return (self.shapes[j], self.const, [(c, handles[j], key) for c, handles, key in self.terms])

    def __mul__(self, a):
        if not isinstance(a, (numbers.Real, np.floating)):
            return NotImplemented
        a = float(a)
        const = None if self.const is None else a * self.const
        return BlockVector(self.blocks, self.shapes, [(a * c, h, k) for c, h, k in self.terms], const)

    __rmul__ = __mul__

    def __add__(self, other):
        if not isinstance(other, BlockVector):
            return NotImplemented
        if self.const is None:
            const = other.const
        else:
            const = self.const if other.const is None else self.const + other.const
        return BlockVector(self.blocks, self.shapes, self.terms + other.terms, const)

    __radd__ = __add__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            if ufunc is np.absolute and len(inputs) == 1:
                return _AbsBlockVector(self)
            if ufunc is np.multiply:
                a, b = inputs
                other = a if b is self else b
                return self * other if np.ndim(other) == 0 else NotImplemented
            if ufunc is np.add:
                a, b = inputs
                return a.__add__(b) if isinstance(a, BlockVector) else b.__add__(a)
        return NotImplemented

    def __abs__(self):
        return _AbsBlockVector(self)

    def max_abs(self):
        """``max |v_i|`` (one round of scalars)."""
        return max(self.blocks.map_gather(_max_abs, self.blocks.items(self)), default=0.0)

    def std(self):
        """Population standard deviation of all entries (one round of scalars)."""
        m = self.blocks.map_sum(_moments, self.blocks.items(self))
        mean = m[1] / m[0]
        return float(np.sqrt(max(m[2] / m[0] - mean * mean, 0.0)))


class _AbsBlockVector:
    """``|v|`` for a :class:`BlockVector`; only ``.max()`` is needed (the line search's cap)."""

    def __init__(self, v):
        self.v = v

    def max(self):
        return self.v.max_abs()


# -- the interface ---------------------------------------------------------------------------
class RowBlocks(MatrixShape):
    """The row blocks of a loss's data and the executor of per-block tasks.

    Attributes
    ----------
    shape : tuple (n, d)
        Of the whole matrix (with an intercept column, when the blocks have one).
    nnz : int
    is_sparse : bool
    n_blocks : int
    sweeps : float
        Sweeps over ``A`` so far, counted here and only here: each
        :meth:`map` declares the sweeps its tasks make over their blocks (one
        per ``A @ x`` or ``A.T @ Y``), and a task that reads only some rows
        reports the non-zeros it read (:meth:`count_rows_read`). A *pass* is
        two sweeps.
    eager_gradient : bool
        True when a task is expensive compared with a sweep (a cluster round,
        out-of-core blocks): a loss then computes the gradient partials in the
        same task as the loss value, even for a line-search trial that may be
        rejected.
    """

    nnz: int
    is_sparse: bool
    sweeps: float = 0.0
    n_blocks: int = 1
    eager_gradient = False
    #: all rows in one process (one block): products with the whole matrix are possible
    in_memory = False

    def map(self, fn, *per_block, args=(), block=True, sweeps=0.0):
        """Run ``fn(block_j, per_block[0][j], ..., *args)`` for every block; returns the handles.

        ``sweeps``: how many sweeps over its block's ``A`` each task makes (added to
        :attr:`sweeps`). ``block=False``: ``fn(per_block[0][j], ..., *args)``, for a task
        that reads only per-block results (sums of a forward, pieces of an image): on a
        cluster it then does not load the block, which may be spilled to disk.
        """
        self.count_sweeps(sweeps)
        return self._run(fn, per_block, args, block)

    def _run(self, fn, per_block, args, block):
        """The backend's :meth:`map` (no counting)."""
        raise NotImplementedError

    @property
    def passes(self):
        """Sweeps over ``A`` so far divided by two."""
        return self.sweeps / 2

    def count_sweeps(self, sweeps):
        """Count ``sweeps`` sweeps over ``A`` made outside :meth:`map` (a product with the
        in-memory block's matrix)."""
        self.sweeps += sweeps

    def count_rows_read(self, nnz, times=1.0):
        """Count a read of ``nnz`` non-zeros of ``A`` (some rows only), ``times`` over: the
        fraction ``nnz / nnz(A)`` of a sweep each time."""
        self.count_sweeps(times * float(nnz) / max(float(self.nnz), 1.0))

    def sum(self, handles, item=None, fresh=False, nbytes=None):
        """Sum of the results behind ``handles`` (or of their ``[item]``), as a new value.

        ``fresh=True`` promises that the tasks built their results anew (a
        Hessian, not a cached array), so that a single block's result may be
        returned without a copy. ``nbytes``: the size of one result when it may
        be large (a Gram, a sketch), so that a cluster adds few of them at a time.
        """
        raise NotImplementedError

    def map_sum(self, fn, *per_block, args=()):
        """``sum_j fn(per_block[0][j], ..., *args)`` as a new value, for an ``fn`` that reads only
        per-block results (no block): on a cluster, evaluated inside the reduction's tasks
        where those results are, without a task per block."""
        raise NotImplementedError

    def map_gather(self, fn, *per_block, args=()):
        """``[fn(per_block[0][j], ..., *args) for each block j]`` (``fn`` as in :meth:`map_sum`)."""
        raise NotImplementedError

    def gather(self, handles):
        """The results behind ``handles``, as a list."""
        raise NotImplementedError

    def vector(self, handles, key=None, width=None):
        """The image held by ``handles`` (their ``key`` attribute or item)."""
        raise NotImplementedError

    def items(self, image):
        """The per-block items of an image (``None``: no image), for :meth:`map`."""
        raise NotImplementedError

    def threads(self):
        """Context manager for the client during a solve."""
        raise NotImplementedError

    def constant(self, value, width=None):
        """An image equal to ``value`` on every row (``width`` columns), made without a pass."""
        raise NotImplementedError

    @property
    def indices(self):
        """The blocks' ``index`` (seeds of per-block randomness), as a per-block item for :meth:`map`."""
        return list(range(self.n_blocks))

    def row_nnz_squares(self):
        """``sum_i nnz_i^2``: the work of the exact Gram."""
        return self._row_nnz_squares

    def col_nnz_squares(self):
        """``sum_j nnz_j^2`` over the columns: the work of the outer Gram ``A A^T`` (reads the
        blocks' column indices, no values: not counted as a sweep)."""
        c = self.sum(self.map(_col_nnz_task)).astype(np.float64)
        return float(c @ c)

    def fused_sweeps(self, blocks=False):
        """Sweeps over ``A`` of one fused Hessian-vector product of the blocks (see
        :meth:`~sketchnewton._matrix.DataMatrix.fused_sweeps`; ``blocks``: the multinomial
        product)."""
        raise NotImplementedError

    def reference_pass_seconds(self):
        """Seconds of one scipy pass ``A.T @ (A @ x)`` over the data (the unit of a solve's
        ``time_passes``), or None where no such pass exists (many blocks on a cluster)."""
        return None

    def column_sq_norms(self):
        """``||a_j||^2`` for every column (one sweep): how unevenly the features are scaled."""
        return self.sum(self.map(_col_sq_task, sweeps=1), fresh=True)


def _col_nnz_task(blk):
    return blk.A.col_nnz()


def _col_sq_task(blk):
    return blk.A.weighted_col_sq(np.ones(blk.A.n))


class LocalBlocks(RowBlocks):
    """All rows in memory, as one block; a task is a function call.

    Parameters
    ----------
    block : Block
    """

    n_blocks = 1
    in_memory = True

    def __init__(self, block):
        self.block = block
        A = block.A
        self.shape = A.shape
        self.nnz = A.nnz
        self.is_sparse = A.is_sparse
        self.sweeps = 0.0
        self._row_nnz_squares = None

    @classmethod
    def of_rows(cls, n):
        """One block of ``n`` rows without a matrix, for tasks that read per-row vectors only."""
        obj = cls.__new__(cls)
        obj.block = Block(None, 0)
        obj.shape = (int(n), 0)
        obj.nnz, obj.is_sparse, obj.sweeps, obj._row_nnz_squares = 0, False, 0.0, 0.0
        return obj

    def row_nnz_squares(self):
        if self._row_nnz_squares is None:
            self._row_nnz_squares = self.block.A.row_nnz_squares()
        return self._row_nnz_squares

    def _run(self, fn, per_block, args, block):
        items = [items[0] for items in per_block]
        return [fn(self.block, *items, *args) if block else fn(*items, *args)]

    def sum(self, handles, item=None, fresh=False, nbytes=None):
        value = handles[0] if item is None else handles[0][item]
        return value if fresh else add_results(value)

    def map_sum(self, fn, *per_block, args=()):
        return add_results(fn(*[items[0] for items in per_block], *args))

    def map_gather(self, fn, *per_block, args=()):
        return [fn(*[items[0] for items in per_block], *args)]

    def gather(self, handles):
        return list(handles)

    def vector(self, handles, key=None, width=None):
        return _piece(handles[0], key)

    def items(self, image):
        return [image]

    @contextmanager
    def threads(self):
        with kernel_threads(self.nnz):
            yield

    def reference_pass_seconds(self):
        return self.block.A.reference_pass_seconds()

    def fused_sweeps(self, blocks=False):
        return self.block.A.fused_sweeps(blocks)

    def constant(self, value, width=None):
        out = np.empty((self.n,) if width is None else (self.n, width))
        out[...] = value
        return out

    @property
    def indices(self):
        return [self.block.index]
