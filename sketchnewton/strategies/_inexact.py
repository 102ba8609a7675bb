"""Inexact Newton: conjugate gradients on exact Hessian-vector products, preconditioned by a
sketched model (``"pcg"``) or a matrix-free one (``"cg"``); docs/math.md sections 6.3 and 8."""

from abc import abstractmethod

import numpy as np

from .._auto import (
    JACOBI_MIN_SPREAD,
    factorization_passes,
    matrix_free_rebuild_passes,
    product_passes,
)
from .._stopping import FORCING_MAX, MODEL_REUSE_DZ
from ..hessian import cg_decrement, preconditioned_cg
from ..hessian._model import Model
from ..losses import Loss
from ._base import Iterate, Step, Strategy, check_dense_model_fits, descent_step

__all__ = ["InexactNewton", "SketchPCG", "NewtonCG", "PCG_REFRESH", "FORCING_MIN", "CONFIRM_ITERATIONS",
           "NYSTROM_MAX_RANK"]

#: CG iterations beyond which the preconditioner is rebuilt (with fresh leverage scores): a
#: fresh sketched preconditioner (spectral error ~0.5) needs 2-5 per Newton step; more means
#: the Hessian has moved away from it. Rebuilding costs a sampled Gram and a factorization
#: (p^3/3 flops: several passes for the multinomial loss), a CG iteration one pass.
PCG_REFRESH = 8
#: smallest forcing term: below this CG only fights rounding
FORCING_MIN = 1e-6
#: conjugate-gradient iterations a decrement that certifies ``tol`` may take at least
CONFIRM_ITERATIONS = 50
#: largest rank of the Nystrom preconditioner (r p numbers; its build costs a block product
#: of r columns and an r x r Cholesky and SVD of a p x r matrix)
NYSTROM_MAX_RANK = 512


class InexactNewton(Strategy):
    """Newton-CG: the step solves ``H p = -g`` by preconditioned conjugate gradients.

    Forcing term ``eta = min(FORCING_MAX, sqrt(||g|| / ||g_0||))`` (superlinear
    inexact Newton), relaxed to the stopping rule's target. ``A p`` is
    accumulated from the images ``A d_k`` the Hessian products compute anyway,
    so the line search needs no extra pass. The preconditioner is kept after a
    step whose CG needed at most ``PCG_REFRESH`` iterations, when the model still
    fits (the step moved no ``z_i`` by more than ``MODEL_REUSE_DZ``) or
    rebuilding it costs more than the products it could save: CG corrects the
    difference with exact products, and the CG count is the direct measure of
    how well the preconditioner still fits.
    """

    def __init__(self, loss: Loss, settings, rng, penalty=None):
        super().__init__(loss, settings, rng, penalty)
        self.cg_iterations = 0

    @abstractmethod
    def _build(self, it: Iterate) -> Model:
        """A new preconditioner at ``it``."""

    @abstractmethod
    def _rebuild_passes(self) -> float:
        """The cost of rebuilding the preconditioner, in passes."""

    @abstractmethod
    def _cg_cap(self) -> int:
        """CG iterations allowed per Newton step."""

    def _slow(self) -> None:
        """Called after a step whose CG needed more than ``PCG_REFRESH`` iterations."""

    def update(self, it: Iterate, contraction: float | None) -> None:
        if self._keep(it):
            self.fresh = False
            return
        self.model = self._build(it)
        self.fresh = True

    def _keep(self, it: Iterate) -> bool:
        if self.model is None or it.step is None or self.cg_iterations > PCG_REFRESH:
            return False
        return (it.last_dz <= MODEL_REUSE_DZ
                or self._rebuild_passes() > PCG_REFRESH * product_passes(self.loss))

    def step(self, it: Iterate, forcing_floor: float = 0.0) -> Step:
        return self._timed(self._cg_step, it, forcing_floor)

    def decrement(self, it: Iterate, target: float) -> float:
        """``g^T H^{-1} g`` at ``it``, accurate enough to tell whether it is below ``target``
        (:func:`~sketchnewton.hessian.cg_decrement`): an inexact step's ``-g^T p`` misses
        ``r^T H^{-1} r`` (``r`` its residual), up to ``eta^2`` times the (preconditioned)
        condition number of the decrement, so a decrement that is to certify ``tol`` is
        computed this way (docs/math.md 7.2)."""
        if self.model is None:
            self.update(it, None)
        loss, state, counts = self.loss, it.state, it.counts
        kind = loss.hessian_kinds[-1]

        def product(v):
            counts["nhev"] += 1
            return loss.hessp_with_image(state, v, kind)

        return self._timed(cg_decrement, product, self.built, -it.grad, target,
                           max(self._cg_cap(), 2 * CONFIRM_ITERATIONS))

    def _cg_step(self, it: Iterate, forcing_floor: float) -> Step:
        g, loss, model = it.grad, self.loss, self.built
        eta = min(FORCING_MAX, np.sqrt(np.linalg.norm(g) / it.g0_norm))
        eta = max(eta, forcing_floor, FORCING_MIN)
        kinds = loss.hessian_kinds
        p, Ap, iters, ok, rz = self._pcg(it, kinds[0], g, eta)
        if not ok and len(kinds) > 1:  # negative curvature at once: the Gauss-Newton matrix
            p, Ap, more, ok, rz = self._pcg(it, kinds[-1], g, eta)
            iters += more
        self.cg_iterations = iters
        if iters > PCG_REFRESH:
            self._slow()
        e = model.spectral_error
        # what -g^T p misses of the decrement, r^T H^{-1} r: bounded when the preconditioner
        # approximates H (H >= (1 - e) M), unknown otherwise
        missing = rz / (1.0 - e) if e is not None else np.inf
        if ok and float(g @ p) < 0:
            # the CG step solves H p = -g to a relative residual eta: ||p|| estimates
            # ||x - x*|| to first order (docs/math.md 7.1) when the model gives no estimate
            est = float(np.linalg.norm(p)) / (1.0 - eta) if e is None else np.inf
            return descent_step(g, p, image=Ap, inner_iterations=iters, error_estimate=est,
                                accuracy=eta, missing=missing)
        return descent_step(g, -model.solve(g), inner_iterations=iters, accuracy=eta)

    def _pcg(self, it: Iterate, kind: str, g: np.ndarray, eta: float):
        """Preconditioned CG on ``H p = -g``: ``(p, A p, iterations, ok, r^T M^{-1} r)``;
        ``ok`` is False on negative curvature at the first iteration (after some progress the
        partial solution is kept)."""
        state, loss, counts = it.state, self.loss, it.counts

        def product(v):
            counts["nhev"] += 1
            return loss.hessp_with_image(state, v, kind)

        x, Ax, k, ok, rz = preconditioned_cg(product, self.built, -g, eta, self._cg_cap())
        return x, Ax, k, ok or k > 1, rz


