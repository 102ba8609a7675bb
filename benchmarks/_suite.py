"""What the six studies of the suite share (``python -m benchmarks`` with no study names):
sizes (:data:`QUICK`, :data:`FULL`), planted problems, markdown tables, the machine description
and the suite's block of ``RESULTS.md``.

Every suite study writes ``results/<study>[_quick].csv`` and ``plots/<study>[_quick].png``
under the output folder and a markdown section, which :func:`run_study` puts, with the machine
description, into ``RESULTS.md`` between markers (other sections of the file are kept). Every
planted problem is noiseless, so ``x_true`` is its exact minimiser and the common reference: a
solver's time counts only if its final ``||x - x_true|| <= eps``.
"""

import math
import os
import platform
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import sketchnewton as sn
from sketchnewton import ConvergenceWarning
from sketchnewton.datasets import make_regression_problem

from ._peers import run_solver
from .studies import SUITE

__all__ = ["Config", "FULL", "QUICK", "machine_info", "planted", "fmt", "run_case",
           "update_summary", "run_study"]


@dataclass
class Config:
    """Sizes of one mode of the suite (``QUICK`` or ``FULL``)."""

    name: str
    eps: float = 1e-8
    cap: float = 600.0                    # seconds per scipy peer run
    # scaling_n
    ns: tuple = (10_000, 100_000, 1_000_000, 10_000_000)
    n_d: int = 100
    n_k: int = 10
    n_z: float = 1.5
    # scaling_d
    d_n: int = 300_000
    ds: tuple = (50, 100, 200, 500, 1000)
    d_ks: tuple = (10, 50)
    d_z: float = 1.5
    # sketch quality
    sk_n: int = 20_000
    sk_d: int = 40
    sk_multiples: tuple = (2, 3, 5, 10, 20, 40)
    sk_seeds: int = 10
    # accuracy vs time
    acc_size: tuple = (1_000_000, 200, 10)
    # shortcut
    sc_n: int = 20_000
    sc_d: int = 50
    sc_k: int = 10
    sc_zs: tuple = (0.5, 1.0, 1.5, 2.0)
    sc_seeds: int = 3
    sc_gd_max: int = 20_000
    sc_gd_tol: float = 1e-6
    # memory
    mem_ns: tuple = (1_000_000, 10_000_000)
    mem_d: int = 100
    mem_k: int = 10
    slope_min_n: int = 100_000           # fit the slope on n >= this (overheads below)
    extra: dict = field(default_factory=dict)


FULL = Config("full")
QUICK = Config("quick", cap=20.0, ns=(5_000, 20_000, 80_000), n_d=50, n_k=8,
               d_n=20_000, ds=(20, 50, 100), d_ks=(5, 20),
               sk_n=4000, sk_d=20, sk_multiples=(2, 5, 10, 20), sk_seeds=3,
               acc_size=(50_000, 50, 8), sc_n=5000, sc_d=20, sc_zs=(0.5, 1.5), sc_seeds=1,
               sc_gd_max=3000, mem_ns=(50_000, 200_000), mem_d=50, mem_k=8, slope_min_n=5_000)


# ---------------------------------------------------------------------------- helpers

def machine_info():
    """One line per fact about the machine and the software versions."""
    import numba
    import scipy
    import sklearn
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "unknown"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(line.split()[1] for line in fh if line.startswith("MemTotal")))
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{os.cpu_count()} logical CPUs ({cpu}), {mem} RAM, {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, numpy {np.__version__}, "
            f"scipy {scipy.__version__}, numba {numba.__version__}, scikit-learn "
            f"{sklearn.__version__}, sketchnewton {sn.__version__ if hasattr(sn, '__version__') else ''}"
            ).rstrip(", ")


def planted(n, d, k, z_std, *, link="resnet", seed=0, **kw):
    """The planted problem of the suite: ``n x d``, ``k`` non-zeros per row, z std ``z_std``."""
    return make_regression_problem(n, d, link=link, nnz_per_row=k, z_std=z_std,
                                   random_state=seed, **kw)


def fmt(v, spec):
    """``format(v, spec)``, ``-`` for None and non-finite numbers."""
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def run_case(pb, solvers, eps, cap, tp, *, link="resnet", trace=False, log=print, tag=""):
    """Every solver of ``solvers`` on planted problem ``pb``; one row each, with time in passes
    (``tp``: the time of one pass)."""
    rows = []
    for s in solvers:
        r = run_solver(s, pb.A, pb.b, pb.x_true, eps, link=link, cap=cap, trace=trace)
        r.update(solver=s, pass_seconds=tp, time_passes=r["seconds"] / tp)
        log(f"  {tag} {s:10s} {r['seconds']:8.2f} s {r['time_passes']:8.1f} passes-time "
            f"{r['nit']:5d} it  err {r['error']:.1e}  {'ok' if r['success'] else 'FAIL'}  "
            f"{r['note']}")
        rows.append(r)
    return rows


def update_summary(path, sections, header):
    """Replace (or add) each study's block between markers in the markdown file at ``path``."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
    if begin not in text:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{begin}\n{end}\n{rest}"
    pre, _, tail = text.partition(begin)
    block, _, post = tail.partition(end)
    parts = {}
    for chunk in block.split("<!-- study:")[1:]:
        name, _, body = chunk.partition(" -->")
        parts[name] = body.split("<!-- /study -->")[0].strip("\n")
    parts.update(sections)
    new_block = "\n" + header + "\n\n" + "\n\n".join(
        f"<!-- study:{name} -->\n{parts[name]}\n<!-- /study -->" for name in SUITE if name in parts) + "\n"
    with open(path, "w") as fh:
        fh.write(pre + begin + new_block + end + post)


def run_study(ctx, name, measure, log=print):
    """Run suite study ``name``: ``measure(cfg, ctx, log=log) -> (rows, markdown)`` at the sizes
    of ``ctx`` (:data:`QUICK` or :data:`FULL`), then its section of ``RESULTS.md`` in the output
    folder (with the machine description) is replaced; returns the path of ``RESULTS.md``."""
    cfg = QUICK if ctx.quick else FULL
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, text = measure(cfg, ctx, log=log)
    section = text + f"\n_{name}: {time.perf_counter() - t0:.0f} s, run on " \
                     f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}._"
    log(f"[{name} done in {time.perf_counter() - t0:.0f} s]")
    header = ("## Benchmark suite (`python -m benchmarks" + (" --quick" if ctx.quick else "")
              + "`)\n\n"
              f"Machine: {machine_info()}.\n\nA *pass* is one scipy `A @ x` plus one `A.T @ y` on "
              "the same CSR matrix in the same process; *time in passes* = seconds / that time.")
    summary = os.path.join(ctx.root, "RESULTS.md")
    update_summary(summary, {name: section}, header)
    log(f"wrote {summary}")
    return summary
