"""L1 and elastic-net logistic regression: SketchedLogisticRegression(l1_ratio) vs the sparse solvers.

How long does each solver take to the same L1 / elastic-net objective? Every solver minimises

    f(w) = C sum_i log(1 + exp(-s_i x_i^T w)) + (1 - r)/2 ||w||^2 + r ||w||_1,   s_i = +-1

(scikit-learn's ``LogisticRegression(C, l1_ratio=r)`` objective) **without an intercept**:
celer cannot fit one and LIBLINEAR penalises it, so no intercept is the one objective every peer
minimises exactly. It is evaluated for every solver's ``coef_`` by :func:`objective` below, one
independent numpy function.

Multinomial problems (more than two classes, e.g. ``code-K8-n1e4-p2^14-w8``): the loss is
``logsumexp_k x_i^T w_k - x_i^T w_{y_i}`` over ``K`` coefficient vectors, all penalised (``W``
of shape ``(K, d)``): scikit-learn's multinomial objective. Only ours and ``saga`` minimise it;
the other peers are listed with the reason (``NO_MULTINOMIAL``).

Cells: problems ``a9a``, ``w8a`` (``data/libsvm``) and the binary code corpus
``code-bin-n1e4-p2^14-w8`` (``benchmarks/real_data.py``, p = 16,384 > n) by default; any problem
of the ``real`` study with ``--problems`` (``code-K8-n1e4-p2^14-w8``, ``code-bin-n1e5-p2^20-w8``);
``r = 1`` (lasso) and ``r = 0.5`` (``--ratios``), and two penalties (``--targets``): the ``C``
giving about 1% and about 10% non-zero coefficients (found by bisection on ``log C`` with our
solver at ``tol = 1e-6`` before the timed runs, not timed; the C and the non-zero share reached
are in the CSV). ``--solvers`` chooses the peers.

Solvers:

``sn:auto`` (ours)
    ``SketchedLogisticRegression(C, l1_ratio=r, fit_intercept=False, tol, max_iter=1000)``
    (proximal Newton; ``auto`` picks the exact Gram or coordinate descent on the data).
``liblinear`` (``r = 1`` only: it has no elastic net)
    ``LogisticRegression(penalty="l1", solver="liblinear", C, tol, fit_intercept=False)``:
    LIBLINEAR's newGLMNET.
``saga``
    ``LogisticRegression(penalty="l1" | "elasticnet", solver="saga", C, l1_ratio, tol,
    max_iter=100000, fit_intercept=False)``. The installed scikit-learn (1.9) has no Newton
    coordinate-descent solver for L1.
``glum``
    ``GeneralizedLinearRegressor(family="binomial", alpha=1/(n C), l1_ratio=r,
    fit_intercept=False, gradient_tol=tol)``: glum's mean loss plus ``alpha (r ||w||_1 +
    (1-r)/2 ||w||^2)`` times ``n C`` is ``f``.
``skglm``
    ``GeneralizedLinearEstimator(Logistic(), L1(1/(n C)) | L1_plus_L2(1/(n C), r),
    ProxNewton(tol, fit_intercept=False))``: skglm's ``Logistic`` is the mean loss.
``celer`` (``r = 1`` only)
    ``celer.LogisticRegression(C, tol)``: ``sum_i loss_i + ||w||_1 / C``, the same minimiser.

Protocol (the ``estimators`` study's, shared code in ``_common.py``): every run is a fresh
process (``python -m benchmarks l1 --one ...``) that loads the problem and warms up on a slice
of it (2,000 random rows, fewer on wide problems, and the 4,096 most frequent columns of those
rows: :func:`warm_up_slice`) at a ``C`` large enough for non-zero coefficients
(:func:`warm_up`; not timed), then runs the timed fit; ``--repeat`` fresh processes (default
2), the fastest counts; a fit is stopped after ``--cap`` seconds (default 60), a run whose
loading and warm-up take more than ``--warmup-cap`` seconds (default 180) is stopped and
reported as such, a solver that raises a MemoryError too (the ladder stops there). Equal accuracy:
``gap = (f - f_best) / |f_best|`` with ``f_best`` the smallest objective of any run of the cell;
a run counts only when ``gap <= 1e-8``. Each solver runs a tolerance ladder from loose to tight
and is credited with the loosest tolerance that reaches the gap. Speedup: the fastest peer that
reached the gap / ours (``cap / ours``, a lower bound marked ``>``, when none did). Run it on one
pinned core with one thread for every solver::

    flock /work/bench.lock taskset -c 0 env NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 \\
        OPENBLAS_NUM_THREADS=1 python -m benchmarks l1 --problems a9a,w8a

A reference run comes first (ours at ``tol = 1e-12``); then every peer's ladder, which stops at
the first tolerance within the gap of the best objective so far (the reference's and the
earlier runs'), then ours (the same rule). **The path** (``--path``): a 20-value path of ``C`` (``c_min * logspace(0.1, 3, 20)``,
``c_min`` the largest C with every coefficient zero) with 5-fold stratified cross-validation
(the same folds for everyone, scored by the log-loss of each solver's own CV) and the refit at
the chosen C, lasso, on the code corpus, no intercept: ``SketchedLogisticRegressionCV(Cs,
l1_ratio=1, tol=1e-8)`` against ``LogisticRegressionCV(Cs, l1_ratios=(1,), solver="saga",
tol=1e-4)`` and ``glum.GeneralizedLinearRegressorCV(alphas=1/(n_train C), l1_ratio=1,
gradient_tol=1e-8)``; one fresh process each, fastest of ``--repeat``, cap ``--path-cap``
(default 300 s). glum's ``alpha`` multiplies the mean loss, so its folds (``n_train`` rows) and
its refit (``n`` rows) sit at ``C`` values 5/4 apart: its refit's C is ``1 / (alpha n)``. The
table gives the time, the C chosen and the non-zeros of the refit.
``--quick``: ``a9a@2000`` only, both
ratios, cap 10 s, one run each. Writes ``results/l1[_quick]<tag>.csv`` and prints a markdown
table.
"""

