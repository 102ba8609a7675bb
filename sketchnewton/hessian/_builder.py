"""Builds the model of a loss's Hessian that a Newton method needs (exact, sketched,
matrix-free preconditioner, or dual)."""

import time

import numpy as np

from ..exceptions import InputError
from ..sketch import SketchSettings, block_leverage_raw, draw_row_samplers
from ._dense import HessianModel, factorize, factorize_psd, fix_invariances
from ._invariance import decreases_along
from ._dual import DualModel
from ._kron import kronecker_model
from ._precond import DiagonalModel, IdentityModel, nystrom_model
from ._restricted import column_counts, restricted_gram

__all__ = ["ModelBuilder", "SKETCHES", "ROW_SAMPLERS", "PRECONDITIONERS"]

SKETCHES = ("leverage", "uniform", "countsketch", "srht", "gaussian")
#: sketches that keep whole rows: they work on row blocks and for every loss
ROW_SAMPLERS = ("leverage", "uniform")
#: matrix-free preconditioners of method "cg"
PRECONDITIONERS = ("diagonal", "nystrom", "kronecker", "none")
#: first rank of the Nystrom preconditioner; it doubles while CG stays slow
NYSTROM_RANK = 32
#: a sketched model with eigenvalues below this share of its largest has those directions
#: checked against the Hessian (one block product): sampling noise may have lifted an exact
#: invariance of the loss
NULL_CHECK = 1e-8
#: most of a sampled model's weakest directions checked against the Hessian: invariances are
#: few (the softmax shift: one per constant combination of columns), while data with many
#: saturated rows (network-intrusion records) left hundreds of weak directions, whose block
#: product (n K r numbers for the multinomial loss) took 34 s and 7 GB at n = 1e5, r = 585
NULL_CHECK_MAX = 8
#: curvature of the Hessian along such a direction taken as none, in units of ``p eps`` of the
#: model's largest (the exact model's threshold, times the rounding of a Hessian product:
#: 1.1 along the softmax shift; badly scaled columns of real curvature 1e-13: 65)
NULL_CURVATURE = 16.0


