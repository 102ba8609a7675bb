"""Stopping rules of the Newton driver (docs/math.md section 7): functions of their evidence.

Two rules: :class:`ErrorBound` (``eps``, a bound on ``||x - x*||``, used by
:func:`sketchnewton.solve`) and :class:`Decrement` (``tol``, a relative
objective accuracy from the Newton decrement, used by the estimators). The
driver gathers an :class:`Evidence` at four points of an iteration
(:class:`Phase`) and asks the rule for a :class:`~sketchnewton._outcome.Verdict`;
a rule changes nothing, and only the driver acts on the verdict.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ._outcome import Reason, Verdict

__all__ = ["Phase", "Evidence", "ErrorBound", "Decrement", "StoppingRule", "MODEL_REUSE_DZ",
           "FORCING_MAX", "HINT", "what_to_try"]

#: a model built before a unit step that moved no ``z_i`` by more than this still describes
#: the Hessian within ~10% (curvature varies like ``exp(dz)``): it may judge convergence and
#: keep preconditioning CG
MODEL_REUSE_DZ = 0.1
#: largest CG forcing term ``eta = min(FORCING_MAX, sqrt(||g|| / ||g_0||))`` (Eisenstat-Walker
#: style: loose far from the solution, tightening superlinearly near it). Measured on the
#: planted benchmark problems (n = 2e5): 0.5 cost the multinomial ones a Newton step, 0.1 cost
#: CG products; 0.25 was the fastest or tied on all seven.
FORCING_MAX = 0.25


class Phase(Enum):
    """Where in an iteration the evidence was gathered."""

    #: before a new model: the model (if any) was built at an earlier iterate
    KEPT = "kept"
    #: a model was just built at ``x``
    MODEL = "model"
    #: the step at ``x`` was just computed
    STEP = "step"
    #: no step along the Newton or gradient direction decreases the loss (beyond its noise)
    STALLED = "stalled"
    #: a zero gradient with no negative curvature
    STATIONARY = "stationary"


def _no_floor() -> tuple[float, float]:
    return 0.0, 0.0


def _no_staleness() -> float:
    return 1.0


@dataclass(frozen=True)
class Evidence:
    """What a rule may look at. The two callables compute on demand (each costs a sweep or a
    Hessian product) and change nothing.

    Attributes
    ----------
    phase : Phase
    fun, grad_norm, g0_norm : float
        The loss and ``||g||`` at ``x``, and ``||g||`` at the start.
    estimate : float
        ``||x - x*||`` estimated by the model (``KEPT``, ``MODEL``, ``STALLED``) or by the
        conjugate-gradient step (``STEP``, a matrix-free preconditioner); ``inf``: none.
    exact_model : bool
        The model is the exact Hessian (spectral error 0) built at ``x``.
    fresh : bool
        The model was built at ``x``.
    local : bool
        The last step was a unit step that moved no ``z_i`` by more than
        ``MODEL_REUSE_DZ``: a model built before it still describes the Hessian.
    unit_step : bool
        The last accepted step was a unit step.
    decrement : float
        ``-g^T p``: of the last step taken (``KEPT``) or of the step at ``x``.
    step_accuracy : float
        Relative error of that step as a Newton step (spectral-error level, CG forcing).
    previous_decrement : float or None
        The decrement of the step before the last, when it was a unit step.
    previous_exact : float or None
        The exact model's previous estimate (the observed contraction).
    previous_estimate : float
        (``KEPT``) the estimate recorded at the previous iterate (``inf``: none).
    matrix_free : bool
        The estimate comes from a CG step whose preconditioner approximates nothing.
    has_model : bool
    noise_limited : bool
        (``STALLED``) the line search stopped because the predicted decrease fell below the
        loss's measured rounding noise, not because the directions fail.
    verified : bool
        The last step was accepted on the loss's decrease (False: the gradient judged it,
        the decrease being below the loss's noise).
    floor : callable
        ``() -> (error, decrement)`` that the gradient's rounding error allows
        (docs/math.md 7.3).
    staleness : callable
        ``() -> factor >= 1``: how much the model overstates the curvature at ``x`` along its
        step (one Hessian-vector product).
    missing : float
        An upper bound of what the step's decrement misses of ``g^T H^{-1} g`` (0 for a
        direct solve; ``inf`` when an inexact step's cannot be bounded).
    confirm : callable or None
        ``target -> g^T H^{-1} g`` at ``x``, accurate enough to tell whether it is below
        ``target``: asked when ``missing`` is unknown (an inexact step's ``-g^T p`` may miss
        most of the decrement on an ill-conditioned problem).
    """

    phase: Phase
    fun: float
    grad_norm: float
    g0_norm: float
    estimate: float = np.inf
    exact_model: bool = False
    fresh: bool = False
    local: bool = False
    unit_step: bool = False
    decrement: float = np.inf
    step_accuracy: float = 0.0
    previous_decrement: float | None = None
    previous_exact: float | None = None
    previous_estimate: float = np.inf
    matrix_free: bool = False
    has_model: bool = False
    noise_limited: bool = False
    verified: bool = True
    floor: Callable[[], tuple[float, float]] = _no_floor
    staleness: Callable[[], float] = _no_staleness
    missing: float = 0.0
    confirm: Callable[[float], float] | None = None


def _stalled(ev: Evidence, error_estimate: float | None) -> Verdict:
    """The failure when no step decreases the loss and the rule does not hold."""
    if ev.noise_limited:
        return Verdict(Reason.NOISE_FLOOR, "stopped at the attainable accuracy: no step along the "
                       "Newton or gradient direction decreases the loss or its gradient beyond "
                       "their rounding noise", error_estimate)
    return Verdict(Reason.NO_DECREASE, "no decrease possible along the Newton or gradient "
                   "direction", error_estimate)


class ErrorBound:
    """Stop when the estimated error ``||x - x*||`` is at most ``eps`` (docs/math.md 7.1).

    The estimate is ``||H~^{-1} g|| / (1 - e)`` with ``H~`` the current model
    and ``e`` a conservative level of its spectral error (0 exact,
    ``min(0.9, 2 sqrt(p / s))`` for a sketch of ``s`` rows); a sketched model,
    or one built at an earlier iterate, is confirmed against the Hessian at
    ``x`` along its step; the attainable-accuracy floor is added before
    success.
    """

    name = "eps"
    #: the history column of the rule's progress measure
    column = "error_estimate"
    #: a cut step whose estimate is above this share of the last one made no progress
    STAGNATION = 0.5
    #: ... and stops it when the estimate is within this factor of the rounding floor
    FLOOR_REACH = 10.0

    def __init__(self, eps: float):
        self.eps = eps

    def judge(self, ev: Evidence) -> Verdict:
        if ev.phase is Phase.STATIONARY:
            return self._certify(ev, 0.0)
        est = ev.estimate
        if ev.phase is Phase.STALLED:
            stale = 1.0
            if est <= self.eps and not ev.exact_model:
                stale = ev.staleness()  # an approximate model: checked against the Hessian at x
                est *= stale
            verdict = self._certify(ev, est, stale=stale) if np.isfinite(est) \
                else Verdict.proceed(est)
            return verdict if verdict.done else _stalled(ev, verdict.error_estimate)
        if ev.phase is Phase.STEP:
            if not ev.matrix_free:
                return Verdict.proceed()
            return self._certify(ev, est) if est <= self.eps else Verdict.proceed(est)
        if ev.phase is Phase.MODEL and ev.exact_model:
            est = self._nonlinearity(est, ev.previous_exact)
            return self._certify(ev, est) if est <= self.eps else Verdict.proceed(est)
        if ev.phase is Phase.KEPT and not ev.verified and est > self.eps:
            # progress is below the loss's noise: can the gradient still resolve eps at all?
            return self._certify(ev, est)
        if ev.phase is Phase.KEPT and est > self.eps and not ev.unit_step and ev.has_model \
                and est > self.STAGNATION * ev.previous_estimate:
            # a cut step that left the estimate where it was: is it at the rounding floor?
            return self._certify(ev, est, reach=self.FLOOR_REACH)
        if not (est <= self.eps and (ev.fresh or ev.local)):
            # a model built at an earlier iterate judges only in the local regime
            return Verdict.proceed(est)
        stale = ev.staleness()  # a sketched or kept model: checked against the Hessian at x
        est *= stale
        return self._certify(ev, est, stale=stale) if est <= self.eps else Verdict.proceed(est)

    @staticmethod
    def _nonlinearity(est: float, prev: float | None) -> float:
        """The exact Newton step estimates the error to first order; the rest is bounded by the
        observed contraction ``rho`` of successive estimates: ``e_k <= |p_k| + e_{k+1}`` and
        ``e_{k+1} <= rho e_k`` give ``e_k <= |p_k| / (1 - rho)`` (docs/math.md 7.1). Far from
        the quadratic regime (``rho`` near 1, found on small ill-conditioned problems: rho 0.45,
        true error 1.8x the step) the factor matters; near it, it is 1 + O(|p_k|)."""
        if prev is None or not (prev > 0 and np.isfinite(prev)) or est == 0.0:
            return est
        rho = est / prev
        return est / (1.0 - rho) if rho < 1.0 else np.inf

    def _certify(self, ev: Evidence, est: float, reach: float = np.inf,
                 stale: float = 1.0) -> Verdict:
        """The estimate plus the attainable-accuracy floor (docs/math.md 7.3) must be <= eps;
        when the floor alone exceeds eps/2 (and the estimate is within ``reach`` times it),
        iterating cannot help: the solve stops, failed.

        ``stale``: the factor by which the model overstates the Hessian's curvature at ``x``
        (the estimate was scaled by it); the floor ``||H~^{-1} dg||`` is computed with the
        same model, so it is scaled alike. Where the Hessian's curvature is at its own rounding
        level a model may overstate it by 1e16 (a sampled diagonal part whose cancellation
        against the low-rank part it does not reproduce), and the unscaled floor certified a
        point 208 from the minimiser."""
        floor = ev.floor()[0] * stale
        total = est + floor
        if total <= self.eps:
            return Verdict(Reason.CONVERGED, "converged: eps reached", total)
        if floor > 0.5 * self.eps and est <= reach * floor:
            return Verdict(Reason.BELOW_FLOOR, f"eps = {self.eps:.3g} is below the attainable "
                           "accuracy: the rounding error of the gradient alone allows an error "
                           f"of {floor:.3g}", total)
        return Verdict.proceed(total)

    def forcing_floor(self, error_estimate: float) -> float:
        """The step need not be more accurate than the target: ``eta >= 0.1 eps / error``."""
        if np.isfinite(error_estimate) and error_estimate > 0:
            return min(FORCING_MAX, 0.1 * self.eps / error_estimate)
        return 0.0

    def shortfall(self, error_estimate: float, decrement: float, fun: float) -> str:
        if error_estimate <= self.eps:
            return (f"the estimated error {error_estimate:.3g} <= eps = {self.eps:.3g} is not "
                    "confirmed: a sketched model, or one built at an earlier iterate, is "
                    "confirmed against the Hessian only after a full Newton step; raise "
                    "max_iter, or use method='exact' (a model built at every iterate)")
        return f"estimated error {error_estimate:.3g} > eps = {self.eps:.3g}"


class Decrement:
    """Stop when half the squared Newton decrement of a unit step is ``<= tol |f|``.

    After an accepted unit step ``p`` (the local regime) the objective error
    left was about ``-g^T p / 2`` before the step and quadratically less after
    it (docs/math.md 7.2); or, after two unit steps with contracting
    decrements, when the extrapolated error ``dec_k/2 * dec_k / dec_{k-1}`` is
    below ``EXTRAPOLATION_SAFETY tol |f|`` (saves the last iteration); an inexact (CG) step's
    decrement is then not trusted but computed at ``x`` (``confirm``), and, when the predicted
    one is below ``PREDICTION_SAFETY tol |f|``, computed at ``x`` to the target instead of
    taking the last step (which CG would solve to its forcing term). When no
    step can decrease the loss beyond its rounding noise any more
    (``STALLED``), the decrement of the step at ``x`` itself judges ``x``. A
    small gradient alone is no evidence: without a bound on the curvature it
    bounds nothing (an infimum approached at infinity has both gradient and
    objective gap going to zero).
    """

    name = "tol"
    column = "decrement"
    #: share of ``tol |f|`` the extrapolated objective error must be under
    EXTRAPOLATION_SAFETY = 1e-3
    #: share of ``tol |f|`` the predicted decrement must be under before it is computed at x
    PREDICTION_SAFETY = 0.5

    def __init__(self, tol: float, reference: float = 0.0):
        #: ``reference``: the target is ``tol max(|f|, reference)``, an objective accuracy
        #: relative to a value of the solver's choosing (the warm start's: ``|f|`` at its
        #: start, where a noiseless problem's ``f* = 0`` would leave ``tol |f|`` unattainable)
        self.tol, self.reference = tol, reference

    def _scale(self, fun: float) -> float:
        return self.tol * max(abs(fun), self.reference, np.finfo(float).tiny)

    def judge(self, ev: Evidence) -> Verdict:
        if ev.phase is Phase.STATIONARY:
            return Verdict(Reason.CONVERGED, "converged: tol reached (zero gradient)")
        scale = self._scale(ev.fun)
        if ev.phase is Phase.STALLED:
            # the step at x could not be verified by the loss: its decrement measures x itself
            half = 0.5 * (ev.decrement + (ev.missing if np.isfinite(ev.missing) else 0.0)) \
                / (1.0 - min(ev.step_accuracy, 0.5)) ** 2
            if half <= scale:
                if self._confirmed(ev, scale):
                    return Verdict(Reason.CONVERGED, "converged: tol reached (the Newton "
                                   "decrement at x; a further step's decrease is below the "
                                   "loss's rounding noise)")
                return Verdict(Reason.NOISE_FLOOR, "stopped: no step decreases the loss beyond "
                               f"its rounding noise, and the decrement at x ({half:.3g}) could "
                               "not be confirmed below tol |f| (the step's model was not solved "
                               "to the accuracy that certifies it)")
            return self._floor(ev, half, scale) or _stalled(ev, None)
        if ev.phase is not Phase.KEPT:
            return Verdict.proceed()
        if not ev.unit_step:
            return Verdict.proceed()
        half, prev = 0.5 * (ev.decrement + (ev.missing if np.isfinite(ev.missing) else 0.0)), \
            ev.previous_decrement
        if half <= scale and self._confirmed(ev, scale):
            return Verdict(Reason.CONVERGED, "converged: tol reached")
        if prev is not None and ev.decrement < 0.5 * prev \
                and half * (ev.decrement / prev) <= self.EXTRAPOLATION_SAFETY * scale:
            # a contraction measured within the rounding floor is noise, not evidence
            # (tol = 1e-24: a decrement of 1e-20 against a floor of 4e-11 extrapolated to
            # success, by the rounding of one loss sum)
            floor = self._floor(ev, half, scale) if half > scale else None
            if floor is not None:
                return floor
            if self._confirmed(ev, scale):
                return Verdict(Reason.CONVERGED, "converged: tol reached (extrapolated)")
        if prev is not None and ev.decrement < 0.5 * prev and not np.isfinite(ev.missing) \
                and ev.confirm is not None \
                and half * (ev.decrement / prev) <= self.PREDICTION_SAFETY * scale \
                and 0.5 * ev.confirm(2.0 * scale) <= scale:
            # an inexact step's next decrement is predicted below the target: the decrement at
            # x itself, solved to that target, costs a few CG iterations where one more step
            # would solve H p = -g to its forcing term (the last step took most of the work)
            return Verdict(Reason.CONVERGED, "converged: tol reached (the Newton decrement at x)")
        if prev is not None and ev.decrement > 0.25 * prev and ev.has_model:
            # no quadratic progress: is the decrement at the rounding floor of the gradient?
            return self._floor(ev, half, scale) or Verdict.proceed()
        return Verdict.proceed()

    @staticmethod
    def _confirmed(ev: Evidence, scale: float) -> bool:
        """Inexact steps: the decrement at ``x`` itself, solved accurately, is below the target
        (it is, after the step the rule judges, quadratically smaller when that step was
        good)."""
        if np.isfinite(ev.missing) or ev.confirm is None:
            return True
        return 0.5 * ev.confirm(2.0 * scale) <= scale

    @staticmethod
    def _floor(ev: Evidence, half: float, scale: float) -> Verdict | None:
        """A decrement above ``tol |f|`` but within the rounding floor of the gradient and the
        objective: no iteration can resolve ``tol`` (a failure, said so)."""
        limit = 5.0 * ev.floor()[1] + 64 * np.finfo(float).eps * abs(ev.fun)
        if half > limit:
            return None
        return Verdict(Reason.NOISE_FLOOR, "stopped at the attainable accuracy: the Newton "
                       f"decrement ({half:.3g}) is within the rounding floor of the gradient and "
                       f"the objective ({limit:.3g}), above tol |f| = {scale:.3g}")

    def forcing_floor(self, error_estimate: float) -> float:
        return 0.0

    def shortfall(self, error_estimate: float, decrement: float, fun: float) -> str:
        if 0.5 * decrement <= self._scale(fun):
            return (f"half Newton decrement {0.5 * decrement:.3g} <= tol |f| = "
                    f"{self._scale(fun):.3g} was not confirmed (after a unit step, or by the "
                    "model solved accurately at x)")
        return (f"half Newton decrement {0.5 * decrement:.3g} > tol |f| = "
                f"{self._scale(fun):.3g}")


#: the type of a stopping rule
StoppingRule = ErrorBound | Decrement

#: separates a ConvergenceWarning's diagnosis from the advice of :func:`what_to_try`
HINT = "; what to try: "


def what_to_try(reason: Reason, rule: StoppingRule, max_iter: int) -> str:
    """The advice appended to a ConvergenceWarning: what the user can change.

    Parameters
    ----------
    reason : Reason
        Why the solve stopped without success.
    rule : ErrorBound or Decrement
        The stopping rule (its ``name`` is the parameter the user gave).
    max_iter : int
        The iteration limit used.

    Returns
    -------
    str
    """
    name = rule.name
    if reason in (Reason.BELOW_FLOOR, Reason.NOISE_FLOOR):
        return f"use a larger {name} (the data's rounding error allows no better)"
    if reason in (Reason.ASYMPTOTE, Reason.NOT_ATTAINED):
        return ("the minimiser may be at infinity (e.g. separable classes): add a ridge "
                "(lam > 0, or a finite C in the estimators)")
    if reason is Reason.MAX_ITER:
        return f"increase max_iter (now {max_iter}) or use a larger {name}"
    return (f"try method='exact', a larger {name}, or rescale the columns of the data "
            "(e.g. sklearn.preprocessing.StandardScaler)")
