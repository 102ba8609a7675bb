"""Dask backend: the Newton drivers on row-blocked ``dask.array`` inputs.

The drivers (:class:`~sketchnewton.newton.NewtonSolver`,
:class:`~sketchnewton._classifier_solver.ClassifierNewtonSolver`) talk to the
data through a small surface: the loss's forward / evaluate / Hessian
factors and products, and the Gram of the Hessian model. This module
provides a distributed counterpart of that surface; the drivers run
unchanged on top of it.

Layout
------
Each row block of ``A`` (with its slices of ``b``, ``w`` / ``y``,
``sample_weight``) becomes one in-memory loss object (the existing
:class:`NormalizedRegressionLoss`, or a cross-entropy loss with its
``_BinaryOps`` / ``_MultinomialOps``) built and kept on a worker. Every
distributed operation is one *round*: one task per block calling the
in-memory kernels on that block, plus (for reductions) one task summing the
blocks' small results in the cluster, so only ``O(d^2 + s d)`` numbers reach
the client. n-length vectors (``z = A x``, link values, ``A p``) stay on the
workers as per-block futures; the client holds them as :class:`BlockVector`,
a lazy linear combination of such pieces, evaluated inside the task that
consumes it (``z + t A p`` in the line search costs no extra round).

Normalized loss in one round
----------------------------
The normaliser ``alpha = sum_i phi(z_i)`` is global. Each block computes
``u = phi(z) / alpha_hat`` for a *reference* ``alpha_hat`` (the normaliser
at the last evaluated point) and a few sums; with ``rho = alpha_hat / alpha =
1 / sum u``, ``f = rho u`` and ``c = f - b = rho r + (rho - 1) b`` where
``r = u - b``, so::

    ||f||^2 = rho^2 S_uu,   <f, c> = rho^2 S_ur + rho (rho - 1) S_ub,
    ||c||^2 = rho^2 S_rr + 2 rho (rho - 1) S_rb + (rho - 1)^2 S_bb.

The identities are exact for any ``alpha_hat``; near convergence ``rho`` is
close to 1 and the dominant term ``S_rr`` is summed directly from ``r``, so
the loss keeps its relative accuracy (expanding ``||u/alpha - b||^2``
around ``alpha_hat = 1`` would cancel catastrophically).

The same round also gives the gradient and the low-rank Hessian columns
``K3 = A^T [va, (f + c) va, f va]``: while the block is in memory, it returns
``P = A^T [v r, v u, v, w^2 z]`` (``v = phi'(z) / alpha_hat``), products that
do not depend on ``rho`` or ``<f, c>``. With ``delta = rho - 1``,
``c = r + delta u``, ``va = rho v`` and ``f + c = r + (2 rho - 1) u``, so on
the client::

    grad = rho P_0 + rho delta P_1 - rho <f,c> P_2 + P_3 + lam x,
    K3   = [rho P_2,  rho P_0 + rho (2 rho - 1) P_1,  rho^2 P_1].

As for the loss, the residual enters through ``r`` (not ``u`` and ``b``
separately) and ``delta`` is small near convergence, so no large terms cancel
beyond those of the in-memory kernel's ``va (c - <f,c>)`` (the result agrees
with it to ~1e-15 relative; tests/test_dask.py).

Hence one round per evaluation: ``evaluate(forward=fw)`` for a forward
already computed (the line search's accepted trial) costs no round; a
rejected trial costs its one round all the same (its partials are computed
while the block is in memory, which for out-of-core data is the expensive
part of a round). A forward round counts one sweep for ``A^T Y``, plus one
when ``z = A x`` is not given; :meth:`DaskNormalizedLoss.loss` skips the
partials.

Rounds per Newton iteration (one task per block, plus one reduction task;
a forward round also has one per-block task extracting the small results):
method ``exact``: the Gram, ``A p``, ``max |A p|`` (the line search's cap),
and one forward per line-search trial, so 4 with a unit step (5 before the
gradient joined the forward); ``pcg``: one Hessian product per CG iteration
instead of ``A p`` and the Gram (when the preconditioner is rebuilt: the
sampling totals and the sampled Gram, plus the two leverage rounds when the
scores are refreshed).

Randomness
----------
Row sampling is Bernoulli with globally normalised probabilities
``pi_i = min(1, s ((1 - beta) w_i h_i / sum(w h) + beta / n_+))`` (the
in-memory sampler's formula without its fixed point over saturated rows, so
the expected sample size is at most ``s``). Each round draws one seed from
the solver's generator; block ``j`` uses ``default_rng([seed, j])``. A task
re-run after a lost worker therefore draws the same rows, and a fixed
``random_state`` gives the same result whichever worker runs what.
"""

import functools
import numbers

import numpy as np

from ._classifier_solver import _BinaryOps, _MultinomialOps
from ._kernels import kernel_threads
from ._kernels.links import (COSH, LINK_CODES, RESNET, SINH, scaled_csr_rmatmat,
                             scaled_link_sums, scaled_weights)
from ._matrix import MatrixShape, _n_chunks
from ._validation import check_finite_scalar, check_vector
from .exceptions import DomainError, InputError
from .hessian import LEVERAGE_PROJECTIONS, ModelBuilder
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss
from .losses.normalized import LINKS, Forward, NormalizedState, lowrank_part
from .sketch import RowSamplingOperator, SketchSettings
from .sketch._leverage import LEVERAGE_SKETCH_FACTOR, projected_row_norms, sketch_r_inverse

