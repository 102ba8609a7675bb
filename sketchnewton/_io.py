"""Safe loading of matrices and vectors from files, and atomic writing (used by the command line).

Formats
-------
Matrix ``A``:

- ``.npz``: a scipy sparse matrix written by ``scipy.sparse.save_npz`` (CSR,
  CSC, COO, BSR or DIA). Checked to be a zip archive holding exactly the
  members ``save_npz`` writes; the members are read with ``numpy.load`` and
  validated (integer index arrays, in range, ``indptr`` non-decreasing) before
  the matrix is built.
- ``.npy``: a dense 2-D array written by ``numpy.save``.
- ``.csv``: a dense matrix as comma-separated numbers, one row per line
  (lines starting with ``#`` and blank lines are skipped).
- ``.mtx``: MatrixMarket (``scipy.io.mmread``); coordinate files stay sparse.
- ``.svm``, ``.libsvm``, ``.svmlight``, ``.txt``: svmlight / libsvm text
  (``sklearn.datasets.load_svmlight_file``); the label column is ignored by
  :func:`load_matrix` and returned by :func:`load_svmlight_labeled`.

Vectors (``b``, ``x0``, ``w``, labels): ``.npy`` (1-D, or a single row or
column) or text with one number per line (``.txt``, ``.dat``, ``.csv``).

Safety
------
- Only regular files are read: a FIFO (named pipe), device or socket is
  refused before it is opened (reading one could block forever).
- Nothing is ever unpickled: ``.npy`` headers with object dtypes are refused and
  every ``numpy.load`` uses ``allow_pickle=False``. Only real numbers (bool,
  integer, float dtypes) are accepted: strings, complex, datetime64 and
  timedelta64 are refused with the dtype named.
- Sizes are checked before anything is allocated, from the ``.npy`` header
  (also for every member of a ``.npz``, together with the matrix the members
  describe), the MatrixMarket header (its size line, read here before
  ``scipy.io.mmread`` is called) or the file size (text formats). A file whose
  arrays would need more than :data:`MAX_BYTES` (1 TiB) or more than the
  memory currently available (``MemAvailable`` in ``/proc/meminfo``) is
  refused, and so is a matrix whose declared shape and number of non-zeros
  fail ``size_check`` (by default :func:`check_problem_size`). Declared sizes
  are also checked against the bytes the file actually holds (truncation).
- A file must be what its extension says: ``.npy`` starts with
  ``\\x93NUMPY``, ``.npz`` is a zip archive with the members of
  ``save_npz``, ``.mtx`` starts with ``%%MatrixMarket``, text formats
  contain no NUL byte.
- Sparse index arrays are fully validated so that out-of-range indices cannot
  reach the numba kernels.

Every problem is reported as :class:`LoadError` (an ``InputError``) with a
one-line message naming the file; messages quote at most a few values.

Outputs are written by :func:`write_atomically`: each file goes to a
temporary file in its destination directory, and only when every output has
been written (and flushed to disk) are they moved into place with
``os.replace``, so a failure leaves neither a half-written file nor a partial
set of outputs. Failures are reported as :class:`OutputError` naming the file.
"""

import contextlib
import errno
import io
import os
import re
import secrets
import stat
import warnings
import zipfile

import numpy as np
import scipy.sparse as sp

from .exceptions import InputError

__all__ = ["LoadError", "OutputError", "MAX_BYTES", "MATRIX_EXTENSIONS", "VECTOR_EXTENSIONS",
           "available_memory", "memory_limit", "load_matrix", "load_vector",
           "load_svmlight_labeled", "check_problem_size", "check_input_file", "save_vector",
           "write_atomically", "check_writable_directory"]

MAX_BYTES = 1 << 40
"""Largest amount of memory (bytes) a loaded file or a problem may need: 1 TiB."""

