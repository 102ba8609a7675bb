"""Shared helpers of the benchmarks: the options every study shares and the :class:`Context`
they make (where results go, quick or full sizes, progress bars), pass timing, fast random CSR
generation, CSV writing, child processes (``python -m benchmarks STUDY ...`` with the repository
root as working directory and on ``PYTHONPATH``), and the equal-objective comparison of
estimators (one child process per solver run, a time cap on the timed fit, the fastest of
``repeat`` runs, peers credited with the loosest tolerance of a ladder that reaches the objective
gap) used by the ``estimators`` and ``poisson`` studies."""

import argparse
import csv
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

__all__ = ["GAP", "BENCH", "ROOT", "Context", "add_shared_options", "output_root", "progress",
           "best_time", "pass_time", "random_csr", "markdown_table", "write_csv", "timed_fit",
           "emit_result", "study_command", "child_env", "watch_child", "run_child",
           "add_equal_objective_options", "EqualObjective", "spawn", "tol_ladder",
           "equal_objective_rows", "print_table", "SETUP_TIMED_OUT"]

ROOT = Path(__file__).resolve().parent.parent
#: the benchmarks folder: the committed ``results/``, ``plots/`` and ``RESULTS.md``
BENCH = ROOT / "benchmarks"
#: a run counts when its objective is within this relative gap of the best objective reached
GAP = 1e-8
START, STOP, RESULT = "START", "STOP", "RESULT "


# -- the shared options, where results go, progress ----------------------------------------------

def add_shared_options(ap):
    """The options every study shares, on parser ``ap`` (the one place they are defined):
    ``--quick``, ``--out DIR`` / ``--update`` and ``--progress`` / ``--no-progress``."""
    g = ap.add_argument_group("shared options (every study)")
    g.add_argument("--quick", action="store_true",
                   help="small sizes: seconds to a few minutes a study (full mode: the sizes of "
                        "the committed results)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--out", default=None, metavar="DIR",
                       help="output folder, with results/ and plots/ inside (default "
                            "benchmarks/out)")
    where.add_argument("--update", action="store_true",
                       help="write into benchmarks/ itself, replacing the committed results/, "
                            "plots/ (and the suite's sections of RESULTS.md)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bars with the time left (default: on a terminal only)")


def output_root(args):
    """The output folder of ``args`` (:func:`add_shared_options`): ``benchmarks/`` with
    ``--update``, else ``--out``, else ``benchmarks/out`` (the committed results stay intact)."""
    if getattr(args, "update", False):
        return BENCH
    return Path(args.out) if getattr(args, "out", None) else BENCH / "out"


@dataclass(frozen=True)
class Context:
    """The shared options of one ``python -m benchmarks`` run, parsed once and handed to every
    study's ``run(ctx, args)``: where to write (``root``), the size mode, progress bars."""

    root: Path = BENCH / "out"
    quick: bool = False
    show_progress: bool | None = None  # None: on a terminal only

    @classmethod
    def from_args(cls, args):
        """The context of parsed shared options (:func:`add_shared_options`)."""
        return cls(output_root(args), bool(args.quick), args.progress)

    @property
    def mode(self):
        """``"quick"`` or ``"full"``."""
        return "quick" if self.quick else "full"

    @property
    def suffix(self):
        """``"_quick"`` in quick mode, else ``""``: the suffix of most output names."""
        return "_quick" if self.quick else ""

    def folder(self, kind):
        """``root / kind`` (``"results"``, ``"plots"``), created."""
        d = Path(self.root) / kind
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def results(self):
        """The folder of the CSVs, created."""
        return self.folder("results")

    @property
    def plots(self):
        """The folder of the PNGs, created."""
        return self.folder("plots")

    def path(self, kind, name, ext):
        """``root / kind / name[_quick].ext`` (folder created)."""
        return self.folder(kind) / f"{name}{self.suffix}.{ext}"

    def rel(self, path):
        """``path`` relative to the output root (as quoted in RESULTS.md)."""
        return os.path.relpath(path, self.root)

    def progress(self, iterable, **kwargs):
        """:func:`progress` with this run's ``--progress`` setting."""
        return progress(iterable, enabled=self.show_progress, **kwargs)


def progress(iterable, enabled=None, **kwargs):
    """``tqdm(iterable)``: a progress bar with elapsed time and an estimate of the time left
    (``enabled=None``: on a terminal only, silent in logs and tests); the plain iterable when
    disabled or without tqdm."""
    if enabled is False:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, disable=None if enabled is None else False, dynamic_ncols=True,
                **kwargs)


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