import time
import warnings

import numpy as np
from scipy.special import xlogy

from sketchnewton.exceptions import InputError

from .._common import (GAP, EqualObjective, add_equal_objective_options, emit_result,
                       equal_objective_rows, print_table, timed_fit, tol_ladder, write_csv)

PROBLEMS = ("a9a", "w8a", "code-bin-n1e4-p2^14-w8")
QUICK_PROBLEMS = ("a9a@2000",)
RATIOS = (1.0, 0.5)
#: non-zero shares of the coefficients the two penalties aim at
TARGETS = (0.01, 0.10)
WARMUP_ROWS = 2000
WARMUP_COLS = 4096
#: compiled ahead of time (C, Cython): their warm-up only loads them, at a loose tolerance
NO_JIT = ("liblinear", "saga")
WARMUP_LOOSE_TOL = 1e-2
#: seconds a child may take to load its problem and warm up (``--warmup-cap``)
WARMUP_CAP = 180.0
OURS = ("sn:auto",)
#: the reference run (ours) that every ladder is measured against before its own runs
REFERENCE_TOL = 1e-12
LADDERS = {
    "sn:auto": (1e-6, 1e-8, 1e-10, 1e-12),
    "liblinear": (1e-4, 1e-6, 1e-8, 1e-10),
    "saga": (1e-4, 1e-6, 1e-8, 1e-10),
    "glum": (1e-4, 1e-6, 1e-8, 1e-10),
    "skglm": (1e-4, 1e-6, 1e-8, 1e-10),
    "celer": (1e-4, 1e-6, 1e-8, 1e-10),
}
COLUMNS = ("case", "problem", "l1_ratio", "C", "target_nnz", "nnz_share", "solver", "method",
           "tol", "time_s", "times_s", "warmup_s", "n_iter", "passes", "objective", "rel_gap",
           "reached", "timed_out", "warmup_timed_out", "error", "speedup_vs_best_peer",
           "speedup_is_lower_bound", "best_peer")


