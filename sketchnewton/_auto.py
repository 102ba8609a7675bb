"""The cost model behind ``method="auto"``: exact Newton or sketch-preconditioned CG."""

__all__ = ["choose_method", "preconditioner_rebuild_passes", "product_passes"]


def choose_method(loss, sketch_size=None):
    """Pick ``"exact"`` or ``"pcg"`` from a cost model in passes (one ``A x`` plus one ``A^T y``).

    Calibrated on the n = 1e6 benchmark matrices (sparse d = 200-500 with
    10-50 non-zeros per row, dense d = 100):

    * every Newton iteration pays ``c0 = 1 + 50 K n / nnz(A)``: the gradient
      pass plus the O(n K) element-wise work of the loss and the line search
      (``K`` the width of the linear predictor);
    * the exact Hessian adds ``G`` weighted Grams (``K (K+1)/2`` for the
      multinomial loss, else 1) of ``0.42 sum_i nnz_i^2 / nnz(A)`` passes each
      for sparse ``A`` and ``d / 14`` for dense ``A`` (blocked SYRK), plus the
      ``p^3 / 3`` flops of its Cholesky factorization (~4 flops per non-zero
      and pass);
    * PCG instead adds about 3.5 Hessian products per iteration, each a fused
      sweep of ``K`` columns (about ``1.1 (1 + K) / 2`` passes), needs about
      one Newton iteration more, and pays once for the leverage scores of its
      preconditioner (``3 + 0.26 d^3 / nnz(A)`` plus the score estimator).

    Exact Newton is also chosen when ``n`` is so small that a sketch would
    keep most rows anyway.
    """
    data = loss.data
    n, d = data.shape
    K = loss.image_width
    s = 20 * d if sketch_size is None else sketch_size
    if n <= 2 * s:
        return "exact"
    nnz = max(float(data.nnz), 1.0)
    work = data.row_nnz_squares() / nnz if data.is_sparse else None
    c0 = 1.0 + 50.0 * K * n / nnz
    gram = 0.42 * work if data.is_sparse else d / 14.0
    leverage = 3.0 + 0.26 * d ** 3 / nnz + (0.5 * work if data.is_sparse else 2.5)
    iters = 5
    p = d * K
    exact = iters * (c0 + loss.hessian_grams * gram) + p ** 3 / 3 / (4 * nnz)
    pcg = (iters + 1) * (c0 + 3.5 * 1.1 * (1 + K) / 2) + leverage
    return "exact" if exact <= pcg else "pcg"


def product_passes(loss):
    """Cost of one Hessian-vector product in passes: a fused sweep of ``K`` columns."""
    return 1.1 * (1 + loss.image_width) / 2


def preconditioner_rebuild_passes(loss):
    """Cost of rebuilding a sketched preconditioner in passes: its ``p^3 / 3``-flop Cholesky
    (about 4 flops per non-zero and pass, as in :func:`choose_method`); the Gram of the
    sampled rows is small next to it."""
    p = loss.n_params
    return p ** 3 / 3 / (4 * max(float(loss.data.nnz), 1.0))

