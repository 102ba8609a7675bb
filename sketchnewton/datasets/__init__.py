"""Seeded synthetic generators of planted problems.

Three generators, all reproducible for a fixed ``random_state`` (independent
of the number of numba threads):

* :func:`make_sparse_matrix` - a large sparse CSR matrix with exactly
  ``nnz_per_row`` distinct columns per row, optional column scaling (bad
  conditioning) and optional *coherence* (a few heavy rows that uniform row
  sampling misses but leverage-score sampling finds).
* :func:`make_regression_problem` - a planted instance of the normalized
  regression problem ``min_x 1/2 ||phi(A x)/<phi(A x), 1> - b||^2`` for the
  ``resnet``, ``softmax``, ``cosh`` and ``sinh`` links.
* :func:`make_classification_problem` - multinomial (softmax) classification
  data with labels sampled from a planted linear model.
"""

from .._links import LINKS
from ._planted import (
    PlantedProblem,
    make_classification_problem,
    make_regression_problem,
)
from ._sparse import SparseMatrixInfo, make_sparse_matrix

__all__ = [
    "LINKS",
    "PlantedProblem",
    "SparseMatrixInfo",
    "make_classification_problem",
    "make_regression_problem",
    "make_sparse_matrix",
]
