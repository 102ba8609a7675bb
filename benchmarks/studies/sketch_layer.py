"""The sketching layer: spectral error of every sketch, the size formula, the cost in passes.

Does a sketch of size s give a Hessian within eps, for which method, on which matrices, and what
does it cost? Three parts (``--part``, default all):

* errors: ``eps_hat = max |eig(H^{-1/2} H~ H^{-1/2}) - 1|`` for ``H = A^T D A``, maximum over
  seeds, for each method and sketch size ``s = 2d ... 50d``, on (a) well-spread random sparse
  matrices and (b) coherent matrices (a few heavy rows with private columns, leverage 1).
* eps: with ``eps=`` given, the fraction of seeds with ``eps_hat <= eps``.
* passes: wall time of building ``H~`` divided by the time of one pass (scipy ``A @ x`` +
  ``A.T @ y``), best of several repeats.

    python -m benchmarks sketch_layer --quick          # seconds, all three parts, small
    python -m benchmarks sketch_layer                  # full: errors + eps check + passes
    python -m benchmarks sketch_layer --part errors    # one part only (errors | eps | passes)

Runs with numba's workqueue threading layer (set by the registry before numba is imported: its
OpenMP layer busy-waits after a parallel region and then fights OpenBLAS for the cores), so it
runs on its own. Prints markdown tables and writes ``results/sketch_{errors,eps,passes}_{quick,
full}.csv``. The suite's ``sketch`` study reuses :func:`run_errors`.
"""

import time

import numpy as np
import scipy.sparse as sp

from sketchnewton._matrix import DataMatrix
from sketchnewton.sketch import (
    SketchSettings,
    leverage_scores,
    sampling_probabilities,
    sketch_gram,
    sketch_size_for_eps,
)

from .._common import best_time, markdown_table, pass_time, random_csr, write_csv


# ---------------------------------------------------------------------------
# test problems
# ---------------------------------------------------------------------------

def make_problem(kind, n, d, seed, nnz_per_row=5, n_heavy=5, heavy_scale=30.0):
    """Return (A csr (n, d), weights (n,)).

    ``kind="spread"``: random sparse rows (``nnz_per_row`` N(0,1) entries at
    uniform columns), weights log-normal(0, 0.5) with 5% exact zeros.
    ``kind="coherent"``: the same on the first ``d - n_heavy`` columns, plus
    ``n_heavy`` rows (at random positions) each with a private column (no
    other row touches it) and 3 shared columns, scaled by ``heavy_scale``;
    these rows have leverage 1 and dominant norm.
    """
    rng = np.random.default_rng(seed)
    w = np.exp(0.5 * rng.standard_normal(n))
    w[rng.random(n) < 0.05] = 0.0
    if kind == "spread":
        return random_csr(n, d, nnz_per_row, rng), w
    base = random_csr(n, d - n_heavy, nnz_per_row, rng)
    base = sp.hstack([base, sp.csr_matrix((n, n_heavy))], format="lil")
    heavy = rng.choice(n, n_heavy, replace=False)
    for t, i in enumerate(heavy):
        row = np.zeros(d)
        row[rng.choice(d - n_heavy, 3, replace=False)] = rng.standard_normal(3)
        row[d - n_heavy + t] = 1.0
        base[i] = heavy_scale * row
        w[i] = 1.0
    return base.tocsr(), w


def spectral_error(Linv, Ht):
    """``max |eig(L^{-1} H~ L^{-T}) - 1|`` with ``H = L L^T``."""
    E = Linv @ Ht @ Linv.T
    ev = np.linalg.eigvalsh(0.5 * (E + E.T))
    return float(np.max(np.abs(ev - 1.0)))


def _exact(A, w):
    dm = DataMatrix(A)
    H = dm.gram(w)
    L = np.linalg.cholesky(H)
    return dm, H, np.linalg.inv(L)


# The method variants that are measured. "leverage" uses the fast approximate
# scores (the default path); the others are for comparison.
def _variants():
    return {
        "gaussian": dict(method="gaussian"),
        "srht": dict(method="srht"),
        "countsketch": dict(method="countsketch"),
        "leverage": dict(method="leverage"),
        "leverage-jl16": dict(method="leverage", estimator="jl"),
        "leverage-repl": dict(method="leverage", scheme="replacement"),
        "leverage-nomix": dict(method="leverage", uniform_mix=0.0),
        "leverage-exact": dict(method="leverage", exact_scores=True),
        "uniform": dict(method="uniform"),
    }


