"""SketchedPoissonRegressor: same minimiser as scikit-learn's PoissonRegressor on real count data
and a generated problem, scikit-learn's estimator checks, weights, predict / score, input errors,
glum's alpha scaling, and the benchmark's quick mode (slow)."""

import csv
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits, load_linnerud
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import mean_poisson_deviance
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator
from threadpoolctl import threadpool_limits

from sketchnewton import SketchedPoissonRegressor
from sketchnewton.datasets import make_sparse_matrix
from sketchnewton.losses import PoissonLoss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALPHAS = (1e-4, 1e-2, 1.0)
METHODS = ("exact", "pcg", "auto")
ATOL = 1e-6


# -- data -------------------------------------------------------------------------------------
def _linnerud():
    """Linnerud: 20 men's exercise counts (chin-ups, sit-ups, jumps) on their physiological
    measurements (weight, waist, pulse; standardised). One problem per count target."""
    data = load_linnerud()
    X = StandardScaler().fit_transform(data.target)
    return [(f"linnerud-{name}", X, data.data[:, j], None, True)
            for j, name in enumerate(data.feature_names)]


def _digits():
    """Digits: each of the 8x8 features is a count, the number of 'on' pixels (0..16) in a 4x4
    block of the 32x32 bitmap (``load_digits().DESCR``). Target: the on pixels of the central 2x2
    blocks (the 8x8 central patch of the bitmap, a count in 0..64); features: the other 60 block
    counts, standardised. 1797 images."""
    P = load_digits().data
    centre = [27, 28, 35, 36]
    y = P[:, centre].sum(axis=1)
    X = StandardScaler().fit_transform(np.delete(P, centre, axis=1))
    return [("digits-centre", X, y, None, True)]


def _generated():
    """Poisson counts ``y ~ Poisson(exp(X w))`` on a sparse X (8 non-zeros per row), ``X w`` of
    standard deviation 0.8, with sample weights in [0.2, 3] and no intercept."""
    rng = np.random.default_rng(7)
    X = make_sparse_matrix(3000, 40, nnz_per_row=8, random_state=7)
    w = rng.standard_normal(40)
    w *= 0.8 / np.std(X @ w)
    y = rng.poisson(np.exp(X @ w)).astype(np.float64)
    sw = rng.uniform(0.2, 3.0, size=3000)
    return [("generated-sparse-weighted", X, y, sw, False)]


PROBLEMS = {p[0]: p for p in _linnerud() + _digits() + _generated()}
_REFS = {}


def _sklearn(name, alpha):
    """``PoissonRegressor(newton-cholesky, tol=1e-12)`` on a problem (cached)."""
    key = (name, alpha)
    if key not in _REFS:
        _, X, y, sw, fit_intercept = PROBLEMS[key[0]]
        with threadpool_limits(limits=1, user_api="blas"):
            _REFS[key] = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12,
                                          max_iter=1000, fit_intercept=fit_intercept
                                          ).fit(X, y, sample_weight=sw)
    return _REFS[key]


def _params(est):
    return np.concatenate([np.ravel(est.coef_), [float(est.intercept_)]])


def _assert_same(ours, ref, atol=ATOL):
    a, b = _params(ours), _params(ref)
    diff = np.max(np.abs(a - b))
    assert diff <= atol, f"max abs difference {diff:.2e}"
    rel = diff / max(np.max(np.abs(b)), 1e-300)
    assert rel <= atol, f"relative difference {rel:.2e}"


# -- same minimiser as scikit-learn -----------------------------------------------------------
def test_count_targets_are_counts():
    for name, _, y, _, _ in PROBLEMS.values():
        assert np.all(y >= 0) and np.all(y == np.round(y)) and y.max() > 1, name


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_same_coefficients_as_sklearn_newton_cholesky(name, alpha, method):
    # default tol = 1e-8 (relative to the objective, so the 1/sum(s) scale of scikit-learn's
    # objective and the sum(s) scale of ours do not matter): the last Newton step brings the
    # coefficients to ~1e-8 of the minimiser, no tighter tol is needed
    _, X, y, sw, fit_intercept = PROBLEMS[name]
    ref = _sklearn(name, alpha)
    est = SketchedPoissonRegressor(alpha=alpha, method=method, fit_intercept=fit_intercept,
                                   random_state=0).fit(X, y, sample_weight=sw)
    assert est.result_.success
    assert est.coef_.shape == ref.coef_.shape
    _assert_same(est, ref)
    if not fit_intercept:
        assert est.intercept_ == 0.0


