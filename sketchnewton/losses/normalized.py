"""The normalized regression family ``|| phi(Ax) / <phi(Ax), 1> - b ||^2``.

Links ``resnet`` (``exp(z) + z``, the unified ResNet + softmax scheme),
``softmax`` (``exp``), ``cosh`` and ``sinh``. See DESIGN.md section 2 for the
closed forms implemented here.
"""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._kernels import kernel_threads
from .._kernels.links import (LINK_CODES, normalized_csr_rmatmat, normalized_pass,
                             normalized_weights)
from .._matrix import _n_chunks, as_data_matrix
from .._validation import check_finite_scalar, check_vector
from ..exceptions import DomainError, InputError
from ._base import GaussNewtonRoot, HessianFactors

__all__ = ["NormalizedRegressionLoss", "NormalizedState", "Forward", "LINKS"]

LINKS = ("resnet", "softmax", "cosh", "sinh")
HESSIAN_KINDS = ("full", "gauss_newton")


class Forward(NamedTuple):
    """What one forward pass at ``x`` computed (``z = A x`` and the link quantities)."""

    x: np.ndarray
    z: np.ndarray
    f: np.ndarray
    va: np.ndarray
    qa: np.ndarray
    log_alpha: float
    fc: float
    ff: float
    fun: float


@dataclass(frozen=True)
class NormalizedState:
    """Everything one evaluation at ``x`` computed, cached for reuse.

    The fields of its :class:`Forward` (``x, z, f, va, qa, log_alpha, fc, ff,
    fun``: ``z = A x``, ``f, va, qa = phi, phi', phi'' / alpha``, ``fc = <f, c>``,
    ``ff = ||f||^2``) read through as attributes.

    Attributes
    ----------
    forward : Forward
    grad : ndarray (d,)
    K : ndarray (d, 3) or None
        ``A.T @ [va, (f + c) va, f va]``: the low-rank factors, computed in
        the same pass as the gradient.
    """

    forward: Forward
    grad: np.ndarray
    K: np.ndarray | None

    def __getattr__(self, name):
        if name in Forward._fields:
            return getattr(self.forward, name)
        raise AttributeError(name)


def lowrank_part(K3, ff, fc, kind):
    """``(K, C)`` of the low-rank Hessian term ``K C K^T`` from ``K3 = A^T [va, (f+c) va, f va]``.

    ``full``: ``K = A^T [va, (f+c) va]``, ``C = [[||f||^2 + 2<f,c>, -1], [-1, 0]]``;
    ``gauss_newton``: ``K = A^T [va, f va]``, ``C = [[||f||^2, -1], [-1, 0]]``.
    """
    if kind == "full":
        return np.ascontiguousarray(K3[:, [0, 1]]), np.array([[ff + 2 * fc, -1.0], [-1.0, 0.0]])
    return np.ascontiguousarray(K3[:, [0, 2]]), np.array([[ff, -1.0], [-1.0, 0.0]])


