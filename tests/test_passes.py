"""Reported passes equal the sweeps a counting wrapper of the matrix sees (sweeps are counted in
the block layer, where tasks declare them: a kernel that reads ``A`` without declaring it makes
this test fail)."""

import numpy as np
import pytest

import sketchnewton as sn
from sketchnewton._matrix import DataMatrix
from sketchnewton.datasets import make_classification_problem, make_regression_problem

_COUNTED = {"matvec": 1, "matmat": 1, "rmatvec": 1, "rmatmat": 1,
            "weighted_col_sq": 1, "class_blocks": 1, "abs_rmatmat": 1, "outer_gram": 1,
            # the index structure alone (non-zeros per row or column): not a sweep of the values
            "row_nnz": 0, "col_nnz": 0}


class CountingMatrix(DataMatrix):
    """A :class:`DataMatrix` that counts the sweeps made over it, by its own rule: each product
    method one sweep, a Gram or row gather of some rows the fraction of non-zeros it reads, and
    any direct read of the stored arrays (a kernel called on them) one sweep."""

    def __init__(self, A):
        self.count, self._inside = 0.0, 0
        super().__init__(A)

    def _read(self, name):
        if self._inside == 0:
            self.count += 1.0
        return self.__dict__[name]

    csr = property(lambda self: self._read("_csr"),
                   lambda self, v: self.__dict__.__setitem__("_csr", v))
    kernel_csr = property(lambda self: self._read("_kernel_csr"),
                          lambda self, v: self.__dict__.__setitem__("_kernel_csr", v))
    dense = property(lambda self: self._read("_dense"),
                     lambda self, v: self.__dict__.__setitem__("_dense", v))

    def _counted(self, sweeps, fn, *args, **kwargs):
        if self._inside == 0:
            self.count += sweeps
        self._inside += 1
        try:
            return fn(*args, **kwargs)
        finally:
            self._inside -= 1

    def _fraction(self, rows):
        csr = self.__dict__["_csr"]
        return np.diff(csr.indptr)[rows].sum() / max(self.nnz, 1)

    def gram(self, weights, rows=None, ones=False, **kwargs):
        sweeps = 1.0 if rows is None else self._fraction(rows)
        return self._counted(sweeps, super().gram, weights, rows=rows, ones=ones, **kwargs)

    def take_rows(self, rows):
        return self._counted(self._fraction(rows), super().take_rows, rows)

    # a fused product reads each row once, or twice when its plan runs the two products one
    # after the other (a large output, a Fortran-ordered dense matrix)
    def normal_matvec(self, h, v, ones=False, **kwargs):
        sweeps = DataMatrix.fused_sweeps(self, False, ones)
        return self._counted(sweeps, super().normal_matvec, h, v, ones, **kwargs)

    def multinomial_hessp(self, Z, stats, sw, V, ones=False, **kwargs):
        sweeps = DataMatrix.fused_sweeps(self, True, ones)
        return self._counted(sweeps, super().multinomial_hessp, Z, stats, sw, V, ones, **kwargs)


for _name, _sweeps in _COUNTED.items():
    def _method(self, *args, _name=_name, _sweeps=_sweeps, **kwargs):
        return self._counted(_sweeps, getattr(DataMatrix, _name), self, *args, **kwargs)
    setattr(CountingMatrix, _name, _method)


def _normalized(method):
    pb = make_regression_problem(3000, 8, link="resnet", nnz_per_row=4, noise=0.1,
                                 random_state=0)
    A = CountingMatrix(pb.A)
    lam = 1e-3 if method == "dual" else 0.0
    return A, sn.NormalizedRegressionLoss(A, pb.b, lam=lam)


def _logistic(method):
    X, y, _ = make_classification_problem(3000, 8, nnz_per_row=4, random_state=0)
    A = CountingMatrix(X)
    return A, sn.LogisticLoss(A, y, lam=1.0, fit_intercept=True)


def _multinomial(method):
    X, y, _ = make_classification_problem(3000, 8, n_classes=3, nnz_per_row=4, random_state=0)
    A = CountingMatrix(X)
    return A, sn.MultinomialLoss(A, y, 3, lam=1.0, fit_intercept=True)


@pytest.mark.parametrize("make", [_normalized, _logistic, _multinomial])
@pytest.mark.parametrize("method", ["auto", "exact", "sketch", "pcg", "cg", "dual"])
def test_reported_passes_are_the_sweeps_made(make, method):
    if make is _multinomial and method == "dual":
        pytest.skip("the dual form needs a diagonal row curvature")
    A, loss = make(method)
    criterion = dict(eps=1e-8) if make is _normalized else dict(tol=1e-10)
    res = sn.minimize(loss, method=method, random_state=0, **criterion)
    assert A.count > 0
    assert res.passes == pytest.approx(A.count / 2, rel=1e-12), (res.passes, A.count / 2)


@pytest.mark.parametrize("sketch", ["uniform", "countsketch", "srht", "gaussian"])
@pytest.mark.parametrize("method", ["sketch", "pcg"])
def test_passes_of_every_sketch(method, sketch):
    A, loss = _normalized(method)
    res = sn.minimize(loss, eps=1e-8, method=method, sketch=sketch, random_state=0)
    assert res.passes == pytest.approx(A.count / 2, rel=1e-12), (res.passes, A.count / 2)


def test_passes_of_a_wide_problem_whose_products_are_not_fused():
    """p = 50,000 against 20,000 non-zeros: the Hessian-vector product's output is too large for
    a fused sweep, so each product reads A twice (and declares so)."""
    X, y, _ = make_classification_problem(2000, 50_000, nnz_per_row=10, random_state=0)
    A = CountingMatrix(X)
    assert A.fused_sweeps() == 2
    loss = sn.LogisticLoss(A, y, lam=1.0)
    res = sn.minimize(loss, tol=1e-8, method="cg", random_state=0)
    assert res.nhev > 0 and res.passes == pytest.approx(A.count / 2, rel=1e-12)


@pytest.mark.parametrize("make", [_normalized, _logistic, _multinomial])
def test_hessian_product_from_an_image_is_one_sweep(make):
    """``hessp_of_image`` (a product whose image ``A v`` the caller holds, as coordinate descent
    on the data does) equals the fused product and reads ``A`` once."""
    A, loss = make("exact")
    rng = np.random.default_rng(1)
    state = loss.evaluate(0.1 * rng.standard_normal(loss.n_params))
    v = rng.standard_normal(loss.n_params)
    Hv, image = loss.hessp_with_image(state, v)
    before = A.count
    got = loss.hessp_of_image(state, v, image)
    assert A.count - before == 1
    np.testing.assert_allclose(got, Hv, rtol=1e-11, atol=1e-12 * np.abs(Hv).max())


@pytest.mark.parametrize("method", ["prox", "prox_cd", "prox_sketch"])
def test_passes_of_the_proximal_forms(method):
    """Every sweep of a composite solve is counted where it is made. Coordinate descent on the
    data (``prox_cd``) reads a CSC copy of ``A`` the wrapper cannot see, and the working set's
    Gram (``prox``) a copy of the working set's columns; they count the non-zeros they read,
    so their passes are at least the wrapper's (and, without those copies, equal)."""
    A, loss = _logistic(method)
    res = sn.minimize(loss, tol=1e-10, method=method, l1=20.0, random_state=0)
    assert res.success
    if method in ("prox_cd", "prox"):
        assert res.passes >= A.count / 2 > 0
    else:
        assert res.passes == pytest.approx(A.count / 2, rel=1e-12), (res.passes, A.count / 2)
