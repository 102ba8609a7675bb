"""Stopping rules of the Newton driver and its result object (docs/math.md section 7).

Two rules: :class:`ErrorBound` (``eps``, a bound on ``||x - x*||``, used by
:func:`sketchnewton.solve`) and :class:`Decrement` (``tol``, a relative
objective accuracy from the Newton decrement, used by the estimators).
"""

import numpy as np
from scipy.optimize import OptimizeResult

__all__ = ["ErrorBound", "Decrement", "SolveResult", "MODEL_REUSE_DZ", "FORCING_MAX", "HINT", "what_to_try"]

#: a model built before a unit step that moved no ``z_i`` by more than this still describes
#: the Hessian within ~10% (curvature varies like ``exp(dz)``): it may judge convergence and
#: keep preconditioning CG
MODEL_REUSE_DZ = 0.1
#: largest CG forcing term ``eta = min(FORCING_MAX, sqrt(||g|| / ||g_0||))`` (Eisenstat-Walker
#: style: loose far from the solution, tightening superlinearly near it). Measured on the
#: planted benchmark problems (n = 2e5): 0.5 cost the multinomial ones a Newton step, 0.1 cost
#: CG products; 0.25 was the fastest or tied on all seven.
FORCING_MAX = 0.25


# -- stopping rules -----------------------------------------------------------------------------
class ErrorBound:
    """Stop when the estimated error ``||x - x*||`` is at most ``eps`` (docs/math.md 7.1).

    The estimate is ``||H~^{-1} g|| / (1 - e)`` with ``H~`` the current model
    and ``e`` a conservative level of its spectral error (0 exact,
    ``min(0.9, 2 sqrt(p / s))`` for a sketch of ``s`` rows).
    """

    name = "eps"
    column = "error_estimate"

    def __init__(self, eps):
        self.eps = eps
        self._prev = None  # the last exact estimate, for the observed contraction

    def check(self, solver, fresh):
        it = solver.it
        if it.model is None:
            return False
        est = solver.error_estimate()
        exact = fresh and it.model_fresh and not it.model.spectral_error
        if exact:
            est = self._nonlinearity(est)
            it.error_estimate = est
        if fresh and it.model_fresh:
            ok = est <= self.eps
        else:  # a model built at an earlier iterate judges only in the local regime
            ok = est <= self.eps and it.step_size == 1.0 and it.last_dz <= MODEL_REUSE_DZ
        if ok and not exact:  # a sketched or kept model: checked against the Hessian at x
            est *= self._staleness(solver)
            it.error_estimate = est
            ok = est <= self.eps
        return ok and self._certified(solver, est)

    def _nonlinearity(self, est):
        """The exact Newton step estimates the error to first order; the rest is bounded by the
        observed contraction ``rho`` of successive estimates: ``e_k <= |p_k| + e_{k+1}`` and
        ``e_{k+1} <= rho e_k`` give ``e_k <= |p_k| / (1 - rho)`` (docs/math.md 7.1). Far from
        the quadratic regime (``rho`` near 1, found on small ill-conditioned problems: rho 0.45,
        true error 1.8x the step) the factor matters; near it, it is 1 + O(|p_k|)."""
        prev, self._prev = self._prev, est
        if prev is None or not (prev > 0 and np.isfinite(prev)) or est == 0.0:
            return est
        rho = est / prev
        return est / (1.0 - rho) if rho < 1.0 else np.inf

    @staticmethod
    def _staleness(solver):
        """How much a sketched model, or one built at an earlier iterate, overstates the
        curvature at ``x``.

        ``(y^T M y) / (y^T H y)`` along the model's step ``y = M^{-1} g`` (one
        Hessian-vector product), at least 1; ``inf`` when ``H`` has no positive
        curvature there. A model whose curvature the true Hessian has left behind
        (the whole model shrinking along a ray where the infimum is not attained)
        would otherwise certify a tiny error (issue 18 item 5).
        """
        it, loss = solver.it, solver.loss
        y = it.model.solve(it.grad)
        y_my = abs(float(it.grad @ y))
        hy = loss.hessian_matmat(it.state, y[:, None], loss.hessian_kinds[0])[:, 0]
        y_hy = float(y @ hy)
        if not (y_hy > 0 and np.isfinite(y_hy)):
            return np.inf if y_my > 0 else 1.0
        return max(1.0, y_my / y_hy)

    def _certified(self, solver, est):
        """The estimate plus the attainable-accuracy floor (docs/math.md 7.3) must be <= eps;
        when the floor alone exceeds eps/2, iterating cannot help: the solve stops, failed."""
        floor = solver.rounding_floor()[0]
        solver.it.error_estimate = est + floor
        if est + floor <= self.eps:
            return True
        if floor > 0.5 * self.eps:
            solver.stop(2, f"eps = {self.eps:.3g} is below the attainable accuracy: the rounding "
                           f"error of the gradient alone allows an error of {floor:.3g}")
            return True
        return False

    def at_stationary_point(self, solver):
        """A zero gradient with positive curvature: the error is the attainable accuracy."""
        self._certified(solver, 0.0)
        return True

    def check_step(self, solver):
        """With a preconditioner that is no Hessian model, the CG step gives the estimate."""
        it = solver.it
        return (it.model.spectral_error is None and it.error_estimate <= self.eps
                and self._certified(solver, it.error_estimate))

    def relax_forcing(self, eta, solver):
        """The step need not be more accurate than the target: ``eta >= 0.1 eps / error``."""
        est = solver.it.error_estimate
        if np.isfinite(est) and est > 0:
            eta = max(eta, min(FORCING_MAX, 0.1 * self.eps / est))
        return eta

    def met(self, solver):
        return solver.it.error_estimate <= self.eps

    def shortfall(self, solver):
        est = solver.it.error_estimate
        if est <= self.eps:
            return (f"estimated error {est:.3g} <= eps = {self.eps:.3g}, but not yet confirmed after "
                    "a unit Newton step")
        return f"estimated error {est:.3g} > eps = {self.eps:.3g}"