def markdown_table(header, rows):
    """A markdown table (first column left-aligned, the others right-aligned)."""
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def write_csv(path, rows, columns):
    """Write ``rows`` (dicts) to ``path`` with the given column order (extra keys ignored)."""
    with open(path, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)


# -- child processes ----------------------------------------------------------------------------
# A child is ``python -m benchmarks STUDY <options>`` (see :func:`study_command`), started with the
# repository root as working directory and first on ``PYTHONPATH``, so that it imports this
# checkout's ``benchmarks`` and ``sketchnewton`` whatever the caller's directory.
# Protocol of a timed child (``--one`` of the estimator studies, the memory study): the child
# loads its data and warms up (not timed, no cap but ``setup_timeout``), prints START, runs the
# timed fit, prints STOP, evaluates the objective and prints one ``RESULT {json}`` line. The
# parent's time cap covers only what lies between START and STOP: a loaded machine's slow imports
# or the data generation never count as a timeout.

def study_command(study, *options):
    """The command of a child process running ``study`` with ``options``."""
    return [sys.executable, "-m", "benchmarks", study, *map(str, options)]


def child_env(blas_threads=None, numba_threads=None, **extra):
    """Environment of a child: the repository first on ``PYTHONPATH``; BLAS/OpenMP threads
    capped at ``blas_threads`` and numba's at ``numba_threads`` when given (library defaults
    otherwise); ``extra`` variables on top."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if blas_threads:
        env.update(OPENBLAS_NUM_THREADS=str(blas_threads), OMP_NUM_THREADS=str(blas_threads),
                   MKL_NUM_THREADS=str(blas_threads))
    if numba_threads:
        env.update(NUMBA_NUM_THREADS=str(numba_threads))
    env.update(extra)
    return env


def watch_child(cmd, on_line, timeout, *, env=None):
    """Run ``cmd`` in a fresh process (working directory the repository root, stdin closed,
    environment ``env`` or :func:`child_env`) and hand each line of its standard output, without
    the newline, to ``on_line``, which returns how many seconds the child may take from then on
    (None: the deadline stays). The child is killed when the deadline passes (``timeout``
    seconds from the start; None: no limit). Returns ``(returncode, killed, stderr)``."""
    with open(os.devnull, "rb") as devnull:
        proc = subprocess.Popen(cmd, stdin=devnull, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                env=child_env() if env is None else env, cwd=str(ROOT))
    lines, err = queue.Queue(), []

    def pump(stream, sink, eof):
        for line in stream:
            sink(line)
        if eof:
            sink(None)

    threading.Thread(target=pump, args=(proc.stdout, lines.put, True), daemon=True).start()
    err_thread = threading.Thread(target=pump, args=(proc.stderr, err.append, False), daemon=True)
    err_thread.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    killed = False
    while True:
        try:
            line = lines.get(timeout=None if deadline is None
                             else max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            proc.kill()
            killed = True
            break
        if line is None:
            break
        seconds = on_line(line.rstrip("\n"))
        if seconds is not None:
            deadline = time.monotonic() + seconds
    proc.wait()
    err_thread.join(timeout=5)
    return proc.returncode, killed, "".join(err)


#: what :func:`run_child` returns when the child's setup exceeded its ``setup_cap``
SETUP_TIMED_OUT = "setup timed out"


def run_child(cmd, cap, *, env=None, setup_timeout=1800.0, setup_cap=None):
    """Run ``cmd`` (one child); its ``RESULT`` value, or None when the timed fit exceeded ``cap``
    seconds (the child is then killed). Raises RuntimeError when the child fails or its setup
    (before START, or after STOP) takes longer than ``setup_timeout`` (None: no limit).
    ``setup_cap``: the seconds the child may take before START (loading, warm-up); a child that
    takes longer is killed and :data:`SETUP_TIMED_OUT` returned (a result, not an error)."""
    state = dict(in_fit=False, result=None, started=False)

    def on_line(line):
        if line == START:
            state["in_fit"] = state["started"] = True
            return cap
        if line == STOP:
            state["in_fit"] = False
            return setup_timeout
        if line.startswith(RESULT):
            state["result"] = json.loads(line[len(RESULT):])
        return None

    first = setup_timeout if setup_cap is None else setup_cap
    returncode, killed, err = watch_child(cmd, on_line, first, env=env)
    if state["result"] is not None:
        return state["result"]
    if killed and state["in_fit"]:
        return None  # killed during the timed fit: timed out
    if killed and not state["started"] and setup_cap is not None:
        return SETUP_TIMED_OUT
    why = f"setup took more than {setup_timeout:g} s" if killed else f"exit code {returncode}"
    raise RuntimeError(f"{cmd} failed ({why}):\n" + err[-3000:])


def timed_fit(fit):
    """Child side: ``fit()`` between the START and STOP marks; returns its wall time (s)."""
    print(START, flush=True)
    t0 = time.perf_counter()
    fit()
    seconds = time.perf_counter() - t0
    print(STOP, flush=True)
    return seconds


def emit_result(out):
    """Child side: the one ``RESULT`` line the parent reads."""
    print(RESULT + json.dumps(out), flush=True)


# -- equal-objective comparison of estimators ---------------------------------------------------

def add_equal_objective_options(ap):
    """The options of an equal-objective study (``estimators``, ``poisson``) but its cases:
    size, time cap, repeats, BLAS threads, the CSV tag, and the hidden options of one child run
    (``--one --case C --solver S --tol T``)."""
    ap.add_argument("--n", type=int, default=None, help="rows (default 1e6, quick 20000)")
    ap.add_argument("--cap", type=float, default=None,
                    help="seconds per timed fit (default 600, quick 5)")
    ap.add_argument("--tag", default="", help="suffix of the CSV file name")
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="BLAS threads of every solver's process (0: library default)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs per solver, the fastest counts (default 2, quick 1)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--solver", help=argparse.SUPPRESS)
    ap.add_argument("--tol", type=float, default=1e-8, help=argparse.SUPPRESS)


@dataclass(frozen=True)
class EqualObjective:
    """The parent side of an equal-objective study (``estimators``, ``poisson``): its settings
    (:func:`add_equal_objective_options`) and the child runs of its solvers."""

    study: str
    n: int
    cap: float
    repeat: int
    blas_threads: int | None = None
    options: tuple = ()  # more options of every child run
    setup_cap: float | None = None  # seconds before the timed fit (None: no limit)

    @classmethod
    def from_args(cls, study, ctx, args, options=()):
        """The settings of ``args``; quick mode: n = 20000, cap 5 s, one run; full mode:
        n = 1e6, cap 600 s, two runs."""
        return cls(study, args.n or (20_000 if ctx.quick else 1_000_000),
                   args.cap or (5.0 if ctx.quick else 600.0),
                   args.repeat or (1 if ctx.quick else 2), args.blas_threads or None,
                   tuple(options))

    def run(self, case, solver, tol):
        """``solver`` on ``case`` at ``tol``: :func:`spawn` of ``python -m benchmarks STUDY
        --one --case ... --solver ... --tol ... --n ...``, the fastest of ``repeat`` runs."""
        return spawn(self.study, ["--case", case, "--solver", solver, "--tol", repr(tol),
                                  "--n", self.n, *self.options], self.cap, repeat=self.repeat,
                     blas_threads=self.blas_threads,
                     info=dict(case=case, solver=solver, tol=tol, method=solver),
                     setup_cap=self.setup_cap)


def spawn(study, options, cap, *, repeat=1, blas_threads=None, info=None, setup_cap=None):
    """Run ``python -m benchmarks study --one *options`` ``repeat`` times, each in a fresh
    process; the fastest run, with every run's time in ``times``. A run over the cap is not
    repeated; it is returned as ``time = inf, objective = nan, timed_out = True`` over the fields
    of ``info``; a run whose setup (loading, warm-up) exceeds ``setup_cap`` seconds likewise,
    with ``warmup_timed_out = True``; a run whose child reports an ``error`` (e.g. a
    MemoryError of the solver) is not repeated either."""
    cmd = study_command(study, "--one", *options)
    best, times = None, []
    for _ in range(repeat):
        r = run_child(cmd, cap, env=child_env(blas_threads), setup_cap=setup_cap)
        if r is None or r is SETUP_TIMED_OUT:
            r = dict(info or {}, time=float("inf"), objective=float("nan"), passes=float("nan"),
                     n_iter=-1, timed_out=True, warmup_timed_out=r is SETUP_TIMED_OUT)
        else:
            r = {**(info or {}), **r, "timed_out": False}
        times.append(r["time"])
        if best is None or r["time"] < best["time"]:
            best = r
        if r["timed_out"] or r.get("error"):
            break
    best["times"] = times
    return best


def _finite_objectives(runs):
    return [r["objective"] for r in runs if np.isfinite(r["objective"])]


def rel_gap(f, f_best):
    """``(f - f_best) / |f_best|`` (inf when either is not finite)."""
    if not (np.isfinite(f) and np.isfinite(f_best)):
        return float("inf")
    return (f - f_best) / abs(f_best)


def tol_ladder(run, tols, others, gap=GAP):
    """A peer's runs from the loosest tolerance to the tightest: ``run(tol)`` until one run is
    within ``gap`` of the best objective of the other runs (``others`` and this ladder's earlier
    runs), above or below it, or times out. A run is never judged against itself alone: one
    better than every other by more than the gap, or with no other finite objective (a
    reference that timed out), is confirmed by the ladder's next run first."""
    runs = []
    for tol in tols:
        r = run(tol)
        runs.append(r)
        if r["timed_out"] or r.get("error"):
            break
        f_before = _finite_objectives(list(others) + runs[:-1])
        if f_before and abs(rel_gap(r["objective"], min(f_before))) <= gap:
            break
    return runs


