"""Safe loading of matrices and vectors from files (used by the command line).

Formats
-------
Matrix ``A``:

- ``.npz``: a scipy sparse matrix written by ``scipy.sparse.save_npz`` (CSR,
  CSC, COO, BSR or DIA). Checked to be a zip archive holding exactly the
  members ``save_npz`` writes before ``scipy.sparse.load_npz`` is called.
- ``.npy``: a dense 2-D array written by ``numpy.save``.
- ``.mtx``: MatrixMarket (``scipy.io.mmread``); coordinate files stay sparse.
- ``.svm``, ``.libsvm``, ``.svmlight``, ``.txt``: svmlight / libsvm text
  (``sklearn.datasets.load_svmlight_file``); the label column is ignored.

Vectors (``b``, ``x0``, ``w``): ``.npy`` (1-D, or a single row or column) or
text with one number per line (``.txt``, ``.dat``, ``.csv``; ``numpy.loadtxt``).

Safety
------
- Nothing is ever unpickled: ``.npy`` headers with object dtypes are refused and
  every ``numpy.load`` uses ``allow_pickle=False``.
- Sizes are checked before anything is allocated, from the ``.npy`` header
  (also for every member of a ``.npz``), the MatrixMarket header
  (``scipy.io.mminfo``) or the file size (text formats). A file whose arrays
  would need more than :data:`MAX_BYTES` (1 TiB) or more than the memory
  currently available (``MemAvailable`` in ``/proc/meminfo``) is refused.
- A file must be what its extension says: ``.npy`` starts with
  ``\\x93NUMPY``, ``.npz`` is a zip archive with the members of
  ``save_npz``, ``.mtx`` starts with ``%%MatrixMarket``, text formats
  contain no NUL byte.
- Sparse index arrays are fully validated (``check_format(full_check=True)``)
  so that out-of-range indices cannot reach the numba kernels.

Every problem is reported as :class:`LoadError` (an ``InputError``) with a
one-line message naming the file.
"""

import os
import re
import warnings
import zipfile

import numpy as np
import scipy.sparse as sp

from .exceptions import InputError

__all__ = ["LoadError", "MAX_BYTES", "MATRIX_EXTENSIONS", "VECTOR_EXTENSIONS", "available_memory",
           "memory_limit", "load_matrix", "load_vector", "check_problem_size", "save_vector"]

MAX_BYTES = 1 << 40
"""Largest amount of memory (bytes) a loaded file or a problem may need: 1 TiB."""

SVMLIGHT_EXTENSIONS = (".svm", ".libsvm", ".svmlight", ".txt")
MATRIX_EXTENSIONS = (".npz", ".npy", ".mtx") + SVMLIGHT_EXTENSIONS
TEXT_VECTOR_EXTENSIONS = (".txt", ".dat", ".csv")
VECTOR_EXTENSIONS = (".npy",) + TEXT_VECTOR_EXTENSIONS

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_MM_MAGIC = b"%%matrixmarket"
# members written by scipy.sparse.save_npz, per format (``_is_array`` optional)
_NPZ_MEMBERS = {
    "csr": {"data", "indices", "indptr", "format", "shape"},
    "csc": {"data", "indices", "indptr", "format", "shape"},
    "bsr": {"data", "indices", "indptr", "format", "shape"},
    "dia": {"data", "offsets", "format", "shape"},
    "coo": {"data", "row", "col", "format", "shape"},
}
_NPZ_COO_ND = {"data", "coords", "format", "shape"}


class LoadError(InputError):
    """A file cannot be used: missing, wrong format, too large, or invalid content."""


# ----------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------

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


def memory_limit():
    """``min(MAX_BYTES, available_memory())``."""
    avail = available_memory()
    return MAX_BYTES if avail is None else min(MAX_BYTES, avail)


def _fmt_bytes(nbytes):
    nbytes = float(nbytes)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if nbytes < 1000 or unit == "EB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1000
    return f"{nbytes:.3g} EB"  # pragma: no cover


