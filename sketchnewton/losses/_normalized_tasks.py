"""Per-block tasks of the normalized regression loss (run where each row block lives).

The client side (:class:`~sketchnewton.losses.NormalizedRegressionLoss`)
assembles their small results; docs/math.md section 2.7 has the identities.
"""

import numpy as np

from .._blocks import resolve
from .._kernels import n_chunks
from .._kernels.links import COMBINED, PARTIAL, link_values, link_weights, scaled_exponentials
from .._links import link_shift
from .._matrix import shifted_row_gram


class _BlockForward:
    """A block's forward state: ``z``, the link values at scale ``m`` and its sums / partials."""

    __slots__ = ("z", "u", "v", "q", "sums", "partials")

    def __init__(self, z, u, v, q, sums, partials):
        self.z, self.u, self.v, self.q, self.sums, self.partials = z, u, v, q, sums, partials

    def __sizeof__(self):
        return 4 * self.z.nbytes + 200


def _partials(blk, z, u, v, fc, mode, n_cols):
    """``A^T Y`` (d, n_cols) for the row weights of :func:`~sketchnewton._kernels.links.link_weights`
    (computed four wide whatever ``n_cols``: see there)."""
    A, b, w2 = blk.A, blk["b"], blk["w2"]
    Y = link_weights(z, b, w2, u, v, fc, mode, np.empty((z.shape[0], 4)))
    return A.rmatmat(Y)[:, :n_cols]


def _n_partial_cols(blk):
    return 4 if blk["w2"].shape[0] > 0 else 3


def _forward_task(blk, item, x, code, m, normalize, partials):
    """The block's link values and sums at scale ``m`` (``None``: the block's own shift)."""
    z = blk.A.matvec(x) if item is None else resolve(item)
    n = z.shape[0]
    u, v, q = np.empty(n), np.empty(n), np.empty(n)
    own = m is None and not normalize
    scale = link_shift(z, code) if own or normalize else (0.0 if m is None else m)
    scaled_exponentials(z, code, scale, u, v)
    sums = link_values(z, blk["b"], blk["w2"], code, scale, normalize, u, v, q, n_chunks())
    P = None
    if partials and normalize and sums[0] > 0:  # the combined gradient and low-rank columns
        P = _partials(blk, z, u, v, sums[2], COMBINED, 4)
    elif partials and not normalize and not own:  # a block's share may have sum(u) <= 0
        P = _partials(blk, z, u, v, 0.0, PARTIAL, _n_partial_cols(blk))
    return _BlockForward(z, u, v, q, sums, P)


def _small(st):
    """What the client needs of a block's forward: its sums (and partials)."""
    return st.sums if st.partials is None else (st.sums, st.partials)


def _partials_task(blk, st, fc, normalize, n_cols):
    if normalize:
        return _partials(blk, st.z, st.u, st.v, fc, COMBINED, n_cols)
    return _partials(blk, st.z, st.u, st.v, 0.0, PARTIAL, _n_partial_cols(blk))


def _block_curvature(blk, st, rho, fc, kind):
    """``(va, f, diag)`` of the block: ``diag = va^2 + qa (c - <f,c>) + w^2`` (full) or
    ``va^2 + w^2`` (Gauss-Newton)."""
    va = rho * st.v
    diag = va * va
    f = None
    if kind == "full":
        f = rho * st.u
        diag = diag + (rho * st.q) * (f - blk["b"] - fc)
    w2 = blk["w2"]
    if w2.shape[0] > 0:
        diag = diag + w2
    return va, f, diag


def _hessp_task(blk, st, rho, fc, kind, v):
    _, _, diag = _block_curvature(blk, st, rho, fc, kind)
    return blk.A.normal_matvec(diag, v)


def _hessp_image_task(blk, st, item, rho, fc, kind):
    _, _, diag = _block_curvature(blk, st, rho, fc, kind)
    return blk.A.rmatvec(diag * resolve(item))


def _matmat_task(blk, st, rho, fc, kind, V):
    _, _, diag = _block_curvature(blk, st, rho, fc, kind)
    return blk.A.rmatmat(diag[:, None] * blk.A.matmat(V))


