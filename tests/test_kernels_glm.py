"""The vectorized row passes of the losses (:mod:`sketchnewton._kernels.glm`) and their
``exp`` / ``log`` (:mod:`sketchnewton._kernels.vmath`) against references in extended
precision, on extreme linear predictors (``|z|`` up to 800), ragged blocks and any thread count.
"""

import math

import numba
import numpy as np
import pytest
from numba import njit

from sketchnewton._kernels import glm, vmath

LD = np.longdouble  # 80-bit on x86: a reference a few bits more precise than float64
ULP = np.finfo(np.float64).eps


@njit(error_model="numpy")
def _apply(fn_id, x, out):
    for i in range(x.shape[0]):
        if fn_id == 0:
            out[i] = vmath.exp(x[i])
        elif fn_id == 1:
            out[i] = vmath.log(x[i])
        else:
            out[i] = vmath.log1p_unit(x[i])
    return out


def ulps(got, ref):
    """Largest error in units in the last place of the float64 reference."""
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(got - ref) / np.spacing(np.maximum(np.abs(ref), 5e-324))))


def test_exp_within_an_ulp():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(20000) * 3, rng.uniform(-745, 709.7, 20000),
                        [0.0, -0.0, 1e-300, -1e-300, 0.5 * math.log(2), -744.4, -745.1, 709.78]])
    assert ulps(_apply(0, x, np.empty_like(x)), np.exp(x.astype(LD))) <= 1.0
    special = np.array([-np.inf, np.inf, np.nan, 800.0, -800.0, 709.8, -746.0])
    got = _apply(0, special, np.empty_like(special))
    np.testing.assert_array_equal(got[[0, 1, 3, 4, 5, 6]], [0.0, np.inf, np.inf, 0.0, np.inf, 0.0])
    assert np.isnan(got[2])


def test_log_within_an_ulp():
    rng = np.random.default_rng(1)
    x = np.concatenate([1.0 + rng.random(20000) * 7, np.exp(rng.uniform(-700, 700, 20000)),
                        [1.0, 2.0, math.sqrt(2), np.nextafter(1.0, 2), np.nextafter(1.0, 0),
                         5e-324, 1e-310, 2.2250738585072014e-308, 1.7e308]])
    assert ulps(_apply(1, x, np.empty_like(x)), np.log(x.astype(LD))) <= 1.0
    e = np.concatenate([rng.random(20000), np.exp(-rng.uniform(0, 745, 20000)), [0.0, 1.0, 1e-300]])
    assert ulps(_apply(2, e, np.empty_like(e)), np.log1p(e.astype(LD))) <= 1.0


def _logistic_ref(z, y, sw):
    zl = z.astype(LD)
    e = np.exp(-np.abs(zl))
    p = np.where(zl > 0, 1 / (1 + e), e / (1 + e))
    terms = sw * (np.maximum(zl, 0) + np.log1p(e) - y * zl)
    return math.fsum(terms.astype(np.float64)), p


@pytest.mark.parametrize("n", [0, 1, 511, 512, 513, 3000])
@pytest.mark.parametrize("scale", [0.5, 30.0, 800.0])
def test_logistic_pass_extreme(n, scale):
    rng = np.random.default_rng(n)
    z = rng.standard_normal(n) * scale
    z[:min(n, 6)] = [800.0, -800.0, 0.0, 1e-300, -36.0, 745.0][:min(n, 6)]
    y = (rng.random(n) < 0.5).astype(float)
    sw = rng.random(n) + 0.5
    r, h = np.empty(n), np.empty(n)
    loss = glm.logistic_pass(z, y, sw, r, h)
    ref, p = _logistic_ref(z, y, sw)
    assert abs(loss - ref) <= 1e-14 * abs(ref) + 1e-300
    if n:
        # r = sw (p - y) cancels: its error is measured against sw (p + y)
        scale_r = np.spacing(sw * (p.astype(np.float64) + y))
        assert np.max(np.abs(r - (sw * (p - y)).astype(np.float64)) / scale_r) <= 4
        np.testing.assert_allclose(h, (sw * p * (1 - p)).astype(np.float64), rtol=0, atol=4 * ULP)
        assert np.all((h >= 0) & (h <= 0.25 * sw))


