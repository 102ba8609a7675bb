"""Regenerate the fixed problem instances in ``data/`` and their reference solutions.

Usage (from the repository root)::

    python scripts/make_reference_data.py            # rewrite data/
    python scripts/make_reference_data.py --check    # regenerate into a temp dir, compare with data/
    python scripts/make_reference_data.py --only resnet_plain softmax_lam

Every instance is drawn by :mod:`sketchnewton.datasets` with a fixed seed;
only the generator is taken from the package. The reference solutions are
computed independently of sketchnewton's solver and loss kernels:

* normalized regression (``resnet``, ``softmax``, ``cosh``, ``sinh``): the
  objective, gradient and Hessian are written out below in plain numpy from
  the closed forms of docs/math.md section 2 (checked here against central
  finite differences on every instance), minimised by
  ``scipy.optimize.minimize(method="trust-exact")`` from the planted ``x_true``
  and then polished by pure Newton steps while the gradient norm decreases; a
  second run from a solver-like start (0, or a small vector for sinh/cosh)
  must reach the same minimiser (``second_start_distance`` in the manifest);
* classification: ``sklearn.linear_model.LogisticRegression(solver=
  "newton-cholesky", tol=1e-12)``; the gradient of scikit-learn's objective
  at its solution is then evaluated in plain numpy.

Each instance is a folder ``data/<name>/`` holding ``A.npz``
(``scipy.sparse.save_npz``, CSR), ``.npy`` vectors (``b``, ``x_true``,
``x_ref``, ``w``; ``y``, ``coef_ref``, ``intercept_ref`` for classification)
and ``manifest.json`` (generator call, problem parameters, reference
objective, gradient norm, Newton decrement and how they were computed).

The output is deterministic: re-running the script rewrites every file bit for
bit (numpy's ``.npz`` zip entries carry no time stamp). ``--check``
regenerates everything into a temporary directory and compares arrays: A and
the data exactly, reference solutions to 1e-12 relative, so that another BLAS
or LAPACK build does not fail it.
"""

import argparse
import json
import math
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize

from sketchnewton import datasets

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SCHEMA_VERSION = 1

# Tolerance of --check on reference quantities (everything else must be equal).
CHECK_RTOL = 1e-12

# ----------------------------------------------------------------------------
# the instances
# ----------------------------------------------------------------------------
# Regularisation is set relative to the data term's curvature, which scales
# like (nnz_per_row / d) / n for these planted problems (docs/math.md 2.7: f ~ 1/n):
# lam = LAM_REL * (k / d) / n moves the minimiser visibly without swamping it.

INSTANCES = {
    # every link, planted and noiseless (the minimiser is x_true, loss 0)
    "resnet_plain": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="resnet", seed=101),
    "softmax_plain": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="softmax", seed=102),
    "cosh_plain": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="cosh", seed=103),
    "sinh_plain": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="sinh", seed=104),
    # every link with ridge
    "resnet_lam": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="resnet", seed=111,
                       lam_rel=0.3),
    "softmax_lam": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="softmax", seed=112,
                        lam_rel=0.3),
    "cosh_lam": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="cosh", seed=113,
                     lam_rel=0.3),
    "sinh_lam": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="sinh", seed=114,
                     lam_rel=0.3),
    # the papers' regulariser 1/2 ||diag(w) A x||^2 with per-row weights, plus ridge
    "softmax_w": dict(kind="normalized", n=1000, d=20, nnz_per_row=8, link="softmax", seed=121,
                      w_rel=0.5, lam_rel=0.1),
    # non-planted: noisy target, non-zero residual at the optimum
    "resnet_noisy": dict(kind="normalized", n=2000, d=10, nnz_per_row=5, link="resnet", seed=131,
                         noise=0.5),
    # coherent: a few heavy rows with leverage 1
    "softmax_coherent": dict(kind="normalized", n=1000, d=30, nnz_per_row=6, link="softmax",
                             seed=141, coherence=1.0, n_heavy=3),
    # ill-conditioned: column scales 1e-2 .. 1e2 (condition number of A ~ 1e4)
    "resnet_illcond": dict(kind="normalized", n=1000, d=10, nnz_per_row=6, link="resnet", seed=151,
                           column_scale=[1e-2, 1e2], lam_rel=0.01),
    # classification, scikit-learn's objective C * sum_i loss_i + 1/2 ||coef||^2
    "logistic_binary": dict(kind="classification", n=3000, d=20, nnz_per_row=4, n_classes=2,
                            seed=161, C=1.0, separation=2.0),
    "multinomial_k4": dict(kind="classification", n=2000, d=12, nnz_per_row=4, n_classes=4,
                           seed=171, C=10.0, separation=2.0),
}


