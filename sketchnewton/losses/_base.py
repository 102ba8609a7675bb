"""The loss protocol: what the Newton driver needs from a loss, and pieces shared by the losses.

Every loss minimised by :class:`sketchnewton.newton.NewtonSolver` implements
:class:`Loss`. Its data live in a :class:`~sketchnewton._blocks.RowBlocks`
(one block in memory, many on a Dask cluster), so one implementation serves
every backend; the driver sees only this protocol.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

from .._blocks import Block, LocalBlocks, RowBlocks
from .._matrix import DataMatrix, as_data_matrix
from .._validation import check_vector
from ..exceptions import InputError

__all__ = ["Loss", "State", "GaussNewtonRoot", "HessianFactors", "LossBase", "gradient_of",
           "ImageLine", "BlockState", "moved_image"]


@dataclass
class State:
    """What one evaluation of a loss at ``x`` computed, kept for reuse.

    Attributes
    ----------
    x : ndarray of shape (n_params,)
    fun : float
    image : ndarray or BlockVector
        The linear predictor ``A x`` (shape (n,) or (n, K)).
    handles : list
        Per-block results kept where each block lives (loss-specific contents).
    grad : ndarray of shape (n_params,) or None
        None for a line-search trial whose gradient was not computed yet.
    """

    x: np.ndarray
    fun: float
    image: Any
    handles: list = field(repr=False)
    grad: np.ndarray | None = None


def gradient_of(state: State) -> np.ndarray:
    """The gradient of an evaluated state (``Loss.evaluate`` sets it)."""
    if state.grad is None:
        raise ValueError("the state has no gradient yet: complete it with Loss.evaluate")
    return state.grad


@runtime_checkable
class Loss(Protocol):
    """The interface between a loss and the Newton driver (docs/math.md section 6).

    Every capability a method may need is declared here, with its default in
    :class:`LossBase`: the driver, the strategies and the cost model read these
    attributes and never probe a loss for what it offers.

    Attributes
    ----------
    n_params : int
        Length of the parameter vector ``x``.
    data : RowBlocks
        The row blocks of the data (``shape``, ``nnz``, ``sweeps``, tasks).
    hessian_kinds : tuple of str
        The Hessian models the loss offers, in the order the driver tries
        them: ``("full", "gauss_newton")`` when the full Hessian may be
        indefinite (the Gauss-Newton matrix is always PSD), ``("full",)``
        for convex losses.
    image_width : int
        Columns of the linear predictor (1, or K for the multinomial loss).
    hessian_grams : int
        Weighted Gram matrices an exact Hessian costs (``K (K + 1) / 2`` for
        the multinomial loss, else 1): the cost model reads it.
    ridge : ndarray of shape (n_params,)
        The ridge added to the Hessian's diagonal (0 on unpenalised coordinates).
    diagonal_curvature : bool
        The Hessian is ``A^T diag(D) A + K C K^T + diag(ridge)`` (one weight per
        row plus a small low-rank part): :meth:`hessian_factors` gives it, in
        memory (the dual Newton form needs it). False for K x K row blocks.
    gauss_newton_root : bool
        :meth:`hessian_factors` with ``kind="gauss_newton"`` carries a square-root
        factor ``J`` (``H_GN = J^T J + ...``) that oblivious sketches (CountSketch,
        SRHT, Gaussian) can apply; otherwise only row sampling applies.
    kronecker_curvature : bool
        The Hessian is ``sum_i B_i (x) a_i a_i^T + ridge`` with K x K row blocks ``B_i``:
        :meth:`kronecker_factors` gives the factors of its Kronecker-factored
        preconditioner (the multinomial loss).
    softmax_curvature : bool
        The row blocks are ``B_i = s_i (diag(p_i) - p_i p_i^T)`` (the multinomial loss): with the
        data in memory :meth:`softmax_blocks` gives ``(A, P, s)`` (matrix-free proximal
        Newton).
    row_subsets : bool
        :meth:`row_subset` gives the same loss on a subset of the rows (in memory): the
        Hessian products of sub-sampled Newton.
    float32_data : bool
        The data are a float32 matrix in memory: Hessian products whose images are not kept
        may run in float32 (``row_subset(..., precise=False)``).
    subproblems : bool
        :meth:`subproblem` gives the problem on a sample of the rows (in memory): the warm
        start of a tall solve.
    accumulate_images : bool
        Conjugate gradients accumulate ``A p`` from the images of their Hessian products
        (:meth:`hessp_with_image`), so that the line search needs no sweep. False when an
        image is an ``n x K`` array as large as the state (the multinomial loss in memory):
        CG then calls :meth:`hessp`, and :meth:`line` forms ``A p`` by row blocks.
    """

    n_params: int
    data: RowBlocks
    hessian_kinds: tuple[str, ...]
    image_width: int
    hessian_grams: int
    ridge: np.ndarray
    diagonal_curvature: bool
    gauss_newton_root: bool
    kronecker_curvature: bool
    softmax_curvature: bool
    row_subsets: bool
    float32_data: bool
    subproblems: bool
    accumulate_images: bool

    def start(self, rng: np.random.Generator) -> tuple[np.ndarray, Any]:
        """Default starting point ``(x0, A x0 or None)`` (None: the driver computes the image)."""

    def forward(self, x: np.ndarray, image: Any = None) -> State:
        """Loss value at ``x`` (``image = A x`` when known): a :class:`State` whose ``grad``
        may be None. Costs O(n) given the image. Raises
        :class:`~sketchnewton.exceptions.DomainError` outside the domain."""

    def evaluate(self, x: np.ndarray | None = None, *, forward: State | None = None) -> State:
        """Loss and gradient at ``x``, completing ``forward`` when given (no repeated work)."""

    def image(self, p: np.ndarray) -> Any:
        """``A p`` for a direction ``p`` (one sweep)."""

    def value(self, x: np.ndarray) -> float:
        """The loss at ``x`` without keeping its state (raises
        :class:`~sketchnewton.exceptions.DomainError` outside the domain)."""

    def line(self, state: State, p: np.ndarray, image: Any = None) -> "ImageLine":
        """The line-search trials along ``x + t p`` from ``state`` (``image``: ``A p`` when
        known): an :class:`ImageLine`, or a loss's own object with its interface."""

    def hessp(self, x_or_state: Any, v: np.ndarray, kind: str = "full") -> np.ndarray:
        """``H v`` at ``state``, no image kept (one pass)."""

    def hessp_with_image(self, state: State, v: np.ndarray, kind: str = "full") -> tuple[np.ndarray, Any]:
        """``(H v, A v)`` at ``state`` (one pass; ``A v`` lets CG accumulate ``A p`` for free)."""

    def hessp_of_image(self, state: State, v: np.ndarray, image: Any,
                       kind: str = "full") -> np.ndarray:
        """``H v`` from the image ``A v`` the caller holds (one transposed sweep, no ``A v``)."""

    def hessian(self, x_or_state: Any, kind: str = "full") -> np.ndarray:
        """The exact (n_params, n_params) Hessian (or Gauss-Newton matrix) at ``state``."""

    def hessian_matmat(self, state: State, V: np.ndarray, kind: str = "full") -> np.ndarray:
        """``H V`` for a block of ``r`` vectors, shape (n_params, r): one pass of ``r`` columns
        (the randomized Nystrom preconditioner's sketch)."""

    def hessian_diagonal(self, state: State, kind: str = "full") -> np.ndarray:
        """The Hessian's diagonal, shape (n_params,), in one sweep (the Jacobi preconditioner);
        a loss whose rows carry ``K x K`` weight blocks returns its per-feature blocks
        (d, K, K) instead."""

    def hessian_factors(self, x_or_state: Any, kind: str = "full") -> "HessianFactors":
        """The Hessian as :class:`HessianFactors` (in memory; only when ``diagonal_curvature``)."""

    def gradient_noise(self, state: State) -> np.ndarray:
        """Componentwise size of the rounding error of the computed gradient, (n_params,): the
        attainable-accuracy floor (docs/math.md 7.3). One sweep."""

    def duality_gap(self, state: State, weights: np.ndarray) -> float:
        """An upper bound of ``F(x) - min F`` for ``F = loss + sum_j weights_j |x_j|`` by Fenchel
        duality (docs/math.md 9.3), from the state alone (no pass); ``inf`` where the loss
        offers none."""

    def sampling_weights(self, state: State) -> list:
        """Per-block handles of the curvature weights ``D_i >= 0`` that drive row sampling:
        the Hessian is ``A^T diag(D) A`` up to low-rank and block structure."""

    def sampled_hessian(self, state: State, samples: list, kind: str = "full") -> tuple[np.ndarray, int]:
        """``(H~, rows used)``: the Hessian model from the rows kept in each block (``samples``:
        per-block handles of a :class:`~sketchnewton._blocks.RowSample`), each row's
        contribution reweighted by its ``row_weights ** 2``."""

    def kronecker_factors(self, state: State, samples: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(G, S)``: the weighted Gram ``G = sum_i c_i a_i a_i^T`` (d x d, ``c_i = tr B_i``) and
        the average curvature ``S = sum_i B_i / sum_i c_i`` (K x K), over every row, or over the
        rows kept in ``samples`` (reweighted); only with ``kronecker_curvature``."""

    def softmax_blocks(self, state: State) -> tuple[Any, np.ndarray, np.ndarray]:
        """``(A, P, s)`` at ``state``: the data matrix (``DataMatrix``, or ``InterceptMatrix``
        with the intercept's column of ones), the probabilities (n, K) and row weights (n,) of
        the row blocks ``B_i = s_i (diag(p_i) - p_i p_i^T)``; only with ``softmax_curvature``,
        in memory (not copies: read only)."""

    def row_subset(self, rows: np.ndarray | None, scale: float, precise: bool = True) -> "Loss":
        """The loss of the rows ``rows`` (sorted; None: all, no copy) only, each row's weight
        times ``scale``, same ridge (``precise=False``: Hessian products in the data's float32
        where it is float32); only with ``row_subsets``."""

    def subset_state(self, sub: "Loss", state: State, rows: np.ndarray) -> State:
        """The state of ``sub = self.row_subset(rows, ...)`` at ``state.x``, from ``state``
        without a pass over ``A`` (``sub.forward`` of the rows' image, or views of them)."""

    def subproblem(self, rows: np.ndarray) -> "Loss":
        """The problem on the rows ``rows`` (sorted, a sample of them) whose minimiser estimates
        this loss's: what a warm start solves first (docs/math.md 6.6); only with
        ``subproblems``."""

    def null_space(self, fixed: np.ndarray | None = None) -> np.ndarray | None:
        """Orthonormal (n_params, m) basis of directions along which the loss is exactly
        invariant for every data set (the multinomial class shift), or None; only those that
        move no coordinate of the mask ``fixed`` (n_params,) when given."""


class BlockState:
    """A row-separable loss's evaluation of a block: the linear predictor ``Z``, the row
    kernel's outputs ``cache``, the loss, the gradient's partial (or None).

    Multinomial: ``Z`` is the only ``n x K`` array kept, with the rows' softmax statistics
    (n, 2) (:mod:`._multinomial`: the probabilities are formed again by row blocks)."""

    __slots__ = ("Z", "cache", "fun", "grad")

    def __init__(self, Z, cache, fun, grad):
        self.Z, self.cache, self.fun, self.grad = Z, cache, fun, grad

    def __sizeof__(self):
        return self.Z.nbytes + sum(c.nbytes for c in self.cache if c is not None) + 200


def moved_image(image, t, Ap):
    """``image + t Ap`` (a line-search trial's image): one new array, no temporary of its size
    (an ``n x K`` array for the multinomial loss)."""
    if isinstance(image, np.ndarray) and isinstance(Ap, np.ndarray):
        out = np.multiply(Ap, t)
        out += image
        return out
    return image + t * Ap


class ImageLine:
    """The trials of a line search along ``x + t p`` from an evaluated ``state``: ``A p``
    computed once (one sweep, unless ``image`` gives it), then every trial is a new state
    from ``z + t A p``, O(n) (K columns for the multinomial loss).

    Attributes
    ----------
    dz : float
        ``max |A p|`` (known once :meth:`first` has run).
    """

    def __init__(self, loss: Any, state: State, p: np.ndarray, image: Any = None):
        self.loss, self.state, self.p = loss, state, p
        self.image = Ap = loss.image(p) if image is None else image
        if not Ap.size:
            self.dz = 0.0
        elif isinstance(Ap, np.ndarray):  # no temporary of the image's size (n x K)
            self.dz = max(float(Ap.max()), -float(Ap.min()))
        else:
            self.dz = float(np.abs(Ap).max())

    def first(self, max_dz: float) -> float:
        """The first trial's ``t``: 1, or less so that no entry of ``A x`` moves by more than
        ``max_dz``."""
        return 1.0 if self.dz <= max_dz else max_dz / self.dz

    def trial(self, t: float) -> State:
        """The loss's state at ``x + t p`` (no gradient); raises
        :class:`~sketchnewton.exceptions.DomainError` outside the domain. A state stays valid
        after the next trial here (a line that moves one state in place says otherwise)."""
        return self.loss.forward(self.state.x + t * self.p, moved_image(self.state.image, t,
                                                                        self.image))

    def again(self, trial: State, t: float) -> State:
        """The trial state at ``t`` after later trials (here: ``trial`` itself)."""
        return trial

    def close(self, accepted: State | None) -> None:
        """The search ended on ``accepted`` (None: no trial accepted, ``state`` stands)."""


@dataclass(frozen=True)
class GaussNewtonRoot:
    """A square-root factor ``J = diag(row_scale) A - outer(shift, k)``.

    The Gauss-Newton matrix of the normalized family is
    ``J.T @ J + A.T @ diag(extra_diag) @ A + lam I`` (docs/math.md section
    2.4); sketching ``J``'s rows (``row_scale[i] a_i - shift[i] k``) keeps the
    approximation PSD.

    Attributes
    ----------
    row_scale : ndarray of shape (n,)
    shift : ndarray of shape (n,)
    k : ndarray of shape (d,)
    extra_diag : ndarray of shape (n,) or None
        Non-negative weights of a PSD term ``A^T diag(extra_diag) A`` (the
        ``w`` regulariser), or None.
    """

    row_scale: np.ndarray
    shift: np.ndarray
    k: np.ndarray
    extra_diag: np.ndarray | None = None


@dataclass(frozen=True)
class HessianFactors:
    """``H = A^T diag(diag) A + K C K^T + lam I``: diagonal plus low rank (in-memory data).

    Attributes
    ----------
    A : DataMatrix of shape (n, d)
    diag : ndarray of shape (n,)
        The diagonal of ``B(x)``; may be negative for the full Hessian.
    K : ndarray of shape (d, r)
        ``A.T @ V`` for the low-rank factor ``V`` (n x r) of ``B(x)``.
    C : ndarray of shape (r, r)
        Symmetric core of the low-rank part (``B = diag + V C V^T``).
    lam : float or ndarray of shape (d,)
        Ridge added to the Hessian's diagonal.
    kind : {"full", "gauss_newton"}
    root : GaussNewtonRoot or None
        Square-root factor, when the Hessian is a Gauss-Newton matrix.
    residual : ndarray of shape (n,) or None
        The gradient weights ``rho`` of a row-separable loss: its gradient is
        ``A^T rho + lam x`` (the dual of a proximal model needs them).
    """

    A: DataMatrix
    diag: np.ndarray
    K: np.ndarray
    C: np.ndarray
    lam: Any
    kind: str = "full"
    root: GaussNewtonRoot | None = field(default=None, repr=False)
    residual: np.ndarray | None = field(default=None, repr=False)

    @property
    def shape(self):
        return (self.A.d, self.A.d)

    def lowrank(self):
        """The exact low-rank part ``K C K^T`` as a dense (d, d) matrix."""
        return self.K @ self.C @ self.K.T

    def matvec(self, p):
        """Return ``H @ p`` without forming ``H`` (one fused sweep over A)."""
        p = np.asarray(p, dtype=np.float64)
        out = self.A.normal_matvec(self.diag, p)[0]
        out += self.K @ (self.C @ (self.K.T @ p))
        out += self.lam * p
        return out

    def dense(self):
        """Assemble ``H`` exactly as a dense (d, d) matrix (``O(sum_i nnz_i^2)`` for sparse A)."""
        H = self.A.gram(self.diag)
        H += self.lowrank()
        H[np.diag_indices_from(H)] += self.lam
        return H


def local_blocks(A, name="A", **vectors):
    """:class:`LocalBlocks` of one in-memory block holding ``A`` and the given row vectors."""
    return LocalBlocks(Block(as_data_matrix(A, name), 0, **vectors))


class LossBase(ABC):
    """Conveniences shared by every loss: evaluation from ``x`` or from a :class:`State`.

    Subclasses set ``data`` (a RowBlocks) and ``n_params`` and implement the
    :class:`Loss` protocol.
    """

    data: RowBlocks
    n_params: int
    diagonal_curvature: bool = False
    gauss_newton_root: bool = False
    kronecker_curvature: bool = False
    softmax_curvature: bool = False
    row_subsets: bool = False
    float32_data: bool = False
    subproblems: bool = False
    accumulate_images: bool = True

    def duality_gap(self, state: State, weights: np.ndarray) -> float:
        """See :meth:`Loss.duality_gap`: none by default."""
        return np.inf

    @abstractmethod
    def forward(self, x: ArrayLike, image: Any = None) -> State:
        """See :meth:`Loss.forward`."""

    @abstractmethod
    def evaluate(self, x: ArrayLike | None = None, *, forward: State | None = None) -> State:
        """See :meth:`Loss.evaluate`."""

    @abstractmethod
    def hessp_with_image(self, state: State, v: np.ndarray, kind: str = "full") -> tuple[np.ndarray, Any]:
        """See :meth:`Loss.hessp_with_image`."""

    @abstractmethod
    def hessp_of_image(self, state: State, v: np.ndarray, image: Any,
                       kind: str = "full") -> np.ndarray:
        """See :meth:`Loss.hessp_of_image`."""

    @abstractmethod
    def _hessian(self, state: State, kind: str = "full") -> np.ndarray:
        """The exact dense Hessian at an evaluated ``state``."""

    @property
    def A(self):
        """The data matrix of an in-memory loss (DataMatrix or InterceptMatrix)."""
        if not isinstance(self.data, LocalBlocks):
            raise AttributeError("a distributed loss has no in-memory matrix A; use .data")
        return self.data.block.A

    def _check_x(self, x):
        return check_vector(x, "x", self.n_params)

    def _state(self, x_or_state):
        if isinstance(x_or_state, State) and x_or_state.grad is not None:
            return x_or_state
        if isinstance(x_or_state, State):
            return self.evaluate(forward=x_or_state)
        return self.evaluate(x_or_state)

    def loss(self, x: ArrayLike) -> float:
        """Return ``L(x)``."""
        return self.value(x)

    def value(self, x: ArrayLike) -> float:
        """See :meth:`Loss.value`."""
        return self.forward(x).fun

    def line(self, state: State, p: np.ndarray, image: Any = None) -> ImageLine:
        """See :meth:`Loss.line`: the :class:`ImageLine` by default."""
        return ImageLine(self, state, p, image)

    def loss_gradient(self, x: ArrayLike) -> tuple[float, np.ndarray]:
        """Return ``(L(x), grad L(x))``."""
        s = self.evaluate(x)
        return s.fun, gradient_of(s)

    def gradient(self, x: ArrayLike) -> np.ndarray:
        """Return ``grad L(x)``."""
        return gradient_of(self.evaluate(x))

    def hessp(self, x_or_state: ArrayLike | State, v: ArrayLike, kind: str = "full") -> np.ndarray:
        """Hessian-vector product ``H(x) @ v`` (never forms H; a state's gradient is not needed)."""
        return self.hessp_with_image(self._at(x_or_state), np.asarray(v, dtype=np.float64),
                                     kind)[0]

    def _at(self, x_or_state):
        """A state as it is, or the evaluation at ``x``."""
        return x_or_state if isinstance(x_or_state, State) else self._state(x_or_state)

    def hessian(self, x_or_state: ArrayLike | State, kind: str = "full") -> np.ndarray:
        """Exact dense Hessian (``kind="gauss_newton"``: the Gauss-Newton matrix)."""
        return self._hessian(self._state(x_or_state), kind)

    def hessian_factors(self, x_or_state, kind="full"):
        """The Hessian as :class:`HessianFactors`: a loss with ``diagonal_curvature`` overrides
        this default, which refuses."""
        self._check_factors()

    def kronecker_factors(self, state, samples=None):
        """Only for a loss with ``kronecker_curvature`` (the multinomial loss)."""
        raise InputError(f"{type(self).__name__} has no K x K row curvature blocks: no "
                         "Kronecker-factored preconditioner (use the multinomial loss)")

    def softmax_blocks(self, state):
        """Only for a loss with ``softmax_curvature`` (the multinomial loss), in memory."""
        raise InputError(f"{type(self).__name__} has no softmax row blocks")

    def row_subset(self, rows, scale, precise=True):
        """Only for a loss with ``row_subsets``."""
        raise InputError(f"{type(self).__name__} offers no row subsets (sub-sampled Newton "
                         "needs a row-separable loss in memory)")

    def subset_state(self, sub, state, rows):
        """See :meth:`Loss.subset_state`: ``sub.forward`` of the rows of the image (a copy)."""
        return sub.forward(state.x, state.image[rows])

    def subproblem(self, rows):
        """The loss of the rows ``rows`` with each row's weight times ``n / len(rows)`` (a
        row-separable loss: its sum over the sample estimates the sum over every row), the same
        ridge; a loss whose rows are coupled overrides this."""
        if not self.subproblems:
            raise InputError(f"{type(self).__name__} offers no subproblems (a loss in memory "
                             "has them)")
        return self.row_subset(rows, self.data.n / len(rows))

    def _check_factors(self):
        """Refuse :meth:`hessian_factors` without a diagonal row curvature or in-memory data."""
        if not self.diagonal_curvature:
            raise InputError(f"{type(self).__name__} has no diagonal row curvature (K x K blocks "
                             "per row): its Hessian has no HessianFactors form")
        if not self.data.in_memory:
            raise InputError("HessianFactors need the data in memory (not on a Dask cluster)")

    def _check_kind(self, kind):
        if kind not in ("full", "gauss_newton"):
            raise InputError(f"unknown Hessian kind {kind!r}; expected 'full' or 'gauss_newton'")
        return kind
