"""Matrix-free proximal Newton (``"prox_cd"``): coordinate descent on the data's CSC columns
(newGLMNET; docs/math.md 9.2), for wide sparse data.

The exact model ``H`` is never formed; the step's image is kept along the sweeps, so the line
search needs no pass. Two forms under one method name:

* :class:`MatrixFreeProximalNewton`: ``H = A^T diag(D) A + diag(ridge)`` (binary logistic,
  Poisson), the residual ``r = A d`` kept;
* :class:`SoftmaxProximalNewton`: ``H = sum_i s_i a_i a_i^T (x) B_i + diag(ridge)`` with the
  ``K x K`` row blocks ``B_i = diag(p_i) - p_i p_i^T`` (multinomial), ``R = A D^T`` (n, K)
  and ``s_i = <p_i, R_i>`` kept.

Both minimise the exact model (not a diagonal majorizer), so the step, the face solve and the
certification are :class:`~._proximal.ProximalNewton`'s.
"""

import numpy as np
import scipy.sparse as sp

from .._auto import matrix_free_prox, restricted_max
from .._kernels.cd import csc_cd, softmax_cd, softmax_curvature_diag
from .._matrix import DataMatrix, InterceptMatrix
from ..exceptions import InputError
from ..hessian import fix_invariances
from ..losses import L1Penalty, Loss
from ._base import Iterate
from ._proximal import MAX_SWEEPS, RESTRICTED_MAX, INNER_FORCING_STEP_DATA, ProximalNewton, ProxModel

__all__ = ["MatrixFreeProximalNewton", "SoftmaxProximalNewton"]