def load(problem):
    """``(X csr, y)`` of a problem name of ``benchmarks.studies.real``: ``y`` in ``{-1, +1}``
    for two classes, the class codes ``0 .. K-1`` for more (multinomial)."""
    from .real import PROBLEM_DIR, build_problem, load_problem, save_problem

    # the code corpus takes seconds to build: the parent saves it once, the children read it
    path = PROBLEM_DIR / (problem.replace("^", "_").replace("@", "_at_") + ".npz")
    if path.exists():
        X, y = load_problem(path)
    else:
        X, y, meta = build_problem(problem)
        save_problem(problem, X, y, meta)
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    y = np.where(codes == len(classes) - 1, 1.0, -1.0) if len(classes) == 2 else codes
    return X.tocsr(), y


def is_multinomial(y):
    """More than two classes (:func:`load` codes them ``0 .. K-1``, binary ones ``+-1``)."""
    return len(np.unique(y)) > 2


def objective(X, y, C, r, coef):
    """``C sum_i loss_i + (1 - r)/2 ||W||^2 + r ||W||_1``; numpy only. Binary (``y = +-1``):
    ``loss_i = log(1 + exp(-y_i x_i^T w))``; multinomial (``y`` the class codes, ``coef`` of
    shape ``(K, d)``): ``loss_i = logsumexp_k x_i^T w_k - x_i^T w_{y_i}``."""
    if is_multinomial(y):
        W = np.asarray(coef, dtype=np.float64)
        Z = np.asarray(X @ W.T)
        zmax = Z.max(axis=1)
        lse = zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))
        data = float(np.sum(lse - Z[np.arange(len(y)), y]))
        w = W.ravel()
    else:
        w = np.ravel(np.asarray(coef, dtype=np.float64))
        data = float(np.sum(np.logaddexp(0.0, -y * np.asarray(X @ w).ravel())))
    return float(C * data + 0.5 * (1 - r) * (w @ w) + r * np.abs(w).sum())


def lasso_certificate(X, y, C, coef):
    """What the duality gap can certify at a binary lasso solution (``y = +-1``, ``r = 1``,
    no intercept); numpy only, independent of the solvers.

    ``F(w) = C sum_i log(1 + exp(-y_i x_i^T w)) + ||w||_1`` has the dual
    ``D(a) = C sum_i H(a_i)`` (``H`` the binary entropy) over ``C ||X^T (y a)||_inf <= 1``;
    the point ``a = t sigmoid(-y z)``, ``t`` the largest share keeping it feasible, is the
    one the solvers stop on (docs/math.md 9.3). Returns the objective, the gap ``F - D``, the
    stationarity ``1 / t - 1`` (the largest violation of ``|g_j| <= 1`` relative to the
    weight), how many coordinates violate optimality by more than 1e-4 and 1e-6 (relative),
    the support's size and ``||w||_1``.
    """
    w = np.ravel(np.asarray(coef, dtype=np.float64))
    z = np.asarray(X @ w).ravel()
    a = 0.5 * (1.0 - np.tanh(0.5 * y * z))  # sigmoid(-y z), stable
    g = -C * np.asarray(X.T @ (y * a)).ravel()  # the loss's gradient
    on = w != 0
    viol = np.where(on, np.abs(g + np.sign(w)), np.maximum(np.abs(g) - 1.0, 0.0))
    t = min(1.0, 1.0 / float(np.abs(g).max()))
    at = t * a
    ent = -(xlogy(at, at) + xlogy(1.0 - at, 1.0 - at))
    fun = objective(X, y, C, 1.0, w)
    return dict(objective=fun, gap=fun - C * float(ent.sum()), stationarity=1.0 / t - 1.0,
                above_1e4=int(np.sum(viol > 1e-4)), above_1e6=int(np.sum(viol > 1e-6)),
                support=int(on.sum()), l1=float(np.abs(w).sum()))


#: the peers that minimise this objective on multinomial problems, and why the others cannot
NO_MULTINOMIAL = {
    "liblinear": "no multinomial loss (one-vs-rest only: another objective)",
    "glum": "no multinomial family",
    "skglm": "no multinomial datafit",
    "celer": "no multinomial loss (one-vs-rest only: another objective)",
}


