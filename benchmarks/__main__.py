"""``python -m benchmarks [--quick] [--studies a,b] [--out DIR]``: the benchmark suite.

Full mode (default) is sized for a 2-core, 24 GiB machine and writes into
``benchmarks/`` itself (``results/*.csv``, ``plots/*.png``, ``RESULTS.md``);
``--quick`` runs small sizes in under two minutes and writes into
``benchmarks/out/`` unless ``--out`` says otherwise. See
``benchmarks/suite.py`` for the studies.
"""

import argparse
import os
import sys

from .suite import STUDIES, run


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (CI-sized, < 2 minutes)")
    ap.add_argument("--studies", default=",".join(STUDIES),
                    help=f"comma-separated subset of {','.join(STUDIES)}")
    ap.add_argument("--out", default=None, help="output directory (results/, plots/, RESULTS.md)")
    args = ap.parse_args(argv)
    studies = [s for s in args.studies.split(",") if s]
    unknown = sorted(set(studies) - set(STUDIES))
    if unknown:
        ap.error(f"unknown studies {unknown}; choose from {list(STUDIES)}")
    here = os.path.dirname(os.path.abspath(__file__))
    out = args.out or (os.path.join(here, "out") if args.quick else here)
    os.makedirs(out, exist_ok=True)
    run(studies, args.quick, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
