"""Dense factorized models of the Hessian: exact or sketched, (p, p) (docs/math.md section 6.2)."""

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

__all__ = ["HessianModel", "factorize", "factorize_psd", "fix_invariances", "spectral_error_level"]


def spectral_error_level(n_params, sketch_size):
    """Conservative spectral-error level of a sketched model of ``sketch_size`` rows (0 exact).

    ``min(0.9, 2 sqrt(p / s))``: twice the Gaussian-sketch rate; docs/math.md 7.1 explains
    why it is a heuristic level rather than a bound.
    """
    return 0.0 if sketch_size == 0 else min(0.9, 2.0 * np.sqrt(n_params / sketch_size))


@dataclass
class HessianModel:
    """A factorized symmetric positive (semi)definite model ``H~``.

    Attributes
    ----------
    matrix : ndarray (p, p)
    kind : {"full", "gauss_newton"}
        Which Hessian the model approximates.
    cho : tuple or None
        ``scipy.linalg.cho_factor`` of ``matrix + damping I``.
    eig : tuple (V, inv_values) or None
        Used instead of ``cho`` when ``matrix`` is singular: the pseudo-inverse
        ``V diag(inv_values) V^T`` (exact null directions, such as the
        softmax shift, get no step and do not count in the error estimate).
    damping : float
        Levenberg-Marquardt shift added to make an indefinite model positive.
    sketch_size : int
        Rows of the sketch (0 for the exact model).
    null_vectors : ndarray (p, m) or None
        Directions the pseudo-inverse ignores (numerically zero curvature).
    """

    matrix: np.ndarray
    kind: str
    cho: tuple | None = None
    eig: tuple | None = None
    damping: float = 0.0
    sketch_size: int = 0
    null_vectors: np.ndarray | None = None

    @property
    def curvature_scale(self):
        """Largest diagonal entry of the model: the scale of its curvature."""
        return float(np.max(np.diag(self.matrix))) if self.matrix.size else 0.0

    @property
    def spectral_error(self):
        """Spectral-error level ``e`` of the model (0 for the exact Hessian)."""
        return spectral_error_level(self.matrix.shape[0], self.sketch_size)

    def solve(self, g):
        """Return ``(H~ + damping I)^{+} g``."""
        if self.cho is not None:
            return sla.cho_solve(self.cho, g, check_finite=False)
        V, inv = self.eig
        return V @ (inv * (V.T @ g))


def _try_cholesky(H):
    try:
        cho = sla.cho_factor(H, lower=False, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    diag = np.abs(np.diag(cho[0]))
    # reject numerically singular factors: pivots below roundoff of the largest
    if not np.all(np.isfinite(diag)) or diag.min() <= np.sqrt(H.shape[0] * np.finfo(float).eps) * diag.max():
        return None
    return cho


def factorize(H, kind, sketch_size=0):
    """Cholesky-factorize ``H``; returns None when it is not (numerically) positive definite."""
    cho = _try_cholesky(H)
    return None if cho is None else HessianModel(H, kind, cho=cho, sketch_size=sketch_size)


def factorize_psd(H, kind, sketch_size=0):
    """Model for a matrix that Cholesky rejected (singular or indefinite).

    Eigen-decomposes ``H``. If it is positive semidefinite up to rounding
    (``lambda_min >= -tol``, ``tol = p * eps * lambda_max``) the model is its
    pseudo-inverse on eigenvalues above ``tol``; otherwise the
    Levenberg-Marquardt shift ``mu = 2 |lambda_min| + tol`` makes it positive
    definite. Never raises for finite ``H``.
    """
    if not np.all(np.isfinite(H)):
        raise np.linalg.LinAlgError("the Hessian model is not finite")
    values, V = np.linalg.eigh(0.5 * (H + H.T))
    top = max(abs(values[-1]), abs(values[0]), np.finfo(float).tiny)
    tol = H.shape[0] * np.finfo(float).eps * top
    damping = 0.0 if values[0] >= -tol else 2.0 * abs(values[0]) + tol
    shifted = values + damping
    keep = shifted > tol
    inv = np.where(keep, 1.0 / np.where(keep, shifted, 1.0), 0.0)
    return HessianModel(H, kind, eig=(V, inv), damping=damping, sketch_size=sketch_size,
                        null_vectors=V[:, ~keep])


def fix_invariances(H, null_space):
    """``H + mu N N^T`` for the loss's declared null space ``N`` (orthonormal columns).

    ``mu`` is the mean diagonal of ``H``: positive along the exact invariances,
    zero elsewhere, so the step on the complement is the one of ``H``.
    """
    if null_space is None:
        return H
    mu = max(float(np.mean(np.diag(H))), np.finfo(float).tiny)
    H += mu * (null_space @ null_space.T)
    return H
