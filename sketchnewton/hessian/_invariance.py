"""Invariances of a loss, as they show numerically: directions along which the loss does not
change beyond its own evaluation noise (docs/math.md 6.2)."""

import numpy as np

from ..exceptions import DomainError

__all__ = ["value_noise", "decreases_along"]

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny


def value_noise(loss, state):
    """The loss's evaluation noise at ``x``: its change under perturbations of ``x`` by 4
    units in the last place (random signs from a fixed seed; two evaluations). Near an exact
    fit the loss is tiny but its noise is set by the size of the quantities it is computed
    from; over many rows it grows with their number."""
    x = state.x
    signs = np.where(np.random.default_rng(0).random(x.size) < 0.5, -1.0, 1.0)
    delta = 4 * _EPS * np.maximum(np.abs(x), _TINY) * signs
    noise = 0.0
    for sign in (1.0, -1.0):
        try:
            noise = max(noise, abs(loss.value(x + sign * delta) - state.fun))
        except DomainError:
            return np.inf
    return noise


def decreases_along(loss, state, directions, slack=0.0, reach=1.0, either=False):
    """Whether the loss falls (``either``: or rises) by more than its noise (``100 value_noise
    + 64 eps |f|``) plus ``slack`` along any of ``directions`` (columns, unit norm), in either
    sense, at a distance ``reach max(1, ||x||)``; a step out of the loss's domain counts as a
    change. Two evaluations per direction."""
    x, fun = state.x, state.fun
    step = reach * max(1.0, float(np.linalg.norm(x)))
    tol = 64 * _EPS * abs(fun) + 100 * value_noise(loss, state) + slack + _TINY
    for v in directions.T:
        for sign in (1.0, -1.0):
            try:
                f = loss.value(x + sign * step * v)
            except DomainError:
                return True
            if f < fun - tol or (either and f > fun + tol):
                return True
    return False
