"""Every numba kernel against a numpy / scipy reference on random canonical CSR matrices.

Each kernel runs on 1 and several chunks, with both plans of the transposed products
(``ratio=0``: per-thread buffers always; ``ratio=1e30``: never, so the threads split the
columns on wide matrices, or one part runs alone on tall ones). Results are compared with a
tolerance, never bit for bit (the summation order depends on the plan).
"""

import numba
import numpy as np
import pytest
import scipy.sparse as sp

from sketchnewton._kernels import BUFFER_RATIO, chunk_range, csr_plan, sum_chunks
from sketchnewton._kernels import glm, linalg, links, sketch
from sketchnewton._kernels.random import sample_distinct_columns
from sketchnewton._links import COSH, RESNET, SINH, SOFTMAX, link_numpy, link_shift
from sketchnewton._matrix import DataMatrix, InterceptMatrix

RTOL = 1e-12
ATOL = 1e-12
BUFFERED, NO_BUFFERS = 0.0, 1e30


def random_csr(n, d, density, seed, empty_rows=(0, 3)):
    """Canonical CSR (sorted, no duplicates) with some empty rows and an empty column."""
    A = sp.random(n, d, density=density, format="csr", random_state=seed,
                  data_rvs=np.random.default_rng(seed).standard_normal)
    A = A.tolil()
    for i in empty_rows:
        if i < n:
            A[i, :] = 0
    A[:, d // 2] = 0
    A = A.tocsr()
    A.eliminate_zeros()
    A.sort_indices()
    assert A.has_canonical_format
    return A


def kernel_csr(A):
    return A.indptr, A.indices.view(np.uint32), A.data


# tall: buffers are small against the non-zeros; wide: the column split pays (n << d)
SHAPES = {"tall": (300, 40, 0.15), "wide": (60, 700, 0.05)}


@pytest.fixture(params=sorted(SHAPES), scope="module")
def mat(request):
    n, d, density = SHAPES[request.param]
    A = random_csr(n, d, density, seed=len(request.param))
    return A, A.toarray()


@pytest.fixture(params=[1, 2, 3])
def nc(request):
    return request.param


@pytest.fixture(params=[BUFFERED, NO_BUFFERS], ids=["buffered", "no-buffers"])
def ratio(request):
    return request.param


def with_ones(Ad):
    return np.hstack([Ad, np.ones((Ad.shape[0], 1))])


def close(actual, desired):
    np.testing.assert_allclose(actual, desired, rtol=RTOL, atol=ATOL)


# -- the reduction helpers --------------------------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 5, 17])
@pytest.mark.parametrize("k", [1, 2, 3, 8])
def test_chunk_range_covers_range(n, k):
    bounds = [chunk_range(c, n, k) for c in range(k)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (lo, hi), (lo2, _) in zip(bounds, bounds[1:]):
        assert lo <= hi == lo2


def test_sum_chunks():
    rng = np.random.default_rng(0)
    for shape in [(3, 5), (2, 4, 3), (1, 6), (4, 70_000)]:
        buf = rng.standard_normal(shape)
        close(sum_chunks(buf), buf.sum(axis=0))


def test_plan_modes(mat):
    """Buffered plans cut rows; otherwise the columns (wide) or one part (tall)."""
    A, _ = mat
    ip, ix, _ = kernel_csr(A)
    n, d = A.shape
    nb, plan, cuts = csr_plan(ip, ix, d, d + 1, 3, BUFFERED)
    assert nb == 3 and cuts.shape[0] == 0
    assert plan[0, 0] == 0 and plan[-1, 1] == n and (plan[:, 2] == 0).all() and (plan[:, 3] == d + 1).all()
    nb, plan, cuts = csr_plan(ip, ix, d, d + 1, 3, NO_BUFFERS)
    assert nb == 1
    if d > n:  # column split: every row, disjoint column ranges covering [0, d + 1)
        assert plan.shape[0] == 3 and cuts.shape[0] == 4 * n
        assert (plan[:, 0] == 0).all() and (plan[:, 1] == n).all()
        assert plan[0, 2] == 0 and plan[-1, 3] == d + 1 and (plan[1:, 2] == plan[:-1, 3]).all()
        cuts = cuts.reshape(4, n)
        for c in range(3):
            for i in range(n):
                cols = ix[cuts[c, i]:cuts[c + 1, i]]
                assert ((cols >= plan[c, 2]) & (cols < plan[c, 3])).all()
        assert (cuts[0] == ip[:-1]).all() and (cuts[3] == ip[1:]).all()
    else:  # the cut arrays would outweigh the buffers: one part
        assert plan.shape[0] == 1 and cuts.shape[0] == 0
    assert BUFFER_RATIO > 1


def test_column_split_balances_skewed_columns():
    """Columns sorted by frequency (a vocabulary): the split follows the non-zeros, not the ids."""
    rng = np.random.default_rng(3)
    n, d = 2000, 50_000
    cols = np.minimum((rng.pareto(1.0, 40 * n) * 10).astype(np.int64), d - 1)
    A = sp.csr_matrix((np.ones(cols.size), (np.repeat(np.arange(n), 40), cols)), shape=(n, d))
    A.sum_duplicates()
    A.sort_indices()
    ip, ix, _ = kernel_csr(A)
    nb, plan, cuts = csr_plan(ip, ix, d, d, 2, NO_BUFFERS)
    assert nb == 1 and plan.shape[0] == 2
    share = np.count_nonzero(ix < plan[0, 3]) / ix.size
    assert 0.4 < share < 0.6


# -- products ------------------------------------------------------------------------------------

def test_matvec_matmat(mat):
    A, Ad = mat
    rng = np.random.default_rng(1)
    x = rng.standard_normal(A.shape[1])
    X = rng.standard_normal((A.shape[1], 3))
    close(linalg.csr_matvec(*kernel_csr(A), x, np.empty(A.shape[0])), Ad @ x)
    close(linalg.csr_matmat(*kernel_csr(A), X, np.empty((A.shape[0], 3))), Ad @ X)


def test_rmatvec_rmatmat(mat, nc, ratio):
    A, Ad = mat
    n, d = A.shape
    rng = np.random.default_rng(2)
    y = rng.standard_normal(n)
    y[1] = 0.0
    Y = rng.standard_normal((n, 4))
    close(linalg.csr_rmatvec(*kernel_csr(A), y, d, nc, ratio), Ad.T @ y)
    close(linalg.csr_rmatmat(*kernel_csr(A), Y, d, nc, ratio), Ad.T @ Y)
    close(linalg.csr_abs_rmatmat(*kernel_csr(A), Y, d, nc, ratio), np.abs(Ad).T @ Y)


def test_rmatmat_add_over_runs_of_rows(mat, nc, ratio):
    """``out += A.T @ Y`` run by run of rows (``indptr[a:b + 1]``, the whole ``indices`` and
    ``data``) into one output: the product with ``A`` whole, plus what ``out`` held."""
    A, Ad = mat
    n, d = A.shape
    rng = np.random.default_rng(5)
    Y = rng.standard_normal((n, 3))
    out0 = rng.standard_normal((d, 3))
    out = out0.copy()
    indptr, indices, data = kernel_csr(A)
    for a, b in [(0, 0), (0, 7), (7, n // 2), (n // 2, n)]:
        got = linalg.csr_rmatmat_add(indptr[a:b + 1], indices, data, Y[a:b], d, nc, out, ratio)
        assert got is out
    close(out, out0 + Ad.T @ Y)


@pytest.mark.parametrize("ones", [False, True])
def test_normal_matvec(mat, nc, ratio, ones):
    A, Ad = mat
    n, d = A.shape
    M = with_ones(Ad) if ones else Ad
    rng = np.random.default_rng(3)
    h = rng.random(n)
    h[2] = 0.0
    v = rng.standard_normal(M.shape[1])
    z = np.empty(n)
    close(linalg.csr_normal_matvec(*kernel_csr(A), h, v, ones, d, nc, z, ratio), M.T @ (h * (M @ v)))
    close(z, M @ v)


@pytest.mark.parametrize("ones", [False, True])
def test_weighted_col_sq(mat, nc, ratio, ones):
    A, Ad = mat
    M = with_ones(Ad) if ones else Ad
    w = np.random.default_rng(4).random(A.shape[0])
    close(linalg.csr_weighted_col_sq(*kernel_csr(A), w, ones, A.shape[1], nc, ratio), (M * M).T @ w)


@pytest.mark.parametrize("ones", [False, True])
def test_gram(mat, nc, ratio, ones):
    A, Ad = mat
    M = with_ones(Ad) if ones else Ad
    rng = np.random.default_rng(5)
    rows = rng.integers(0, A.shape[0], 25).astype(np.int64)  # repeats allowed
    w = rng.random(25) - 0.2
    G = linalg.csr_gram(*kernel_csr(A), rows, w, A.shape[1], nc, ones, ratio)
    close(G, M[rows].T @ (w[:, None] * M[rows]))
    assert np.array_equal(G, G.T)


def multinomial_refs(M, P, sw, V):
    Z = M @ V
    Mw = sw[:, None] * P * (Z - (P * Z).sum(axis=1, keepdims=True))
    return M.T @ Mw, Z


def random_probs(n, K, seed):
    P = np.random.default_rng(seed).random((n, K))
    return P / P.sum(axis=1, keepdims=True)


def class_setup(mat, ones, K, seed):
    """``(A, [A, 1] or A dense, P (n, K) row probabilities, sw (n,) weights)``."""
    A, Ad = mat
    return A, with_ones(Ad) if ones else Ad, random_probs(A.shape[0], K, seed), \
        np.random.default_rng(seed + 1).random(A.shape[0])


@pytest.mark.parametrize("ones", [False, True])
def test_class_blocks(mat, nc, ratio, ones):
    K = 3
    A, M, P, sw = class_setup(mat, ones, K, 6)
    M2 = M * M
    ref = np.einsum("ij,i,ik,kl->jkl", M2, sw, P, np.eye(K)) - np.einsum("ij,i,ik,il->jkl", M2, sw, P, P)
    close(linalg.csr_class_blocks(*kernel_csr(A), P, sw, ones, A.shape[1], nc, ratio), ref)


def logits_of(P):
    """``(Z, stats, P')``: logits of the row probabilities ``P``, their softmax statistics and
    the probabilities formed from them (``P`` to rounding)."""
    n = P.shape[0]
    Z, stats = np.log(P), np.empty((n, 2))
    glm.multinomial_pass(Z, np.zeros(n, dtype=np.int64), np.ones(n), stats)
    return Z, stats, glm.multinomial_probs(Z, stats, np.empty_like(P))


@pytest.mark.parametrize("ones", [False, True])
def test_multinomial_hessp(mat, nc, ratio, ones):
    K = 4
    A, M, P, sw = class_setup(mat, ones, K, 8)
    Zl, stats, P = logits_of(P)
    V = np.random.default_rng(10).standard_normal((M.shape[1], K))
    Zd = np.empty((A.shape[0], K))
    out = glm.csr_multinomial_hessp(*kernel_csr(A), P, sw, V, ones, A.shape[1], nc, Zd, ratio)
    ref, Z = multinomial_refs(M, P, sw, V)
    close(out, ref)
    close(Zd, Z)
    # without the image: the same product
    alone = glm.csr_multinomial_hessp(*kernel_csr(A), P, sw, V, ones, A.shape[1], nc,
                                      np.empty((0, K)), ratio)
    np.testing.assert_array_equal(alone, out)
    # through DataMatrix from the logits (the probabilities formed) and from kept ones
    dm = InterceptMatrix(DataMatrix(A)) if ones else DataMatrix(A)
    from_logits, _ = dm.multinomial_hessp(Zl, stats, sw, V)
    kept, _ = dm.multinomial_hessp(Zl, stats, sw, V, P=P)
    np.testing.assert_array_equal(from_logits, kept)
    close(kept, ref)


# -- row kernels of the losses ---------------------------------------------------------------

def test_logistic_and_poisson_pass():
    rng = np.random.default_rng(11)
    z = rng.standard_normal(500) * 30
    y = (rng.random(500) < 0.5).astype(float)
    sw = rng.random(500)
    r, h = np.empty(500), np.empty(500)
    loss = glm.logistic_pass(z, y, sw, r, h)
    p = 1.0 / (1.0 + np.exp(-z))
    close(r, sw * (p - y))
    close(h, sw * p * (1 - p))
    np.testing.assert_allclose(loss, np.sum(sw * (np.logaddexp(0, z) - y * z)), rtol=1e-12)
    z = rng.standard_normal(500)
    yc = rng.poisson(2.0, 500).astype(float)
    loss = glm.poisson_pass(z, yc, sw, r, h)
    mu = np.exp(z)
    close(r, sw * (mu - yc))
    close(h, sw * mu)
    term = mu - yc + np.where(yc > 0, yc * (np.log(np.where(yc > 0, yc, 1)) - z), 0)
    np.testing.assert_allclose(loss, np.sum(sw * term), rtol=1e-12)


def test_multinomial_row_kernels():
    rng = np.random.default_rng(12)
    n, K = 400, 5
    Z = rng.standard_normal((n, K)) * 5
    y = rng.integers(0, K, n)
    sw = rng.random(n)
    stats = np.empty((n, 2))
    loss = glm.multinomial_pass(Z, y, sw, stats)
    P = glm.multinomial_probs(Z, stats, np.empty((n, K)))
    # the rows' terms of any block, summed the same way: the same number
    terms = np.empty(n)
    glm.multinomial_row_terms(Z[:150], y[:150], sw[:150], np.empty((150, 2)), terms[:150])
    glm.multinomial_row_terms(Z[150:], y[150:], sw[150:], np.empty((n - 150, 2)), terms[150:])
    assert glm.block_total(terms) == loss
    ref = np.exp(Z - Z.max(axis=1, keepdims=True))
    ref /= ref.sum(axis=1, keepdims=True)
    close(P, ref)
    onehot = np.eye(K)[y]
    close(glm.multinomial_residual(P, y, sw, np.empty((n, K))), sw[:, None] * (ref - onehot))
    lse = np.log(np.exp(Z - Z.max(axis=1, keepdims=True)).sum(axis=1)) + Z.max(axis=1)
    np.testing.assert_allclose(loss, np.sum(sw * (lse - Z[np.arange(n), y])), rtol=1e-12)
    Zd = rng.standard_normal((n, K))
    out = glm.multinomial_hess_weights(P, sw, Zd, np.empty((n, K)))
    close(out, sw[:, None] * P * (Zd - (P * Zd).sum(axis=1, keepdims=True)))
    close(glm.multinomial_curvature(P, sw, np.empty(n)), sw * np.maximum(1 - (P * P).sum(axis=1), 0))


@pytest.mark.parametrize("link", [RESNET, SOFTMAX, COSH, SINH])
@pytest.mark.parametrize("normalize", [False, True])
def test_link_values_sums(link, normalize, nc):
    rng = np.random.default_rng(13)
    n = 301
    z = rng.standard_normal(n) + 0.5  # sum(sinh(z)) > 0
    b = rng.random(n) / n
    w2 = rng.random(n)
    u, v, q = np.empty(n), np.empty(n), np.empty(n)
    m = link_shift(z, link) if normalize else 0.3
    links.scaled_exponentials(z, link, m, u, v)
    sums = links.link_values(z, b, w2, link, m, normalize, u, v, q, nc)
    if normalize:
        phi, dphi, ddphi, shift = link_numpy(z, link)
        alpha = phi.sum()
        ru, rv, rq = phi / alpha, dphi / alpha, ddphi / alpha
        np.testing.assert_allclose(sums[8], shift + np.log(alpha), rtol=1e-12)
    else:
        ru, rv, rq, _ = link_numpy(z, link, m)
        assert sums[8] == m
    close(u, ru)
    close(v, rv)
    close(q, rq)
    r = ru - b
    ref = [ru.sum(), ru @ ru, ru @ r, ru @ b, r @ r, r @ b, b @ b, w2 @ (z * z)]
    if normalize:
        ref[0] = 1.0
    np.testing.assert_allclose(sums[:8], ref, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("mode", [links.COMBINED, links.PARTIAL])
@pytest.mark.parametrize("n_cols", [1, 3, 4])
@pytest.mark.parametrize("has_w", [False, True])
def test_link_weights(mat, mode, n_cols, has_w):
    n = mat[0].shape[0]
    rng = np.random.default_rng(14)
    z, b, u, v = (rng.standard_normal(n) for _ in range(4))
    w2 = rng.random(n) if has_w else np.empty(0)
    fc = 0.37
    Y = links.link_weights(z, b, w2, u, v, fc, mode, np.empty((n, n_cols)))
    r = u - b
    wz = w2 * z if has_w else np.zeros(n)
    if mode == links.COMBINED:
        cols = [v * (r - fc) + wz, v, (u + r) * v, u * v]
    else:
        cols = [v * r, v * u, v, wz]
    close(Y, np.column_stack(cols[:n_cols]))


# -- sketches ------------------------------------------------------------------------------------

def test_countsketch(mat, nc, ratio):
    A, Ad = mat
    n, d = A.shape
    rng = np.random.default_rng(15)
    s = 7
    buckets = rng.integers(0, s, n)
    signs = rng.choice([-1.0, 1.0], n)
    scale = rng.random(n)
    scale[4] = 0.0
    S = np.zeros((s, n))
    S[buckets, np.arange(n)] = signs
    ref = S @ (scale[:, None] * Ad)
    close(sketch.countsketch_csr(*kernel_csr(A), scale, buckets, signs, s, d, nc, ratio), ref)
    # the signed indices the sketch operators pass work too
    close(sketch.countsketch_csr(A.indptr, A.indices, A.data, scale, buckets, signs, s, d, nc, ratio), ref)
    M = rng.standard_normal((n, 5))
    close(sketch.countsketch_dense(M, scale, buckets, signs, s, nc, ratio), S @ (scale[:, None] * M))


def test_projected_rownorms_quadforms_scaled_rows(mat, nc):
    A, Ad = mat
    n, d = A.shape
    rng = np.random.default_rng(16)
    scale = rng.random(n)
    Z = rng.standard_normal((d, 3))
    close(sketch.csr_projected_rownorms(*kernel_csr(A), scale, Z, nc),
          ((scale[:, None] * (Ad @ Z)) ** 2).sum(1))
    B = rng.standard_normal((d, d))
    K = B @ B.T
    close(sketch.csr_row_quadforms(*kernel_csr(A), scale, K),
          scale ** 2 * np.einsum("ij,jk,ik->i", Ad, K, Ad))
    rows = np.array([3, 1, 1, n - 1], dtype=np.int64)
    w = rng.random(4)
    close(sketch.csr_scaled_rows(*kernel_csr(A), rows, w, d), w[:, None] * Ad[rows])


def test_fwht():
    rng = np.random.default_rng(17)
    X = rng.standard_normal((16, 3))
    H = np.array([[1.0]])
    while H.shape[0] < 16:
        H = np.block([[H, H], [H, -H]])
    close(sketch.fwht_inplace(X.copy()), H @ X)
    close(sketch.fwht_inplace_parallel(X.copy()), H @ X)


def test_bernoulli_kernels():
    scores = np.array([0.0, 0.5, 2.0, 0.1, -1.0])
    u = np.array([0.1, 0.1, 0.99, 0.5, 0.0])
    a, bconst, c = 1.0, 0.1, 1.0
    n_sat, p_sat = sketch.bernoulli_saturation(scores, a, bconst, c)
    assert n_sat == 1 and p_sat == pytest.approx(2.1)
    rows, w = sketch.bernoulli_rows(scores, a, bconst, c, u)
    pi = np.minimum(1.0, c * (a * scores + bconst))
    keep = (scores > 0) & (u < pi)
    assert np.array_equal(rows, np.flatnonzero(keep))
    close(w, 1 / np.sqrt(pi[keep]))


@pytest.mark.parametrize("n_blocks", [1, 3])
def test_sample_distinct_columns(n_blocks):
    rng = np.random.default_rng(18)
    k, m, n = 5, 12, 50
    colmap = np.arange(m) * 2
    out = sample_distinct_columns(rng.random(n * k), k, m, colmap, np.empty(n * k, np.int64), n_blocks)
    rows = out.reshape(n, k)
    assert (np.diff(rows, axis=1) > 0).all() and np.isin(rows, colmap).all()
    u = rng.random(n * k)
    a = sample_distinct_columns(u, k, m, colmap, np.empty(n * k, np.int64), 1)
    b = sample_distinct_columns(u, k, m, colmap, np.empty(n * k, np.int64), n_blocks)
    assert np.array_equal(a, b)  # the blocks change the speed only


def test_threads_agree():
    """The kernels through DataMatrix on every thread count agree (within rounding)."""
    from sketchnewton._matrix import DataMatrix

    A = random_csr(2000, 300, 0.2, seed=19)  # above PARALLEL_MIN_NNZ? not needed: chunks vary
    dm = DataMatrix(A)
    y = np.random.default_rng(20).standard_normal(A.shape[0])
    ref = A.T @ y
    previous = numba.get_num_threads()
    try:
        for t in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(t)
            close(linalg.csr_rmatvec(*dm.kernel_csr, y, A.shape[1], t), ref)
    finally:
        numba.set_num_threads(previous)