SVMLIGHT_EXTENSIONS = (".svm", ".libsvm", ".svmlight", ".txt")
MATRIX_EXTENSIONS = (".npz", ".npy", ".csv", ".mtx") + SVMLIGHT_EXTENSIONS
TEXT_VECTOR_EXTENSIONS = (".txt", ".dat", ".csv")
VECTOR_EXTENSIONS = (".npy",) + TEXT_VECTOR_EXTENSIONS

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_MM_MAGIC = b"%%matrixmarket"
_MM_HEADER_LIMIT = 1 << 20  # bytes of banner + comments + size line read by hand
# members written by scipy.sparse.save_npz, per format (``_is_array`` optional)
_NPZ_MEMBERS = {
    "csr": {"data", "indices", "indptr", "format", "shape"},
    "csc": {"data", "indices", "indptr", "format", "shape"},
    "bsr": {"data", "indices", "indptr", "format", "shape"},
    "dia": {"data", "offsets", "format", "shape"},
    "coo": {"data", "row", "col", "format", "shape"},
}
_NPZ_COO_ND = {"data", "coords", "format", "shape"}
_NPZ_INDEX_MEMBERS = {"indices", "indptr", "offsets", "row", "col", "coords", "shape"}
_NUMERIC_KINDS = "biuf"  # bool, signed and unsigned integers, floats
_INT_KINDS = "iu"
_FEW = 3  # values quoted in an error message


class LoadError(InputError):
    """A file cannot be used: missing, wrong format, too large, or invalid content."""


class OutputError(InputError):
    """An output file cannot be written (no such directory, not writable, disk full, ...)."""


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


def _one_line(exc, limit=200):
    text = re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _few(values, fmt="{}"):
    """At most ``_FEW`` values of a sequence, for a message: ``"1, 2, 3, ... (10 in all)"``."""
    values = list(values[:_FEW + 1]) if not isinstance(values, np.ndarray) \
        else values[:_FEW + 1].tolist()
    text = ", ".join(fmt.format(v) for v in values[:_FEW])
    return text + ", ..." if len(values) > _FEW else text


def _kind_of_file(mode):
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"


