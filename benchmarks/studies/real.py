"""Real data: SketchedLogisticRegression against the solvers users pick, at equal objective.

Is ``sn:auto`` faster than every peer on real sets and on wide text problems?

Problems (``--problems``, comma-separated; defaults below):

* ``a9a``, ``w8a``: the LIBSVM sets in ``data/libsvm/`` (binary, n >> d);
* ``code-<bin|K<k>>-n<N>-p<P>[-w<W>]``: the code corpus of ``benchmarks/real_data.py``
  (``make_code_corpus(N, P, n_classes=k or 8, binary=..., window=W)``), e.g.
  ``code-K8-n1e5-p2^16-w8``: 10^5 windows of 8 lines, 2^16 hashed tf-idf features, 8 packages;
* any of them with ``@M``: a seeded random subset of ``M`` rows (``a9a@2000``).

each at ``C = 1`` and ``C = 100`` (``--C``). The objective of every solver is
``C sum_i loss_i + 1/2 ||W||^2`` with the intercept not penalised: scikit-learn's, and that of
``SketchedLogisticRegression``. It is evaluated for every solver's ``coef_, intercept_`` by
:class:`Objective` below, an independent numpy implementation (it also supplies the gradient and
exact Hessian-vector products of the ``trust-ncg`` peer).

Solvers (``--solvers``):

``sn:auto``, ``sn:exact``, ``sn:pcg``, ``sn:sketch``, ``sn:cg``, ``sn:dual``
    ``SketchedLogisticRegression(method=...)`` (``tol`` = relative objective accuracy;
    ``max_iter=1000``, ``random_state=0``). ``sn:auto`` is ours; the others are for reference.
``lbfgs``, ``newton-cholesky``
    ``sklearn.linear_model.LogisticRegression(solver=...)``; ``tol`` is the solver's gradient
    tolerance on scikit-learn's (1/n-scaled) objective; ``max_iter`` 100,000 / 1,000.
``liblinear``
    LIBLINEAR's primal trust-region Newton (``solver="liblinear", dual=False``), binary problems
    only. LIBLINEAR penalises the intercept: it fits a constant column of value
    ``intercept_scaling`` (``--liblinear-scaling``, default 1e3) whose weight ``w_b`` is
    penalised, so the intercept ``b = 1e3 w_b`` costs ``b^2 / (2 1e6)`` in its objective. We keep
    the intercept (users fit one; the other solvers keep theirs) and let that term bound the
    harm: LIBLINEAR's solution is then within ``b^2 / (2 s^2)`` of the optimum of the true
    objective (a relative ``~1e-10`` on a9a / w8a), below the ``1e-8`` gap, and its objective is
    evaluated on the true (unpenalised-intercept) objective like everyone's. The per-run
    ``note`` gives that bound. A larger scaling makes the bound smaller but the constant column
    stiffer for LIBLINEAR's CG. (Fitting every solver without intercept would be the other
    honest choice; it is not what users run.) LIBLINEAR also stops by itself when a step's
    actual and predicted decrease fall below ``1e-12 |f|`` ("actred and prered too small"): on
    a9a at C = 100 that leaves a gap of ~5e-8 at every tolerance, reported as
    "gap not reached".
``glum``
    ``glum.GeneralizedLinearRegressor(family="binomial", alpha=1/(n C), l1_ratio=0)``, binary
    only. glum minimises ``1/(2 sum s) deviance + alpha/2 ||w||^2`` with the binomial deviance
    ``2 * log-loss``, i.e. ``(1/n) sum loss + alpha/2 ||w||^2``; times ``n C`` that is our
    objective when ``alpha = 1/(n C)`` (checked numerically in ``tests/test_real_data.py``).
    ``tol`` is glum's ``gradient_tol`` (max |gradient| of its 1/n-scaled objective); its
    ``solver="auto"`` is IRLS with a least-squares inner solver, a dense (d+1)^2 Hessian.
    Some runs may be sensitive to OpenMP threads on a loaded machine (``--blas-threads``
    also sets ``OMP_NUM_THREADS``).
``trust-ncg``
    plain Newton-CG: ``scipy.optimize.minimize(method="trust-ncg")`` from 0 on
    :class:`Objective` with exact Hessian-vector products; ``gtol = tol * ||grad f(0)||``.

Protocol: every run is a fresh process (``python -m benchmarks real --one``) that loads
the problem, fits the solver on a seeded 3,000-row subset restricted to the first 50 columns
(warm-up: numba kernels from their cache, lazy imports; ``sn:auto`` warms every method it
chooses from, ``exact``, ``pcg``, ``cg`` and ``dual``; not timed, its time is recorded as ``warmup_s``), then runs
the timed fit twice (``--repeat``); the faster counts. A fit is
stopped after ``--cap`` seconds (default 300; timed out), the process address space is limited
to ``--mem-gb`` (default 60% of RAM) so that a dense Hessian that does not fit fails with
MemoryError instead of waking the OOM killer (our ``exact``, ``pcg`` and ``sketch`` methods,
``newton-cholesky`` and glum all hold dense ``dK x dK`` matrices: on the wide text problems
they fail that way, and the table says so). Peak memory is ``ru_maxrss`` of the whole run
process (data, warm-up and both fits), with the resident size just before the timed fits
beside it. Equal accuracy: ``f_best`` is the smallest objective any run reached on the problem
and ``gap = (f - f_best) / |f_best|``; a run counts only when ``gap <= 1e-8``. Every solver
is run with tolerances from the ladder ``1e-4, 1e-6, 1e-8, 1e-10, 1e-12`` (loose first) and is
credited with the loosest one that reaches the gap. To know when to stop a ladder, a
reference run (``sn:auto`` at ``tol = 1e-12``, else ``trust-ncg``) comes first; ladders are
resumed if a later run lowers ``f_best`` below what they reached.

Output: ``results/real[_quick].csv`` under ``benchmarks/out`` (``--out DIR``, ``--csv``;
``--update``: ``benchmarks/results/real.csv``),
one row per problem, C and solver (the credited run; ``tols`` lists every tolerance tried
with its gap), every single run in ``real_runs.csv`` beside it, what each problem's data is in
``real_data.json`` (n, d, nnz, sha256 of the matrix and labels as in the CSV's ``data_sha256``,
and the code corpus manifest: package versions, document hash, ...), and a Markdown table
(``benchmarks/out/real.md``) with each solver's time and ``fastest peer / sn:auto`` (the
fastest of lbfgs, newton-cholesky, liblinear, glum, trust-ncg that reached the gap; when none
did, ``cap / sn:auto``, marked as a lower bound). Both CSVs are rewritten after every problem.

``--quick``: a9a@2000 (binary) and code-K3-n1000-p2^8-w8 (multinomial), C = 1, ``sn:auto`` and
the peers, ladder 1e-4, 1e-10, reference ``trust-ncg``, cap 20 s; about a minute.

    python -m benchmarks real --quick                  # about a minute, tiny subsets
    python -m benchmarks real                          # every default problem, C = 1, 100
    python -m benchmarks real --problems a9a --C 1 --cap 60
"""

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, logsumexp

