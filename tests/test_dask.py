"""The Dask backend: every loss equals in memory, bounded task counts, clear errors, retries,
thousands of blocks, and a cluster started as users start one (``dask scheduler`` / ``dask worker``)."""

import collections
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
from dask.utils import key_split  # noqa: E402

import sketchnewton as sn  # noqa: E402
from sketchnewton import distributed as backend  # noqa: E402
from sketchnewton._blocks._dask import _REDUCE_BYTES  # noqa: E402
from sketchnewton.datasets import make_regression_problem  # noqa: E402
from sketchnewton.estimators import (SketchedLogisticRegression,  # noqa: E402
                                     SketchedPoissonRegressor)
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

    def counting_forward(self, x, image=None):
        if image is not None:  # a line-search trial
            trials.append(x)
        return forward(self, x, image)

    monkeypatch.setattr(NormalizedRegressionLoss, "forward", counting_forward)
    ref = sn.solve(pb.A, pb.b, eps, link=link, lam=1e-6, method=method, random_state=0)
    n_mem_trials = len(trials)
    A, b = as_dask(pb.A, pb.b)
    res = sn.solve(A, b, eps, link=link, lam=1e-6, method=method, random_state=0)
    assert res.success and ref.success
    assert np.linalg.norm(res.x - ref.x) <= eps
    assert res.fun == pytest.approx(ref.fun, rel=1e-8, abs=1e-14)
    if method == "exact":  # same arithmetic up to the order of the block sums
        # and the same sweeps, but for the A^T Y of each rejected line-search trial, which the
        # distributed forward computes while the block is in memory (in memory: on acceptance)
        rejected = n_mem_trials - ref.nit
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


def test_no_warm_start_from_a_sample_of_distributed_rows(monkeypatch):
    """A row sample of a cluster's blocks is not gathered: ``presolve`` leaves Dask solves as
    they were (``subproblems`` is False), even when asked for."""
    monkeypatch.setattr(distributed, "default_client", lambda: (_ for _ in ()).throw(
        ValueError("No clients found")))
    pb = make_regression_problem(4000, 4, link="softmax", nnz_per_row=2, random_state=2)
    A, b = as_dask(pb.A, pb.b, 1000)
    loss = backend.normalized_loss(A, b, link="softmax")
    assert not loss.subproblems
    with pytest.raises(sn.InputError, match="no subproblems"):
        loss.subproblem(np.arange(10))
    res = sn.solve(A, b, 1e-7, link="softmax", presolve="sample")
    assert res.success and "presolve" not in res

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
        loss = backend.normalized_loss(Ad, bd, link=link, lam=1e-3,
                                       w=da.from_array(w, chunks=(CHUNK,)))
        x1, x2 = 1.2 * pb.x_true, 0.9 * pb.x_true
        st = loss.evaluate(x1)
        z3 = st.image + 1.0 * loss.image(pb.x_true - x1)  # as in the line search
        for x, z in ((x1, None), (x2, None), (pb.x_true, z3)):
            fw = loss.forward(x, z)
            assert fw.rho != 1.0 or x is x1
            tasks, sweeps = client.counter.count, loss.data.sweeps
            got = loss.evaluate(forward=fw)
            assert client.counter.count == tasks and loss.data.sweeps == sweeps  # no round
            ref = mem.evaluate(x)
            assert got.fun == pytest.approx(ref.fun, rel=1e-12)
            assert np.linalg.norm(got.grad - ref.grad) <= 1e-12 * np.linalg.norm(ref.grad)
            np.testing.assert_allclose(got.K, ref.K, rtol=1e-12, atol=1e-12 * np.abs(ref.K).max())
            for kind in ("full", "gauss_newton"):
                v = rng.standard_normal(12)
                np.testing.assert_allclose(loss.hessp(got, v, kind), mem.hessp(ref, v, kind),
                                           rtol=1e-10, atol=1e-12 * np.abs(mem.hessp(ref, v, kind)).max())


def _per_iteration(counts):
    return [(counts[k][0] - counts[k - 1][0], counts[k][1] - counts[k - 1][1])
            for k in range(1, len(counts))]


