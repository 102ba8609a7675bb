"""Command line: ``sketchnewton demo`` and ``sketchnewton solve``.

Exit status: 0 success; 1 the solver did not reach ``eps`` (the message is
printed once on stderr); 2 bad input (missing or malformed file, shape
mismatch, NaN/Inf, bad option value): one line ``sketchnewton: error: ...``
on stderr, no traceback.
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from ._io import check_problem_size, load_matrix, load_vector, save_vector
from .api import solve
from .datasets import make_regression_problem
from .exceptions import ConvergenceWarning, DomainError, InputError
from .hessian import SKETCHES
from .losses import LINKS, NormalizedRegressionLoss
from .newton import METHODS

__all__ = ["main", "build_parser"]

PROG = "sketchnewton"
RESULT_FIELDS = ("x", "fun", "grad_norm", "error_bound", "error_bound_kind", "nit", "success",
                 "status", "message", "method", "sketch", "sketch_size", "passes", "time",
                 "timings", "history")


class UsageError(Exception):
    """Bad command line (raised by the parser instead of printing usage and exiting)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


# ----------------------------------------------------------------------------
# option types
# ----------------------------------------------------------------------------

def _int_type(minimum):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not (math.isfinite(value) and value.is_integer()):
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return int(value)
    parse.__name__ = "integer"
    return parse


def _float_type(*, positive=False, nonnegative=False, maximum=None):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        if nonnegative and value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def _zero_based(text):
    value = {"auto": "auto", "true": True, "yes": True, "1": True,
             "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected auto, true or false, got {text!r}")
    return value


# ----------------------------------------------------------------------------
# running the solver
# ----------------------------------------------------------------------------

def _solve_quietly(*args, **kwargs):
    """``solve(...)`` with its ConvergenceWarnings collected as text: ``(result, texts)``.

    Other warnings are re-emitted unchanged (Python's filters apply).
    """

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve(*args, **kwargs)
    texts = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            if str(w.message) not in texts:
                texts.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return res, texts


def _warn(texts):
    for text in texts:
        print(f"{PROG}: warning: {text}", file=sys.stderr)


