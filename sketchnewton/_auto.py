"""The cost model behind ``method="auto"``: exact Newton or sketch-preconditioned CG."""

__all__ = ["choose_method", "method_costs", "preconditioner_rebuild_passes", "product_passes"]

#: largest dense (p x p) Hessian model ``auto`` considers: 2 GiB
DENSE_BYTES = 2 << 30
#: CG iterations per Newton step the cost model assumes for matrix-free preconditioners
CG_PER_NEWTON = 20


def choose_method(loss, sketch_size=None):
    """``(method, preconditioner)`` for ``method="auto"``: see :func:`method_costs`."""
    costs = method_costs(loss, sketch_size)
    best = min(costs, key=costs.get)
    method, _, preconditioner = best.partition(":")
    return method, preconditioner or "diagonal"


def method_costs(loss, sketch_size=None):
    """Estimated cost of a solve in passes, per feasible method (``"cg:<preconditioner>"``).

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
    p = loss.n_params
    s = 20 * d if sketch_size is None else sketch_size
    nnz = max(float(data.nnz), 1.0)
    work = data.row_nnz_squares() / nnz if data.is_sparse else None
    c0 = 1.0 + 50.0 * K * n / nnz
    gram = 0.42 * work if data.is_sparse else d / 14.0
    leverage = 3.0 + 0.26 * d ** 3 / nnz + (0.5 * work if data.is_sparse else 2.5)
    iters = 5
    costs = {}
    if 8.0 * p * p <= DENSE_BYTES:
        costs["exact"] = iters * (c0 + loss.hessian_grams * gram) + p ** 3 / 3 / (4 * nnz)
        if n > 2 * s:
            costs["pcg"] = (iters + 1) * (c0 + 3.5 * product_passes(loss)) + leverage
    costs["cg:diagonal"] = (iters + 2) * (c0 + CG_PER_NEWTON * product_passes(loss) + 0.5)
    return costs


def product_passes(loss):
    """Cost of one Hessian-vector product in passes: a fused sweep of ``K`` columns."""
    return 1.1 * (1 + loss.image_width) / 2


def preconditioner_rebuild_passes(loss, method="pcg", preconditioner="diagonal", rank=32):
    """Cost of rebuilding a preconditioner in passes.

    A sketched (dense) one: its ``p^3 / 3``-flop Cholesky (about 4 flops per
    non-zero and pass, as in :func:`choose_method`; the Gram of the sampled
    rows is small next to it). The diagonal: one sweep. A Nystrom one of rank
    ``r``: its block product of ``r`` columns, about ``r / 4`` products (a
    block product reads ``A`` once for all columns), and the ``~4 p r^2``
    flops of its QR and SVD.
    """
    if method == "cg":
        if preconditioner == "nystrom":
            nnz = max(float(loss.data.nnz), 1.0)
            return 0.5 + rank / 4 * product_passes(loss) + loss.n_params * rank ** 2 / nnz
        return 0.5 if preconditioner == "diagonal" else 0.0
    p = loss.n_params
    return p ** 3 / 3 / (4 * max(float(loss.data.nnz), 1.0))

