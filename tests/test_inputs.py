"""The caller's matrices are never modified, and corrupt sparse structures are refused (issue 18,
items 1 and 10).

Item 1: a non-canonical CSR (unsorted indices, duplicates) used to be canonicalised in place;
with float32 or integer data (whose values are converted to a private float64 array while the
indices were shared) the caller's indices were sorted under values that were not, scrambling
the matrix. Every entry point that accepts a matrix must leave the caller's ``data``,
``indices`` and ``indptr`` bit-identical (integers, and the very same floats: exact equality is
the right comparison here).

Item 10: out-of-range or negative indices or a corrupt ``indptr`` crashed the interpreter
inside a kernel (or inside scipy's own CSC/COO -> CSR conversion). They must raise a clear
:class:`InputError`; checked in a subprocess, so that a crash fails the test instead of ending
the test run.
"""

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton.losses import (
    LogisticLoss,
    MultinomialLoss,
    NormalizedRegressionLoss,
    PoissonLoss,
)
from sketchnewton.sketch import leverage_scores, sketch_gram, sketch_rows

N, D = 90, 5
DTYPES = [np.float64, np.float32, np.int64, np.int32, np.bool_]


def _compressed(n_major, n_minor, per_line, dtype, rng):
    """``(data, indices, indptr)`` of ``n_major`` lines, each with ``per_line`` distinct minor
    indices in descending order (unsorted), every third line with a duplicate, and every minor
    index used."""
    indptr, indices = [0], []
    for i in range(n_major):
        idx = np.sort(rng.choice(n_minor, size=per_line, replace=False))[::-1]
        if i % 3 == 0:
            idx = np.r_[idx, idx[0]]
        idx = np.r_[idx, i % n_minor]
        indices.extend(idx.tolist())
        indptr.append(len(indices))
    data = rng.integers(1, 4, len(indices)).astype(dtype)
    return data, np.asarray(indices, np.int32), np.asarray(indptr, np.int32)


def non_canonical(fmt="csr", dtype=np.float64, seed=0):
    """An N x D matrix in ``fmt`` with unsorted indices and duplicates."""
    rng = np.random.default_rng(seed)
    if fmt == "csc":
        M = sp.csc_matrix(_compressed(D, N, 20, dtype, rng), shape=(N, D))
    else:
        M = sp.csr_matrix(_compressed(N, D, 3, dtype, rng), shape=(N, D))
        if fmt == "csr_array":
            M = sp.csr_array(M)
        elif fmt == "coo":
            rows = np.repeat(np.arange(N), np.diff(M.indptr))
            M = sp.coo_matrix((M.data, (rows, M.indices)), shape=(N, D))
    assert fmt == "coo" or not M.has_canonical_format
    return M


def snapshot(M):
    """Copies of every array the caller owns."""
    if M.format == "coo":
        return {"data": M.data.copy(), "row": M.row.copy(), "col": M.col.copy()}
    return {"data": M.data.copy(), "indices": M.indices.copy(), "indptr": M.indptr.copy(),
            "dtype": M.dtype}


def assert_unchanged(M, before):
    for key, old in before.items():
        if key == "dtype":
            assert M.dtype == old
            continue
        new = getattr(M, key)
        assert new.dtype == old.dtype, key
        assert np.array_equal(new, old), f"{key} was modified"


def _targets():
    rng = np.random.default_rng(1)
    b = rng.uniform(0.5, 1.5, N)
    return b / b.sum(), np.arange(N) % 2, np.arange(N) % 3, rng.poisson(1.0, N).astype(float)


B, Y2, Y3, COUNTS = _targets()


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