def _demo(args):
    if args.density is not None:
        sparsity = dict(density=args.density)
        per_row = f"density {args.density:g}"
    else:
        k = args.nnz_per_row if args.nnz_per_row is not None else min(20, args.d)
        sparsity = dict(nnz_per_row=k)
        per_row = f"{k} non-zeros per row"
    print(f"sketchnewton demo: planted {args.link} problem, n = {args.n:,}, d = {args.d}, "
          f"{per_row}, z std {args.z_std}, seed {args.seed}")
    t0 = time.perf_counter()
    pb = make_regression_problem(args.n, args.d, link=args.link, z_std=args.z_std,
                                 noise=args.noise, random_state=args.seed, **sparsity)
    print(f"generated A ({pb.A.nnz:,} non-zeros) in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    _warm_up(args.link)
    print(f"numba kernels ready in {time.perf_counter() - t0:.1f} s (compiled on the first run after "
          f"installing, loaded from the cache afterwards; not in the times below)")
    methods = [args.method] + (["exact", "lbfgs"] if args.compare else [])
    rows, texts = [], []
    for method in methods:
        print(f"\n== method {method!r}, eps = {args.eps:g}", flush=True)
        if method == "lbfgs":
            rows.append(_lbfgs(pb, args))
            continue
        res, warned = _solve_quietly(pb.A, pb.b, args.eps, link=args.link, method=method,
                                     random_state=args.seed, verbose=1)
        texts += [t for t in warned if t not in texts]
        err = float(np.linalg.norm(res.x - pb.x_true))
        print(f"{res.message}; method used: {res.method}")
        rows.append((res.method if method == "auto" else method, res.nit, res.passes, res.time,
                     err, res.error_bound, res.success))
    noisy = "" if args.noise == 0 else "; with noise the minimiser differs from the planted x"
    print(f"\nsummary (error = ||x - x_planted||; a noiseless planted x is the exact "
          f"minimiser{noisy})")
    print(f"{'method':>8} {'iter':>5} {'passes':>7} {'seconds':>8} {'error':>10} {'bound':>10} ok")
    for m, nit, passes, secs, err, bound, ok in rows:
        print(f"{m:>8} {nit:5d} {passes:7.1f} {secs:8.2f} {err:10.2e} {bound:10.2e} {ok}")
    sys.stdout.flush()
    _warn(texts)
    # L-BFGS-B is a reference: only sketchnewton's own solves decide the exit status
    return 0 if all(r[-1] for r in rows if r[0] != "lbfgs") else 1


def _warm_up(link):
    """Solve a tiny problem with every method so that the timed solves do not include JIT compilation."""
    small = make_regression_problem(600, 8, link=link, nnz_per_row=4, random_state=0)
    for method in ("exact", "pcg", "sketch"):
        _solve_quietly(small.A, small.b, 1e-6, link=link, method=method, random_state=0,
                       sketch_size=300)


def _lbfgs(pb, args):

    loss = NormalizedRegressionLoss(pb.A, pb.b, link=args.link)
    loss.A.sweeps = 0
    t0 = time.perf_counter()
    res = minimize(loss.loss_gradient, np.zeros(pb.A.shape[1]), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=10_000, ftol=0.0, gtol=0.0, maxcor=20))
    secs = time.perf_counter() - t0
    err = float(np.linalg.norm(res.x - pb.x_true))
    print(f"scipy L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, {secs:.2f} s, "
          f"error {err:.2e} ({res.message})")
    return ("lbfgs", res.nit, loss.A.passes, secs, err, float("nan"), err <= args.eps)


