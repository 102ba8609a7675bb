"""Strategies whose step is a direct solve with a factorized model: exact, sketched, dual."""

from .._validation import check_memory
from ..losses import Loss
from ._base import Iterate, Step, Strategy, check_dense_model_fits, descent_step

__all__ = ["ExactNewton", "SketchedNewton", "DualNewton", "SKETCH_TARGET_RATE", "grow_sketch"]

#: method "sketch" doubles the sketch size while the error estimate contracts by less than
#: this per iteration (Adaptive Newton Sketch): a sketch with spectral error e contracts by ~e
SKETCH_TARGET_RATE = 0.3


class ExactNewton(Strategy):
    """Newton with the exact Hessian, rebuilt and factorized at every iterate (``"exact"``).

    The model is the full Hessian when it is positive definite, else the
    Gauss-Newton matrix (when the loss offers one; always PSD; when singular,
    e.g. along the softmax shift, its pseudo-inverse), else a
    Levenberg-Marquardt damped matrix (:meth:`ModelBuilder.factorized`).
    """

    name = "exact"

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        check_dense_model_fits(loss, cls.name)

    def update(self, it: Iterate, contraction: float | None) -> None:
        self.model = self.builder.factorized(it.state, sketched=self.uses_sketch)
        self.fresh = True

    def step(self, it: Iterate, forcing_floor: float = 0.0) -> Step:
        model = self.built
        p = self._timed(model.solve, it.grad)
        return descent_step(it.grad, -p, accuracy=model.spectral_error or 0.0)


class SketchedNewton(ExactNewton):
    """The paper's approximate Newton step ``H~^{-1} g`` with a fresh sketched model at every
    iterate (``"sketch"``), the sketch size adapted as in Adaptive Newton Sketch.

    Lacotte, Wang, Pilanci (2021): in the local regime (unit steps) the error
    of the sketched Newton iteration contracts by about the sketch's spectral
    error; when the observed ratio of successive progress measures exceeds
    ``SKETCH_TARGET_RATE``, or the line search had to cut the step below 1/2
    (a poor model), the sketch doubles (up to ``n``). A size given by the
    user is kept.
    """

    name = "sketch"
    uses_sketch = True

    def update(self, it: Iterate, contraction: float | None) -> None:
        grow_sketch(self, it, contraction)
        super().update(it, contraction)


def grow_sketch(strategy: Strategy, it: Iterate, contraction: float | None) -> None:
    """Double ``strategy``'s sketch (up to ``n``) after poor progress: an observed contraction
    above ``SKETCH_TARGET_RATE``, or a step the line search cut below 1/2. A size the user
    gave is kept."""
    builder, n = strategy.builder, strategy.loss.data.n
    if strategy.settings.sketch_size is None and contraction is not None:
        poor = contraction > SKETCH_TARGET_RATE if it.step_size == 1.0 else it.step_size < 0.5
        if poor and builder.sketch_size < n:
            builder.sketch_size = min(2 * builder.sketch_size, n)


class DualNewton(ExactNewton):
    """Exact Newton through the (n x n) dual (Woodbury) system, for ``n < p`` with a ridge
    (``"dual"``, docs/math.md 8.4): ``O(n^2 p)`` per iteration instead of ``O(p^3)``."""

    name = "dual"

    @classmethod
    def check_fits(cls, loss: Loss) -> None:
        n = loss.data.n
        check_memory(3 * 8 * n * n, f"method 'dual' (a dense {n:,} x {n:,} system)",
                     "use method='cg' or method='auto'")

    def update(self, it: Iterate, contraction: float | None) -> None:
        self.model = self.builder.dual(it.state)
        self.fresh = True
