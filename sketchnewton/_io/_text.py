"""Text files: svmlight/libsvm (``sklearn.datasets.load_svmlight_file``) and numbers
separated by commas or white space (``.csv`` matrices, one-number-per-line vectors)."""

import os
import re
import warnings

import numpy as np
from sklearn.datasets import load_svmlight_file

from ._files import LoadError, _check_memory, _check_text, _one_line, _parsing

# --- svmlight ---------------------------------------------------------------------------

def _svmlight_memory(path, name):
    _check_memory(4 * os.path.getsize(path), f"loading {name} file {path!r}")


def _load_svmlight(path, name, zero_based):
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