from .._common import BENCH, GAP, child_env, study_command, watch_child, write_csv

LADDER = (1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
OURS = ("sn:auto", "sn:exact", "sn:pcg", "sn:sketch", "sn:cg", "sn:dual")
PEERS = ("lbfgs", "newton-cholesky", "liblinear", "glum", "trust-ncg")
BINARY_ONLY = ("liblinear", "glum")
AUTO_CHOICES = ("exact", "pcg", "cg", "dual")  # the methods ``auto`` may choose (warm-up)
WARMUP_ROWS, WARMUP_COLS = 3000, 50
PROBLEM_DIR = BENCH / ".cache" / "problems"

DEFAULT_PROBLEMS = (
    "a9a", "w8a",
    "code-bin-n1e4-p2^14-w8", "code-K8-n1e4-p2^14-w8",      # p > n
    "code-bin-n1e5-p2^12-w8", "code-K8-n1e5-p2^12-w8",      # n >> p
    "code-bin-n1e5-p2^16-w8", "code-K8-n1e5-p2^16-w8",      # p ~ n
    "code-bin-n1e5-p2^20-w8",                               # p >> n
    "code-bin-n1e6-p2^18-w2", "code-K8-n1e6-p2^18-w2",      # n = 1e6 (2-line windows)
)
QUICK_PROBLEMS = ("a9a@2000", "code-K3-n1000-p2^8-w8")
QUICK_LADDER = (1e-4, 1e-10)
QUICK_SOLVERS = ("sn:auto",) + PEERS
REFERENCE = ("sn:auto", "trust-ncg")
QUICK_REFERENCE = ("trust-ncg",)

CSV_COLUMNS = ["problem", "kind", "n", "d", "K", "p", "nnz", "C", "solver", "status", "tol",
               "time_s", "times_s", "n_iter", "passes", "method", "objective", "rel_gap",
               "f_best", "speedup_fastest_peer_over_auto", "peak_rss_mb", "rss_before_fit_mb",
               "warmup_s", "tols", "note", "data_sha256", "cap_s", "blas_threads"]
RUNS_COLUMNS = ["problem", "C", "solver", "tol", "reference", "time_s", "times_s", "n_iter", "method",
                "objective", "rel_gap", "timed_out", "error", "peak_rss_mb"]


# ============================================================================ objective

class Objective:
    """``C sum_i loss_i + 1/2 ||W||^2`` (intercept unpenalised), gradient and Hessian products.

    Independent of sketchnewton (plain numpy / scipy). Binary (two labels: the larger one is
    the positive class, as in scikit-learn): parameters ``x = [w (d), b]``, logistic loss.
    Multinomial (K > 2 labels, sorted): ``x = [W (K x d) row by row, b (K)]``, softmax
    cross-entropy with all K rows penalised (scikit-learn's parametrisation).
    """

    def __init__(self, X, y, C, fit_intercept=True):
        self.X = sp.csr_matrix(X, dtype=np.float64)
        self.XT = self.X.T.tocsr()
        self.classes, yi = np.unique(np.asarray(y), return_inverse=True)
        self.K = len(self.classes)
        if self.K < 2:
            raise ValueError("need at least two classes")
        self.binary = self.K == 2
        self.C = float(C)
        self.fit_intercept = fit_intercept
        self.n, self.d = self.X.shape
        self.yi = yi
        if self.binary:
            self.s = np.where(yi == 1, 1.0, -1.0)  # +-1 labels
            self.n_coef = self.d
        else:
            self.Y = np.zeros((self.n, self.K))
            self.Y[np.arange(self.n), yi] = 1.0
            self.n_coef = self.K * self.d
        self.size = self.n_coef + (self.K if not self.binary else 1) * bool(fit_intercept)
        self._cache_x = None
        self._cache = None

    # ---------------------------------------------------------------- parameters
    def pack(self, coef, intercept=None):
        """Solver's ``coef_`` ((1, d) or (K, d)) and ``intercept_`` as one vector."""
        coef = np.asarray(coef, dtype=np.float64)
        parts = [coef.ravel()]
        if self.fit_intercept:
            b = np.zeros(1 if self.binary else self.K) if intercept is None else intercept
            parts.append(np.ravel(np.asarray(b, dtype=np.float64)) * np.ones(1 if self.binary else self.K))
        x = np.concatenate(parts)
        if x.size != self.size:
            raise ValueError(f"{x.size} parameters, expected {self.size}")
        return x

    def _split(self, x):
        if self.binary:
            w = x[:self.d]
            b = x[self.d] if self.fit_intercept else 0.0
        else:
            w = x[:self.n_coef].reshape(self.K, self.d)
            b = x[self.n_coef:] if self.fit_intercept else np.zeros(self.K)
        return w, b

    def _state(self, x):
        if self._cache_x is not None and np.array_equal(x, self._cache_x):
            return self._cache
        w, b = self._split(x)
        if self.binary:
            z = self.X @ w + b
            m = self.s * z
            loss = float(np.sum(np.logaddexp(0.0, -m)))
            r = -self.s * expit(-m)          # d loss / d z
            prob = expit(z)
            state = dict(w=w, loss=loss, r=r, D=prob * (1.0 - prob))
        else:
            Z = np.asarray(self.X @ w.T) + b
            lse = logsumexp(Z, axis=1)
            loss = float(np.sum(lse - Z[np.arange(self.n), self.yi]))
            P = np.exp(Z - lse[:, None])
            state = dict(w=w, loss=loss, P=P, r=P - self.Y)
        self._cache_x, self._cache = x.copy(), state
        return state

    # ---------------------------------------------------------------- values
    def __call__(self, x):
        return self.fun(x)

    def fun(self, x):
        st = self._state(x)
        return self.C * st["loss"] + 0.5 * float(np.sum(st["w"] ** 2))

    def loss_of(self, coef, intercept=None):
        """Objective of a solver's ``coef_, intercept_``."""
        return self.fun(self.pack(coef, intercept))

    def grad(self, x):
        st = self._state(x)
        w = st["w"]
        if self.binary:
            gw = self.C * (self.XT @ st["r"]) + w
            gb = [self.C * st["r"].sum()] if self.fit_intercept else []
            return np.concatenate([gw, gb])
        gw = self.C * np.asarray(self.XT @ st["r"]).T + w
        parts = [gw.ravel()]
        if self.fit_intercept:
            parts.append(self.C * st["r"].sum(axis=0))
        return np.concatenate(parts)

    def fun_grad(self, x):
        return self.fun(x), self.grad(x)

    def hessp(self, x, v):
        """Exact Hessian times ``v`` at ``x`` (one pass of ``X`` and one of ``X^T``)."""
        st = self._state(x)
        vw, vb = self._split(v)
        if self.binary:
            u = self.X @ vw + vb
            t = st["D"] * u
            hw = self.C * (self.XT @ t) + vw
            hb = [self.C * t.sum()] if self.fit_intercept else []
            return np.concatenate([hw, hb])
        P = st["P"]
        U = np.asarray(self.X @ vw.T) + vb
        R = P * (U - np.sum(P * U, axis=1, keepdims=True))
        hw = self.C * np.asarray(self.XT @ R).T + vw
        parts = [hw.ravel()]
        if self.fit_intercept:
            parts.append(self.C * R.sum(axis=0))
        return np.concatenate(parts)


# ============================================================================ problems

def _num(s):
    s = s.strip()
    if "^" in s:
        a, b = s.split("^")
        return int(a) ** int(b)
    return int(float(s))


def parse_problem(name):
    """``dict(source="libsvm" | "code", ...)`` from a problem name (see the module docstring)."""
    base, _, sub = name.partition("@")
    spec = dict(name=name, subset=_num(sub) if sub else None)
    if base in ("a9a", "w8a"):
        spec.update(source="libsvm", set=base)
        return spec
    parts = base.split("-")
    if parts[0] != "code" or len(parts) < 4:
        raise ValueError(f"unknown problem {name!r}")
    cls = parts[1]
    if cls == "bin":
        binary, K = True, 8
    elif cls.startswith("bin"):
        binary, K = True, int(cls[3:])
    elif cls.startswith("K"):
        binary, K = False, int(cls[1:])
    else:
        raise ValueError(f"class part of {name!r}: 'bin', 'bin<k>' or 'K<k>'")
    fields = {p[0]: p[1:] for p in parts[2:]}
    spec.update(source="code", binary=binary, n_classes=K, n_docs=_num(fields["n"]),
                n_features=_num(fields["p"]), window=int(fields.get("w", 8)))
    return spec


def build_problem(name, random_state=0):
    """``(X, y, meta)`` of a problem name (builds / reads the code corpus cache)."""
    from ..real_data import load_libsvm, make_code_corpus

    spec = parse_problem(name)
    if spec["source"] == "libsvm":
        X, y = load_libsvm(spec["set"])
        meta = dict(source=f"LIBSVM {spec['set']} (data/libsvm/README.md)")
    else:
        X, y, man = make_code_corpus(spec["n_docs"], spec["n_features"], spec["n_classes"],
                                     spec["binary"], random_state, window=spec["window"])
        meta = dict(source="code corpus", manifest=man)
    if spec["subset"] is not None and spec["subset"] < X.shape[0]:
        rows = np.sort(np.random.default_rng(random_state).choice(X.shape[0], spec["subset"],
                                                                  replace=False))
        X, y = X[rows], y[rows]
    h = hashlib.sha256()
    for a in (X.indptr, X.indices, X.data, np.asarray(y)):
        h.update(np.ascontiguousarray(a).tobytes())
    K = len(np.unique(y))
    meta.update(name=name, n=X.shape[0], d=X.shape[1], K=K, p=X.shape[1] * (1 if K == 2 else K),
                nnz=int(X.nnz), data_sha256=h.hexdigest())
    return X, y, meta


def save_problem(name, X, y, meta, directory=PROBLEM_DIR):
    directory.mkdir(parents=True, exist_ok=True)
    safe = name.replace("^", "_").replace("@", "_at_")
    path = directory / f"{safe}.npz"
    tmp = directory / f"{safe}.tmp.{os.getpid()}.npz"
    np.savez(tmp, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape), y=y)
    os.replace(tmp, path)
    (directory / f"{safe}.json").write_text(json.dumps(meta, indent=1))
    return path


