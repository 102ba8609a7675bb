"""Every public parameter refuses wrong types and values with an error that names it (issue 18,
items 13 and 14).

The table below lists, per entry point, each parameter and the values it must refuse: ``None``
where it is not optional, NaN, infinities, negatives, a list, a string, a bool. The error must be
an :class:`InputError` (a ``ValueError``) whose message names the parameter and stays short
(arrays are never printed whole).
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn
from sketchnewton import InputError
from sketchnewton.losses import (
    LogisticLoss,
    MultinomialLoss,
    NormalizedRegressionLoss,
    PoissonLoss,
)
from sketchnewton.sketch import (
    leverage_scores,
    sampling_probabilities,
    sketch_gram,
    sketch_rows,
    sketch_size_for_eps,
)

N, D = 60, 4
NAN, INF = float("nan"), float("inf")
#: the generic bad values (ids for the test names)
BAD = {"None": None, "nan": NAN, "inf": INF, "-inf": -INF, "neg": -1, "list": [1], "str": "a",
       "bool": True, "frac": 0.5, "obj": object()}


def _data():
    rng = np.random.default_rng(0)
    A = sp.random(N, D, density=0.6, random_state=rng, format="csr") + sp.eye(N, D, format="csr")
    b = rng.uniform(0.5, 1.5, N)
    y = np.arange(N) % 2
    y3 = np.arange(N) % 3
    return A.tocsr(), b / b.sum(), y, y3, rng.poisson(1.0, N).astype(float)


A, B, Y2, Y3, COUNTS = _data()


def _loss():
    return NormalizedRegressionLoss(A, B)


# entry point -> (call(**kwargs), {parameter: values to refuse})
REAL_POS = ["None", "nan", "inf", "-inf", "neg", "list", "str", "bool", "obj"]
REAL_NONNEG = REAL_POS
INT_POS = ["None", "nan", "inf", "-inf", "neg", "list", "str", "bool", "frac", "obj"]
INT_OPT = [v for v in INT_POS if v != "None"]
CHOICE = ["None", "nan", "list", "str", "bool", "obj"]
BOOL = ["None", "nan", "list", "str", "obj"]
SEED = ["nan", "inf", "neg", "list", "str", "bool", "frac", "obj"]
VECTOR = ["nan", "list", "str", "obj"]
#: w enters as w^2: a negative weight is legitimate
W_BAD = ["nan", "inf", "list", "str", "bool", "obj"]


def _solve(**kw):
    return sn.solve(A, B, **kw)


def _minimize(**kw):
    kw.setdefault("eps", 1e-6)
    if "tol" in kw:
        kw.pop("eps")
    return sn.minimize(_loss(), **kw)


def _fit(cls, y, **kw):
    fit_kw = {k: kw.pop(k) for k in ("sample_weight",) if k in kw}
    return cls(**kw).fit(A, y, **fit_kw)


SOLVER = {"method": CHOICE, "sketch": CHOICE, "sketch_size": INT_OPT, "max_iter": INT_POS,
          "random_state": SEED, "verbose": INT_POS, "preconditioner": CHOICE}
ESTIMATOR = {"tol": REAL_POS, "max_iter": INT_POS, "method": CHOICE, "sketch": CHOICE,
             "sketch_size": INT_OPT, "preconditioner": CHOICE, "random_state": SEED,
             "verbose": INT_POS, "fit_intercept": BOOL, "warm_start": BOOL}
#: C = np.inf is no penalty (as scikit-learn's LogisticRegression(C=np.inf))
C_BAD = [v for v in REAL_POS if v != "inf"]

TABLE = {
    "solve": (_solve, {**SOLVER, "eps": REAL_POS, "link": CHOICE, "lam": REAL_NONNEG,
                       "w": W_BAD,
                       "x0": VECTOR, "callback": ["nan", "list", "str", "bool", "obj"]}),
    "minimize": (_minimize, {**SOLVER, "eps": [v for v in REAL_POS if v != "None"],
                             "tol": [v for v in REAL_POS if v != "None"], "x0": VECTOR,
                             "callback": ["nan", "list", "str", "bool", "obj"],
                             "loss": ["None", "nan", "list", "str", "obj"]}),
    "SketchedLogisticRegression": (
        lambda **kw: _fit(sn.SketchedLogisticRegression, Y2, **kw),
        {**ESTIMATOR, "C": C_BAD, "class_weight": ["nan", "list", "str", "bool", "obj"],
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "SketchedLogisticRegression-multinomial": (
        lambda **kw: _fit(sn.SketchedLogisticRegression, Y3, **kw),
        {"C": C_BAD, "tol": REAL_POS, "fit_intercept": BOOL,
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "SketchedPoissonRegressor": (
        lambda **kw: _fit(sn.SketchedPoissonRegressor, COUNTS, **kw),
        {**ESTIMATOR, "alpha": REAL_NONNEG,
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "SketchedLogisticRegressionCV": (
        lambda **kw: _fit(sn.SketchedLogisticRegressionCV, Y2, **{"cv": 2, **kw}),
        {**{k: v for k, v in ESTIMATOR.items() if k != "warm_start"},
         "Cs": ["None", "nan", "-inf", "neg", "str", "bool", "obj"], "refit": BOOL}),
    "logistic_regression_path": (
        lambda **kw: sn.logistic_regression_path(A, Y2, **kw),
        {**{k: v for k, v in ESTIMATOR.items() if k != "warm_start"},
         "Cs": ["None", "nan", "-inf", "neg", "str", "bool", "obj"],
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "NormalizedRegressor": (
        lambda **kw: _fit(sn.NormalizedRegressor, B, **kw),
        {"link": CHOICE, "lam": REAL_NONNEG, "w": ["nan", "inf", "neg", "list", "str", "bool",
                                                  "obj"],
         "eps": REAL_POS, "method": CHOICE, "sketch": CHOICE, "sketch_size": INT_OPT,
         "max_iter": INT_POS, "random_state": SEED, "verbose": INT_POS, "warm_start": BOOL,
         "preconditioner": CHOICE}),
    "SoftmaxRegression": (
        lambda **kw: _fit(sn.SoftmaxRegression, B, **kw),
        {"link": CHOICE, "lam": REAL_NONNEG, "w": ["nan", "inf", "neg", "list", "str", "bool",
                                                  "obj"],
         "eps": REAL_POS, "method": CHOICE, "sketch": CHOICE, "sketch_size": INT_OPT,
         "max_iter": INT_POS, "random_state": SEED, "verbose": INT_POS}),
    "NormalizedRegressionLoss": (
        lambda **kw: NormalizedRegressionLoss(A, B, **kw),
        {"link": CHOICE, "lam": REAL_NONNEG,
         "w": W_BAD}),
    "LogisticLoss": (
        lambda **kw: LogisticLoss(A, Y2, **kw),
        {"lam": REAL_NONNEG, "fit_intercept": BOOL,
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "MultinomialLoss": (
        lambda **kw: MultinomialLoss(A, Y3, **{"n_classes": 3, **kw}),
        {"lam": REAL_NONNEG, "fit_intercept": BOOL, "n_classes": INT_POS,
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "PoissonLoss": (
        lambda **kw: PoissonLoss(A, COUNTS, **kw),
        {"lam": REAL_NONNEG, "fit_intercept": BOOL,
         "sample_weight": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "sketch_gram": (
        lambda **kw: sketch_gram(A, **kw),
        {"weights": ["nan", "inf", "neg", "list", "str", "bool", "obj"],
         "sketch_size": INT_OPT, "method": CHOICE, "eps": ["nan", "inf", "-inf", "neg", "list",
                                                           "str", "bool", "obj"],
         "delta": REAL_POS, "scheme": CHOICE, "uniform_mix": REAL_POS, "random_state": SEED,
         "scores": ["nan", "inf", "neg", "list", "str", "bool", "obj"]}),
    "sketch_rows": (
        lambda **kw: sketch_rows(A, **kw),
        {"weights": ["nan", "inf", "neg", "list", "str", "bool", "obj"],
         "sketch_size": INT_OPT, "method": CHOICE, "delta": REAL_POS, "scheme": CHOICE,
         "uniform_mix": REAL_POS, "random_state": SEED, "dense": BOOL}),
    "leverage_scores": (
        lambda **kw: leverage_scores(A, **kw),
        {"weights": ["nan", "inf", "neg", "list", "str", "bool", "obj"], "method": CHOICE,
         "sketch_size": INT_OPT, "n_projections": INT_OPT, "estimator": CHOICE,
         "rcond": ["nan", "inf", "-inf", "neg", "list", "str", "bool", "obj"],
         "random_state": SEED}),
    "sampling_probabilities": (
        lambda **kw: sampling_probabilities(**{"scores": np.ones(N), **kw}),
        {"scores": ["None", "nan", "inf", "neg", "str", "bool", "obj"],
         "uniform_mix": REAL_POS}),
    "sketch_size_for_eps": (
        lambda **kw: sketch_size_for_eps(**{"eps": 0.5, "d": D, **kw}),
        {"eps": REAL_POS, "d": INT_POS, "method": CHOICE, "delta": REAL_POS}),
}

CASES = [(entry, param, bad) for entry, (_, params) in TABLE.items()
         for param, bads in params.items() for bad in bads]


def _bad_value(entry, param, bad):
    """The bad value, shaped for vector parameters: NaN/inf/-1 inside an array of the right
    length, a wrong-length list, a string."""
    value = BAD[bad]
    vector = param in ("w", "x0", "sample_weight", "weights", "scores") and not (
        entry in ("SoftmaxRegression", "NormalizedRegressor") and param == "w")
    if vector and bad in ("nan", "inf", "neg"):
        size = D if param == "x0" else N
        arr = np.ones(size)
        arr[size // 2] = value
        return arr
    return value


@pytest.mark.parametrize("entry, param, bad", CASES)
def test_bad_parameter_is_refused_and_named(entry, param, bad):
    call = TABLE[entry][0]
    value = _bad_value(entry, param, bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError) as info:
            if param == "loss":
                sn.minimize(value, eps=1e-6)
            else:
                call(**{param: value})
    message = str(info.value)
    assert param in message, (entry, param, bad, message)
    assert len(message) <= 300, message


def test_dask_wrong_length_in_memory_vectors_are_named():
    da = pytest.importorskip("dask.array")
    Ad = da.from_array(A.toarray(), chunks=(20, D))
    with pytest.raises(InputError, match="b"):
        sn.solve(Ad, np.ones(N - 1) / N)
    with pytest.raises(InputError, match=r"\by\b"):
        sn.SketchedLogisticRegression().fit(Ad, Y2[:-1])
    with pytest.raises(InputError, match="sample_weight"):
        sn.SketchedLogisticRegression().fit(Ad, Y2, sample_weight=np.ones(N - 1))
    with pytest.raises(InputError, match=r"\by\b"):
        sn.SketchedPoissonRegressor().fit(Ad, COUNTS[:-1])


def test_dask_estimator_errors_call_the_matrix_X():
    da = pytest.importorskip("dask.array")
    Ad = da.from_array(A.toarray(), chunks=(20, 2))  # column chunks: refused
    for est, y in ((sn.SketchedLogisticRegression(), Y2), (sn.SketchedPoissonRegressor(), COUNTS)):
        with pytest.raises(InputError) as info:
            est.fit(Ad, y)
        message = str(info.value)
        assert "X" in message and not message.startswith("A "), message
        assert "A's" not in message and "A must" not in message, message


@pytest.mark.parametrize("method", ["exact", "pcg", "sketch", "cg"])
def test_result_x_is_not_the_callers_x0(method):
    x0 = np.full(D, 0.01)
    keep = x0.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sn.solve(A, B, 1e-6, x0=x0, method=method, max_iter=0)
    assert res.x is not x0 and not np.shares_memory(res.x, x0)
    res.x[:] = 123.0
    assert np.array_equal(x0, keep)
    res = sn.minimize(_loss(), tol=1e-6, x0=x0, max_iter=0)
    assert not np.shares_memory(res.x, x0)


@pytest.mark.parametrize("value", ["no", "yes", 1, 0, None, np.array([True])])
def test_fit_intercept_must_be_a_bool(value):
    for est, y in ((sn.SketchedLogisticRegression, Y2), (sn.SketchedPoissonRegressor, COUNTS)):
        with pytest.raises(InputError, match="fit_intercept"):
            est(fit_intercept=value).fit(A, y)
    for cls, y in ((LogisticLoss, Y2), (PoissonLoss, COUNTS)):
        with pytest.raises(InputError, match="fit_intercept"):
            cls(A, y, fit_intercept=value)


def test_errors_on_big_bad_inputs_are_short():
    """No error message prints a whole array (<= 300 characters)."""
    n, d = 5000, 30
    big = np.random.default_rng(0).normal(size=(n, d))
    bad_b = np.full(n, np.nan)
    calls = [
        lambda: sn.solve(big, bad_b),
        lambda: sn.solve(big, np.ones(n - 1)),
        lambda: sn.solve(big, np.ones(n) / n, x0=np.ones(d + 1)),
        lambda: sn.solve(big, np.ones(n) / n, w=np.full(n, np.nan)),
        lambda: sn.solve(big, np.ones(n) / n, link=np.arange(1000)),
        lambda: sn.solve(big, np.ones(n) / n, max_iter=np.arange(1000)),
        lambda: sn.solve(big, np.ones(n) / n, random_state=np.arange(1000)),
        lambda: sn.solve(big, np.ones(n) / n, eps=list(range(1000))),
        lambda: sn.solve(np.full((n, d), np.inf), np.ones(n) / n),
        lambda: sn.SketchedLogisticRegression(C=np.arange(1000)).fit(big, np.arange(n) % 2),
        lambda: sn.SketchedLogisticRegression().fit(big, np.arange(n) % 2,
                                                    sample_weight=-np.ones(n)),
        lambda: sn.SketchedPoissonRegressor().fit(big, -np.ones(n)),
        lambda: LogisticLoss(big, np.arange(n) % 5),
        lambda: MultinomialLoss(big, np.arange(n) % 7, 3),
        lambda: sketch_gram(big, weights=-np.ones(n)),
        lambda: leverage_scores(big, weights=np.full(n, np.nan)),
        lambda: sampling_probabilities(-np.ones(n)),
    ]
    for k, call in enumerate(calls):
        with pytest.raises(ValueError) as info:
            call()
        assert len(str(info.value)) <= 300, (k, str(info.value)[:500])
