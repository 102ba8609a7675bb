"""SketchedLogisticRegression vs scikit-learn's LogisticRegression (newton-cholesky, lbfgs).

Cases: sparse ``d = 500`` (density 2%, 10 non-zeros per row) and dense
``d = 100``; binary and ``K = 5``; well-conditioned (standard features,
``C = 1``) and ill-conditioned (column scales log-uniform in ``[1e-2, 1e2]``,
``C = 1e3``). Data from ``make_classification_problem``.

Every solver runs in its own subprocess (same seeded data, generation not
timed) so a time cap can stop it; the cap covers the timed fit only, not the
imports, the data or the warm-up (the protocol is in ``_common.py``, shared
with ``bench_poisson.py``). Times are compared at equal accuracy: each
solver's final objective ``C sum loss + 1/2 ||W||^2`` is compared with the
best objective any solver reached, ``gap = (f - f_best) / |f_best|``; a run
counts only when ``gap <= 1e-8``. For scikit-learn's solvers ``tol`` is tried
from loose to tight (``1e-6, 1e-8, 1e-10``; lbfgs also ``1e-12``; the quick mode
stops one earlier) and the
first run reaching the gap is reported (the best honest version of each peer).
Each process first fits its solver on the first 5000 rows (ours: with both
methods) so that numba's cached kernels and the libraries' lazy imports are
loaded before the clock starts; that warm-up time is recorded in the CSV
(``warmup_time``), not counted. Our solver runs once with ``tol = 1e-8`` (default method ``"auto"``), plus
the ``"exact"`` and ``"pcg"`` methods for reference.

    python benchmarks/bench_estimators.py --quick       # n = 20000, cap 5 s per run (smoke test:
                                                        # fixed costs dominate at this size)
    python benchmarks/bench_estimators.py               # n = 1e6, cap 600 s per run
    python benchmarks/bench_estimators.py --cap 120     # n = 1e6, cap 120 s per run

Every library runs with its default BLAS threads (``--blas-threads N`` caps
all processes at N; earlier runs used 1, which slowed the dense products of
both sides). Each run is repeated ``--repeat`` times (default 2; runs that hit
the cap are not repeated) and the fastest repeat counts, for every solver
alike: single timings on this machine vary by 10-40%.

Writes ``results/estimators_{quick,full}.csv`` and ``plots/estimators[_quick].png`` under
``benchmarks/out`` (``--out DIR``; ``--update``: into ``benchmarks/`` itself) and prints a
markdown table.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import _common  # noqa: E402
from benchmarks.figures import plot_estimators, read_csv  # noqa: E402
from benchmarks._common import (GAP, emit_result, equal_objective_rows, print_table,  # noqa: E402
                                timed_fit, tol_ladder, write_csv)

WARMUP_ROWS = 5000

CASES = [  # name, sparse, K, ill
    ("sparse-d500-K2-well", True, 2, False),
    ("sparse-d500-K2-ill", True, 2, True),
    ("sparse-d500-K5-well", True, 5, False),
    ("sparse-d500-K5-ill", True, 5, True),
    ("dense-d100-K2-well", False, 2, False),
    ("dense-d100-K2-ill", False, 2, True),
    ("dense-d100-K5-well", False, 5, False),
    ("dense-d100-K5-ill", False, 5, True),
]


def make_data(n, sparse, K, ill, seed=0):
    from sketchnewton.datasets import make_classification_problem

    d = 500 if sparse else 100
    X, y, _ = make_classification_problem(n, d, n_classes=K, nnz_per_row=10 if sparse else None,
                                          column_scale=(1e-2, 1e2) if ill else None,
                                          random_state=seed)
    return X, y, (1e3 if ill else 1.0)


def objective(X, y, K, C, coef, intercept):
    """``C sum_i loss_i + 1/2 ||coef||^2`` (scikit-learn's objective), via our losses."""
    from sketchnewton.losses import LogisticLoss, MultinomialLoss

    if K == 2:
        loss = LogisticLoss(X, y, lam=1.0 / C, fit_intercept=True)
        x = np.concatenate([np.ravel(coef), np.ravel(intercept)])
    else:
        loss = MultinomialLoss(X, y, K, lam=1.0 / C, fit_intercept=True)
        x = np.column_stack([coef, intercept]).ravel()
    return C * loss.loss(x)


def run_one(args):
    """Child process: fit one solver on one case, print a JSON line."""
    import warnings

    name, sparse, K, ill = next(c for c in CASES if c[0] == args.case)
    X, y, C = make_data(args.n, sparse, K, ill)
    out = dict(case=name, solver=args.solver, tol=args.tol)
    if args.solver.startswith("sketchnewton"):
        from sketchnewton.estimators import SketchedLogisticRegression

        method = args.solver.split(":")[1]

        def make(method=method):
            return SketchedLogisticRegression(C=C, tol=args.tol, method=method, max_iter=200,
                                              random_state=0)
        warm = [make("exact"), make("pcg")]  # every kernel either method may use
    else:
        from sklearn.linear_model import LogisticRegression

        def make():
            return LogisticRegression(C=C, solver=args.solver, tol=args.tol, max_iter=100000)
        warm = [make()]
    # warm-up on the first rows, same code path: loads the numba kernels from their cache
    # (and scipy's / scikit-learn's lazy imports); its time is reported, not counted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for est in warm:
            est.fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS])
        out["warmup_time"] = time.perf_counter() - t0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = make()
        out["time"] = timed_fit(lambda: est.fit(X, y))
        out["method"] = est.result_.method if hasattr(est, "result_") else args.solver
        out["passes"] = est.result_.passes if hasattr(est, "result_") else float("nan")
    out["n_iter"] = int(np.max(est.n_iter_))
    out["converged_warning"] = not any("converge" in str(w.message).lower() for w in caught)
    out["objective"] = objective(X, y, K, C, est.coef_, est.intercept_)
    emit_result(out)