def _jsonable(value):
    """Convert numpy scalars/arrays and containers to plain JSON types (non-finite -> None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _check_output_path(path, option, extensions):
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise UsageError(f"argument {option}: {path!r} must end in {' or '.join(extensions)}")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"argument {option}: directory {parent!r} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"argument {option}: {path!r} is a directory")


def _check_finite(values, name, path):
    if not np.all(np.isfinite(values)):
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        raise InputError(f"{name} in {path!r} contains non-finite values ({n_nan} NaN, "
                         f"{n_inf} Inf)")


def _solve(args):
    if args.out is not None:
        _check_output_path(args.out, "--out", (".npy", ".txt"))
    if args.json is not None:
        _check_output_path(args.json, "--json", (".json",))
    A = load_matrix(args.A, "A", zero_based=args.zero_based)
    n, d = A.shape
    nnz = A.nnz if sp.issparse(A) else A.size
    if n == 0 or d == 0:
        raise InputError(f"A in {args.A!r} is empty (shape {A.shape})")
    check_problem_size(n, d, nnz)
    if (A.count_nonzero() if sp.issparse(A) else np.count_nonzero(A)) == 0:
        raise InputError(f"A in {args.A!r} has no non-zero entries")
    b = load_vector(args.b, "b")
    if b.shape[0] != n:
        raise InputError(f"b in {args.b!r} has length {b.shape[0]} but A in {args.A!r} has "
                         f"{n} rows")
    _check_finite(A.data if sp.issparse(A) else A, "A", args.A)
    _check_finite(b, "b", args.b)
    x0 = None if args.x0 is None else load_vector(args.x0, "x0")
    if x0 is not None and x0.shape[0] != d:
        raise InputError(f"x0 in {args.x0!r} has length {x0.shape[0]} but A has {d} columns")
    w = args.w
    if w is not None:
        try:
            w = float(w)
        except ValueError:
            w = load_vector(w, "w")
            if w.shape[0] != n:
                raise InputError(f"w in {args.w!r} has length {w.shape[0]} but A has {n} rows") \
                    from None
    kind = f"sparse, {nnz:,} non-zeros" if sp.issparse(A) else "dense"
    print(f"sketchnewton solve: A {n:,} x {d:,} ({kind}) from {args.A}, b from {args.b}",
          flush=True)
    res, texts = _solve_quietly(A, b, args.eps, link=args.link, lam=args.lam, w=w,
                                method=args.method, sketch=args.sketch,
                                sketch_size=args.sketch_size, x0=x0, max_iter=args.max_iter,
                                random_state=args.seed, verbose=1 if args.verbose else 0)
    print(res.message)
    sketch = "exact Hessian" if res.sketch == "exact" else \
        f"sketch {res.sketch} of {res.sketch_size:,} rows"
    print(f"method {res.method} ({sketch}): {res.nit} iterations, {res.passes:.1f} passes "
          f"over A, {res.time:.2f} s")
    print(f"loss {res.fun:.6e}, |grad| {res.grad_norm:.3e}, error bound {res.error_bound:.3e} "
          f"(eps {args.eps:g}), success {res.success}")
    if args.out is not None:
        save_vector(args.out, res.x)
        print(f"x written to {args.out}")
    if args.json is not None:
        doc = {k: _jsonable(res[k]) for k in RESULT_FIELDS if k in res}
        doc["input"] = {"A": args.A, "b": args.b, "shape": [n, d], "nnz": int(nnz),
                        "link": args.link, "lam": args.lam, "eps": args.eps, "seed": args.seed}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, allow_nan=False)
            f.write("\n")
        print(f"result written to {args.json}")
    if args.out is None and args.json is None:
        with np.printoptions(precision=6, threshold=20, edgeitems=5):
            print(f"x = {res.x}")
    sys.stdout.flush()
    _warn(texts)
    return 0 if res.success else 1


# ----------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------

def build_parser():

    parser = _Parser(
        prog=PROG,
        description="Approximate Newton methods with sketched Hessians for sparse regression "
                    "min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2.",
        epilog="Exit status: 0 converged, 1 eps not reached, 2 bad input.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,solve}")

    demo = sub.add_parser("demo", help="solve a generated planted problem and report",
                          description="Generate a planted normalized-regression problem "
                                      "(noiseless, so the planted x is the exact minimiser), "
                                      "solve it with per-iteration progress and print a summary: "
                                      "iterations, passes over A, seconds, error to the planted "
                                      "x and the solver's error bound.")
    demo.add_argument("--n", type=_int_type(2), default=2_000_000,
                      help="rows of A (default %(default)s)")
    demo.add_argument("--d", type=_int_type(1), default=300,
                      help="columns of A (default %(default)s)")
    demo.add_argument("--nnz-per-row", type=_int_type(1), default=None,
                      help="non-zeros per row of A (default 20, or d if smaller)")
    demo.add_argument("--density", type=_float_type(positive=True, maximum=1.0), default=None,
                      help="fraction of non-zeros per row, in (0, 1]; replaces --nnz-per-row "
                           "(default: not set)")
    demo.add_argument("--link", default="resnet", choices=LINKS,
                      help="link phi: resnet exp(z) + z, softmax exp(z), cosh, sinh "
                           "(default %(default)s)")
    demo.add_argument("--z-std", type=_float_type(positive=True), default=1.5,
                      help="standard deviation of z = A x_planted (default %(default)s)")
    demo.add_argument("--noise", type=_float_type(nonnegative=True), default=0.0,
                      help="relative noise added to b (default %(default)s)")
    demo.add_argument("--eps", type=_float_type(positive=True), default=1e-8,
                      help="target accuracy ||x - x*|| (default %(default)s)")
    demo.add_argument("--method", default="auto", choices=METHODS,
                      help="solver method (default %(default)s)")
    demo.add_argument("--seed", type=_int_type(0), default=0,
                      help="random seed for the problem and the solver (default %(default)s)")
    demo.add_argument("--compare", action="store_true",
                      help="also run exact Newton and scipy L-BFGS-B on the same problem "
                           "(default: off)")
    demo.set_defaults(func=_demo)

    solve = sub.add_parser(
        "solve", help="solve a problem given as files A and b",
        description="Solve min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 "
                    "+ lam/2 ||x||^2 for A and b read from files, print a summary and "
                    "optionally write x and a JSON report. Files are loaded safely (never "
                    "unpickled, sizes checked against the header and the available memory).",
        epilog="Exit status: 0 converged, 1 eps not reached (x and the JSON are still "
               "written), 2 bad input.")
    solve.add_argument("A", help="matrix A (n x d): scipy sparse .npz (scipy.sparse.save_npz), "
                                 "dense .npy (numpy.save), MatrixMarket .mtx, or svmlight/libsvm "
                                 "text .svm/.libsvm/.svmlight/.txt (labels ignored)")
    solve.add_argument("b", help="target b (n): .npy, or text (.txt/.dat/.csv) with one number "
                                 "per line")
    solve.add_argument("--link", default="resnet", choices=LINKS,
                       help="link phi: resnet exp(z) + z, softmax exp(z), cosh, sinh "
                            "(default %(default)s)")
    solve.add_argument("--lam", type=_float_type(nonnegative=True), default=0.0,
                       help="ridge strength lam >= 0 (default %(default)s)")
    solve.add_argument("--w", default=None, metavar="W",
                       help="weights of the regulariser 1/2 ||w * Ax||^2: a number, or a vector "
                            "file (.npy/.txt) of length n (default: none)")
    solve.add_argument("--eps", type=_float_type(positive=True), default=1e-6,
                       help="target accuracy ||x - x*|| (default %(default)s)")
    solve.add_argument("--method", default="auto", choices=METHODS,
                       help="exact Newton, sketched Newton, sketch-preconditioned Newton-CG, or "
                            "auto (cost model) (default %(default)s)")
    solve.add_argument("--sketch", default="leverage", choices=SKETCHES,
                       help="sketch of the Hessian's diagonal part (default %(default)s)")
    solve.add_argument("--sketch-size", type=_int_type(1), default=None,
                       help="rows of the sketch (default: 10 d for sketch, adaptive; 20 d for "
                            "pcg)")
    solve.add_argument("--seed", type=_int_type(0), default=0,
                       help="random seed; results are reproducible (default %(default)s)")
    solve.add_argument("--max-iter", type=_int_type(0), default=100,
                       help="maximum Newton iterations (default %(default)s)")
    solve.add_argument("--x0", default=None, metavar="FILE",
                       help="starting point, a vector file (.npy/.txt) of length d "
                            "(default: 0 for resnet/softmax, see solve() for cosh/sinh)")
    solve.add_argument("--out", default=None, metavar="X.npy",
                       help="write the solution x here: .npy, or .txt with one number per line "
                            "(default: not written; x is printed)")
    solve.add_argument("--json", default=None, metavar="RESULT.json",
                       help="write the result (x, fun, grad_norm, error_bound, nit, success, "
                            "status, message, method, passes, time, timings, history) as JSON; "
                            "non-finite numbers become null (default: not written)")
    solve.add_argument("--zero-based", type=_zero_based, default="auto",
                       metavar="{auto,true,false}",
                       help="svmlight files only: whether column indices start at 0 "
                            "(default %(default)s: guessed by scikit-learn)")
    solve.add_argument("--verbose", "-v", action="store_true",
                       help="print one line per Newton iteration (default: off)")
    solve.set_defaults(func=_solve)
    return parser


def _error(message):
    message = " ".join(str(message).split())
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 not converged, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        return _error(exc)
    except (InputError, DomainError) as exc:
        return _error(exc)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")
    except MemoryError:
        return _error("out of memory (the problem is too large for this machine)")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
