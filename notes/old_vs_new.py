"""Old (2439b13) and new kernels on the same matrix in one process, round robin (best of N).

Usage: KT_CLOCK=thread PYTHONPATH=$PWD python notes/old_vs_new.py OLD_TREE M3 [threads] [repeats]

OLD_TREE: an export of the old sources, e.g. ``git archive 2439b13 sketchnewton | tar -x -C
/tmp/old``; its package is copied to ``/tmp/old_vs_new/snold`` and imported under that name.
Run twice: numba's cached machine code ran up to 1.6x faster than the same function compiled
in the measuring process (measured), so the first run only fills the caches.
"""
import sys

import numba
import numpy as np

sys.path.insert(0, "notes")
from kernel_table import load, round_robin  # noqa: E402

from sketchnewton._kernels import glm, linalg, links  # noqa: E402


def old_module(tree, name):
    """``sketchnewton._kernels.<name>`` of the old tree, imported as ``snold._kernels.<name>``."""
    import importlib
    import os
    import shutil

    root = "/tmp/old_vs_new"
    if not os.path.isdir(f"{root}/snold"):
        shutil.copytree(f"{tree}/sketchnewton", f"{root}/snold")
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"snold._kernels.{name}")


def main():
    tree, key = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 15
    numba.set_num_threads(threads)
    olin, oglm, olinks = old_module(tree, "linalg"), old_module(tree, "glm"), old_module(tree, "links")
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
    u = rng.random(n) / n
    b, w2 = np.full(n, 1.0 / n), np.empty(0)
    Y1 = np.abs(y)[:, None]

    def link(mod, n_cols):
        return lambda: mod.link_rmatmat(ip, ix, dt, z, b, w2, u, u, 0.1, links.COMBINED, d, n_cols, nc)

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
        ("old link1", link(olinks, 1)),
        ("new link1", link(links, 1)),
        ("old link4", link(olinks, 4)),
        ("new link4", link(links, 4)),
        ("old |A|^T y", lambda: olin.csr_rmatmat(ip, ix, np.abs(dt), Y1, d, nc)),
        ("new |A|^T y", lambda: linalg.csr_abs_rmatmat(ip, ix, dt, Y1, d, nc)),
        ("old matvec+rmatvec", lambda: olin.csr_rmatvec(ip, ix, dt, h * olin.csr_matvec(ip, ix, dt, v, z), d, nc)),
        ("new matvec+rmatvec", lambda: linalg.csr_rmatvec(ip, ix, dt, h * linalg.csr_matvec(ip, ix, dt, v, z), d, nc)),
        ("scipy A@x", lambda: A @ v),
        ("scipy A.T@y", lambda: A.T @ y),
        ("scipy A.T@Y4", lambda: A.T @ Y4),
        ("scipy pass", lambda: A.T @ (h * (A @ v))),
        ("scipy two K", lambda: A.T @ (A @ V)),
    ]
    times = round_robin(named, repeats)
    print(f"{key} n={n} d={d} nnz={A.nnz} threads={threads} layer={numba.threading_layer()}")
    for name, t in times.items():
        print(f"  {name:14s} {1e3 * t:9.3f} ms")


if __name__ == "__main__":
    main()
