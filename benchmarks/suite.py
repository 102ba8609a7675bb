"""The benchmark suite: six studies, one entry point (``python -m benchmarks``).

Studies (the protocol: benchmarks/RESULTS.md):

``scaling_n``
    n = 1e4 ... 1e7 at d = 100 and a fixed number of non-zeros per row: time
    and passes to eps for every method of ``solve`` and scipy's peers; the
    log-log slope of time against nnz (near input-sparsity time: close to 1).
``scaling_d``
    d = 50 ... 1000 at two densities: where sketching pays and where exact
    Newton is cheaper; the cross-over.
``sketch``
    spectral error of the sketched Gram against sketch size for leverage,
    SRHT, CountSketch, Gaussian and uniform on spread and coherent matrices.
``accuracy``
    error to the reference against seconds, every solver, one well- and one
    ill-conditioned problem.
``shortcut``
    resnet (exp(z) + z) against softmax (exp(z)) on the same A and planted x:
    Hessian conditioning at x*, iterations of gradient descent and of Newton.
``memory``
    peak resident memory of a solve (fresh process) against the
    O(nnz + n + s d + d^2) model.

Every study writes ``results/<study>[_quick].csv`` and
``plots/<study>[_quick].png`` under the output directory and returns a
markdown section; the entry point puts those sections, with the machine
description, into ``RESULTS.md`` between markers (other sections of the file
are kept). Every planted problem is noiseless, so ``x_true`` is its exact
minimiser and the common reference: a solver's time counts only if its final
``||x - x_true|| <= eps``.
"""

import gc
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import sketchnewton as sn  # noqa: E402
from sketchnewton import ConvergenceWarning, NormalizedRegressionLoss  # noqa: E402
from sketchnewton.datasets import make_regression_problem  # noqa: E402

from ._common import pass_time, progress, write_csv
from ._peers import OURS, PEERS, run_ours, run_solver, warm_up
from .figures import (
    plot_accuracy,
    plot_scaling_d,
    plot_scaling_n,
    plot_shortcut,
    plot_sketch,
)

STUDIES = ("scaling_n", "scaling_d", "sketch", "accuracy", "shortcut", "memory")


@dataclass
class Config:
    """Sizes of one mode of the suite (``QUICK`` or ``FULL``)."""

    name: str
    eps: float = 1e-8
    cap: float = 600.0                    # seconds per scipy peer run
    # scaling_n
    ns: tuple = (10_000, 100_000, 1_000_000, 10_000_000)
    n_d: int = 100
    n_k: int = 10
    n_z: float = 1.5
    # scaling_d
    d_n: int = 300_000
    ds: tuple = (50, 100, 200, 500, 1000)
    d_ks: tuple = (10, 50)
    d_z: float = 1.5
    # sketch quality
    sk_n: int = 20_000
    sk_d: int = 40
    sk_multiples: tuple = (2, 3, 5, 10, 20, 40)
    sk_seeds: int = 10
    # accuracy vs time
    acc_size: tuple = (1_000_000, 200, 10)
    # shortcut
    sc_n: int = 20_000
    sc_d: int = 50
    sc_k: int = 10
    sc_zs: tuple = (0.5, 1.0, 1.5, 2.0)
    sc_seeds: int = 3
    sc_gd_max: int = 20_000
    sc_gd_tol: float = 1e-6
    # memory
    mem_ns: tuple = (1_000_000, 10_000_000)
    mem_d: int = 100
    mem_k: int = 10
    slope_min_n: int = 100_000           # fit the slope on n >= this (overheads below)
    extra: dict = field(default_factory=dict)


FULL = Config("full")
QUICK = Config("quick", cap=20.0, ns=(5_000, 20_000, 80_000), n_d=50, n_k=8,
               d_n=20_000, ds=(20, 50, 100), d_ks=(5, 20),
               sk_n=4000, sk_d=20, sk_multiples=(2, 5, 10, 20), sk_seeds=3,
               acc_size=(50_000, 50, 8), sc_n=5000, sc_d=20, sc_zs=(0.5, 1.5), sc_seeds=1,
               sc_gd_max=3000, mem_ns=(50_000, 200_000), mem_d=50, mem_k=8, slope_min_n=5_000)