@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_tasks_per_iteration_do_not_grow(client, method):
    pb = make_regression_problem(3000, 15, link="resnet", nnz_per_row=5, z_std=1.5, random_state=4)
    A, b = as_dask(pb.A, pb.b)
    n = A.numblocks[0]
    counts = []

    def callback(intermediate_result):
        counts.append((client.counter.count, collections.Counter(client.counter.by_name)))

    res = sn.solve(A, b, 1e-10, link="resnet", method=method, random_state=0, callback=callback,
                   max_iter=30)
    assert res.nit >= 4 and len(counts) == res.nit + 1
    # Per iteration, one task per block for: the exact Gram ("gram_task"; the Gauss-Newton
    # Gram too when the full Hessian is not positive definite) or the CG products
    # ("hessp_task", which also give A p) and, when the preconditioner is rebuilt, the
    # sampling rounds; A p ("matvec_task", exact only) and one forward per line-search trial
    # (loss, normaliser, gradient and low-rank columns: "forward_task"). "sum" tasks reduce;
    # what reads only per-block results (the forward's sums, max |A p|, the sampling totals)
    # runs in "collect" tasks, one per worker holding a group of blocks, not one per block.
    # At the last iteration, the attainable-accuracy check adds one round ("noise_task") and
    # the error bound's check one Hessian product along the step ("matmat_task").
    per_block = {"gram_task", "matvec_task", "forward_task", "hessp_task", "weights_task",
                 "draw_task", "sampled_gram_task", "countsketch_task", "raw_task", "noise_task",
                 "matmat_task"}
    workers = len(client.scheduler_info()["workers"])
    per_iter = []
    for k, (c, d) in enumerate(_per_iteration(counts), start=1):
        h = res.history[k]
        checks = (d["noise_task"] + d["matmat_task"]) // n  # rounds of the final checks
        per_iter.append(c - checks * (n + 1))
        assert set(d) <= per_block | {"sum", "collect"}, (k, d)
        assert all(d[name] % n == 0 for name in per_block), (k, d)
        trials = d["forward_task"] // n
        assert trials >= 1, (k, d)
        assert d["noise_task"] == (n if k == len(counts) - 1 else 0), (k, d)
        if method == "exact":
            assert d["matvec_task"] == n and d["hessp_task"] == 0
            if h["step_size"] == 1.0 and d["gram_task"] == n:
                # Gram, A p, one forward: 3 n tasks and 2 reductions (and the checks' rounds at
                # the end); max |A p| and the forward's sums: at most one "collect" task per
                # worker each
                assert trials == 1 and c == (3 + checks) * n + 2 + checks + d["collect"], (k, d)
                assert d["collect"] <= 2 * workers, (k, d)
        else:
            assert d["hessp_task"] == h["cg_iter"] * n and d["matvec_task"] == 0, (k, d, h)
    # late iterations cost no more than early ones (the final checks apart): no graph grows
    # with the iteration count
    assert per_iter[-1] <= max(per_iter[:2])


def test_classifier_matches_in_memory(client):
    rng = np.random.default_rng(0)
    X = sp.random(3000, 12, density=0.4, random_state=rng, format="csr")
    w = rng.standard_normal(12)
    y2 = (X @ w + 0.3 * rng.standard_normal(3000) > 0).astype(int)
    y3 = np.digitize(X @ w + 0.3 * rng.standard_normal(3000), [-0.3, 0.3])
    Xd = da.from_array(X, chunks=(CHUNK, 12), asarray=False)
    sw = rng.uniform(0.5, 2.0, 3000)
    for y in (y2, y3):
        for method in ("exact", "pcg"):
            kw = dict(C=10.0, method=method, tol=1e-10, random_state=0)
            ref = SketchedLogisticRegression(**kw).fit(X, y, sample_weight=sw)
            yd = da.from_array(y, chunks=(CHUNK,))
            est = SketchedLogisticRegression(**kw).fit(Xd, yd, sample_weight=da.from_array(
                sw, chunks=(CHUNK,)))
            np.testing.assert_array_equal(est.classes_, ref.classes_)
            np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-6)
            np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-6)
            assert est.result_.success