def _diag_task(blk, st, rho, fc, kind):
    return blk.A.weighted_col_sq(_block_curvature(blk, st, rho, fc, kind)[2])


def _noise_task(blk, st, rho, fc):
    """``|A|^T rbar``, ``rbar = |va| (|f| + |b| + |<f,c>|) + |w^2 z|``: the magnitude of the terms
    the gradient weights ``va (c - <f,c>) + w^2 z`` are formed from."""
    va, f = rho * st.v, rho * st.u
    rbar = np.abs(va) * (np.abs(f) + np.abs(blk["b"]) + abs(fc))
    w2 = blk["w2"]
    if w2.shape[0] > 0:
        rbar += np.abs(w2 * st.z)
    return blk.A.abs_rmatmat(rbar)


def _gram_task(blk, st, rho, fc, kind):
    return blk.A.gram(_block_curvature(blk, st, rho, fc, kind)[2])


def _weights_task(blk, st, rho):
    va = rho * st.v
    w2 = blk["w2"]
    return va * va + w2 if w2.shape[0] > 0 else va * va


def _sampled_gram_task(blk, st, sample, rho, fc, k, kind):
    """The block's share of the sampled model: the Gram of the kept rows of the Gauss-Newton
    factor ``J = diag(va) A - f k^T`` (and, for the full Hessian, the residual curvature on the
    same rows), reweighted by ``sample.row_weights^2``; ``(G, [rows, non-zeros read])``."""
    rows, rw2 = sample.rows, sample.row_weights ** 2
    va, f = rho * st.v[rows], rho * st.u[rows]
    weights = rw2 * va * va
    w2 = blk["w2"]
    if w2.shape[0] > 0:
        weights += rw2 * w2[rows]
    if kind == "full":
        weights += rw2 * (rho * st.q[rows]) * (f - blk["b"][rows] - fc)
    kk = float(rw2 @ (f * f))
    unsampled = sample.unsampled
    if unsampled is not None and unsampled.any():
        # rows the sampler cannot draw (no curvature, or a_i = 0) still have the row -f_i k in
        # J: their exact share sum f_i^2 k k^T keeps the model unbiased (and PSD)
        f_out = rho * st.u[unsampled]
        kk += float(f_out @ f_out)
    shift = rw2 * va * f
    G = shifted_row_gram(blk.A, rows, weights, shift, k, kk)
    reads = 1.0 if np.all(weights != 0) or not np.any(shift) else 2.0
    return G, np.array([rows.shape[0], blk.A.row_nnz()[rows].sum() * reads])


def _assemble(P, rho, fc):
    """Gradient (without the ridge) and ``K3`` from the summed partials (docs/math.md 2.7)."""
    Pr, Pu, Pv = P[:, 0], P[:, 1], P[:, 2]
    grad = rho * Pr + (rho * (rho - 1.0)) * Pu - (rho * fc) * Pv
    if P.shape[1] == 4:
        grad += P[:, 3]
    K3 = np.column_stack([rho * Pv, rho * Pr + (rho * (2.0 * rho - 1.0)) * Pu, (rho * rho) * Pu])
    return grad, K3


def lowrank_part(K3, ff, fc, kind):
    """``(K, C)`` of the low-rank Hessian term ``K C K^T`` from ``K3 = A^T [va, (f+c) va, f va]``.

    ``full``: ``K = A^T [va, (f+c) va]``, ``C = [[||f||^2 + 2<f,c>, -1], [-1, 0]]``;
    ``gauss_newton``: ``K = A^T [va, f va]``, ``C = [[||f||^2, -1], [-1, 0]]``.
    """
    if kind == "full":
        return np.ascontiguousarray(K3[:, [0, 1]]), np.array([[ff + 2 * fc, -1.0], [-1.0, 0.0]])
    return np.ascontiguousarray(K3[:, [0, 2]]), np.array([[ff, -1.0], [-1.0, 0.0]])


def _matvec_task(blk, x):
    return blk.A.matvec(x)


def _column_sums_task(blk):
    return blk.A.column_sums()
