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
certification are :class:`~._proximal.ProximalNewton`'s. The decrement a stopping test asks
for is bracketed by duality (:mod:`._gap`, binary form) or found by one face solve before the
model is solved to ``1e-10``.
"""

import numpy as np
import scipy.sparse as sp

from .._auto import CONFIRM_FACE_PASSES, matrix_free_prox, restricted_max
from .._kernels.cd import csc_cd, softmax_cd, softmax_curvature_diag
from .._matrix import DataMatrix, InterceptMatrix
from ..exceptions import InputError
from ..hessian import fix_invariances
from ..losses import L1Penalty, Loss
from ._base import Iterate, Step
from ._block_cd import block_step
from ._face import shift_null_space
from ._gap import bracket_decrement, model_dual_bound, model_value
from ._proximal import (INNER_FORCING_STEP_DATA, MAX_SWEEPS, RESTRICTED_MAX, _TINY,
                        ProximalNewton, ProxModel, shift_groups, shifted_gram_cd)

__all__ = ["MatrixFreeProximalNewton", "SoftmaxProximalNewton"]

#: coordinate-descent sweeps of an inner solve before its block steps (the early outer
#: iterations settle in 1-27 sweeps: code corpus, p = 2^20), and of each round after one
CD_FIRST_SWEEPS = 20
CD_ROUND_SWEEPS = 10


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
        self._rho = factors.residual
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
        if cols.size == 0:  # the intercept alone (every coefficient at zero)
            HF = np.full((free.size, free.size), float(self._D.sum()))
        else:
            AF = M[:, cols]
            # the project's row-outer-product Gram (O(sum_i nnz_i,F^2)); the intercept's column
            # of ones is the last of F (the largest index) and the Gram's appended column
            HF = DataMatrix(AF.tocsr(), "A", check_finite=False).gram(
                self._D, ones=bool(cols.size < free.size))
            self.loss.data.count_rows_read(AF.nnz)
        HF[np.diag_indices_from(HF)] += self._lam[free]
        return HF

    def _restricted_null(self, free: np.ndarray) -> np.ndarray | None:
        return None  # H_FF as it is

    def decrement(self, it: Iterate, target: float) -> float:
        """The model minimiser's decrement, bracketed by duality until it is told from
        ``target`` (:mod:`._gap`); the solve to ``1e-10`` where the bracket cannot tell."""
        if self._at is not it.state:
            self.update(it, None)
        certified = self._gap_certifies(it, target)
        if certified is not None:
            return certified
        value, decided = self._timed(self._bracket, it, target)
        if decided:
            return value
        step = self._timed(self._on_face, it)
        if step is not None:
            self._step = step
            return step.decrement
        return super().decrement(it, target)

    def _on_face(self, it: Iterate) -> Step | None:
        """The model's exact minimiser by one face solve (a face up to ``CONFIRM_FACE_PASSES``):
        on the face of ``x`` itself (no sweep: near the end the support has settled), else on
        the face of the step at ``x`` if it is known; None when neither is the minimiser's."""
        cap = restricted_max(self.loss, RESTRICTED_MAX, CONFIRM_FACE_PASSES)
        if np.count_nonzero((it.x != 0) | (self.weights == 0)) > cap:
            return None
        zero = np.zeros(it.x.size)
        self._r = self._zero_image()  # the kept image, of the zero step
        polished = self._polish(it, zero, zero, cap)
        step = self._step
        if polished is None and step is not None and step.image is not None:
            p, self._r = step.direction, step.image
            polished = self._polish(it, p, self._product(p, step.image), cap)
        if polished is None:
            return None
        q, image = polished
        return self._step_of(it, 0.0, q, image, 0, True)

    def _bracket(self, it: Iterate, target: float) -> tuple[float, bool]:
        # without a ridge on every penalised coordinate (lasso) only theta scales the
        # violations, and the bound closes after hundreds of sweeps (code corpus): not tried
        rho = self._rho
        if rho is None or np.any((self.weights > 0) & (self._lam <= 0)):
            return np.inf, False
        x, g, w, D, lam, ones = it.x, it.grad, self.weights, self._D, self._lam, self._columns()[3]
        step = self._step  # continued from the step at x (a copy: the step stays as it is)
        if step is not None and step.image is not None:
            p, r = step.direction.copy(), np.array(step.image, dtype=np.float64)
        else:
            p, r = np.zeros(x.size), np.zeros(D.size)
        hcol = self._product(np.eye(1, x.size, ones)[0], np.ones(D.size)) if ones >= 0 else None
        scale = self._subgradient_norm(it)
        reached = [np.inf]

        def solve(tol: float) -> tuple[float, float]:
            self._sweep(it, np.arange(x.size), tol, p, r)
            reached[0] = tol / max(scale, _TINY)
            G, d, image = g + self._product(p, r), p, r
            if hcol is not None:  # the intercept's coordinate minimised exactly: G_ones = 0
                beta = -G[ones] / hcol[ones]
                d, image, G = p.copy(), r + beta, G + beta * hcol
                d[ones] += beta
                G[ones] = 0.0
            return (model_value(g, x, w, lam, D, d, image),
                    model_dual_bound(x, w, lam, D, rho, d, image, G))

        value, decided = bracket_decrement(solve, target, scale)
        # the refined minimiser is the step at x from now on
        self._step = self._step_of(it, reached[0], p, r, self._last_sweeps, False)
        return value, decided

    def _zero_image(self) -> np.ndarray:
        """The image of the zero step, (n,)."""
        return np.zeros(self.loss.data.n)

    def _inner(self, it: Iterate, work: np.ndarray, tol: float):
        return self._sweep(it, work, tol, np.zeros(it.x.size), self._zero_image())

    def _sweep(self, it: Iterate, work: np.ndarray, tol: float, p: np.ndarray, r: np.ndarray):
        """The model on ``work`` from ``(p, r = A p)`` (updated in place) to ``tol``: coordinate
        descent, then, while it has not converged after ``CD_FIRST_SWEEPS``, rounds of a block
        step on the most violated coordinates (:func:`._block_cd.block_step`, counted as one
        sweep) and ``CD_ROUND_SWEEPS`` sweeps (the first a full one, whose violation is the
        test). :attr:`reached`: whether ``tol`` was (``MAX_SWEEPS`` in all)."""
        indptr, indices, data, ones, M = self._columns()
        work = work.astype(np.int64)
        x, g, w, D, lam = it.x, it.grad, self.weights, self._D, self._lam

        def cd(budget: int) -> tuple[int, float]:
            done, viol, read = csc_cd(indptr, indices, data, D, lam, self._hdiag, g, w, x, ones,
                                      work, p, r, tol, budget)
            self.loss.data.count_rows_read(read)
            return int(done), float(viol)

        sweeps, viol = cd(min(CD_FIRST_SWEEPS, MAX_SWEEPS))
        while viol > tol and sweeps + 1 < MAX_SWEEPS:
            self.loss.data.count_rows_read(block_step(M, ones, D, lam, g, w, x, p, r, tol))
            done, viol = cd(min(CD_ROUND_SWEEPS, MAX_SWEEPS - sweeps - 1))
            sweeps += 1 + done
        self.reached = self._reached(viol, tol, it)
        self._last_sweeps = sweeps
        self.inner_sweeps += sweeps
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

    def _cycle_faces(self, it, p, Hp, tol):
        """No dense model to cycle on: the face solve of :meth:`_polish` is what there is."""
        return None