@pytest.mark.parametrize("preconditioner", ["diagonal", "nystrom"])
def test_matrix_free_methods_match_in_memory(client, preconditioner):
    """Method "cg" (block Jacobi / Nystrom preconditioners from per-block diagonals and block
    products) gives the in-memory answer on Dask, binary and multinomial."""
    rng = np.random.default_rng(2)
    X = sp.random(2000, 60, density=0.1, random_state=rng, format="csr")
    w = rng.standard_normal(60)
    Xd = da.from_array(X, chunks=(CHUNK, 60), asarray=False)
    for y in ((X @ w > 0).astype(int), np.digitize(X @ w, [-0.2, 0.2])):
        kw = dict(C=10.0, method="cg", preconditioner=preconditioner, tol=1e-12, random_state=0)
        ref = SketchedLogisticRegression(**kw).fit(X, y)
        est = SketchedLogisticRegression(**kw).fit(Xd, da.from_array(y, chunks=(CHUNK,)))
        np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-6)
        np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-6)
        assert est.result_.method == "cg" and est.result_.success


def test_poisson_matches_in_memory(client):
    rng = np.random.default_rng(1)
    X = sp.random(3000, 10, density=0.5, random_state=rng, format="csr")
    y = rng.poisson(np.exp(X @ rng.normal(scale=0.5, size=10) + 0.3)).astype(float)
    Xd = da.from_array(X, chunks=(CHUNK, 10), asarray=False)
    for method in ("exact", "pcg"):
        ref = SketchedPoissonRegressor(alpha=1e-3, method=method, random_state=0).fit(X, y)
        est = SketchedPoissonRegressor(alpha=1e-3, method=method, random_state=0).fit(
            Xd, da.from_array(y, chunks=(CHUNK,)))
        np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-6)
        assert abs(est.intercept_ - ref.intercept_) <= 1e-6
        assert est.result_.success