BLAS_THREADS = None
REPEAT = 2


def spawn(case, solver, tol, n, cap):
    """Run one solver ``REPEAT`` times (each in a fresh process); the fastest run, all times in
    ``times``."""
    return _common.spawn(Path(__file__).resolve(),
                         ["--case", case, "--solver", solver, "--tol", repr(tol), "--n", n], cap,
                         repeat=REPEAT, blas_threads=BLAS_THREADS,
                         info=dict(case=case, solver=solver, tol=tol, method=solver))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--cap", type=float, default=None, help="seconds per peer run")
    ap.add_argument("--cases", default=None, help="comma-separated case names")
    ap.add_argument("--tag", default="", help="suffix of the CSV file name")
    _common.add_output_options(ap)
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="BLAS threads of every solver's process (0: library default)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs per solver, the fastest counts (default 2, quick 1)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--solver", help=argparse.SUPPRESS)
    ap.add_argument("--tol", type=float, default=1e-8, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        return run_one(args)
    global BLAS_THREADS, REPEAT
    BLAS_THREADS = args.blas_threads or None
    REPEAT = args.repeat or (1 if args.quick else 2)

    n = args.n or (20_000 if args.quick else 1_000_000)
    cap = args.cap or (5.0 if args.quick else 600.0)
    mode = "quick" if args.quick else "full"
    cases = [c for c in CASES if args.cases is None or c[0] in args.cases.split(",")]
    rows = []
    for name, sparse, K, ill in _common.progress(cases, desc="cases"):
        runs = []
        ours = ["sketchnewton:auto", "sketchnewton:exact", "sketchnewton:pcg"]
        if not args.quick:  # save time at n = 1e6: "exact" only for binary (auto = pcg there)
            ours = ["sketchnewton:auto"] + (["sketchnewton:exact"] if K == 2 else [])
        for solver in ours:
            runs.append(spawn(name, solver, 1e-8, n, cap))
            print(f"  {name} {solver}: {runs[-1]['time']:.2f}s", flush=True)
        peers = {"newton-cholesky": (1e-6, 1e-8, 1e-10), "lbfgs": (1e-6, 1e-8, 1e-10, 1e-12)}
        if args.quick:
            peers = {"newton-cholesky": (1e-6, 1e-8), "lbfgs": (1e-6, 1e-8, 1e-10)}
        peer_runs = {}
        for solver, tols in peers.items():
            def run(tol, solver=solver):
                r = spawn(name, solver, tol, n, cap)
                print(f"  {name} {solver} tol={tol:g}: {r['time']:.2f}s obj={r['objective']:.12e}",
                      flush=True)
                return r
            peer_runs[solver] = tol_ladder(run, tols, runs)
        rows += equal_objective_rows(dict(mode=mode, n=n, case=name), runs, peer_runs, cap)
    out = _common.results_dir(args) / f"estimators_{mode}{args.tag}.csv"
    write_csv(out, rows, list(rows[0]))
    png = _common.output_root(args) / "plots" / f"estimators{'_quick' if args.quick else ''}.png"
    plot_estimators(read_csv(out), str(png), cap=cap)
    print_table(rows, cap, f"n = {n}, cap {cap:g} s per run, BLAS threads "
                f"{BLAS_THREADS or 'default'}, fastest of {REPEAT} runs; "
                f"gap = relative objective difference to the best objective reached "
                f"(must be <= {GAP:g}); speedup = fastest peer that reached it / ours")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