def check_input_file(path, name):
    """Check that ``path`` exists and is a regular file (not a FIFO, device, socket, directory)."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LoadError(f"{name} file {path!r} does not exist") from None
    except OSError as exc:
        raise LoadError(f"{name} file {path!r} cannot be accessed: {exc.strerror or exc}") \
            from None
    if stat.S_ISDIR(mode):
        raise LoadError(f"{name} file {path!r} is a directory")
    if not stat.S_ISREG(mode):
        raise LoadError(f"{name} file {path!r} is {_kind_of_file(mode)}, not a regular file; "
                        f"only regular files are read (copy the data to a file first)")
    return path


_check_file = check_input_file


def _head(path, nbytes=8192):
    with open(path, "rb") as f:
        return f.read(nbytes)


def _check_text(path, name, what):
    head = _head(path, 65536)
    if b"\x00" in head:
        raise LoadError(f"{name} file {path!r} is binary, not {what}")
    if not head.strip():
        raise LoadError(f"{name} file {path!r} is empty")


def _check_no_nul(path, name, what, chunk=1 << 24):
    """Refuse a file holding a NUL byte anywhere (a binary file, or a corrupted text file)."""
    with open(path, "rb") as f:
        offset = 0
        while True:
            block = f.read(chunk)
            if not block:
                return
            pos = block.find(b"\x00")
            if pos >= 0:
                raise LoadError(f"{name} file {path!r} holds a NUL byte at offset "
                                f"{offset + pos:,}; it is binary or corrupted, not {what}")
            offset += len(block)


@contextlib.contextmanager
def _parsing(prefix):
    """Turn any parser failure (except MemoryError) into a one-line :class:`LoadError`."""
    try:
        yield
    except (LoadError, MemoryError):
        raise
    except Exception as exc:  # malformed files make parsers raise all sorts of exceptions
        kind = "" if isinstance(exc, ValueError) else f"{type(exc).__name__}: "
        raise LoadError(f"{prefix}: {kind}{_one_line(exc)}") from None


def _check_dtype(dtype, name, path, numeric=True):
    if dtype.hasobject:
        raise LoadError(f"{name} file {path!r} holds Python objects (dtype {dtype}); "
                        f"refusing to unpickle")
    # bool, integers and floats only (timedelta64 is an integer subtype for numpy; refused)
    if numeric and (dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None
                    or dtype.subdtype is not None):
        raise LoadError(f"{name} file {path!r} has dtype {dtype}; expected real numbers "
                        f"(bool, integer or float)")


def _read_npy_header(fp, name, path, numeric=True):
    """Return ``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``fp``."""
    magic = fp.read(len(_NPY_MAGIC) + 2)
    if len(magic) < len(_NPY_MAGIC) + 2 or not magic.startswith(_NPY_MAGIC):
        raise LoadError(f"{name} file {path!r} is not a .npy file (no \\x93NUMPY magic bytes)")
    version = (magic[-2], magic[-1])
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise LoadError(f"{name} file {path!r}: unsupported .npy format version {version}")
    with _parsing(f"{name} file {path!r} has an invalid .npy header"):
        # (any exception: numpy's header parser raises ValueError, SyntaxError,
        # tokenize.TokenError, EOFError, ... on malformed headers)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise LoadError(f"{name} file {path!r} has an invalid .npy header: negative "
                        f"dimension in shape {shape}")
    _check_dtype(dtype, name, path, numeric)
    return shape, fortran, dtype


def _npy_nbytes(shape, dtype):
    count = 1
    for s in shape:
        count *= s
    return count, count * dtype.itemsize


# ----------------------------------------------------------------------------
# matrices
# ----------------------------------------------------------------------------

def _checked_path(path, name, allowed):
    """Return ``(path, extension)`` after checking the extension and that the file is regular."""
    path = os.fspath(path)
    ext = _ext(path)
    if ext not in allowed:
        raise LoadError(f"{name} file {path!r} has unknown extension {ext or '(none)'!r}; "
                        f"expected one of {', '.join(allowed)}")
    check_input_file(path, name)
    return path, ext


def load_matrix(path, name="A", *, zero_based="auto", size_check=check_problem_size):
    """Load the matrix ``A`` from ``path`` (format from the extension, see module doc).

    Returns a scipy sparse CSR matrix (``.npz``, coordinate ``.mtx``,
    svmlight) or a 2-D ndarray (``.npy``, ``.csv``, array ``.mtx``).
    ``zero_based`` is passed to ``load_svmlight_file`` for svmlight files.
    ``size_check(n, d, nnz, name)`` is called with the sizes a binary file
    declares before the matrix is built (``None``: no check).
    """
    path, ext = _checked_path(path, name, MATRIX_EXTENSIONS)
    size_check = size_check or (lambda n, d, nnz, name: None)
    if ext == ".npy":
        A = _load_npy(path, name, ndim=2, size_check=size_check)
    elif ext == ".npz":
        A = _load_npz(path, name, size_check)
    elif ext == ".csv":
        A = _load_csv_matrix(path, name)
    elif ext == ".mtx":
        A = _load_mtx(path, name, size_check)
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


def _load_npy(path, name, *, ndim=None, size_check=None, vector=False, length=None):
    """Load a ``.npy``, checking the declared shape first.

    ``ndim=2``: a matrix (then ``size_check(n, d, n * d, name)``); ``vector``:
    a vector (of length ``length[0]`` if ``length`` is given).
    """
    with open(path, "rb") as f:
        shape, _, dtype = _read_npy_header(f, name, path)
        offset = f.tell()
        size = os.fstat(f.fileno()).st_size
    count, nbytes = _npy_nbytes(shape, dtype)
    if ndim == 2 and len(shape) != 2:
        raise LoadError(f"{name} file {path!r} holds an array of shape {shape}; "
                        f"expected a 2-D matrix")
    if vector:
        _check_vector_shape(shape, name, path, length)
    _check_memory(nbytes + 8 * count, f"loading {name} file {path!r} (shape {shape})")
    if size < offset + nbytes:
        raise LoadError(f"{name} file {path!r} is truncated: its header announces shape {shape} "
                        f"({_fmt_bytes(nbytes)}) but it holds {_fmt_bytes(size - offset)}")
    if ndim == 2 and size_check is not None:
        size_check(shape[0], shape[1], count, name)
    with _parsing(f"{name} file {path!r} cannot be read as .npy"):
        return np.load(path, allow_pickle=False)


# --- .npz ---------------------------------------------------------------------------------

def _bad_matrix(name, path, what):
    return LoadError(f"{name} file {path!r} holds an invalid sparse matrix: {what}")


def _npz_layout(fmt, shapes, n, d, name, path):
    """Check the member shapes of a ``save_npz`` file against its matrix shape; return nnz bound."""
    def want(member, expected):
        if shapes[member] != expected:
            raise _bad_matrix(name, path, f"member {member} has shape {shapes[member]}, expected "
                                          f"{expected} for a {fmt} matrix of shape ({n}, {d})")

    def one_d(member):
        if len(shapes[member]) != 1:
            raise _bad_matrix(name, path, f"member {member} has shape {shapes[member]}; "
                                          f"expected 1-D")
        return shapes[member][0]

    if fmt in ("csr", "csc"):
        nnz = one_d("data")
        want("indices", (nnz,))
        want("indptr", ((n if fmt == "csr" else d) + 1,))
        return nnz
    if fmt == "bsr":
        if len(shapes["data"]) != 3:
            raise _bad_matrix(name, path, f"member data has shape {shapes['data']}; expected "
                                          f"(blocks, R, C) for a bsr matrix")
        nb, R, C = shapes["data"]
        if R < 1 or C < 1 or n % R or d % C:
            raise _bad_matrix(name, path, f"block size ({R}, {C}) does not divide the shape "
                                          f"({n}, {d})")
        want("indices", (nb,))
        want("indptr", (n // R + 1,))
        return nb * R * C
    if fmt == "coo":
        if "coords" in shapes:
            nnz = one_d("data")
            want("coords", (2, nnz))
            return nnz
        nnz = one_d("data")
        want("row", (nnz,))
        want("col", (nnz,))
        return nnz
    # dia: offsets (k,), data (k, L); at most k * min(L, d) stored entries
    k = one_d("offsets")
    if len(shapes["data"]) != 2 or shapes["data"][0] != k:
        raise _bad_matrix(name, path, f"member data has shape {shapes['data']}; expected "
                                      f"({k}, L) for {k} diagonal offsets")
    return k * min(shapes["data"][1], d)


def _check_range(values, low, high, what, name, path):
    """Refuse entries of the integer array ``values`` outside ``[low, high)``."""
    if values.size == 0:
        return
    bad = (values < low) | (values >= high)
    if bad.any():
        pos = np.flatnonzero(bad)
        raise _bad_matrix(name, path, f"{pos.size:,} {what} out of range [{low}, {high}): "
                                      f"{_few(values[pos])} at positions {_few(pos)}")


def _check_indptr(indptr, nnz, what, name, path):
    if indptr[0] != 0 or indptr[-1] != nnz:
        raise _bad_matrix(name, path, f"indptr must start at 0 and end at the number of "
                                      f"stored entries {nnz:,}; it runs from {indptr[0]} to "
                                      f"{indptr[-1]}")
    dec = np.flatnonzero(np.diff(indptr) < 0)
    if dec.size:
        i = int(dec[0])
        raise _bad_matrix(name, path, f"indptr decreases ({dec.size:,} times; first at {what} "
                                      f"{i}: {indptr[i]} then {indptr[i + 1]})")


def _index_array(arr, member, name, path):
    """``arr`` as int32 or int64 (refused when not integer or when values do not fit)."""
    if arr.dtype.kind not in _INT_KINDS:
        raise _bad_matrix(name, path, f"member {member} has dtype {arr.dtype}; index arrays "
                                      f"must be integers")
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise _bad_matrix(name, path, f"member {member} holds indices too large for int64")
    if arr.dtype.newbyteorder("=") in (np.dtype(np.int32), np.dtype(np.int64)):
        return arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return arr.astype(np.int64)


def _load_npz(path, name, size_check):
    if _head(path, 4) != _ZIP_MAGIC or not zipfile.is_zipfile(path):
        raise LoadError(f"{name} file {path!r} is not a .npz (zip) file")
    not_sparse = (f"{name} file {path!r} is not a scipy sparse .npz (write it with "
                  f"scipy.sparse.save_npz; save a dense matrix with numpy.save as .npy)")
    with _parsing(f"{name} file {path!r} is a corrupt zip archive"):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if not all(m.endswith(".npy") for m in names) or len(set(names)) != len(names) \
                    or "format.npy" not in names or len(names) > 8:
                raise LoadError(not_sparse)
            keys = {m[:-4] for m in names}
            fmt = None
            with zf.open("format.npy") as fp:
                shape, _, dtype = _read_npy_header(fp, name, f"{path}:format.npy", numeric=False)
                if shape != () or dtype.kind != "S" or dtype.itemsize > 8:
                    raise LoadError(not_sparse)
                fmt = fp.read(dtype.itemsize).rstrip(b"\x00").decode("ascii", "replace")
            expected = _NPZ_MEMBERS.get(fmt)
            if expected is None:
                raise LoadError(f"{name} file {path!r}: unsupported sparse format {fmt!r}; "
                                f"expected one of {', '.join(_NPZ_MEMBERS)}")
            allowed = [expected, _NPZ_COO_ND] if fmt == "coo" else [expected]
            if keys - {"_is_array"} not in allowed:
                raise LoadError(f"{name} file {path!r}: members {_few(sorted(keys))} do not "
                                f"match a scipy.sparse.save_npz file of format {fmt!r}")
            total, shapes, truncated = 0, {}, []
            for info in infos:
                member = info.filename[:-4]
                where = f"{path}:{info.filename}"
                with zf.open(info) as fp:
                    shape, _, dtype = _read_npy_header(fp, name, where,
                                                       numeric=member != "format")
                    header = fp.tell()
                if member in _NPZ_INDEX_MEMBERS and dtype.kind not in _INT_KINDS:
                    raise _bad_matrix(name, path, f"member {member} has dtype {dtype}; index "
                                                  f"arrays must be integers")
                count, nbytes = _npy_nbytes(shape, dtype)
                shapes[member] = shape
                total += nbytes + 8 * count
                if info.file_size < header + nbytes:  # the zip directory's size of the member
                    truncated.append((member, shape, nbytes, max(info.file_size - header, 0)))
            _check_memory(total, f"loading {name} file {path!r}")
            if truncated:
                member, shape, nbytes, held = truncated[0]
                raise LoadError(f"{name} file {path!r} is truncated: member {member} announces "
                                f"shape {shape} ({_fmt_bytes(nbytes)}) but holds "
                                f"{_fmt_bytes(held)}")
            if shapes["shape"] != (2,):
                raise LoadError(f"{name} file {path!r} holds a sparse array whose shape member "
                                f"has shape {shapes['shape']}; expected a 2-D matrix")
            with zf.open("shape.npy") as fp:
                matrix_shape = np.lib.format.read_array(fp, allow_pickle=False)
    n, d = (int(v) for v in matrix_shape)
    if n < 0 or d < 0:
        raise _bad_matrix(name, path, f"negative shape ({n}, {d})")
    nnz = _npz_layout(fmt, shapes, n, d, name, path)
    # the CSR matrix built from the members (data, indices, indptr) and its conversion copies
    _check_memory(total + 16 * nnz + 8 * (n + 1),
                  f"loading {name} file {path!r} (shape ({n:,}, {d:,}), {nnz:,} stored entries)")
    size_check(n, d, nnz, name)
    with _parsing(f"{name} file {path!r} cannot be read"):
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in keys if k not in ("format", "shape", "_is_array")}
    with _parsing(f"{name} file {path!r} holds an invalid sparse matrix"):
        return _build_sparse(fmt, arrays, n, d, name, path)


def _build_sparse(fmt, arrays, n, d, name, path):
    data = arrays["data"].astype(np.float64, copy=False)  # (scipy.sparse has no float16)
    if fmt in ("csr", "csc", "bsr"):
        indptr = _index_array(arrays["indptr"], "indptr", name, path)
        indices = _index_array(arrays["indices"], "indices", name, path)
        if fmt == "bsr":
            R, C = data.shape[1:]
            _check_indptr(indptr, indices.size, "block row", name, path)
            _check_range(indices, 0, d // C, "block column indices", name, path)
            return sp.bsr_matrix((data, indices, indptr), shape=(n, d), blocksize=(R, C)).tocsr()
        major, minor = (n, d) if fmt == "csr" else (d, n)
        what = ("row", "column") if fmt == "csr" else ("column", "row")
        _check_indptr(indptr, data.size, what[0], name, path)
        _check_range(indices, 0, minor, f"{what[1]} indices", name, path)
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        return cls((data, indices, indptr), shape=(n, d))
    if fmt == "coo":
        if "coords" in arrays:
            coords = _index_array(arrays["coords"], "coords", name, path)
            row, col = coords[0], coords[1]
        else:
            row = _index_array(arrays["row"], "row", name, path)
            col = _index_array(arrays["col"], "col", name, path)
        _check_range(row, 0, n, "row indices", name, path)
        _check_range(col, 0, d, "column indices", name, path)
        return sp.coo_matrix((data, (row, col)), shape=(n, d))
    offsets = _index_array(arrays["offsets"], "offsets", name, path)
    if np.unique(offsets).size != offsets.size:
        raise _bad_matrix(name, path, "duplicate diagonal offsets")
    # diagonals outside the matrix hold no entries: drop them (so that huge offsets cannot
    # overflow scipy's index arithmetic)
    keep = (offsets > -n) & (offsets < d)
    return sp.dia_matrix((data[keep], offsets[keep]), shape=(n, d))


# --- .mtx ---------------------------------------------------------------------------------

def _mm_header(path, name):
    """Parse the MatrixMarket banner and size line by hand.

    Returns ``(rows, cols, entries, format, field, symmetry, header_bytes)``.
    """
    bad = f"{name} file {path!r} has an invalid MatrixMarket header"
    with open(path, "rb") as f:
        banner = f.readline(1024)
        if not banner.lower().startswith(_MM_MAGIC):
            raise LoadError(f"{name} file {path!r} is not a MatrixMarket file (it does not start "
                            f"with %%MatrixMarket)")
        words = banner.decode("ascii", "replace").lower().split()
        if len(words) != 5 or words[1] != "matrix":
            got = _one_line(banner.decode("ascii", "replace"), 80)
            raise LoadError(f"{bad}: expected '%%MatrixMarket matrix <format> <field> "
                            f"<symmetry>', got {got!r}")
        _, _, fmt, field, symmetry = words
        if fmt not in ("coordinate", "array"):
            raise LoadError(f"{bad}: format {fmt!r}, expected coordinate or array")
        if field not in ("real", "integer", "pattern", "double", "complex"):
            raise LoadError(f"{bad}: unknown field {field!r}")
        if field not in ("real", "integer", "pattern", "double"):
            raise LoadError(f"{name} file {path!r} has MatrixMarket field {field!r}; "
                            f"expected real, integer or pattern")
        if symmetry not in ("general", "symmetric", "skew-symmetric", "hermitian"):
            raise LoadError(f"{bad}: symmetry {symmetry!r}, expected general, symmetric, "
                            f"skew-symmetric or hermitian")
        if fmt == "array" and field == "pattern":
            raise LoadError(f"{bad}: an array (dense) file cannot have field 'pattern'")
        while True:
            line = f.readline(4096)
            if not line:
                raise LoadError(f"{bad}: no size line")
            if f.tell() > _MM_HEADER_LIMIT:
                raise LoadError(f"{bad}: no size line in the first {_fmt_bytes(_MM_HEADER_LIMIT)}")
            if line.strip() and not line.lstrip().startswith(b"%"):
                break
        header_bytes = f.tell()
    fields = line.split()
    want = 3 if fmt == "coordinate" else 2
    if len(fields) != want or not all(re.fullmatch(rb"\d{1,30}", v) for v in fields):
        raise LoadError(f"{bad}: the size line should be {want} non-negative integers "
                        f"({'rows columns entries' if want == 3 else 'rows columns'}), got "
                        f"{_one_line(line.decode('ascii', 'replace'), 80)!r}")
    rows, cols = int(fields[0]), int(fields[1])
    entries = int(fields[2]) if fmt == "coordinate" else None
    if symmetry != "general" and rows != cols:
        raise LoadError(f"{bad}: a {symmetry} matrix must be square, got {rows} x {cols}")
    return rows, cols, entries, fmt, field, symmetry, header_bytes


class _NewlineTerminated(io.RawIOBase):
    """A binary file read as if it ended with a newline (see :func:`_load_mtx`)."""

    def __init__(self, f):
        self._f, self._done = f, False

    def readable(self):
        return True

    def readinto(self, buffer):
        n = self._f.readinto(buffer)
        if n or self._done or len(buffer) == 0:
            return n
        buffer[0], self._done = 10, True
        return 1


def _ends_with_newline(path):
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def _load_mtx(path, name, size_check):
    import scipy.io

    rows, cols, entries, fmt, field, symmetry, header = _mm_header(path, name)
    body = os.path.getsize(path) - header
    symmetric = symmetry != "general"
    if fmt == "coordinate":
        if entries > rows * cols:
            raise LoadError(f"{name} file {path!r} declares {entries:,} entries for a "
                            f"{rows:,} x {cols:,} matrix")
        stored = entries * (2 if symmetric else 1)
        min_line = 4 if field == "pattern" else 6  # "i j\n" or "i j v\n"
        values, nnz = entries, stored
        # row, col, data as int64/float64 from the parser, the COO matrix and its CSR copy
        need = 48 * stored + 16 * (rows + 1)
    else:
        values = {"general": rows * cols, "skew-symmetric": rows * (rows - 1) // 2}.get(
            symmetry, rows * (rows + 1) // 2)
        min_line, nnz = 2, rows * cols  # "v\n"
        need = 2 * 8 * rows * cols
    _check_memory(need, f"loading {name} file {path!r} (shape ({rows:,}, {cols:,}))")
    if body < values * min_line:
        raise LoadError(f"{name} file {path!r} is truncated: its size line announces "
                        f"{values:,} entries but the file holds only {_fmt_bytes(body)} after "
                        f"the header")
    size_check(rows, cols, nnz, name)
    # scipy's MatrixMarket reader (fast_matrix_market) crashes the interpreter (segfault) on
    # a NUL byte, and on a last line without a newline that is not a complete number ("1e5\r",
    # "1.0E-"): refuse the first, and read the second through a stream ending in a newline
    _check_no_nul(path, name, "a MatrixMarket text file")
    with _parsing(f"{name} file {path!r} cannot be read as MatrixMarket"):
        if _ends_with_newline(path):
            A = scipy.io.mmread(path)
        else:
            with open(path, "rb") as f:
                A = scipy.io.mmread(io.BufferedReader(_NewlineTerminated(f)))
    if A.shape != (rows, cols):
        raise LoadError(f"{name} file {path!r} holds a matrix of shape {A.shape} but its header "
                        f"declares ({rows}, {cols})")
    if A.dtype.kind not in _NUMERIC_KINDS:
        raise LoadError(f"{name} file {path!r} has dtype {A.dtype}; expected real numbers")
    return A


# --- svmlight ---------------------------------------------------------------------------

def _svmlight_memory(path, name):
    _check_memory(4 * os.path.getsize(path), f"loading {name} file {path!r}")


def _load_svmlight(path, name, zero_based):
    from sklearn.datasets import load_svmlight_file

    _check_text(path, name, "an svmlight/libsvm text file")
    _svmlight_memory(path, name)
    with _parsing(f"{name} file {path!r} is not a valid svmlight/libsvm file"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            X, _ = load_svmlight_file(path, dtype=np.float64, zero_based=zero_based)
    if X.nnz == 0:
        raise LoadError(f"{name} file {path!r} has no index:value pairs; it is not an "
                        f"svmlight/libsvm file")
    return X


def load_svmlight_labeled(paths, names, *, zero_based="auto", n_features=None):
    """Load svmlight/libsvm files with their labels: ``[(X, y), ...]`` of a common width.

    All files are read together (``sklearn.datasets.load_svmlight_files``), so
    ``zero_based="auto"`` decides for all of them at once and they get the same
    number of columns: ``n_features`` if given (a file with a larger index is
    refused), else the largest index found in any of them.
    """
    from sklearn.datasets import load_svmlight_files

    paths = [os.fspath(p) for p in paths]
    for path, name in zip(paths, names):
        _checked_path(path, name, SVMLIGHT_EXTENSIONS)
        _check_text(path, name, "an svmlight/libsvm text file")
        _svmlight_memory(path, name)
    _check_memory(4 * sum(os.path.getsize(p) for p in paths),
                  f"loading {' and '.join(repr(p) for p in paths)}")
    files = " and ".join(f"{name} file {path!r}" for path, name in zip(paths, names))
    with _parsing(f"{files}: not valid svmlight/libsvm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = load_svmlight_files(paths, n_features=n_features, dtype=np.float64,
                                      zero_based=zero_based)
    pairs = [(_compact_csr(out[2 * i]), out[2 * i + 1]) for i in range(len(paths))]
    for (X, y), path, name in zip(pairs, paths, names):
        if X.shape[0] == 0:
            raise LoadError(f"{name} file {path!r} holds no samples")
    return pairs


# --- .csv ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)",
                     re.IGNORECASE)


def _text_lines(path):
    """Yield ``(line_number, fields)`` of a text file of comma/space separated numbers."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            line = line.split("#", 1)[0].strip()
            if line:
                yield number, line