def test_poisson_pass_extreme():
    rng = np.random.default_rng(3)
    n = 2000
    z = np.clip(rng.standard_normal(n) * 100, -740, 700)
    y = rng.poisson(2.0, n).astype(float)
    y[:4] = [0.0, 1e-310, 0.5, 1e5]
    sw = rng.random(n) + 0.5
    r, h = np.empty(n), np.empty(n)
    loss = glm.poisson_pass(z, y, sw, r, h)
    zl = z.astype(LD)
    mu = np.exp(zl)
    safe = np.where(y > 0, y, 1.0).astype(LD)
    terms = sw * (mu - y + np.where(y > 0, y * (np.log(safe) - zl), 0))
    ref = math.fsum(terms.astype(np.float64))
    assert abs(loss - ref) <= 1e-14 * abs(ref)
    assert ulps(h, sw * mu) <= 2
    np.testing.assert_allclose(r, (sw * (mu - y)).astype(np.float64), rtol=4 * ULP,
                               atol=4 * ULP * float(np.max(sw * y)))
    z[5] = 800.0
    assert glm.poisson_pass(z, y, sw, r, h) == np.inf


@pytest.mark.parametrize("K", [2, 8, 13])
@pytest.mark.parametrize("order", ["C", "F"])
def test_multinomial_pass_extreme(K, order):
    rng = np.random.default_rng(K)
    n = 1100
    Z = rng.standard_normal((n, K)) * 40
    Z[0] = 800.0
    Z[1] = -800.0
    Z[2, 0] = 800.0
    Z[3, :] = np.linspace(-800, 800, K)
    Z = np.asarray(Z, order=order)
    y = rng.integers(0, K, n)
    sw = rng.random(n) + 0.5
    stats, R = np.empty((n, 2)), np.empty((n, K))
    loss = glm.multinomial_pass(Z, y, sw, stats)
    P = glm.multinomial_probs(Z, stats, np.empty((n, K)))
    glm.multinomial_residual(P, y, sw, R)
    Zl = Z.astype(LD)
    m = Zl.max(axis=1, keepdims=True)
    # the shifted logits rounded as in float64: a relative error of exp's argument is the
    # conditioning of the formula, not an error of the kernel
    E = np.exp((Z - Z.max(axis=1, keepdims=True)).astype(LD))
    s = E.sum(axis=1, keepdims=True)
    Pl = E / s
    ref = math.fsum((sw * (m[:, 0] + np.log(s[:, 0]) - Zl[np.arange(n), y])).astype(np.float64))
    assert abs(loss - ref) <= 1e-14 * abs(ref)
    np.testing.assert_allclose(P, Pl.astype(np.float64), rtol=8 * ULP, atol=1e-300)
    Rl = sw[:, None] * (Pl - np.eye(K)[y])
    np.testing.assert_allclose(R, Rl.astype(np.float64), rtol=0, atol=4 * ULP * 1.5)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one kernel thread")
def test_row_passes_independent_of_threads():
    """The blocks' partial losses are summed in block order: the same for any thread count."""
    rng = np.random.default_rng(4)
    n, K = 5000, 4
    z = rng.standard_normal(n) * 5
    y = (rng.random(n) < 0.5).astype(float)
    Z = rng.standard_normal((n, K))
    labels = rng.integers(0, K, n)
    sw = rng.random(n)

    def run():
        return (glm.logistic_pass(z, y, sw, np.empty(n), np.empty(n)),
                glm.poisson_pass(z, y, sw, np.empty(n), np.empty(n)),
                glm.multinomial_pass(Z, labels, sw, np.empty((n, 2))))

    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(2)
        two = run()
    finally:
        numba.set_num_threads(previous)
    assert one == two

