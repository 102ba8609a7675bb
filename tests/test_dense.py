"""Dense input as a first-class input: float32 / float64, C / Fortran order, used as given.

(a) no copy: ``DataMatrix(X).dense`` is ``X``'s memory, and fitting an estimator neither copies
nor upcasts ``X`` (buffers compared, and the fit's peak allocations far below ``X``'s size);
(b) float32 input gives the float64 answer within the requested accuracy; (c) every product
against the float64 numpy reference, in both precisions, both memory orders, with the row
blocks, Fortran tiles and row ranges over threads all exercised.
"""

import json
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numba
import numpy as np
import pytest

import sketchnewton as sn
from sketchnewton import _dense
from sketchnewton._kernels.glm import multinomial_pass
from sketchnewton._matrix import DataMatrix, InterceptMatrix
from sketchnewton._validation import check_array_values
from sketchnewton.exceptions import InputError

LAYOUTS = [(np.float32, "C"), (np.float32, "F"), (np.float64, "C"), (np.float64, "F")]
IDS = ["f32-C", "f32-F", "f64-C", "f64-F"]


def _matrix(n, d, dtype, order, seed=0):
    rng = np.random.default_rng(seed)
    return np.array(rng.standard_normal((n, d)), dtype=dtype, order=order)


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


# -- (a) no copy ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,order", LAYOUTS, ids=IDS)
def test_dense_input_is_kept_as_given(dtype, order):
    X = _matrix(50, 7, dtype, order)
    M = DataMatrix(X)
    assert np.shares_memory(M.dense, X) and M.dense.dtype == dtype and M.dtype == dtype
    assert M.dense.flags.f_contiguous == X.flags.f_contiguous
    assert np.shares_memory(InterceptMatrix(M).base.dense, X)
    X.setflags(write=False)  # read-only input (a memory map, a shared buffer) is fine
    assert np.shares_memory(DataMatrix(X).dense, X)


@pytest.mark.parametrize("make,dtype", [
    (lambda X: X[:, ::2], np.float32),                              # strided: copied, own precision
    (lambda X: X.astype(">f4"), np.float32),                        # byte-swapped: made native
    (lambda X: np.round(X * 10).astype(np.int32), np.float64),     # integers: float64
    (lambda X: X > 0, np.float64),                                  # booleans: float64
    (lambda X: X.astype(np.float16), np.float64),
], ids=["strided", "byteswapped", "int", "bool", "float16"])
def test_other_dense_inputs_are_converted(make, dtype):
    X = make(_matrix(40, 8, np.float32, "C"))
    M = DataMatrix(X)
    assert M.dense.dtype == dtype and M.dense.dtype.isnative
    assert M.dense.flags.c_contiguous and not np.shares_memory(M.dense, X)
    np.testing.assert_array_equal(M.dense, np.asarray(X, dtype=np.float64))


@pytest.mark.parametrize("order", ["C", "F"])
def test_non_finite_values_are_found_in_any_chunk(order, monkeypatch):
    monkeypatch.setattr("sketchnewton._validation._FINITE_CHUNK", 64)
    X = _matrix(60, 9, np.float32, order)
    X[57, 8], X[3, 2] = np.nan, np.inf
    with pytest.raises(InputError, match=r"1 NaN, 1 Inf"):
        DataMatrix(X)
    DataMatrix(X, check_finite=False)  # the caller vouches for the values: no scan


def test_finite_check_does_not_overflow():
    """Finite float32 values whose sum overflows are finite (a sum-based check would fail)."""
    X = np.full((2000, 300), np.finfo(np.float32).max, dtype=np.float32)
    check_array_values(X, "X")
    DataMatrix(X)


def _record_data_matrices(monkeypatch):
    seen = []
    init = DataMatrix.__init__

    def spy(self, A, *args, **kwargs):
        init(self, A, *args, **kwargs)
        if not self.is_sparse:
            seen.append(self.dense)

    monkeypatch.setattr(DataMatrix, "__init__", spy)
    return seen


