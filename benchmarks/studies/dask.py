"""Out-of-core solve on a Dask cluster: A on disk in row blocks, larger than the workers' memory.

Does a solve go through when A is larger than the workers' combined memory, and what does a
distributed pass cost (``--pass-cost``) in memory, persisted on workers and out of core?

A planted softmax problem is written to ``/tmp/sketchnewton_dask_bench`` as one ``.npz`` per
row block (random CSR rows from ``_common.random_csr``, seeded
per block; ``b = phi(A x*) / alpha`` normalised over all blocks). The dask
array is built lazily (``dask.delayed(load_npz)`` per block +
``da.from_delayed``); a ``LocalCluster`` of 2 worker processes with
``--memory-limit`` each persists the blocks, spilling to disk what does not
fit. A sampler thread records every worker's RSS twice a second. The same
code then solves a slice that fits in memory, in memory.

Run (under the shared lock)::

    # 120 blocks of 1e5 rows, 2.3 GiB; 2 x 1 GiB workers
    flock /tmp/sketchnewton_bench.lock python -m benchmarks dask

The pass-cost study (``--pass-cost``; ``--update`` writes ``dask_pass_cost.csv`` and
``dask_pass_breakdown.csv`` into ``benchmarks/results``, else into ``benchmarks/out``)::

    flock /tmp/sketchnewton_bench.lock python -m benchmarks dask --pass-cost --solves '' --update

Writes ``results/dask_out_of_core.csv`` (``--pass-cost``: ``results/dask_pass_cost.csv`` and
``results/dask_pass_breakdown.csv``). ``--quick``: 4 blocks of 20,000 rows in
``/tmp/sketchnewton_dask_bench_quick``, a slice of 2 blocks, 2 timed passes, and ``_quick`` in
the CSV names.
"""

import argparse
import collections
import os
import threading
import time

import numpy as np
import scipy.sparse as sp

from .._common import random_csr, write_csv

DATA = "/tmp/sketchnewton_dask_bench"
#: sizes of ``--quick`` (options left at their defaults take these)
QUICK = dict(blocks=4, rows=20_000, slice_blocks=2, data=DATA + "_quick", repeats=2,
             disk_repeats=1, scaling="8")


def write_blocks(n_blocks, rows, d, nnz_row, seed=0, folder=DATA):
    os.makedirs(folder, exist_ok=True)
    x_true = np.random.default_rng(seed).standard_normal(d) / np.sqrt(nnz_row)
    paths, u_parts = [], []
    for j in range(n_blocks):
        path = f"{folder}/A_{j:03d}.npz"
        if not os.path.exists(path):
            sp.save_npz(path, random_csr(rows, d, nnz_row, [seed, j]), compressed=False)
        A = sp.load_npz(path)
        u_parts.append(np.exp(A @ x_true))
        paths.append(path)
    alpha = sum(u.sum() for u in u_parts)
    for j, u in enumerate(u_parts):
        np.save(f"{folder}/b_{j:03d}.npy", u / alpha)
    return paths, x_true


def add_arguments(ap):
    ap.add_argument("--blocks", type=int, default=120)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=50)
    ap.add_argument("--nnz", type=int, default=20)
    ap.add_argument("--memory-limit", default="1GiB")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--slice-blocks", type=int, default=10)
    ap.add_argument("--data", default=DATA, help="folder of the row blocks")
    ap.add_argument("--pass-cost", action="store_true",
                    help="the pass-cost study (see pass_cost) instead of the out-of-core solve")
    add_pass_cost_arguments(ap)


def run(ctx, args):
    if ctx.quick:  # the quick sizes, where an option was left at its default
        defaults = vars(_defaults())
        for key, value in QUICK.items():
            if getattr(args, key) == defaults[key]:
                setattr(args, key, value)
    if args.pass_cost:
        return pass_cost(ctx, args)
    out_of_core(ctx, args)


def _defaults():
    ap = argparse.ArgumentParser()
    add_arguments(ap)
    return ap.parse_args([])


def out_of_core(ctx, args):
    """The out-of-core solve, then the in-memory solve of a slice that fits."""
    import dask
    import dask.array as da
    import psutil
    from distributed import Client, LocalCluster

    import sketchnewton as sn

    t0 = time.perf_counter()
    paths, _ = write_blocks(args.blocks, args.rows, args.d, args.nnz, folder=args.data)
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
    write_csv(ctx.path("results", "dask_out_of_core", "csv"), rows_out, cols)
    for r in rows_out:
        print(r)



