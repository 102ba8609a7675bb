"""The front door: :func:`solve` for the normalized regression, in memory or on Dask.

Validation of the user's input and the choice of backend happen here, once;
the Newton driver (:func:`sketchnewton.newton.minimize`) sees only the loss.
"""

from . import distributed
from ._validation import check_choice, check_real
from .hessian import ROW_SAMPLERS, SKETCHES
from .losses import NormalizedRegressionLoss
from .losses.normalized import LINK_CODES
from .newton import minimize

__all__ = ["solve"]


def solve(A, b, eps=1e-6, *, link="resnet", lam=0.0, w=None, method="auto", sketch="leverage",
          sketch_size=None, x0=None, max_iter=100, random_state=None, verbose=0, callback=None):
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
    method : {"auto", "exact", "sketch", "pcg"}
        ``"exact"``: Newton with the exact Hessian (numba row-outer-product
        Gram for sparse A, BLAS for dense). ``"sketch"``: the paper's
        approximate Newton step ``H~^{-1} g`` with a fresh sketched model each
        iteration; the sketch size doubles when the observed contraction is
        poor (Adaptive Newton Sketch). ``"pcg"``: inexact Newton, conjugate
        gradients on exact Hessian-vector products preconditioned by the
        sketched model. ``"auto"``: :func:`~sketchnewton.newton.choose_method`
        (cost model).
    sketch : {"leverage", "uniform", "countsketch", "srht", "gaussian"}
        Sketch of the Hessian's diagonal part (methods ``sketch``, ``pcg``).
    sketch_size : int, optional
        Rows of the sketch; default ``20 d`` (for ``sketch`` then adaptive:
        doubled while the observed contraction is slower than 0.3).
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
    return minimize(loss, eps=eps, method=method, sketch=sketch, sketch_size=sketch_size, x0=x0,
                    max_iter=max_iter, random_state=random_state, verbose=verbose,
                    callback=callback)
