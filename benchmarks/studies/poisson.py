"""SketchedPoissonRegressor vs scikit-learn's PoissonRegressor (newton-cholesky, lbfgs) and glum.

How long does each solver take to the same Poisson objective, well- and ill-conditioned? Every
solver minimises scikit-learn's ``PoissonRegressor(alpha)`` objective

    f(coef, b) = 1/n sum_i (y_i log(y_i / mu_i) - y_i + mu_i) + alpha/2 ||coef||^2,
    mu_i = exp(x_i^T coef + b)

(half the mean Poisson deviance; intercept not penalised), evaluated for every solver's
``coef_, intercept_`` by :func:`objective` below, one independent numpy function.

Solvers:

``sketchnewton:auto`` (ours), ``sketchnewton:exact``, ``sketchnewton:pcg`` (for reference)
    ``SketchedPoissonRegressor(alpha, method=..., tol=1e-8, max_iter=200, random_state=0)``,
    run once at ``tol = 1e-8`` (relative objective accuracy).
``newton-cholesky``, ``lbfgs``
    ``sklearn.linear_model.PoissonRegressor(alpha, solver=..., tol=tol, max_iter=100000)``.
``glum``
    ``glum.GeneralizedLinearRegressor(family="poisson", alpha=alpha, l1_ratio=0,
    gradient_tol=tol, max_iter=1000)`` (its ``solver="auto"`` is IRLS with a Cholesky inner
    solver). glum's ``alpha`` is scikit-learn's: glum minimises ``1/(2 sum s) deviance +
    alpha/2 ||coef||^2`` too (sample weights normalised to sum 1). Checked numerically: with the
    same ``alpha`` the coefficients of glum (``gradient_tol=1e-12``) and scikit-learn
    (``newton-cholesky``, ``tol=1e-12``) agree to 1e-16, with and without sample weights, while
    ``2 alpha`` or ``alpha / 2`` moves them by 1e-3 (``tests/test_poisson.py`` checks it).

Cases (``n = 1e6``): sparse ``d = 500`` with 10 non-zeros per row
(:func:`sketchnewton.datasets.make_sparse_matrix`) and dense ``d = 100`` (the matrices of
:func:`sketchnewton.datasets.make_classification_problem`, standard normal), each
well-conditioned (unit column scales) and ill-conditioned (column scales log-uniform in
``[1e-2, 1e2]``). ``w`` is standard normal, rescaled so that ``X w`` has standard deviation 1,
and ``y ~ Poisson(exp(X w + 0.5))`` (mean count about 2.7).

``alpha = 1e-4``: small enough that the data term decides the fit, and the column scales, not
the penalty, set the conditioning. Measured on these data (n = 1e5, at the solution), the
diagonal of the data part of the Hessian of ``f``, ``1/n sum_i mu_i x_ij^2``, is 450 - 2,000
times ``alpha`` (sparse, well-conditioned) and 27,000 - 30,000 times ``alpha`` (dense): the
penalty adds under 0.25% to it, and the Hessians' condition numbers (69 and 7) are the data's.
With column scales in ``[1e-2, 1e2]`` that diagonal spans 0.05 - 2e8 times ``alpha`` (sparse)
and 2.7 - 3.6e8 times ``alpha`` (dense): ``alpha`` only props up the smallest-scale columns,
and the Hessians' condition numbers are 2e8 and 1e8, the ill-conditioned regime to time. A
larger ``alpha`` (1e-2, or scikit-learn's default 1) would dominate those columns' curvature
and make the ill-conditioned cases easy; ``alpha = 0`` would leave the sparse one at condition
number 4e9 with barely identified coefficients.

Protocol (as the ``estimators`` study, shared code in ``_common.py``): every run is a fresh
process (``python -m benchmarks poisson --one ...``; same seeded data, generation not timed) that
first fits its solver on the first 5000 rows, at most 5 iterations (ours: with the ``exact`` and
``pcg`` methods, every kernel ``auto`` may use; not timed, recorded as ``warmup_s``), then the
timed fit; a time cap (``--cap``) stops a fit that runs longer (the cap covers the timed fit only,
not imports, data or warm-up). Each run is repeated ``--repeat`` times (default 2; quick 1), the
fastest counts. Equal accuracy: ``gap = (f - f_best) / |f_best|`` with ``f_best`` the smallest
objective any run reached on the case; a run counts only when ``gap <= 1e-8``. Each peer is run
with tolerances from loose to tight (newton-cholesky ``1e-6, 1e-8, 1e-10``; lbfgs
``1e-6 .. 1e-12``; glum ``gradient_tol`` ``1e-4 .. 1e-10``) and credited with the loosest one that
reaches the gap. The speedup is (time of the fastest peer that reached the gap) / ours; when no
peer reached it within the cap it is ``cap / ours``, a lower bound (marked ``>``). Quick mode: the
two cases ``sparse-d500-well`` and ``dense-d100-ill``, shorter ladders (newton-cholesky
``1e-6, 1e-8``, lbfgs ``1e-8, 1e-10``, glum ``1e-6, 1e-8``), one run each: about a minute, mostly
the children's imports.

    python -m benchmarks poisson --quick     # n = 20000, cap 5 s per fit: smoke test
    python -m benchmarks poisson             # n = 1e6, cap 600 s per fit
    python -m benchmarks poisson --cap 60 --repeat 1

Writes ``results/poisson_{quick,full}<tag>.csv`` (``--csv`` elsewhere) and prints a markdown
table.
"""

