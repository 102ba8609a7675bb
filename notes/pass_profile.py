"""Time per pass of ``solve(method="pcg")`` on make_regression_problem(400_000, 500, nnz_per_row=50).

Usage: PYTHONPATH=<tree> python notes/pass_profile.py [--profile out.prof] [--repeats 3]

Prints, per solve: wall time, passes (the solver's count), seconds per pass, the solver's
timings split, and the scipy pass time (A @ x + A.T @ y) measured in the same process.
"""
import argparse
import time

import numpy as np

import sketchnewton
from sketchnewton.datasets import make_regression_problem

ap = argparse.ArgumentParser()
ap.add_argument("--profile", default=None)
ap.add_argument("--repeats", type=int, default=3)
ap.add_argument("--eps", type=float, default=1e-8)
ap.add_argument("--cpu", action="store_true",
                help="process CPU time instead of wall time (run with NUMBA_NUM_THREADS=1: "
                     "a descheduled process then accrues nothing)")
args = ap.parse_args()
clock = time.process_time if args.cpu else time.perf_counter

pb = make_regression_problem(400_000, 500, nnz_per_row=50, z_std=1.5, noise=0.1, random_state=0)
A, b = pb.A.tocsr(), pb.b
rng = np.random.default_rng(0)
x, y = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0])
AT = A.T
tp = min((lambda t0: (A @ x, AT @ y, clock() - t0)[-1])(clock()) for _ in range(7))


def run():
    t0 = clock()
    res = sketchnewton.solve(A, b, args.eps, method="pcg", random_state=0)
    return res, clock() - t0


run()  # warm-up: numba compile / cache load
best = None
for _ in range(args.repeats):
    res, t = run()
    if best is None or t < best[1]:
        best = (res, t)
res, t = best
passes = getattr(res, "passes", None)
print(f"clock: {clock.__name__}")
print(f"scipy pass (A@x + A.T@y): {1e3 * tp:.1f} ms")
print(f"solve pcg: {t:.3f} s, nit={res.nit}, passes={passes}, "
      f"s/pass={t / passes * 1e3:.1f} ms ({t / passes / tp:.2f} scipy passes)")
print("timings:", {k: round(v, 4) for k, v in dict(getattr(res, "timings", {}) or {}).items()})
if args.profile:
    import cProfile

    prof = cProfile.Profile(clock)
    prof.runcall(run)
    prof.dump_stats(args.profile)
