"""Hessian models for the Newton driver: exact, or sketched diagonal part + exact low rank.

The normalized family's Hessian is ``A^T [diag(delta) + V C V^T] A + lam I``.
The low-rank part ``K C K^T`` (``K = A^T V``) comes exactly from the
gradient pass. Only the diagonal part costs ``O(sum_i nnz_i^2)`` when formed
exactly; the sketched model replaces it by the Gram of ``s`` sketched rows.

Sketched models are built from the Gauss-Newton square-root factor
``J = diag(va) A - f k^T`` (DESIGN.md section 2): ``(S J)^T (S J)`` is PSD and
keeps every exact null direction of ``J`` (softmax shift invariance). For
the full Hessian, row samplers add the residual term
``A^T diag(qa (c - <f,c>)) A`` estimated on the *same* sampled rows plus the
exact low-rank difference; its sampling error scales with the residual.
"""

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from .exceptions import InputError
from ._kernels.sketch import weighted_bernoulli_rows
from .sketch import RowSamplingOperator, SketchSettings, leverage_scores

__all__ = ["HessianModel", "ModelBuilder", "SKETCHES", "preconditioned_cg"]

SKETCHES = ("leverage", "uniform", "countsketch", "srht", "gaussian")
_SAMPLERS = ("leverage", "uniform")
#: JL projections for the driver's approximate leverage scores: sampling needs
#: them only up to a constant factor (k = 8: relative s.d. 0.5 per score)
LEVERAGE_PROJECTIONS = 8


@dataclass
class HessianModel:
    """A factorized symmetric positive (semi)definite (d, d) model ``H~``.

    Attributes
    ----------
    matrix : ndarray (d, d)
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
    null_vectors : ndarray (d, m) or None
        Directions the pseudo-inverse ignores (numerically zero curvature).
    """

    matrix: np.ndarray
    kind: str
    cho: tuple | None = None
    eig: tuple | None = None
    damping: float = 0.0
    sketch_size: int = 0
    null_vectors: np.ndarray | None = None

    def solve(self, g):
        """Return ``(H~ + damping I)^{+} g``."""
        if self.cho is not None:
            return sla.cho_solve(self.cho, g, check_finite=False)
        V, inv = self.eig
        return V @ (inv * (V.T @ g))


