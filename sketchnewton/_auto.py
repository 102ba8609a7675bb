"""The cost model behind ``method="auto"``: exact, dual, sketch-preconditioned CG or Newton-CG.

Costs are in *passes*: the time of one gradient evaluation's sweep over the
non-zeros of ``A``. The constants below were measured on the 2-core machine of
``benchmarks/RESULTS.md`` and are fixed (not timed at run time), so that
``auto`` makes the same choice on every run and results stay reproducible for
a fixed seed.
"""

import numpy as np

from .hessian import spread

__all__ = ["choose_method", "choose_prox", "matrix_free_prox", "PROX_GRAM_RATIO", "method_costs",
           "factorization_passes", "matrix_free_rebuild_passes", "product_passes",
           "subsample_start", "kronecker_passes", "JACOBI_MIN_SPREAD", "presolve_rows", "sampled_gram_passes", "leverage_passes",
           "restricted_max", "FACE_PASSES", "CONFIRM_FACE_PASSES"]

#: largest dense (p x p) Hessian model or (n x n) dual system ``auto`` considers: 2 GiB
DENSE_BYTES = 2 << 30
#: dense flops (LAPACK Cholesky, one thread: the driver runs BLAS single-threaded next to the
#: numba kernels) that take as long as one pass per non-zero of ``A``: a pass costs 2-3 ns per
#: non-zero on two threads, the Cholesky runs at 15-20 GFlop/s on one
FLOPS_PER_PASS = 40.0
#: CG iterations per Newton step with a matrix-free preconditioner: 21 (C = 1) to 40 (C = 100)
#: on one-hot a9a with Jacobi, 18-53 on the multinomial code corpus (p = 32,776)
CG_PER_NEWTON = 30
#: the same with a ridge and evenly scaled features (spread below ``JACOBI_MIN_SPREAD``): 4-7 on
#: the binary code corpus (n = 4,000-10,000, p = 128-16,384, C = 1)
CG_PER_NEWTON_EVEN = 8
#: the Jacobi preconditioner pays when the q90 / q10 of the Hessian's diagonal exceeds this;
#: measured (C = 1, 100): one-hot and count features (a9a: spread 460-530, w8a: 180-200) need
#: half the products with it; row-normalised tf-idf (spread 1.2-4.8) 1.5x more
JACOBI_MIN_SPREAD = 10.0
#: seconds of one pass per non-zero (2-3 ns on two threads, calibration machine) and the fixed
#: Python cost of a Newton iteration (line search, checks: ~1 ms) and of a CG iteration
#: (~50 us), converted into passes: on tiny problems they decide, and favour few iterations
PASS_SECONDS_PER_NNZ = 2.5e-9
NEWTON_OVERHEAD_S = 1e-3
CG_OVERHEAD_S = 5e-5
#: CG iterations per Newton step with the Kronecker-factored preconditioner of the multinomial
#: Hessian (docs/math.md 8.7) on dense data: 16 on a planted probe (n = 20,000, d = 128, K = 50),
#: 15.5 at n = 100,000, d = 256, K = 100 (C = 1, tol 1e-8)
CG_PER_NEWTON_KRON = 15
#: share of the rows the Hessian products of sub-sampled Newton start from (at least
#: ``SUBSAMPLE_MIN_ROWS_PER_FEATURE`` rows per feature)
SUBSAMPLE_START = 0.1
SUBSAMPLE_MIN_ROWS_PER_FEATURE = 10
#: with 50 rows per class (probe n = 50,000, K = 100) the sampled Hessian's steps overshot and
#: were halved at 13 iterations in a row; 100 per class is a guess above it (the sample grows
#: after halved steps anyway)
SUBSAMPLE_MIN_ROWS_PER_CLASS = 100
#: cost of a multinomial Hessian-vector product in float32 BLAS (``precise=False``, the products
#: of sub-sampled Newton on float32 data) against the float64 one: 0.50-0.59 measured at
#: n = 20,000, d = 128, K = 1,000 and n = 50,000, d = 256, K = 100 (one thread)
FLOAT32_PRODUCT = 0.6
#: fixed cost of one weighted Gram of sampled dense rows (the gather of the rows, the row block
#: loop): 5.7 ms for 1,280 x 65 rows, where its flops take 0.5 ms (probe n = 5,000, K = 20)
GRAM_CALL_S = 5e-3
#: Newton iterations assumed by every method (exact and dual: this many; the inexact ones: one or
#: two more)
NEWTON_ITERS = 5


