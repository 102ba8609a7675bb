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

import inspect
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeResult

from ._kernels import single_threaded_blas
from ._validation import check_choice, check_int, check_random_state, check_real, check_vector
from .exceptions import ConvergenceWarning, DomainError, InputError, warn
from .hessian import ROW_SAMPLERS, SKETCHES, ModelBuilder, factorize, factorize_psd, preconditioned_cg
from .losses import Loss

__all__ = ["minimize", "SolveResult", "NewtonSolver", "Problem", "Iterate", "METHODS",
           "ErrorBound", "Decrement", "choose_method"]

METHODS = ("auto", "exact", "sketch", "pcg")

#: Armijo sufficient-decrease constant (the usual ``c1`` of Nocedal & Wright, section 3.1)
ARMIJO = 1e-4
#: backtracking halvings before giving up: ``2^-40 ~ 1e-12`` of the step is below rounding
MAX_HALVINGS = 40
#: largest change of any entry of the linear predictor ``A x`` tried in the first trial of a
#: line search. The losses' curvature varies like ``exp(dz)`` (links, sigmoid, Poisson): a
#: Newton step that moves some ``z_i`` by more is outside the region its model describes, and
#: starting the search there only costs extra trials (and overflow-prone evaluations).
MAX_DZ = 10.0
#: method "sketch" doubles the sketch size while the error estimate contracts by less than
#: this per iteration (Adaptive Newton Sketch): a sketch with spectral error e contracts by ~e
SKETCH_TARGET_RATE = 0.3
#: CG iterations beyond which the preconditioner is rebuilt (with fresh leverage scores):
#: a good sketched preconditioner (spectral error ~0.5) needs 3-6
PCG_REFRESH = 10
#: a model built before a unit step that moved no ``z_i`` by more than this still describes
#: the Hessian within ~10% (curvature varies like ``exp(dz)``): it may judge convergence and
#: keep preconditioning CG
MODEL_REUSE_DZ = 0.1
#: largest CG forcing term ``eta = min(FORCING_MAX, sqrt(||g|| / ||g_0||))`` (Eisenstat-Walker
#: style: loose far from the solution, tightening superlinearly near it)
FORCING_MAX = 0.5
#: smallest forcing term: below this CG only fights rounding
FORCING_MIN = 1e-6


def _cg_cap(n_params):
    """CG iterations allowed per Newton step: a preconditioned CG converges in a handful;
    ``sqrt(p)`` grows with the problem for unpreconditioned spectra."""
    return max(20, 2 * int(np.sqrt(n_params)))


# -- stopping rules -----------------------------------------------------------------------------
class ErrorBound:
    """Stop when the estimated error ``||x - x*||`` is at most ``eps`` (docs/math.md 7.1).

    The estimate is ``||H~^{-1} g|| / (1 - e)`` with ``H~`` the current model
    and ``e`` a conservative level of its spectral error (0 exact,
    ``min(0.9, 2 sqrt(p / s))`` for a sketch of ``s`` rows).
    """

    name = "eps"
    column = "error_estimate"

    def __init__(self, eps):
        self.eps = eps

    def check(self, solver, fresh):
        it = solver.it
        if it.model is None:
            return False
        est = solver.error_estimate()
        if fresh:
            return est <= self.eps
        return est <= self.eps and it.step_size == 1.0 and it.last_dz <= MODEL_REUSE_DZ

    def relax_forcing(self, eta, solver):
        """The step need not be more accurate than the target: ``eta >= 0.1 eps / error``."""
        est = solver.it.error_estimate
        if np.isfinite(est) and est > 0:
            eta = max(eta, min(FORCING_MAX, 0.1 * self.eps / est))
        return eta

    def met(self, solver):
        return solver.it.error_estimate <= self.eps

    def shortfall(self, solver):
        return f"estimated error {solver.it.error_estimate:.3g} > eps = {self.eps:.3g}"


