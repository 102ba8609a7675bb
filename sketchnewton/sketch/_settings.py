"""Sketch settings (the first of three stages: settings -> drawn operator -> ``@``)."""

from dataclasses import dataclass

import numpy as np

from .._blocks import LocalBlocks
from .._validation import check_choice, check_int, check_random_state, check_vector
from ..exceptions import InputError
from ._operators import (
    KINDS,
    SCHEMES,
    CountSketchOperator,
    GaussianOperator,
    RowSamplingOperator,
    SRHTOperator,
    check_sketch_size,
)
from ._sampling import draw_row_samplers

__all__ = ["SketchSettings"]


def _check_probabilities(probabilities, n=None):
    p = check_vector(probabilities, "probabilities", n)
    if np.any(p < 0):
        raise InputError(f"probabilities has {int((p < 0).sum())} negative entries")
    tot = p.sum()
    if not tot > 0:
        raise InputError("probabilities sum to zero")
    return p / tot


@dataclass(frozen=True)
class SketchSettings:
    """Description of a sketch, without randomness.

    Parameters
    ----------
    kind : {"gaussian", "countsketch", "srht", "uniform", "leverage"}
    sketch_size : int
        Number of sketch rows ``s`` (for Bernoulli samplers: the expected
        number of kept rows).
    scheme : {"bernoulli", "replacement"}
        Row samplers only. ``"bernoulli"`` (default) keeps row ``i``
        independently with probability ``pi_i = min(1, c p_i)``, ``c`` chosen
        so that ``sum_i pi_i = s``, with weight ``1/sqrt(pi_i)``; rows with
        large ``p_i`` (high leverage) are kept exactly, with weight 1 (the
        package's one Bernoulli sampler, :func:`draw_row_samplers`).
        ``"replacement"`` draws ``s`` i.i.d. rows from ``p`` with weight
        ``1/sqrt(s p_i)``. Bernoulli is the default because it never wastes
        samples on duplicates of dominant rows and has no variance on rows
        with ``pi_i = 1``; on the coherent test matrices its spectral error is
        markedly lower (see ``python -m benchmarks sketch_layer --part errors``).

    Examples
    --------
    >>> S = SketchSettings("srht", 64).draw(0, n=1000)
    >>> (S @ np.ones(1000)).shape
    (64,)
    """

    kind: str
    sketch_size: int
    scheme: str = "bernoulli"

    def __post_init__(self):
        check_choice(self.kind, "sketch kind", KINDS)
        object.__setattr__(self, "sketch_size", check_sketch_size(self.sketch_size))
        check_choice(self.scheme, "sampling scheme", SCHEMES)

    def draw(self, random_state=None, *, n=None, probabilities=None):
        """Draw an operator ``S`` of shape (s, n).

        Parameters
        ----------
        random_state : None, int or numpy Generator
        n : int, optional
            Number of rows of the matrices ``S`` will be applied to. May be
            omitted when ``probabilities`` is given.
        probabilities : array of shape (n,), optional
            Sampling distribution for ``kind="leverage"`` (required; e.g.
            from :func:`sampling_probabilities`). For ``"uniform"`` it
            defaults to ``1/n``.

        Returns
        -------
        SketchOperator
        """
        rng = check_random_state(random_state)
        if probabilities is not None:
            probabilities = _check_probabilities(probabilities, n)
            n = probabilities.shape[0]
        if n is None:
            raise InputError("draw() needs n (number of rows) or probabilities")
        n = check_int(n, "n", minimum=1)
        s = self.sketch_size
        if self.kind == "gaussian":
            return GaussianOperator(n, s, rng.integers(0, 2**63 - 1))
        if self.kind == "countsketch":
            buckets = rng.integers(0, s, n)
            signs = rng.integers(0, 2, n) * 2.0 - 1.0
            return CountSketchOperator(n, s, buckets, signs)
        if self.kind == "srht":
            n_pad = 1 << max(0, int(np.ceil(np.log2(n))))
            if s > n_pad:
                raise InputError(f"srht sketch_size {s} exceeds the padded row count {n_pad}")
            signs = rng.integers(0, 2, n) * 2.0 - 1.0
            rows = np.sort(rng.choice(n_pad, size=s, replace=False))
            return SRHTOperator(n, s, signs, rows)
        # row samplers
        if probabilities is None:
            if self.kind == "leverage":
                raise InputError("leverage sampling needs probabilities "
                                 "(see sampling_probabilities / leverage_scores)")
            probabilities = np.full(n, 1.0 / n)
        p = probabilities
        if self.scheme == "bernoulli":
            S = draw_row_samplers(LocalBlocks.of_rows(n), [p], [np.ones(n)], s, rng,
                                  kind=self.kind, uniform_mix=0.0)[0]
            return RowSamplingOperator(n, S.rows, S.row_weights, p, self.scheme, s, self.kind)
        rows = np.sort(rng.choice(n, size=s, replace=True, p=p))
        weights = 1.0 / np.sqrt(s * p[rows])
        return RowSamplingOperator(n, rows, weights, p, self.scheme, s, self.kind)