def _diagnose_text(path, name, delimiter, expect_one=False):
    """Find the first bad line of a text file of numbers; return a message or None."""
    width = first = None
    for number, line in _text_lines(path):
        fields = [v.strip() for v in line.split(delimiter)] if delimiter else line.split()
        for j, v in enumerate(fields, start=1):
            if not _NUMBER.fullmatch(v):
                col = "" if len(fields) == 1 else f", field {j}"
                return f"line {number}{col}: {_one_line(v, 40)!r} is not a number"
        if expect_one and len(fields) != 1 and delimiter is None:
            return f"line {number} has {len(fields)} numbers"
        if width is None:
            width, first = len(fields), number
        elif len(fields) != width:
            return (f"line {number} has {len(fields)} values but line {first} has {width} "
                    f"(ragged rows)")
    return None


def _load_text_numbers(path, name, delimiter, what, expect_one=False):
    _check_text(path, name, what)
    # at least 2 bytes per number ("1\n"); float64 result plus the parser's copies
    _check_memory(8 * os.path.getsize(path), f"loading {name} file {path!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#",
                                delimiter=delimiter, encoding="utf-8")
    except MemoryError:
        raise
    except Exception as exc:
        detail = _diagnose_text(path, name, delimiter, expect_one) or _one_line(exc)
        raise LoadError(f"{name} file {path!r} is not {what}: {detail}") from None
    if values.size == 0:
        raise LoadError(f"{name} file {path!r} holds no numbers")
    return values