# -- the pass-cost study (--pass-cost) ---------------------------------------------------------
# One *pass* is what the solver pays per evaluation: the forward (A x, the link values, the
# loss) and the gradient partials (A^T Y), i.e. ``loss.evaluate(x)``; ``loss.image(x)`` is one
# sweep. Three settings on the same rows: (a) in memory, the concatenated CSR; (b) the
# row blocks persisted in the memory of 2 worker processes, no spilling; (c) out of core,
# the same 2 workers with --memory-limit each (Dask spills to disk).
SPILL_DIR = "/tmp/sketchnewton_dask_spill"
PASS_CSV = "dask_pass_cost"
BREAKDOWN_CSV = "dask_pass_breakdown"
PASS_COLS = ["tag", "setting", "op", "n", "blocks", "memory_limit_per_worker", "repeats",
             "seconds", "median_seconds", "passes", "seconds_per_pass", "seconds_per_pass_per_1e6_rows",
             "ratio_to_memory", "nit", "success", "disk_write_mib_per_op", "disk_read_mib_per_op",
             "spilled_mib_at_end", "peak_worker_rss_mib", "load_1min"]
BREAKDOWN_COLS = ["tag", "setting", "blocks", "passes", "wall_per_pass", "compute_per_pass",
                  "compute_by_task", "tasks_per_pass", "disk_read_per_pass", "disk_write_per_pass",
                  "disk_mib_per_pass", "transfer_per_pass", "transfer_mib_per_pass",
                  "serialize_per_pass", "busiest_worker_per_pass", "rest_per_pass",
                  "noop_ms_per_task", "round_trip_ms", "load_1min"]


def add_pass_cost_arguments(ap):
    g = ap.add_argument_group("pass cost (--pass-cost)")
    g.add_argument("--settings", default="memory,dask_memory,dask_disk",
                   help="comma-separated subset of memory, dask_memory, dask_disk")
    g.add_argument("--repeats", type=int, default=5, help="timed passes per op (fastest kept)")
    g.add_argument("--disk-repeats", type=int, default=3, help="timed passes out of core")
    g.add_argument("--persist-memory-limit", default="6GiB",
                   help="per worker in setting dask_memory: large enough that nothing spills")
    g.add_argument("--solves", default="exact,pcg", help="methods solved in each setting ('' none)")
    g.add_argument("--scaling", default="8,32,128",
                   help="block counts for the same rows, setting dask_memory ('' none)")
    g.add_argument("--noop-tasks", type=int, default=2000)
    g.add_argument("--tag", default="current", help="label of this run in the CSVs (rows with "
                   "the same tag are replaced)")


def _b_path(p):
    return p.replace("A_", "b_").replace(".npz", ".npy")


