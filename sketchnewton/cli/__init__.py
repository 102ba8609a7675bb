"""Command line: ``sketchnewton demo``, ``sketchnewton solve`` and ``sketchnewton fit``.

Exit status: 0 success; 1 the solver did not converge (the message is printed
once on stderr as ``sketchnewton: warning: ...`` with what to try; the
outputs are still written); 2 bad input (missing or malformed file, shape
mismatch, NaN/Inf, bad option value, an output that cannot be written, a
numerical failure caused by the data) or an internal error: one line
``sketchnewton: error: ...`` on stderr, no traceback (set
``SKETCHNEWTON_TRACEBACK=1`` to see the traceback of an internal error); 130
interrupted. Running ``sketchnewton`` without arguments prints the usage on
stderr and exits 2.

Outputs (``--out``, ``--json``, ``--model``) are checked before anything is
solved (directory exists and is writable, the path is not a directory, not a
FIFO/device, not one of the input files, not another output) and are written
atomically, all or none (``sketchnewton._io.write_atomically``).

From the rest of the package only public names are used: ``solve``,
``SketchedLogisticRegression``, ``__version__``, ``exceptions`` and ``datasets``,
plus the safe loading and atomic writing of ``sketchnewton._io``.

One module per job: :mod:`._options` (option types, choices, :class:`UsageError`),
:mod:`._parser` (:func:`build_parser`), :mod:`._demo`, :mod:`._solve` and
:mod:`._fit` (the three commands), :mod:`._run` (running the solver: warnings,
numerical failures, hints, checks of the data; ``solve`` is looked up there, so
tests replace ``sketchnewton.cli._run.solve``) and :mod:`._output` (output paths
checked before solving, JSON).
"""

import os
import sys

from ..exceptions import DomainError, InputError
from ._options import PROG, UsageError
from ._output import _jsonable  # noqa: F401  (not public; imported by the tests)
from ._parser import build_parser
from ._run import _NUMERICAL_ERRORS

__all__ = ["main", "build_parser"]

_MAX_MESSAGE = 1000  # characters of an error line


def _error(message):
    message = " ".join(str(message).split())
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE - 3] + "..."
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 not converged, 2 bad input)."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser()
        if not argv:
            sys.stderr.write(parser.format_usage())
            return _error(f"the following arguments are required: command (demo, solve or "
                          f"fit); see '{PROG} --help'")
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        return _error(exc)
    except (InputError, DomainError) as exc:
        return _error(exc)
    except _NUMERICAL_ERRORS as exc:
        return _error(f"numerical failure ({type(exc).__name__}: {exc}); the data may be badly "
                      f"scaled: rescale it")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")
    except MemoryError:
        return _error("out of memory (the problem is too large for this machine)")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line (status 2, never 1 "outputs written")
        if os.environ.get("SKETCHNEWTON_TRACEBACK"):
            raise
        return _error(f"internal error ({type(exc).__name__}: {exc}); please report it (set "
                      f"SKETCHNEWTON_TRACEBACK=1 to see the traceback)")
