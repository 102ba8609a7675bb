"""Exception and warning types raised by sketchnewton."""

import os
import sys
import warnings

from sklearn.exceptions import ConvergenceWarning

__all__ = ["ConvergenceWarning", "DomainError", "InputError", "warn"]


class InputError(ValueError):
    """Invalid user input: wrong shape, dtype, empty, or non-finite values."""


class DomainError(ArithmeticError):
    """The iterate left the domain of the loss.

    Raised when the normaliser ``alpha = <phi(A x), 1>`` is not positive (the
    ``resnet`` and ``sinh`` links can take negative values) or when the loss is
    not finite. The Newton driver catches it to reject a step; a user calling
    the loss directly sees it.
    """


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message, category=UserWarning):
    """``warnings.warn`` attributed to the first caller outside this package (the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
