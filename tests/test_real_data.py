"""Real data of the benchmarks: LIBSVM sets, the code corpus, the independent objective, the harness."""

import csv
import hashlib
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from benchmarks.studies.real import Objective, parse_problem  # noqa: E402
from benchmarks.real_data import LIBSVM, libsvm_raw_bytes, load_libsvm, make_code_corpus  # noqa: E402

MANIFEST_FIELDS = ("package_versions", "files_per_package", "n", "p", "nnz", "class_counts",
                   "documents_sha256", "classes", "params", "windows_per_package")


@pytest.mark.parametrize("name", ["a9a", "w8a"])
def test_libsvm_sets_have_documented_shape_and_md5(name):
    info = LIBSVM[name]
    assert hashlib.md5(libsvm_raw_bytes(name)).hexdigest() == info["md5"]
    X, y = load_libsvm(name)
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float64
    assert X.shape == (info["n"], info["d"])
    assert X.nnz == info["nnz"]
    assert set(np.unique(y)) == {-1, 1}
    assert int(np.sum(y == 1)) == info["positives"]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("corpus-cache")


def test_code_corpus_is_deterministic_and_described(corpus_dir):
    X1, y1, m1 = make_code_corpus(300, 2**10, n_classes=3, random_state=0, cache_dir=corpus_dir)
    X2, y2, m2 = make_code_corpus(300, 2**10, n_classes=3, random_state=0, cache_dir=corpus_dir)
    assert not m1["cache_hit"] and m2["cache_hit"]
    for f in MANIFEST_FIELDS:
        assert f in m1, f
    assert m1["documents_sha256"] == m2["documents_sha256"]
    assert (X1 != X2).nnz == 0 and np.array_equal(y1, y2)
    assert X1.format == "csr" and X1.dtype == np.float64 and X1.shape == (300, 2**10)
    assert (m1["n"], m1["p"], m1["nnz"]) == (300, 2**10, X1.nnz)
    assert len(m1["classes"]) == 3 and set(np.unique(y1)) <= {0, 1, 2}
    assert sum(m1["class_counts"].values()) == 300
    assert set(m1["package_versions"]) == set(m1["classes"])
    norms = np.sqrt(np.asarray(X1.multiply(X1).sum(axis=1)).ravel())
    assert np.allclose(norms[norms > 0], 1.0)            # tf-idf rows are l2-normalised
    _, _, m3 = make_code_corpus(300, 2**10, n_classes=3, random_state=1, cache_dir=corpus_dir)
    assert m3["documents_sha256"] != m1["documents_sha256"]
    Xb, yb, mb = make_code_corpus(200, 2**9, n_classes=3, binary=True, random_state=0,
                                  cache_dir=corpus_dir)
    assert set(np.unique(yb)) <= {0, 1} and mb["classes"][1] == m1["classes"][0]
    assert Xb.shape == (200, 2**9)


def _problem(binary, seed=0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=400, n_features=12, n_informative=6,
                               n_classes=2 if binary else 4, random_state=seed)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < 0.5] = 0.0  # sparse
    return sp.csr_matrix(X), y


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("C", [1.0, 100.0])
def test_objective_agrees_with_scikit_learn(binary, C):
    from sklearn.linear_model import LogisticRegression

    X, y = _problem(binary)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
    obj = Objective(X, y, C)
    x = obj.pack(est.coef_, est.intercept_)
    f = obj.fun(x)
    g = obj.grad(x)
    g0 = obj.grad(np.zeros_like(x))
    assert np.linalg.norm(g) <= 1e-6 * np.linalg.norm(g0)   # sklearn's optimum is ours
    rng = np.random.default_rng(1)
    for _ in range(5):
        v = rng.standard_normal(x.size)
        assert obj.fun(x + 1e-3 * v) >= f
        # exact Hessian-vector product against central differences of the gradient
        h = 1e-5
        fd = (obj.grad(x + h * v) - obj.grad(x - h * v)) / (2 * h)
        assert np.linalg.norm(obj.hessp(x, v) - fd) <= 1e-5 * np.linalg.norm(fd)
        # gradient against central differences of the objective, away from the optimum
        z = 0.5 * x + 0.1 * rng.standard_normal(x.size)
        fd1 = (obj.fun(z + h * v) - obj.fun(z - h * v)) / (2 * h)
        assert abs(fd1 - obj.grad(z) @ v) <= 1e-5 * abs(fd1)