def _gram(dm, w, s, spec, seed, exact_scores):
    spec = dict(spec)
    spec.pop("exact_scores", None)
    scores = exact_scores if spec.get("method") == "leverage" and exact_scores is not None else None
    if "estimator" in spec:
        scores = leverage_scores(dm, w, estimator=spec.pop("estimator"),
                                 random_state=np.random.default_rng([seed, 1]))
    return sketch_gram(dm, w, s, random_state=seed, scores=scores, **spec)


def run_errors(n, d, multiples, seeds, kinds=("spread", "coherent"), variants=None):
    variants = variants or _variants()
    rows = []
    for kind in kinds:
        A, w = make_problem(kind, n, d, seed=12345)
        dm, H, Linv = _exact(A, w)
        lev_exact = leverage_scores(dm, w, method="exact") if n * d <= 5e7 else None
        for name, spec in variants.items():
            for mult in multiples:
                s = int(mult * d)
                errs = []
                for seed in range(seeds):
                    ex = lev_exact if spec.get("exact_scores") else None
                    if spec.get("exact_scores") and ex is None:
                        break
                    errs.append(spectral_error(Linv, _gram(dm, w, s, spec, seed, ex)))
                if not errs:
                    continue
                rows.append(dict(kind=kind, method=name, mult=mult, s=s, max_err=max(errs),
                                 median_err=float(np.median(errs))))
    return rows


def gaussian_yardstick(mult):
    return (1 + np.sqrt(1.0 / mult)) ** 2 - 1


def print_errors(rows, multiples):
    print("\n### Spectral error eps_hat (max over seeds)\n")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for kind in dict.fromkeys(r["kind"] for r in rows):
        print(f"\n**{kind}**\n")
        print("| method | " + " | ".join(f"s={m}d" for m in multiples) + " |")
        print("|---|" + "---|" * len(multiples))
        print("| (1+sqrt(d/s))^2-1 | " + " | ".join(f"{gaussian_yardstick(m):.2f}"
                                                 for m in multiples) + " |")
        for meth in methods:
            vals = {r["mult"]: r["max_err"] for r in rows if r["kind"] == kind
                    and r["method"] == meth}
            if vals:
                print(f"| {meth} | " + " | ".join(f"{vals[m]:.2f}" if m in vals else "-"
                                                for m in multiples) + " |")


def run_eps(n, d, eps_values, seeds, methods=("leverage", "srht", "countsketch", "gaussian",
                                              "uniform")):
    rows = []
    for kind in ("spread", "coherent"):
        A, w = make_problem(kind, n, d, seed=12345)
        dm, H, Linv = _exact(A, w)
        for method in methods:
            for eps in eps_values:
                s = sketch_size_for_eps(eps, d, method=method)
                errs = [spectral_error(Linv, sketch_gram(dm, w, eps=eps, method=method,
                                                         random_state=seed))
                        for seed in range(seeds)]
                ok = int(np.sum(np.array(errs) <= eps))
                rows.append(dict(kind=kind, method=method, eps=eps, s=s, s_over_d=s / d,
                                 n_ok=ok, n_seeds=seeds, max_err=max(errs),
                                 q95_err=float(np.quantile(errs, 0.95))))
    return rows


def print_eps(rows):
    print("\n### Size formula: seeds with eps_hat <= eps\n")
    print(markdown_table(["kind", "method", "eps", "s", "s/d", "ok / seeds", "max eps_hat"],
                         [[r["kind"], r["method"], r["eps"], r["s"], f"{r['s_over_d']:.1f}",
                           f"{r['n_ok']}/{r['n_seeds']}", f"{r['max_err']:.2f}"] for r in rows]))


# ---------------------------------------------------------------------------
# passes
# ---------------------------------------------------------------------------

