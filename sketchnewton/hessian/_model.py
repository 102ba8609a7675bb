"""The interface of every Hessian model (dense, matrix-free preconditioner, dual)."""

from typing import Protocol

import numpy as np

__all__ = ["Model"]


class Model(Protocol):
    """What the strategies and the checks read of a model ``H~``.

    Attributes
    ----------
    kind : str
        The Hessian it approximates (``"full"`` or ``"gauss_newton"``).
    spectral_error : float or None
        A conservative level ``e`` of its spectral error (0: exact), or None for a
        preconditioner that is no approximation of the Hessian.
    sketch_size : int
        Rows of the sketch it was built from (0: none).
    null_vectors : ndarray (p, m) or None
        Directions a pseudo-inverse model ignores (numerically zero curvature).
    curvature_scale : float
        The scale of its curvature (its largest diagonal entry; nan when unknown).
    """

    kind: str
    spectral_error: float | None
    sketch_size: int
    null_vectors: np.ndarray | None
    curvature_scale: float

    def solve(self, g: np.ndarray) -> np.ndarray:
        """``H~^{+} g``."""
