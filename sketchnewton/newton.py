"""The approximate Newton driver and :func:`solve`.

:class:`NewtonSolver` follows scikit-learn's ``NewtonSolver``: ``solve``
calls named steps in order (``setup``, ``check_convergence``,
``update_gradient_hessian``, ``inner_solve``, ``line_search``,
``finalize``). The fixed problem lives in :class:`Problem`, the changing
iterate in :class:`Iterate`; per-iteration diagnostics are a list of dicts.
"""

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from scipy.optimize import OptimizeResult

from ._kernels import kernel_threads, single_threaded_blas
from ._validation import check_finite_scalar, check_random_state, check_vector
from .exceptions import ConvergenceWarning, DomainError, InputError
from .hessian import SKETCHES, ModelBuilder, factorize, factorize_psd, preconditioned_cg
from .losses import NormalizedRegressionLoss

__all__ = ["solve", "SolveResult", "NewtonSolver", "Problem", "Iterate", "METHODS", "choose_method",
           "gram_work_per_nnz"]

METHODS = ("auto", "exact", "sketch", "pcg")
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
SKETCH_TARGET_RATE = 0.3  # method "sketch" doubles s when errors contract slower than this
PCG_REFRESH = 10  # CG iterations beyond which the next preconditioner gets fresh scores
MAX_DZ = 4.0  # largest change of any z_i = a_i^T x tried in one step
MODEL_REUSE_DZ = 0.1  # a model built before a step that moved z less than this may judge convergence


class SolveResult(OptimizeResult):
    """Result of :func:`solve` (a ``scipy.optimize.OptimizeResult``).

    Attributes
    ----------
    x : ndarray (d,)
        The solution.
    fun : float
        Loss at ``x``.
    grad_norm : float
        ``||grad L(x)||_2``.
    error_bound : float
        Estimate of ``||x - x*||_2`` (see :func:`solve`, "Error bound").
    error_bound_kind : {"estimate", "guarantee"}
    nit : int
        Newton iterations.
    success : bool
        True when ``error_bound <= eps``.
    status : int
        0 converged, 1 iteration limit, 2 no further progress possible
        (line search failed at machine precision), 3 stopped by callback.
    message : str
    method : str
        The method used (what ``"auto"`` chose).
    passes : float
        Passes over ``A`` (one pass = one ``A @ x`` plus one ``A.T @ y``;
        a Gram of sampled rows counts the fraction of non-zeros it reads;
        the exact Gram counts one sweep although it costs ``O(sum nnz_i^2)``,
        see ``timings``).
    time : float
        Wall-clock seconds.
    timings : dict
        Seconds spent in gradient, leverage scores, sketch, gram,
        factorization, inner solve and line search.
    history : list of dict
        Per iteration: ``iter, loss, grad_norm, step_size, step_norm,
        error_estimate, sketch_size, cg_iter, model, passes, seconds``.
    """


@dataclass
class Problem:
    """The fixed data of a solve."""

    loss: NormalizedRegressionLoss
    eps: float
    method: str
    sketch: str
    sketch_size: int | None
    max_iter: int
    rng: np.random.Generator
    verbose: int = 0
    callback: object = None


@dataclass
class Iterate:
    """The changing state: iterate, its loss state and the current model."""

    x: np.ndarray
    state: object
    model: object = None
    step: np.ndarray | None = None
    step_image: np.ndarray | None = None
    step_size: float = 0.0
    last_dz: float = np.inf
    error_estimate: float = np.inf
    cg_iter: int = 0

    @property
    def fun(self):
        return self.state.fun

    @property
    def grad(self):
        return self.state.grad


def gram_work_per_nnz(A):
    """``sum_i nnz_i^2 / nnz(A)``: the exact Gram's work per stored non-zero (sparse ``A``)."""
    return A.row_nnz_squares() / max(A.nnz, 1)


