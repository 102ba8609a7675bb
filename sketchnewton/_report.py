"""The driver's reporting: the per-iteration history, the verbose table, the callback, and
the result object."""

import inspect
import time
from collections.abc import Callable

import numpy as np
from scipy.optimize import OptimizeResult

__all__ = ["History", "SolveResult"]


def _new_style_callback(callback):
    """scipy's rule: ``callback(intermediate_result)`` when its only parameter has that name,
    else the legacy ``callback(xk)``."""
    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return False
    return params == ["intermediate_result"]


class History:
    """One row per iteration (glum's per-iteration diagnostics as a list of dicts), printed
    with ``verbose`` and passed to the callback.

    Parameters
    ----------
    measure : str
        The stopping rule's progress column (``"error_estimate"`` or ``"decrement"``).
    verbose : int
    callback : callable or None
    t0 : float, optional
        ``time.perf_counter()`` at the start of the solve (the rows' ``seconds``).
    """

    def __init__(self, measure: str, verbose: int = 0, callback: Callable | None = None,
                 t0: float | None = None):
        self.rows: list[dict] = []
        self.measure, self.verbose, self.callback = measure, verbose, callback
        self.t0 = time.perf_counter() if t0 is None else t0

    def record(self, x: np.ndarray, grad: np.ndarray, **row) -> bool:
        """Append a row (``iter, loss, grad_norm, step_size, step_norm, error_estimate,
        decrement, sketch_size, cg_iter, model, passes``; ``seconds`` is added); print it
        and call the callback. Returns True when the callback asks to stop."""
        row["seconds"] = time.perf_counter() - self.t0
        self.rows.append(row)
        if self.verbose:
            self._print(row)
        return self._call_back(x, grad, row)

    def contraction(self) -> float | None:
        """``cur / prev`` of the progress measure over the last two rows (0 when not finite);
        None before there are three rows."""
        if len(self.rows) < 3:
            return None
        prev, cur = self.rows[-2][self.measure], self.rows[-1][self.measure]
        return cur / prev if np.isfinite(prev) and prev > 0 and np.isfinite(cur) else 0.0

    def _print(self, row):
        estimate = self.measure == "error_estimate"
        label = "err est" if estimate else "dec/2"
        value = row["error_estimate"] if estimate else 0.5 * row["decrement"]
        if len(self.rows) == 1:
            print(f"{'iter':>4} {'loss':>16} {'|grad|':>10} {'step':>7} {label:>9} "
                  f"{'sketch':>7} {'cg':>3} {'passes':>7} {'sec':>7}")
        print(f"{row['iter']:4d} {row['loss']:16.9e} {row['grad_norm']:10.3e} "
              f"{row['step_size']:7.3g} {value:9.2e} {row['sketch_size']:7d} "
              f"{row['cg_iter']:3d} {row['passes']:7.1f} {row['seconds']:7.2f}", flush=True)

    def _call_back(self, x, grad, row):
        cb = self.callback
        if cb is None:
            return False
        try:
            if _new_style_callback(cb):
                stop = cb(OptimizeResult(x=x.copy(), fun=row["loss"], jac=grad.copy(),
                                         nit=row["iter"],
                                         **{k: v for k, v in row.items() if k not in ("iter", "loss")}))
            else:
                stop = cb(x.copy())
        except StopIteration:
            stop = True
        return bool(stop)


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
        (line search failed, attainable accuracy reached, or a check failed),
        3 stopped by callback.
    reason : str
        Why it stopped, as a code (``sketchnewton._outcome.Reason`` values:
        ``"converged"``, ``"iteration limit"``, ``"stopped at the attainable
        accuracy"``, ...); the ``message`` says it for people.
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
    time_passes : float
        ``time`` in units of one reference pass: scipy's ``A.T @ (A @ x)`` on the same
        matrix in the same process (``reference_pass``: its seconds, best of 3, measured on
        first access and cached with the matrix, never part of ``time``); nan on a Dask
        cluster or after pickling. Beside ``passes`` it shows whether the time goes to the
        passes and whether they run at the speed of a plain sparse product.
    timings : dict
        Seconds spent in gradient, leverage scores, sketch, gram,
        factorization, inner solve, line search, and ``other`` (checks, the
        driver's own Python): they add up to ``time``.
    history : list of dict
        Per iteration: ``iter, loss, grad_norm, step_size, step_norm,
        error_estimate, decrement, sketch_size, cg_iter, model, passes, seconds``.
    """

    @property
    def reference_pass(self) -> float:
        """Seconds of one scipy pass over the solve's matrix (see ``time_passes``)."""
        measure = self.__dict__.get("_reference")
        value = measure() if measure is not None else None
        return float(value) if value else np.nan

    @property
    def time_passes(self) -> float:
        """``time / reference_pass`` (see the class docstring)."""
        return float(self.get("time", np.nan)) / self.reference_pass

    def __getstate__(self):
        # the measurement closes over the data matrix: not pickled with the result
        return {k: v for k, v in self.__dict__.items() if k != "_reference"}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self):
        keys = ("success", "status", "message", "fun", "grad_norm", "error_bound", "nit",
                "method", "passes", "time")
        items = ", ".join(f"{k}={self[k]!r}" for k in keys if k in self)
        return f"SolveResult({items}, x=<array of {np.size(self.get('x'))}>)"

    def history_columns(self):
        """The history as columns: ``{name: ndarray}`` (one entry per iteration)."""
        rows = self.get("history", [])
        return {k: np.array([r[k] for r in rows]) for k in (rows[0] if rows else {})}
