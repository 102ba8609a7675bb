"""Row blocks: a loss's data split by rows, and how one task per block is run.

:class:`RowBlocks` is the interface every loss computes through;
:class:`LocalBlocks` holds all rows in memory as one block, :class:`DaskBlocks`
many blocks on a ``dask.distributed`` cluster, each held in a worker's memory or, read-only,
reloaded from its files by every task (:class:`FileBlock`). Sweeps over ``A`` are counted
here, where tasks are mapped over the blocks (``RowBlocks.map(..., sweeps=...)``).
"""

from ._base import (
    Block,
    BlockVector,
    LocalBlocks,
    RowBlocks,
    RowSample,
    add_results,
    block_seed_rng,
    resolve,
)
from ._dask import FAN_IN, DaskBlocks
from ._files import BlockFile, FileBlock, read_block_files, write_block_files

__all__ = ["Block", "BlockFile", "BlockVector", "DaskBlocks", "FAN_IN", "FileBlock", "LocalBlocks",
           "RowBlocks", "RowSample", "add_results", "block_seed_rng", "read_block_files", "resolve",
           "write_block_files"]