def equal_objective_rows(base, ours, peer_runs, cap, gap=GAP):
    """CSV rows of one case: our runs and, per peer, the first ladder run that reaches ``gap``
    to the best objective of all runs (or its last run, marked not reached); speedup = time of
    the fastest peer that reached it / ours (``cap / ours``, a lower bound, when none did)."""
    all_runs = list(ours) + [r for rs in peer_runs.values() for r in rs]
    finite = _finite_objectives(all_runs)
    f_best = min(finite) if finite else float("nan")
    for r in all_runs:
        r["gap"] = rel_gap(r["objective"], f_best)
    chosen = {}
    for solver, rs in peer_runs.items():
        ok = [r for r in rs if r["gap"] <= gap]
        chosen[solver] = ok[0] if ok else dict(rs[-1], unreached=True)
    reached = {s: r["time"] for s, r in chosen.items() if r["gap"] <= gap}
    best_peer_name = min(reached, key=reached.get) if reached else ""
    best_peer = reached[best_peer_name] if reached else cap
    lower_bound = not reached  # no peer reached the gap within the cap
    rows = []
    for r in list(ours) + list(chosen.values()):
        ok = r["gap"] <= gap
        is_ours = any(r is q for q in ours)
        times = " ".join(f"{t:.3f}" for t in r.get("times", [r["time"]]))
        rows.append(dict(base, solver=r["solver"], method=r["method"], tol=r["tol"],
                         time_s=r["time"], times_s=times,
                         warmup_s=r.get("warmup_time", float("nan")), n_iter=r["n_iter"],
                         passes=r.get("passes", float("nan")), objective=r["objective"],
                         rel_gap=r["gap"], reached=ok, timed_out=r.get("timed_out", False),
                         warmup_timed_out=r.get("warmup_timed_out", False),
                         error=r.get("error", ""),
                         speedup_vs_best_peer=(best_peer / r["time"] if ok and is_ours
                                               else float("nan")),
                         speedup_is_lower_bound=lower_bound, best_peer=best_peer_name))
    return rows