def choose_method(loss, sketch_size=None):
    """``(method, preconditioner)`` for ``method="auto"``: the cheapest of :func:`method_costs`.

    The preconditioner of ``"cg"`` is ``"auto"`` (the strategy keeps the Jacobi one when the
    Hessian's diagonal is spread and drops it otherwise, ``JACOBI_MIN_SPREAD``), or
    ``"kronecker"`` when that entry of the costs wins; ``"subsampled"`` uses ``"kronecker"``.
    """
    costs = method_costs(loss, sketch_size)
    method, _, preconditioner = min(costs, key=costs.get).partition(":")
    if method == "cg":
        return method, preconditioner or "auto"
    return method, preconditioner or None


#: the Gram form of proximal Newton is chosen while ``p^2`` is at most this many times
#: ``nnz(A)`` (a Gram sweep costs ``p`` per coordinate, a sweep on the data ``nnz / p``)
PROX_GRAM_RATIO = 4.0


def matrix_free_prox(loss):
    """Matrix-free proximal Newton (``"prox_cd"``) applies: in-memory data and a convex loss
    with a diagonal row curvature or softmax row blocks (the multinomial loss)."""
    return (loss.data.in_memory and tuple(loss.hessian_kinds) == ("full",)
            and (loss.diagonal_curvature or loss.softmax_curvature))


def choose_prox(loss):
    """The proximal Newton form for ``method="auto"`` with an L1 penalty.

    Both coordinate-descent forms make the same sweeps; a coordinate of the active set costs
    ``|W|`` with the Gram (``W`` the working set, at most ``p``) and the non-zeros of its column
    on the data (``nnz / d`` on average, ``d = p / K`` the columns, ``K`` classes). The Gram
    (exact, or sketched when the exact one is not affordable) is chosen while
    ``p d <= PROX_GRAM_RATIO nnz(A)`` (``p^2`` for one class) and its matrix fits
    (``DENSE_BYTES``), or when the matrix-free form does not apply (distributed data, dense
    ``A``, :func:`matrix_free_prox`).
    """
    data = loss.data
    p = loss.n_params
    fits = 8.0 * p * p <= DENSE_BYTES
    free = matrix_free_prox(loss) and data.is_sparse
    if free and (not fits or p * (p / loss.image_width) > PROX_GRAM_RATIO * float(data.nnz)):
        return "prox_cd"
    return "prox" if fits else "prox_sketch"


#: matrix-free proximal Newton factorizes a restricted Hessian ``H_FF`` (its face solve, ``|F|^3 /
#: 3`` flops) while that costs at most this many passes: on the code corpus (p = 16,384, 878,595
#: non-zeros) at 10% non-zeros, |F| = 1,626, each Cholesky was 42 passes (0.13 s) and they took
#: 1.6 s of a 2.6 s fit; without them 0.86 s, 11 outer iterations instead of 12
FACE_PASSES = 4.0
#: the same for the one face solve of a confirmation (``prox_cd``), whose alternative is
#: coordinate descent to ``1e-10`` (about 100 passes on the code corpus at 10% non-zeros)
CONFIRM_FACE_PASSES = 48.0


def restricted_max(loss, cap, passes=FACE_PASSES):
    """Largest free set (at most ``cap``) whose restricted Hessian matrix-free proximal Newton
    factorizes: ``|F|^3 / 3 <= passes`` model sweeps (``FLOPS_PER_PASS`` per non-zero and
    class: a sweep of the multinomial model reads each non-zero for each of its ``K`` classes)."""
    nnz = max(float(loss.data.nnz), 1.0) * loss.image_width
    return int(min(cap, (3.0 * passes * FLOPS_PER_PASS * nnz) ** (1.0 / 3.0)))


def _has_ridge(loss):
    """Every coefficient penalised, save at most one unpenalised intercept per class."""
    return float(np.max(loss.ridge, initial=0.0)) > 0.0


