"""Loss families and the protocol the Newton driver uses (docs/math.md sections 2-4)."""

from ._base import GaussNewtonRoot, HessianFactors, ImageLine, Loss, State, gradient_of
from ._penalty import L1Penalty
from .cross_entropy import LogisticLoss, MultinomialLoss
from .normalized import LINKS, NormalizedRegressionLoss, NormalizedState
from .poisson import PoissonLoss

__all__ = [
    "GaussNewtonRoot", "HessianFactors", "ImageLine", "L1Penalty", "LINKS", "LogisticLoss", "Loss", "MultinomialLoss",
    "NormalizedRegressionLoss", "NormalizedState", "PoissonLoss", "State", "gradient_of",
]
