"""Time-passes of every method on the planted suite and the real sets, with the time split by phase.

Does a solve cost what its counted passes say? A *time-pass* is the wall time divided by the
time of one scipy pass (``A @ x`` then ``A.T @ y``, best of 7) on the same matrix in the same
process; next to the counted passes it shows whether the time goes to the passes and whether
they run at the speed of a plain sparse product (issue 26).

    python -m benchmarks timepass [--quick] [--cases d500-k50-ill,...] [--methods auto,pcg]
                                  [--against DIR] [--repeat 2] [--tolerance 1.2]

Cases: planted normalized regression (``resnet``; n = 1e6; d = 200 with 10 non-zeros per row
and d = 500 with 50; well- (z std 0.5) and ill-conditioned (z std 1.5); eps = 1e-8), the
ill-conditioned n = 4e5, d = 500, 50 per row instance of the issue, and binary logistic
regression on LIBSVM a9a and w8a (C = 1, tol = 1e-8). Every solve runs in a fresh process
after a warm-up solve on the same data (compilation, page faults), fastest of ``--repeat``.

``--against DIR``: also measure the library found in ``DIR`` (a checkout, e.g. the previous
release: ``git worktree add /tmp/prev <rev>``), interleaved case by case with this one, so that
both are measured in one run on the same machine state; its rows are written with
``version=DIR``. Without it, the rows are compared with the committed figures in
``benchmarks/results/timepass.csv`` (the previous release's): a method whose time-passes grew by
more than ``--tolerance`` (or whose counted passes grew) is reported as a failed comparison.
Writes ``results/timepass[_quick].csv``.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .._common import BENCH, ROOT, write_csv
from ..real_data import load_libsvm

#: planted normalized regression: (n, d, non-zeros per row, z std[, noise]); without noise
#: the minimiser of a row sample is exactly the full one (the warm start of ``presolve`` then
#: leaves no iteration), so the noisy cases show what a warm start does on data that fit
#: their model less well (``noise``: ``b = f + noise std(f) g``)
PLANTED = {
    "d200-k10-well": (1_000_000, 200, 10, 0.5),
    "d200-k10-ill": (1_000_000, 200, 10, 1.5),
    "d500-k50-well": (1_000_000, 500, 50, 0.5),
    "d500-k50-ill": (1_000_000, 500, 50, 1.5),
    "n4e5-d500-k50-ill": (400_000, 500, 50, 1.5),
    "d200-k10-ill-noisy": (1_000_000, 200, 10, 1.5, 1.0),
    "d500-k50-ill-noisy": (1_000_000, 500, 50, 1.5, 1.0),
}
QUICK = {"d50-k10-ill": (50_000, 50, 10, 1.5), "d100-k20-well": (50_000, 100, 20, 0.5)}
REAL = ("a9a", "w8a")
METHODS = ("auto", "exact", "sketch", "pcg", "cg")
PHASES = ("presolve", "gradient", "line_search", "leverage", "sketch", "gram", "factorization",
          "inner_solve", "other")
COLUMNS = (["case", "method", "chosen", "version", "nit", "passes", "seconds", "pass_seconds",
            "time_passes"] + [f"tp_{p}" for p in PHASES]
           + ["success", "comparison", "previous_time_passes", "previous_passes"])

#: the measurement, run in a fresh interpreter whose only imports are the library under test
#: and numpy/scipy (so that a previous release can be measured by the same code)
CHILD = r"""
import json, sys, time, warnings
import numpy as np
import sketchnewton as sn
warnings.simplefilter("ignore")
case, method, spec, repeat = json.loads(sys.argv[1])
if spec[0] == "planted":
    from sketchnewton.datasets import make_regression_problem
    n, d, k, z = spec[1:5]
    noise = spec[5] if len(spec) > 5 else 0.0
    pb = make_regression_problem(n, d, link="resnet", nnz_per_row=k, z_std=z, noise=noise,
                                 random_state=0)
    A = pb.A
    def solve():
        return sn.solve(A, pb.b, 1e-8, method=method, random_state=0)
else:
    X, y = spec[1], spec[2]
    import scipy.sparse as sp
    data = np.load(X)
    A = sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"]))
    yy = np.load(y)
    def solve():
        loss = sn.LogisticLoss(A, yy, lam=1.0, fit_intercept=True)
        return sn.minimize(loss, tol=1e-8, method=method, random_state=0)
x, r = np.ones(A.shape[1]), np.ones(A.shape[0])
times = []
for _ in range(7):
    t0 = time.perf_counter(); A @ x; A.T @ r; times.append(time.perf_counter() - t0)
tp = min(times)
solve()  # warm-up
best = None
for _ in range(repeat):
    res = solve()
    if best is None or res.time < best.time:
        best = res
