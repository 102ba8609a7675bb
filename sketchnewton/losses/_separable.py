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
from scipy.special import xlogy

from .._blocks import Block, resolve
from .._kernels.glm import logistic_pass, poisson_pass
from .._matrix import InterceptMatrix, as_data_matrix
from .._validation import check_bool, check_real, check_vector
from ..exceptions import DomainError, InputError
from . import _multinomial as mn
from ._base import (BlockState, HessianFactors, ImageLine, LossBase, State, gradient_of,
                    local_blocks)

__all__ = ["SeparableLoss", "LOGISTIC", "POISSON", "MULTINOMIAL"]

LOGISTIC, POISSON, MULTINOMIAL = "logistic", "poisson", "multinomial"
_VECTOR_KERNELS = {LOGISTIC: logistic_pass, POISSON: poisson_pass}


# -- per-block tasks --------------------------------------------------------------------------
def _predictor(blk, x, width):
    if width == 1:
        return blk.A.matvec(x)
    return blk.A.matmat(x.reshape(width, -1).T)


def _row_pass(blk, Z, family):
    """``(loss, cache)``: cache ``(r, h)`` (gradient and curvature weights) or ``(stats, None)``
    (the rows' softmax statistics)."""
    if family == MULTINOMIAL:
        fun, stats = mn.row_pass(blk, Z)
        return fun, (stats, None)
    r, h = np.empty_like(Z), np.empty_like(Z)
    return _VECTOR_KERNELS[family](Z, blk["y"], blk["sw"], r, h), (r, h)


def _block_grad(blk, st, family):
    if family == MULTINOMIAL:
        return mn.gradient(blk, st.Z, st.cache[0])
    return blk.A.rmatvec(st.cache[0])


def _forward_task(blk, item, x, family, width, with_grad):
    Z = _predictor(blk, x, width) if item is None else resolve(item)
    st = BlockState(Z, *_row_pass(blk, Z, family)[::-1], None)
    if with_grad and np.isfinite(st.fun):
        st.grad = _block_grad(blk, st, family)
    return st


def _small(st):
    fun = np.array(st.fun)
    return fun if st.grad is None else (fun, st.grad)


def _grad_task(blk, st, family):
    return _block_grad(blk, st, family)


def _hessp_task(blk, st, family, v, precise=True, image=True):
    if family != MULTINOMIAL:
        return blk.A.normal_matvec(st.cache[1], v, precise=precise)
    return mn.hessp(blk, st, v, precise, image)


def _hessp_image_task(blk, st, item, family):
    """``A^T B (A v)`` of the block from its piece of the image ``A v``."""
    Zd = resolve(item)
    if family != MULTINOMIAL:
        return blk.A.rmatvec(st.cache[1] * Zd)
    return mn.hessp_of_image(blk, st.Z, st.cache[0], Zd)


def _hess_matmat_task(blk, st, family, V):
    """``A^T B A V`` for the block's rows, ``V`` (p, r): one sweep of ``r`` (``K r``) columns."""
    if family != MULTINOMIAL:
        Z = blk.A.matmat(V)
        return blk.A.rmatmat(st.cache[1][:, None] * Z)
    return mn.hess_matmat(blk, st.Z, st.cache[0], V)


def _diag_task(blk, st, family):
    """The diagonal of the block's ``A^T B A`` (per feature ``K x K`` blocks for multinomial)."""
    if family != MULTINOMIAL:
        return blk.A.weighted_col_sq(st.cache[1])
    return mn.class_diagonal(blk, st.Z, st.cache[0])


def _noise_task(blk, st, family):
    """``|A|^T rbar``, ``rbar`` the magnitude of the terms the gradient weights are formed from:
    ``sw (p + y)`` (logistic), ``sw (mu + y)`` (Poisson), ``sw (P + Y)`` per class."""
    sw = blk["sw"]
    if family == MULTINOMIAL:
        return mn.noise(blk, st.Z, st.cache[0])
    h_or_mu = st.cache[0] + sw * blk["y"]  # r = sw (p - y): |p|, |y| via r + sw y
    return blk.A.abs_rmatmat(np.abs(h_or_mu) + sw * blk["y"])


def _weights_task(blk, st, family):
    if family != MULTINOMIAL:
        return st.cache[1]
    return mn.curvature(blk, st.Z, st.cache[0])


def _gram_task(blk, st, family):
    if family != MULTINOMIAL:
        return blk.A.gram(st.cache[1])
    return mn.class_gram(blk.A, st.Z, st.cache[0], blk["sw"])


def _sampled_gram_task(blk, st, sample, family):
    rows, w2 = sample.rows, sample.row_weights ** 2
    if family != MULTINOMIAL:
        G = blk.A.gram(w2 * st.cache[1][rows], rows=rows)
    else:
        G = mn.class_gram(blk.A, st.Z, st.cache[0], w2 * blk["sw"][rows], rows=rows)
    return G, np.array([rows.shape[0], blk.A.row_nnz()[rows].sum()], dtype=np.float64)


