"""How a solve ends: status codes and reasons decided by code, messages only for people.

A :class:`Verdict` is what a stopping rule, a check or the driver returns;
only the driver acts on it. ``status`` (scipy's integer convention) and
``success`` follow from the :class:`Reason`, never from the text of the
message.
"""

from dataclasses import dataclass
from enum import Enum, IntEnum

__all__ = ["Status", "Reason", "Verdict"]


class Status(IntEnum):
    """``result.status``: scipy's integer codes."""

    CONVERGED = 0
    MAX_ITER = 1
    NO_PROGRESS = 2
    CALLBACK = 3


class Reason(Enum):
    """Why a solve stopped (``result.reason``); ``CONTINUE`` while it goes on."""

    CONTINUE = "continue"
    #: the stopping rule holds (``eps`` certified, or the decrement below ``tol |f|``)
    CONVERGED = "converged"
    #: ``eps`` is below the attainable accuracy: iterating cannot certify it
    BELOW_FLOOR = "target below the attainable accuracy"
    #: neither the loss value nor the gradient can tell a better point apart (rounding noise)
    NOISE_FLOOR = "stopped at the attainable accuracy"
    #: the line search found no decrease along the Newton or gradient direction
    NO_DECREASE = "no decrease possible"
    MAX_ITER = "iteration limit"
    #: a flat direction that is not an invariance of the loss
    ASYMPTOTE = "asymptote"
    #: the curvature vanished while the loss still decreases along the path
    NOT_ATTAINED = "infimum not attained"
    #: zero gradient and no curvature at all (the data's scale is below float64's)
    VANISHED = "gradient and curvature vanish"
    #: a stationary point whose only negative curvature is at the rounding level
    FLAT_STATIONARY = "flat stationary point"
    CALLBACK = "stopped by callback"

    @property
    def status(self) -> Status:
        return _STATUS[self]

    @property
    def success(self) -> bool:
        return self is Reason.CONVERGED


_STATUS = {Reason.CONTINUE: Status.CONVERGED, Reason.CONVERGED: Status.CONVERGED,
           Reason.MAX_ITER: Status.MAX_ITER,
           Reason.CALLBACK: Status.CALLBACK}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: go on, or stop for ``reason`` (with a message for people).

    Attributes
    ----------
    reason : Reason
    message : str
    error_estimate : float or None
        The estimate of ``||x - x*||`` the check arrived at (None: it computed none).
    """

    reason: Reason
    message: str = ""
    error_estimate: float | None = None

    @classmethod
    def proceed(cls, error_estimate: float | None = None) -> "Verdict":
        return cls(Reason.CONTINUE, "", error_estimate)

    @property
    def done(self) -> bool:
        return self.reason is not Reason.CONTINUE

    @property
    def status(self) -> Status:
        return self.reason.status

    @property
    def success(self) -> bool:
        return self.reason.success


for _reason in Reason:
    _STATUS.setdefault(_reason, Status.NO_PROGRESS)
del _reason
