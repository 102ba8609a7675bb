"""The Newton driver: one globalised (approximate) Newton method for every loss.

:class:`NewtonSolver` follows scikit-learn's ``NewtonSolver``: ``solve``
calls named steps in order (``setup``, ``check_convergence``,
``update_gradient_hessian``, ``inner_solve``, ``line_search``,
``finalize``). The fixed problem lives in :class:`Problem`, the changing
iterate in :class:`Iterate`; per-iteration diagnostics are a list of dicts.
The driver talks to the loss only through the
:class:`~sketchnewton.losses.Loss` protocol, so the same code runs every loss
on every backend (in memory, Dask). The mathematics: docs/math.md sections
6 and 7.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from ._auto import (
    JACOBI_MIN_SPREAD,
    choose_method,
    preconditioner_rebuild_passes,
    product_passes,
)
from ._checks import Certification
from ._report import Reporting
from ._stopping import (
    FORCING_MAX,
    HINT,
    MODEL_REUSE_DZ,
    Decrement,
    ErrorBound,
    SolveResult,
    what_to_try,
)
from .exceptions import ConvergenceWarning, DomainError, warn
from .hessian import (
    ROW_SAMPLERS,
    ModelBuilder,
    factorize,
    factorize_psd,
    preconditioned_cg,
)
from .losses import Loss

__all__ = ["SolveResult", "NewtonSolver", "Problem", "Iterate", "METHODS", "ErrorBound",
           "Decrement", "choose_method"]

METHODS = ("auto", "exact", "dual", "sketch", "pcg", "cg")
#: methods whose step comes from conjugate gradients on exact Hessian-vector products
CG_METHODS = ("pcg", "cg")

#: Armijo sufficient-decrease constant (the usual ``c1`` of Nocedal & Wright, section 3.1)
ARMIJO = 1e-4
#: backtracking halvings before giving up: ``2^-40 ~ 1e-12`` of the step is below rounding
MAX_HALVINGS = 40
#: largest change of any entry of the linear predictor ``A x`` tried in the first trial of a
#: line search. The losses' curvature varies like ``exp(dz)`` (links, sigmoid, Poisson): a
#: Newton step that moves some ``z_i`` by more is outside the region its model describes, and
#: starting the search there only costs extra trials. Measured on the planted benchmark
#: problems (normalized and classifiers, n = 2e5): 4 cost up to 2 more Newton iterations on
#: ill-conditioned problems, 10 and 20 were equal.
MAX_DZ = 10.0
#: method "sketch" doubles the sketch size while the error estimate contracts by less than
#: this per iteration (Adaptive Newton Sketch): a sketch with spectral error e contracts by ~e
SKETCH_TARGET_RATE = 0.3
#: largest rank of the Nystrom preconditioner (r p numbers; its build costs a block product
#: of r columns and an r x r Cholesky and SVD of a p x r matrix)
NYSTROM_MAX_RANK = 512
#: CG iterations beyond which the preconditioner is rebuilt (with fresh leverage scores): a
#: fresh sketched preconditioner (spectral error ~0.5) needs 2-5 per Newton step; more means
#: the Hessian has moved away from it. Rebuilding costs a sampled Gram and a factorization
#: (p^3/3 flops: several passes for the multinomial loss), a CG iteration one pass.
PCG_REFRESH = 8
#: smallest forcing term: below this CG only fights rounding
FORCING_MIN = 1e-6


def _cg_cap(n_params, method):
    """CG iterations allowed per Newton step. With a sketched preconditioner (``"pcg"``,
    spectral error ~0.5) CG converges in a handful: ``max(20, 2 sqrt p)``. A matrix-free
    preconditioner leaves the conditioning of the data to CG, which may legitimately need
    hundreds of iterations at weak regularisation: ``max(50, min(p, 10 sqrt p))`` (the exact
    solve of a p-dimensional system needs at most p)."""
    if method == "pcg":
        return max(20, 2 * int(np.sqrt(n_params)))
    return max(50, min(n_params, 10 * int(np.sqrt(n_params))))


def _gradient_step(g, p):
    """``-g`` scaled to the length of ``p`` (to ``||g||`` when ``p`` is zero or not finite)."""
    gnorm, pnorm = float(np.linalg.norm(g)), float(np.linalg.norm(p))
    if not (np.isfinite(pnorm) and pnorm > 0 and gnorm > 0):
        return -g
    return -g * (pnorm / gnorm)


# -- the driver -----------------------------------------------------------------------------------
@dataclass
class Problem:
    """The fixed data of a solve."""

    loss: Loss
    criterion: object
    method: str
    sketch: str
    sketch_size: int | None
    max_iter: int
    rng: np.random.Generator
    verbose: int = 0
    callback: object = None
    preconditioner: str = "diagonal"


@dataclass
class Iterate:
    """The changing state: iterate, its loss state and the current model."""

    x: np.ndarray
    state: object
    model: object = None
    step: np.ndarray | None = None
    step_image: object = None
    step_size: float = 0.0
    last_dz: float = np.inf
    model_fresh: bool = False
    error_estimate: float = np.inf
    decrement: float = np.inf
    cg_iter: int = 0
    counts: dict = field(default_factory=lambda: dict(nfev=0, njev=0, nhev=0))

    @property
    def fun(self):
        return self.state.fun

    @property
    def grad(self):
        return self.state.grad


class NewtonSolver(Reporting, Certification):
    """Globalised (approximate) Newton method for any :class:`~sketchnewton.losses.Loss`.

    Each iteration: the loss's state at ``x_k`` (value, gradient, cached
    per-block quantities); a model ``H~`` of the Hessian (exact, or sketched);
    a step ``p = -H~^{-1} g`` (``"pcg"``: conjugate gradients on exact
    Hessian-vector products preconditioned by ``H~``); a backtracking Armijo
    line search whose trials cost O(n) each (``A p`` is computed once) and
    that rejects steps leaving the loss's domain.

    The model is the full Hessian when it is positive definite, else the
    Gauss-Newton matrix (when the loss offers one; always PSD; when singular,
    e.g. along the softmax shift, its pseudo-inverse), else a
    Levenberg-Marquardt damped matrix.
    """

    def __init__(self, problem):
        self.problem = problem
        self.loss = problem.loss
        self.data = problem.loss.data
        self.history = []
        self.timings = dict(gradient=0.0, factorization=0.0, inner_solve=0.0, line_search=0.0)
        self.status = None
        self.message = ""
        self.nit = 0

    # -- steps ----------------------------------------------------------------------------
    def setup(self, x0):
        """Evaluate the loss at ``x0`` (default: the loss's own start). Sets ``self.it``,
        ``self.builder``, ``self.g0_norm``, ``self.t0``."""
        pb = self.problem
        self.t0 = time.perf_counter()
        self.sweeps0 = self.data.sweeps
        image = None
        if x0 is None:
            x0, image = self.loss.start(pb.rng)
        try:
            state = self.loss.evaluate(forward=self.loss.forward(x0, image))
        except DomainError as exc:
            raise DomainError(f"the starting point is outside the domain of the loss: {exc}") from None
        self.timings["gradient"] += time.perf_counter() - self.t0
        self.it = Iterate(state.x, state)
        self.it.counts.update(nfev=1, njev=1)
        self.x0, self.f0 = state.x.copy(), state.fun
        sketch = "exact" if pb.method == "exact" else pb.sketch
        size = pb.sketch_size if pb.sketch_size is not None else 20 * self.data.d
        self.sketch_size = int(size)
        self.builder = ModelBuilder(self.loss, sketch, self.sketch_size, pb.rng)
        self.preconditioner = pb.preconditioner  # "auto" is resolved at the first build
        self._nystrom_history = []  # (rank, CG iterations) before each doubling of the rank
        self._nystrom_grows = True
        self.g0_norm = max(float(np.linalg.norm(state.grad)), np.finfo(float).tiny)

    def error_estimate(self, model=None):
        """``||H~^{-1} g|| / (1 - e)``; sets ``it.error_estimate``.

        A preconditioner that is no approximation of the Hessian (``spectral_error``
        None) gives no estimate: the conjugate-gradient step does (:meth:`inner_solve`).
        """
        it = self.it
        model = it.model if model is None else model
        if model.spectral_error is None:
            return it.error_estimate
        it.error_estimate = float(np.linalg.norm(model.solve(it.grad))) / (1.0 - model.spectral_error)
        return it.error_estimate

    def stop(self, status, message):
        """End the solve with ``status`` and ``message`` (set by the steps that decide it)."""
        self.status, self.message = status, message

    def check_convergence(self, fresh=False):
        """Apply the stopping rule; True ends the solve. ``fresh``: the model was just built.

        Before a new model is built (``fresh=False``) the last one, built at
        ``x_{k-1}``, is used, but convergence is declared only in the local
        regime (see :class:`ErrorBound` and :class:`Decrement`). A zero
        gradient is checked for curvature (:meth:`stationary`).
        """
        if float(np.linalg.norm(self.it.grad)) == 0.0:
            return self.stationary()
        return self.problem.criterion.check(self, fresh)

    def adapt_sketch(self):
        """Method ``"sketch"``: double the sketch size when contraction is poor.

        Adaptive Newton Sketch (Lacotte, Wang, Pilanci 2021): in the local
        regime (unit steps) the error of the sketched Newton iteration
        contracts by about the sketch's spectral error; when the observed
        ratio of successive progress measures (error estimates, or decrements)
        exceeds ``SKETCH_TARGET_RATE``, or the line search had to cut the
        step below 1/2 (a poor model), the sketch doubles (up to ``n``).
        """
        pb = self.problem
        if pb.method != "sketch" or pb.sketch_size is not None or len(self.history) < 3:
            return
        key = pb.criterion.column
        prev, cur = self.history[-2][key], self.history[-1][key]
        ratio = cur / prev if np.isfinite(prev) and prev > 0 and np.isfinite(cur) else 0.0
        poor = ratio > SKETCH_TARGET_RATE if self.it.step_size == 1.0 else self.it.step_size < 0.5
        if poor and self.builder.sketch_size < self.data.n:
            self.builder.sketch_size = min(2 * self.builder.sketch_size, self.data.n)

    def _keep_preconditioner(self):
        """After a unit step whose CG needed at most ``PCG_REFRESH`` iterations, when the model
        still fits (the step moved no ``z_i`` by more than ``MODEL_REUSE_DZ``) or rebuilding it
        costs more than the ``PCG_REFRESH`` products it could save."""
        it = self.it
        if not (self.problem.method in CG_METHODS and it.model is not None
                and it.step_size == 1.0 and it.cg_iter <= PCG_REFRESH):
            return False
        pb = self.problem
        rebuild = preconditioner_rebuild_passes(self.loss, pb.method, self.preconditioner,
                                                self.builder.rank)
        return it.last_dz <= MODEL_REUSE_DZ or rebuild > PCG_REFRESH * product_passes(self.loss)

    def _preconditioner(self):
        """Method ``"cg"``: the matrix-free preconditioner.

        A Nystrom preconditioner whose CG needed more than ``PCG_REFRESH``
        iterations is rebuilt with twice the rank, as long as the last doubling
        cut the CG iterations by a third (beyond the effective dimension of the
        Hessian a larger rank buys nothing: Frangella, Tropp & Udell).
        """
        it, builder, kind = self.it, self.builder, self.preconditioner
        if kind == "auto":  # Jacobi when the features are unevenly scaled, else none
            model = builder.diagonal(it.state)
            self.preconditioner = "diagonal" if model.spread > JACOBI_MIN_SPREAD else "none"
            return model if self.preconditioner == "diagonal" else builder.identity(it.state)
        if kind == "diagonal":
            return builder.diagonal(it.state)
        if kind == "none":
            return builder.identity(it.state)
        hist = self._nystrom_history
        if it.model is not None and it.cg_iter > PCG_REFRESH and self._nystrom_grows:
            hist.append((builder.rank, it.cg_iter))
            if len(hist) > 1 and not hist[-1][1] < 2 * hist[-2][1] / 3:
                self._nystrom_grows = False  # the last doubling did not pay
            else:
                builder.rank = min(2 * builder.rank, NYSTROM_MAX_RANK, self.loss.n_params)
        return builder.nystrom(it.state)

    def _dual_model(self):
        """Method ``"dual"``: the exact Hessian inverse through the (n x n) system; the
        Gauss-Newton matrix when the full Hessian's system is singular."""
        for kind in self.loss.hessian_kinds:
            try:
                return self.builder.dual(self.it.state, kind)
            except np.linalg.LinAlgError:
                continue
        raise np.linalg.LinAlgError("the dual Newton system is singular")

    def update_gradient_hessian(self):
        """Build and factorize the Hessian model at ``x_k``. Sets ``it.model``, ``it.model_fresh``.

        ``"pcg"`` may keep its preconditioner (:meth:`_keep_preconditioner`):
        CG corrects the difference with exact products, and the CG count is
        the direct measure of how well the preconditioner still fits.
        """
        if self._keep_preconditioner():
            self.it.model_fresh = False
            return
        self.it.model_fresh = True
        method = self.problem.method
        if method in ("cg", "dual"):
            t0 = time.perf_counter()
            self.it.model = self._preconditioner() if method == "cg" else self._dual_model()
            self.timings["factorization"] += time.perf_counter() - t0
            self.note_curvature(self.it.model)
            return
        exact = self.builder.sketch == "exact"
        kinds = list(self.loss.hessian_kinds)
        if not (exact or self.builder.sketch in ROW_SAMPLERS):
            kinds = kinds[-1:]  # oblivious sketches: the Gauss-Newton factor
        model = None
        for kind in kinds:
            if exact:
                H, s = self.builder.exact(self.it.state, kind)
            else:
                H, s = self.builder.sketched(self.it.state, kind)
            t0 = time.perf_counter()
            model = factorize(H, kind, s)
            if model is None and kind == kinds[-1]:
                model = factorize_psd(H, kind, s)
            self.timings["factorization"] += time.perf_counter() - t0
            if model is not None:
                break
        self.it.model = model
        self.note_curvature(model)

    def inner_solve(self):
        """Compute the step ``p``. Sets ``it.step``, ``it.step_image`` (``A p`` or None),
        ``it.cg_iter``, ``it.decrement``."""
        t0 = time.perf_counter()
        it, g = self.it, self.it.grad
        model = it.model
        p, Ap, it.cg_iter = None, None, 0
        if self.problem.method in CG_METHODS:
            kinds = self.loss.hessian_kinds
            p, Ap, it.cg_iter, ok, eta = self._pcg(kinds[0], model, g)
            if not ok and len(kinds) > 1:
                p, Ap, cg2, ok, eta = self._pcg(kinds[-1], model, g)
                it.cg_iter += cg2
            if not ok or not float(g @ p) < 0:
                p, Ap = None, None
            elif model.spectral_error is None:
                # the CG step solves H p = -g to a relative residual eta: ||p|| estimates
                # ||x - x*|| to first order (docs/math.md 7.1)
                it.error_estimate = float(np.linalg.norm(p)) / (1.0 - eta)
            if it.cg_iter > PCG_REFRESH:
                self.builder.refresh()  # a poor preconditioner: stale leverage scores
        if p is None:
            p = -model.solve(g)
        if not float(g @ p) < 0:  # not a descent direction: steepest descent, scaled like p
            p, Ap = _gradient_step(g, p), None
        it.step, it.step_image = p, Ap
        it.decrement = -float(g @ p)
        self.timings["inner_solve"] += time.perf_counter() - t0

    def _pcg(self, kind, model, g):
        """Preconditioned CG on ``H p = -g``. Returns ``(p, A p, iterations, ok, eta)``.

        Forcing term ``eta = min(FORCING_MAX, sqrt(||g|| / ||g_0||))``
        (superlinear inexact Newton), relaxed by the stopping rule when the
        target is looser. ``A p`` is accumulated from the images ``A d_k`` the
        Hessian products compute anyway, so the line search needs no extra
        pass. ``ok`` is False on negative curvature at the first iteration
        (after some progress the partial solution is kept).
        """
        eta = min(FORCING_MAX, np.sqrt(np.linalg.norm(g) / self.g0_norm))
        eta = max(self.problem.criterion.relax_forcing(eta, self), FORCING_MIN)
        state, loss, counts = self.it.state, self.loss, self.it.counts

        def product(v):
            counts["nhev"] += 1
            return loss.hessp_with_image(state, v, kind)

        x, Ax, k, ok = preconditioned_cg(product, model, -g, eta,
                                         _cg_cap(g.size, self.problem.method))
        return x, Ax, k, ok or k > 1, eta

    def line_search(self):
        """Backtracking Armijo search along ``it.step``. Sets ``it.x``, ``it.state``,
        ``it.step_size``, ``it.last_dz``; returns False when no acceptable step exists.

        ``A p`` is computed once, so every trial costs O(n), not a pass
        (``z(t) = z + t A p``). The first trial is capped so that no entry of
        ``z`` moves by more than ``MAX_DZ``. Trials outside the loss's domain
        are rejected. When the predicted decrease is below the loss's rounding
        error, a step is accepted if it does not increase ``||H~^{-1} g||``.
        """
        t0 = time.perf_counter()
        loss, it = self.loss, self.it
        f0, g, p = it.fun, it.grad, it.step
        Ap = loss.image(p) if it.step_image is None else it.step_image
        slope = float(g @ p)
        roundoff = 64 * np.finfo(float).eps * max(abs(f0), np.finfo(float).tiny)
        dz = float(np.abs(Ap).max()) if Ap.size else 0.0
        t = 1.0 if dz <= MAX_DZ else MAX_DZ / dz
        z0 = it.state.image
        accepted = None
        for _ in range(MAX_HALVINGS):
            it.counts["nfev"] += 1
            try:
                trial = loss.forward(it.x + t * p, z0 + t * Ap)
            except DomainError:
                t *= 0.5
                continue
            if trial.fun <= f0 + ARMIJO * t * slope:
                accepted = trial
                break
            if abs(t * slope) <= roundoff and trial.fun <= f0 + roundoff:
                # the decrease is invisible in the loss: judge by the model's Newton
                # decrement, which rounding does not hide
                state = loss.evaluate(forward=trial)
                it.counts["njev"] += 1
                model = it.model
                if np.linalg.norm(model.solve(state.grad)) <= np.linalg.norm(model.solve(g)):
                    self.timings["line_search"] += time.perf_counter() - t0
                    it.x, it.state, it.step_size, it.last_dz = state.x, state, t, t * dz
                    return True
                break
            t *= 0.5
        self.timings["line_search"] += time.perf_counter() - t0
        if accepted is None:
            return False
        t1 = time.perf_counter()
        it.state = loss.evaluate(forward=accepted)
        it.counts["njev"] += 1
        self.timings["gradient"] += time.perf_counter() - t1
        it.x, it.step_size, it.last_dz = accepted.x, t, t * dz
        return True

    def solve(self, x0=None):
        """Run the method from ``x0``; returns a :class:`SolveResult`."""
        pb = self.problem
        self.setup(x0)
        while True:
            converged = self.check_convergence()
            self._record()
            if self.status is not None:
                break
            if converged:
                if self.status is None:
                    self.stop(0, f"converged: {pb.criterion.name} reached")
                break
            if self.nit >= pb.max_iter:
                self.status, self.message = 1, f"maximum number of iterations ({pb.max_iter}) reached"
                break
            self.adapt_sketch()
            self.update_gradient_hessian()
            if self.check_convergence(fresh=True):
                self.history[-1]["error_estimate"] = self.it.error_estimate
                if self.status is None:
                    self.stop(0, f"converged: {pb.criterion.name} reached")
                break
            self.inner_solve()
            if self.problem.criterion.check_step(self):
                if self.status is None:
                    self.stop(0, f"converged: {pb.criterion.name} reached")
                break
            if not self.line_search():
                # last resort: a steepest-descent step scaled like the Newton step
                it = self.it
                it.step = _gradient_step(it.grad, it.step)
                it.step_image = None
                it.decrement = -float(it.grad @ it.step)
                if not self.line_search():
                    self.status = 2
                    self.message = "no decrease possible along the Newton or gradient direction"
                    break
            self.nit += 1
        return self.finalize()

    def finalize(self):
        """Assemble the :class:`SolveResult`; warn when the stopping rule was not met."""
        it, pb = self.it, self.problem
        if np.isinf(it.error_estimate) and it.model is not None:
            self.error_estimate()
        met = pb.criterion.met(self)
        success = self.status == 0 or (self.status in (1, 2) and met and not self.message)
        reason = self.certify() if success else None
        if reason is not None:
            success = False
            self.stop(2, reason)
        elif self.status == 2 and success:
            self.message = f"converged to machine precision: {pb.criterion.name} reached"
        if not success and self.status != 3:
            if self.status == 1 or self.message.startswith("no decrease possible"):
                self.message += f" ({pb.criterion.shortfall(self)})"
            hint = what_to_try(self.status, self.message, pb.criterion, pb.max_iter)
            warn(f"sketchnewton did not reach {pb.criterion.name}: {self.message}{HINT}{hint}",
                 ConvergenceWarning)
        timings = dict(self.timings, **self.builder.timings)
        return SolveResult(
            x=it.x, fun=it.fun, jac=it.grad, grad_norm=float(np.linalg.norm(it.grad)),
            error_bound=it.error_estimate, error_bound_kind="estimate", decrement=it.decrement,
            nit=self.nit, success=bool(success), status=self.status, message=self.message,
            method=pb.method, preconditioner=self.preconditioner if pb.method == "cg" else None,
            sketch=self.builder.sketch,
            sketch_size=self.sketch_size if self.builder.sketch != "exact" else 0,
            passes=(self.data.sweeps - self.sweeps0) / 2, time=time.perf_counter() - self.t0,
            timings=timings, history=self.history, **it.counts)
