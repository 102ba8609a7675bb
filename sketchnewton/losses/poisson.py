"""Poisson regression with the log link (docs/math.md section 4).

``L(x) = sum_i s_i (y_i log(y_i / mu_i) - y_i + mu_i) + lam/2 ||coef||^2``,
``mu = exp(A x)``: half the Poisson deviance, the objective of scikit-learn's
``PoissonRegressor(alpha)`` times ``sum_i s_i``, with ``lam = alpha * sum_i s_i``. The
implementation is shared with the other row-separable losses
(:mod:`sketchnewton.losses._separable`); only the row kernel is new.
"""

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._separable import POISSON, SeparableLoss

__all__ = ["PoissonLoss"]


class PoissonLoss(SeparableLoss):
    """Half the Poisson deviance with log link, ``sum_i s_i (y_i log(y_i/mu_i) - y_i + mu_i)``.

    Equal to the negative log-likelihood ``sum_i s_i (mu_i - y_i z_i)`` up to
    a constant; the deviance form is zero at a perfect fit, so relative
    tolerances mean what they say.

    Parameters
    ----------
    A : sparse or dense matrix of shape (n, d)
    y : array-like of shape (n,), non-negative counts (any non-negative reals)
    lam : float >= 0
        Ridge on the coefficients (not the intercept).
    sample_weight : array-like of shape (n,), optional
    fit_intercept : bool
    """

    family = POISSON

    def __init__(self, A: Any, y: ArrayLike, lam: float = 0.0,
                 sample_weight: ArrayLike | None = None, fit_intercept: bool = False):
        self._setup(self._local(A, y, sample_weight, fit_intercept, None), lam, fit_intercept, 1)

    def _start_intercept(self, sums):
        mean = sums[0] / sums[1] if sums[1] > 0 else 1.0
        return np.array([np.log(max(mean, 1e-12))])
