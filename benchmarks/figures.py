"""Every benchmark plot, drawn from the rows of its CSV (so a plot can be rebuilt from the
committed results without rerunning: ``python -m benchmarks --plots-only``).

Each plot answers one question, stated in its title; the target accuracy ``eps`` is in the
title or the legend; a solver that failed (did not reach eps, timed out) is drawn with hollow
markers and its legend entry says so, never left out silently.
"""

import csv
import math
import os

import numpy as np

__all__ = ["read_csv", "save_figure", "plot_scaling_n", "plot_scaling_d", "plot_sketch",
           "plot_accuracy", "plot_shortcut", "plot_estimators", "replot"]

OURS = ("auto", "exact", "sketch", "pcg")


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def read_csv(path):
    """The rows of ``path`` as dicts, numbers and booleans converted."""
    def value(v):
        if v in ("True", "False"):
            return v == "True"
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v
    with open(path, newline="") as fh:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _tidy_log_axis(axis, lo, hi):
    """Readable labels on a log axis from ``lo`` to ``hi``: 1-2-5 ticks labelled ``%g`` when it
    spans under two decades (matplotlib would otherwise label overlapping minor ticks), decades
    only beyond."""
    from matplotlib import ticker
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    subs = (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(2, 10) * 1.0))
    axis.set_minor_formatter(ticker.NullFormatter())
    if decades < 2:
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))


def save_figure(fig, png, title=None):
    """Grid, legend, readable log ticks on every panel; the figure's question as its title;
    write ``png``, close ``fig``; returns ``png``."""
    for ax in fig.axes:
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() == "log":
                _tidy_log_axis(axis, *lim)
        if ax.get_legend_handles_labels()[0] and ax.get_legend() is None:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=12, fontweight="bold")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    fig.savefig(png, dpi=110)
    _plt().close(fig)
    return png


def _failure_label(solver, failed, where):
    """``solver`` plus, when some runs failed, where and how (the CSV's note)."""
    if not failed:
        return solver
    notes = sorted({str(r.get("note", ""))[:48] for r in failed if r.get("note")})
    how = f"\n  ({'; '.join(notes)})" if notes else ""
    return f"{solver}: did not reach eps at {where(failed)}{how}"


# -- the suite's studies -----------------------------------------------------------------------

def plot_scaling_n(rows, png, *, eps, d, k):
    """Time and time in passes against nnz, one line per solver; failed runs hollow."""
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    for i, s in enumerate(solvers):
        rs = [r for r in rows if r["solver"] == s]
        ok = [r for r in rs if r["success"]]
        bad = [r for r in rs if not r["success"]]
        color = f"C{i}"
        style = "-o" if s in OURS else "--s"
        label = _failure_label(s, bad, lambda f: "n = " + ", ".join(f"{r['n']:.0e}" for r in f))
        for ax, key in zip(axes, ("seconds", "time_passes")):
            ax.loglog([r["nnz"] for r in ok], [r[key] for r in ok], style, color=color,
                      label=label if ok else None)
            if bad:
                ax.loglog([r["nnz"] for r in bad], [r[key] for r in bad], "x", color=color, ms=9,
                          mew=2, label=None if ok else label)
    nnz_all = sorted({r["nnz"] for r in rows})
    ref = [r["seconds"] for r in rows if r["solver"] == "auto" and r["success"]]
    if ref:
        axes[0].loglog(nnz_all, [ref[-1] * v / nnz_all[-1] for v in nnz_all], ":k",
                       label="slope 1 (time proportional to nnz)")
    axes[0].set(xlabel="nnz(A)", ylabel=f"seconds to ||x - x*|| <= {eps:g}",
                title=f"wall time; d = {d}, {k} non-zeros per row")
    axes[1].set(xlabel="nnz(A)", ylabel="time / time of one pass",
                title="time in passes (one pass = A @ x + A.T @ y); x: did not reach eps")
    # one legend, in the empty corner of the right panel (same colours on both)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, labels, fontsize=7.5, loc="upper right")
    axes[0].legend([], [], frameon=False)
    return save_figure(fig, png, f"Does the time to eps = {eps:g} grow linearly with the input "
                                 "size? (scaling in n)")


def _crossover(ds, ratio):
    """The largest d where ``ratio`` (exact / best sketched) crosses 1, interpolated on log d
    (beyond it one side wins at every measured d), or None."""
    cross = None
    for (d0, r0), (d1, r1) in zip(zip(ds, ratio), zip(ds[1:], ratio[1:])):
        if np.isfinite(r0) and np.isfinite(r1) and (r0 - 1) * (r1 - 1) < 0:
            t = math.log(r0) / (math.log(r0) - math.log(r1))
            cross = math.exp(math.log(d0) + t * (math.log(d1) - math.log(d0)))
    return cross


