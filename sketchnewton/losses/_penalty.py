"""The non-smooth part of a composite objective ``F(x) = L(x) + P(x)``: a weighted L1 norm.

The elastic net of scikit-learn and glum, ``C sum_i l_i + (1 - l1_ratio)/2 ||w||^2 +
l1_ratio ||w||_1``, is a loss whose ridge carries the L2 part and this penalty with
``weights = l1_ratio`` on the penalised coordinates (0 on intercepts), after dividing by ``C``.
The driver evaluates ``F`` in its line search and judges optimality by the minimum-norm
subgradient (docs/math.md section 9).
"""

import numpy as np

__all__ = ["L1Penalty"]


class L1Penalty:
    """``P(x) = sum_j weights_j |x_j|`` with ``weights_j >= 0``.

    Parameters
    ----------
    weights : ndarray of shape (n_params,)
        The L1 strength of every coordinate (0: unpenalised, e.g. an intercept).
    """

    def __init__(self, weights: np.ndarray):
        self.weights = np.asarray(weights, dtype=np.float64)

    def value(self, x: np.ndarray) -> float:
        """``P(x)``."""
        return float(self.weights @ np.abs(x))

    def prox(self, v: np.ndarray, step: float | np.ndarray) -> np.ndarray:
        """``argmin_u P(u) + ||u - v||^2 / (2 step)``: soft thresholding by ``step * weights``."""
        t = step * self.weights
        return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)

    def subgradient(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The minimum-norm element of ``g + dP(x)``: the composite optimality measure (zero
        exactly at a minimiser of ``L + P`` when ``g = grad L(x)``)."""
        w = self.weights
        active = x != 0
        out = np.where(active, g + w * np.sign(x), np.sign(g) * np.maximum(np.abs(g) - w, 0.0))
        return out

    def change(self, x: np.ndarray, p: np.ndarray) -> float:
        """``P(x + p) - P(x)``: the non-smooth part of a step's predicted change."""
        return self.value(x + p) - self.value(x)
