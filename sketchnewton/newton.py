"""The Newton driver: one globalised (approximate) Newton loop for every loss and method.

:class:`NewtonSolver` is only the loop (scikit-learn's ``NewtonSolver``
names its steps the same way): start, evaluate, ask the strategy
(:mod:`sketchnewton.strategies`) for its model and a step, line search, ask the
stopping rule (:mod:`sketchnewton._stopping`) for a verdict, record. The
fixed problem lives in :class:`Problem`, the changing iterate in
:class:`~sketchnewton.strategies.Iterate`; per-iteration diagnostics are a
list of dicts (:class:`~sketchnewton._report.History`). Only the driver
changes the iterate and decides how the solve ends; rules and checks return
values. The driver talks to the loss only through the
:class:`~sketchnewton.losses.Loss` protocol, so the same code runs every loss
on every backend (in memory, Dask). The mathematics: docs/math.md sections 6
and 7.
"""

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ._checks import (
    FLAT_STATIONARY,
    VANISHED_CURVATURE,
    certify,
    probe_stationary,
    rounding_floor,
    staleness,
)
from ._outcome import Reason, Verdict
from ._report import History, SolveResult
from ._stopping import HINT, MODEL_REUSE_DZ, Evidence, Phase, StoppingRule, what_to_try
from .exceptions import ConvergenceWarning, DomainError, warn
from .losses import ImageLine, L1Penalty, Loss, gradient_of
from .strategies import STRATEGIES, Iterate, Step, Strategy

__all__ = ["NewtonSolver", "Problem", "Objective", "METHODS", "ARMIJO", "MAX_HALVINGS", "MAX_DZ"]

#: the methods of :func:`sketchnewton.minimize`: ``"auto"`` and one per strategy
METHODS = ("auto",) + tuple(STRATEGIES)
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
#: the loss's rounding noise is at least this many units in the last place of ``|f|`` (and
#: measured along a step near the optimum: :class:`_Noise`)
NOISE_ULPS = 64
#: a step whose predicted decrease ``|g^T p|`` is below this share of ``|f|`` has its noise
#: measured (issue 27: Poisson counts of 1e8 made the noise 4e4 times ``NOISE_ULPS`` ulps of
#: ``|f|``); above it the solve is not yet in its last iterations
NOISE_GATE = 1e-6
#: a predicted decrease below this multiple of the measured noise cannot be verified by the
#: loss value (the measurement itself is a few samples of the noise)
NOISE_FACTOR = 4.0
_EPS = np.finfo(float).eps


@dataclass
class Problem:
    """The fixed data of a solve.

    Attributes
    ----------
    loss : Loss
    rule : ErrorBound or Decrement
    strategy : Strategy
    max_iter : int
    verbose : int
    callback : callable or None
    sweeps0 : float
        The data's sweep count before the solve's own work (``auto``'s statistics count).
    penalty : L1Penalty or None
        The non-smooth part ``P`` of a composite objective ``loss + P`` (the strategy must
        handle it).
    """

    loss: Loss
    rule: StoppingRule
    strategy: Strategy
    max_iter: int
    verbose: int = 0
    callback: Callable | None = None
    sweeps0: float | None = None
    penalty: L1Penalty | None = None


