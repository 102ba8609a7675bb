"""Shared fixtures: small seeded problems in every input format, and file helpers."""

import io
import signal

import numpy as np
import pytest
import scipy.sparse as sp

import sketchnewton as sn


def random_sparse(n, d, density, seed, *, empty_rows=0, fmt="csr", dtype=np.float64):
    """Seeded sparse matrix; the first ``empty_rows`` rows have no non-zeros."""
    rng = np.random.default_rng(seed)
    A = sp.random(n, d, density=density, random_state=rng, format="lil", dtype=np.float64)
    A[:empty_rows, :] = 0
    A = A.asformat(fmt).astype(dtype)
    return A


def scaled_dense_logistic(lam):
    """Dense rows (n = 3,000, d = 30) with columns on scales from 1 to 100, an intercept: at a
    small ``lam`` plain CG needs many products, at a large one a few."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3000, 30)) * np.geomspace(1.0, 100.0, 30)
    y = (X @ rng.standard_normal(30) / 30 + rng.standard_normal(3000) > 0).astype(np.int64)
    return sn.LogisticLoss(X, y, lam=lam, fit_intercept=True)


def planted_target(A, x, link="softmax"):
    """``b = phi(A x) / sum(phi(A x))`` computed densely (reference, small n)."""
    z = np.asarray(A @ x).ravel()
    phi = {"resnet": lambda t: np.exp(t) + t, "softmax": np.exp, "cosh": np.cosh,
           "sinh": np.sinh}[link](z)
    return phi / phi.sum()


def central_gradient(fun, x, h=1e-5):
    """Central finite-difference gradient of a scalar function."""
    g = np.empty_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        g[j] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def central_jacobian(fun, x, h=1e-5):
    """Central finite-difference Jacobian (columns = partial derivatives)."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((fun(x + e) - fun(x - e)) / (2 * h))
    return np.column_stack(cols)


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


class Hung(BaseException):
    """Raised by the alarm when a command blocks (not an Exception: nothing catches it)."""


@pytest.fixture
def alarm():
    """Fail instead of hanging forever: a blocked ``open`` is interrupted after 20 s."""
    def on_alarm(signum, frame):
        raise Hung("the command blocked")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def npy_bytes(arr=None, shape=None, descr="<f8"):
    """The bytes of a ``.npy`` file: of ``arr``, or a bare header declaring ``shape``."""
    buf = io.BytesIO()
    if arr is not None:
        np.save(buf, arr, allow_pickle=False)
    else:
        np.lib.format.write_array_header_1_0(
            buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()