def print_table(rows, cap, preamble):
    """The markdown table of :func:`equal_objective_rows` rows, after ``preamble``."""
    print("\n" + preamble + "\n")
    print("| case | solver | method | tol | time (s) | iters | passes | rel gap | "
          "speedup vs best peer |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = f"> {cap:g}" if r["timed_out"] else f"{r['time_s']:.2f}"
        if r.get("warmup_timed_out"):
            t = "warm-up over its cap"
        elif r.get("error"):
            # a child's failure (time inf) or a solver that cannot run the case (no time)
            t = f"{'failed' if np.isinf(r['time_s']) else 'n/a'}: {r['error']}"
        elif not r["reached"] and not r["timed_out"]:
            t += " (gap not reached)"
        sp_ = r["speedup_vs_best_peer"]
        if not np.isfinite(sp_):
            sp_ = ""
        else:
            sp_ = f"> {sp_:.2f}" if r["speedup_is_lower_bound"] else f"{sp_:.2f}"
            if r.get("best_peer"):
                sp_ += f" ({r['best_peer']})"
        print(f"| {r['case']} | {r['solver']} | {r['method']} | {r['tol']:g} | {t} | "
              f"{r['n_iter']} | {r['passes']:.1f} | {r['rel_gap']:.1e} | {sp_} |")
