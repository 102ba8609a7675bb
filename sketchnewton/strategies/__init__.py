"""Newton strategies: one object per way of computing a step (docs/math.md sections 6-8).

===============  ===================================================================
``exact``        :class:`ExactNewton`: the exact Hessian, factorized at every iterate
``dual``         :class:`DualNewton`: the exact step through the (n x n) dual system
``sketch``       :class:`SketchedNewton`: a sketched Hessian, adaptive sketch size
``pcg``          :class:`SketchPCG`: CG on exact products, sketched preconditioner
``cg``           :class:`NewtonCG`: CG on exact products, matrix-free preconditioner
``subsampled``   :class:`SubsampledNewtonCG`: CG on products over a row sample
``prox``         :class:`ProximalNewton`: L1 / elastic net, CD on the exact Gram model
``prox_sketch``  :class:`SketchedProximalNewton`: the same on a sketched Gram
``prox_cd``      :class:`MatrixFreeProximalNewton`: CD on the data's columns (multinomial:
                 :class:`SoftmaxProximalNewton`)
===============  ===================================================================

Adding a method means adding a :class:`Strategy` subclass and its entry in
:data:`STRATEGIES`; the driver does not change.
"""

from ._base import Iterate, Step, Strategy, StrategySettings, descent_step, steepest_descent
from ._direct import SKETCH_TARGET_RATE, DualNewton, ExactNewton, SketchedNewton
from ._proximal import ProximalNewton, SketchedProximalNewton
from ._proximal_cd import MatrixFreeProximalNewton, SoftmaxProximalNewton
from ._inexact import (
    FORCING_MIN,
    NYSTROM_MAX_RANK,
    PCG_REFRESH,
    InexactNewton,
    NewtonCG,
    SketchPCG,
    SubsampledNewtonCG,
)

#: the strategies by method name
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (ExactNewton, DualNewton, SketchedNewton, SketchPCG, NewtonCG,
                                  SubsampledNewtonCG, ProximalNewton, SketchedProximalNewton,
                                  MatrixFreeProximalNewton)
}

__all__ = ["STRATEGIES", "Iterate", "Step", "Strategy", "StrategySettings", "descent_step", "steepest_descent",
           "ExactNewton", "DualNewton", "SketchedNewton", "InexactNewton", "SketchPCG",
           "NewtonCG", "SubsampledNewtonCG", "ProximalNewton", "SketchedProximalNewton",
           "MatrixFreeProximalNewton", "SoftmaxProximalNewton", "SKETCH_TARGET_RATE",
           "PCG_REFRESH", "FORCING_MIN", "NYSTROM_MAX_RANK"]
