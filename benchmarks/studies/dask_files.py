"""Out of core from files: read-only row blocks on Dask, a pass against the time to read A.

What does a pass cost when ``A`` (several times the workers' memory) stays in its files and
every task maps its block (``sketchnewton.distributed.from_files(folder, persist=False)``),
compared with reading the files, with the kernels' compute, and with an in-memory pass?

A planted softmax problem (``b = exp(A x*) / alpha``, random CSR rows from
``_common.random_csr`` seeded per block) is written once with
``sketchnewton.distributed.save_blocks`` into ``--data`` (``b.npy`` beside the blocks). A
``LocalCluster`` of 2 worker processes x 1 thread with ``--memory-limit`` each then measures:

- ``read``: one task per block reading its files (``readinto`` a reused buffer), cold (each
  file's pages evicted from the OS page cache first with ``posix_fadvise(DONTNEED)``: no root
  needed, other users' cache untouched; ``fincore`` confirms) and warm (files in the cache);
- ``image`` (one sweep, ``A x``) and ``evaluate`` (one pass: loss, gradient), cold and warm,
  with the task stream's split: busiest worker's task time, the rest (scheduler, client,
  reductions waiting), no-op task overhead;
- ``compute``: the same ``evaluate`` in the client process on a slice of blocks in memory
  (``NormalizedRegressionLoss`` on the concatenated CSR), and one scipy pass
  ``A.T @ (A @ x)`` (the unit of time-passes), both scaled to all rows;
- ``dask_memory``: ``evaluate`` with a slice of blocks persisted in the workers' memory
  (``persist=True``), scaled to all rows;
- one full solve from the files (``--method``), its passes and time-passes, and what the
  workers held and spilled.

Run (1 core pinned: the client, scheduler and both workers on core 0)::

    flock /work/bench.lock taskset -c 0 env NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 \\
        OPENBLAS_NUM_THREADS=1 python -m benchmarks dask_files --update

Writes ``results/dask_files.csv`` (``--quick``: 6 blocks of 50,000 rows in ``--data``_quick,
``_quick`` in the CSV name). ``--generate-only`` writes the data and stops; ``--clean``
deletes the data at the end.
"""

import collections
import os
import shutil
import subprocess
import threading
import time

import numpy as np

from .._common import random_csr, write_csv

DATA = "/work/scratch_ooc"
QUICK = dict(blocks=6, rows=50_000, slice_blocks=2, repeats=2)
COLS = ["setting", "op", "cache", "n", "blocks", "gib_on_disk", "memory_limit_per_worker",
        "seconds", "median_seconds", "passes", "ratio_to_read", "ratio_to_memory",
        "busiest_worker_seconds", "rest_seconds", "tasks", "nit", "success", "time_passes",
        "worker_managed_mib", "spilled_mib", "peak_worker_rss_mib", "note"]
#: peak_worker_rss_mib: sampled twice a second during the solve (file pages mapped by a task
#: count in a worker's RSS while it runs)


def add_arguments(ap):
    ap.add_argument("--data", default=DATA, help="folder of the row blocks (written once)")
    ap.add_argument("--blocks", type=int, default=60)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=1000)
    ap.add_argument("--nnz", type=int, default=100, help="non-zeros per row")
    ap.add_argument("--memory-limit", default="1GiB")
    ap.add_argument("--slice-blocks", type=int, default=4,
                    help="blocks of the in-memory and persisted references")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--method", default="cg",
                    help="of the solve (cg, or auto: pcg at this size)")
    ap.add_argument("--eps", type=float, default=1e-6)
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--solve-only", action="store_true",
                    help="only the solve from the files (no read, in-memory or per-pass references)")
    ap.add_argument("--clean", action="store_true", help="delete the data at the end")


def run(ctx, args):
    if ctx.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.data = args.data.rstrip("/") + "_quick"
    files = generate(args)
    if args.generate_only:
        return
    try:
        rows = measure(args, files)
    finally:
        if args.clean:
            shutil.rmtree(args.data, ignore_errors=True)
    write_csv(ctx.path("results", "dask_files_solve" if args.solve_only else "dask_files", "csv"),
              rows, COLS)


# -- the data ----------------------------------------------------------------------------------
def generate(args):
    """The row blocks in ``args.data`` (written unless already there) and ``b.npy``."""
    from sketchnewton.distributed import from_files, save_blocks

    if os.path.exists(os.path.join(args.data, "blocks.json")):
        return from_files(args.data)
    t0 = time.perf_counter()
    x_true = np.random.default_rng(0).standard_normal(args.d) / np.sqrt(args.nnz)
    u_parts = []

    def parts():
        for j in range(args.blocks):
            A = random_csr(args.rows, args.d, args.nnz, [0, j])
            u_parts.append(np.exp(A @ x_true))
            yield A

    files = save_blocks(parts(), args.data)
    u = np.concatenate(u_parts)
    np.save(os.path.join(args.data, "b.npy"), u / u.sum())
    np.save(os.path.join(args.data, "x_true.npy"), x_true)
    os.sync()
    print(f"data: {files} written in {time.perf_counter() - t0:.0f} s", flush=True)
    return files


