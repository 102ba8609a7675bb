"""Row blocks: a loss's data split by rows, and how one task per block is run.

:class:`RowBlocks` is the interface every loss computes through;
:class:`LocalBlocks` holds all rows in memory as one block, :class:`DaskBlocks`
many blocks on a ``dask.distributed`` cluster. Sweeps over ``A`` are counted
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

__all__ = ["Block", "BlockVector", "DaskBlocks", "FAN_IN", "LocalBlocks", "RowBlocks",
           "RowSample", "add_results", "block_seed_rng", "resolve"]
