"""Loss families: value, gradient and Hessian as diagonal + low-rank factors."""

from ._base import GaussNewtonRoot, HessianFactors
from .cross_entropy import BlockHessianFactors, LogisticLoss, MultinomialLoss
from .normalized import LINKS, NormalizedRegressionLoss, NormalizedState

__all__ = [
    "BlockHessianFactors", "GaussNewtonRoot", "HessianFactors", "LINKS", "LogisticLoss",
    "MultinomialLoss", "NormalizedRegressionLoss", "NormalizedState",
]
