"""Inexact Newton: conjugate gradients on exact Hessian-vector products, preconditioned by a
sketched model (``"pcg"``) or a matrix-free one (``"cg"``); docs/math.md sections 6.3 and 8."""

from abc import abstractmethod
from dataclasses import replace

import numpy as np

from .._auto import (
    JACOBI_MIN_SPREAD,
    factorization_passes,
    leverage_passes,
    matrix_free_rebuild_passes,
    product_passes,
    sampled_gram_passes,
    subsample_start,
)
from .._stopping import FORCING_MAX, MODEL_REUSE_DZ
from ..hessian import cg_decrement, preconditioned_cg
from ..hessian._model import Model
from ..losses import Loss, State
from ._base import Iterate, Step, Strategy, check_dense_model_fits, descent_step

__all__ = ["InexactNewton", "SketchPCG", "NewtonCG", "SubsampledNewtonCG", "PCG_REFRESH",
           "FORCING_MIN", "CONFIRM_ITERATIONS", "NYSTROM_MAX_RANK", "SUBSAMPLE_TARGET_RATE",
           "DEFER_SHARE"]

#: CG iterations beyond which the preconditioner is rebuilt (with fresh leverage scores): a
#: fresh sketched preconditioner (spectral error ~0.5) needs 2-5 per Newton step; more means
#: the Hessian has moved away from it. Rebuilding costs a sampled Gram and a factorization
#: (p^3/3 flops: several passes for the multinomial loss), a CG iteration one pass.
PCG_REFRESH = 8
#: the sketched preconditioner of dense rows is built once a Newton step's unpreconditioned CG
#: has spent this share of the build's cost (leverage scores, sampled Gram, factorization) in
#: products without converging: a ski-rental rule, at most this share wasted once, and never
#: built where the Hessian is well conditioned enough for plain CG (random features at C = 1:
#: 3-9 products per step with or without it, for 1.5 s of build at d = 1,000)
DEFER_SHARE = 0.5
#: smallest forcing term: below this CG only fights rounding
FORCING_MIN = 1e-6
#: conjugate-gradient iterations a decrement that certifies ``tol`` may take at least
CONFIRM_ITERATIONS = 50
#: largest rank of the Nystrom preconditioner (r p numbers; its build costs a block product
#: of r columns and an r x r Cholesky and SVD of a p x r matrix)
NYSTROM_MAX_RANK = 512
#: sub-sampled Newton doubles its Hessian sample while the observed contraction of its unit
#: steps is slower than this (the rate of the adaptive sketch, section 6.5 of docs/math.md)
SUBSAMPLE_TARGET_RATE = 0.3


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
        product = _products(self.loss, it, self.loss.hessian_kinds[-1], False)
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
            est = self._step_estimate(p, eta) if e is None else np.inf
            return descent_step(g, p, image=Ap, inner_iterations=iters, error_estimate=est,
                                accuracy=eta, missing=missing)
        return descent_step(g, -model.solve(g), inner_iterations=iters, accuracy=eta)

    def _step_estimate(self, p: np.ndarray, eta: float) -> float:
        """``||x - x*||`` from a CG step solving ``H p = -g`` to relative residual ``eta``."""
        return float(np.linalg.norm(p)) / (1.0 - eta)

    def _pcg(self, it: Iterate, kind: str, g: np.ndarray, eta: float):
        """Preconditioned CG on ``H p = -g``: ``(p, A p, iterations, ok, r^T M^{-1} r)``;
        ``ok`` is False on negative curvature at the first iteration (after some progress the
        partial solution is kept)."""
        product = _products(self.loss, it, kind, self.loss.accumulate_images)
        x, Ax, k, ok, rz = preconditioned_cg(product, self.built, -g, eta, self._cg_cap())
        return x, Ax, k, ok or k > 1, rz


