"""The multinomial (softmax) loss's per-block work, with the logits as its one ``n x K`` array.

A block's state is ``Z = A W^T`` (n, K) and per-row statistics ``stats`` (n, 2), the row's
largest logit and the inverse sum of its shifted exponentials
(:func:`~sketchnewton._kernels.glm.multinomial_pass`). The probabilities ``P`` are never kept:
:func:`~sketchnewton._kernels.glm.multinomial_probs` forms those of any rows again, bit for bit
the same numbers, one ``exp`` per entry, where they are needed: by row blocks inside the
transposed products (gradient weights ``sw (P - Y)``, Hessian weights), by blocks for the
curvature weights and the Kronecker factors, whole only for the rarely used exact or
per-feature curvature (docs/math.md 3.2). A line-search trial moves ``Z`` in place by
``dt A p``, ``A p`` formed by row blocks (:func:`move`), and the loss of a point whose state
is not kept is summed by row blocks (:func:`value`): no ``n x K`` array besides ``Z``.
"""

import numpy as np

from .._kernels.glm import (
    block_total,
    multinomial_curvature,
    multinomial_hess_weights,
    multinomial_pass,
    multinomial_probs,
    multinomial_residual,
    multinomial_row_terms,
)
from .. import _dense
from .._matrix import DataMatrix, InterceptMatrix, MatrixShape, row_block_size
from ..exceptions import DomainError
from ._base import BlockState, State

__all__ = ["row_pass", "probs", "gradient", "hessp", "hessp_of_image", "hess_matmat",
           "class_diagonal", "noise", "curvature", "class_gram", "kronecker", "value", "move",
           "LogitsLine", "GatheredRows", "RowsOf", "subset_block_state"]


def row_pass(blk, Z):
    """``(loss, stats)`` of the block's logits ``Z``."""
    stats = np.empty((Z.shape[0], 2))
    return multinomial_pass(Z, blk["y_codes"], blk["sw"], stats), stats


def probs(Z, stats, rows=None):
    """The probabilities of every row (``rows`` None) or of ``rows``: a new (n or m, K) array."""
    if rows is None:
        Z, stats = np.asarray(Z), np.asarray(stats)  # whole rows of a RowsOf: gathered
        return multinomial_probs(Z, stats, np.empty_like(Z))
    return multinomial_probs(Z[rows], stats[rows], np.empty((len(rows), Z.shape[1])))


def _block_rows(K):
    """Rows of a block of about 2 MiB of ``K`` float64 columns (at least 256)."""
    return max(256, row_block_size(K))


def _row_blocks(m, K):
    """``(lo, hi)`` over ``range(m)`` by blocks of :func:`_block_rows` rows."""
    step = _block_rows(K)
    for lo in range(0, m, step):
        yield lo, min(m, lo + step)


def gradient(blk, Z, stats):
    """``A^T (sw (P - Y))`` as (K d,): the weights formed by row blocks inside the product."""
    y, sw = blk["y_codes"], blk["sw"]

    def residual(a, b, out):
        return multinomial_residual(multinomial_probs(Z[a:b], stats[a:b], out), y[a:b], sw[a:b],
                                    out)

    return blk.A.rmatmat_rows(residual, Z.shape[1]).T.ravel()


def hessp(blk, st, v, precise=True, image=True):
    """``(H v without the ridge, A V or None)``, ``v`` (K d,): one fused product. On sparse rows
    the probabilities are kept in the state's ``cache[1]`` from its first product on (one more
    ``n x K`` array where the data's own size is ``O(nnz)``): formed again inside every product
    they cost an ``exp`` an entry, 40% of a product (kernel table, 10 non-zeros a row, K = 8)."""
    Z, stats = st.Z, st.cache[0]
    K = Z.shape[1]
    if blk.A.is_sparse and st.cache[1] is None:
        st.cache = (stats, probs(Z, stats))
    out, Zd = blk.A.multinomial_hessp(Z, stats, blk["sw"], v.reshape(K, -1).T, precise=precise,
                                      image=image, P=st.cache[1])
    return out.T.ravel(), Zd