def _evenly_scaled(loss):
    """A ridge and evenly scaled columns (``spread(||a_j||^2 + 4 lam) < JACOBI_MIN_SPREAD``,
    4 lam: the ridge against the logistic curvature bound 1/4): CG needs few iterations. One
    sweep over ``A`` (counted)."""
    if not _has_ridge(loss):
        return False
    lam = float(np.max(loss.ridge))
    return spread(loss.data.column_sq_norms() + 4.0 * lam) < JACOBI_MIN_SPREAD


def _dual_possible(loss):
    """The dual (n x n) form applies: in memory, one column per row with a diagonal row
    curvature, a ridge, and an n x n system that fits."""
    data = loss.data
    return (data.in_memory and loss.image_width == 1 and loss.diagonal_curvature
            and _has_ridge(loss) and 3 * 8.0 * data.shape[0] ** 2 <= DENSE_BYTES)


def method_costs(loss, sketch_size=None):
    """Estimated cost of a solve in passes, per feasible method.

    * every Newton iteration pays ``c0 = 1 + 50 K n / nnz(A)``: the gradient
      pass plus the O(n K) element-wise work of the loss and the line search
      (``K`` the width of the linear predictor), plus its fixed Python cost
      (``NEWTON_OVERHEAD_S``, and ``CG_OVERHEAD_S`` per CG iteration) in passes;
    * exact Newton adds ``G`` weighted Grams (``K (K+1)/2`` for the
      multinomial loss, else 1) of ``0.42 sum_i nnz_i^2 / nnz(A)`` passes each
      for sparse ``A`` and ``d / 14`` for dense ``A`` (blocked SYRK), plus the
      ``p^3 / 3`` flops of its Cholesky factorization (``FLOPS_PER_PASS`` per
      non-zero and pass) in every iteration;
    * the dual form (``K = 1``, a ridge, ``n`` small enough for an ``n x n``
      system) pays once for ``A A^T`` (``0.42 sum_j nnz_j^2 / nnz(A)``
      passes over the columns) and per iteration the ``n^3 / 3`` flops of
      its factorization and four passes of its solve (intercept included);
    * PCG (``n > 2 s``) adds about 3.5 Hessian products per iteration, each a
      fused sweep of ``K`` columns (about ``1.1 (1 + K) / 2`` passes), needs
      about one Newton iteration more, and pays once for the leverage scores
      of its preconditioner (``3 + 0.26 d^3 / nnz(A)`` plus the score
      estimator);
    * Newton-CG (with or without the diagonal preconditioner): ``CG_PER_NEWTON`` products
      per iteration (``CG_PER_NEWTON_EVEN`` with a ridge and evenly scaled
      features, measured by one sweep, taken only when even that optimistic count could
      make Newton-CG the cheapest), two iterations more, no matrix of size p^2 (it is the
      only method once ``8 p^2`` bytes pass ``DENSE_BYTES``).

    Exact Newton is also chosen when ``n`` is so small that a sketch would
    keep most rows anyway.
    """
    data = loss.data
    n, d = data.shape
    K = loss.image_width
    p = loss.n_params
    s = 20 * d if sketch_size is None else sketch_size
    nnz = max(float(data.nnz), 1.0)
    work = data.row_nnz_squares() / nnz if data.is_sparse else None
    c0 = 1.0 + 50.0 * K * n / nnz
    gram = 0.42 * work if data.is_sparse else d / 14.0
    leverage = leverage_passes(loss)
    factor = factorization_passes(loss)
    iters = NEWTON_ITERS
    pass_s = _pass_seconds(loss)
    c0 += NEWTON_OVERHEAD_S / pass_s
    costs = {}
    if 8.0 * p * p <= DENSE_BYTES:
        costs["exact"] = iters * (c0 + loss.hessian_grams * gram + factor)
        if n > 2 * s:
            costs["pcg"] = (iters + 1) * (c0 + 3.5 * product_passes(loss)) + leverage + factor
            if not data.is_sparse:
                # the weighted Gram(s) of the sampled dense rows, built about twice (the first
                # build and a refresh); sparse sampled rows cost little next to a pass
                costs["pcg"] += 2 * sampled_gram_passes(loss, s)
    if _dual_possible(loss):
        outer = 0.42 * data.col_nnz_squares() / nnz if data.is_sparse else n / 14.0
        costs["dual"] = outer + iters * (c0 + 4.0 + n ** 3 / 3 / (FLOPS_PER_PASS * nnz))
    def cg_cost(cg_iters):
        return (iters + 2) * (c0 + cg_iters * (product_passes(loss) + CG_OVERHEAD_S / pass_s)
                              + 0.5)

    # the sweep that measures the feature scaling is paid only when it can change the choice
    # (not measured for dense many-class problems: unpreconditioned CG took 29 products per
    # Newton step on evenly scaled planted probes, benchmarks study dense)
    dense_classes = loss.kronecker_curvature and not data.is_sparse
    even = not dense_classes and cg_cost(CG_PER_NEWTON_EVEN) < min(costs.values(), default=np.inf) \
        and _evenly_scaled(loss)
    costs["cg"] = cg_cost(CG_PER_NEWTON_EVEN if even else CG_PER_NEWTON)
    if dense_classes:
        # the Kronecker-factored preconditioner (dense many-class problems), rebuilt at every
        # iteration; sub-sampled products start at a share of the rows and pay the line
        # search's image pass, with about two iterations more
        kron = kronecker_passes(loss, min(s, n))
        product = product_passes(loss) + CG_OVERHEAD_S / pass_s
        costs["cg:kronecker"] = (iters + 2) * (c0 + CG_PER_NEWTON_KRON * product + kron)
        if data.in_memory:
            # every row in the sample: Newton-CG (no extra iterations) whose products are in
            # float32 for float32 data (the line search then pays the image's pass)
            share = min(n, subsample_start(loss)) / n
            fast = FLOAT32_PRODUCT if loss.float32_data else 1.0
            costs["subsampled:kronecker"] = (iters + (2 if share >= 1.0 else 4)) * (
                c0 + product_passes(loss) / 2 + CG_PER_NEWTON_KRON * share * fast * product
                + kron)
    return costs