__all__ = ["is_dask_collection", "BlockVector", "DaskDataMatrix", "DaskNormalizedLoss",
           "DaskClassifierLoss", "DASK_SKETCHES"]

#: sketches with a blockwise distributed implementation
DASK_SKETCHES = ("leverage", "uniform")
_UNIFORM_MIX = 0.1


def is_dask_collection(x):
    """True for dask collections (False, without importing dask, when it is not installed)."""
    import sys

    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(x)


# -- execution: a distributed client, or in-process when there is none ----------------------
class _Executor:
    """Runs one task per block on the active ``dask.distributed`` client.

    Without a client the blocks are computed once with dask's default
    scheduler and every task runs in-process (same code, no cluster).
    """

    def __init__(self):
        try:
            from distributed import default_client

            self.client = default_client()
        except (ImportError, ValueError):
            self.client = None

    def submit(self, fn, *args):
        if self.client is None:
            return fn(*args)
        return self.client.submit(fn, *args, pure=False)

    def gather(self, futures):
        return futures if self.client is None else self.client.gather(futures)

    def total(self, parts, item=None):
        """Sum of the blocks' results (or of their ``[item]``), reduced in the cluster."""
        if self.client is None:
            return _sum(item, *parts)
        return self.client.gather(self.client.submit(_sum, item, *parts, pure=False))

    def materialize(self, delayed_blocks):
        """Compute the block objects and keep them (persisted on the workers)."""
        if self.client is None:
            import dask

            return list(dask.compute(*delayed_blocks))
        return self.client.compute(delayed_blocks)


def _sum(item, *parts):
    if item is not None:
        parts = [p[item] for p in parts]
    if isinstance(parts[0], tuple):
        return tuple(_sum(None, *col) for col in zip(*parts))
    out = np.array(parts[0], dtype=np.float64, copy=True)
    for p in parts[1:]:
        out += p
    return out


# -- n-vectors kept in the cluster -------------------------------------------------------------
def _piece(obj, key):
    if key is None:
        return obj
    if isinstance(key, str):
        return getattr(obj, key)
    return obj[key]


def _combine(spec):
    """Evaluate one block of a :class:`BlockVector` (runs on a worker)."""
    shape, const, terms = spec
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


def _max_abs(spec):
    v = _combine(spec)
    return float(np.abs(v).max()) if v.size else 0.0


def _moments(spec):
    v = _combine(spec)
    return np.array([v.size, v.sum(), v @ v if v.ndim == 1 else float((v * v).sum())])


class BlockVector:
    """An (n,) or (n, K) array held in the cluster, one piece per row block.

    The value is ``const + sum_t coef_t * piece_t``, kept lazy: scalar
    multiples and sums only extend the list of terms, and the task that
    consumes the vector evaluates its block. Supports what the drivers do
    with n-vectors: ``+``, scalar ``*``, ``np.abs(v).max()``, ``v.std()``,
    ``v.size``.
    """

    def __init__(self, ex, shapes, terms, const=None):
        self.ex = ex
        self.shapes = shapes
        self.terms = terms  # list of (coef, [per-block future], key)
        self.const = const

    @classmethod
    def of(cls, ex, shapes, futures, key=None):
        return cls(ex, shapes, [(1.0, futures, key)])

    @property
    def shape(self):
        return (sum(s[0] for s in self.shapes),) + tuple(self.shapes[0][1:])

    @property
    def size(self):
        return int(np.prod(self.shape))

    def block(self, j):
        return (self.shapes[j], self.const, [(c, futs[j], key) for c, futs, key in self.terms])

    def __mul__(self, a):
        if not isinstance(a, (numbers.Real, np.floating)):
            return NotImplemented
        a = float(a)
        const = None if self.const is None else a * self.const
        return BlockVector(self.ex, self.shapes, [(a * c, f, k) for c, f, k in self.terms], const)

    __rmul__ = __mul__

    def __add__(self, other):
        if not isinstance(other, BlockVector):
            return NotImplemented
        if self.const is None:
            const = other.const
        else:
            const = self.const if other.const is None else self.const + other.const
        return BlockVector(self.ex, self.shapes, self.terms + other.terms, const)

    __radd__ = __add__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__" and not kwargs:
            if ufunc is np.absolute and len(inputs) == 1:
                return _AbsBlockVector(self)
            if ufunc is np.multiply:
                a, b = inputs
                return (b if a is self else a) * self if np.ndim(a if b is self else b) == 0 \
                    else NotImplemented
            if ufunc is np.add:
                a, b = inputs
                return a.__add__(b) if isinstance(a, BlockVector) else b.__add__(a)
        return NotImplemented

    def __abs__(self):
        return _AbsBlockVector(self)

    def max_abs(self):
        """``max |v_i|`` (one round of scalars)."""
        parts = [self.ex.submit(_max_abs, self.block(j)) for j in range(len(self.shapes))]
        return max(self.ex.gather(parts), default=0.0)

    def std(self):
        """Population standard deviation of all entries (one round of scalars)."""
        m = self.ex.total([self.ex.submit(_moments, self.block(j)) for j in range(len(self.shapes))])
        mean = m[1] / m[0]
        return float(np.sqrt(max(m[2] / m[0] - mean * mean, 0.0)))