def _tree_tasks(n_inputs, fan_in=16):
    """Reduction tasks of fan-in ``fan_in`` over ``n_inputs`` results (one level at least)."""
    total, level = 0, n_inputs
    while True:
        level = -(-level // fan_in)
        total += level
        if level == 1:
            return total


def test_hundreds_of_blocks_reduce_in_a_tree(client):
    """300 row blocks: every reduction is a tree of 19 + 2 + 1 tasks of at most 16 inputs."""
    rng = np.random.default_rng(3)
    X = sp.random(3000, 8, density=0.5, random_state=rng, format="csr")
    y = (X @ rng.normal(size=8) > 0).astype(int)
    Xd = da.from_array(X, chunks=(10, 8), asarray=False)
    loss = backend.logistic_loss(Xd, da.from_array(y, chunks=(10,)), lam=0.1, fit_intercept=True)
    mem = sn.LogisticLoss(X, y, lam=0.1, fit_intercept=True)
    assert loss.data.n_blocks == 300 and _tree_tasks(300) == 22
    x = rng.normal(size=9)
    before = collections.Counter(client.counter.by_name)
    got, ref = loss.evaluate(x), mem.evaluate(x)
    H = loss.hessian(got)
    done = client.counter.by_name - before
    assert done["forward_task"] == done["gram_task"] == 300
    assert done["sum"] == 2 * _tree_tasks(300)  # loss and gradient in one reduction, the Hessian
    assert got.fun == pytest.approx(ref.fun, rel=1e-12)
    np.testing.assert_allclose(got.grad, ref.grad, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, mem.hessian(ref), rtol=1e-10, atol=1e-12)


def _block_gram(blk):
    return blk.A.gram(np.ones(blk.A.n))


def test_large_results_reduce_few_at_a_time(client):
    """Results declared large (a Gram of 32 MB, a CountSketch) are added two at a time by
    reductions that run as soon as their inputs exist, so a worker never holds the results of
    all its blocks (out of core at d = 1,000 they outgrew 1 GiB workers); the sum is exact."""
    rng = np.random.default_rng(5)
    X = sp.random(400, 6, density=0.5, random_state=rng, format="csr")
    blocks = backend.logistic_loss(da.from_array(X, chunks=(10, 6), asarray=False),
                                   da.from_array(np.zeros(400, dtype=int), chunks=(10,))).data
    before = collections.Counter(client.counter.by_name)
    G = blocks.sum(blocks.map(_block_gram), fresh=True, nbytes=_REDUCE_BYTES)
    done = client.counter.by_name - before
    assert done["sum"] == _tree_tasks(40, fan_in=2) == 41  # 20 + 10 + 5 + 3 + 2 + 1
    np.testing.assert_allclose(G, (X.T @ X).toarray(), rtol=1e-12, atol=1e-14)


@pytest.mark.slow
def test_thousands_of_blocks_solve(client):
    """2,000 row blocks (about 60,000 tasks: ~5 min here): the solve matches in memory."""
    pb = make_regression_problem(10_000, 6, link="softmax", nnz_per_row=3, z_std=1.0,
                                 random_state=7)
    A, b = as_dask(pb.A, pb.b, 5)
    assert A.numblocks[0] == 2000
    ref = sn.solve(pb.A, pb.b, 1e-6, link="softmax", method="exact")
    before = collections.Counter(client.counter.by_name)
    res = sn.solve(A, b, 1e-6, link="softmax", method="exact", max_iter=20)
    done = client.counter.by_name - before
    assert res.success and np.linalg.norm(res.x - ref.x) <= 1e-6
    reductions = done["sum"] / _tree_tasks(2000)  # 125 + 8 + 1 tasks per reduction
    assert reductions == int(reductions) and reductions >= res.nit


def test_column_chunks_rejected(client):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    A = da.from_array(pb.A, chunks=(500, 5), asarray=False)
    with pytest.raises(InputError, match="chunked by rows only"):
        sn.solve(A, da.from_array(pb.b, chunks=(500,)), 1e-6, link="softmax")
    with pytest.raises(InputError, match="chunked by rows only"):
        SketchedLogisticRegression().fit(A, da.from_array((pb.b > pb.b.mean()).astype(int),
                                                          chunks=(500,)))


def test_blocks_must_match_the_declared_shape(client):
    """A dask array whose blocks have fewer columns than it declares is refused, not solved."""
    pb = make_regression_problem(1000, 6, link="softmax", nnz_per_row=3, random_state=0)
    narrow = [dask.delayed(lambda i: pb.A[i:i + 500, :5])(i) for i in (0, 500)]
    A = da.concatenate([da.from_delayed(blk, shape=(500, 6), dtype=float, meta=pb.A[:0])
                        for blk in narrow])
    with pytest.raises(InputError, match=r"block 0 of A has shape \(500, 5\).*\(500, 6\)"):
        sn.solve(A, da.from_array(pb.b, chunks=(500,)), 1e-6, link="softmax")


def test_mismatched_b_rejected(client):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    A = da.from_array(pb.A, chunks=(500, 10), asarray=False)
    with pytest.raises(InputError, match="chunked like the rows of A"):
        sn.solve(A, da.from_array(pb.b, chunks=(300,)), 1e-6, link="softmax")
    with pytest.raises(InputError, match="shape"):
        sn.solve(A, da.from_array(pb.b[:900], chunks=(500,)), 1e-6, link="softmax")
    with pytest.raises(InputError, match=r"b must have shape \(1000,\)"):  # numpy, wrong length
        sn.solve(A, pb.b[:900], 1e-6, link="softmax")
    with pytest.raises(InputError, match=r"y must have shape \(1000,\)"):
        SketchedLogisticRegression().fit(A, (pb.b[:900] > 0).astype(int))


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

        def kill_one(intermediate_result):
            if intermediate_result.nit == 2 and not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

        res = sn.solve(A, b, 1e-8, link="resnet", method="pcg", random_state=7, callback=kill_one)
        assert killed
        np.testing.assert_array_equal(res.x, ref.x)
        assert res.nit == ref.nit


# -- a cluster started as users start one -------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory):
    """``dask scheduler`` and two ``dask worker`` processes started with dask's command line."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("dask-cli")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.path.dirname(__file__)]))
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], cwd=workdir, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                 "--memory-limit", "1GiB", "--no-dashboard", "--local-directory", str(workdir)],
                cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=60)
            yield c, workdir
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_cluster_started_from_the_command_line_reads_blocks_from_files(cli_cluster):
    c, workdir = cli_cluster
    assert len(c.scheduler_info()["workers"]) == 2
    pb = make_regression_problem(4000, 12, link="resnet", nnz_per_row=5, z_std=1.0, random_state=9)
    paths = []
    for i in range(0, 4000, 500):
        path = str(workdir / f"A_{i}.npz")
        sp.save_npz(path, pb.A[i:i + 500])
        paths.append(path)
    # the workers load the blocks lazily from the files; the client never holds A
    blocks = [da.from_delayed(dask.delayed(sp.load_npz)(p), shape=(500, 12), dtype=float,
                              meta=sp.csr_matrix((0, 12))) for p in paths]
    A = da.concatenate(blocks)
    ref = sn.solve(pb.A, pb.b, 1e-8, method="pcg", random_state=0)
    t0 = time.perf_counter()
    res = sn.solve(A, pb.b, 1e-8, method="pcg", random_state=0)
    assert res.success and np.linalg.norm(res.x - ref.x) <= 1e-8, (res.message, time.perf_counter() - t0)
    y = (pb.A @ pb.x_true > 0).astype(int)
    est = SketchedLogisticRegression(C=10.0, method="exact").fit(A, y)
    ref_est = SketchedLogisticRegression(C=10.0, method="exact").fit(pb.A, y)
    np.testing.assert_allclose(est.coef_, ref_est.coef_, atol=1e-6)


# -- the driver's checks on the Dask path (issue 27: they were tested in memory only) -----------
@pytest.mark.parametrize("method", ["exact", "pcg"])
def test_saddle_is_escaped_on_dask(method):
    """cosh from x0 = 0: a stationary point with negative curvature. The curvature probe (a block
    product) and the escape along its most negative Ritz vector run on the blocks; the solve
    reaches a minimiser (+-x_true) as in memory."""
    pb = make_regression_problem(2000, 6, link="cosh", nnz_per_row=3, z_std=1.0, random_state=0)
    A, b = as_dask(pb.A, pb.b)
    res = sn.solve(A, b, 1e-8, link="cosh", x0=np.zeros(6), method=method, random_state=0)
    err = min(np.linalg.norm(res.x - pb.x_true), np.linalg.norm(res.x + pb.x_true))
    assert res.success and err <= 1e-8 and res.nit > 0, (err, res.message)


@pytest.mark.parametrize("scale", [1e-150, 1e8])
def test_success_is_honest_at_every_scale_on_dask(scale):
    """``A * s`` on Dask: success only within eps of the in-memory answer's minimiser, and at
    1e-150 (minimiser ~1e150) the attainable-accuracy floor is computed on the blocks."""
    pb = make_regression_problem(2000, 6, link="resnet", nnz_per_row=3, z_std=1.0, noise=0.1,
                                 random_state=0)
    ref = sn.solve(pb.A, pb.b, 1e-12, method="exact", random_state=0)
    A, b = as_dask(pb.A * scale, pb.b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sn.ConvergenceWarning)
        res = sn.solve(A, b, 1e-6, method="exact", random_state=0)
    err = np.linalg.norm(res.x - ref.x / scale)
    if res.success:
        assert err <= 1e-6, (err, res.error_bound)
    else:
        assert "attainable accuracy" in res.message, res.message
    if scale >= 1e-8:
        assert res.success, res.message


# -- read-only blocks from files (out of core without spilling) ---------------------------------
def _digest(folder):
    import hashlib

    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        with open(path, "rb") as fh:
            out[name] = (hashlib.sha256(fh.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


def _blocks_on_workers(dask_worker):
    """(kind, holds a matrix) of every row block in a worker's memory, and the bytes spilled."""
    from sketchnewton._blocks import Block, FileBlock

    spilled = getattr(dask_worker.data, "spilled_total", None)
    return ([(type(v).__name__, not isinstance(v, FileBlock) or v.A is not None)
             for v in dask_worker.data.values() if isinstance(v, Block)],
            0 if spilled is None else spilled.disk)


@pytest.fixture
def local_client(client):
    """The module's cluster as the current client (after ``cli_cluster``, the client of that
    other cluster is current)."""
    with client.as_current():
        yield client


def _wait_for_no_blocks(client, timeout=20.0):
    import gc

    gc.collect()
    t0 = time.perf_counter()
    while any(blocks for blocks, _ in client.run(_blocks_on_workers).values()):
        assert time.perf_counter() - t0 < timeout, "the workers still hold blocks"
        time.sleep(0.05)


@pytest.mark.parametrize("dense", [False, True])
def test_read_only_blocks_from_files_solve_as_in_memory(local_client, tmp_path, dense):
    """A solve from read-only blocks (each task maps its block's files) equals the in-memory
    solve, counts the passes of the persisted blocks, leaves the files as they were, and no
    worker holds a block's matrix during nor after it."""
    client = local_client
    pb = make_regression_problem(3000, 15, link="softmax", nnz_per_row=5, z_std=1.0,
                                 random_state=3)
    A = pb.A.toarray() if dense else pb.A
    folder = str(tmp_path / "A")
    stored = backend.save_blocks(A, folder, rows_per_block=CHUNK)
    assert stored.shape == A.shape and stored.chunks[0] == (700, 700, 700, 700, 200)
    before = _digest(folder)
    eps = 1e-7
    for method in ("exact", "pcg"):
        ref = sn.solve(A, pb.b, eps, link="softmax", method=method, random_state=0)
        persisted = sn.solve(backend.from_files(folder, persist=True), pb.b, eps, link="softmax",
                             method=method, random_state=0)
        _wait_for_no_blocks(client)  # the persisted blocks released
        seen = []

        def inspect(intermediate_result):
            seen.append(client.run(_blocks_on_workers))

        res = sn.solve(backend.from_files(folder, persist=False), pb.b, eps, link="softmax",
                       method=method, random_state=0, callback=inspect)
        assert res.success and np.linalg.norm(res.x - ref.x) <= eps
        assert res.nit == persisted.nit and res.passes == persisted.passes
        np.testing.assert_allclose(res.x, persisted.x, rtol=0, atol=1e-12)
        assert len(seen) == res.nit + 1
        for state in seen:  # during the solve: only the blocks' vectors and sources
            kinds = [k for blocks, _ in state.values() for k in blocks]
            assert kinds and all(k == ("FileBlock", False) for k in kinds), kinds
            assert all(spilled == 0 for _, spilled in state.values())
        _wait_for_no_blocks(client)  # after it: nothing (the result keeps no block alive)
    assert _digest(folder) == before


def test_files_for_an_estimator_with_intercept(local_client, tmp_path):
    rng = np.random.default_rng(0)
    X = sp.random(2000, 12, density=0.4, random_state=rng, format="csr")
    y = np.digitize(X @ rng.standard_normal(12), [-0.3, 0.3])
    folder = str(tmp_path / "X")
    backend.save_blocks((X[i:i + 600] for i in range(0, 2000, 600)), folder)
    kw = dict(C=10.0, method="exact", tol=1e-10, random_state=0)
    ref = SketchedLogisticRegression(**kw).fit(X, y)
    est = SketchedLogisticRegression(**kw).fit(backend.from_files(folder, persist=False), y)
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-6)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-6)


