"""Leverage scores of ``M = D^{1/2} A`` and sampling probabilities.

The leverage score of row ``i`` is ``l_i = m_i^T (M^T M)^+ m_i``, the
squared norm of row ``i`` of an orthonormal basis of ``range(M)``; they lie
in ``[0, 1]`` and sum to ``rank(M)``. Rows with ``D_i = 0`` or no non-zeros
have score exactly 0.
"""

import numpy as np
import scipy.linalg as sla

from .._kernels.sketch import csr_projected_rownorms, csr_row_quadforms
from .._kernels import with_single_threaded_blas
from .._matrix import as_data_matrix, over_row_ranges, row_block_size
from .._validation import check_random_state, check_vector
from ..exceptions import InputError
from ._operators import SketchSettings, _n_chunks, check_sketch_size

__all__ = ["leverage_scores", "sampling_probabilities", "check_weights"]

#: default CountSketch rows per column of ``A`` for approximate scores
LEVERAGE_SKETCH_FACTOR = 4
#: default number of Gaussian projections (JL dimension) for approximate scores
LEVERAGE_N_PROJECTIONS = 16


def check_weights(weights, n, name="weights"):
    """Validate non-negative finite diagonal weights of length ``n``."""
    if weights is None:
        return np.ones(n)
    w = check_vector(weights, name, n)
    if np.any(w < 0):
        neg = np.flatnonzero(w < 0)
        raise InputError(f"{name} must be >= 0; {neg.size} negative entries "
                         f"(first at index {neg[0]}: {w[neg[0]]})")
    return w


def _rank_from_pivoted_r(R, rcond):
    diag = np.abs(np.diag(R))
    if diag.size == 0 or diag[0] == 0.0:
        return 0
    return int(np.count_nonzero(diag > rcond * diag[0]))


def _default_rcond(shape):
    return max(shape) * np.finfo(np.float64).eps


@with_single_threaded_blas
def sketch_r_inverse(SM, rcond=None):
    """``R^{-1}`` of the QR of a sketch ``S M`` (s, d), restricted to its numerical rank.

    Returns ``(Rinv, cols)``: ``Rinv`` (r, r) and the ``r`` pivoted columns it
    belongs to (``r = 0`` when ``S M`` vanishes). An unpivoted Householder QR
    is tried first; column pivoting (LAPACK geqp3, several times slower) only
    when ``R`` looks numerically singular.
    """
    d = SM.shape[1]
    tol = _default_rcond(SM.shape) if rcond is None else rcond
    R = sla.qr(SM, mode="r", check_finite=False)[0][:d]
    diag = np.abs(np.diag(R))
    if diag.size == d and diag.min() > tol * diag.max():
        perm = np.arange(d)
        r = d
    else:
        _, R, perm = sla.qr(SM, mode="economic", pivoting=True, check_finite=False)
        r = _rank_from_pivoted_r(R, tol)
    if r == 0:
        return np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
    return sla.solve_triangular(R[:r, :r], np.eye(r), lower=False), perm[:r]


def projected_row_norms(dm, w, Z):
    """``w_i ||a_i^T Z||^2`` for every row of the DataMatrix ``dm``, without storing ``A Z``.

    ``w`` (n,) non-negative weights, ``Z`` (d, k). O(nnz k) for sparse ``dm``.
    """
    n = dm.shape[0]
    if dm.is_sparse:
        c = dm.csr
        return csr_projected_rownorms(c.indptr, c.indices, c.data, np.sqrt(w), np.ascontiguousarray(Z),
                                      _n_chunks())
    out = np.empty(n)
    step = row_block_size(dm.shape[1])

    def chunk(lo, hi):
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            Y = dm.dense[a:b] @ Z
            out[a:b] = w[a:b] * np.einsum("ij,ij->i", Y, Y)

    over_row_ranges(dm.dense, chunk)
    return out


