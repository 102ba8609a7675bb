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
    "check_real", "dense_storage_dtype", "check_sparse_structure", "check_vector", "describe",
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


def dense_storage_dtype(dtype, name):
    """The dtype a dense matrix is kept in: float32 and float64 as they are (native byte
    order), every other accepted dtype (integers, booleans, float16, long double) as float64.
    Refuses complex and non-numeric dtypes (:func:`check_dtype`)."""
    check_dtype(dtype, name)
    dtype = np.dtype(dtype)
    if dtype.type in (np.float32, np.float64):
        return dtype.newbyteorder("=")
    return np.dtype(np.float64)


#: entries scanned at a time by :func:`check_array_values` (a 256 KiB boolean temporary)
_FINITE_CHUNK = 1 << 18


def check_array_values(values, name):
    """Raise :class:`InputError` if ``values`` holds NaN or Inf.

    Integer and boolean values are finite. A C- or Fortran-contiguous float
    array is scanned in its memory order by chunks of :data:`_FINITE_CHUNK`
    entries: no temporary the size of ``values`` (a sum would not do: finite
    values can overflow it).
    """
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return
    flat = values.ravel(order="K")  # a view when values is contiguous in either order
    chunks = [flat[a:a + _FINITE_CHUNK] for a in range(0, flat.size, _FINITE_CHUNK)]
    if not all(bool(np.isfinite(c).all()) for c in chunks):
        n_nan = sum(int(np.isnan(c).sum()) for c in chunks)
        n_inf = sum(int(np.isinf(c).sum()) for c in chunks)
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


def check_csr_structure(indptr, indices, n_rows, n_cols, name, fmt="CSR", n_values=None):
    """Refuse a compressed (CSR/CSC/BSR) structure that would make a kernel, or scipy's own
    format conversion, read or write out of bounds.

    One O(nnz) scan: ``indptr`` has ``n_rows + 1`` entries, starts at 0, never
    decreases and ends at ``len(indices)`` (and at ``n_values``, the length of the
    stored values, when given); every index lies in ``[0, n_cols)``. For CSC
    ``n_rows``/``n_cols`` are the columns/rows (the compressed and the indexed axis).
    """
    what = {"CSR": "column", "CSC": "row", "BSR": "block column"}[fmt]
    lines = {"CSR": "rows", "CSC": "columns", "BSR": "block rows"}[fmt]
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    if indptr.ndim != 1 or indices.ndim != 1:
        raise InputError(f"{name}: indptr and indices must be 1-D (corrupt {fmt} structure)")
    if indptr.shape[0] != n_rows + 1:
        raise InputError(f"{name}: indptr has length {indptr.shape[0]}, expected {n_rows + 1} "
                         f"({n_rows} {lines} + 1; corrupt {fmt} structure)")
    if n_rows and (indptr[0] != 0 or np.any(np.diff(indptr) < 0)):
        raise InputError(f"{name}: indptr must start at 0 and never decrease (corrupt {fmt} "
                         "structure)")
    if indptr[-1] != indices.shape[0]:
        raise InputError(f"{name}: indptr ends at {int(indptr[-1])} but there are "
                         f"{indices.shape[0]} stored entries (corrupt {fmt} structure)")
    if n_values is not None and n_values != indices.shape[0]:
        raise InputError(f"{name}: {indices.shape[0]} indices but {n_values} stored values "
                         f"(corrupt {fmt} structure)")
    if indices.size:
        lo, hi = int(indices.min()), int(indices.max())
        if lo < 0 or hi >= n_cols:
            raise InputError(f"{name}: {what} indices must lie in [0, {n_cols}), found "
                             f"[{lo}, {hi}] (corrupt {fmt} structure)")


def check_sparse_structure(A, name):
    """:func:`check_csr_structure` for the formats whose conversion to CSR trusts the stored
    indices (CSR, CSC, BSR, COO): checked before scipy converts them."""
    fmt = A.format
    n, d = A.shape
    if fmt == "csr":
        check_csr_structure(A.indptr, A.indices, n, d, name, "CSR", A.data.shape[0])
    elif fmt == "csc":
        check_csr_structure(A.indptr, A.indices, d, n, name, "CSC", A.data.shape[0])
    elif fmt == "bsr":
        r, c = A.blocksize
        check_csr_structure(A.indptr, A.indices, n // r, d // c, name, "BSR", A.data.shape[0])
    elif fmt == "coo":
        coords = A.coords if hasattr(A, "coords") else (A.row, A.col)
        for axis, (c, size) in enumerate(zip(coords, A.shape)):
            c = np.asarray(c)
            if c.shape != np.shape(A.data):
                raise InputError(f"{name}: COO coordinates and values differ in length "
                                 "(corrupt COO structure)")
            if c.size and (int(c.min()) < 0 or int(c.max()) >= size):
                raise InputError(f"{name}: {('row', 'column')[axis]} indices must lie in "
                                 f"[0, {size}), found [{int(c.min())}, {int(c.max())}] "
                                 "(corrupt COO structure)")


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