# ----------------------------------------------------------------------------
# normalized regression in plain numpy (docs/math.md section 2)
# ----------------------------------------------------------------------------

def _link_terms(z, link):
    """``phi, phi', phi''`` at ``z``, all times ``exp(-s)`` for a shift ``s >= 0`` (no overflow).

    Only ratios to ``alpha = sum(phi)`` are used, and the common factor cancels.
    """
    if link == "softmax":
        e = np.exp(z - z.max())
        return e, e, e
    if link == "resnet":
        s = max(float(z.max()), 0.0)
        e = np.exp(z - s)
        return e + z * math.exp(-s), e + math.exp(-s), e
    s = float(np.abs(z).max())
    ep, em = 0.5 * np.exp(z - s), 0.5 * np.exp(-z - s)
    if link == "cosh":
        return ep + em, ep - em, ep + em
    if link == "sinh":
        return ep - em, ep + em, ep - em
    raise ValueError(link)


class NumpyNormalizedLoss:
    """``1/2 ||phi(Ax)/<phi(Ax),1> - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2`` in plain numpy.

    Parameters
    ----------
    A : scipy sparse (n, d)
    b : ndarray (n,)
    link : str
    lam : float
    w : ndarray (n,) or None
    """

    def __init__(self, A, b, link, lam=0.0, w=None):
        self.A = sp.csr_matrix(A)
        self.b = np.asarray(b, dtype=float)
        self.link = link
        self.lam = float(lam)
        self.w2 = np.zeros(self.A.shape[0]) if w is None else np.asarray(w, float) ** 2

    def _parts(self, x):
        z = self.A @ x
        u, vs, qs = _link_terms(z, self.link)
        alpha = u.sum()
        if not alpha > 0:
            return None
        f = u / alpha
        c = f - self.b
        fun = 0.5 * (c @ c) + 0.5 * (self.w2 * z) @ z + 0.5 * self.lam * (x @ x)
        return z, f, c, vs / alpha, qs / alpha, fun

    def fun(self, x):
        parts = self._parts(x)
        return math.inf if parts is None else parts[-1]

    def fun_grad(self, x):
        parts = self._parts(x)
        if parts is None:  # outside the domain alpha > 0: trust-exact rejects the step
            return math.inf, np.zeros_like(x)
        z, f, c, va, _, fun = parts
        r = va * (c - f @ c)
        return fun, self.A.T @ (r + self.w2 * z) + self.lam * x

    def hessian(self, x):
        parts = self._parts(x)
        if parts is None:  # trust-exact may ask at a trial point it is about to reject
            return np.eye(x.size)
        z, f, c, va, qa, _ = parts
        fc, ff = f @ c, f @ f
        delta = va * va + qa * (c - fc) + self.w2
        H = (self.A.T @ (self.A.multiply(delta[:, None]))).toarray()
        K = self.A.T @ np.column_stack([va, (f + c) * va])
        Cm = np.array([[ff + 2 * fc, -1.0], [-1.0, 0.0]])
        H += K @ Cm @ K.T
        H += self.lam * np.eye(x.size)
        return 0.5 * (H + H.T)