def test_glum_alpha_scaling_is_the_same_objective():
    glum = pytest.importorskip("glum")
    from sklearn.linear_model import LogisticRegression

    X, y = _problem(True, seed=3)
    C = 10.0
    obj = Objective(X, y, C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
        est = glum.GeneralizedLinearRegressor(family="binomial", alpha=1.0 / (X.shape[0] * C),
                                              l1_ratio=0.0, fit_intercept=True,
                                              gradient_tol=1e-12).fit(X, (y == 1).astype(float))
    f_ref = obj.loss_of(ref.coef_, ref.intercept_)
    f_glum = obj.loss_of(np.asarray(est.coef_)[None, :], np.atleast_1d(est.intercept_))
    assert abs(f_glum - f_ref) <= 1e-9 * abs(f_ref)
    # a wrong scaling (alpha = 1/C, i.e. no 1/n) is visibly a different problem
    est2 = glum.GeneralizedLinearRegressor(family="binomial", alpha=1.0 / C, l1_ratio=0.0,
                                           fit_intercept=True).fit(X, (y == 1).astype(float))
    assert obj.loss_of(np.asarray(est2.coef_)[None, :], np.atleast_1d(est2.intercept_)) > f_ref * (1 + 1e-3)


def test_problem_names_parse():
    s = parse_problem("code-K8-n1e5-p2^16-w8")
    assert (s["n_classes"], s["n_docs"], s["n_features"], s["window"], s["binary"]) == \
        (8, 100_000, 65_536, 8, False)
    s = parse_problem("code-bin-n1e4-p4096")
    assert s["binary"] and s["n_classes"] == 8 and s["window"] == 8 and s["n_features"] == 4096
    assert parse_problem("a9a@2000")["subset"] == 2000


def _run_bench(tmp_path, *extra):
    csv_path, md_path = tmp_path / "real.csv", tmp_path / "real.md"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "real", *extra,
                           "--csv", str(csv_path), "--md", str(md_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    return rows, md_path.read_text()


class _FakeRunner:
    """Stands in for the process runner: objective ``1 + err(solver, tol)``, no processes."""

    cap = 10.0

    def __init__(self, errors):
        self.errors, self.calls = errors, []

    def run(self, path, solver, C, tol):
        self.calls.append((solver, tol))
        err = self.errors[solver](tol)
        if err is None:
            return dict(solver=solver, C=C, tol=tol, timed_out=True, error=None, time=float("inf"),
                        objective=float("nan"))
        return dict(solver=solver, C=C, tol=tol, timed_out=False, error=None, time=1.0 / tol ** 0.1,
                    objective=1.0 + err, n_iter=1, method=solver, passes=1.0)


@pytest.mark.parametrize("reference", [(), ("sn:auto",)])
def test_ladder_credits_the_loosest_tolerance_reaching_the_gap(reference):
    from benchmarks.studies.real import LADDER, bench_problem

    meta = dict(name="fake", n=10, d=2, K=2, p=2, nnz=20, data_sha256="0" * 64)
    runner = _FakeRunner({
        "sn:auto": lambda t: 0.0 if t <= 1e-8 else t,      # exact at 1e-8
        "lbfgs": lambda t: 10 * t,                          # gap 1e-9 at 1e-10
        "newton-cholesky": lambda t: t if t >= 1e-6 else None,  # times out below 1e-6
        "glum": lambda t: 1e-6,                             # stalls: never reaches the gap
    })
    summary, runs = bench_problem(runner, "unused", meta, 1.0,
                                  ["sn:auto", "lbfgs", "newton-cholesky", "glum"], LADDER, reference)
    rows = {r["solver"]: r for r in summary}
    assert len(runs) == len(runner.calls)  # every run is listed once
    assert rows["sn:auto"]["status"] == "ok" and rows["sn:auto"]["tol"] == 1e-8
    assert rows["lbfgs"]["status"] == "ok" and rows["lbfgs"]["tol"] == 1e-10
    assert rows["newton-cholesky"]["status"] == "timeout"
    assert rows["glum"]["status"] == "gap not reached" and rows["glum"]["tol"] == 1e-12
    assert rows["sn:auto"]["f_best"] == 1.0
    # no peer reached the gap before lbfgs: the ratio uses the fastest peer that did
    assert rows["sn:auto"]["speedup_fastest_peer_over_auto"] == pytest.approx(
        rows["lbfgs"]["time_s"] / rows["sn:auto"]["time_s"])
    # every tolerance is tried at most once per solver
    assert len(runner.calls) == len(set(runner.calls))
    per_solver = {}
    for s, t in runner.calls:
        per_solver.setdefault(s, []).append(t)
    assert per_solver["newton-cholesky"] == [1e-4, 1e-6, 1e-8]


@pytest.mark.slow
def test_bench_real_runs_end_to_end_small(tmp_path):
    rows, md = _run_bench(tmp_path, "--problems", "a9a@500", "--C", "1", "--solvers",
                          "sn:auto,trust-ncg", "--ladder", "1e-4,1e-10", "--reference", "trust-ncg",
                          "--repeat", "1", "--cap", "60")
    assert {r["solver"] for r in rows} == {"sn:auto", "trust-ncg"}
    for r in rows:
        assert r["status"] == "ok", r
        assert float(r["rel_gap"]) <= 1e-8
        assert float(r["peak_rss_mb"]) > 0 and float(r["time_s"]) > 0
    auto = next(r for r in rows if r["solver"] == "sn:auto")
    assert auto["method"] in ("exact", "pcg", "sketch")
    assert float(auto["speedup_fastest_peer_over_auto"]) > 0
    assert "| a9a@500 |" in md


@pytest.mark.slow
def test_bench_real_quick_mode(tmp_path):
    rows, md = _run_bench(tmp_path, "--quick")
    problems = {r["problem"] for r in rows}
    assert len(problems) == 2
    solvers = {r["solver"] for r in rows}
    assert {"sn:auto", "lbfgs", "newton-cholesky", "trust-ncg", "liblinear", "glum"} <= solvers
    for r in rows:
        assert r["status"] in ("ok", "timeout", "error", "gap not reached"), r
        if r["status"] == "ok":
            assert float(r["rel_gap"]) <= 1e-8
    # liblinear and glum are binary only
    multi = [r for r in rows if r["kind"].startswith("multinomial")]
    assert multi and not {"liblinear", "glum"} & {r["solver"] for r in multi}