def _try_cholesky(H, damping):
    M = H if damping == 0 else H + damping * np.eye(H.shape[0])
    try:
        cho = sla.cho_factor(M, lower=False, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None
    diag = np.abs(np.diag(cho[0]))
    # reject numerically singular factors: pivots below roundoff of the largest
    if not np.all(np.isfinite(diag)) or diag.min() <= np.sqrt(H.shape[0] * np.finfo(float).eps) * diag.max():
        return None
    return cho


def factorize(H, kind, sketch_size=0):
    """Cholesky-factorize ``H``; returns None when it is not positive definite."""
    cho = _try_cholesky(H, 0.0)
    return None if cho is None else HessianModel(H, kind, cho=cho, sketch_size=sketch_size)


def factorize_psd(H, kind, sketch_size=0):
    """Model for a matrix that Cholesky rejected (singular or indefinite).

    Eigen-decomposes ``H``. If it is positive semidefinite up to rounding
    (``lambda_min >= -tol``, ``tol = d * eps * lambda_max``) the model is its
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


def preconditioned_cg(product, model, b, eta, max_iter):
    """Conjugate gradients on ``H x = b`` preconditioned by ``model``.

    Parameters
    ----------
    product : callable
        ``product(v) -> (H v, A v)``: the Hessian product and the image ``A v``
        it computes on the way (one pass over ``A``).
    model : HessianModel
        Preconditioner (``model.solve`` applies its (pseudo-)inverse).
    b : ndarray (m,)
    eta : float
        Stop when ``||b - H x|| <= eta ||b||``.
    max_iter : int

    Returns
    -------
    x : ndarray (m,)
    Ax : ndarray or None
        ``A x`` accumulated from the images (None when no product was taken),
        so a line search along ``x`` needs no extra pass.
    iterations : int
    curvature_ok : bool
        False when ``d^T H d <= 0`` was met (``x`` is then the iterate before
        that direction; zero at the first iteration).
    """
    x = np.zeros_like(b)
    Ax = None
    r = b.copy()
    z = model.solve(r)
    rz = float(r @ z)
    if not rz > 0:
        return x, None, 0, False
    d = z.copy()
    bnorm = np.linalg.norm(b)
    for k in range(1, max_iter + 1):
        Hd, Ad = product(d)
        curv = float(d @ Hd)
        if not curv > 0:
            return x, Ax, k, False
        a = rz / curv
        x += a * d
        Ax = a * Ad if Ax is None else Ax + a * Ad
        r -= a * Hd
        if np.linalg.norm(r) <= eta * bnorm:
            return x, Ax, k, True
        z = model.solve(r)
        rz_new = float(r @ z)
        if not rz_new > 0:  # residual in the preconditioner's null space
            return x, Ax, k, True
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, Ax, max_iter, True


class ModelBuilder:
    """Builds the d x d model matrix of the Hessian from :class:`HessianFactors`.

    Parameters
    ----------
    sketch : {"exact", "leverage", "uniform", "countsketch", "srht", "gaussian"}
    sketch_size : int or None
    random_state : numpy Generator
    uniform_mix : float
        Fraction of uniform probability mixed into leverage sampling.

    Leverage scores are computed once for ``D_0 = va^2 + w^2`` and then
    reused: the raw quantity ``h_i = l_i / D_{0,i} = a_i^T (A^T D_0 A)^+ a_i``
    changes only by the bounded factor ``max D_0 / D`` when the weights move,
    and sampling needs scores only up to a constant factor. ``refresh()``
    forces new scores (the driver calls it when convergence is poor).
    """

    def __init__(self, sketch, sketch_size, random_state, uniform_mix=0.1):
        if sketch != "exact" and sketch not in SKETCHES:
            raise InputError(f"unknown sketch {sketch!r}; expected one of {SKETCHES}")
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.rng = random_state
        self.uniform_mix = uniform_mix
        self._raw_leverage = None
        self.timings = {"leverage": 0.0, "sketch": 0.0, "gram": 0.0}

    def refresh(self):
        self._raw_leverage = None

    # -- exact ---------------------------------------------------------------
    def exact(self, factors):
        t0 = time.perf_counter()
        H = factors.dense()
        self.timings["gram"] += time.perf_counter() - t0
        return H

    # -- sketched --------------------------------------------------------------
    def _draw_rows(self, A, d_gn, s):
        """Bernoulli row sample with probabilities ``~ d_gn * h`` (one fused O(n) kernel).

        ``h_i = a_i^T (A^T D_0 A)^+ a_i`` are the reused raw leverage quantities
        (all ones for ``"uniform"``). Uniforms are drawn in float32 (3x faster)
        when every positive inclusion probability exceeds 1e-4, far above the
        float32 resolution of 6e-8, so the inclusion probabilities stay exact
        to 0.1%.
        """
        weights = d_gn
        if self.sketch == "uniform":  # the baseline: every row with curvature equally likely
            weights = (d_gn > 0).astype(np.float64)
            if self._raw_leverage is None:
                self._raw_leverage = np.ones(A.n)
        elif self._raw_leverage is None:
            t0 = time.perf_counter()
            scores = leverage_scores(A, d_gn, method="approx", estimator="jl",
                                     n_projections=LEVERAGE_PROJECTIONS, random_state=self.rng)
            A.sweeps += 2  # CountSketch of A and the projected row norms
            with np.errstate(divide="ignore", invalid="ignore"):
                self._raw_leverage = np.where(d_gn > 0, scores / d_gn, 0.0)
            self.timings["leverage"] += time.perf_counter() - t0
        raw = self._raw_leverage
        floor = self.uniform_mix * s / A.n
        u = self.rng.random(A.n, dtype=np.float32 if floor > 1e-4 else np.float64)
        rows, weights = weighted_bernoulli_rows(weights, raw, self.uniform_mix, s, u)
        if rows.shape[0] == 0:  # degenerate weights: fall back to uniform rows
            rows, weights = weighted_bernoulli_rows(np.ones(A.n), np.ones(A.n), 0.0, s, u)
        return RowSamplingOperator(A.n, rows, weights, None, "bernoulli", s, self.sketch)

    def sketched(self, factors, gn_factors, kind):
        """Sketched model of the ``kind`` Hessian ('full' needs a row sampler).

        Parameters
        ----------
        factors : HessianFactors of the full Hessian
        gn_factors : HessianFactors of the Gauss-Newton matrix (carries ``root``)
        kind : {"full", "gauss_newton"}

        Returns
        -------
        H : ndarray (d, d)
        s : int, number of sketched rows
        """
        A = gn_factors.A
        root = gn_factors.root
        s = min(self.sketch_size, A.n)
        w2 = root.extra_diag
        d_gn = root.row_scale ** 2 + (0.0 if w2 is None else w2)
        t0, lev0 = time.perf_counter(), self.timings["leverage"]
        if self.sketch in _SAMPLERS:
            S = self._draw_rows(A, d_gn, s)
        else:
            S = SketchSettings(self.sketch, s).draw(self.rng, n=A.n)
        t1 = time.perf_counter()
        self.timings["sketch"] += t1 - t0 - (self.timings["leverage"] - lev0)  # disjoint timers
        extra = w2
        if kind == "full":
            if self.sketch not in _SAMPLERS:
                raise InputError("a sketched full Hessian needs a row sampler")
            # residual curvature qa (c - <f,c>), estimated on the same rows
            extra = factors.diag - d_gn if w2 is None else factors.diag - d_gn + w2
        H = S.gram(A, row_scale=root.row_scale, shift=(root.shift, root.k), extra_diag=extra)
        if self.sketch in _SAMPLERS:
            n_rows = S.rows.shape[0]
        else:
            A.sweeps += 1 if w2 is None else 2
            n_rows = s
        if kind == "full":
            H += factors.lowrank() - gn_factors.lowrank()
        elif kind != "gauss_newton":
            raise InputError(f"unknown Hessian kind {kind!r}")
        H[np.diag_indices_from(H)] += factors.lam
        self.timings["gram"] += time.perf_counter() - t1
        return 0.5 * (H + H.T), n_rows
