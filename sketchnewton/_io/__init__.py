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

The code is split by job: :mod:`._files` (regular-file, memory and size
checks, error types, atomic writes), :mod:`._npy` (``.npy``, ``.npz``),
:mod:`._mtx` (MatrixMarket), :mod:`._text` (svmlight/libsvm, CSV and other
text) and :mod:`._load` (the loaders, dispatching on the extension).
"""

# not public, but used by sketchnewton.cli
from ._files import (
                     MAX_BYTES,
                     LoadError,
                     OutputError,
                     _vector_writer,  # noqa: F401
                     available_memory,
                     check_input_file,
                     check_problem_size,
                     check_writable_directory,
                     memory_limit,
                     save_vector,
                     write_atomically,
)
from ._load import (  # noqa: F401
                     MATRIX_EXTENSIONS,
                     SVMLIGHT_EXTENSIONS,
                     TEXT_VECTOR_EXTENSIONS,
                     VECTOR_EXTENSIONS,
                     load_matrix,
                     load_svmlight_labeled,
                     load_vector,
)

__all__ = ["LoadError", "OutputError", "MAX_BYTES", "MATRIX_EXTENSIONS", "VECTOR_EXTENSIONS",
           "available_memory", "memory_limit", "load_matrix", "load_vector",
           "load_svmlight_labeled", "check_problem_size", "check_input_file", "save_vector",
           "write_atomically", "check_writable_directory"]