def _check_derivatives(loss, x, rng):
    """Central differences of the numpy objective/gradient at ``x``; returns the worst relative error.

    Steps are chosen so that ``z = A x`` moves by about 1e-4 in the largest entry
    (heavy rows and column scales would otherwise make a fixed step too coarse).
    """
    d = x.size
    g = loss.fun_grad(x)[1]
    H = loss.hessian(x)
    errs = []
    for _ in range(3):  # gradient along random directions
        p = rng.standard_normal(d)
        h = 1e-4 / np.abs(loss.A @ p).max()
        fd = (loss.fun(x + h * p) - loss.fun(x - h * p)) / (2 * h)
        errs.append(abs(fd - g @ p) / max(abs(g @ p), 1e-3 * np.linalg.norm(g) * np.linalg.norm(p)))
    Hfd = np.empty_like(H)
    col_max = abs(loss.A).max(axis=0).toarray().ravel()
    for j in range(d):
        e = np.zeros(d)
        e[j] = 1e-4 / col_max[j]
        Hfd[:, j] = (loss.fun_grad(x + e)[1] - loss.fun_grad(x - e)[1]) / (2 * e[j])
    # compare column by column: columns scaled by 1e-2 .. 1e2 differ by 1e8 in size
    errs.append(float(max(np.linalg.norm(Hfd[:, j] - H[:, j]) / np.linalg.norm(H[:, j])
                          for j in range(d))))
    return max(errs)