def hessp_of_image(blk, Z, stats, Zd):
    """``A^T B (A v)`` from the image ``Zd = A V`` (n, K): one transposed product."""
    sw, Zd = blk["sw"], Zd.reshape(Z.shape)

    def weights(a, b, out):  # the Hessian's action on rows a:b (no n x K temporary)
        return multinomial_hess_weights(multinomial_probs(Z[a:b], stats[a:b], out), sw[a:b],
                                        Zd[a:b], out)

    return blk.A.rmatmat_rows(weights, Z.shape[1]).T.ravel()


def hess_matmat(blk, Z, stats, V):
    """``A^T B A V`` for ``V`` (K d, r): one sweep of ``K r`` columns each way."""
    P, sw, K = probs(Z, stats), blk["sw"], Z.shape[1]
    d, r = blk.A.d, V.shape[1]
    W = V.reshape(K, d, r).transpose(1, 0, 2).reshape(d, K * r)
    Zd = blk.A.matmat(W).reshape(-1, K, r)
    s = np.einsum("nk,nkr->nr", P, Zd)
    M = (sw[:, None, None] * P[:, :, None]) * (Zd - s[:, None, :])
    out = blk.A.rmatmat(M.reshape(-1, K * r)).reshape(d, K, r)
    return out.transpose(1, 0, 2).reshape(K * d, r)


def class_diagonal(blk, Z, stats):
    """The per-feature ``K x K`` blocks of ``A^T B A`` (d, K, K): one sweep."""
    return blk.A.class_blocks(probs(Z, stats), blk["sw"])


def noise(blk, Z, stats):
    """``|A|^T (sw (P + Y))``: the magnitude of the terms of the gradient's weights (dense rows:
    by row blocks, no ``n x K`` array)."""
    A, sw, y = blk.A, blk["sw"], blk["y_codes"]
    dense = A.base if isinstance(A, InterceptMatrix) else A
    out, (n, K) = 0.0, Z.shape
    for lo, hi in _row_blocks(n, K) if not A.is_sparse else [(0, n)]:
        rbar = probs(Z[lo:hi], stats[lo:hi])
        rbar *= sw[lo:hi, None]
        rbar[np.arange(hi - lo), y[lo:hi]] += sw[lo:hi]
        rows = A if A.is_sparse else DataMatrix.trusted(dense.dense[lo:hi])
        out = out + (rows if rows is A or A is dense else InterceptMatrix(rows)).abs_rmatmat(rbar)
    return out.T.ravel()


def curvature(blk, Z, stats):
    """``sw_i (1 - ||p_i||^2) = tr B_i`` per row (n,), by row blocks."""
    n, K = Z.shape
    out, buf, sw = np.empty(n), np.empty((min(n, _block_rows(K)), K)), blk["sw"]
    for lo, hi in _row_blocks(n, K):
        multinomial_curvature(multinomial_probs(Z[lo:hi], stats[lo:hi], buf[:hi - lo]),
                              sw[lo:hi], out[lo:hi])
    return out


def class_gram(A, Z, stats, sw, rows=None):
    """``sum_i B_i (x) a_i a_i^T`` over ``rows`` (all when None): ``K (K + 1) / 2`` weighted
    Grams, ``B_i = sw_i (diag(p_i) - p_i p_i^T)`` (``sw`` one weight per row used)."""
    P = probs(Z, stats, rows)
    K, d = P.shape[1], A.d
    H = np.zeros((K * d, K * d))
    for k in range(K):
        for l in range(k, K):
            wkl = -sw * P[:, k] * P[:, l]
            if k == l:
                wkl = wkl + sw * P[:, k]
            blk = A.gram(wkl, rows=rows)
            H[k * d:(k + 1) * d, l * d:(l + 1) * d] = blk
            if l != k:
                H[l * d:(l + 1) * d, k * d:(k + 1) * d] = blk.T
    return H


