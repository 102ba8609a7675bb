"""The Dask backend: same results as in memory, bounded task counts, clear errors, retries."""

import os
import signal

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import sketchnewton as sn  # noqa: E402
from sketchnewton.datasets import make_regression_problem  # noqa: E402
from sketchnewton.estimators import SketchedLogisticRegression  # noqa: E402
from sketchnewton.exceptions import InputError  # noqa: E402

CHUNK = 700


def as_dask(A, b, chunk=CHUNK):
    return (da.from_array(A, chunks=(chunk, A.shape[1]), asarray=False),
            da.from_array(b, chunks=(chunk,)))


class TaskCounter(distributed.diagnostics.plugin.SchedulerPlugin):
    name = "task-counter"

    def __init__(self):
        self.count = 0

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish == "memory":
            self.count += 1


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        counter = TaskCounter()
        cluster.scheduler.add_plugin(counter)
        c.counter = counter
        yield c


@pytest.mark.parametrize("link", ["resnet", "softmax", "cosh", "sinh"])
@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_solve_matches_in_memory(client, link, method):
    pb = make_regression_problem(3000, 15, link=link, nnz_per_row=5, z_std=1.0, random_state=3)
    eps = 1e-7
    ref = sn.solve(pb.A, pb.b, eps, link=link, lam=1e-6, method=method, random_state=0)
    A, b = as_dask(pb.A, pb.b)
    res = sn.solve(A, b, eps, link=link, lam=1e-6, method=method, random_state=0)
    assert res.success and ref.success
    assert np.linalg.norm(res.x - ref.x) <= eps
    assert res.fun == pytest.approx(ref.fun, rel=1e-8, abs=1e-14)
    if method == "exact":  # same arithmetic up to the order of the block sums
        assert res.nit == ref.nit and res.passes == ref.passes


def test_sketch_dense_blocks_and_w(client):
    pb = make_regression_problem(2500, 10, link="resnet", density=1.0, z_std=1.0, random_state=1)
    dense = pb.A.toarray()
    ref = sn.solve(dense, pb.b, 1e-7, link="resnet", w=0.01, method="sketch", random_state=0)
    A, b = as_dask(dense, pb.b, 600)
    res = sn.solve(A, b, 1e-7, link="resnet", w=0.01, method="sketch", random_state=0)
    assert res.success
    assert np.linalg.norm(res.x - ref.x) <= 1e-7
    # a fixed random_state gives the same distributed result
    again = sn.solve(A, b, 1e-7, link="resnet", w=0.01, method="sketch", random_state=0)
    np.testing.assert_array_equal(again.x, res.x)


def test_default_scheduler_without_client(monkeypatch):
    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "default_client", no_client)
    pb = make_regression_problem(1500, 8, link="softmax", nnz_per_row=4, random_state=2)
    ref = sn.solve(pb.A, pb.b, 1e-7, link="softmax", method="exact")
    A, b = as_dask(pb.A, pb.b, 500)
    res = sn.solve(A, b, 1e-7, link="softmax", method="exact")
    assert res.success
    assert np.linalg.norm(res.x - ref.x) <= 1e-7


@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_tasks_per_iteration_do_not_grow(client, method):
    pb = make_regression_problem(3000, 15, link="resnet", nnz_per_row=5, z_std=1.5, random_state=4)
    A, b = as_dask(pb.A, pb.b)
    n_blocks = A.numblocks[0]
    counts, rows = [], []

    def callback(r):
        counts.append(client.counter.count)

    res = sn.solve(A, b, 1e-10, link="resnet", method=method, random_state=0, callback=callback,
                   max_iter=30)
    per_iter = np.diff(counts)
    assert res.nit >= 4 and len(per_iter) == res.nit
    # rounds of one task per block (+ one reduction each): Gram, A p, line-search trials,
    # gradient, leverage scores once; pcg adds one round per CG iteration
    for k, c in enumerate(per_iter):
        h = res.history[k + 1]
        rounds = 12 + 2 * h["cg_iter"]
        assert c <= rounds * (n_blocks + 1), (k, c, h)
    # late iterations cost no more than early ones: no graph grows with the iteration count
    assert per_iter[-1] <= per_iter[:2].max()


def test_classifier_matches_in_memory(client):
    rng = np.random.default_rng(0)
    X = sp.random(3000, 12, density=0.4, random_state=rng, format="csr")
    w = rng.standard_normal(12)
    y2 = (X @ w + 0.3 * rng.standard_normal(3000) > 0).astype(int)
    y3 = np.digitize(X @ w + 0.3 * rng.standard_normal(3000), [-0.3, 0.3])
    Xd = da.from_array(X, chunks=(CHUNK, 12), asarray=False)
    for y in (y2, y3):
        for method in ("exact", "pcg"):
            ref = SketchedLogisticRegression(C=10.0, method=method, tol=1e-10, random_state=0).fit(X, y)
            yd = da.from_array(y, chunks=(CHUNK,))
            est = SketchedLogisticRegression(C=10.0, method=method, tol=1e-10, random_state=0).fit(Xd, yd)
            np.testing.assert_array_equal(est.classes_, ref.classes_)
            np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-6)
            np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-6)
            assert est.result_.success


def test_column_chunks_rejected(client):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    A = da.from_array(pb.A, chunks=(500, 5), asarray=False)
    with pytest.raises(InputError, match="chunked by rows only"):
        sn.solve(A, da.from_array(pb.b, chunks=(500,)), 1e-6, link="softmax")
    with pytest.raises(InputError, match="chunked by rows only"):
        SketchedLogisticRegression().fit(A, da.from_array((pb.b > pb.b.mean()).astype(int),
                                                          chunks=(500,)))


def test_mismatched_b_chunks_rejected(client):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    A = da.from_array(pb.A, chunks=(500, 10), asarray=False)
    with pytest.raises(InputError, match="chunked like the rows of A"):
        sn.solve(A, da.from_array(pb.b, chunks=(300,)), 1e-6, link="softmax")
    with pytest.raises(InputError, match="shape"):
        sn.solve(A, da.from_array(pb.b[:900], chunks=(500,)), 1e-6, link="softmax")


def test_unsupported_sketch_rejected(client):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    A, b = as_dask(pb.A, pb.b, 500)
    with pytest.raises(InputError, match="distributed"):
        sn.solve(A, b, 1e-6, link="softmax", method="pcg", sketch="srht")


def test_lost_worker_is_retried_with_same_result():
    pb = make_regression_problem(3000, 12, link="resnet", nnz_per_row=5, z_std=1.0, random_state=5)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        A, b = as_dask(pb.A, pb.b, 500)
        ref = sn.solve(A, b, 1e-8, link="resnet", method="pcg", random_state=7)
        pids = list(c.run(os.getpid).values())
        killed = []

        def kill_one(r):
            if r.nit == 2 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        res = sn.solve(A, b, 1e-8, link="resnet", method="pcg", random_state=7, callback=kill_one)
        assert killed
        np.testing.assert_array_equal(res.x, ref.x)
        assert res.nit == ref.nit