def choose_method(A, sketch_size=None):
    """Pick ``"exact"`` or ``"pcg"`` from the kernels' cost model (in passes).

    An exact Newton iteration costs about ``1.5 + g`` passes, ``g`` the cost
    of the exact Gram: ``0.3 sum_i nnz_i^2 / nnz(A)`` for sparse ``A``
    (measured on an idle 2-core machine: 2.9 passes at 10 non-zeros per row,
    16 at 50) and about ``d / 30`` for dense ``A`` (one-thread BLAS against a
    memory-bound pass). A sketch-preconditioned Newton-CG iteration costs 3-6
    passes whatever the row density, plus a one-off 3-5 passes for the
    leverage scores, over a similar number of iterations. Exact Newton is
    chosen when ``g <= 3.5`` (up to ~11 non-zeros per row; measured at 10 per
    row: exact fastest on a well-conditioned planted problem, 1.25x the
    fastest (``sketch``) on an ill-conditioned one) or when ``n`` is so small that a
    sketch would keep most rows anyway; else ``"pcg"``.
    """
    n, d = A.shape
    s = 20 * d if sketch_size is None else sketch_size
    if n <= 2 * s:
        return "exact"
    gram_passes = 0.3 * gram_work_per_nnz(A) if A.is_sparse else d / 30.0
    return "exact" if gram_passes <= 3.5 else "pcg"