def load_problem(path):
    z = np.load(path)
    X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return X, z["y"]


# ============================================================================ one run (child)

def _rss_mb():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover - not Linux
        return float("nan")


def _peak_mb():
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024 if sys.platform != "darwin" else r / 2**20


def make_fitter(solver, C, tol, n, binary, liblinear_scaling=1e3):
    """``fit(X, y) -> dict(coef, intercept, n_iter, method, passes, note)`` for one solver."""
    if solver.startswith("sn:"):
        from sketchnewton import SketchedLogisticRegression

        method = solver[3:]

        def fit(X, y, method=method):
            est = SketchedLogisticRegression(C=C, tol=tol, method=method, max_iter=1000,
                                             random_state=0).fit(X, y)
            res = est.result_
            return dict(coef=est.coef_, intercept=est.intercept_, n_iter=int(np.max(est.n_iter_)),
                        method=str(res.method) + (f":{res.preconditioner}"
                                                  if res.get("preconditioner") else ""),
                        passes=float(getattr(res, "passes", float("nan"))))
        return fit
    if solver in ("lbfgs", "newton-cholesky", "liblinear"):
        from sklearn.linear_model import LogisticRegression

        kw = dict(C=C, solver=solver, tol=tol, max_iter=100_000 if solver == "lbfgs" else 1000)
        if solver == "liblinear":
            kw.update(dual=False, intercept_scaling=liblinear_scaling, max_iter=10_000)

        def fit(X, y):
            est = LogisticRegression(**kw).fit(X, y)
            out = dict(coef=est.coef_, intercept=est.intercept_, n_iter=int(np.max(est.n_iter_)),
                       method=solver, passes=float("nan"))
            if solver == "liblinear":
                b = float(np.ravel(est.intercept_)[0])
                out["intercept_penalty"] = b * b / (2 * liblinear_scaling ** 2)
            return out
        return fit
    if solver == "glum":
        from glum import GeneralizedLinearRegressor

        def fit(X, y):
            classes = np.unique(y)
            y01 = (y == classes[-1]).astype(np.float64)
            est = GeneralizedLinearRegressor(family="binomial", alpha=1.0 / (X.shape[0] * C),
                                             l1_ratio=0.0, fit_intercept=True, gradient_tol=tol,
                                             max_iter=1000)
            est.fit(X, y01)
            return dict(coef=np.asarray(est.coef_)[None, :], intercept=np.atleast_1d(est.intercept_),
                        n_iter=int(est.n_iter_), method=f"glum:{getattr(est, '_solver', 'auto')}",
                        passes=float("nan"))
        return fit
    if solver == "trust-ncg":
        from scipy.optimize import minimize

        def fit(X, y):
            obj = Objective(X, y, C)
            x0 = np.zeros(obj.size)
            g0 = np.linalg.norm(obj.grad(x0))
            res = minimize(obj.fun_grad, x0, jac=True, hessp=obj.hessp, method="trust-ncg",
                           options=dict(gtol=max(tol * g0, 1e-300), maxiter=100_000))
            w, b = obj._split(res.x)
            coef = np.atleast_2d(w)
            return dict(coef=coef, intercept=np.atleast_1d(b), n_iter=int(res.nit),
                        method="trust-ncg", passes=float(res.nfev + res.get("nhev", 0)),
                        note=str(res.message)[:60] if not res.success else "")
        return fit
    raise ValueError(f"unknown solver {solver!r}")


