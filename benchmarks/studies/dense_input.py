"""Dense input used as given: time per product and peak memory of a fit.

Is dense input used as given (no copy, no upcast of float32), at the speed of BLAS, with
the memory of the data plus O(p K)? (issue 23) Two tables:

``products``
    Time per product of a :class:`~sketchnewton._matrix.DataMatrix` on an
    (n, d) Gaussian matrix kept as float64 C (what every dense input was
    copied to before: the reference), float64 F, float32 C and float32 F,
    with ``precise=True`` (float64 accumulation: row blocks upcast on the fly)
    and ``precise=False`` (float32 BLAS), and the relative error of each
    against the float64 product. Minimum over ``--reps`` runs, the
    configurations interleaved (a shared machine's load hits them alike);
    BLAS and the row ranges as inside the solver (``single_threaded_blas``,
    large products on every core).

``memory``
    Peak resident memory of ``SketchedLogisticRegression(C=1).fit`` on an
    RBF-like (random Fourier features) (n, d) matrix, each fit in a fresh
    subprocess: ``ru_maxrss`` after the data are built (built by row blocks, so
    this is the data plus the interpreter) and after the fit; the extra is the
    fit's own. ``--base REV`` also runs the fits with the code of commit REV
    (``git archive`` into a temporary folder) for comparison. Every matrix holds
    the same float32-rounded values, so the coefficients of the float32 fits are
    compared with those of the float64 fit of the same problem.

Usage::

    python -m benchmarks dense_input --table products --n 100000 --d 1000 --reps 5
    python -m benchmarks dense_input --table memory --n 100000 --d 1000 [--base REV]

Prints markdown tables (``--quick``: n = 20,000, d = 200).
"""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

from .._common import ROOT as _ROOT

ROOT = str(_ROOT)


# -- products -----------------------------------------------------------------------------------
def _products(n, d, reps, full_gram):
    from sketchnewton._kernels import single_threaded_blas
    from sketchnewton._matrix import DataMatrix

    rng = np.random.default_rng(0)
    A32 = np.empty((n, d), np.float32)
    for a in range(0, n, 10_000):
        A32[a:a + 10_000] = rng.standard_normal((min(10_000, n - a), d))
    mats = {"f64 C": np.asarray(A32, dtype=np.float64)}
    mats["f64 F"] = np.asfortranarray(mats["f64 C"])
    mats["f32 C"] = A32
    mats["f32 F"] = np.asfortranarray(A32)
    dms = {k: DataMatrix(v) for k, v in mats.items()}
    assert all(np.shares_memory(dms[k].dense, mats[k]) for k in mats)
    x, y = rng.standard_normal(d), rng.standard_normal(n)
    h = rng.uniform(0.0, 0.25, n)
    X10, Y10 = rng.standard_normal((d, 10)), rng.standard_normal((n, 10))
    X100, Y100 = rng.standard_normal((d, 100)), rng.standard_normal((n, 100))
    s = min(n, 10 * d)
    rows = rng.choice(n, s, replace=False)
    products = {
        "matvec": lambda M, p: M.matvec(x, precise=p),
        "rmatvec": lambda M, p: M.rmatvec(y, precise=p),
        "matmat k=10": lambda M, p: M.matmat(X10, precise=p),
        "rmatmat k=10": lambda M, p: M.rmatmat(Y10, precise=p),
        "matmat k=100": lambda M, p: M.matmat(X100, precise=p),
        "rmatmat k=100": lambda M, p: M.rmatmat(Y100, precise=p),
        "normal_matvec": lambda M, p: M.normal_matvec(h, x, precise=p)[0],
        f"gram {s} rows": lambda M, p: M.gram(h[:s], rows=rows, precise=p),
        "weighted_col_sq": lambda M, p: M.weighted_col_sq(h),
        "abs_rmatmat k=1": lambda M, p: M.abs_rmatmat(y),
    }
    if full_gram:
        products["gram all rows"] = lambda M, p: M.gram(h, precise=p)
    configs = [("f64 C", True), ("f64 F", True), ("f32 C", True), ("f32 F", True),
               ("f32 C", False), ("f32 F", False)]
    precision_free = {"weighted_col_sq", "abs_rmatmat k=1"}
    lines = []
    head = ("product", "f64 C (ref)", "f64 F", "f32 C", "f32 F", "f32 C fast", "f32 F fast",
            "err f32 C", "err fast C", "err fast F")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    print("\n".join(lines), flush=True)
    with single_threaded_blas():
        for name, fn in products.items():
            ref = fn(dms["f64 C"], True)
            results, times = {}, {c: [] for c in configs}
            for c in configs:  # warm up (and keep one result for the errors)
                results[c] = fn(dms[c[0]], c[1])
            for _ in range(reps):
                for c in configs:
                    if name in precision_free and not c[1]:
                        continue
                    t0 = time.perf_counter()
                    fn(dms[c[0]], c[1])
                    times[c].append(time.perf_counter() - t0)
            err = {c: np.linalg.norm(results[c] - ref) / np.linalg.norm(ref) for c in configs}
            cells = [f"{1e3 * min(t):.0f}" if t else "-" for t in times.values()]
            errs = [err[("f32 C", True)]] + [err[("f32 C", False)], err[("f32 F", False)]]
            errs = [f"{e:.0e}" for e in errs]
            if name in precision_free:
                errs[1:] = ["-", "-"]
            lines.append(f"| {name} | " + " | ".join(cells + errs) + " |")
            print(lines[-1], flush=True)
    return lines