ESTIMATORS = {
    "logistic": (lambda: sn.SketchedLogisticRegression(max_iter=5), lambda X: X[:, 0] > 0),
    "multinomial": (lambda: sn.SketchedLogisticRegression(max_iter=5),
                    lambda X: np.digitize(X[:, 0], [-0.5, 0.5])),
    "poisson": (lambda: sn.SketchedPoissonRegressor(max_iter=5),
                lambda X: np.round(np.exp(0.3 * X[:, 0]))),
    "normalized": (lambda: sn.NormalizedRegressor(max_iter=5),
                   lambda X: np.exp(0.3 * X[:, 0]) / np.exp(0.3 * X[:, 0]).sum()),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
@pytest.mark.parametrize("dtype,order", LAYOUTS, ids=IDS)
def test_estimators_fit_the_callers_buffer(name, dtype, order, monkeypatch):
    make, target = ESTIMATORS[name]
    X = _matrix(400, 6, dtype, order)
    y = target(X)
    seen = _record_data_matrices(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make().fit(X, y)
        est.predict(X)
    assert seen and all(np.shares_memory(D, X) and D.dtype == dtype for D in seen)


def test_cv_folds_keep_float32(monkeypatch):
    """The CV estimator's folds are row subsets (copies), but in the input's precision."""
    X = _matrix(300, 5, np.float32, "F")
    seen = _record_data_matrices(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sn.SketchedLogisticRegressionCV(Cs=2, cv=2, max_iter=5).fit(X, X[:, 0] > 0)
    assert seen and all(D.dtype == np.float32 for D in seen)
    assert any(np.shares_memory(D, X) for D in seen)  # the refit on all rows


@pytest.mark.parametrize("name,bound", [("logistic", 0.5), ("multinomial", 0.8), ("poisson", 0.5)])
def test_fit_allocates_far_less_than_the_data(name, bound):
    """numpy allocations during a fit (and a prediction) on a float32 Fortran-ordered X (50 MB):
    no copy of X (that would be 1x its size, 2x in float64), only the block buffers (2 MiB per
    thread), O(n K) vectors and, for 3 classes, the driver's (3 d)^2 Hessian models (4.5 MB
    each, a few of them at once)."""
    make, target = ESTIMATORS[name]
    X = _matrix(50_000, 250, np.float32, "F")
    y = target(X)
    make().fit(X[:500], y[:500])  # compile the kernels first
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().fit(X, y).predict(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # beyond the share of X: the row blocks, two of 2 MiB per kernel thread
    assert peak < bound * X.nbytes + numba.get_num_threads() * 2 * 2**21, (peak, X.nbytes)


def test_multinomial_state_holds_one_n_by_K_array():
    """The multinomial loss keeps the logits ``Z`` and per-row softmax statistics only (the
    probabilities are formed by row blocks where needed), a Hessian product without its image
    makes no ``n x K`` array (with it: the image ``A V`` alone), and a fit peaks at about one
    and a half (the line search moves ``Z`` in place, CG keeps no image, the sub-sampled
    Hessian reads its rows of ``A`` and ``Z`` where they are; five before, 13 before issue 23's
    rework). tracemalloc counts numpy's allocations: bounds in units of ``n K``
    float64 numbers, plus the block buffers of each kernel thread (three of ~2 MiB: rows of
    ``A``, of ``A V``, of the weights; 0.8 units at this size)."""
    n, d, K = 20_000, 32, 50
    X = _matrix(n, d, np.float32, "C")
    rng = np.random.default_rng(3)
    y = np.argmax(X @ rng.standard_normal((d, K)) + 3.0 * rng.gumbel(size=(n, K)), axis=1)
    unit, slack = n * K * 8, numba.get_num_threads() * 3 * 2**21
    loss = sn.losses.MultinomialLoss(X, y, K, lam=1.0, fit_intercept=True)
    x = 0.01 * rng.standard_normal(loss.n_params)
    v = rng.standard_normal(loss.n_params)
    loss.hessp_with_image(loss.evaluate(x), v)  # compile the kernels first
    loss.hessp(loss.evaluate(x), v), loss.value(x)
    make = lambda: sn.SketchedLogisticRegression(C=1.0, tol=1e-8, random_state=0)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make().fit(X[:2000], y[:2000])
        tracemalloc.start()
        try:
            state = loss.evaluate(x)
            held, peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            hv = loss.hessp(state, v)
            product_peak = tracemalloc.get_traced_memory()[1] - held
            tracemalloc.reset_peak()
            hv, image = loss.hessp_with_image(state, v)
            image_peak = tracemalloc.get_traced_memory()[1] - held
            del image
            tracemalloc.reset_peak()
            value = loss.value(x)
            value_peak = tracemalloc.get_traced_memory()[1] - held
            del state, hv
            tracemalloc.reset_peak()
            est = make().fit(X, y)
            fit_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert est.result_.success
    assert value == loss.forward(x).fun
    assert 1.0 * unit < held < 1.1 * unit, held / unit  # Z and the rows' statistics
    assert peak < 1.2 * unit + slack, peak / unit
    assert product_peak < 0.1 * unit + slack, product_peak / unit
    assert image_peak < 1.1 * unit + slack, image_peak / unit  # the image A V
    assert value_peak < 0.1 * unit + slack, value_peak / unit
    assert fit_peak < 1.5 * unit + slack, fit_peak / unit  # measured 2.14 on one thread


_PEAK_SCRIPT = textwrap.dedent(r'''
    import json, resource, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import sketchnewton as sn
    rng = np.random.default_rng(0)
    X = np.empty((40_000, 500), dtype=np.float32, order="F")
    for j in range(0, 500, 50):
        X[:, j:j + 50] = rng.standard_normal((40_000, 50))
    y = X[:, 0] + 0.5 * rng.standard_normal(40_000) > 0
    sn.SketchedLogisticRegression(max_iter=3).fit(X[:200], y[:200])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sn.SketchedLogisticRegression(C=1.0).fit(X, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(dict(extra=(peak - base) * 1024, data=X.nbytes)))
''')


def test_fit_peak_memory_in_a_fresh_process():
    """Peak resident memory of a fit on a float32 F-ordered X (80 MB): far below X's size (a
    float64 copy would add 160 MB, a float32 C copy 80 MB)."""
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["extra"] < 0.4 * r["data"], r


# -- (b) float32 input gives the float64 answer --------------------------------------------------
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("make,target", [
    (lambda: sn.SketchedLogisticRegression(C=10.0, tol=1e-10, random_state=0),
     lambda X, r: X @ np.linspace(-1, 1, X.shape[1]) + r.logistic(size=X.shape[0]) > 0),
    (lambda: sn.SketchedLogisticRegression(C=10.0, tol=1e-10, random_state=0),
     lambda X, r: np.digitize(X[:, 0] - X[:, 1] + r.logistic(size=X.shape[0]), [-1, 1])),
    (lambda: sn.SketchedPoissonRegressor(alpha=1e-3, tol=1e-10, random_state=0),
     lambda X, r: r.poisson(np.exp(0.2 * X @ np.linspace(-1, 1, X.shape[1])))),
], ids=["logistic", "multinomial", "poisson"])
def test_float32_fit_equals_float64_fit(make, target, order):
    rng = np.random.default_rng(3)
    X32 = _matrix(3000, 12, np.float32, order, seed=4)
    y = target(X32.astype(np.float64), rng)
    e32, e64 = make().fit(X32, y), make().fit(X32.astype(np.float64), y)
    c32 = np.r_[np.ravel(e32.coef_), np.ravel(e32.intercept_)]
    c64 = np.r_[np.ravel(e64.coef_), np.ravel(e64.intercept_)]
    assert _rel(c32, c64) < 1e-8
    np.testing.assert_allclose(e32.predict(X32), e64.predict(X32.astype(np.float64)), rtol=1e-10)


@pytest.mark.parametrize("method,n,d", [("exact", 800, 30), ("pcg", 3000, 30), ("cg", 3000, 30),
                                         ("sketch", 3000, 30), ("dual", 150, 400)])
def test_float32_logistic_methods_equal_float64(method, n, d):
    """Each Newton method (the dual one through ``outer_gram``) on float32 Fortran-ordered data."""
    X32 = _matrix(n, d, np.float32, "F", seed=7)
    y = X32[:, 0] + X32[:, 1] > 0
    kw = dict(C=1.0, tol=1e-11, method=method, random_state=0, max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sketch method's linear rate may stop at max_iter
        e32 = sn.SketchedLogisticRegression(**kw).fit(X32, y)
        e64 = sn.SketchedLogisticRegression(**kw).fit(X32.astype(np.float64), y)
    assert e32.result_.method == method
    assert _rel(e32.coef_, e64.coef_) < 1e-8


@pytest.mark.parametrize("method", ["exact", "pcg", "cg", "sketch"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_float32_solve_within_eps_of_float64(method, order):
    rng = np.random.default_rng(5)
    A32 = np.asarray(_matrix(4000, 20, np.float32, order, seed=6) / np.sqrt(20), order=order,
                     dtype=np.float32)
    b = rng.uniform(0.5, 1.5, 4000)
    b /= b.sum()
    eps = 1e-6
    kw = dict(method=method, random_state=0, max_iter=200)
    r32 = sn.solve(A32, b, eps, **kw)
    r64 = sn.solve(A32.astype(np.float64), b, eps, **kw)
    assert np.linalg.norm(r32.x - r64.x) <= eps


# -- (c) every product against the float64 reference ---------------------------------------------
def _operands(n, d, k, seed=1):
    rng = np.random.default_rng(seed)
    return dict(x=rng.standard_normal(d), y=rng.standard_normal(n),
                X=rng.standard_normal((d, k)), Y=rng.standard_normal((n, k)),
                h=rng.uniform(0, 1, n), w=rng.standard_normal(n),
                P=rng.dirichlet(np.ones(k), n), sw=rng.uniform(0, 1, n),
                rows=rng.integers(0, n, n // 3), V=rng.standard_normal((d + 1, k)))


def _references(R, o):
    n, d = R.shape
    R1 = np.column_stack([R, np.ones(n)])
    Rr, h_r = R1[o["rows"]], o["h"][:len(o["rows"])]
    AV = R1 @ o["V"]
    s = np.einsum("nk,nk->n", o["P"], AV)
    Mh = o["sw"][:, None] * o["P"] * (AV - s[:, None])
    R2 = R ** 2
    cb = (np.einsum("ij,ik,i->jk", R2, o["P"], o["sw"])[:, :, None] * np.eye(o["P"].shape[1])
          - np.einsum("ij,ik,il,i->jkl", R2, o["P"], o["P"], o["sw"]))
    return {
        "matvec": R @ o["x"], "rmatvec": R.T @ o["y"], "matmat": R @ o["X"],
        "rmatmat": R.T @ o["Y"], "gram": R.T @ (o["h"][:, None] * R),
        "gram_signed": R.T @ (o["w"][:, None] * R),
        "gram_rows_ones": Rr.T @ (h_r[:, None] * Rr),
        "normal_matvec": R1.T @ (o["h"] * (R1 @ o["V"][:, 0])),
        "normal_image": R1 @ o["V"][:, 0],
        "multinomial_hessp": R1.T @ Mh, "multinomial_image": AV,
        "outer_gram": R @ R.T,
        "weighted_col_sq": np.r_[R2.T @ o["h"], o["h"].sum()],
        "class_blocks": cb, "abs_rmatmat": np.abs(R).T @ o["Y"], "rmatmat_rows": R1.T @ o["Y"],
    }


def _products(M, o, precise):
    I1 = InterceptMatrix(M)
    nm = I1.normal_matvec(o["h"], o["V"][:, 0], precise=precise)
    n = o["P"].shape[0]
    Z, stats = np.log(o["P"]), np.empty((n, 2))
    multinomial_pass(Z, np.zeros(n, dtype=np.int64), np.ones(n), stats)  # softmax(Z) = P
    mh = I1.multinomial_hessp(Z, stats, o["sw"], o["V"], precise=precise)
    return {
        "matvec": M.matvec(o["x"], precise=precise), "rmatvec": M.rmatvec(o["y"], precise=precise),
        "matmat": M.matmat(o["X"], precise=precise), "rmatmat": M.rmatmat(o["Y"], precise=precise),
        "gram": M.gram(o["h"], precise=precise), "gram_signed": M.gram(o["w"], precise=precise),
        "gram_rows_ones": I1.gram(o["h"][:len(o["rows"])], rows=o["rows"], precise=precise),
        "normal_matvec": nm[0], "normal_image": nm[1],
        "multinomial_hessp": mh[0], "multinomial_image": mh[1],
        "outer_gram": M.outer_gram(precise=precise),
        "weighted_col_sq": M.weighted_col_sq(o["h"], ones=True),
        "class_blocks": M.class_blocks(o["P"], o["sw"]), "abs_rmatmat": M.abs_rmatmat(o["Y"]),
        "rmatmat_rows": I1.rmatmat_rows(lambda a, b, out: np.copyto(out, o["Y"][a:b]) or out,
                                        o["Y"].shape[1], precise=precise),
    }


BLOCKINGS = {
    "default": {},
    # many row blocks and Fortran tiles narrower than the matrix, over two row ranges
    "small-blocks": {"_ROW_BLOCK_BYTES": 8 * 7 * 13, "_F_TILE_ROWS": 50, "_F_TILE_MIN_COLS": 4,
                     "_FAST_ROWS": 64, "PARALLEL_MIN_NNZ": 0},
}


@pytest.mark.parametrize("blocking", list(BLOCKINGS))
@pytest.mark.parametrize("dtype,order", LAYOUTS, ids=IDS)
def test_products_match_float64_reference(dtype, order, blocking, monkeypatch):
    for name, value in BLOCKINGS[blocking].items():
        monkeypatch.setattr(_dense, name, value)
    A = _matrix(700, 23, dtype, order)
    keep = A.copy()
    R = A.astype(np.float64)
    o = _operands(*A.shape, k=3)
    ref = _references(R, o)
    M = DataMatrix(A)
    for precise, tol in ((True, 1e-13), (False, 1e-5 if dtype == np.float32 else 1e-13)):
        got = _products(M, o, precise)
        for key, expect in ref.items():
            assert np.asarray(got[key]).dtype == np.float64, key
            assert _rel(got[key], expect) < tol, (key, precise, _rel(got[key], expect))
    np.testing.assert_array_equal(A, keep)  # the caller's matrix is never written


def test_float32_mode_is_float32_accurate_only():
    """``precise=False`` on float32 data really is float32 BLAS (errors ~1e-7, not 1e-16), and
    the default is the float64 product."""
    A = _matrix(2000, 300, np.float32, "C")
    R = A.astype(np.float64)
    x = np.random.default_rng(2).standard_normal(300)
    M = DataMatrix(A)
    assert _rel(M.matvec(x), R @ x) < 1e-14
    assert 1e-9 < _rel(M.matvec(x, precise=False), R @ x) < 1e-5


@pytest.mark.parametrize("order", ["C", "F"])
def test_products_allocate_blocks_not_a_float64_copy(order):
    """numpy allocations of the precise products of a float32 matrix: cache-sized buffers and the
    outputs, never the (n, d) float64 copy (numpy's own ``A32 @ x64`` makes one)."""
    A = _matrix(80_000, 100, np.float32, order)
    M = DataMatrix(A)
    o = _operands(*A.shape, k=4)
    calls = [lambda: M.matvec(o["x"]), lambda: M.rmatvec(o["y"]), lambda: M.matmat(o["X"]),
             lambda: M.rmatmat(o["Y"]), lambda: M.gram(o["h"]),
             lambda: M.normal_matvec(o["h"], o["x"]), lambda: M.weighted_col_sq(o["h"]),
             lambda: M.class_blocks(o["P"], o["sw"]), lambda: M.abs_rmatmat(o["Y"]),
             lambda: M.gram(o["h"][:5000], rows=o["rows"][:5000])]
    for call in calls:
        call()
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 0.5 * A.nbytes, (call, peak, A.nbytes)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multinomial_row_subset_gathers_its_rows(order, dtype):
    """The sub-sampled multinomial loss on dense data reads its rows, and its state the full
    state's logits, where they are (no copy): its Hessian products, gradient and Gram equal
    those of the loss on a copy of the rows."""
    X = _matrix(3000, 12, dtype, order)
    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 3000)
    loss = sn.losses.MultinomialLoss(X, y, 4, lam=0.5, fit_intercept=True)
    rows = np.sort(rng.choice(3000, 700, replace=False))
    sub = loss.row_subset(rows, 3000 / 700)
    ref = sn.losses.MultinomialLoss(np.ascontiguousarray(X[rows]), y[rows], 4, lam=0.5,
                                    fit_intercept=True, sample_weight=np.full(700, 3000 / 700))
    assert sub.A.base.__class__.__name__ == "GatheredRows"
    x, v = 0.1 * rng.standard_normal(loss.n_params), rng.standard_normal(loss.n_params)
    s, r = sub.evaluate(x), ref.evaluate(x)
    np.testing.assert_allclose(s.grad, r.grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sub.hessp(s, v), ref.hessp(r, v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sub.hessian(s), ref.hessian(r), rtol=1e-12, atol=1e-12)
    # the sample's state read from the full state's logits (no m x K copy): the same numbers
    viewed = loss.subset_state(sub, loss.evaluate(x), rows)
    assert viewed.handles[0].Z.nbytes == 0
    assert viewed.fun == pytest.approx(r.fun, rel=1e-13)
    np.testing.assert_allclose(sub.hessp(viewed, v), ref.hessp(r, v), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sub.hessian(viewed), ref.hessian(r), rtol=1e-12, atol=1e-12)
