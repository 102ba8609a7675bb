"""Kernel table: each fused numba kernel against the scipy sweep(s) of the same CSR matrix.

Does every fused sweep run within 1.2x of the time to stream its non-zeros once (a scipy sweep
of the same matrix, the practical reference; issue 26)?

    python -m benchmarks kernel_table [--quick] [--repeats 11] [--only M1,M2,M3,M4] [--clock thread]

``--clock thread`` (with ``NUMBA_NUM_THREADS=1``): the calling thread's CPU time, which a
descheduled one-thread kernel does not accrue, for a machine shared with other jobs. Writes
``results/kernel_table[_quick].csv`` and prints the markdown table.

Threads: the kernels run on ``NUMBA_NUM_THREADS`` threads (through ``DataMatrix``'s
``kernel_threads``); scipy's sparse products are single-threaded. Every time is the best of
``--repeats`` rounds; each round runs every kernel and every scipy reference of a matrix once in
turn (same process), so that all of them see the same spells of load from other processes.

References (scipy, ``A`` CSR, ``AT = A.T`` a CSC view, no copy):

* ``A @ x``: ``csr_matvec``; ``A.T @ y``: ``csr_rmatvec``, ``csr_weighted_col_sq``;
* ``A.T @ Y`` (k columns): ``csr_rmatmat``, the normalized loss's gradient and low-rank columns
  (``link_weights`` then ``csr_rmatmat``, k = 4);
* pass ``A.T @ (h * (A @ v))``: ``csr_normal_matvec``, logistic loss + gradient;
* ``A @ V`` then ``A.T @ M`` (K columns): ``csr_multinomial_hessp``, multinomial loss + gradient;
* ``A[rows].T @ diag(w) @ A[rows]``: ``csr_gram`` on sampled rows.
"""

import os
import subprocess
import time

import numpy as np
import scipy.sparse as sp

import numba

from sketchnewton._kernels import kernel_threads
from sketchnewton._kernels.glm import (logistic_pass, multinomial_pass, multinomial_probs,
                                       multinomial_residual)
from sketchnewton._kernels.links import COMBINED, link_weights
from sketchnewton._matrix import DataMatrix
from sketchnewton.datasets import make_sparse_matrix

from .._common import write_csv

CACHE = "/tmp/sketchnewton_kernel_table"
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}


def round_robin(named, repeats, clock=time.perf_counter):
    """``{name: best time}`` over ``repeats`` rounds, each round running every ``fn`` once
    in turn (so that all see the same spells of load from other processes)."""
    for _, fn in named:
        fn()  # warm-up (compilation, first-touch of outputs)
    times = {name: float("inf") for name, _ in named}
    for _ in range(repeats):
        for name, fn in named:
            t0 = clock()
            fn()
            times[name] = min(times[name], clock() - t0)
    return times


def uniform_csr(n, d, k, seed):
    """``k`` distinct uniform columns per row (sorted), N(0, 1) values."""
    return make_sparse_matrix(n, d, nnz_per_row=k, random_state=seed).tocsr()


def zipf_csr(n, p, k, seed):
    """Hashed tf-idf-like CSR: ~``k`` draws per row from Zipf-like column frequencies
    (``P(rank r) ~ 1 / (r + 10)``, ranks hashed to random columns), duplicates merged,
    positive values, rows of unit norm."""
    rng = np.random.default_rng(seed)
    w = 1.0 / (np.arange(p) + 10.0)
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    perm = rng.permutation(p)
    cols = perm[np.minimum(np.searchsorted(cdf, rng.random(n * k)), p - 1)]
    rows = np.repeat(np.arange(n), k)
    vals = rng.exponential(size=n * k)
    A = sp.csr_matrix((vals, (rows, cols)), shape=(n, p))
    A.sum_duplicates()
    A.sort_indices()
    norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=1)).ravel())
    A = sp.diags(1.0 / np.maximum(norms, 1e-300)) @ A
    return A.tocsr()


