"""Regularisation path: SketchedLogisticRegressionCV vs scikit-learn's LogisticRegressionCV.

How much does the warm-started path save, and is it faster than scikit-learn's at the same
objective? Every solver minimises, for each ``C`` of the path and each training fold, scikit-learn's
``LogisticRegression(C)`` objective

    f_C(coef, b) = C sum_i log(1 + exp(-y_i (x_i^T coef + b))) + 1/2 ||coef||^2

(intercept not penalised), evaluated for every fold's path coefficients (``coefs_paths_``) by
:func:`objective` below, one independent numpy function. ``f*`` is the smallest value any run
reached for that (fold, C); a run counts at *equal objective* when its largest relative gap
``(f - f*) / |f*|`` over the whole path is at most ``1e-8``.

Solvers (the same ``StratifiedKFold(5, shuffle=True, random_state=0)`` folds, the same
``Cs = np.logspace(-3, 3, 7)``, ``scoring="neg_log_loss"``, ``refit=True``):

``ours:path``
    ``SketchedLogisticRegressionCV(Cs, cv, tol=1e-8)``: Newton along increasing ``C``, each solve
    started at the previous solution (:func:`sketchnewton.logistic_regression_path`).
``ours:cold``
    The same solves started cold: ``SketchedLogisticRegression(C, tol=1e-8)`` per fold and ``C``
    (what a grid search does), plus the same refit. The ratio of the two is the warm start's
    speed-up.
``newton-cholesky``, ``lbfgs``
    ``LogisticRegressionCV(Cs, cv, solver=..., tol=tol, max_iter=10000)`` (scikit-learn warm-starts
    its path too), on the tolerance ladder ``1e-4, 1e-6, ..., 1e-12``, stopped at the first
    tolerance whose path is within ``1e-8`` of ours: the loosest tolerance whose path reaches
    equal objective is reported (the time of that run alone).

Data: LIBSVM ``a9a`` (n = 32,561, d = 123, binary, sparse; data/libsvm) and a planted problem
(:func:`sketchnewton.datasets.make_classification_problem`, n = 30,000, d = 100, 10 non-zeros
per row, column scales log-uniform in ``[1e-1, 1e1]``). One thread everywhere (numba and BLAS):
``n_jobs=None`` for scikit-learn, ``NUMBA_NUM_THREADS=1`` for ours (set by the registry before
numba is imported, so the study runs on its own), so the times compare work.

    python -m benchmarks path [--quick] [--out DIR | --update]

writes ``results/path.csv`` under ``benchmarks/out`` (``--update``: ``benchmarks/results/path.csv``)
(``--quick``: the planted problem at n = 10,000 only, to ``path_quick.csv``).
"""

import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegressionCV
from sklearn.metrics import get_scorer
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from sketchnewton import SketchedLogisticRegression, SketchedLogisticRegressionCV
from sketchnewton.datasets import make_classification_problem

from .._common import GAP, write_csv
from ..real_data import load_libsvm

