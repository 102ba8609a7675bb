"""Scaling in d and density: where does sketching beat exact Newton?

d = 50 ... 1000 columns at two densities (n = 300,000): time to eps in passes of ``solve``'s
methods and L-BFGS-B, what ``auto`` chose, and the cross-over between exact Newton and the faster
of the sketched methods. Part of the suite.

    python -m benchmarks scaling_d [--quick] [--out DIR | --update]

Writes ``results/scaling_d[_quick].csv``, ``plots/scaling_d[_quick].png`` and its section of
``RESULTS.md``.
"""

import gc

from .._common import markdown_table, pass_time, write_csv
from .._peers import warm_up
from .._suite import fmt, planted, run_case, run_study
from ..figures import plot_scaling_d


def measure(cfg, ctx, log=print):
    n, z = cfg.d_n, cfg.d_z
    solvers = ("auto", "exact", "sketch", "pcg", "L-BFGS-B")
    rows = []
    for k in cfg.d_ks:
        for d in cfg.ds:
            kk = min(k, d)
            pb = planted(n, d, kk, z)
            tp = pass_time(pb.A)
            log(f"scaling_d: n = {n:,}, d = {d}, {kk}/row, pass {tp * 1e3:.2f} ms")
            warm_up(pb.A, pb.b)
            for r in run_case(pb, solvers, cfg.eps, cfg.cap, tp, log=log, tag=f"d={d} k={kk}"):
                r.update(n=n, d=d, k=kk, nnz=pb.A.nnz)
                rows.append(r)
            del pb
            gc.collect()
    csv = ctx.path("results", "scaling_d", "csv")
    write_csv(csv, rows, ["n", "d", "k", "nnz", "solver", "chosen", "nit", "passes", "seconds",
                          "pass_seconds", "time_passes", "error", "success", "note"])

    def get(d, k, s):
        r = next((r for r in rows if r["d"] == d and r["k"] == min(k, d) and r["solver"] == s), None)
        return r["time_passes"] if r and r["success"] else float("inf")

    cells, crossover = [], {}
    for k in cfg.d_ks:
        for d in cfg.ds:
            ex, sk = get(d, k, "exact"), min(get(d, k, "sketch"), get(d, k, "pcg"))
            best = min(solvers, key=lambda s: get(d, k, s))
            chosen = next((r["chosen"] for r in rows if r["d"] == d and r["k"] == min(k, d)
                           and r["solver"] == "auto"), "")
            cells.append([f"{min(k, d)}", d] + [fmt(get(d, k, s), ".1f") for s in solvers]
                         + [chosen, best, fmt(ex / sk, ".2f")])
            crossover.setdefault(k, {"sketched": [], "tie": [], "exact": []})[
                "sketched" if ex > 1.1 * sk else "exact" if sk > 1.1 * ex else "tie"].append(d)
    png = plot_scaling_d(rows, ctx.path("plots", "scaling_d", "png"), eps=cfg.eps, n=n,
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
        f"reached). Raw: `{ctx.rel(csv)}`, plot: `{ctx.rel(png)}`.\n",
        markdown_table(["nnz/row", "d"] + list(solvers)
                       + ["auto chose", "fastest", "exact / best sketched"], cells),
        "", "Cross-over (exact against the faster of sketch and pcg):", cross, ""])
    return rows, text


def run(ctx, args):
    run_study(ctx, "scaling_d", measure)