class NewtonSolver:
    """Globalised (approximate) Newton method for any :class:`~sketchnewton.losses.Loss`.

    Each iteration: a verdict with the model at hand; the strategy's model at
    ``x_k`` and a verdict on it; the strategy's step ``p`` and a verdict on it;
    a backtracking Armijo line search whose trials cost O(n) each (``A p`` is
    computed once) and that rejects steps leaving the loss's domain.
    """

    def __init__(self, problem: Problem):
        self.problem, self.loss, self.rule = problem, problem.loss, problem.rule
        self.strategy, self.data = problem.strategy, problem.loss.data
        self.objective = Objective(problem.loss, problem.penalty)
        self.timings, self.nit = dict(gradient=0.0, line_search=0.0), 0
        self._exact_estimates: list[float] = []  # raw estimates of exact models (contraction)
        self._floor: tuple = (_dead, _dead, (0.0, 0.0))  # (state, model, value): weak refs

    # -- the loop -----------------------------------------------------------------------------
    def solve(self, x0: np.ndarray | None = None) -> SolveResult:
        """Run the method from ``x0`` (default: the loss's own start)."""
        self.start(x0)
        verdict = None
        while verdict is None:
            verdict = self.iterate()
        return self.finalize(verdict)

    def start(self, x0: np.ndarray | None) -> None:
        """Evaluate the loss at ``x0``. Sets ``it``, ``history``, ``x0``, ``curvature0``."""
        pb = self.problem
        self.t0 = time.perf_counter()
        self.sweeps0 = self.data.sweeps if pb.sweeps0 is None else pb.sweeps0
        image = None
        if x0 is None:
            x0, image = self.loss.start(pb.strategy.rng)
        try:
            state = self.loss.evaluate(forward=self.loss.forward(x0, image))
        except DomainError as exc:
            raise DomainError(f"the starting point is outside the domain of the loss: {exc}") from None
        self.timings["gradient"] += time.perf_counter() - self.t0
        g0 = max(float(np.linalg.norm(gradient_of(state))), np.finfo(float).tiny)
        self.it, self.x0 = Iterate(state.x, state, g0), state.x.copy()
        self.it.penalty_value = self.objective.penalty_value(state.x)
        self.curvature0: float | None = None
        self.history = History(self.rule.column, pb.verbose, pb.callback, self.t0)

    def iterate(self) -> Verdict | None:
        """One Newton iteration; a verdict ends the solve."""
        it, strategy = self.it, self.strategy
        if self.objective.optimality(it) == 0.0:
            verdict = self.stationary()
        else:
            verdict = self.judge(Phase.KEPT)
        if self.record():
            return Verdict(Reason.CALLBACK, "stopped by callback", it.error_estimate)
        if verdict.done:
            return verdict
        if self.nit >= self.problem.max_iter:
            return Verdict(Reason.MAX_ITER, f"maximum number of iterations ({self.nit}) reached")
        strategy.update(it, self.history.contraction())
        self.note_curvature()
        if strategy.fresh and (verdict := self.judge(Phase.MODEL)).done:
            return verdict
        it.step = strategy.step(it, self.rule.forcing_floor(it.error_estimate))
        it.decrement = it.step.decrement
        if (verdict := self.judge(Phase.STEP)).done:
            return verdict
        moved = self.line_search(it.step)
        if moved is None:  # last resort: steepest descent (or its proximal form)
            moved = self.line_search(strategy.fallback_step(it))
        # the step's image (n x K for many classes) is not needed past its line search
        it.step = replace(it.step, image=None)
        if not moved:
            return self.judge(Phase.STALLED, noise_limited=moved is False)
        self.nit += 1
        return None

    def stationary(self) -> Verdict:
        """A zero gradient: a minimiser only if no direction has negative curvature; a saddle is
        escaped along its most negative Ritz vector (one more iteration)."""
        it = self.it
        probe = probe_stationary(self.loss, it.state, seed=self.nit)
        if probe.kind == "vanished":
            return VANISHED_CURVATURE
        if probe.kind == "minimum":
            if self.strategy.model is None:
                self.strategy.update(it, None)
            it.error_estimate = 0.0
            return self.judge(Phase.STATIONARY)
        f_before, direction, image = it.fun, probe.direction, probe.image
        assert direction is not None and image is not None
        for sign in (1.0, -1.0):
            step = Step(sign * direction, sign * image, decrement=0.0)
            if self.line_search(step) and it.fun < f_before - NOISE_ULPS * _EPS * abs(f_before):
                self.nit += 1
                return Verdict.proceed()
        return FLAT_STATIONARY

    # -- evidence and verdicts ------------------------------------------------------------------
    def judge(self, phase: Phase, noise_limited: bool = False) -> Verdict:
        """Gather the evidence at ``phase`` and ask the stopping rule; records its estimate."""
        it, strategy = self.it, self.strategy
        model = strategy.model
        step = it.step if phase in (Phase.STEP, Phase.STALLED) else None
        estimate = step.error_estimate if step is not None and phase is Phase.STEP \
            else strategy.estimate(it)
        exact = phase in (Phase.MODEL, Phase.STALLED) and strategy.fresh \
            and model is not None and model.spectral_error == 0.0
        rows = self.history.rows
        previous = rows[-1] if phase is Phase.KEPT and len(rows) > 1 else None
        ev = Evidence(
            phase, it.fun, self.objective.optimality(it), it.g0_norm, estimate=estimate,
            exact_model=exact, fresh=strategy.fresh,
            local=it.step_size == 1.0 and it.last_dz <= MODEL_REUSE_DZ,
            unit_step=it.step_size == 1.0,
            decrement=step.decrement if step is not None else it.decrement,
            step_accuracy=step.accuracy if step is not None else 0.0,
            previous_decrement=previous["decrement"] if previous and previous["step_size"] == 1.0
            else None,
            previous_exact=self._exact_estimates[-1] if self._exact_estimates else None,
            previous_estimate=previous["error_estimate"] if previous else np.inf,
            matrix_free=model is not None and model.spectral_error is None,
            has_model=model is not None, noise_limited=noise_limited, verified=it.verified,
            floor=self.rounding_floor,
            staleness=lambda: staleness(self.loss, it.state, strategy.built),
            # an inexact (CG) step's -g^T p may miss most of the decrement: confirm it
            missing=it.step.missing if it.step else 0.0,
            confirm=lambda target: strategy.decrement(it, target))
        if exact and phase is Phase.MODEL:
            self._exact_estimates.append(estimate)
        verdict = self.rule.judge(ev)
        if verdict.error_estimate is not None:
            it.error_estimate = verdict.error_estimate
        return verdict

    def rounding_floor(self) -> tuple[float, float]:
        """The attainable accuracy at ``x`` with the current model (cached per state and model)."""
        it, model = self.it, self.strategy.built
        state, cached_model, value = self._floor
        if state() is not it.state or cached_model() is not model:
            step = it.step
            value = rounding_floor(self.loss, it.state, model,
                                   float(np.linalg.norm(step.direction)) if step else 0.0,
                                   it.decrement)
            # weak references: the cache must not keep an old model (p x p) alive
            self._floor = (weakref.ref(it.state), weakref.ref(model), value)
        return value

    def note_curvature(self) -> None:
        """Remember the first model's curvature scale (the reference of :func:`certify`)."""
        if self.curvature0 is not None or self.strategy.model is None:
            return  # read only while needed: a model may compute it on demand (one sweep)
        c = self.strategy.model.curvature_scale
        if np.isfinite(c) and c > 0:
            self.curvature0 = c

    # -- the line search -------------------------------------------------------------------------
    def line_search(self, step: Step) -> bool | None:
        """Backtracking Armijo search along ``step``; moves ``it`` and returns True when a step
        is accepted. Returns False when the loss's rounding noise hides the decrease of every
        step left to try, None when the search fails otherwise.

        The trials come from the loss's :meth:`~sketchnewton.losses.Loss.line`: ``A p`` computed
        once, every trial O(n) (``z(t) = z + t A p``), or for the multinomial loss in memory a
        sweep per trial that moves ``z`` in place (no ``n x K`` array beside it). The first
        trial is capped so that no entry of ``z`` moves by more than ``MAX_DZ`` (and
        doubled once accepted, :meth:`Objective.extend`). Trials outside the loss's domain are
        rejected. Armijo compares the *difference* ``f(x + t p) - f(x)`` with ``c t g^T p``. A
        step whose predicted decrease is within the loss's noise cannot be judged by the loss:
        the first trial is then accepted if it decreases ``||H~^{-1} g||``, and no shorter one
        is tried."""
        t0 = time.perf_counter()
        loss, it = self.loss, self.it
        f0 = it.fun
        line = loss.line(it.state, step.direction, step.image)
        slope = -step.decrement  # g^T p, plus P(x + p) - P(x) for a composite objective
        t = first = line.first(MAX_DZ)
        dz = line.dz
        noise = _Noise(self, line, slope)
        result, accepted, verified = None, None, True
        for _ in range(MAX_HALVINGS):
            it.counts["nfev"] += 1
            trial = None  # a rejected trial's arrays are freed before the next one is made
            try:
                trial, f = self.objective.trial(line, t)
            except DomainError:
                t *= 0.5
                continue
            if f - f0 <= ARMIJO * t * slope:
                if t == first < 1.0 and self.objective.convex:  # a capped first trial
                    held, trial = [trial], None  # extend empties the list: no reference here
                    trial, t = self.objective.extend(it, line, t, held, f, slope)
                accepted = trial
                break
            if noise.hides(abs(t * slope), t, f):
                result = False
                if t == first and f - f0 <= NOISE_FACTOR * noise.value:
                    trial = line.again(trial, t)  # the noise's trials may have moved the line
                    accepted = self.objective.judged_by_gradient(trial, it, self.strategy.built)
                    verified = False
                break
            t *= 0.5
        line.close(accepted)
        self.timings["line_search"] += time.perf_counter() - t0
        if accepted is None:
            return result
        if accepted.grad is None:
            t1 = time.perf_counter()
            accepted = loss.evaluate(forward=accepted)
            it.counts["njev"] += 1
            self.timings["gradient"] += time.perf_counter() - t1
        it.x, it.state, it.step_size, it.last_dz = accepted.x, accepted, t, t * dz
        it.verified, it.penalty_value = verified, self.objective.penalty_value(accepted.x)
        return True

    # -- the end --------------------------------------------------------------------------------
    def record(self) -> bool:
        """Append the history row of the current iterate; True when the callback stops."""
        it, model = self.it, self.strategy.model
        step = it.step
        return self.history.record(
            it.x, it.grad, iter=self.nit, loss=it.fun, grad_norm=self.objective.optimality(it),
            step_size=it.step_size,
            step_norm=float(np.linalg.norm(step.direction)) if step is not None else 0.0,
            error_estimate=it.error_estimate, decrement=it.decrement,
            sketch_size=model.sketch_size if model is not None else 0,
            cg_iter=step.inner_iterations if step is not None else 0,
            model=model.kind if model is not None else "",
            passes=(self.data.sweeps - self.sweeps0) / 2)

    def finalize(self, verdict: Verdict) -> SolveResult:
        """Certify a success, warn about a failure, assemble the :class:`SolveResult`."""
        it, pb, rule, strategy = self.it, self.problem, self.rule, self.strategy
        if verdict.success:
            verdict = certify(self.loss, it.state, strategy.model, self.x0,
                              self.curvature0) or verdict
        if np.isinf(it.error_estimate) and strategy.model is not None:
            it.error_estimate = strategy.estimate(it)
        if self.history.rows:
            self.history.rows[-1]["error_estimate"] = it.error_estimate
        message = verdict.message
        if verdict.reason in (Reason.MAX_ITER, Reason.NO_DECREASE, Reason.NOISE_FLOOR):
            message += f" ({rule.shortfall(it.error_estimate, it.decrement, it.fun)})"
        if not verdict.success and verdict.reason is not Reason.CALLBACK:
            warn(f"sketchnewton did not reach {rule.name}: {message}{HINT}"
                 f"{what_to_try(verdict.reason, rule, pb.max_iter)}", ConvergenceWarning)
        elapsed = time.perf_counter() - self.t0
        timings = dict(self.timings, **strategy.timings)
        timings["other"] = max(elapsed - sum(timings.values()), 0.0)
        result = SolveResult(
            x=it.x, fun=it.fun, jac=it.grad, grad_norm=self.objective.optimality(it),
            error_bound=it.error_estimate, error_bound_kind="estimate", decrement=it.decrement,
            nit=self.nit, success=verdict.success, status=int(verdict.status),
            reason=verdict.reason.value, message=message, **strategy.describe(),
            passes=(self.data.sweeps - self.sweeps0) / 2, time=elapsed, timings=timings,
            history=self.history.rows, **it.counts)
        # measured on demand, in memory only (holding cluster blocks would keep them alive)
        result.__dict__["_reference"] = self.data.reference_pass_seconds if self.data.in_memory \
            else None
        return result