def run_one(cfg):
    """Child process: warm up, fit twice, print ``FIT`` JSON lines (read by :class:`Runner`)."""
    import resource
    import warnings

    if cfg.get("mem_bytes"):
        resource.setrlimit(resource.RLIMIT_AS, (cfg["mem_bytes"], cfg["mem_bytes"]))
    X, y = load_problem(cfg["path"])
    binary = len(np.unique(y)) == 2
    C, tol, solver = cfg["C"], cfg["tol"], cfg["solver"]

    def emit(tag, **kw):
        print(f"{tag} " + json.dumps(kw), flush=True)

    try:
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(X.shape[0], min(WARMUP_ROWS, X.shape[0]), replace=False))
        Xw, yw = X[rows][:, :min(WARMUP_COLS, X.shape[1])], y[rows]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if solver.startswith("sn:"):  # every kernel the method may use (auto: any)
                for m in ([m for m in AUTO_CHOICES if binary or m != "dual"]
                          if solver == "sn:auto" else (solver[3:],)):
                    make_fitter(f"sn:{m}", C, 1e-4, Xw.shape[0], binary)(Xw, yw)
            else:
                make_fitter(solver, C, 1e-4, Xw.shape[0], binary, cfg["liblinear_scaling"])(Xw, yw)
        warm = time.perf_counter() - t0
        obj = Objective(X, y, C)
        fit = make_fitter(solver, C, tol, X.shape[0], binary, cfg["liblinear_scaling"])
        for rep in range(cfg["repeat"]):
            rss0 = _rss_mb()
            emit("START", rep=rep)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t0 = time.perf_counter()
                out = fit(X, y)
                seconds = time.perf_counter() - t0
            conv = [str(w.message)[:80] for w in caught if "converge" in str(w.message).lower()
                    or "ConvergenceWarning" in type(w.message).__name__]
            f = obj.loss_of(out["coef"], out["intercept"])
            note = out.get("note", "")
            if conv:
                note = (note + "; " if note else "") + "warning: " + conv[0]
            if "intercept_penalty" in out:
                note = (note + "; " if note else "") + (
                    f"intercept penalty b^2/(2 s^2) = {out['intercept_penalty']:.2e} "
                    f"({out['intercept_penalty'] / abs(f):.1e} of f)")
            emit("FIT", rep=rep, time=seconds, objective=f, n_iter=out["n_iter"],
                 method=out["method"], passes=out["passes"], note=note, warmup=warm,
                 rss_before_fit_mb=rss0, peak_rss_mb=_peak_mb())
    except MemoryError as exc:
        emit("ERROR", error=f"MemoryError {str(exc)[:120]}", peak_rss_mb=_peak_mb())
    except Exception as exc:  # noqa: BLE001 - report any solver failure as a result
        emit("ERROR", error=f"{type(exc).__name__}: {str(exc)[:200]}", peak_rss_mb=_peak_mb())