def run_passes(configs, repeats, scipy_gram=True):
    rows = []
    for (n, d, k) in configs:
        t0 = time.perf_counter()
        A = random_csr(n, d, k, np.random.default_rng(0))
        rng = np.random.default_rng(1)
        w = np.exp(0.5 * rng.standard_normal(n))
        dm = DataMatrix(A)
        t_gen = time.perf_counter() - t0
        tp = pass_time(dm.csr, repeats=repeats + 2)
        s = 30 * d
        cs = SketchSettings("countsketch", 4 * d).draw(0, n=n)
        sw = np.sqrt(w)
        scores = leverage_scores(dm, w, random_state=0)
        p = sampling_probabilities(scores)
        entries = {
            "pass (scipy A@x + A.T@y)": lambda: None,
            "leverage scores (approx)": lambda: leverage_scores(dm, w, random_state=0),
            "H~ leverage s=30d (scores + sample + gram)":
                lambda: sketch_gram(dm, w, s, method="leverage", random_state=0),
            "H~ leverage s=30d, reused scores":
                lambda: sketch_gram(dm, w, s, method="leverage", scores=scores, random_state=0),
            "draw Bernoulli sample (p given)":
                lambda: SketchSettings("leverage", s).draw(0, probabilities=p),
            "CountSketch of D^1/2 A, s=4d (apply)": lambda: cs.apply(dm, row_scale=sw),
            "H~ countsketch s=4d (draw + apply + gram)":
                lambda: sketch_gram(dm, w, 4 * d, method="countsketch", random_state=0),
            "exact Gram (DataMatrix.gram)": lambda: dm.gram(w),
        }
        if scipy_gram:
            entries["scipy A.T @ diags(D) @ A"] = lambda: (dm.csr.T @ sp.diags(w) @ dm.csr)
        for name, fn in entries.items():
            if name.startswith("pass"):
                t = tp
            else:
                reps = 1 if name.startswith("scipy") else repeats
                t = best_time(fn, reps)
            rows.append(dict(n=n, d=d, nnz_per_row=k, nnz=dm.nnz, what=name, seconds=t,
                             passes=t / tp))
        print(f"  (n={n}, d={d}, k={k}: generated in {t_gen:.1f}s, pass {tp * 1e3:.1f} ms)",
              flush=True)
        del A, dm
    return rows


def print_passes(rows):
    print("\n### Cost in passes (best of repeats)\n")
    print(markdown_table(["n", "d", "nnz/row", "operation", "seconds", "passes"],
                         [[f"{r['n']:.0e}", r["d"], r["nnz_per_row"], r["what"],
                           f"{r['seconds']:.4f}", f"{r['passes']:.2f}"] for r in rows]))


def _write(ctx, rows, name):
    path = ctx.results / name
    write_csv(path, rows, list(rows[0]))
    print(f"\n(wrote {path})")


def add_arguments(ap):
    ap.add_argument("--part", choices=["errors", "eps", "passes", "all"], default="all")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)


def run(ctx, args):
    tag = ctx.mode
    if ctx.quick:
        n, d, seeds, mults = 4000, 20, args.seeds or 5, [2, 10, 30]
        eps_values = [0.5]
        pass_cfg = [(100_000, 50, 10)]
        repeats = args.repeats or 3
    else:
        n, d, seeds, mults = 20_000, 40, args.seeds or 20, [2, 5, 10, 20, 30, 50]
        eps_values = [0.3, 0.5, 0.8]
        pass_cfg = [(1_000_000, 200, 10), (1_000_000, 500, 50)]
        repeats = args.repeats or 5
    print(f"# sketch_layer ({tag}): spectral problems n={n}, d={d}, seeds={seeds}")
    if args.part in ("errors", "all"):
        rows = run_errors(n, d, mults, seeds)
        print_errors(rows, mults)
        _write(ctx, rows, f"sketch_errors_{tag}.csv")
    if args.part in ("eps", "all"):
        rows = run_eps(n, d, eps_values, seeds)
        print_eps(rows)
        _write(ctx, rows, f"sketch_eps_{tag}.csv")
    if args.part in ("passes", "all"):
        rows = run_passes(pass_cfg, repeats)
        print_passes(rows)
        _write(ctx, rows, f"sketch_passes_{tag}.csv")
