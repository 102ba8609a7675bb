"""Row blocks stored in files, and read-only blocks that every task reloads from them.

A folder of row blocks holds ``blocks.json`` (the manifest: format, shape, and rows and
non-zeros of each block) and, for block ``j``:

- sparse: ``block_<j>.data.npy`` (float64), ``block_<j>.indices.npy`` and
  ``block_<j>.indptr.npy`` (one integer dtype): a canonical CSR matrix (sorted, no duplicates);
- dense: ``block_<j>.npy`` (float32 or float64, C- or Fortran-ordered).

Each is a plain ``.npy`` file, so a task maps it into memory (``numpy.load(mmap_mode=...)``)
instead of reading it into the process's heap. A :class:`FileBlock` holds only a block's
per-row vectors and its :class:`BlockFile`; the task that runs on it opens the matrix
(:meth:`FileBlock.open`), computes, and drops it: the matrix is never kept by a worker, never
spilled nor written back, and each round over the blocks reads the files once (from the OS page
cache when they are there). A block is validated once, when it is made (:meth:`BlockFile.load`
with ``check=True``: the structure and values as :class:`~sketchnewton._matrix.DataMatrix`
checks them); later loads trust the files and check only that they did not change (size and
modification time).
"""

import json
import mmap
import os

import numpy as np

from .._matrix import DataMatrix, InterceptMatrix
from ..exceptions import InputError
from ._base import Block

__all__ = ["BlockFile", "FileBlock", "MANIFEST", "write_block_files", "read_block_files"]

MANIFEST = "blocks.json"
_FORMAT = "sketchnewton-row-blocks"
_VERSION = 1
_CSR_PARTS = ("data", "indices", "indptr")


class BlockFile:
    """The files of one row block of a folder written by :func:`write_block_files`.

    Parameters
    ----------
    folder : str
    index : int
        Position of the block in the folder.
    shape : tuple (rows, cols)
    nnz : int
    sparse : bool
    """

    def __init__(self, folder, index, shape, nnz, sparse):
        self.folder = os.path.abspath(folder)
        self.index = int(index)
        self.shape = (int(shape[0]), int(shape[1]))
        self.nnz = int(nnz)
        self.sparse = bool(sparse)

    @property
    def paths(self):
        stem = os.path.join(self.folder, f"block_{self.index:05d}")
        if self.sparse:
            return [f"{stem}.{part}.npy" for part in _CSR_PARTS]
        return [f"{stem}.npy"]

    def stamp(self):
        """``(size, mtime_ns)`` of each file: what :meth:`FileBlock.open` checks."""
        try:
            return tuple((st.st_size, st.st_mtime_ns) for st in map(os.stat, self.paths))
        except OSError as exc:
            raise InputError(f"row block {self.index}: cannot read {exc.filename!r} "
                             f"({exc.strerror})") from None

    def nbytes(self):
        return sum(size for size, _ in self.stamp())

    def __dask_tokenize__(self):
        return (type(self).__name__, self.paths, self.stamp())

    def load(self, check=True):
        """The block as a :class:`~sketchnewton._matrix.DataMatrix`.

        ``check=True``: read into memory and validated like any input (structure, dtypes,
        finite values). ``check=False``: memory-mapped, trusted (a block validated before).
        """
        if check:
            arrays = [_read(p) for p in self.paths]
            return self._validated(arrays)
        arrays = [_map(p) for p in self.paths]
        if self.sparse:
            return DataMatrix.trusted((*arrays, self.shape))
        return DataMatrix.trusted(arrays[0])

    def _validated(self, arrays):
        name = f"row block {self.index} ({self.paths[0]!r})"
        if self.sparse:
            data, indices, indptr = arrays
            if data.dtype != np.float64 or indices.dtype != indptr.dtype \
                    or indices.dtype not in (np.int32, np.int64):
                raise InputError(f"{name}: expected float64 values and int32 or int64 indices, "
                                 f"got {data.dtype}, {indices.dtype}, {indptr.dtype}")
            if indptr.shape != (self.shape[0] + 1,) or data.shape != (self.nnz,):
                raise InputError(f"{name}: arrays of shapes {data.shape}, {indices.shape}, "
                                 f"{indptr.shape} do not make the declared {self.shape} matrix "
                                 f"with {self.nnz} non-zeros")
            import scipy.sparse as sp

            csr = sp.csr_matrix((data, indices, indptr), shape=self.shape, copy=False)
            dm = DataMatrix(csr, name)
            kept = np.shares_memory(dm.csr.data, data) and np.shares_memory(dm.csr.indices,
                                                                              indices)
            if not kept:
                raise InputError(f"{name}: not stored as save_blocks writes a block (canonical "
                                 f"CSR: sorted indices, no duplicates; int32 indices where "
                                 f"they fit)")
            return dm
        (dense,) = arrays
        if dense.shape != self.shape or dense.dtype not in (np.float32, np.float64):
            raise InputError(f"{name}: expected a float32 or float64 array of shape "
                             f"{self.shape}, got {dense.dtype} {dense.shape}")
        return DataMatrix(dense, name)


