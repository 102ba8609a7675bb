"""What every Newton strategy shares: the iterate it reads, the step it returns, its interface.

A strategy is one way of computing a Newton step (scipy's trust-region
subproblem classes and scikit-learn's ``NewtonSolver`` subclasses are the
models): it owns building, keeping and refreshing its model of the Hessian,
its inner solve, and the error estimate of its step. The driver
(:class:`sketchnewton.newton.NewtonSolver`) only asks it to update its model
at the current iterate and for a step.
"""

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from .._validation import check_memory
from ..hessian import ModelBuilder
from ..hessian._model import Model
from ..exceptions import InputError
from ..losses import L1Penalty, Loss, State, gradient_of

__all__ = ["Iterate", "Step", "StrategySettings", "Strategy", "descent_step", "steepest_descent"]


@dataclass
class Iterate:
    """The changing state of a solve: the iterate, its loss state and its last step.

    Attributes
    ----------
    x : ndarray (n_params,)
    state : State
        The loss's evaluation at ``x`` (value, gradient, per-block results).
    g0_norm : float
        ``||grad||`` at the start (the forcing terms are relative to it).
    step : Step or None
        The last step computed.
    step_size : float
        The line search's ``t`` of the last accepted step (0 before the first).
    last_dz : float
        ``max |A (x_k - x_{k-1})|``: how far the last step moved the linear predictor.
    error_estimate : float
        The latest estimate of ``||x - x*||`` (``inf`` before one exists).
    decrement : float
        ``-g^T p`` of the last step.
    verified : bool
        The last step was accepted on the loss's decrease (False: its decrease was below the
        loss's rounding noise and the gradient judged it).
    penalty_value : float
        ``P(x)`` of a composite objective (0 without a penalty).
    counts : dict
        ``nfev``, ``njev``, ``nhev``: loss and gradient evaluations, Hessian products.
    """

    x: np.ndarray
    state: State
    g0_norm: float
    step: "Step | None" = None
    step_size: float = 0.0
    last_dz: float = np.inf
    error_estimate: float = np.inf
    decrement: float = np.inf
    verified: bool = True
    penalty_value: float = 0.0
    counts: dict = field(default_factory=lambda: dict(nfev=1, njev=1, nhev=0))

    @property
    def fun(self) -> float:
        """The objective at ``x``: the loss, plus the penalty of a composite objective."""
        return self.state.fun + self.penalty_value

    @property
    def grad(self) -> np.ndarray:
        return gradient_of(self.state)


@dataclass(frozen=True)
class Step:
    """A Newton step at the current iterate.

    Attributes
    ----------
    direction : ndarray (n_params,)
        ``p``.
    image : ndarray, BlockVector or None
        ``A p`` when the inner solve computed it on the way (None: the line search does).
    decrement : float
        ``-g^T p`` (``-(g^T p + P(x + p) - P(x))`` for a composite objective ``L + P``): the
        decrease the step's model predicts, the line search's slope.
    inner_iterations : int
        Conjugate-gradient iterations (0 for a direct solve).
    error_estimate : float
        ``||x - x*||`` estimated from this step when the model gives none (conjugate
        gradients preconditioned by a matrix-free model: ``||p|| / (1 - eta)``), else ``inf``.
    accuracy : float
        Relative error of ``p`` as a Newton step: the model's spectral-error level, or the
        CG forcing term.
    missing : float
        An upper bound of what ``decrement`` misses of ``g^T H^{-1} g`` (0 for a direct
        solve, whose model is the step's own; ``r^T M^{-1} r / (1 - e)`` for CG preconditioned
        by a spectral approximation ``M``; ``inf`` when unknown).
    """

    direction: np.ndarray
    image: Any = None
    decrement: float = np.inf
    inner_iterations: int = 0
    error_estimate: float = np.inf
    accuracy: float = 0.0
    missing: float = 0.0


def steepest_descent(g: np.ndarray, like: np.ndarray | None = None) -> Step:
    """The step ``-g`` scaled to ``||like||`` (to ``||g||`` when ``like`` is missing, zero or
    not finite): the last resort when a Newton direction fails."""
    gnorm = float(np.linalg.norm(g))
    norm = float(np.linalg.norm(like)) if like is not None else 0.0
    d = -g * (norm / gnorm) if (np.isfinite(norm) and norm > 0 and gnorm > 0) else -g
    return Step(d, decrement=-float(g @ d))


def descent_step(g: np.ndarray, p: np.ndarray, **fields: Any) -> Step:
    """``p`` as a :class:`Step` when it descends (``g^T p < 0``), else
    :func:`steepest_descent` scaled like ``p`` (``fields``: the step's other attributes)."""
    if float(g @ p) < 0:
        return Step(p, decrement=-float(g @ p), **fields)
    fields.pop("image", None)
    return replace(steepest_descent(g, p), **fields)


@dataclass(frozen=True)
class StrategySettings:
    """The user's choices a strategy reads.

    Attributes
    ----------
    sketch : str
        Sketch of the Hessian's diagonal part (``"leverage"``, ``"uniform"``,
        ``"countsketch"``, ``"srht"``, ``"gaussian"``).
    sketch_size : int or None
        Rows of the sketch (None: ``20 d``, and adaptive where the strategy adapts it).
    preconditioner : str
        The matrix-free preconditioner of Newton-CG (``"auto"``, ``"diagonal"``,
        ``"nystrom"``, ``"none"``).
    """

    sketch: str = "leverage"
    sketch_size: int | None = None
    preconditioner: str = "auto"


