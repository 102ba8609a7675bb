"""sketchnewton: Newton methods with sketched Hessians for large sparse regression and classification."""

# Importing the package changes no global state: numba's threading layer, its
# thread count and the BLAS thread pools stay as the user set them (README, "Threads").

from ._version import __version__
from .api import minimize, solve
from .estimators import (
    NormalizedRegressor,
    SketchedLogisticRegression,
    SketchedLogisticRegressionCV,
    SketchedPoissonRegressor,
    SoftmaxRegression,
    logistic_regression_path,
)
from .exceptions import ConvergenceWarning, DomainError, InputError
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss, PoissonLoss
from ._report import SolveResult

__all__ = [
    "ConvergenceWarning", "DomainError", "InputError", "LogisticLoss", "MultinomialLoss",
    "NormalizedRegressionLoss", "NormalizedRegressor", "PoissonLoss", "SketchedLogisticRegression",
    "SketchedLogisticRegressionCV", "SketchedPoissonRegressor", "SoftmaxRegression", "SolveResult",
    "__version__", "logistic_regression_path", "minimize", "solve",
]
