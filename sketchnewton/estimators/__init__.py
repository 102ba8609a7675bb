"""scikit-learn estimators on the one Newton driver.

:class:`SketchedLogisticRegression` (binary and multinomial) and
:class:`SketchedLogisticRegressionCV` (C by cross-validation on a warm-started
path, :func:`logistic_regression_path`), :class:`SketchedPoissonRegressor`,
and :class:`NormalizedRegressor` (the normalized regression of a distribution
over the rows; :class:`SoftmaxRegression` is its deprecated former name).
They follow scikit-learn's estimator contract (parameters stored verbatim by
``__init__``, validated in ``fit``; fitted attributes end in ``_``), so they
work with ``clone``, ``Pipeline``, ``GridSearchCV`` and pickle; pandas
DataFrames give ``feature_names_in_``; only scikit-learn's public API is used.

Tolerances
----------
Two stopping rules, named by what they bound (docs/math.md section 7):

``eps`` (:class:`NormalizedRegressor`, :func:`sketchnewton.solve`)
    An absolute bound on the distance ``||x - x*||`` to the minimiser,
    estimated by the Newton step length ``||H~^{-1} g|| / (1 - e)``
    (docs/math.md 7.1). The solve stops when the estimate, after a unit
    Newton step, is at most ``eps``. Meaningful in the units of ``x``: the
    papers' accuracy target.
``tol`` (:class:`SketchedLogisticRegression`, :class:`SketchedLogisticRegressionCV`,
:class:`SketchedPoissonRegressor`, :func:`logistic_regression_path`)
    A relative objective accuracy: stop when half the squared Newton
    decrement after a unit step, ``-g^T p / 2``, is below ``tol * |f|``
    (docs/math.md 7.2). That is the objective error before the last step;
    Newton's quadratic convergence leaves far less after it. Independent of
    the scale of the objective (scikit-learn's ``1/n`` normalisation or
    ours), unlike scikit-learn's gradient tolerances.

Both stop early, with ``success=False`` and a message, when the accuracy
asked is below what the rounding error of the gradient allows (7.3).

Threads
-------
There is no ``n_jobs``: the parallelism is inside each solve. The numba
kernels run on ``NUMBA_NUM_THREADS`` threads (numba's default: every core; set
the environment variable before importing sketchnewton to use fewer) when the
data has at least 200,000 non-zeros, and on one thread below that (waking
threads costs more than it saves). The solver's small dense linear algebra
(d x d factorizations, QR of sketches) runs on one BLAS thread; products with a
large dense ``X`` (at least 4M entries) use ``NUMBA_NUM_THREADS`` BLAS threads.
Inside a solve these counts are set by the solver: ``numba.set_num_threads``
and threadpoolctl limits made by the caller do not lower them.
:class:`SketchedLogisticRegressionCV` solves its folds one after another.
"""

from ._logistic import SketchedLogisticRegression
from ._normalized import (
    NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS,
    SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS,
    NormalizedRegressor,
    SoftmaxRegression,
)
from ._path import SketchedLogisticRegressionCV, c_min, logistic_regression_path
from ._poisson import SketchedPoissonRegressor

__all__ = ["NormalizedRegressor", "SoftmaxRegression", "SketchedLogisticRegression",
           "SketchedLogisticRegressionCV", "SketchedPoissonRegressor", "logistic_regression_path",
           "c_min",
           "NORMALIZED_REGRESSOR_EXPECTED_FAILED_CHECKS",
           "SOFTMAX_REGRESSION_EXPECTED_FAILED_CHECKS"]