def kronecker(blk, Z, stats, sample=None):
    """The block's ``(G, S, [sum c, rows, nnz])``: ``G = sum_r w_r c_r a_r a_r^T``,
    ``S = sum_r w_r B_r``, ``c_r = tr B_r``, over the sampled rows (weights ``w_r``:
    ``row_weights ** 2``) or every row (``sample`` None, ``w = 1``); the probabilities formed
    by row blocks."""
    sw, K = blk["sw"], Z.shape[1]
    if sample is None:
        rows, w = None, sw
    else:
        rows, w = sample.rows, sample.row_weights ** 2 * sw[sample.rows]
    m = w.shape[0]
    c, S, col = np.empty(m), np.zeros((K, K)), np.zeros(K)
    buf = np.empty((min(m, _block_rows(K)), K))
    for lo, hi in _row_blocks(m, K):
        at = slice(lo, hi) if rows is None else rows[lo:hi]
        Pb, wb = multinomial_probs(Z[at], stats[at], buf[:hi - lo]), w[lo:hi]
        c[lo:hi] = wb * np.maximum(1.0 - np.einsum("ik,ik->i", Pb, Pb), 0.0)
        S -= (Pb * wb[:, None]).T @ Pb
        col += wb @ Pb
    S[np.diag_indices_from(S)] += col
    G = blk.A.gram(c, rows=rows)
    nnz = blk.A.row_nnz().sum() if rows is None else blk.A.row_nnz()[rows].sum()
    return G, S, np.array([c.sum(), m, nnz], dtype=np.float64)


def value(blk, x, K):
    """The block's loss at ``x`` (K d,) without keeping its logits: ``A W^T`` formed by row
    blocks, each block's loss terms summed as :func:`row_pass` sums them (the same number)."""
    n, y, sw = blk.A.n, blk["y_codes"], blk["sw"]
    terms, stats = np.empty(n), np.empty((n, 2))

    def rows_of(a, b, out, Zb):
        multinomial_row_terms(Zb, y[a:b], sw[a:b], stats[a:b], terms[a:b])
        return out

    blk.A.rmatmat_rows(rows_of, 0, X=x.reshape(K, -1).T)
    return block_total(terms)


def move(blk, Z, p, dt):
    """``Z += dt A p`` in place (``A p`` by row blocks of the float64 product, never whole), and
    the loss there: ``(loss, stats, max |A p|)``."""
    n, K = Z.shape
    y, sw = blk["y_codes"], blk["sw"]
    terms, stats, largest = np.empty(n), np.empty((n, 2)), [0.0]

    def rows_of(a, b, out, D):
        largest.append(max(float(D.max()), -float(D.min())) if D.size else 0.0)
        Zb = Z[a:b]
        D *= dt
        Zb += D
        multinomial_row_terms(Zb, y[a:b], sw[a:b], stats[a:b], terms[a:b])
        return out

    blk.A.rmatmat_rows(rows_of, 0, X=p.reshape(K, -1).T)
    return block_total(terms), stats, max(largest)


class LogitsLine:
    """The line-search trials of the multinomial loss in memory along ``x + t p`` (the interface
    of :class:`~sketchnewton.losses.ImageLine`), with no ``n x K`` array besides the state's
    logits ``Z``: each trial moves ``Z`` in place by ``(t - t_before) A p``, ``A p`` formed by
    row blocks (one sweep, :func:`move`), and evaluates the loss there in the
    same sweep. The first sweep takes the unit step while it measures ``max |A p|`` (most
    searches accept it: one sweep, as for the image ``A p`` alone). A trial's state shares
    ``Z``: it is valid until the next trial; :meth:`close` moves ``Z`` back when no trial is
    accepted (to rounding: ``(Z + t A p) - t A p``).
    """

    def __init__(self, loss, state, p):
        self.loss, self.state, self.p = loss, state, np.ascontiguousarray(p, dtype=np.float64)
        self.t, self.dz, self._last = 0.0, np.inf, None

    def first(self, max_dz):
        """See :meth:`~sketchnewton.losses.ImageLine.first` (the sweep takes the unit step)."""
        self._last, self.dz = self._move(1.0)
        return 1.0 if self.dz <= max_dz else max_dz / self.dz

    def trial(self, t):
        """See :meth:`~sketchnewton.losses.ImageLine.trial`: valid until the next trial."""
        if t != self.t or self._last is None:
            self._last = self._move(t)[0]
        if not np.isfinite(self._last.fun):
            raise DomainError(f"loss is not finite ({self._last.fun}) at this x")
        return self._last

    def again(self, trial, t):
        """The trial at ``t`` again: one sweep when later trials moved ``Z``."""
        return self.trial(t)

    def close(self, accepted):
        """``Z`` moved back (one sweep) when no trial was accepted."""
        if accepted is None and self.t != 0.0:
            self._move(0.0)
        self._last = None

    def _move(self, t):
        loss, blocks, st = self.loss, self.loss.data, self.state.handles[0]
        fun, stats, dz = move(blocks.block, st.Z, self.p, t - self.t)
        blocks.count_sweeps(1)
        self.t = t
        x = self.state.x + t * self.p
        total = float(fun) + 0.5 * float(loss.ridge @ (x * x))
        return State(x, total, st.Z, [BlockState(st.Z, (stats, None), fun, None)]), dz


