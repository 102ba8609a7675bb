"""What the estimators share: weights, solver parameters, warm starts and the verbose levels."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import validate_data

from .._auto import choose_method, choose_prox, method_costs
from .._matrix import DataMatrix
from .._validation import (
    check_choice,
    check_int,
    check_real,
    check_sparse_structure,
    check_vector,
)
from ..api import minimize
from ..exceptions import InputError
from ..hessian import PRECONDITIONERS, ROW_SAMPLERS
from ..newton import METHODS

__all__ = ["check_l1_ratio", "l1_weights", "validate", "check_sparse_X", "weight_scale", "dask_weight_scale", "sample_weights",
           "SolverParams", "run_newton", "drop_feature_names", "FLOAT_DTYPES", "linear_predictor"]

#: ``validate_data``'s ``dtype``: float32 and float64 ``X`` are kept as given (no upcast; with
#: no ``order`` and ``copy=False``, C- and Fortran-ordered arrays are not copied either: the
#: solver's :class:`~sketchnewton._matrix.DataMatrix` uses them as they are); integers and
#: booleans become float64.
FLOAT_DTYPES = [np.float64, np.float32]


def check_sparse_X(X):
    """Refuse a sparse ``X`` with a corrupt index structure: scipy's conversion to CSR trusts the
    indices of CSC, BSR and COO input, and corrupt ones would crash the interpreter instead of
    raising."""
    if sp.issparse(X):
        check_sparse_structure(X, "X")


def validate(estimator, X, *args, **kwargs):
    """scikit-learn's ``validate_data`` after :func:`check_sparse_X` (fit, predict and
    decision_function of every estimator go through it)."""
    check_sparse_X(X)
    return validate_data(estimator, X, *args, **kwargs)


def linear_predictor(X, coef):
    """``X @ coef`` in float64 for a validated ``X`` (``coef`` (d,) or (d, k)): a dense float32
    ``X`` through :class:`DataMatrix` (float64 accumulation by row blocks, no float64 copy of
    ``X``), sparse ``X`` by scipy."""
    coef = np.asarray(coef, dtype=np.float64)
    if sp.issparse(X):
        return np.asarray(X @ coef)
    M = DataMatrix(X, "X", check_finite=False)
    return M.matvec(coef) if coef.ndim == 1 else M.matmat(coef)


def weight_scale(sw):
    """``(sw / s, s)`` with ``s = max(sw)``: the solver works with weights in (0, 1] and a ridge
    divided by ``s`` (the same minimiser), so that huge weights (1e200) do not overflow the
    squares of the gradient and Hessian."""
    scale = float(sw.max())
    return (sw / scale, scale) if scale > 0 and scale != 1.0 else (sw, 1.0)


def dask_weight_scale(sample_weight):
    """``(sample_weight / s, s)`` with ``s = max(sample_weight)`` for a dask or in-memory
    ``sample_weight`` of the distributed fits (None stays None, ``s = 1``): the weights in
    (0, 1], as :func:`weight_scale` does in memory."""
    if sample_weight is None:
        return None, 1.0
    if not hasattr(sample_weight, "compute"):  # in memory: an array (or a list) of weights
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
    top = sample_weight.max()
    scale = float(top.compute() if hasattr(top, "compute") else top)
    if not scale > 0 or scale == 1.0:
        return sample_weight, 1.0
    return sample_weight / scale, scale


def check_l1_ratio(l1_ratio):
    """``l1_ratio`` in [0, 1] (the elastic net's mix: 0 ridge, 1 lasso)."""
    value = check_real(l1_ratio, "l1_ratio", nonnegative=True)
    if value > 1.0:
        raise InputError(f"l1_ratio must be in [0, 1], got {value!r}")
    return value


def l1_weights(loss, strength):
    """The L1 weights of :func:`~sketchnewton.api.minimize`: ``strength`` on every coefficient,
    0 on the intercepts (the last coordinate of each class's row with ``fit_intercept``);
    None when ``strength`` is 0 (no penalty: the plain Newton methods)."""
    if not strength > 0:
        return None
    w = np.full(loss.n_params, float(strength))
    if loss.fit_intercept:
        w.reshape(loss.image_width, -1)[:, -1] = 0.0
    return w


def sample_weights(sample_weight, n):
    """Validated non-negative sample weights (ones when None)."""
    if sample_weight is None:
        return np.ones(n)
    arr = np.asarray(sample_weight)
    if arr.ndim == 0:
        return np.full(n, check_real(arr.item(), "sample_weight", nonnegative=True))
    sw = check_vector(arr, "sample_weight", n)
    if np.any(sw < 0):
        raise InputError("sample_weight must be non-negative")
    if not np.any(sw > 0):
        raise InputError("sample_weight is zero for every sample: nothing to fit")
    return sw


def drop_feature_names(est):
    """A fit on dask arrays (no column names) must not keep the names of an earlier fit."""
    if hasattr(est, "feature_names_in_"):
        del est.feature_names_in_


def _announce(name, loss, options, penalised=False):
    """Verbose level 2: the method, and for ``"auto"`` the cost model's estimates behind it (with
    an L1 penalty: the proximal Newton form ``auto`` takes)."""
    method, sketch_size = options["method"], options["sketch_size"]
    if method != "auto":
        print(f"[{name}] method {method!r} (as given); {loss.n_params:,} parameters", flush=True)
        return
    if penalised:
        print(f"[{name}] method 'auto' chose {choose_prox(loss)!r} (L1 penalty) for "
              f"{loss.n_params:,} parameters", flush=True)
        return
    chosen, preconditioner = choose_method(loss, sketch_size)
    costs = ", ".join(f"{k} {v:.3g}" for k, v in method_costs(loss, sketch_size).items())
    extra = f", preconditioner {preconditioner!r}" if preconditioner else ""
    print(f"[{name}] method 'auto' chose {chosen!r}{extra} for {loss.n_params:,} parameters "
          f"(estimated passes: {costs})", flush=True)


def summary_line(name, res):
    """Verbose level 2: one line for the whole solve."""
    state = "converged" if res.success else "NOT converged"
    return (f"[{name}] {state} in {res.nit} Newton iterations (method {res.method!r}): loss "
            f"{res.fun:.9e}, |grad| {res.grad_norm:.2e}, {res.passes:.1f} passes, {res.time:.2f} s; "
            f"{res.message}")


def run_newton(name, loss, options, *, x0=None, **criterion):
    """:func:`~sketchnewton.api.minimize` with the estimators' ``verbose`` levels.

    ``options`` are :meth:`SolverParams._solver_options`; ``criterion`` is ``tol=`` or ``eps=``.
    Level 1 is the driver's table (one line per Newton iteration); level 2 adds the method
    choice before it and a summary line after it (the driver prints neither).
    """
    verbose = options["verbose"]
    if verbose >= 2:
        _announce(name, loss, options, penalised=criterion.get("l1") is not None)
    res = minimize(loss, x0=x0, **criterion, **options)
    if verbose >= 2:
        print(summary_line(name, res), flush=True)
    return res


class SolverParams:
    """Validation of the solver parameters the estimators share, warm starts, the solve."""

    #: sketches the estimator accepts (the GLM losses sample rows only)
    _sketches = ROW_SAMPLERS

    def _solver_options(self):
        """The validated keyword arguments of :func:`~sketchnewton.api.minimize` (no criterion)."""
        return dict(
            max_iter=check_int(self.max_iter, "max_iter", minimum=0),
            method=check_choice(self.method, "method", METHODS),
            sketch=check_choice(self.sketch, "sketch", self._sketches),
            preconditioner=check_choice(self.preconditioner, "preconditioner",
                                        ("auto",) + PRECONDITIONERS),
            sketch_size=check_int(self.sketch_size, "sketch_size", minimum=1, allow_none=True),
            verbose=check_int(self.verbose, "verbose", minimum=0),
            random_state=self.random_state)

    def _check_solver(self):
        """``(options, tol)`` of the GLM estimators."""
        return self._solver_options(), check_real(self.tol, "tol", positive=True)

    def _minimize(self, loss, options, x0=None, **criterion):
        res = run_newton(type(self).__name__, loss, options, x0=x0, **criterion)
        self.n_iter_ = np.array([res.nit], dtype=np.int32)
        self.result_ = res
        return res

    def _params(self):
        """``coef_`` (and ``intercept_``) in the loss's layout: one row per class (or one),
        the intercept last in each row."""
        coef = np.atleast_2d(np.asarray(self.coef_, dtype=np.float64))
        if not getattr(self, "fit_intercept", False):
            return coef.ravel().copy()
        icpt = np.broadcast_to(np.asarray(self.intercept_, dtype=np.float64), (coef.shape[0],))
        return np.column_stack([coef, icpt]).ravel()

    def _warm_start(self, rows, d):
        """The previous solution as the start (``warm_start`` and ``coef_`` of shape
        ``(rows, d)``, as scikit-learn's LogisticRegression); else None: the loss's own start."""
        if not (self.warm_start and hasattr(self, "coef_")):
            return None
        if np.atleast_2d(self.coef_).shape != (rows, d):
            return None
        return self._params()
