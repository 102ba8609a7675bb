"""Peak memory of a solve: is it O(nnz + n + s d + d^2), with A never copied?

Peak resident memory of ``solve`` (each method) in a fresh process per n, above the resident
size just before it, against the model: with d and s d small, a fixed number of n-vectors.
Part of the suite.

    python -m benchmarks memory [--quick] [--out DIR | --update]

Writes ``results/memory[_quick].csv`` and its section of ``RESULTS.md`` (no plot). The child
processes are ``python -m benchmarks memory --child N D K METHODS`` (Linux: ``/proc``).
"""

import argparse
import gc

from .._common import (child_env, emit_result, markdown_table, run_child, study_command,
                       write_csv)
from .._peers import run_ours, warm_up
from .._suite import planted, run_study


def add_arguments(ap):
    ap.add_argument("--child", nargs=4, metavar=("N", "D", "K", "METHODS"),
                    help=argparse.SUPPRESS)  # the fresh process of one n


def child(n, d, k, methods):
    """Runs in a fresh process: peak RSS of each solve above the RSS before it (Linux)."""
    def status(key):
        with open("/proc/self/status") as fh:
            return int(next(line.split()[1] for line in fh if line.startswith(key))) * 1024

    pb = planted(n, d, k, 1.5)
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
    emit_result(out)


def measure(cfg, ctx, log=print):
    rows = []
    methods = ("auto", "exact", "sketch", "pcg")
    for n in cfg.mem_ns:
        cmd = study_command("memory", "--child", n, cfg.mem_d, cfg.mem_k, ",".join(methods))
        # A fixed mmap threshold makes glibc return every large freed array to the OS at once, so
        # the RSS before a solve is live memory, not the leftovers of the previous one.
        part = run_child(cmd, None, env=child_env(MALLOC_MMAP_THRESHOLD_="131072"),
                         setup_timeout=None)
        for r in part:
            r["n_vectors"] = r["extra"] / (8 * r["n"])
            log(f"memory: n = {n:,} {r['method']:6s} A {r['a_bytes'] / 2**20:.0f} MiB, solve "
                f"+{r['extra'] / 2**20:.0f} MiB = {r['n_vectors']:.1f} n-vectors")
        rows += part
    csv = ctx.path("results", "memory", "csv")
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
        f"n-vectors (8n bytes each), and A itself is never copied. Raw: `{ctx.rel(csv)}`.\n",
        markdown_table(["n", "nnz", "method", "A (MiB)", "RSS before (MiB)", "peak RSS (MiB)",
                        "extra (MiB)", "extra in n-vectors", "extra / size of A", "ok"], body),
        "", growth, ""])
    return rows, text


def run(ctx, args):
    if args.child:
        n, d, k, methods = args.child
        return child(int(n), int(d), int(k), methods.split(","))
    run_study(ctx, "memory", measure)
