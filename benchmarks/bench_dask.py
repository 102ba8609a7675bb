"""Out-of-core solve on a Dask cluster: A on disk in row blocks, larger than the workers' memory.

A planted softmax problem is written to ``/tmp/sketchnewton_dask_bench`` as
one ``.npz`` per row block (random CSR rows from ``_common.random_csr``, seeded
per block; ``b = phi(A x*) / alpha`` normalised over all blocks). The dask
array is built lazily (``dask.delayed(load_npz)`` per block +
``da.from_delayed``); a ``LocalCluster`` of 2 worker processes with
``--memory-limit`` each persists the blocks, spilling to disk what does not
fit. A sampler thread records every worker's RSS twice a second. The same
code then solves a slice that fits in memory, in memory.

Run (under the shared lock)::

    flock /tmp/sketchnewton_bench.lock python benchmarks/bench_dask.py  # 120 blocks of 1e5 rows, 2.3 GiB; 2 x 1 GiB workers
"""

import argparse
import os
import sys
import threading
import time

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _common import add_output_options, random_csr, results_dir, write_csv  # noqa: E402

DATA = "/tmp/sketchnewton_dask_bench"


def write_blocks(n_blocks, rows, d, nnz_row, seed=0):
    os.makedirs(DATA, exist_ok=True)
    x_true = np.random.default_rng(seed).standard_normal(d) / np.sqrt(nnz_row)
    paths, u_parts = [], []
    for j in range(n_blocks):
        path = f"{DATA}/A_{j:03d}.npz"
        if not os.path.exists(path):
            sp.save_npz(path, random_csr(rows, d, nnz_row, [seed, j]), compressed=False)
        A = sp.load_npz(path)
        u_parts.append(np.exp(A @ x_true))
        paths.append(path)
    alpha = sum(u.sum() for u in u_parts)
    for j, u in enumerate(u_parts):
        np.save(f"{DATA}/b_{j:03d}.npy", u / alpha)
    return paths, x_true


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=120)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--nnz", type=int, default=20)
    ap.add_argument("--memory-limit", default="1GiB")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--slice-blocks", type=int, default=10)
    add_output_options(ap)
    args = ap.parse_args()

    import dask
    import dask.array as da
    import psutil
    from distributed import Client, LocalCluster

    import sketchnewton as sn

    t0 = time.perf_counter()
    paths, _ = write_blocks(args.blocks, args.rows, args.d, args.nnz)
    on_disk = sum(os.path.getsize(p) for p in paths)
    print(f"data: {len(paths)} blocks, {on_disk / 2**30:.2f} GiB on disk "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)

    def lazy(paths_):
        meta = sp.csr_matrix((0, args.d))
        A = da.concatenate([da.from_delayed(dask.delayed(sp.load_npz)(p), (args.rows, args.d),
                                            dtype=np.float64, meta=meta) for p in paths_])
        b = da.concatenate([da.from_delayed(dask.delayed(np.load)(p.replace("A_", "b_").replace(
            ".npz", ".npy")), (args.rows,), dtype=np.float64) for p in paths_])
        return A, b

    rows_out = []
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      memory_limit=args.memory_limit, dashboard_address=None,
                      local_directory="/tmp/sketchnewton_dask_spill") as cluster, Client(cluster) as client:
        peak = {}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    for w, rss in client.run(lambda: psutil.Process().memory_info().rss).items():
                        peak[w] = max(peak.get(w, 0), rss)
                except Exception:  # noqa: BLE001 - a worker restarting
                    pass
                stop.wait(0.5)

        where = set(client.run(lambda: __import__("sketchnewton").__file__).values())
        print(f"sketchnewton on the workers: {where}", flush=True)
        th = threading.Thread(target=sample, daemon=True)
        th.start()
        A, b = lazy(paths)
        t1 = time.perf_counter()
        res = sn.solve(A, b, args.eps, link="softmax", method="exact", random_state=0, verbose=1)
        t_dask = time.perf_counter() - t1
        stop.set()
        th.join()
        print(res.message, flush=True)
        rows_out.append(dict(run="dask_out_of_core", n=A.shape[0], d=args.d, 
                             gib_on_disk=round(on_disk / 2**30, 3),
                             memory_limit_per_worker=args.memory_limit,
                             peak_worker_rss_mib=round(max(peak.values()) / 2**20, 1),
                             seconds=round(t_dask, 1), nit=res.nit, passes=res.passes,
                             seconds_per_pass=round(t_dask / max(res.passes, 1), 2),
                             error_bound=res.error_bound, success=res.success))

    # the in-memory solve of a slice that fits
    k = args.slice_blocks
    As = sp.vstack([sp.load_npz(p) for p in paths[:k]], format="csr")
    bs = np.concatenate([np.load(p.replace("A_", "b_").replace(".npz", ".npy")) for p in paths[:k]])
    bs = bs / bs.sum()
    t1 = time.perf_counter()
    ref = sn.solve(As, bs, args.eps, link="softmax", method="exact", random_state=0)
    t_mem = time.perf_counter() - t1
    rows_out.append(dict(run="in_memory_slice", n=As.shape[0], d=args.d,
                         gib_on_disk=round(sum(os.path.getsize(p) for p in paths[:k]) / 2**30, 3),
                         memory_limit_per_worker="", peak_worker_rss_mib=round(
                             psutil.Process().memory_info().rss / 2**20, 1),
                         seconds=round(t_mem, 1), nit=ref.nit, passes=ref.passes,
                         seconds_per_pass=round(t_mem / max(ref.passes, 1), 2),
                         error_bound=ref.error_bound, success=ref.success))
    cols = ["run", "n", "d", "gib_on_disk", "memory_limit_per_worker", "peak_worker_rss_mib",
            "seconds", "nit", "passes", "seconds_per_pass", "error_bound", "success"]
    write_csv(os.path.join(results_dir(args), "dask_out_of_core.csv"), rows_out, cols)
    for r in rows_out:
        print(r)


if __name__ == "__main__":
    main()