def _dead():
    """A weak reference that has died (the empty cache of :meth:`NewtonSolver.rounding_floor`)."""
    return None


class Objective:
    """What the driver minimises: the loss, plus the non-smooth ``penalty`` when there is one.

    Parameters
    ----------
    loss : Loss
    penalty : L1Penalty or None
    """

    def __init__(self, loss: Loss, penalty: L1Penalty | None):
        self.loss, self.penalty = loss, penalty
        #: one Hessian kind: the loss is convex (the protocol's ``hessian_kinds``)
        self.convex = tuple(loss.hessian_kinds) == ("full",)
        self._measured: tuple = (_dead, 0.0)  # (state, optimality): asked ~5 times an iterate

    def penalty_value(self, x: np.ndarray) -> float:
        return 0.0 if self.penalty is None else self.penalty.value(x)

    def trial(self, line: ImageLine, t: float) -> tuple:
        """``(state, F(x + t p))`` of a line-search trial along ``line`` (no gradient)."""
        state = line.trial(t)
        return state, state.fun + self.penalty_value(state.x)

    def extend(self, it: Iterate, line: ImageLine, t: float, held: list, f: float,
               slope: float) -> tuple:
        """``(state, t)`` after doubling an accepted capped step ``t`` (its state the one item
        of ``held``, objective ``f``; up to the unit step) while the objective keeps decreasing
        as the Newton model predicts (a convex loss: a non-convex one could leave the basin its
        model describes): on data with a few large-valued rows a Newton step can move their
        ``z_i`` by thousands, and a cap of ``MAX_DZ`` kept to every step let Newton's method
        crawl along a flat direction (docs/math.md 6.1). Each trial is O(n):
        ``z(t) = z + t A p``. Between trials only the kept ``t`` is held, and its state is
        remade (the same arithmetic, O(n) again, no pass) when a later doubling is rejected: a
        multinomial state holds ``n x K`` arrays, and no two trial states live at once
        (``held`` is emptied, so that the caller keeps no reference either)."""
        state = held.pop()
        while t < 1.0:
            t2 = min(2.0 * t, 1.0)
            it.counts["nfev"] += 1
            state = None
            try:
                state, f2 = self.trial(line, t2)
            except DomainError:
                break
            # the decrease must keep at least half the Newton model's, slope (t - t^2 / 2): a
            # doubling that leaves the region the model describes stops
            if not (f2 - it.fun <= 0.5 * slope * t2 * (1.0 - 0.5 * t2) and f2 < f):
                state = None
                break
            f, t = f2, t2
        if state is None:
            it.counts["nfev"] += 1
            state = self.trial(line, t)[0]
        return state, t

    def optimality(self, it: Iterate) -> float:
        """``||grad||``, or the norm of the minimum-norm subgradient of ``loss + penalty``."""
        state, value = self._measured
        if state() is not it.state:
            g = it.grad
            value = float(np.linalg.norm(g if self.penalty is None else
                                         self.penalty.subgradient(it.x, g)))
            self._measured = (weakref.ref(it.state), value)
        return value

    def judged_by_gradient(self, trial, it: Iterate, model):
        """The trial (with its gradient) when it strictly decreases the optimality measure
        ``||H~^{-1} g||`` (the minimum-norm subgradient with a penalty), else None."""
        state = self.loss.evaluate(forward=trial)
        it.counts["njev"] += 1
        g = gradient_of(state)
        if self.penalty is None:
            before, after = model.solve(it.grad), model.solve(g)
        else:
            before, after = (self.penalty.subgradient(it.x, it.grad),
                             self.penalty.subgradient(state.x, g))
        return state if np.linalg.norm(after) < np.linalg.norm(before) else None