def _load_rows(paths, rows, lo, hi, vector):
    """Rows [lo, hi) of the concatenated blocks in ``paths`` (each of ``rows`` rows)."""
    parts = []
    for j in range(lo // rows, (hi - 1) // rows + 1):
        M = np.load(_b_path(paths[j])) if vector else sp.load_npz(paths[j])
        a, b = max(lo - j * rows, 0), min(hi - j * rows, rows)
        parts.append(M if (a, b) == (0, rows) else M[a:b])
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if vector else sp.vstack(parts, format="csr")


def _lazy_blocks(paths, rows, d, n_blocks):
    """Lazy dask arrays ``A, b`` over the files, re-split into ``n_blocks`` row blocks."""
    import dask
    import dask.array as da

    bounds = np.linspace(0, rows * len(paths), n_blocks + 1).astype(np.int64)
    meta = sp.csr_matrix((0, d))
    A = da.concatenate([da.from_delayed(dask.delayed(_load_rows)(paths, rows, lo, hi, False),
                                        (hi - lo, d), dtype=np.float64, meta=meta)
                        for lo, hi in zip(bounds[:-1], bounds[1:])])
    b = da.concatenate([da.from_delayed(dask.delayed(_load_rows)(paths, rows, lo, hi, True),
                                        (hi - lo,), dtype=np.float64)
                        for lo, hi in zip(bounds[:-1], bounds[1:])])
    return A, b


def _worker_stats(dask_worker):
    """Cumulative counters of one worker: spill metrics, execute digests, bytes sent."""
    import psutil

    out = collections.defaultdict(float)
    data = dask_worker.data
    for (label, unit), v in getattr(data, "cumulative_metrics", {}).items():
        out[f"spill/{label}/{unit}"] += v
    for k, v in dask_worker.digests_total.items():
        if isinstance(k, tuple) and k[0] == "execute":  # (execute, span, prefix, activity, unit)
            out["execute/" + "/".join(map(str, k[2:]))] += v
        elif isinstance(k, tuple):
            out["/".join(map(str, k))] += v
    spilled = getattr(data, "spilled_total", None)
    out["spilled_now_bytes"] = float(spilled.disk) if spilled is not None else 0.0
    out["sent_bytes"] = float(dask_worker.transfer_outgoing_bytes_total)
    out["rss"] = float(psutil.Process().memory_info().rss)
    return dict(out)


class _Counters:
    """Summed worker counters since construction (``diff()``) and the peak RSS seen."""

    def __init__(self, client):
        self.client = client
        self.before = self._total()

    def _total(self):
        tot = collections.defaultdict(float)
        self.rss = 0.0
        for st in self.client.run(_worker_stats).values():
            for k, v in st.items():
                tot[k] += v
            self.rss = max(self.rss, st["rss"])
        return tot

    def diff(self):
        now = self._total()
        return {k: now[k] - self.before.get(k, 0.0) for k in now}, now


def _settle(v):
    """Wait until an image's per-block pieces exist (a BlockVector's futures; arrays: no-op)."""
    from distributed import wait

    if hasattr(v, "terms"):
        wait([h for _, handles, _ in v.terms for h in handles if hasattr(h, "key")])
    return v


def _timed(fn, repeats):
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def _load():
    return round(os.getloadavg()[0], 2)


def _noop(i):
    return i


def _task_overhead(client, n_tasks):
    """Seconds per no-op task (``client.map`` of ``n_tasks``) and per client round trip."""
    from distributed import wait

    wait(client.map(_noop, range(50), pure=False))
    t0 = time.perf_counter()
    wait(client.map(_noop, range(n_tasks), pure=False))
    per_task = (time.perf_counter() - t0) / n_tasks
    trips = []
    for i in range(30):
        t0 = time.perf_counter()
        client.submit(_noop, i, pure=False).result()
        trips.append(time.perf_counter() - t0)
    return per_task, float(np.median(trips))


def _breakdown(client, loss, xs, setting, tag, n_blocks):
    """Where the time of ``len(xs)`` distributed passes goes (task stream + worker counters)."""
    from dask.utils import key_split
    from distributed import get_task_stream

    st = loss.evaluate(xs[0])
    counters = _Counters(client)
    with get_task_stream(client) as ts:
        t0 = time.perf_counter()
        for x in xs[1:]:
            st = loss.evaluate(x)
        wall = time.perf_counter() - t0
    delta, _ = counters.diff()
    del st
    k = len(xs) - 1
    busy = collections.defaultdict(float)
    by_task = collections.defaultdict(float)
    n_tasks = collections.Counter()
    actions = collections.defaultdict(float)
    for rec in ts.data:
        name = key_split(rec["key"])
        n_tasks[name] += 1
        for ss in rec["startstops"]:
            dur = ss["stop"] - ss["start"]
            busy[rec["worker"]] += dur
            if ss["action"] == "compute":
                by_task[name] += dur
            else:
                actions[ss["action"]] += dur
    busiest = max(busy.values(), default=0.0)
    serialize = sum(v for key, v in delta.items() if key.endswith("serialize/seconds"))
    disk_bytes = delta.get("spill/disk-read/bytes", 0.0) + delta.get("spill/disk-write/bytes", 0.0)
    return dict(
        tag=tag, setting=setting, blocks=n_blocks, passes=k, wall_per_pass=wall / k,
        compute_per_pass=sum(by_task.values()) / k,
        compute_by_task=" ".join(f"{n}={v / k:.3f}" for n, v in sorted(by_task.items(),
                                                                       key=lambda t: -t[1])),
        tasks_per_pass=" ".join(f"{n}={c / k:g}" for n, c in sorted(n_tasks.items())),
        disk_read_per_pass=actions["disk-read"] / k, disk_write_per_pass=actions["disk-write"] / k,
        disk_mib_per_pass=disk_bytes / k / 2**20,
        transfer_per_pass=actions["transfer"] / k,
        transfer_mib_per_pass=delta.get("sent_bytes", 0.0) / k / 2**20,
        serialize_per_pass=serialize / k, busiest_worker_per_pass=busiest / k,
        rest_per_pass=(wall - busiest) / k, load_1min=_load())


def _pass_row(tag, setting, op, n, blocks, limit, repeats, best, median, mem=None, **extra):
    per = best / (n / 1e6)
    row = dict(tag=tag, setting=setting, op=op, n=n, blocks=blocks, memory_limit_per_worker=limit,
               repeats=repeats, seconds=round(best, 4), median_seconds=round(median, 4),
               passes=1 if op == "evaluate" else 0.5, seconds_per_pass=round(best, 4),
               seconds_per_pass_per_1e6_rows=round(per, 4), load_1min=_load(), **extra)
    if op == "image":
        row["seconds_per_pass"] = round(2 * best, 4)  # one sweep: half a pass
        row["seconds_per_pass_per_1e6_rows"] = round(2 * per, 4)
    if mem is not None:
        row["ratio_to_memory"] = round(best / mem, 2)
    print({k: v for k, v in row.items() if v not in ("", None)}, flush=True)
    return row


def _warm_up(make_small_loss, args):
    """Each method once on a small problem: numba loads its kernels in every process first."""
    import sketchnewton as sn

    for method in [m for m in args.solves.split(",") if m]:
        sn.minimize(make_small_loss(), eps=args.eps, method=method, random_state=0, max_iter=4)


def _solve_rows(make_loss, args, tag, setting, n, blocks, limit, client=None):
    """Solves on already loaded (persisted) data: ``make_loss()`` gives a fresh loss."""
    import sketchnewton as sn

    rows = []
    for method in [m for m in args.solves.split(",") if m]:
        counters = _Counters(client) if client is not None else None
        t0 = time.perf_counter()
        res = sn.minimize(make_loss(), eps=args.eps, method=method, random_state=0)
        secs = time.perf_counter() - t0
        extra = {}
        if counters is not None:
            delta, now = counters.diff()
            extra = dict(disk_write_mib_per_op=round(delta.get("spill/disk-write/bytes", 0) / 2**20, 1),
                         disk_read_mib_per_op=round(delta.get("spill/disk-read/bytes", 0) / 2**20, 1),
                         spilled_mib_at_end=round(now["spilled_now_bytes"] / 2**20, 1),
                         peak_worker_rss_mib=round(counters.rss / 2**20, 1))
        row = dict(tag=tag, setting=setting, op=f"solve_{method}", n=n, blocks=blocks,
                   memory_limit_per_worker=limit, repeats=1, seconds=round(secs, 2),
                   median_seconds=round(secs, 2), passes=res.passes,
                   seconds_per_pass=round(secs / max(res.passes, 1), 4),
                   seconds_per_pass_per_1e6_rows=round(secs / max(res.passes, 1) / (n / 1e6), 4),
                   nit=res.nit, success=res.success, load_1min=_load(), **extra)
        print(row, flush=True)
        rows.append(row)
    return rows


def _memory_setting(paths, x, args):
    from sketchnewton.losses import NormalizedRegressionLoss

    A = sp.vstack([sp.load_npz(p) for p in paths], format="csr")
    b = np.concatenate([np.load(_b_path(p)) for p in paths])
    n = A.shape[0]
    loss = NormalizedRegressionLoss(A, b, link="softmax")
    loss.evaluate(x)  # warm-up (numba compilation)
    R = args.repeats
    out = [_pass_row(args.tag, "memory", "image", n, 1, "", R,
                     *_timed(lambda r: loss.image(x * (1 + 1e-3 * r)), R)),
           _pass_row(args.tag, "memory", "evaluate", n, 1, "", R,
                     *_timed(lambda r: loss.evaluate(x * (1 + 1e-3 * r)), R))]
    _warm_up(lambda: NormalizedRegressionLoss(A[:args.rows], b[:args.rows], link="softmax"), args)
    out += _solve_rows(lambda: loss, args, args.tag, "memory", n, 1, "")
    return out


def _dask_setting(setting, limit, paths, x, args, mem):
    """Pass timings, breakdown, (dask_memory: task overhead and block-count scaling), solves."""
    from distributed import Client, LocalCluster, wait

    from sketchnewton.distributed import normalized_loss
    from sketchnewton.losses import NormalizedRegressionLoss

    rows_out, breakdowns = [], []
    n_blocks, n = len(paths), args.rows * len(paths)
    R = args.repeats if setting == "dask_memory" else args.disk_repeats
    xs = [x * (1 + 1e-3 * r) for r in range(R + 1)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=limit,
                      dashboard_address=None, local_directory=SPILL_DIR) as cluster, \
            Client(cluster) as client:
        where = set(client.run(lambda: __import__("sketchnewton").__file__).values())
        print(f"[{setting}] sketchnewton on the workers: {where}", flush=True)

        def measure(k, label):
            A, b = _lazy_blocks(paths, args.rows, args.d, k)
            t0 = time.perf_counter()
            loss = normalized_loss(A, b, link="softmax")
            wait(loss.data.blocks)
            print(f"[{label}] {k} blocks persisted in {time.perf_counter() - t0:.1f} s", flush=True)
            # the first evaluation (two rounds), numba compilation; as in a solve, the previous
            # state stays alive while the next is evaluated (memory pressure out of core)
            held = [loss.evaluate(x)]

            def evaluate(r):
                held[0] = loss.evaluate(xs[r])

            out = []
            for op, fn in (("image", lambda r: _settle(loss.image(xs[r]))),
                           ("evaluate", evaluate)):
                counters = _Counters(client)
                best, median = _timed(fn, R)
                delta, now = counters.diff()
                out.append(_pass_row(
                    args.tag, label, op, n, k, limit, R, best, median,
                    mem.get(op),
                    disk_write_mib_per_op=round(delta.get("spill/disk-write/bytes", 0) / R / 2**20, 1),
                    disk_read_mib_per_op=round(delta.get("spill/disk-read/bytes", 0) / R / 2**20, 1),
                    spilled_mib_at_end=round(now["spilled_now_bytes"] / 2**20, 1),
                    peak_worker_rss_mib=round(counters.rss / 2**20, 1)))
            held.clear()  # the last state freed before the breakdown
            bd = _breakdown(client, loss, xs, label, args.tag, k)
            print(bd, flush=True)
            return out, bd, loss

        rows, bd, loss = measure(n_blocks, setting)
        rows_out += rows
        breakdowns.append(bd)
        if setting == "dask_memory":
            per_task, trip = _task_overhead(client, args.noop_tasks)
            bd["noop_ms_per_task"], bd["round_trip_ms"] = round(1e3 * per_task, 3), round(1e3 * trip, 2)
            print(f"no-op tasks: {1e3 * per_task:.2f} ms per task; round trip {1e3 * trip:.1f} ms",
                  flush=True)
        k_small = min(4, n_blocks)
        small = normalized_loss(*_lazy_blocks(paths[:k_small], args.rows, args.d, k_small),
                                link="softmax")
        _warm_up(lambda: NormalizedRegressionLoss.from_blocks(small.data, link="softmax"), args)
        small = None  # its blocks freed
        blocks = loss.data  # the persisted blocks; each solve starts from a fresh loss on them
        del loss
        rows_out += _solve_rows(lambda: NormalizedRegressionLoss.from_blocks(blocks, link="softmax"),
                                args, args.tag, setting, n, n_blocks, limit, client)
        blocks = None
        if setting == "dask_memory":
            for k in [int(v) for v in args.scaling.split(",") if v]:
                rows, bd, loss = measure(k, "dask_memory_blocks")
                del loss
                rows_out += rows
                breakdowns.append(bd)
    return rows_out, breakdowns


def _read_csv(path):
    import csv

    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _merge_csv(path, rows, cols):
    """Rows of other (tag, setting) pairs kept, those measured now replaced."""
    new = {(r["tag"], r["setting"]) for r in rows}
    old = [r for r in _read_csv(path) if (r.get("tag"), r.get("setting")) not in new]
    write_csv(path, old + rows, cols)


def pass_cost(ctx, args):
    """The pass-cost study: seconds per pass in memory, persisted on workers, out of core."""
    print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    t0 = time.perf_counter()
    paths, x_true = write_blocks(args.blocks, args.rows, args.d, args.nnz, folder=args.data)
    print(f"data: {len(paths)} blocks of {args.rows} rows, "
          f"{sum(os.path.getsize(p) for p in paths) / 2**30:.2f} GiB "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    x = 0.5 * x_true
    settings = args.settings.split(",")
    rows, breakdowns, mem = [], [], {}
    if "memory" in settings:
        rows += _memory_setting(paths, x, args)
        mem = {r["op"]: r["seconds"] for r in rows if r["op"] in ("image", "evaluate")}
    else:  # the in-memory reference of an earlier run on the same rows
        here = ctx.path("results", PASS_CSV, "csv")
        mem = {r["op"]: float(r["seconds"]) for r in _read_csv(here) if r["setting"] == "memory"
               and r["op"] in ("image", "evaluate") and int(r["n"]) == args.rows * args.blocks}
    for setting, limit in (("dask_memory", args.persist_memory_limit),
                           ("dask_disk", args.memory_limit)):
        if setting in settings:
            r, b = _dask_setting(setting, limit, paths, x, args, mem)
            rows += r
            breakdowns += b
    _merge_csv(ctx.path("results", PASS_CSV, "csv"), rows, PASS_COLS)
    _merge_csv(ctx.path("results", BREAKDOWN_CSV, "csv"), breakdowns, BREAKDOWN_COLS)
    print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