class Decrement:
    """Stop when half the squared Newton decrement of a unit step is ``<= tol |f|``.

    After an accepted unit step ``p`` (the local regime) the objective error
    left was about ``-g^T p / 2`` before the step and quadratically less after
    it (docs/math.md 7.2); or, after two unit steps with contracting
    decrements, when the extrapolated error ``dec_k/2 * dec_k / dec_{k-1}`` is
    below ``EXTRAPOLATION_SAFETY tol |f|`` (saves the last iteration); or when
    ``||g|| <= 1e-3 tol ||g_0||``.
    """

    name = "tol"
    column = "decrement"
    #: share of ``tol |f|`` the extrapolated objective error must be under
    EXTRAPOLATION_SAFETY = 1e-3

    def __init__(self, tol):
        self.tol = tol
        self._prev = None

    def check(self, solver, fresh):
        if fresh:
            return False
        it = solver.it
        gnorm = float(np.linalg.norm(it.grad))
        if gnorm <= 1e-3 * self.tol * solver.g0_norm:
            return True
        prev, self._prev = self._prev, None
        if it.step is None or it.step_size != 1.0:
            return False
        self._prev = it.decrement
        scale = self.tol * max(abs(it.fun), np.finfo(float).tiny)
        if 0.5 * it.decrement <= scale:
            return True
        if prev is not None and it.decrement < 0.5 * prev:
            if 0.5 * it.decrement * (it.decrement / prev) <= self.EXTRAPOLATION_SAFETY * scale:
                return True
        if prev is not None and it.decrement > 0.25 * prev and it.model is not None:
            # no quadratic progress: is the decrement at the rounding floor of the gradient?
            floor = solver.rounding_floor()[1]
            limit = 5.0 * floor + 64 * np.finfo(float).eps * abs(it.fun)
            if 0.5 * it.decrement <= limit:
                solver.stop(0, "converged to the attainable accuracy: the Newton decrement "
                               f"({0.5 * it.decrement:.3g}) is within the rounding floor of the "
                               f"gradient and the objective ({limit:.3g}); tol is below it")
                return True
        return False

    def check_step(self, solver):
        return False

    def at_stationary_point(self, solver):
        return True

    def relax_forcing(self, eta, solver):
        return eta

    def met(self, solver):
        it = solver.it
        return 0.5 * it.decrement <= 1e3 * self.tol * max(abs(it.fun), 1e-300)

    def shortfall(self, solver):
        return f"half Newton decrement {0.5 * solver.it.decrement:.3g} > tol |f|"


