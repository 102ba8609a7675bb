"""``sketchnewton demo``: solve a generated planted problem and report (optionally against
exact Newton and scipy's L-BFGS-B)."""

import math
import sys
import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from .._io import check_problem_size
from ..datasets import make_regression_problem
from ..exceptions import DomainError
from ._options import _check_eps
from ._run import _solve_hint, _solve_quietly, _warn


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
    print(f"expected time: {_expected_time(args.n * k, args.compare)} on a 2-core machine, "
          f"plus up to a minute of numba compilation on the first run after installing "
          f"(--n sets the size)", flush=True)
    t0 = time.perf_counter()
    print(f"[1/3] generating A and b (about {int(args.n * k):,} non-zeros) ...", flush=True)
    pb = make_regression_problem(args.n, args.d, link=args.link, z_std=args.z_std,
                                 noise=args.noise, random_state=args.seed, **sparsity)
    print(f"      generated A ({pb.A.nnz:,} non-zeros) in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    print("[2/3] compiling or loading the numba kernels ...", flush=True)
    _warm_up(args.link)
    print(f"      kernels ready in {time.perf_counter() - t0:.1f} s (compiled on the first run "
          f"after installing, loaded from the cache afterwards; not in the times below)")
    print(f"[3/3] solving to eps = {args.eps:g}" + (" with 'exact' and scipy's L-BFGS-B for "
                                                    "comparison" if args.compare else ""),
          flush=True)
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


def _expected_time(nnz, compare):
    """A rough wall time of the demo for ``nnz`` non-zeros, from the default's (4e7 non-zeros:
    about 4 s to generate and 5 s to solve; --compare adds about 15 s of exact Newton and
    35 s of L-BFGS-B, measured on 2 cores)."""
    seconds = (9.0 + (50.0 if compare else 0.0)) * nnz / 4e7
    return "under 10 s" if seconds < 10 else f"about {10 * math.ceil(seconds / 10):.0f} s"


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


#: L-BFGS-B configured as its users would for an accuracy target in x: the objective scaled to
#: 1 at x0 (the normalized loss is O(1/n), far below scipy's absolute thresholds), its
#: ``ftol`` and ``gtol`` tightened with eps (near x*, f - f* ~ ||x - x*||^2 and
#: ||g|| ~ ||x - x*||; scipy's defaults stop near 1e-6), and no iteration limit that binds
LBFGS_OPTIONS = dict(maxiter=100_000, maxfun=100_000, maxcor=20)


def _lbfgs(pb, args):
    """scipy's L-BFGS-B on ``1/2 ||phi(Ax)/<phi(Ax),1> - b||^2`` (a reference for the demo).

    One evaluation is one ``A x`` and one ``A^T g``: one pass over ``A``. The stopping rule is
    printed: an oracle (a callback stops it once ``||x - x_planted|| <= eps``: the demo knows
    the exact minimiser, which favours L-BFGS-B), or scipy's own tests (gradient, relative
    decrease) if they come first.
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

    x0 = np.zeros(A.shape[1])
    f0 = loss_gradient(x0)[0]
    scale = 1.0 / f0 if f0 > 0 else 1.0
    ftol, gtol = 1e-3 * args.eps ** 2, 1e-3 * args.eps
    reached = []

    def scaled(x):
        f, g = loss_gradient(x)
        return scale * f, scale * g

    def oracle(intermediate_result):
        if np.linalg.norm(intermediate_result.x - pb.x_true) <= args.eps:
            reached.append(intermediate_result.x.copy())
            raise StopIteration

    print(f"stopping rule: oracle, ||x - x_planted|| <= eps checked after every iteration (favours "
          f"L-BFGS-B), or scipy's own tests if they come first: ftol = {ftol:.0e}, gtol = {gtol:.0e} "
          f"on the objective scaled to 1 at x0", flush=True)
    t0 = time.perf_counter()
    res = minimize(scaled, x0, jac=True, method="L-BFGS-B", callback=oracle,
                   options=dict(LBFGS_OPTIONS, ftol=ftol, gtol=gtol))
    secs = time.perf_counter() - t0
    x = reached[0] if reached else res.x
    err = float(np.linalg.norm(x - pb.x_true))
    why = ("stopped by the oracle: within eps of the planted x" if reached
           else f"stopped by scipy's test: {res.message}")
    print(f"scipy L-BFGS-B: {res.nit} iterations, {res.nfev} evaluations, {secs:.2f} s, "
          f"error {err:.2e} ({why})")
    return ("lbfgs", res.nit, float(res.nfev), secs, err, float("nan"), err <= args.eps)
