"""Sketch quality: how large must the sketch be for the sketched Hessian to precondition?

Spectral error of the sketched Gram ``A^T D A`` against the sketch size (s = 2d ... 40d) for
leverage, SRHT, CountSketch, Gaussian and uniform sampling, on well-spread and on coherent
matrices (a few heavy rows of leverage 1), maximum over seeds. Part of the suite; the sketching
layer's own study (more variants, the size formula, the cost) is ``sketch_layer``.

    python -m benchmarks sketch [--quick] [--out DIR | --update]

Writes ``results/sketch[_quick].csv``, ``plots/sketch[_quick].png`` and its section of
``RESULTS.md``.
"""

from .._common import markdown_table, write_csv
from .._suite import fmt, run_study
from ..figures import plot_sketch
from .sketch_layer import run_errors


def measure(cfg, ctx, log=print):
    variants = {"leverage": dict(method="leverage"), "srht": dict(method="srht"),
                "countsketch": dict(method="countsketch"), "gaussian": dict(method="gaussian"),
                "uniform": dict(method="uniform")}
    log(f"sketch: n = {cfg.sk_n:,}, d = {cfg.sk_d}, {cfg.sk_seeds} seeds")
    rows = run_errors(cfg.sk_n, cfg.sk_d, list(cfg.sk_multiples), cfg.sk_seeds, variants=variants)
    csv = ctx.path("results", "sketch", "csv")
    write_csv(csv, rows, ["kind", "method", "mult", "s", "max_err", "median_err"])
    kinds = ("spread", "coherent")
    png = plot_sketch(rows, ctx.path("plots", "sketch", "png"), n=cfg.sk_n, d=cfg.sk_d,
                      seeds=cfg.sk_seeds)
    mults = list(cfg.sk_multiples)
    body = []
    for kind in kinds:
        for m in variants:
            errs = {r["mult"]: r["max_err"] for r in rows if r["kind"] == kind and r["method"] == m}
            body.append([kind, m] + [fmt(errs.get(x), ".2f") for x in mults])
    text = "\n".join([
        "### Sketch quality (`sketch`)\n",
        "Spectral error `||L^-1 (H~ - H) L^-T||_2` of the sketched Gram `A^T D A` (D log-normal with 5% "
        f"zeros), max over {cfg.sk_seeds} seeds. Coherent: a few heavy rows with leverage 1. "
        f"Raw: `{ctx.rel(csv)}`, plot: `{ctx.rel(png)}`.\n",
        markdown_table(["rows", "method"] + [f"s = {x}d" for x in mults], body), ""])
    return rows, text


def run(ctx, args):
    run_study(ctx, "sketch", measure)