#: separates a ConvergenceWarning's diagnosis from the advice of :func:`what_to_try`
HINT = "; what to try: "


def what_to_try(status, message, criterion, max_iter):
    """The advice appended to a ConvergenceWarning: what the user can change.

    Parameters
    ----------
    status : int
        The solve's status (1 iteration limit, 2 no further progress).
    message : str
        The solve's message.
    criterion : ErrorBound or Decrement
        The stopping rule (its ``name`` is the parameter the user gave).
    max_iter : int
        The iteration limit used.

    Returns
    -------
    str
    """
    name = criterion.name
    if "attainable accuracy" in message:
        return f"use a larger {name} (the data's rounding error allows no better)"
    if "asymptote" in message:
        return ("the minimiser may be at infinity (e.g. separable classes): add a ridge "
                "(lam > 0, or a finite C in the estimators)")
    if status == 1:
        return f"increase max_iter (now {max_iter}) or use a larger {name}"
    return (f"try method='exact', a larger {name}, or rescale the columns of the data "
            "(e.g. sklearn.preprocessing.StandardScaler)")


# -- the result ---------------------------------------------------------------------------------
class SolveResult(OptimizeResult):
    """Result of :func:`minimize` and :func:`sketchnewton.solve` (a ``scipy.optimize.OptimizeResult``).

    Attributes
    ----------
    x : ndarray (n_params,)
        The solution.
    fun : float
        Loss at ``x``.
    jac : ndarray (n_params,)
        Gradient at ``x``.
    grad_norm : float
        ``||jac||_2``.
    error_bound : float
        Estimate of ``||x - x*||_2`` (docs/math.md 7.1; ``inf`` when no model was built).
    error_bound_kind : {"estimate"}
    decrement : float
        ``-g^T p`` of the last step ``p`` (``inf`` before the first).
    nit : int
        Newton iterations.
    nfev, njev, nhev : int
        Loss evaluations (line-search trials included), gradient evaluations,
        Hessian-vector products.
    success : bool
        True when the stopping rule was met (``error_bound <= eps``, or the
        decrement rule for ``tol``).
    status : int
        0 converged, 1 iteration limit, 2 no further progress possible
        (line search failed at machine precision), 3 stopped by callback.
    message : str
    method : str
        The method used (what ``"auto"`` chose).
    preconditioner : str or None
        The preconditioner of method ``"cg"`` (``"diagonal"``, ``"nystrom"``,
        ``"none"``); None for the other methods.
    sketch, sketch_size
        The sketch of the model (``"exact"`` and 0 for exact Newton).
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
        error_estimate, decrement, sketch_size, cg_iter, model, passes, seconds``.
    """

    def __repr__(self):
        keys = ("success", "status", "message", "fun", "grad_norm", "error_bound", "nit",
                "method", "passes", "time")
        items = ", ".join(f"{k}={self[k]!r}" for k in keys if k in self)
        return f"SolveResult({items}, x=<array of {np.size(self.get('x'))}>)"

    def history_columns(self):
        """The history as columns: ``{name: ndarray}`` (one entry per iteration)."""
        rows = self.get("history", [])
        return {k: np.array([r[k] for r in rows]) for k in (rows[0] if rows else {})}