def normalized_reference(loss, x_start, max_iter=1000):
    """Minimise the numpy loss with trust-exact, then polish with pure Newton steps.

    Returns
    -------
    x : ndarray (d,)
    info : dict
        ``nit`` of trust-exact, ``polish_steps``, ``fun``, ``grad_norm``,
        ``newton_decrement`` (``||H^{-1} g||`` at x: first-order distance to the
        minimiser), ``hessian_min_eig``, ``hessian_cond``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trust-exact warns when rounding stops it
        res = minimize(loss.fun_grad, x_start, jac=True, hess=loss.hessian, method="trust-exact",
                       options=dict(gtol=1e-300, maxiter=max_iter))
    x = res.x
    fun, g = loss.fun_grad(x)
    polish = 0
    for _ in range(20):
        step = np.linalg.solve(loss.hessian(x), g)
        x_new = x - step
        fun_new, g_new = loss.fun_grad(x_new)
        if not np.linalg.norm(g_new) < np.linalg.norm(g):
            break
        x, fun, g = x_new, fun_new, g_new
        polish += 1
    H = loss.hessian(x)
    eig = np.linalg.eigvalsh(H)
    return x, dict(
        trust_exact_nit=int(res.nit),
        polish_steps=polish,
        fun=float(fun),
        grad_norm=float(np.linalg.norm(g)),
        newton_decrement=float(np.linalg.norm(np.linalg.solve(H, g))),
        hessian_min_eig=float(eig[0]),
        hessian_cond=float(eig[-1] / eig[0]) if eig[0] > 0 else math.inf,
    )


def make_normalized(name, spec):
    n, d, k = spec["n"], spec["d"], spec["nnz_per_row"]
    gen_kwargs = dict(link=spec["link"], nnz_per_row=k, z_std=spec.get("z_std", 1.0),
                      noise=spec.get("noise", 0.0), coherence=spec.get("coherence", 0.0),
                      n_heavy=spec.get("n_heavy"), column_scale=spec.get("column_scale"),
                      random_state=spec["seed"])
    P = datasets.make_regression_problem(n, d, **gen_kwargs)
    curvature = (k / d) / n
    lam = spec.get("lam_rel", 0.0) * curvature
    w = None
    if "w_rel" in spec:
        # per-row weights with w^2 ~ w_rel^2 / n^2 ... comparable to the data curvature
        w = (spec["w_rel"] / n) * (0.5 + np.random.default_rng(spec["seed"] + 10**6).random(n))
    loss = NumpyNormalizedLoss(P.A, P.b, P.link, lam=lam, w=w)
    # away from the optimum, where the gradient is not zero
    fd_err = _check_derivatives(loss, 0.8 * P.x_true, np.random.default_rng(0))
    if not fd_err < 1e-5:
        raise AssertionError(f"{name}: numpy derivatives disagree with finite differences ({fd_err:.2e})")
    x_ref, ref = normalized_reference(loss, P.x_true.copy())
    # second opinion from the start sketchnewton.solve uses: the same minimiser must come out,
    # otherwise the instance would test which local minimum a solver lands in
    x_start = _zero_or_default(loss, P)
    x_alt, _ = normalized_reference(loss, x_start)
    second = float(np.linalg.norm(x_alt - x_ref))
    if P.link == "cosh":
        second = min(second, float(np.linalg.norm(x_alt + x_ref)))
    if not second <= 1e-10 * max(1.0, float(np.linalg.norm(x_ref))):
        raise AssertionError(f"{name}: trust-exact from x_true and from the default start disagree "
                             f"by {second:.2e}")
    fun0, g0 = loss.fun_grad(x_start)
    arrays = dict(b=P.b, x_true=P.x_true, x_ref=x_ref)
    if w is not None:
        arrays["w"] = w
    manifest = dict(
        name=name, kind="normalized", schema_version=SCHEMA_VERSION,
        shape=[n, d], nnz=int(P.A.nnz),
        generator=dict(function="sketchnewton.datasets.make_regression_problem",
                       args=[n, d], kwargs=gen_kwargs,
                       alpha_sign_flipped=bool(P.alpha_sign_flipped),
                       heavy_rows=P.info.heavy_rows.tolist()),
        problem=dict(link=P.link, lam=lam, w="w.npy" if w is not None else None,
                     lam_definition=f"lam = {spec.get('lam_rel', 0.0)} * (nnz_per_row / d) / n",
                     w_definition=(None if w is None else
                                   f"w = ({spec.get('w_rel')} / n) * (0.5 + default_rng(seed + 10**6).random(n))"),
                     objective="1/2 ||phi(Ax)/sum(phi(Ax)) - b||^2 + 1/2 ||w * Ax||^2 + lam/2 ||x||^2"),
        files=dict(A="A.npz", b="b.npy", x_true="x_true.npy", x_ref="x_ref.npy"),
        reference=dict(
            x="x_ref.npy",
            method=("scipy.optimize.minimize(method='trust-exact', gtol=1e-300) from x_true (and from "
                    "start_point, as a check) on a "
                    "plain-numpy objective/gradient/Hessian written from docs/math.md section 2 "
                    "(not sketchnewton's kernels), then pure Newton steps while ||grad|| decreases"),
            finite_difference_check=fd_err,
            second_start_distance=second,
            grad_norm_rel=ref["grad_norm"] / float(np.linalg.norm(g0)),
            grad_norm_at_start=float(np.linalg.norm(g0)),
            fun_at_start=float(fun0),
            start_point=("second start and *_at_start: 0 for resnet/softmax, t A^T 1 with "
                         "std(A x) = 0.1 for sinh, x_true/10 for cosh (whose loss is even: "
                         "-x_ref is an equally good minimiser)"),
            **ref,
        ),
    )
    if w is not None:
        manifest["files"]["w"] = "w.npy"
    return P.A, arrays, manifest


def _zero_or_default(loss, P):
    """The kind of start sketchnewton.solve uses (0 is outside the domain for sinh, a saddle for cosh)."""
    link = P.link
    if link == "sinh":
        x0 = np.asarray(P.A.T @ np.ones(P.A.shape[0])).ravel()
        return x0 * (0.1 / np.std(P.A @ x0))
    if link == "cosh":
        return P.x_true / 10
    return np.zeros(P.A.shape[1])


# ----------------------------------------------------------------------------
# classification: scikit-learn as the independent solver
# ----------------------------------------------------------------------------

def sklearn_objective_grad(X, y, coef, intercept, C):
    """scikit-learn's l2 objective and its gradient norm, in plain numpy.

    Binary: ``C sum_i log(1 + exp(-s_i (x_i.coef + b))) + 1/2 ||coef||^2``.
    Multinomial (K > 2): ``-C sum_i log softmax(X coef^T + b)[i, y_i] + 1/2 ||coef||_F^2``.
    """
    X = sp.csr_matrix(X)
    if coef.shape[0] == 1:
        z = X @ coef[0] + intercept[0]
        s = 2.0 * y - 1.0
        fun = C * np.logaddexp(0.0, -s * z).sum() + 0.5 * coef[0] @ coef[0]
        r = -s * 0.5 * (1 - np.tanh(0.5 * s * z))  # d/dz log(1 + exp(-s z)) = -s sigmoid(-s z)
        g = np.concatenate([C * (X.T @ r) + coef[0], [C * r.sum()]])
    else:
        Z = X @ coef.T + intercept
        Z -= Z.max(axis=1, keepdims=True)
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        Y = np.zeros_like(Z)
        Y[np.arange(y.size), y] = 1.0
        fun = -C * logp[np.arange(y.size), y].sum() + 0.5 * np.sum(coef * coef)
        R = np.exp(logp) - Y
        g = np.concatenate([(C * (X.T @ R).T + coef).ravel(), C * R.sum(axis=0)])
    return float(fun), float(np.linalg.norm(g))


def make_classification(name, spec):
    from sklearn import __version__ as skl_version
    from sklearn.linear_model import LogisticRegression

    n, d, k, K = spec["n"], spec["d"], spec["nnz_per_row"], spec["n_classes"]
    gen_kwargs = dict(n_classes=K, nnz_per_row=k, separation=spec["separation"],
                      random_state=spec["seed"])
    X, y, W_true = datasets.make_classification_problem(n, d, **gen_kwargs)
    C = spec["C"]
    clf = LogisticRegression(C=C, solver="newton-cholesky", tol=1e-12, max_iter=10_000)
    clf.fit(X, y)
    coef, intercept = clf.coef_.copy(), clf.intercept_.copy()
    if K > 2:
        intercept -= intercept.mean()  # unpenalised: defined up to a shift; centred (as sklearn)
    fun, gnorm = sklearn_objective_grad(X, y, coef, intercept, C)
    fun0, g0 = sklearn_objective_grad(X, y, np.zeros_like(coef), np.zeros_like(intercept), C)
    arrays = dict(y=y, W_true=W_true, coef_ref=coef, intercept_ref=intercept)
    manifest = dict(
        name=name, kind="classification", schema_version=SCHEMA_VERSION,
        shape=[n, d], nnz=int(X.nnz), n_classes=K,
        generator=dict(function="sketchnewton.datasets.make_classification_problem",
                       args=[n, d], kwargs=gen_kwargs),
        problem=dict(C=C, fit_intercept=True, penalty="l2",
                     objective=("C * sum_i log-loss_i + 1/2 ||coef||^2 (intercept not penalised); "
                                "binary logistic for K = 2, multinomial softmax otherwise")),
        files=dict(A="A.npz", y="y.npy", W_true="W_true.npy", coef_ref="coef_ref.npy",
                   intercept_ref="intercept_ref.npy"),
        reference=dict(
            method=(f"sklearn.linear_model.LogisticRegression(C={C}, solver='newton-cholesky', "
                    f"tol=1e-12, max_iter=10000), scikit-learn {skl_version}; objective and "
                    "gradient norm evaluated in plain numpy"),
            n_iter=int(np.max(clf.n_iter_)),
            fun=fun, grad_norm=gnorm, grad_norm_rel=gnorm / g0, fun_at_zero=fun0,
            grad_norm_at_zero=g0,
        ),
    )
    return X, arrays, manifest


# ----------------------------------------------------------------------------
# writing and checking
# ----------------------------------------------------------------------------

def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def write_instance(out_dir, name, spec):
    make = make_classification if spec["kind"] == "classification" else make_normalized
    A, arrays, manifest = make(name, spec)
    folder = out_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    sp.save_npz(folder / "A.npz", sp.csr_matrix(A), compressed=True)
    for key, value in arrays.items():
        np.save(folder / f"{key}.npy", value, allow_pickle=False)
    with open(folder / "manifest.json", "w") as fh:
        json.dump(manifest, fh, indent=2, sort_keys=True, default=_json_default)
        fh.write("\n")
    return manifest


def load_instance(folder):
    """``(A, arrays, manifest)`` of one instance folder."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    A = sp.load_npz(folder / "A.npz")
    arrays = {p.stem: np.load(p, allow_pickle=False) for p in sorted(folder.glob("*.npy"))}
    return A, arrays, manifest