class _AbsBlockVector:
    """``|v|`` for a :class:`BlockVector`; only ``.max()`` is needed (the line search's cap)."""

    def __init__(self, v):
        self.v = v

    def max(self):
        return self.v.max_abs()


# -- blocks on the workers ---------------------------------------------------------------------
def _on_block(fn):
    """Worker task on one block: numba's workqueue layer needs kernel launches serialised
    across the threads of a worker process (``kernel_threads`` holds that lock)."""
    @functools.wraps(fn)
    def task(blk, *args):
        with kernel_threads(blk.A.nnz):
            return fn(blk, *args)
    return task


def _block_nbytes(dm, *arrays):
    dm = getattr(dm, "base", dm)  # InterceptMatrix: the ones column is implicit
    if dm.is_sparse:
        c = dm.csr
        total = c.data.nbytes + c.indices.nbytes + c.indptr.nbytes
    else:
        total = dm.dense.nbytes
    return total + sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))


def _in_block(index, make):
    try:
        return make()
    except InputError as exc:
        raise InputError(f"row block {index}: {exc}") from None


class _RegressionBlock:
    """One row block of a normalized regression problem (an in-memory loss, ``lam = 0``)."""

    def __init__(self, A, b, w, link, index):
        self.index = index
        self.loss = _in_block(index, lambda: NormalizedRegressionLoss(A, b, link=link, w=w))

    def __sizeof__(self):  # dask's memory accounting (spilling) reads this
        return _block_nbytes(self.loss.A, self.loss.b, self.loss.w2) + 256

    @property
    def A(self):
        return self.loss.A

    def info(self):
        A = self.A
        return np.array([A.n, A.d, A.nnz, A.row_nnz_squares(), A.is_sparse], dtype=np.float64)

    def partials(self, z, u, v):
        """``A^T [v r, v u, v, w^2 z]``, ``r = u - b``: (d, 4), or (d, 3) without ``w``."""
        A, b, w2 = self.A, self.loss.b, self.loss.w2
        n_cols = 4 if w2.shape[0] > 0 else 3
        if A.is_sparse:
            return scaled_csr_rmatmat(*A.kernel_csr, z, b, w2, u, v, A.d, n_cols, _n_chunks())
        return A.rmatmat(scaled_weights(z, b, w2, u, v, np.empty((z.shape[0], n_cols))))

    # the Hessian surface used by the sampler (``scal = (rho, fc, ff, K3)``)
    def factors(self, st, scal, kind):
        rho, fc, ff, K3 = scal
        fw = Forward(None, st.z, rho * st.u, rho * st.v, rho * st.q, 0.0, fc, ff, np.nan)
        return self.loss.hessian_factors(NormalizedState(fw, None, K3), kind)

    def sampling_weights(self, st, scal):
        root = self.factors(st, scal, "gauss_newton").root
        return root.row_scale ** 2 + (0.0 if root.extra_diag is None else root.extra_diag)

    def sampled_gram(self, st, scal, kind, rows, row_weights, sketch_size, sketch):
        """The block's share of :meth:`ModelBuilder.sketched` on the sampled rows."""
        gn = self.factors(st, scal, "gauss_newton")
        root = gn.root
        S = RowSamplingOperator(self.A.n, rows, row_weights, None, "bernoulli", sketch_size, sketch)
        extra = root.extra_diag
        if kind == "full":
            # residual curvature qa (c - <f,c>) on the same rows (factors' diag holds w2 too)
            extra = self.factors(st, scal, "full").diag - root.row_scale ** 2
        return S.gram(self.A, row_scale=root.row_scale, shift=(root.shift, root.k), extra_diag=extra)


class _ClassifierBlock:
    """One row block of a cross-entropy problem: the in-memory loss (``lam = 0``) and its ops."""

    def __init__(self, X, y, sw, n_classes, fit_intercept, index):
        self.index = index

        def make():
            if n_classes == 2:
                return _BinaryOps(LogisticLoss(X, y, sample_weight=sw, fit_intercept=fit_intercept))
            return _MultinomialOps(MultinomialLoss(X, y, n_classes, sample_weight=sw,
                                                   fit_intercept=fit_intercept))
        self.ops = _in_block(index, make)

    def __sizeof__(self):
        loss = self.ops.loss
        return _block_nbytes(self.A, loss.y, loss.sw) + 256

    @property
    def A(self):
        return self.ops.A

    def info(self):
        A = self.A
        return np.array([A.n, A.d, A.nnz, A.row_nnz_squares(), A.is_sparse], dtype=np.float64)

    def sampling_weights(self, st, scal):
        return self.ops.sampling_weights(st.cache)

    def sampled_gram(self, st, scal, kind, rows, row_weights, sketch_size, sketch):
        return self.ops.sampled_hessian(st.cache, rows, row_weights)


def _block_info(blk):
    return blk.info()


@_on_block
def _matvec(blk, x):
    return blk.A.matvec(x)


@_on_block
def _column_sums(blk):
    return blk.A.column_sums()


def _make_regression_block(A, b, w, link, index):
    return _RegressionBlock(A, b, w, link, index)


def _make_classifier_block(X, y, sw, n_classes, fit_intercept, index):
    return _ClassifierBlock(X, y, sw, n_classes, fit_intercept, index)