# ---------------------------------------------------------------------------- helpers

def machine_info():
    """One line per fact about the machine and the software versions."""
    import numba
    import scipy
    import sklearn
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line.split()[1] for line in fh if line.startswith("MemTotal")))
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{os.cpu_count()} logical CPUs ({cpu}), {mem} RAM, {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, numba {numba.__version__}, scikit-learn "
            f"{sklearn.__version__}, sketchnewton {sn.__version__ if hasattr(sn, '__version__') else ''}"
            ).rstrip(", ")


def _planted(n, d, k, z_std, *, link="resnet", seed=0, **kw):
    return make_regression_problem(n, d, link=link, nnz_per_row=k, z_std=z_std,
                                   random_state=seed, **kw)


def _fmt(v, spec):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _run_case(pb, solvers, eps, cap, tp, *, link="resnet", trace=False, log=print, tag=""):
    rows = []
    for s in solvers:
        r = run_solver(s, pb.A, pb.b, pb.x_true, eps, link=link, cap=cap, trace=trace)
        r.update(solver=s, pass_seconds=tp, time_passes=r["seconds"] / tp)
        log(f"  {tag} {s:10s} {r['seconds']:8.2f} s {r['time_passes']:8.1f} passes-time "
            f"{r['nit']:5d} it  err {r['error']:.1e}  {'ok' if r['success'] else 'FAIL'}  "
            f"{r['note']}")
        rows.append(r)
    return rows


@dataclass
class Output:
    """Where a study writes: ``root/results/*.csv`` and ``root/plots/*.png``."""

    root: str
    quick: bool

    def path(self, kind, study, ext):
        d = os.path.join(self.root, kind)
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"{study}{'_quick' if self.quick else ''}.{ext}")

    def rel(self, p):
        return os.path.relpath(p, self.root)


# ---------------------------------------------------------------------------- studies

def study_scaling_n(cfg, out, log=print):
    d, k, z = cfg.n_d, cfg.n_k, cfg.n_z
    solvers = OURS + PEERS
    rows = []
    for n in cfg.ns:
        t0 = time.perf_counter()
        pb = _planted(n, d, k, z)
        gen = time.perf_counter() - t0
        tp = pass_time(pb.A)
        log(f"scaling_n: n = {n:,} nnz = {pb.A.nnz:,} (generated in {gen:.1f} s), "
            f"pass {tp * 1e3:.2f} ms")
        warm_up(pb.A, pb.b)
        for r in _run_case(pb, solvers, cfg.eps, cfg.cap, tp, log=log, tag=f"n={n:.0e}"):
            r.update(n=n, d=d, nnz=pb.A.nnz, generate_seconds=gen)
            rows.append(r)
        del pb
        gc.collect()
    cols = ["n", "d", "nnz", "solver", "nit", "passes", "seconds", "pass_seconds", "time_passes",
            "error", "success", "timed_out", "note", "generate_seconds"]
    csv = out.path("results", "scaling_n", "csv")
    write_csv(csv, rows, cols)

    slopes = {}
    for s in solvers:
        pts = [(r["nnz"], r["seconds"]) for r in rows
               if r["solver"] == s and r["success"] and r["n"] >= cfg.slope_min_n]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slopes[s] = (float(np.polyfit(x, y, 1)[0]), len(pts))

    png = plot_scaling_n(rows, out.path("plots", "scaling_n", "png"), eps=cfg.eps, d=d, k=k)

    lines = ["### Scaling in n (`scaling_n`)\n",
             f"Planted resnet, d = {d}, {k} non-zeros per row, z std {z}, eps = {cfg.eps:g}, from x0 = 0 "
             f"(our default start); peers capped at {cfg.cap:g} s. Raw: `{out.rel(csv)}`, plot: "
             f"`{out.rel(png)}`.\n",
             _table(["n", "nnz", "solver", "iterations", "counted passes", "seconds",
                     "time in passes", "error", "ok"],
                    [[f"{r['n']:,}", f"{r['nnz']:,}", r["solver"], r["nit"], _fmt(r["passes"], ".1f"),
                      _fmt(r["seconds"], ".2f"), _fmt(r["time_passes"], ".1f"),
                      _fmt(r["error"], ".1e"), "yes" if r["success"] else f"no ({r['note']})"]
                     for r in rows]),
             "",
             f"Log-log slope of time against nnz (successful runs with n >= {cfg.slope_min_n:,}):\n",
             _table(["solver", "slope", "points"],
                    [[s, f"{v:.2f}", m] for s, (v, m) in slopes.items()]),
             ""]
    big = max(cfg.ns)
    at_big = {r["solver"]: r for r in rows if r["n"] == big}
    auto = at_big.get("auto")
    if auto and auto["success"]:
        lines.append(f"At n = {big:,}: peer time / auto time: " + ", ".join(
            f"{s} {r['seconds'] / auto['seconds']:.2f}" + ("" if r["success"] else " (not reached)")
            for s, r in at_big.items() if s != "auto") + ".\n")
    return rows, "\n".join(lines)


