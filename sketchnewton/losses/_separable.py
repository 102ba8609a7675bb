"""Row-separable losses ``sum_i s_i l(z_i, y_i) + 1/2 sum_j ridge_j x_j^2`` on row blocks.

The binary logistic, multinomial (softmax) and Poisson losses differ only in
their row kernel (:mod:`sketchnewton._kernels.glm`); everything else -
evaluation, gradient, Hessian products, exact and sampled Hessians, the
default start - is written once here over :class:`~sketchnewton._blocks.RowBlocks`
(docs/math.md sections 3 and 4). The intercept, when fitted, is an implicit
column of ones (:class:`~sketchnewton._matrix.InterceptMatrix`, never a copy of
``A``) with a zero ridge.

Parameters are laid out as ``x.reshape(width, d)`` (one row per class,
``width`` = 1 except for the multinomial loss), so that the linear predictor
is ``Z = A W^T`` of shape (n, width).
"""

import copy

import numpy as np

from .._blocks import Block, resolve
from .._kernels.glm import (
    logistic_pass,
    multinomial_curvature,
    multinomial_hess_weights,
    multinomial_pass,
    multinomial_residual,
    poisson_pass,
)
from .._matrix import InterceptMatrix, as_data_matrix, row_block_size
from .._validation import check_bool, check_real, check_vector
from ..exceptions import DomainError, InputError
from ._base import HessianFactors, LossBase, State, local_blocks

__all__ = ["SeparableLoss", "LOGISTIC", "POISSON", "MULTINOMIAL"]

LOGISTIC, POISSON, MULTINOMIAL = "logistic", "poisson", "multinomial"
_VECTOR_KERNELS = {LOGISTIC: logistic_pass, POISSON: poisson_pass}


# -- per-block tasks --------------------------------------------------------------------------
class _BlockState:
    """A block's evaluation: the linear predictor ``Z``, the row kernel's outputs, the loss.

    Multinomial: ``Z`` and the probabilities ``P`` are the only ``n x K`` arrays kept (the
    gradient weights ``sw (P - Y)`` are formed by row blocks inside the gradient's product)."""

    __slots__ = ("Z", "cache", "fun", "grad")

    def __init__(self, Z, cache, fun, grad):
        self.Z, self.cache, self.fun, self.grad = Z, cache, fun, grad

    def __sizeof__(self):
        return (1 + sum(c is not None for c in self.cache)) * self.Z.nbytes + 200


def _predictor(blk, x, width):
    if width == 1:
        return blk.A.matvec(x)
    return blk.A.matmat(x.reshape(width, -1).T)


def _row_pass(blk, Z, family):
    """``(loss, cache)``: cache ``(r, h)`` (gradient and curvature weights) or ``(P, None)``."""
    if family == MULTINOMIAL:
        P = np.empty_like(Z)
        return multinomial_pass(Z, blk["y_codes"], blk["sw"], P), (P, None)
    r, h = np.empty_like(Z), np.empty_like(Z)
    return _VECTOR_KERNELS[family](Z, blk["y"], blk["sw"], r, h), (r, h)


def _block_grad(blk, cache, family):
    if family == MULTINOMIAL:
        P, y, sw = cache[0], blk["y_codes"], blk["sw"]

        def residual(a, b, out):  # sw (P - Y) of rows a:b
            return multinomial_residual(P[a:b], y[a:b], sw[a:b], out)

        return blk.A.rmatmat_rows(residual, P.shape[1]).T.ravel()
    return blk.A.rmatvec(cache[0])


def _forward_task(blk, item, x, family, width, with_grad):
    Z = _predictor(blk, x, width) if item is None else resolve(item)
    fun, cache = _row_pass(blk, Z, family)
    grad = _block_grad(blk, cache, family) if with_grad and np.isfinite(fun) else None
    return _BlockState(Z, cache, fun, grad)


def _small(st):
    fun = np.array(st.fun)
    return fun if st.grad is None else (fun, st.grad)