t = dict(best.timings)
print("RESULT " + json.dumps(dict(case=case, method=method, chosen=best.method, nit=int(best.nit),
      passes=float(best.passes), seconds=float(best.time), pass_seconds=tp,
      success=bool(best.success), timings={k: float(v) for k, v in t.items()})))
"""


def add_arguments(parser):
    parser.add_argument("--cases", default=None,
                        help="comma-separated subset of " + ",".join(list(PLANTED) + list(REAL)))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--against", default=None, help="a checkout of another version")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1.2,
                        help="allowed growth of time-passes against the committed figures")


def _real_files(name, folder):
    """The LIBSVM set as .npz CSR and .npy labels in ``folder`` (the child needs no loader)."""
    X, y = load_libsvm(name)
    xf, yf = os.path.join(folder, f"{name}.npz"), os.path.join(folder, f"{name}_y.npy")
    np.savez(xf, data=X.data, indices=X.indices, indptr=X.indptr, shape=X.shape)
    np.save(yf, (y > 0).astype(np.int64))
    return ["real", xf, yf]


def measure(library, case, method, spec, repeat):
    """One case and method in a fresh interpreter importing ``library``'s sketchnewton."""
    with tempfile.TemporaryDirectory() as neutral:  # no repository on the child's path
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([case, method, spec, repeat])],
                             cwd=neutral, capture_output=True, text=True, timeout=3600,
                             env=dict(os.environ, PYTHONPATH=str(library)))
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            row = json.loads(line[7:])
            row["time_passes"] = row["seconds"] / row["pass_seconds"]
            for phase in PHASES:  # no presolve (an older version, or not used): 0 s
                seconds = row["timings"].get(phase, 0.0 if phase == "presolve" else np.nan)
                row[f"tp_{phase}"] = seconds / row["pass_seconds"]
            del row["timings"]
            return row
    raise RuntimeError(f"{case} {method} failed in {library}: {out.stderr[-2000:]}")


def compare(rows, committed, tolerance):
    """``(status, text)`` of each row against the committed figures of the same case/method."""
    old = {(r["case"], r["method"]): r for r in committed if r["version"] == "this"}
    for r in rows:
        o = old.get((r["case"], r["method"]))
        if o is None:
            r["comparison"] = "new"
            continue
        worse_time = r["time_passes"] > tolerance * float(o["time_passes"])
        worse_passes = r["passes"] > float(o["passes"]) + 0.5
        r["comparison"] = "FAILED" if worse_time or worse_passes else "ok"
        r["previous_time_passes"] = float(o["time_passes"])
        r["previous_passes"] = float(o["passes"])


def run(ctx, args):
    planted = QUICK if ctx.quick else PLANTED
    cases = args.cases.split(",") if args.cases else list(planted) + ([] if ctx.quick else list(REAL))
    libraries = [("this", ROOT)] + ([(Path(args.against).name, Path(args.against))]
                                     if args.against else [])
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for case in ctx.progress(cases, desc="cases"):
            spec = (["planted", *planted[case]] if case in planted else _real_files(case, folder))
            for method in args.methods.split(","):
                for version, library in libraries:
                    row = measure(library, case, method, spec, args.repeat)
                    row["version"] = version
                    rows.append(row)
                    print(f"  {case} {method} [{version}]: {row['seconds']:.2f} s, {row['nit']} it, "
                          f"{row['passes']:.1f} passes, {row['time_passes']:.1f} time-passes",
                          flush=True)
    committed = BENCH / "results" / f"timepass{ctx.suffix}.csv"
    if not args.against and committed.exists():
        with open(committed, newline="") as fh:
            compare([r for r in rows if r["version"] == "this"], list(csv.DictReader(fh)),
                    args.tolerance)
    path = ctx.path("results", "timepass", "csv")
    write_csv(path, rows, COLUMNS)
    print(f"wrote {ctx.rel(path)}\n")
    print(table(rows))
    failed = [r for r in rows if r.get("comparison") == "FAILED"]
    if failed:
        print(f"\n{len(failed)} FAILED comparison(s) against the committed figures")


def table(rows):
    head = ("| case | method (chose) | version | iterations | passes | time-passes | "
            + " | ".join(PHASES) + " | comparison |")
    lines = [head, "|" + "---|" * (7 + len(PHASES))]
    for r in rows:
        lines.append(f"| {r['case']} | {r['method']} ({r['chosen']}) | {r['version']} | "
                     f"{r['nit']} | {r['passes']:.1f} | {r['time_passes']:.1f} | "
                     + " | ".join(f"{r[f'tp_{p}']:.1f}" for p in PHASES)
                     + f" | {r.get('comparison', '')} |")
    return "\n".join(lines)
