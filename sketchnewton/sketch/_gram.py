"""Sketched Gram matrices ``A^T diag(weights) A`` and sketched rows."""

from dataclasses import dataclass

import numpy as np

from .._kernels import with_single_threaded_blas
from .._matrix import as_data_matrix
from .._validation import (
    check_bool,
    check_choice,
    check_int,
    check_random_state,
    check_real,
)
from ..exceptions import InputError
from ._leverage import check_weights, leverage_scores, sampling_probabilities
from ._operators import KINDS, SCHEMES, SketchOperator, check_sketch_size
from ._sampling import UNIFORM_MIX
from ._settings import SketchSettings

__all__ = ["sketch_gram", "sketch_rows", "sketch_size_for_eps", "SketchedRows",
           "SIZE_CONSTANTS"]

#: Calibrated constants ``C`` of the size formulas (see :func:`sketch_size_for_eps`).
SIZE_CONSTANTS = {
    "gaussian": 0.7,
    "srht": 0.7,
    "countsketch": 0.7,
    "leverage": 1.0,
    "uniform": 1.0,
}


def sketch_size_for_eps(eps, d, *, method="leverage", delta=0.05):
    """Sketch size ``s`` targeting spectral error ``eps`` with probability ``1 - delta``.

    The spectral error of ``H~`` for ``H = A^T D A`` is
    ``max |eig(H^{-1/2} H~ H^{-1/2}) - 1|``; ``d`` is the number of columns
    (an upper bound on the rank).

    * ``"gaussian"``, ``"srht"``, ``"countsketch"`` (oblivious embeddings)::

          s = C * (sqrt(d) + sqrt(2 log(2/delta)))^2 / (sqrt(1 + eps) - 1)^2

      For the Gaussian sketch with ``C = 1`` this is Gordon's bound plus
      Gaussian concentration (``sigma(S U) in 1 +- (sqrt(d) + t)/sqrt(s)``
      except with probability ``2 exp(-t^2/2)``), i.e. a proven guarantee.
      ``C`` for SRHT and CountSketch is calibrated empirically, on well-spread
      matrices: there the probability ``1 - delta`` is a measurement, not a
      promise. CountSketch's proven size is ``d (d + 1) / (delta eps^2)``
      (quadratic in ``d``): on heavy-tailed data (Student-t, 1.5 degrees of
      freedom, n = 4000, d = 20, eps = 0.3) this formula's size missed eps in
      4 of 40 seeds (max error 0.45) and 4 times it in none; use leverage
      sampling or a larger size there (docs/math.md section 5).

    * ``"leverage"``, ``"uniform"`` (row sampling, matrix Chernoff)::

          s = C * d * log(d / delta) / eps^2

      ``s`` is the expected number of kept rows. For leverage sampling with
      approximate scores, ``C`` is calibrated empirically. For uniform
      sampling the same formula applies only to incoherent matrices (the
      bound needs ``s`` proportional to ``n max_i l_i``): it fails on
      coherent ones by design.

    The constants ``C`` (:data:`SIZE_CONSTANTS`) were calibrated so that the
    measured error is ``<= eps`` in at least 19 of 20 seeds for
    ``eps in {0.3, 0.5, 0.8}`` on well-spread and coherent sparse test
    matrices (n = 20000, d = 40, ``python -m benchmarks sketch_layer --part eps``):
    the smallest passing ``C`` on a grid was 0.6 (Gaussian, eps 0.8/0.5),
    0.5-0.6 (SRHT), 0.6 (CountSketch), 0.9 (leverage, quadratic-form
    scores); the values used add ~15% margin. With the Gaussian sketch,
    ``C = 1`` is the proven bound, ``C = 0.7`` the measured one. Leverage
    sampling with JL-estimated scores (rows of more than ~16 non-zeros) needed
    ``C = 1.4`` at eps = 0.5 and failed at eps = 0.8 (small ``s``) on the
    calibration set: pass a larger ``eps``-independent margin or
    ``n_projections`` there.

    Parameters
    ----------
    eps : float in (0, 1]
    d : int
    method : str
    delta : float in (0, 1)

    Returns
    -------
    int
    """
    eps = check_real(eps, "eps", positive=True, maximum=1.0)
    delta = check_real(delta, "delta", positive=True)
    if not delta < 1:
        raise InputError(f"delta must be in (0, 1), got {delta}")
    method = check_choice(method, "method", KINDS)
    C = SIZE_CONSTANTS[method]
    d = check_int(d, "d", minimum=1)
    if method in ("leverage", "uniform"):
        s = C * d * np.log(max(d, 2) / delta) / eps ** 2
    else:
        t = np.sqrt(2.0 * np.log(2.0 / delta))
        s = C * (np.sqrt(d) + t) ** 2 / (np.sqrt(1.0 + eps) - 1.0) ** 2
    return int(np.ceil(s))


def _resolve_size(sketch_size, eps, d, method, delta):
    if sketch_size is not None and eps is not None:
        raise InputError("give either sketch_size or eps, not both")
    if sketch_size is not None:
        return check_sketch_size(sketch_size)
    return sketch_size_for_eps(0.5 if eps is None else eps, d, method=method, delta=delta)


@dataclass
class SketchedRows:
    """Result of :func:`sketch_rows`.

    Attributes
    ----------
    operator : SketchOperator
        The drawn ``S``; apply it to other operands (``S @ f``) to sketch
        ``diag(r) A - f k^T`` consistently.
    matrix : ndarray of shape (m, d)
        ``S diag(sqrt(weights)) A`` (dense). For row samplers ``m`` is the
        number of kept rows; ``matrix`` is ``None`` unless ``dense=True``.
    rows : ndarray of shape (m,) or None
        Kept row indices (row samplers only).
    row_weights : ndarray of shape (m,) or None
        Weight of each kept row including ``sqrt(weights)`` (row samplers
        only), so that ``matrix = row_weights[:, None] * A[rows]``.
    """

    operator: SketchOperator
    matrix: np.ndarray = None
    rows: np.ndarray = None
    row_weights: np.ndarray = None