CS = np.logspace(-3, 3, 7)
LADDER = (1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
COLUMNS = ["data", "n", "d", "solver", "tol", "seconds", "iterations", "max_rel_gap",
           "equal_objective", "C_", "speedup_vs_ours_path"]


def objective(X, y01, coef, intercept, C):
    """scikit-learn's LogisticRegression(C) objective (numpy, independent of both libraries)."""
    z = np.asarray(X @ coef).ravel() + intercept
    s = 2.0 * y01 - 1.0
    return C * float(np.logaddexp(0.0, -s * z).sum()) + 0.5 * float(coef @ coef)


def path_objectives(X, y01, folds, paths):
    """``(n_folds, n_Cs)`` objectives of fold paths ``(n_folds, n_Cs, d + 1)``."""
    return np.array([[objective(X[tr], y01[tr], w[:-1], w[-1], C) for w, C in zip(path, CS)]
                     for (tr, _), path in zip(folds, paths)])


def run_ours(X, y, cv):
    t = time.perf_counter()
    est = SketchedLogisticRegressionCV(Cs=CS, cv=cv, scoring="neg_log_loss", tol=1e-8,
                                       random_state=0).fit(X, y)
    sec = time.perf_counter() - t
    return dict(solver="ours:path", tol=1e-8, seconds=sec,
                iterations=int(est.n_iter_.sum()) + int(est.result_.nit),
                C_=est.C_), est.coefs_paths_[:, :, 0, :]


def run_cold(X, y, folds):
    """The path's solves, each started cold, scored as the CV estimator scores; plus the refit."""
    scorer = get_scorer("neg_log_loss")
    t = time.perf_counter()
    paths, scores, iters = [], [], 0
    for tr, te in folds:
        fold, fold_scores = [], []
        for C in CS:
            est = SketchedLogisticRegression(C=C, tol=1e-8, random_state=0).fit(X[tr], y[tr])
            iters += int(est.n_iter_[0])
            fold.append(np.r_[est.coef_[0], est.intercept_])
            fold_scores.append(scorer(est, X[te], y[te]))
        paths.append(fold)
        scores.append(fold_scores)
    best = float(CS[int(np.argmax(np.sum(scores, axis=0)))])
    refit = SketchedLogisticRegression(C=best, tol=1e-8, random_state=0).fit(X, y)
    sec = time.perf_counter() - t
    return dict(solver="ours:cold", tol=1e-8, seconds=sec,
                iterations=iters + int(refit.n_iter_[0]), C_=best), np.array(paths)


def run_sklearn(X, y, cv, solver, tol):
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegressionCV(Cs=CS, cv=cv, scoring="neg_log_loss", solver=solver, tol=tol,
                                   max_iter=10000, use_legacy_attributes=False).fit(X, y)
    sec = time.perf_counter() - t
    paths = np.asarray(est.coefs_paths_).reshape(len(cv), len(CS), -1)
    n_iter = int(np.sum(est.n_iter_))
    return dict(solver=solver, tol=tol, seconds=sec, iterations=n_iter,
                C_=float(np.ravel(est.C_)[0])), paths


def bench(name, X, y):
    y01 = (y == np.unique(y)[1]).astype(np.float64)
    cv = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    SketchedLogisticRegression(C=1.0).fit(X[:2000], y[:2000])  # numba compilation, not timed
    runs = [run_ours(X, y, cv), run_cold(X, y, cv)]
    for solver in ("newton-cholesky", "lbfgs"):
        for tol in LADDER:
            runs.append(run_sklearn(X, y, cv, solver, tol))
            print(f"  {name} {solver} tol={tol:g}: {runs[-1][0]['seconds']:.2f} s", flush=True)
            f = path_objectives(X, y01, cv, runs[-1][1])
            if np.max((f - path_objectives(X, y01, cv, runs[0][1])) / np.abs(f)) <= GAP:
                break  # equal objective with ours: tighter tolerances only cost time
    objs = [path_objectives(X, y01, cv, paths) for _, paths in runs]
    best = np.min(objs, axis=0)
    rows = []
    for (row, _), f in zip(runs, objs):
        row.update(data=name, n=X.shape[0], d=X.shape[1],
                   max_rel_gap=float(np.max((f - best) / np.abs(best))))
        row["equal_objective"] = row["max_rel_gap"] <= GAP
        rows.append(row)
    ours = rows[0]["seconds"]
    keep = rows[:2]
    for solver in ("newton-cholesky", "lbfgs"):
        ok = [r for r in rows if r["solver"] == solver and r["equal_objective"]]
        keep.append(ok[0] if ok else [r for r in rows if r["solver"] == solver][-1])
    for r in keep:
        r["speedup_vs_ours_path"] = r["seconds"] / ours
    return keep


def run(ctx, args):
    rng = np.random.default_rng(0)
    n = 10_000 if ctx.quick else 30_000
    Xp, yp, _ = make_classification_problem(n, 100, nnz_per_row=10, column_scale=(1e-1, 1e1),
                                            random_state=rng.integers(2**31))
    datasets = [("planted", Xp, yp)]
    if not ctx.quick:
        datasets.insert(0, ("a9a", *load_libsvm("a9a")))
    rows = []
    with threadpool_limits(limits=1):
        for name, X, y in datasets:
            rows += bench(name, X, y)
    out = ctx.path("results", "path", "csv")
    for r in rows:
        r.update(seconds=round(r["seconds"], 3), max_rel_gap=f"{r['max_rel_gap']:.1e}",
                 speedup_vs_ours_path=round(r["speedup_vs_ours_path"], 2))
    write_csv(out, rows, COLUMNS)
    print(f"{'data':8} {'solver':16} {'tol':>7} {'sec':>8} {'iter':>6} {'gap':>8} {'eq':>3} "
          f"{'C_':>7} {'x ours':>7}")
    for r in rows:
        print(f"{r['data']:8} {r['solver']:16} {r['tol']:7.0e} {r['seconds']:8.2f} "
              f"{r['iterations']:6d} {r['max_rel_gap']:>8} {'yes' if r['equal_objective'] else 'no':>3} "
              f"{r['C_']:7.3g} {r['speedup_vs_ours_path']:7.2f}")
    print(f"wrote {out}")
