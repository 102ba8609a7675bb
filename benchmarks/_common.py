"""Shared helpers for the benchmarks: pass timing and fast random CSR generation."""

import csv
import time

import numpy as np
import scipy.sparse as sp

__all__ = ["best_time", "pass_time", "random_csr", "write_csv"]


def best_time(fn, repeats=5, min_time=0.0):
    """Best wall time (s) of ``fn()`` over ``repeats`` runs (at least one extra warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def pass_time(A, repeats=7):
    """Time of one *pass*: scipy ``A @ x`` plus ``A.T @ y`` on the same CSR matrix.

    Best of ``repeats``; the unit of cost in every benchmark (docs/math.md section 1).
    """
    n, d = A.shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal(d)
    y = rng.standard_normal(n)
    AT = A.T
    return best_time(lambda: (A @ x, AT @ y), repeats)


def random_csr(n, d, nnz_per_row, rng, *, dtype_index=np.int32):
    """Random CSR matrix with ~``nnz_per_row`` non-zeros per row, N(0, 1) values.

    Column indices are uniform; duplicates within a row are dropped (so a row
    has at most ``nnz_per_row`` entries). Much faster than
    ``scipy.sparse.random`` at n = 1e6 - 1e7.
    """
    rng = np.random.default_rng(rng)
    k = nnz_per_row
    out_indices, out_ptr = [], [np.zeros(1, np.int64)]
    out_data = []
    nnz_so_far = 0
    block = max(1, (1 << 24) // max(k, 1))
    for lo in range(0, n, block):
        m = min(block, n - lo)
        idx = np.sort(rng.integers(0, d, (m, k), dtype=dtype_index), axis=1)
        keep = np.ones((m, k), dtype=bool)
        keep[:, 1:] = idx[:, 1:] != idx[:, :-1]
        counts = keep.sum(axis=1)
        out_ptr.append(nnz_so_far + np.cumsum(counts, dtype=np.int64))
        nnz_so_far += int(counts.sum())
        out_indices.append(idx[keep])
        out_data.append(rng.standard_normal(int(counts.sum())))
    indptr = np.concatenate(out_ptr)
    indices = np.concatenate(out_indices)
    data = np.concatenate(out_data)
    return sp.csr_matrix((data, indices, indptr), shape=(n, d))


def write_csv(path, rows, columns):
    """Write ``rows`` (dicts) to ``path`` with the given column order (extra keys ignored)."""
    with open(path, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)
