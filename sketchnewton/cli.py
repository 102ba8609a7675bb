"""Command line: ``sketchnewton demo``, ``sketchnewton solve`` and ``sketchnewton fit``.

Exit status: 0 success; 1 the solver did not converge (the message is printed
once on stderr as ``sketchnewton: warning: ...`` with what to try; the
outputs are still written); 2 bad input (missing or malformed file, shape
mismatch, NaN/Inf, bad option value, an output that cannot be written, a
numerical failure caused by the data) or an internal error: one line
``sketchnewton: error: ...`` on stderr, no traceback (set
``SKETCHNEWTON_TRACEBACK=1`` to see the traceback of an internal error); 130
interrupted. Running ``sketchnewton`` without arguments prints the usage on
stderr and exits 2.

Outputs (``--out``, ``--json``, ``--model``) are checked before anything is
solved (directory exists and is writable, the path is not a directory, not a
FIFO/device, not one of the input files, not another output) and are written
atomically, all or none (``sketchnewton._io.write_atomically``).

From the rest of the package only public names are used: ``solve``,
``SketchedLogisticRegression``, ``__version__``, ``exceptions`` and ``datasets``.
"""

import argparse
import json
import math
import os
import sys
import time
import warnings

import stat

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.metrics import log_loss

from ._io import (SVMLIGHT_EXTENSIONS, _vector_writer, check_problem_size, check_writable_directory,
                  load_matrix, load_svmlight_labeled, load_vector, write_atomically)
from ._version import __version__
from .api import solve
from .datasets import LINKS, make_regression_problem
from .estimators import SketchedLogisticRegression
from .exceptions import ConvergenceWarning, DomainError, InputError

__all__ = ["main", "build_parser"]

PROG = "sketchnewton"
RESULT_FIELDS = ("x", "fun", "grad_norm", "error_bound", "error_bound_kind", "nit", "success",
                 "status", "message", "method", "sketch", "sketch_size", "passes", "time",
                 "timings", "history")
# the choices of sketchnewton.solve and SketchedLogisticRegression (validated again there)
METHODS = ("auto", "exact", "sketch", "pcg")
SKETCHES = ("leverage", "uniform", "countsketch", "srht", "gaussian")
FIT_METHODS = ("auto", "exact", "pcg", "sketch")
#: Smallest --eps accepted: 1000 float64 machine epsilons times max(1, ||x0||).
EPS_FLOOR = 1e3 * float(np.finfo(np.float64).eps)
#: Entries larger than this (in absolute value) are named as the likely cause of a
#: numerical failure: their squares (the Hessian) are beyond float64's range.
LARGE_VALUE = 1e100
_NUMERICAL_ERRORS = (np.linalg.LinAlgError, FloatingPointError, OverflowError, ZeroDivisionError)
_MAX_MESSAGE = 1000  # characters of an error line


