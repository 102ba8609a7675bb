"""Standard errors of a fitted GLM from the inverse Hessian of its objective at the solution.

``se = sqrt(diag(H^{-1}))``, ``H`` the Hessian of the objective the estimator
minimised, in the units of the negative log-likelihood
``sum_i s_i l_i + penalty`` (the solver's loss divided its weights by their
largest value ``s``; the Hessian is scaled back). Without a penalty these are
the classical maximum-likelihood standard errors (``(X^T W X)^{-1}`` with the
intercept column, sample weights as frequency weights, Poisson dispersion 1);
with a ridge they are the Laplace approximation of the Gaussian-prior posterior
(``coef ~ N(0, C)`` for logistic regression, ``N(0, 1 / (alpha sum_i s_i))``
for Poisson), not frequentist standard errors of a biased estimator.

The multinomial loss is invariant to a common shift of every class's
unpenalised coordinates (the intercepts, and with ``C = inf`` all of them):
its Hessian is singular along those directions ``N`` (orthonormal columns, the
loss's ``null_space``). The covariance is then the pseudo-inverse
``H^+ = (H + N N^T)^{-1} - N N^T``: the covariance of the centred
(sum-to-zero over classes) parameters, the parametrisation of ``coef_`` and
``intercept_``.
"""

import warnings

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

from .._validation import check_memory

__all__ = ["coefficient_table", "CoefTableMixin", "COLUMNS"]

COLUMNS = ("coef", "se", "z", "p_value")
#: relative condition number beyond which the Hessian counts as singular
_SINGULAR = 1.0 / np.finfo(float).eps
#: a half Newton decrement above this share of the objective: the coefficients are not its
#: minimiser (the data passed is not the training data)
_NOT_MINIMISER = 1e-4


def _covariance(H, N):
    """``H^{-1}``, or the pseudo-inverse along the orthonormal null directions ``N``."""
    P = None if N is None else N @ N.T
    M = H if P is None else H + P
    try:
        factor = cho_factor(M, lower=True)
    except LinAlgError:
        factor = None
    diag = np.diag(factor[0]) if factor is not None else np.zeros(1)
    if factor is None or not np.all(diag > 0) or (diag.max() / diag.min()) ** 2 > _SINGULAR:
        raise ValueError(
            "the Hessian of the objective at the solution is singular: standard errors are not "
            "defined (collinear or constant features, or separable classes with C=inf); remove "
            "the collinear columns or use a finite C")
    cov = cho_solve(factor, np.eye(H.shape[0]))
    return cov if P is None else cov - P


def coefficient_table(loss, x, scale, names, classes=None):
    """The coefficient table at ``x`` (the loss's layout: one row of ``d`` coefficients and,
    with an intercept, the intercept per class; ``names`` has one entry per column).

    Returns a pandas DataFrame (columns ``coef, se, z, p_value``; index the names, or
    ``(class, name)`` for the multinomial model) when pandas is installed, else a dict of
    arrays with the same columns plus ``"name"`` (and ``"class"``).
    """
    p = loss.n_params
    check_memory(3 * 8 * p * p, f"the standard errors (a dense {p:,} x {p:,} Hessian)",
                 "standard errors need the dense inverse Hessian; use fewer features")
    state = loss.evaluate(np.asarray(x, dtype=np.float64))
    H = loss.hessian(state) * scale
    cov = _covariance(0.5 * (H + H.T), loss.null_space())
    g = state.grad * scale
    if 0.5 * float(g @ cov @ g) > _NOT_MINIMISER * max(abs(state.fun) * scale, np.finfo(float).tiny):
        warnings.warn("the fitted coefficients are not the minimiser of the objective on the data "
                      "passed: pass the training data (X, y and sample_weight of fit); the "
                      "standard errors describe the curvature at the coefficients given",
                      UserWarning, stacklevel=3)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, x / se, np.nan)
    cols = dict(coef=np.asarray(x, dtype=np.float64), se=se, z=z, p_value=2.0 * norm.sf(np.abs(z)))
    rows = p // len(names)
    labels = np.tile(np.asarray(names, dtype=object), rows)
    try:
        import pandas as pd
    except ImportError:
        out = dict(name=labels, **cols)
        if classes is not None:
            out = dict({"class": np.repeat(np.asarray(classes), len(names))}, **out)
        return out
    if classes is None:
        index = pd.Index(labels, name="name")
    else:
        index = pd.MultiIndex.from_arrays([np.repeat(np.asarray(classes), len(names)), labels],
                                          names=["class", "name"])
    return pd.DataFrame(cols, index=index, columns=list(COLUMNS))


class CoefTableMixin:
    """``coef_table`` for the GLM estimators (they define ``_training_loss`` and ``_params``)."""

    def coef_table(self, X, y, sample_weight=None):
        """Coefficients with standard errors, z statistics and two-sided p-values.

        ``se = sqrt(diag(H^{-1}))`` with ``H`` the Hessian of the fitted objective
        at the solution (exact, dense: refused with a clear error when it does not
        fit in memory), in the units of the negative log-likelihood with sample
        weights as frequency weights. With no penalty (``C=np.inf``, ``alpha=0``)
        these are the usual maximum-likelihood standard errors (Poisson with
        dispersion 1); **with a ridge penalty they are not classical standard
        errors** but the inverse-Hessian (Laplace, Gaussian-prior posterior) ones.
        Multinomial models: the pseudo-inverse on the class-shift null space, i.e.
        the standard errors of the centred (sum-to-zero) ``coef_`` and ``intercept_``.
        The mathematics: :mod:`sketchnewton.estimators._coef_table`.

        Parameters
        ----------
        X, y, sample_weight
            The training data of ``fit`` (the model keeps no copy of it); the
            class weights are recomputed from it as in ``fit``. Data that the
            coefficients do not minimise the objective on gives a warning.

        Returns
        -------
        pandas.DataFrame or dict
            Columns ``coef, se, z, p_value``; one row per coefficient and the
            ``"intercept"`` row (index ``(class, name)`` for multinomial models);
            a dict of arrays (plus ``"name"`` and ``"class"``) without pandas.
        """
        check_is_fitted(self)
        loss, scale = self._training_loss(X, y, sample_weight)
        names = getattr(self, "feature_names_in_", None)
        names = [f"x{j}" for j in range(self.n_features_in_)] if names is None else list(names)
        if self.fit_intercept:
            names.append("intercept")
        classes = getattr(self, "classes_", None)
        classes = classes if classes is not None and len(classes) > 2 else None
        return coefficient_table(loss, self._params(), scale, names, classes)
