"""The multinomial Hessian-vector product against scipy with and without the per-row class work.

Usage: KT_CLOCK=thread NUMBA_NUM_THREADS=1 PYTHONPATH=$PWD python notes/multinomial_reference.py M2

``two K`` (``A.T @ (A @ V)``) reads no class probabilities; the product also reads ``P`` (n, K)
and writes ``A V`` (n, K): at 10 non-zeros a row those arrays are as large as the matrix.
"""
import sys

import numba
import numpy as np

sys.path.insert(0, "notes")
from kernel_table import load, round_robin  # noqa: E402

from sketchnewton._matrix import DataMatrix  # noqa: E402


def main(key, K=8):
    A = load(key)
    n, d = A.shape
    dm = DataMatrix(A)
    rng = np.random.default_rng(0)
    V = rng.standard_normal((d, K))
    P = rng.random((n, K))
    P /= P.sum(axis=1, keepdims=True)
    sw = np.ones(n)

    def scipy_full():
        Z = A @ V
        return A.T @ (sw[:, None] * P * (Z - (P * Z).sum(axis=1, keepdims=True))), Z

    t = round_robin([("csr_multinomial_hessp", lambda: dm.multinomial_hessp(P, sw, V)),
                     ("scipy two K", lambda: A.T @ (A @ V)),
                     ("scipy two K + B_i (numpy)", scipy_full)], 9)
    print(f"{key} n={n} d={d} nnz={A.nnz} K={K} threads={numba.config.NUMBA_NUM_THREADS}")
    for name, s in t.items():
        print(f"  {name:28s} {1e3 * s:9.2f} ms")


if __name__ == "__main__":
    for key in sys.argv[1].split(","):
        main(key)