class UsageError(Exception):
    """Bad command line (raised by the parser instead of printing usage and exiting)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _input_error(message):

    return InputError(message)


def _short(text, limit=40):
    text = str(text)
    return repr(text) if len(text) <= limit else repr(text[:limit - 3] + "...")


# ----------------------------------------------------------------------------
# option types
# ----------------------------------------------------------------------------

def _int_type(minimum):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {_short(text)}") from None
        if not (math.isfinite(value) and value.is_integer()):
            raise argparse.ArgumentTypeError(f"expected an integer, got {_short(text)}")
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {_short(text)}")
        return int(value)
    parse.__name__ = "integer"
    return parse


def _float_type(*, positive=False, nonnegative=False, maximum=None):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {_short(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {_short(text)}")
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {_short(text)}")
        if nonnegative and value < 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {_short(text)}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {_short(text)}")
        return value
    parse.__name__ = "number"
    return parse


def _zero_based(text):
    value = {"auto": "auto", "true": True, "yes": True, "1": True,
             "false": False, "no": False, "0": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected auto, true or false, got {_short(text)}")
    return value


def _check_eps(eps, x0=None):
    """Refuse a target below what float64 can certify: ``eps < EPS_FLOOR * max(1, ||x0||)``."""
    scale = 1.0 if x0 is None else float(np.linalg.norm(x0))
    floor = EPS_FLOOR * max(1.0, scale)
    if eps < floor:
        where = "" if x0 is None else f" with ||x0|| = {scale:.3g}"
        raise UsageError(f"argument --eps: {eps:g} is below what float64 arithmetic can certify "
                         f"({floor:.2g} = 1000 * machine epsilon * max(1, ||x0||){where}); "
                         f"use --eps {floor:.2g} or larger")


# ----------------------------------------------------------------------------
# running the solver
# ----------------------------------------------------------------------------

def _largest(values):

    values = values.data if sp.issparse(values) else np.asarray(values)
    if values.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(values)))


def _scale_hint(data):
    """``"largest |A| = 1e+300, |b| = 0.1"`` for ``data = {"A": A, "b": b}``."""
    parts = [f"|{k}| = {_largest(v):.3g}" for k, v in data.items() if v is not None]
    return "largest " + ", ".join(parts) if parts else ""


def _numerical_error(exc, caught, data):
    """One-line :class:`InputError` for a numerical failure, naming the likely cause."""
    warned = sorted({str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)})
    during = f" (numpy warned: {'; '.join(warned[:2])})" if warned else ""
    large = any(v is not None and _largest(v) > LARGE_VALUE for v in data.values())
    cause = ("values this large overflow float64 arithmetic: rescale the data (e.g. divide by "
             "the largest entry)" if large else
             "the data may be badly scaled or the problem ill-conditioned: rescale the data, "
             "or try --method exact")
    return _input_error(f"the solve failed numerically ({type(exc).__name__}: "
                        f"{str(exc) or 'no detail'}){during}; {_scale_hint(data)}: {cause}")


def _run_collecting(fn, data):
    """``fn()`` with its ConvergenceWarnings collected as text: ``(result, texts)``.

    Numerical failures (``LinAlgError``, ``FloatingPointError``, ...) become a
    one-line ``InputError`` naming the likely cause (``data``: the arrays whose
    magnitudes are reported). Other warnings are re-emitted unchanged
    (Python's filters apply).
    """

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res = fn()
        except _NUMERICAL_ERRORS as exc:
            raise _numerical_error(exc, caught, data) from None
    texts = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            if str(w.message) not in texts:
                texts.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return res, texts


def _solve_quietly(*args, data=None, **kwargs):
    """``solve(...)`` through :func:`_run_collecting`: ``(result, texts)``."""

    if data is None:
        data = {"A": args[0], "b": args[1]} if len(args) >= 2 else {}
    return _run_collecting(lambda: solve(*args, **kwargs), data)


def _solve_hint(res, max_iter=None):
    """What to try when ``solve`` did not reach eps (``max_iter``: the --max-iter given;
    None for the demo, which has neither --max-iter, --lam nor input data)."""
    message = str(getattr(res, "message", "")).lower()
    if max_iter is None:
        return "try a larger --eps or another --method"
    if res.nit >= max_iter or "maximum number of iterations" in message:
        return f"increase --max-iter (now {max_iter}) or use a larger --eps"
    if "flat direction" in message or "asymptote" in message:
        return "the minimiser may be at infinity: add a ridge with --lam > 0"
    return "try --method exact or a larger --eps, or rescale A and b"


def _warn(texts, hint=None):
    for text in texts:
        tail = f"; {hint}" if hint else ""
        print(f"{PROG}: warning: {text}{tail}", file=sys.stderr)


def _demo(args):

    _check_eps(args.eps)
    if args.density is not None:
        sparsity = dict(density=args.density)
        per_row = f"density {args.density:g}"
        k = max(1.0, args.density * args.d)
    else:
        k = args.nnz_per_row if args.nnz_per_row is not None else min(20, args.d)
        sparsity = dict(nnz_per_row=k)
        per_row = f"{k} non-zeros per row"
    # the generator and the solver hold A, b and a few n-vectors: refuse sizes that do not fit
    check_problem_size(args.n, args.d, int(args.n * k), "the demo matrix")
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
    rows, texts, hint = [], [], None
    for method in methods:
        print(f"\n== method {method!r}, eps = {args.eps:g}", flush=True)
        if method == "lbfgs":
            rows.append(_lbfgs(pb, args))
            continue
        res, warned = _solve_quietly(pb.A, pb.b, args.eps, link=args.link, method=method,
                                     random_state=args.seed, verbose=1)
        if warned and hint is None:
            hint = _solve_hint(res)
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
    _warn(texts, hint)
    # L-BFGS-B is a reference: only sketchnewton's own solves decide the exit status
    return 0 if all(r[-1] for r in rows if r[0] != "lbfgs") else 1


def _warm_up(link):
    """Solve a tiny problem with every method so that the timed solves do not include JIT compilation."""

    small = make_regression_problem(600, 8, link=link, nnz_per_row=4, random_state=0)
    for method in ("exact", "pcg", "sketch"):
        _solve_quietly(small.A, small.b, 1e-6, link=link, method=method, random_state=0,
                       sketch_size=300)


# phi and phi' of the links (the loss of sketchnewton.solve, for the L-BFGS-B reference)
_LINK_FUNCTIONS = {
    "resnet": (lambda z: np.exp(z) + z, lambda z: np.exp(z) + 1.0),
    "softmax": (np.exp, np.exp),
    "cosh": (np.cosh, np.sinh),
    "sinh": (np.sinh, np.cosh),
}


def _lbfgs(pb, args):
    """scipy's L-BFGS-B on ``1/2 ||phi(Ax)/<phi(Ax),1> - b||^2`` (a reference for the demo).

    One evaluation is one ``A x`` and one ``A^T g``: one pass over ``A``.
    """


    A = sp.csr_matrix(pb.A)
    At = A.T.tocsr()
    b = np.asarray(pb.b, dtype=np.float64)
    phi, dphi = _LINK_FUNCTIONS[args.link]

    def loss_gradient(x):
        z = A @ x
        with np.errstate(over="ignore", invalid="ignore"):
            u = phi(z)
            alpha = float(u.sum())
            if not (math.isfinite(alpha) and alpha > 0):
                raise DomainError(f"the normaliser <phi(Ax), 1> = {alpha:g} is not positive")
            p = u / alpha
            r = p - b
            g = At @ (dphi(z) / alpha * (r - r @ p))
        return 0.5 * float(r @ r), g

    t0 = time.perf_counter()
    res = minimize(loss_gradient, np.zeros(A.shape[1]), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=10_000, ftol=0.0, gtol=0.0, maxcor=20))
    secs = time.perf_counter() - t0
    err = float(np.linalg.norm(res.x - pb.x_true))
    print(f"scipy L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, {secs:.2f} s, "
          f"error {err:.2e} ({res.message})")
    return ("lbfgs", res.nit, float(res.nfev), secs, err, float("nan"), err <= args.eps)


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


# ----------------------------------------------------------------------------
# inputs and outputs
# ----------------------------------------------------------------------------

def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name the same file (hard or symbolic links included)."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _check_output_path(path, option, extensions, inputs=(), outputs=()):
    """Refuse an output that cannot be written, or would replace an input or another output.

    ``inputs``: ``(path, name)`` of the input files; ``outputs``: ``(path,
    option)`` of the outputs checked before this one.
    """


    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise UsageError(f"argument {option}: {path!r} must end in {' or '.join(extensions)}")
    target = os.path.realpath(path)  # a symbolic link: its target is replaced
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise UsageError(f"argument {option}: directory {parent!r} does not exist")
    if os.path.isdir(target):
        raise UsageError(f"argument {option}: {path!r} is a directory")
    for inp, name in inputs:
        if inp is not None and _same_file(path, inp):
            raise UsageError(f"argument {option}: {path!r} is the input file {name} "
                             f"({inp!r}); refusing to overwrite an input")
    for other, other_option in outputs:
        if other is not None and _same_file(path, other):
            raise UsageError(f"argument {option}: {path!r} is also the {other_option} file; "
                             f"give them different names")
    if os.path.lexists(target):
        mode = os.stat(target).st_mode if os.path.exists(target) else 0
        if not stat.S_ISREG(mode):
            raise UsageError(f"argument {option}: {path!r} exists and is not a regular file "
                             f"(a FIFO, device, socket or broken link); refusing to replace it")
        if not os.access(target, os.W_OK):
            raise UsageError(f"argument {option}: {path!r} exists and is read-only")
    reason = check_writable_directory(target)
    if reason is not None:
        raise UsageError(f"argument {option}: cannot create files in directory {parent!r} "
                         f"({reason})")


def _check_outputs(outputs, inputs):
    """Check each ``(path, option, extensions)`` of ``outputs`` (:func:`_check_output_path`)."""
    done = []
    for path, option, extensions in outputs:
        if path is None:
            continue
        _check_output_path(path, option, extensions, inputs, done)
        done.append((path, option))


def _check_finite(values, name, path):
    if not np.all(np.isfinite(values)):
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        raise _input_error(f"{name} in {path!r} contains non-finite values ({n_nan} NaN, "
                           f"{n_inf} Inf)")


def _json_writer(doc):
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    return lambda f: f.write(text.encode("utf-8"))


def _nnz(A):

    return A.nnz if sp.issparse(A) else A.size


def _count_nonzero(A):

    return A.count_nonzero() if sp.issparse(A) else int(np.count_nonzero(A))


def _solve(args):


    _check_eps(args.eps)
    w_file, w_value = None, None
    if args.w is not None:
        try:
            w_value = float(args.w)
        except ValueError:
            w_file = args.w
        else:
            if not math.isfinite(w_value):
                raise UsageError(f"argument --w: w must be finite, got {_short(args.w)}")
    inputs = [(args.A, "A"), (args.b, "b"), (args.x0, "x0"), (w_file, "w")]
    _check_outputs([(args.out, "--out", (".npy", ".txt")), (args.json, "--json", (".json",))],
                   inputs)
    A = load_matrix(args.A, "A", zero_based=args.zero_based)
    n, d = A.shape
    nnz = _nnz(A)
    if n == 0 or d == 0:
        raise _input_error(f"A in {args.A!r} is empty (shape {A.shape})")
    check_problem_size(n, d, nnz)
    if _count_nonzero(A) == 0:
        raise _input_error(f"A in {args.A!r} has no non-zero entries")
    rows = f"A in {args.A!r} has {n} rows"
    b = load_vector(args.b, "b", length=(n, rows))
    _check_finite(A.data if sp.issparse(A) else A, "A", args.A)
    _check_finite(b, "b", args.b)
    x0 = None
    if args.x0 is not None:
        x0 = load_vector(args.x0, "x0", length=(d, f"A has {d} columns"))
        _check_finite(x0, "x0", args.x0)
        _check_eps(args.eps, x0)
    w = w_value
    if w_file is not None:
        w = load_vector(w_file, "w", length=(n, f"A has {n} rows"))
        _check_finite(w, "w", w_file)
    kind = f"sparse, {nnz:,} non-zeros" if sp.issparse(A) else "dense"
    print(f"sketchnewton solve: A {n:,} x {d:,} ({kind}) from {args.A}, b from {args.b}",
          flush=True)
    data = {"A": A, "b": b}
    try:
        res, texts = _solve_quietly(A, b, args.eps, link=args.link, lam=args.lam, w=w,
                                    method=args.method, sketch=args.sketch,
                                    sketch_size=args.sketch_size, x0=x0, max_iter=args.max_iter,
                                    random_state=args.seed, verbose=1 if args.verbose else 0,
                                    data=data)
    except DomainError as exc:
        large = any(_largest(v) > LARGE_VALUE for v in data.values())
        hint = f"; {_scale_hint(data)}: rescale the data" if large else ""
        raise DomainError(f"{exc}{hint}") from None
    if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)):
        raise _numerical_error(FloatingPointError("the solution is not finite"), [], data)
    print(res.message)
    sketch = "exact Hessian" if res.sketch == "exact" else \
        f"sketch {res.sketch} of {res.sketch_size:,} rows"
    print(f"method {res.method} ({sketch}): {res.nit} iterations, {res.passes:.1f} passes "
          f"over A, {res.time:.2f} s")
    print(f"loss {res.fun:.6e}, |grad| {res.grad_norm:.3e}, error bound {res.error_bound:.3e} "
          f"(eps {args.eps:g}), success {res.success}")
    writes = []
    if args.out is not None:
        writes.append((args.out, _vector_writer(args.out, res.x)))
    if args.json is not None:
        doc = {k: _jsonable(res[k]) for k in RESULT_FIELDS if k in res}
        doc["input"] = {"A": args.A, "b": args.b, "shape": [n, d], "nnz": int(nnz),
                        "link": args.link, "lam": args.lam, "eps": args.eps, "seed": args.seed}
        writes.append((args.json, _json_writer(doc)))
    write_atomically(writes)
    if args.out is not None:
        print(f"x written to {args.out}")
    if args.json is not None:
        print(f"result written to {args.json}")
    if args.out is None and args.json is None:
        with np.printoptions(precision=6, threshold=20, edgeitems=5):
            print(f"x = {res.x}")
    sys.stdout.flush()
    if not res.success:
        texts = texts or [f"sketchnewton.solve did not reach eps: {res.message}"]
    _warn(texts, None if res.success else _solve_hint(res, args.max_iter))
    return 0 if res.success else 1


# ----------------------------------------------------------------------------
# fit: logistic regression from svmlight files
# ----------------------------------------------------------------------------

def _fmt_label(v):
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _fmt_classes(classes, few=6):
    labels = [_fmt_label(c) for c in classes[:few]]
    if len(classes) > few:
        labels[-1:] = ["...", _fmt_label(classes[-1])]
    return ", ".join(labels)


def _check_labels(y, name, path):
    """Class labels: finite whole numbers; returns them unchanged."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        _check_finite(y, name, path)
        bad = np.flatnonzero(y != np.round(y))
        if bad.size:
            raise _input_error(
                f"{name} in {path!r} are not class labels: {bad.size:,} are not whole numbers "
                f"(e.g. {_fmt_classes(y[bad[:3]], 3)}); for regression targets use "
                f"'sketchnewton solve'")
    return y


def _load_fit_data(args):
    """``(X, y, X_test, y_test)`` (test None without --test)."""

    def kind(path):
        return "svmlight" if os.path.splitext(path)[1].lower() in SVMLIGHT_EXTENSIONS else "dense"

    train_kind = kind(args.train)
    train_format = "svmlight/libsvm text" if train_kind == "svmlight" else "a matrix file"
    if args.test is not None and kind(args.test) != train_kind:
        raise UsageError(f"argument --test: {args.test!r} must be in the same format as TRAIN "
                         f"({train_format})")
    if args.test_labels is not None and args.test is None:
        raise UsageError("argument --test-labels: needs --test")
    if train_kind == "svmlight":
        for option, value in (("--labels", args.labels), ("--test-labels", args.test_labels)):
            if value is not None:
                raise UsageError(f"argument {option}: svmlight/libsvm files carry their labels "
                                 f"(first column); {option} is for a matrix-file X")
        if args.n_features is not None:
            check_problem_size(1, args.n_features + 1, 0, "X")
        paths = [args.train] + ([args.test] if args.test is not None else [])
        names = ["TRAIN", "TEST"][:len(paths)]
        pairs = load_svmlight_labeled(paths, names, zero_based=args.zero_based,
                                      n_features=args.n_features)
        X, y = pairs[0]
        X_test, y_test = pairs[1] if len(pairs) > 1 else (None, None)
        return X, y, X_test, y_test
    if args.labels is None:
        raise UsageError("argument --labels: required when TRAIN is a matrix file "
                         "(svmlight/libsvm files carry their labels)")
    if args.test is not None and args.test_labels is None:
        raise UsageError("argument --test-labels: required when --test is a matrix file")
    X = load_matrix(args.train, "TRAIN")
    y = load_vector(args.labels, "labels", length=(X.shape[0], f"TRAIN in {args.train!r} has "
                                                                f"{X.shape[0]} rows"))
    if args.n_features is not None and X.shape[1] != args.n_features:
        raise _input_error(f"TRAIN in {args.train!r} has {X.shape[1]} columns but --n-features "
                           f"is {args.n_features}")
    X_test = y_test = None
    if args.test is not None:
        X_test = load_matrix(args.test, "TEST")
        if X_test.shape[1] != X.shape[1]:
            raise _input_error(f"TEST in {args.test!r} has {X_test.shape[1]} columns but TRAIN "
                               f"has {X.shape[1]}")
        y_test = load_vector(args.test_labels, "test labels",
                             length=(X_test.shape[0], f"TEST in {args.test!r} has "
                                                      f"{X_test.shape[0]} rows"))
    return X, y, X_test, y_test


def _fit(args):


    inputs = [(args.train, "TRAIN"), (args.test, "TEST"), (args.labels, "labels"),
              (args.test_labels, "test labels")]
    _check_outputs([(args.model, "--model", (".npz",)), (args.json, "--json", (".json",))],
                   inputs)
    X, y, X_test, y_test = _load_fit_data(args)
    n, d = X.shape
    nnz = _nnz(X)
    if n == 0 or d == 0:
        raise _input_error(f"TRAIN in {args.train!r} is empty (shape {X.shape})")
    _check_finite(X.data if sp.issparse(X) else X, "TRAIN", args.train)
    label_source = args.labels or args.train
    y = _check_labels(y, "labels", label_source)
    classes = np.unique(y)
    if classes.size < 2:
        raise _input_error(f"labels in {label_source!r} hold a single class "
                           f"({_fmt_label(classes[0])}); a classifier needs at least 2")
    K = classes.size
    fit_intercept = not args.no_intercept
    params = (d + fit_intercept) * (1 if K == 2 else K)
    # (a multinomial fit holds K n-vectors where a binary one holds one)
    check_problem_size(n * (1 if K == 2 else K), params, nnz, "TRAIN")
    if X_test is not None:
        _check_finite(X_test.data if sp.issparse(X_test) else X_test, "TEST", args.test)
        test_source = args.test_labels or args.test
        y_test = _check_labels(y_test, "test labels", test_source)
        unseen = np.setdiff1d(np.unique(y_test), classes)
        if unseen.size:
            raise _input_error(f"test labels in {test_source!r} include classes absent from "
                               f"the training data: {_fmt_classes(unseen, 3)}")
    kind = f"sparse, {nnz:,} non-zeros" if sp.issparse(X) else "dense"
    print(f"sketchnewton fit: X {n:,} x {d:,} ({kind}) from {args.train}; {K} classes: "
          f"{_fmt_classes(classes)}", flush=True)
    est = SketchedLogisticRegression(C=args.C, fit_intercept=fit_intercept, tol=args.tol,
                                     max_iter=args.max_iter, method=args.method,
                                     random_state=args.seed, verbose=1 if args.verbose else 0)
    t0 = time.perf_counter()
    try:
        _, texts = _run_collecting(lambda: est.fit(X, y), {"X": X})
    except InputError:
        raise
    except ValueError as exc:  # scikit-learn's validation (LinAlgError is handled above)
        raise _input_error(f"cannot fit: {exc}") from None
    seconds = time.perf_counter() - t0
    res = est.result_
    if not (np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))):
        raise _numerical_error(FloatingPointError("the coefficients are not finite"), [],
                               {"X": X})
    converged = bool(getattr(res, "success", True)) and not texts
    method, nit = getattr(res, "method", args.method), int(est.n_iter_[0])
    state = "converged" if converged else f"NOT converged ({getattr(res, 'message', '')})"
    print(f"method {method}: {nit} iterations, {seconds:.2f} s; {state}")
    summary = {"classes": classes, "n": n, "d": d, "nnz": int(nnz), "method": method,
               "n_iter": nit, "converged": converged, "message": getattr(res, "message", None),
               "time": seconds, "train_accuracy": float(est.score(X, y))}
    print(f"training accuracy {summary['train_accuracy']:.4f} on {n:,} samples")
    if X_test is not None:
        acc = float(est.score(X_test, y_test))
        loss = float(log_loss(y_test, est.predict_proba(X_test), labels=est.classes_))
        summary["test"] = {"n": int(X_test.shape[0]), "accuracy": acc, "log_loss": loss}
        print(f"test accuracy {acc:.4f}, log-loss {loss:.4f} on {X_test.shape[0]:,} samples")
    summary["params"] = {"C": args.C, "fit_intercept": fit_intercept, "tol": args.tol,
                         "max_iter": args.max_iter, "method": args.method, "seed": args.seed}
    summary["input"] = {"train": args.train, "test": args.test, "labels": args.labels,
                        "test_labels": args.test_labels}
    writes = []
    if args.model is not None:
        model = dict(classes=np.asarray(est.classes_), coef=np.asarray(est.coef_, np.float64),
                     intercept=np.asarray(est.intercept_, np.float64), C=np.float64(args.C),
                     fit_intercept=np.bool_(fit_intercept), n_features=np.int64(d))
        writes.append((args.model, lambda f: np.savez(f, **model)))
    if args.json is not None:
        writes.append((args.json, _json_writer(_jsonable(summary))))
    write_atomically(writes)
    if args.model is not None:
        print(f"model written to {args.model}")
    if args.json is not None:
        print(f"summary written to {args.json}")
    sys.stdout.flush()
    if not converged:
        message = str(getattr(res, "message", "")).lower()
        if "maximum number of iterations" in message:
            hint = f"increase --max-iter (now {args.max_iter})"
        else:
            hint = "try --method exact, a larger --tol, a smaller --C, or scale the features"
        _warn(texts or [f"the fit did not converge: {getattr(res, 'message', '')}"], hint)
    return 0 if converged else 1