def _bernoulli_rows(scores, a, bconst, c, seed, index):
    """Rows kept with probability ``min(1, c (a scores_i + bconst))`` (``scores_i > 0``)."""
    u = np.random.default_rng([seed, index]).random(scores.shape[0])
    pi = np.minimum(1.0, c * (a * scores + bconst))
    keep = (scores > 0) & (u < pi)
    rows = np.flatnonzero(keep)
    return rows, 1.0 / np.sqrt(pi[rows])


def _scores(blk, st, scal, raw, uniform):
    w = blk.sampling_weights(st, scal)
    if uniform:
        return (w > 0).astype(np.float64)
    return w * raw


@_on_block
def _sampling_totals(blk, st, scal, raw, uniform):
    sc = _scores(blk, st, scal, raw, uniform)
    return np.array([sc.sum(), np.count_nonzero(sc > 0)], dtype=np.float64)


@_on_block
def _sampled_gram(blk, st, scal, kind, raw, uniform, a, bconst, s, seed, sketch):
    sc = _scores(blk, st, scal, raw, uniform)
    rows, row_weights = _bernoulli_rows(sc, a, bconst, s, seed, blk.index)
    G = blk.sampled_gram(st, scal, kind, rows, row_weights, s, sketch)
    return G, np.array([rows.shape[0], blk.A.row_nnz()[rows].sum()], dtype=np.float64)


def _leverage_matrix(blk):
    # as in memory, a classifier's scores leave out the implicit intercept column
    # (InterceptMatrix): it moves each score by about 1/n and 10% uniform is mixed in
    return getattr(blk.A, "base", blk.A)


@_on_block
def _countsketch(blk, st, scal, s_cs, seed):
    w = blk.sampling_weights(st, scal)
    S = SketchSettings("countsketch", s_cs).draw(np.random.default_rng([seed, blk.index]), n=blk.A.n)
    return S.apply(_leverage_matrix(blk), row_scale=np.sqrt(w))


@_on_block
def _raw_leverage(blk, st, scal, Z):
    w = blk.sampling_weights(st, scal)
    scores = projected_row_norms(_leverage_matrix(blk), w, Z)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w > 0, scores / w, 0.0)


# -- the distributed data matrix -----------------------------------------------------------
def _row_chunks(A, name):
    import dask.array as da

    if not isinstance(A, da.Array):
        raise InputError(f"{name} must be a dask.array.Array, got {type(A).__name__}")
    if any(np.isnan(c) for c in A.chunks[0]):
        raise InputError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first")
    return A.chunks[0]


def _check_matrix(A):
    if A.ndim != 2:
        raise InputError(f"A must be 2-D, got {A.ndim}-D")
    rows = _row_chunks(A, "A")
    if len(A.chunks[1]) != 1:
        raise InputError(
            f"A must be chunked by rows only (one chunk spanning all {A.shape[1]} columns), got "
            f"column chunks {A.chunks[1]}; rechunk with A.rechunk({{1: -1}})")
    return rows


def _vector_blocks(v, name, rows, required=True):
    """The row blocks of an (n,) input as delayed objects, checked against A's row chunks."""
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
        v = da.from_array(arr, chunks=(rows,))
    if not isinstance(v, da.Array) or v.ndim != 1:
        raise InputError(f"{name} must be a 1-D dask array")
    if v.shape[0] != n:
        raise InputError(f"{name} must have shape ({n},), got {v.shape}")
    if tuple(_row_chunks(v, name)) != tuple(rows):
        raise InputError(
            f"{name} must be chunked like the rows of A: expected chunks {tuple(rows)}, got "
            f"{v.chunks[0]}; rechunk with {name}.rechunk(A.chunks[0])")
    return list(v.to_delayed().ravel())


class DaskDataMatrix(MatrixShape):
    """The row blocks of ``A`` on the cluster, with the attributes the drivers read.

    Attributes
    ----------
    shape, n, d, nnz, is_sparse
    sweeps : float
        Distributed sweeps over ``A`` (as :class:`~sketchnewton._matrix.DataMatrix`).
    blocks : list of futures (or objects, without a client)
    shapes : list of tuple
        Rows of each block.
    """

    def __init__(self, ex, blocks):
        self.ex = ex
        self.blocks = blocks
        info = np.array(ex.gather([ex.submit(_block_info, b) for b in blocks]))
        d = {int(v) for v in info[:, 1]}
        if len(d) != 1:
            raise InputError(f"row blocks of A disagree on the number of columns: {sorted(d)}")
        self.shapes = [(int(r),) for r in info[:, 0]]
        self.shape = (int(info[:, 0].sum()), d.pop())
        self.nnz = int(info[:, 2].sum())
        self._row_nnz_squares = float(info[:, 3].sum())
        self.is_sparse = bool(info[:, 4].all())
        self.sweeps = 0.0

    def row_nnz_squares(self):
        return self._row_nnz_squares

    def map(self, fn, *args):
        """One task per block: ``fn(block, *args)``; returns the futures."""
        return [self.ex.submit(fn, blk, *args) for blk in self.blocks]

    def map_blocks(self, fn, per_block, *args):
        """``fn(block, per_block[j], *args)`` for every block ``j``."""
        return [self.ex.submit(fn, blk, pb, *args) for blk, pb in zip(self.blocks, per_block)]

    def vector(self, futures, key=None, width=None):
        shapes = self.shapes if width is None else [(s[0], width) for s in self.shapes]
        return BlockVector.of(self.ex, shapes, futures, key)

    def matvec(self, x):
        """``A @ x`` as a :class:`BlockVector` (one sweep, stays in the cluster)."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        self.sweeps += 1
        return self.vector(self.map(_matvec, x))

    def column_sums(self):
        """``A.T @ 1``, shape (d,)."""
        self.sweeps += 1
        return self.ex.total(self.map(_column_sums))


def _blocks_of(A, vectors, make, args):
    """Build one block object per row chunk from ``A`` and the aligned vectors (lazily)."""
    import dask

    rows = _check_matrix(A)
    cols = [_vector_blocks(v, name, rows, required) for name, v, required in vectors]
    delayed_A = A.to_delayed()[:, 0]
    return [dask.delayed(make, pure=True)(a, *[c[j] for c in cols], *args, j)
            for j, a in enumerate(delayed_A) if rows[j] > 0]


# -- normalized regression ---------------------------------------------------------------------
class _BlockForward:
    """Per-block forward state on a worker: ``z``, the link values at scale ``m``, and the
    block's sums and (optionally) gradient partials (module docstring)."""

    __slots__ = ("z", "u", "v", "q", "sums", "partials")

    def __init__(self, z, u, v, q, sums, partials):
        self.z, self.u, self.v, self.q, self.sums, self.partials = z, u, v, q, sums, partials

    def __sizeof__(self):
        return 4 * self.z.nbytes + 200


