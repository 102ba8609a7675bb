"""Newton solver for the cross-entropy losses (:class:`LogisticLoss`, :class:`MultinomialLoss`).

Same shape as :class:`sketchnewton.newton.NewtonSolver` (and scikit-learn's
``NewtonSolver``): ``solve`` calls named steps in order (``setup``,
``update_gradient_hessian``, ``inner_solve``, ``line_search``,
``check_convergence``, ``finalize``); the fixed problem lives in
:class:`ClassifierProblem`, the changing iterate in :class:`ClassifierIterate`;
per-iteration diagnostics are a list of dicts.

Methods
-------
``"exact"``
    Newton with the exact dense Hessian: ``A^T diag(sw p(1-p)) A`` (binary)
    or ``BlockHessianFactors.dense()`` (``K (K+1) / 2`` weighted Grams,
    multinomial), Cholesky-solved.
``"pcg"``
    Inexact Newton: conjugate gradients on exact Hessian-vector products (one
    pass over ``A`` each, ``K`` columns at once for the multinomial loss),
    preconditioned by a sketched Hessian built from ``s`` rows sampled by
    leverage scores of ``diag(sqrt(sw h)) A`` with ``h_i = p_i (1 - p_i)``
    (binary) or ``h_i = 1 - ||p_i||^2 = tr B_i`` (multinomial, an upper bound
    of the largest eigenvalue of the per-sample block ``B_i``). The sampled
    rows are reweighted by ``1 / (s pi_i)``; for the multinomial loss the
    preconditioner is the *full* ``(dK) x (dK)`` matrix
    ``sum_r w_r B_{i_r} (x) a_{i_r} a_{i_r}^T`` (``K (K+1)/2`` Grams of the
    ``s`` sampled rows only), so cross-class coupling is kept. Leverage scores
    are invariant to column scaling, which is why PCG's iteration count does
    not depend on the conditioning of ``A``. Scores are computed once
    (``raw_i = l_i / h_i``) and rescaled by the current ``h`` afterwards, as in
    :class:`sketchnewton.hessian.ModelBuilder`; the factorized preconditioner
    is kept for the next iteration when CG needed few iterations
    (``REBUILD_CG``), since factorizing ``(dK)^3 / 3`` flops can cost several
    passes.
``"sketch"``
    The sketched Hessian's step ``-H~^{-1} g`` directly (no CG); linear
    convergence, kept for comparison.
``"auto"``
    :func:`choose_classifier_method` (cost model).

Multinomial shift invariance
----------------------------
``softmax`` is invariant to adding one vector to every class's coefficients,
so the Hessian is singular along ``x -> x + 1_K (x) v`` for unpenalised
coordinates (the intercepts; everything when ``lam = 0``). The gradient is
orthogonal to those directions whenever the iterate is centred
(``sum_k W_k = 0``, true for ``x0 = 0``); every model gets ``mu * P_shift``
added (``P_shift`` the orthogonal projector onto the shift directions, ``mu``
the mean diagonal), which makes it positive definite without changing the
step on the complement. Iterates stay centred: the minimal-norm solution.

Stopping
--------
After an accepted unit step ``p`` (the local regime) the solve stops when
half the squared Newton decrement ``-g^T p / 2 <= tol * |f|`` (the objective
error left is of that order before the step and quadratically smaller after
it); or, after two unit steps in a row with contracting decrements, when the
extrapolated error ``dec_k / 2 * dec_k / dec_{k-1} <= tol |f| / 1000`` (saves
the last, most expensive iteration); or when ``||g|| <= 1e-3 tol ||g_0||``.
"""

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.optimize import OptimizeResult

from ._kernels import kernel_threads, single_threaded_blas
from ._kernels.classification import logistic_pass, multinomial_hess_weights, multinomial_pass
from .exceptions import ConvergenceWarning, InputError
from .hessian import factorize_psd, preconditioned_cg
from .losses import LogisticLoss, MultinomialLoss
from .newton import gram_work_per_nnz
from .sketch import SketchSettings, leverage_scores, sampling_probabilities