class NormalizedRegressionLoss:
    """``L(x) = 1/2 ||f - b||^2 + 1/2 ||w * (A x)||^2 + lam/2 ||x||^2``.

    with ``f = phi(A x) / <phi(A x), 1>``. The object binds the fixed problem
    (``A``, ``b``, link, regularisation); evaluations return a
    :class:`NormalizedState` that the Hessian methods reuse, so no pass over
    ``A`` is repeated.

    Parameters
    ----------
    A : sparse or dense matrix of shape (n, d)
    b : array-like of shape (n,)
    link : {"resnet", "softmax", "cosh", "sinh"}
        ``"exp"`` is accepted as an alias of ``"softmax"``.
    lam : float >= 0
        Ridge strength.
    w : float or array-like of shape (n,), optional
        Weights of the papers' regulariser ``1/2 ||diag(w) A x||^2``.
    """

    def __init__(self, A, b, link="resnet", lam=0.0, w=None):
        if link not in LINK_CODES:
            raise InputError(f"unknown link {link!r}; expected one of {LINKS}")
        self.A = as_data_matrix(A)
        n = self.A.n
        self.b = check_vector(b, "b", n)
        self.link = "softmax" if link == "exp" else link
        self._code = LINK_CODES[link]
        self.lam = check_finite_scalar(lam, "lam", nonnegative=True)
        if w is None:
            self.w2 = np.empty(0)
        elif np.ndim(w) == 0:
            wv = check_finite_scalar(w, "w")
            self.w2 = np.full(n, wv * wv) if wv != 0 else np.empty(0)
        else:
            wv = check_vector(w, "w", n)
            self.w2 = wv * wv

    @property
    def n_params(self):
        return self.A.d

    def _check_x(self, x):
        return check_vector(x, "x", self.A.d)

    def forward(self, x, z=None):
        """Loss and link quantities at ``x`` (one ``A @ x`` unless ``z = A @ x`` is given).

        Returns
        -------
        Forward
            Pass it to :meth:`evaluate` to get the gradient without repeating
            the forward work (the line search does).

        Raises
        ------
        DomainError
            If ``alpha <= 0`` or the loss is not finite.
        """
        x = self._check_x(x)
        if z is None:
            z = self.A.matvec(x)
        n = z.shape[0]
        f, va, qa = np.empty(n), np.empty(n), np.empty(n)
        with kernel_threads(n * 8):
            alpha, shift, fc, ff, cc, wz = normalized_pass(z, self.b, self.w2, self._code, f, va, qa,
                                                          _n_chunks())
        if not alpha > 0.0:
            raise DomainError(
                f"alpha = <phi(Ax), 1> is not positive (alpha = {alpha:.3g} * exp({shift:.3g})) "
                f"for link {self.link!r}: x is outside the domain of the loss")
        fun = 0.5 * cc + 0.5 * wz + 0.5 * self.lam * float(x @ x)
        if not np.isfinite(fun):
            raise DomainError(f"loss is not finite ({fun}) at this x")
        return Forward(x, z, f, va, qa, np.log(alpha) + shift, fc, ff, fun)

    def residual(self, x):
        """Return ``c = f - b`` at ``x``, shape (n,) (the map whose Jacobian is J)."""
        return self.forward(x).f - self.b

    def loss(self, x, *, z=None):
        """Return ``L(x)``: one ``A @ x``, or none when the caller passes ``z = A @ x``."""
        return self.forward(x, z).fun

    def _rmatmat_weights(self, fw, n_cols):
        """``A.T @ Y[:, :n_cols]`` for the gradient / low-rank columns ``Y`` (one sweep)."""
        A = self.A
        if A.is_sparse:
            A.sweeps += 1
            with kernel_threads(A.nnz):
                return normalized_csr_rmatmat(*A.kernel_csr, fw.z, self.b, self.w2,
                                              fw.f, fw.va, fw.fc, A.d, n_cols, _n_chunks())
        with kernel_threads(fw.z.shape[0] * 8):
            Y = normalized_weights(fw.z, self.b, self.w2, fw.f, fw.va, fw.qa, fw.fc,
                                   np.empty((fw.z.shape[0], 4)))
        return A.rmatmat(Y[:, :n_cols])

    def evaluate(self, x, *, hessian=True, z=None, forward=None):
        """Loss, gradient and (optionally) the low-rank Hessian factors at ``x``.

        One ``A @ x`` (skipped when the caller passes ``z = A @ x`` or the
        :class:`Forward` of ``x``), an O(n) pass, and one fused ``A.T @ Y`` whose
        columns (gradient weights and, if ``hessian``, the three low-rank
        factors) are computed row by row inside the kernel.

        Returns
        -------
        NormalizedState
        """
        fw = forward if forward is not None else self.forward(x, z)
        x = fw.x
        AtY = self._rmatmat_weights(fw, 4 if hessian else 1)
        grad = AtY[:, 0] + self.lam * x
        K = AtY[:, 1:] if hessian else None
        return NormalizedState(fw, grad, K)

    def loss_gradient(self, x):
        """Return ``(L(x), grad L(x))``."""
        s = self.evaluate(x, hessian=False)
        return s.fun, s.grad

    def gradient(self, x):
        return self.loss_gradient(x)[1]

    def _state(self, x_or_state):
        if isinstance(x_or_state, NormalizedState) and x_or_state.K is not None:
            return x_or_state
        x = x_or_state.x if isinstance(x_or_state, NormalizedState) else x_or_state
        return self.evaluate(x, hessian=True)

    def hessian_factors(self, x_or_state, kind="full"):
        """Hessian (or Gauss-Newton matrix) as diagonal + rank 2 (DESIGN.md section 2).

        ``full``:  ``diag = va^2 + qa (c - <f,c>) + w^2``, ``V = [va, (f+c) va]``,
        ``C = [[||f||^2 + 2<f,c>, -1], [-1, 0]]``.
        ``gauss_newton``: ``diag = va^2 + w^2``, ``V = [va, f va]``,
        ``C = [[||f||^2, -1], [-1, 0]]``; also carries the square-root factor
        ``J = diag(va) A - f k^T`` with ``k = A^T va``.

        Parameters
        ----------
        x_or_state : ndarray (d,) or NormalizedState
        kind : {"full", "gauss_newton"}

        Returns
        -------
        HessianFactors
        """
        if kind not in HESSIAN_KINDS:
            raise InputError(f"unknown Hessian kind {kind!r}; expected one of {HESSIAN_KINDS}")
        s = self._state(x_or_state)
        va2 = s.va * s.va
        has_w = self.w2.shape[0] > 0
        if kind == "full":
            c_centered = s.f - self.b - s.fc
            diag = va2 + s.qa * c_centered
            root = None
        else:
            diag = va2
            root = GaussNewtonRoot(s.va, s.f, s.K[:, 0].copy(), self.w2 if has_w else None)
        if has_w:
            diag = diag + self.w2
        K, C = lowrank_part(s.K, s.ff, s.fc, kind)
        return HessianFactors(self.A, diag, K, C, self.lam, kind, root)

    def hessp(self, x_or_state, p, kind="full"):
        """Hessian-vector product ``H(x) @ p`` (never forms H)."""
        return self.hessian_factors(x_or_state, kind).matvec(p)

    def hessian(self, x_or_state, kind="full"):
        """Exact dense (d, d) Hessian, for reference and small d."""
        return self.hessian_factors(x_or_state, kind).dense()