def _link_shift(z, code):
    if z.size == 0:
        return 0.0
    if code in (COSH, SINH):
        return float(np.abs(z).max())
    m = float(z.max())
    return max(m, 0.0) if code == RESNET else m


@_on_block
def _forward(blk, spec, x, m, code, partials):
    """The block's link values and sums at scale ``m`` (and its gradient partials)."""
    loss = blk.loss
    z = loss.A.matvec(x) if spec is None else _combine(spec)
    n = z.shape[0]
    u, v, q = np.empty(n), np.empty(n), np.empty(n)
    if m is None:  # no reference scale yet: the block's own, reported with its sums
        m = _link_shift(z, code)
    sums = scaled_link_sums(z, loss.b, loss.w2, code, m, u, v, q)
    P = blk.partials(z, u, v) if partials else None
    return _BlockForward(z, u, v, q, np.append(sums, m), P)


def _sums(st):
    return st.sums


def _small(st):
    """What the client needs of a block's forward at the common scale (summed over blocks)."""
    return st.sums[:8] if st.partials is None else (st.sums[:8], st.partials)


def _assemble(P, rho, fc):
    """Gradient (without the ridge) and ``K3`` from the summed partials (module docstring)."""
    Pr, Pu, Pv = P[:, 0], P[:, 1], P[:, 2]
    grad = rho * Pr + (rho * (rho - 1.0)) * Pu - (rho * fc) * Pv
    if P.shape[1] == 4:
        grad += P[:, 3]
    K3 = np.column_stack([rho * Pv, rho * Pr + (rho * (2.0 * rho - 1.0)) * Pu, (rho * rho) * Pu])
    return grad, K3


@_on_block
def _exact_gram(blk, st, scal, kind):
    hf = blk.factors(st, scal, kind)
    return hf.A.gram(hf.diag)


@_on_block
def _hessp_block(blk, st, scal, kind, p):
    hf = blk.factors(st, scal, kind)
    Ap = hf.A.matvec(p)
    return hf.A.rmatvec(hf.diag * Ap), Ap


class DaskForward:
    """Client-side result of a distributed forward pass (fields as :class:`Forward`)."""

    def __init__(self, x, z, states, rho, log_alpha, fc, ff, fun, grad=None, K=None):
        self.x, self.z, self.states = x, z, states
        self.rho, self.log_alpha, self.fc, self.ff, self.fun = rho, log_alpha, fc, ff, fun
        self.grad, self.K = grad, K  # from the same round (None when not asked for)


class DaskNormalizedState:
    """Client-side :class:`NormalizedState`: scalars and d-vectors; n-vectors on the workers."""

    def __init__(self, forward, grad, K):
        self.forward, self.grad, self.K = forward, grad, K

    def __getattr__(self, name):
        if name in ("x", "z", "states", "rho", "log_alpha", "fc", "ff", "fun"):
            return getattr(self.forward, name)
        raise AttributeError(name)

    @property
    def scal(self):
        fw = self.forward
        return (fw.rho, fw.fc, fw.ff, self.K)


class DaskHessianFactors:
    """Distributed :class:`~sketchnewton.losses.HessianFactors` (same methods, same meaning)."""

    def __init__(self, loss, state, kind):
        self.A, self.loss, self.state, self.kind = loss.A, loss, state, kind
        self.K, self.C = lowrank_part(state.K, state.ff, state.fc, kind)
        self.lam = loss.lam

    @property
    def shape(self):
        return (self.A.d, self.A.d)

    def lowrank(self):
        return self.K @ self.C @ self.K.T

    def matvec_with_image(self, p):
        """``(H p, A p)``: one pass; ``A p`` stays in the cluster."""
        p = np.ascontiguousarray(p, dtype=np.float64)
        parts = self.A.map_blocks(_hessp_block, self.state.states, self.state.scal, self.kind, p)
        self.A.sweeps += 2
        out = self.A.ex.total(parts, item=0)
        out += self.K @ (self.C @ (self.K.T @ p))
        out += self.lam * p
        return out, self.A.vector(parts, key=1)

    def matvec(self, p):
        return self.matvec_with_image(p)[0]

    def dense(self):
        """Exact ``H``: per-block Grams summed in the cluster."""
        parts = self.A.map_blocks(_exact_gram, self.state.states, self.state.scal, self.kind)
        self.A.sweeps += 1
        H = self.A.ex.total(parts)
        H += self.lowrank()
        H[np.diag_indices_from(H)] += self.lam
        return H


