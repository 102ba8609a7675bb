"""Bernoulli row sampling: the one sampler of the package, in memory and on row blocks.

Row ``i`` is kept independently with probability ``pi_i = min(1, c p_i)``,
``p_i = (1 - beta) s_i / sum(s) + beta [s_i > 0] / n_+`` for scores
``s_i >= 0`` (leverage times curvature, or an indicator for uniform
sampling), ``beta = UNIFORM_MIX`` and ``c`` fixed so that ``sum pi = sketch
size`` (a monotone fixed point over the saturated rows); kept rows get the
weight ``1 / sqrt(pi_i)``, so that ``E[S^T S] = I`` (docs/math.md section
5.5). Every step that needs all rows (the totals, each fixed-point step) is a
sum of per-block results, and each block draws its uniforms from its own
generator (:func:`~sketchnewton._blocks.block_seed_rng`): the same code runs
on one in-memory block and on thousands of blocks of a cluster, and a block
re-run after a lost worker draws the same rows.
"""

from dataclasses import dataclass

import numpy as np

from .._blocks import LocalBlocks, block_seed_rng
from .._kernels.sketch import bernoulli_rows, bernoulli_saturation
from ._operators import RowSamplingOperator

__all__ = ["UNIFORM_MIX", "BernoulliDraw", "draw_row_samplers", "bernoulli_inclusion_probabilities"]

#: share of uniform probability mixed into score-based sampling: guards against
#: scores underestimated by the JL projection at the cost of at most 10% of the sample
UNIFORM_MIX = 0.1
#: inclusion probabilities above this are far above float32's resolution (6e-8): the
#: uniforms are then drawn in float32 (3x faster) and the probabilities stay exact to 0.1%
_FLOAT32_FLOOR = 1e-4


@dataclass(frozen=True)
class BernoulliDraw:
    """The global constants of one Bernoulli draw: ``pi_i = min(1, c (a s_i + bconst))``."""

    a: float
    bconst: float
    c: float
    seed: int
    sketch_size: int
    kind: str
    float32: bool


def _scores(weights, raw, mode):
    """Sampling scores of a block: ``weights * raw`` (leverage), ``weights > 0`` (uniform over
    rows with curvature) or ones (every row: the fallback when no row has a positive score)."""
    if mode == "all":
        return np.ones(weights.shape[0])
    if mode == "uniform" or raw is None:
        return (weights > 0).astype(np.float64)
    return weights * raw


def _totals_task(weights, raw, mode):
    sc = _scores(weights, raw, mode)
    return np.array([sc.sum(), np.count_nonzero(sc > 0)], dtype=np.float64)


def _saturation_task(weights, raw, mode, a, bconst, c):
    return np.array(bernoulli_saturation(_scores(weights, raw, mode), a, bconst, c),
                    dtype=np.float64)


def _draw_task(weights, raw, index, mode, draw):
    sc = _scores(weights, raw, mode)
    n = sc.shape[0]
    u = block_seed_rng(draw.seed, index).random(n, dtype=np.float32 if draw.float32
                                                     else np.float64)
    rows, row_weights = bernoulli_rows(sc, draw.a, draw.bconst, draw.c, u)
    # rows that can never be drawn: a model must account for them exactly
    return RowSamplingOperator(n, rows, row_weights, None, "bernoulli", draw.sketch_size,
                               draw.kind, unsampled=sc <= 0)


def _scale(blocks, weights, raw, mode, a, bconst, s, n_pos):
    """``c`` with ``sum_i min(1, c p_i) = s``: ``c <- (s - #sat) / (1 - sum_sat p)`` from ``c = s``
    (exact after at most as many steps as there are saturated rows; typically 2-4)."""
    if s >= n_pos:
        return np.inf
    c, prev = float(s), -1
    for _ in range(100):
        n_sat, p_sat = blocks.map_sum(_saturation_task, weights, raw, args=(mode, a, bconst, c))
        if n_sat == prev or n_sat >= s or p_sat >= 1.0:
            break
        prev = n_sat
        c = (s - n_sat) / (1.0 - p_sat)
    return c


def _constants(blocks, weights, raw, mode, sketch_size, uniform_mix):
    tot = blocks.map_sum(_totals_task, weights, raw, args=(mode,))
    if not tot[1] > 0:
        return None
    a, bconst = (1.0 - uniform_mix) / tot[0], uniform_mix / tot[1]
    c = _scale(blocks, weights, raw, mode, a, bconst, float(sketch_size), tot[1])
    return a, bconst, c, tot[1]


def draw_row_samplers(blocks, weights, raw, sketch_size, rng, kind="leverage",
                      uniform_mix=UNIFORM_MIX):
    """Draw one :class:`RowSamplingOperator` per block (handles kept where the blocks live).

    Parameters
    ----------
    blocks : RowBlocks
    weights : list of per-block handles of arrays (n_j,)
        Curvature weights ``D_i >= 0``.
    raw : list of per-block handles (n_j,) or None
        ``h_i = l_i / D_i`` (leverage quantities, :func:`block_leverage_raw`); None or
        ``kind="uniform"``: uniform over the rows with ``D_i > 0``.
    sketch_size : int
        Expected number of kept rows.
    rng : numpy Generator
        Draws the round's seed.

    Returns
    -------
    list of per-block handles of RowSamplingOperator
    """
    raw = [None] * blocks.n_blocks if raw is None else raw
    mode = "uniform" if kind == "uniform" else "scores"
    consts = _constants(blocks, weights, raw, mode, sketch_size, uniform_mix)
    if consts is None:  # no row has curvature: uniform over every row
        mode = "all"
        consts = _constants(blocks, weights, raw, mode, sketch_size, uniform_mix)
    a, bconst, c, _ = consts
    draw = BernoulliDraw(a, bconst, c, int(rng.integers(2**63 - 1)), int(sketch_size), kind,
                         float32=bool(np.isinf(c) or c * bconst > _FLOAT32_FLOOR))
    return blocks.map(_draw_task, weights, raw, blocks.indices, args=(mode, draw), block=False)


def bernoulli_inclusion_probabilities(probabilities, sketch_size):
    """Inclusion probabilities ``pi_i = min(1, c p_i)`` with ``sum pi = s`` (no uniform mix).

    ``c >= s`` is the fixed point of :func:`draw_row_samplers`; if ``s`` is at
    least the number of rows with ``p_i > 0`` all of them are kept
    (``pi_i = 1``): the sample is then exact.

    Parameters
    ----------
    probabilities : ndarray of shape (n,), non-negative, summing to 1
    sketch_size : int
        Expected number of kept rows ``s``.

    Returns
    -------
    ndarray of shape (n,)
    """
    p = np.asarray(probabilities, dtype=np.float64)
    blocks = LocalBlocks.of_rows(p.shape[0])
    consts = _constants(blocks, [p], [np.ones_like(p)], "scores", sketch_size, 0.0)
    if consts is None:
        return np.zeros_like(p)
    a, bconst, c, _ = consts
    pi = np.zeros_like(p)
    pos = p > 0
    pi[pos] = 1.0 if np.isinf(c) else np.minimum(1.0, c * (a * p[pos] + bconst))
    return pi