# -- memory -------------------------------------------------------------------------------------
_FIT = textwrap.dedent(r'''
    import json, resource, sys, time, warnings
    import numpy as np
    n, d, dtype, order, classes, out = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                        sys.argv[4], int(sys.argv[5]), sys.argv[6])
    warnings.simplefilter("ignore")
    from sketchnewton import SketchedLogisticRegression
    rng = np.random.default_rng(0)
    p0 = 20
    W = rng.standard_normal((p0, d)) / 2.0
    b = rng.uniform(0, 2 * np.pi, d)
    B = rng.standard_normal((p0, classes))
    X = np.empty((n, d), dtype=dtype, order=order)
    y = np.empty(n, dtype=np.int64)
    for a in range(0, n, 5000):  # by row blocks: no full-size temporary
        Z = rng.standard_normal((min(5000, n - a), p0))
        # the same float32 values for every dtype: the fits then solve one problem
        X[a:a + len(Z)] = (np.sqrt(2.0 / d) * np.cos(Z @ W + b)).astype(np.float32)
        s = Z @ B if classes > 2 else Z @ B[:, :1] @ np.ones((1, 1))
        if classes > 2:
            y[a:a + len(Z)] = np.argmax(s + rng.gumbel(size=s.shape), axis=1)
        else:
            y[a:a + len(Z)] = (s[:, 0] + rng.logistic(size=len(Z)) > 0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    est = SketchedLogisticRegression(C=1.0, random_state=0).fit(X, y)
    t = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    np.save(out, np.column_stack([est.coef_, est.intercept_]))
    print(json.dumps(dict(data=X.nbytes, base=base, peak=peak, time=t, nit=int(est.n_iter_[0]),
                          method=est.result_.method)))
''')


def _fit(code, n, d, dtype, order, classes, out):
    env = dict(os.environ, PYTHONPATH=code)
    proc = subprocess.run([sys.executable, "-c", _FIT, str(n), str(d), dtype, order, str(classes),
                           out], capture_output=True, text=True, env=env, cwd=code)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _memory(n, d, base_rev, cases):
    codes = [("this", ROOT)]
    tmp = tempfile.mkdtemp(prefix="dense_table_")
    if base_rev:
        where = os.path.join(tmp, "base")
        os.makedirs(where)
        archive = subprocess.run(["git", "archive", base_rev], cwd=ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
        codes.append((base_rev, where))
    head = ("code", "X", "classes", "data MB", "RSS after data MB", "peak MB", "fit extra MB",
            "extra / data", "fit s", "method, nit", "coef diff vs f64")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    print("\n".join(lines), flush=True)
    for label, code in codes:
        ref = {}
        for dtype, order, classes in cases:
            out = os.path.join(tmp, f"{label}-{dtype}-{order}-{classes}.npy")
            r = _fit(code, n, d, dtype, order, classes, out)
            coef = np.load(out)
            if dtype == "float64":
                ref[classes] = coef
            diff = (f"{np.linalg.norm(coef - ref[classes]) / np.linalg.norm(ref[classes]):.1e}"
                    if classes in ref and dtype != "float64" else "-")
            mb = 1 / 2**20
            lines.append(f"| {label} | {dtype} {order} | {classes} | {r['data'] * mb:.0f} | "
                         f"{r['base'] * mb:.0f} | {r['peak'] * mb:.0f} | "
                         f"{(r['peak'] - r['base']) * mb:.0f} | "
                         f"{(r['peak'] - r['base']) / r['data']:.2f} | {r['time']:.1f} | "
                         f"{r['method']}, {r['nit']} | {diff} |")
            print(lines[-1], flush=True)
    return lines


def add_arguments(parser):
    parser.add_argument("--table", choices=("products", "memory"), default="products")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--d", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--full-gram", action="store_true", help="also the Gram of all rows")
    parser.add_argument("--base", default=None, help="also fit with the code of this commit")


def run(ctx, args):
    n, d = (20_000, 200) if ctx.quick else (args.n, args.d)
    print(f"# {args.table}: n = {n}, d = {d}; load: {os.getloadavg()}", flush=True)
    if args.table == "products":
        _products(n, d, args.reps, args.full_gram)
    else:
        cases = [("float64", "C", 2), ("float32", "C", 2), ("float32", "F", 2),
                 ("float64", "C", 5), ("float32", "C", 5)]
        _memory(n, d, args.base, cases)
    print(f"# load after: {os.getloadavg()}", flush=True)