class SketchPCG(InexactNewton):
    """CG preconditioned by the sketched Hessian (``"pcg"``, n >> p): the model of method
    ``"sketch"``, kept across iterations; a slow CG refreshes the leverage scores.

    On dense rows, where the sampled Gram costs ``s d^2`` flops (14 passes at d = 1,000), the
    preconditioner is *deferred*: steps run plain CG until one has taken ``DEFER_SHARE`` of
    the build's cost in products without converging; then the preconditioner is built and
    that step solved again with it (``budget`` products wasted at most once).
    """

    name = "pcg"
    uses_sketch = True

    def __init__(self, loss: Loss, settings, rng, penalty=None):
        super().__init__(loss, settings, rng, penalty)
        self.budget = self._deferral_budget()
        self.deferred = self.budget > 0

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        check_dense_model_fits(loss, cls.name)

    def describe(self) -> dict:
        return dict(super().describe(), preconditioner="none" if self.deferred else "sketched")

    def _deferral_budget(self) -> int:
        """Unpreconditioned CG products a step may take before the preconditioner is built;
        0 (build at once) for sparse rows or when that is at most ``PCG_REFRESH``."""
        loss = self.loss
        if loss.data.is_sparse:
            return 0
        build = leverage_passes(loss) + self._rebuild_passes()
        budget = int(DEFER_SHARE * build / product_passes(loss))
        return budget if budget > PCG_REFRESH else 0

    def _build(self, it: Iterate) -> Model:
        if self.deferred:
            return self.builder.identity(it.state)
        return self.builder.factorized(it.state, sketched=True)

    def _rebuild_passes(self) -> float:
        """The sampled Gram and its factorization: on dense rows the Gram (``s d^2`` flops,
        ``s = 20 d``) costs 60 times the Cholesky (random features, d = 1,000: 0.6-0.7 s, 14
        passes, rebuilt after 4 of 7 steps before it was counted here)."""
        return factorization_passes(self.loss) + sampled_gram_passes(self.loss, self.sketch_size)

    def _cg_cap(self) -> int:
        """A sketched preconditioner (spectral error ~0.5) lets CG converge in a handful:
        ``max(20, 2 sqrt p)``; one more than the budget while deferred."""
        if self.deferred:
            return self.budget + 1
        return max(20, 2 * int(np.sqrt(self.loss.n_params)))

    def _cg_step(self, it: Iterate, forcing_floor: float) -> Step:
        step = super()._cg_step(it, forcing_floor)
        if self.deferred and step.inner_iterations > self.budget:
            self.deferred = False  # plain CG is slow here: the preconditioner pays from now on
            self.model, self.fresh = self._build(it), True
            spent = step.inner_iterations
            step = super()._cg_step(it, forcing_floor)
            step = replace(step, inner_iterations=step.inner_iterations + spent)
        return step

    def _slow(self) -> None:
        if not self.deferred:
            self.builder.refresh()  # a poor preconditioner: stale leverage scores


