"""Leverage scores from scratch, phase by phase, in time-passes and counted passes.

Do the leverage scores cost at most 3 passes and 3 time-passes (one sketch of ``A``, one small
factorization, one JL pass; issue 26)?

    python -m benchmarks leverage [--quick] [--repeat 5] [--cases s4e5,s1e6_200,s1e6_500,dense]
                                  [--estimator auto] [--before REV] [--threads T]
                                  [--settle 0.3]

A *time-pass* is wall time divided by the time of one ``A.T @ (A @ x)``
(scipy for sparse ``A``, numpy for dense) on the same matrix in the same
process: the best of the three measured right before each run (of either
version), then ``--settle`` seconds of pause: OpenBLAS's worker threads
spin for about 0.1 s after a multi-threaded call and took a core from the
run's first phase (the dense CountSketch on two threads: 105 ms right
after the yardstick, 60 ms after 0.3 s). Each version's phases and total
come from its run with the best total time of ``--repeat`` runs; "sum of the phases' bests" adds each phase's
best over the runs (the machine's load moves between phases). Counted passes
are the block layer's ``sweeps / 2``.

Phases are timed from outside, so the script measures whatever the pipeline
does: ``sketch`` is the first ``blocks.map`` (CountSketch tasks), ``factor``
everything between the two maps (sum of the sketches, ``R``, the projection
matrix), ``scores`` the second map. ``block_leverage_raw`` runs as the Newton
driver runs it: inside ``blocks.threads()`` and ``single_threaded_blas()``.

``--before REV`` also runs ``sketchnewton/sketch/_leverage.py`` as of the git
revision ``REV`` (with today's kernels and block layer), alternating with the
current one, so both columns see the same machine load. Writes
``results/leverage[_quick].csv`` (``leverage_<T>threads.csv`` with ``--threads T > 1``).
"""

import importlib.util
import os
import subprocess
import sys
import time

import numba
import numpy as np

from sketchnewton._blocks import Block, LocalBlocks
from sketchnewton._kernels import single_threaded_blas
from sketchnewton._matrix import DataMatrix
from sketchnewton.datasets import make_regression_problem
from sketchnewton.sketch import _leverage

from .._common import write_csv

CASES = {
    "sparse 4e5 x 500, 50/row": dict(n=400_000, d=500, nnz=50),
    "sparse 1e6 x 200, 10/row": dict(n=1_000_000, d=200, nnz=10),
    "sparse 1e6 x 500, 50/row": dict(n=1_000_000, d=500, nnz=50),
    "dense 1e5 x 1000 (random features)": dict(n=100_000, d=1000, nnz=None),
}
SHORT = dict(zip(["s4e5", "s1e6_200", "s1e6_500", "dense"], CASES))
QUICK = {"sparse 5e4 x 100, 10/row": dict(n=50_000, d=100, nnz=10)}


class TimedBlocks(LocalBlocks):
    """LocalBlocks recording the wall time and the sweeps counted by each map."""

    def __init__(self, block):
        super().__init__(block)
        self.log = []

    def _run(self, fn, per_block, args, block):
        t0 = time.perf_counter()
        out = super()._run(fn, per_block, args, block)
        self.log.append((fn.__name__, time.perf_counter() - t0, self.sweeps))
        return out


def load_revision(rev):
    """``sketchnewton/sketch/_leverage.py`` at git revision ``rev``, as a module of the package."""
    src = subprocess.run(["git", "show", f"{rev}:sketchnewton/sketch/_leverage.py"],
                         capture_output=True, text=True, check=True).stdout
    name = "sketchnewton.sketch._leverage_" + rev
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "sketchnewton.sketch"
    exec(compile(src, f"<{rev}:_leverage.py>", "exec"), mod.__dict__)
    sys.modules[name] = mod
    return mod


def make_matrix(case, seed=0):
    c = CASES[case]
    if c["nnz"] is None:  # random Fourier features cos(X W + b) of 20 latent dimensions
        rng = np.random.default_rng(seed)
        A = rng.standard_normal((c["n"], 20)) @ (rng.standard_normal((20, c["d"])) / 2.0)
        A += rng.uniform(0, 2 * np.pi, c["d"])
        np.cos(A, out=A)
        A *= np.sqrt(2.0 / c["d"])
        return A
    return make_regression_problem(c["n"], c["d"], nnz_per_row=c["nnz"], random_state=seed).A