# manifest fields that are measurements of the reference (compared with a tolerance)
_REF_FLOATS = ("fun", "grad_norm", "grad_norm_rel", "newton_decrement", "finite_difference_check",
               "second_start_distance",
               "hessian_min_eig", "hessian_cond")


def compare(new_dir, old_dir, names):
    """List of differences between two data directories (empty when they agree)."""
    problems = []
    for name in names:
        try:
            A1, a1, m1 = load_instance(new_dir / name)
            A0, a0, m0 = load_instance(old_dir / name)
        except FileNotFoundError as exc:
            problems.append(f"{name}: missing file ({exc})")
            continue
        if A1.shape != A0.shape or (A1 != A0).nnz or not (
                np.array_equal(A1.indptr, A0.indptr) and np.array_equal(A1.indices, A0.indices)):
            problems.append(f"{name}: A differs")
        if sorted(a1) != sorted(a0):
            problems.append(f"{name}: different files {sorted(a1)} vs {sorted(a0)}")
        for key in set(a1) & set(a0):
            ref = key.endswith("_ref")
            if a1[key].shape != a0[key].shape:
                problems.append(f"{name}/{key}: shape {a1[key].shape} vs {a0[key].shape}")
            elif ref:
                tol = CHECK_RTOL * max(1.0, float(np.linalg.norm(a0[key])))
                if not np.linalg.norm(a1[key] - a0[key]) <= tol:
                    problems.append(f"{name}/{key}: differs by {np.linalg.norm(a1[key] - a0[key]):.3g}")
            elif not np.array_equal(a1[key], a0[key]):
                problems.append(f"{name}/{key}: differs")
        r1, r0 = dict(m1.pop("reference")), dict(m0.pop("reference"))
        if m1 != m0:
            problems.append(f"{name}: manifest differs outside 'reference'")
        for key in set(r1) | set(r0):
            v1, v0 = r1.get(key), r0.get(key)
            if key in _REF_FLOATS or key.endswith("_at_start") or key.endswith("_at_zero"):
                # gradient norms at the optimum are rounding noise: compare their scale only
                if key in ("grad_norm", "grad_norm_rel", "newton_decrement", "finite_difference_check",
                           "second_start_distance"):
                    ok = (v1 == v0) or (v1 is not None and v0 is not None and
                                        abs(math.log10(max(v1, 1e-300)) - math.log10(max(v0, 1e-300))) < 1)
                else:
                    ok = v1 == v0 or (v1 is not None and v0 is not None and
                                      abs(v1 - v0) <= 1e-9 * max(abs(v0), 1e-300))
                if not ok:
                    problems.append(f"{name}: reference.{key} {v1!r} vs {v0!r}")
            elif v1 != v0 and key not in ("trust_exact_nit", "polish_steps", "n_iter"):
                problems.append(f"{name}: reference.{key} {v1!r} vs {v0!r}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary directory and compare with data/")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(INSTANCES),
                        help="instances to (re)generate; default all")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory (default data/)")
    args = parser.parse_args(argv)
    names = args.only or list(INSTANCES)

    if args.check:
        tmp = Path(tempfile.mkdtemp(prefix="sketchnewton_data_"))
        try:
            for name in names:
                write_instance(tmp, name, INSTANCES[name])
            problems = compare(tmp, args.out, names)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for p in problems:
            print("MISMATCH", p)
        print(f"checked {len(names)} instances against {args.out}: "
              f"{'OK' if not problems else f'{len(problems)} mismatches'}")
        return 1 if problems else 0

    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        m = write_instance(args.out, name, INSTANCES[name])
        r = m["reference"]
        print(f"{name:18s} {m['shape']}  fun={r['fun']:.6e}  |g|={r['grad_norm']:.2e}  "
              f"|g|/|g0|={r['grad_norm_rel']:.1e}  "
              + (f"newton_dec={r['newton_decrement']:.1e}  cond={r['hessian_cond']:.1e}"
                 if "newton_decrement" in r else f"n_iter={r['n_iter']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
