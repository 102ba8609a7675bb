"""Leverage scores of ``M = D^{1/2} A`` and sampling probabilities.

The leverage score of row ``i`` is ``l_i = m_i^T (M^T M)^+ m_i``, the
squared norm of row ``i`` of an orthonormal basis of ``range(M)``; they lie
in ``[0, 1]`` and sum to ``rank(M)``. Rows with ``D_i = 0`` or no non-zeros
have score exactly 0.
"""

import numpy as np
import scipy.linalg as sla

from .._blocks import Block, LocalBlocks, block_seed_rng
from .._kernels import n_chunks, with_single_threaded_blas
from .._kernels.sketch import csr_projected_rownorms, csr_row_quadforms
from .._matrix import as_data_matrix, over_row_ranges, row_block_size
from .._validation import check_choice, check_random_state, check_real, check_vector
from ..exceptions import InputError
from ._operators import check_sketch_size
from ._settings import SketchSettings

__all__ = ["leverage_scores", "sampling_probabilities", "check_weights", "block_leverage_raw",
           "LEVERAGE_N_PROJECTIONS", "LEVERAGE_SKETCH_FACTOR"]

#: CountSketch rows per column of ``A`` for approximate scores: measured, a 4d-row
#: CountSketch gives spectral errors of leverage sampling indistinguishable from exact scores
LEVERAGE_SKETCH_FACTOR = 4
#: Gaussian projections (JL dimension) for approximate scores: sampling needs the scores
#: only up to a constant factor (k = 8: relative s.d. 0.5 per score, tempered by the 10%
#: uniform mix); rows short enough are scored exactly instead (``estimator="auto"``)
LEVERAGE_N_PROJECTIONS = 8


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
                                      n_chunks())
    out = np.empty(n)
    step = row_block_size(dm.shape[1])

    def chunk(lo, hi):
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            Y = dm.dense[a:b] @ Z
            out[a:b] = w[a:b] * np.einsum("ij,ij->i", Y, Y)

    over_row_ranges(dm.dense, chunk)
    return out


def _countsketch_task(blk, weights, s_cs, seed):
    M = blk.leverage_matrix
    S = SketchSettings("countsketch", s_cs).draw(block_seed_rng(seed, blk.index), n=M.n)
    return S.apply(M, row_scale=np.sqrt(weights))


def _raw_task(blk, weights, Z, K):
    """``h_i = l_i / D_i`` of the block's rows: ``a_i^T K a_i`` (exact quadratic form) or
    ``||a_i^T Z||^2`` (JL projection)."""
    M = blk.leverage_matrix
    if K is not None:
        c = M.csr
        quad = csr_row_quadforms(c.indptr, c.indices, c.data, np.ones(M.n), K)
    else:
        quad = projected_row_norms(M, np.ones(M.n), Z)
    return quad  # kept for rows with D_i = 0 too: their weight may turn positive later


def _choose_estimator(blocks, k):
    """``"quadratic"`` when reading ``nnz_i^2 / 2`` entries of a d x d matrix per row costs no
    more than the ``k nnz_i`` of the JL projection, else ``"jl"``."""
    if blocks.is_sparse:
        return "quadratic" if blocks.row_nnz_squares() <= 2 * k * blocks.nnz else "jl"
    return "quadratic" if blocks.d <= k else "jl"


