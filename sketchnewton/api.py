"""The front door: :func:`minimize` for any loss and :func:`solve` for the normalized regression.

Validation of the user's input and the choice of backend happen here, once;
the Newton driver (:class:`sketchnewton.newton.NewtonSolver`) sees only the
loss.
"""

import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import distributed
from ._kernels import single_threaded_blas
from ._validation import (
    check_choice,
    check_int,
    check_random_state,
    check_real,
    check_vector,
)
from .exceptions import ConvergenceWarning, DomainError, InputError
from .hessian import PRECONDITIONERS, ROW_SAMPLERS, SKETCHES
from .losses import L1Penalty, Loss, NormalizedRegressionLoss
from ._links import LINK_CODES
from ._auto import choose_method, choose_prox, presolve_rows
from ._report import SolveResult
from ._stopping import Decrement, ErrorBound
from .newton import METHODS, NewtonSolver, Problem
from .strategies import STRATEGIES, StrategySettings

#: what ``random_state`` accepts
RandomState = int | np.random.Generator | np.random.RandomState | None

__all__ = ["minimize", "solve", "PRESOLVES", "PRESOLVE_TOL"]

#: ``presolve`` of :func:`minimize`: the warm start from a row sample when the cost model says
#: so, always (when the loss offers it), never
PRESOLVES = ("auto", "sample", "none")
#: accuracy of the sample's solve, relative to its objective at its start (the decrement rule's
#: ``tol`` with that reference; docs/math.md 6.6). Its minimiser is only an estimate of the full
#: one's, to about ``sqrt(p / rows)``, unless the data fit the model exactly. Measured on the
#: planted normalized regression n = 1e6, d = 500, 50 per row, ill conditioned, one thread: the
#: sample's last iterations are cheap (1e-4: 6, 1e-6: 7, 1e-8 to 1e-12: 8 of them, 4.4-5.4
#: time-passes in all) and, without noise, 1e-8 leaves the full solve no iteration (1e-6: 3,
#: 1e-4: 4); with noise 1.0 the full solve took 6 iterations for every value
PRESOLVE_TOL = 1e-8


#: the Returns, Raises and Warns sections of :func:`minimize` and :func:`solve` (one text, put
#: in place of the "{result sections}" line of both docstrings)
_RESULT_SECTIONS = """\
    Returns
    -------
    result : SolveResult
        A ``scipy.optimize.OptimizeResult`` (attribute and key access) with
        the fields below; ``repr(result)`` is one line, and
        ``result.history_columns()`` gives the history as ``{name: ndarray}``.

        x : ndarray of shape (n_params,)
            The solution (``n_params = d`` for :func:`solve`).
        fun : float
            The loss at ``x``.
        jac : ndarray of shape (n_params,)
            The gradient at ``x``; ``grad_norm`` is its 2-norm.
        nit : int
            Newton iterations.
        nfev, njev, nhev : int
            Loss evaluations (line-search trials included), gradient
            evaluations and Hessian-vector products.
        success : bool
            True when the stopping rule (``eps`` or ``tol``) was met.
        status : int
            0 converged, 1 iteration limit, 2 no further progress possible
            (line search failed at machine precision, or the target is below
            the attainable accuracy), 3 stopped by the callback.
        message : str
            Why the solve stopped.
        method : str
            The method used (what ``"auto"`` chose).
        sketch, sketch_size : str, int
            The sketch of the Hessian model (``"exact"`` and 0 for exact
            Newton).
        passes : float
            Passes over the data (one pass = one ``A @ x`` plus one
            ``A.T @ y``): the machine-independent cost.
        error_bound : float
            Estimate of ``||x - x*||_2`` (see Notes); ``error_bound_kind`` is
            ``"estimate"``.
        decrement : float
            ``-g^T p`` of the last Newton step ``p``.
        time : float
            Wall-clock seconds; ``timings`` splits them by step (gradient,
            leverage scores, sketch, gram, factorization, inner solve, line
            search).
        history : list of dict
            One row per iteration: ``iter, loss, grad_norm, step_size,
            step_norm, error_estimate, decrement, sketch_size, cg_iter, model,
            passes, seconds``.
        presolve : dict
            Only after a warm start from a row sample (``presolve``): its
            ``rows``, ``nit``, ``method``, ``success``, ``used`` (False when
            its solve failed and the full solve started cold), ``seconds``
            and ``passes`` (over ``A``; both included in ``time`` and
            ``passes``). The history is the full problem's.

    Raises
    ------
    InputError
        A parameter of the wrong type or value, data of the wrong shape, dtype
        or with non-finite values (the message names the parameter), or a
        dense Hessian model that does not fit in memory (the message says
        which ``method`` to use instead). ``InputError`` is a ``ValueError``.
    DomainError
        ``x0`` is outside the domain of the loss (``resnet`` and ``sinh``
        links: the normaliser ``<phi(A x0), 1>`` must be positive).

    Warns
    -----
    ConvergenceWarning
        (scikit-learn's) when the stopping rule was not met (``success`` is
        False): the iteration limit, no further decrease possible, a target
        below the attainable accuracy, or a flat direction that is not an
        invariance of the loss. The message says why and what to try; it is
        attributed to the caller's line. Not emitted when the callback stops
        the solve.

"""


