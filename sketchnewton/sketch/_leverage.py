"""Leverage scores of ``M = D^{1/2} A`` and sampling probabilities.

The leverage score of row ``i`` is ``l_i = m_i^T (M^T M)^+ m_i``, the
squared norm of row ``i`` of an orthonormal basis of ``range(M)``; they lie
in ``[0, 1]`` and sum to ``rank(M)``. Rows with ``D_i = 0`` or no non-zeros
have score exactly 0.
"""

import numpy as np
import scipy.linalg as sla
from scipy.linalg.lapack import dpotrf, dtrcon

from .._blocks import Block, LocalBlocks, block_seed_rng
from .._kernels import n_chunks, with_single_threaded_blas
from .._kernels.leverage import (
    bucket_order,
    countsketch_csr_codes,
    countsketch_dense_sorted,
    csr_row_scores,
    dense_row_scores,
)
from .._matrix import as_data_matrix, over_row_ranges, row_block_size
from .._validation import check_choice, check_random_state, check_real, check_vector
from ..exceptions import InputError
from ._operators import check_sketch_size

__all__ = ["leverage_scores", "sampling_probabilities", "check_weights", "block_leverage_raw",
           "LEVERAGE_N_PROJECTIONS", "LEVERAGE_SKETCH_FACTOR"]

#: CountSketch rows per column of ``A`` for approximate scores: measured, a 4d-row
#: CountSketch gives spectral errors of leverage sampling indistinguishable from exact scores
LEVERAGE_SKETCH_FACTOR = 4
#: Gaussian projections (JL dimension) for approximate scores: sampling needs the scores
#: only up to a constant factor (k = 8: relative s.d. 0.5 per score, tempered by the 10%
#: uniform mix); rows short enough are scored exactly instead (``estimator="auto"``)
LEVERAGE_N_PROJECTIONS = 8
#: the price of one entry ``K[j_p, j_q]`` of the quadratic estimator in multiply-adds of the JL
#: sweep (a read at a random place of the d x d ``K`` against a streamed product with a row of
#: ``Z`` in cache), while ``K`` fits a core's 1 MiB L2 cache and beyond. Measured on one thread
#: (load 6), 4e5 rows of 2 to 16 non-zeros: 3.8 to 7.4 for d = 15 to 250, 2.9 to 13 at d = 1000
QUADRATIC_ENTRY_COST = (4.0, 8.0)
#: ``"auto"`` takes the quadratic estimator unless its estimated cost is above this multiple of
#: the JL sweep's: over short rows (at most ~7 non-zeros) both sweeps are cheap and the exact
#: form is worth up to twice the price (JL's scores carry a relative s.d. of 0.5 at k = 8)
QUADRATIC_COST_MARGIN = 2.0
#: the sparse CountSketch runs on one thread when the sketch is larger than this: each thread
#: sums into a private sketch, and two private 8 MB sketches (d = 500) made the sweep slower
#: than one thread (n = 4e5, 50 non-zeros a row, load 5: 1.1-1.7 against 0.7-1.0 time-passes;
#: at d = 200, 1.3 MB sketches, two threads were as fast or faster)
PRIVATE_SKETCH_MAX_BYTES = 4 << 20
#: the sketch's ``R`` comes from a Cholesky factorization of its Gram (half the flops of a
#: Householder QR, all of them BLAS-3) when ``R``'s estimated condition number, columns scaled to
#: unit norm, is at most this: the Gram's rounding then moves the scores by a relative
#: ``~ d eps cond^2 <= 1e-3``; worse conditioned sketches take the QR
CHOLESKY_MAX_COND = 1e5


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


def _gram(SM):
    """``(S M)^T (S M)`` (d, d) of the C-ordered sketch: NumPy's SYRK (one BLAS thread each) over
    contiguous row ranges of ``S M`` in Python threads (:func:`over_row_ranges`), summed.

    The product (``s d^2`` multiply-adds) is most of the factorization's time. OpenBLAS's own
    threads halved it on an idle machine but, with the other core busy, took longer than one
    thread (108 against 85 ms, s = 4,000, d = 1,000) and kept spinning after it, on the core the
    score sweep then needed (104 against 72 ms); the row ranges cost neither.
    """
    def chunk(lo, hi):
        part = SM[lo:hi]
        return part.T @ part  # NumPy calls SYRK for a product with its own transpose

    parts = over_row_ranges(SM, chunk)
    G = parts[0]
    for part in parts[1:]:
        G += part
    return G


def _cholesky_r(SM):
    """``(R, c)`` with ``R^T R = C^{-1} (S M)^T (S M) C^{-1}``, ``C = diag(c)`` the column norms of
    ``S M``, when that is well conditioned (:data:`CHOLESKY_MAX_COND`); else None."""
    G = _gram(SM).T  # symmetric: the transpose is Fortran-ordered, what LAPACK takes without a copy
    c = np.sqrt(np.diag(G))
    if not c.min() > 0.0:
        return None
    G /= c[:, None]
    G /= c[None, :]
    R, info = dpotrf(G, lower=0, clean=1, overwrite_a=1)
    if info != 0:
        return None
    rc, info = dtrcon(R, norm="1", uplo="U", diag="N")
    if info != 0 or not rc * CHOLESKY_MAX_COND >= 1.0:
        return None
    return R, c