class _FakeClient:
    def __init__(self, limits):
        self.limits = limits

    def scheduler_info(self):
        return {"workers": {f"w{i}": {"memory_limit": m} for i, m in enumerate(self.limits)}}


def test_persist_auto_and_checks(tmp_path):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    folder = str(tmp_path / "A")
    stored = backend.save_blocks(pb.A, folder, rows_per_block=300)
    nbytes = stored.nbytes
    # in memory when the blocks fill at most half of the workers' memory limits
    assert stored.in_memory(_FakeClient([nbytes, nbytes]))
    assert not stored.in_memory(_FakeClient([nbytes // 2, nbytes // 2]))
    assert stored.in_memory(_FakeClient([0, 0]))  # no limit
    assert not backend.from_files(folder, persist=False).in_memory(_FakeClient([10 * nbytes]))
    with pytest.raises(InputError, match="persist"):
        backend.from_files(folder, persist="never")
    with pytest.raises(InputError, match="already holds row blocks"):
        backend.save_blocks(pb.A, folder, rows_per_block=300)
    with pytest.raises(InputError, match="no row blocks"):
        backend.from_files(str(tmp_path / "missing"))
    with pytest.raises(InputError, match="rows_per_block"):
        backend.save_blocks(pb.A, str(tmp_path / "B"))


def test_changed_block_file_is_refused(local_client, tmp_path):
    pb = make_regression_problem(1000, 10, link="softmax", nnz_per_row=4, random_state=0)
    folder = str(tmp_path / "A")
    backend.save_blocks(pb.A, folder, rows_per_block=500)
    loss = backend.normalized_loss(backend.from_files(folder, persist=False), pb.b, link="softmax")
    loss.evaluate(np.zeros(10))
    path = os.path.join(folder, "block_00001.data.npy")
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(InputError, match="changed during the solve"):
        loss.evaluate(np.ones(10))