def _load_csv_matrix(path, name):
    return _load_text_numbers(path, name, ",", "a CSV file of numbers (one matrix row per "
                                                "line, comma-separated)")


# ----------------------------------------------------------------------------
# vectors
# ----------------------------------------------------------------------------

def _check_vector_shape(shape, name, path, length):
    if len(shape) == 2 and 1 in shape:
        shape = (shape[0] * shape[1],)
    if len(shape) != 1:
        raise LoadError(f"{name} file {path!r} holds an array of shape {shape}; "
                        f"expected a vector")
    if length is not None and shape[0] != length[0]:
        raise LoadError(f"{name} in {path!r} has length {shape[0]} but {length[1]}")


def load_vector(path, name="b", *, length=None):
    """Load a 1-D float array from ``.npy`` or a text file with one number per line.

    ``length=(n, "A has n rows")``: refuse another length (for a ``.npy``
    from its header, before reading the data).
    """
    path, ext = _checked_path(path, name, VECTOR_EXTENSIONS)
    if ext == ".npy":
        v = _load_npy(path, name, vector=True, length=length)
        if v.ndim == 2 and 1 in v.shape:
            v = v.ravel()
        _check_vector_shape(v.shape, name, path, length)
        return v
    v = _load_text_numbers(path, name, "," if ext == ".csv" else None,
                           "a text file with one number per line", expect_one=True)
    if v.shape[0] != 1 and v.shape[1] != 1:
        raise LoadError(f"{name} file {path!r} has {v.shape[1]} numbers per line; expected one")
    v = v.ravel()
    _check_vector_shape(v.shape, name, path, length)
    return v


