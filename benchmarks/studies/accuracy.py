"""Accuracy against time: which solver reaches eps first?

The error to the exact minimiser after every iteration against wall time, every method of
``solve`` and scipy's peers, on one well- and one ill-conditioned planted problem (n = 1e6,
d = 200). Part of the suite.

    python -m benchmarks accuracy [--quick] [--out DIR | --update]

Writes ``results/accuracy[_quick].csv`` (the traces), ``plots/accuracy[_quick].png`` and its
section of ``RESULTS.md``.
"""

import gc

from .._common import markdown_table, pass_time, write_csv
from .._peers import OURS, PEERS, warm_up
from .._suite import fmt, planted, run_case, run_study
from ..figures import plot_accuracy


def measure(cfg, ctx, log=print):
    n, d, k = cfg.acc_size
    problems = {"well": dict(z_std=0.5), "ill": dict(z_std=1.5, column_scale=(0.1, 10.0))}
    solvers = OURS + PEERS
    rows, traces = [], {}
    for name, kw in problems.items():
        pb = planted(n, d, k, kw["z_std"], column_scale=kw.get("column_scale"))
        tp = pass_time(pb.A)
        log(f"accuracy: {name}: n = {n:,}, d = {d}, {k}/row, pass {tp * 1e3:.2f} ms")
        warm_up(pb.A, pb.b)
        for r in run_case(pb, solvers, cfg.eps, cfg.cap, tp, trace=True, log=log, tag=name):
            traces[(name, r["solver"])] = r.pop("trace")
            r.update(problem=name)
            rows.append(r)
        del pb
        gc.collect()
    trace_rows = [dict(problem=p, solver=s, seconds=t, error=e)
                  for (p, s), pts in traces.items() for t, e in pts]
    csv = ctx.path("results", "accuracy", "csv")
    write_csv(csv, trace_rows, ["problem", "solver", "seconds", "error"])
    png = plot_accuracy(trace_rows, ctx.path("plots", "accuracy", "png"), eps=cfg.eps, n=n, d=d,
                        k=k)

    def first(pts, tol):
        return next((t for t, e in pts if e <= tol), None)

    body = [[p, s, fmt(first(traces[(p, s)], 1e-4), ".2f"), fmt(first(traces[(p, s)], 1e-8), ".2f"),
             fmt(r["time_passes"], ".1f"), fmt(r["error"], ".1e"), "yes" if r["success"] else "no"]
            for r in rows for p, s in [(r["problem"], r["solver"])]]
    text = "\n".join([
        "### Accuracy against time (`accuracy`)\n",
        f"Planted resnet, n = {n:,}, d = {d}, {k} non-zeros per row; well: z std 0.5; ill: z std 1.5 "
        f"and column scales 0.1..10. Error to x* after every iteration. Raw traces: `{ctx.rel(csv)}`, "
        f"plot: `{ctx.rel(png)}`.\n",
        markdown_table(["problem", "solver", "s to 1e-4", "s to 1e-8", "time in passes",
                        "final error", "ok"], body), ""])
    return rows, text


def run(ctx, args):
    run_study(ctx, "accuracy", measure)
