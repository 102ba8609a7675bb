"""Proximal Newton for a composite objective ``loss + sum_j w_j |x_j|`` (docs/math.md section 9).

Each step minimises the quadratic model plus the L1 term,
``q(d) = g^T d + 1/2 d^T H d + P(x + d) - P(x)``, by coordinate descent
(Lee, Sun & Saunders 2014; Yuan, Ho & Lin 2012, newGLMNET; Friedman, Hastie
& Tibshirani 2010, glmnet); the driver's line search then runs on the
composite objective. The model ``H`` is one of three forms:

==================  ===============================================================
``prox``            the exact Gram (n >> p): its block ``H_WW`` on a working set ``W``
                    (:mod:`._working_set`, sparse data) while its columns are few enough, else
                    the whole ``H`` (always for ``K x K`` row blocks or on Dask)
``prox_sketch``     the sketched Gram (n >> p, large p): rows sampled by leverage
``prox_cd``         matrix-free: coordinate descent on the data's CSC columns,
                    keeping the model's image ``A d`` (newGLMNET; wide data; the
                    multinomial loss too; :mod:`._proximal_cd`)
==================  ===============================================================

Shrinking (newGLMNET): a coordinate at zero whose gradient is inside
``(-w_j + M, w_j - M)``, ``M`` the largest violation of the previous outer
iterate, is left out of the inner solve; the step is then checked on every
coordinate (the model's subgradient of a left-out one must vanish), and solved
again on all of them when it does not. The inner tolerance is a forcing term
relative to the minimum-norm subgradient at ``x``.
"""

from dataclasses import dataclass
from collections.abc import Callable
from typing import ClassVar

import numpy as np

from .._auto import matrix_free_prox
from .._kernels.cd import class_shifts, gram_cd
from .._stopping import FORCING_MAX
from ..hessian import fix_invariances, spectral_error_level
from ..losses import L1Penalty, Loss, State
from ._base import Iterate, Step, Strategy, check_dense_model_fits
from ._direct import grow_sketch
from ._face import (RESTRICTED_MAX, _face, _psd_apply, _psd_factor, face_cycles, face_minimiser,
                    shift_null_space)
from ._working_set import WORKING_NNZ, WorkingSetGram, solve_on_working_set, working_set

__all__ = ["ProximalNewton", "SketchedProximalNewton",
           "ProxModel", "MAX_SWEEPS", "INNER_FORCING_MIN", "INNER_FORCING_STEP",
           "INNER_FORCING_STEP_DATA", "RESTRICTED_MAX", "SHIFT_ROUND_SWEEPS", "shift_groups",
           "shifted_gram_cd"]

#: coordinate-descent sweeps per inner solve at most
MAX_SWEEPS = 500
#: sweeps of coordinate descent on a dense model between two rounds of class-shift steps
SHIFT_ROUND_SWEEPS = 10
#: smallest inner forcing term (relative to the minimum-norm subgradient at ``x``) of a
#: confirmation (:meth:`ProximalNewton.decrement`)
INNER_FORCING_MIN = 1e-10
#: smallest inner forcing term of a step: coordinate descent only finds the face of the model's
#: minimiser, which :meth:`ProximalNewton._polish` solves exactly. Gram sweeps are cheap (1e-3); a
#: data sweep reads the columns (0.1: code corpus, p = 16,384: 1.34 s against 1.52 s with 1e-3)
INNER_FORCING_STEP = 1e-3
INNER_FORCING_STEP_DATA = 0.1
#: an inner solve's violation within this many times the norm of the gradient's rounding
#: error is at its rounding level
REACH_NOISE = 8.0
_EPS = np.finfo(float).eps
_TINY = np.finfo(float).tiny