# ----------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------

EPS_HELP = ("; must be >= 1000 * float64 machine epsilon * max(1, ||x0||) (2.2e-13 when "
            "||x0|| <= 1; x0 = the --x0 file, else 0): smaller errors cannot be certified in "
            "double precision")


def build_parser():

    parser = _Parser(
        prog=PROG,
        description="Approximate Newton methods with sketched Hessians for sparse regression "
                    "min_x 1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2, "
                    "and logistic regression (fit).",
        epilog="Exit status: 0 converged, 1 not converged, 2 bad input, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{demo,solve,fit}")

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
                      help="target accuracy ||x - x*|| (default %(default)s); must be >= 1000 * "
                           "float64 machine epsilon (2.2e-13)")
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
                    "optionally write x and a JSON report. Files are loaded safely (regular "
                    "files only, never unpickled, sizes checked against the header, the file "
                    "and the available memory); outputs are checked before solving and "
                    "written atomically.",
        epilog="Exit status: 0 converged, 1 eps not reached (x and the JSON are still "
               "written), 2 bad input.")
    solve.add_argument("A", help="matrix A (n x d): scipy sparse .npz (scipy.sparse.save_npz), "
                                 "dense .npy (numpy.save), dense .csv (comma-separated numbers, "
                                 "one row per line), MatrixMarket .mtx, or svmlight/libsvm "
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
                       help="target accuracy ||x - x*|| (default %(default)s)" + EPS_HELP)
    solve.add_argument("--method", default="auto", choices=METHODS,
                       help="exact Newton, sketched Newton, sketch-preconditioned Newton-CG, or "
                            "auto (cost model) (default %(default)s)")
    solve.add_argument("--sketch", default="leverage", choices=SKETCHES,
                       help="sketch of the Hessian's diagonal part (default %(default)s)")
    solve.add_argument("--sketch-size", type=_int_type(1), default=None,
                       help="rows of the sketch (default 20 d; for --method sketch then "
                            "adaptive: doubled while the convergence is slow)")
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

    fit = sub.add_parser(
        "fit", help="fit L2-regularised logistic regression (binary or multinomial)",
        description="Fit sketchnewton.SketchedLogisticRegression (min C * sum_i loss_i + "
                    "1/2 ||W||^2, as scikit-learn's LogisticRegression(C=C)) to labelled "
                    "data, print a summary (classes, n, d, non-zeros, method, iterations, "
                    "time, training accuracy; with --test, test accuracy and log-loss) and "
                    "optionally write the model (.npz: classes, coef, intercept, C, "
                    "fit_intercept, n_features; never pickled) and a JSON summary.",
        epilog="Exit status: 0 converged, 1 not converged (the model and the JSON are still "
               "written), 2 bad input.")
    fit.add_argument("train", metavar="TRAIN",
                     help="training data: svmlight/libsvm text (.svm/.libsvm/.svmlight/.txt; "
                          "labels in the first column), or a matrix file (.npy, .csv, .npz, "
                          ".mtx; see 'solve') with --labels")
    fit.add_argument("--labels", default=None, metavar="Y",
                     help="class labels of a matrix-file TRAIN: a vector file (.npy/.txt) "
                          "(default: none; svmlight files carry their labels)")
    fit.add_argument("--C", type=_float_type(positive=True), default=1.0,
                     help="inverse regularisation strength C > 0 (default %(default)s)")
    fit.add_argument("--no-intercept", action="store_true",
                     help="fit no intercept (default: an unpenalised intercept is fitted)")
    fit.add_argument("--tol", type=_float_type(positive=True), default=1e-8,
                     help="stop when half the squared Newton decrement is below tol times the "
                          "objective (default %(default)s)")
    fit.add_argument("--method", default="auto", choices=FIT_METHODS,
                     help="exact Newton, sketch-preconditioned Newton-CG, sketched Newton, or "
                          "auto (cost model) (default %(default)s)")
    fit.add_argument("--max-iter", type=_int_type(0), default=100,
                     help="maximum Newton iterations (default %(default)s)")
    fit.add_argument("--seed", type=_int_type(0), default=0,
                     help="random seed; results are reproducible (default %(default)s)")
    fit.add_argument("--test", default=None, metavar="TEST",
                     help="held-out data in the format of TRAIN: report its accuracy and "
                          "log-loss (default: none)")
    fit.add_argument("--test-labels", default=None, metavar="Y",
                     help="class labels of a matrix-file --test (default: none)")
    fit.add_argument("--model", default=None, metavar="MODEL.npz",
                     help="write the model here (numpy .npz: classes, coef, intercept, C, "
                          "fit_intercept, n_features) (default: not written)")
    fit.add_argument("--json", default=None, metavar="SUMMARY.json",
                     help="write the summary as JSON (default: not written)")
    fit.add_argument("--n-features", type=_int_type(1), default=None, metavar="N",
                     help="number of features (columns) of svmlight files, so that models and "
                          "data files agree; a file with a larger index is refused (default: "
                          "the largest index in TRAIN and TEST)")
    fit.add_argument("--zero-based", type=_zero_based, default="auto",
                     metavar="{auto,true,false}",
                     help="svmlight files only: whether feature indices start at 0 "
                          "(default %(default)s: guessed by scikit-learn from TRAIN and TEST "
                          "together)")
    fit.add_argument("--verbose", "-v", action="store_true",
                     help="print one line per Newton iteration (default: off)")
    fit.set_defaults(func=_fit)
    return parser


def _error(message):
    message = " ".join(str(message).split())
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE - 3] + "..."
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def main(argv=None):
    """Run the command line; returns the exit status (0 ok, 1 not converged, 2 bad input)."""

    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = build_parser()
        if not argv:
            sys.stderr.write(parser.format_usage())
            return _error(f"the following arguments are required: command (demo, solve or "
                          f"fit); see '{PROG} --help'")
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        return _error(exc)
    except (InputError, DomainError) as exc:
        return _error(exc)
    except _NUMERICAL_ERRORS as exc:
        return _error(f"numerical failure ({type(exc).__name__}: {exc}); the data may be badly "
                      f"scaled: rescale it")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _error(f"{where}{exc.strerror or exc}")
    except MemoryError:
        return _error("out of memory (the problem is too large for this machine)")
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line (status 2, never 1 "outputs written")
        if os.environ.get("SKETCHNEWTON_TRACEBACK"):
            raise
        return _error(f"internal error ({type(exc).__name__}: {exc}); please report it (set "
                      f"SKETCHNEWTON_TRACEBACK=1 to see the traceback)")


if __name__ == "__main__":
    sys.exit(main())