class SketchPCG(InexactNewton):
    """CG preconditioned by the sketched Hessian (``"pcg"``, n >> p): the model of method
    ``"sketch"``, kept across iterations; a slow CG refreshes the leverage scores."""

    name = "pcg"
    uses_sketch = True

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        check_dense_model_fits(loss, cls.name)

    def _build(self, it: Iterate) -> Model:
        return self.builder.factorized(it.state, sketched=True)

    def _rebuild_passes(self) -> float:
        return factorization_passes(self.loss)

    def _cg_cap(self) -> int:
        """A sketched preconditioner (spectral error ~0.5) lets CG converge in a handful:
        ``max(20, 2 sqrt p)``."""
        return max(20, 2 * int(np.sqrt(self.loss.n_params)))

    def _slow(self) -> None:
        self.builder.refresh()  # a poor preconditioner: stale leverage scores


class NewtonCG(InexactNewton):
    """Truncated Newton for many features (``"cg"``): no (p x p) matrix.

    Preconditioners (``settings.preconditioner``): the Hessian's diagonal
    (per-feature K x K blocks for the multinomial loss), a randomized Nystrom
    approximation (rank doubling from 32 while CG is slow and the last doubling
    cut the CG iterations by a third: beyond the effective dimension of the
    Hessian a larger rank buys nothing, Frangella, Tropp & Udell), or none.
    ``"auto"`` keeps the diagonal when it is spread (q90 / q10 above
    ``JACOBI_MIN_SPREAD``: features on different scales) and drops it otherwise.
    """

    name = "cg"

    def __init__(self, loss: Loss, settings, rng, penalty=None):
        super().__init__(loss, settings, rng, penalty)
        self.preconditioner = settings.preconditioner  # "auto" is resolved at the first build
        self._history: list[tuple[int, int]] = []  # (rank, CG iterations) before each doubling
        self._grows = True

    def describe(self) -> dict:
        return dict(super().describe(), preconditioner=self.preconditioner)

    def _build(self, it: Iterate) -> Model:
        builder, kind, state = self.builder, self.preconditioner, it.state
        if kind == "auto":
            model = builder.diagonal(state)
            self.preconditioner = "diagonal" if model.spread > JACOBI_MIN_SPREAD else "none"
            return model if self.preconditioner == "diagonal" else builder.identity(state)
        if kind == "diagonal":
            return builder.diagonal(state)
        if kind == "none":
            return builder.identity(state)
        if self.model is not None and self.cg_iterations > PCG_REFRESH and self._grows:
            self._history.append((builder.rank, self.cg_iterations))
            if len(self._history) > 1 and not self._history[-1][1] < 2 * self._history[-2][1] / 3:
                self._grows = False  # the last doubling did not pay
            else:
                builder.rank = min(2 * builder.rank, NYSTROM_MAX_RANK, self.loss.n_params)
        return builder.nystrom(state)

    def _rebuild_passes(self) -> float:
        return matrix_free_rebuild_passes(self.loss, self.preconditioner, self.builder.rank)

    def _cg_cap(self) -> int:
        """A matrix-free preconditioner leaves the conditioning of the data to CG, which may
        legitimately need hundreds of iterations at weak regularisation:
        ``max(50, min(p, 10 sqrt p))`` (an exact solve of a p-dimensional system needs p)."""
        p = self.loss.n_params
        return max(50, min(p, 10 * int(np.sqrt(p))))