import time
import warnings
from pathlib import Path

import numpy as np

from .._common import (GAP, EqualObjective, add_equal_objective_options, emit_result,
                       equal_objective_rows, print_table, timed_fit, tol_ladder, write_csv)

WARMUP_ROWS = 5000
WARMUP_ITER = 5
ALPHA = 1e-4
Z_STD = 1.0
INTERCEPT = 0.5

CASES = [  # name, sparse, ill
    ("sparse-d500-well", True, False),
    ("sparse-d500-ill", True, True),
    ("dense-d100-well", False, False),
    ("dense-d100-ill", False, True),
]
QUICK_CASES = ("sparse-d500-well", "dense-d100-ill")
OURS = ("sketchnewton:auto", "sketchnewton:exact", "sketchnewton:pcg")
PEERS = {"newton-cholesky": (1e-6, 1e-8, 1e-10), "lbfgs": (1e-6, 1e-8, 1e-10, 1e-12),
         "glum": (1e-4, 1e-6, 1e-8, 1e-10)}
QUICK_PEERS = {"newton-cholesky": (1e-6, 1e-8), "lbfgs": (1e-8, 1e-10), "glum": (1e-6, 1e-8)}


def make_data(n, sparse, ill, seed=0):
    """``(X, y)``: seeded features and Poisson counts of one case (see the module docstring)."""
    from sketchnewton.datasets import make_classification_problem, make_sparse_matrix

    scale = (1e-2, 1e2) if ill else None
    if sparse:
        X = make_sparse_matrix(n, 500, nnz_per_row=10, column_scale=scale, random_state=seed)
    else:
        X = make_classification_problem(n, 100, column_scale=scale, random_state=seed)[0]
    rng = np.random.default_rng(seed + 1)
    w = rng.standard_normal(X.shape[1])
    z = np.asarray(X @ w).ravel()
    z *= Z_STD / z.std()
    y = rng.poisson(np.exp(z + INTERCEPT)).astype(np.float64)
    return X, y


def objective(X, y, alpha, coef, intercept):
    """scikit-learn's ``PoissonRegressor`` objective: ``1/n sum_i (y_i log(y_i/mu_i) - y_i + mu_i)
    + alpha/2 ||coef||^2`` with ``mu = exp(X coef + intercept)`` (``0 log 0 = 0``); numpy only."""
    coef = np.ravel(np.asarray(coef, dtype=np.float64))
    z = np.asarray(X @ coef, dtype=np.float64).ravel() + float(intercept)
    mu = np.exp(z)
    pos = y > 0
    ylog = np.zeros_like(z)
    ylog[pos] = y[pos] * (np.log(y[pos]) - z[pos])
    return float(np.mean(ylog - y + mu)) + 0.5 * alpha * float(coef @ coef)


