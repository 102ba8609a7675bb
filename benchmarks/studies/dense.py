"""Dense data: linear probes on embedding-like features (many classes) and random features of a9a.

Is ``SketchedLogisticRegression`` faster than scikit-learn's lbfgs (the solver users have for
many classes), newton-cholesky and glum (binary) on dense problems, at equal objective (issue 23)?

Problems (``--problems``, comma-separated):

``probe-n<N>-p<P>-K<K>``
    An embedding-like planted linear probe (:func:`make_probe`): float32, ``N`` rows, ``P``
    features, ``K`` classes; class means on a random 32-dimensional subspace, noise with a
    decaying spectrum (variance of direction ``j`` proportional to ``1 / j``, rotated by a random
    orthogonal matrix), 5% of the labels replaced by uniform draws. Seeded (``random_state=0``).
``a9a-rff<P>``
    Random Fourier features of LIBSVM a9a (``data/libsvm``, 48,842 rows, train and test):
    ``sklearn.kernel_approximation.RBFSampler(n_components=P, gamma, random_state=0)`` with
    ``gamma = 1 / median(||x_i - x_j||^2)`` over 2,000 random rows (the median heuristic),
    float64 as scikit-learn returns it; binary.

The objective of every solver is ``C sum_i loss_i + 1/2 ||W||^2``, intercept unpenalised
(scikit-learn's ``LogisticRegression(C)``), evaluated for every solver's ``coef_, intercept_``
by :func:`objective` (numpy, float64, row blocks: no copy of the data).

Solvers: ``sn:auto`` (ours), ``sn:subsampled`` and ``sn:cg+kronecker`` (many classes; for
reference: the sub-sampled Newton-CG and the Newton-CG with the Kronecker-factored
preconditioner of docs/math.md 8.7-8.8), scikit-learn ``lbfgs`` (on the float32 data as given:
scikit-learn then computes in float32, and its objective stalls near a relative gap of 1e-6),
``lbfgs-f64`` (many classes: the same on ``X.astype(float64)``, the conversion inside the timed
fit: what a user wanting 1e-8 must do) and ``newton-cholesky`` (the
latter only where its ``(p K)^2`` Hessian fits in 4 GB), ``glum`` (binary). Ours run with
``tol`` 1e-4, 1e-6, 1e-8, 1e-10 (relative objective accuracy), the peers with their tolerance ladders
(lbfgs, glum 1e-4 .. 1e-10, newton-cholesky 1e-4 .. 1e-8), loose first, until a run is within
1e-8 of the best objective so far. Each run is a fresh process (``python -m benchmarks dense
--one ...``) that loads the cached problem, warms up on 2,000 rows (not timed), fits once (timed,
cap ``--cap`` seconds) and reports its peak resident memory (``VmHWM`` of the process since its
start: interpreter, imports, data, warm-up and fit) and its resident memory before the fit. Equal objective: ``f_best`` the
smallest objective of any run on the problem, ``gap = (f - f_best) / |f_best|``; per gap
(1e-6 and 1e-8) each solver is credited with its loosest run that reaches it; speedup = the
fastest peer's credited time / ours.

Timed runs are meant for one pinned core: run as
``flock /work/bench.lock taskset -c 0 env NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1
OPENBLAS_NUM_THREADS=1 python -m benchmarks dense ...`` (children inherit the affinity and the
environment).

    python -m benchmarks dense --quick        # two small problems, under two minutes
    python -m benchmarks dense --problems probe-n1e5-p256-K100,a9a-rff1000 --C 1,100

Output: ``results/dense[_quick].csv`` (one row per problem, C, gap and solver) and
``results/dense[_quick]_runs.csv`` (every run), and a Markdown table on standard output.
"""

import argparse
import json
import re
import resource
import time
import warnings
from pathlib import Path

import numpy as np

from .._common import BENCH, emit_result, rel_gap, run_child, study_command, timed_fit, write_csv
from ..figures import _plt, read_csv, save_figure