def pass_time(A, x, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        A.T @ (A @ x)
        best = min(best, time.perf_counter() - t0)
    return best


def one_run(mod, dm, w, seed, estimator):
    blocks = TimedBlocks(Block(dm))
    with blocks.threads(), single_threaded_blas():
        t0 = time.perf_counter()
        mod.block_leverage_raw(blocks, [w], np.random.default_rng(seed), estimator=estimator)
        total = time.perf_counter() - t0
    (_, t1, s1), (_, t2, s2) = blocks.log
    return dict(sketch=t1, factor=total - t1 - t2, scores=t2, total=total, sweeps_sketch=s1,
                sweeps_scores=s2 - s1)


def run_case(case, modules, repeat, estimator, settle=0.0):
    A = make_matrix(case)
    dm = DataMatrix(A)
    w = np.random.default_rng(2).uniform(0.5, 2.0, dm.n)
    x = np.random.default_rng(1).standard_normal(dm.d)
    runs = {label: [] for label in modules}
    for rep in range(repeat):
        for label, mod in modules.items():  # alternate: the same load for every version
            tp = pass_time(A, x)
            time.sleep(settle)
            r = one_run(mod, dm, w, rep, estimator)
            r.update(pass_s=tp, load=os.getloadavg()[0])
            runs[label].append(r)
    # the yardstick: the best pass of the case (measured before every run of either version);
    # each version's figures: its run with the best total time
    tp = min(r["pass_s"] for rs in runs.values() for r in rs)
    out = {}
    for label, mod in modules.items():
        best = dict(min(runs[label], key=lambda r: r["total"]))
        for phase in ("sketch", "factor", "scores"):
            best["best_" + phase] = min(r[phase] for r in runs[label])
        est = estimator
        if est == "auto":
            est = mod._choose_estimator(LocalBlocks(Block(dm)), mod.LEVERAGE_N_PROJECTIONS)
        out[label] = dict(best, estimator=est, pass_s=tp)
    return out


def add_arguments(parser):
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default=",".join(SHORT), help=f"comma-separated of {list(SHORT)}")
    parser.add_argument("--estimator", default="auto", choices=["auto", "jl", "quadratic"])
    parser.add_argument("--before", default=None, help="git revision of the old _leverage.py")
    parser.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    parser.add_argument("--settle", type=float, default=0.3,
                        help="seconds between the yardstick pass and the run (BLAS's idle workers)")


def run(ctx, args):
    if ctx.quick:
        CASES.update(QUICK)
    if args.threads:
        numba.set_num_threads(args.threads)
    modules = {}
    if args.before:
        modules[f"before ({args.before})"] = load_revision(args.before)
    modules["after"] = _leverage
    small = make_regression_problem(2000, 50, nnz_per_row=5, random_state=0).A
    for mod in modules.values():  # compile the kernels
        for M in (small, small.toarray()):
            for est in ("jl", "quadratic"):
                mod.block_leverage_raw(LocalBlocks(Block(DataMatrix(M))), [np.ones(2000)],
                                       np.random.default_rng(0), estimator=est)
    print(f"numba threads: {numba.get_num_threads()}; time-passes (best of {args.repeat} runs); "
          f"load = 1-minute load average on {os.cpu_count()} cores")
    print()
    print("| case | version | estimator | one pass (ms) | sketch | factor | scores | total "
          "| sum of the phases' bests | counted passes (sketch + scores) | load |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    keys = list(QUICK) if ctx.quick else args.cases.split(",")
    for key in keys:
        case = SHORT.get(key, key)
        for label, r in run_case(case, modules, args.repeat, args.estimator,
                                 args.settle).items():
            tp = r["pass_s"]
            phases = sum(r["best_" + p] for p in ("sketch", "factor", "scores"))
            print(f"| {case} | {label} | {r['estimator']} | {1e3 * tp:.1f} | "
                  f"{r['sketch'] / tp:.2f} | {r['factor'] / tp:.2f} | {r['scores'] / tp:.2f} | "
                  f"**{r['total'] / tp:.2f}** | {phases / tp:.2f} | "
                  f"{(r['sweeps_sketch'] + r['sweeps_scores']) / 2:g} "
                  f"({r['sweeps_sketch'] / 2:g} + {r['sweeps_scores'] / 2:g}) | {r['load']:.1f} |")
            sys.stdout.flush()
            rows.append(dict(case=case, version=label, estimator=r["estimator"], pass_s=tp,
                             sketch=r["sketch"] / tp, factor=r["factor"] / tp,
                             scores=r["scores"] / tp, time_passes=r["total"] / tp,
                             passes=(r["sweeps_sketch"] + r["sweeps_scores"]) / 2))
    name = "leverage" if not args.threads or args.threads == 1 else f"leverage_{args.threads}threads"
    path = ctx.path("results", name, "csv")
    write_csv(path, rows, list(rows[0]))
    print(f"wrote {ctx.rel(path)}")
