"""Hessian models for the Newton driver (docs/math.md sections 5.6, 6 and 8).

A model is what the driver solves with (``model.solve(g)``) or preconditions
conjugate gradients with:

* dense factorized models (:class:`HessianModel`): the exact Hessian, or a
  sketched one built from the loss's curvature (row sampling with leverage
  scores, or an oblivious sketch of the Gauss-Newton factor);
* matrix-free preconditioners (:class:`DiagonalModel`, :class:`NystromModel`,
  :class:`IdentityModel`) for Newton-CG when ``p`` is large;
* :class:`KroneckerModel`: ``S (x) G + lam I`` for the multinomial Hessian (K x K and
  d x d factors, docs/math.md 8.7);
* :class:`DualModel`: the exact Hessian inverse through the (n x n) dual
  system when ``n < p``;
* :func:`restricted_gram`: ``H_WW`` of a working set ``W`` (proximal Newton), no ``H``.

:class:`ModelBuilder` makes them from any :class:`~sketchnewton.losses.Loss`.
"""

from ._builder import (
    NYSTROM_RANK,
    PRECONDITIONERS,
    ROW_SAMPLERS,
    SKETCHES,
    ModelBuilder,
)
from ._cg import cg_decrement, preconditioned_cg
from ._dense import (
    HessianModel,
    factorize,
    factorize_psd,
    fix_invariances,
    spectral_error_level,
)
from ._dual import DualModel, dual_supported
from ._kron import KroneckerModel, kronecker_model
from ._restricted import restricted_gram
from ._precond import (
    DiagonalModel,
    IdentityModel,
    JacobiScale,
    NystromModel,
    nystrom_model,
    spread,
)

__all__ = [
    "NYSTROM_RANK", "PRECONDITIONERS", "ROW_SAMPLERS", "SKETCHES", "DiagonalModel", "DualModel",
    "HessianModel", "IdentityModel", "KroneckerModel", "kronecker_model", "ModelBuilder", "NystromModel", "dual_supported", "factorize",
    "factorize_psd", "fix_invariances", "JacobiScale", "nystrom_model", "preconditioned_cg",
    "cg_decrement", "spread", "restricted_gram",
    "spectral_error_level",
]