def _grad_task(blk, st, family):
    return _block_grad(blk, st.cache, family)


def _hessp_task(blk, st, family, width, v, precise=True):
    if family != MULTINOMIAL:
        return blk.A.normal_matvec(st.cache[1], v, precise=precise)
    out, Zd = blk.A.multinomial_hessp(st.cache[0], blk["sw"], v.reshape(width, -1).T,
                                      precise=precise)
    return out.T.ravel(), Zd


def _hessp_image_task(blk, st, item, family, width):
    """``A^T B (A v)`` of the block from its piece of the image ``A v``."""
    Zd = resolve(item)
    if family != MULTINOMIAL:
        return blk.A.rmatvec(st.cache[1] * Zd)
    P, sw, Zd = st.cache[0], blk["sw"], Zd.reshape(-1, width)

    def weights(a, b, out):  # the Hessian's action on rows a:b (no n x K temporary)
        return multinomial_hess_weights(P[a:b], sw[a:b], Zd[a:b], out)

    return blk.A.rmatmat_rows(weights, width).T.ravel()


def _hess_matmat_task(blk, st, family, width, V):
    """``A^T B A V`` for the block's rows, ``V`` (p, r): one sweep of ``r`` (``K r``) columns."""
    if family != MULTINOMIAL:
        Z = blk.A.matmat(V)
        return blk.A.rmatmat(st.cache[1][:, None] * Z)
    P, sw = st.cache[0], blk["sw"]
    d, r = blk.A.d, V.shape[1]
    W = V.reshape(width, d, r).transpose(1, 0, 2).reshape(d, width * r)
    Zd = blk.A.matmat(W).reshape(-1, width, r)
    s = np.einsum("nk,nkr->nr", P, Zd)
    M = (sw[:, None, None] * P[:, :, None]) * (Zd - s[:, None, :])
    out = blk.A.rmatmat(M.reshape(-1, width * r)).reshape(d, width, r)
    return out.transpose(1, 0, 2).reshape(width * d, r)


def _diag_task(blk, st, family):
    """The diagonal of the block's ``A^T B A`` (per feature ``K x K`` blocks for multinomial)."""
    if family != MULTINOMIAL:
        return blk.A.weighted_col_sq(st.cache[1])
    return blk.A.class_blocks(st.cache[0], blk["sw"])


def _noise_task(blk, st, family):
    """``|A|^T rbar``, ``rbar`` the magnitude of the terms the gradient weights are formed from:
    ``sw (p + y)`` (logistic), ``sw (mu + y)`` (Poisson), ``sw (P + Y)`` per class."""
    sw = blk["sw"]
    if family == MULTINOMIAL:
        P = st.cache[0]
        rbar = sw[:, None] * P
        rbar[np.arange(P.shape[0]), blk["y_codes"]] += sw
        return blk.A.abs_rmatmat(rbar).T.ravel()
    h_or_mu = st.cache[0] + sw * blk["y"]  # r = sw (p - y): |p|, |y| via r + sw y
    return blk.A.abs_rmatmat(np.abs(h_or_mu) + sw * blk["y"])


def _weights_task(blk, st, family):
    if family != MULTINOMIAL:
        return st.cache[1]
    P = st.cache[0]
    return multinomial_curvature(P, blk["sw"], np.empty(P.shape[0]))


def _class_blocks(A, P, sw, rows=None):
    """``sum_i B_i (x) a_i a_i^T`` over ``rows`` (all when None): ``K (K + 1) / 2`` weighted Grams,
    ``B_i = sw_i (diag(p_i) - p_i p_i^T)``."""
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


def _gram_task(blk, st, family):
    if family != MULTINOMIAL:
        return blk.A.gram(st.cache[1])
    return _class_blocks(blk.A, st.cache[0], blk["sw"])


