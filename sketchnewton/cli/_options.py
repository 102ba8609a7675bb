"""Option types, choices and the usage error shared by the commands of the command line."""

import argparse
import math

import numpy as np

from ..exceptions import InputError

PROG = "sketchnewton"
# the choices of sketchnewton.solve and SketchedLogisticRegression (validated again there)
METHODS = ("auto", "exact", "sketch", "pcg")
SKETCHES = ("leverage", "uniform", "countsketch", "srht", "gaussian")
FIT_METHODS = ("auto", "exact", "pcg", "sketch")
#: Smallest --eps accepted: 1000 float64 machine epsilons times max(1, ||x0||).
EPS_FLOOR = 1e3 * float(np.finfo(np.float64).eps)


class UsageError(Exception):
    """Bad command line (raised by the parser instead of printing usage and exiting)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _input_error(message):
    return InputError(message)


def _short(text, limit=40):
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit - 3] + "...")


# ----------------------------------------------------------------------------
# option types
# ----------------------------------------------------------------------------

def _int_type(minimum):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {_short(text)}") from None
        if not (math.isfinite(value) and value.is_integer()):
            raise argparse.ArgumentTypeError(f"expected an integer, got {_short(text)}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {_short(text)}")
        return int(value)
    parse.__name__ = "integer"
    return parse


def _float_type(*, positive=False, nonnegative=False, maximum=None):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {_short(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {_short(text)}")
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {_short(text)}")
        if nonnegative and value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {_short(text)}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {_short(text)}")
        return value
    parse.__name__ = "number"
    return parse


def _zero_based(text):
    value = {"auto": "auto", "true": True, "yes": True, "1": True,
             "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected auto, true or false, got {_short(text)}")
    return value


def _check_eps(eps, x0=None):
    """Refuse a target below what float64 can certify: ``eps < EPS_FLOOR * max(1, ||x0||)``."""
    scale = 1.0 if x0 is None else float(np.linalg.norm(x0))
    floor = EPS_FLOOR * max(1.0, scale)
    if eps < floor:
        where = "" if x0 is None else f" with ||x0|| = {scale:.3g}"
        raise UsageError(f"argument --eps: {eps:g} is below what float64 arithmetic can certify "
                         f"({floor:.2g} = 1000 * machine epsilon * max(1, ||x0||){where}); "
                         f"use --eps {floor:.2g} or larger")
