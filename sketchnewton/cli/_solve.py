"""``sketchnewton solve``: solve a problem given as files ``A`` and ``b``."""

import math
import sys

import numpy as np
import scipy.sparse as sp

from .._io import (
    _vector_writer,
    check_problem_size,
    load_matrix,
    load_vector,
    write_atomically,
)
from ..exceptions import DomainError
from ._options import UsageError, _check_eps, _input_error, _short
from ._output import _check_outputs, _json_writer, _jsonable
from ._run import (
    LARGE_VALUE,
    _check_finite,
    _count_nonzero,
    _largest,
    _nnz,
    _numerical_error,
    _scale_hint,
    _solve_hint,
    _solve_quietly,
    _warn,
)

RESULT_FIELDS = ("x", "fun", "grad_norm", "error_bound", "error_bound_kind", "nit", "success",
                 "status", "message", "method", "sketch", "sketch_size", "passes", "time",
                 "timings", "history", "presolve")


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
                                    presolve=args.presolve, random_state=args.seed,
                                    verbose=1 if args.verbose else 0, data=data)
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
    if "presolve" in res:
        pre = res.presolve
        print(f"warm start: {pre['rows']:,} sampled rows, {pre['nit']} iterations of "
              f"{pre['method']}, {pre['passes']:.2f} passes over A (included above)")
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