__all__ = ["ClassifierNewtonSolver", "ClassifierProblem", "ClassifierIterate", "solve_classifier",
           "choose_classifier_method", "CLASSIFIER_METHODS"]

CLASSIFIER_METHODS = ("auto", "exact", "pcg", "sketch")
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
MAX_DZ = 20.0   # largest change of any logit tried in the first trial step
REBUILD_CG = 6  # rebuild the preconditioner when the last CG solve needed more iterations
EXTRAPOLATION_SAFETY = 1e-3  # stop when the extrapolated error is below this share of tol |f|


# -- loss adapters: cached forward pass, O(n) line-search trials ----------------------
class _RowSampledHessian:
    """The in-memory sketched Hessian: leverage (or uniform) row sampling of the ops' weights.

    Leverage scores of ``diag(sqrt(h)) A`` are computed once (``raw_i = l_i /
    h_i``) and rescaled by the current ``h`` afterwards.
    """

    _raw_leverage = None

    def _probabilities(self, h, sketch, rng, timings):
        if sketch == "uniform":
            return None
        if self._raw_leverage is None:
            t0 = time.perf_counter()
            # scores of A without the implicit intercept column (InterceptMatrix):
            # adding one column changes each score by at most 1/n-ish, and the
            # probabilities are mixed with 10% uniform anyway
            A = getattr(self.A, "base", self.A)
            scores = leverage_scores(A, h, method="approx", random_state=rng)
            self.A.sweeps += 2
            with np.errstate(divide="ignore", invalid="ignore"):
                self._raw_leverage = np.where(h > 0, scores / h, 0.0)
            timings["leverage"] += time.perf_counter() - t0
        scores = h * self._raw_leverage
        if not np.any(scores > 0):
            scores = (h > 0).astype(float)
            if not np.any(scores > 0):
                return None
        return sampling_probabilities(scores, uniform_mix=0.1)

    def sketched_hessian(self, cache, sketch_size, sketch, rng, timings):
        """Sampled Hessian ``(H~, rows kept)`` from ``sketch_size`` rows."""
        h = self.sampling_weights(cache)
        p = self._probabilities(h, sketch, rng, timings)
        settings = SketchSettings("leverage" if p is not None else "uniform", sketch_size)
        S = settings.draw(rng, probabilities=p) if p is not None else settings.draw(rng, n=self.A.n)
        return self.sampled_hessian(cache, S.rows, S.row_weights), S.rows.shape[0]


class _BinaryOps(_RowSampledHessian):
    """Fused evaluations of :class:`LogisticLoss` with cached logits ``z``."""

    def __init__(self, loss):
        self.loss, self.A = loss, loss.A
        self.K = 1
        self.ridge = loss._ridge_block
        self.n_params = self.A.d

    def logits(self, x):
        return self.A.matvec(x)

    def value(self, z, x):
        p, r = np.empty_like(z), np.empty_like(z)
        return logistic_pass(z, self.loss.y, self.loss.sw, p, r) + 0.5 * float(self.ridge @ (x * x))

    def state(self, z, x):
        p, r = np.empty_like(z), np.empty_like(z)
        fun = logistic_pass(z, self.loss.y, self.loss.sw, p, r) + 0.5 * float(self.ridge @ (x * x))
        grad = self.A.rmatvec(r) + self.ridge * x
        return fun, grad, {"p": p, "h": self.loss.sw * p * (1 - p)}

    def hessp(self, cache, v):
        """Return ``(H v, A v)`` (one pass; ``A v`` lets CG accumulate ``A p`` for free)."""
        Hv, Av = self.A.normal_matvec(cache["h"], v)
        return Hv + self.ridge * v, Av

    def start(self):
        """Zero coefficients, intercept at the (weighted) log-odds; returns ``(x0, z0)`` without a pass."""
        freq = np.bincount(self.loss.y.astype(np.int64), weights=self.loss.sw, minlength=2)
        x0 = self.start_from_class_weights(freq)
        return x0, np.full(self.A.n, x0[-1] if self.loss.fit_intercept else 0.0)

    def start_from_class_weights(self, freq):
        """``x0`` from the total sample weight of each class, ``freq`` (2,)."""
        x0 = np.zeros(self.n_params)
        if self.loss.fit_intercept:
            tot = float(freq.sum())
            p1 = float(freq[1]) / tot if tot > 0 else 0.5
            p1 = min(max(p1, 1e-6), 1 - 1e-6)
            x0[-1] = np.log(p1 / (1 - p1))
        return x0

    def sampling_weights(self, cache):
        return cache["h"]

    def exact_hessian(self, cache):
        H = self.A.gram(cache["h"])
        H[np.diag_indices_from(H)] += self.ridge
        return H

    def sampled_hessian(self, cache, rows, row_weights):
        H = self.A.gram(row_weights ** 2 * cache["h"][rows], rows=rows)
        H[np.diag_indices_from(H)] += self.ridge
        return H

    def shift_fix(self, H):
        return H


