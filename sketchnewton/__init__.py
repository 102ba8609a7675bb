"""sketchnewton: Newton methods with sketched Hessians for large sparse regression and classification."""

import os as _os

import numba as _numba

if "NUMBA_THREADING_LAYER" not in _os.environ:
    # numba's default OpenMP layer keeps its threads spinning after a parallel
    # kernel; on a 2-core machine the next LAPACK call (QR, Cholesky) then runs
    # 10-100x slower (measured: approximate leverage scores 95 -> 4.5 passes).
    # The workqueue layer's threads sleep. Set NUMBA_THREADING_LAYER to override.
    _numba.config.THREADING_LAYER = "workqueue"

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
