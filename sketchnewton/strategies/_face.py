"""Face solves of the L1 model on a dense ``H`` (docs/math.md 9.2, "The face solve" and
"Active-set cycles where coordinate descent stalls"): the model's exact minimiser on the face of
a step, and the active-set cycles that find that face where coordinate descent stalls."""

import numpy as np
import scipy.linalg as sla

from .._kernels.cd import gram_cd
from ._working_set import violators

__all__ = ["RESTRICTED_MAX", "FACE_CYCLES", "FACE_CYCLE_SWEEPS", "face_cycles"]

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny

#: largest support whose ``H_FF`` is factorized (the face solve, the error estimate's solve;
#: the matrix-free form: at most :func:`~sketchnewton._auto.restricted_max`); beyond, no estimate
RESTRICTED_MAX = 4096
#: active-set cycles (:func:`face_cycles`) after coordinate descent stopped at ``MAX_SWEEPS``,
#: and the sweeps of coordinate descent between two of them
FACE_CYCLES = 20
FACE_CYCLE_SWEEPS = 5


def _psd_factor(H: np.ndarray) -> tuple:
    """``("cho", factor)`` when ``H`` is numerically positive definite (Cholesky pivots above
    ``sqrt(n eps)`` of the largest), else ``("eig", (V, 1/values))`` of its pseudo-inverse
    (eigenvalues below ``n eps`` of the largest dropped)."""
    try:
        cho = sla.cho_factor(H, lower=False, check_finite=False)
        piv = np.abs(np.diag(cho[0]))
        if np.all(np.isfinite(piv)) and piv.min() > np.sqrt(H.shape[0] * _EPS) * piv.max():
            return ("cho", cho)
    except (np.linalg.LinAlgError, ValueError):
        pass
    values, V = np.linalg.eigh(H)
    top = max(float(values[-1]), np.finfo(float).tiny) if values.size else 1.0
    inv = np.where(values > H.shape[0] * _EPS * top, 1.0 / np.maximum(values, _TINY), 0.0)
    return ("eig", (V, inv))


def _psd_apply(factor: tuple, r: np.ndarray) -> np.ndarray:
    kind, f = factor
    if kind == "cho":
        return sla.cho_solve(f, r, check_finite=False)
    V, inv = f
    return V @ (inv * (V.T @ r))


def _psd_solve(H: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``H^{+} r`` (:func:`_psd_factor`)."""
    return _psd_apply(_psd_factor(H), r)


def _face(H: np.ndarray, g: np.ndarray, w: np.ndarray, x: np.ndarray, d: np.ndarray,
          Hd: np.ndarray, stalled: bool = False, tol: float = 0.0) -> np.ndarray | None:
    """:meth:`ProximalNewton._polish` on a dense model ``H`` (the working set's arrays): the
    model's exact minimiser on the face of ``x + d``, when it is its minimiser, else None;
    ``stalled`` (coordinate descent stopped at ``MAX_SWEEPS``): :func:`face_cycles` from ``d``
    (``d``, ``Hd`` updated in place), when the face of ``d`` is not the minimiser's."""
    found = _face_solve(H, g, w, x, d, Hd)
    if found is not None or not stalled:
        return found
    return d.copy() if face_cycles(H, g, w, x, d, Hd, tol) else None


def _face_solve(H: np.ndarray, g: np.ndarray, w: np.ndarray, x: np.ndarray, d: np.ndarray,
                Hd: np.ndarray) -> np.ndarray | None:
    """The model's minimiser on the face of ``x + d``, when it is the model's minimiser."""
    F, sigma = _face_of(x + d, w)
    if F.size > RESTRICTED_MAX:
        return None
    q, Hq = d.copy(), Hd
    if F.size:
        dF = -_psd_solve(H[np.ix_(F, F)], g[F] + Hd[F] + w[F] * sigma)
        q[F] += dF
        if not _signs_hold(x, q, w, F, sigma):
            return None
        Hq = Hd + H[:, F] @ dF
    return q if _others_optimal(g, Hq, w, F) else None


def face_cycles(H: np.ndarray, g: np.ndarray, w: np.ndarray, x: np.ndarray, d: np.ndarray,
                Hd: np.ndarray, tol: float, cycles: int = FACE_CYCLES) -> bool:
    """Active-set cycles on a dense model where coordinate descent stalls: ``d`` and ``Hd``
    (H d) updated in place; True when ``x + d`` is the model's exact minimiser.

    Each cycle moves from ``d`` towards the model's minimiser on the face of ``x + d`` (the
    quadratic on its free coordinates ``F``, the signs fixed): the projected step (every
    coordinate whose sign would change set to zero) when it lowers the model, else the step to
    the first coordinate of ``F`` that reaches zero (set there exactly); then a few sweeps of
    coordinate descent let violators in. On the face the model is a convex quadratic whose
    minimiser is the full step, so every cycle decreases the model (docs/math.md 9.2):
    where ``H`` is ill-conditioned (columns on scales 1 to 1e4: condition 2e7, 500 sweeps
    short of even a relative violation 1e-3) a few cycles find the face and its minimiser.
    """
    coords = np.arange(x.size, dtype=np.int64)
    for _ in range(cycles):
        F, sigma = _face_of(x + d, w)
        if F.size == 0 or F.size > RESTRICTED_MAX:
            return False
        dF = -_psd_solve(H[np.ix_(F, F)], g[F] + Hd[F] + w[F] * sigma)
        z = x[F] + d[F]
        cross = (w[F] > 0) & (np.sign(z + dF) != sigma)
        if not cross.any():
            d[F] += dF
            Hd += H[:, F] @ dF
            if _others_optimal(g, Hd, w, F):
                return True
        else:
            # the projected step (every crossing coordinate stops at zero) when it decreases
            # the model, else the step to the first crossing, which does
            step = np.where(cross, -z, dF)
            before = _model_value(H, g, w, x, d, Hd)
            if _model_value(H, g, w, x, d, Hd, F, step) >= before:
                t = float(np.min(-z[cross] / dF[cross]))
                step = np.where(cross & (-z / np.where(cross, dF, 1.0) <= t), -z, t * dF)
            d[F] += step
            Hd += H[:, F] @ step
        gram_cd(H, g, w, x, coords, d, Hd, tol, FACE_CYCLE_SWEEPS)
    return False


def _model_value(H, g, w, x, d, Hd, F=None, step=None) -> float:
    """``q(d)`` up to the constant ``-P(x)`` (``q(d + step on F)`` when given), from ``Hd``."""
    if F is None:
        return float(g @ d + 0.5 * d @ Hd + w @ np.abs(x + d))
    e = d.copy()
    e[F] += step
    return float(g @ e + 0.5 * e @ (Hd + H[:, F] @ step) + w @ np.abs(x + e))


def _face_of(z: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(F, sigma)``: ``z``'s free coordinates (non-zero or unpenalised), their fixed signs."""
    F = np.flatnonzero((z != 0) | (w == 0))
    return F, np.sign(z[F]) * (w[F] > 0)


def _signs_hold(x, q, w, F, sigma) -> bool:
    """``x + q`` keeps the signs ``sigma`` on the penalised coordinates of ``F``."""
    pen = w[F] > 0
    return bool(np.all(np.sign(x[F][pen] + q[F][pen]) == sigma[pen]))


def _others_optimal(g, Hq, w, F) -> bool:
    """No coordinate off ``F`` is a :func:`violator <._working_set.violators>`."""
    return violators(g, Hq, w, np.bincount(F, minlength=g.size) == 0).size == 0
