"""Row blocks (sketchnewton._blocks): sweeps are counted where tasks are mapped."""

import numpy as np

from sketchnewton._blocks import Block, LocalBlocks
from sketchnewton._matrix import DataMatrix

from conftest import random_sparse


def _product(blk, x):
    return blk.A.matvec(x)


def test_map_counts_the_sweeps_its_tasks_declare():
    M = DataMatrix(random_sparse(100, 5, 0.5, 1))
    blocks = LocalBlocks(Block(M))
    (z,) = blocks.map(_product, args=(np.ones(5),), sweeps=1)
    np.testing.assert_allclose(z, M.csr @ np.ones(5))
    blocks.map(_product, args=(np.ones(5),))  # a task that declares nothing counts nothing
    assert blocks.sweeps == 1.0 and blocks.passes == 0.5
    blocks.count_sweeps(1)
    assert blocks.passes == 1.0
    rows = np.arange(10)
    blocks.count_rows_read(M.row_nnz()[rows].sum())
    assert 1.0 < blocks.passes < 1.2