# ============================================================================ parent

class Runner:
    """Spawns one fresh process per run and enforces the per-fit time cap."""

    def __init__(self, cap, repeat, mem_bytes, blas_threads, liblinear_scaling, verbose=True):
        self.cap, self.repeat, self.mem_bytes = cap, repeat, mem_bytes
        self.blas_threads, self.liblinear_scaling, self.verbose = (blas_threads, liblinear_scaling,
                                                                   verbose)

    def run(self, path, solver, C, tol):
        cfg = dict(path=str(path), solver=solver, C=C, tol=tol, repeat=self.repeat,
                   mem_bytes=self.mem_bytes, liblinear_scaling=self.liblinear_scaling)
        fits, state = [], dict(in_fit=False, error=None, err_peak=float("nan"))

        def on_line(line):
            if line.startswith("START "):
                state["in_fit"] = True
                return self.cap
            if line.startswith("FIT "):
                state["in_fit"] = False
                fits.append(json.loads(line[4:]))
                return 600.0
            if line.startswith("ERROR "):
                err = json.loads(line[6:])
                state["error"], state["err_peak"] = err["error"], err.get("peak_rss_mb",
                                                                          float("nan"))
            return None

        returncode, killed, stderr = watch_child(
            study_command("real", "--one", json.dumps(cfg)), on_line, max(600.0, self.cap),
            env=child_env(self.blas_threads, self.blas_threads))  # load + warm-up: 600 s
        error, err_peak = state["error"], state["err_peak"]
        timed_out = killed and state["in_fit"]
        if killed and not state["in_fit"]:
            error = "setup (load / warm-up) took more than 600 s"
        out = dict(solver=solver, C=C, tol=tol, timed_out=False, error=None)
        good = [f for f in fits if f["time"] <= self.cap]
        timed_out = timed_out or len(good) < len(fits)  # finished, but after the cap
        if good:
            best = min(good, key=lambda f: f["time"])
            out.update(best)
            out["times"] = [f["time"] for f in fits]
        elif timed_out:
            out.update(timed_out=True, time=float("inf"), objective=float("nan"))
        else:
            if error is None:
                error = f"process exited with {returncode}: {stderr[-300:]}"
            out.update(error=error, time=float("nan"), objective=float("nan"), peak_rss_mb=err_peak)
        if self.verbose:
            what = ("timed out" if out["timed_out"] else out["error"] if out["error"]
                    else f"{out['time']:.3f} s  f = {out['objective']:.12e}  it {out['n_iter']}"
                         f"  {out['method']}")
            print(f"    {solver:16s} tol {tol:7.0e}: {what}", flush=True)
        return out