@pytest.mark.parametrize("name", ["linnerud-Situps", "generated-sparse-weighted"])
def test_loss_is_sum_of_weights_times_sklearn_objective(name):
    """``PoissonLoss(lam = alpha sum s)`` is exactly ``sum s`` times scikit-learn's objective
    ``1/(2 sum s) sum s dev + alpha/2 ||coef||^2`` (the deviance form: no constant between)."""
    _, X, y, sw, fit_intercept = PROBLEMS[name]
    alpha = 1e-2
    s = np.ones(len(y)) if sw is None else sw
    loss = PoissonLoss(X, y, lam=alpha * s.sum(), sample_weight=s, fit_intercept=fit_intercept)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = 0.1 * rng.standard_normal(loss.n_params)
        coef, b = x[:X.shape[1]], (x[-1] if fit_intercept else 0.0)
        mu = np.exp(np.asarray(X @ coef).ravel() + b)
        sk = 0.5 * mean_poisson_deviance(y, mu, sample_weight=s) + 0.5 * alpha * coef @ coef
        assert loss.loss(x) == pytest.approx(s.sum() * sk, rel=1e-12)


# -- scikit-learn's estimator checks ------------------------------------------------------------
def test_check_estimator_passes_everything():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_estimator(SketchedPoissonRegressor(random_state=0))


# -- weights, predict, score --------------------------------------------------------------------
@pytest.mark.parametrize("method", ["exact", "pcg"])
@pytest.mark.parametrize("sparse", [False, True])
def test_integer_sample_weight_equals_repeated_rows(method, sparse):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 6))
    y = rng.poisson(np.exp(X @ rng.normal(scale=0.3, size=6) + 0.4)).astype(np.float64)
    k = rng.integers(0, 4, size=400)  # 0 drops a row
    Xr, yr = np.repeat(X, k, axis=0), np.repeat(y, k)
    if sparse:
        X, Xr = sp.csr_matrix(X), sp.csr_matrix(Xr)
    # tol bounds the objective (relative 1e-12), the coefficients only to ~sqrt(tol): 1e-12
    # makes both fits accurate well below the 1e-8 compared
    kw = dict(alpha=1e-2, method=method, tol=1e-12, random_state=0)
    weighted = SketchedPoissonRegressor(**kw).fit(X, y, sample_weight=k)
    repeated = SketchedPoissonRegressor(**kw).fit(Xr, yr)
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=0, atol=1e-8)
    assert abs(weighted.intercept_ - repeated.intercept_) <= 1e-8


@pytest.mark.parametrize("sparse", [False, True])
def test_predict_is_exp_of_linear_predictor(sparse):
    _, X, y, _, _ = PROBLEMS["digits-centre"]
    X = sp.csr_matrix(X) if sparse else X
    est = SketchedPoissonRegressor(alpha=1e-2, random_state=0).fit(X, y)
    pred = est.predict(X[:50])
    np.testing.assert_allclose(pred, np.exp(np.asarray(X[:50] @ est.coef_).ravel()
                                            + est.intercept_), rtol=1e-12)
    ref = _sklearn("digits-centre", 1e-2)
    np.testing.assert_allclose(pred, ref.predict(X[:50]), rtol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_score_is_sklearns_d2(weighted):
    name = "generated-sparse-weighted"
    _, X, y, sw, _ = PROBLEMS[name]
    est = SketchedPoissonRegressor(alpha=1e-2, fit_intercept=False, random_state=0).fit(
        X, y, sample_weight=sw)
    sk = PoissonRegressor(alpha=1e-2, fit_intercept=False).fit(X[:10], y[:10])
    sk.coef_, sk.intercept_ = est.coef_.copy(), est.intercept_  # same coefficients
    w = sw if weighted else None
    assert est.score(X, y, sample_weight=w) == pytest.approx(sk.score(X, y, sample_weight=w),
                                                             abs=1e-12)
    assert 0 < est.score(X, y) < 1


# -- input errors -------------------------------------------------------------------------------
def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 3))
    return X, rng.poisson(1.0, size=30).astype(np.float64)


def test_negative_y_is_rejected():
    X, y = _data()
    y[4] = -1.0
    with pytest.raises(ValueError, match="y >= 0"):
        SketchedPoissonRegressor().fit(X, y)


@pytest.mark.parametrize("l1_ratio", [0.0, 1.0])
def test_all_zero_targets_with_an_intercept_have_no_minimiser(l1_ratio):
    """The loss tends to 0 as the intercept goes to -inf: a clear error (the L1 fit ran to its
    iteration limit and advised more iterations); without an intercept the ridge or L1 fit
    exists (coefficients at most 0 in ``A``'s directions) and is fitted."""
    X, y = _data()
    zeros = np.zeros_like(y)
    with pytest.raises(ValueError, match="no minimiser"):
        SketchedPoissonRegressor(alpha=0.1, l1_ratio=l1_ratio).fit(X, zeros)
    # zero weight on the only positive target: the same
    y1 = zeros.copy()
    y1[0] = 3.0
    sw = np.ones_like(y)
    sw[0] = 0.0
    with pytest.raises(ValueError, match="no minimiser"):
        SketchedPoissonRegressor(alpha=0.1, l1_ratio=l1_ratio).fit(X, y1, sample_weight=sw)
    est = SketchedPoissonRegressor(alpha=0.1, l1_ratio=l1_ratio, fit_intercept=False).fit(X, zeros)
    assert est.result_.success and np.all(np.isfinite(est.coef_))