PROBLEM_DIR = BENCH / ".cache" / "problems"
DEFAULT_PROBLEMS = ("a9a-rff1000", "probe-n1e5-p256-K100", "probe-n2e4-p128-K1000")
QUICK_PROBLEMS = ("a9a-rff200", "probe-n5000-p64-K20")
OURS_MULTI = ("sn:auto", "sn:subsampled", "sn:cg+kronecker")
OURS_BINARY = ("sn:auto",)
#: ours start where the peers' ladders start: a loose tolerance may land within a gap (the
#: full-size probe at tol 1e-4 ended 2.5e-7 from the best, in 7 Newton steps against 8)
OUR_TOLS = (1e-4, 1e-6, 1e-8, 1e-10)
PEER_TOLS = {"lbfgs": (1e-4, 1e-6, 1e-8, 1e-10), "lbfgs-f64": (1e-4, 1e-6, 1e-8, 1e-10),
             "newton-cholesky": (1e-4, 1e-6, 1e-8),
             "glum": (1e-4, 1e-6, 1e-8, 1e-10)}
QUICK_OUR_TOLS = (1e-6, 1e-10)
QUICK_PEER_TOLS = {"lbfgs": (1e-6, 1e-10), "lbfgs-f64": (1e-6, 1e-10),
                   "newton-cholesky": (1e-6, 1e-10),
                   "glum": (1e-6, 1e-10)}
GAPS = (1e-6, 1e-8)
NEWTON_CHOLESKY_BYTES = 4 << 30
WARMUP_ROWS = 2000
RUN_COLUMNS = ["problem", "C", "solver", "tol", "time_s", "timed_out", "objective", "rel_gap",
               "n_iter", "method", "passes", "peak_rss_mb", "rss_before_fit_mb", "data_mb",
               "warmup_s", "error"]


# ============================================================================ problems

def make_probe(n, p, K, *, rank=32, label_noise=0.05, separation=3.0, random_state=0):
    """``(X float32 (n, p), y (n,))``: class means ``separation / sqrt(rank) N(0, I_rank)`` on a
    random ``rank``-dimensional subspace, noise ``N(0, diag(sigma^2))`` rotated by a random
    orthogonal matrix with ``sigma_j^2 ~ 1 / j`` (mean 1), a share ``label_noise`` of the labels
    replaced by uniform draws."""
    rng = np.random.default_rng(random_state)
    U = np.linalg.qr(rng.standard_normal((p, rank)))[0]
    means = ((rng.standard_normal((K, rank)) * (separation / np.sqrt(rank))) @ U.T)
    y = rng.integers(0, K, n)
    sigma = 1.0 / np.sqrt(1.0 + np.arange(p))
    sigma /= np.sqrt(np.mean(sigma ** 2))
    Q = np.linalg.qr(rng.standard_normal((p, p)))[0].astype(np.float32)
    X = np.empty((n, p), dtype=np.float32)
    for a in range(0, n, 20_000):
        b = min(n, a + 20_000)
        E = (rng.standard_normal((b - a, p)) * sigma).astype(np.float32)
        X[a:b] = E @ Q.T + means[y[a:b]].astype(np.float32)
    flip = rng.random(n) < label_noise
    y[flip] = rng.integers(0, K, int(flip.sum()))
    return X, y


def make_rff(name, P, random_state=0):
    """``(X float64 (n, P), y)``: ``RBFSampler`` features of a LIBSVM set, median-heuristic
    gamma."""
    from sklearn.kernel_approximation import RBFSampler

    from ..real_data import load_libsvm

    A, y = load_libsvm(name)
    A = A.toarray()
    rng = np.random.default_rng(random_state)
    rows = rng.choice(A.shape[0], min(2000, A.shape[0]), replace=False)
    S = A[rows]
    sq = np.sum(S * S, axis=1)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * S @ S.T, 0.0)
    gamma = 1.0 / float(np.median(D2[np.triu_indices_from(D2, 1)]))
    X = RBFSampler(gamma=gamma, n_components=P, random_state=random_state).fit_transform(A)
    return np.ascontiguousarray(X), (y > 0).astype(np.int64)


def _num(s):
    return int(float(s))