@with_single_threaded_blas
def sketch_factor(SM, rcond=None):
    """``R`` of the sketch ``S M`` (s, d), restricted to its numerical rank: ``(R, c, cols)``.

    ``M[:, cols] diag(1/c) R^{-1}`` has nearly orthonormal columns: ``R`` is
    (r, r) upper triangular, ``cols`` the ``r`` columns it belongs to, ``c``
    (r,) their scales (``r = 0`` when ``S M`` vanishes). In order of cost:
    Cholesky of the Gram of ``S M`` with unit columns (:data:`CHOLESKY_MAX_COND`;
    leverage scores do not depend on the columns' scales), an unpivoted
    Householder QR, and column pivoting (LAPACK geqp3) only when ``R`` looks
    numerically singular.
    """
    d = SM.shape[1]
    chol = _cholesky_r(SM)
    if chol is not None:
        return chol[0], chol[1], np.arange(d)
    tol = _default_rcond(SM.shape) if rcond is None else rcond
    R = sla.qr(SM, mode="r", check_finite=False)[0][:d]
    diag = np.abs(np.diag(R))
    if diag.size == d and diag.min() > tol * diag.max():
        perm = np.arange(d)
        r = d
    else:
        _, R, perm = sla.qr(SM, mode="economic", pivoting=True, check_finite=False)
        r = _rank_from_pivoted_r(R, tol)
    return R[:r, :r], np.ones(r), perm[:r]


def _r_inverse(R, c):
    """``diag(1/c) R^{-1}`` (the scores' metric is its Gram)."""
    Rinv = sla.solve_triangular(R, np.eye(R.shape[0]), lower=False, check_finite=False)
    return Rinv / c[:, None]


