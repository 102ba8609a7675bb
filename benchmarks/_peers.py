"""Every solver of the benchmarks behind one call: ours (``solve``) and scipy's peers.

Each runner returns a dict with ``nit, passes, seconds, error, success, note``
and, when asked, a ``trace`` of ``(seconds, error)`` pairs, one per iteration,
where ``error = ||x_k - x_ref||``. A run counts as a success only when its
final error is within ``eps`` of the reference: accuracy is checked, never
assumed. scipy peers get an oracle stop (a callback ends them as soon as the
iterate is within ``eps``), which favours them, and a wall-clock cap
(``cap`` seconds) after which they are reported as timed out.
"""

import time
import warnings

import numpy as np
from scipy.optimize import minimize

import sketchnewton as sn
from sketchnewton import ConvergenceWarning, NormalizedRegressionLoss

__all__ = ["OURS", "PEERS", "CachedLoss", "run_ours", "run_scipy", "run_solver"]

OURS = ("auto", "exact", "sketch", "pcg")
PEERS = ("L-BFGS-B", "Newton-CG", "trust-ncg")


class CachedLoss:
    """Loss, gradient and Hessian-vector product for scipy, sharing one state per x.

    With the state cached, a Hessian-vector product costs one pass over A, the
    honest best use of our kernels by a scipy method. ``scale`` multiplies the
    objective: the normalized loss is O(1/n), far below the absolute
    thresholds inside scipy's methods (Newton-CG stops when a curvature is
    below 3 machine epsilons), so peers get it rescaled to 1 at x0.
    """

    def __init__(self, loss, scale=1.0):
        self.loss = loss
        self.scale = scale
        self._x = None
        self._state = None

    def _eval(self, x):
        if self._x is None or not np.array_equal(x, self._x):
            self._state = self.loss.evaluate(x, hessian=True)
            self._x = x.copy()
        return self._state

    def fun_grad(self, x):
        s = self._eval(x)
        return self.scale * s.fun, self.scale * s.grad

    def hessp(self, x, p):
        return self.scale * self.loss.hessp(self._eval(x), p)


_SCIPY_OPTIONS = {
    "L-BFGS-B": dict(maxiter=100_000, maxfun=100_000, ftol=0.0, gtol=0.0, maxcor=20),
    "Newton-CG": dict(maxiter=5000, xtol=1e-300),
    "trust-ncg": dict(maxiter=5000, gtol=0.0),
}


def run_scipy(method, A, b, x_ref, eps, *, link="resnet", cap=None, trace=False):
    """scipy.optimize ``method`` from x0 = 0 on our loss; stopped at ``eps`` or after ``cap`` s."""
    loss = NormalizedRegressionLoss(A, b, link=link)
    state = dict(reached=None, timed_out=False, trace=[])
    t0 = time.perf_counter()
    x0 = np.zeros(A.shape[1])
    f0 = loss.loss(x0)
    cached = CachedLoss(loss, scale=1.0 / f0 if f0 > 0 else 1.0)

    def callback(intermediate_result):
        x = intermediate_result.x
        err = float(np.linalg.norm(x - x_ref))
        if trace:
            state["trace"].append((time.perf_counter() - t0, err))
        if err <= eps:
            state["reached"] = x.copy()
            raise StopIteration
        if cap is not None and time.perf_counter() - t0 > cap:
            state["timed_out"] = True
            raise StopIteration

    kw = {} if method == "L-BFGS-B" else dict(hessp=cached.hessp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(cached.fun_grad, x0, jac=True, method=method,
                       callback=callback, options=_SCIPY_OPTIONS[method], **kw)
    seconds = time.perf_counter() - t0
    x = state["reached"] if state["reached"] is not None else res.x
    error = float(np.linalg.norm(x - x_ref))
    if state["reached"] is not None:
        note = f"nfev={res.nfev}"
    elif state["timed_out"]:
        note = f"timed out after {cap:g} s"
    else:
        note = f"stopped: {str(res.message)[:50]}"
    out = dict(nit=int(res.nit), passes=loss.data.passes, seconds=seconds, error=error,
               success=error <= eps, timed_out=state["timed_out"], note=note)
    if trace:
        out["trace"] = state["trace"]
    return out


def run_ours(method, A, b, x_ref, eps, *, link="resnet", seed=0, trace=False, **kwargs):
    """``sketchnewton.solve(method=...)`` from its default start; error against ``x_ref``."""
    points = []

    def record(intermediate_result):
        r = intermediate_result
        points.append((r.seconds, float(np.linalg.norm(r.x - x_ref))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = sn.solve(A, b, eps, link=link, method=method, random_state=seed, callback=record if trace else None,
                       **kwargs)
    error = float(np.linalg.norm(res.x - x_ref))
    out = dict(nit=res.nit, passes=res.passes, seconds=res.time, error=error,
               success=bool(res.success and error <= eps), timed_out=False,
               note=f"chose {res.method}" if method == "auto" else res.message[:50],
               timings=res.timings, bound=res.error_bound, chosen=res.method)
    if trace:
        out["trace"] = points
    return out


def run_solver(name, A, b, x_ref, eps, *, link="resnet", cap=None, trace=False, seed=0):
    """Dispatch: one of :data:`OURS` or :data:`PEERS`."""
    if name in OURS:
        return run_ours(name, A, b, x_ref, eps, link=link, seed=seed, trace=trace)
    return run_scipy(name, A, b, x_ref, eps, link=link, cap=cap, trace=trace)


def warm_up(A, b, link="resnet"):
    """Compile every kernel and touch the data once, so no timed run pays for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for m in ("exact", "sketch", "pcg"):
            sn.solve(A, b, 1e-3, link=link, method=m, max_iter=1)
    cached = CachedLoss(NormalizedRegressionLoss(A, b, link=link))
    x = np.zeros(A.shape[1])
    cached.fun_grad(x)
    cached.hessp(x, x)
