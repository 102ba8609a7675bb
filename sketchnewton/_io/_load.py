"""The loaders: :func:`load_matrix`, :func:`load_vector` and :func:`load_svmlight_labeled`.

Each checks the file (extension, regular file) and hands it to the reader of
its format (:mod:`._npy`, :mod:`._mtx`, :mod:`._text`).
"""

import os
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_files

from ._files import (
    LoadError,
    _check_memory,
    _check_text,
    _checked_path,
    _parsing,
    check_problem_size,
)
from ._mtx import _load_mtx
from ._npy import _check_vector_shape, _load_npy, _load_npz
from ._text import (
    _load_csv_matrix,
    _load_svmlight,
    _load_text_numbers,
    _svmlight_memory,
)

__all__ = ["MATRIX_EXTENSIONS", "VECTOR_EXTENSIONS", "load_matrix", "load_vector",
           "load_svmlight_labeled"]

SVMLIGHT_EXTENSIONS = (".svm", ".libsvm", ".svmlight", ".txt")
MATRIX_EXTENSIONS = (".npz", ".npy", ".csv", ".mtx") + SVMLIGHT_EXTENSIONS
TEXT_VECTOR_EXTENSIONS = (".txt", ".dat", ".csv")
VECTOR_EXTENSIONS = (".npy",) + TEXT_VECTOR_EXTENSIONS


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


def load_svmlight_labeled(paths, names, *, zero_based="auto", n_features=None):
    """Load svmlight/libsvm files with their labels: ``[(X, y), ...]`` of a common width.

    All files are read together (``sklearn.datasets.load_svmlight_files``), so
    ``zero_based="auto"`` decides for all of them at once and they get the same
    number of columns: ``n_features`` if given (a file with a larger index is
    refused), else the largest index found in any of them.
    """
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
