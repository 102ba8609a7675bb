"""Outputs: checks of the output paths before anything is solved, and JSON documents.

The files themselves are written all or none by ``sketchnewton._io.write_atomically``.
"""

import json
import math
import os
import stat

import numpy as np

from .._io import check_writable_directory
from ._options import UsageError


def _jsonable(value):
    """Convert numpy scalars/arrays and containers to plain JSON types (non-finite -> None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


# ----------------------------------------------------------------------------
# output paths
# ----------------------------------------------------------------------------

def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name the same file (hard or symbolic links included)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _check_output_path(path, option, extensions, inputs=(), outputs=()):
    """Refuse an output that cannot be written, or would replace an input or another output.

    ``inputs``: ``(path, name)`` of the input files; ``outputs``: ``(path,
    option)`` of the outputs checked before this one.
    """
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise UsageError(f"argument {option}: {path!r} must end in {' or '.join(extensions)}")
    target = os.path.realpath(path)  # a symbolic link: its target is replaced
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise UsageError(f"argument {option}: directory {parent!r} does not exist")
    if os.path.isdir(target):
        raise UsageError(f"argument {option}: {path!r} is a directory")
    for inp, name in inputs:
        if inp is not None and _same_file(path, inp):
            raise UsageError(f"argument {option}: {path!r} is the input file {name} "
                             f"({inp!r}); refusing to overwrite an input")
    for other, other_option in outputs:
        if other is not None and _same_file(path, other):
            raise UsageError(f"argument {option}: {path!r} is also the {other_option} file; "
                             f"give them different names")
    if os.path.lexists(target):
        mode = os.stat(target).st_mode if os.path.exists(target) else 0
        if not stat.S_ISREG(mode):
            raise UsageError(f"argument {option}: {path!r} exists and is not a regular file "
                             f"(a FIFO, device, socket or broken link); refusing to replace it")
        if not os.access(target, os.W_OK):
            raise UsageError(f"argument {option}: {path!r} exists and is read-only")
    reason = check_writable_directory(target)
    if reason is not None:
        raise UsageError(f"argument {option}: cannot create files in directory {parent!r} "
                         f"({reason})")


def _check_outputs(outputs, inputs):
    """Check each ``(path, option, extensions)`` of ``outputs`` (:func:`_check_output_path`)."""
    done = []
    for path, option, extensions in outputs:
        if path is None:
            continue
        _check_output_path(path, option, extensions, inputs, done)
        done.append((path, option))


def _json_writer(doc):
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    return lambda f: f.write(text.encode("utf-8"))
