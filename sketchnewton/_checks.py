"""What the driver checks before it promises ``success=True`` (docs/math.md sections 6 and 7).

A small gradient is not enough evidence of a minimiser:

* a zero gradient may be a saddle or a maximum: the curvature is probed
  (:func:`probe_stationary`), and the driver follows a direction of negative
  curvature;
* a gradient at the rounding level cannot certify an error below the
  attainable accuracy ``||H^{-1} dg||``, ``dg`` the gradient's rounding error
  (:func:`rounding_floor`);
* a sketched model, or one built at an earlier iterate, may overstate the
  curvature at ``x`` (:func:`staleness`);
* numerically flat directions must be invariances of the loss, not asymptotes,
  and a curvature that has vanished everywhere while the loss still decreases
  along the path means the infimum is not attained (:func:`certify`).

Every function here computes and returns a value; none changes the iterate.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._outcome import Reason, Verdict
from .exceptions import DomainError
from .hessian._invariance import decreases_along
from .hessian._model import Model
from .losses import Loss, State, gradient_of

__all__ = ["rounding_floor", "staleness", "probe_stationary", "Stationary",
           "certify", "N_PROBES", "VANISHED", "VANISHED_CURVATURE", "FLAT_STATIONARY"]

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny
#: random directions probed for curvature at a stationary point (one block product)
N_PROBES = 8
#: a model whose curvature fell below this share of the first model's has vanished
VANISHED = 1e-10


def rounding_floor(loss: Loss, state: State, model: Model, step_norm: float,
                   decrement: float) -> tuple[float, float]:
    """``(||H^{-1} dg||, dg^T H^{-1} dg)`` for the gradient's rounding error ``dg``.

    The distance to the minimiser and the decrement that the computed gradient
    can resolve at all (docs/math.md 7.3): one sweep, and a solve with the model.
    A preconditioner is no inverse Hessian (and CG on ``H y = dg`` drifts along
    null directions, which ``dg`` need not avoid): then the Newton step of length
    ``step_norm`` and its ``decrement`` are scaled instead, ``H^{-1}`` being linear:
    ``||H^{-1} dg|| ~ ||p|| ||dg|| / ||g||``.
    """
    dg = loss.gradient_noise(state)
    if model.spectral_error is None:
        ratio = float(np.linalg.norm(dg)) / max(float(np.linalg.norm(gradient_of(state))), _TINY)
        return step_norm * ratio, (abs(decrement) * ratio ** 2 if np.isfinite(decrement) else 0.0)
    y = model.solve(dg)
    return float(np.linalg.norm(y)) / (1.0 - model.spectral_error), abs(float(dg @ y))


def staleness(loss: Loss, state: State, model: Model) -> float:
    """How much a sketched model, or one built at an earlier iterate, overstates the
    curvature at ``x``.

    ``(y^T M y) / (y^T H y)`` along the model's step ``y = M^{-1} g`` (one
    Hessian-vector product), at least 1; ``inf`` when ``H`` has no positive
    curvature there. A model whose curvature the true Hessian has left behind
    (the whole model shrinking along a ray where the infimum is not attained)
    would otherwise certify a tiny error.
    """
    g = gradient_of(state)
    y = model.solve(g)
    y_my = abs(float(g @ y))
    hy = loss.hessian_matmat(state, y[:, None], loss.hessian_kinds[0])[:, 0]
    y_hy = float(y @ hy)
    if not (y_hy > 0 and np.isfinite(y_hy)):
        return np.inf if y_my > 0 else 1.0
    return max(1.0, y_my / y_hy)


#: the verdicts of a zero gradient that cannot be certified
VANISHED_CURVATURE = Verdict(Reason.VANISHED, "the gradient and the curvature vanish at x (the "
                             "scale of the data may be too small for float64: rescale it); a "
                             "minimiser cannot be certified")
FLAT_STATIONARY = Verdict(Reason.FLAT_STATIONARY, "stationary point whose only negative curvature "
                          "is at the rounding level: the loss is flat at x and a minimiser cannot "
                          "be certified")


@dataclass(frozen=True)
class Stationary:
    """What the curvature probe found at a zero gradient.

    ``kind`` is ``"minimum"`` (no negative curvature above rounding), ``"saddle"``
    (``direction`` of the most negative Ritz value, with its ``image`` ``A d``,
    scaled to move no ``z_i`` by more than 1) or ``"vanished"`` (no curvature at all).
    """

    kind: str
    direction: np.ndarray | None = None
    image: Any = None


def probe_stationary(loss: Loss, state: State, seed: int) -> Stationary:
    """Rayleigh-Ritz on ``N_PROBES`` random directions (one block product) at a zero gradient.

    ``seed`` makes the probe deterministic without drawing from the solve's generator.
    """
    p = loss.n_params
    rng = np.random.default_rng(seed)
    V = np.linalg.qr(rng.standard_normal((p, min(N_PROBES, p))))[0]
    N = loss.null_space()
    if N is not None:
        V = np.linalg.qr(V - N @ (N.T @ V))[0]
    HV = loss.hessian_matmat(state, V, loss.hessian_kinds[0])
    R = 0.5 * (V.T @ HV + HV.T @ V)
    q, W = np.linalg.eigh(R)
    top = float(np.abs(q).max()) if q.size else 0.0
    if not top > 0 or not np.isfinite(top):
        return Stationary("vanished")
    if q[0] >= -1e-10 * top:  # a minimiser, up to the attainable accuracy
        return Stationary("minimum")
    direction = V @ W[:, 0]
    image = loss.image(direction)
    dz = float(np.abs(image).max()) if image.size else 0.0
    scale = 1.0 / dz if dz > 0 else 1.0
    return Stationary("saddle", scale * direction, scale * image)


def certify(loss: Loss, state: State, model: Model | None, x0: np.ndarray,
            curvature0: float | None) -> Verdict | None:
    """None if ``x`` is a minimiser as far as can be checked, else the verdict saying why not.

    ``curvature0``: the first model's curvature scale (the reference of a vanishing
    curvature); ``x0``: the start (the path along which the loss may still decrease).
    """
    if not _flat_directions_are_invariances(loss, state, model):
        return Verdict(Reason.ASYMPTOTE, "stopped on a flat direction that is not an "
                       "invariance of the loss (an asymptote: the iterate may be drifting to "
                       "infinity)")
    c = model.curvature_scale if model is not None else np.nan
    if curvature0 and np.isfinite(c) and c < VANISHED * curvature0 \
            and _still_decreasing(loss, state, x0):
        return Verdict(Reason.NOT_ATTAINED, f"the curvature vanished ({c:.3g}, {curvature0:.3g} "
                       "at the start) while the loss still decreases along the path: the infimum "
                       "is not attained (x drifts to infinity)")
    return None


def _still_decreasing(loss: Loss, state: State, x0: np.ndarray) -> bool:
    try:
        f = loss.value(2.0 * state.x - x0)
    except DomainError:
        return False
    return bool(f < state.fun - 64 * _EPS * abs(state.fun))


def _flat_directions_are_invariances(loss: Loss, state: State, model: Model | None) -> bool:
    """Check that directions the model treats as null leave the loss unchanged.

    A pseudo-inverse model ignores directions of zero curvature. That is
    right for a true invariance (the softmax shift, a duplicated column)
    but wrong on an asymptote, where the loss flattens out while still
    decreasing (e.g. ``resnet`` with an intercept driven to ``+inf``). The
    loss may not decrease along such a direction by more than its own
    evaluation noise plus the decrease the model predicts at ``x`` (half the
    Newton decrement: ``x`` is a minimiser only to within eps); costs two
    loss evaluations per direction, only at convergence.
    """
    if model is None or model.null_vectors is None or model.null_vectors.shape[1] == 0:
        return True
    g = gradient_of(state)
    predicted = 0.5 * abs(float(g @ model.solve(g)))
    return not decreases_along(loss, state, model.null_vectors[:, :4], 2 * predicted)
