"""Planted problems: normalized regression (:func:`make_regression_problem`) and
multinomial classification (:func:`make_classification_problem`)."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._links import LINKS, link_numpy
from .._validation import check_int, check_random_state, check_real
from ..exceptions import InputError
from ._sparse import SparseMatrixInfo, _column_scales, _make_sparse

__all__ = ["PlantedProblem", "make_classification_problem", "make_regression_problem"]

_MAX_ALPHA_RETRIES = 10


# ----------------------------------------------------------------------------
# normalized regression
# ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PlantedProblem:
    """A planted instance of ``min_x 1/2 || phi(A x) / <phi(A x), 1> - b ||^2``.

    Attributes
    ----------
    A : scipy.sparse.csr_matrix of shape (n, d), float64
    b : ndarray of shape (n,)
        Target. ``b = f_true`` when ``noise == 0``; it sums to 1 in every
        case (up to rounding).
    x_true : ndarray of shape (d,)
        Planted coefficients; ``A @ x_true`` has standard deviation
        ``z_std`` (measured with ``numpy.std``, ``ddof=0``).
    link : str
        One of ``"resnet"``, ``"softmax"``, ``"cosh"``, ``"sinh"``.
    z_std : float
    noise : float
    f_true : ndarray of shape (n,)
        ``phi(A x_true) / sum(phi(A x_true))``: the noiseless target.
    alpha_sign_flipped : bool
        True if ``x_true`` was negated to make ``sum(phi(z)) > 0`` (sinh
        and, rarely, resnet).
    info : SparseMatrixInfo
        How ``A`` was built (heavy rows, column scales).
    """

    A: sp.csr_matrix
    b: np.ndarray
    x_true: np.ndarray
    link: str
    z_std: float
    noise: float
    f_true: np.ndarray
    alpha_sign_flipped: bool
    info: SparseMatrixInfo

    @property
    def shape(self):
        return self.A.shape


def _draw_x(A, info, z_std, rng):
    """Draw ``x`` with ``std(A @ x) == z_std`` exactly; heavy rows get typical ``z``.

    Ordinary columns: ``x_j ~ N(0, 1)``, rescaled so that ``z`` over the
    ordinary rows has standard deviation ``z_std``. Private columns: set so
    that each heavy row's ``z`` is ``z_std * N(0, 1)`` (otherwise its large
    norm would give it ``|z|`` hundreds of times larger than the others and
    ``exp(z)`` would put all the mass of ``f`` on it). Finally ``x`` is
    rescaled once more so that ``std(A @ x)`` over all rows is ``z_std``.
    """
    n, d = A.shape
    x = rng.standard_normal(d)
    if info.n_heavy:
        x[info.heavy_columns] = 0.0
        z = A @ x
        ordinary = np.ones(n, dtype=bool)
        ordinary[info.heavy_rows] = False
        sd = float(np.std(z[ordinary]))
        if not sd > 0:
            raise InputError("A @ x_true is constant on the ordinary rows; cannot scale it "
                             "to the requested z_std (increase n or nnz_per_row)")
        x *= z_std / sd
        z *= z_std / sd
        target = z_std * rng.standard_normal(info.n_heavy)
        a_priv = np.asarray(A[info.heavy_rows, info.heavy_columns]).ravel()
        x[info.heavy_columns] = (target - z[info.heavy_rows]) / a_priv
    z = A @ x
    sd = float(np.std(z))
    if not sd > 0:
        raise InputError("A @ x_true is constant; cannot scale it to the requested z_std "
                         "(n must be >= 2 and A must not be degenerate)")
    x *= z_std / sd
    return x


def make_regression_problem(n, d, *, link="resnet", nnz_per_row=None, density=None,
                            z_std=1.0, noise=0.0, coherence=0.0, n_heavy=None,
                            column_scale=None, random_state=None):
    """Planted normalized regression problem ``(A, b)`` with known ``x_true``.

    ``A`` comes from :func:`make_sparse_matrix`. ``x_true`` is drawn standard
    normal and rescaled so that ``z = A @ x_true`` has standard deviation
    exactly ``z_std`` (measured, ``ddof=0``; see below for heavy rows). The
    noiseless target is ``f = phi(z) / sum(phi(z))`` with

    ========== ======================
    link       phi(z)
    ========== ======================
    resnet     exp(z) + z
    softmax    exp(z)
    cosh       cosh(z)
    sinh       sinh(z)
    ========== ======================

    computed with shifted exponentials (factor ``exp(-max z)`` for softmax,
    ``exp(-max(max z, 0))`` for resnet, ``exp(-max|z|)`` for cosh/sinh), so
    nothing overflows for any ``z_std``.

    ``alpha = sum(phi(z))`` must be positive. ``sinh`` is odd, so for a
    zero-mean ``z`` alpha is negative about half the time: then ``x_true`` is
    negated (which negates alpha). For ``resnet``, alpha <= 0 needs
    ``mean(z) <= -1/2`` and is rare; the sign flip is tried first, then up to
    10 fresh draws of ``x_true``, then :class:`InputError` is raised.

    Noise: ``b = f + noise * std(f) * (g - mean(g))`` with ``g ~ N(0, I_n)``.
    The centring keeps ``sum(b) = 1``, but ``b`` is generically not of the
    form ``phi(A x)/alpha`` for any ``x``, so the optimum has a non-zero
    residual. ``b`` is not renormalised and may have negative entries when
    ``noise`` is large.

    With ``coherence > 0`` the heavy rows of ``A`` have norm ~1e3 times the
    others; their private columns of ``x_true`` are set so that each heavy
    row's ``z`` is ``z_std * N(0, 1)`` like the others (otherwise ``f``
    would be concentrated on them), so those few entries of ``x_true`` can
    be large. The final rescaling still makes ``std(z) == z_std`` exactly.

    Parameters
    ----------
    n, d : int
        Shape of ``A``; ``n >= 2``.
    link : {"resnet", "softmax", "cosh", "sinh"}, default "resnet"
    nnz_per_row : int, optional
        Default 10 (or ``d`` if smaller) unless ``density`` is given.
    density : float in (0, 1], optional
    z_std : float > 0, default 1.0
        Standard deviation of ``A @ x_true``.
    noise : float >= 0, default 0.0
        Relative noise level (see above).
    coherence, n_heavy, column_scale :
        Passed to :func:`make_sparse_matrix`.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    PlantedProblem
        Fields ``A`` (n, d) CSR float64, ``b`` (n,), ``x_true`` (d,), ``link``,
        ``z_std``, ``noise``, ``f_true`` (n,), ``alpha_sign_flipped``, ``info``.

    Notes
    -----
    For ``sinh`` with zero-mean ``z``, ``alpha`` is of order ``sqrt(n)``
    rather than ``n`` (positive and negative terms cancel), so the entries
    of ``f`` are ``O(1/sqrt(n))`` and of both signs: a much harder,
    worse-conditioned problem than the other links.
    """
    if not isinstance(link, str) or link not in LINKS:
        raise InputError(f"link must be one of {LINKS}, got {link!r}")
    n = check_int(n, "n", minimum=1)
    if n < 2:
        raise InputError(f"n must be >= 2 so that z = A x_true has a standard deviation, got {n}")
    z_std = check_real(z_std, "z_std", positive=True)
    noise = check_real(noise, "noise", nonnegative=True)
    rng = check_random_state(random_state)
    A, info = _make_sparse(n, d, nnz_per_row=nnz_per_row, density=density,
                           coherence=coherence, n_heavy=n_heavy,
                           column_scale=column_scale, dtype=np.float64, rng=rng)
    if info.n_heavy and n - info.n_heavy < 2:
        raise InputError(
            f"need at least 2 ordinary rows besides the n_heavy={info.n_heavy} heavy rows")

    # u = exp(-m) phi(z) with link_numpy's shift m (no overflow): only u / sum(u) =
    # phi(z) / sum(phi(z)) and the sign of sum(u) are used, and the positive factor cancels
    flipped = False
    for _ in range(_MAX_ALPHA_RETRIES):
        x = _draw_x(A, info, z_std, rng)
        z = A @ x
        u = link_numpy(z, link)[0]
        alpha = float(u.sum())
        if not alpha > 0:
            x = -x
            z = -z
            u = link_numpy(z, link)[0]
            alpha = float(u.sum())
            flipped = True
        if alpha > 0:
            break
        flipped = False
    else:
        raise InputError(
            f"alpha = sum(phi(A x_true)) <= 0 for link={link!r} in {_MAX_ALPHA_RETRIES} draws "
            f"of x_true (and their negations); try another random_state or z_std")

    f = u / alpha
    if noise > 0:
        g = rng.standard_normal(n)
        g -= g.mean()
        b = f + (noise * float(np.std(f))) * g
    else:
        b = f.copy()
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(b))):  # pragma: no cover - defensive
        raise InputError("the planted target is not finite; reduce z_std")
    return PlantedProblem(A=A, b=b, x_true=x, link=link, z_std=z_std, noise=noise,
                          f_true=f, alpha_sign_flipped=flipped, info=info)


# ----------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------

def make_classification_problem(n, d, *, n_classes=2, nnz_per_row=None, density=None,
                                column_scale=None, separation=1.0, random_state=None):
    """Multinomial classification data with labels drawn from a planted softmax model.

    Features ``X`` are standard normal (times column scales), dense, or
    sparse with ``nnz_per_row`` distinct columns per row (see
    :func:`make_sparse_matrix`). ``W_true`` is drawn standard normal, centred
    across classes (``W_true @ 1_K = 0``: the representative that
    ridge-regularised multinomial regression recovers, since the model is
    invariant to adding the same vector to every class) and rescaled so that
    the logits ``X @ W_true`` have standard deviation ``separation`` (over all
    ``n * K`` entries). Each label is *sampled* from
    ``softmax(X[i] @ W_true)``, not the argmax, so the data are not separable
    and the unregularised problem has a finite minimiser for large ``n``.

    Parameters
    ----------
    n, d : int
        Number of samples (``n >= 2``) and features.
    n_classes : int >= 2, default 2
    nnz_per_row, density : optional
        If both are None, ``X`` is a dense ndarray; otherwise a CSR matrix with
        that many non-zeros per row.
    column_scale : (lo, hi) pair, optional
        As in :func:`make_sparse_matrix`.
    separation : float >= 0, default 1.0
        Standard deviation of the logits; larger means more confident labels.
        0 gives uniformly random labels.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n, d) or scipy.sparse.csr_matrix of shape (n, d), float64
    y : ndarray of shape (n,), int64
        Labels in ``0 .. n_classes - 1``.
    W_true : ndarray of shape (d, n_classes)
    """
    n = check_int(n, "n", minimum=1)
    if n < 2:
        raise InputError(f"n must be >= 2, got {n}")
    d = check_int(d, "d", minimum=1)
    K = check_int(n_classes, "n_classes", minimum=2)
    separation = check_real(separation, "separation", nonnegative=True)
    rng = check_random_state(random_state)

    if nnz_per_row is None and density is None:
        scales = _column_scales(column_scale, d, rng)
        X = rng.standard_normal((n, d))
        if scales is not None:
            X *= scales
    else:
        X, _ = _make_sparse(n, d, nnz_per_row=nnz_per_row, density=density, coherence=0.0,
                            n_heavy=None, column_scale=column_scale, dtype=np.float64, rng=rng)

    W = rng.standard_normal((d, K))
    W -= W.mean(axis=1, keepdims=True)
    logits = np.asarray(X @ W)
    sd = float(np.std(logits))
    if separation == 0 or not sd > 0:
        W[:] = 0.0
        logits[:] = 0.0
    else:
        W *= separation / sd
        logits *= separation / sd
    logits -= logits.max(axis=1, keepdims=True)
    P = np.exp(logits, out=logits)
    P /= P.sum(axis=1, keepdims=True)
    u = rng.random(n)
    np.cumsum(P, axis=1, out=P)
    y = (P < u[:, None]).sum(axis=1)
    np.minimum(y, K - 1, out=y)  # rounding: cumsum may end just below u
    return X, y.astype(np.int64, copy=False), W
