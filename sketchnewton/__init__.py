"""sketchnewton: Newton methods with sketched Hessians for large sparse regression and classification."""

# Importing the package changes no global state: numba's threading layer, its
# thread count and the BLAS thread pools stay as the user set them (README, "Threads").

from .api import minimize, solve
from .estimators import SketchedLogisticRegression, SketchedPoissonRegressor, SoftmaxRegression
from .exceptions import ConvergenceWarning, DomainError, InputError
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss, PoissonLoss
from .newton import SolveResult

from ._version import __version__

__all__ = [
    "ConvergenceWarning", "DomainError", "InputError", "LogisticLoss", "MultinomialLoss",
    "NormalizedRegressionLoss", "PoissonLoss", "SketchedLogisticRegression",
    "SketchedPoissonRegressor", "SoftmaxRegression", "SolveResult", "__version__", "minimize",
    "solve",
]