class MatrixFreeProximalNewton(ProximalNewton):
    """Proximal Newton on the data itself (``"prox_cd"``, wide sparse data; newGLMNET).

    ``H = A^T diag(D) A + diag(ridge)`` is never formed: coordinate descent reads
    ``A``'s columns (CSC, made once) and keeps the model's residual ``r = A d``, so a
    sweep costs the non-zeros of the columns it visits and the step's image ``A p`` is
    ``r`` (the line search needs no pass). Needs in-memory data and a loss with a
    diagonal row curvature (binary logistic, Poisson); the multinomial loss takes
    :class:`SoftmaxProximalNewton` under the same name.
    """

    name = "prox_cd"
    forcing_min = INNER_FORCING_STEP_DATA
    working_sets = False

    def __new__(cls, loss: Loss, *args, **kwargs):
        # one method name: the multinomial loss's K x K row blocks take their own form
        if cls is MatrixFreeProximalNewton and loss.softmax_curvature:
            cls = SoftmaxProximalNewton
        return super().__new__(cls)

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        if not matrix_free_prox(loss):
            raise InputError("method 'prox_cd' needs in-memory data and a convex loss with a "
                             "diagonal row curvature (binary logistic, Poisson) or softmax row "
                             "blocks (multinomial); use method='prox'")

    def __init__(self, loss: Loss, settings, rng, penalty: L1Penalty | None = None):
        super().__init__(loss, settings, rng, penalty)
        self._csc: tuple | None = None
        self.face_max = restricted_max(loss, RESTRICTED_MAX)

    def _columns(self):
        """``(indptr, indices, data, ones)`` of ``A`` in CSC (made once; ``ones``: the index
        of the intercept's column of ones, -1 without one)."""
        if self._csc is None:
            A = self._A
            base, ones = (A.base, A.base.d) if isinstance(A, InterceptMatrix) else (A, -1)
            M = base.csr.tocsc() if base.is_sparse else sp.csc_matrix(base.dense, dtype=np.float64)
            M.sort_indices()
            self._csc = (M.indptr.astype(np.int64), M.indices.astype(np.int64),
                         np.asarray(M.data, dtype=np.float64), ones, M)
        return self._csc

    def _build(self, it: Iterate) -> None:
        kind = self.loss.hessian_kinds[-1]
        factors = self.loss.hessian_factors(it.state, kind)
        if factors.K.shape[1]:
            raise InputError("method 'prox_cd' needs a Hessian A^T D A + ridge (no low-rank "
                             "part); use method='prox'")
        self._A, self._kind = factors.A, kind  # DataMatrix, or InterceptMatrix with an intercept
        self._D = np.ascontiguousarray(factors.diag, dtype=np.float64)
        self._lam = np.broadcast_to(np.asarray(factors.lam, dtype=np.float64),
                                    (self.loss.n_params,)).copy()
        self._hdiag = self.loss.hessian_diagonal(it.state, kind)
        free = self._free(it.x)
        formed = free.size <= self.face_max
        self.model = ProxModel(kind, 0.0 if formed else None, 0,
                               float(self._hdiag.max()) if self._hdiag.size else 0.0, free,
                               self._restricted if formed else None)

    def _restricted(self, free: np.ndarray) -> np.ndarray:
        """``H_FF = A_F^T diag(D) A_F + diag(ridge_F)`` (columns ``F`` only)."""
        indptr, indices, data, ones, M = self._columns()
        cols = free[free != ones]
        AF = M[:, cols]
        # the project's row-outer-product Gram (O(sum_i nnz_i,F^2)); the intercept's column of
        # ones is the last of F (the largest index) and the Gram's appended column
        HF = DataMatrix(AF.tocsr(), "A", check_finite=False).gram(self._D,
                                                                  ones=bool(cols.size < free.size))
        self.loss.data.count_rows_read(AF.nnz)
        HF[np.diag_indices_from(HF)] += self._lam[free]
        return HF

    def _inner(self, it: Iterate, work: np.ndarray, tol: float):
        indptr, indices, data, ones, M = self._columns()
        p = np.zeros(it.x.size)
        r = np.zeros(self.loss.data.n)
        sweeps, _, read = csc_cd(indptr, indices, data, self._D, self._lam, self._hdiag,
                                 it.grad, self.weights, it.x, ones, work.astype(np.int64), p, r,
                                 tol, MAX_SWEEPS)
        self.loss.data.count_rows_read(read)
        self._last_sweeps = int(sweeps)
        self.inner_sweeps += int(sweeps)
        self._r = r
        return p, r

    def _product(self, p, image, dp=None, Hp=None) -> np.ndarray:
        """``H p = A^T (D (A p)) + ridge p`` from the image ``A p`` (one sweep)."""
        assert self._at is not None  # a product follows the model's build
        return self.loss.hessp_of_image(self._at, p, image, self._kind)

    def _image(self, dp, it):
        """``A (p + dp)``: the kept residual plus the image of ``dp`` (one sweep)."""
        self._r = self._r + self.loss.image(dp)
        return self._r