def make_solver(solver, C, r, tol, n):
    """``fit(X, y) -> coef`` of one solver (see the module docstring)."""
    if solver.startswith("sn:"):
        from sketchnewton import SketchedLogisticRegression

        def fit(X, s):
            est = SketchedLogisticRegression(C=C, l1_ratio=r, fit_intercept=False, tol=tol,
                                             max_iter=1000, method=solver[3:], random_state=0)
            est.fit(X, s)
            fit.info = dict(method=est.result_.method, n_iter=int(est.result_.nit),
                            passes=float(est.result_.passes), success=bool(est.result_.success))
            return est.coef_
    elif solver in ("liblinear", "saga"):
        from sklearn.linear_model import LogisticRegression

        pen = dict(penalty="l1") if r == 1.0 else dict(penalty="elasticnet", l1_ratio=r)

        def fit(X, s):
            est = LogisticRegression(C=C, solver=solver, tol=tol, fit_intercept=False,
                                     max_iter=100_000 if solver == "saga" else 1000, **pen)
            est.fit(X, s)
            fit.info = dict(method=solver, n_iter=int(np.max(est.n_iter_)))
            return est.coef_
    elif solver == "glum":
        from glum import GeneralizedLinearRegressor

        def fit(X, s):
            est = GeneralizedLinearRegressor(family="binomial", alpha=1.0 / (n * C), l1_ratio=r,
                                             fit_intercept=False, gradient_tol=tol,
                                             max_iter=1000)
            est.fit(X, (s > 0).astype(np.float64))
            fit.info = dict(method=f"glum:{getattr(est, '_solver', 'auto')}",
                            n_iter=int(est.n_iter_))
            return est.coef_
    elif solver == "skglm":
        from skglm import GeneralizedLinearEstimator
        from skglm.datafits import Logistic
        from skglm.penalties import L1, L1_plus_L2
        from skglm.solvers import ProxNewton

        def fit(X, s):
            pen = L1(1.0 / (n * C)) if r == 1.0 else L1_plus_L2(1.0 / (n * C), r)
            est = GeneralizedLinearEstimator(Logistic(), pen,
                                             ProxNewton(tol=tol, fit_intercept=False,
                                                        max_iter=1000))
            est.fit(X, s)
            fit.info = dict(method="skglm:ProxNewton", n_iter=-1)
            return est.coef_
    elif solver == "celer":
        import celer

        def fit(X, s):
            est = celer.LogisticRegression(C=C, tol=tol, fit_intercept=False, max_iter=1000)
            est.fit(X, s)
            fit.info = dict(method="celer-pn", n_iter=int(np.max(getattr(est, "n_iter_", -1))))
            return est.coef_
    else:
        raise SystemExit(f"unknown solver {solver!r}")
    fit.info = {}
    return fit


def solvers_for(r, multinomial=False, chosen=None):
    """``(peers to run, {peer: why it does not run})`` for ``l1_ratio = r``: every peer of the
    module docstring that minimises the objective (``chosen``: only those named)."""
    peers = ["liblinear", "saga", "glum", "skglm", "celer"]
    skipped = {}
    for p in peers:
        if chosen is not None and p not in chosen:
            skipped[p] = None  # not asked for: no row
        elif r != 1.0 and p in ("liblinear", "celer"):
            skipped[p] = None  # no elastic net: "-" in the tables, as before
        elif multinomial and p in NO_MULTINOMIAL:
            skipped[p] = NO_MULTINOMIAL[p]
    return [p for p in peers if p not in skipped], {p: w for p, w in skipped.items() if w}


def calibrate(X, s, r, target):
    """The ``C`` whose solution has about ``target`` non-zero coefficients (bisection on
    ``log10 C`` with our solver at tol 1e-6): ``(C, share)``."""
    from sketchnewton import SketchedLogisticRegression
    from sketchnewton.estimators import c_min

    # the smallest C with a non-zero coefficient (multinomial: of the K d coefficients)
    c0 = c_min(X, s, fit_intercept=False, l1_ratio=r)
    lo, hi = np.log10(c0), np.log10(c0) + 6
    best = (c0, 0.0)
    for _ in range(14):
        mid = 0.5 * (lo + hi)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = SketchedLogisticRegression(C=10 ** mid, l1_ratio=r, fit_intercept=False,
                                             tol=1e-6, max_iter=200).fit(X, s)
        share = np.count_nonzero(est.coef_) / est.coef_.size
        best = (10 ** mid, share) if abs(np.log(max(share, 1e-9) / target)) < \
            abs(np.log(max(best[1], 1e-9) / target)) else best
        if share > target:
            hi = mid
        else:
            lo = mid
        if abs(share - target) <= 0.1 * target:
            break
    return best