def _dense_row_norms(X, Z, w):
    """``min(||x_i^T Z||^2, 1 / w_i)`` for every row of the dense ``X``: one sweep of
    :func:`dense_row_scores` over a C-ordered ``X``, else (Fortran order) BLAS by cache-sized
    blocks of rows."""
    n = X.shape[0]
    if X.flags.c_contiguous:
        k = Z.shape[1]
        Zt = np.zeros((-(-k // 4) * 4, Z.shape[0]))  # the kernel takes four columns at a time
        Zt[:k] = Z.T
        return dense_row_scores(X, Zt, w, np.empty(n))
    out = np.empty(n)
    step = row_block_size(X.shape[1])

    def chunk(lo, hi):
        for a in range(lo, hi, step):
            b = min(hi, a + step)
            Y = X[a:b] @ Z
            h = np.einsum("ij,ij->i", Y, Y)
            wb = w[a:b]
            over = wb * h > 1.0
            h[over] = 1.0 / wb[over]
            out[a:b] = h

    over_row_ranges(X, chunk)
    return out


def _sparse_row_norms(M, Z, w):
    """``min(||a_i^T Z||^2, 1 / w_i)`` for every row of the sparse DataMatrix ``M``: one sweep,
    no ``A Z``."""
    k = Z.shape[1]
    kp = -(-k // 8) * 8  # the kernel takes eight columns at a time
    Zp = np.zeros((Z.shape[0], kp))
    Zp[:, :k] = Z
    return csr_row_scores(*M.kernel_csr, Zp.ravel(), kp, False, w, np.empty(M.n))


def _code_type(s_cs):
    """The narrowest unsigned integer type holding the CountSketch codes ``< 2 s_cs``."""
    for t in (np.uint16, np.uint32):
        if 2 * s_cs <= np.iinfo(t).max + 1:
            return t
    return np.uint64


def _countsketch_task(blk, weights, s_cs, seed):
    """``S diag(sqrt(w)) A`` of the block, with its own CountSketch (one sweep)."""
    M = blk.leverage_matrix
    # one draw per row: bucket = code >> 1, sign = code & 1 (the narrowest type: uint16 draws
    # in 2/3 of int64's time)
    codes = block_seed_rng(seed, blk.index).integers(0, 2 * s_cs, M.n, dtype=_code_type(s_cs))
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if M.is_sparse:
        indptr, indices, data = M.kernel_csr
        size = s_cs * M.d
        threads = n_chunks() if 8 * size <= PRIVATE_SKETCH_MAX_BYTES else 1
        parts = countsketch_csr_codes(indptr, indices, data, w, codes, M.d,
                                      np.zeros((threads, size)))  # one sketch per thread
        out = parts[0]
        for part in parts[1:]:
            out += part
        return out.reshape(s_cs, M.d)
    starts, order = bucket_order(w, codes, s_cs)
    return countsketch_dense_sorted(M.dense, w, codes, starts, order, np.zeros((s_cs, M.d)))


def _raw_task(blk, weights, Z, K):
    """``h_i = l_i / D_i`` of the block's rows (one sweep): ``a_i^T K a_i`` (exact quadratic
    form) or ``||a_i^T Z||^2`` (JL projection), at most ``1 / D_i`` (a leverage score is at most
    1). Kept for rows with ``D_i = 0`` too: their weight may turn positive later."""
    M = blk.leverage_matrix
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if K is not None:
        return csr_row_scores(*M.kernel_csr, K.ravel(), K.shape[0], True, w, np.empty(M.n))
    if M.is_sparse:
        return _sparse_row_norms(M, Z, w)
    return _dense_row_norms(M.dense, Z, w)


def _choose_estimator(blocks, k):
    """``"quadratic"`` when its sweep (``nnz_i (nnz_i + 1) / 2`` entries of ``K`` per row at
    :data:`QUADRATIC_ENTRY_COST` each) and the ``d^3 / 3`` multiply-adds of ``K`` cost at most
    :data:`QUADRATIC_COST_MARGIN` times the JL sweep's ``k nnz_i`` multiply-adds (``k`` rounded
    up to the kernel's eight), else ``"jl"``."""
    d = blocks.d
    if not blocks.is_sparse:
        return "quadratic" if d <= k else "jl"
    entry = QUADRATIC_ENTRY_COST[0 if 8 * d * d <= 1 << 20 else 1]
    budget = QUADRATIC_COST_MARGIN * -(-k // 8) * 8 * blocks.nnz

    def quadratic(squares):
        return entry * (squares + blocks.nnz) / 2 + d ** 3 / 3

    # sum_i nnz_i^2 >= nnz^2 / n: rows of many non-zeros on average are decided without the
    # sum (a sweep over the row pointers, 0.2 time-passes at n = 1e6, 10 non-zeros a row)
    if quadratic(float(blocks.nnz) ** 2 / blocks.n) > budget:
        return "jl"
    return "quadratic" if quadratic(blocks.row_nnz_squares()) <= budget else "jl"


def block_leverage_raw(blocks, weights, rng, *, sketch_size=None, n_projections=None,
                       estimator="auto", rcond=None):
    """Approximate ``h_i = l_i / D_i = a_i^T (A^T D A)^+ a_i`` of every row, block by block.

    The leverage score of row ``i`` of ``D^{1/2} A`` is ``l_i = D_i h_i``;
    ``h`` changes only by a bounded factor when ``D`` does, so a sampler can
    reuse it across Newton iterations with the current weights (docs/math.md
    section 5.4). Drineas, Magdon-Ismail, Mahoney & Woodruff (2012), in two
    sweeps over ``A`` (one pass):

    1. CountSketch ``S D^{1/2} A`` with ``sketch_size`` rows (default
       ``4 d``), summed over the blocks (each block hashes its own rows);
    2. ``R`` with ``R^T R = (S D^{1/2} A)^T (S D^{1/2} A)``, restricted to its
       numerical rank (:func:`sketch_factor`; no sweep);
    3. per row, ``a_i^T R^{-1} R^{-T} a_i`` (``estimator="quadratic"``, exact
       given ``R``) or ``||a_i^T R^{-1} G||^2`` with a Gaussian ``G`` of
       ``n_projections`` columns (``"jl"``; relative s.d. ``sqrt(2/k)``),
       at most ``1 / D_i``: ``l_i <= 1``, and a larger estimate is certainly
       wrong (two rows of leverage ~1 hashed to the same bucket are estimated
       thousands of times too high, which would shrink every other row's
       share of a sample). ``"auto"``: the cheaper of the two for the rows'
       lengths (:func:`_choose_estimator`).

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
                               args=(s_cs, int(rng.integers(2**63 - 1))), sweeps=1), fresh=True,
                    nbytes=8 * s_cs * d)
    dl = SM.shape[1]  # columns of the leverage matrix (no intercept column)
    if s_cs < dl:
        raise InputError(f"sketch_size for approximate leverage scores must be >= d = {dl}, "
                         f"got {s_cs}")
    R, c, cols = sketch_factor(SM, rcond)
    r = cols.shape[0]
    if estimator == "auto":
        estimator = _choose_estimator(blocks, k)
    Z = K = None
    if r == 0:
        Z = np.zeros((dl, 1))
    elif estimator == "quadratic" and blocks.is_sparse:
        Rinv = _r_inverse(R, c)
        K = np.zeros((dl, dl))
        K[np.ix_(cols, cols)] = Rinv @ Rinv.T
    elif estimator == "quadratic":
        Z = np.zeros((dl, r))
        Z[cols] = _r_inverse(R, c)
    else:
        G = rng.standard_normal((r, k)) / np.sqrt(k)
        Z = np.zeros((dl, k))
        Z[cols] = sla.solve_triangular(R, G, lower=False, check_finite=False) / c[:, None]
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
        In ``[0, 1]`` (approximate scores above 1 are lowered to 1: they are
        certainly overestimated). Zero for rows with ``D_i = 0`` or no
        non-zeros.
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