def build_problem(name):
    m = re.fullmatch(r"probe-n([0-9e.]+)-p(\d+)-K(\d+)", name)
    if m:
        return make_probe(_num(m[1]), int(m[2]), int(m[3]))
    m = re.fullmatch(r"(a9a|w8a)-rff(\d+)", name)
    if m:
        return make_rff(m[1], int(m[2]))
    raise SystemExit(f"python -m benchmarks dense: unknown problem {name!r}")


def problem_path(name):
    """The cached ``.npz`` of a problem (built on first use)."""
    path = PROBLEM_DIR / f"dense-{name}.npz"
    if not path.exists():
        X, y = build_problem(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, X=X, y=y)
        tmp.replace(path)
    return path


# ============================================================================ objective

def objective(X, y, C, coef, intercept):
    """``C sum_i loss_i + 1/2 ||coef||^2`` in float64, by blocks of 8192 rows."""
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.ravel(np.asarray(intercept, dtype=np.float64))
    total = 0.0
    binary = coef.shape[0] == 1
    for a in range(0, X.shape[0], 8192):
        Z = np.asarray(X[a:a + 8192], dtype=np.float64) @ coef.T + b
        ya = y[a:a + 8192]
        if binary:
            z = Z[:, 0]
            total += float(np.sum(np.logaddexp(0.0, z) - (ya == 1) * z))
        else:
            zmax = Z.max(axis=1)
            lse = zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))
            total += float(np.sum(lse - Z[np.arange(Z.shape[0]), ya]))
    return C * total + 0.5 * float(np.sum(coef * coef))


# ============================================================================ one run (child)

def make_estimator(solver, C, tol):
    if solver.startswith("sn:"):
        from sketchnewton import SketchedLogisticRegression

        method, _, preconditioner = solver[3:].partition("+")
        return SketchedLogisticRegression(C=C, tol=tol, method=method,
                                          preconditioner=preconditioner or "auto",
                                          max_iter=1000, random_state=0)
    if solver in ("lbfgs", "lbfgs-f64", "newton-cholesky"):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=C, solver=solver.partition("-f64")[0], tol=tol,
                                  max_iter=100_000 if solver != "newton-cholesky" else 1000)
    if solver == "glum":
        from glum import GeneralizedLinearRegressor

        return GeneralizedLinearRegressor(family="binomial", alpha=None, l1_ratio=0.0,
                                          fit_intercept=True, gradient_tol=tol, max_iter=1000)
    raise SystemExit(f"unknown solver {solver!r}")


