"""Hessian models for the Newton driver: exact, or sketched from the loss's curvature.

A model ``H~`` is a factorized symmetric positive (semi)definite
(n_params x n_params) matrix that the driver solves with (the step
``-H~^{-1} g``) or preconditions conjugate gradients with. It is built from a
loss that implements :class:`~sketchnewton.losses.Loss`:

* exact: the loss's Hessian (``A^T B A`` assembled in ``O(sum_i nnz_i^2)``);
* row sampling (``"leverage"``, ``"uniform"``): rows kept by the sketch
  layer's Bernoulli sampler (probabilities from the loss's curvature weights
  times leverage quantities computed once per solve), the loss's Hessian of
  those rows, reweighted (docs/math.md section 5.6);
* oblivious sketches (``"countsketch"``, ``"srht"``, ``"gaussian"``) of the
  loss's Gauss-Newton square-root factor (normalized family, in memory).

Directions along which the loss is exactly invariant (declared by the loss,
e.g. the multinomial class shift) get a positive curvature ``mu`` in every
model: the model is then positive definite and the step on the complement is
unchanged (docs/math.md section 3.3).
"""

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from .exceptions import InputError
from .sketch import SketchSettings, block_leverage_raw, draw_row_samplers

__all__ = ["HessianModel", "ModelBuilder", "SKETCHES", "ROW_SAMPLERS", "factorize",
           "factorize_psd", "preconditioned_cg"]

SKETCHES = ("leverage", "uniform", "countsketch", "srht", "gaussian")
#: sketches that keep whole rows: they work on row blocks and for every loss
ROW_SAMPLERS = ("leverage", "uniform")


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
    Ax : ndarray, BlockVector or None
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


class ModelBuilder:
    """Builds the model matrix of a loss's Hessian: exact or sketched.

    Parameters
    ----------
    loss : Loss
    sketch : {"exact", "leverage", "uniform", "countsketch", "srht", "gaussian"}
    sketch_size : int
    random_state : numpy Generator

    Leverage quantities ``h_i = a_i^T (A^T D_0 A)^+ a_i`` are computed once,
    for the curvature weights ``D_0`` of the first sketched model, and reused:
    sampling probabilities are ``~ D_i h_i`` with the current weights, which
    sampling needs only up to a constant factor (docs/math.md section 5.4).
    :meth:`refresh` forces new ones (the driver calls it when CG slows down).
    """

    def __init__(self, loss, sketch, sketch_size, random_state):
        if sketch != "exact" and sketch not in SKETCHES:
            raise InputError(f"unknown sketch {sketch!r}; expected one of {SKETCHES}")
        if sketch not in ROW_SAMPLERS + ("exact",):
            if not getattr(loss, "oblivious_sketches", False):
                raise InputError(f"sketch {sketch!r} needs a square-root factor of the Hessian, "
                                 f"which this loss does not offer; use one of {ROW_SAMPLERS}")
            if loss.data.n_blocks != 1:
                raise InputError(f"sketch {sketch!r} has no distributed implementation; use one "
                                 f"of {ROW_SAMPLERS} with dask inputs")
        self.loss = loss
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.rng = random_state
        self._raw = None
        self.timings = {"leverage": 0.0, "sketch": 0.0, "gram": 0.0}

    def refresh(self):
        """Forget the leverage quantities: the next sketched model computes new ones."""
        self._raw = None

    def exact(self, state, kind):
        """The loss's exact Hessian (``kind``) with its invariances fixed."""
        t0 = time.perf_counter()
        H = self.loss.hessian(state, kind)
        self.timings["gram"] += time.perf_counter() - t0
        return fix_invariances(H, self.loss.null_space()), 0

    def sketched(self, state, kind):
        """Sketched model of the ``kind`` Hessian ('full' needs a row sampler); ``(H~, rows)``."""
        loss, blocks = self.loss, self.loss.data
        s = min(self.sketch_size, blocks.n)
        t0 = time.perf_counter()
        if self.sketch in ROW_SAMPLERS:
            weights = loss.sampling_weights(state)
            if self.sketch == "leverage" and self._raw is None:
                t1 = time.perf_counter()
                self._raw = block_leverage_raw(blocks, weights, self.rng)
                self.timings["leverage"] += time.perf_counter() - t1
                t0 += time.perf_counter() - t1  # disjoint timers
            raw = self._raw if self.sketch == "leverage" else None
            operators = draw_row_samplers(blocks, weights, raw, s, self.rng, kind=self.sketch)
        else:
            if kind != "gauss_newton":
                raise InputError("a sketched full Hessian needs a row sampler")
            if self.sketch == "srht":
                s = min(s, 1 << max(0, int(np.ceil(np.log2(blocks.n)))))
            operators = [SketchSettings(self.sketch, s).draw(self.rng, n=blocks.n)]
        t1 = time.perf_counter()
        self.timings["sketch"] += t1 - t0
        H, rows = loss.sampled_hessian(state, operators, kind)
        self.timings["gram"] += time.perf_counter() - t1
        return fix_invariances(H, loss.null_space()), rows