class Strategy(ABC):
    """One way of computing a Newton step (see the module docstring).

    Parameters
    ----------
    loss : Loss
    settings : StrategySettings
    rng : numpy Generator
    penalty : L1Penalty, optional
        The non-smooth part of a composite objective (strategies with ``handles_penalty``).

    Attributes
    ----------
    model : Model or None
        The current model of the Hessian (None before the first :meth:`update`).
    fresh : bool
        The model was built at the current iterate (not kept from an earlier one).
    """

    #: the method's name (``result.method``)
    name: ClassVar[str]
    #: the strategy can minimise a composite objective ``loss + penalty``
    handles_penalty: ClassVar[bool] = False
    #: the builder's sketch: ``"exact"`` or the settings' sketch
    uses_sketch: ClassVar[bool] = False

    def __init__(self, loss: Loss, settings: StrategySettings, rng: np.random.Generator,
                 penalty: L1Penalty | None = None):
        if penalty is not None and not self.handles_penalty:
            raise InputError(f"method {self.name!r} cannot minimise a penalised (L1) objective")
        self.loss, self.settings, self.rng, self.penalty = loss, settings, rng, penalty
        size = settings.sketch_size if settings.sketch_size is not None else 20 * loss.data.d
        self.sketch_size = int(size)
        self.builder = ModelBuilder(loss, settings.sketch if self.uses_sketch else "exact",
                                    self.sketch_size, rng,
                                    fixed=None if penalty is None else penalty.weights > 0)
        self.model: Model | None = None
        self.fresh = False
        self._inner_seconds = 0.0

    # -- what the driver calls ----------------------------------------------------------
    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        """Raise :class:`~sketchnewton.exceptions.InputError` when the strategy's model cannot
        fit in memory for this loss (nothing to check by default)."""

    @abstractmethod
    def update(self, it: Iterate, contraction: float | None) -> None:
        """Build (or keep) the model at ``it``; sets :attr:`model` and :attr:`fresh`.

        ``contraction``: the ratio of the stopping rule's last two progress measures
        (None before there are two), for strategies that adapt to it.
        """

    @abstractmethod
    def step(self, it: Iterate, forcing_floor: float = 0.0) -> Step:
        """The Newton step at ``it`` (a descent direction). ``forcing_floor``: an inner solve
        need not be more accurate than this relative residual (the stopping rule's target)."""

    def fallback_step(self, it: Iterate) -> Step:
        """The last resort when the line search fails along :meth:`step`'s direction: steepest
        descent scaled like that step (a composite strategy overrides it with its proximal
        gradient step)."""
        return steepest_descent(it.grad, it.step.direction if it.step is not None else None)

    def decrement(self, it: Iterate, target: float) -> float:
        """A reliable Newton decrement ``g^T H~^{-1} g`` at ``it``, accurate enough to tell
        whether it is below ``target`` (to certify ``tol``): the model's own (a direct
        strategy's step is its exact solve)."""
        if self.model is None:
            self.update(it, None)
        return abs(float(it.grad @ self.built.solve(it.grad)))

    def estimate(self, it: Iterate) -> float:
        """``||H~^{-1} g|| / (1 - e)``: the model's estimate of ``||x - x*||`` (docs/math.md
        7.1). A preconditioner that is no approximation of the Hessian gives none: then the
        last step's estimate stands (``it.error_estimate``)."""
        model = self.model
        if model is None:
            return np.inf
        if model.spectral_error is None:
            return it.error_estimate
        return float(np.linalg.norm(model.solve(it.grad))) / (1.0 - model.spectral_error)

    def describe(self) -> dict:
        """``method, preconditioner, sketch, sketch_size`` for the result."""
        sketch = self.builder.sketch
        return dict(method=self.name, preconditioner=None, sketch=sketch,
                    sketch_size=self.sketch_size if sketch != "exact" else 0)

    @property
    def timings(self) -> dict:
        """Seconds in the model's phases (leverage scores, sketch, Gram, factorization) and in
        the inner solve."""
        return dict(self.builder.timings, inner_solve=self._inner_seconds)

    # -- shared by the strategies ---------------------------------------------------------
    @property
    def built(self) -> Model:
        """The model, once :meth:`update` has built one."""
        if self.model is None:
            raise RuntimeError("no model yet: call update() first")
        return self.model

    def _timed(self, fn, *args):
        t0 = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._inner_seconds += time.perf_counter() - t0


def check_dense_model_fits(loss: Loss, name: str,
                           hint: str = "use method='cg' (no p x p matrix) or method='auto'"
                           ) -> None:
    """A dense (p x p) model must fit: the matrix, its factor and the factorization's
    workspace (three copies). ``hint``: what to try instead."""
    p = loss.n_params
    check_memory(3 * 8 * p * p, f"method {name!r} (a dense {p:,} x {p:,} Hessian model)", hint)