class Decrement:
    """Stop when half the squared Newton decrement of a unit step is ``<= tol |f|``.

    After an accepted unit step ``p`` (the local regime) the objective error
    left was about ``-g^T p / 2`` before the step and quadratically less after
    it (docs/math.md 7.2); or, after two unit steps with contracting
    decrements, when the extrapolated error ``dec_k/2 * dec_k / dec_{k-1}`` is
    below ``EXTRAPOLATION_SAFETY tol |f|`` (saves the last iteration); or when
    ``||g|| <= 1e-3 tol ||g_0||``.
    """

    name = "tol"
    column = "decrement"
    #: share of ``tol |f|`` the extrapolated objective error must be under
    EXTRAPOLATION_SAFETY = 1e-3

    def __init__(self, tol):
        self.tol = tol
        self._prev = None

    def check(self, solver, fresh):
        if fresh:
            return False
        it = solver.it
        gnorm = float(np.linalg.norm(it.grad))
        if gnorm <= 1e-3 * self.tol * solver.g0_norm:
            return True
        prev, self._prev = self._prev, None
        if it.step is None or it.step_size != 1.0:
            return False
        self._prev = it.decrement
        scale = self.tol * max(abs(it.fun), np.finfo(float).tiny)
        if 0.5 * it.decrement <= scale:
            return True
        if prev is not None and it.decrement < 0.5 * prev:
            return 0.5 * it.decrement * (it.decrement / prev) <= self.EXTRAPOLATION_SAFETY * scale
        return False

    def relax_forcing(self, eta, solver):
        return eta

    def met(self, solver):
        it = solver.it
        return 0.5 * it.decrement <= 1e3 * self.tol * max(abs(it.fun), 1e-300)

    def shortfall(self, solver):
        return f"half Newton decrement {0.5 * solver.it.decrement:.3g} > tol |f|"


# -- the result ---------------------------------------------------------------------------------
class SolveResult(OptimizeResult):
    """Result of :func:`minimize` and :func:`sketchnewton.solve` (a ``scipy.optimize.OptimizeResult``).

    Attributes
    ----------
    x : ndarray (n_params,)
        The solution.
    fun : float
        Loss at ``x``.
    jac : ndarray (n_params,)
        Gradient at ``x``.
    grad_norm : float
        ``||jac||_2``.
    error_bound : float
        Estimate of ``||x - x*||_2`` (docs/math.md 7.1; ``inf`` when no model was built).
    error_bound_kind : {"estimate"}
    decrement : float
        ``-g^T p`` of the last step ``p`` (``inf`` before the first).
    nit : int
        Newton iterations.
    nfev, njev, nhev : int
        Loss evaluations (line-search trials included), gradient evaluations,
        Hessian-vector products.
    success : bool
        True when the stopping rule was met (``error_bound <= eps``, or the
        decrement rule for ``tol``).
    status : int
        0 converged, 1 iteration limit, 2 no further progress possible
        (line search failed at machine precision), 3 stopped by callback.
    message : str
    method : str
        The method used (what ``"auto"`` chose).
    sketch, sketch_size
        The sketch of the model (``"exact"`` and 0 for exact Newton).
    passes : float
        Passes over ``A`` (one pass = one ``A @ x`` plus one ``A.T @ y``;
        a Gram of sampled rows counts the fraction of non-zeros it reads;
        the exact Gram counts one sweep although it costs ``O(sum nnz_i^2)``,
        see ``timings``).
    time : float
        Wall-clock seconds.
    timings : dict
        Seconds spent in gradient, leverage scores, sketch, gram,
        factorization, inner solve and line search.
    history : list of dict
        Per iteration: ``iter, loss, grad_norm, step_size, step_norm,
        error_estimate, decrement, sketch_size, cg_iter, model, passes, seconds``.
    """

    def __repr__(self):
        keys = ("success", "status", "message", "fun", "grad_norm", "error_bound", "nit",
                "method", "passes", "time")
        items = ", ".join(f"{k}={self[k]!r}" for k in keys if k in self)
        return f"SolveResult({items}, x=<array of {np.size(self.get('x'))}>)"

    def history_columns(self):
        """The history as columns: ``{name: ndarray}`` (one entry per iteration)."""
        rows = self.get("history", [])
        return {k: np.array([r[k] for r in rows]) for k in (rows[0] if rows else {})}


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


def _new_style_callback(callback):
    """scipy's rule: ``callback(intermediate_result)`` when its only parameter has that name,
    else the legacy ``callback(xk)``."""
    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return False
    return params == ["intermediate_result"]