class _MultinomialOps(_RowSampledHessian):
    """Fused evaluations of :class:`MultinomialLoss` with cached logits ``Z`` (n, K)."""

    def __init__(self, loss):
        self.loss, self.A = loss, loss.A
        self.K = loss.n_classes
        self.d = self.A.d
        self.ridge = loss._ridge
        self.n_params = self.K * self.d

    def logits(self, x):
        return self.A.matmat(x.reshape(self.K, self.d).T)

    def value(self, Z, x):
        P, R = np.empty_like(Z), np.empty_like(Z)
        return multinomial_pass(Z, self.loss.y, self.loss.sw, P, R) + 0.5 * float(self.ridge @ (x * x))

    def state(self, Z, x):
        P, R = np.empty_like(Z), np.empty_like(Z)
        fun = multinomial_pass(Z, self.loss.y, self.loss.sw, P, R) + 0.5 * float(self.ridge @ (x * x))
        grad = self.A.rmatmat(R).T.ravel() + self.ridge * x
        return fun, grad, {"P": P}

    def hessp(self, cache, v):
        """Return ``(H v, A V^T)`` (one pass of K columns)."""
        Zd = self.logits(v)
        M = multinomial_hess_weights(cache["P"], self.loss.sw, Zd, np.empty_like(Zd))
        return self.A.rmatmat(M).T.ravel() + self.ridge * v, Zd

    def start(self):
        """Zero coefficients, centred intercepts at the log class frequencies; no pass."""
        x0 = self.start_from_class_weights(np.bincount(self.loss.y, weights=self.loss.sw,
                                                       minlength=self.K))
        Z0 = np.zeros((self.A.n, self.K))
        Z0[:] = x0.reshape(self.K, self.d)[:, -1] if self.loss.fit_intercept else 0.0
        return x0, Z0

    def start_from_class_weights(self, freq):
        """``x0`` from the total sample weight of each class, ``freq`` (K,)."""
        K, d = self.K, self.d
        x0 = np.zeros(self.n_params)
        if self.loss.fit_intercept:
            freq = np.maximum(freq / max(freq.sum(), np.finfo(float).tiny), 1e-6)
            b = np.log(freq)
            b -= b.mean()
            x0.reshape(K, d)[:, -1] = b
        return x0

    def sampling_weights(self, cache):
        P = cache["P"]
        return self.loss.sw * np.maximum(1.0 - np.einsum("ij,ij->i", P, P), 0.0)

    def _blocks(self, P, sw, rows=None):
        K, d = self.K, self.d
        H = np.zeros((K * d, K * d))
        for k in range(K):
            for l in range(k, K):
                wkl = -sw * P[:, k] * P[:, l]
                if k == l:
                    wkl = wkl + sw * P[:, k]
                blk = self.A.gram(wkl, rows=rows)
                H[k * d:(k + 1) * d, l * d:(l + 1) * d] = blk
                if l != k:
                    H[l * d:(l + 1) * d, k * d:(k + 1) * d] = blk.T
        H[np.diag_indices_from(H)] += self.ridge
        return H

    def exact_hessian(self, cache):
        return self._blocks(cache["P"], self.loss.sw)

    def sampled_hessian(self, cache, rows, row_weights):
        return self._blocks(cache["P"][rows], row_weights ** 2 * self.loss.sw[rows], rows=rows)

    def shift_fix(self, H):
        """Add ``mu P_shift``: positive along the class-shift directions, zero elsewhere."""
        K, d = self.K, self.d
        mu = max(float(np.mean(np.diag(H))), 1e-12)
        idx = np.arange(d)
        for k in range(K):
            for l in range(K):
                H[k * d + idx, l * d + idx] += mu / K
        return H


