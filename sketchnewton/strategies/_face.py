"""Face solves of the L1 model on a dense ``H`` (docs/math.md 9.2, "The face solve" and
"Active-set cycles where coordinate descent stalls"): the model's exact minimiser on the face of
a step, and the active-set cycles that find that face where coordinate descent stalls."""

from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

from .._kernels.cd import gram_cd
from ._working_set import violators

__all__ = ["RESTRICTED_MAX", "FACE_CYCLES", "FACE_CYCLE_SWEEPS", "FACE_RAYS", "face_cycles",
           "face_minimiser", "shift_null_space"]

_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny

#: largest support whose ``H_FF`` is factorized (the face solve, the error estimate's solve;
#: the matrix-free form: at most :func:`~sketchnewton._auto.restricted_max`); beyond, no estimate
RESTRICTED_MAX = 4096
#: active-set cycles (:func:`face_cycles`) after coordinate descent stopped at ``MAX_SWEEPS``,
#: and the sweeps of coordinate descent between two of them
FACE_CYCLES = 20
FACE_CYCLE_SWEEPS = 5
#: steps along a singular face's null space per face solve at most (each leaves the face with
#: at least one coordinate: :func:`face_minimiser`)
FACE_RAYS = 32
#: a face solve's residual beyond this share of ``|w_j| + |g_j| + |(H q)_j|`` is more than the
#: rounding of the model's gradient: a part of the right-hand side along ``H_FF``'s null space
RAY_SLACK = 1e-12


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
    def apply(q, dq, Hq):
        nz = np.flatnonzero(dq)
        return Hq + H[:, nz] @ dq[nz]

    found = face_minimiser(x, g, w, d, Hd, lambda F: H[np.ix_(F, F)], apply, RESTRICTED_MAX)
    return None if found is None else found[0]


