"""The normalized regression family ``|| phi(Ax) / <phi(Ax), 1> - b ||^2`` (docs/math.md section 2).

Links ``resnet`` (``exp(z) + z``, the unified ResNet + softmax scheme of Song,
Wang, Yin, arXiv:2309.13482), ``softmax`` (``exp``), ``cosh`` and ``sinh``.

The loss is not a sum over rows: the normaliser ``alpha = <phi(Ax), 1>`` is
global. One block (in memory) computes it exactly inside the link kernel.
Several blocks each compute their link values at a common *reference*
scale (the normaliser at the last evaluated point) and a few sums, from which
the loss, the gradient and the low-rank Hessian columns are assembled
exactly (docs/math.md section 2.7): one round of tasks per evaluation.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._blocks import Block
from .._links import COSH, LINK_CODES, LINKS, SINH
from .._matrix import as_data_matrix
from .._validation import check_choice, check_real, check_vector
from ..exceptions import DomainError, InputError
from ._base import GaussNewtonRoot, HessianFactors, LossBase, State, local_blocks
from ._normalized_tasks import (
    _assemble,
    _block_curvature,
    _column_sums_task,
    _diag_task,
    _forward_task,
    _gram_task,
    _hessp_image_task,
    _hessp_task,
    _matmat_task,
    _matvec_task,
    _noise_task,
    _partials_task,
    _sampled_gram_task,
    _small,
    _weights_task,
    lowrank_part,
)

__all__ = ["NormalizedRegressionLoss", "NormalizedState", "LINKS"]


# -- client side --------------------------------------------------------------------------------
@dataclass
class NormalizedState(State):
    """A :class:`~sketchnewton.losses.State` of the normalized loss.

    Attributes (besides ``x, fun, image, handles, grad``)
    ----------------------------------------------------
    rho : float
        ``alpha_ref / alpha``: 1 when the normaliser was computed exactly.
    fc, ff : float
        ``<f, c>`` and ``||f||^2``.
    log_alpha : float
    K : ndarray of shape (d, 3) or None
        ``A.T @ [va, (f + c) va, f va]``: the low-rank Hessian columns.
    """

    rho: float = 1.0
    fc: float = 0.0
    ff: float = 0.0
    log_alpha: float = 0.0
    K: np.ndarray | None = None

    # in-memory conveniences: the per-row quantities of the single block
    @property
    def z(self):
        return self.image

    @property
    def f(self):
        return self.rho * self.handles[0].u

    @property
    def va(self):
        return self.rho * self.handles[0].v

    @property
    def qa(self):
        return self.rho * self.handles[0].q


class NormalizedRegressionLoss(LossBase):
    """``L(x) = 1/2 ||f - b||^2 + 1/2 ||w * (A x)||^2 + lam/2 ||x||^2``, ``f = phi(Ax)/<phi(Ax),1>``.

    The object binds the fixed problem (``A``, ``b``, link, regularisation);
    evaluations return a :class:`NormalizedState` that the Hessian methods
    reuse, so no pass over ``A`` is repeated. Closed forms: docs/math.md
    section 2.

    Parameters
    ----------
    A : sparse or dense matrix of shape (n, d)
    b : array-like of shape (n,)
    link : {"resnet", "softmax", "cosh", "sinh"}
        ``"exp"`` is accepted as an alias of ``"softmax"``.
    lam : float >= 0
        Ridge strength.
    w : float or array-like of shape (n,), optional
        Weights of the papers' regulariser ``1/2 ||diag(w) A x||^2``.
    """

    hessian_kinds = ("full", "gauss_newton")
    image_width = 1
    hessian_grams = 1
    #: diagonal plus rank-2 row curvature (:meth:`hessian_factors`), and a Gauss-Newton
    #: square-root factor ``J`` that any sketch operator can apply (in memory)
    diagonal_curvature = True
    gauss_newton_root = True

    def __init__(self, A: Any, b: ArrayLike, link: str = "resnet", lam: float = 0.0,
                 w: ArrayLike | float | None = None):
        link, lam = self._check_params(link, lam)
        from_blocks = self._blocks_from_memory(A, b, w)
        self._setup(from_blocks, link, lam)

    @classmethod
    def from_blocks(cls, blocks, link="resnet", lam=0.0):
        """The loss over row blocks made by :meth:`make_block` (the distributed backend)."""
        link, lam = cls._check_params(link, lam)
        loss = cls.__new__(cls)
        loss._setup(blocks, link, lam)
        return loss

    @staticmethod
    def make_block(A, index, b, w=None):
        """One row block: ``A`` (n_j, d), its targets ``b`` and regulariser weights ``w``."""
        dm, b, w2 = _block_arrays(A, b, w)
        return Block(dm, index, b=b, w2=w2)

    @staticmethod
    def _check_params(link, lam):
        link = check_choice(link, "link", tuple(LINK_CODES))
        return link, check_real(lam, "lam", nonnegative=True)

    @staticmethod
    def _blocks_from_memory(A, b, w):
        dm, b, w2 = _block_arrays(A, b, w)
        return local_blocks(dm, b=b, w2=w2)

    def _setup(self, blocks, link, lam):
        self.data = blocks
        self.link = "softmax" if link == "exp" else link
        self._code = LINK_CODES[link]
        self.lam = lam
        self.ridge = np.full(blocks.d, float(lam))
        self.n_params = blocks.d
        self.subproblems = blocks.in_memory
        self._log_scale = None  # log of the last normaliser: the reference scale of many blocks

    # in-memory conveniences
    @property
    def b(self):
        return self.data.block["b"]

    @property
    def w2(self):
        return self.data.block["w2"]

    # -- evaluation ---------------------------------------------------------------------------
    def _round(self, x, items, m, normalize, partials, sweeps):
        blocks = self.data
        handles = blocks.map(_forward_task, items, args=(x, self._code, m, normalize, partials),
                             sweeps=sweeps)
        return handles, blocks.map_sum(_small, handles)

    def forward(self, x, image=None):
        """Loss at ``x`` (one ``A @ x`` unless ``image = A @ x`` is given); O(n) given the image.

        With several blocks the gradient partials come with the same round
        (``data.eager_gradient``), so :meth:`evaluate` costs no further round.

        Raises
        ------
        DomainError
            If ``alpha <= 0`` or the loss is not finite.
        """
        x = self._check_x(x)
        blocks = self.data
        items = blocks.items(image)
        product = image is None  # A @ x in the first round over the blocks
        single = blocks.n_blocks == 1
        partials = blocks.eager_gradient
        m = self._log_scale
        if not single and m is None:
            # first evaluation: the blocks' own scales, then again at the common one
            handles = blocks.map(_forward_task, items, args=(x, self._code, None, False, False),
                                 sweeps=product)
            product = False
            sums = np.array(blocks.map_gather(_small, handles))
            ms = sums[:, 8]
            m = float(ms.max())
            alpha = float(sums[:, 0] @ np.exp(ms - m))
            if alpha > 0:
                m += np.log(alpha)
            items = blocks.items(blocks.vector(handles, key="z"))
        # with partials: A^T Y while the block is in memory
        handles, tot = self._round(x, items, m, single, partials, product + partials)
        sums, P = tot if isinstance(tot, tuple) else (tot, None)
        S_u, S_uu, S_ur, S_ub, S_rr, S_rb, S_bb, wz = sums[:8]
        scale = sums[8] if single else m
        if not (S_u > 0 and np.isfinite(S_u)):
            raise DomainError(
                f"alpha = <phi(Ax), 1> is not positive (alpha = {S_u:.3g} * exp({scale:.3g})) for "
                f"link {self.link!r}: x is outside the domain of the loss")
        rho = 1.0 / S_u
        ff = rho * rho * S_uu
        fc = rho * rho * S_ur + rho * (rho - 1.0) * S_ub
        cc = rho * rho * S_rr + 2.0 * rho * (rho - 1.0) * S_rb + (rho - 1.0) ** 2 * S_bb
        fun = 0.5 * cc + 0.5 * wz + 0.5 * self.lam * float(x @ x)
        if not np.isfinite(fun):
            raise DomainError(f"loss is not finite ({fun}) at this x")
        log_alpha = scale + np.log(S_u)
        if not single:
            self._log_scale = log_alpha
        state = NormalizedState(x, fun, blocks.vector(handles, key="z"), handles, rho=rho, fc=fc,
                                ff=ff, log_alpha=log_alpha)
        if P is not None:
            self._finish(state, P, single)
        return state

    def _finish(self, state, P, single):
        if single:
            grad, K3 = P[:, 0].copy(), (np.ascontiguousarray(P[:, 1:4]) if P.shape[1] == 4 else None)
        else:
            grad, K3 = _assemble(P, state.rho, state.fc)
        grad += self.lam * state.x
        state.grad, state.K = grad, K3

    def evaluate(self, x=None, *, forward=None, hessian=True):
        """Loss, gradient and the low-rank Hessian columns at ``x`` (or completing ``forward``).

        One forward (skipped when ``forward`` is given) and one fused
        ``A.T @ Y`` whose columns (gradient weights and, if ``hessian``, the
        three low-rank factors) are computed row by row inside the kernel.

        Returns
        -------
        NormalizedState
        """
        state = forward if forward is not None else self.forward(x)
        if state.grad is not None and (state.K is not None or not hessian):
            return state
        blocks = self.data
        single = blocks.n_blocks == 1
        n_cols = 4 if hessian else 1
        P = blocks.sum(blocks.map(_partials_task, state.handles,
                                  args=(state.fc, single, n_cols), sweeps=1), fresh=True)
        self._finish(state, P, single)
        return state

    def image(self, p):
        """``A p`` (one sweep): an array in memory, a BlockVector on a cluster."""
        blocks = self.data
        p = np.ascontiguousarray(p, dtype=np.float64)
        return blocks.vector(blocks.map(_matvec_task, args=(p,), sweeps=1))

    def start(self, rng):
        """Default start: zero for ``resnet`` and ``softmax``.

        ``cosh``: ``phi'(0) = 0`` makes ``x = 0`` a stationary point of an
        even loss, so the start is a small random vector drawn from ``rng``.
        ``sinh``: ``alpha(0) = sum sinh(0) = 0`` is outside the domain, so the
        start is ``t A^T 1``, for which ``sum(A x0) = t ||A^T 1||^2 > 0``. Both
        are scaled to ``std(A x0) = 0.1``.
        """
        d = self.n_params
        if self._code == COSH:
            x0 = rng.standard_normal(d)
        elif self._code == SINH:
            blocks = self.data
            x0 = blocks.sum(blocks.map(_column_sums_task, sweeps=1))
        else:
            return np.zeros(d), None
        z_std = float(self.image(x0).std())
        return (x0 * (0.1 / z_std) if z_std > 0 else x0), None

    def subproblem(self, rows):
        """The normalized regression of the rows ``rows`` alone (their copy), whose minimiser
        estimates this loss's (docs/math.md 6.6).

        The rows are normalized among themselves: the targets ``b[rows] / sum(b[rows])``. Each
        residual ``f_i - b_i`` is then about ``c = n / len(rows)`` times the full problem's, so
        the data term about ``c`` times its share: the regulariser ``w^2`` is scaled by
        ``c^2`` and ``lam`` by ``c`` to keep the balance of the terms. Raises ``InputError``
        when the sample's targets do not sum to a positive number.
        """
        if not self.subproblems:
            return super().subproblem(rows)
        blk = self.data.block
        rows = np.asarray(rows)
        b = blk["b"][rows]
        total = float(b.sum())
        if not total > 0.0:
            raise InputError("the sampled targets do not sum to a positive number: no subproblem")
        c = self.data.n / len(rows)
        w2 = blk["w2"]
        return type(self).from_blocks(
            local_blocks(as_data_matrix(blk.A.take_rows(rows)), b=b / total,
                         w2=w2[rows] * (c * c) if w2.shape[0] > 0 else w2),
            self.link, self.lam * c)

    # -- Hessian -----------------------------------------------------------------------------
    def _lowrank(self, state, kind):
        if state.K is None:
            state = self.evaluate(forward=state)
        return lowrank_part(state.K, state.ff, state.fc, kind)

    def hessp_with_image(self, state, v, kind="full"):
        """``(H v, A v)``: one fused sweep over ``A``; ``A v`` stays where the blocks live."""
        kind = self._check_kind(kind)
        blocks = self.data
        v = np.ascontiguousarray(v, dtype=np.float64)
        K, C = self._lowrank(state, kind)
        parts = blocks.map(_hessp_task, state.handles, args=(state.rho, state.fc, kind, v),
                           sweeps=blocks.fused_sweeps())
        out = blocks.sum(parts, item=0)
        out += K @ (C @ (K.T @ v))
        out += self.lam * v
        return out, blocks.vector(parts, key=1)

    def hessp_of_image(self, state, v, image, kind="full"):
        """``H v`` from the image ``A v`` (one transposed sweep)."""
        kind = self._check_kind(kind)
        blocks = self.data
        v = np.ascontiguousarray(v, dtype=np.float64)
        K, C = self._lowrank(state, kind)
        out = blocks.sum(blocks.map(_hessp_image_task, state.handles, blocks.items(image),
                                    args=(state.rho, state.fc, kind), sweeps=1), fresh=True)
        out += K @ (C @ (K.T @ v))
        out += self.lam * v
        return out

    def _hessian(self, state, kind="full"):
        kind = self._check_kind(kind)
        blocks = self.data
        K, C = self._lowrank(state, kind)
        H = blocks.sum(blocks.map(_gram_task, state.handles, args=(state.rho, state.fc, kind),
                                  sweeps=1), fresh=True, nbytes=8 * self.n_params ** 2)
        H += K @ C @ K.T
        H[np.diag_indices_from(H)] += self.lam
        return H

    def hessian_matmat(self, state, V, kind="full"):
        """``H V`` for ``V`` of shape (d, r): one pass of ``r`` columns."""
        kind = self._check_kind(kind)
        blocks = self.data
        V = np.ascontiguousarray(V, dtype=np.float64)
        K, C = self._lowrank(state, kind)
        # A read once each way, for all r columns
        out = blocks.sum(blocks.map(_matmat_task, state.handles,
                                    args=(state.rho, state.fc, kind, V), sweeps=2), fresh=True,
                         nbytes=V.nbytes)
        out += K @ (C @ (K.T @ V))
        out += self.lam * V
        return out

    def hessian_diagonal(self, state, kind="full"):
        """The Hessian's diagonal (d,): ``diag(A^T diag(delta) A) + diag(K C K^T) + lam`` (one sweep)."""
        kind = self._check_kind(kind)
        blocks = self.data
        K, C = self._lowrank(state, kind)
        D = blocks.sum(blocks.map(_diag_task, state.handles, args=(state.rho, state.fc, kind),
                                  sweeps=1), fresh=True)
        return D + np.einsum("ja,ab,jb->j", K, C, K) + self.lam

    def gradient_noise(self, state):
        """Componentwise size of the gradient's rounding error (docs/math.md 7.3), (d,)."""
        blocks = self.data
        noise = blocks.sum(blocks.map(_noise_task, state.handles, args=(state.rho, state.fc),
                                      sweeps=1), fresh=True)
        return np.finfo(float).eps * (noise + np.abs(self.lam * state.x))

    def sampling_weights(self, state):
        """Per block: ``va^2 + w^2``, the diagonal of the Gauss-Newton square-root factor's Gram."""
        return self.data.map(_weights_task, state.handles, args=(state.rho,))

    def sampled_hessian(self, state, samples, kind="gauss_newton"):
        """Model ``(S J)^T (S J) + A^T diag(w^2) A (sampled) + lam I`` from the rows kept per block.

        ``samples``: one per-block handle of a :class:`~sketchnewton._blocks.RowSample`.
        ``kind="full"`` adds the residual curvature ``A^T diag(qa (c - <f,c>)) A``
        estimated on the same rows and the exact low-rank difference between the
        two Hessians (docs/math.md 5.6).

        Returns
        -------
        H : ndarray (d, d)
        rows : int
            Rows of the sketch.
        """
        kind = self._check_kind(kind)
        blocks = self.data
        if state.K is None:
            state = self.evaluate(forward=state)
        k = state.K[:, 0].copy()
        G, used = blocks.sum(blocks.map(_sampled_gram_task, state.handles, samples,
                                        args=(state.rho, state.fc, k, kind)), nbytes=8 * self.n_params ** 2)
        blocks.count_rows_read(used[1])  # the kept rows, read twice where u needs a 2nd read
        if kind == "full":
            Kf, Cf = lowrank_part(state.K, state.ff, state.fc, "full")
            Kg, Cg = lowrank_part(state.K, state.ff, state.fc, "gauss_newton")
            G += Kf @ Cf @ Kf.T - Kg @ Cg @ Kg.T
        G[np.diag_indices_from(G)] += self.lam
        return 0.5 * (G + G.T), int(used[0])

    def null_space(self, fixed=None):
        """None: the softmax link's shift invariance is a null direction only when a
        combination of columns of ``A`` is constant; the driver detects it numerically."""
        return None

    # -- in-memory introspection ---------------------------------------------------------
    def residual(self, x):
        """Return ``c = f - b`` at ``x``, shape (n,) (the map whose Jacobian is J)."""
        return self.forward(x).f - self.b

    def hessian_factors(self, x_or_state, kind="full"):
        """Hessian (or Gauss-Newton matrix) as diagonal + rank 2 (docs/math.md sections 2.3 and 2.4).

        ``full``: ``diag = va^2 + qa (c - <f,c>) + w^2``, ``V = [va, (f+c) va]``,
        ``C = [[||f||^2 + 2<f,c>, -1], [-1, 0]]``.
        ``gauss_newton``: ``diag = va^2 + w^2``, ``V = [va, f va]``,
        ``C = [[||f||^2, -1], [-1, 0]]``; also carries the square-root factor
        ``J = diag(va) A - f k^T`` with ``k = A^T va``. In-memory losses only.

        Returns
        -------
        HessianFactors
        """
        kind = self._check_kind(kind)
        self._check_factors()
        s = self._state(x_or_state)
        A = self.A
        va, _, diag = _block_curvature(self.data.block, s.handles[0], s.rho, s.fc, kind)
        root = None
        if kind == "gauss_newton":
            root = GaussNewtonRoot(va, s.f, s.K[:, 0].copy(), self.w2 if self.w2.size else None)
        K, C = lowrank_part(s.K, s.ff, s.fc, kind)
        return HessianFactors(A, diag, K, C, self.lam, kind, root)


def _block_arrays(A, b, w):
    dm = as_data_matrix(A)
    n = dm.n
    b = check_vector(b, "b", n)
    if w is None:
        w2 = np.empty(0)
    elif np.ndim(w) == 0:
        wv = check_real(w, "w")
        w2 = np.full(n, wv * wv) if wv != 0 else np.empty(0)
    else:
        wv = check_vector(w, "w", n)
        w2 = wv * wv
    return dm, b, w2