def leverage_scores(A, weights=None, *, method="approx", sketch_size=None,
                    n_projections=None, estimator="auto", rcond=None, random_state=None):
    """Leverage scores of ``M = diag(sqrt(weights)) @ A``.

    Parameters
    ----------
    A : scipy sparse, DataMatrix or array of shape (n, d)
    weights : array of shape (n,), optional
        Non-negative diagonal ``D`` (default: all ones).
    method : {"approx", "exact"}
        ``"exact"``: column-pivoted QR of the dense ``M`` (``O(n d^2)`` time,
        ``O(n d)`` memory; small problems and tests).
        ``"approx"``: Drineas, Magdon-Ismail, Mahoney & Woodruff (2012):

        1. CountSketch ``S M`` with ``sketch_size`` rows (default ``4 d``),
           ``O(nnz(A))``;
        2. column-pivoted QR ``S M P = Q R``, ``O(sketch_size d^2)``;
        3. scores relative to ``R``: ``l~_i = ||m_i^T P R^{-1}||^2``, by one of
           two estimators (``estimator``):

           * ``"quadratic"``: ``l~_i = m_i^T K m_i`` with
             ``K = P R^{-1} R^{-T} P^T`` (d x d), a numba kernel reading
             ``nnz_i^2 / 2`` entries of ``K`` per row; no projection noise.
             Cost ``O(sum_i nnz_i^2)``: cheap for short rows.
           * ``"jl"`` (DMMW's second projection): ``Z = P R^{-1} G`` with a
             Gaussian ``G`` of shape (rank, k), entries ``N(0, 1/k)``, and
             ``l~_i = ||m_i^T Z||^2`` computed row by row (``A Z`` is never
             stored), ``O(nnz(A) k)``. Each score has relative standard
             deviation ``sqrt(2/k)``.
           * ``"auto"`` (default): ``"quadratic"`` for sparse ``A`` when
             ``mean(nnz_i^2) <= k mean(nnz_i)`` (rows of at most about ``k``
             non-zeros), else ``"jl"``.

        Total ``O(nnz(A) min(k, nnz_row) + sketch_size d^2 + d^3)``.
        Measured on the benchmark matrices, a 4d-row CountSketch gives
        spectral errors of leverage sampling indistinguishable from exact
        scores; the JL noise is what matters: ``k = 8`` raised the error at
        ``s = 30 d`` from 0.47 to 0.77, ``k = 16`` with 10-20% uniform mixing
        (:func:`sampling_probabilities`) brings it back to about 0.5.
    sketch_size : int, optional
        CountSketch rows for ``method="approx"`` (>= d; default ``4 d``).
    n_projections : int, optional
        JL dimension ``k`` for ``method="approx"`` (default 16).
    estimator : {"auto", "quadratic", "jl"}
        How the scores relative to ``R`` are computed (see above).
    rcond : float, optional
        Relative tolerance on the pivots of ``R`` for the numerical rank
        (default ``max(shape) * machine eps``). Rank-deficient ``M`` (zero or
        collinear columns, rows removed by ``D_i = 0``) is handled by keeping
        only the ``rank`` leading pivoted columns: the scores are those of
        ``range(M)`` and sum to ``rank(M)`` (exact) or approximately so.
    random_state : None, int or numpy Generator

    Returns
    -------
    scores : ndarray of shape (n,)
        In ``[0, 1]`` for the exact method (approximate scores may exceed 1
        slightly). Zero for rows with ``D_i = 0`` or no non-zeros.
    """
    dm = as_data_matrix(A)
    n, d = dm.shape
    w = check_weights(weights, n)
    sw = np.sqrt(w)
    if method not in ("approx", "exact"):
        raise InputError(f"unknown leverage method {method!r}; expected 'approx' or 'exact'")
    if estimator not in ("auto", "jl", "quadratic"):
        raise InputError(f"unknown estimator {estimator!r}; expected 'auto', 'jl' or 'quadratic'")
    if method == "exact":
        M = dm.csr.toarray() if dm.is_sparse else dm.dense.copy()
        M *= sw[:, None]
        Q, R, _ = sla.qr(M, mode="economic", pivoting=True)
        r = _rank_from_pivoted_r(R, _default_rcond(M.shape) if rcond is None else rcond)
        Q = Q[:, :r]
        return np.einsum("ij,ij->i", Q, Q)

    rng = check_random_state(random_state)
    s_cs = LEVERAGE_SKETCH_FACTOR * d if sketch_size is None else check_sketch_size(sketch_size)
    if s_cs < d:
        raise InputError(f"sketch_size for approximate leverage scores must be >= d = {d}, "
                         f"got {s_cs}")
    k = LEVERAGE_N_PROJECTIONS if n_projections is None else check_sketch_size(
        n_projections, "n_projections")
    S = SketchSettings("countsketch", s_cs).draw(rng, n=n)
    SM = S.apply(dm, row_scale=sw)
    Rinv, cols = sketch_r_inverse(SM, rcond)
    r = cols.shape[0]
    if r == 0:
        return np.zeros(n)
    if estimator == "auto":
        if dm.is_sparse:
            rn = dm.row_nnz().astype(np.float64)
            estimator = "quadratic" if float(rn @ rn) <= k * float(rn.sum()) else "jl"
        else:
            estimator = "quadratic" if d <= k else "jl"
    if estimator == "quadratic":
        if dm.is_sparse:
            K = np.zeros((d, d))
            K[np.ix_(cols, cols)] = Rinv @ Rinv.T
            c = dm.csr
            return csr_row_quadforms(c.indptr, c.indices, c.data, sw, K)
        Z = np.zeros((d, r))
        Z[cols] = Rinv
    else:
        G = rng.standard_normal((r, k)) / np.sqrt(k)
        Z = np.zeros((d, k))
        Z[cols] = Rinv @ G
    return projected_row_norms(dm, w, Z)


def sampling_probabilities(scores, *, uniform_mix=0.0):
    """Row-sampling distribution from (approximate) leverage scores.

    ``p_i = (1 - beta) l_i / sum(l) + beta / n_+ * [l_i > 0]``, where
    ``beta = uniform_mix`` and ``n_+`` the number of rows with a positive
    score. Mixing with the uniform distribution on the support bounds the
    variance caused by underestimated scores; ``beta = 0`` (default) uses
    the scores as they are. Rows with score 0 get probability 0 (they do
    not contribute to ``M^T M``).

    Parameters
    ----------
    scores : array of shape (n,), non-negative
    uniform_mix : float in [0, 1]

    Returns
    -------
    p : ndarray of shape (n,), sums to 1
    """
    l = check_vector(scores, "scores")
    if np.any(l < 0):
        raise InputError(f"scores must be >= 0; {int((l < 0).sum())} negative entries")
    if not 0.0 <= uniform_mix <= 1.0:
        raise InputError(f"uniform_mix must be in [0, 1], got {uniform_mix}")
    tot = l.sum()
    if not tot > 0:
        raise InputError("all leverage scores are zero (the weighted matrix is zero)")
    p = l / tot
    if uniform_mix > 0:
        support = l > 0
        p = (1.0 - uniform_mix) * p + uniform_mix * support / np.count_nonzero(support)
    return p