class ModelBuilder:
    """Builds the model matrix of a loss's Hessian: exact or sketched.

    Parameters
    ----------
    loss : Loss
    sketch : {"exact", "leverage", "uniform", "countsketch", "srht", "gaussian"}
    sketch_size : int
    random_state : numpy Generator

    Leverage quantities ``h_i = a_i^T (A^T D_0 A)^+ a_i`` are computed once,
    for the curvature weights ``D_0`` of the first sketched model, and reused:
    sampling probabilities are ``~ D_i h_i`` with the current weights, which
    sampling needs only up to a constant factor (docs/math.md section 5.4).
    :meth:`refresh` forces new ones (the driver calls it when CG slows down).
    """

    def __init__(self, loss, sketch, sketch_size, random_state, rank=None, fixed=None):
        if sketch != "exact" and sketch not in SKETCHES:
            raise InputError(f"unknown sketch {sketch!r}; expected one of {SKETCHES}")
        if sketch not in ROW_SAMPLERS + ("exact",):
            if not loss.gauss_newton_root:
                raise InputError(f"sketch {sketch!r} needs a square-root factor of the Hessian, "
                                 f"which this loss does not offer; use one of {ROW_SAMPLERS}")
            if not loss.data.in_memory:
                raise InputError(f"sketch {sketch!r} has no distributed implementation; use one "
                                 f"of {ROW_SAMPLERS} with dask inputs")
        self.loss = loss
        #: the exact invariances the models fix: the loss's, those moving no coordinate of the
        #: mask ``fixed`` (a composite objective's penalised coordinates: ``|.|`` is not
        #: shift invariant)
        self.null_space = loss.null_space(fixed)
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.rng = random_state
        self._raw = None
        self._outer_gram = None
        self._store = None  # the columns of the last working set (restricted)
        self._counts = None
        self.rank = NYSTROM_RANK if rank is None else int(rank)
        self.timings = {"leverage": 0.0, "sketch": 0.0, "gram": 0.0, "factorization": 0.0}

    def refresh(self):
        """Forget the leverage quantities: the next sketched model computes new ones."""
        self._raw = None

    def exact(self, state, kind):
        """The loss's exact Hessian (``kind``) with its invariances fixed."""
        t0 = time.perf_counter()
        H = self.loss.hessian(state, kind)
        self.timings["gram"] += time.perf_counter() - t0
        return fix_invariances(H, self.null_space), 0

    def restricted(self, state, kind, cols):
        """``H_WW``: the exact Hessian on the coordinates ``cols`` (sorted), without forming
        ``H`` (:func:`restricted_gram`; in memory, a loss with a diagonal row curvature, no
        invariance to fix). The columns it reads are kept for the next working set."""
        t0 = time.perf_counter()
        factors = self.loss.hessian_factors(state, kind)
        H, self._store, read = restricted_gram(factors, cols, self._store,
                                               self.column_counts(factors.A)[0])
        self.loss.data.count_sweeps(read)
        self.timings["gram"] += time.perf_counter() - t0
        return H

    def column_counts(self, A):
        """``(non-zeros, squared norms)`` per column of the loss's in-memory ``A`` (counted
        once)."""
        if self._counts is None:
            self._counts = column_counts(A)
            self.loss.data.count_sweeps(1)
        return self._counts

    def column_bounds(self, state, kind):
        """``b`` (p,) with ``|(H v)_j| <= b_j sqrt(v^T H v)`` for every ``v`` with ``v_j = 0``,
        or None: for ``H = A^T diag(D) A + diag(ridge)``, ``D >= 0``, Cauchy-Schwarz in the
        metric ``D`` gives ``b_j = sqrt(max(D) ||a_j||^2)`` (no sweep after the first)."""
        factors = self.loss.hessian_factors(state, kind)
        if factors.K.shape[1] or not np.all(factors.diag >= 0):
            return None
        return np.sqrt(float(factors.diag.max(initial=0.0)) * self.column_counts(factors.A)[1])

    def sketched(self, state, kind):
        """Sketched model of the ``kind`` Hessian ('full' needs a row sampler); ``(H~, rows)``."""
        loss, blocks = self.loss, self.loss.data
        s = min(self.sketch_size, blocks.n)
        t0 = time.perf_counter()
        if self.sketch not in ROW_SAMPLERS:
            return self._oblivious(state, kind, s, t0)
        weights = loss.sampling_weights(state)
        if self.sketch == "leverage" and self._raw is None:
            t1 = time.perf_counter()
            self._raw = block_leverage_raw(blocks, weights, self.rng)
            self.timings["leverage"] += time.perf_counter() - t1
            t0 += time.perf_counter() - t1  # disjoint timers
        raw = self._raw if self.sketch == "leverage" else None
        samples = draw_row_samplers(blocks, weights, raw, s, self.rng, kind=self.sketch)
        t1 = time.perf_counter()
        self.timings["sketch"] += t1 - t0
        H, rows = loss.sampled_hessian(state, samples, kind)
        self.timings["gram"] += time.perf_counter() - t1
        return fix_invariances(H, self.null_space), rows

    def _oblivious(self, state, kind, s, t0):
        """An oblivious sketch (CountSketch, SRHT, Gaussian) of the loss's Gauss-Newton factor:
        ``(S J)^T (S J) + A^T diag(w^2) A + diag(ridge)`` (in memory)."""
        if kind != "gauss_newton":
            raise InputError("a sketched full Hessian needs a row sampler")
        blocks = self.loss.data
        if self.sketch == "srht":
            s = min(s, 1 << max(0, int(np.ceil(np.log2(blocks.n)))))
        S = SketchSettings(self.sketch, s).draw(self.rng, n=blocks.n)
        t1 = time.perf_counter()
        self.timings["sketch"] += t1 - t0
        factors = self.loss.hessian_factors(state, "gauss_newton")
        root = factors.root
        H = S.gram(factors.A, row_scale=root.row_scale, shift=(root.shift, root.k),
                   extra_diag=root.extra_diag)
        blocks.count_sweeps(1 + (root.extra_diag is not None))  # every row (twice with w)
        H[np.diag_indices_from(H)] += factors.lam
        self.timings["gram"] += time.perf_counter() - t1
        return fix_invariances(H, self.null_space), S.shape[0]

    def factorized(self, state, sketched):
        """The factorized dense model at ``state``: the exact (``sketched`` False) or sketched
        Hessian of the first of the loss's kinds that is positive definite, else the
        pseudo-inverse or damped model of the last kind (:func:`factorize_psd`). A sketched
        model's nearly null directions are checked against the Hessian
        (:meth:`_exact_null_directions`)."""
        kinds = list(self.loss.hessian_kinds)
        if sketched and self.sketch not in ROW_SAMPLERS:
            kinds = kinds[-1:]  # oblivious sketches: the Gauss-Newton factor
        model = None
        for kind in kinds:
            H, s = self.sketched(state, kind) if sketched else self.exact(state, kind)
            t0 = time.perf_counter()
            model = factorize(H, kind, s)
            if model is None and kind == kinds[-1]:
                model = factorize_psd(H, kind, s)
            self.timings["factorization"] += time.perf_counter() - t0
            if model is not None:
                break
        if sketched and model is not None and model.cho is not None:
            model = self._exact_null_directions(state, model)
        return model

    def _exact_null_directions(self, state, model):
        """Exact invariances of the Hessian that sampling lifted (docs/math.md 5.6).

        A direction the Hessian does not curve at all (the softmax link's shift when a
        combination of columns is constant) has, in a sampled model, the small curvature of
        the sampling noise, which Cholesky accepts; the model's inverse then blows the
        gradient's rounding error up along it (a floor of 2.6e-6 where the exact model's is
        1e-15). When the model is that ill-conditioned (``NULL_CHECK``), its weakest
        directions (at most ``NULL_CHECK_MAX``) are checked with one block product of the
        Hessian; those with no curvature at the rounding level, along which the loss does not
        change either, become null directions of a pseudo-inverse model.
        """
        pivots = np.abs(np.diag(model.cho[0])) ** 2  # a condition estimate at no cost
        if pivots.min() >= NULL_CHECK * pivots.max():
            return model
        values, V = np.linalg.eigh(model.matrix)
        top = max(float(values[-1]), np.finfo(float).tiny)
        weak = np.flatnonzero(values < NULL_CHECK * top)[:NULL_CHECK_MAX]
        if weak.size == 0:
            return model
        loss = self.loss
        HV = loss.hessian_matmat(state, V[:, weak], loss.hessian_kinds[0])
        curvature = np.abs(np.einsum("ij,ij->j", V[:, weak], HV))
        # the exact model's own rule (factorize_psd): curvature below p eps of the largest is
        # none; a Hessian product measures it to a few times that (the shift: 1.1 p eps)
        null = weak[curvature <= NULL_CURVATURE * V.shape[0] * np.finfo(float).eps * top]
        g = state.grad
        # besides its noise, the loss may fall by what the model predicts at x (as at the
        # certification of a success: x is a minimiser only to within the step)
        if null.size == 0 or decreases_along(loss, state, V[:, null],
                                             slack=abs(float(g @ model.solve(g)))):
            return model  # real (if tiny) curvature, or an asymptote: no invariance
        inv = 1.0 / np.maximum(values, np.finfo(float).tiny)
        inv[null] = 0.0
        return HessianModel(model.matrix, model.kind, eig=(V, inv), sketch_size=model.sketch_size,
                            null_vectors=V[:, null])

    # -- matrix-free preconditioners and the dual form -------------------------------------------
    def _preconditioner_kind(self):
        # the Gauss-Newton diagonal is never negative: a safe scaling even where the full
        # Hessian is indefinite (the products CG uses stay exact)
        return self.loss.hessian_kinds[-1]

    def diagonal(self, state):
        """:class:`DiagonalModel` of the Hessian's diagonal (per-feature blocks, multinomial)."""
        t0 = time.perf_counter()
        kind = self._preconditioner_kind()
        model = DiagonalModel(self.loss.hessian_diagonal(state, kind), kind, self.null_space)
        self.timings["gram"] += time.perf_counter() - t0
        return model

    def nystrom(self, state):
        """:class:`NystromModel` of rank ``self.rank`` of the Jacobi-scaled Hessian."""
        t0 = time.perf_counter()
        kind = self._preconditioner_kind()
        loss = self.loss
        model = nystrom_model(lambda V: loss.hessian_matmat(state, V, kind),
                              loss.hessian_diagonal(state, kind), self.rank, self.rng, kind,
                              self.null_space)
        self.timings["gram"] += time.perf_counter() - t0
        return model

    def kronecker(self, state):
        """:class:`~sketchnewton.hessian._kron.KroneckerModel` ``S (x) G + lam I`` of the
        multinomial Hessian (docs/math.md 8.7): both factors from ``sketch_size`` rows sampled
        uniformly among those with curvature (reweighted), from every row when that many or
        fewer exist."""
        loss = self.loss
        if not loss.kronecker_curvature:
            raise InputError("the Kronecker-factored preconditioner needs the multinomial loss "
                             "(K x K row curvature blocks)")
        t0 = time.perf_counter()
        s = min(self.sketch_size, loss.data.n)
        samples = None
        if s < loss.data.n:
            samples = draw_row_samplers(loss.data, loss.sampling_weights(state), None, s,
                                        self.rng, kind="uniform")
        t1 = time.perf_counter()
        self.timings["sketch"] += t1 - t0
        G, S = loss.kronecker_factors(state, samples)
        t2 = time.perf_counter()
        self.timings["gram"] += t2 - t1
        model = kronecker_model(G, S, float(np.max(loss.ridge, initial=0.0)),
                                self._preconditioner_kind(), loss.null_space(),
                                s if samples is not None else 0)
        self.timings["factorization"] += time.perf_counter() - t2
        return model

    def identity(self, state):
        """No preconditioning (plain Newton-CG)."""
        return IdentityModel(self._preconditioner_kind(), self.null_space)

    def dual(self, state, kind=None):
        """:class:`DualModel` of ``kind``, or of the first of the loss's kinds whose (n x n)
        dual system is regular: the exact Hessian inverse (the Gauss-Newton one when the full
        system is singular)."""
        for kind in (kind,) if kind is not None else self.loss.hessian_kinds:
            try:
                return self._dual(state, kind)
            except np.linalg.LinAlgError:
                continue
        raise np.linalg.LinAlgError("the dual Newton system is singular")

    def _dual(self, state, kind):
        loss, blocks = self.loss, self.loss.data
        if not (loss.diagonal_curvature and blocks.in_memory):
            raise InputError("method 'dual' needs in-memory data and a loss with a diagonal "
                             "row curvature (not the multinomial loss)")
        t0 = time.perf_counter()
        factors = loss.hessian_factors(state, kind)
        base = blocks.block.leverage_matrix
        if self._outer_gram is None:
            self._outer_gram = base.outer_gram()
            blocks.count_sweeps(1)
        model = DualModel(base, self._outer_gram, factors, kind, blocks.count_sweeps)
        self.timings["factorization"] += time.perf_counter() - t0
        return model