class NewtonSolver:
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
        sketch = "exact" if pb.method == "exact" else pb.sketch
        size = pb.sketch_size if pb.sketch_size is not None else 20 * self.data.d
        self.sketch_size = int(size)
        self.builder = ModelBuilder(self.loss, sketch, self.sketch_size, pb.rng)
        self.g0_norm = max(float(np.linalg.norm(state.grad)), np.finfo(float).tiny)

    def error_estimate(self, model=None):
        """``||H~^{-1} g|| / (1 - e)``; sets ``it.error_estimate``."""
        it = self.it
        model = it.model if model is None else model
        e = 0.0 if model.sketch_size == 0 else min(0.9, 2.0 * np.sqrt(self.data.d / model.sketch_size))
        it.error_estimate = float(np.linalg.norm(model.solve(it.grad))) / (1.0 - e)
        return it.error_estimate

    def check_convergence(self, fresh=False):
        """Apply the stopping rule. ``fresh``: the model was just built at ``x_k``.

        Before a new model is built (``fresh=False``) the last one, built at
        ``x_{k-1}``, is used, but convergence is declared only in the local
        regime (see :class:`ErrorBound` and :class:`Decrement`). A zero
        gradient is a stationary point.
        """
        if float(np.linalg.norm(self.it.grad)) == 0.0:
            self.it.error_estimate = 0.0
            return True
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
        it = self.it
        return (self.problem.method == "pcg" and it.model is not None and it.step_size == 1.0
                and it.last_dz <= MODEL_REUSE_DZ and it.cg_iter <= PCG_REFRESH)

    def update_gradient_hessian(self):
        """Build and factorize the Hessian model at ``x_k``. Sets ``it.model``.

        ``"pcg"`` keeps its preconditioner in the local regime (the last unit
        step moved no ``z_i`` by more than ``MODEL_REUSE_DZ``) while CG
        converges quickly: CG corrects the difference with exact products.
        """
        if self._keep_preconditioner():
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

    def inner_solve(self):
        """Compute the step ``p``. Sets ``it.step``, ``it.step_image`` (``A p`` or None),
        ``it.cg_iter``, ``it.decrement``."""
        t0 = time.perf_counter()
        it, g = self.it, self.it.grad
        model = it.model
        p, Ap, it.cg_iter = None, None, 0
        if self.problem.method == "pcg":
            p, Ap, it.cg_iter, ok = self._pcg(model.kind, model, g)
            if not ok and model.kind != self.loss.hessian_kinds[-1]:
                p, Ap, cg2, ok = self._pcg(self.loss.hessian_kinds[-1], model, g)
                it.cg_iter += cg2
            if not ok or not float(g @ p) < 0:
                p, Ap = None, None
            if it.cg_iter > PCG_REFRESH:
                self.builder.refresh()  # a poor preconditioner: stale leverage scores
        if p is None:
            p = -model.solve(g)
        if not float(g @ p) < 0:
            p, Ap = -g * (np.linalg.norm(p) / np.linalg.norm(g)), None
        it.step, it.step_image = p, Ap
        it.decrement = -float(g @ p)
        self.timings["inner_solve"] += time.perf_counter() - t0

    def _pcg(self, kind, model, g):
        """Preconditioned CG on ``H p = -g``. Returns ``(p, A p, iterations, ok)``.

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

        x, Ax, k, ok = preconditioned_cg(product, model, -g, eta, _cg_cap(g.size))
        return x, Ax, k, ok or k > 1

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

    def _record(self):
        it = self.it
        row = dict(iter=self.nit, loss=it.fun, grad_norm=float(np.linalg.norm(it.grad)),
                   step_size=it.step_size,
                   step_norm=float(np.linalg.norm(it.step)) if it.step is not None else 0.0,
                   error_estimate=it.error_estimate, decrement=it.decrement,
                   sketch_size=it.model.sketch_size if it.model is not None else 0,
                   cg_iter=it.cg_iter, model=it.model.kind if it.model is not None else "",
                   passes=(self.data.sweeps - self.sweeps0) / 2,
                   seconds=time.perf_counter() - self.t0)
        self.history.append(row)
        if self.problem.verbose:
            self._print(row)
        self._call_back(row)

    def _print(self, row):
        measure = "err est" if self.problem.criterion.column == "error_estimate" else "dec/2"
        value = row["error_estimate"] if measure == "err est" else 0.5 * row["decrement"]
        if self.nit == 0:
            print(f"{'iter':>4} {'loss':>16} {'|grad|':>10} {'step':>7} {measure:>9} "
                  f"{'sketch':>7} {'cg':>3} {'passes':>7} {'sec':>7}")
        print(f"{row['iter']:4d} {row['loss']:16.9e} {row['grad_norm']:10.3e} "
              f"{row['step_size']:7.3g} {value:9.2e} {row['sketch_size']:7d} "
              f"{row['cg_iter']:3d} {row['passes']:7.1f} {row['seconds']:7.2f}", flush=True)

    def _call_back(self, row):
        cb = self.problem.callback
        if cb is None:
            return
        it = self.it
        try:
            if _new_style_callback(cb):
                stop = cb(OptimizeResult(x=it.x.copy(), fun=it.fun, jac=it.grad.copy(), nit=self.nit,
                                         **{k: v for k, v in row.items() if k not in ("iter", "loss")}))
            else:
                stop = cb(it.x.copy())
        except StopIteration:
            stop = True
        if stop:
            self.status, self.message = 3, "stopped by callback"

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
                self.status, self.message = 0, f"converged: {pb.criterion.name} reached"
                break
            if self.nit >= pb.max_iter:
                self.status, self.message = 1, f"maximum number of iterations ({pb.max_iter}) reached"
                break
            self.adapt_sketch()
            self.update_gradient_hessian()
            if self.check_convergence(fresh=True):
                self.history[-1]["error_estimate"] = self.it.error_estimate
                self.status, self.message = 0, f"converged: {pb.criterion.name} reached"
                break
            self.inner_solve()
            if not self.line_search():
                # last resort: a steepest-descent step scaled like the Newton step
                it = self.it
                it.step = -it.grad * (np.linalg.norm(it.step) / np.linalg.norm(it.grad))
                it.step_image = None
                it.decrement = -float(it.grad @ it.step)
                if not self.line_search():
                    self.status = 2
                    self.message = "no decrease possible along the Newton or gradient direction"
                    break
            self.nit += 1
        return self.finalize()

    def flat_directions_are_invariances(self):
        """Check that directions the model treats as null leave the loss unchanged.

        A pseudo-inverse model ignores directions of zero curvature. That is
        right for a true invariance (the softmax shift) but wrong on an
        asymptote, where the loss flattens out while still decreasing (e.g.
        ``resnet`` with an intercept driven to ``+inf``). Costs one loss
        evaluation per direction, only at convergence.
        """
        model, loss, it = self.it.model, self.loss, self.it
        if model is None or model.null_vectors is None or model.null_vectors.shape[1] == 0:
            return True
        step = max(1.0, float(np.linalg.norm(it.x)))
        tol = 1e-10 * abs(it.fun) + 64 * np.finfo(float).eps * abs(it.fun) + np.finfo(float).tiny
        for v in model.null_vectors.T[:4]:
            for sign in (1.0, -1.0):
                try:
                    f = loss.forward(it.x + sign * step * v).fun
                except DomainError:
                    return False
                if abs(f - it.fun) > tol:
                    return False
        return True

    def finalize(self):
        """Assemble the :class:`SolveResult`; warn when the stopping rule was not met."""
        it, pb = self.it, self.problem
        if np.isinf(it.error_estimate) and it.model is not None:
            self.error_estimate()
        success = self.status == 0 or (self.status in (1, 2) and pb.criterion.met(self))
        if success and not self.flat_directions_are_invariances():
            success, self.status = False, 2
            self.message = ("stopped on a flat direction that is not an invariance of the loss "
                            "(an asymptote: the iterate may be drifting to infinity)")
        if self.status == 2 and success:
            self.message = f"converged to machine precision: {pb.criterion.name} reached"
        if not success and self.status != 3:
            self.message += f" ({pb.criterion.shortfall(self)})"
            warn(f"sketchnewton did not reach {pb.criterion.name}: {self.message}",
                 ConvergenceWarning)
        timings = dict(self.timings, **self.builder.timings)
        return SolveResult(
            x=it.x, fun=it.fun, jac=it.grad, grad_norm=float(np.linalg.norm(it.grad)),
            error_bound=it.error_estimate, error_bound_kind="estimate", decrement=it.decrement,
            nit=self.nit, success=bool(success), status=self.status, message=self.message,
            method=pb.method, sketch=self.builder.sketch,
            sketch_size=self.sketch_size if self.builder.sketch != "exact" else 0,
            passes=(self.data.sweeps - self.sweeps0) / 2, time=time.perf_counter() - self.t0,
            timings=timings, history=self.history, **it.counts)


# -- the cost model ---------------------------------------------------------------------------
def choose_method(loss, sketch_size=None):
    """Pick ``"exact"`` or ``"pcg"`` from a cost model in passes (one ``A x`` plus one ``A^T y``).

    Calibrated on the n = 1e6 benchmark matrices (sparse d = 200-500 with
    10-50 non-zeros per row, dense d = 100):

    * every Newton iteration pays ``c0 = 1 + 50 K n / nnz(A)``: the gradient
      pass plus the O(n K) element-wise work of the loss and the line search
      (``K`` the width of the linear predictor);
    * the exact Hessian adds ``G`` weighted Grams (``K (K+1)/2`` for the
      multinomial loss, else 1) of ``0.42 sum_i nnz_i^2 / nnz(A)`` passes each
      for sparse ``A`` and ``d / 14`` for dense ``A`` (blocked SYRK), plus the
      ``p^3 / 3`` flops of its Cholesky factorization (~4 flops per non-zero
      and pass);
    * PCG instead adds about 3.5 Hessian products per iteration, each a fused
      sweep of ``K`` columns (about ``1.1 (1 + K) / 2`` passes), needs about
      one Newton iteration more, and pays once for the leverage scores of its
      preconditioner (``3 + 0.26 d^3 / nnz(A)`` plus the score estimator).

    Exact Newton is also chosen when ``n`` is so small that a sketch would
    keep most rows anyway.
    """
    data = loss.data
    n, d = data.shape
    K = loss.image_width
    s = 20 * d if sketch_size is None else sketch_size
    if n <= 2 * s:
        return "exact"
    nnz = max(float(data.nnz), 1.0)
    work = data.row_nnz_squares() / nnz if data.is_sparse else None
    c0 = 1.0 + 50.0 * K * n / nnz
    gram = 0.42 * work if data.is_sparse else d / 14.0
    leverage = 3.0 + 0.26 * d ** 3 / nnz + (0.5 * work if data.is_sparse else 2.5)
    iters = 5
    p = d * K
    exact = iters * (c0 + loss.hessian_grams * gram) + p ** 3 / 3 / (4 * nnz)
    pcg = (iters + 1) * (c0 + 3.5 * 1.1 * (1 + K) / 2) + leverage
    return "exact" if exact <= pcg else "pcg"


# -- the front door of the driver ---------------------------------------------------------------
def minimize(loss, *, eps=None, tol=None, method="auto", sketch="leverage", sketch_size=None,
             x0=None, max_iter=100, random_state=None, verbose=0, callback=None):
    """Minimise a :class:`~sketchnewton.losses.Loss` with the Newton driver.

    Parameters
    ----------
    loss : Loss
        E.g. :class:`~sketchnewton.losses.LogisticLoss`,
        :class:`~sketchnewton.losses.MultinomialLoss`,
        :class:`~sketchnewton.losses.PoissonLoss`,
        :class:`~sketchnewton.losses.NormalizedRegressionLoss`.
    eps : float > 0, optional
        Stop when the estimated error ``||x - x*||`` is at most ``eps``.
    tol : float > 0, optional
        Stop when half the squared Newton decrement of a unit step is at most
        ``tol |f|`` (a relative objective accuracy). Give ``eps`` or ``tol``.
    method : {"auto", "exact", "sketch", "pcg"}
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}
    sketch_size : int, optional
        Rows of the sketch (default ``20 d``).
    x0 : array of shape (n_params,), optional
        Starting point (default: the loss's own start).
    max_iter : int >= 0
    random_state : None, int or numpy Generator
    verbose : int
        1 prints one line per iteration.
    callback : callable, optional
        Called after every iteration, in scipy's two styles: a callable whose
        only parameter is named ``intermediate_result`` receives an
        ``OptimizeResult`` (``x, fun, jac, nit`` and the history row); any
        other callable receives a copy of ``xk``. Returning True or raising
        ``StopIteration`` stops the solve (status 3, no warning).

    Returns
    -------
    SolveResult
    """
    if not isinstance(loss, Loss):
        raise InputError(f"loss must implement sketchnewton.losses.Loss, got {type(loss).__name__}")
    if (eps is None) == (tol is None):
        raise InputError("give exactly one of eps (error bound) and tol (relative decrement)")
    criterion = (ErrorBound(check_real(eps, "eps", positive=True)) if eps is not None
                 else Decrement(check_real(tol, "tol", positive=True)))
    method = check_choice(method, "method", METHODS)
    sketch = check_choice(sketch, "sketch", SKETCHES)
    sketch_size = check_int(sketch_size, "sketch_size", minimum=1, allow_none=True)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    verbose = check_int(verbose, "verbose", minimum=0)
    if callback is not None and not callable(callback):
        raise InputError(f"callback must be callable, got {type(callback).__name__}")
    rng = check_random_state(random_state)
    if x0 is not None:
        x0 = check_vector(x0, "x0", loss.n_params)
    if method == "auto":
        method = choose_method(loss, sketch_size)
    problem = Problem(loss, criterion, method, sketch, sketch_size, max_iter, rng, verbose, callback)
    with loss.data.threads(), single_threaded_blas():
        return NewtonSolver(problem).solve(x0)
