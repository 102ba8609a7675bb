"""Input checking shared by every entry point (the one place parameters are validated).

Every public parameter goes through one of these functions, so a bad value
raises :class:`~sketchnewton.exceptions.InputError` with a message that names
the parameter, never a raw ``TypeError`` from deep inside the solver.
"""

import math
import numbers
import os

import numpy as np
import scipy.sparse as sp

from .exceptions import InputError

__all__ = [
    "available_memory", "check_array_values", "check_memory", "check_bool", "check_choice", "check_int", "check_random_state",
    "check_real", "check_vector", "describe",
]


def describe(value, limit=60):
    """A short ``repr`` of ``value`` for error messages (arrays are never printed whole)."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_dtype(dtype, name):
    """Refuse complex and non-numeric dtypes (bool, integer and float are accepted)."""
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


def check_int(value, name, *, minimum=None, maximum=None, allow_none=False):
    """Return ``value`` as an ``int``; integral floats such as ``1e6`` are accepted.

    Raises :class:`InputError` naming ``name`` for booleans, non-numbers,
    NaN, infinities, fractional values and values outside
    ``[minimum, maximum]``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        raise InputError(f"{name} must be an integer, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(value, name, *, positive=False, nonnegative=False, maximum=None, allow_inf=False,
               allow_none=False):
    """Return ``value`` as a ``float``, refusing NaN, infinities (unless ``allow_inf``),
    non-numbers and values outside the requested range."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a real number, got {describe(value)}")
    value = float(value)
    if math.isnan(value) or (math.isinf(value) and not allow_inf):
        raise InputError(f"{name} must be finite, got {value}")
    if positive and not value > 0:
        raise InputError(f"{name} must be > 0, got {value}")
    if nonnegative and value < 0:
        raise InputError(f"{name} must be >= 0, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_choice(value, name, choices):
    """Return ``value`` if it is one of ``choices`` (compared with ``==``, hashable or not)."""
    if isinstance(value, str) and value in choices:
        return value
    raise InputError(f"{name} must be one of {tuple(choices)}, got {describe(value)}")


def check_bool(value, name):
    """Return ``value`` as a ``bool``; only ``True``/``False`` (and numpy booleans) are accepted."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InputError(f"{name} must be True or False, got {describe(value)}")


def check_vector(v, name, size=None, *, allow_none=False):
    """Return ``v`` as a finite float64 1-D array (a copy when it was not one), checking its length.

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
    try:
        arr = np.asarray(v)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} is not a numeric array: {exc}") from None
    check_dtype(arr.dtype, name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D, got shape {np.shape(v)}")
    if arr.size == 0:
        raise InputError(f"{name} is empty")
    if size is not None and arr.shape[0] != size:
        raise InputError(f"{name} has length {arr.shape[0]}, expected {size}")
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    check_array_values(arr, name)
    return arr


def check_random_state(random_state):
    """Normalise ``random_state`` (None, int, Generator, RandomState) to a ``numpy.random.Generator``."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**63 - 1, dtype=np.int64))
    if random_state is None or isinstance(random_state, np.random.Generator):
        return np.random.default_rng(random_state)
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, numbers.Integral):
        raise InputError("random_state must be None, a non-negative integer or a "
                         f"numpy.random.Generator, got {describe(random_state)}")
    if random_state < 0:
        raise InputError(f"random_state must be non-negative, got {random_state}")
    return np.random.default_rng(int(random_state))


def check_csr_structure(indptr, indices, n_rows, n_cols, name):
    """Refuse a CSR structure that would make a kernel read out of bounds.

    One O(nnz) scan: ``indptr`` starts at 0, never decreases and ends at
    ``len(indices)``; every column index lies in ``[0, n_cols)``.
    """
    if indptr.shape[0] != n_rows + 1:
        raise InputError(f"{name}: indptr has length {indptr.shape[0]}, expected {n_rows + 1}")
    if n_rows and (indptr[0] != 0 or np.any(np.diff(indptr) < 0)):
        raise InputError(f"{name}: indptr must start at 0 and never decrease (corrupt CSR structure)")
    if indptr[-1] != indices.shape[0]:
        raise InputError(f"{name}: indptr ends at {int(indptr[-1])} but there are "
                         f"{indices.shape[0]} stored entries (corrupt CSR structure)")
    if indices.size:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n_cols:
            raise InputError(f"{name}: column indices must lie in [0, {n_cols}), found "
                             f"[{lo}, {hi}] (corrupt CSR structure)")


def available_memory():
    """Bytes of memory currently available (Linux ``MemAvailable``), or None if unknown."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(nbytes, what, advice):
    """Refuse to allocate ``nbytes`` for ``what`` when they exceed the memory available."""
    avail = available_memory()
    if avail is not None and nbytes > avail:
        raise InputError(f"{what} needs {nbytes / 2**30:.1f} GiB, more than the "
                         f"{avail / 2**30:.1f} GiB of memory available; {advice}")
