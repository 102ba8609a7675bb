"""Running the solver: warnings collected, numerical failures turned into one-line errors
naming the likely cause, hints when the solver did not converge, and the checks of the data
(finite values, sizes) the commands share.

``solve`` is looked up here (``sketchnewton.cli._run.solve``) by :func:`_solve_quietly`.
"""

import sys
import warnings

import numpy as np
import scipy.sparse as sp

from .._outcome import Reason
from .._stopping import HINT
from ..api import solve
from ..exceptions import ConvergenceWarning
from ._options import PROG, _input_error

#: Entries larger than this (in absolute value) are named as the likely cause of a
#: numerical failure: their squares (the Hessian) are beyond float64's range.
LARGE_VALUE = 1e100
_NUMERICAL_ERRORS = (np.linalg.LinAlgError, FloatingPointError, OverflowError, ZeroDivisionError)


# ----------------------------------------------------------------------------
# running the solver
# ----------------------------------------------------------------------------

def _largest(values):
    values = values.data if sp.issparse(values) else np.asarray(values)
    if values.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(values)))


def _scale_hint(data):
    """``"largest |A| = 1e+300, |b| = 0.1"`` for ``data = {"A": A, "b": b}``."""
    parts = [f"|{k}| = {_largest(v):.3g}" for k, v in data.items() if v is not None]
    return "largest " + ", ".join(parts) if parts else ""


def _numerical_error(exc, caught, data):
    """One-line :class:`InputError` for a numerical failure, naming the likely cause."""
    warned = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    during = f" (numpy warned: {'; '.join(warned[:2])})" if warned else ""
    large = any(v is not None and _largest(v) > LARGE_VALUE for v in data.values())
    cause = ("values this large overflow float64 arithmetic: rescale the data (e.g. divide by "
             "the largest entry)" if large else
             "the data may be badly scaled or the problem ill-conditioned: rescale the data, "
             "or try --method exact")
    return _input_error(f"the solve failed numerically ({type(exc).__name__}: "
                        f"{str(exc) or 'no detail'}){during}; {_scale_hint(data)}: {cause}")


def _run_collecting(fn, data):
    """``fn()`` with its ConvergenceWarnings collected as text: ``(result, texts)``.

    Numerical failures (``LinAlgError``, ``FloatingPointError``, ...) become a
    one-line ``InputError`` naming the likely cause (``data``: the arrays whose
    magnitudes are reported). Other warnings are re-emitted unchanged
    (Python's filters apply).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = fn()
        except _NUMERICAL_ERRORS as exc:
            raise _numerical_error(exc, caught, data) from None
    texts = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            text = str(w.message).split(HINT)[0]  # the command line gives its own advice
            if text not in texts:
                texts.append(text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return res, texts


def _solve_quietly(*args, data=None, **kwargs):
    """``solve(...)`` through :func:`_run_collecting`: ``(result, texts)``."""
    if data is None:
        data = {"A": args[0], "b": args[1]} if len(args) >= 2 else {}
    return _run_collecting(lambda: solve(*args, **kwargs), data)


def _solve_hint(res, max_iter=None):
    """What to try when ``solve`` did not reach eps (``max_iter``: the --max-iter given;
    None for the demo, which has neither --max-iter, --lam nor input data)."""
    reason = Reason(res.reason)
    if max_iter is None:
        return "try a larger --eps or another --method"
    if reason is Reason.MAX_ITER:
        return f"increase --max-iter (now {max_iter}) or use a larger --eps"
    if reason in (Reason.ASYMPTOTE, Reason.NOT_ATTAINED):
        return "the minimiser may be at infinity: add a ridge with --lam > 0"
    if reason in (Reason.BELOW_FLOOR, Reason.NOISE_FLOOR):
        return "use a larger --eps (the data's rounding error allows no better)"
    return "try --method exact or a larger --eps, or rescale A and b"


def _warn(texts, hint=None):
    for text in texts:
        tail = f"; {hint}" if hint else ""
        print(f"{PROG}: warning: {text}{tail}", file=sys.stderr)


# ----------------------------------------------------------------------------
# checks of the data
# ----------------------------------------------------------------------------

def _check_finite(values, name, path):
    if not np.all(np.isfinite(values)):
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        raise _input_error(f"{name} in {path!r} contains non-finite values ({n_nan} NaN, "
                           f"{n_inf} Inf)")


def _nnz(A):
    return A.nnz if sp.issparse(A) else A.size


def _count_nonzero(A):
    return A.count_nonzero() if sp.issparse(A) else int(np.count_nonzero(A))