def minimize(loss: Loss, *, eps: float | None = None, tol: float | None = None,
             method: str = "auto", sketch: str = "leverage", sketch_size: int | None = None,
             preconditioner: str = "auto", x0: ArrayLike | None = None, max_iter: int = 100,
             random_state: RandomState = None, verbose: int = 0,
             callback: Callable | None = None,
             l1: float | ArrayLike | L1Penalty | None = None,
             presolve: str = "auto") -> SolveResult:
    """Minimise a :class:`~sketchnewton.losses.Loss` (plus an L1 penalty) with the Newton driver.

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
    method : {"auto", "exact", "dual", "sketch", "pcg", "cg", "subsampled", "prox", "prox_sketch", \
              "prox_cd"}
        ``"exact"``: Newton with the exact (p x p) Hessian. ``"dual"``: the
        exact Newton step through the (n x n) dual system (n < p, a ridge,
        in memory; docs/math.md 8.4). ``"sketch"``: the step of a Hessian
        sketched from ``sketch_size`` rows (Adaptive Newton Sketch).
        ``"pcg"``: conjugate gradients on exact Hessian-vector products,
        preconditioned by the sketched Hessian (n >> p). ``"cg"``: conjugate
        gradients preconditioned without a (p x p) matrix (``preconditioner``;
        large p). ``"subsampled"``: conjugate gradients on the Hessian of a
        row sample that doubles while convergence is slow, exact gradient
        (docs/math.md 8.8; a loss with ``row_subsets``). ``"auto"``:
        :func:`~sketchnewton._auto.choose_method` (cost model; the choice is
        ``result.method``, its preconditioner ``result.preconditioner``).
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}
    sketch_size : int, optional
        Rows of the sketch (default ``20 d``).
    preconditioner : {"auto", "diagonal", "nystrom", "kronecker", "none"}
        Methods ``"cg"``, ``"subsampled"``: the Hessian's diagonal (per-feature K x K blocks for
        the multinomial loss), the Kronecker-factored ``S (x) G + lam I`` of
        the multinomial Hessian (docs/math.md 8.7; ``"auto"`` of
        ``"subsampled"`` for that loss), a randomized Nystrom approximation (rank
        doubling from 32 while CG is slow; docs/math.md 8.3), or none.
        ``"auto"``: the diagonal when it is spread (its q90 / q10 above 10:
        features on different scales, as one-hot or count data), else none
        (as row-normalised tf-idf, where Jacobi scaling cost CG iterations);
        the result's ``preconditioner`` says which.
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
    l1 : float >= 0, array of shape (n_params,) or L1Penalty, optional
        Minimise ``loss(x) + sum_j l1_j |x_j|`` (a float: the same weight on
        every coordinate, an intercept included; pass an array with 0 on the
        unpenalised coordinates). With the loss's ridge this is the elastic
        net. Solved by proximal Newton (methods ``"prox"``: the exact Gram,
        ``"prox_sketch"``: a sketched Gram, ``"prox_cd"``: coordinate descent
        on the data's columns; ``"auto"`` picks one); ``grad_norm`` is then
        the norm of the minimum-norm subgradient and ``fun`` includes the
        penalty (docs/math.md section 9).
    presolve : {"auto", "sample", "none"}
        Warm start of a tall problem (``x0`` not given, no ``l1``): first
        solve the problem on a sample of the rows (``n / 16``, at least 100
        per parameter) to ``PRESOLVE_TOL`` times its objective at its start,
        then the full problem from its minimiser, which the sample estimates
        (docs/math.md 6.6). ``"auto"``: when the sample is at most a
        quarter of the rows and ``A`` has at least 2^20 non-zeros;
        ``"sample"``: whenever the sample is at most a quarter of the rows;
        ``"none"``: never. Only for losses in memory. The full problem's
        stopping rule decides ``success`` as without it; ``passes``,
        ``time`` and ``timings["presolve"]`` include the sample's solve
        (its passes counted in passes over ``A``), and ``result.presolve``
        describes it (rows, iterations, method, seconds, passes).

    {result sections}
    See Also
    --------
    solve : the normalized regression from ``(A, b)``, with Dask inputs.
    sketchnewton.SketchedLogisticRegression : the scikit-learn estimator on
        :class:`~sketchnewton.losses.LogisticLoss` / ``MultinomialLoss``.
    scipy.optimize.minimize : the same result type and callback styles.

    Notes
    -----
    The two stopping rules: ``eps`` bounds the error in ``x`` (absolute,
    ``||x - x*||_2 <= eps``; see :func:`solve`, Notes, "Error bound");
    ``tol`` bounds the objective's relative error through the Newton
    decrement (``-g^T p / 2 <= tol |f|`` after a unit step), as the
    estimators use it. docs/math.md section 7 derives both.

    Examples
    --------
    >>> import numpy as np
    >>> import sketchnewton as sn
    >>> from sketchnewton.datasets import make_classification_problem
    >>> X, y, _ = make_classification_problem(2000, 10, random_state=0)
    >>> loss = sn.LogisticLoss(X, y, lam=1.0)
    >>> res = sn.minimize(loss, tol=1e-10, random_state=0)
    >>> res.success, res.status
    (True, 0)
    >>> bool(np.linalg.norm(res.jac) < 1e-4)
    True
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
    penalty = _l1_penalty(l1, loss.n_params)
    presolve = check_choice(presolve, "presolve", PRESOLVES)
    settings = StrategySettings(sketch, sketch_size, preconditioner)
    with loss.data.threads(), single_threaded_blas():
        warm, start = None, None
        if x0 is None and penalty is None and max_iter > 0 and presolve != "none":
            rows = presolve_rows(loss, forced=presolve == "sample")
            warm = _presolve(loss, rows, method, settings, rng, max_iter) if rows else None
        if warm is not None:
            start = warm.pop("x")
            if verbose:
                print(f"presolve: {warm['rows']} rows, {warm['nit']} iterations, "
                      f"{warm['passes']:.2f} passes, {warm['seconds']:.3g} s, "
                      f"{'used' if start is not None else 'not used (no minimiser)'}")
        result = None
        if start is not None and warm is not None:
            try:
                result = _run(loss, criterion, method, settings, rng, start, max_iter, verbose,
                              callback)
            except DomainError:  # the sample's minimiser is outside the full loss's domain
                warm["used"] = False
        if result is None:
            result = _run(loss, criterion, method, settings, rng, x0, max_iter, verbose,
                          callback, penalty)
    return result if warm is None else _with_presolve(result, warm)


def _run(loss: Loss, criterion, method: str, settings: StrategySettings,
         rng: np.random.Generator, x0: np.ndarray | None, max_iter: int, verbose: int = 0,
         callback: Callable | None = None, penalty: L1Penalty | None = None) -> SolveResult:
    """Choose the method (``"auto"``), build its strategy and run the Newton driver."""
    sweeps0 = loss.data.sweeps  # the cost model's statistics count as part of the solve
    preconditioner = settings.preconditioner
    if method == "auto":
        if penalty is not None:
            method = choose_prox(loss)
        else:
            method, chosen = choose_method(loss, settings.sketch_size)
            if preconditioner == "auto" and chosen is not None:
                preconditioner = chosen
    strategy_class = STRATEGIES[method]
    strategy_class.check_fits(loss)
    strategy = strategy_class(loss, replace(settings, preconditioner=preconditioner), rng,
                              penalty)
    problem = Problem(loss, criterion, strategy, max_iter, verbose, callback, sweeps0, penalty)
    return NewtonSolver(problem).solve(x0)


def _presolve(loss: Loss, rows: int, method: str, settings: StrategySettings,
              rng: np.random.Generator, max_iter: int) -> dict | None:
    """The warm start (docs/math.md 6.6): the minimiser of the problem on ``rows`` rows drawn
    without replacement, to ``PRESOLVE_TOL`` times its objective at its start.

    Returns None when the sample has no subproblem (or its own start is outside its domain:
    nothing solved); else a dict (``x``, ``rows``, ``nit``,
    ``method``, ``success``, ``used``, ``seconds``, ``passes``: passes over the full data, the
    sample's passes times its share of the non-zeros) whose ``x`` is None when the sample's
    solve failed (no minimiser: a class absent from the sample without a ridge, separable
    rows) or gave a non-finite point; its cost is reported all the same.
    """
    t0 = time.perf_counter()
    sample = np.sort(rng.choice(loss.data.n, size=rows, replace=False))
    try:
        sub = loss.subproblem(sample)
    except InputError:
        return None
    if method == "dual":  # the dual form is for n < p: the sample is tall
        method = "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            x0 = sub.start(rng)[0]
            reference = abs(sub.loss(x0))  # a noiseless problem's f* is 0: not tol |f|
            res = _run(sub, Decrement(PRESOLVE_TOL, reference=reference), method,
                       replace(settings, sketch_size=None), rng, x0, max_iter)
        except DomainError:
            return None
    used = bool(res.success and np.all(np.isfinite(res.x)))
    return dict(x=res.x if used else None, rows=rows, nit=int(res.nit), method=res.method,
                success=bool(res.success), used=used, seconds=time.perf_counter() - t0,
                passes=float(sub.data.passes) * float(sub.data.nnz)
                / max(float(loss.data.nnz), 1.0))


def _with_presolve(result: SolveResult, warm: dict) -> SolveResult:
    """The solve's result with its warm start's cost added (``passes``, ``time``,
    ``timings["presolve"]``) and described (``result.presolve``)."""
    result.passes += warm["passes"]
    result.time += warm["seconds"]
    result.timings["presolve"] = warm["seconds"]
    result.presolve = warm
    return result


def _l1_penalty(l1, n_params: int) -> L1Penalty | None:
    """The validated :class:`L1Penalty` of ``minimize(l1=...)`` (None: no penalty)."""
    if l1 is None or isinstance(l1, L1Penalty):
        weights = None if l1 is None else l1.weights
    elif np.ndim(l1) == 0:
        weights = np.full(n_params, check_real(l1, "l1", nonnegative=True))
    else:
        weights = check_vector(l1, "l1", n_params)
    if weights is None:
        return None
    weights = check_vector(weights, "l1", n_params)
    if np.any(weights < 0):
        raise InputError("l1 must be non-negative")
    return L1Penalty(weights)


def solve(A: Any, b: ArrayLike, eps: float = 1e-6, *, link: str = "resnet", lam: float = 0.0,
          w: ArrayLike | float | None = None, method: str = "auto", sketch: str = "leverage",
          sketch_size: int | None = None, preconditioner: str = "auto",
          x0: ArrayLike | None = None, max_iter: int = 100, random_state: RandomState = None,
          verbose: int = 0,
          callback: Callable | None = None, presolve: str = "auto") -> SolveResult:
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
        :func:`~sketchnewton._auto.choose_method` (cost model).
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
        See :func:`minimize`.
    presolve : {"auto", "sample", "none"}
        Warm start from a row sample: see :func:`minimize`.

    {result sections}
    See Also
    --------
    minimize : any :class:`~sketchnewton.losses.Loss` (logistic, multinomial,
        Poisson, normalized), with either stopping rule.
    sketchnewton.estimators : the scikit-learn estimators, the normalized
        regression among them.
    sketchnewton.losses.NormalizedRegressionLoss : the loss, its gradient and
        Hessian.

    Notes
    -----
    **Dask inputs.** ``A`` may be a ``dask.array`` chunked by rows only (each
    chunk a scipy sparse matrix or a dense block), with ``b`` (and an array
    ``w``) a dask array chunked like ``A``'s rows or an in-memory array, then
    split by those chunks. The solve runs on the active ``dask.distributed``
    client, or in-process with dask's default scheduler when there is none;
    see :mod:`sketchnewton.distributed`. Sketches: ``"leverage"`` and
    ``"uniform"`` only.

    **Error bound.** ``error_bound`` estimates ``||x - x*||`` by the Newton step
    length ``||H~^{-1} g(x)||`` divided by ``1 - e``, with ``H~`` the last
    factorized model and ``e`` a conservative level of its spectral error
    (docs/math.md section 7.1). It is an estimate, accurate to first order,
    not a guarantee: the loss is not convex, and ``lam > 0`` alone does not
    make it strongly convex. The solve stops when the estimate is ``<= eps``
    after a full (unit) Newton step; when ``eps`` is below the attainable
    accuracy of float64 arithmetic on this data it stops with status 2 and
    says so.

    Examples
    --------
    A planted problem (noiseless, so the planted ``x`` is the exact minimiser):

    >>> import numpy as np
    >>> import sketchnewton as sn
    >>> from sketchnewton.datasets import make_regression_problem
    >>> pb = make_regression_problem(5000, 20, link="resnet", nnz_per_row=5, random_state=0)
    >>> res = sn.solve(pb.A, pb.b, eps=1e-8, random_state=0)
    >>> res.success, res.error_bound <= 1e-8
    (True, True)
    >>> bool(np.linalg.norm(res.x - pb.x_true) <= 1e-8)
    True
    >>> res.history_columns()["error_estimate"].shape == (res.nit + 1,)
    True
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
                    random_state=random_state, verbose=verbose, callback=callback,
                    presolve=presolve)


for _fn in (minimize, solve):
    _fn.__doc__ = _fn.__doc__.replace("    {result sections}\n", _RESULT_SECTIONS)
del _fn