def study_scaling_d(cfg, out, log=print):
    n, z = cfg.d_n, cfg.d_z
    solvers = ("auto", "exact", "sketch", "pcg", "L-BFGS-B")
    rows = []
    for k in cfg.d_ks:
        for d in cfg.ds:
            kk = min(k, d)
            pb = _planted(n, d, kk, z)
            tp = pass_time(pb.A)
            log(f"scaling_d: n = {n:,}, d = {d}, {kk}/row, pass {tp * 1e3:.2f} ms")
            warm_up(pb.A, pb.b)
            for r in _run_case(pb, solvers, cfg.eps, cfg.cap, tp, log=log, tag=f"d={d} k={kk}"):
                r.update(n=n, d=d, k=kk, nnz=pb.A.nnz)
                rows.append(r)
            del pb
            gc.collect()
    csv = out.path("results", "scaling_d", "csv")
    write_csv(csv, rows, ["n", "d", "k", "nnz", "solver", "chosen", "nit", "passes", "seconds",
                          "pass_seconds", "time_passes", "error", "success", "note"])

    def get(d, k, s):
        r = next((r for r in rows if r["d"] == d and r["k"] == min(k, d) and r["solver"] == s), None)
        return r["time_passes"] if r and r["success"] else float("inf")

    table, crossover = [], {}
    for k in cfg.d_ks:
        for d in cfg.ds:
            ex, sk = get(d, k, "exact"), min(get(d, k, "sketch"), get(d, k, "pcg"))
            best = min(solvers, key=lambda s: get(d, k, s))
            chosen = next((r["chosen"] for r in rows if r["d"] == d and r["k"] == min(k, d)
                           and r["solver"] == "auto"), "")
            table.append([f"{min(k, d)}", d] + [_fmt(get(d, k, s), ".1f") for s in solvers]
                         + [chosen, best, _fmt(ex / sk, ".2f")])
            crossover.setdefault(k, {"sketched": [], "tie": [], "exact": []})[
                "sketched" if ex > 1.1 * sk else "exact" if sk > 1.1 * ex else "tie"].append(d)
    png = plot_scaling_d(rows, out.path("plots", "scaling_d", "png"), eps=cfg.eps, n=n,
                         ks=cfg.d_ks)

    def _ds(ds):
        return ", ".join(str(d) for d in ds) or "none"
    cross = "\n".join(
        f"- {k} nnz/row: sketched faster by > 10% at d = {_ds(c['sketched'])}; "
        f"within 10% at d = {_ds(c['tie'])}; exact faster by > 10% at d = {_ds(c['exact'])}."
        for k, c in crossover.items())
    text = "\n".join([
        "### Scaling in d and density (`scaling_d`)\n",
        f"Planted resnet, n = {n:,}, z std {z}, eps = {cfg.eps:g}; time to eps in passes (inf: not "
        f"reached). Raw: `{out.rel(csv)}`, plot: `{out.rel(png)}`.\n",
        _table(["nnz/row", "d"] + list(solvers) + ["auto chose", "fastest", "exact / best sketched"],
               table),
        "", "Cross-over (exact against the faster of sketch and pcg):", cross, ""])
    return rows, text