def face_minimiser(x: np.ndarray, g: np.ndarray, w: np.ndarray, d: np.ndarray, Hd: np.ndarray,
                   restricted: Callable[[np.ndarray], np.ndarray],
                   apply: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                   cap: int, fixed: Callable[[np.ndarray], np.ndarray | None] | None = None
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """The model's exact minimiser by face solves from the step ``d`` (``Hd = H d``):
    ``(q, H q)``, or None when the face of ``x + d`` does not lead to it (a sign changes, a
    coordinate off the face violates, a face above ``cap`` coordinates).

    On the face of ``x + d`` (free coordinates ``F``, signs ``sigma``) the model is the quadratic
    ``H_FF dq_F = -(g + H d + w sigma)_F``, solved by :func:`_psd_solve` (``restricted(F)`` is
    ``H_FF``, possibly made definite along known null directions: ``fixed(F)``, orthonormal
    columns, or None). When ``H_FF`` is singular
    and the right-hand side has a part along its null space, the quadratic is unbounded below on
    the face and the solve leaves that part as its residual: the model then decreases linearly
    along it (zero curvature) until a coordinate of ``F`` reaches zero, and the face solve is
    repeated on the smaller face (:func:`_null_ray`; at most ``FACE_RAYS`` times). Duplicated
    columns (``W_j + W_j'`` is what the loss sees) and a column's class shift are such
    directions (docs/math.md 9.2, "Singular faces"). ``apply(q, dq, Hq)`` is ``H q`` for
    ``q = previous + dq`` with ``Hq`` the previous product.
    """
    q, Hq = d, Hd
    for _ in range(FACE_RAYS + 1):
        F, sigma = _face_of(x + q, w)
        if F.size > cap:
            return None
        if F.size == 0:
            return (q, Hq) if _others_optimal(g, Hq, w, F) else None
        HF = restricted(F)
        dq = np.zeros_like(q)
        dq[F] = -_psd_solve(HF, g[F] + Hq[F] + w[F] * sigma)
        q = q + dq
        if not _signs_hold(x, q, w, F, sigma):
            return None
        Hq = apply(q, dq, Hq)
        if not _others_optimal(g, Hq, w, F):
            return None
        ray, gain = _null_ray(x, g, w, q, Hq, F, sigma, HF, None if fixed is None else fixed(F))
        if ray is None:
            return (q, Hq) if gain == 0 else None
        before = _model_value(None, g, w, x, q, Hq)
        q = q + ray
        Hq = apply(q, ray, Hq)
        # along a null direction the model falls by the linear gain (to rounding); less: not one
        rounding = 16 * _EPS * float(np.abs(g) @ np.abs(q) + np.abs(q) @ np.abs(Hq)
                                     + w @ np.abs(x + q))
        if before - _model_value(None, g, w, x, q, Hq) < 0.5 * gain - rounding:
            return None
    return None


def _null_ray(x: np.ndarray, g: np.ndarray, w: np.ndarray, q: np.ndarray, Hq: np.ndarray,
              F: np.ndarray, sigma: np.ndarray, HF: np.ndarray,
              N: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
    """A step along the null part of a face solve's residual ``r = (g + H q + w sigma)_F`` to
    where a penalised coordinate of ``F`` reaches zero (set there exactly), and the model's
    linear decrease along it: ``(None, 0)`` when ``q`` solves the face, ``(None, inf)`` when
    ``r`` has a null part but no coordinate reaches zero along it (no descent on the face).

    ``HF`` is ``restricted(F)``, made definite along ``N`` (orthonormal null directions of ``H``
    with disjoint supports, or None). ``r``'s part along each of them moves on its own to its
    first zero (a column's class shift: to the column's median); the rest, ``r_c``, is a null
    part when its curvature ``r_c^T H_FF r_c`` is at most ``|F| eps trace(H_FF) ||r||^2`` (the
    level below which :func:`_psd_factor` drops eigenvalues; above it, the solve's rounding on
    an ill-conditioned face), and the step is along ``-r`` to the first zero. ``r`` within
    ``RAY_SLACK`` of the model gradient's scale on every coordinate is rounding."""
    r = g[F] + Hq[F] + w[F] * sigma
    slack = RAY_SLACK * (w[F] + np.abs(g[F]) + np.abs(Hq[F]))
    if np.all(np.abs(r) <= slack):
        return None, 0.0
    z, e = x[F] + q[F], np.zeros_like(q)
    rc = r
    if N is not None and N.shape[1] and np.count_nonzero(N, axis=1).max() <= 1:
        a = N.T @ r
        owner = np.argmax(N != 0, axis=1)
        on = np.any(N != 0, axis=1)
        part = np.where(on, N[np.arange(F.size), owner] * a[owner], 0.0)
        rc = r - part  # (disjoint supports: N N^T r)
        step, gain = _first_zeros(z, sigma, part, np.where(on, owner, -1), N.shape[1],
                                  np.abs(part) > slack)
        if gain > 0:
            e[F] = step
            return e, gain
    if float(rc @ HF @ rc) > F.size * _EPS * float(np.trace(HF)) * float(r @ r):
        return None, 0.0
    step, gain = _first_zeros(z, sigma, r, np.zeros(F.size, dtype=np.int64), 1,
                              np.ones(F.size, dtype=bool))
    if gain == 0:
        return None, np.inf
    e[F] = step
    return e, gain


def _first_zeros(z: np.ndarray, sigma: np.ndarray, r: np.ndarray, group: np.ndarray, m: int,
                 significant: np.ndarray) -> tuple[np.ndarray, float]:
    """The step ``-t_c r`` on each group ``c`` of coordinates (``group``, -1: none; ``m``
    groups) with a ``significant`` coordinate, ``t_c`` its first penalised coordinate's zero
    (set exactly), and the decrease ``sum_c t_c ||r_c||^2``; zero for a group without one."""
    cross = (group >= 0) & (sigma != 0) & (sigma * r > 0)  # -r moves z_j towards zero
    live = np.zeros(m, dtype=bool)
    live[group[significant & (group >= 0)]] = True
    cross &= live[np.maximum(group, 0)]
    t = np.full(m, np.inf)
    ratio = np.abs(z[cross]) / np.abs(r[cross])
    np.minimum.at(t, group[cross], ratio)
    t[~np.isfinite(t)] = 0.0
    tj = np.where(group >= 0, t[np.maximum(group, 0)], 0.0)
    step = -tj * r
    hit = cross & (np.abs(z) / np.maximum(np.abs(r), _TINY) <= tj)
    step[hit] = -z[hit]  # exactly at zero: it leaves the face
    return step, float(tj @ (r * r))


def shift_null_space(free: np.ndarray, K: int, ridge: np.ndarray,
                     N: np.ndarray | None) -> np.ndarray | None:
    """Orthonormal null directions of ``H_FF`` known exactly, with disjoint supports: the loss's
    invariances ``N`` (the intercepts' shift, whose support is unpenalised and inside ``F``;
    None: none) and the class shift ``1_K (x) e_j / sqrt(K)`` of each column ``j`` without a
    ridge whose ``K`` coordinates are all in ``F`` (``B_i 1 = 0``; the penalty breaks it off
    the face, not on it). ``free`` (sorted) indexes ``x.reshape(K, -1)`` flattened."""
    parts = [] if N is None else [N[free]]
    if K > 1:
        klass, col = np.divmod(free, ridge.size // K)
        J, pos = np.unique(col, return_inverse=True)
        full = np.bincount(pos, minlength=J.size) == K
        full &= np.bincount(pos, weights=ridge[free] == 0, minlength=J.size) == K
        if full.any():
            cols = np.cumsum(full) - 1
            keep = full[pos]
            S = np.zeros((free.size, int(full.sum())))
            S[np.flatnonzero(keep), cols[pos[keep]]] = 1.0 / np.sqrt(K)
            if N is not None:  # the intercepts' shifts are among them already
                S = S[:, np.abs(N[free].T @ S).max(axis=0) < 0.5]
            parts.append(S)
    return np.hstack(parts) if parts and sum(q.shape[1] for q in parts) else None


def face_cycles(H: np.ndarray, g: np.ndarray, w: np.ndarray, x: np.ndarray, d: np.ndarray,
                Hd: np.ndarray, tol: float, cycles: int = FACE_CYCLES) -> bool:
    """Active-set cycles on a dense model where coordinate descent stalls: ``d`` and ``Hd``
    (H d) updated in place; True when ``x + d`` is the model's exact minimiser.

    Each cycle moves from ``d`` towards the model's minimiser on the face of ``x + d`` (the
    quadratic on its free coordinates ``F``, the signs fixed): the projected step (every
    coordinate whose sign would change set to zero) when it lowers the model, else the step to
    the first coordinate of ``F`` that reaches zero (set there exactly); then a few sweeps of
    coordinate descent let violators in. On the face the model is a convex quadratic whose
    minimiser is the full step (on a singular face whose solve leaves a residual, the step along
    that residual of :func:`_null_ray`), so every cycle decreases the model (docs/math.md 9.2):
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
                ray, gain = _null_ray(x, g, w, d, Hd, F, sigma, H[np.ix_(F, F)])
                if ray is None:
                    if gain == 0:
                        return True
                else:  # a singular face: along its null space to the next (face_minimiser)
                    d += ray
                    Hd += H[:, F] @ ray[F]
                    continue
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
    """``q(d)`` up to the constant ``-P(x)`` (``q(d + step on F)`` when given), from ``Hd``
    (``H`` only read with a ``step``)."""
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