class NewtonCG(InexactNewton):
    """Truncated Newton for many features (``"cg"``): no (p x p) matrix.

    Preconditioners (``settings.preconditioner``): the Hessian's diagonal
    (per-feature K x K blocks for the multinomial loss), the Kronecker-factored
    ``S (x) G + lam I`` of the multinomial Hessian (docs/math.md 8.7), a randomized Nystrom
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
        if kind == "kronecker":
            return builder.kronecker(state)
        if self.model is not None and self.cg_iterations > PCG_REFRESH and self._grows:
            self._history.append((builder.rank, self.cg_iterations))
            if len(self._history) > 1 and not self._history[-1][1] < 2 * self._history[-2][1] / 3:
                self._grows = False  # the last doubling did not pay
            else:
                builder.rank = min(2 * builder.rank, NYSTROM_MAX_RANK, self.loss.n_params)
        return builder.nystrom(state)

    def _rebuild_passes(self) -> float:
        return matrix_free_rebuild_passes(self.loss, self.preconditioner, self.builder.rank,
                                          self.sketch_size)

    def _cg_cap(self) -> int:
        """A matrix-free preconditioner leaves the conditioning of the data to CG, which may
        legitimately need hundreds of iterations at weak regularisation:
        ``max(50, min(p, 10 sqrt p))`` (an exact solve of a p-dimensional system needs p)."""
        p = self.loss.n_params
        return max(50, min(p, 10 * int(np.sqrt(p))))


class SubsampledNewtonCG(NewtonCG):
    """Sub-sampled Newton-CG (``"subsampled"``): the gradient is exact, the Hessian-vector
    products of CG use a uniform sample of ``m`` rows reweighted by ``n / m`` (Byrd, Chin,
    Neveitt & Nocedal 2011; Roosta-Khorasani & Mahoney 2019; docs/math.md 8.8).

    A new sample is drawn at every Newton iteration. ``m`` starts at
    :func:`~sketchnewton._auto.subsample_start` and doubles while the observed contraction
    of unit steps is slower than ``SUBSAMPLE_TARGET_RATE`` or the line search cut the step to
    1/2 or less; at ``n / 2`` rows and beyond every
    row is used, and the method is Newton-CG. The sample's products run in float32 for
    float32 data (their images are not kept: the line search computes ``A p``).
    The preconditioner is that of ``"cg"``, the Kronecker-factored one by default for the
    multinomial loss. The decrement that certifies ``tol`` is computed with exact products
    (:meth:`InexactNewton.decrement`); a step of sub-sampled products gives no error
    estimate of its own (``eps`` is certified once the sample holds every row).
    """

    name = "subsampled"

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        """Only a row-separable loss in memory offers row subsets."""
        if not loss.row_subsets:
            loss.row_subset(np.arange(0), 1.0)  # raises the loss's InputError

    def __init__(self, loss: Loss, settings, rng, penalty=None):
        self.check_fits(loss)
        super().__init__(loss, settings, rng, penalty)
        if self.preconditioner == "auto" and loss.kronecker_curvature:
            self.preconditioner = "kronecker"
        self.rows = min(loss.data.n, subsample_start(loss))
        self._float32 = loss.float32_data
        self._sub: Loss | None = None
        self._sub_state: State | None = None

    @property
    def full(self) -> bool:
        """The sample holds every row (the products are exact)."""
        return self.rows >= self.loss.data.n

    def describe(self) -> dict:
        return dict(super().describe(), hessian_rows=int(self.rows))

    def update(self, it: Iterate, contraction: float | None) -> None:
        n = self.loss.data.n
        if contraction is not None and it.step is not None and not self.full:
            # a sample too small underestimates curvature: its steps overshoot and the line
            # search halves them (0.5 at 13 iterations in a row with 50 rows per class)
            poor = contraction > SUBSAMPLE_TARGET_RATE if it.step_size == 1.0 \
                else it.step_size <= 0.5
            if poor:
                self.rows = n if 4 * self.rows >= n else 2 * self.rows
        self._draw(it)
        super().update(it, contraction)

    def _draw(self, it: Iterate) -> None:
        """A new row sample and the loss's state on it (no pass: the image is known); every
        row once the sample is full, with float32 products for float32 data."""
        loss = self.loss
        n = loss.data.n
        if self.full:
            self._sub = loss.row_subset(None, 1.0, precise=False) if self._float32 else None
            self._sub_state = it.state
            return
        rows = np.sort(self.rng.choice(n, size=self.rows, replace=False))
        # float32 products for float32 data: CG's images of the sample are not kept
        sub = loss.row_subset(rows, n / self.rows, precise=False)
        loss.data.count_rows_read(sub.data.nnz)
        self._sub = sub
        self._sub_state = loss.subset_state(sub, it.state, rows)

    def step(self, it: Iterate, forcing_floor: float = 0.0) -> Step:
        try:
            return super().step(it, forcing_floor)
        finally:  # the sample's loss and state (m x K arrays) are not needed past the step
            self._sub = self._sub_state = None

    def _pcg(self, it: Iterate, kind: str, g: np.ndarray, eta: float):
        sub, sub_state = self._sub, self._sub_state
        if sub is None or sub_state is None:
            return super()._pcg(it, kind, g, eta)
        counts, loss = it.counts, self.loss
        before = sub.data.sweeps

        def product(v):
            counts["nhev"] += 1
            return sub.hessp(sub_state, v, kind), None  # images not kept

        x, _, k, ok, rz = preconditioned_cg(product, self.built, -g, eta, self._cg_cap())
        # the sample's sweeps, in sweeps over all of A (a view of every row counts its own)
        if sub.data is not loss.data:
            loss.data.count_sweeps((sub.data.sweeps - before) * sub.data.nnz
                                   / max(loss.data.nnz, 1))
        return x, None, k, ok or k > 1, rz

    def _step_estimate(self, p: np.ndarray, eta: float) -> float:
        return super()._step_estimate(p, eta) if self.full else np.inf

    def decrement(self, it: Iterate, target: float) -> float:
        """:meth:`InexactNewton.decrement` on exact products of every row (float32 products
        for float32 data: a relative error ~1e-7 of the decrement)."""
        if not self._float32:
            return super().decrement(it, target)
        if self.model is None:
            self.update(it, None)
        fast = self.loss.row_subset(None, 1.0, precise=False)
        product = _products(fast, it, self.loss.hessian_kinds[-1], False)
        return self._timed(cg_decrement, product, self.built, -it.grad, target,
                           max(self._cg_cap(), 2 * CONFIRM_ITERATIONS))


def _products(loss: Loss, it: Iterate, kind: str, images: bool):
    """``v -> (H v, A v or None)`` at ``it`` for conjugate gradients, counted in ``it.counts``;
    ``images``: with the image ``A v`` (CG accumulates ``A p`` from them)."""
    state, counts = it.state, it.counts

    def product(v):
        counts["nhev"] += 1
        return loss.hessp_with_image(state, v, kind) if images else (loss.hessp(state, v, kind), None)

    return product