def study_sketch(cfg, out, log=print):
    from .bench_sketch import run_errors
    variants = {"leverage": dict(method="leverage"), "srht": dict(method="srht"),
                "countsketch": dict(method="countsketch"), "gaussian": dict(method="gaussian"),
                "uniform": dict(method="uniform")}
    log(f"sketch: n = {cfg.sk_n:,}, d = {cfg.sk_d}, {cfg.sk_seeds} seeds")
    rows = run_errors(cfg.sk_n, cfg.sk_d, list(cfg.sk_multiples), cfg.sk_seeds, variants=variants)
    csv = out.path("results", "sketch", "csv")
    write_csv(csv, rows, ["kind", "method", "mult", "s", "max_err", "median_err"])
    kinds = ("spread", "coherent")
    png = plot_sketch(rows, out.path("plots", "sketch", "png"), n=cfg.sk_n, d=cfg.sk_d,
                      seeds=cfg.sk_seeds)
    mults = list(cfg.sk_multiples)
    body = []
    for kind in kinds:
        for m in variants:
            errs = {r["mult"]: r["max_err"] for r in rows if r["kind"] == kind and r["method"] == m}
            body.append([kind, m] + [_fmt(errs.get(x), ".2f") for x in mults])
    text = "\n".join([
        "### Sketch quality (`sketch`)\n",
        "Spectral error `||L^-1 (H~ - H) L^-T||_2` of the sketched Gram `A^T D A` (D log-normal with 5% "
        f"zeros), max over {cfg.sk_seeds} seeds. Coherent: a few heavy rows with leverage 1. "
        f"Raw: `{out.rel(csv)}`, plot: `{out.rel(png)}`.\n",
        _table(["rows", "method"] + [f"s = {x}d" for x in mults], body), ""])
    return rows, text


def study_accuracy(cfg, out, log=print):
    n, d, k = cfg.acc_size
    problems = {"well": dict(z_std=0.5), "ill": dict(z_std=1.5, column_scale=(0.1, 10.0))}
    solvers = OURS + PEERS
    rows, traces = [], {}
    for name, kw in problems.items():
        pb = _planted(n, d, k, kw["z_std"], column_scale=kw.get("column_scale"))
        tp = pass_time(pb.A)
        log(f"accuracy: {name}: n = {n:,}, d = {d}, {k}/row, pass {tp * 1e3:.2f} ms")
        warm_up(pb.A, pb.b)
        for r in _run_case(pb, solvers, cfg.eps, cfg.cap, tp, trace=True, log=log, tag=name):
            traces[(name, r["solver"])] = r.pop("trace")
            r.update(problem=name)
            rows.append(r)
        del pb
        gc.collect()
    trace_rows = [dict(problem=p, solver=s, seconds=t, error=e)
                  for (p, s), pts in traces.items() for t, e in pts]
    csv = out.path("results", "accuracy", "csv")
    write_csv(csv, trace_rows, ["problem", "solver", "seconds", "error"])
    png = plot_accuracy(trace_rows, out.path("plots", "accuracy", "png"), eps=cfg.eps, n=n, d=d,
                        k=k)

    def first(pts, tol):
        return next((t for t, e in pts if e <= tol), None)

    body = [[p, s, _fmt(first(traces[(p, s)], 1e-4), ".2f"), _fmt(first(traces[(p, s)], 1e-8), ".2f"),
             _fmt(r["time_passes"], ".1f"), _fmt(r["error"], ".1e"), "yes" if r["success"] else "no"]
            for r in rows for p, s in [(r["problem"], r["solver"])]]
    text = "\n".join([
        "### Accuracy against time (`accuracy`)\n",
        f"Planted resnet, n = {n:,}, d = {d}, {k} non-zeros per row; well: z std 0.5; ill: z std 1.5 "
        f"and column scales 0.1..10. Error to x* after every iteration. Raw traces: `{out.rel(csv)}`, "
        f"plot: `{out.rel(png)}`.\n",
        _table(["problem", "solver", "s to 1e-4", "s to 1e-8", "time in passes", "final error", "ok"],
               body), ""])
    return rows, text