def choose_classifier_method(A, n_classes=2, sketch_size=None):
    """``"exact"`` or ``"pcg"`` from a cost model in passes (one ``A x`` plus one ``A^T y``).

    Calibrated on the n = 1e6 benchmark matrices (sparse d = 500 with 10
    non-zeros per row, dense d = 100; one BLAS thread):

    * every Newton iteration pays ``c0 = 1 + 50 K n / nnz(A)``: the gradient
      pass plus the O(n K) element-wise work of the loss and the line search
      (6 passes on the sparse matrix, where a pass is only 14 ms);
    * the exact Hessian adds ``K (K+1)/2`` weighted Grams (``K = 1`` for
      binary) of ``0.42 sum_i nnz_i^2 / nnz(A)`` passes each for sparse ``A``
      (measured 4.6) and ``d / 14`` for dense ``A`` (blocked SYRK: 7.1);
    * PCG instead adds about 3.5 Hessian products per iteration, each a fused
      sweep of ``K`` columns (about ``1.1 (1 + K) / 2`` passes), needs about
      one Newton iteration more (5 against 6 measured), and pays once for the
      leverage scores of its preconditioner:
      ``3 + 0.26 d^3 / nnz(A)`` plus the score estimator (``0.5 sum nnz_i^2 /
      nnz`` sparse, 2.5 dense), measured 13 passes sparse and 3 dense.

    Measured then: sparse binary exact 0.75 s against PCG 1.08 s; dense
    binary PCG 2.48 s against exact 2.92 s; multinomial K = 5: PCG on both.
    """
    n, d = A.shape
    K = 1 if n_classes <= 2 else n_classes
    s = 20 * d if sketch_size is None else sketch_size
    if n <= 2 * s:
        return "exact"
    nnz = max(float(A.nnz), 1.0)
    work = gram_work_per_nnz(A) if A.is_sparse else None
    c0 = 1.0 + 50.0 * K * n / nnz
    gram = 0.42 * work if A.is_sparse else d / 14.0
    leverage = 3.0 + 0.26 * d ** 3 / nnz + (0.5 * work if A.is_sparse else 2.5)
    iters = 5
    exact = iters * (c0 + K * (K + 1) / 2 * gram) + (d * K) ** 3 / 3 / (4 * nnz)
    pcg = (iters + 1) * (c0 + 3.5 * 1.1 * (1 + K) / 2) + leverage
    return "exact" if exact <= pcg else "pcg"


@dataclass
class ClassifierProblem:
    """The fixed data of a solve."""

    loss: object
    tol: float
    method: str
    sketch: str
    sketch_size: int | None
    max_iter: int
    rng: np.random.Generator
    verbose: int = 0


@dataclass
class ClassifierIterate:
    """The changing state: iterate, cached logits, loss value, gradient, model."""

    x: np.ndarray
    Z: np.ndarray
    fun: float
    grad: np.ndarray
    cache: dict
    model: object = None
    step: np.ndarray | None = None
    step_size: float = 0.0
    decrement: float = np.inf
    cg_iter: int = 0