class NewtonSolver:
    """Globalised (approximate) Newton method for :class:`NormalizedRegressionLoss`.

    Each iteration: one fused pass for loss, gradient and the low-rank Hessian
    factors; a model ``H~`` of the Hessian (exact, or sketched diagonal part +
    exact low rank); a step ``p = -H~^{-1} g`` (``"pcg"``: conjugate gradients
    on exact Hessian-vector products preconditioned by ``H~``); a backtracking
    Armijo line search that rejects steps leaving the domain (``alpha <= 0``)
    or with non-finite loss.

    The model is the full Hessian when it is positive definite, else the
    Gauss-Newton matrix (always PSD; when singular, e.g. along the softmax
    shift, its pseudo-inverse), else a Levenberg-Marquardt damped matrix.
    """

    def __init__(self, problem):
        self.problem = problem
        self.history = []
        self.timings = dict(gradient=0.0, factorization=0.0, inner_solve=0.0, line_search=0.0)
        self.status = None
        self.message = ""
        self.nit = 0

    # -- steps ----------------------------------------------------------------
    def setup(self, x0):
        """Evaluate the loss at ``x0``. Sets ``self.it``, ``self.builder``, ``self.t0``."""
        pb = self.problem
        self.t0 = time.perf_counter()
        self.A = pb.loss.A
        self.sweeps0 = self.A.sweeps
        try:
            state = pb.loss.evaluate(x0, hessian=True)
        except DomainError as exc:
            raise DomainError(f"the starting point is outside the domain of the loss: {exc}") from None
        self.timings["gradient"] += time.perf_counter() - self.t0
        self.it = Iterate(x0, state)
        sketch = "exact" if pb.method == "exact" else pb.sketch
        size = pb.sketch_size
        if size is None:
            size = 20 * self.A.d
        self.sketch_size = int(size)
        # a loss whose data live elsewhere (the Dask backend) brings its own Gram builder
        make_builder = getattr(pb.loss, "model_builder", ModelBuilder)
        self.builder = make_builder(sketch, self.sketch_size, pb.rng)
        self.d = self.A.d

    def _sketch_error(self, model):
        """Conservative spectral-error level of the model (0 for exact)."""
        if model is None or model.sketch_size == 0:
            return 0.0
        return min(0.9, 2.0 * np.sqrt(self.d / max(model.sketch_size, 1)))

    def check_convergence(self, fresh=False):
        """Estimate ``||x_k - x*||``. Sets ``it.error_estimate``; True when ``<= eps``.

        ``error_estimate = ||H~^{-1} g_k|| / (1 - e)`` with ``H~`` the current
        factorized model and ``e`` its spectral-error level (0 for the exact
        model). Before a new model is built (``fresh=False``) the last one,
        built at ``x_{k-1}``, is used, but convergence is declared only in
        the local regime: the last step was a full step (``step_size == 1``)
        that moved no ``z_i`` by more than ``MODEL_REUSE_DZ``, so the Hessian
        (which varies like ``exp(z)``) changed by at most ~10%. Otherwise the
        driver builds the model at ``x_k`` and checks again (``fresh=True``).
        """
        it = self.it
        gnorm = float(np.linalg.norm(it.grad))
        if gnorm == 0.0:
            it.error_estimate = 0.0
            return True
        if it.model is None:
            return False
        est = float(np.linalg.norm(it.model.solve(it.grad))) / (1.0 - self._sketch_error(it.model))
        it.error_estimate = est
        if fresh:
            return est <= self.problem.eps
        return est <= self.problem.eps and it.step_size == 1.0 and it.last_dz <= MODEL_REUSE_DZ

    def adapt_sketch(self):
        """Method ``"sketch"``: double the sketch size when contraction is poor.

        Adaptive Newton Sketch (Lacotte, Wang, Pilanci 2021): in the local
        regime (unit steps) the error of the sketched Newton iteration
        contracts by about the sketch's spectral error; when the observed
        ratio of successive error estimates exceeds ``SKETCH_TARGET_RATE``
        (0.3), or the line search
        had to cut the step below 1/2 (a poor model), the sketch doubles (up
        to ``n``). Sets ``builder.sketch_size``.
        """
        if self.problem.method != "sketch" or self.problem.sketch_size is not None:
            return
        if len(self.history) < 3:
            return
        prev = self.history[-2]["error_estimate"]  # history[-1] is the current iterate
        ratio = self.it.error_estimate / prev if np.isfinite(prev) and prev > 0 else 0.0
        poor = ratio > SKETCH_TARGET_RATE if self.it.step_size == 1.0 else self.it.step_size < 0.5
        if poor and self.builder.sketch_size < self.A.n:
            self.builder.sketch_size = min(2 * self.builder.sketch_size, self.A.n)

    def update_gradient_hessian(self):
        """Build and factorize the Hessian model at ``x_k``. Sets ``it.model``, ``self.hess``.

        ``"pcg"`` keeps its preconditioner in the local regime (the last full
        step moved no ``z_i`` by more than ``MODEL_REUSE_DZ``, so the Hessian
        changed by ~10%): CG corrects the difference with exact products.
        """
        loss, it = self.problem.loss, self.it
        state = it.state
        full = loss.hessian_factors(state, "full")
        gn = loss.hessian_factors(state, "gauss_newton")
        self.hess = {"full": full, "gauss_newton": gn}
        if (self.problem.method == "pcg" and it.model is not None and it.step_size == 1.0
                and it.last_dz <= MODEL_REUSE_DZ and it.cg_iter <= PCG_REFRESH):
            return
        exact = self.builder.sketch == "exact"
        samplers = self.builder.sketch in ("leverage", "uniform")
        model = None
        kinds = ["full", "gauss_newton"] if (exact or samplers) else ["gauss_newton"]
        for kind in kinds:
            if exact:
                H, s = self.builder.exact(self.hess[kind]), 0
            else:
                H, s = self.builder.sketched(full, gn, kind)
            t0 = time.perf_counter()
            model = factorize(H, kind, s)
            if model is None and kind == "gauss_newton":
                model = factorize_psd(H, kind, s)
            self.timings["factorization"] += time.perf_counter() - t0
            if model is not None:
                break
        self.it.model = model

    def inner_solve(self):
        """Compute the step ``p``. Sets ``it.step``, ``it.step_image`` (``A p`` or None), ``it.cg_iter``."""
        t0 = time.perf_counter()
        it, g = self.it, self.it.grad
        model = it.model
        p, Ap, it.cg_iter = None, None, 0
        if self.problem.method == "pcg":
            p, Ap, it.cg_iter, ok = self._pcg(self.hess[model.kind], model, g)
            if not ok and model.kind == "full":
                p, Ap, cg2, ok = self._pcg(self.hess["gauss_newton"], model, g)
                it.cg_iter += cg2
            if not ok or not float(g @ p) < 0:
                p, Ap = None, None
            if it.cg_iter > PCG_REFRESH:
                self.builder.refresh()  # a poor preconditioner: stale leverage scores
        if p is None:
            p = -model.solve(g)
        if not float(g @ p) < 0:
            p, Ap = -g * (np.linalg.norm(p) / np.linalg.norm(g)), None
        it.step, it.step_image = p, Ap
        self.timings["inner_solve"] += time.perf_counter() - t0

    def _pcg(self, H, model, g):
        """Preconditioned CG on ``H p = -g``. Returns ``(p, A p, iterations, ok)``.

        Forcing term ``eta = min(0.5, sqrt(||g|| / ||g_0||))`` (superlinear
        inexact Newton), relaxed to ``0.1 eps / error_estimate`` when that is
        larger: the step need not be more accurate than the target. ``A p`` is
        accumulated from the images ``A d_k`` the Hessian products compute
        anyway, so the line search needs no extra pass. ``ok`` is False on
        negative curvature (the full Hessian is indefinite there).
        """
        eta = min(0.5, np.sqrt(np.linalg.norm(g) / self.g0_norm))
        est = self.it.error_estimate
        if np.isfinite(est) and est > 0:
            eta = max(eta, min(0.5, 0.1 * self.problem.eps / est))
        eta = max(eta, 1e-6)
        max_cg = max(20, 2 * int(np.sqrt(self.d)))
        x, Ax, k, ok = preconditioned_cg(H.matvec_with_image, model, -g, eta, max_cg)
        # negative curvature after some progress: keep the partial solution
        return x, Ax, k, ok or k > 1

    def line_search(self):
        """Backtracking Armijo search along ``it.step``. Sets ``it.x``, ``it.state``, ``it.step_size``.

        ``A p`` is computed once, so every trial point costs O(n), not a pass
        (``z(t) = z + t A p``). The first trial is capped so that no entry of
        ``z`` moves by more than ``MAX_DZ`` (the links grow like ``exp(z)``).
        Steps where the loss is not finite or ``alpha <= 0`` are rejected. When
        the predicted decrease is below the loss's rounding error, a step is
        accepted if it does not increase ``||H~^{-1} g||``. Returns False
        when no acceptable step exists.
        """
        t0 = time.perf_counter()
        loss, it = self.problem.loss, self.it
        f0, g, p = it.fun, it.grad, it.step
        Ap = self.A.matvec(p) if it.step_image is None else it.step_image
        slope = float(g @ p)
        roundoff = 64 * np.finfo(float).eps * max(abs(f0), np.finfo(float).tiny)
        dz = float(np.abs(Ap).max())
        t = 1.0 if dz <= MAX_DZ else MAX_DZ / dz
        z0 = it.state.z
        accepted = None
        for _ in range(_MAX_HALVINGS):
            try:
                fw = loss.forward(it.x + t * p, z0 + t * Ap)
            except DomainError:
                t *= 0.5
                continue
            f_new = fw.fun
            if f_new <= f0 + _ARMIJO * t * slope:
                accepted = fw
                break
            if abs(t * slope) <= roundoff and f_new <= f0 + roundoff:
                # the decrease is invisible in the loss: judge by the model's
                # Newton decrement, which rounding does not hide
                state = loss.evaluate(fw.x, forward=fw)
                x_new = fw.x
                model = it.model
                if np.linalg.norm(model.solve(state.grad)) <= np.linalg.norm(model.solve(g)):
                    self.timings["line_search"] += time.perf_counter() - t0
                    it.x, it.state, it.step_size, it.last_dz = x_new, state, t, t * dz
                    return True
                break
            t *= 0.5
        self.timings["line_search"] += time.perf_counter() - t0
        if accepted is None:
            return False
        t1 = time.perf_counter()
        it.state = loss.evaluate(accepted.x, forward=accepted)
        self.timings["gradient"] += time.perf_counter() - t1
        it.x, it.step_size, it.last_dz = accepted.x, t, t * dz
        return True

    def _record(self):
        it = self.it
        row = dict(iter=self.nit, loss=it.fun, grad_norm=float(np.linalg.norm(it.grad)),
                   step_size=it.step_size,
                   step_norm=float(np.linalg.norm(it.step)) if it.step is not None else 0.0,
                   error_estimate=it.error_estimate,
                   sketch_size=it.model.sketch_size if it.model is not None else 0,
                   cg_iter=it.cg_iter, model=it.model.kind if it.model is not None else "",
                   passes=(self.A.sweeps - self.sweeps0) / 2,
                   seconds=time.perf_counter() - self.t0)
        self.history.append(row)
        if self.problem.verbose:
            if self.nit == 0:
                print(f"{'iter':>4} {'loss':>13} {'|grad|':>10} {'step':>7} {'err est':>9} "
                      f"{'sketch':>7} {'cg':>3} {'passes':>7} {'sec':>7}")
            print(f"{row['iter']:4d} {row['loss']:13.6e} {row['grad_norm']:10.3e} "
                  f"{row['step_size']:7.3g} {row['error_estimate']:9.2e} {row['sketch_size']:7d} "
                  f"{row['cg_iter']:3d} {row['passes']:7.1f} {row['seconds']:7.2f}", flush=True)
        cb = self.problem.callback
        if cb is not None:
            try:
                stop = cb(OptimizeResult(x=it.x.copy(), fun=it.fun, nit=self.nit, **{
                    k: v for k, v in row.items() if k not in ("iter", "loss")}))
            except StopIteration:
                stop = True
            if stop:
                self.status, self.message = 3, "stopped by callback"

    def solve(self, x0):
        """Run the method from ``x0``; returns a :class:`SolveResult`."""
        pb = self.problem
        self.setup(x0)
        self.g0_norm = max(float(np.linalg.norm(self.it.grad)), np.finfo(float).tiny)
        while True:
            converged = self.check_convergence()
            self._record()
            if self.status is not None:
                break
            if converged:
                self.status, self.message = 0, "converged: estimated error <= eps"
                break
            if self.nit >= pb.max_iter:
                self.status, self.message = 1, f"maximum number of iterations ({pb.max_iter}) reached"
                break
            self.adapt_sketch()
            self.update_gradient_hessian()
            if self.check_convergence(fresh=True):
                self.history[-1]["error_estimate"] = self.it.error_estimate
                self.status, self.message = 0, "converged: estimated error <= eps"
                break
            self.inner_solve()
            if not self.line_search():
                # last resort: a steepest-descent step scaled like the Newton step
                self.it.step = -self.it.grad * (np.linalg.norm(self.it.step) / np.linalg.norm(self.it.grad))
                self.it.step_image = None
                if not self.line_search():
                    self.status = 2
                    self.message = "no decrease possible along the Newton or gradient direction"
                    break
            self.nit += 1
        return self.finalize()

    def flat_directions_are_invariances(self):
        """Check that directions the model treats as null leave the loss unchanged.

        A pseudo-inverse model ignores directions of zero curvature. That is
        right for a true invariance (the softmax shift) but wrong on an
        asymptote, where the loss flattens out while still decreasing (e.g.
        ``resnet`` with an intercept driven to ``+inf``). Costs one loss
        evaluation per direction, only at convergence.
        """
        model, loss, it = self.it.model, self.problem.loss, self.it
        if model is None or model.null_vectors is None or model.null_vectors.shape[1] == 0:
            return True
        step = max(1.0, float(np.linalg.norm(it.x)))
        tol = 1e-10 * abs(it.fun) + 64 * np.finfo(float).eps * abs(it.fun) + np.finfo(float).tiny
        for v in model.null_vectors.T[:4]:
            for sign in (1.0, -1.0):
                try:
                    f = loss.loss(it.x + sign * step * v)
                except DomainError:
                    return False
                if abs(f - it.fun) > tol:
                    return False
        return True

    def finalize(self):
        """Assemble the :class:`SolveResult`; warn when ``eps`` was not reached."""
        it, pb = self.it, self.problem
        if np.isinf(it.error_estimate) and it.model is not None:
            it.error_estimate = float(np.linalg.norm(it.model.solve(it.grad))) / (1 - self._sketch_error(it.model))
        success = self.status == 0 or (self.status in (1, 2) and it.error_estimate <= pb.eps)
        if success and not self.flat_directions_are_invariances():
            success, self.status = False, 2
            self.message = ("stopped on a flat direction that is not an invariance of the loss "
                            "(an asymptote: the iterate may be drifting to infinity)")
        if self.status == 2 and success:
            self.message = "converged to machine precision: estimated error <= eps"
        if not success:
            self.message += f" (estimated error {it.error_estimate:.3g} > eps = {pb.eps:.3g})"
            warnings.warn(f"sketchnewton.solve did not reach eps: {self.message}", ConvergenceWarning,
                          stacklevel=3)
        timings = dict(self.timings, **{k: v for k, v in self.builder.timings.items()})
        return SolveResult(
            x=it.x, fun=it.fun, grad_norm=float(np.linalg.norm(it.grad)),
            error_bound=it.error_estimate, error_bound_kind="estimate", nit=self.nit,
            success=bool(success), status=self.status, message=self.message,
            method=pb.method, sketch=self.builder.sketch,
            sketch_size=self.sketch_size if self.builder.sketch != "exact" else 0,
            passes=(self.A.sweeps - self.sweeps0) / 2, time=time.perf_counter() - self.t0,
            timings=timings, history=self.history)