def _kron_task(blk, st, sample=None):
    return mn.kronecker(blk, st.Z, st.cache[0], sample)


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
        # in memory, a multinomial image is an n x K array as large as the state: not kept
        self.accumulate_images = not (self.family == MULTINOMIAL and blocks.in_memory)

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

    def value(self, x):
        """The loss at ``x``; for the multinomial loss in memory summed by row blocks without
        keeping ``A W^T`` (the number :meth:`forward` gives)."""
        if self.accumulate_images:
            return super().value(x)
        x = self._check_x(x)
        self.data.count_sweeps(1)
        fun = float(mn.value(self.data.block, x, self.image_width))
        fun += 0.5 * float(self.ridge @ (x * x))
        if not np.isfinite(fun):
            raise DomainError(f"loss is not finite ({fun}) at this x")
        return fun

    def line(self, state, p, image=None):
        """The line-search trials along ``p`` (:meth:`Loss.line`): for the multinomial loss in
        memory a :class:`._multinomial.LogitsLine` (``Z`` moved in place), else an
        :class:`ImageLine`."""
        if self.accumulate_images or image is not None:
            return ImageLine(self, state, p, image)
        return mn.LogitsLine(self, state, p)

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
        return self._hessp(state, v, True)

    def hessp(self, x_or_state, v, kind="full"):
        """``H v`` (the multinomial product makes no ``n x K`` image)."""
        return self._hessp(self._at(x_or_state), v, False)[0]

    def _hessp(self, state, v, image):
        blocks = self.data
        v = np.ascontiguousarray(v, dtype=np.float64)
        parts = blocks.map(_hessp_task, state.handles,
                           args=(self.family, v, self.precise_products, image),
                           sweeps=blocks.fused_sweeps(self.family == MULTINOMIAL))
        out = blocks.sum(parts, item=0, fresh=True)  # the kernels' new output
        out += self.ridge * v
        return out, blocks.vector(parts, key=1, width=self._width()) if image else None

    def hessp_of_image(self, state, v, image, kind="full"):
        """``H v`` from the image ``A v`` (``A V^T`` for the multinomial loss): one transposed
        sweep."""
        self._check_kind(kind)
        blocks = self.data
        out = blocks.sum(blocks.map(_hessp_image_task, state.handles, blocks.items(image),
                                    args=(self.family,), sweeps=1), fresh=True)
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
                                    args=(self.family, V), sweeps=2), fresh=True,
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

    def duality_gap(self, state, weights):
        """``F(x) - D(u)`` for the binary logistic loss with an L1 penalty on every coordinate
        and no ridge (in memory; else ``inf``): the dual point ``u = -t f'(z)`` with ``t`` the
        largest share in ``(0, 1]`` keeping ``|A^T u|_j <= weights_j``, and
        ``D(u) = sum_i s_i H(y_i + t r_i / s_i)``, ``H`` the binary entropy, ``r_i = s_i (p_i -
        y_i)`` (docs/math.md 9.3, "A duality gap for the lasso")."""
        if self.family != LOGISTIC or not self.data.in_memory or np.any(weights <= 0) \
                or np.any(self.ridge != 0) or weights.shape != state.x.shape:
            return np.inf
        g = gradient_of(state)
        big = np.abs(g) > weights
        t = float(np.min(weights[big] / np.abs(g[big]))) if big.any() else 1.0
        r, sw, y = state.handles[0].cache[0], self.sw, self.y
        rows = sw > 0
        a = np.clip(y[rows] + t * r[rows] / sw[rows], 0.0, 1.0)
        dual = -float(sw[rows] @ (xlogy(a, a) + xlogy(1.0 - a, 1.0 - a)))
        return max(float(state.fun) + float(weights @ np.abs(state.x)) - dual, 0.0)

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
        if self.family == MULTINOMIAL and not base.is_sparse:  # products gather row blocks
            dm = mn.GatheredRows(base, rows)
        else:
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

    def subset_state(self, sub, state, rows):
        """See :meth:`Loss.subset_state`: for the multinomial loss on dense rows in memory, the
        rows of ``Z`` and of its statistics read where they are (no ``m x K`` copy)."""
        if isinstance(sub.A, InterceptMatrix):
            gathered = isinstance(sub.A.base, mn.GatheredRows)
        else:
            gathered = isinstance(sub.A, mn.GatheredRows)
        if not gathered:
            return super().subset_state(sub, state, rows)
        st = mn.subset_block_state(sub.data.block, state.handles[0], rows)
        fun = float(st.fun) + 0.5 * float(sub.ridge @ (state.x * state.x))
        return State(state.x, fun, st.Z, [st])

    def null_space(self, fixed=None):
        """None, except for the multinomial loss (class shift on unpenalised coordinates)."""
        return None
