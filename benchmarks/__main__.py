"""``python -m benchmarks [STUDY ...] [--quick] [--out DIR | --update] [--no-progress] [options]``

Runs benchmark studies, one module each in ``benchmarks/studies/`` (``--list`` names them with a
line each; ``python -m benchmarks STUDY --help`` shows a study's own options, given after the
study names). With no study it runs the suite (scaling_n, scaling_d, sketch, accuracy, shortcut,
memory), which writes ``results/*.csv``, ``plots/*.png`` and its sections of ``RESULTS.md``.

Everything goes into ``benchmarks/out/`` (``--out DIR`` elsewhere), never over the committed
results unless ``--update`` is given: then into ``benchmarks/`` itself (``results/``,
``plots/`` and the suite's sections of ``RESULTS.md``). Full mode (default) is sized for a
2-core, 24 GiB machine (the suite: about an hour); ``--quick`` runs small sizes (the suite:
under two minutes). ``--plots-only`` reruns nothing: it redraws every plot from the committed
CSVs in ``benchmarks/results/`` (the estimator plot included).

    python -m benchmarks --list
    python -m benchmarks --quick                       # the suite at small sizes
    python -m benchmarks scaling_n memory              # two studies of the suite
    python -m benchmarks real --problems a9a --C 1     # a study with its own options
"""

import argparse
import os
import sys

from ._common import Context, add_shared_options
from .studies import REGISTRY, SUITE, study_parser


def _parser():
    """The entry point's options: the shared ones (:func:`add_shared_options`) and its own."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 usage="%(prog)s [STUDY ...] [--list] [--studies A,B] "
                                       "[--plots-only] [--quick] [--out DIR | --update] "
                                       "[--progress | --no-progress] [study options]",
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=False, allow_abbrev=False)
    ap.add_argument("-h", "--help", action="store_true",
                    help="this help; after study names: the studies' own options")
    ap.add_argument("--list", action="store_true", help="list the studies, run nothing")
    ap.add_argument("--studies", default=None, metavar="A,B",
                    help="comma-separated studies (the same as naming them)")
    ap.add_argument("--plots-only", action="store_true",
                    help="redraw the plots from the committed CSVs (benchmarks/results/) "
                         "without running anything")
    add_shared_options(ap)
    return ap


def parse(argv):
    """``(ctx, [(name, args), ...], top)``: the shared options parsed once into ``ctx``, each
    named study with its own options; ``top`` holds the entry point's own options."""
    ap = _parser()
    # the shared options may stand anywhere; what they leave is the study names (first) and
    # the studies' own options
    top, rest = ap.parse_known_args(argv)
    names = [s for s in (top.studies or "").split(",") if s]
    while rest and not rest[0].startswith("-"):
        if rest[0] not in REGISTRY:
            ap.error(f"unknown study {rest[0]!r}; choose from {', '.join(REGISTRY)} (--list)")
        names.append(rest.pop(0))
    unknown = sorted(set(names) - set(REGISTRY))
    if unknown:
        ap.error(f"unknown studies {unknown}; choose from {', '.join(REGISTRY)} (--list)")
    names = list(dict.fromkeys(names))
    if top.help:
        if not names:
            ap.print_help()
        for name in names:
            study_parser(name, add_shared_options).print_help()
        sys.exit(0)
    if not names and not top.list and not top.plots_only:
        names = list(SUITE)
    # a study's environment (e.g. numba's thread count) must be set before numba is imported,
    # and would be wrong for the studies beside it
    envs = {n: REGISTRY[n].env for n in names if REGISTRY[n].env}
    if envs and len(names) > 1:
        what = "; ".join(f"{n}: " + ", ".join(f"{k}={v}" for k, v in e.items())
                         for n, e in envs.items())
        ap.error(f"{' and '.join(envs)} set the process environment before numba is imported "
                 f"({what}): run {'it' if len(envs) == 1 else 'each'} on its own")
    for env in envs.values():
        for key, value in env.items():
            os.environ.setdefault(key, value)
    studies, leftover = [], list(rest)
    for name in names:
        p = study_parser(name)
        if len(names) == 1:
            args = p.parse_args(rest)
        else:  # several studies: each takes the options it knows; none may be left over
            args, left = p.parse_known_args(rest)
            leftover = [t for t in leftover if t in left]
        studies.append((name, args))
    if leftover and len(names) != 1:
        ap.error(f"unrecognized arguments: {' '.join(leftover)}")
    return Context.from_args(top), studies, top


def _plots_only(ctx):
    from ._common import BENCH
    from ._suite import FULL, QUICK
    from .figures import replot

    for png in replot(str(BENCH / "results"), str(ctx.root / "plots"),
                      QUICK if ctx.quick else FULL, ctx.suffix):
        print(f"wrote {png}")


def main(argv=None):
    ctx, studies, top = parse(sys.argv[1:] if argv is None else argv)
    if top.list:
        width = max(map(len, REGISTRY))
        for name, study in REGISTRY.items():
            tag = " (suite)" if study.suite else ""
            print(f"{name:{width}}  {study.description}{tag}")
        return 0
    if top.plots_only:
        _plots_only(ctx)
        return 0
    for name, args in ctx.progress(studies, desc="benchmark studies", unit="study"):
        REGISTRY[name].module.run(ctx, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
