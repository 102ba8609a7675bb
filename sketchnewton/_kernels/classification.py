"""Row-wise kernels for the logistic and softmax cross-entropy losses."""

import numpy as np
from numba import njit, prange

__all__ = ["logistic_pass", "multinomial_pass", "multinomial_hess_weights"]


@njit(parallel=True, cache=True)
def logistic_pass(z, y, sw, p, r):
    """Binary cross-entropy ``sum_i sw_i (log(1 + e^{z_i}) - y_i z_i)``.

    Writes ``p = sigmoid(z)`` and the gradient weights ``r = sw (p - y)``;
    returns the loss. Stable for any finite ``z``.
    """
    n = z.shape[0]
    loss = 0.0
    for i in prange(n):
        zi = z[i]
        if zi > 0:
            e = np.exp(-zi)
            lse = zi + np.log1p(e)
            pi = 1.0 / (1.0 + e)
        else:
            e = np.exp(zi)
            lse = np.log1p(e)
            pi = e / (1.0 + e)
        p[i] = pi
        r[i] = sw[i] * (pi - y[i])
        loss += sw[i] * (lse - y[i] * zi)
    return loss


@njit(parallel=True, cache=True)
def multinomial_pass(Z, y, sw, P, R):
    """Softmax cross-entropy ``sum_i sw_i (logsumexp(Z_i) - Z_{i, y_i})``.

    ``Z`` (n, K) logits, ``y`` (n,) integer labels in [0, K). Writes the row
    probabilities into ``P`` and ``R = sw (P - onehot(y))``; returns the loss.
    """
    n, K = Z.shape
    loss = 0.0
    for i in prange(n):
        m = Z[i, 0]
        for k in range(1, K):
            m = max(m, Z[i, k])
        s = 0.0
        for k in range(K):
            e = np.exp(Z[i, k] - m)
            P[i, k] = e
            s += e
        inv = 1.0 / s
        for k in range(K):
            P[i, k] *= inv
            R[i, k] = sw[i] * P[i, k]
        R[i, y[i]] -= sw[i]
        loss += sw[i] * (m + np.log(s) - Z[i, y[i]])
    return loss


@njit(parallel=True, cache=True)
def multinomial_hess_weights(P, sw, Zd, out):
    """``out_i = sw_i (diag(p_i) - p_i p_i^T) zd_i`` row-wise (Hessian action)."""
    n, K = P.shape
    for i in prange(n):
        s = 0.0
        for k in range(K):
            s += P[i, k] * Zd[i, k]
        for k in range(K):
            out[i, k] = sw[i] * P[i, k] * (Zd[i, k] - s)
    return out