class SoftmaxProximalNewton(MatrixFreeProximalNewton):
    """Matrix-free proximal Newton for the multinomial loss (``"prox_cd"``; docs/math.md 9.2,
    "The multinomial model").

    Coordinate ``k * dcols + j`` (the loss's layout ``x.reshape(K, dcols)``, the intercept the
    last column) is class ``k``'s coefficient of column ``j``. Coordinate descent keeps
    ``R = A D^T`` (the step's image, ``D = d.reshape(K, dcols)``) and ``s_i = <p_i, R_i>``;
    the coordinate's model gradient ``g_kj + sum_i sw_i a_ij p_ik (R_ik - s_i) + ridge d_kj``
    and an update cost the non-zeros of column ``j`` (:func:`softmax_cd`). The sweeps visit
    the classes of a column one after the other (its rows are then read from cache); the
    active set cycles on its own ``H_SS`` (:meth:`_inner`). The face solve's ``H_FF`` is
    formed while ``|F| <= restricted_max`` (its Cholesky against ``K`` passes a model sweep
    costs).
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
        self._kept: tuple | None = None  # (F, H_FF) at this state
        self._rho = None  # no dual bracket for the K x K row blocks (:mod:`._gap`)
        free = self._free(it.x)
        formed = free.size <= self.face_max
        self.model = ProxModel(self._kind, 0.0 if formed else None, 0,
                               float(self._hdiag.max()) if self._hdiag.size else 0.0, free,
                               self._restricted if formed else None)

    def _inner(self, it: Iterate, work: np.ndarray, tol: float):
        """Coordinate descent on ``work``; between full sweeps on the data, the active set
        ``S`` (the non-zeros of ``x + p``) cycles on ``H_SS`` (glmnet's covariance updates:
        ``|S|`` a coordinate, where a data sweep reads the column once per class) while
        ``S`` is small enough to factorize (``face_max``), ``R`` and ``s`` then brought up
        to date from the columns of ``S``. Every sweep is followed by the class-shift steps of
        the columns whose ``K`` coordinates are in ``work`` (:func:`class_shifts`; docs/math.md
        9.2, "Class shifts in coordinate descent"), their image added to ``R`` at the end."""
        indptr, indices, data, ones, M = self._columns()
        n, K = self._P.shape
        x, g, w = it.x, it.grad, self.weights
        p, R, s = np.zeros(x.size), np.zeros((n, K)), np.zeros(n)
        order = work[np.lexsort((work // self._dcols, work % self._dcols))].astype(np.int64)
        args = (indptr, indices, data, self._P, self._sw, self._lam, self._hdiag, g, w, x, ones,
                self._dcols)
        groups = self._shift_groups(order)
        moved = np.zeros(groups.shape[0])
        shifts = (groups, moved) if groups.size else None
        done, viol, read = softmax_cd(*args, order, p, R, s, tol, 1, shifts)  # one full sweep
        sweeps = int(done)
        self.loss.data.count_rows_read(read)
        while viol > tol and sweeps < MAX_SWEEPS:
            S = order[(x[order] + p[order]) != 0]
            if S.size > self.face_max:  # the active set cycles on the data
                done, viol, read = softmax_cd(*args, order, p, R, s, tol, MAX_SWEEPS - sweeps,
                                              shifts)
                sweeps += int(done)
                self.loss.data.count_rows_read(read)
                break
            if S.size:
                sweeps += self._cycle_on_gram(np.sort(S), it, p, R, s, tol, MAX_SWEEPS - sweeps)
            done, viol, read = softmax_cd(*args, order, p, R, s, tol, 1, shifts)
            sweeps += int(done)
            self.loss.data.count_rows_read(read)
        if np.any(moved):  # the class shifts' image: each row's logits move by a constant
            U = self._image_of(groups[:, 0], moved)[:, 0]
            R += U[:, None]
            s += U * self._P.sum(axis=1)
        self.reached = self._reached(viol, tol, it)
        self._last_sweeps = sweeps
        self.inner_sweeps += sweeps
        self._centre(p, R)
        self._r = R
        return p, R

    def _shift_groups(self, coords: np.ndarray) -> np.ndarray:
        """:func:`shift_groups` of ``coords`` (the intercept's column left out)."""
        return shift_groups(coords, self._P.shape[1], self.weights, self._lam, self._columns()[3])

    def _zero_image(self) -> np.ndarray:
        """The image of the zero step, (n, K)."""
        return np.zeros(self._P.shape)

    def _cycle_on_gram(self, S, it, p, R, s, tol, budget) -> int:
        """Coordinate descent on ``S`` with ``H_SS`` to ``tol / 2`` (``p``, ``R``, ``s`` updated
        in place), with the class-shift steps of the columns whose ``K`` coordinates are in
        ``S`` (:func:`shifted_gram_cd`); returns its sweeps."""
        x, g, w, lam = it.x, it.grad, self.weights, self._lam
        HS = self._face_gram(S)
        GS = g[S] + lam[S] * p[S] + self._model_gradient(S, R, s)
        delta, Hd = np.zeros(S.size), np.zeros(S.size)
        loc = np.searchsorted(S, self._shift_groups(S))
        sweeps, _ = shifted_gram_cd(HS, GS, w[S], x[S] + p[S], lam[S],
                                    np.arange(S.size, dtype=np.int64), loc, delta, Hd, 0.5 * tol,
                                    budget)
        p[S] += delta
        U = self._image_of(S, delta)
        R += U
        s += np.einsum("ik,ik->i", self._P, U)
        return sweeps

    def _image_of(self, coords: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``A D^T`` (n, K) of a ``D`` supported on ``coords`` (their columns only)."""
        indptr, indices, data, ones, M = self._columns()
        U = np.zeros(self._P.shape)
        klass, col = np.divmod(coords, self._dcols)
        for k in np.unique(klass):
            j, v = col[klass == k], values[klass == k]
            on = j == ones
            U[:, k] += M[:, j[~on]] @ v[~on] + v[on].sum()
        self._count(col)
        return U

    def _count(self, col: np.ndarray) -> None:
        """Count a read of the columns ``col`` of ``A``."""
        indptr, indices, data, ones, M = self._columns()
        c = col[col != ones]
        self.loss.data.count_rows_read(int(np.sum(indptr[c + 1] - indptr[c])))

    def _model_gradient(self, coords: np.ndarray, R: np.ndarray, s: np.ndarray) -> np.ndarray:
        """``(H d)`` on ``coords`` without the ridge, from ``R = A D^T`` and ``s``:
        ``sum_i sw_i a_ij p_ik (R_ik - s_i)`` (their columns only)."""
        indptr, indices, data, ones, M = self._columns()
        V = self._sw[:, None] * self._P * (R - s[:, None])
        G = np.zeros(coords.size)
        klass, col = np.divmod(coords, self._dcols)
        for k in np.unique(klass):
            sel = np.flatnonzero(klass == k)
            on = col[sel] == ones
            G[sel[~on]] = M[:, col[sel[~on]]].T @ V[:, k]
            G[sel[on]] = V[:, k].sum()
        self._count(col)
        return G

    def _centre(self, p: np.ndarray, R: np.ndarray) -> None:
        """Remove from ``p`` (and its image ``R``) its part along the loss's invariances (the
        intercepts' shift): the dense models' steps have none (``fix_invariances``), and the
        iterates stay centred as theirs (the part lives on a few unpenalised columns)."""
        N = self.builder.null_space
        if N is None:
            return
        shift = N @ (N.T @ p)
        c = np.flatnonzero(shift)
        p[c] -= shift[c]
        R -= self._image_of(c, shift[c])

    def _restricted(self, free: np.ndarray) -> np.ndarray:
        """``H_FF`` (:meth:`_face_gram`), the known null directions made definite as in the
        dense model (``fix_invariances``; :func:`shift_null_space`: the intercepts' shift and
        the class shifts of the columns whose ``K`` coordinates are all in ``F``). ``H_FF`` is
        then factorized by Cholesky (the pseudo-inverse's eigendecomposition took 5-7 times
        longer on the code corpus)."""
        return fix_invariances(self._face_gram(free), self._restricted_null(free))

    def _restricted_null(self, free: np.ndarray) -> np.ndarray | None:
        return shift_null_space(free, self._P.shape[1], self._lam, self.builder.null_space)

    def _face_matrix(self, free: np.ndarray) -> np.ndarray:
        return self._restricted(free)  # made definite along every known null direction

    def _face_gram(self, free: np.ndarray) -> np.ndarray:
        """``H_FF`` (``F`` sorted, without the invariances' fix) from the columns of ``F``:
        ``sum_k`` of the class blocks' weighted Grams minus ``Z^T Z`` (two Grams of the
        project's row-outer-product kernel; ``O(sum_i c_i^2)``, ``c_i`` the coordinates of ``F``
        in row ``i``). Kept at this state for later faces inside ``F`` (a copy is returned); a
        face outside the kept one is formed with it (their union, while at most ``face_max``):
        the faces of one state's solves overlap (code corpus, elastic net 1%: each polish after
        the active set's cycling needed a new ``H_FF`` of about the same coordinates)."""
        kept = self._kept
        if kept is not None:
            loc = np.minimum(np.searchsorted(kept[0], free), kept[0].size - 1)
            if np.array_equal(kept[0][loc], free):
                return kept[1][np.ix_(loc, loc)]
            union = np.union1d(kept[0], free)
            if union.size <= self.face_max:  # the next faces are likely inside the union
                H = self._form_face_gram(union)
                loc = np.searchsorted(union, free)
                return H[np.ix_(loc, loc)]
        return self._form_face_gram(free).copy()

    def _form_face_gram(self, free: np.ndarray) -> np.ndarray:
        """:meth:`_face_gram` formed (and kept)."""
        indptr, indices, data, ones, M = self._columns()
        n = self._P.shape[0]
        klass, col = np.divmod(free, self._dcols)
        # H_FF = blockdiag_k(A_k^T diag(sw p_k) A_k) - Z^T Z, A_k the columns of class k's
        # coordinates (F is sorted: class by class), Z = [diag(sqrt(sw) p_k) A_k]_k
        blocks, Z, read = [], [], 0
        for k in range(self._P.shape[1]):
            cols = col[klass == k]
            if cols.size == 0:
                continue
            Ak = M[:, cols[cols != ones]]
            read += Ak.nnz
            on = bool(cols[-1] == ones)
            wk = self._sw * self._P[:, k]
            blocks.append(DataMatrix(Ak.tocsr(), "A", check_finite=False).gram(wk, ones=on)
                          if Ak.shape[1] else np.array([[wk.sum()]]))  # else the ones only
            z = np.sqrt(self._sw) * self._P[:, k]
            Zk = sp.diags(z) @ Ak
            Z.append(sp.hstack([Zk, sp.csc_matrix(z[:, None])]) if on else Zk)
        HF = -DataMatrix(sp.hstack(Z).tocsr(), "A", check_finite=False).gram(np.ones(n))
        self.loss.data.count_rows_read(read, times=2)
        lo = 0
        for G in blocks:
            HF[lo:lo + G.shape[0], lo:lo + G.shape[0]] += G
            lo += G.shape[0]
        HF[np.diag_indices_from(HF)] += self._lam[free]
        self._kept = (free.copy(), HF)
        return HF