def _check_memory(nbytes, what):
    limit = memory_limit()
    if nbytes > limit:
        kind = "the limit of 1 TiB" if limit == MAX_BYTES else "the available memory"
        raise LoadError(f"{what} would need {_fmt_bytes(nbytes)}, more than {kind} "
                        f"({_fmt_bytes(limit)})")


def check_problem_size(n, d, nnz, name="A"):
    """Refuse a problem the solver cannot hold in memory.

    Estimate: ``A`` as float64 CSR (12 bytes per non-zero, 8 per row; a dense
    ``A`` is ``8 n d``), about ten float64 vectors of length ``n`` and three
    ``d x d`` matrices (the Hessian model and its factorization).
    """
    n, d, nnz = int(n), int(d), int(nnz)
    need = 12 * nnz + 8 * (n + 1) + 80 * n + 24 * d * d
    _check_memory(need, f"solving with {name} of shape ({n:,}, {d:,}) and {nnz:,} non-zeros")


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------

def _ext(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def _check_file(path, name):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise LoadError(f"{name} file {path!r} does not exist")
    if os.path.isdir(path):
        raise LoadError(f"{name} file {path!r} is a directory")
    return path


def _head(path, nbytes=8192):
    with open(path, "rb") as f:
        return f.read(nbytes)


def _check_text(path, name, what):
    head = _head(path, 65536)
    if b"\x00" in head:
        raise LoadError(f"{name} file {path!r} is binary, not {what}")
    if not head.strip():
        raise LoadError(f"{name} file {path!r} is empty")


def _check_dtype(dtype, name, path, numeric=True):
    if dtype.hasobject:
        raise LoadError(f"{name} file {path!r} holds Python objects (dtype {dtype}); "
                        f"refusing to unpickle")
    if numeric and not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
            or np.issubdtype(dtype, np.bool_)):
        raise LoadError(f"{name} file {path!r} has dtype {dtype}; expected real numbers")


def _read_npy_header(fp, name, path, numeric=True):
    """Return ``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``fp``."""
    magic = fp.read(len(_NPY_MAGIC) + 2)
    if len(magic) < len(_NPY_MAGIC) + 2 or not magic.startswith(_NPY_MAGIC):
        raise LoadError(f"{name} file {path!r} is not a .npy file (no \\x93NUMPY magic bytes)")
    version = (magic[-2], magic[-1])
    try:
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise LoadError(f"{name} file {path!r}: unsupported .npy format version {version}")
    except LoadError:
        raise
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise LoadError(f"{name} file {path!r} has an invalid .npy header: {_one_line(exc)}") \
            from None
    _check_dtype(dtype, name, path, numeric)
    return tuple(int(s) for s in shape), fortran, dtype


def _one_line(exc):
    return re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__


def _npy_nbytes(shape, dtype):
    count = 1
    for s in shape:
        count *= s
    return count, count * dtype.itemsize


# ----------------------------------------------------------------------------
# matrices
# ----------------------------------------------------------------------------

def _checked_path(path, name, allowed):
    """Return ``(path, extension)`` after checking the extension and that the file exists."""
    path = os.fspath(path)
    ext = _ext(path)
    if ext not in allowed:
        raise LoadError(f"{name} file {path!r} has unknown extension {ext or '(none)'!r}; "
                        f"expected one of {', '.join(allowed)}")
    _check_file(path, name)
    return path, ext


def load_matrix(path, name="A", *, zero_based="auto"):
    """Load the matrix ``A`` from ``path`` (format from the extension, see module doc).

    Returns a scipy sparse matrix (``.npz``, coordinate ``.mtx``, svmlight)
    or a 2-D ndarray (``.npy``, array ``.mtx``). ``zero_based`` is passed to
    ``load_svmlight_file`` for svmlight files.
    """
    path, ext = _checked_path(path, name, MATRIX_EXTENSIONS)
    if ext == ".npy":
        A = _load_npy(path, name)
        if A.ndim != 2:
            raise LoadError(f"{name} file {path!r} holds an array of shape {A.shape}; "
                            f"expected a 2-D matrix")
    elif ext == ".npz":
        A = _load_npz(path, name)
    elif ext == ".mtx":
        A = _load_mtx(path, name)
    else:
        A = _load_svmlight(path, name, zero_based)
    if sp.issparse(A):
        if A.ndim != 2:
            raise LoadError(f"{name} file {path!r} holds a {A.ndim}-D sparse array; expected 2-D")
        A = _compact_csr(A)
    return A