def product_passes(loss):
    """Cost of one Hessian-vector product in passes: a fused sweep of ``K`` columns."""
    return 1.1 * (1 + loss.image_width) / 2


def _pass_seconds(loss):
    """Seconds of one pass on the calibration machine: its non-zeros and the ``O(n K)``
    element-wise work of the loss (``PASS_SECONDS_PER_NNZ`` each)."""
    data = loss.data
    return PASS_SECONDS_PER_NNZ * (max(float(data.nnz), 1.0) + 4.0 * loss.image_width * data.n)


def leverage_passes(loss):
    """Cost in passes of the leverage scores of a sketched model: a sketch of ``A`` and a JL
    pass (3), the ``d^3`` QR of the sketch (``0.26 d^3 / nnz(A)``), and the score estimator
    (half the exact Gram's work for sparse rows, 2.5 passes for dense ones)."""
    data = loss.data
    nnz = max(float(data.nnz), 1.0)
    tail = 0.5 * data.row_nnz_squares() / nnz if data.is_sparse else 2.5
    return 3.0 + 0.26 * data.d ** 3 / nnz + tail


def sampled_gram_passes(loss, rows):
    """Cost in passes of the weighted Gram(s) of ``rows`` sampled rows (the sketched model):
    ``rows d^2`` flops per Gram for dense rows (``FLOPS_PER_PASS`` per non-zero and pass) plus
    its fixed cost ``GRAM_CALL_S``, ``0.42 rows / n`` of the exact Gram for sparse rows;
    ``K (K + 1) / 2`` Grams for the multinomial loss."""
    data = loss.data
    n, d = data.shape
    nnz = max(float(data.nnz), 1.0)
    rows = min(rows, n)
    if data.is_sparse:
        return loss.hessian_grams * 0.42 * rows / n * data.row_nnz_squares() / nnz
    return loss.hessian_grams * (rows * d * d / (FLOPS_PER_PASS * nnz)
                                 + GRAM_CALL_S / _pass_seconds(loss))


def factorization_passes(loss):
    """Cost in passes of factorizing a dense (p x p) model: its ``p^3 / 3``-flop Cholesky
    (``FLOPS_PER_PASS`` flops per non-zero and pass, as in :func:`method_costs`; the Gram of
    the sampled rows is small next to it)."""
    nnz = max(float(loss.data.nnz), 1.0)
    return loss.n_params ** 3 / 3 / (FLOPS_PER_PASS * nnz)


