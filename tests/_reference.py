"""Independent high-accuracy reference solutions (tests, data/ and benchmarks).

Uses scipy's ``trust-exact`` (More-Sorensen trust region on the dense exact
Hessian): a different globalisation, a different linear algebra path and
no sketching, so agreement with :func:`sketchnewton.solve` is evidence, not
a tautology. Meant for small ``d``.
"""

import warnings

import numpy as np
from scipy.optimize import minimize


def reference_solution(loss, x0, *, max_iter=500):
    """Minimise ``loss`` from ``x0`` to machine precision with ``trust-exact``.

    Parameters
    ----------
    loss : a loss object with ``loss_gradient`` and ``hessian``
    x0 : ndarray (d,)

    Returns
    -------
    x : ndarray (d,)
    newton_decrement : float
        ``||H(x)^{-1} g(x)||``, the first-order distance to the minimiser.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = minimize(loss.loss_gradient, np.asarray(x0, float), jac=True, hess=loss.hessian,
                       method="trust-exact", options=dict(gtol=1e-300, maxiter=max_iter))
    x = res.x
    # polish: trust-exact stops when rounding hides the decrease; pure Newton
    # steps go on while the gradient still shrinks
    g = loss.gradient(x)
    step = np.linalg.lstsq(loss.hessian(x), g, rcond=None)[0]
    for _ in range(5):
        x_new = x - step
        g_new = loss.gradient(x_new)
        if not np.linalg.norm(g_new) < np.linalg.norm(g):
            break
        x, g = x_new, g_new
        step = np.linalg.lstsq(loss.hessian(x), g, rcond=None)[0]
    return x, float(np.linalg.norm(step))
