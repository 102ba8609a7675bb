"""The driver's reporting: the per-iteration history, the verbose table and the callback."""

import inspect
import time

import numpy as np
from scipy.optimize import OptimizeResult

__all__ = ["Reporting"]


def _new_style_callback(callback):
    """scipy's rule: ``callback(intermediate_result)`` when its only parameter has that name,
    else the legacy ``callback(xk)``."""
    try:
        params = list(inspect.signature(callback).parameters)
    except (TypeError, ValueError):
        return False
    return params == ["intermediate_result"]


class Reporting:
    """Mixin of :class:`~sketchnewton.newton.NewtonSolver`: one history row per iteration."""

    def _record(self):
        it = self.it
        row = dict(iter=self.nit, loss=it.fun, grad_norm=float(np.linalg.norm(it.grad)),
                   step_size=it.step_size,
                   step_norm=float(np.linalg.norm(it.step)) if it.step is not None else 0.0,
                   error_estimate=it.error_estimate, decrement=it.decrement,
                   sketch_size=it.model.sketch_size if it.model is not None else 0,
                   cg_iter=it.cg_iter, model=it.model.kind if it.model is not None else "",
                   passes=(self.data.sweeps - self.sweeps0) / 2,
                   seconds=time.perf_counter() - self.t0)
        self.history.append(row)
        if self.problem.verbose:
            self._print(row)
        self._call_back(row)

    def _print(self, row):
        measure = "err est" if self.problem.criterion.column == "error_estimate" else "dec/2"
        value = row["error_estimate"] if measure == "err est" else 0.5 * row["decrement"]
        if self.nit == 0:
            print(f"{'iter':>4} {'loss':>16} {'|grad|':>10} {'step':>7} {measure:>9} "
                  f"{'sketch':>7} {'cg':>3} {'passes':>7} {'sec':>7}")
        print(f"{row['iter']:4d} {row['loss']:16.9e} {row['grad_norm']:10.3e} "
              f"{row['step_size']:7.3g} {value:9.2e} {row['sketch_size']:7d} "
              f"{row['cg_iter']:3d} {row['passes']:7.1f} {row['seconds']:7.2f}", flush=True)

    def _call_back(self, row):
        cb = self.problem.callback
        if cb is None:
            return
        it = self.it
        try:
            if _new_style_callback(cb):
                stop = cb(OptimizeResult(x=it.x.copy(), fun=it.fun, jac=it.grad.copy(), nit=self.nit,
                                         **{k: v for k, v in row.items() if k not in ("iter", "loss")}))
            else:
                stop = cb(it.x.copy())
        except StopIteration:
            stop = True
        if stop:
            self.status, self.message = 3, "stopped by callback"
