"""A certified bracket of a proximal Newton model's decrement by duality (docs/math.md 9.3,
"Confirming a decrement matrix-free").

The model at ``x`` is ``q(d) = g^T d + 1/2 d^T H d + P(x + d) - P(x)`` with
``H = A^T diag(D) A + diag(lam)``, ``D > 0``, ``P(u) = sum_j w_j |u_j|`` and the smooth gradient
``g = A^T rho + lam x`` (``rho``: the loss's gradient weights). For any ``d`` with image
``r = A d`` and model gradient ``G = g + H d``, and ``theta`` in ``(0, 1]`` with
``theta |G_j| <= w_j`` for every ``j`` (``G_j = 0`` where ``w_j = 0``), Fenchel duality of the
two squares gives the lower bound

    q* >= -1/2 sum_i ((theta - 1) rho_i + theta D_i r_i)^2 / D_i
          -1/2 sum_j lam_j ((theta - 1) x_j + theta d_j)^2 - theta G^T x - P(x),

equal to ``q*`` at the model's minimiser (``theta = 1``). Where ``lam_j > 0`` the ridge's square
takes up a violation instead (``G_j`` clipped to ``[-w_j, w_j]``): only the coordinates
without a ridge scale ``theta``. With the model's sandwich
``-q* <= delta* <= -2 q*`` (9.3) the decrement ``delta*`` of the exact minimiser lies in
``[-q(d), -2 (dual bound)]``: a matrix-free form can tell whether it is below a target after a
few coordinate-descent sweeps instead of solving the model to ``1e-10``.
"""

from collections.abc import Callable

import numpy as np

__all__ = ["model_dual_bound", "model_value", "bracket_decrement", "GAP_ROUNDS"]

#: relative inner tolerances of the rounds of :func:`bracket_decrement` (of the minimum-norm
#: subgradient at ``x``); the last is the confirmation's floor ``INNER_FORCING_MIN``
GAP_ROUNDS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8, 1e-10)


def model_value(g: np.ndarray, x: np.ndarray, w: np.ndarray, lam: np.ndarray, D: np.ndarray,
                d: np.ndarray, r: np.ndarray) -> float:
    """``q(d)`` from the image ``r = A d``, shape (n,); ``g, x, w, lam, d`` of shape (p,)."""
    curvature = float(r @ (D * r)) + float(lam @ (d * d))
    return float(g @ d) + 0.5 * curvature + float(w @ (np.abs(x + d) - np.abs(x)))


def model_dual_bound(x: np.ndarray, w: np.ndarray, lam: np.ndarray, D: np.ndarray,
                     rho: np.ndarray, d: np.ndarray, r: np.ndarray, G: np.ndarray) -> float:
    """The dual lower bound on ``q*`` of the module docstring at ``d`` (``-inf`` when none holds).

    Parameters
    ----------
    x, w, lam, d, G : ndarray of shape (p,)
        The iterate, the L1 weights, the ridge, the step and the model's gradient ``g + H d``
        (``G_j = 0`` on the unpenalised coordinates, else no bound).
    D, rho, r : ndarray of shape (n,)
        The curvature weights (``>= 0``), the gradient weights and the step's image ``A d``.
    """
    pen, ridge = w > 0, lam > 0
    if np.any(G[~pen] != 0):
        return -np.inf
    # theta scales the violations of the coordinates without a ridge; a ridge's own square
    # absorbs the others' (their c_j clipped to [-w_j, w_j]: a cost quadratic in the violation)
    lasso = pen & ~ridge & (np.abs(G) > w)
    theta = float(np.min(w[lasso] / np.abs(G[lasso]))) if lasso.any() else 1.0
    c = np.clip(theta * G, -w, w)
    eta = (theta - 1.0) * rho + theta * (D * r)
    flat = D <= 0
    if np.any(eta[flat] != 0):
        return -np.inf
    eta2 = float(np.sum(eta[~flat] ** 2 / D[~flat]))
    zeta = c[ridge] - theta * G[ridge] + lam[ridge] * ((theta - 1.0) * x[ridge]
                                                       + theta * d[ridge])
    zeta2 = float(np.sum(zeta ** 2 / lam[ridge]))
    return -0.5 * eta2 - 0.5 * zeta2 - float(c @ x) - float(w @ np.abs(x))


def bracket_decrement(solve: Callable[[float], tuple[float, float]], target: float,
                      scale: float) -> tuple[float, bool]:
    """Sweep the model in :data:`GAP_ROUNDS` until its decrement is known to be below or above
    ``target``.

    Parameters
    ----------
    solve : callable
        ``tol -> (q(d), dual bound)`` after coordinate descent continued to ``tol`` (absolute).
    target : float
        The decrement the stopping rule compares with.
    scale : float
        ``||s(x)||``, the minimum-norm subgradient's norm at ``x`` (the rounds' unit).

    Returns
    -------
    (value, decided) : (float, bool)
        ``value`` an upper bound of the exact minimiser's decrement when ``value <= target``, a
        lower bound above ``target`` otherwise; ``decided`` False when the last round could
        not tell (the caller falls back to the step's own decrement).
    """
    value = np.inf
    for rel in GAP_ROUNDS:
        q, dual = solve(rel * scale)
        upper, lower = -2.0 * dual, -q
        if upper <= target:
            return upper, True
        if lower > target:
            return lower, True
        value = upper
    return value, False