def plot_scaling_d(rows, png, *, eps, n, ks):
    """Time in passes against d per density (``ks``: non-zeros per row, capped at d); the
    exact / sketched crossover marked."""
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    ds = sorted({r["d"] for r in rows})
    plt = _plt()
    fig, axes = plt.subplots(1, len(ks), figsize=(6.5 * len(ks), 5.2), squeeze=False)

    def get(d, k, s):
        r = next((r for r in rows if r["d"] == d and r["k"] == min(k, d) and r["solver"] == s),
                 None)
        return r["time_passes"] if r and r["success"] else float("inf")

    for ax, k in zip(axes[0], ks):
        for i, s in enumerate(solvers):
            ys = [get(d, k, s) for d in ds]
            failed = [d for d, y in zip(ds, ys) if not np.isfinite(y)]
            label = s + (f": did not reach eps at d = {failed}" if failed else "")
            ax.loglog(ds, ys, "-o" if s in OURS else "--s", color=f"C{i}", label=label)
        ratio = [get(d, k, "exact") / min(get(d, k, "sketch"), get(d, k, "pcg")) for d in ds]
        cross = _crossover(ds, ratio)
        if cross is not None:
            ax.axvline(cross, color="k", ls="-.", lw=1.2,
                       label=f"crossover d ~ {cross:.0f}: exact = best sketched")
            side = "sketched faster" if ratio[-1] > 1 else "exact faster"
            ax.annotate(f"{side} beyond", xy=(cross, 0.96), xycoords=("data", "axes fraction"),
                        xytext=(6, 0), textcoords="offset points", fontsize=8, va="top")
        else:
            winner = "sketched (sketch or pcg)" if ratio[0] > 1 else "exact"
            ax.text(0.02, 0.02, f"no crossover in this range: {winner} faster at every d",
                    transform=ax.transAxes, fontsize=8)
        ax.set(xlabel="d (columns)", ylabel=f"time to eps = {eps:g} / time of one pass",
               title=f"n = {n:,}, {k} non-zeros per row (at most d)")
        ax.legend(fontsize=7.5, loc="best")
    return save_figure(fig, png, "Where does sketching beat exact Newton? (time to eps in passes "
                                 "against d)")


def plot_sketch(rows, png, *, n, d, seeds):
    """Spectral error of the sketched Gram against s / d, per row structure."""
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    mults = np.array(sorted({r["mult"] for r in rows}), float)
    plt = _plt()
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 5.0), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for m in methods:
            rs = [r for r in rows if r["kind"] == kind and r["method"] == m]
            ax.loglog([r["mult"] for r in rs], [r["max_err"] for r in rs], "-o", label=m)
        ax.loglog(mults, (1 + np.sqrt(1 / mults)) ** 2 - 1, ":k",
                  label="Gaussian yardstick (1 + sqrt(d/s))^2 - 1")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set(xlabel="sketch size s / d", ylabel=f"spectral error, max over {seeds} seeds",
               title=f"{kind} rows, n = {n:,}, d = {d}")
        ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, png, "How large must the sketch be? (spectral error of the sketched "
                                 "Hessian; below 1 it preconditions)")


def plot_accuracy(rows, png, *, eps, n, d, k, final=None):
    """Error to x* against wall time, one panel per problem; failed solvers say so."""
    problems = list(dict.fromkeys(r["problem"] for r in rows))
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    plt = _plt()
    fig, axes = plt.subplots(1, len(problems), figsize=(6.5 * len(problems), 5.2), squeeze=False)
    for ax, name in zip(axes[0], problems):
        for i, s in enumerate(solvers):
            pts = [(r["seconds"], r["error"]) for r in rows
                   if r["problem"] == name and r["solver"] == s]
            if not pts:
                continue
            reached = min(p[1] for p in pts) <= eps
            label = s
            if not reached:
                label += f": did not reach eps (final error {pts[-1][1]:.1e}"
                label += f", {pts[-1][0]:.0f} s)" if final is None else f"; {final(name, s)})"
            ax.loglog([p[0] for p in pts], [max(p[1], 1e-16) for p in pts],
                      "-o" if s in OURS else "--", ms=3, color=f"C{i}", label=label)
            if not reached:
                ax.plot([pts[-1][0]], [max(pts[-1][1], 1e-16)], "x", color=f"C{i}", ms=9, mew=2)
        ax.axhline(eps, color="k", lw=1.0, ls=":", label=f"eps = {eps:g}")
        ax.set(xlabel="wall time (s)", ylabel="||x_k - x*||",
               title=f"{name}-conditioned: n = {n:,}, d = {d}, {k} non-zeros per row")
        ax.legend(fontsize=7.5, loc="lower left")
    return save_figure(fig, png, f"Which solver reaches eps = {eps:g} first? (error to the exact "
                                 "minimiser against time)")


