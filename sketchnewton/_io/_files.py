"""Files, memory and outputs: regular-file and size checks, error types, atomic writes.

The pieces every loader of :mod:`sketchnewton._io` shares (:class:`LoadError`,
the memory limit, :func:`check_input_file`, one-line parser errors) and the
all-or-nothing writer of the command line's outputs (:func:`write_atomically`).
"""

import contextlib
import errno
import os
import re
import secrets
import stat

import numpy as np

from .._validation import available_memory
from ..exceptions import InputError

__all__ = ["LoadError", "OutputError", "MAX_BYTES", "available_memory", "memory_limit",
           "check_problem_size", "check_input_file", "save_vector", "write_atomically",
           "check_writable_directory"]

MAX_BYTES = 1 << 40
"""Largest amount of memory (bytes) a loaded file or a problem may need: 1 TiB."""

_FEW = 3  # values quoted in an error message


class LoadError(InputError):
    """A file cannot be used: missing, wrong format, too large, or invalid content."""


class OutputError(InputError):
    """An output file cannot be written (no such directory, not writable, disk full, ...)."""


# ----------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------

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


def _checked_path(path, name, allowed):
    """Return ``(path, extension)`` after checking the extension and that the file is regular."""
    path = os.fspath(path)
    ext = _ext(path)
    if ext not in allowed:
        raise LoadError(f"{name} file {path!r} has unknown extension {ext or '(none)'!r}; "
                        f"expected one of {', '.join(allowed)}")
    check_input_file(path, name)
    return path, ext


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
