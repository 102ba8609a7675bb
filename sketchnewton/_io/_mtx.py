"""MatrixMarket ``.mtx`` files: the header is parsed by hand (sizes checked) before ``scipy.io.mmread``."""

import io
import os
import re

import scipy.io

from ._files import (
    LoadError,
    _check_memory,
    _check_no_nul,
    _fmt_bytes,
    _one_line,
    _parsing,
)
from ._npy import _NUMERIC_KINDS

_MM_MAGIC = b"%%matrixmarket"
_MM_HEADER_LIMIT = 1 << 20  # bytes of banner + comments + size line read by hand


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

