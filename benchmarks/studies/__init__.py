"""The registry of benchmark studies: one module of this package per study.

``python -m benchmarks --list`` lists them; ``python -m benchmarks STUDY [STUDY ...] [options]``
runs them; ``python -m benchmarks`` alone runs the suite (the studies marked ``suite``).

A study is a module ``benchmarks/studies/<name>.py`` and one line in :data:`REGISTRY` below. The
module provides:

``__doc__``
    First line: what the study measures (``--list`` shows it). Then the question it answers, how
    to run it (``python -m benchmarks <name> ...``) and what it writes.
``add_arguments(parser)`` (optional)
    Adds the study's own options to ``parser`` (an ``argparse.ArgumentParser``). Never the
    shared ones (``--quick``, ``--out``, ``--update``, ``--progress``): the entry point parses
    those once, for every study.
``run(ctx, args)``
    Runs the study. ``ctx`` is a :class:`benchmarks._common.Context` (the shared options:
    ``ctx.quick``, ``ctx.mode``, ``ctx.suffix``, ``ctx.root``, ``ctx.results``, ``ctx.plots``,
    ``ctx.path(kind, name, ext)``, ``ctx.progress(iterable)``); ``args`` an
    ``argparse.Namespace`` of the study's own options. Writes under ``ctx.root`` only; the
    return value is ignored.

A child process that must run part of a study afresh (a timed fit in a new process) is
``python -m benchmarks <name> <hidden option> ...`` (``_common.study_command``, started by
``_common.run_child`` / ``_common.spawn`` / ``_common.watch_child``), handled by the same
``run``.
"""

import argparse
import importlib
from dataclasses import dataclass, field

__all__ = ["Study", "REGISTRY", "SUITE", "study_parser", "parse_study_args"]


@dataclass(frozen=True)
class Study:
    """One registered study: the module ``benchmarks.studies.<name>``.

    ``suite``: part of the default run (``python -m benchmarks`` with no study) and of the suite
    block of RESULTS.md, in registry order. ``env``: environment variables set (unless already
    set) before anything imports numba; a study with ``env`` runs alone in its process.
    """

    name: str
    suite: bool = False
    env: dict = field(default_factory=dict)

    @property
    def module(self):
        return importlib.import_module(f"{__name__}.{self.name}")

    @property
    def description(self):
        """The first line of the module's docstring."""
        doc = (self.module.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


REGISTRY = {s.name: s for s in (
    # the suite (python -m benchmarks), in the order of RESULTS.md
    Study("scaling_n", suite=True),
    Study("scaling_d", suite=True),
    Study("sketch", suite=True),
    Study("accuracy", suite=True),
    Study("shortcut", suite=True),
    Study("memory", suite=True),
    # focused studies
    Study("newton"),
    Study("kernels"),
    # numba's OpenMP layer busy-waits after each parallel region and then fights OpenBLAS for
    # the cores: a pivoted QR of an 800 x 200 matrix took 2.3 s instead of 20 ms right after a
    # numba kernel; the workqueue layer does not.
    Study("sketch_layer", env={"NUMBA_THREADING_LAYER": "workqueue"}),
    Study("estimators"),
    Study("poisson"),
    Study("path", env={"NUMBA_NUM_THREADS": "1"}),  # one thread everywhere: times compare work
    Study("real"),
    Study("regime"),
    Study("dask"),
    Study("dask_files"),
    Study("timepass"),
    Study("ladder"),
    Study("kernel_table"),
    Study("leverage"),
    Study("dense_input"),
    Study("dense"),
    Study("l1"),
    Study("presolve"),
)}

#: the default studies, in order
SUITE = tuple(name for name, s in REGISTRY.items() if s.suite)


def study_parser(name, shared=None):
    """The argument parser of study ``name``: its own options (``add_arguments``), and for the
    help text the shared ones (``shared(parser)`` adds them)."""
    mod = REGISTRY[name].module
    ap = argparse.ArgumentParser(prog=f"python -m benchmarks {name}", description=mod.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    if shared is not None:
        shared(ap)
    if hasattr(mod, "add_arguments"):
        mod.add_arguments(ap)
    return ap


def parse_study_args(name, argv):
    """The ``args`` of study ``name`` (its own options only) from a list of strings."""
    return study_parser(name).parse_args(argv)
