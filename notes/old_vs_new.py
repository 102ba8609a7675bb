"""Old (2439b13) and new kernels on the same matrix in one process, round robin (best of N).

Usage: PYTHONPATH=$PWD python notes/old_vs_new.py OLD_TREE M3 [threads] [repeats]
(OLD_TREE: an export of the old sources, e.g. ``git archive 2439b13 sketchnewton | tar -x -C /tmp/old``)
"""
import importlib.util
import sys

import numba
import numpy as np

sys.path.insert(0, "notes")
from kernel_table import load, round_robin  # noqa: E402

from sketchnewton._kernels import glm, linalg, links  # noqa: E402


def old_module(tree, name):
    spec = importlib.util.spec_from_file_location(f"old_{name}", f"{tree}/sketchnewton/_kernels/{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    tree, key = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    numba.set_num_threads(threads)
    olin, oglm = old_module(tree, "linalg"), old_module(tree, "glm")
    A = load(key)
    n, d = A.shape
    ip, ix, dt = A.indptr, A.indices.view(np.uint32), A.data
    rng = np.random.default_rng(0)
    y, h, v = rng.standard_normal(n), rng.random(n), rng.standard_normal(d)
    K = 8
    V = rng.standard_normal((d, K))
    P = rng.random((n, K))
    P /= P.sum(axis=1, keepdims=True)
    sw = np.ones(n)
    Y4 = rng.standard_normal((n, 4))
    z, Zd = np.empty(n), np.empty((n, K))
    nc = threads
    named = [
        ("old rmatvec", lambda: olin.csr_rmatvec(ip, ix, dt, y, d, nc)),
        ("new rmatvec", lambda: linalg.csr_rmatvec(ip, ix, dt, y, d, nc)),
        ("old rmatmat4", lambda: olin.csr_rmatmat(ip, ix, dt, Y4, d, nc)),
        ("new rmatmat4", lambda: linalg.csr_rmatmat(ip, ix, dt, Y4, d, nc)),
        ("old normal", lambda: olin.csr_normal_matvec(ip, ix, dt, h, v, False, d, nc, z)),
        ("new normal", lambda: linalg.csr_normal_matvec(ip, ix, dt, h, v, False, d, nc, z)),
        ("old wcolsq", lambda: olin.csr_weighted_col_sq(ip, ix, dt, h, False, d, nc)),
        ("new wcolsq", lambda: linalg.csr_weighted_col_sq(ip, ix, dt, h, False, d, nc)),
        ("old mhessp", lambda: oglm.csr_multinomial_hessp(ip, ix, dt, P, sw, V, False, d, nc, Zd)),
        ("new mhessp", lambda: glm.csr_multinomial_hessp(ip, ix, dt, P, sw, V, False, d, nc, Zd)),
        ("scipy A.T@y", lambda: A.T @ y),
        ("scipy two K", lambda: A.T @ (A @ V)),
    ]
    times = round_robin(named, repeats)
    print(f"{key} n={n} d={d} nnz={A.nnz} threads={threads} layer={numba.threading_layer()}")
    for name, t in times.items():
        print(f"  {name:14s} {1e3 * t:9.3f} ms")


if __name__ == "__main__":
    main()
