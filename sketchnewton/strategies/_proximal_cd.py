"""Proximal Newton on the data itself (``"prox_cd"``; docs/math.md section 9): coordinate
descent on the columns of ``A`` for the model ``H = A^T diag(D) A + diag(ridge)``, never formed
(newGLMNET, Yuan, Ho & Lin 2012). The decrement a stopping test asks for is bracketed by
duality (:mod:`._gap`) instead of solving the model to ``1e-10``.
"""

import numpy as np
import scipy.sparse as sp

from .._auto import CONFIRM_FACE_PASSES, restricted_max
from .._kernels.cd import csc_cd
from .._matrix import DataMatrix, InterceptMatrix
from ..exceptions import InputError
from ..losses import L1Penalty, Loss
from ._base import Iterate, Step
from ._gap import bracket_decrement, model_dual_bound, model_value
from ._proximal import (INNER_FORCING_STEP_DATA, MAX_SWEEPS, RESTRICTED_MAX, _TINY,
                        ProximalNewton, ProxModel)

__all__ = ["MatrixFreeProximalNewton"]


class MatrixFreeProximalNewton(ProximalNewton):
    """Proximal Newton on the data itself (``"prox_cd"``, wide sparse data; newGLMNET).

    ``H = A^T diag(D) A + diag(ridge)`` is never formed: coordinate descent reads
    ``A``'s columns (CSC, made once) and keeps the model's residual ``r = A d``, so a
    sweep costs the non-zeros of the columns it visits and the step's image ``A p`` is
    ``r`` (the line search needs no pass). Needs in-memory data and a loss with a
    diagonal row curvature (binary logistic, Poisson).
    """

    name = "prox_cd"
    forcing_min = INNER_FORCING_STEP_DATA
    working_sets = False

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        if not (loss.diagonal_curvature and loss.data.in_memory
                and tuple(loss.hessian_kinds) == ("full",)):
            raise InputError("method 'prox_cd' needs in-memory data and a convex loss with a "
                             "diagonal row curvature (binary logistic, Poisson); use "
                             "method='prox'")

    def __init__(self, loss: Loss, settings, rng, penalty: L1Penalty | None = None):
        super().__init__(loss, settings, rng, penalty)
        self._csc: tuple | None = None
        self.face_max = restricted_max(loss, RESTRICTED_MAX)

    def _columns(self):
        """``(indptr, indices, data, ones)`` of ``A`` in CSC (made once; ``ones``: the index
        of the intercept's column of ones, -1 without one)."""
        if self._csc is None:
            A = self._A
            base, ones = (A.base, A.base.d) if isinstance(A, InterceptMatrix) else (A, -1)
            M = base.csr.tocsc() if base.is_sparse else sp.csc_matrix(base.dense, dtype=np.float64)
            M.sort_indices()
            # the kernels take scipy's index arrays as they are (int32: no copy of nnz numbers)
            self._csc = (M.indptr, M.indices, np.asarray(M.data, dtype=np.float64), ones, M)
        return self._csc

    def _build(self, it: Iterate) -> None:
        kind = self.loss.hessian_kinds[-1]
        factors = self.loss.hessian_factors(it.state, kind)
        if factors.K.shape[1]:
            raise InputError("method 'prox_cd' needs a Hessian A^T D A + ridge (no low-rank "
                             "part); use method='prox'")
        self._A, self._kind = factors.A, kind  # DataMatrix, or InterceptMatrix with an intercept
        self._D = np.ascontiguousarray(factors.diag, dtype=np.float64)
        self._rho = factors.residual
        self._lam = np.broadcast_to(np.asarray(factors.lam, dtype=np.float64),
                                    (self.loss.n_params,)).copy()
        self._hdiag = self.loss.hessian_diagonal(it.state, kind)
        free = self._free(it.x)
        formed = free.size <= self.face_max
        self.model = ProxModel(kind, 0.0 if formed else None, 0,
                               float(self._hdiag.max()) if self._hdiag.size else 0.0, free,
                               self._restricted if formed else None)

    def _restricted(self, free: np.ndarray) -> np.ndarray:
        """``H_FF = A_F^T diag(D) A_F + diag(ridge_F)`` (columns ``F`` only)."""
        indptr, indices, data, ones, M = self._columns()
        cols = free[free != ones]
        AF = M[:, cols]
        # the project's row-outer-product Gram (O(sum_i nnz_i,F^2)); the intercept's column of
        # ones is the last of F (the largest index) and the Gram's appended column
        HF = DataMatrix(AF.tocsr(), "A", check_finite=False).gram(self._D,
                                                                  ones=bool(cols.size < free.size))
        self.loss.data.count_rows_read(AF.nnz)
        HF[np.diag_indices_from(HF)] += self._lam[free]
        return HF

    def decrement(self, it: Iterate, target: float) -> float:
        """The model minimiser's decrement, bracketed by duality until it is told from
        ``target`` (:mod:`._gap`); the solve to ``1e-10`` where the bracket cannot tell."""
        if self._at is not it.state:
            self.update(it, None)
        value, decided = self._timed(self._bracket, it, target)
        if decided:
            return value
        step = self._timed(self._on_face, it)
        if step is not None:
            self._step = step
            return step.decrement
        return super().decrement(it, target)

    def _on_face(self, it: Iterate) -> Step | None:
        """The model's exact minimiser by one face solve (a face up to ``CONFIRM_FACE_PASSES``):
        on the face of ``x`` itself (no sweep: near the end the support has settled), else on
        the face of the step at ``x`` if it is known; None when neither is the minimiser's."""
        cap = restricted_max(self.loss, RESTRICTED_MAX, CONFIRM_FACE_PASSES)
        if np.count_nonzero((it.x != 0) | (self.weights == 0)) > cap:
            return None
        face_max, self.face_max = self.face_max, cap
        try:
            zero = np.zeros(it.x.size)
            self._r = np.zeros(self.loss.data.n)  # the kept image, of the zero step
            polished = self._polish(it, zero, zero)
            step = self._step
            if polished is None and step is not None and step.image is not None:
                p, self._r = step.direction, step.image
                polished = self._polish(it, p, self._product(p, step.image))
        finally:
            self.face_max = face_max
        if polished is None:
            return None
        q, image = polished
        return self._step_of(it, 0.0, q, image, 0, True)

    def _bracket(self, it: Iterate, target: float) -> tuple[float, bool]:
        # without a ridge on every penalised coordinate (lasso) only theta scales the
        # violations, and the bound closes after hundreds of sweeps (code corpus): not tried
        rho = self._rho
        if rho is None or np.any((self.weights > 0) & (self._lam <= 0)):
            return np.inf, False
        x, g, w, D, lam, ones = it.x, it.grad, self.weights, self._D, self._lam, self._columns()[3]
        step = self._step  # continued from the step at x (a copy: the step stays as it is)
        if step is not None and step.image is not None:
            p, r = step.direction.copy(), np.array(step.image, dtype=np.float64)
        else:
            p, r = np.zeros(x.size), np.zeros(D.size)
        hcol = self._product(np.eye(1, x.size, ones)[0], np.ones(D.size)) if ones >= 0 else None
        scale = self._subgradient_norm(it)
        reached = [np.inf]

        def solve(tol: float) -> tuple[float, float]:
            self._inner(it, np.arange(x.size), tol, p, r)
            reached[0] = tol / max(scale, _TINY)
            G, d, image = g + self._product(p, r), p, r
            if hcol is not None:  # the intercept's coordinate minimised exactly: G_ones = 0
                beta = -G[ones] / hcol[ones]
                d, image, G = p.copy(), r + beta, G + beta * hcol
                d[ones] += beta
                G[ones] = 0.0
            return (model_value(g, x, w, lam, D, d, image),
                    model_dual_bound(x, w, lam, D, rho, d, image, G))

        value, decided = bracket_decrement(solve, target, scale)
        # the refined minimiser is the step at x from now on
        self._step = self._step_of(it, reached[0], p, r, self._last_sweeps, False)
        return value, decided

    def _inner(self, it: Iterate, work: np.ndarray, tol: float, p=None, r=None):
        """Coordinate descent on ``work`` from ``(p, r = A p)`` (zeros when not given)."""
        indptr, indices, data, ones, M = self._columns()
        p = np.zeros(it.x.size) if p is None else p
        r = np.zeros(self.loss.data.n) if r is None else r
        sweeps, _, read = csc_cd(indptr, indices, data, self._D, self._lam, self._hdiag,
                                 it.grad, self.weights, it.x, ones, work.astype(np.int64), p, r,
                                 tol, MAX_SWEEPS)
        self.loss.data.count_rows_read(read)
        self._last_sweeps = int(sweeps)
        self.inner_sweeps += int(sweeps)
        self._r = r
        return p, r

    def _product(self, p, image, dp=None, Hp=None) -> np.ndarray:
        """``H p = A^T (D (A p)) + ridge p`` from the image ``A p`` (one sweep)."""
        assert self._at is not None  # a product follows the model's build
        return self.loss.hessp_of_image(self._at, p, image, self._kind)

    def _image(self, dp, it):
        """``A (p + dp)``: the kept residual plus the image of ``dp`` (one sweep)."""
        self._r = self._r + self.loss.image(dp)
        return self._r