def default_start(loss, rng):
    """Starting point when the user gives none.

    Zero for ``resnet`` and ``softmax``. ``cosh``: ``phi'(0) = 0`` makes
    ``x = 0`` a stationary point of an even loss, so the start is a small
    random vector drawn from ``rng``. ``sinh``: ``alpha(0) = sum sinh(0) = 0``
    is outside the domain, so the start is ``t A^T 1``, for which
    ``sum(A x0) = t ||A^T 1||^2 > 0``. Both are scaled to ``std(A x0) = 0.1``.
    """
    d = loss.A.d
    if loss.link == "cosh":
        x0 = rng.standard_normal(d)
    elif loss.link == "sinh":
        x0 = loss.A.column_sums()
    else:
        return np.zeros(d)
    z_std = float(loss.A.matvec(x0).std())
    return x0 * (0.1 / z_std) if z_std > 0 else x0


def solve(A, b, eps=1e-6, *, link="resnet", lam=0.0, w=None, method="auto", sketch="leverage",
          sketch_size=None, x0=None, max_iter=100, random_state=None, verbose=0, callback=None):
    """Solve ``min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2``.

    Parameters
    ----------
    A : sparse matrix/array or ndarray of shape (n, d)
        Never densified. float32 and integer input are computed in float64.
    b : array-like of shape (n,)
    eps : float > 0
        Target accuracy ``||x - x*||_2 <= eps`` (absolute, as in the paper).
    link : {"resnet", "softmax", "cosh", "sinh"}
    lam : float >= 0
        Ridge strength.
    w : float or array of shape (n,), optional
        The papers' regulariser ``1/2 ||diag(w) A x||^2``.
    method : {"auto", "exact", "sketch", "pcg"}
        ``"exact"``: Newton with the exact Hessian (numba row-outer-product
        Gram for sparse A, BLAS for dense). ``"sketch"``: the paper's
        approximate Newton step ``H~^{-1} g`` with a fresh sketched model each
        iteration; the sketch size doubles when the observed contraction is
        poor (Adaptive Newton Sketch). ``"pcg"``: inexact Newton, conjugate
        gradients on exact Hessian-vector products preconditioned by the
        sketched model. ``"auto"``: :func:`choose_method` (cost model).
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}
        Sketch of the Hessian's diagonal part (methods ``sketch``, ``pcg``).
    sketch_size : int, optional
        Rows of the sketch; default ``20 d`` (for ``sketch`` then adaptive:
        doubled while the observed contraction is slower than 0.3).
    x0 : array of shape (d,), optional
        Starting point (default: see :func:`default_start`); must be inside
        the loss's domain. ``cosh`` has two minimisers ``+-x*``.
    max_iter : int
    random_state : None, int or numpy Generator
        Seeds every random choice; results are reproducible for a fixed seed.
    verbose : int
        1 prints one line per iteration.
    callback : callable, optional
        ``callback(intermediate_result)`` after every iteration; returning
        True or raising ``StopIteration`` stops the solve.

    Returns
    -------
    SolveResult

    Dask inputs
    -----------
    ``A`` may be a ``dask.array`` chunked by rows only (each chunk a scipy
    sparse matrix or a dense block; a chunking that splits the columns raises
    :class:`InputError`), with ``b`` (and an array ``w``) a dask array chunked
    exactly like ``A``'s rows (different chunks raise :class:`InputError`) or
    an in-memory array, then split by those chunks. The solve runs on the
    active ``dask.distributed`` client, or in-process with dask's default
    scheduler when there is none. Each row block is loaded once and kept on a
    worker (spilled to disk by Dask when memory is short); every Newton
    iteration costs a fixed number of distributed rounds (one task per block
    plus a reduction: the Gram of the model, ``A p`` and one per CG product;
    one per line-search trial, which gives loss, normaliser, gradient and
    low-rank factors together), and
    only scalars, d-vectors and d x d matrices reach the client; n-vectors
    stay on the workers. The result equals the in-memory solve within
    ``eps``. Sketches: ``"leverage"`` and ``"uniform"`` (Bernoulli row
    sampling with globally normalised probabilities; per-block seeds drawn
    from ``random_state``, so a fixed ``random_state`` gives the same result
    even when Dask re-runs the tasks of a lost worker); other sketches raise
    :class:`InputError`.

    Error bound
    -----------
    ``error_bound`` estimates ``||x - x*||`` by the Newton step length
    ``||H~^{-1} g(x)||`` divided by ``1 - e``, with ``H~`` the last
    factorized model and ``e`` a conservative level of its spectral error
    (0 for the exact Hessian, ``min(0.9, 2 sqrt(d/s))`` for a sketch of ``s``
    rows). Near a minimiser where the Hessian is Lipschitz, ``x - x* =
    H^{-1} g + O(||g||^2)``, so this is an estimate, accurate to first order,
    not a guarantee: the loss is not convex, and ``lam > 0`` alone does not
    make it strongly convex. The solve stops when the estimate is ``<= eps``
    after a full (unit) Newton step.
    """
    eps = check_finite_scalar(eps, "eps")
    if eps <= 0:
        raise InputError(f"eps must be > 0, got {eps}")
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {METHODS}")
    if sketch not in SKETCHES:
        raise InputError(f"unknown sketch {sketch!r}; expected one of {SKETCHES}")
    if sketch_size is not None and (isinstance(sketch_size, bool) or int(sketch_size) != sketch_size
                                    or sketch_size < 1):
        raise InputError(f"sketch_size must be a positive integer, got {sketch_size!r}")
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise InputError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    from ._dask import DASK_SKETCHES, DaskNormalizedLoss, is_dask_collection

    distributed = is_dask_collection(A) or is_dask_collection(b)
    if distributed:
        if method != "exact" and sketch not in DASK_SKETCHES:
            raise InputError(f"sketch {sketch!r} has no distributed implementation; use one of "
                             f"{DASK_SKETCHES} with dask inputs")
        loss = DaskNormalizedLoss(A, b, link=link, lam=lam, w=w)
    else:
        loss = NormalizedRegressionLoss(A, b, link=link, lam=lam, w=w)
    rng = check_random_state(random_state)
    # the client of a distributed solve runs no kernels; holding the launch lock would
    # block in-process (threaded) workers
    threads = (lambda: nullcontext()) if distributed else (lambda: kernel_threads(loss.A.nnz))
    with threads():
        x0 = default_start(loss, rng) if x0 is None else check_vector(x0, "x0", loss.A.d)
    if method == "auto":
        method = choose_method(loss.A, sketch_size)
    problem = Problem(loss, eps, method, sketch, sketch_size, int(max_iter), rng, verbose, callback)
    with threads(), single_threaded_blas():
        return NewtonSolver(problem).solve(x0)
