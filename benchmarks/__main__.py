"""``python -m benchmarks [--quick] [--studies a,b] [--out DIR | --update] [--plots-only]``.

Runs the benchmark suite (``benchmarks/suite.py``) and writes ``results/*.csv``,
``plots/*.png`` and ``RESULTS.md`` into ``benchmarks/out/`` (``--out DIR``
elsewhere), never over the committed results unless ``--update`` is given:
then into ``benchmarks/`` itself (``results/``, ``plots/`` and the suite's
sections of ``RESULTS.md``). Full mode (default) is sized for a 2-core,
24 GiB machine (about an hour); ``--quick`` runs small sizes in under two
minutes. ``--plots-only`` reruns nothing: it redraws every plot from the
committed CSVs in ``benchmarks/results/`` (the estimator plot included).
"""

import argparse
import os
import sys

from ._common import add_output_options, output_root
from .figures import replot
from .suite import FULL, QUICK, STUDIES, run


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (CI-sized, < 2 minutes)")
    ap.add_argument("--studies", default=",".join(STUDIES),
                    help=f"comma-separated subset of {','.join(STUDIES)}")
    ap.add_argument("--plots-only", action="store_true",
                    help="redraw the plots from the committed CSVs (benchmarks/results/) "
                         "without running anything")
    add_output_options(ap)
    args = ap.parse_args(argv)
    if args.out and args.update:
        ap.error("give --out or --update, not both")
    out = str(output_root(args))
    if args.plots_only:
        here = os.path.dirname(os.path.abspath(__file__))
        pngs = replot(os.path.join(here, "results"), os.path.join(out, "plots"),
                      QUICK if args.quick else FULL, "_quick" if args.quick else "")
        for png in pngs:
            print(f"wrote {png}")
        return 0
    studies = [s for s in args.studies.split(",") if s]
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown:
        ap.error(f"unknown studies {unknown}; choose from {list(STUDIES)}")
    os.makedirs(out, exist_ok=True)
    run(studies, args.quick, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