def _sampled_gram_task(blk, st, sample, family):
    rows, w2 = sample.rows, sample.row_weights ** 2
    if family != MULTINOMIAL:
        G = blk.A.gram(w2 * st.cache[1][rows], rows=rows)
    else:
        G = _class_blocks(blk.A, st.cache[0][rows], w2 * blk["sw"][rows], rows=rows)
    return G, np.array([rows.shape[0], blk.A.row_nnz()[rows].sum()], dtype=np.float64)


def _kron_task(blk, st, sample=None):
    """The block's ``(G, S, [sum c, rows, nnz])``: ``G = sum_r w_r c_r a_r a_r^T``,
    ``S = sum_r w_r B_r``, ``c_r = tr B_r``, over the sampled rows (weights ``w_r``:
    ``row_weights ** 2``) or every row (``sample`` None, ``w = 1``)."""
    P, sw = st.cache[0], blk["sw"]
    if sample is None:
        rows, Pr, w = None, P, sw
    else:
        rows, Pr, w = sample.rows, P[sample.rows], sample.row_weights ** 2 * sw[sample.rows]
    c = w * np.maximum(1.0 - np.einsum("ik,ik->i", Pr, Pr), 0.0)
    G = blk.A.gram(c, rows=rows)
    K = Pr.shape[1]
    S = np.zeros((K, K))
    step = max(256, row_block_size(K))
    for lo in range(0, Pr.shape[0], step):  # by row blocks: no n x K temporary
        Pb = Pr[lo:lo + step]
        S -= (Pb * w[lo:lo + step, None]).T @ Pb
    S[np.diag_indices_from(S)] += w @ Pr
    nnz = blk.A.row_nnz().sum() if rows is None else blk.A.row_nnz()[rows].sum()
    return G, S, np.array([c.sum(), Pr.shape[0], nnz], dtype=np.float64)


def _label_sums_task(blk, family, width):
    """Per class (multinomial) or ``[sum s y, sum s]``: what the default start needs."""
    sw = blk["sw"]
    if family == MULTINOMIAL:
        return np.bincount(blk["y_codes"], weights=sw, minlength=width).astype(np.float64)
    return np.array([float(sw @ blk["y"]), float(sw.sum())])


def _matvec_task(blk, x, width):
    return _predictor(blk, x, width)


# -- block construction -------------------------------------------------------------------------
def _labels(y, n, family, n_classes):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"y must have shape ({n},), got {y.shape}")
    if family == POISSON:
        y = check_vector(y, "y", n)
        if np.any(y < 0):
            raise InputError("y must be non-negative counts for the Poisson loss")
        return {"y": y}
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) \
                or not np.all(np.mod(y, 1) == 0):
            raise InputError(f"y must hold integer class codes 0..{n_classes - 1}")
    codes = y.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= n_classes):
        raise InputError(f"class codes must lie in [0, {n_classes}), got "
                         f"[{codes.min()}, {codes.max()}]")
    if family == MULTINOMIAL:
        return {"y_codes": codes}
    return {"y": codes.astype(np.float64)}


def make_separable_block(A, index, y, sample_weight, family, n_classes, fit_intercept):
    """One row block: the matrix (with the implicit intercept column), labels and weights."""
    dm = as_data_matrix(A, "X")
    M = InterceptMatrix(dm) if fit_intercept else dm
    vectors = _labels(y, dm.n, family, n_classes)
    if sample_weight is None:
        sw = np.ones(dm.n)
    else:
        sw = check_vector(sample_weight, "sample_weight", dm.n)
        if np.any(sw < 0):
            raise InputError("sample_weight must be non-negative")
    return Block(M, index, sw=sw, **vectors)