def make_estimator(solver, alpha, tol):
    """The estimator of ``solver`` (``sketchnewton:<method>``, a scikit-learn solver, ``glum``)."""
    if solver.startswith("sketchnewton:"):
        from sketchnewton import SketchedPoissonRegressor

        return SketchedPoissonRegressor(alpha=alpha, tol=tol, method=solver.split(":")[1],
                                        max_iter=200, random_state=0)
    if solver == "glum":
        from glum import GeneralizedLinearRegressor

        return GeneralizedLinearRegressor(family="poisson", alpha=alpha, l1_ratio=0.0,
                                          fit_intercept=True, gradient_tol=tol, max_iter=1000)
    from sklearn.linear_model import PoissonRegressor

    return PoissonRegressor(alpha=alpha, solver=solver, tol=tol, max_iter=100_000)


def run_one(args):
    """Child process: fit one solver on one case, print a ``RESULT`` line."""
    name, sparse, ill = next(c for c in CASES if c[0] == args.case)
    X, y = make_data(args.n, sparse, ill)
    alpha, solver = args.alpha, args.solver
    out = dict(case=name, solver=solver, tol=args.tol, alpha=alpha)
    warm = ([f"sketchnewton:{m}" for m in ("exact", "pcg")] if solver.startswith("sketchnewton")
            else [solver])
    # warm-up on the first rows, same code path: numba kernels from their cache, lazy imports;
    # a few iterations suffice (lbfgs would otherwise run for minutes on the ill-conditioned data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        for s in warm:
            est = make_estimator(s, alpha, args.tol)
            est.set_params(max_iter=WARMUP_ITER)
            est.fit(X[:WARMUP_ROWS], y[:WARMUP_ROWS])
        out["warmup_time"] = time.perf_counter() - t0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = make_estimator(solver, alpha, args.tol)
        out["time"] = timed_fit(lambda: est.fit(X, y))
    res = getattr(est, "result_", None)
    out["method"] = (res.method if res is not None
                     else f"glum:{getattr(est, '_solver', 'auto')}" if solver == "glum" else solver)
    out["passes"] = float(res.passes) if res is not None else float("nan")
    out["n_iter"] = int(np.max(est.n_iter_))
    out["converged_warning"] = not any("converge" in str(w.message).lower() for w in caught)
    out["objective"] = objective(X, y, alpha, est.coef_, est.intercept_)
    emit_result(out)


def add_arguments(ap):
    ap.add_argument("--cases", default=None,
                    help=f"comma-separated subset of {','.join(c[0] for c in CASES)} (quick: "
                         f"{','.join(QUICK_CASES)})")
    ap.add_argument("--alpha", type=float, default=ALPHA)
    ap.add_argument("--csv", default=None,
                    help="CSV path (default results/poisson_{quick,full}<tag>.csv in the output "
                         "folder)")
    add_equal_objective_options(ap)


def run(ctx, args):
    if args.one:
        return run_one(args)
    eq = EqualObjective.from_args("poisson", ctx, args, ["--alpha", repr(args.alpha)])
    n, cap, mode = eq.n, eq.cap, ctx.mode
    names = (args.cases.split(",") if args.cases
             else list(QUICK_CASES) if ctx.quick else [c[0] for c in CASES])
    unknown = sorted(set(names) - {c[0] for c in CASES})
    if unknown:
        raise SystemExit(f"python -m benchmarks poisson: unknown cases {unknown}")
    peers = QUICK_PEERS if ctx.quick else PEERS

    def run_solver(case, solver, tol):
        r = eq.run(case, solver, tol)
        print(f"  {case} {solver} tol={tol:g}: {r['time']:.2f}s obj={r['objective']:.12e}",
              flush=True)
        return r

    rows = []
    for name in ctx.progress(names, desc="cases"):
        runs = [run_solver(name, solver, 1e-8) for solver in OURS]
        peer_runs = {solver: tol_ladder(lambda tol, s=solver: run_solver(name, s, tol), tols, runs)
                     for solver, tols in peers.items()}
        rows += equal_objective_rows(dict(mode=mode, n=n, case=name, alpha=args.alpha), runs,
                                     peer_runs, cap)
    out = Path(args.csv) if args.csv else ctx.results / f"poisson_{mode}{args.tag}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, rows, list(rows[0]))
    print_table(rows, cap, f"Poisson, alpha = {args.alpha:g}, n = {n}, cap {cap:g} s per fit, "
                f"BLAS threads {eq.blas_threads or 'default'}, fastest of {eq.repeat} runs; gap = "
                f"relative objective difference to the best objective reached (must be "
                f"<= {GAP:g}); speedup = fastest peer that reached it / ours")
    print(f"\nwrote {out}")