class ClassifierNewtonSolver:
    """Globalised Newton method (exact, sketch-preconditioned CG, or sketched) for cross-entropy."""

    def __init__(self, problem):
        self.problem = problem
        loss = problem.loss
        if hasattr(loss, "make_ops"):  # a loss whose data live elsewhere (the Dask backend)
            self.ops = loss.make_ops()
        else:
            self.ops = _MultinomialOps(loss) if isinstance(loss, MultinomialLoss) else _BinaryOps(loss)
        self.A = loss.A
        self.history = []
        self.timings = dict(gradient=0.0, leverage=0.0, hessian=0.0, factorization=0.0,
                            inner_solve=0.0, line_search=0.0)
        self.status, self.message, self.nit = None, "", 0
        self._last_cg = np.inf
        self._prev_decrement = None

    # -- steps ------------------------------------------------------------------------------
    def setup(self, x0):
        """Evaluate loss and gradient at ``x0``. Sets ``self.it``, ``self.t0``, ``self.sketch_size``."""
        pb = self.problem
        self.t0 = time.perf_counter()
        self.sweeps0 = self.A.sweeps
        if x0 is None:
            x0, Z = self.ops.start()
        else:
            Z = self.ops.logits(x0)
        fun, grad, cache = self.ops.state(Z, x0)
        self.timings["gradient"] += time.perf_counter() - self.t0
        self.it = ClassifierIterate(x0, Z, fun, grad, cache)
        self.g0_norm = max(float(np.linalg.norm(grad)), np.finfo(float).tiny)
        size = pb.sketch_size if pb.sketch_size is not None else 20 * self.A.d
        self.sketch_size = int(min(size, self.A.n))

    def update_gradient_hessian(self):
        """Build and factorize the Hessian model. Sets ``it.model`` (keeps it when still good)."""
        pb, it, ops = self.problem, self.it, self.ops
        if pb.method == "pcg" and it.model is not None and self._last_cg <= REBUILD_CG:
            return
        t0 = time.perf_counter()
        if pb.method == "exact":
            H, s = ops.exact_hessian(it.cache), 0
        else:
            H, s = ops.sketched_hessian(it.cache, self.sketch_size, pb.sketch, pb.rng, self.timings)
        H = ops.shift_fix(H)
        t1 = time.perf_counter()
        self.timings["hessian"] += t1 - t0
        try:
            cho = sla.cho_factor(H, lower=False, check_finite=False)
            model = _Model(H, cho=cho, sketch_size=s)
        except (np.linalg.LinAlgError, ValueError):
            m = factorize_psd(H, "full", s)
            model = _Model(H, eig=m.eig, damping=m.damping, sketch_size=s)
        self.timings["factorization"] += time.perf_counter() - t1
        it.model = model

    def inner_solve(self):
        """Compute the step. Sets ``it.step``, ``it.cg_iter``, ``it.decrement`` (= ``-g^T p``)."""
        t0 = time.perf_counter()
        it, g = self.it, self.it.grad
        self._Ap = None
        if self.problem.method == "pcg":
            p, it.cg_iter, self._Ap = self._pcg(g)
        else:
            p, it.cg_iter = -it.model.solve(g), 0
        if not float(g @ p) < 0:
            self._Ap = None
            p = -it.model.solve(g)
            if not float(g @ p) < 0:
                p = -g
        self._last_cg = it.cg_iter
        it.step = p
        it.decrement = -float(g @ p)
        self.timings["inner_solve"] += time.perf_counter() - t0

    def _pcg(self, g):
        """PCG on ``H p = -g``; forcing term ``eta = min(0.1, sqrt(||g|| / ||g_0||))``.

        (A forcing term loosened by the objective target, ``eta^2 g^T M^{-1} g
        / 2 <= share * tol |f|``, was tried: it lost the 1e-5 agreement with
        scikit-learn on ill-conditioned problems, the Euclidean residual being
        a poor proxy of the energy error there.)
        """
        ops, model = self.ops, self.it.model
        eta = max(min(0.1, np.sqrt(np.linalg.norm(g) / self.g0_norm)), 1e-6)
        max_cg = max(50, int(np.sqrt(g.size)) * 4)
        x, Ax, k, ok = preconditioned_cg(lambda v: ops.hessp(self.it.cache, v), model, -g, eta,
                                         max_cg)
        if not ok and k <= 1:  # negative curvature at once: the preconditioned gradient step
            return model.solve(-g), k, None
        return x, k, Ax

    def line_search(self):
        """Backtracking Armijo search along ``it.step`` with ``Z(t) = Z + t A p`` (O(n K) per trial).

        Sets ``it.x``, ``it.Z``, ``it.fun``, ``it.grad``, ``it.cache``, ``it.step_size``.
        Returns False when no decrease was found.
        """
        t0 = time.perf_counter()
        ops, it = self.ops, self.it
        p, slope = it.step, float(it.grad @ it.step)
        Zp = self._Ap if getattr(self, "_Ap", None) is not None else ops.logits(p)
        self._Ap = None
        dz = float(np.abs(Zp).max()) if Zp.size else 0.0
        t = 1.0 if dz <= MAX_DZ else MAX_DZ / dz
        roundoff = 64 * np.finfo(float).eps * max(abs(it.fun), np.finfo(float).tiny)
        accepted = None
        for _ in range(_MAX_HALVINGS):
            x_new, Z_new = it.x + t * p, it.Z + t * Zp
            f_new = ops.value(Z_new, x_new)
            if np.isfinite(f_new) and (f_new <= it.fun + _ARMIJO * t * slope
                                       or (abs(t * slope) <= roundoff and f_new <= it.fun + roundoff)):
                accepted = (x_new, Z_new)
                break
            t *= 0.5
        self.timings["line_search"] += time.perf_counter() - t0
        if accepted is None:
            return False
        t1 = time.perf_counter()
        it.fun, it.grad, it.cache = ops.state(accepted[1], accepted[0])
        it.x, it.Z, it.step_size = accepted[0], accepted[1], t
        self.timings["gradient"] += time.perf_counter() - t1
        return True

    def check_convergence(self):
        """Half the squared Newton decrement of the last unit step, or the gradient norm."""
        it, tol = self.it, self.problem.tol
        gnorm = float(np.linalg.norm(it.grad))
        if gnorm <= 1e-3 * tol * self.g0_norm or gnorm == 0.0:
            return True
        prev, self._prev_decrement = self._prev_decrement, None
        if it.step is None or it.step_size != 1.0:
            return False
        self._prev_decrement = it.decrement
        scale = tol * max(abs(it.fun), np.finfo(float).tiny)
        if 0.5 * it.decrement <= scale:
            return True
        # two unit steps in a row: the decrement contracts (at least) linearly, so the
        # objective error left at x_k is about dec_k/2 * (dec_k / dec_{k-1})
        if prev is not None and it.decrement < 0.5 * prev:
            return 0.5 * it.decrement * (it.decrement / prev) <= EXTRAPOLATION_SAFETY * scale
        return False

    def _record(self):
        it = self.it
        row = dict(iter=self.nit, loss=it.fun, grad_norm=float(np.linalg.norm(it.grad)),
                   step_size=it.step_size, decrement=0.5 * it.decrement, cg_iter=it.cg_iter,
                   sketch_size=it.model.sketch_size if it.model is not None else 0,
                   passes=(self.A.sweeps - self.sweeps0) / 2, seconds=time.perf_counter() - self.t0)
        self.history.append(row)
        if self.problem.verbose:
            if self.nit == 0:
                print(f"{'iter':>4} {'loss':>16} {'|grad|':>10} {'step':>7} {'dec/2':>9} "
                      f"{'sketch':>7} {'cg':>3} {'passes':>7} {'sec':>7}")
            print(f"{row['iter']:4d} {row['loss']:16.9e} {row['grad_norm']:10.3e} "
                  f"{row['step_size']:7.3g} {row['decrement']:9.2e} {row['sketch_size']:7d} "
                  f"{row['cg_iter']:3d} {row['passes']:7.1f} {row['seconds']:7.2f}", flush=True)

    def solve(self, x0):
        pb = self.problem
        self.setup(x0)
        while True:
            converged = self.check_convergence()
            self._record()
            if converged:
                self.status, self.message = 0, "converged"
                break
            if self.nit >= pb.max_iter:
                self.status, self.message = 1, f"maximum number of iterations ({pb.max_iter}) reached"
                break
            self.update_gradient_hessian()
            self.inner_solve()
            if not self.line_search():
                self.it.step = -self.it.grad * (np.linalg.norm(self.it.step) / np.linalg.norm(self.it.grad))
                self.it.decrement = float(self.it.grad @ self.it.grad) * (
                    np.linalg.norm(self.it.step) / np.linalg.norm(self.it.grad))
                if not self.line_search():
                    self.status, self.message = 2, "no decrease possible (machine precision)"
                    break
            self.nit += 1
        return self.finalize()

    def finalize(self):
        """Assemble the result; warn with ``ConvergenceWarning`` when not converged."""
        it = self.it
        success = self.status == 0
        if self.status == 2:
            # the line search fails at machine precision: converged if the decrement is negligible
            success = 0.5 * it.decrement <= 1e3 * self.problem.tol * max(abs(it.fun), 1e-300)
        if not success:
            warnings.warn(f"Newton solver did not converge: {self.message}", ConvergenceWarning,
                          stacklevel=3)
        return OptimizeResult(x=it.x, fun=it.fun, grad_norm=float(np.linalg.norm(it.grad)),
                              nit=self.nit, success=bool(success), status=self.status,
                              message=self.message, method=self.problem.method,
                              passes=(self.A.sweeps - self.sweeps0) / 2,
                              time=time.perf_counter() - self.t0, timings=dict(self.timings),
                              history=self.history)