def _peak_mb():
    """``VmHWM`` of this process: its peak resident memory since its ``exec`` (``ru_maxrss``
    would include the parent's at the fork)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _fit(est, solver, X, y, C):
    if solver == "glum":  # alpha = 1 / (n C): glum's objective times n C is ours (real.py)
        est.set_params(alpha=1.0 / (X.shape[0] * C))
        est.fit(X, y.astype(np.float64))
    elif solver == "lbfgs-f64":  # float32 data converted by the user (inside the timed fit)
        est.fit(X.astype(np.float64), y)
    else:
        est.fit(X, y)
    return est


def run_one(args):
    """Child: load the problem, warm up, one timed fit; one ``RESULT`` line."""
    z = np.load(problem_path(args.problem))
    X, y = z["X"], z["y"]
    args.C = float(args.C)
    out = dict(problem=args.problem, C=args.C, solver=args.solver, tol=args.tol,
               data_mb=X.nbytes / 2**20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        warm = make_estimator(args.solver, args.C, 1e-4)
        _fit(warm, args.solver, X[:WARMUP_ROWS], y[:WARMUP_ROWS], args.C)
        out["warmup_s"] = time.perf_counter() - t0
        del warm
        est = make_estimator(args.solver, args.C, args.tol)
        out["rss_before_fit_mb"] = _rss_mb()
        out["time"] = timed_fit(lambda: _fit(est, args.solver, X, y, args.C))
    out["peak_rss_mb"] = _peak_mb()
    res = getattr(est, "result_", None)
    if res is not None:
        out["method"] = str(res.method) + (f":{res.preconditioner}"
                                           if res.get("preconditioner") else "")
        out["passes"] = float(res.passes)
    else:
        out["method"], out["passes"] = args.solver, float("nan")
    out["n_iter"] = int(np.max(est.n_iter_))
    coef = np.asarray(est.coef_)
    out["objective"] = objective(X, y, args.C, coef if coef.ndim == 2 else coef[None, :],
                                 est.intercept_)
    emit_result(out)


# ============================================================================ parent

def add_arguments(ap):
    ap.add_argument("--problems", default=None,
                    help=f"comma-separated problems (default {','.join(DEFAULT_PROBLEMS)}; "
                         f"quick {','.join(QUICK_PROBLEMS)})")
    ap.add_argument("--C", default="1", help="comma-separated C values (default 1)")
    ap.add_argument("--solvers", default=None,
                    help="comma-separated subset of the solvers (default: all that apply)")
    ap.add_argument("--cap", type=float, default=None,
                    help="seconds per timed fit (default 300, quick 30)")
    ap.add_argument("--tag", default="", help="suffix of the CSV names")
    ap.add_argument("--peer-tols", default=None,
                    help="comma-separated tolerance ladder of every peer (default: its own)")
    ap.add_argument("--reference", default=None, metavar="CSV[,CSV...]",
                    help="run CSVs of earlier runs: their objectives count in the ladders' "
                         "stopping rule (a rerun of one solver against peers already run)")
    ap.add_argument("--k-sweep", default=None, metavar="CSV[,CSV...]",
                    help="no runs: the time-against-K table and plot of the probes in these "
                         "results CSVs (written by earlier runs of this study), "
                         "results/dense_ksweep.csv and plots/dense_ksweep.png")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--problem", help=argparse.SUPPRESS)
    ap.add_argument("--solver", help=argparse.SUPPRESS)
    ap.add_argument("--tol", type=float, default=1e-8, help=argparse.SUPPRESS)


def _shape(name):
    """``(n, d, K, data MB)`` of a problem, read without loading it in this (parent) process,
    whose resident memory its children would otherwise inherit in ``ru_maxrss``."""
    path = problem_path(name)
    meta = path.with_suffix(".json")
    if not meta.exists():
        z = np.load(path)
        X = z["X"]
        meta.write_text(json.dumps(dict(n=X.shape[0], d=X.shape[1], K=int(len(np.unique(z["y"]))),
                                        data_mb=X.nbytes / 2**20)))
    m = json.loads(meta.read_text())
    return m["n"], m["d"], m["K"], m["data_mb"]


def _solvers(name, K, d, wanted):
    ours = OURS_BINARY if K == 2 else OURS_MULTI
    peers = ["lbfgs"] + (["lbfgs-f64"] if K > 2 else [])
    params = (d + 1) * (1 if K == 2 else K)
    if 8.0 * params ** 2 <= NEWTON_CHOLESKY_BYTES:
        peers.append("newton-cholesky")
    if K == 2:
        peers.append("glum")
    keep = (lambda s: True) if wanted is None else (lambda s: s in wanted)
    return [s for s in ours if keep(s)], [s for s in peers if keep(s)]


def _run(args_cap, problem, C, solver, tol):
    cmd = study_command("dense", "--one", "--problem", problem, "--C", repr(C), "--solver",
                        solver, "--tol", repr(tol))
    try:
        r = run_child(cmd, args_cap)
    except RuntimeError as exc:
        r = dict(error=str(exc).splitlines()[-1][:200])
    if r is None:
        r = dict(time=float("inf"), timed_out=True)
    r = dict(dict(problem=problem, C=C, solver=solver, tol=tol, objective=float("nan"),
                  time=float("inf"), timed_out=False, error=""), **r)
    print(f"  {problem} C={C:g} {solver} tol={tol:g}: {r['time']:.2f} s, f={r['objective']:.12e}"
          f", peak {r.get('peak_rss_mb', float('nan')):.0f} MB {r.get('error', '')}", flush=True)
    return r


#: a tighter tolerance that moves a solver's objective by less than this (relative) is the last
#: of its ladder: the solver has stalled (scikit-learn's lbfgs on float32 data near gap 1e-6)
STALL = 1e-12


def _ladder(run, tols, others):
    runs = []
    for tol in tols:
        r = run(tol)
        runs.append(r)
        if r["timed_out"] or r["error"]:
            break
        f = [q["objective"] for q in list(others) + runs if np.isfinite(q["objective"])]
        if f and rel_gap(r["objective"], min(f)) <= min(GAPS):
            break
        if len(runs) > 1 and abs(rel_gap(r["objective"], runs[-2]["objective"])) <= STALL:
            break
    return runs


def run(ctx, args):
    if args.one:
        return run_one(args)
    if args.k_sweep:
        return k_sweep(ctx, [Path(p) for p in args.k_sweep.split(",")])
    names = (args.problems.split(",") if args.problems
             else QUICK_PROBLEMS if ctx.quick else DEFAULT_PROBLEMS)
    Cs = [float(c) for c in args.C.split(",")]
    cap = args.cap or (30.0 if ctx.quick else 300.0)
    our_tols = QUICK_OUR_TOLS if ctx.quick else OUR_TOLS
    peer_tols = QUICK_PEER_TOLS if ctx.quick else PEER_TOLS
    if args.peer_tols:
        ladder = tuple(float(t) for t in args.peer_tols.split(","))
        peer_tols = {s: ladder for s in peer_tols}
    wanted = set(args.solvers.split(",")) if args.solvers else None
    reference = [r for path in (args.reference.split(",") if args.reference else [])
                 for r in read_csv(Path(path)) if isinstance(r["objective"], (int, float))]
    rows, all_runs = [], []
    results = ctx.results
    results.mkdir(parents=True, exist_ok=True)
    base = f"dense{ctx.suffix}{args.tag}"
    for name in names:
        n, d, K, data_mb = _shape(name)
        ours, peers = _solvers(name, K, d, wanted)
        for C in Cs:
            runs = []
            known = [r for r in reference if r["problem"] == name and float(r["C"]) == C]
            for s in ours:
                runs += _ladder(lambda tol, s=s: _run(cap, name, C, s, tol), our_tols,
                                known + runs)
            for s in peers:
                runs += _ladder(lambda tol, s=s: _run(cap, name, C, s, tol), peer_tols[s],
                                known + runs)
            f_all = [r["objective"] for r in known + runs if np.isfinite(r["objective"])]
            for s in ours:  # a peer found a better objective: our ladder goes on from there
                mine = [r for r in runs if r["solver"] == s]
                rest = [t for t in our_tols if mine and t < mine[-1]["tol"]]
                reached = any(rel_gap(r["objective"], min(f_all)) <= min(GAPS) for r in mine)
                if rest and not (reached or mine[-1]["timed_out"] or mine[-1]["error"]):
                    runs += _ladder(lambda tol, s=s: _run(cap, name, C, s, tol), rest,
                                    known + runs)
            f = [r["objective"] for r in runs if np.isfinite(r["objective"])]
            f_best = min(f) if f else float("nan")
            for r in runs:
                r["rel_gap"] = rel_gap(r["objective"], f_best)
            all_runs += runs
            for gap in GAPS:
                credited = {}
                for s in ours + peers:
                    ok = [r for r in runs if r["solver"] == s and r["rel_gap"] <= gap]
                    credited[s] = ok[0] if ok else None
                peer_times = {s: credited[s]["time"] for s in peers if credited[s] is not None}
                fastest = min(peer_times, key=peer_times.get) if peer_times else ""
                for s in ours + peers:
                    r = credited[s]
                    last = [q for q in runs if q["solver"] == s][-1]
                    rows.append(dict(
                        problem=name, n=n, d=d, K=K, p=(d + 1) * (1 if K == 2 else K), C=C,
                        gap=gap, solver=s, reached=r is not None,
                        tol=r["tol"] if r else last["tol"],
                        time_s=r["time"] if r else float("inf"),
                        method=(r or last).get("method", ""),
                        n_iter=(r or last).get("n_iter", -1),
                        passes=(r or last).get("passes", float("nan")),
                        peak_rss_mb=(r or last).get("peak_rss_mb", float("nan")),
                        rss_before_fit_mb=(r or last).get("rss_before_fit_mb", float("nan")),
                        data_mb=data_mb, best_gap_reached=min(
                            q["rel_gap"] for q in runs if q["solver"] == s),
                        fastest_peer=fastest,
                        speedup=(peer_times[fastest] / r["time"]
                                 if r is not None and fastest and s in ours else float("nan")),
                        note="" if r else ("timed out" if last["timed_out"] else
                                           last["error"] or "gap not reached")))
            write_csv(results / f"{base}.csv", rows, list(rows[0]))
            write_csv(results / f"{base}_runs.csv",
                      [{k: r.get("time" if k == "time_s" else k, "") for k in RUN_COLUMNS}
                       for r in all_runs], RUN_COLUMNS)
    print(markdown(rows, cap))
    print(f"\nwrote {ctx.rel(results / f'{base}.csv')}")


def markdown(rows, cap):
    lines = ["| problem | C | gap | solver | method | tol | time (s) | peak RSS (MB) | data (MB) "
             "| fastest peer / ours |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t = f"{r['time_s']:.2f}" if r["reached"] else f"not reached ({r['note']})"
        if np.isfinite(r["speedup"]):
            sp = f"{r['speedup']:.2f}x ({r['fastest_peer']})"
        elif r["reached"] and r["solver"].startswith("sn:") and not r["fastest_peer"]:
            sp = "no peer reached the gap"
        else:
            sp = ""
        if not r["reached"]:
            t += f", best gap {r['best_gap_reached']:.1e}"
        lines.append(f"| {r['problem']} | {r['C']:g} | {r['gap']:g} | {r['solver']} | "
                     f"{r['method']} | {r['tol']:g} | {t} | {r['peak_rss_mb']:.0f} | "
                     f"{r['data_mb']:.0f} | {sp} |")
    return "\n".join(lines)


# ============================================================================ time against K

KSWEEP_SOLVERS = ("sn:auto", "lbfgs", "lbfgs-f64")


def k_sweep(ctx, paths):
    """The probes of the run CSVs ``paths`` (``results/dense*_runs.csv``: every run) that share
    ``n`` and ``d`` (the most common pair): one row per K and gap, each solver credited with its
    loosest run within the gap of the best objective of all runs on the problem, and the
    fastest peer over ours; ``results/dense_ksweep.csv`` and ``plots/dense_ksweep.png``. A
    (problem, solver) pair in a later file replaces the earlier file's runs (a rerun)."""
    runs = {}
    for path in paths:
        got = {}
        for r in read_csv(path):
            m = re.fullmatch(r"probe-n([0-9e.]+)-p(\d+)-K(\d+)", str(r["problem"]))
            if m and r["solver"] in KSWEEP_SOLVERS:
                r.update(n=_num(m[1]), d=int(m[2]), K=int(m[3]))
                got.setdefault((r["problem"], r["solver"]), []).append(r)
        runs.update(got)
    if not runs:
        raise SystemExit("python -m benchmarks dense --k-sweep: no probe runs in " + str(paths))
    pairs = [(rs[0]["n"], rs[0]["d"]) for rs in runs.values()]
    n, d = max(set(pairs), key=pairs.count)
    out = []
    for problem in sorted({k[0] for k, rs in runs.items() if (rs[0]["n"], rs[0]["d"]) == (n, d)},
                          key=lambda name: int(name.rpartition("K")[2])):
        mine = {s: runs.get((problem, s), []) for s in KSWEEP_SOLVERS}
        f = [r["objective"] for rs in mine.values() for r in rs
             if isinstance(r["objective"], (int, float)) and np.isfinite(r["objective"])]
        f_best = min(f)
        for gap in GAPS:
            row = dict(n=n, d=d, K=mine["sn:auto"][0]["K"], gap=gap)
            for s in KSWEEP_SOLVERS:
                ok = [r for r in mine[s] if not r["timed_out"] and not r["error"]
                      and rel_gap(r["objective"], f_best) <= gap]
                row[f"{s}_s"] = ok[0]["time_s"] if ok else float("inf")
                row[f"{s}_tol"] = ok[0]["tol"] if ok else ""
                row[f"{s}_peak_mb"] = max((r["peak_rss_mb"] for r in mine[s]
                                           if isinstance(r["peak_rss_mb"], (int, float))),
                                          default=float("nan"))
            row["fastest_peer_over_auto"] = min(row[f"{s}_s"] for s in KSWEEP_SOLVERS[1:]) \
                / row["sn:auto_s"]
            row["auto_method"] = mine["sn:auto"][0]["method"] if mine["sn:auto"] else ""
            row["data_mb"] = mine["sn:auto"][0]["data_mb"] if mine["sn:auto"] else float("nan")
            out.append(row)
    ctx.results.mkdir(parents=True, exist_ok=True)
    write_csv(ctx.results / "dense_ksweep.csv", out, list(out[0]))
    png = plot_k_sweep(out, ctx.plots / "dense_ksweep.png", n=n, d=d)
    print(markdown_k_sweep(out))
    print(f"wrote {ctx.rel(ctx.results / 'dense_ksweep.csv')} and {ctx.rel(png)}")