PATH_PROBLEM = "code-bin-n1e4-p2^14-w8"
PATH_SOLVERS = ("path:sn", "path:saga", "path:glum")
N_FOLDS = 5


def path_grid(X, s, n_values=20):
    """``c_min * logspace(0.1, 3, n)``: from just above the all-zero solution (lasso)."""
    c0 = 2.0 / float(np.abs(X.T @ s).max())  # ``1 / max_j |x_j^T (s - 0) / 2|`` for s in +-1
    return c0 * np.logspace(0.1, 3, n_values)


def fit_path_cv(solver, X, s, Cs, tol):
    """``(coef, C chosen)`` of one path solver with CV (see the module docstring)."""
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(N_FOLDS).split(X, s))
    if solver == "path:sn":
        from sketchnewton import SketchedLogisticRegressionCV

        est = SketchedLogisticRegressionCV(Cs=Cs, l1_ratio=1.0, cv=folds, fit_intercept=False,
                                           tol=tol, scoring="neg_log_loss", max_iter=1000)
        est.fit(X, s)
        return est.coef_.ravel(), float(est.C_)
    if solver == "path:saga":
        from sklearn.linear_model import LogisticRegressionCV

        est = LogisticRegressionCV(Cs=Cs, l1_ratios=(1.0,), solver="saga", cv=folds, tol=tol,
                                   fit_intercept=False, scoring="neg_log_loss", max_iter=10000,
                                   use_legacy_attributes=False)
        est.fit(X, s)
        return est.coef_.ravel(), float(np.ravel(est.C_)[0])
    from glum import GeneralizedLinearRegressorCV

    n_train = X.shape[0] * (N_FOLDS - 1) / N_FOLDS
    est = GeneralizedLinearRegressorCV(family="binomial", alphas=np.sort(1.0 / (n_train * Cs))[::-1],
                                       l1_ratio=[1.0], cv=folds, fit_intercept=False,
                                       gradient_tol=tol)
    est.fit(X, (s > 0).astype(np.float64))
    # glum's alpha multiplies the mean loss: its refit on all n rows is at C = 1 / (alpha n)
    return est.coef_, float(1.0 / (est.alpha_ * X.shape[0]))


def warm_up_slice(X, y, rows=WARMUP_ROWS, cols=WARMUP_COLS, random_state=0):
    """The warm-up problem: ``rows`` random rows (every class kept) and the ``cols`` columns
    with the most non-zeros in them, fewer rows when ``X`` is wider than tall so that the slice
    is too (the same ``auto`` choice of method, the same kernels). Its purpose is to compile
    every solver's numba code before the timed fit: glum's dense ``p x p`` Hessian made a
    warm-up on 2,000 rows of all 16,384 columns take minutes."""
    n, d = X.shape
    cols = min(d, cols)
    rows = min(n, rows, max(int(np.ceil(cols * n / d)), 50) if d > n else rows)
    rng = np.random.default_rng(random_state)
    for _ in range(20):
        idx = np.sort(rng.choice(n, rows, replace=False))
        if len(np.unique(y[idx])) == len(np.unique(y)):
            break
    Xr = X[idx]
    # the most frequent columns of these rows: the first ones of a hashed space would leave
    # almost every row of the p = 2^20 corpus empty
    keep = np.sort(np.argsort(-np.bincount(Xr.indices, minlength=d), kind="stable")[:cols])
    return Xr[:, keep].tocsr(), y[idx]


