"""Seeded synthetic generators of planted problems.

Three generators, all reproducible for a fixed ``random_state`` (independent
of the number of numba threads):

* :func:`make_sparse_matrix` - a large sparse CSR matrix with exactly
  ``nnz_per_row`` distinct columns per row, optional column scaling (bad
  conditioning) and optional *coherence* (a few heavy rows that uniform row
  sampling misses but leverage-score sampling finds).
* :func:`make_regression_problem` - a planted instance of the normalized
  regression problem ``min_x 1/2 ||phi(A x)/<phi(A x), 1> - b||^2`` for the
  ``resnet``, ``softmax``, ``cosh`` and ``sinh`` links.
* :func:`make_classification_problem` - multinomial (softmax) classification
  data with labels sampled from a planted linear model.
"""

import math
import numbers
from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp

from ._kernels.random import sample_distinct_columns
from ._validation import check_random_state
from .exceptions import InputError

__all__ = [
    "LINKS",
    "PlantedProblem",
    "SparseMatrixInfo",
    "make_classification_problem",
    "make_regression_problem",
    "make_sparse_matrix",
]

#: Links supported by :func:`make_regression_problem`.
LINKS = ("resnet", "softmax", "cosh", "sinh")

# Uniforms for the column sampler are drawn in blocks of about this many
# entries, so peak extra memory stays ~32 MB whatever n is. The block size
# depends only on the arguments, so the output does not depend on it.
_BLOCK_ENTRIES = 1 << 22

# Norm factor of the heavy rows per unit of ``coherence``.
_HEAVY_FACTOR = 1e3

_DEFAULT_NNZ_PER_ROW = 10
_MAX_ALPHA_RETRIES = 10


# ----------------------------------------------------------------------------
# argument checking
# ----------------------------------------------------------------------------