def _compact_csr(A):
    """CSR with 32-bit indices when they fit (less memory; the kernels' common signature)."""
    A = sp.csr_matrix(A)
    small = max(A.shape[1], A.nnz) < np.iinfo(np.int32).max
    if small and (A.indices.dtype != np.int32 or A.indptr.dtype != np.int32):
        A = sp.csr_matrix((A.data, A.indices.astype(np.int32), A.indptr.astype(np.int32)),
                          shape=A.shape)
    return A


def _load_npy(path, name):
    with open(path, "rb") as f:
        shape, _, dtype = _read_npy_header(f, name, path)
        offset = f.tell()
        size = os.fstat(f.fileno()).st_size
    count, nbytes = _npy_nbytes(shape, dtype)
    _check_memory(nbytes + 8 * count, f"loading {name} file {path!r} (shape {shape})")
    if size < offset + nbytes:
        raise LoadError(f"{name} file {path!r} is truncated: its header announces shape {shape} "
                        f"({_fmt_bytes(nbytes)}) but it holds {_fmt_bytes(size - offset)}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise LoadError(f"{name} file {path!r} cannot be read as .npy: {_one_line(exc)}") from None


def _load_npz(path, name):
    if _head(path, 4) != _ZIP_MAGIC or not zipfile.is_zipfile(path):
        raise LoadError(f"{name} file {path!r} is not a .npz (zip) file")
    not_sparse = (f"{name} file {path!r} is not a scipy sparse .npz (write it with "
                  f"scipy.sparse.save_npz; save a dense matrix with numpy.save as .npy)")
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if not all(m.endswith(".npy") for m in names) or len(set(names)) != len(names):
                raise LoadError(not_sparse)
            keys = {m[:-4] for m in names}
            total, shapes, fmt = 0, {}, None
            for member in names:
                with zf.open(member) as fp:
                    shape, _, dtype = _read_npy_header(fp, name, f"{path}:{member}",
                                                       numeric=member != "format.npy")
                    if member == "format.npy":
                        if shape != () or dtype.kind != "S" or dtype.itemsize > 8:
                            raise LoadError(not_sparse)
                        fmt = fp.read(dtype.itemsize).rstrip(b"\x00").decode("ascii", "replace")
                    count, nbytes = _npy_nbytes(shape, dtype)
                    shapes[member[:-4]] = shape
                    total += nbytes + 8 * count
            if "format" not in keys:
                raise LoadError(not_sparse)
    except zipfile.BadZipFile as exc:
        raise LoadError(f"{name} file {path!r} is a corrupt zip archive: {_one_line(exc)}") \
            from None
    expected = _NPZ_MEMBERS.get(fmt)
    if expected is None:
        raise LoadError(f"{name} file {path!r}: unsupported sparse format {fmt!r}; expected one "
                        f"of {', '.join(_NPZ_MEMBERS)}")
    if keys - {"_is_array"} not in ([expected, _NPZ_COO_ND] if fmt == "coo" else [expected]):
        raise LoadError(f"{name} file {path!r}: members {sorted(keys)} do not match a "
                        f"scipy.sparse.save_npz file of format {fmt!r}")
    if shapes.get("shape") != (2,):
        raise LoadError(f"{name} file {path!r} holds a sparse array whose shape member has "
                        f"shape {shapes.get('shape')}; expected a 2-D matrix")
    _check_memory(total, f"loading {name} file {path!r}")
    try:
        A = sp.load_npz(path)
        if A.format in ("csr", "csc", "bsr"):
            A.check_format(full_check=True)
    except (ValueError, TypeError, IndexError, KeyError, NotImplementedError) as exc:
        raise LoadError(f"{name} file {path!r} holds an invalid sparse matrix: {_one_line(exc)}") \
            from None
    return A


def _load_mtx(path, name):
    import scipy.io

    if not _head(path, len(_MM_MAGIC)).lower().startswith(_MM_MAGIC):
        raise LoadError(f"{name} file {path!r} is not a MatrixMarket file (it does not start "
                        f"with %%MatrixMarket)")
    try:
        rows, cols, entries, fmt, field, symmetry = scipy.io.mminfo(path)
    except (ValueError, OSError, IndexError) as exc:
        raise LoadError(f"{name} file {path!r} has an invalid MatrixMarket header: "
                        f"{_one_line(exc)}") from None
    if field not in ("real", "integer", "pattern"):
        raise LoadError(f"{name} file {path!r} has MatrixMarket field {field!r}; "
                        f"expected real, integer or pattern")
    if fmt == "coordinate":
        stored = entries * (2 if symmetry != "general" else 1)
        need = 3 * 16 * stored  # row, col, data as int64/float64, times conversion copies
    else:
        need = 2 * 8 * rows * cols
    _check_memory(need, f"loading {name} file {path!r} (shape ({rows:,}, {cols:,}))")
    try:
        A = scipy.io.mmread(path)
    except (ValueError, OverflowError, IndexError, OSError) as exc:
        raise LoadError(f"{name} file {path!r} cannot be read as MatrixMarket: {_one_line(exc)}") \
            from None
    return A


def _load_svmlight(path, name, zero_based):
    from sklearn.datasets import load_svmlight_file

    _check_text(path, name, "an svmlight/libsvm text file")
    _check_memory(4 * os.path.getsize(path), f"loading {name} file {path!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X, _ = load_svmlight_file(path, dtype=np.float64, zero_based=zero_based)
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise LoadError(f"{name} file {path!r} is not a valid svmlight/libsvm file: "
                        f"{_one_line(exc)}") from None
    if X.nnz == 0:
        raise LoadError(f"{name} file {path!r} has no index:value pairs; it is not an "
                        f"svmlight/libsvm file")
    return X


# ----------------------------------------------------------------------------
# vectors
# ----------------------------------------------------------------------------

def load_vector(path, name="b"):
    """Load a 1-D float array from ``.npy`` or a text file with one number per line."""
    path, ext = _checked_path(path, name, VECTOR_EXTENSIONS)
    if ext == ".npy":
        v = _load_npy(path, name)
        if v.ndim == 2 and 1 in v.shape:
            v = v.ravel()
        if v.ndim != 1:
            raise LoadError(f"{name} file {path!r} holds an array of shape {v.shape}; "
                            f"expected a vector")
        return v
    _check_text(path, name, "a text file of numbers")
    _check_memory(8 * os.path.getsize(path), f"loading {name} file {path!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            v = np.loadtxt(path, dtype=np.float64, ndmin=1, comments="#",
                           delimiter="," if ext == ".csv" else None)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoadError(f"{name} file {path!r} is not a text file with one number per line: "
                        f"{_one_line(exc)}") from None
    if v.ndim != 1:
        v = v.ravel() if 1 in v.shape else v
    if v.ndim != 1:
        raise LoadError(f"{name} file {path!r} has {v.shape[1]} numbers per line; expected one")
    if v.size == 0:
        raise LoadError(f"{name} file {path!r} holds no numbers")
    return v


def save_vector(path, x):
    """Write ``x`` to ``.npy`` (``numpy.save``) or text (one number per line, ``%.17g``)."""
    path = os.fspath(path)
    if _ext(path) == ".npy":
        with open(path, "wb") as f:
            np.save(f, np.asarray(x), allow_pickle=False)
    else:
        np.savetxt(path, np.asarray(x), fmt="%.17g")
