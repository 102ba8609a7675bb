"""Proximal Newton's working-set model: the exact Gram on the coordinates that can move
(docs/math.md 9.2, "The working set").

At ``x`` the working set ``W`` holds the free coordinates (non-zero or unpenalised) and those
at zero whose gradient is at least ``WORKING_SHARE`` of their L1 weight (skglm, celer and
newGLMNET restrict their inner solves in the same spirit). The model is ``H_WW``, made in one
sweep without ``H`` (:meth:`~sketchnewton.hessian.ModelBuilder.restricted`): a step costs
``O(nnz(A) + sum_i nnz_{i,W}^2)`` instead of the whole Gram's ``O(sum_i nnz_i^2)``.
The step is the model's minimiser on ``W`` (coordinate descent, then the face solve), checked
on every other coordinate (the model's subgradient of a coordinate at zero outside ``W`` must
vanish: ``|g_j + (H q)_j| <= w_j``): first by the bound ``|(H q)_j| <= sqrt(max(D) ||a_j||^2)
sqrt(q^T H q)`` (Cauchy-Schwarz in the metric ``D`` of ``H = A^T diag(D) A + diag(ridge)``;
no pass), else by one fused product ``(H q, A q)`` (``A q`` is then the line search's image).
A violator joins ``W`` and the model is solved again (from the last step), so the step is the
minimiser of the whole model, as with the full Gram.
"""

import numpy as np

from .._kernels.cd import gram_cd
from ..losses import Loss, State

__all__ = ["WorkingSetGram", "working_set", "solve_on_working_set", "violators",
           "WORKING_SHARE", "WORKING_NNZ"]

#: a coordinate at zero joins the working set when its gradient is at least this share of its
#: L1 weight (a violator's is above 1); the others enter only if the check finds them. 0.9:
#: on a9a and w8a at 1% and 10% non-zeros no other coordinate entered after the first iterate
#: (0.5 made the working sets 2-5 times larger)
WORKING_SHARE = 0.9
#: the working set's Gram is made while its columns hold at most this share of the non-zeros
#: of ``A``: the most frequent columns carry most of them (a9a: 12 of 123 columns hold half,
#: 50 hold 90%), and the Gram costs their square; beyond it the whole Gram (its products need
#: no pass) is cheaper
WORKING_NNZ = 0.7


def working_set(x: np.ndarray, g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``W`` at ``x`` (sorted): free coordinates, and those at zero with
    ``|g_j| >= WORKING_SHARE w_j``."""
    return np.flatnonzero((x != 0) | (w == 0) | (np.abs(g) >= WORKING_SHARE * w))


def violators(g: np.ndarray, Hq: np.ndarray, w: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The coordinates of the mask ``out`` (at zero, off the face) whose model gradient
    ``g + H q`` leaves ``[-w, w]`` by more than rounding: where ``q`` does not minimise the
    whole model."""
    slack = 1e-9 * np.maximum(w[out], np.finfo(float).tiny) + 1e-12 * np.abs(g[out])
    return np.flatnonzero(out)[np.abs(g[out] + Hq[out]) > w[out] + slack]


class WorkingSetGram:
    """``H_WW`` at one state; ``W`` grows on demand (the Gram made again on the union).

    Attributes
    ----------
    cols : ndarray of int (m,)
        ``W``, sorted.
    pos : ndarray of int (p,)
        A coordinate's place in ``W`` (-1: not in ``W``).
    H : ndarray (m, m)
    """

    def __init__(self, builder, state: State, kind: str, cols: np.ndarray):
        self.builder, self.state, self.kind = builder, state, kind
        #: ``|(H v)_j| <= bounds_j sqrt(v^T H v)`` for ``v`` zero at ``j`` (or None)
        self.bounds = builder.column_bounds(state, kind)
        self.pos = np.full(state.x.size, -1, dtype=np.int64)
        self.cols = np.empty(0, dtype=np.int64)
        self.H = np.zeros((0, 0))
        self.extend(cols, first=True)

    def extend(self, cols: np.ndarray, first: bool = False) -> None:
        """``W <- W + cols`` (nothing to do when ``cols`` is already in ``W``)."""
        new = cols[self.pos[cols] < 0]
        if new.size == 0 and not first:
            return
        W = np.union1d(self.cols, new).astype(np.int64)
        self.H = self.builder.restricted(self.state, self.kind, W)
        self.cols = W
        self.pos[:] = -1
        self.pos[W] = np.arange(W.size)

    def block(self, F: np.ndarray) -> np.ndarray:
        """``H_FF`` (``F`` joins ``W`` first when it is not in it)."""
        self.extend(F)
        loc = self.pos[F]
        return self.H[np.ix_(loc, loc)]


def solve_on_working_set(loss: Loss, gram: WorkingSetGram, x: np.ndarray, g: np.ndarray,
                         w: np.ndarray, tol: float, max_sweeps: int, face):
    """The model's minimiser (see the module docstring): ``(q, A q, sweeps, exact, violation)``.

    ``face(H, g, w, x, d, Hd)`` is the face solve on ``W`` (local arrays): the exact minimiser
    of the model on ``W`` from the coordinate-descent step ``d``, or None; ``exact`` says it
    was found (else ``q`` is coordinate descent's, whose last full sweep left ``violation``).
    """
    q = np.zeros(x.size)
    sweeps = 0
    while True:
        W, H = gram.cols, gram.H
        xW, gW, wW = x[W], g[W], w[W]
        d = q[W]
        Hd = H @ d
        done, viol = gram_cd(H, gW, wW, xW, np.arange(W.size, dtype=np.int64), d, Hd, tol,
                             max_sweeps)
        sweeps += int(done)
        qW = face(H, gW, wW, xW, d, Hd, stalled=done >= max_sweeps, tol=tol)
        exact = qW is not None
        q = np.zeros(x.size)
        q[W] = qW if exact else d
        out = gram.pos < 0
        if gram.bounds is not None:  # no coordinate outside W can move: no pass needed
            curv = max(float(q[W] @ H @ q[W]), 0.0)
            if np.all(np.abs(g[out]) + gram.bounds[out] * np.sqrt(curv) <= w[out]):
                return q, None, sweeps, exact, float(viol)
        Hq, image = loss.hessp_with_image(gram.state, q, gram.kind)
        bad = violators(g, Hq, w, out)
        if bad.size == 0:
            return q, image, sweeps, exact, float(viol)
        gram.extend(bad)