MATRICES = {
    "M1": ("n=4e5 d=500 50/row", lambda: uniform_csr(400_000, 500, 50, 0)),
    "M2": ("n=1e6 d=200 10/row", lambda: uniform_csr(1_000_000, 200, 10, 1)),
    "M3": ("n=4500 d=16384 80/row", lambda: uniform_csr(4_500, 16_384, 80, 2)),
    "M4": ("n=1e5 p=2^20 zipf 90/row", lambda: zipf_csr(100_000, 1 << 20, 90, 3)),
    "M5": ("n=1e6 d=500 50/row", lambda: uniform_csr(1_000_000, 500, 50, 4)),
}


def load(key):
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, key + ".npz")
    if os.path.exists(path):
        A = sp.load_npz(path).tocsr()
        A.has_sorted_indices = False
        A.sort_indices()  # canonical CSR: the kernels' input (DataMatrix sorts a copy otherwise)
        return A
    A = MATRICES[key][1]()
    A.sort_indices()
    A.indices = A.indices.astype(np.int32)
    A.indptr = A.indptr.astype(np.int32)
    sp.save_npz(path, A, compressed=False)
    return A


def rows_for(key, A, seed=0):
    n, d = A.shape
    rng = np.random.default_rng(seed)
    m = min(n, 10 * d)
    return np.sort(rng.choice(n, m, replace=False)).astype(np.int64), rng.random(m) + 0.5


def table(key, repeats, clock, K=8):
    A = load(key)
    n, d = A.shape
    nnz = A.nnz
    AT = A.T
    dm = DataMatrix(A)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(d)
    y = rng.standard_normal(n)
    h = rng.random(n)
    Y4 = np.ascontiguousarray(rng.standard_normal((n, 4)))
    V = np.ascontiguousarray(rng.standard_normal((d, K)))
    sw = np.ones(n)
    labels = rng.integers(0, K, n)
    # the softmax state the loss keeps: logits and per-row statistics (no probabilities)
    Zs = np.ascontiguousarray(rng.standard_normal((n, K)))
    stats = np.empty((n, 2))
    multinomial_pass(Zs, labels, sw, stats)
    yb = (rng.random(n) < 0.5).astype(np.float64)
    refs = [("A@x", lambda: A @ x), ("A.T@y", lambda: AT @ y), ("A.T@Y4", lambda: AT @ Y4),
            ("pass", lambda: AT @ (h * (A @ x))), ("two K", lambda: AT @ (A @ V))]
    ours = []

    def row(name, fn, ref, nnz_=nnz):
        ours.append((name, fn, ref, nnz_))

    row("csr_matvec", lambda: dm.matvec(x), "A@x")
    row("csr_rmatvec", lambda: dm.rmatvec(y), "A.T@y")
    row("csr_rmatmat k=4", lambda: dm.rmatmat(Y4), "A.T@Y4")
    row("csr_normal_matvec", lambda: dm.normal_matvec(h, x), "pass")
    # the loss's product on sparse rows: the probabilities kept by the state since its first
    # product (losses._multinomial.hessp), formed from the logits once, not in every product
    Ps = multinomial_probs(Zs, stats, np.empty_like(Zs))
    row(f"csr_multinomial_hessp K={K}", lambda: dm.multinomial_hessp(Zs, stats, sw, V, P=Ps),
        "two K")
    row("csr_weighted_col_sq", lambda: dm.weighted_col_sq(h), "A.T@y")

    # gradient + low-rank columns of the normalized loss (COMBINED, 4 columns)
    z = dm.matvec(x * (0.3 / max(1.0, np.abs(A @ x).std())))
    u = np.exp(z - z.max())
    u /= u.sum()
    v = u.copy()
    b = np.full(n, 1.0 / n)
    w2 = np.empty(0)
    fc = float(u @ (u - b))

    def link4():
        with kernel_threads(nnz):
            return dm.rmatmat(link_weights(z, b, w2, u, v, fc, COMBINED, np.empty((n, 4))))

    row("normalized gradient k=4", link4, "A.T@Y4")

    def loss_grad(row_kernel, targets, coef, grad_out):
        """Forward product, the loss's row kernel (writes two arrays), transposed product of
        the gradient weights (``grad_out``: which of the two)."""
        Z = dm @ coef
        outs = (np.empty_like(Z), np.empty_like(Z))
        with kernel_threads(nnz):
            row_kernel(Z, targets, sw, *outs)
        return dm.rmatmat(outs[grad_out]) if Z.ndim == 2 else dm.rmatvec(outs[grad_out])

    row("logistic loss+grad", lambda: loss_grad(logistic_pass, yb, x, 0), "pass")
    W = np.ascontiguousarray(0.1 * V)

    def multinomial_loss_grad():
        """What the softmax loss does: the forward product, the row pass (per-row statistics),
        the gradient's transposed product forming the probabilities and weights row by row."""
        Z = dm @ W
        st = np.empty((n, 2))
        with kernel_threads(nnz):
            multinomial_pass(Z, labels, sw, st)

        def residual(a, b, out):
            return multinomial_residual(multinomial_probs(Z[a:b], st[a:b], out), labels[a:b],
                                        sw[a:b], out)

        return dm.rmatmat_rows(residual, K)

    row(f"multinomial loss+grad K={K}", multinomial_loss_grad, "two K")

    if d <= 2000:
        rows, w = rows_for(key, A)
        Dw = sp.diags(w)

        def scipy_gram():
            S = A[rows]
            return S.T @ Dw @ S

        refs.append(("A[rows].T@diag(w)@A[rows]", scipy_gram))
        row(f"csr_gram m={rows.size}", lambda: dm.gram(w, rows=rows), "A[rows].T@diag(w)@A[rows]",
            int(np.diff(A.indptr)[rows].sum()))
    times = round_robin(refs + [(name, fn) for name, fn, _, _ in ours], repeats, clock)
    return [(key, name, nnz_, times[name], ref, times[ref]) for name, _, ref, nnz_ in ours]


