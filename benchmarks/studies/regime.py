"""The regime map: time to equal objective against p / n, every method and peer, ``auto`` marked.

Which solver is fastest as features outgrow rows, and does ``auto`` pick it?

One real data set at a fixed number of rows and a growing number of features: the code corpus of
``benchmarks/real_data.py`` (binary, 8 lines per document, ``n`` documents, hashed tf-idf with
``p = 2^7 ... 2^17`` features), so that ``p / n`` runs from far below 1 (where the dense methods
and the row sketch win) to far above it (where only matrix-free Newton-CG and the dual form are
possible). Each point is a run of the ``real`` study (same protocol: fresh process per
fit, warm-up, fastest of 2, loosest tolerance of the ladder reaching a relative objective gap of
1e-8 to the best any solver found, a time cap and a memory limit), so the times are comparable
across solvers; ``auto``'s choice is written beside its points.

    python -m benchmarks regime                 # n = 10,000, C = 1 (about 40 minutes)
    python -m benchmarks regime --n 2000 --cap 30 --powers 7,10,13
    python -m benchmarks regime --plot-only     # re-plot the CSV
    python -m benchmarks regime --quick         # n = 1,000, p = 2^7, 2^9, cap 20 s, 3 solvers

Writes ``results/regime[_quick].csv`` (and the real study's ``regime_runs.csv``,
``regime_data.json``, ``regime.md``) and ``plots/regime[_quick].png`` under ``benchmarks/out/``
(``--out DIR``; ``--update``: under ``benchmarks/``, replacing the committed ones).
"""

import csv

from . import parse_study_args, real

SOLVERS = ("sn:auto", "sn:exact", "sn:dual", "sn:pcg", "sn:cg", "lbfgs", "newton-cholesky",
           "liblinear", "glum", "trust-ncg")
QUICK_SOLVERS = ("sn:auto", "lbfgs", "trust-ncg")
STYLE = {"sn:auto": ("k", "o", 3.0), "sn:exact": ("C0", "s", 1.2), "sn:dual": ("C1", "D", 1.2),
         "sn:pcg": ("C2", "^", 1.2), "sn:cg": ("C3", "v", 1.2), "lbfgs": ("C4", "x", 1.2),
         "newton-cholesky": ("C5", "P", 1.2), "liblinear": ("C6", "*", 1.2),
         "glum": ("C7", "h", 1.2), "trust-ncg": ("C8", "<", 1.2)}


def problems(n, powers):
    return [f"code-bin-n{n}-p2^{k}-w8" for k in powers]


def plot(csv_path, png_path):
    """Time against p / n per solver (log-log); ``auto``'s chosen method beside its points."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    Cs = sorted({float(r["C"]) for r in rows})
    for C in Cs:
        for s in SOLVERS:
            pts = sorted((int(r["p"]) / int(r["n"]), float(r["time_s"]), r["method"])
                         for r in rows if r["solver"] == s and float(r["C"]) == C
                         and r["status"] == "ok")
            if not pts:
                continue
            color, marker, lw = STYLE[s]
            x, t, m = zip(*pts)
            label = s if len(Cs) == 1 else f"{s}, C = {C:g}"
            ax.plot(x, t, marker=marker, color=color, lw=lw, ls="-" if C == Cs[0] else "--",
                    label=label, ms=7 if s == "sn:auto" else 5)
            if s == "sn:auto":
                for xi, ti, mi in pts:
                    ax.annotate(mi, (xi, ti), textcoords="offset points", xytext=(4, 6),
                                fontsize=8)
        missing = [s for s in SOLVERS if any(r["solver"] == s and float(r["C"]) == C
                                             and r["status"] != "ok" for r in rows)]
        if missing:
            failed = sorted({(s, int(r["p"]) / int(r["n"]), r["status"]) for s in missing
                             for r in rows if r["solver"] == s and float(r["C"]) == C
                             and r["status"] != "ok"}, key=lambda t: (t[0], t[1]))
            text = "; ".join(f"{s} at p/n = {q:.2g}: {st}" for s, q, st in failed)
            ax.text(0.01, -0.16, "missing points: " + text, transform=ax.transAxes, fontsize=7,
                    wrap=True, va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # decades only: minor labels overlap
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("p / n (features per row of data)")
    ax.set_ylabel("seconds to a relative objective gap of 1e-8")
    n = sorted({int(r["n"]) for r in rows})
    ax.set_title("Which solver is fastest as features outgrow rows? "
                 f"(code corpus, binary, n = {', '.join(f'{v:,}' for v in n)}, "
                 f"C = {', '.join(f'{c:g}' for c in Cs)})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="upper left")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def add_arguments(ap):
    ap.add_argument("--n", type=int, default=None, help="documents (rows; default 10000, "
                    "quick 1000)")
    ap.add_argument("--powers", default=None,
                    help="p = 2^k features, k in ... (default 7,9,11,13,15,17; quick 7,9)")
    ap.add_argument("--C", default="1")
    ap.add_argument("--solvers", default=None,
                    help=f"default {','.join(SOLVERS)}; quick {','.join(QUICK_SOLVERS)}")
    ap.add_argument("--cap", type=float, default=None,
                    help="seconds per fit (default 60, quick 20)")
    ap.add_argument("--ladder", default=None, help="default 1e-6,1e-8,1e-10; quick 1e-4,1e-10")
    ap.add_argument("--plot-only", action="store_true", help="re-plot the existing CSV")


def run(ctx, args):
    quick = ctx.quick
    csv_path = ctx.path("results", "regime", "csv")
    png_path = ctx.path("plots", "regime", "png")
    if not args.plot_only:
        n = args.n or (1000 if quick else 10_000)
        powers = [int(k) for k in (args.powers or ("7,9" if quick else "7,9,11,13,15,17"))
                  .split(",")]
        real.run(ctx, parse_study_args("real", [
            "--problems", ",".join(problems(n, powers)), "--C", args.C,
            "--solvers", args.solvers or ",".join(QUICK_SOLVERS if quick else SOLVERS),
            "--cap", str(args.cap or (20.0 if quick else 60.0)),
            "--ladder", args.ladder or ("1e-4,1e-10" if quick else "1e-6,1e-8,1e-10"),
            "--csv", str(csv_path), "--md", str(csv_path.with_suffix(".md"))]))
    plot(csv_path, png_path)
    print(f"wrote {png_path}")