# ----------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------

def _create_temp(final):
    """Create a new empty file next to ``final``: ``(fd, temp_path)``."""
    directory, base = os.path.split(final)
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                           0o666), tmp
        except FileExistsError:
            continue
    raise OSError(errno.EEXIST, "cannot create a temporary file", directory)  # pragma: no cover


def check_writable_directory(path):
    """Check that a new file can be created next to ``path`` (creates and removes a probe).

    Returns None, or the reason (``strerror``) it cannot.
    """
    try:
        fd, tmp = _create_temp(os.path.realpath(path))
    except OSError as exc:
        return exc.strerror or str(exc)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return None


def write_atomically(items):
    """Write several files all-or-nothing: ``items`` is a list of ``(path, write)``.

    ``write(f)`` writes the content to the binary file object ``f``. Every
    file is first written to a temporary file in its destination directory
    and flushed to disk; only then are they all moved into place
    (``os.replace``; a symbolic link is followed, so its target is replaced).
    On failure the temporary files are removed and :class:`OutputError`
    names the file being written.
    """
    temps = []  # (tmp, final, path)
    try:
        for path, write in items:
            path = os.fspath(path)
            final = os.path.realpath(path)
            try:
                fd, tmp = _create_temp(final)
            except OSError as exc:
                raise OutputError(f"cannot write {path!r}: {exc.strerror or exc}") from None
            temps.append((tmp, final, path))
            try:
                with contextlib.suppress(OSError):
                    os.chmod(tmp, stat.S_IMODE(os.stat(final).st_mode))  # keep the old mode
                with os.fdopen(fd, "wb") as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise OutputError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        moved = []
        for tmp, final, path in temps:
            try:
                os.replace(tmp, final)
            except OSError as exc:
                done = f" ({', '.join(map(repr, moved))} already written)" if moved else ""
                raise OutputError(f"cannot write {path!r}: {exc.strerror or exc}{done}") \
                    from None
            moved.append(path)
    finally:
        for tmp, _, _ in temps:
            with contextlib.suppress(FileNotFoundError, OSError):
                if os.path.lexists(tmp):
                    os.unlink(tmp)


def _vector_writer(path, x):
    x = np.asarray(x)
    if _ext(path) == ".npy":
        return lambda f: np.save(f, x, allow_pickle=False)
    return lambda f: np.savetxt(f, x, fmt="%.17g")


def save_vector(path, x):
    """Write ``x`` atomically to ``.npy`` (``numpy.save``) or text (one number per line)."""
    write_atomically([(path, _vector_writer(os.fspath(path), x))])