class GatheredRows(MatrixShape):
    """The rows ``rows`` of a dense :class:`~sketchnewton._matrix.DataMatrix`, not copied: the
    sub-sampled Hessian's matrix (up to ``0.4 n`` rows, which a copy would add to the data).
    Its Hessian products and row-block transposed products gather one block of rows at a time
    (``O(block d)``, ``_dense.rproduct_rows``), Grams read the rows where they are; any other
    operation runs on a temporary copy of the rows.

    Parameters
    ----------
    base : DataMatrix of shape (n, d), dense
    rows : ndarray of int, shape (m,)
    """

    is_sparse = False

    def __init__(self, base, rows):
        self.base, self.rows = base, np.asarray(rows, dtype=np.intp)
        m = self.rows.shape[0]
        self.dtype, self.shape, self.nnz = base.dtype, (m, base.d), m * base.d

    def row_nnz(self):
        return np.full(self.n, self.d, dtype=np.int64)

    def rmatmat_rows(self, rows_of, k, ones=False, precise=True, X=None):
        """See :meth:`~sketchnewton._matrix.DataMatrix.rmatmat_rows` (row blocks gathered)."""
        return _dense.rproduct_rows(self.base.dense, rows_of, k, ones, precise, X, self.rows)

    multinomial_hessp = DataMatrix.multinomial_hessp  # its dense form: through rmatmat_rows

    def fused_sweeps(self, blocks=False, ones=False, threads=None):
        return self.base.fused_sweeps(blocks, ones, threads)

    def gram(self, weights, rows=None, ones=False, precise=True, tail=None):
        return self.base.gram(weights, self.rows if rows is None else self.rows[rows], ones,
                              precise, tail)

    def take_rows(self, rows):
        return self.base.take_rows(self.rows[rows])

    def __getattr__(self, name):  # anything else: on a copy of the rows, for its duration
        if name in ("base", "rows"):
            raise AttributeError(name)
        return getattr(DataMatrix.trusted(self.base.dense[self.rows]), name)


class RowsOf:
    """The rows ``rows`` of an array, not copied: ``[key]`` gathers ``array[rows[key]]`` (a
    block of the sub-sampled Hessian's rows), ``np.asarray`` all of them (a copy, for the
    rarely used whole-array paths)."""

    def __init__(self, array, rows):
        self.array, self.rows = array, rows
        self.shape = (rows.shape[0],) + array.shape[1:]
        self.nbytes = 0  # a view: holds no rows of its own

    def __getitem__(self, key):
        return self.array[self.rows[key]]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.array[self.rows], dtype=dtype)


def subset_block_state(blk, st, rows):
    """The block state of the row subset ``blk`` (rows ``rows`` of the block state ``st``, with
    the subset's weights): its logits and statistics read from ``st``'s (:class:`RowsOf`), its
    loss summed by row blocks (``O(block K)``, no pass over ``A``)."""
    Z, stats = RowsOf(st.Z, rows), RowsOf(st.cache[0], rows)
    y, sw, (m, K) = blk["y_codes"], blk["sw"], Z.shape
    terms, scratch = np.empty(m), np.empty((min(m, _block_rows(K)), 2))
    for lo, hi in _row_blocks(m, K):
        multinomial_row_terms(Z[lo:hi], y[lo:hi], sw[lo:hi], scratch[:hi - lo], terms[lo:hi])
    return BlockState(Z, (stats, None), block_total(terms), None)
