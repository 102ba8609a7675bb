"""The front door: :func:`minimize` for any loss and :func:`solve` for the normalized regression.

Validation of the user's input and the choice of backend happen here, once;
the Newton driver (:class:`sketchnewton.newton.NewtonSolver`) sees only the
loss.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import distributed
from ._kernels import single_threaded_blas
from ._validation import (
    check_choice,
    check_int,
    check_memory,
    check_random_state,
    check_real,
    check_vector,
)
from .exceptions import InputError
from .hessian import PRECONDITIONERS, ROW_SAMPLERS, SKETCHES
from .losses import Loss, NormalizedRegressionLoss
from .losses.normalized import LINK_CODES
from .newton import (
    METHODS,
    Decrement,
    ErrorBound,
    NewtonSolver,
    Problem,
    SolveResult,
    choose_method,
)

#: what ``random_state`` accepts
RandomState = int | np.random.Generator | np.random.RandomState | None

__all__ = ["minimize", "solve"]


def minimize(loss: Loss, *, eps: float | None = None, tol: float | None = None,
             method: str = "auto", sketch: str = "leverage", sketch_size: int | None = None,
             preconditioner: str = "auto", x0: ArrayLike | None = None, max_iter: int = 100,
             random_state: RandomState = None, verbose: int = 0,
             callback: Callable | None = None) -> SolveResult:
    """Minimise a :class:`~sketchnewton.losses.Loss` with the Newton driver.

    Parameters
    ----------
    loss : Loss
        E.g. :class:`~sketchnewton.losses.LogisticLoss`,
        :class:`~sketchnewton.losses.MultinomialLoss`,
        :class:`~sketchnewton.losses.PoissonLoss`,
        :class:`~sketchnewton.losses.NormalizedRegressionLoss`.
    eps : float > 0, optional
        Stop when the estimated error ``||x - x*||`` is at most ``eps``.
    tol : float > 0, optional
        Stop when half the squared Newton decrement of a unit step is at most
        ``tol |f|`` (a relative objective accuracy). Give ``eps`` or ``tol``.
    method : {"auto", "exact", "dual", "sketch", "pcg", "cg"}
        ``"exact"``: Newton with the exact (p x p) Hessian. ``"dual"``: the
        exact Newton step through the (n x n) dual system (n < p, a ridge,
        in memory; docs/math.md 8.4). ``"sketch"``: the step of a Hessian
        sketched from ``sketch_size`` rows (Adaptive Newton Sketch).
        ``"pcg"``: conjugate gradients on exact Hessian-vector products,
        preconditioned by the sketched Hessian (n >> p). ``"cg"``: conjugate
        gradients preconditioned without a (p x p) matrix (``preconditioner``;
        large p). ``"auto"``: :func:`~sketchnewton.newton.choose_method`
        (cost model; the choice is ``result.method``).
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}
    sketch_size : int, optional
        Rows of the sketch (default ``20 d``).
    preconditioner : {"auto", "diagonal", "nystrom", "none"}
        Method ``"cg"``: the Hessian's diagonal (per-feature K x K blocks for
        the multinomial loss), a randomized Nystrom approximation (rank
        doubling from 32 while CG is slow; docs/math.md 8.3), or none.
    x0 : array of shape (n_params,), optional
        Starting point (default: the loss's own start).
    max_iter : int >= 0
    random_state : None, int or numpy Generator
    verbose : int
        1 prints one line per iteration.
    callback : callable, optional
        Called after every iteration, in scipy's two styles: a callable whose
        only parameter is named ``intermediate_result`` receives an
        ``OptimizeResult`` (``x, fun, jac, nit`` and the history row); any
        other callable receives a copy of ``xk``. Returning True or raising
        ``StopIteration`` stops the solve (status 3, no warning).

    Returns
    -------
    SolveResult
    """
    if not isinstance(loss, Loss):
        raise InputError(f"loss must implement sketchnewton.losses.Loss, got {type(loss).__name__}")
    if (eps is None) == (tol is None):
        raise InputError("give exactly one of eps (error bound) and tol (relative decrement)")
    criterion = (ErrorBound(check_real(eps, "eps", positive=True)) if eps is not None
                 else Decrement(check_real(tol, "tol", positive=True)))
    method = check_choice(method, "method", METHODS)
    sketch = check_choice(sketch, "sketch", SKETCHES)
    preconditioner = check_choice(preconditioner, "preconditioner", ("auto",) + PRECONDITIONERS)
    sketch_size = check_int(sketch_size, "sketch_size", minimum=1, allow_none=True)
    max_iter = check_int(max_iter, "max_iter", minimum=0)
    verbose = check_int(verbose, "verbose", minimum=0)
    if callback is not None and not callable(callback):
        raise InputError(f"callback must be callable, got {type(callback).__name__}")
    rng = check_random_state(random_state)
    if x0 is not None:
        x0 = check_vector(x0, "x0", loss.n_params)
    if method == "auto":
        method, chosen = choose_method(loss, sketch_size)
        preconditioner = chosen if preconditioner == "auto" else preconditioner
    elif preconditioner == "auto":
        preconditioner = choose_method(loss, sketch_size)[1]
    _check_model_memory(loss, method)
    problem = Problem(loss, criterion, method, sketch, sketch_size, max_iter, rng, verbose, callback,
                      preconditioner)
    with loss.data.threads(), single_threaded_blas():
        return NewtonSolver(problem).solve(x0)




def _check_model_memory(loss, method):
    """A dense (p x p) model (exact, sketch, pcg) or the dual (n x n) system must fit in memory
    (the matrix, its factor and the factorization's workspace: three copies)."""
    if method in ("exact", "sketch", "pcg"):
        p = loss.n_params
        check_memory(3 * 8 * p * p, f"method {method!r} (a dense {p:,} x {p:,} Hessian model)",
                     "use method='cg' (no p x p matrix) or method='auto'")
    elif method == "dual":
        n = loss.data.n
        check_memory(3 * 8 * n * n, f"method 'dual' (a dense {n:,} x {n:,} system)",
                     "use method='cg' or method='auto'")


def solve(A: Any, b: ArrayLike, eps: float = 1e-6, *, link: str = "resnet", lam: float = 0.0,
          w: ArrayLike | float | None = None, method: str = "auto", sketch: str = "leverage",
          sketch_size: int | None = None, preconditioner: str = "auto",
          x0: ArrayLike | None = None, max_iter: int = 100, random_state: RandomState = None,
          verbose: int = 0,
          callback: Callable | None = None) -> SolveResult:
    """Solve ``min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2``.

    The normalized regression of Song, Wang and Yin (arXiv:2309.13482):
    ``phi(z) = exp(z) + z`` unifies ResNet and softmax regression;
    docs/math.md section 2 has the closed forms.

    Parameters
    ----------
    A : sparse matrix/array, ndarray or dask array of shape (n, d)
        Never densified, never modified. float32 and integer input are
        computed in float64.
    b : array-like of shape (n,)
    eps : float > 0
        Target accuracy ``||x - x*||_2 <= eps`` (absolute, as in the paper).
    link : {"resnet", "softmax", "cosh", "sinh"}
    lam : float >= 0
        Ridge strength.
    w : float or array of shape (n,), optional
        The papers' regulariser ``1/2 ||diag(w) A x||^2``.
    method : {"auto", "exact", "dual", "sketch", "pcg", "cg"}
        ``"exact"``: Newton with the exact Hessian (numba row-outer-product
        Gram for sparse A, BLAS for dense). ``"dual"``: the exact step
        through the (n x n) dual system (n < d, ``lam > 0``). ``"sketch"``:
        the paper's approximate Newton step ``H~^{-1} g`` with a fresh
        sketched model each iteration; the sketch size doubles when the
        observed contraction is poor (Adaptive Newton Sketch). ``"pcg"``:
        inexact Newton, conjugate gradients on exact Hessian-vector products
        preconditioned by the sketched model. ``"cg"``: the same without a
        (d x d) matrix (``preconditioner``). ``"auto"``:
        :func:`~sketchnewton.newton.choose_method` (cost model).
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}
        Sketch of the Hessian's diagonal part (methods ``sketch``, ``pcg``).
    sketch_size : int, optional
        Rows of the sketch; default ``20 d`` (for ``sketch`` then adaptive:
        doubled while the observed contraction is slower than 0.3).
    preconditioner : {"auto", "diagonal", "nystrom", "none"}
        Method ``"cg"``: see :func:`minimize`.
    x0 : array of shape (d,), optional
        Starting point (default: see
        :meth:`NormalizedRegressionLoss.start`); must be inside the loss's
        domain. ``cosh`` has two minimisers ``+-x*``.
    max_iter : int
    random_state : None, int or numpy Generator
        Seeds every random choice; results are reproducible for a fixed seed.
    verbose : int
        1 prints one line per iteration.
    callback : callable, optional
        See :func:`~sketchnewton.newton.minimize`.

    Returns
    -------
    SolveResult

    Notes
    -----
    Dask inputs: ``A`` may be a ``dask.array`` chunked by rows only (each
    chunk a scipy sparse matrix or a dense block), with ``b`` (and an array
    ``w``) a dask array chunked like ``A``'s rows or an in-memory array, then
    split by those chunks. The solve runs on the active ``dask.distributed``
    client, or in-process with dask's default scheduler when there is none;
    see :mod:`sketchnewton.distributed`. Sketches: ``"leverage"`` and
    ``"uniform"`` only.

    Error bound: ``error_bound`` estimates ``||x - x*||`` by the Newton step
    length ``||H~^{-1} g(x)||`` divided by ``1 - e``, with ``H~`` the last
    factorized model and ``e`` a conservative level of its spectral error
    (docs/math.md section 7.1). It is an estimate, accurate to first order,
    not a guarantee: the loss is not convex, and ``lam > 0`` alone does not
    make it strongly convex. The solve stops when the estimate is ``<= eps``
    after a full (unit) Newton step.
    """
    link = check_choice(link, "link", tuple(LINK_CODES))
    lam = check_real(lam, "lam", nonnegative=True)
    sketch = check_choice(sketch, "sketch", SKETCHES)
    if distributed.is_dask_collection(A) or distributed.is_dask_collection(b):
        if method != "exact" and sketch not in ROW_SAMPLERS:
            check_choice(sketch, "sketch (dask inputs: a distributed one)", ROW_SAMPLERS)
        loss = distributed.normalized_loss(A, b, link=link, lam=lam, w=w)
    else:
        loss = NormalizedRegressionLoss(A, b, link=link, lam=lam, w=w)
    return minimize(loss, eps=eps, method=method, sketch=sketch, sketch_size=sketch_size,
                    preconditioner=preconditioner, x0=x0, max_iter=max_iter,
                    random_state=random_state, verbose=verbose, callback=callback)
