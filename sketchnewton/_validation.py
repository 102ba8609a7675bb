"""Input checking shared by every entry point."""

import numbers

import numpy as np
import scipy.sparse as sp

from .exceptions import InputError

__all__ = ["check_vector", "check_random_state", "check_finite_scalar"]


def _check_dtype(dtype, name):
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"{name} has complex dtype {dtype}; only real input is supported")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
            or np.issubdtype(dtype, np.bool_)):
        raise InputError(f"{name} has non-numeric dtype {dtype}")


def check_array_values(values, name):
    """Raise :class:`InputError` if ``values`` holds NaN or Inf."""
    if not np.all(np.isfinite(values)):
        n_nan = int(np.isnan(values).sum())
        n_inf = int(np.isinf(values).sum())
        raise InputError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} Inf)")


def check_vector(v, name, size=None, *, allow_none=False):
    """Return ``v`` as a finite float64 1-D array, checking its length.

    Parameters
    ----------
    v : array-like of shape (size,)
    name : str
        Used in error messages.
    size : int, optional
        Required length.
    """
    if v is None:
        if allow_none:
            return None
        raise InputError(f"{name} is required")
    if sp.issparse(v):
        raise InputError(f"{name} must be a dense 1-D array, got a sparse matrix")
    arr = np.asarray(v)
    _check_dtype(arr.dtype, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {np.shape(v)}")
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    if size is not None and arr.shape[0] != size:
        raise InputError(f"{name} has length {arr.shape[0]}, expected {size}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    check_array_values(arr, name)
    return arr


def check_finite_scalar(value, name, *, nonnegative=False):
    """Return ``value`` as a float, refusing NaN/Inf and (optionally) negatives."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise InputError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise InputError(f"{name} must be finite, got {value}")
    if nonnegative and value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")
    return value


def check_random_state(random_state):
    """Normalise ``random_state`` (None, int, Generator) to a ``numpy.random.Generator``."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    return np.random.default_rng(random_state)
