"""The Newton driver against scipy's peers on planted resnet problems.

Is ``solve`` faster than scipy's methods driven by the same loss, and where does its time go?

    python -m benchmarks newton [--quick] [--cases big,sparse10_well] [--no-eps-table] [--eps E]

For every case, in one process and on the same problem: ``solve`` with
``method`` in auto / exact / sketch / pcg, and scipy's L-BFGS-B, Newton-CG and
trust-ncg driven by our loss, gradient and Hessian-vector product (with the
loss state cached so a Hessian-vector product costs one pass). The planted
problems are noiseless, so ``x_true`` is the exact minimiser and the
reference: every solver's error ``||x - x_true||`` is reported and a time
counts only if the error is <= eps. scipy peers get an oracle stop (a
callback ends them as soon as their iterate is within eps of x_true), which
favours them. Times are also given in passes (time / time of one scipy
``A @ x`` + ``A.T @ y``).

Also iterations and passes against eps (``--no-eps-table``: not). Writes
``results/newton[_quick].csv`` and ``results/newton_eps[_quick].csv`` and prints markdown
tables.
"""

from sketchnewton.datasets import make_regression_problem

from .. import _peers
from .._common import pass_time, write_csv


CASES = {
    # name: (n, d, nnz_per_row, z_std)
    "big": (1_000_000, 500, 50, 1.5),
    "sparse10_well": (1_000_000, 200, 10, 0.5),
    "sparse10_ill": (1_000_000, 200, 10, 1.5),
}
QUICK = {
    "big": (100_000, 100, 30, 1.5),
    "sparse10_well": (100_000, 50, 5, 0.5),
    "sparse10_ill": (100_000, 50, 5, 1.5),
}


def run_scipy(method, pb, eps):
    return _peers.run_scipy(method, pb.A, pb.b, pb.x_true, eps)


def run_ours(method, pb, eps, seed=0):
    return _peers.run_ours(method, pb.A, pb.b, pb.x_true, eps, seed=seed)


def bench_case(name, size, eps, methods, peers):
    n, d, k, z_std = size
    pb = make_regression_problem(n, d, link="resnet", nnz_per_row=k, z_std=z_std,
                                 random_state=0)
    tp = pass_time(pb.A)
    _peers.warm_up(pb.A, pb.b)  # compilation, page faults
    rows = []
    for m in methods:
        r = run_ours(m, pb, eps)
        r.update(case=name, method=m, pass_seconds=tp)
        rows.append(r)
        print(f"  {name} {m}: {r['seconds']:.2f} s, {r['nit']} it, err {r['error']:.2e}", flush=True)
    for m in peers:
        r = run_scipy(m, pb, eps)
        r.update(case=name, method=m, pass_seconds=tp)
        rows.append(r)
        print(f"  {name} {m}: {r['seconds']:.2f} s, {r['nit']} it, err {r['error']:.2e}", flush=True)
    return pb, tp, rows


def eps_table(size, seed=0):
    n, d, k, z_std = size
    pb = make_regression_problem(n, d, link="resnet", nnz_per_row=k, z_std=z_std,
                                 random_state=seed)
    out = []
    for method in ("sketch", "pcg", "exact"):
        for e in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10):
            r = run_ours(method, pb, e)
            out.append(dict(method=method, eps=e, nit=r["nit"], passes=r["passes"],
                            seconds=r["seconds"], error=r["error"], bound=r["bound"],
                            success=r["success"]))
    return out


def add_arguments(ap):
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of "
                    + ",".join(CASES))
    ap.add_argument("--no-eps-table", action="store_true")
    ap.add_argument("--eps", type=float, default=1e-8)


def run(ctx, args):
    sizes = QUICK if ctx.quick else CASES
    all_rows = []
    for name in ctx.progress(list(filter(None, args.cases.split(","))), desc="cases"):
        _, tp, rows = bench_case(name, sizes[name], args.eps, ["auto", "exact", "sketch", "pcg"],
                                 ["L-BFGS-B", "Newton-CG", "trust-ncg"])
        all_rows += rows
        n, d, k, z = sizes[name]
        print(f"\n### {name}: n = {n:,}, d = {d}, {k} non-zeros per row, z std {z}, eps = {args.eps:g}"
              f" (one pass = {tp * 1e3:.1f} ms)\n")
        print("| method | iterations | passes (counted) | seconds | time in passes | error | ok | note |")
        print("|---|---:|---:|---:|---:|---:|---|---|")
        for r in rows:
            print(f"| {r['method']} | {r['nit']} | {r['passes']:.1f} | {r['seconds']:.2f} | "
                  f"{r['seconds'] / tp:.1f} | {r['error']:.1e} | {r['success']} | {r['note']} |")
        ok = {r["method"]: r["seconds"] for r in rows if r["success"]}
        auto = ok.get("auto")
        if auto:
            print("\nratios (peer time / auto time): " + ", ".join(
                f"{m} {t / auto:.2f}" for m, t in ok.items() if m != "auto"))
        print("\ntime split (passes) and passes per iteration:\n")
        print("| method | per iteration | gradient | leverage | sketch | gram | factorization | "
              "inner solve | line search |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            if "timings" not in r:
                continue
            t = r["timings"]
            per_it = r["seconds"] / tp / max(r["nit"], 1)
            print(f"| {r['method']} | {per_it:.1f} | " + " | ".join(
                f"{t.get(key, 0.0) / tp:.1f}" for key in
                ("gradient", "leverage", "sketch", "gram", "factorization", "inner_solve",
                 "line_search")) + " |")
    if all_rows:
        write_csv(ctx.path("results", "newton", "csv"), all_rows,
                  ["case", "method", "nit", "passes", "seconds", "pass_seconds", "error",
                   "success", "note"])
    if not args.no_eps_table:
        size = (50_000, 50, 10, 1.5) if ctx.quick else (200_000, 200, 20, 1.5)
        table = eps_table(size)
        print(f"\n### iterations and passes against eps (n = {size[0]:,}, d = {size[1]}, "
              f"{size[2]} per row, z std {size[3]})\n")
        print("| method | eps | iterations | passes | error | error bound | ok |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for r in table:
            print(f"| {r['method']} | {r['eps']:.0e} | {r['nit']} | {r['passes']:.1f} | "
                  f"{r['error']:.1e} | {r['bound']:.1e} | {r['success']} |")
        write_csv(ctx.path("results", "newton_eps", "csv"), table, list(table[0]))
