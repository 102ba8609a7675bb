"""Face solves of the L1 model on a dense H (sketchnewton/strategies/_face.py)."""

import numpy as np

from sketchnewton._kernels.cd import gram_cd
from sketchnewton.strategies._face import face_cycles


def test_face_cycles_find_the_minimiser_where_coordinate_descent_stalls():
    """A lasso model whose Hessian has condition ~1e14 (columns on scales 1 to 1e4, a nearly
    collinear pair): from coordinate descent stopped short of its tolerance (3 sweeps), the
    active-set cycles reach a point that satisfies the model's optimality conditions (checked
    here by numpy) and a lower model value."""
    rng = np.random.default_rng(0)
    n, p = 200, 30
    B = rng.standard_normal((n, p)) * np.where(rng.random((n, p)) < 0.3, 1e4, 1.0)
    B[:, 1] = B[:, 0] + 1e-3 * rng.standard_normal(n)  # nearly collinear pair
    H = B.T @ B
    g = B.T @ rng.standard_normal(n) * 10.0
    w = np.full(p, 0.05 * np.abs(g).max())
    x = np.zeros(p)

    def model(d):
        return g @ d + 0.5 * d @ H @ d + w @ np.abs(x + d)

    d, Hd = np.zeros(p), np.zeros(p)
    tol = 1e-10 * np.abs(g).max()
    sweeps, violation = gram_cd(H, g, w, x, np.arange(p, dtype=np.int64), d, Hd, tol, 3)
    assert sweeps == 3 and violation > 1e3 * tol  # stopped short
    stalled = model(d)
    assert face_cycles(H, g, w, x, d, Hd, tol)
    np.testing.assert_allclose(Hd, H @ d, rtol=1e-9, atol=1e-9 * np.abs(H @ d).max())
    assert model(d) < stalled
    G = g + H @ d
    z = x + d
    on = z != 0
    scale = np.abs(g).max()
    np.testing.assert_allclose(G[on] + w[on] * np.sign(z[on]), 0.0, atol=1e-8 * scale)
    assert np.all(np.abs(G[~on]) <= w[~on] * (1 + 1e-9))