@dataclass
class ProxModel:
    """What the driver reads of a composite model: its curvature restricted to the free
    coordinates ``F`` (the support of ``x`` and the unpenalised coordinates).

    On the face ``{x_j = 0, j not in F}`` with the signs of ``x`` fixed, the objective is
    smooth with Hessian ``H_FF``: :meth:`solve` is its inverse there (zero off ``F``).

    Attributes
    ----------
    kind : str
    spectral_error : float or None
        0 for an exact model, the sketch's level for a sampled Gram, None when ``H_FF`` is
        not formed (a matrix-free model on a support above ``RESTRICTED_MAX``).
    sketch_size : int
    scale : float or callable
        :attr:`curvature_scale`, or what computes it on first use (a working-set model has
        no ``diag(H)``: one sweep, only when the driver asks).
    free : ndarray of int
        ``F``.
    restrict : callable or None
        ``F -> H_FF`` (formed on the first :meth:`solve`); None: not formed.
    """

    kind: str
    spectral_error: float | None
    sketch_size: int
    scale: float | Callable[[], float]
    free: np.ndarray
    restrict: Callable[[np.ndarray], np.ndarray] | None
    null_vectors: np.ndarray | None = None
    _factor: tuple | None = None

    @property
    def curvature_scale(self) -> float:
        """The largest diagonal entry of ``H``."""
        if callable(self.scale):
            self.scale = float(self.scale())
        return self.scale

    @curvature_scale.setter
    def curvature_scale(self, value: float) -> None:
        self.scale = value

    def solve(self, g: np.ndarray) -> np.ndarray:
        """``H_FF^{+} g_F`` on ``F``, zero elsewhere (zero when ``H_FF`` is not formed)."""
        out = np.zeros_like(g, dtype=np.float64)
        F = self.free
        if F.size == 0 or self.restrict is None:
            return out
        if self._factor is None:
            self._factor = _psd_factor(self.restrict(F))
        out[F] = _psd_apply(self._factor, g[F])
        return out