QUICK = {"Q1": ("n=5e4 d=100 20/row", lambda: uniform_csr(50_000, 100, 20, 0))}


def add_arguments(parser):
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--only", default="M1,M2,M3,M4", help="comma-separated of " + ",".join(MATRICES))
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS))


def run(ctx, args):
    if ctx.quick:
        MATRICES.update(QUICK)
    keys = list(QUICK) if ctx.quick else args.only.split(",")
    threads = numba.get_num_threads()
    load_avg = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"clock={args.clock} threads={threads} "
          f"layer={os.environ.get('NUMBA_THREADING_LAYER', 'default')} repeats={args.repeats}; "
          f"start: {load_avg}")
    lines = []
    for key in ctx.progress(keys, desc="matrices"):
        lines += table(key, args.repeats, CLOCKS[args.clock])
    print(f"threading layer used: {numba.threading_layer()}")
    print("| matrix | kernel | nnz | threads | ours (ms) | scipy reference | scipy (ms) | ratio |")
    print("|---|---|---:|---:|---:|---|---:|---:|")
    rows = []
    for key, name, nnz, ours, refname, tref in lines:
        print(f"| {key} {MATRICES[key][0]} | {name} | {nnz:,} | {threads} | "
              f"{1e3 * ours:.2f} | {refname} | {1e3 * tref:.2f} | {ours / tref:.2f} |")
        rows.append(dict(matrix=key, kernel=name, nnz=nnz, threads=threads, clock=args.clock,
                         ours_s=ours, reference=refname, scipy_s=tref, ratio=ours / tref))
    print("end:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    path = ctx.path("results", "kernel_table", "csv")
    write_csv(path, rows, list(rows[0]))
    print(f"wrote {ctx.rel(path)}")