def _normalized_target(z, link):
    phi = np.exp(z - z.max()) if link == "softmax" else np.exp(z) + z
    return phi / phi.sum()


def _gradient_descent(loss, x_ref, tol, max_iter):
    """Gradient descent with an adaptive Armijo step from x0 = 0; iterations to ||x - x*|| <= tol."""
    x = np.zeros(loss.shape[1] if hasattr(loss, "shape") else x_ref.size)
    state = loss.evaluate(x)
    step = 1.0
    for it in range(1, max_iter + 1):
        g = state.grad
        gg = float(g @ g)
        while True:
            x_new = x - step * g
            try:
                new = loss.evaluate(x_new)
            except ArithmeticError:
                new = None
            if new is not None and np.isfinite(new.fun) and new.fun <= state.fun - 1e-4 * step * gg:
                break
            step *= 0.5
            if step < 1e-30:
                return it, False
        x, state = x_new, new
        step *= 2.0
        if np.linalg.norm(x - x_ref) <= tol:
            return it, True
    return max_iter, False


def study_shortcut(cfg, out, log=print):
    rows = []
    for z in cfg.sc_zs:
        for seed in range(cfg.sc_seeds):
            pb = _planted(cfg.sc_n, cfg.sc_d, cfg.sc_k, z, seed=seed)
            zt = pb.A @ pb.x_true
            for link in ("resnet", "softmax"):
                b = _normalized_target(zt, link)
                loss = NormalizedRegressionLoss(pb.A, b, link=link)
                eig = np.linalg.eigvalsh(loss.hessian(pb.x_true))
                newton = run_ours("exact", pb.A, b, pb.x_true, cfg.eps, link=link)
                gd_it, gd_ok = _gradient_descent(loss, pb.x_true, cfg.sc_gd_tol, cfg.sc_gd_max)
                rows.append(dict(z_std=z, seed=seed, link=link, lambda_max=eig[-1],
                                 lambda_min=eig[0], cond=eig[-1] / eig[0] if eig[0] > 0 else np.inf,
                                 newton_iter=newton["nit"], newton_ok=newton["success"],
                                 gd_iter=gd_it, gd_ok=gd_ok))
                log(f"shortcut: z std {z} seed {seed} {link:8s} cond {rows[-1]['cond']:.3e} "
                    f"Newton {newton['nit']} it GD {gd_it} it ({'ok' if gd_ok else 'not reached'})")
    csv = out.path("results", "shortcut", "csv")
    write_csv(csv, rows, list(rows[0]))
    png = plot_shortcut(rows, out.path("plots", "shortcut", "png"), n=cfg.sc_n, d=cfg.sc_d,
                        eps=cfg.eps, gd_tol=cfg.sc_gd_tol, gd_max=cfg.sc_gd_max)
    body = []
    for z in cfg.sc_zs:
        med = {}
        for link in ("resnet", "softmax"):
            rs = [r for r in rows if r["z_std"] == z and r["link"] == link]
            med[link] = (np.median([r["cond"] for r in rs]), np.median([r["gd_iter"] for r in rs]),
                         np.median([r["newton_iter"] for r in rs]), all(r["gd_ok"] for r in rs))
        body.append([z] + [f"{med[l][0]:.3g}" for l in ("resnet", "softmax")]
                    + [f"{med['softmax'][0] / med['resnet'][0]:.2f}"]
                    + [f"{med[l][1]:.0f}" + ("" if med[l][3] else " (cap)") for l in ("resnet", "softmax")]
                    + [f"{med[l][2]:.0f}" for l in ("resnet", "softmax")])
    text = "\n".join([
        "### The shortcut term: resnet against softmax (`shortcut`)\n",
        f"Same A (n = {cfg.sc_n:,}, d = {cfg.sc_d}, {cfg.sc_k}/row) and planted x*, targets "
        f"phi(A x*)/sum for each link; medians over {cfg.sc_seeds} seeds. GD: adaptive Armijo step "
        f"from 0 to ||x - x*|| <= {cfg.sc_gd_tol:g}; Newton: `solve(method='exact')` to "
        f"{cfg.eps:g}. Raw: `{out.rel(csv)}`, plot: `{out.rel(png)}`.\n",
        _table(["z std", "cond resnet", "cond softmax", "softmax / resnet", "GD it resnet",
                "GD it softmax", "Newton it resnet", "Newton it softmax"], body), ""])
    return rows, text


