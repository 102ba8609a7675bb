"""NumPy files: dense ``.npy`` arrays and scipy sparse ``.npz`` archives (``scipy.sparse.save_npz``).

Headers are parsed and sizes checked before anything is allocated; nothing is
ever unpickled; the index arrays of a sparse matrix are fully validated
before the matrix is built.
"""

import os
import zipfile

import numpy as np
import scipy.sparse as sp

from ._files import LoadError, _check_memory, _few, _fmt_bytes, _head, _parsing

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
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


# --- .npy ---------------------------------------------------------------------------------

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


def _check_vector_shape(shape, name, path, length):
    """Refuse a shape that is not a vector (1-D, or one row or column) of length ``length[0]``."""
    if len(shape) == 2 and 1 in shape:
        shape = (shape[0] * shape[1],)
    if len(shape) != 1:
        raise LoadError(f"{name} file {path!r} holds an array of shape {shape}; "
                        f"expected a vector")
    if length is not None and shape[0] != length[0]:
        raise LoadError(f"{name} in {path!r} has length {shape[0]} but {length[1]}")


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