def _check_int(value, name, *, minimum=1):
    """Return ``value`` as an int >= ``minimum``; integral floats (``1e6``) are accepted."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise InputError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_real(value, name, *, positive=False, nonnegative=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise InputError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")
    return value


def _resolve_nnz_per_row(nnz_per_row, density, d, *, default):
    """Number of non-zeros per row from ``nnz_per_row`` or ``density``."""
    if nnz_per_row is not None and density is not None:
        raise InputError("give at most one of nnz_per_row and density, not both")
    if density is not None:
        density = _check_real(density, "density", positive=True)
        if density > 1:
            raise InputError(f"density must be in (0, 1], got {density}")
        return max(1, int(math.floor(density * d + 0.5)))
    if nnz_per_row is None:
        return min(default, d)
    k = _check_int(nnz_per_row, "nnz_per_row")
    if k > d:
        raise InputError(f"nnz_per_row={k} exceeds the number of columns d={d}")
    return k


def _column_scales(column_scale, d, rng):
    """``None`` or an array of ``d`` scales: a random permutation of ``geomspace(lo, hi, d)``."""
    if column_scale is None:
        return None
    if (isinstance(column_scale, (str, bytes)) or np.ndim(column_scale) != 1
            or len(column_scale) != 2):
        raise InputError(f"column_scale must be None or a (lo, hi) pair, got {column_scale!r}")
    lo = _check_real(column_scale[0], "column_scale[0]", positive=True)
    hi = _check_real(column_scale[1], "column_scale[1]", positive=True)
    if lo > hi:
        raise InputError(f"column_scale=(lo, hi) needs lo <= hi, got ({lo}, {hi})")
    scales = np.geomspace(lo, hi, d) if d > 1 else np.array([math.sqrt(lo * hi)])
    return scales[rng.permutation(d)]


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise InputError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


# ----------------------------------------------------------------------------
# sparse matrices
# ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SparseMatrixInfo:
    """How a matrix from :func:`make_sparse_matrix` was built.

    The matrix is ``A = A0 @ diag(column_scale)``, where the rows of ``A0``
    are standard normal on their support, except the heavy rows.

    Attributes
    ----------
    nnz_per_row : int
        Non-zeros in every row.
    column_scale : ndarray of shape (d,)
        Column scales (all ones when ``column_scale=None``).
    heavy_rows : ndarray of shape (n_heavy,), int64
        Indices of the heavy rows, increasing (empty without coherence).
    heavy_columns : ndarray of shape (n_heavy,), int64
        ``heavy_columns[h]`` is the private column of ``heavy_rows[h]``: no
        other row has a non-zero in it.
    heavy_norm : float
        Euclidean norm of every heavy row of ``A0``
        (``1e3 * coherence * sqrt(nnz_per_row)``; 0 without coherence).
    """

    nnz_per_row: int
    column_scale: np.ndarray
    heavy_rows: np.ndarray
    heavy_columns: np.ndarray
    heavy_norm: float

    @property
    def n_heavy(self):
        return int(self.heavy_rows.shape[0])


def _n_blocks(n_rows):
    return max(1, min(n_rows, 4 * numba.get_num_threads()))


def make_sparse_matrix(n, d, *, nnz_per_row=None, density=None, coherence=0.0,
                       n_heavy=None, column_scale=None, dtype=np.float64,
                       random_state=None, return_info=False):
    """Random sparse matrix with a fixed number of distinct columns per row.

    Every row has exactly ``k`` non-zeros in distinct columns drawn uniformly
    at random (``k = nnz_per_row``, or ``round(density * d)`` but at least 1);
    column indices are sorted within each row and unique. Values are standard
    normal, multiplied by the column scales when ``column_scale`` is given.

    **Coherence.** With ``coherence > 0`` the matrix gets ``n_heavy`` heavy
    rows, built as follows:

    1. ``n_heavy`` distinct *private* columns are drawn uniformly from
       ``range(d)``; the other ``d - n_heavy`` columns are *public*.
    2. ``n_heavy`` distinct heavy rows are drawn uniformly from ``range(n)``.
    3. Ordinary rows draw their ``k`` columns from the public columns only.
    4. Heavy row ``h`` has ``k - 1`` uniformly drawn public columns plus its
       own private column, which no other row touches. Its values are a
       standard normal vector normalised to norm exactly
       ``heavy_norm = 1e3 * coherence * sqrt(k)`` (``sqrt(k)`` is the
       root-mean-square norm of an ordinary row), then multiplied by the
       column scales like every other row.

    Each heavy row is then the only row in its private column, so its
    leverage score is exactly 1 (every spectral approximation of ``A^T A``
    must keep it), while uniform sampling of ``s`` rows picks it with
    probability only about ``s / n``. Its large norm also makes it dominate
    row-norm sampling. ``coherence`` only controls the norm: leverage is 1 for
    any ``coherence > 0``.

    Parameters
    ----------
    n, d : int
        Shape of the matrix, ``n, d >= 1``. Integral floats such as ``1e6``
        are accepted.
    nnz_per_row : int, optional
        Non-zeros per row, ``1 <= nnz_per_row <= d`` (``<= d - n_heavy`` with
        coherence). Default ``min(10, d)`` unless ``density`` is given.
    density : float in (0, 1], optional
        Alternative to ``nnz_per_row``: ``nnz_per_row = max(1, round(density * d))``.
    coherence : float >= 0, default 0
        0 means no heavy rows; otherwise heavy rows of norm
        ``1e3 * coherence * sqrt(nnz_per_row)`` (see above).
    n_heavy : int, optional
        Number of heavy rows when ``coherence > 0``; default
        ``min(10, max(1, d // 10), d - nnz_per_row, n)``. Must be left unset
        (or 0) when ``coherence == 0``.
    column_scale : (lo, hi) pair of positive floats, optional
        Scale column ``j`` by ``s_j``, where ``s`` is a random permutation of
        ``numpy.geomspace(lo, hi, d)``: log-uniformly spread over
        ``[lo, hi]`` with both ends attained, so the scaling alone has
        condition number exactly ``hi / lo``. E.g. ``(1e-2, 1e2)``.
    dtype : float32 or float64, default float64
        dtype of the values.
    random_state : None, int or numpy.random.Generator
    return_info : bool, default False
        Also return a :class:`SparseMatrixInfo` (heavy rows, private
        columns, column scales).

    Returns
    -------
    A : scipy.sparse.csr_matrix of shape (n, d)
        Sorted, unique indices (``has_canonical_format`` is set),
        ``nnz = n * nnz_per_row``. Indices and indptr are int32 when
        ``nnz < 2**31`` and int64 otherwise (scipy requires one index dtype
        for both arrays).
    info : SparseMatrixInfo
        Only if ``return_info=True``.

    Notes
    -----
    Columns are sampled with Floyd's algorithm in a numba kernel from
    uniforms drawn in Python, in blocks whose size depends only on the
    arguments: the result depends on the seed alone, not on the thread
    count. Memory is ``nnz * (itemsize + 4)`` bytes plus ``4 (n + 1)`` for
    indptr, plus a 32 MB scratch block. Cost is about 30 ns per non-zero
    on this 2-core machine (3 s for 1e8 non-zeros), dominated by numpy's
    single-threaded normal generator; the column kernel is ~10 ns per
    non-zero.
    """
    A, info = _make_sparse(n, d, nnz_per_row=nnz_per_row, density=density,
                           coherence=coherence, n_heavy=n_heavy,
                           column_scale=column_scale, dtype=dtype,
                           rng=check_random_state(random_state))
    return (A, info) if return_info else A


def _make_sparse(n, d, *, nnz_per_row, density, coherence, n_heavy, column_scale,
                 dtype, rng, default_nnz=_DEFAULT_NNZ_PER_ROW):
    n = _check_int(n, "n")
    d = _check_int(d, "d")
    k = _resolve_nnz_per_row(nnz_per_row, density, d, default=default_nnz)
    coherence = _check_real(coherence, "coherence", nonnegative=True)
    dtype = _check_dtype(dtype)

    if coherence == 0:
        if n_heavy is not None and _check_int(n_heavy, "n_heavy", minimum=0) > 0:
            raise InputError(
                "n_heavy > 0 requires coherence > 0 (coherence=0 means no heavy rows)")
        n_heavy = 0
    else:
        if d - k < 1:
            raise InputError(
                f"coherence > 0 needs at least one column besides the nnz_per_row={k} "
                f"columns of a row (private column per heavy row), but d={d}")
        if n_heavy is None:
            n_heavy = min(10, max(1, d // 10), d - k, n)
        else:
            n_heavy = _check_int(n_heavy, "n_heavy")
            if n_heavy > n:
                raise InputError(f"n_heavy={n_heavy} exceeds the number of rows n={n}")
            if n_heavy > d - k:
                raise InputError(
                    f"n_heavy={n_heavy} private columns leave d - n_heavy = {d - n_heavy} "
                    f"public columns, fewer than nnz_per_row={k}; "
                    f"need n_heavy <= d - nnz_per_row = {d - k}")

    nnz = n * k
    idx_dtype = np.int32 if nnz < 2**31 and d < 2**31 else np.int64

    # All randomness in a fixed order: scales, private columns, values,
    # column uniforms (in blocks), heavy rows.
    scales = _column_scales(column_scale, d, rng)
    if n_heavy:
        private = np.sort(rng.choice(d, size=n_heavy, replace=False)).astype(np.int64)
        public_mask = np.ones(d, dtype=bool)
        public_mask[private] = False
        colmap = np.flatnonzero(public_mask).astype(idx_dtype)
    else:
        private = np.empty(0, dtype=np.int64)
        colmap = np.arange(d, dtype=idx_dtype)
    m = colmap.shape[0]

    data = rng.standard_normal(nnz, dtype=dtype)
    indices = np.empty(nnz, dtype=idx_dtype)
    scale_arg = None if scales is None else scales.astype(dtype)
    rows_per_block = max(1, _BLOCK_ENTRIES // k)
    u_buf = np.empty(min(n, rows_per_block) * k)  # reused: no page faults per block
    for r0 in range(0, n, rows_per_block):
        r1 = min(n, r0 + rows_per_block)
        u = rng.random(out=u_buf[:(r1 - r0) * k])
        block = slice(r0 * k, r1 * k)
        sample_distinct_columns(u, k, m, colmap, indices[block], _n_blocks(r1 - r0))
        if scale_arg is not None:
            data[block] *= scale_arg[indices[block]]
    del u_buf, u

    heavy_norm = 0.0
    if n_heavy:
        heavy_norm = _HEAVY_FACTOR * coherence * math.sqrt(k)
        heavy_rows = np.sort(rng.choice(n, size=n_heavy, replace=False)).astype(np.int64)
        # Pair private columns with heavy rows at random.
        heavy_cols = private[rng.permutation(n_heavy)]
        g = rng.standard_normal((n_heavy, k))
        g *= heavy_norm / np.linalg.norm(g, axis=1, keepdims=True)
        for h in range(n_heavy):
            cols = np.empty(k, dtype=np.int64)
            cols[:k - 1] = colmap[rng.choice(m, size=k - 1, replace=False)]
            cols[k - 1] = heavy_cols[h]
            cols.sort()
            vals = g[h] if scales is None else g[h] * scales[cols]
            start = heavy_rows[h] * k
            indices[start:start + k] = cols
            data[start:start + k] = vals
    else:
        heavy_rows = np.empty(0, dtype=np.int64)
        heavy_cols = np.empty(0, dtype=np.int64)

    indptr = np.arange(0, nnz + 1, k, dtype=idx_dtype) if n else np.zeros(1, idx_dtype)
    A = sp.csr_matrix((data, indices, indptr), shape=(n, d), copy=False)
    A.has_sorted_indices = True
    A.has_canonical_format = True
    info = SparseMatrixInfo(
        nnz_per_row=k,
        column_scale=np.ones(d) if scales is None else scales,
        heavy_rows=heavy_rows,
        heavy_columns=heavy_cols,
        heavy_norm=heavy_norm,
    )
    return A, info


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


def _shifted_phi(z, link):
    """Return ``u = phi(z) * exp(-shift)`` (no overflow) for some shift >= 0 or any real.

    Only ``u / sum(u) = phi(z) / sum(phi(z))`` and the sign of ``sum(u)``
    are used, and both are unaffected by the positive factor.
    """
    if link == "softmax":
        return np.exp(z - z.max())
    if link == "resnet":
        s = max(float(z.max()), 0.0)
        return np.exp(z - s) + z * math.exp(-s)
    s = float(np.abs(z).max())
    e_plus = np.exp(z - s)
    e_minus = np.exp(-z - s)
    if link == "cosh":
        return 0.5 * (e_plus + e_minus)
    return 0.5 * (e_plus - e_minus)  # sinh


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
    n = _check_int(n, "n")
    if n < 2:
        raise InputError(f"n must be >= 2 so that z = A x_true has a standard deviation, got {n}")
    z_std = _check_real(z_std, "z_std", positive=True)
    noise = _check_real(noise, "noise", nonnegative=True)
    rng = check_random_state(random_state)
    A, info = _make_sparse(n, d, nnz_per_row=nnz_per_row, density=density,
                           coherence=coherence, n_heavy=n_heavy,
                           column_scale=column_scale, dtype=np.float64, rng=rng)
    if info.n_heavy and n - info.n_heavy < 2:
        raise InputError(
            f"need at least 2 ordinary rows besides the n_heavy={info.n_heavy} heavy rows")

    flipped = False
    for _ in range(_MAX_ALPHA_RETRIES):
        x = _draw_x(A, info, z_std, rng)
        z = A @ x
        u = _shifted_phi(z, link)
        alpha = float(u.sum())
        if not alpha > 0:
            x = -x
            z = -z
            u = _shifted_phi(z, link)
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
    n = _check_int(n, "n")
    if n < 2:
        raise InputError(f"n must be >= 2, got {n}")
    d = _check_int(d, "d")
    K = _check_int(n_classes, "n_classes", minimum=2)
    separation = _check_real(separation, "separation", nonnegative=True)
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