def warm_up(solver, X, y, C, r, tol):
    """Fit ``solver`` on :func:`warm_up_slice` at ``C`` scaled by ``n / rows`` (times 4) and at
    least twice the slice's ``c_min``: the same penalty per row and more, so that the warm-up
    solution has non-zero coefficients and every kernel of the timed fit runs (and is compiled:
    skglm compiles its numba code at the first fit that reaches its inner solver; a warm-up whose
    solution is zero stops before it and left 5 s of compilation in skglm's timed fits). The
    solvers without compiled-at-run-time code (``NO_JIT``) warm up at ``WARMUP_LOOSE_TOL``: saga
    at tol 1e-6 and that C took minutes on the code corpus' slice. The number of non-zero
    coefficients of the warm-up solution."""
    from sketchnewton.estimators import c_min

    Xw, yw = warm_up_slice(X, y)
    cw = max(C * 4.0 * X.shape[0] / Xw.shape[0], 2.0 * c_min(Xw, yw, fit_intercept=False,
                                                                l1_ratio=r))
    tol = max(tol, WARMUP_LOOSE_TOL) if solver in NO_JIT else tol
    if solver == "sn:auto" and len(np.unique(y)) == 2:
        # the form ``auto`` takes for the whole problem (on 2,000 rows of w8a it took ``prox_cd``
        # where the timed fit takes ``prox``, whose kernels then loaded in the timed fit)
        from sketchnewton._auto import choose_prox
        from sketchnewton.losses import LogisticLoss

        solver = "sn:" + choose_prox(LogisticLoss(X, (y == y.max()).astype(np.float64)))
    coef = make_solver(solver, cw, r, tol, Xw.shape[0])(Xw, yw)
    return int(np.count_nonzero(coef))


