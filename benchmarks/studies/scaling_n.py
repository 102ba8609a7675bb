"""Scaling in n: does the time to eps grow linearly with the input size (nnz)?

n = 1e4 ... 1e7 rows at d = 100 and a fixed number of non-zeros per row: time and passes to
eps for every method of ``solve`` and scipy's peers (L-BFGS-B, Newton-CG, trust-ncg), and the
log-log slope of time against nnz (input-sparsity time: close to 1). Part of the suite.

    python -m benchmarks scaling_n [--quick] [--out DIR | --update]

Writes ``results/scaling_n[_quick].csv``, ``plots/scaling_n[_quick].png`` and its section of
``RESULTS.md``.
"""

import gc
import time

import numpy as np

from .._common import markdown_table, pass_time, write_csv
from .._peers import OURS, PEERS, warm_up
from .._suite import fmt, planted, run_case, run_study
from ..figures import plot_scaling_n


def measure(cfg, ctx, log=print):
    d, k, z = cfg.n_d, cfg.n_k, cfg.n_z
    solvers = OURS + PEERS
    rows = []
    for n in cfg.ns:
        t0 = time.perf_counter()
        pb = planted(n, d, k, z)
        gen = time.perf_counter() - t0
        tp = pass_time(pb.A)
        log(f"scaling_n: n = {n:,} nnz = {pb.A.nnz:,} (generated in {gen:.1f} s), "
            f"pass {tp * 1e3:.2f} ms")
        warm_up(pb.A, pb.b)
        for r in run_case(pb, solvers, cfg.eps, cfg.cap, tp, log=log, tag=f"n={n:.0e}"):
            r.update(n=n, d=d, nnz=pb.A.nnz, generate_seconds=gen)
            rows.append(r)
        del pb
        gc.collect()
    cols = ["n", "d", "nnz", "solver", "nit", "passes", "seconds", "pass_seconds", "time_passes",
            "error", "success", "timed_out", "note", "generate_seconds"]
    csv = ctx.path("results", "scaling_n", "csv")
    write_csv(csv, rows, cols)

    slopes = {}
    for s in solvers:
        pts = [(r["nnz"], r["seconds"]) for r in rows
               if r["solver"] == s and r["success"] and r["n"] >= cfg.slope_min_n]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slopes[s] = (float(np.polyfit(x, y, 1)[0]), len(pts))

    png = plot_scaling_n(rows, ctx.path("plots", "scaling_n", "png"), eps=cfg.eps, d=d, k=k)

    lines = ["### Scaling in n (`scaling_n`)\n",
             f"Planted resnet, d = {d}, {k} non-zeros per row, z std {z}, eps = {cfg.eps:g}, from x0 = 0 "
             f"(our default start); peers capped at {cfg.cap:g} s. Raw: `{ctx.rel(csv)}`, plot: "
             f"`{ctx.rel(png)}`.\n",
             markdown_table(["n", "nnz", "solver", "iterations", "counted passes", "seconds",
                             "time in passes", "error", "ok"],
                            [[f"{r['n']:,}", f"{r['nnz']:,}", r["solver"], r["nit"],
                              fmt(r["passes"], ".1f"), fmt(r["seconds"], ".2f"),
                              fmt(r["time_passes"], ".1f"), fmt(r["error"], ".1e"),
                              "yes" if r["success"] else f"no ({r['note']})"]
                             for r in rows]),
             "",
             f"Log-log slope of time against nnz (successful runs with n >= {cfg.slope_min_n:,}):\n",
             markdown_table(["solver", "slope", "points"],
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


def run(ctx, args):
    run_study(ctx, "scaling_n", measure)