@pytest.mark.parametrize("where,value,match", [
    ("X", np.nan, "Input X contains NaN"),
    ("X", np.inf, "Input X contains infinity"),
    ("y", np.nan, "Input y contains NaN"),
    ("y", np.inf, "Input y contains infinity"),
    ("sample_weight", np.nan, "sample_weight contains non-finite"),
])
def test_non_finite_inputs_are_rejected(where, value, match):
    X, y = _data()
    sw = np.ones(30)
    {"X": X[2], "y": y, "sample_weight": sw}[where][1] = value
    for Xf in (X, sp.csr_matrix(X)):
        with pytest.raises(ValueError, match=match):
            SketchedPoissonRegressor().fit(Xf, y, sample_weight=sw)


def test_wrong_shapes_are_rejected():
    X, y = _data()
    est = SketchedPoissonRegressor()
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, y[:-1])
    with pytest.raises(ValueError, match="y should be a 1d array"):
        est.fit(X, np.column_stack([y, y]))
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="sample_weight has length 29, expected 30"):
        est.fit(X, y, sample_weight=np.ones(29))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        est.fit(X, y, sample_weight=-np.ones(30))
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features"):
        est.predict(X[:, :2])
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        SketchedPoissonRegressor(alpha=-1.0).fit(X, y)


# -- glum's alpha is scikit-learn's ------------------------------------------------------------
def test_glum_alpha_is_sklearns_alpha():
    """The poisson benchmark (benchmarks/studies/poisson.py) passes ``alpha`` to glum unchanged."""
    glum = pytest.importorskip("glum")
    _, X, y, sw, _ = PROBLEMS["generated-sparse-weighted"]
    X = X.toarray()
    ref = _sklearn("generated-sparse-weighted", 1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = {f: glum.GeneralizedLinearRegressor(
                    family="poisson", alpha=f * 1e-2, l1_ratio=0.0, fit_intercept=False,
                    gradient_tol=1e-12, max_iter=1000).fit(X, y, sample_weight=sw)
                for f in (0.5, 1.0, 2.0)}
    np.testing.assert_allclose(fits[1.0].coef_, ref.coef_, rtol=0, atol=1e-9)
    for f in (0.5, 2.0):
        assert np.max(np.abs(fits[f].coef_ - ref.coef_)) > 1e-4


# -- dask: in-memory sample weights (a list) with a dask X ----------------------------------------
def test_dask_fit_accepts_in_memory_sample_weight_list():
    """Regression test: the weight total (``lam = alpha sum s``) of a dask fit called
    ``sample_weight.sum()``, an AttributeError for a list (the logistic estimator accepts one)."""
    da = pytest.importorskip("dask.array")
    X, y = _data()
    sw = np.linspace(0.5, 2.0, 30)
    ref = SketchedPoissonRegressor(alpha=1e-2, random_state=0).fit(X, y, sample_weight=sw)
    Xd = da.from_array(X, chunks=(10, 3))
    for weights in (list(sw), sw):
        est = SketchedPoissonRegressor(alpha=1e-2, random_state=0).fit(Xd, y, sample_weight=weights)
        np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-10)
        assert abs(est.intercept_ - ref.intercept_) <= 1e-10


# -- the benchmark ------------------------------------------------------------------------------
def test_benchmark_objective_is_sklearns():
    sys.path.insert(0, ROOT)
    try:
        from benchmarks.studies.poisson import objective
    finally:
        sys.path.remove(ROOT)
    _, X, y, _, _ = PROBLEMS["digits-centre"]
    ref = _sklearn("digits-centre", 1e-2)
    mu = ref.predict(X)
    expected = 0.5 * mean_poisson_deviance(y, mu) + 0.5 * 1e-2 * ref.coef_ @ ref.coef_
    assert objective(X, y, 1e-2, ref.coef_, ref.intercept_) == pytest.approx(expected, rel=1e-13)


@pytest.mark.slow
def test_benchmark_quick_mode_end_to_end(tmp_path):
    pytest.importorskip("glum")  # a peer of the benchmark (not a test dependency)
    out = tmp_path / "poisson_quick.csv"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "poisson", "--quick", "--csv",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| case | solver |" in proc.stdout
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    cases = {r["case"] for r in rows}
    assert cases == {"sparse-d500-well", "dense-d100-ill"}
    for case in cases:
        solvers = {r["solver"] for r in rows if r["case"] == case}
        assert solvers == {"sketchnewton:auto", "sketchnewton:exact", "sketchnewton:pcg",
                           "newton-cholesky", "lbfgs", "glum"}
        auto = next(r for r in rows if r["case"] == case and r["solver"] == "sketchnewton:auto")
        assert auto["reached"] == "True" and float(auto["rel_gap"]) <= 1e-8
        assert float(auto["speedup_vs_best_peer"]) > 0