def run_one(args):
    """Child: fit one solver on one cell, print a ``RESULT`` line."""
    if args.solver.startswith("path:"):
        return run_one_path(args)
    X, s = load(args.problem)
    C, r = args.C, args.l1_ratio
    out = dict(case=args.case, solver=args.solver, tol=args.tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        try:
            warm_up(args.solver, X, s, C, r, args.tol)
            out["warmup_time"] = time.perf_counter() - t0
            fit = make_solver(args.solver, C, r, args.tol, X.shape[0])
            box = {}
            out["time"] = timed_fit(lambda: box.setdefault("coef", fit(X, s)))
        except MemoryError as e:
            # a solver that cannot hold its own data structures (glum's dense Hessian at
            # p = 2^20) is a result of the benchmark, not a failure of it
            out.update(time=float("inf"), objective=float("nan"), n_iter=-1,
                       passes=float("nan"), error=f"MemoryError {e}"[:200])
            return emit_result(out)
    out.update(dict(method=args.solver, n_iter=-1, passes=float("nan")), **fit.info)
    out["objective"] = objective(X, s, C, r, box["coef"])
    out["nnz"] = int(np.count_nonzero(box["coef"]))
    emit_result(out)


def run_one_path(args):
    """Child: one path solver with CV on ``PATH_PROBLEM``."""
    X, s = load(args.problem)
    Cs = path_grid(X, s)
    out = dict(case="path", solver=args.solver, tol=args.tol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        warm_up("sn:auto" if args.solver == "path:sn" else args.solver[5:], X, s,
                float(Cs[len(Cs) // 2]), 1.0, 1e-4)
        out["warmup_time"] = time.perf_counter() - t0
        box = {}
        out["time"] = timed_fit(lambda: box.setdefault("fit", fit_path_cv(args.solver, X, s, Cs,
                                                                          args.tol)))
    coef, C = box["fit"]
    out.update(method=args.solver, C=C, nnz=int(np.count_nonzero(coef)),
               objective=objective(X, s, C, 1.0, coef), n_iter=-1, passes=float("nan"))
    emit_result(out)


def run_path(ctx, args):
    """The path study (``--path``)."""
    from .._common import spawn

    cap = args.path_cap
    problem = args.problems or ("a9a@2000" if ctx.quick else PATH_PROBLEM)
    repeat = args.repeat or (1 if ctx.quick else 2)
    tols = {"path:sn": 1e-8, "path:saga": 1e-4, "path:glum": 1e-8}
    rows = []
    for solver in PATH_SOLVERS:
        r = spawn("l1", ["--case", "path", "--solver", solver, "--tol", repr(tols[solver]),
                         "--n", 0, "--problem", problem], cap, repeat=repeat,
                  blas_threads=1, info=dict(case="path", solver=solver, tol=tols[solver]))
        rows.append(r)
        print(f"[l1 path] {solver}: {r['time']:.2f} s, C = {r.get('C', float('nan')):.4g}, "
              f"{r.get('nnz', -1)} non-zeros, objective {r['objective']:.12g}", flush=True)
    path = args.csv or ctx.path("results", f"l1_path{args.tag}", "csv")
    write_csv(path, rows, ("case", "solver", "tol", "time", "times", "warmup_time", "C", "nnz",
                           "objective", "timed_out"))
    ours = rows[0]["time"]
    print("\n| solver | tol | time (s) | C chosen | non-zeros | time / ours |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        t = f"> {cap:g}" if r["timed_out"] else f"{r['time']:.2f}"
        print(f"| {r['solver']} | {r['tol']:g} | {t} | {r.get('C', float('nan')):.4g} | "
              f"{r.get('nnz', '')} | {r['time'] / ours:.2f} |")


def path_figure(ctx, problem="a9a", n_values=40):
    """``plots/l1_path.png``: the lasso path of ``problem`` (coefficients against ``C``) from
    :func:`sketchnewton.logistic_regression_path` (``l1_ratio=1``, intercept fitted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchnewton import logistic_regression_path
    from sketchnewton.estimators import c_min

    X, s = load(problem)
    c0 = c_min(X, s, l1_ratio=1.0)
    Cs = c0 * np.logspace(0, 2.5, n_values)
    t0 = time.perf_counter()
    W, Cs, n_iter = logistic_regression_path(X, s, Cs, l1_ratio=1.0, tol=1e-8)
    seconds = time.perf_counter() - t0
    coef = W[:, 0, :-1]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(Cs, coef, lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("C")
    ax.set_ylabel("coefficient")
    ax.set_title(f"lasso path of {problem} ({n_values} values of C from c_min, "
                 f"{seconds:.2f} s, {int(n_iter.sum())} Newton iterations)")
    fig.tight_layout()
    path = ctx.path("plots", "l1_path", "png")
    fig.savefig(path, dpi=120)
    print(f"[l1] {path}: {seconds:.2f} s, non-zeros along the path "
          f"{[int(np.count_nonzero(c)) for c in coef]}", flush=True)


def not_run(base, solver, why):
    """The CSV row of a solver that does not run on a cell, with the reason."""
    return dict(base, solver=solver, method=solver, tol=float("nan"), time_s=float("nan"),
                n_iter=-1, passes=float("nan"), objective=float("nan"), rel_gap=float("nan"),
                reached=False, timed_out=False, speedup_vs_best_peer=float("nan"), error=why)


def add_arguments(ap):
    ap.add_argument("--problems", default=None,
                    help=f"comma-separated problems (default {','.join(PROBLEMS)})")
    ap.add_argument("--ratios", default=None, help="comma-separated l1_ratio values (1,0.5)")
    ap.add_argument("--targets", default=None,
                    help="comma-separated non-zero shares of the penalties (0.01,0.1)")
    ap.add_argument("--solvers", default=None,
                    help="comma-separated peers to run (default: liblinear,saga,glum,skglm,"
                         "celer, those that minimise the cell's objective)")
    ap.add_argument("--warmup-cap", type=float, default=WARMUP_CAP,
                    help="seconds a run may take to load and warm up before its timed fit; a "
                         "peer over it is reported as such (default %(default)g)")
    ap.add_argument("--csv", default=None, help="CSV path (default results/l1_<mode><tag>.csv)")
    ap.add_argument("--path", action="store_true", help="the path study (see the docstring)")
    ap.add_argument("--figure", action="store_true",
                    help="plots/l1_path.png: the lasso path of a9a (not timed)")
    ap.add_argument("--path-cap", type=float, default=300.0, help="seconds per path fit")
    ap.add_argument("--problem", help="(child) the problem")
    ap.add_argument("--C", type=float, default=1.0, help="(child) C")
    ap.add_argument("--l1-ratio", type=float, default=1.0, help="(child) l1_ratio")
    add_equal_objective_options(ap)


def run(ctx, args):
    if args.one:
        return run_one(args)
    if args.path:
        return run_path(ctx, args)
    if args.figure:
        return path_figure(ctx)
    problems = (args.problems.split(",") if args.problems
                else list(QUICK_PROBLEMS) if ctx.quick else list(PROBLEMS))
    ratios = [float(v) for v in args.ratios.split(",")] if args.ratios else list(RATIOS)
    targets = [float(v) for v in args.targets.split(",")] if args.targets else list(TARGETS)
    chosen = args.solvers.split(",") if args.solvers else None
    unknown = set(chosen or ()) - set(LADDERS)
    if unknown:
        raise SystemExit(f"unknown solvers {sorted(unknown)}; peers: {sorted(LADDERS)[1:]}")
    cap = args.cap or (10.0 if ctx.quick else 60.0)
    repeat = args.repeat or (1 if ctx.quick else 2)
    rows = []
    for problem in problems:
        X, s = load(problem)
        multinomial = is_multinomial(s)
        for r in ratios:
            for target in targets:
                case = f"{problem} r={r:g} {100 * target:g}%"
                try:
                    C, share = calibrate(X, s, r, target)
                except InputError as e:
                    # ours cannot fit the problem (no form of proximal Newton fits in memory):
                    # the C of the cell comes from our solver, so the cell is not run at all
                    print(f"[l1] {case}: ours cannot run it: {e}", flush=True)
                    base = dict(case=case, problem=problem, l1_ratio=r, C=float("nan"),
                                target_nnz=target, nnz_share=float("nan"))
                    rows += [not_run(base, "sn:auto", f"InputError: {e}")]
                    run_peers, skipped = solvers_for(r, multinomial, chosen)
                    rows += [not_run(base, p, "not run: the cell's C is calibrated by ours")
                             for p in run_peers]
                    rows += [not_run(base, p, why) for p, why in skipped.items()]
                    continue
                C = float(C)
                print(f"[l1] {case}: C = {C:.4g} ({100 * share:.2f}% non-zero)", flush=True)
                eq = EqualObjective("l1", 0, cap, repeat, 1,
                                    ("--problem", problem, "--C", repr(float(C)),
                                     "--l1-ratio", repr(float(r))), setup_cap=args.warmup_cap)
                # the reference: ours at the tightest tolerance, so that every ladder (the first
                # one too) stops only within the gap of a good objective
                reference = eq.run(case, "sn:auto", REFERENCE_TOL)
                peers = {}
                run_peers, skipped = solvers_for(r, multinomial, chosen)
                for peer in run_peers:
                    peers[peer] = tol_ladder(lambda tol, p=peer: eq.run(case, p, tol),
                                             LADDERS[peer], [reference] + [x for v in
                                                                           peers.values()
                                                                           for x in v])
                    last = peers[peer][-1]
                    print(f"[l1] {case}: {peer} {last['time']:.3g} s at tol {last['tol']:g}"
                          + (" (warm-up over its cap)" if last.get("warmup_timed_out") else "")
                          + (f" ({last['error']})" if last.get("error") else ""), flush=True)
                ours = tol_ladder(lambda tol: eq.run(case, "sn:auto", tol), LADDERS["sn:auto"],
                                  [reference] + [x for v in peers.values() for x in v])
                reference = dict(reference, solver="sn:reference")
                # ours: the loosest tolerance of the ladder that reaches the gap
                f_all = [q["objective"] for q in ours + [reference]
                         + [x for v in peers.values() for x in v]
                         if np.isfinite(q["objective"])]
                fb = min(f_all) if f_all else np.nan
                ok = [q for q in ours if (q["objective"] - fb) / abs(fb) <= GAP]
                chosen_run = [ok[0] if ok else ours[-1]]
                base = dict(case=case, problem=problem, l1_ratio=r, C=C, target_nnz=target,
                            nnz_share=share)
                # the reference is a row too: its objective counts in f_best
                rows += equal_objective_rows(base, chosen_run + [reference], peers, cap)
                # the peers that cannot minimise this objective: a row with the reason
                rows += [not_run(base, p, why) for p, why in skipped.items()]
    path = args.csv or ctx.path("results", f"l1{args.tag}", "csv")
    write_csv(path, rows, COLUMNS)
    print_table(rows, cap, f"L1 / elastic-net logistic regression (no intercept), 1e-8 gap; "
                f"cap {cap:g} s, warm-up cap {args.warmup_cap:g} s; {path}")
