"""Warm start from a row sample (``presolve``): the same solve cold and warm, on tall problems.

Does solving the problem on ``n / 16`` rows first (docs/math.md 6.6) make tall solves cheaper,
for every loss, and by how much when the data fit their model less well? Each case is solved
with ``presolve="none"`` and ``presolve="sample"`` (what ``"auto"`` does on these cases; the
quick sizes are below its threshold of 2^20 non-zeros) by ``sketchnewton.minimize`` (the default
method, ``random_state=0``), alternating, fastest of ``--repeat`` after a warm-up solve of each,
in one process; the time is also given in time-passes (one scipy ``A @ x`` then ``A.T @ y`` on
the same matrix, best of 7, measured before the solves). Both must reach the same objective:
the table gives the relative differences of their objectives and solutions (a noiseless
problem's objective is 0 up to rounding: only its solutions compare).

    python -m benchmarks presolve [--quick] [--cases ...] [--repeat 2]

Cases (n = 1e6 rows, sparse, 10 non-zeros per row unless said): the planted normalized
regression (``resnet``, d = 200, z std 1.5, eps 1e-8) without noise (the sample's minimiser is
then the full one) and with noise 0.1 and 1.0 (``b = f + noise std(f) g``); d = 500 with 50 per
row, noise 1.0; logistic (d = 200), multinomial (K = 4, d = 100) and Poisson (d = 200)
regression on planted data (``lam = 1``, tol 1e-8). Writes ``results/presolve[_quick].csv``.
"""

import time
import warnings

import numpy as np

import sketchnewton as sn
from sketchnewton.datasets import make_classification_problem, make_regression_problem

from .._common import write_csv

#: normalized regression: (d, non-zeros per row, noise)
NORMALIZED = {
    "resnet d200 noise 0": (200, 10, 0.0),
    "resnet d200 noise 0.1": (200, 10, 0.1),
    "resnet d200 noise 1": (200, 10, 1.0),
    "resnet d500 k50 noise 1": (500, 50, 1.0),
}
CLASSIFIERS = ("logistic d200", "multinomial K4 d100", "poisson d200")
COLUMNS = ["case", "n", "d", "presolve", "method", "nit", "passes", "seconds", "pass_seconds",
           "time_passes", "presolve_seconds", "presolve_rows", "presolve_nit", "fun",
           "relative_fun_difference", "relative_x_difference", "success"]


def make_case(name, n):
    """``(loss, rule, A)``: the loss of a case, its stopping rule's keyword and its matrix."""
    if name in NORMALIZED:
        d, k, noise = NORMALIZED[name]
        pb = make_regression_problem(n, d, link="resnet", nnz_per_row=k, z_std=1.5,
                                     noise=noise, random_state=0)
        return sn.NormalizedRegressionLoss(pb.A, pb.b), dict(eps=1e-8), pb.A
    family, *_ = name.split()
    d = 100 if family == "multinomial" else 200
    K = 4 if family == "multinomial" else 2
    X, y, _ = make_classification_problem(n, d, n_classes=K, nnz_per_row=10, separation=3.0,
                                          random_state=0)
    if family == "logistic":
        return sn.LogisticLoss(X, y, lam=1.0), dict(tol=1e-8), X
    if family == "multinomial":
        return sn.MultinomialLoss(X, y, K, lam=1.0), dict(tol=1e-8), X
    rng = np.random.default_rng(0)
    counts = rng.poisson(np.exp(np.clip(X @ (0.3 * rng.standard_normal(d)), -5.0, 3.0)))
    return sn.PoissonLoss(X, counts, lam=1.0), dict(tol=1e-8), X


def pass_seconds(A):
    x, r = np.ones(A.shape[1]), np.ones(A.shape[0])
    best = np.inf
    for _ in range(7):
        t0 = time.perf_counter()
        A @ x
        A.T @ r
        best = min(best, time.perf_counter() - t0)
    return best


def run_case(name, n, repeat):
    loss, rule, A = make_case(name, n)
    tp = pass_seconds(A)
    best = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for pre in ("none", "sample"):  # warm-up: compilation, page faults
            sn.minimize(loss, presolve=pre, random_state=0, **rule)
        for _ in range(repeat):
            for pre in ("none", "sample"):
                res = sn.minimize(loss, presolve=pre, random_state=0, **rule)
                if pre not in best or res.time < best[pre].time:
                    best[pre] = res
    rows = []
    for pre, res in best.items():
        info = res.get("presolve", {})
        rows.append(dict(
            case=name, n=loss.data.n, d=loss.n_params, presolve=pre, method=res.method,
            nit=res.nit, passes=res.passes, seconds=res.time, pass_seconds=tp,
            time_passes=res.time / tp, presolve_seconds=info.get("seconds", 0.0),
            presolve_rows=info.get("rows", 0), presolve_nit=info.get("nit", 0), fun=res.fun,
            relative_fun_difference=abs(res.fun - best["none"].fun)
            / max(abs(best["none"].fun), np.finfo(float).tiny),
            relative_x_difference=float(np.linalg.norm(res.x - best["none"].x)
                                        / max(np.linalg.norm(best["none"].x), 1e-300)),
            success=res.success))
    return rows


def add_arguments(parser):
    parser.add_argument("--cases", default=None,
                        help="comma-separated subset of: " + ", ".join([*NORMALIZED, *CLASSIFIERS]))
    parser.add_argument("--repeat", type=int, default=2)


def run(ctx, args):
    n = 100_000 if ctx.quick else 1_000_000
    cases = args.cases.split(",") if args.cases else [*NORMALIZED, *CLASSIFIERS]
    rows = []
    for name in ctx.progress(cases):
        for r in run_case(name, n, args.repeat):
            rows.append(r)
            print(f"  {name} presolve={r['presolve']}: {r['method']}, {r['nit']} it, "
                  f"{r['passes']:.1f} passes, {r['seconds']:.2f} s, {r['time_passes']:.1f} "
                  f"time-passes (sample {r['presolve_seconds']:.2f} s, {r['presolve_nit']} it)",
                  flush=True)
    path = ctx.path("results", "presolve", "csv")
    write_csv(path, rows, COLUMNS)
    print(f"wrote {ctx.rel(path)}\n")
    print("| case | presolve | method | iterations | passes | seconds | time-passes | "
          "sample: seconds (iterations) | objective vs cold | x vs cold |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['presolve']} | {r['method']} | {r['nit']} | "
              f"{r['passes']:.1f} | {r['seconds']:.2f} | {r['time_passes']:.1f} | "
              f"{r['presolve_seconds']:.2f} ({r['presolve_nit']}) | "
              f"{r['relative_fun_difference']:.1e} | {r['relative_x_difference']:.1e} |")
