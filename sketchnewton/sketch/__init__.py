"""Sketching layer: operators, leverage scores, the row sampler, sketched Gram matrices.

Three stages (as in PARLA): a :class:`SketchSettings` (kind, size, scheme)
is drawn into a :class:`SketchOperator` holding its randomness, which is
applied with ``S @ M`` (``S.T @ y`` for the adjoint). The Newton driver's
sampled Hessian models use the same operators, drawn block by block
(:func:`draw_row_samplers`, :func:`block_leverage_raw`).

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

from ._gram import (
                        SIZE_CONSTANTS,
                        SketchedRows,
                        sketch_gram,
                        sketch_rows,
                        sketch_size_for_eps,
)
from ._leverage import (
                        LEVERAGE_N_PROJECTIONS,
                        LEVERAGE_SKETCH_FACTOR,
                        block_leverage_raw,
                        leverage_scores,
                        sampling_probabilities,
)
from ._operators import (
                        KINDS,
                        SCHEMES,
                        CountSketchOperator,
                        GaussianOperator,
                        RowSamplingOperator,
                        SketchOperator,
                        SRHTOperator,
)
from ._sampling import UNIFORM_MIX, bernoulli_inclusion_probabilities, draw_row_samplers
from ._settings import SketchSettings

__all__ = [
    "KINDS",
    "LEVERAGE_N_PROJECTIONS",
    "LEVERAGE_SKETCH_FACTOR",
    "SCHEMES",
    "SIZE_CONSTANTS",
    "UNIFORM_MIX",
    "CountSketchOperator",
    "GaussianOperator",
    "RowSamplingOperator",
    "SRHTOperator",
    "SketchOperator",
    "SketchSettings",
    "SketchedRows",
    "bernoulli_inclusion_probabilities",
    "block_leverage_raw",
    "draw_row_samplers",
    "leverage_scores",
    "sampling_probabilities",
    "sketch_gram",
    "sketch_rows",
    "sketch_size_for_eps",
]
