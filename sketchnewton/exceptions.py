"""Exception and warning types raised by sketchnewton."""

from sklearn.exceptions import ConvergenceWarning

__all__ = ["ConvergenceWarning", "DomainError", "InputError"]


class InputError(ValueError):
    """Invalid user input: wrong shape, dtype, empty, or non-finite values."""


class DomainError(ArithmeticError):
    """The iterate left the domain of the loss.

    Raised when the normaliser ``alpha = <phi(A x), 1>`` is not positive (the
    ``resnet`` and ``sinh`` links can take negative values) or when the loss is
    not finite. The Newton driver catches it to reject a step; a user calling
    the loss directly sees it.
    """
