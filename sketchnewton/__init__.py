"""sketchnewton: approximate Newton methods with sketched Hessians for sparse regression."""

import os as _os

import numba as _numba

if "NUMBA_THREADING_LAYER" not in _os.environ:
    # numba's default OpenMP layer keeps its threads spinning after a parallel
    # kernel; on a 2-core machine the next LAPACK call (QR, Cholesky) then runs
    # 10-100x slower (measured: approximate leverage scores 95 -> 4.5 passes).
    # The workqueue layer's threads sleep. Set NUMBA_THREADING_LAYER to override.
    _numba.config.THREADING_LAYER = "workqueue"

from .exceptions import ConvergenceWarning, DomainError, InputError
from .losses import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss
from .estimators import SketchedLogisticRegression, SoftmaxRegression
from .newton import SolveResult, solve

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning", "DomainError", "InputError", "LogisticLoss", "MultinomialLoss",
    "NormalizedRegressionLoss", "SketchedLogisticRegression", "SoftmaxRegression", "SolveResult",
    "__version__", "solve",
]