class ProximalNewton(Strategy):
    """Proximal Newton with the exact Gram as the model (``"prox"``; see the module docstring).

    The step's decrement is ``-(g^T p + P(x + p) - P(x))`` (at least ``p^T H p`` for the
    model's minimiser), the line search's slope; the error estimate of ``x`` is the step's
    length ``||p|| / (1 - e)`` with the model built at ``x`` (docs/math.md 9.3).
    """

    name = "prox"
    handles_penalty = True
    #: the smallest forcing term of a step's inner solve
    forcing_min: ClassVar[float] = INNER_FORCING_STEP
    #: the exact Gram on a working set where the loss allows it (:mod:`._working_set`)
    working_sets: ClassVar[bool] = True
    #: whether the last inner solve reached its tolerance (else it stopped at ``MAX_SWEEPS``)
    reached: bool = True
    #: ``(state, ||dg||)``: the gradient's rounding error at the last iterate asked about
    _noise: tuple | None = None

    def __init__(self, loss: Loss, settings, rng, penalty: L1Penalty | None = None):
        super().__init__(loss, settings, rng, penalty)
        self.weights = (penalty.weights if penalty is not None else np.zeros(loss.n_params))
        self._margin = np.inf  # newGLMNET's shrinking threshold M
        self._at: State | None = None  # the state the model was built at
        self._step: Step | None = None  # the step at that state
        self._s0: float | None = None
        self.inner_sweeps = 0
        self._shift_columns = class_shift_columns(loss, self.weights)
        self._ridge = np.broadcast_to(np.asarray(loss.ridge, dtype=np.float64), (loss.n_params,))
        self._classes = loss.image_width if loss.softmax_curvature else 1  # K of a class shift
        self.face_max = RESTRICTED_MAX  # largest face whose H_FF is factorized
        # H_WW needs the Hessian's factors (in memory, one weight a row) and no invariance
        self._gram_ws: WorkingSetGram | None = None
        self._ws = (self.working_sets and loss.diagonal_curvature and loss.data.in_memory
                    and tuple(loss.hessian_kinds) == ("full",) and self.builder.null_space is None)

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        free = matrix_free_prox(loss)
        check_dense_model_fits(loss, cls.name, "use method='prox_cd' (no p x p matrix)" if free
                               else "an L1 penalty here needs a dense p x p model (p: features "
                               "x classes if multinomial); use fewer features, or l1_ratio=0")

    # -- the model ------------------------------------------------------------------------------
    def update(self, it: Iterate, contraction: float | None) -> None:
        if self._at is not it.state:
            self._adapt(it, contraction)
            self._build(it)
            self._at, self._step = it.state, None
        self.fresh = True

    def _adapt(self, it: Iterate, contraction: float | None) -> None:
        """Between models (the sketched form doubles its sketch on poor progress)."""

    def _build(self, it: Iterate) -> None:
        kind = self.loss.hessian_kinds[-1]
        W = working_set(it.x, it.grad, self.weights) if self._ws else None
        if W is not None and self._nnz_share(it, kind, W) <= WORKING_NNZ:
            gram = self._gram_ws = WorkingSetGram(self.builder, it.state, kind, W)
            state, loss = it.state, self.loss
            self.model = ProxModel(kind, 0.0, 0,
                                   lambda: float(loss.hessian_diagonal(state, kind).max()),
                                   self._free(it.x), gram.block)
            return
        self._gram_ws = None
        H, rows = self._gram(it, kind)
        self._H = H
        diag = np.diag(H)
        free = self._free(it.x)
        e = spectral_error_level(H.shape[0], rows)
        self.model = ProxModel(kind, e, rows, float(diag.max()) if diag.size else 0.0, free,
                               self._restricted)

    def _gram(self, it: Iterate, kind: str) -> tuple[np.ndarray, int]:
        return self.builder.exact(it.state, kind)

    def _nnz_share(self, it: Iterate, kind: str, W: np.ndarray) -> float:
        """The share of the non-zeros of ``A`` in the columns ``W`` (1 for dense ``A``: its
        working set's Gram would copy ``n |W|`` entries, where the whole Gram is one SYRK)."""
        A = self.loss.hessian_factors(it.state, kind).A
        if not A.is_sparse:
            return 1.0
        counts = self.builder.column_counts(A)[0]
        return float(counts[W].sum()) / max(float(counts.sum()), 1.0)

    def _free(self, x: np.ndarray) -> np.ndarray:
        return np.flatnonzero((x != 0) | (self.weights == 0))

    # -- the step -------------------------------------------------------------------------------
    def step(self, it: Iterate, forcing_floor: float = 0.0) -> Step:
        if self._step is None or self._at is not it.state:
            if self._at is not it.state:
                self.update(it, None)
            s = self._subgradient_norm(it)
            if self._s0 is None:
                self._s0 = max(s, np.finfo(float).tiny)
            eta = min(FORCING_MAX, np.sqrt(s / self._s0))
            eta = max(eta, forcing_floor, self.forcing_min)
            self._step = self._timed(self._solve, it, eta)
        return self._step

    def estimate(self, it: Iterate) -> float:
        """``||p|| / (1 - e)`` of the step at ``it`` (docs/math.md 9.3); ``inf`` while the model
        was built at an earlier iterate (the estimate needs the model at ``x``)."""
        if self.model is None or self._at is not it.state:
            return np.inf
        if self.model.spectral_error is None:  # the step's own estimate (9.3)
            return it.error_estimate
        p = self.step(it).direction
        return float(np.linalg.norm(p)) / (1.0 - self.model.spectral_error)

    def decrement(self, it: Iterate, target: float) -> float:
        """The decrement of the model's minimiser at ``it`` over every coordinate, solved to
        ``INNER_FORCING_MIN`` (the step the rule judges may have been inexact)."""
        if self._at is not it.state:
            self.update(it, None)
        certified = self._gap_certifies(it, target)
        if certified is not None:
            return certified
        step = self._timed(self._solve, it, INNER_FORCING_MIN)
        self._step = step
        # a solve that stopped short of its tolerance (MAX_SWEEPS) underestimates the decrement
        # by an unknown amount: it cannot confirm a target
        return step.decrement if np.isfinite(step.missing) else np.inf

    def _reached(self, viol: float, tol: float, it: Iterate) -> bool:
        """Whether an inner solve whose last full sweep left the violation ``viol`` reached
        ``tol``, or the rounding level of the model's gradient, ``REACH_NOISE ||dg||`` with
        ``dg`` the loss gradient's rounding error (docs/math.md 7.3; one sweep, once per
        iterate): near the minimiser ``1e-10`` of a subgradient already at ``1e-12`` is below
        what the sweeps can resolve."""
        return viol <= tol or viol <= REACH_NOISE * self._rounding(it)

    def _rounding(self, it: Iterate) -> float:
        """``||dg||`` at ``it`` (docs/math.md 7.3; one sweep, once per iterate)."""
        if self._noise is None or self._noise[0] is not it.state:
            self._noise = (it.state, float(np.linalg.norm(self.loss.gradient_noise(it.state))))
        return self._noise[1]

    def _gap_certifies(self, it: Iterate, target: float) -> float | None:
        """``2 G`` when a bound ``G >= F(x) - F*`` is at most half the ``target`` (the decrement
        rule's test ``delta / 2 <= tol |f|`` then holds for a bound, where ``delta / 2`` is an
        estimate); else None. ``G``: the loss's duality gap (no pass), or ``(||s|| + ||dg||)^2
        / (2 mu)`` when a ridge ``mu > 0`` on every coordinate makes ``F`` ``mu``-strongly
        convex (a convex loss; ``s`` the minimum-norm subgradient, ``dg`` its rounding;
        docs/math.md 9.3)."""
        gap = 2.0 * self.loss.duality_gap(it.state, self.weights)
        convex = tuple(self.loss.hessian_kinds) == ("full",)
        mu = float(np.min(self._ridge)) if convex else 0.0
        if gap > target and mu > 0 and self._subgradient_norm(it) ** 2 <= mu * target:
            gap = (self._subgradient_norm(it) + self._rounding(it)) ** 2 / mu
        return gap if gap <= target else None

    def fallback_step(self, it: Iterate) -> Step:
        """The proximal gradient step with step size ``1 / curvature_scale``."""
        c = self.model.curvature_scale if self.model is not None else np.nan
        t = 1.0 / c if np.isfinite(c) and c > 0 else 1.0 / max(float(np.abs(it.grad).max()), 1.0)
        x = it.x
        p = _soft(x - t * it.grad, t * self.weights) - x
        return Step(p, decrement=-self._change(it, p), accuracy=1.0, missing=np.inf)

    def _change(self, it: Iterate, p: np.ndarray) -> float:
        """``g^T p + P(x + p) - P(x)``."""
        w, x = self.weights, it.x
        return float(it.grad @ p) + float(w @ (np.abs(x + p) - np.abs(x)))

    def _subgradient_norm(self, it: Iterate) -> float:
        return float(np.linalg.norm(_min_norm_subgradient(it.x, it.grad, self.weights)))

    def _solve(self, it: Iterate, eta: float) -> Step:
        """The model's minimiser to the relative tolerance ``eta``: coordinate descent on the
        working set, checked on every coordinate (solved again on all of them when a left-out
        one is not optimal for the model), then made exact on its face (:meth:`_polish`)."""
        x, g, w = it.x, it.grad, self.weights
        viol = _min_norm_subgradient(x, g, w)
        tol = eta * float(np.linalg.norm(viol))
        if self._gram_ws is not None:
            q, image, sweeps, exact, left = solve_on_working_set(
                self.loss, self._gram_ws, x, g, w, tol, MAX_SWEEPS, _face)
            return self._step_of(it, eta, q, image, sweeps, exact, self._reached(left, tol, it))
        shrink = (x == 0) & (w > 0) & (np.abs(g) < w - self._margin)
        self._margin = float(np.abs(viol).max()) if viol.size else 0.0
        p, image = self._inner(it, np.flatnonzero(~shrink), tol)
        Hp = self._product(p, image)
        if shrink.any():
            G = g[shrink] + Hp[shrink]
            if np.any(np.abs(G) > w[shrink] * (1 + 1e-12)):
                p, image = self._inner(it, np.arange(x.size), tol)
                Hp = self._product(p, image)
        polished = self._polish(it, p, Hp)
        exact = polished is not None
        if exact:
            p, image = polished
        elif not self.reached:  # coordinate descent stopped at MAX_SWEEPS
            cycled = self._cycle_faces(it, p, Hp, tol)
            if cycled is not None:
                (p, exact), image = cycled, None
        return self._step_of(it, eta, p, image, self._last_sweeps, exact)

    def _cycle_faces(self, it: Iterate, p: np.ndarray, Hp: np.ndarray,
                     tol: float) -> tuple[np.ndarray, bool] | None:
        """:func:`face_cycles` on the dense model from a stalled coordinate descent's ``p``:
        ``(p, exact)``."""
        d, Hd = p.copy(), Hp.copy()
        exact = face_cycles(self._H, it.grad, self.weights, it.x, d, Hd, tol)
        return d, exact

    def _step_of(self, it: Iterate, eta: float, p, image, sweeps: int, exact: bool,
                 reached: bool | None = None) -> Step:
        """The :class:`Step` of ``p`` (``exact``: the model's minimiser by the face solve;
        ``reached``: the inner solve met its tolerance, by default :attr:`reached`). Its
        decrement misses nothing when it is exact or solved to ``INNER_FORCING_MIN``."""
        if self._gram_ws is not None:
            self._last_sweeps = sweeps
            self.inner_sweeps += sweeps
        reached = self.reached if reached is None else reached
        if self._shift_columns is not None:
            p, image = self._centre_columns(it, p, image)
        return Step(p, image=image, decrement=-self._change(it, p), inner_iterations=sweeps,
                    error_estimate=float(np.linalg.norm(p)), accuracy=0.0 if exact else eta,
                    missing=0.0 if exact or (eta <= INNER_FORCING_MIN and reached) else np.inf)

    def _centre_columns(self, it: Iterate, p: np.ndarray, image):
        """``x + p`` moved along the class shifts of the columns in ``_shift_columns`` to the
        median of each column's ``K`` coefficients: the multinomial loss is invariant along a
        column's class shift (without a ridge), so the loss, its gradient and the logits modulo
        a row constant stay, and the L1 term drops to its minimum along it (docs/math.md 9.2).
        The model's Hessian is zero there, so neither coordinate descent's single coordinates
        nor a face solve moves along it: a fit on 3 classes at C = 1e4 stopped 1.6e-7 above the
        minimum, all of it this shift. ``(p, image)``; the image gains ``A`` of the shift."""
        cols = self._shift_columns
        K = self.loss.image_width
        Z = (it.x + p).reshape(K, -1)[:, cols]
        shift = -np.median(Z, axis=0)
        if not np.any(shift):
            return p, image
        D = np.zeros((K, p.size // K))
        D[:, cols] = shift
        delta = D.ravel()
        if image is not None:
            image = image + self.loss.image(delta)
        return p + delta, image

    def _polish(self, it: Iterate, p: np.ndarray, Hp: np.ndarray, face_max: int | None = None):
        """The model's exact minimiser by face solves from ``p`` (:func:`face_minimiser`), when
        the face of ``x + p`` leads to it: ``(p, A p or None)``, else None (also when the face
        is empty or has more than ``face_max`` coordinates, by default :attr:`face_max`).

        On the face the model is a quadratic in the free coordinates ``F``:
        ``H_FF dp_F = -(g + H p + w sign(x + p))_F``. The result is the minimiser of the whole
        model when the signs on ``F`` hold, the face's equation is solved (a singular ``H_FF``
        whose null space the right-hand side meets: the model falls along it to a smaller
        face) and every other coordinate's model gradient is within ``[-w_j, w_j]``
        (docs/math.md 9.2).
        """
        x, g, w = it.x, it.grad, self.weights
        cap = self.face_max if face_max is None else face_max
        if not np.any((x + p != 0) | (w == 0)):
            return None
        images = [None]

        def apply(q, dq, Hq):
            images[0] = self._image(dq, it)
            return self._product(q, images[0], dp=dq, Hp=Hq)

        found = face_minimiser(x, g, w, p, Hp, self._face_matrix, apply, cap, self._restricted_null)
        return None if found is None else (found[0], images[0])

    # -- the model's products (dense Gram; the matrix-free form overrides them) ------------------
    def _inner(self, it: Iterate, work: np.ndarray, tol: float):
        """``(p, A p or None)`` by coordinate descent on ``work`` (:func:`shifted_gram_cd`: the
        multinomial loss's class shifts stepped too)."""
        H, p = self._H, np.zeros(it.x.size)
        Hp = np.zeros(it.x.size)
        groups = shift_groups(work, self._classes, self.weights, self._ridge)
        sweeps, viol = shifted_gram_cd(H, it.grad, self.weights, it.x, self._ridge,
                                       work.astype(np.int64), groups, p, Hp, tol, MAX_SWEEPS)
        self.reached = self._reached(viol, tol, it)
        self._last_sweeps = int(sweeps)
        self.inner_sweeps += int(sweeps)
        return p, None

    def _product(self, p, image, dp=None, Hp=None) -> np.ndarray:
        """``H p`` (``H dp + Hp`` when given: an update)."""
        if dp is None:
            nz = np.flatnonzero(p)
            return self._H[:, nz] @ p[nz]
        nz = np.flatnonzero(dp)
        return Hp + self._H[:, nz] @ dp[nz]

    def _image(self, dp, it):
        """The image of the step after ``dp`` is added (None: the line search computes it)."""
        return None

    def _restricted(self, free: np.ndarray) -> np.ndarray:
        return self._H[np.ix_(free, free)]

    def _restricted_null(self, free: np.ndarray) -> np.ndarray | None:
        """The null directions of ``H_FF`` known exactly (orthonormal, disjoint supports; or
        None): the loss's invariances, made definite in ``H`` (``fix_invariances``), and the
        class shifts of the columns whose ``K`` coordinates are all in ``F``
        (:func:`shift_null_space`)."""
        return shift_null_space(free, self._classes, self._ridge, self.builder.null_space)

    def _face_matrix(self, free: np.ndarray) -> np.ndarray:
        """``H_FF`` for a face solve: :meth:`_restricted` made definite along the class shifts
        of :meth:`_restricted_null` too (Cholesky, not a pseudo-inverse; the face solve follows
        them by :func:`face_minimiser`'s null steps)."""
        HF = self._restricted(free)
        known = self._restricted_null(free)
        N = self.builder.null_space
        shifts = known if N is None or known is None else known[:, N.shape[1]:]
        return HF if shifts is None or not shifts.shape[1] else fix_invariances(HF, shifts)


class SketchedProximalNewton(ProximalNewton):
    """Proximal Newton with the sketched Gram (``"prox_sketch"``): rows sampled by leverage
    scores (the paper's regime, n >> p with large p); the sketch doubles while the observed
    contraction is slower than ``SKETCH_TARGET_RATE`` (as method ``"sketch"``)."""

    name = "prox_sketch"
    uses_sketch = True
    working_sets = False

    def _adapt(self, it: Iterate, contraction: float | None) -> None:
        grow_sketch(self, it, contraction)

    def _gram(self, it: Iterate, kind: str) -> tuple[np.ndarray, int]:
        return self.builder.sketched(it.state, kind)


def class_shift_columns(loss: Loss, weights: np.ndarray) -> np.ndarray | None:
    """Columns ``j`` along whose class shift ``1_K (x) e_j`` the loss is invariant (the softmax
    of ``K > 1`` classes, no ridge on the column) and the L1 weights are positive and equal
    across the classes, so the L1 term is minimised there by the coefficients' median; None
    when there are none."""
    K = loss.image_width
    if K < 2 or not loss.softmax_curvature or weights.size != loss.n_params:
        return None
    W, R = weights.reshape(K, -1), np.asarray(loss.ridge).reshape(K, -1)
    cols = np.flatnonzero(np.all(W > 0, axis=0) & np.all(W == W[:1], axis=0)
                          & np.all(R == 0, axis=0))
    return cols if cols.size else None


def shift_groups(coords: np.ndarray, K: int, weights: np.ndarray, ridge: np.ndarray,
                 skip: int = -1) -> np.ndarray:
    """``(m, K)``: the ``K`` coordinates (class by class; ``x.reshape(K, -1)`` flattened) of
    each column, other than ``skip``, whose coordinates are all in ``coords`` and that has an
    L1 weight or a ridge (the intercepts' shift is the loss's invariance); ``(0, K)`` for one
    class (docs/math.md 9.2, "Class shifts in coordinate descent")."""
    if K < 2:
        return np.zeros((0, K), dtype=np.int64)
    dc = weights.size // K
    full = np.bincount(coords % dc, minlength=dc) == K
    if skip >= 0:
        full[skip] = False
    W, L = weights.reshape(K, dc), ridge.reshape(K, dc)
    J = np.flatnonzero(full & (np.any(W > 0, axis=0) | np.any(L > 0, axis=0)))
    return (np.arange(K)[None, :] * dc + J[:, None]).astype(np.int64)


def shifted_gram_cd(H: np.ndarray, g: np.ndarray, w: np.ndarray, x: np.ndarray,
                    lam: np.ndarray, work: np.ndarray, groups: np.ndarray, d: np.ndarray,
                    Hd: np.ndarray, tol: float, budget: int) -> tuple[int, float]:
    """:func:`gram_cd` on a dense ``H`` over ``work``, every ``SHIFT_ROUND_SWEEPS`` sweeps
    followed by the class-shift steps of :func:`class_shifts` on the rows of ``groups`` (all
    in ``work``; ``lam``: ``H``'s curvature along them per coordinate, the ridge): the softmax
    model is flat along a column's class shift but for its ridge, which coordinate descent
    does not follow. ``d`` and ``Hd`` updated in place; ``(sweeps, violation of the last full
    sweep)``."""
    sweeps, viol = 0, np.inf
    while sweeps < budget:
        chunk = budget - sweeps if groups.size == 0 else min(SHIFT_ROUND_SWEEPS, budget - sweeps)
        done, viol = gram_cd(H, g, w, x, work, d, Hd, tol, chunk)
        sweeps += int(done)
        if groups.size == 0 or viol <= tol:
            break
        before = d[groups]
        class_shifts(g[groups] + Hd[groups], lam[groups], w[groups], x, d, groups)
        change = (d[groups] - before).ravel()
        on = np.flatnonzero(change)
        Hd += H[:, groups.ravel()[on]] @ change[on]
    return sweeps, float(viol)


def _soft(v: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def _min_norm_subgradient(x: np.ndarray, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    return L1Penalty(w).subgradient(x, g)