class _Noise:
    """The loss's rounding noise along a step ``p`` from ``x``.

    At least ``NOISE_ULPS`` ulps of ``|f|``. That is the whole story only when
    the loss is a sum of terms of its own size: large counts (Poisson), many
    copies of large-margin rows, or an exact fit make the rounding error of
    ``f`` far larger than ``|f|`` shows. So once the step's predicted decrease
    ``|g^T p|`` is below ``NOISE_GATE |f|`` (the last iterations), the noise is
    measured along the step: the deviation of ``f(x + s p) - f(x)`` from its
    best quadratic fit ``s g^T p + c s^2 / 2`` at ``s = t, t/2, t/4`` (two
    extra trials, O(n) each, no pass over ``A``; the cubic term of the model
    is far below rounding there).
    """

    def __init__(self, solver, line, slope):
        self.solver, self.line, self.slope = solver, line, slope
        it = solver.it
        self.value = NOISE_ULPS * _EPS * abs(it.fun)
        self.measured = abs(slope) > NOISE_GATE * abs(it.fun)  # nothing to measure: visible

    def hides(self, decrease: float, t: float, fun: float) -> bool:
        """Whether a predicted decrease ``decrease`` of the trial at ``t`` (loss ``fun``) is
        within ``NOISE_FACTOR`` times the loss's noise."""
        if not self.measured:
            self.measured = True
            self.value = max(self.value, self._along_step(t, fun))
        return decrease <= NOISE_FACTOR * self.value

    def _along_step(self, t, fun):
        solver = self.solver
        it = solver.it
        s = np.array([t, 0.5 * t, 0.25 * t])
        r = np.empty(3)
        r[0] = fun - it.fun - self.slope * t
        for k in (1, 2):
            it.counts["nfev"] += 1
            try:
                r[k] = solver.objective.trial(self.line, s[k])[1] - it.fun - self.slope * s[k]
            except DomainError:
                return np.inf
        q = 0.5 * s * s
        c = float(q @ r) / float(q @ q)
        return float(np.abs(r - c * q).max())