class _BlockSampler:
    """Row-sampled Grams over the blocks (leverage or uniform), shared by both loss families.

    Leverage scores (DMMW: CountSketch partial sums reduced across blocks,
    ``R`` on the client, projected row norms per block) are computed once and
    reused as raw quantities ``h_i = l_i / w_i`` kept on the workers, as in
    :class:`~sketchnewton.hessian.ModelBuilder`.
    """

    def __init__(self, A, sketch, rng, timings):
        if sketch not in DASK_SKETCHES:
            raise InputError(f"sketch {sketch!r} has no distributed implementation; use one of "
                             f"{DASK_SKETCHES} with dask inputs")
        self.A, self.sketch, self.rng, self.timings = A, sketch, rng, timings
        self.raw = None

    def _seed(self):
        return int(self.rng.integers(2 ** 63 - 1))

    def _leverage(self, states, scal):
        import time

        t0 = time.perf_counter()
        A = self.A
        s_cs = LEVERAGE_SKETCH_FACTOR * A.d
        SM = A.ex.total(A.map_blocks(_countsketch, states, scal, s_cs, self._seed()))
        Rinv, cols = sketch_r_inverse(SM)
        r = cols.shape[0]
        G = self.rng.standard_normal((r, LEVERAGE_PROJECTIONS)) / np.sqrt(LEVERAGE_PROJECTIONS)
        Z = np.zeros((SM.shape[1], LEVERAGE_PROJECTIONS))
        Z[cols] = Rinv @ G
        self.raw = A.map_blocks(_raw_leverage, states, scal, Z)
        A.sweeps += 2
        self.timings["leverage"] = self.timings.get("leverage", 0.0) + time.perf_counter() - t0

    def gram(self, states, scal, kind, s):
        """Sum over blocks of the sampled Gram; returns ``(G, rows kept)``."""
        A = self.A
        uniform = self.sketch == "uniform"
        if not uniform and self.raw is None:
            self._leverage(states, scal)
        raw = [None] * len(A.blocks) if uniform else self.raw
        tot = A.ex.total([A.ex.submit(_sampling_totals, blk, st, scal, r, uniform)
                          for blk, st, r in zip(A.blocks, states, raw)])
        if not tot[1] > 0:  # degenerate weights: uniform rows
            raise DomainError("every row has zero curvature weight: no rows to sample")
        a, bconst = (1.0 - _UNIFORM_MIX) / tot[0], _UNIFORM_MIX / tot[1]
        seed = self._seed()
        parts = [A.ex.submit(_sampled_gram, blk, st, scal, kind, r, uniform, a, bconst, s, seed,
                             self.sketch)
                 for blk, st, r in zip(A.blocks, states, raw)]
        G, counts = A.ex.total(parts)
        A.sweeps += counts[1] / max(A.nnz, 1)
        return G, int(counts[0])


class DaskModelBuilder(ModelBuilder):
    """:class:`ModelBuilder` whose Grams are computed blockwise on the cluster."""

    def __init__(self, A, sketch, sketch_size, random_state):
        super().__init__(sketch, sketch_size, random_state)
        self.sampler = None if sketch == "exact" else _BlockSampler(A, sketch, random_state,
                                                                     self.timings)

    def refresh(self):
        if self.sampler is not None:
            self.sampler.raw = None

    def sketched(self, factors, gn_factors, kind):
        import time

        t0 = time.perf_counter()
        st = gn_factors.state
        s = min(self.sketch_size, factors.A.n)
        H, n_rows = self.sampler.gram(st.states, st.scal, kind, s)
        if kind == "full":
            H += factors.lowrank() - gn_factors.lowrank()
        elif kind != "gauss_newton":
            raise InputError(f"unknown Hessian kind {kind!r}")
        H[np.diag_indices_from(H)] += factors.lam
        self.timings["gram"] += time.perf_counter() - t0
        return 0.5 * (H + H.T), n_rows