def markdown_k_sweep(rows):
    def sec(r, s):
        return f"{r[s + '_s']:.1f} s ({r[s + '_tol']:g})" if np.isfinite(r[s + "_s"]) \
            else "not reached"

    lines = ["| K | gap | sn:auto (chose) | lbfgs | lbfgs-f64 | fastest peer / auto "
             "| peak MB: auto / lbfgs / lbfgs-f64 |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        peaks = " / ".join(f"{r[s + '_peak_mb']:.0f}" for s in KSWEEP_SOLVERS)
        lines.append(f"| {r['K']:,} | {r['gap']:g} | {sec(r, 'sn:auto')}; {r['auto_method']} | "
                     f"{sec(r, 'lbfgs')} | {sec(r, 'lbfgs-f64')} | "
                     f"**{r['fastest_peer_over_auto']:.2f}x** | {peaks} |")
    return "\n".join(lines)


def plot_k_sweep(rows, png, *, n, d):
    """Seconds to reach each gap against K (log-log), one panel per gap; a solver that did not
    reach the gap at some K is drawn there as a hollow marker at the top of the panel."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(GAPS), figsize=(11, 4.2), sharey=True)
    styles = {"sn:auto": ("C0", "o", "sketchnewton auto"),
              "lbfgs": ("C1", "s", "scikit-learn lbfgs (float32 as given)"),
              "lbfgs-f64": ("C2", "^", "scikit-learn lbfgs on a float64 copy")}
    finite = [r[f"{s}_s"] for r in rows for s in KSWEEP_SOLVERS if np.isfinite(r[f"{s}_s"])]
    top = 1.5 * max(finite) if finite else 1.0
    for ax, gap in zip(np.atleast_1d(axes), GAPS):
        sub = [r for r in rows if float(r["gap"]) == gap]
        for s in KSWEEP_SOLVERS:
            color, marker, label = styles[s]
            Ks = np.array([r["K"] for r in sub], dtype=float)
            ts = np.array([r[f"{s}_s"] for r in sub], dtype=float)
            ok = np.isfinite(ts)
            ax.plot(Ks[ok], ts[ok], marker=marker, color=color, label=label)
            if (~ok).any():
                ax.plot(Ks[~ok], np.full((~ok).sum(), top), marker=marker, color=color,
                        linestyle="none", markerfacecolor="none",
                        label=f"{s}: gap not reached")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("classes K")
        ax.set_title(f"relative gap {gap:g}")
    np.atleast_1d(axes)[0].set_ylabel("seconds (1 core, fresh process)")
    return save_figure(fig, png, title=f"Linear probes, float32, n = {n:,}, d = {d}: "
                                       "time to equal objective against K")