def _memory_child(n, d, k, methods):
    """Runs in a fresh process: peak RSS of each solve above the RSS before it (Linux)."""
    def status(key):
        with open("/proc/self/status") as fh:
            return int(next(line.split()[1] for line in fh if line.startswith(key))) * 1024

    pb = _planted(n, d, k, 1.5)
    A = pb.A
    a_bytes = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    warm_up(A, pb.b)
    out = []
    for m in methods:
        gc.collect()
        with open("/proc/self/clear_refs", "w") as fh:   # resets VmHWM to the current RSS
            fh.write("5")
        before = status("VmRSS:")
        r = run_ours(m, A, pb.b, pb.x_true, 1e-8)
        peak = status("VmHWM:")
        out.append(dict(n=n, d=d, nnz=A.nnz, method=m, chosen=r["chosen"], a_bytes=a_bytes,
                        rss_before=before, peak=peak, extra=peak - before, seconds=r["seconds"],
                        success=r["success"]))
    print("MEMORY-JSON " + json.dumps(out), flush=True)


def study_memory(cfg, out, log=print):
    rows = []
    methods = ("auto", "exact", "sketch", "pcg")
    for n in cfg.mem_ns:
        cmd = [sys.executable, "-m", "benchmarks.suite", "memory-child", str(n), str(cfg.mem_d),
               str(cfg.mem_k), ",".join(methods)]
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        # A fixed mmap threshold makes glibc return every large freed array to the OS at once, so
        # the RSS before a solve is live memory, not the leftovers of the previous one.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("MEMORY-JSON ")), None)
        if line is None:
            raise RuntimeError(f"memory child failed:\n{proc.stdout}\n{proc.stderr}")
        part = json.loads(line[len("MEMORY-JSON "):])
        for r in part:
            r["n_vectors"] = r["extra"] / (8 * r["n"])
            log(f"memory: n = {n:,} {r['method']:6s} A {r['a_bytes'] / 2**20:.0f} MiB, solve "
                f"+{r['extra'] / 2**20:.0f} MiB = {r['n_vectors']:.1f} n-vectors")
        rows += part
    csv = out.path("results", "memory", "csv")
    write_csv(csv, rows, list(rows[0]))
    body = [[f"{r['n']:,}", f"{r['nnz']:,}", r["method"] + (f" ({r['chosen']})" if r["method"] == "auto"
                                                            else ""),
             f"{r['a_bytes'] / 2**20:.0f}", f"{r['rss_before'] / 2**20:.0f}",
             f"{r['peak'] / 2**20:.0f}", f"{r['extra'] / 2**20:.0f}", f"{r['n_vectors']:.1f}",
             f"{r['extra'] / r['a_bytes']:.2f}", "yes" if r["success"] else "no"] for r in rows]
    ns = sorted({r["n"] for r in rows})
    growth = ""
    if len(ns) >= 2:
        lo, hi = ns[0], ns[-1]
        ratios = [next(r["extra"] for r in rows if r["n"] == hi and r["method"] == m)
                  / max(next(r["extra"] for r in rows if r["n"] == lo and r["method"] == m), 1)
                  for m in methods]
        growth = (f"From n = {lo:,} to {hi:,} ({hi / lo:.0f}x) the extra memory grew by "
                  + ", ".join(f"{m} {q:.1f}x" for m, q in zip(methods, ratios)) + ".")
    text = "\n".join([
        "### Peak memory of a solve (`memory`)\n",
        f"Fresh process per n; planted resnet, d = {cfg.mem_d}, {cfg.mem_k}/row, eps 1e-8. `extra` = peak "
        "RSS during the solve (VmHWM, reset just before it) minus RSS before it; the model is "
        "O(nnz + n + s d + d^2): with d and s d tiny here, extra should be a fixed number of "
        f"n-vectors (8n bytes each), and A itself is never copied. Raw: `{out.rel(csv)}`.\n",
        _table(["n", "nnz", "method", "A (MiB)", "RSS before (MiB)", "peak RSS (MiB)", "extra (MiB)",
                "extra in n-vectors", "extra / size of A", "ok"], body),
        "", growth, ""])
    return rows, text