@dataclass
class _Model:
    matrix: np.ndarray
    cho: tuple | None = None
    eig: tuple | None = None
    damping: float = 0.0
    sketch_size: int = 0

    def solve(self, g):
        if self.cho is not None:
            return sla.cho_solve(self.cho, g, check_finite=False)
        V, inv = self.eig
        return V @ (inv * (V.T @ g))


def solve_classifier(loss, *, tol=1e-8, method="auto", sketch="leverage", sketch_size=None, x0=None,
                     max_iter=100, random_state=None, verbose=0):
    """Minimise a :class:`LogisticLoss` or :class:`MultinomialLoss`; returns an ``OptimizeResult``.

    ``result.x`` (length ``loss.n_params``), ``fun``, ``nit``, ``success``,
    ``method`` (what ``"auto"`` chose), ``passes``, ``time``, ``timings``,
    ``history`` (list of dicts). See the module docstring for the methods and
    the stopping rule.
    """
    from ._validation import check_random_state

    from ._dask import DaskClassifierLoss

    if not isinstance(loss, (LogisticLoss, MultinomialLoss, DaskClassifierLoss)):
        raise InputError("loss must be a LogisticLoss, MultinomialLoss or DaskClassifierLoss")
    if method not in CLASSIFIER_METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {CLASSIFIER_METHODS}")
    if sketch not in ("leverage", "uniform"):
        raise InputError(f"unknown sketch {sketch!r}; expected 'leverage' or 'uniform'")
    K = 2 if isinstance(loss, LogisticLoss) else loss.n_classes
    if method == "auto":
        method = choose_classifier_method(loss.A, K, sketch_size)
    rng = check_random_state(random_state)
    x0 = None if x0 is None else np.asarray(x0, dtype=np.float64).copy()
    pb = ClassifierProblem(loss, float(tol), method, sketch, sketch_size, int(max_iter), rng, verbose)
    # the client of a distributed solve runs no kernels (and must not hold their launch lock)
    threads = nullcontext() if isinstance(loss, DaskClassifierLoss) else kernel_threads(loss.A.nnz)
    with threads, single_threaded_blas():
        return ClassifierNewtonSolver(pb).solve(x0)


