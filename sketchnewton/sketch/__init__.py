"""Sketching layer: operators, leverage scores, sketched Gram matrices.

Three stages (as in PARLA): a :class:`SketchSettings` (kind, size, scheme)
is drawn into a :class:`SketchOperator` holding its randomness, which is
applied with ``S @ M`` (``S.T @ y`` for the adjoint).

Entry points
------------
sketch_gram(A, weights, sketch_size=None, *, method="leverage", eps=None, ...)
    ``H~ ~= A^T diag(weights) A`` (d x d, PSD).
sketch_rows(A, weights, sketch_size=None, *, method=..., ...)
    The sketched rows of ``diag(sqrt(weights)) A`` and the drawn operator.
leverage_scores(A, weights=None, *, method="approx" | "exact", ...)
sampling_probabilities(scores, *, uniform_mix=0.0)
sketch_size_for_eps(eps, d, *, method, delta=0.05)
"""

from ._gram import SIZE_CONSTANTS, SketchedRows, sketch_gram, sketch_rows, sketch_size_for_eps
from ._leverage import leverage_scores, sampling_probabilities
from ._operators import (
    KINDS,
    SCHEMES,
    CountSketchOperator,
    GaussianOperator,
    RowSamplingOperator,
    SketchOperator,
    SketchSettings,
    SRHTOperator,
    bernoulli_inclusion_probabilities,
)

__all__ = [
    "KINDS",
    "SCHEMES",
    "SIZE_CONSTANTS",
    "CountSketchOperator",
    "GaussianOperator",
    "RowSamplingOperator",
    "SRHTOperator",
    "SketchOperator",
    "SketchSettings",
    "SketchedRows",
    "bernoulli_inclusion_probabilities",
    "leverage_scores",
    "sampling_probabilities",
    "sketch_gram",
    "sketch_rows",
    "sketch_size_for_eps",
]