def subsample_start(loss):
    """Rows of the first Hessian sample of sub-sampled Newton: ``SUBSAMPLE_START n``, at least
    ``SUBSAMPLE_MIN_ROWS_PER_FEATURE d`` and ``SUBSAMPLE_MIN_ROWS_PER_CLASS K``."""
    n, d = loss.data.shape
    return int(max(SUBSAMPLE_START * n, SUBSAMPLE_MIN_ROWS_PER_FEATURE * d,
                   SUBSAMPLE_MIN_ROWS_PER_CLASS * loss.image_width))


def kronecker_passes(loss, rows):
    """Cost in passes of the Kronecker-factored preconditioner from ``rows`` sampled rows: the
    curvature weights (a sweep over the ``n x K`` probabilities), the ``rows (d^2 + K^2)``
    flops of its two Grams and the ``~4 (d^3 + K^3)`` of their eigendecompositions."""
    nnz = max(float(loss.data.nnz), 1.0)
    d, K = loss.data.d, loss.image_width
    flops = rows * (d * d + K * K) + 4.0 * (d ** 3 + K ** 3)
    return 0.5 + flops / (FLOPS_PER_PASS * nnz)


def matrix_free_rebuild_passes(loss, preconditioner, rank=32, rows=None):
    """Cost in passes of rebuilding a matrix-free preconditioner: the diagonal, one sweep; a
    Nystrom one of rank ``r``, its block product of ``r`` columns (about ``r / 4`` products:
    a block product reads ``A`` once for all columns) and the ``~4 p r^2`` flops of its QR and
    SVD; the Kronecker-factored one from ``rows`` rows (:func:`kronecker_passes`); none,
    nothing."""
    if preconditioner == "kronecker":
        return kronecker_passes(loss, loss.data.n if rows is None else min(rows, loss.data.n))
    if preconditioner == "nystrom":
        nnz = max(float(loss.data.nnz), 1.0)
        return (0.5 + rank / 4 * product_passes(loss)
                + 4.0 * loss.n_params * rank ** 2 / (FLOPS_PER_PASS * nnz))
    return 0.5 if preconditioner == "diagonal" else 0.0


#: the warm start from a row sample (docs/math.md 6.6): the sample's share of the rows, at least
#: ``PRESOLVE_ROWS_PER_PARAM`` rows per parameter and at most ``PRESOLVE_MAX_SHARE`` of them
#: (else the problem is not tall enough for a sample to estimate its minimiser), and only when
#: the data have ``PRESOLVE_MIN_NNZ`` non-zeros (below, the fixed cost of a second solve
#: decides). Measured on the planted normalized regression (n = 1e6, d = 200, 10 per row, ill
#: conditioned, no noise / noise 0.1 / 1.0): shares 1/50, 1/20 and 1/10 left 1, 3-4 and 4-7
#: iterations of the 9 (7 with noise 1.0) of the cold solve. Rows per parameter: a sample of
#: 50 per parameter (n = 4e5, d = 500, 50 per row, ill conditioned) took 21 `pcg` iterations
#: with steps cut to 1e-3 (a sample that few rows per parameter is worse conditioned than the
#: problem); 100 per parameter took 7, as the full problem's 8
PRESOLVE_SHARE = 1.0 / 16.0
PRESOLVE_ROWS_PER_PARAM = 100
PRESOLVE_MAX_SHARE = 0.25
PRESOLVE_MIN_NNZ = 1 << 20


def presolve_rows(loss, forced=False):
    """Rows of the sample a warm start solves first (docs/math.md 6.6), or 0 for none.

    ``PRESOLVE_SHARE n`` rows, at least ``PRESOLVE_ROWS_PER_PARAM`` per parameter; none when
    that is more than ``PRESOLVE_MAX_SHARE n``, when the loss offers no subproblems (Dask
    data), or, unless ``forced``, when the data have fewer than ``PRESOLVE_MIN_NNZ``
    non-zeros.
    """
    data = loss.data
    n = data.n
    rows = int(max(PRESOLVE_SHARE * n, PRESOLVE_ROWS_PER_PARAM * loss.n_params))
    if not loss.subproblems or rows > PRESOLVE_MAX_SHARE * n:
        return 0
    if not forced and float(data.nnz) < PRESOLVE_MIN_NNZ:
        return 0
    return rows