def solvers_for(solvers, K):
    return [s for s in solvers if not (K > 2 and s in BINARY_ONLY)]


def bench_problem(runner, path, meta, C, solvers, ladder, reference=REFERENCE):
    """Every solver's ladder on one problem at one C; returns the per-solver summary rows."""
    runs = {s: [] for s in solvers}     # ladder runs in order
    ok_runs = []

    def finite(r):
        return r.get("error") is None and not r.get("timed_out") and np.isfinite(r["objective"])

    def f_best():
        vals = [r["objective"] for r in ok_runs]
        return min(vals) if vals else float("inf")

    def gap(r, fb):
        return (r["objective"] - fb) / abs(fb) if finite(r) and np.isfinite(fb) else float("inf")

    def add(r):
        if finite(r):
            ok_runs.append(r)
        return r

    ref = None
    for s in reference:  # counts for f_best even when s is not among the compared solvers
        ref = add(runner.run(path, s, C, ladder[-1]))
        if finite(ref):
            break
        ref = None

    def advance(s):
        """Run the next tolerance of ``s``'s ladder; False when the ladder is over."""
        done = runs[s]
        if done and (done[-1].get("timed_out") or done[-1].get("error")):
            return False  # tighter tolerances would fail the same way
        if len(done) == len(ladder):
            return False
        tol = ladder[len(done)]
        if ref is not None and ref["solver"] == s and tol == ref["tol"]:
            r = ref
        else:
            r = add(runner.run(path, s, C, tol))
        done.append(r)
        return True

    def reached(s):
        fb = f_best()
        return any(gap(r, fb) <= GAP for r in runs[s])

    for s in solvers:
        while not reached(s) and advance(s):
            pass
    changed = True
    while changed:  # f_best may have dropped after a ladder stopped: resume it
        changed = False
        for s in solvers:
            while not reached(s) and advance(s):
                changed = True
    fb = f_best()
    rows = {}
    for s in solvers:
        rs = runs[s]
        hit = [r for r in rs if gap(r, fb) <= GAP]
        r = hit[0] if hit else (rs[-1] if rs else dict(solver=s, tol=float("nan")))
        if hit:
            status = "ok"
        elif r.get("timed_out"):
            status = "timeout"
        elif r.get("error"):
            status = "error"
        else:
            status = "gap not reached"
        tols = ";".join(
            f"{q['tol']:.0e}:" + ("timeout" if q.get("timed_out") else "error" if q.get("error")
                                  else f"{gap(q, fb):.1e}") for q in rs)
        rows[s] = dict(
            problem=meta["name"], kind="binary" if meta["K"] == 2 else f"multinomial K={meta['K']}",
            n=meta["n"], d=meta["d"], K=meta["K"], p=meta["p"], nnz=meta["nnz"], C=C, solver=s,
            status=status, tol=r.get("tol"), time_s=r.get("time", float("nan")),
            times_s=" ".join(f"{t:.4f}" for t in r.get("times", [])),
            n_iter=r.get("n_iter", ""), passes=r.get("passes", ""), method=r.get("method", ""),
            objective=r.get("objective", float("nan")), rel_gap=gap(r, fb), f_best=fb,
            peak_rss_mb=r.get("peak_rss_mb", float("nan")),
            rss_before_fit_mb=r.get("rss_before_fit_mb", float("nan")),
            warmup_s=r.get("warmup", float("nan")), tols=tols,
            note=r.get("error") or r.get("note", ""), data_sha256=meta["data_sha256"][:16])
    peers = [rows[s]["time_s"] for s in rows if s in PEERS and rows[s]["status"] == "ok"]
    auto = rows.get("sn:auto")
    if auto is not None:
        ratio = float("nan")
        if auto["status"] == "ok":
            ratio = (min(peers) if peers else runner.cap) / auto["time_s"]
            if not peers:
                auto["note"] = (auto["note"] + "; " if auto["note"] else "") + \
                    "no peer reached the gap: ratio is a lower bound cap / auto"
        auto["speedup_fastest_peer_over_auto"] = ratio
    all_runs = []
    seen = set()
    for r in ([ref] if ref is not None else []) + [q for s in solvers for q in runs[s]]:
        if id(r) in seen:
            continue
        seen.add(id(r))
        all_runs.append(dict(
            problem=meta["name"], C=C, solver=r["solver"], tol=r["tol"],
            reference=r is ref, time_s=r.get("time"), times_s=" ".join(f"{t:.4f}" for t in r.get("times", [])),
            n_iter=r.get("n_iter", ""), method=r.get("method", ""), objective=r.get("objective"),
            rel_gap=gap(r, fb), timed_out=r.get("timed_out", False), error=r.get("error") or "",
            peak_rss_mb=r.get("peak_rss_mb", float("nan"))))
    return list(rows.values()), all_runs