PATHS = {
    "solve-exact": lambda M: sn.solve(M, B, 1e-6, method="exact", max_iter=3),
    "solve-pcg": lambda M: sn.solve(M, B, 1e-6, method="pcg", max_iter=3, random_state=0),
    "solve-sketch": lambda M: sn.solve(M, B, 1e-6, method="sketch", sketch="countsketch",
                                       max_iter=3, random_state=0),
    "solve-cg": lambda M: sn.solve(M, B, 1e-6, method="cg", max_iter=3, random_state=0),
    "minimize": lambda M: sn.minimize(NormalizedRegressionLoss(M, B), tol=1e-8, max_iter=3),
    "NormalizedRegressionLoss": lambda M: NormalizedRegressionLoss(M, B).loss_gradient(np.zeros(D)),
    "LogisticLoss": lambda M: LogisticLoss(M, Y2, fit_intercept=True).loss_gradient(
        np.zeros(D + 1)),
    "MultinomialLoss": lambda M: MultinomialLoss(M, Y3, 3).loss_gradient(np.zeros(3 * D)),
    "PoissonLoss": lambda M: PoissonLoss(M, COUNTS).loss_gradient(np.zeros(D)),
    "SketchedLogisticRegression": lambda M: sn.SketchedLogisticRegression(max_iter=3).fit(
        M, Y2).predict_proba(M),
    "SketchedLogisticRegression-multinomial": lambda M: sn.SketchedLogisticRegression(
        max_iter=3).fit(M, Y3).predict(M),
    "SketchedPoissonRegressor": lambda M: sn.SketchedPoissonRegressor(max_iter=3).fit(
        M, COUNTS).predict(M),
    "NormalizedRegressor": lambda M: sn.NormalizedRegressor(max_iter=3).fit(M, B).predict(M),
    "leverage_scores-approx": lambda M: leverage_scores(M, random_state=0),
    "leverage_scores-exact": lambda M: leverage_scores(M, method="exact"),
    "sketch_gram-leverage": lambda M: sketch_gram(M, sketch_size=20, random_state=0),
    "sketch_gram-countsketch": lambda M: sketch_gram(M, sketch_size=20, method="countsketch",
                                                     random_state=0),
    "sketch_rows": lambda M: sketch_rows(M, sketch_size=20, dense=True, random_state=0),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("path", list(PATHS))
def test_caller_matrix_is_never_modified(path, dtype):
    M = non_canonical("csr", dtype)
    before = snapshot(M)
    _quiet(lambda: PATHS[path](M))
    assert_unchanged(M, before)


@pytest.mark.parametrize("fmt", ["csr_array", "csc", "coo"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("path", ["solve-exact", "LogisticLoss", "SketchedLogisticRegression",
                                  "leverage_scores-approx", "sketch_gram-leverage"])
def test_other_sparse_formats_are_never_modified(path, dtype, fmt):
    M = non_canonical(fmt, dtype)
    before = snapshot(M)
    _quiet(lambda: PATHS[path](M))
    assert_unchanged(M, before)


def test_dense_and_float32_dense_are_never_modified():
    for dtype in (np.float64, np.float32, np.int64):
        M = non_canonical("csr", dtype).toarray()
        keep = M.copy()
        for path in ("solve-exact", "LogisticLoss", "SketchedLogisticRegression",
                     "leverage_scores-exact", "sketch_gram-countsketch"):
            _quiet(lambda: PATHS[path](M))
            assert np.array_equal(M, keep), (dtype, path)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=lambda t: np.dtype(t).name)
def test_dask_blocks_are_never_modified(dtype, monkeypatch):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")

    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", no_client)  # in-process scheduler
    blocks = [non_canonical("csr", dtype, seed=s) for s in (0, 1)]
    befores = [snapshot(M) for M in blocks]
    Ad = da.concatenate([da.from_array(M, chunks=M.shape, asarray=False) for M in blocks])
    b = np.r_[B, B] / 2
    _quiet(lambda: sn.solve(Ad, da.from_array(b, chunks=N), 1e-6, method="exact", max_iter=3))
    _quiet(lambda: sn.SketchedLogisticRegression(max_iter=3).fit(
        Ad, da.from_array(np.r_[Y2, Y2], chunks=N)))
    for M, before in zip(blocks, befores):
        assert_unchanged(M, before)


def test_results_equal_the_canonical_matrix():
    """The private canonical copy is the matrix the caller meant (duplicates summed)."""
    for dtype in (np.float64, np.float32, np.int64):
        M = non_canonical("csr", dtype)
        C = M.astype(np.float64).toarray()  # toarray sums duplicates
        r1 = _quiet(lambda: sn.solve(M, B, 1e-6, method="exact", max_iter=3))
        r2 = _quiet(lambda: sn.solve(C, B, 1e-6, method="exact", max_iter=3))
        np.testing.assert_allclose(r1.x, r2.x, rtol=1e-12, atol=1e-14)


# -- item 10: corrupt structures --------------------------------------------------------------
_CORRUPT_SCRIPT = textwrap.dedent(r'''
    import json, sys, warnings
    import numpy as np, scipy.sparse as sp
    warnings.simplefilter("ignore")
    import sketchnewton as sn
    from sketchnewton.losses import (LogisticLoss, MultinomialLoss, NormalizedRegressionLoss,
                                     PoissonLoss)
    from sketchnewton.sketch import leverage_scores, sketch_gram

    n, d = 6, 3
    good = dict(data=[1., 2, 3, 4, 5, 6, 7], indices=[0, 1, 2, 0, 1, 2, 0],
                indptr=[0, 2, 3, 4, 5, 6, 7])
    corrupt = {
        "index_out_of_range": dict(good, indices=[0, 1, 2, 0, 1, 10**6, 0]),
        "index_just_past_end": dict(good, indices=[0, 1, 2, 0, 1, 3, 0]),
        "negative_index": dict(good, indices=[0, 1, -5, 0, 1, 2, 0]),
        "indptr_decreasing": dict(good, indptr=[0, 4, 3, 4, 5, 6, 7]),
        "indptr_past_end": dict(good, indptr=[0, 2, 3, 4, 5, 6, 90]),
        "indptr_not_from_zero": dict(good, indptr=[2, 2, 3, 4, 5, 6, 7]),
        "values_shorter": dict(good, data=[1., 2, 3]),
    }

    def build(fmt, c):
        if fmt == "coo":
            M = sp.coo_matrix(sp.csr_matrix((good["data"], good["indices"], good["indptr"]),
                                            shape=(n, d)))
            M.col = np.asarray(c["indices"], dtype=M.col.dtype)
            if len(c["data"]) != len(good["data"]):
                M.data = np.asarray(c["data"])
            return M
        cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
        shape = (n, d) if fmt == "csr" else (d, n)
        M = cls(shape)  # assigned afterwards: scipy's constructor would check some of it
        M.data = np.asarray(c["data"], dtype=float)
        M.indices = np.asarray(c["indices"], dtype=np.int32)
        M.indptr = np.asarray(c["indptr"], dtype=np.int32)
        return M  # a CSC of shape (d, n): its row indices are the corrupt ones

    y2, y3 = np.arange(n) % 2, np.arange(n) % 3
    entries = {
        "solve": lambda M: sn.solve(M, np.ones(M.shape[0]) / M.shape[0], max_iter=2),
        "NormalizedRegressionLoss": lambda M: NormalizedRegressionLoss(M, np.ones(M.shape[0])),
        "LogisticLoss": lambda M: LogisticLoss(M, np.arange(M.shape[0]) % 2),
        "MultinomialLoss": lambda M: MultinomialLoss(M, np.arange(M.shape[0]) % 3, 3),
        "PoissonLoss": lambda M: PoissonLoss(M, np.ones(M.shape[0])),
        "SketchedLogisticRegression": lambda M: sn.SketchedLogisticRegression(max_iter=2).fit(
            M, np.arange(M.shape[0]) % 2),
        "SketchedPoissonRegressor": lambda M: sn.SketchedPoissonRegressor(max_iter=2).fit(
            M, np.ones(M.shape[0])),
        "NormalizedRegressor": lambda M: sn.NormalizedRegressor(max_iter=2).fit(
            M, np.ones(M.shape[0]) / M.shape[0]),
        "predict": lambda M: sn.SketchedLogisticRegression(max_iter=2).fit(
            np.eye(M.shape[0], M.shape[1]) + 1.0, np.arange(M.shape[0]) % 2).predict(M),
        "leverage_scores": lambda M: leverage_scores(M),
        "sketch_gram": lambda M: sketch_gram(M, sketch_size=4),
    }
    for fmt in sys.argv[1].split(","):
        for cname, c in corrupt.items():
            if fmt == "coo" and cname.startswith("indptr"):
                continue
            for ename, fn in entries.items():
                print(json.dumps([fmt, cname, ename, "start"]), flush=True)
                try:
                    fn(build(fmt, c))
                    out = "no error"
                except Exception as exc:
                    out = type(exc).__name__ + ": " + str(exc)
                print(json.dumps([fmt, cname, ename, out]), flush=True)
''')


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_corrupt_structure_is_refused_not_a_crash(fmt):
    proc = subprocess.run([sys.executable, "-c", _CORRUPT_SCRIPT, fmt], capture_output=True,
                          text=True, timeout=600)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("[")]
    assert proc.returncode == 0, f"crashed (rc {proc.returncode}) at {lines[-1] if lines else None}" \
        f"\n{proc.stderr[-2000:]}"
    results = [line for line in lines if line[3] != "start"]
    assert len(results) >= 40
    for fmt_, cname, ename, out in results:
        assert out.startswith("InputError: "), (fmt_, cname, ename, out)
        assert "corrupt" in out and len(out) < 300, (fmt_, cname, ename, out)