def _paths(files):
    return [p for f in files.files for p in f.paths]


def evict(paths):
    """Drop the pages of ``paths`` from the OS page cache (clean pages only: synced first)."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def cached_share(paths):
    """Share of the files' pages in the page cache (``fincore``), or None without it."""
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE",
                              *paths], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    res = size = 0
    for line in out.split("\n"):
        if line.strip():
            r, s = line.split()[:2]
            res, size = res + int(r), size + int(s)
    return res / max(size, 1)


# -- worker-side tasks ---------------------------------------------------------------------------
def _read_block(paths, buf_mib=8):
    """Read the files of one block to the end (the disk-read reference); returns the bytes."""
    buf = bytearray(buf_mib << 20)
    total = 0
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while True:
                k = fh.readinto(buf)
                if not k:
                    break
                total += k
    return total


def _noop(i):
    return i


def _worker_state(dask_worker):
    import psutil

    from sketchnewton._blocks import Block, FileBlock

    blocks = [v for v in dask_worker.data.values() if isinstance(v, Block)]
    spilled = getattr(dask_worker.data, "spilled_total", None)
    return dict(
        blocks=len(blocks),
        held_matrices=sum(not isinstance(v, FileBlock) or v.A is not None for v in blocks),
        managed=float(sum(v.__sizeof__() for v in blocks)),
        spilled=float(spilled.disk) if spilled is not None else 0.0,
        rss=float(psutil.Process().memory_info().rss))


# -- measurements ------------------------------------------------------------------------------
def _timed(fn, repeats, before=None):
    times = []
    for r in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn(r)
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def _stream_split(client, fn):
    """Wall time of ``fn()`` and the busiest worker's task time (task stream)."""
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    busy = collections.defaultdict(float)
    for rec in ts.data:
        for ss in rec["startstops"]:
            busy[rec["worker"]] += ss["stop"] - ss["start"]
    return wall, max(busy.values(), default=0.0), len(ts.data)


def _settle(v):
    from distributed import wait

    if hasattr(v, "terms"):
        wait([h for _, handles, _ in v.terms for h in handles if hasattr(h, "key")])
    return v


