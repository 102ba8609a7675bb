"""The Dask backend: same results as in memory, bounded task counts, clear errors, retries."""

import collections
import os
import signal

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
from dask.utils import key_split  # noqa: E402

import sketchnewton as sn  # noqa: E402
from sketchnewton._dask import DaskNormalizedLoss  # noqa: E402
from sketchnewton.datasets import make_regression_problem  # noqa: E402
from sketchnewton.estimators import SketchedLogisticRegression  # noqa: E402
from sketchnewton.exceptions import InputError  # noqa: E402
from sketchnewton.losses import NormalizedRegressionLoss  # noqa: E402

CHUNK = 700


def as_dask(A, b, chunk=CHUNK):
    return (da.from_array(A, chunks=(chunk, A.shape[1]), asarray=False),
            da.from_array(b, chunks=(chunk,)))


class TaskCounter(distributed.diagnostics.plugin.SchedulerPlugin):
    """Finished tasks, in total and by function (``key_split`` of the task key)."""

    name = "task-counter"

    def __init__(self):
        self.count = 0
        self.by_name = collections.Counter()

    def transition(self, key, start, finish, *args, **kwargs):
        if start == "processing" and finish == "memory":
            self.count += 1
            self.by_name[key_split(key)] += 1


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
def test_solve_matches_in_memory(client, link, method, monkeypatch):
    pb = make_regression_problem(3000, 15, link=link, nnz_per_row=5, z_std=1.0, random_state=3)
    eps = 1e-7
    trials = []
    forward = NormalizedRegressionLoss.forward

    def counting_forward(self, x, z=None):
        if z is not None:  # a line-search trial
            trials.append(x)
        return forward(self, x, z)

    monkeypatch.setattr(NormalizedRegressionLoss, "forward", counting_forward)
    ref = sn.solve(pb.A, pb.b, eps, link=link, lam=1e-6, method=method, random_state=0)
    A, b = as_dask(pb.A, pb.b)
    res = sn.solve(A, b, eps, link=link, lam=1e-6, method=method, random_state=0)
    assert res.success and ref.success
    assert np.linalg.norm(res.x - ref.x) <= eps
    assert res.fun == pytest.approx(ref.fun, rel=1e-8, abs=1e-14)
    if method == "exact":  # same arithmetic up to the order of the block sums
        # and the same sweeps, but for the A^T Y of each rejected line-search trial, which the
        # distributed forward computes while the block is in memory (in memory: on acceptance)
        rejected = len(trials) - ref.nit
        assert res.nit == ref.nit and res.passes == ref.passes + 0.5 * rejected


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


@pytest.mark.parametrize("link", ["resnet", "softmax", "cosh", "sinh"])
@pytest.mark.parametrize("dense", [False, True])
def test_forward_round_gives_gradient_and_lowrank_columns(client, link, dense):
    # the per-block partials assembled on the client equal the in-memory fused kernel, at
    # points where the reference scale is off (rho != 1), also for b with a large constant
    pb = make_regression_problem(2000, 12, link=link, nnz_per_row=5, z_std=1.0, random_state=6)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.0, 0.1, pb.A.shape[0])
    A = pb.A.toarray() if dense else pb.A
    for b in (pb.b, pb.b + 1.0):
        mem = NormalizedRegressionLoss(A, b, link=link, lam=1e-3, w=w)
        Ad, bd = as_dask(A, b)
        loss = DaskNormalizedLoss(Ad, bd, link=link, lam=1e-3, w=da.from_array(w, chunks=(CHUNK,)))
        x1, x2 = 1.2 * pb.x_true, 0.9 * pb.x_true
        st = loss.evaluate(x1)
        z3 = st.z + 1.0 * loss.A.matvec(pb.x_true - x1)  # as in the line search
        for x, z in ((x1, None), (x2, None), (pb.x_true, z3)):
            fw = loss.forward(x, z)
            assert fw.rho != 1.0 or x is x1
            tasks, sweeps = client.counter.count, loss.A.sweeps
            got = loss.evaluate(x, forward=fw)
            gn = loss.hessian_factors(loss.evaluate(x, hessian=False, forward=fw), "gauss_newton")
            assert client.counter.count == tasks and loss.A.sweeps == sweeps  # no round
            np.testing.assert_array_equal(gn.K, got.K[:, [0, 2]])
            ref = mem.evaluate(x)
            assert got.fun == pytest.approx(ref.fun, rel=1e-12)
            assert np.linalg.norm(got.grad - ref.grad) <= 1e-12 * np.linalg.norm(ref.grad)
            np.testing.assert_allclose(got.K, ref.K, rtol=1e-12, atol=1e-12 * np.abs(ref.K).max())


@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_tasks_per_iteration_do_not_grow(client, method):
    pb = make_regression_problem(3000, 15, link="resnet", nnz_per_row=5, z_std=1.5, random_state=4)
    A, b = as_dask(pb.A, pb.b)
    n = A.numblocks[0]
    counts = []

    def callback(r):
        counts.append((client.counter.count, collections.Counter(client.counter.by_name)))

    res = sn.solve(A, b, 1e-10, link="resnet", method=method, random_state=0, callback=callback,
                   max_iter=30)
    assert res.nit >= 4 and len(counts) == res.nit + 1
    # Rounds per iteration (n tasks, one per block; "sum" is the reduction task of a round):
    # exact: the Gram (twice when the full Hessian is not PD), A p, max |A p|, and one per
    # line-search trial that gives loss, alpha, gradient and low-rank factors ("forward", with
    # a per-block "small" task handing its sums and partials to the reduction): 4 rounds,
    # 5 n + 2 tasks with a unit step (the gradient used to be a 5th round);
    # pcg: max |A p|, the trials, one per CG product (A p comes with the products), and when
    # the preconditioner is rebuilt the sampling totals and Gram (+ 2 for leverage scores).
    per_block = {"exact": {"exact_gram", "matvec", "max_abs", "forward", "small"},
                 "pcg": {"hessp_block", "max_abs", "forward", "small", "sampling_totals",
                         "sampled_gram", "countsketch", "raw_leverage"}}[method]
    per_iter = []
    for k in range(1, len(counts)):
        c = counts[k][0] - counts[k - 1][0]
        d = counts[k][1] - counts[k - 1][1]
        h = res.history[k]
        per_iter.append(c)
        assert set(d) <= per_block | {"sum"}, (k, d)
        assert all(d[name] % n == 0 for name in per_block), (k, d)
        trials = d["forward"] // n
        assert trials >= 1 and d["small"] == d["forward"], (k, d)
        reductions = trials + d["exact_gram"] // n + d["hessp_block"] // n + \
            d["sampling_totals"] // n + d["sampled_gram"] // n + d["countsketch"] // n
        assert d["sum"] == reductions, (k, d)
        if method == "exact":
            assert d["matvec"] == d["max_abs"] == n
            if h["step_size"] == 1.0 and d["exact_gram"] == n:
                assert trials == 1 and c == 5 * n + 2, (k, d)
        else:
            assert d["hessp_block"] == h["cg_iter"] * n and d["max_abs"] == n, (k, d, h)
            if h["step_size"] == 1.0:
                assert trials == 1, (k, d)
    # late iterations cost no more than early ones: no graph grows with the iteration count
    assert per_iter[-1] <= max(per_iter[:2])


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
