"""The tolerance ladder: time and Newton iterations of a fit at every decade of tol.

Does each decade of ``tol`` (1e-4 down to 1e-12) cost at most a few Newton iterations, and no
tolerance more than 3x the time of the next looser one (issue 27)? The problems are those on
which a fit used to loop at its optimum: dense random features of real data (scikit-learn's
``RBFSampler``, gamma by the median heuristic: the kernel logistic regression its documentation
teaches), a sparse multinomial problem shaped like network-intrusion records (most rows copies
of a few large-valued prototypes: the loss's rounding noise far above ``64 eps |f|``), and a
Poisson regression with counts around 1e8 (every row's deviance cancels 1e8-sized terms).

    python -m benchmarks ladder [--quick] [--problems rbf-a9a,intrusion,poisson-1e8]
                                [--C 1,100] [--seeds 0,1,2,3,4] [--methods auto]

For each problem, ``C`` and seed (``random_state`` of the fit): ``SketchedLogisticRegression``
(``SketchedPoissonRegressor`` with ``alpha = 1 / C``) at every ``tol`` of the ladder, in one
process after a warm-up fit, recording the wall time, Newton iterations, passes, the objective,
``success`` and the stop reason. Writes ``results/ladder[_quick].csv`` and prints, per problem,
the largest ratio of a tolerance's time to the next looser one's and the largest number of
iterations a decade cost. (The network-intrusion data set itself, KDD Cup 99, cannot be
fetched here: the ``intrusion`` problem is the synthetic stand-in of its shape, 116 features,
5 classes, 98% duplicated records, with 100,000 rows by default (``--intrusion-rows 494021``
for the real set's).)
"""

import time
import warnings

import numpy as np
import scipy.sparse as sp

from sketchnewton import ConvergenceWarning, SketchedLogisticRegression, SketchedPoissonRegressor

from .._common import write_csv
from ..real_data import load_libsvm

LADDER = tuple(10.0 ** -k for k in range(4, 13))
PROBLEMS = ("rbf-a9a", "intrusion", "poisson-1e8")


def add_arguments(parser):
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--C", default="1,100", help="comma-separated C values")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="random_state of the fits")
    parser.add_argument("--methods", default="auto")
    parser.add_argument("--components", type=int, default=1000,
                        help="random features of the rbf problems")
    parser.add_argument("--intrusion-rows", type=int, default=100_000,
                        help="rows of the intrusion problem (the real set has 494,021)")


def rbf_features(name, components, quick):
    """``RBFSampler`` features of a LIBSVM set (float64, dense), gamma by the median heuristic."""
    from sklearn.kernel_approximation import RBFSampler

    X, y = load_libsvm(name)
    if quick:
        X, y = X[:5000], y[:5000]
    rng = np.random.default_rng(0)
    sample = X[rng.choice(X.shape[0], size=min(2000, X.shape[0]), replace=False)]
    sq = np.asarray(sample.multiply(sample).sum(axis=1)).ravel()
    dist = sq[:, None] + sq[None, :] - 2 * (sample @ sample.T).toarray()
    gamma = 1.0 / np.median(dist[np.triu_indices_from(dist, 1)])
    features = RBFSampler(gamma=gamma, n_components=components, random_state=0)
    return features.fit_transform(X), (y > 0).astype(int)


def intrusion_like(n, d=116, classes=5, duplicated=0.98, scale=1e3, seed=0):
    """Sparse rows shaped like network-intrusion records: ``duplicated`` of them copies of one of
    ``classes`` prototypes with feature values up to ``scale`` (the prototype's class), the
    others random with labels from a planted softmax model."""
    rng = np.random.default_rng(seed)
    copies = int(duplicated * n)
    prototypes = sp.random(classes, d, density=0.1, random_state=rng, format="csr") * scale
    which = rng.integers(0, classes, copies)
    rest = sp.random(n - copies, d, density=0.05, random_state=rng, format="csr")
    scores = rest @ rng.standard_normal((d, classes))
    labels = np.argmax(scores + rng.gumbel(size=scores.shape), axis=1)
    order = rng.permutation(n)
    return sp.vstack([prototypes[which], rest]).tocsr()[order], np.r_[which, labels][order]


def large_counts(n, d=20, level=1e8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d) * 0.3 / np.sqrt(d)
    return X, rng.poisson(level * np.exp(X @ w)).astype(float)


def problem(name, args, quick):
    if name.startswith("rbf-"):
        return rbf_features(name[4:], args.components if not quick else 200, quick), "logistic"
    if name == "intrusion":
        return intrusion_like(20_000 if quick else args.intrusion_rows), "logistic"
    if name == "poisson-1e8":
        return large_counts(5_000 if quick else 100_000), "poisson"
    raise SystemExit(f"unknown problem {name!r}; choose from {PROBLEMS}")


def fit(kind, X, y, C, tol, method, seed):
    est = (SketchedLogisticRegression(C=C, tol=tol, method=method, random_state=seed,
                                      max_iter=200) if kind == "logistic"
           else SketchedPoissonRegressor(alpha=1.0 / C, tol=tol, method=method,
                                         random_state=seed, max_iter=200))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        return est, time.perf_counter() - t0


def run(ctx, args):
    rows = []
    Cs = [float(c) for c in args.C.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.problems.split(","):
        (X, y), kind = problem(name, args, ctx.quick)
        fit(kind, X, y, 1.0, 1e-4, "auto", 0)  # compilation
        for method in args.methods.split(","):
            for C in Cs:
                for seed in ctx.progress(seeds, desc=f"{name} C={C:g} {method}"):
                    for tol in LADDER:
                        est, seconds = fit(kind, X, y, C, tol, method, seed)
                        res = est.result_
                        rows.append(dict(problem=name, n=X.shape[0], p=X.shape[1], C=C,
                                         method=method, chosen=res.method, seed=seed, tol=tol,
                                         seconds=round(seconds, 4), nit=res.nit,
                                         passes=round(res.passes, 2), fun=res.fun,
                                         success=res.success, reason=res.reason))
                        print(f"  {name} C={C:g} {method} seed {seed} tol {tol:.0e}: "
                              f"{seconds:.2f} s, {res.nit} it, {res.method}, {res.reason}",
                              flush=True)
    path = ctx.path("results", "ladder", "csv")
    write_csv(path, rows, list(rows[0]))
    print(f"wrote {ctx.rel(path)}")
    print(summary(rows))


def summary(rows):
    """Per problem, C and method: the worst time ratio of a decade (a tol over the next looser
    one, over the seeds) and the most iterations a decade cost."""
    lines = ["| problem | C | method | worst time ratio per decade | most iterations per decade "
             "| failures |", "|---|---|---|---|---|---|"]
    keys = sorted({(r["problem"], r["C"], r["method"]) for r in rows})
    for key in keys:
        ratio, extra, failed = 0.0, 0, 0
        for seed in sorted({r["seed"] for r in rows if (r["problem"], r["C"], r["method"]) == key}):
            run_ = [r for r in rows if (r["problem"], r["C"], r["method"], r["seed"]) == key + (seed,)]
            run_.sort(key=lambda r: -r["tol"])
            failed += sum(not r["success"] for r in run_)
            for a, b in zip(run_, run_[1:]):
                ratio = max(ratio, b["seconds"] / max(a["seconds"], 1e-9))
                extra = max(extra, b["nit"] - a["nit"])
        lines.append(f"| {key[0]} | {key[1]:g} | {key[2]} | {ratio:.2f} | {extra} | {failed} |")
    return "\n".join(lines)
