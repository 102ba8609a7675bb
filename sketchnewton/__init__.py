"""sketchnewton: approximate Newton methods with sketched Hessians for sparse regression."""

from .exceptions import ConvergenceWarning, DomainError, InputError
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss
from .newton import SolveResult, solve

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning", "DomainError", "InputError", "LogisticLoss", "MultinomialLoss",
    "NormalizedRegressionLoss", "SolveResult", "__version__", "solve",
]
