"""Strategies for the transposed products when p is large (no per-thread length-p buffers?).

The exploration that chose the column split of sketchnewton._kernels.scatter_plan (its
``colsplit`` here still searches inside the scatter loop, which the package no longer does).

Usage: NUMBA_NUM_THREADS=2 PYTHONPATH=$PWD python notes/large_p_strategies.py [M4,M5]

For ``A.T @ y`` and the fused ``A.T (h * (A v))`` on the kernel-table matrices
(notes/kernel_table.py), each strategy against scipy measured back to back:

* ``buffers``: row chunks, one private length-p buffer per thread, summed (the old kernels);
* ``single``: one thread, one output buffer;
* ``colsplit``: threads own column ranges (balanced by the column counts of a sample of
  the indices); each scans every row's part in its range (binary search in the sorted row);
* ``fwd+single`` / ``fwd+colsplit`` (fused product): the forward ``z = A v`` row-parallel,
  then the scatter single-threaded / column-split.
"""
import os
import sys

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, "notes")
from kernel_table import load, round_robin  # noqa: E402

from sketchnewton._kernels import _column_bounds as col_bounds  # noqa: E402
from sketchnewton._kernels import chunk_range, sum_chunks  # noqa: E402
from sketchnewton._kernels import _lower_bound as lower_bound  # noqa: E402


@njit(parallel=True, cache=True)
def rmatvec_buffers(indptr, indices, data, y, d, nb):
    n = indptr.shape[0] - 1
    buf = np.zeros((nb, d))
    for c in prange(nb):
        lo, hi = chunk_range(c, n, nb)
        acc = buf[c]
        for i in range(lo, hi):
            yi = y[i]
            for p in range(indptr[i], indptr[i + 1]):
                acc[indices[p]] += data[p] * yi
    return sum_chunks(buf)


@njit(parallel=True, cache=True)
def rmatvec_colsplit(indptr, indices, data, y, d, nb):
    n = indptr.shape[0] - 1
    bounds = col_bounds(indices, d, nb)
    out = np.zeros(d)
    for c in prange(nb):
        jlo = bounds[c]
        jhi = bounds[c + 1]
        for i in range(n):
            yi = y[i]
            start = indptr[i]
            stop = indptr[i + 1]
            p = start if jlo == 0 else lower_bound(indices, start, stop, jlo)
            while p < stop:
                j = indices[p]
                if j >= jhi:
                    break
                out[j] += data[p] * yi
                p += 1
    return out


@njit(parallel=True, cache=True)
def normal_buffers(indptr, indices, data, h, v, d, nb, z):
    n = indptr.shape[0] - 1
    buf = np.zeros((nb, d))
    for c in prange(nb):
        lo, hi = chunk_range(c, n, nb)
        acc = buf[c]
        for i in range(lo, hi):
            start = indptr[i]
            stop = indptr[i + 1]
            zi = 0.0
            for p in range(start, stop):
                zi += data[p] * v[indices[p]]
            z[i] = zi
            t = h[i] * zi
            for p in range(start, stop):
                acc[indices[p]] += data[p] * t
    return sum_chunks(buf)


@njit(parallel=True, cache=True)
def forward(indptr, indices, data, h, v, z, t):
    n = indptr.shape[0] - 1
    for i in prange(n):
        zi = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            zi += data[p] * v[indices[p]]
        z[i] = zi
        t[i] = h[i] * zi
    return t


def normal_fwd_single(indptr, indices, data, h, v, d, z):
    t = forward(indptr, indices, data, h, v, z, np.empty_like(z))
    return rmatvec_buffers(indptr, indices, data, t, d, 1)


def normal_fwd_colsplit(indptr, indices, data, h, v, d, nb, z):
    t = forward(indptr, indices, data, h, v, z, np.empty_like(z))
    return rmatvec_colsplit(indptr, indices, data, t, d, nb)


def main(keys):
    nt = numba.config.NUMBA_NUM_THREADS
    import subprocess
    print("threads", nt, "layer", os.environ.get("NUMBA_THREADING_LAYER", "default"), subprocess.run(
        ["uptime"], capture_output=True, text=True).stdout.strip())
    for key in keys:
        A = load(key)
        n, d = A.shape
        ip, ix, dt = A.indptr, A.indices.view(np.uint32), A.data
        AT = A.T
        rng = np.random.default_rng(0)
        y = rng.standard_normal(n)
        h = rng.random(n)
        v = rng.standard_normal(d)
        z = np.empty(n)
        ref = AT @ y
        np.testing.assert_allclose(rmatvec_colsplit(ip, ix, dt, y, d, nt), ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(rmatvec_buffers(ip, ix, dt, y, d, nt), ref, rtol=1e-9, atol=1e-9)
        from sketchnewton._kernels.linalg import csr_normal_matvec, csr_rmatvec

        named = [
            ("scipy A.T@y", lambda: AT @ y),
            ("rmatvec package, buffered", lambda: csr_rmatvec(ip, ix, dt, y, d, nt, 0.0)),
            ("rmatvec package, as planned", lambda: csr_rmatvec(ip, ix, dt, y, d, nt)),
            ("normal package, fused+buffers", lambda: csr_normal_matvec(ip, ix, dt, h, v, False, d, nt, z, 0.0)),
            ("normal package, as planned", lambda: csr_normal_matvec(ip, ix, dt, h, v, False, d, nt, z)),
            ("rmatvec buffers", lambda: rmatvec_buffers(ip, ix, dt, y, d, nt)),
            ("rmatvec single", lambda: rmatvec_buffers(ip, ix, dt, y, d, 1)),
            ("rmatvec colsplit", lambda: rmatvec_colsplit(ip, ix, dt, y, d, nt)),
            ("scipy pass A.T@(h*(A@v))", lambda: AT @ (h * (A @ v))),
            ("normal buffers", lambda: normal_buffers(ip, ix, dt, h, v, d, nt, z)),
            ("normal single (fused)", lambda: normal_buffers(ip, ix, dt, h, v, d, 1, z)),
            ("normal fwd+single", lambda: normal_fwd_single(ip, ix, dt, h, v, d, z)),
            ("normal fwd+colsplit", lambda: normal_fwd_colsplit(ip, ix, dt, h, v, d, nt, z)),
        ]
        times = round_robin(named, int(os.environ.get("KT_REPEATS", 15)))
        print(f"\n{key} n={n} d={d} nnz={A.nnz} threads={nt}")
        for name, t in times.items():
            refv = times["scipy A.T@y"] if name.startswith(("rmatvec", "scipy A.T@y")) else \
                times["scipy pass A.T@(h*(A@v))"]
            print(f"  {name:32s} {1e3 * t:8.2f} ms  ratio {t / refv:5.2f}")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else ["M4", "M5"])