def measure(args, files):
    import scipy.sparse as sp
    from distributed import Client, LocalCluster, wait

    import sketchnewton as sn
    from sketchnewton.distributed import from_files, normalized_loss
    from sketchnewton.losses import NormalizedRegressionLoss

    paths = _paths(files)
    n, R = files.shape[0], args.repeats
    gib = files.nbytes / 2**30
    b = np.load(os.path.join(args.data, "b.npy"))
    x = 0.5 * np.load(os.path.join(args.data, "x_true.npy"))
    base = dict(n=n, blocks=len(files.files), gib_on_disk=round(gib, 3),
                memory_limit_per_worker=args.memory_limit)
    out = []

    def row(**kw):
        r = {**base, **kw}
        for k, v in r.items():
            if isinstance(v, float):
                r[k] = round(v, 4)
        print({k: v for k, v in r.items() if v not in ("", None)}, flush=True)
        out.append(r)
        return r

    mem, ref_pass = {"seconds": float("nan")}, float("nan")
    if not args.solve_only:
        # the in-memory references: a slice of blocks in this process, scaled to all rows
        k = min(args.slice_blocks, len(files.files))
        As = sp.vstack([sp.csr_matrix(files.files[j].load().csr) for j in range(k)], format="csr")
        scale = n / As.shape[0]
        mem_loss = NormalizedRegressionLoss(As, b[:As.shape[0]] / b[:As.shape[0]].sum(),
                                            link="softmax")
        mem_loss.evaluate(x)
        t_eval = _timed(lambda r: mem_loss.evaluate(x * (1 + 1e-3 * r)), R)
        t_scipy = _timed(lambda r: As.T @ (As @ (x * (1 + 1e-3 * r))), R)
        ref_pass = t_scipy[0] * scale
        mem = row(setting="memory", op="evaluate", cache="", seconds=t_eval[0] * scale,
                  median_seconds=t_eval[1] * scale, passes=1,
                  note=f"client process, {k} blocks in memory, x{scale:.1f}")
        row(setting="memory", op="scipy_pass", cache="", seconds=ref_pass,
            median_seconds=t_scipy[1] * scale, passes=1, note="A.T @ (A @ x), the time-pass unit")
        del As, mem_loss

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      memory_limit=args.memory_limit, dashboard_address=None,
                      local_directory="/tmp/sketchnewton_dask_files_spill") as cluster, \
            Client(cluster) as client:
        where = set(client.run(lambda: __import__("sketchnewton").__file__).values())
        print(f"sketchnewton on the workers: {where}", flush=True)
        wait(client.map(_noop, range(50), pure=False))
        t0 = time.perf_counter()
        wait(client.map(_noop, range(2000), pure=False))
        noop_ms = (time.perf_counter() - t0) / 2000 * 1e3

        dmem = {"seconds": float("nan")}
        if not args.solve_only:
            # the disk-read reference
            reads = {}
            for cache in ("cold", "warm"):
                def read_all(r):
                    got = client.gather(client.map(_read_block, [f.paths for f in files.files],
                                                   pure=False))
                    assert sum(got) == files.nbytes

                if cache == "warm":
                    read_all(0)
                share = []
                evict_fn = (lambda: (evict(paths), share.append(cached_share(paths)))) \
                    if cache == "cold" else None
                best, median = _timed(read_all, R, evict_fn)
                reads[cache] = best
                row(setting="read", op="read_files", cache=cache, seconds=best, median_seconds=median,
                    note=f"{files.nbytes / best / 2**20:.0f} MiB/s" + (
                        f"; cached before each read: {max(share) if share[0] is not None else '?'}"
                        if share else ""))

            # the in-memory (persisted) distributed pass on a slice
            sl = from_files(args.data, persist=True)
            sl.files = sl.files[:k]
            sl.shape, sl.chunks = (sum(f.shape[0] for f in sl.files), sl.shape[1]), (
                tuple(f.shape[0] for f in sl.files), (sl.shape[1],))
            sl_loss = normalized_loss(sl, b[:sl.shape[0]] / b[:sl.shape[0]].sum(), link="softmax")
            sl_loss.evaluate(x)
            held = [None]

            def ev_slice(r):
                held[0] = sl_loss.evaluate(x * (1 + 1e-3 * r))

            t = _timed(ev_slice, R)
            dmem = row(setting="dask_memory", op="evaluate", cache="", seconds=t[0] * n / sl.shape[0],
                       median_seconds=t[1] * n / sl.shape[0], passes=1,
                       note=f"{k} blocks persisted on the workers, x{n / sl.shape[0]:.1f}")
            del sl_loss, held

            # out of core: read-only blocks
            ooc = from_files(args.data, persist=False)
            loss = normalized_loss(ooc, b, link="softmax")
            st = [loss.evaluate(x)]  # compiles the kernels in the workers
            for cache in ("cold", "warm"):
                before = (lambda: evict(paths)) if cache == "cold" else None
                for op, fn, passes in (
                        ("image", lambda r: _settle(loss.image(x * (1 + 1e-3 * r))), 0.5),
                        ("evaluate", lambda r: st.__setitem__(0, loss.evaluate(x * (1 + 1e-3 * r))),
                         1)):
                    best, median = _timed(fn, R, before)
                    if before is not None:
                        before()
                    wall, busiest, tasks = _stream_split(client, lambda: fn(R))
                    row(setting="dask_files", op=op, cache=cache, seconds=best, median_seconds=median,
                        passes=passes, ratio_to_read=best / reads[cache],
                        ratio_to_memory=best / (passes * dmem["seconds"]),
                        busiest_worker_seconds=busiest, rest_seconds=wall - busiest, tasks=tasks,
                        note=f"split from one more run ({wall:.2f} s); no-op task {noop_ms:.2f} ms")
            st.clear()
            del loss

        # one full solve from the files, cold start
        evict(paths)
        peak, stop = [0.0], threading.Event()

        def sample():
            while not stop.wait(0.5):
                try:
                    rss = client.run(lambda: __import__("psutil").Process().memory_info().rss)
                    peak[0] = max(peak[0], *rss.values())
                except Exception:  # noqa: BLE001 - a worker restarting
                    pass

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        t0 = time.perf_counter()
        try:
            res = sn.solve(from_files(args.data, persist=False), b, args.eps, link="softmax",
                           method=args.method, random_state=0)
        except Exception as exc:  # noqa: BLE001 - recorded (a worker over its memory limit)
            row(setting="dask_files", op=f"solve_{args.method}", cache="cold start",
                seconds=time.perf_counter() - t0, success=False,
                peak_worker_rss_mib=peak[0] / 2**20, note=f"failed: {exc!r}"[:200])
            return out
        finally:
            stop.set()
            th.join()
        secs = time.perf_counter() - t0
        states = client.run(_worker_state).values()
        held_matrices = sum(s["held_matrices"] for s in states)
        row(setting="dask_files", op=f"solve_{res.method}", cache="cold start", seconds=secs,
            passes=res.passes, nit=res.nit, success=res.success, time_passes=secs / ref_pass,
            ratio_to_memory=secs / (res.passes * dmem["seconds"]),
            worker_managed_mib=sum(s["managed"] for s in states) / 2**20,
            spilled_mib=sum(s["spilled"] for s in states) / 2**20,
            peak_worker_rss_mib=max(peak[0], *[s["rss"] for s in states]) / 2**20,
            note=f"{secs / res.passes:.2f} s per pass; matrices held by workers: "
                 f"{held_matrices}; {res.message[:60]}")
    print(f"memory pass (client) {mem['seconds']:.2f} s, scipy pass {ref_pass:.2f} s", flush=True)
    return out