def plot_shortcut(rows, png, *, n, d, eps, gd_tol, gd_max):
    """Conditioning and iterations, resnet against softmax, against the spread of z."""
    zs = sorted({r["z_std"] for r in rows})
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.0))
    for link, style in (("resnet", "-o"), ("softmax", "--s")):
        def med(key, z):
            return float(np.median([r[key] for r in rows if r["z_std"] == z and r["link"] == link]))
        axes[0].semilogy(zs, [med("cond", z) for z in zs], style, label=link)
        gd = [med("gd_iter", z) for z in zs]
        capped = [z for z in zs if not all(r["gd_ok"] for r in rows
                                           if r["z_std"] == z and r["link"] == link)]
        axes[1].semilogy(zs, gd, style, label=f"{link}: gradient descent to {gd_tol:g}"
                         + (f" (hit the {gd_max:,}-iteration cap at z std {capped})"
                            if capped else ""))
        axes[1].semilogy(zs, [med("newton_iter", z) for z in zs],
                         style.replace("o", "^").replace("s", "v"),
                         label=f"{link}: Newton to eps = {eps:g}")
    axes[0].set(xlabel="std of z = A x*", ylabel="cond(H(x*)), median over seeds",
                title=f"Hessian conditioning, n = {n:,}, d = {d}")
    axes[1].set(xlabel="std of z = A x*", ylabel="iterations, median over seeds",
                title="iterations to the target")
    return save_figure(fig, png, "Does the shortcut term (resnet: exp(z) + z) condition the "
                                 "problem better than softmax (exp(z))?")


# -- the estimator benchmark -------------------------------------------------------------------

def _case_label(case):
    """``sparse-d500-K2-ill`` -> ``sparse d=500, 2 classes, ill (C = 1e3)``."""
    parts = case.split("-")
    kind, d, K, cond = (parts + ["", "", "", ""])[:4]
    c = {"well": "C = 1", "ill": "C = 1e3, column scales 1e-2..1e2"}.get(cond, cond)
    return f"{kind} {d.replace('d', 'd = ')}, {K[1:]} classes\n{cond}: {c}"


def plot_estimators(rows, png, *, cap=None):
    """Time to equal objective per data set and C, ours against scikit-learn's solvers."""
    cases = list(dict.fromkeys(r["case"] for r in rows))
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    n = rows[0]["n"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 0.9 * len(cases) + 2.2))
    height = 0.8 / len(solvers)
    finite = [r["time_s"] for r in rows if np.isfinite(r["time_s"])]
    right = cap or 2.0 * max(finite)
    for j, s in enumerate(solvers):
        for i, case in enumerate(cases):
            r = next((r for r in rows if r["case"] == case and r["solver"] == s), None)
            if r is None:
                continue
            y = i + (j - (len(solvers) - 1) / 2) * height
            ok = r["reached"] and np.isfinite(r["time_s"])
            t = r["time_s"] if ok else right
            ax.barh(y, t, height=height * 0.9, color=f"C{j}", alpha=1.0 if ok else 0.25,
                    hatch=None if ok else "//", label=s if i == 0 else None)
            text = f"{r['time_s']:.2f} s" if ok else (
                "timed out (over the time cap)" if r.get("timed_out")
                else "objective gap not reached")
            ax.text(t * 1.05, y, text, va="center", fontsize=7)
    ax.set_yticks(range(len(cases)), [_case_label(c) for c in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(min(finite) / 2, right * 4)
    ax.set_xlabel("seconds to an objective within 1e-8 (relative) of the best reached; "
                  "hatched: did not get there")
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, png, f"Logistic regression, n = {n:,}: how long does each solver take "
                                 "to the same objective? (per data set and C)")


# -- rebuild every plot from the CSVs ----------------------------------------------------------

def replot(results, plots, cfg, suffix=""):
    """Redraw every plot whose CSV is in ``results`` into ``plots``; the list of PNGs written.

    ``cfg``: the suite's configuration the CSVs were measured with (sizes shown in titles).
    """
    def path(name):
        p = os.path.join(results, f"{name}{suffix}.csv")
        return p if os.path.exists(p) else None

    def png(name):
        return os.path.join(plots, f"{name}{suffix}.png")

    out = []
    if path("scaling_n"):
        out.append(plot_scaling_n(read_csv(path("scaling_n")), png("scaling_n"), eps=cfg.eps,
                                  d=cfg.n_d, k=cfg.n_k))
    if path("scaling_d"):
        out.append(plot_scaling_d(read_csv(path("scaling_d")), png("scaling_d"), eps=cfg.eps,
                                  n=cfg.d_n, ks=cfg.d_ks))
    if path("sketch"):
        out.append(plot_sketch(read_csv(path("sketch")), png("sketch"), n=cfg.sk_n, d=cfg.sk_d,
                               seeds=cfg.sk_seeds))
    if path("accuracy"):
        n, d, k = cfg.acc_size
        out.append(plot_accuracy(read_csv(path("accuracy")), png("accuracy"), eps=cfg.eps, n=n,
                                 d=d, k=k))
    if path("shortcut"):
        out.append(plot_shortcut(read_csv(path("shortcut")), png("shortcut"), n=cfg.sc_n,
                                 d=cfg.sc_d, eps=cfg.eps, gd_tol=cfg.sc_gd_tol,
                                 gd_max=cfg.sc_gd_max))
    est = os.path.join(results, f"estimators_{'quick' if suffix else 'full'}.csv")
    if os.path.exists(est):
        out.append(plot_estimators(read_csv(est), png("estimators")))
    return out