# -- the loss ---------------------------------------------------------------------------------
class SeparableLoss(LossBase):
    """Common implementation of the row-separable losses (see the module docstring).

    Subclasses set ``family`` and call :meth:`_setup`.
    """

    hessian_kinds = ("full",)
    family = None

    #: classes of the labels (logistic: 2; None for counts)
    label_classes = None

    @classmethod
    def from_blocks(cls, blocks, lam=0.0, fit_intercept=False):
        """The loss over row blocks made by :meth:`make_block` (the distributed backend)."""
        loss = cls.__new__(cls)
        loss._setup(blocks, lam, fit_intercept, 1)
        return loss

    @classmethod
    def make_block(cls, A, index, y, sample_weight=None, fit_intercept=False):
        """One row block: ``A`` (n_j, d) with the implicit intercept column, labels, weights."""
        return make_separable_block(A, index, y, sample_weight, cls.family, cls.label_classes,
                                    fit_intercept)

    def _setup(self, blocks, lam, fit_intercept, width):
        self.data = blocks
        self.lam = check_real(lam, "lam", nonnegative=True)
        self.fit_intercept = check_bool(fit_intercept, "fit_intercept")
        self.image_width = width
        self.hessian_grams = width * (width + 1) // 2
        d = blocks.d
        self.n_features = d - self.fit_intercept
        ridge = np.full(d, self.lam)
        if self.fit_intercept:
            ridge[-1] = 0.0
        self._ridge_block = ridge
        self.ridge = np.tile(ridge, width)
        self.n_params = d * width
        self.diagonal_curvature = width == 1  # the multinomial rows carry K x K blocks
        self.kronecker_curvature = self.family == MULTINOMIAL
        self.row_subsets = self.subproblems = blocks.in_memory
        self.float32_data = blocks.in_memory and blocks.block.A.dtype == np.float32
        self.precise_products = True

    @classmethod
    def _local(cls, A, y, sample_weight, fit_intercept, n_classes):
        fit_intercept = check_bool(fit_intercept, "fit_intercept")
        blk = make_separable_block(A, 0, y, sample_weight, cls.family, n_classes, fit_intercept)
        return local_blocks(blk.A, **blk.vectors)

    # in-memory conveniences
    @property
    def sw(self):
        return self.data.block["sw"]

    @property
    def y(self):
        blk = self.data.block
        return blk["y_codes"] if self.family == MULTINOMIAL else blk["y"]

    # -- evaluation ---------------------------------------------------------------------------
    def forward(self, x, image=None):
        """Loss at ``x`` (``image = A x``, or ``A W^T`` of shape (n, K), skips the product).

        Raises
        ------
        DomainError
            If the loss is not finite (e.g. ``exp`` overflow of the Poisson loss).
        """
        x = self._check_x(x)
        blocks = self.data
        eager = blocks.eager_gradient
        handles = blocks.map(_forward_task, blocks.items(image),
                             args=(x, self.family, self.image_width, eager),
                             sweeps=(image is None) + eager)
        tot = blocks.map_sum(_small, handles)
        fun, grad = (tot[0], tot[1]) if isinstance(tot, tuple) else (tot, None)
        fun = float(fun) + 0.5 * float(self.ridge @ (x * x))
        if not np.isfinite(fun):
            raise DomainError(f"loss is not finite ({fun}) at this x")
        if grad is not None:
            grad = grad + self.ridge * x
        return State(x, fun, blocks.vector(handles, key="Z", width=self._width()), handles, grad)

    def evaluate(self, x=None, *, forward=None):
        """Loss and gradient at ``x`` (one sweep more when completing a ``forward``)."""
        state = forward if forward is not None else self.forward(x)
        if state.grad is None:
            blocks = self.data
            grad = blocks.sum(blocks.map(_grad_task, state.handles, args=(self.family,), sweeps=1),
                              fresh=True)
            state.grad = grad + self.ridge * state.x
        return state

    def _width(self):
        return None if self.image_width == 1 else self.image_width

    def image(self, p):
        """``A p`` (``A W^T`` for the multinomial loss), one sweep."""
        blocks = self.data
        p = np.ascontiguousarray(p, dtype=np.float64)
        return blocks.vector(blocks.map(_matvec_task, args=(p, self.image_width), sweeps=1),
                             width=self._width())

    def start(self, rng):
        """Zero coefficients, intercept(s) at the weighted label statistics; no pass over ``A``.

        Logistic: the log-odds of the weighted class frequency; Poisson: the log
        of the weighted mean count; multinomial: the centred log class
        frequencies. ``rng`` is not used (the start is deterministic).
        """
        x0 = np.zeros(self.n_params)
        if not self.fit_intercept:
            return x0, self.data.constant(0.0, self._width())
        blocks = self.data
        sums = blocks.sum(blocks.map(_label_sums_task, args=(self.family, self.image_width)))
        b = self._start_intercept(sums)
        x0.reshape(self.image_width, -1)[:, -1] = b
        return x0, self.data.constant(b if self.image_width > 1 else float(b[0]), self._width())

    def _start_intercept(self, sums):
        raise NotImplementedError

    # -- Hessian -----------------------------------------------------------------------------
    def hessp_with_image(self, state, v, kind="full"):
        """``(H v, A v)``: one fused sweep over ``A`` (``K`` columns for the multinomial loss)."""
        blocks = self.data
        v = np.ascontiguousarray(v, dtype=np.float64)
        parts = blocks.map(_hessp_task, state.handles,
                           args=(self.family, self.image_width, v, self.precise_products),
                           sweeps=blocks.fused_sweeps(self.family == MULTINOMIAL))
        out = blocks.sum(parts, item=0, fresh=True)  # the kernels' new output
        out += self.ridge * v
        return out, blocks.vector(parts, key=1, width=self._width())

    def hessp_of_image(self, state, v, image, kind="full"):
        """``H v`` from the image ``A v`` (``A V^T`` for the multinomial loss): one transposed
        sweep."""
        self._check_kind(kind)
        blocks = self.data
        out = blocks.sum(blocks.map(_hessp_image_task, state.handles, blocks.items(image),
                                    args=(self.family, self.image_width), sweeps=1), fresh=True)
        out += self.ridge * np.asarray(v, dtype=np.float64)
        return out

    def _hessian(self, state, kind="full"):
        self._check_kind(kind)
        blocks = self.data
        H = blocks.sum(blocks.map(_gram_task, state.handles, args=(self.family,),
                                  sweeps=self.hessian_grams), fresh=True,
                       nbytes=8 * self.n_params ** 2)
        H[np.diag_indices_from(H)] += self.ridge
        return H

    def hessian_matmat(self, state, V, kind="full"):
        """``H V`` for ``V`` of shape (n_params, r): one pass of ``r`` columns (``K r``)."""
        blocks = self.data
        V = np.ascontiguousarray(V, dtype=np.float64)
        # A read once each way, for all r columns
        out = blocks.sum(blocks.map(_hess_matmat_task, state.handles,
                                    args=(self.family, self.image_width, V), sweeps=2), fresh=True,
                         nbytes=V.nbytes)
        out += self.ridge[:, None] * V
        return out

    def hessian_diagonal(self, state, kind="full"):
        """The Hessian's diagonal (n_params,), or for the multinomial loss its per-feature
        ``K x K`` blocks (d, K, K) (coordinates ``k * d + j``, ``j`` the feature): one sweep."""
        blocks = self.data
        D = blocks.sum(blocks.map(_diag_task, state.handles, args=(self.family,), sweeps=1),
                       fresh=True, nbytes=8 * self.n_params * self.image_width)
        if self.family != MULTINOMIAL:
            return D + self.ridge
        D[:, np.arange(self.image_width), np.arange(self.image_width)] += self._ridge_block[:, None]
        return D

    def hessian_factors(self, x_or_state, kind="full"):
        """``H = A^T diag(h) A + diag(ridge)`` as :class:`HessianFactors` (in-memory, K = 1)."""
        self._check_factors()
        s = self._state(x_or_state)
        d = self.n_params
        r, h = s.handles[0].cache
        return HessianFactors(self.A, h, np.zeros((d, 0)), np.zeros((0, 0)), self.ridge, "full",
                              residual=r)

    def gradient_noise(self, state):
        """Componentwise size of the gradient's rounding error (docs/math.md 7.3), (n_params,)."""
        blocks = self.data
        noise = blocks.sum(blocks.map(_noise_task, state.handles, args=(self.family,), sweeps=1),
                           fresh=True)
        return np.finfo(float).eps * (noise + np.abs(self.ridge * state.x))

    def sampling_weights(self, state):
        """Per block: ``h_i = s_i l''(z_i)`` (binary, Poisson) or ``s_i (1 - ||p_i||^2) = tr B_i``
        (multinomial, an upper bound of the largest eigenvalue of the row's weight block)."""
        return self.data.map(_weights_task, state.handles, args=(self.family,))

    def sampled_hessian(self, state, samples, kind="full"):
        """Hessian of the rows kept per block (``samples``: per-block handles of a
        :class:`~sketchnewton._blocks.RowSample`), reweighted; ``(H~, rows)``."""
        self._check_kind(kind)
        blocks = self.data
        G, used = blocks.sum(blocks.map(_sampled_gram_task, state.handles, samples,
                                        args=(self.family,)), nbytes=8 * self.n_params ** 2)
        blocks.count_rows_read(used[1], times=self.hessian_grams)
        G[np.diag_indices_from(G)] += self.ridge
        return 0.5 * (G + G.T), int(used[0])

    def kronecker_factors(self, state, samples=None):
        """``(G, S)`` of the Kronecker-factored preconditioner (docs/math.md 8.7): the Gram
        ``G = sum_i c_i a_i a_i^T`` of the rows weighted by ``c_i = tr B_i`` (d x d, the
        intercept column included) and ``S = sum_i B_i / sum_i c_i`` (K x K), over every row
        (one sweep plus ``O(n K^2)``) or over the rows of ``samples``, reweighted (unbiased
        estimates of both sums)."""
        if not self.kronecker_curvature:
            return super().kronecker_factors(state, samples)
        blocks = self.data
        if samples is None:
            parts = blocks.map(_kron_task, state.handles, sweeps=1)
        else:
            parts = blocks.map(_kron_task, state.handles, samples)
        G, S, used = blocks.sum(parts, fresh=True,
                                nbytes=8 * (self.data.d ** 2 + self.image_width ** 2))
        if samples is not None:
            blocks.count_rows_read(used[2])
        return G, S / max(float(used[0]), np.finfo(float).tiny)

    def row_subset(self, rows, scale, precise=True):
        """The same loss on the rows ``rows`` of the in-memory data (their copy: ``len(rows)``
        rows in the input's precision; ``rows=None`` with ``scale=1``: every row, the same
        data), sample weights times ``scale``, the same ridge.
        ``precise=False``: its Hessian products (and their images) by float32 BLAS for float32
        data (relative error ~1e-7: for inner solves whose images are not kept)."""
        if not self.row_subsets:
            return super().row_subset(rows, scale, precise)
        if rows is None and scale == 1.0:  # a view of the same loss (no copy)
            view = copy.copy(self)
            view.precise_products = bool(precise)
            return view
        blk = self.data.block
        base = blk.A.base if self.fit_intercept else blk.A
        dm = as_data_matrix(base.take_rows(rows), "X")
        vectors = {name: v[rows] for name, v in blk.vectors.items()}
        vectors["sw"] = vectors["sw"] * float(scale)
        sub = type(self).__new__(type(self))
        if hasattr(self, "n_classes"):
            sub.n_classes = self.n_classes
        sub._setup(local_blocks(InterceptMatrix(dm) if self.fit_intercept else dm, **vectors),
                   self.lam, self.fit_intercept, self.image_width)
        sub.precise_products = bool(precise)
        return sub

    def null_space(self, fixed=None):
        """None, except for the multinomial loss (class shift on unpenalised coordinates)."""
        return None