class DaskNormalizedLoss:
    """:class:`NormalizedRegressionLoss` on row-blocked dask arrays.

    Same methods as the in-memory loss (``forward``, ``evaluate``,
    ``hessian_factors``, ``loss``) with n-vectors kept in the cluster; see the
    module docstring for the one-round loss.

    Parameters
    ----------
    A : dask.array of shape (n, d), chunked by rows only
        Chunks are scipy sparse matrices or dense arrays.
    b : dask.array of shape (n,) chunked like the rows of ``A`` (or an array)
    link, lam, w : as :class:`NormalizedRegressionLoss` (``w`` scalar, array
        or dask array chunked like ``b``).
    """

    def __init__(self, A, b, link="resnet", lam=0.0, w=None):
        if link not in LINK_CODES:
            raise InputError(f"unknown link {link!r}; expected one of {LINKS}")
        if not is_dask_collection(A):
            raise InputError("A must be a dask array when b is one")
        self.link = "softmax" if link == "exp" else link
        self._code = LINK_CODES[link]
        self.lam = check_finite_scalar(lam, "lam", nonnegative=True)
        if w is not None and np.ndim(w) == 0 and not is_dask_collection(w):
            w = check_finite_scalar(w, "w")
        self.ex = _Executor()
        blocks = _blocks_of(A, [("b", b, True), ("w", w, False)], _make_regression_block,
                            (self.link,))
        self.A = DaskDataMatrix(self.ex, self.ex.materialize(blocks))
        self._log_scale = None  # log of the last normaliser (reference scale)

    @property
    def n_params(self):
        return self.A.d

    def model_builder(self, sketch, sketch_size, random_state):
        return DaskModelBuilder(self.A, sketch, sketch_size, random_state)

    def _round(self, spec_of, x, m, partials):
        """One forward round: per-block sums (``m`` None: the blocks' own scales), else the
        sums (and partials) summed in the cluster."""
        A = self.A
        states = [A.ex.submit(_forward, blk, spec_of(j), x, m, self._code, partials)
                  for j, blk in enumerate(A.blocks)]
        small = [A.ex.submit(_small if m is not None else _sums, st) for st in states]
        if m is None:
            return states, np.array(A.ex.gather(small))
        if partials:
            A.sweeps += 1  # A^T Y while the block is in memory
        return states, A.ex.total(small)

    def forward(self, x, z=None, *, gradient=True):
        """Loss, gradient and ``K3`` at ``x`` in one round (``z = A x`` a :class:`BlockVector`).

        The n-vectors stay on the workers. ``gradient=False`` leaves out the
        gradient partials (just the loss: :meth:`loss`).

        Raises
        ------
        DomainError
            If ``alpha <= 0`` or the loss is not finite.
        """
        x = check_vector(x, "x", self.A.d)
        if z is None:
            self.A.sweeps += 1
        spec_of = (lambda j: None) if z is None else z.block
        m = self._log_scale
        if m is None:
            # first evaluation: combine the blocks' own scales, then redo at the common one
            states, sums = self._round(spec_of, x, None, False)
            ms = sums[:, 8]
            m = float(ms.max())
            alpha = float(sums[:, 0] @ np.exp(ms - m))
            if alpha > 0:
                m += np.log(alpha)
            spec_of = self.A.vector(states, key="z").block
        states, tot = self._round(spec_of, x, m, gradient)
        sums, P = tot if gradient else (tot, None)
        S_u, S_uu, S_ur, S_ub, S_rr, S_rb, S_bb, wz = sums
        if not (S_u > 0 and np.isfinite(S_u)):
            raise DomainError(
                f"alpha = <phi(Ax), 1> is not positive (alpha = {S_u:.3g} * exp({m:.3g})) for link "
                f"{self.link!r}: x is outside the domain of the loss")
        rho = 1.0 / S_u
        ff = rho * rho * S_uu
        fc = rho * rho * S_ur + rho * (rho - 1.0) * S_ub
        cc = rho * rho * S_rr + 2.0 * rho * (rho - 1.0) * S_rb + (rho - 1.0) ** 2 * S_bb
        fun = 0.5 * cc + 0.5 * wz + 0.5 * self.lam * float(x @ x)
        if not np.isfinite(fun):
            raise DomainError(f"loss is not finite ({fun}) at this x")
        log_alpha = m + np.log(S_u)
        self._log_scale = log_alpha
        grad, K3 = (None, None) if P is None else _assemble(P, rho, fc)
        if grad is not None:
            grad += self.lam * x
        return DaskForward(x, self.A.vector(states, key="z"), states, rho, log_alpha, fc, ff, fun,
                           grad, K3)

    def loss(self, x, *, z=None):
        return self.forward(x, z, gradient=False).fun

    def evaluate(self, x, *, hessian=True, z=None, forward=None):
        """Loss, gradient and the low-rank factors ``K``: one round, none for a ``forward``
        that computed them (the line search's accepted trial)."""
        fw = forward
        if fw is None or fw.grad is None:
            fw = self.forward(x if fw is None else fw.x, z if fw is None else fw.z)
        return DaskNormalizedState(fw, fw.grad, fw.K if hessian else None)

    def loss_gradient(self, x):
        s = self.evaluate(x, hessian=False)
        return s.fun, s.grad

    def hessian_factors(self, state, kind="full"):
        if kind not in ("full", "gauss_newton"):
            raise InputError(f"unknown Hessian kind {kind!r}")
        if not isinstance(state, DaskNormalizedState):
            state = self.evaluate(state, hessian=True)
        elif state.K is None:  # K came with the forward round (or, if not, costs one)
            state = self.evaluate(state.x, hessian=True, forward=state.forward)
        return DaskHessianFactors(self, state, kind)


# -- cross-entropy -------------------------------------------------------------------------
class _ClassifierState:
    __slots__ = ("fun", "grad", "cache")

    def __init__(self, fun, grad, cache):
        self.fun, self.grad, self.cache = fun, grad, cache

    def __sizeof__(self):
        return sum(v.nbytes for v in self.cache.values()) + self.grad.nbytes + 200