def _read(path):
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read row block file {path!r}: {exc}") from None


def _map(path):
    # copy-on-write mapping: the arrays are writeable for numba (no second, read-only
    # compilation of every kernel) but nothing is ever written to the file
    arr = np.load(path, mmap_mode="c", allow_pickle=False)
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise"):
        # read ahead the whole block while the kernel starts on its first rows
        mm.madvise(mmap.MADV_WILLNEED)
    return np.asarray(arr)


class FileBlock(Block):
    """A row block whose matrix stays in its files: the per-row vectors and the source.

    A task gets the matrix for its duration from :meth:`open`; the object a worker keeps
    (and Dask counts, :meth:`__sizeof__`) is ``O(rows)``.

    Parameters
    ----------
    block : Block
        The block as made from the validated matrix (its vectors are kept, its matrix not).
    source : BlockFile
    stamp : tuple
        ``source.stamp()`` when the block was validated.
    """

    def __init__(self, block, source, stamp):
        super().__init__(None, block.index, **block.vectors)
        self.source = source
        self.stamp = stamp
        self.intercept = isinstance(block.A, InterceptMatrix)

    def open(self):
        if self.source.stamp() != self.stamp:
            raise InputError(f"the files of row block {self.source.index} in "
                             f"{self.source.folder!r} changed during the solve")
        dm = self.source.load(check=False)
        return Block(InterceptMatrix(dm) if self.intercept else dm, self.index, **self.vectors)

    def __sizeof__(self):
        return sum(v.nbytes for v in self.vectors.values()) + 512


# -- the folder ------------------------------------------------------------------------------
def write_block_files(parts, folder):
    """Write the row blocks ``parts`` (matrices with the same columns) into ``folder``.

    Each block is validated (:class:`~sketchnewton._matrix.DataMatrix`) and written as plain
    ``.npy`` files; the manifest is written last (atomically), so a folder with a manifest
    is complete. Returns the :class:`BlockFile` list.
    """
    os.makedirs(folder, exist_ok=True)
    if os.path.exists(os.path.join(folder, MANIFEST)):
        raise InputError(f"{folder!r} already holds row blocks ({MANIFEST}); write into an "
                         f"empty folder")
    entries, sparse, cols = [], None, None
    for j, part in enumerate(parts):
        dm = DataMatrix(part, f"row block {j}")
        if sparse is None:
            sparse, cols = dm.is_sparse, dm.d
        if dm.is_sparse != sparse or dm.d != cols:
            raise InputError(f"row block {j} is {'sparse' if dm.is_sparse else 'dense'} with "
                             f"{dm.d} columns; block 0 is {'sparse' if sparse else 'dense'} with "
                             f"{cols}")
        src = BlockFile(folder, j, dm.shape, dm.nnz, sparse)
        if sparse:
            c = dm.csr
            # int32 wherever it fits: scipy would otherwise scan the indices at every load
            idx = np.int32 if max(dm.nnz, dm.d) < 2**31 - 1 else np.int64
            for path, arr in zip(src.paths, (c.data, c.indices.astype(idx, copy=False),
                                             c.indptr.astype(idx, copy=False))):
                np.save(path, arr, allow_pickle=False)
        else:
            np.save(src.paths[0], dm.dense, allow_pickle=False)
        entries.append(dict(rows=dm.n, nnz=dm.nnz))
    if not entries:
        raise InputError("no row blocks to write")
    manifest = dict(format=_FORMAT, version=_VERSION, cols=cols, sparse=sparse, blocks=entries)
    tmp = os.path.join(folder, MANIFEST + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(manifest, fh)
    os.replace(tmp, os.path.join(folder, MANIFEST))
    return read_block_files(folder)


def read_block_files(folder):
    """The :class:`BlockFile` list of a folder written by :func:`write_block_files`."""
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path) as fh:
            manifest = json.load(fh)
    except OSError as exc:
        raise InputError(f"no row blocks in {folder!r}: cannot read {path!r} ({exc.strerror}); "
                         f"write them with sketchnewton.distributed.save_blocks") from None
    except ValueError as exc:
        raise InputError(f"{path!r} is not a row-block manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT \
            or manifest.get("version") != _VERSION:
        raise InputError(f"{path!r} is not a version-{_VERSION} row-block manifest")
    try:
        files = [BlockFile(folder, j, (e["rows"], manifest["cols"]), e["nnz"], manifest["sparse"])
                 for j, e in enumerate(manifest["blocks"])]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path!r}: malformed row-block manifest ({exc!r})") from None
    for f in files:
        f.stamp()  # every file exists
    return files