class SoftmaxProximalNewton(MatrixFreeProximalNewton):
    """Matrix-free proximal Newton for the multinomial loss (``"prox_cd"``; docs/math.md 9.2,
    "The multinomial model").

    Coordinate ``k * dcols + j`` (the loss's layout ``x.reshape(K, dcols)``, the intercept the
    last column) is class ``k``'s coefficient of column ``j``. Coordinate descent keeps
    ``R = A D^T`` (the step's image, ``D = d.reshape(K, dcols)``) and ``s_i = <p_i, R_i>``;
    the coordinate's model gradient ``g_kj + sum_i s_i a_ij p_ik (R_ik - s_i) + ridge d_kj``
    and an update cost the non-zeros of column ``j``. The sweeps visit the classes of a column
    one after the other (its rows are then read from cache).
    """

    def _build(self, it: Iterate) -> None:
        loss = self.loss
        self._A, P, sw = loss.softmax_blocks(it.state)
        self._kind = loss.hessian_kinds[-1]
        indptr, indices, data, ones, M = self._columns()
        self._P = np.ascontiguousarray(P, dtype=np.float64)
        self._sw = np.ascontiguousarray(sw, dtype=np.float64)
        self._lam = np.ascontiguousarray(loss.ridge, dtype=np.float64)
        self._dcols = loss.n_params // self._P.shape[1]
        # the diagonal only (K per non-zero), not the loss's K x K blocks per feature (K^2)
        self._hdiag = softmax_curvature_diag(indptr, indices, data, self._P, self._sw, ones,
                                             self._dcols) + self._lam
        loss.data.count_rows_read(M.nnz)
        free = self._free(it.x)
        formed = free.size <= self.face_max
        self.model = ProxModel(self._kind, 0.0 if formed else None, 0,
                               float(self._hdiag.max()) if self._hdiag.size else 0.0, free,
                               self._restricted if formed else None)

    def _inner(self, it: Iterate, work: np.ndarray, tol: float):
        indptr, indices, data, ones, M = self._columns()
        n, K = self._P.shape
        p, R, s = np.zeros(it.x.size), np.zeros((n, K)), np.zeros(n)
        cols = work % self._dcols
        order = work[np.lexsort((work // self._dcols, cols))].astype(np.int64)  # by column
        sweeps, _, read = softmax_cd(indptr, indices, data, self._P, self._sw, self._lam,
                                     self._hdiag, it.grad, self.weights, it.x, ones, self._dcols,
                                     order, p, R, s, tol, MAX_SWEEPS)
        self.loss.data.count_rows_read(read)
        self._last_sweeps = int(sweeps)
        self.inner_sweeps += int(sweeps)
        self._centre(p, R)
        self._r = R
        return p, R

    def _centre(self, p: np.ndarray, R: np.ndarray) -> None:
        """Remove from ``p`` (and its image ``R``) its part along the loss's invariances (the
        intercepts' shift): the dense models' steps have none (``fix_invariances``), and the
        iterates stay centred as theirs. The part lives on unpenalised coordinates, a few
        columns: their images are subtracted column by column, no pass."""
        N = self.builder.null_space
        if N is None:
            return
        shift = N @ (N.T @ p)
        indptr, indices, data, ones, M = self._columns()
        for c in np.flatnonzero(shift):
            k, j = divmod(int(c), self._dcols)
            v = shift[c]
            p[c] -= v
            if j == ones:
                R[:, k] -= v
            else:
                lo, hi = indptr[j], indptr[j + 1]
                R[indices[lo:hi], k] -= v * data[lo:hi]

    def _restricted(self, free: np.ndarray) -> np.ndarray:
        """``H_FF``: per pair of classes ``(k, l)`` present in ``F``, the weighted Gram
        ``A_J^T diag(s (delta_kl p_k - p_k p_l)) A_J`` of the columns ``J`` of ``F``, the
        intercepts' shift made definite as in the dense model (``fix_invariances``)."""
        indptr, indices, data, ones, M = self._columns()
        P, sw, K = self._P, self._sw, self._P.shape[1]
        klass, col = np.divmod(free, self._dcols)
        J, pos = np.unique(col, return_inverse=True)
        cols = J[J != ones]  # the column of ones is the largest index: the Gram's last
        AJ = DataMatrix(M[:, cols].tocsr(), "A", check_finite=False)
        members = [np.flatnonzero(klass == k) for k in range(K)]
        present = [k for k in range(K) if members[k].size]
        HF = np.zeros((free.size, free.size))
        for a, k in enumerate(present):
            for l in present[a:]:
                wkl = -sw * P[:, k] * P[:, l]
                if k == l:
                    wkl += sw * P[:, k]
                G = AJ.gram(wkl, ones=bool(cols.size < J.size))
                rk, rl = members[k], members[l]
                block = G[np.ix_(pos[rk], pos[rl])]
                HF[np.ix_(rk, rl)] = block
                HF[np.ix_(rl, rk)] = block.T
        pairs = len(present) * (len(present) + 1) // 2
        self.loss.data.count_rows_read(AJ.nnz, times=pairs)
        HF[np.diag_indices_from(HF)] += self._lam[free]
        N = self.builder.null_space  # its support is unpenalised: inside F
        return fix_invariances(HF, None if N is None else N[free])