RUNNERS = {"scaling_n": study_scaling_n, "scaling_d": study_scaling_d, "sketch": study_sketch,
           "accuracy": study_accuracy, "shortcut": study_shortcut, "memory": study_memory}


# ---------------------------------------------------------------------------- RESULTS.md

def update_summary(path, sections, header):
    """Replace (or add) each study's block between markers in the markdown file at ``path``."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
    if begin not in text:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{begin}\n{end}\n{rest}"
    pre, _, tail = text.partition(begin)
    block, _, post = tail.partition(end)
    parts = {}
    for chunk in block.split("<!-- study:")[1:]:
        name, _, body = chunk.partition(" -->")
        parts[name] = body.split("<!-- /study -->")[0].strip("\n")
    parts.update(sections)
    new_block = "\n" + header + "\n\n" + "\n\n".join(
        f"<!-- study:{name} -->\n{parts[name]}\n<!-- /study -->" for name in STUDIES if name in parts) + "\n"
    with open(path, "w") as fh:
        fh.write(pre + begin + new_block + end + post)


def run(studies, quick, out_dir, log=print):
    """Run ``studies``; write CSVs, plots and the markdown summary under ``out_dir``."""
    cfg = QUICK if quick else FULL
    out = Output(out_dir, quick)
    sections, t_start = {}, time.perf_counter()
    for name in progress(studies, desc="benchmark studies", unit="study"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, text = RUNNERS[name](cfg, out, log=log)
        sections[name] = text + f"\n_{name}: {time.perf_counter() - t0:.0f} s, run on " \
                                f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}._"
        log(f"[{name} done in {time.perf_counter() - t0:.0f} s]")
    header = ("## Benchmark suite (`python -m benchmarks" + (" --quick" if quick else "") + "`)\n\n"
              f"Machine: {machine_info()}.\n\nA *pass* is one scipy `A @ x` plus one `A.T @ y` on the "
              "same CSR matrix in the same process; *time in passes* = seconds / that time.")
    summary = os.path.join(out_dir, "RESULTS.md")
    update_summary(summary, sections, header)
    log(f"wrote {summary} ({time.perf_counter() - t_start:.0f} s in all)")
    return summary


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "memory-child":
    _memory_child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split(","))