def _draw(dm, w, s, method, scheme, scores, uniform_mix, rng):
    check_choice(method, "method", KINDS)
    check_choice(scheme, "scheme", SCHEMES)
    settings = SketchSettings(method, s, scheme)
    if method == "leverage":
        if scores is None:
            scores = leverage_scores(dm, w, method="approx", random_state=rng)
        else:
            scores = check_weights(scores, dm.n, "scores")
            scores = np.where(w > 0, scores, 0.0)
        p = sampling_probabilities(scores, uniform_mix=uniform_mix)
        return settings.draw(rng, probabilities=p)
    if method == "srht":
        n_pad = 1 << max(0, int(np.ceil(np.log2(dm.n))))
        settings = SketchSettings(method, min(s, n_pad), scheme)
    return settings.draw(rng, n=dm.n)


@with_single_threaded_blas
def sketch_rows(A, weights=None, sketch_size=None, *, method="leverage", eps=None,
                delta=0.05, scheme="bernoulli", scores=None, uniform_mix=UNIFORM_MIX, dense=False,
                random_state=None):
    """Sketch the rows of ``M = diag(sqrt(weights)) A``.

    Parameters
    ----------
    A : scipy sparse, DataMatrix or array of shape (n, d)
    weights : array of shape (n,), optional
        Non-negative; default ones.
    sketch_size, eps, delta, method, scheme, scores, uniform_mix, random_state
        As in :func:`sketch_gram`.
    dense : bool
        Row samplers: also return the dense (m, d) sketched rows.

    Returns
    -------
    SketchedRows
        ``.operator`` is the drawn ``S`` (apply it to a vector ``f`` with
        ``S @ f``, or to ``diag(r) A`` with ``S.apply(A, row_scale=r)``).
    """
    dm = as_data_matrix(A)
    w = check_weights(weights, dm.n)
    s = _resolve_size(sketch_size, eps, dm.d, method, delta)
    rng = check_random_state(random_state)
    dense = check_bool(dense, "dense")
    S = _draw(dm, w, s, method, scheme, scores, uniform_mix, rng)
    sw = np.sqrt(w)
    if method in ("uniform", "leverage"):
        rw = S.row_weights * sw[S.rows]
        mat = S.apply(dm, row_scale=sw) if dense else None
        return SketchedRows(S, mat, S.rows, rw)
    return SketchedRows(S, S.apply(dm, row_scale=sw))


@with_single_threaded_blas
def sketch_gram(A, weights=None, sketch_size=None, *, method="leverage", eps=None, delta=0.05,
                scheme="bernoulli", scores=None, uniform_mix=UNIFORM_MIX, random_state=None):
    """Sketched approximation of ``H = A^T diag(weights) A``.

    Returns ``H~ = (S M)^T (S M)`` with ``M = diag(sqrt(weights)) A``, a
    symmetric positive semidefinite (d, d) matrix with ``E[H~] = H``.

    Parameters
    ----------
    A : scipy sparse, DataMatrix or array of shape (n, d)
    weights : array of shape (n,), optional
        Non-negative diagonal ``D`` (default ones). Negative or non-finite
        entries raise :class:`~sketchnewton.exceptions.InputError`.
    sketch_size : int, optional
        Number of sketch rows ``s`` (expected number of kept rows for
        Bernoulli samplers).
    method : {"leverage", "uniform", "srht", "countsketch", "gaussian"}
        ``"leverage"`` (default): Bernoulli row sampling with approximate
        leverage scores of ``M`` (:func:`leverage_scores`), Gram of the kept
        rows assembled with ``DataMatrix.gram`` in ``O(sum nnz_i^2)``; total
        ``O(nnz(A) k + d^3 + s nnz_row^2)``. ``"uniform"``: uniform row
        sampling (baseline; fails on coherent matrices). ``"srht"``,
        ``"countsketch"``, ``"gaussian"``: ``(S M)^T (S M)`` with ``S M``
        dense (s, d), costing an extra ``O(s d^2)``.
    eps : float, optional
        Target spectral error; ``s = sketch_size_for_eps(eps, d, method,
        delta)``. Give ``sketch_size`` or ``eps`` (default ``eps = 0.5``).
    delta : float
        Failure probability used in the size formula.
    scheme : {"bernoulli", "replacement"}
        Row samplers only (see :class:`SketchSettings`).
    scores : array of shape (n,), optional
        Precomputed leverage scores (reuse across Newton iterations); rows
        with ``weights == 0`` are ignored.
    uniform_mix : float in [0, 1]
        Leverage sampling: mix the score distribution with the uniform one on
        rows with positive score (see :func:`sampling_probabilities`).
        Default 0.1: guards against scores underestimated by the JL
        projection at the cost of at most 10% of the sample.
    random_state : None, int or numpy Generator

    Returns
    -------
    ndarray of shape (d, d)
    """
    dm = as_data_matrix(A)
    w = check_weights(weights, dm.n)
    s = _resolve_size(sketch_size, eps, dm.d, method, delta)
    rng = check_random_state(random_state)
    S = _draw(dm, w, s, method, scheme, scores, uniform_mix, rng)
    return S.gram(dm, row_scale=np.sqrt(w))
