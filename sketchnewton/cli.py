"""Command line: ``sketchnewton demo``."""

import argparse
import sys
import time

import numpy as np

__all__ = ["main"]


def _demo(args):
    from .datasets import make_regression_problem
    from .newton import solve

    print(f"sketchnewton demo: planted {args.link} problem, n = {args.n:,}, d = {args.d}, "
          f"{args.nnz_per_row} non-zeros per row, z std {args.z_std}, seed {args.seed}")
    t0 = time.perf_counter()
    pb = make_regression_problem(args.n, args.d, link=args.link, nnz_per_row=args.nnz_per_row,
                                 z_std=args.z_std, noise=args.noise, random_state=args.seed)
    print(f"generated A ({pb.A.nnz:,} non-zeros) in {time.perf_counter() - t0:.1f} s")
    methods = [args.method] + (["exact", "lbfgs"] if args.compare else [])
    rows = []
    for method in methods:
        print(f"\n== method {method!r}, eps = {args.eps:g}")
        if method == "lbfgs":
            rows.append(_lbfgs(pb, args))
            continue
        res = solve(pb.A, pb.b, args.eps, link=args.link, method=method,
                    random_state=args.seed, verbose=1)
        err = float(np.linalg.norm(res.x - pb.x_true))
        print(f"{res.message}; method used: {res.method}")
        rows.append((res.method if method == "auto" else method, res.nit, res.passes, res.time,
                     err, res.error_bound, res.success))
    print("\nsummary (error = ||x - x_planted||; a noiseless planted x is the exact minimiser)")
    print(f"{'method':>8} {'iter':>5} {'passes':>7} {'seconds':>8} {'error':>10} {'bound':>10} ok")
    for m, nit, passes, secs, err, bound, ok in rows:
        print(f"{m:>8} {nit:5d} {passes:7.1f} {secs:8.2f} {err:10.2e} {bound:10.2e} {ok}")
    return 0 if all(r[-1] for r in rows) else 1


def _lbfgs(pb, args):
    from scipy.optimize import minimize

    from .losses import NormalizedRegressionLoss

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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="sketchnewton",
        description="Approximate Newton methods with sketched Hessians for sparse regression.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="solve a generated planted problem and report",
                          description="Generate a planted normalized-regression problem, solve "
                                      "it with per-iteration progress and print a summary.")
    demo.add_argument("--n", type=int, default=1_000_000, help="rows of A (default 1e6)")
    demo.add_argument("--d", type=int, default=200, help="columns of A (default 200)")
    demo.add_argument("--nnz-per-row", type=int, default=20,
                      help="non-zeros per row of A (default 20)")
    demo.add_argument("--density", type=float, default=None,
                      help="fraction of non-zeros per row (overrides --nnz-per-row)")
    demo.add_argument("--link", default="resnet", choices=["resnet", "softmax", "cosh", "sinh"],
                      help="link phi (default resnet: exp(z) + z)")
    demo.add_argument("--z-std", type=float, default=1.5,
                      help="standard deviation of z = A x_planted (default 1.5)")
    demo.add_argument("--noise", type=float, default=0.0, help="relative noise in b (default 0)")
    demo.add_argument("--eps", type=float, default=1e-8,
                      help="target ||x - x*|| (default 1e-8)")
    demo.add_argument("--method", default="auto", choices=["auto", "exact", "sketch", "pcg"],
                      help="solver method (default auto)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--compare", action="store_true",
                      help="also run exact Newton and scipy L-BFGS-B on the same problem")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, "density", None) is not None:
        args.nnz_per_row = max(1, int(round(args.density * args.d)))
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