@_on_block
def _logits(blk, x):
    return blk.ops.logits(x)


@_on_block
def _clf_value(blk, spec, x):
    return blk.ops.value(_combine(spec), x)


@_on_block
def _clf_state(blk, spec, x):
    return _ClassifierState(*blk.ops.state(_combine(spec), x))


def _clf_small(st):
    return (np.array(st.fun), st.grad)


@_on_block
def _clf_hessp(blk, st, v):
    return blk.ops.hessp(st.cache, v)


@_on_block
def _clf_exact(blk, st):
    return blk.ops.exact_hessian(st.cache)


def _class_weights(blk, K):
    loss = blk.ops.loss
    return np.bincount(loss.y.astype(np.int64), weights=loss.sw, minlength=K)


class DaskClassifierLoss:
    """A :class:`LogisticLoss` (``n_classes == 2``) or :class:`MultinomialLoss` on dask arrays.

    Parameters as the in-memory losses; ``X`` chunked by rows only, ``y``
    (integer codes) and ``sample_weight`` chunked like its rows.
    """

    def __init__(self, X, y, n_classes, lam=0.0, sample_weight=None, fit_intercept=False):
        if int(n_classes) < 2:
            raise InputError(f"n_classes must be >= 2, got {n_classes}")
        self.n_classes = int(n_classes)
        self.fit_intercept = bool(fit_intercept)
        self.lam = check_finite_scalar(lam, "lam", nonnegative=True)
        self.ex = _Executor()
        blocks = _blocks_of(X, [("y", y, True), ("sample_weight", sample_weight, False)],
                            _make_classifier_block, (self.n_classes, self.fit_intercept))
        self.A = DaskDataMatrix(self.ex, self.ex.materialize(blocks))
        self.n_features = self.A.d - self.fit_intercept
        ridge = np.full(self.A.d, self.lam)
        if self.fit_intercept:
            ridge[-1] = 0.0
        self._ridge_block = ridge
        self._ridge = ridge if self.n_classes == 2 else np.tile(ridge, self.n_classes)

    @property
    def n_params(self):
        return self._ridge.shape[0]

    def make_ops(self):
        return DaskClassifierOps(self)


class DaskClassifierOps:
    """The classifier driver's ops (``_BinaryOps`` / ``_MultinomialOps``) summed over blocks.

    Each block runs the in-memory ops of its own rows with ``lam = 0``; the
    ridge is added once on the client.
    """

    def __init__(self, loss):
        self.loss, self.A = loss, loss.A
        self.K = 1 if loss.n_classes == 2 else loss.n_classes
        self.d = self.A.d
        self.ridge = loss._ridge
        self.n_params = loss.n_params
        self.sampler = None

    def _width(self):
        return None if self.K == 1 else self.K

    def logits(self, x):
        self.A.sweeps += 1
        return self.A.vector(self.A.map(_logits, np.ascontiguousarray(x)), width=self._width())

    def value(self, Z, x):
        parts = [self.A.ex.submit(_clf_value, blk, Z.block(j), x) for j, blk in enumerate(self.A.blocks)]
        return float(sum(self.A.ex.gather(parts))) + 0.5 * float(self.ridge @ (x * x))

    def state(self, Z, x):
        states = [self.A.ex.submit(_clf_state, blk, Z.block(j), x)
                  for j, blk in enumerate(self.A.blocks)]
        fun, grad = self.A.ex.total([self.A.ex.submit(_clf_small, st) for st in states])
        self.A.sweeps += 1
        return float(fun) + 0.5 * float(self.ridge @ (x * x)), grad + self.ridge * x, {
            "states": states}

    def hessp(self, cache, v):
        parts = self.A.map_blocks(_clf_hessp, cache["states"], np.ascontiguousarray(v))
        self.A.sweeps += 2
        return self.A.ex.total(parts, item=0) + self.ridge * v, self.A.vector(
            parts, key=1, width=self._width())

    def start(self):
        """The in-memory ops' start, from the class weights (one round of K numbers)."""
        freq = self.A.ex.total(self.A.map(_class_weights, max(self.K, 2)))
        x0 = (_BinaryOps if self.K == 1 else _MultinomialOps).start_from_class_weights(
            self, freq)
        const = x0[-1] if self.K == 1 else x0.reshape(self.K, self.d)[:, -1]
        if not self.loss.fit_intercept:
            const = 0.0 * const
        shapes = self.A.shapes if self.K == 1 else [(s[0], self.K) for s in self.A.shapes]
        return x0, BlockVector(self.A.ex, shapes, [], np.array(const, dtype=np.float64))

    def exact_hessian(self, cache):
        H = self.A.ex.total(self.A.map_blocks(_clf_exact, cache["states"]))
        self.A.sweeps += self.K * (self.K + 1) / 2 if self.K > 1 else 1
        H[np.diag_indices_from(H)] += self.ridge
        return H

    def sketched_hessian(self, cache, sketch_size, sketch, rng, timings):
        if self.sampler is None:
            self.sampler = _BlockSampler(self.A, sketch, rng, timings)
        H, s = self.sampler.gram(cache["states"], None, "full", sketch_size)
        H[np.diag_indices_from(H)] += self.ridge
        return H, s

    def shift_fix(self, H):
        return H if self.K == 1 else _MultinomialOps.shift_fix(self, H)
