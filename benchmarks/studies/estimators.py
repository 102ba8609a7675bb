"""SketchedLogisticRegression vs scikit-learn's LogisticRegression (newton-cholesky, lbfgs).

How long does each solver take to the same objective, per data set and C?

Cases: sparse ``d = 500`` (density 2%, 10 non-zeros per row) and dense
``d = 100``; binary and ``K = 5``; well-conditioned (standard features,
``C = 1``) and ill-conditioned (column scales log-uniform in ``[1e-2, 1e2]``,
``C = 1e3``). Data from ``make_classification_problem``.

Every solver runs in its own subprocess (same seeded data, generation not
timed) so a time cap can stop it; the cap covers the timed fit only, not the
imports, the data or the warm-up (the protocol is in ``_common.py``, shared
with the ``poisson`` study; a run is ``python -m benchmarks estimators --one ...``).
Times are compared at equal accuracy: each
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

    python -m benchmarks estimators --quick      # n = 20000, cap 5 s per run (smoke test:
                                                 # fixed costs dominate at this size)
    python -m benchmarks estimators              # n = 1e6, cap 600 s per run
    python -m benchmarks estimators --cap 120    # n = 1e6, cap 120 s per run

Every library runs with its default BLAS threads (``--blas-threads N`` caps
all processes at N; earlier runs used 1, which slowed the dense products of
both sides). Each run is repeated ``--repeat`` times (default 2; runs that hit
the cap are not repeated) and the fastest repeat counts, for every solver
alike: single timings on this machine vary by 10-40%.

Writes ``results/estimators_{quick,full}.csv`` and ``plots/estimators[_quick].png`` under
``benchmarks/out`` (``--out DIR``; ``--update``: into ``benchmarks/`` itself) and prints a
markdown table.
"""

import time

import numpy as np

from .._common import (GAP, EqualObjective, add_equal_objective_options, emit_result,
                       equal_objective_rows, print_table, timed_fit, tol_ladder, write_csv)
from ..figures import plot_estimators, read_csv

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


def add_arguments(ap):
    ap.add_argument("--cases", default=None, help="comma-separated subset of "
                    + ",".join(c[0] for c in CASES))
    add_equal_objective_options(ap)


def run(ctx, args):
    if args.one:
        return run_one(args)
    eq = EqualObjective.from_args("estimators", ctx, args)
    n, cap, mode = eq.n, eq.cap, ctx.mode
    cases = [c for c in CASES if args.cases is None or c[0] in args.cases.split(",")]
    rows = []
    for name, sparse, K, ill in ctx.progress(cases, desc="cases"):
        runs = []
        ours = ["sketchnewton:auto", "sketchnewton:exact", "sketchnewton:pcg"]
        if not ctx.quick:  # save time at n = 1e6: "exact" only for binary (auto = pcg there)
            ours = ["sketchnewton:auto"] + (["sketchnewton:exact"] if K == 2 else [])
        for solver in ours:
            runs.append(eq.run(name, solver, 1e-8))
            print(f"  {name} {solver}: {runs[-1]['time']:.2f}s", flush=True)
        peers = {"newton-cholesky": (1e-6, 1e-8, 1e-10), "lbfgs": (1e-6, 1e-8, 1e-10, 1e-12)}
        if ctx.quick:
            peers = {"newton-cholesky": (1e-6, 1e-8), "lbfgs": (1e-6, 1e-8, 1e-10)}
        peer_runs = {}
        for solver, tols in peers.items():
            def run_peer(tol, solver=solver):
                r = eq.run(name, solver, tol)
                print(f"  {name} {solver} tol={tol:g}: {r['time']:.2f}s obj={r['objective']:.12e}",
                      flush=True)
                return r
            peer_runs[solver] = tol_ladder(run_peer, tols, runs)
        rows += equal_objective_rows(dict(mode=mode, n=n, case=name), runs, peer_runs, cap)
    out = ctx.results / f"estimators_{mode}{args.tag}.csv"
    write_csv(out, rows, list(rows[0]))
    png = ctx.plots / f"estimators{ctx.suffix}.png"
    plot_estimators(read_csv(out), str(png), cap=cap)
    print_table(rows, cap, f"n = {n}, cap {cap:g} s per run, BLAS threads "
                f"{eq.blas_threads or 'default'}, fastest of {eq.repeat} runs; "
                f"gap = relative objective difference to the best objective reached "
                f"(must be <= {GAP:g}); speedup = fastest peer that reached it / ours")
    print(f"\nwrote {out}")