def _cell(r, cap):
    if r is None:
        return "n/a"
    if r["status"] == "timeout":
        return f"> {cap:g} s"
    if r["status"] == "error":
        note = str(r["note"])
        return "MemoryError" if "MemoryError" in note else "error"
    t = f"{r['time_s']:.3g} s"
    if r["status"] != "ok":
        return f"{t}, gap {r['rel_gap']:.0e}"
    return f"{t} ({r['tol']:.0e})"


def markdown(rows, solvers, cap, header=""):
    lines = [header] if header else []
    cols = ["problem", "n", "p = dK", "nnz", "C"] + solvers + ["fastest peer / auto", "auto chose"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    keys = []
    for r in rows:
        k = (r["problem"], r["C"])
        if k not in keys:
            keys.append(k)
    for prob, C in keys:
        rs = {r["solver"]: r for r in rows if r["problem"] == prob and r["C"] == C}
        any_r = next(iter(rs.values()))
        auto = rs.get("sn:auto")
        ratio = auto.get("speedup_fastest_peer_over_auto", float("nan")) if auto else float("nan")
        rtxt = "" if not np.isfinite(ratio) else f"{ratio:.2f}"
        if rtxt and auto and "lower bound" in str(auto["note"]):
            rtxt = "> " + rtxt
        cells = [prob, f"{any_r['n']:,}", f"{any_r['p']:,}", f"{any_r['nnz']:,}", f"{C:g}"]
        cells += [_cell(rs.get(s), cap) for s in solvers]
        cells += [rtxt, auto["method"] if auto else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Times: fastest of the timed fits, each in a fresh process after a warm-up; "
                 f"(tol) = loosest tolerance of the ladder reaching a relative objective gap "
                 f"<= {GAP:g} to the best objective any run reached; '> {cap:g} s' = time cap; "
                 f"'gap x' = no tolerance reached the gap. Ratio > 1: sn:auto is faster than "
                 f"every peer (lbfgs, newton-cholesky, liblinear, glum, trust-ncg).")
    return "\n".join(lines)


def add_arguments(ap):
    ap.add_argument("--problems", default=None, help="comma-separated problem names")
    ap.add_argument("--C", default=None, help="comma-separated C values (default 1,100)")
    ap.add_argument("--solvers", default=None, help=f"subset of {','.join(OURS + PEERS)}")
    ap.add_argument("--ladder", default=None, help="comma-separated tolerances, loose first")
    ap.add_argument("--cap", type=float, default=None, help="seconds per fit (default 300)")
    ap.add_argument("--repeat", type=int, default=2, help="timed fits per run (fastest counts)")
    ap.add_argument("--mem-gb", type=float, default=None,
                    help="address-space limit of each run process (default 60%% of RAM)")
    ap.add_argument("--blas-threads", type=int, default=0, help="0: library default")
    ap.add_argument("--liblinear-scaling", type=float, default=1e3)
    ap.add_argument("--reference", default=None,
                    help="solvers tried in turn for the reference run at the tightest tolerance "
                         "(default sn:auto,trust-ncg; quick: trust-ncg)")
    ap.add_argument("--csv", default=None,
                    help="CSV path (default results/real[_quick].csv in the output folder)")
    ap.add_argument("--md", default=None,
                    help="Markdown path (default real[_quick].md in the output folder)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)


def run(ctx, args):
    if args.one is not None:
        return run_one(json.loads(args.one))
    problems = (args.problems.split(",") if args.problems
                else list(QUICK_PROBLEMS if ctx.quick else DEFAULT_PROBLEMS))
    Cs = [float(c) for c in args.C.split(",")] if args.C else ([1.0] if ctx.quick else [1.0, 100.0])
    solvers = (args.solvers.split(",") if args.solvers
               else list(QUICK_SOLVERS if ctx.quick else OURS + PEERS))
    reference = (tuple(args.reference.split(",")) if args.reference
                 else QUICK_REFERENCE if ctx.quick else REFERENCE)
    unknown = sorted(set(solvers) - set(OURS + PEERS))
    if unknown:
        raise SystemExit(f"python -m benchmarks real: unknown solvers {unknown}")
    ladder = (tuple(float(t) for t in args.ladder.split(",")) if args.ladder
              else QUICK_LADDER if ctx.quick else LADDER)
    cap = args.cap or (20.0 if ctx.quick else 300.0)
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mem_bytes = int(args.mem_gb * 2**30) if args.mem_gb else int(0.6 * ram)
    mode = ctx.mode
    csv_path = Path(args.csv) if args.csv else ctx.results / f"real{ctx.suffix}.csv"
    md_path = Path(args.md) if args.md else Path(ctx.root) / f"real{ctx.suffix}.md"
    runner = Runner(cap, args.repeat, mem_bytes, args.blas_threads, args.liblinear_scaling)
    header = (f"Real-data benchmark ({mode}): cap {cap:g} s per fit, fastest of {args.repeat} timed "
              f"fits, BLAS threads {args.blas_threads or 'default'}, address space <= "
              f"{mem_bytes / 2**30:.1f} GiB per run, tolerance ladder "
              f"{', '.join(f'{t:g}' for t in ladder)}, {os.cpu_count()} CPUs.\n")
    print(header, flush=True)
    runs_path = csv_path.with_name(csv_path.stem + "_runs.csv")
    manifests_path = csv_path.with_name(csv_path.stem + "_data.json")
    rows, all_runs, manifests = [], [], {}
    for name in ctx.progress(problems, desc="problems"):
        t0 = time.perf_counter()
        X, y, meta = build_problem(name)
        path = save_problem(name, X, y, meta)
        manifests[name] = meta
        del X, y
        print(f"{name}: n {meta['n']:,} d {meta['d']:,} K {meta['K']} nnz {meta['nnz']:,} "
              f"(prepared in {time.perf_counter() - t0:.1f} s)", flush=True)
        for C in Cs:
            print(f"  C = {C:g}", flush=True)
            new, runs = bench_problem(runner, path, meta, C, solvers_for(solvers, meta["K"]),
                                      ladder, reference)
            rows += new
            all_runs += runs
            for r in rows:
                r.setdefault("cap_s", cap)
                r.setdefault("blas_threads", args.blas_threads or "default")
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            write_csv(csv_path, rows, CSV_COLUMNS)  # after every problem: partial results survive
            write_csv(runs_path, all_runs, RUNS_COLUMNS)
            manifests_path.write_text(json.dumps(manifests, indent=1) + "\n")
    table = markdown(rows, solvers, cap, header)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(table + "\n")
    print("\n" + table)
    print(f"\nwrote {csv_path}, {runs_path}, {manifests_path} and {md_path}")
