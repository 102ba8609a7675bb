"""Kronecker-factored preconditioner of the multinomial Hessian (docs/math.md section 8.7).

The multinomial Hessian ``sum_i B_i (x) a_i a_i^T + lam I`` (``B_i`` the K x K curvature of row
``i``) is approximated by

    M = S (x) G + mu I,    G = sum_i c_i a_i a_i^T  (d x d),   S = sum_i B_i / sum_i c_i  (K x K)

with ``c_i = tr B_i`` (the row's scalar curvature weight, the one row sampling uses). ``M`` is
exact when every ``B_i`` is proportional to one matrix. It is inverted through the
eigendecompositions ``S = U s U^T`` and ``G = V g V^T``: ``M^{-1} = (U (x) V) diag(1 / (s_k g_j +
mu)) (U (x) V)^T``, applied to a (K x d) direction as ``U ((U^T X V) / W) V^T`` in
``O(K^2 d + K d^2)`` flops; memory ``O(K^2 + d^2 + K d)``, no ``(K d)^2`` matrix and no ``K^2``
Gram blocks.
"""

import numpy as np

__all__ = ["KroneckerModel", "kronecker_model"]


def _project(null_space, g):
    return g if null_space is None else g - null_space @ (null_space.T @ g)


class KroneckerModel:
    """``(S (x) G + mu I)^{-1} g`` through the eigenbases of ``S`` (K x K) and ``G`` (d x d).

    Coordinates are laid out as the multinomial parameters: ``k * d + j`` is class ``k``,
    feature ``j``. Eigenvalue products ``s_k g_j + mu`` at the rounding level of the largest
    (no curvature: the class shift without a ridge) get the smallest scaling ``1 / top``, and
    the loss's declared invariances (``null_space``) are projected out of every solve.

    Attributes
    ----------
    class_basis : ndarray (K, K)
    class_values : ndarray (K,)
        ``S``'s eigendecomposition.
    feature_basis : ndarray (d, d)
    feature_values : ndarray (d,)
        ``G``'s eigendecomposition.
    inv : ndarray (K, d)
        ``1 / (s_k g_j + mu)``.
    """

    spectral_error = None
    null_vectors = None

    def __init__(self, class_eig, feature_eig, mu, kind, null_space=None, sketch_size=0):
        (s, U), (g, V) = class_eig, feature_eig
        self.class_values, self.class_basis = s, U
        self.feature_values, self.feature_basis = g, V
        self.kind, self.null_space, self.sketch_size = kind, null_space, int(sketch_size)
        w = s[:, None] * g[None, :] + mu
        top = max(float(w.max()) if w.size else 0.0, np.finfo(float).tiny)
        self.inv = np.where(w > 1e-12 * top, 1.0 / np.maximum(w, 1e-300), 1.0 / top)
        self.curvature_scale = top

    @property
    def shape(self):
        K, d = self.inv.shape
        return (K * d, K * d)

    def solve(self, g):
        """``M^{-1} g`` for ``g`` of shape (K d,)."""
        U, V = self.class_basis, self.feature_basis
        K, d = self.inv.shape
        X = _project(self.null_space, g).reshape(K, d)
        T = (U.T @ X) @ V
        T *= self.inv
        return _project(self.null_space, ((U @ T) @ V.T).ravel())

    def matrix(self):
        """``S (x) G + mu I`` as a dense (K d, K d) array (tests and small problems only)."""
        U, V = self.class_basis, self.feature_basis
        S = (U * self.class_values) @ U.T
        G = (V * self.feature_values) @ V.T
        mu = float(np.min(1.0 / self.inv))  # equals mu when some s_k g_j is 0 (the shift)
        return np.kron(S, G) + mu * np.eye(S.shape[0] * G.shape[0])


def _psd_eig(M):
    values, vectors = np.linalg.eigh(0.5 * (M + M.T))
    return np.maximum(values, 0.0), vectors


def kronecker_model(G, S, mu, kind, null_space=None, sketch_size=0):
    """The :class:`KroneckerModel` of ``S (x) G + mu I``.

    Parameters
    ----------
    G : ndarray (d, d)
        Weighted Gram of the data ``sum_i c_i a_i a_i^T`` (exact or from sampled rows).
    S : ndarray (K, K)
        The average curvature ``sum_i B_i / sum_i c_i``.
    mu : float
        The ridge (``lam``; the intercept's zero ridge is the shift's null direction, which
        ``null_space`` projects out).
    kind : str
    null_space : ndarray (K d, m) or None
    sketch_size : int
        Rows the factors were estimated from (0: all).
    """
    return KroneckerModel(_psd_eig(S), _psd_eig(G), float(mu), kind, null_space, sketch_size)