def block_leverage_raw(blocks, weights, rng, *, sketch_size=None, n_projections=None,
                       estimator="auto", rcond=None):
    """Approximate ``h_i = l_i / D_i = a_i^T (A^T D A)^+ a_i`` of every row, block by block.

    The leverage score of row ``i`` of ``D^{1/2} A`` is ``l_i = D_i h_i``;
    ``h`` changes only by a bounded factor when ``D`` does, so a sampler can
    reuse it across Newton iterations with the current weights (docs/math.md
    section 5.4). Drineas, Magdon-Ismail, Mahoney & Woodruff (2012):

    1. CountSketch ``S D^{1/2} A`` with ``sketch_size`` rows (default
       ``4 d``), summed over the blocks (each block hashes its own rows);
    2. ``R`` from the QR of the sketch, restricted to its numerical rank;
    3. per row, ``a_i^T R^{-1} R^{-T} a_i`` (``estimator="quadratic"``, exact
       given ``R``) or ``||a_i^T R^{-1} G||^2`` with a Gaussian ``G`` of
       ``n_projections`` columns (``"jl"``; relative s.d. ``sqrt(2/k)``).
       ``"auto"``: the cheaper of the two for the rows' lengths.

    Parameters
    ----------
    blocks : RowBlocks
    weights : list of per-block handles of arrays (n_j,), ``D >= 0``
    rng : numpy Generator

    Returns
    -------
    list of per-block handles of arrays (n_j,)
    """
    d = blocks.d
    s_cs = LEVERAGE_SKETCH_FACTOR * d if sketch_size is None else check_sketch_size(sketch_size)
    k = LEVERAGE_N_PROJECTIONS if n_projections is None else check_sketch_size(
        n_projections, "n_projections")
    check_choice(estimator, "estimator", ("auto", "jl", "quadratic"))
    SM = blocks.sum(blocks.map(_countsketch_task, weights,
                               args=(s_cs, int(rng.integers(2**63 - 1))), sweeps=1), fresh=True)
    dl = SM.shape[1]  # columns of the leverage matrix (no intercept column)
    if s_cs < dl:
        raise InputError(f"sketch_size for approximate leverage scores must be >= d = {dl}, "
                         f"got {s_cs}")
    Rinv, cols = sketch_r_inverse(SM, rcond)
    r = cols.shape[0]
    if estimator == "auto":
        estimator = _choose_estimator(blocks, k)
    Z = K = None
    if r == 0:
        Z = np.zeros((dl, 1))
    elif estimator == "quadratic" and blocks.is_sparse:
        K = np.zeros((dl, dl))
        K[np.ix_(cols, cols)] = Rinv @ Rinv.T
    elif estimator == "quadratic":
        Z = np.zeros((dl, r))
        Z[cols] = Rinv
    else:
        Z = np.zeros((dl, k))
        Z[cols] = Rinv @ (rng.standard_normal((r, k)) / np.sqrt(k))
    return blocks.map(_raw_task, weights, args=(Z, K), sweeps=1)  # the per-row scores


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
        ``O(n d)`` memory; small problems and tests). ``"approx"``: the
        pipeline of :func:`block_leverage_raw` (the one the Newton driver
        uses), ``O(nnz(A) min(k, nnz_row) + sketch_size d^2 + d^3)``.
    sketch_size : int, optional
        CountSketch rows for ``method="approx"`` (>= d; default ``4 d``).
    n_projections : int, optional
        JL dimension ``k`` for ``method="approx"`` (default 8).
    estimator : {"auto", "quadratic", "jl"}
        How the scores relative to ``R`` are computed (see
        :func:`block_leverage_raw`).
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
    w = check_weights(weights, dm.n)
    check_choice(method, "leverage method", ("approx", "exact"))
    check_choice(estimator, "estimator", ("auto", "jl", "quadratic"))
    rcond = check_real(rcond, "rcond", positive=True, allow_none=True)
    if method == "exact":
        sw = np.sqrt(w)
        M = dm.csr.toarray() if dm.is_sparse else np.array(dm.dense, dtype=np.float64)
        M *= sw[:, None]
        Q, R, _ = sla.qr(M, mode="economic", pivoting=True)
        r = _rank_from_pivoted_r(R, _default_rcond(M.shape) if rcond is None else rcond)
        Q = Q[:, :r]
        return np.einsum("ij,ij->i", Q, Q)
    rng = check_random_state(random_state)
    blocks = LocalBlocks(Block(dm))
    raw = block_leverage_raw(blocks, [w], rng, sketch_size=sketch_size,
                             n_projections=n_projections, estimator=estimator, rcond=rcond)[0]
    return raw * w


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
    uniform_mix = check_real(uniform_mix, "uniform_mix", nonnegative=True, maximum=1.0)
    tot = l.sum()
    if not tot > 0:
        raise InputError("all leverage scores are zero (the weighted matrix is zero)")
    p = l / tot
    if uniform_mix > 0:
        support = l > 0
        p = (1.0 - uniform_mix) * p + uniform_mix * support / np.count_nonzero(support)
    return p
