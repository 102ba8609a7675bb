"""Kernel costs in passes and the regularisation that makes the full Hessian PSD.

What do the fused loss kernels cost against one pass, and how much regularisation does each
link need for its full Hessian to be positive semidefinite?

    python -m benchmarks kernels [--quick]

1. Cost of the fused kernels in *passes* (one scipy ``A @ x`` plus one
   ``A.T @ y`` on the same CSR matrix, same process, best of several runs)
   at n = 1e6, d = 200, density 5% (10 non-zeros per row).
2. PSD thresholds: the smallest ``w`` (papers' regulariser) and ``lam``
   (ridge) for which the full Hessian was positive semidefinite on random
   instances, at random points and at x = 0.

Writes ``results/kernels[_quick].csv`` and ``results/psd_thresholds[_quick].csv`` and prints
markdown tables.
"""

import numpy as np

from sketchnewton import LogisticLoss, MultinomialLoss, NormalizedRegressionLoss
from sketchnewton.datasets import make_regression_problem
from sketchnewton.losses import LINKS

from .._common import best_time, pass_time, write_csv


def kernel_costs(n, d, k):
    pb = make_regression_problem(n, d, link="resnet", nnz_per_row=k, z_std=1.5, random_state=0)
    A = pb.A
    tp = pass_time(A)
    rng = np.random.default_rng(1)
    x = pb.x_true + 0.1 * rng.standard_normal(d)
    p = rng.standard_normal(d)
    rows = [("pass (scipy A @ x + A.T @ y)", tp)]
    for link in LINKS:
        loss = NormalizedRegressionLoss(A, pb.b, link=link)
        xl = x if link != "sinh" else x * np.sign(np.sinh(A @ x).sum())
        st = loss.evaluate(xl)
        rows.append((f"{link}: loss only", best_time(lambda: loss.loss(xl))))
        rows.append((f"{link}: loss + gradient (fused)",
                     best_time(lambda: loss.evaluate(xl, hessian=False))))
        rows.append((f"{link}: loss + gradient + low-rank factors",
                     best_time(lambda: loss.evaluate(xl, hessian=True))))
        rows.append((f"{link}: Hessian-vector product", best_time(lambda: loss.hessp(st, p))))
    y = (A @ x > 0).astype(int)
    log = LogisticLoss(A, y, lam=1.0)
    rows.append(("logistic: loss + gradient", best_time(lambda: log.loss_gradient(x))))
    mult = MultinomialLoss(A, np.digitize(A @ x, [-1, 0, 1]), 4, lam=1.0)
    W = np.tile(x, 4)
    rows.append(("multinomial K=4: loss + gradient", best_time(lambda: mult.loss_gradient(W))))
    loss = NormalizedRegressionLoss(A, pb.b)
    D = loss.hessian_factors(x).diag
    rows.append(("exact Gram A^T diag(D) A (numba, O(sum nnz_i^2))",
                 best_time(lambda: loss.A.gram(D), repeats=2)))
    import scipy.sparse as sp
    rows.append(("scipy A.T @ diags(D) @ A (sparse product)",
                 best_time(lambda: (A.T @ sp.diags(D) @ A), repeats=1)))
    return tp, rows


def psd_thresholds(n_instances, n, d):
    """Smallest w and lam making the full Hessian PSD, per link, max over instances.

    At a random point ``x = x_true + noise`` of a noisy planted problem
    (large residual, so the full Hessian is often indefinite):
    ``lam* = max(0, -lambda_min(H))`` and ``w*^2 = max(0, -lambda_min(H, A^T A))``
    (generalized eigenproblem: ``H + w^2 A^T A >= 0``). Also reported relative
    to ``||H||_2`` because the loss scale is ~1/n.
    """
    import scipy.linalg as sla

    out = []
    for link in LINKS:
        w_needed, lam_needed, lam_rel, indefinite = [], [], [], 0
        for seed in range(n_instances):
            pb = make_regression_problem(n, d, link=link, nnz_per_row=5, z_std=1.0, noise=0.5,
                                         random_state=seed)
            rng = np.random.default_rng(seed)
            x = pb.x_true + rng.standard_normal(d) * np.linalg.norm(pb.x_true) / np.sqrt(d)
            if link == "sinh" and np.sinh(pb.A @ x).sum() <= 0:
                x = -x
            loss = NormalizedRegressionLoss(pb.A, pb.b, link=link)
            H = loss.hessian(x)
            G = loss.A.gram(np.ones(n))
            ev = np.linalg.eigvalsh(H)
            indefinite += ev[0] < 0
            lam_needed.append(max(0.0, -ev[0]))
            lam_rel.append(max(0.0, -ev[0]) / np.abs(ev).max())
            w_needed.append(np.sqrt(max(0.0, -sla.eigh(H, G, eigvals_only=True)[0])))
        out.append(dict(link=link, instances=n_instances, n=n, d=d,
                        indefinite_at_zero_reg=int(indefinite), w_needed=max(w_needed),
                        lam_needed=max(lam_needed), lam_needed_rel_to_norm_H=max(lam_rel)))
    return out


def run(ctx, args):
    n, d, k = (50_000, 50, 5) if ctx.quick else (1_000_000, 200, 10)
    tp, rows = kernel_costs(n, d, k)
    print(f"\n### Kernel cost, n = {n:,}, d = {d}, {k} non-zeros per row ({k / d:.0%} density)\n")
    print("| operation | seconds | passes |\n|---|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.4f} | {t / tp:.2f} |")
    thr = psd_thresholds(5 if ctx.quick else 20, 500 if ctx.quick else 2000, 8)
    print("\n### Full Hessian PSD: smallest regularisation that made it PSD (max over instances)\n")
    print(f"n = {thr[0]['n']}, d = {thr[0]['d']}, noisy b (noise 0.5), x = x_true + perturbation\n")
    print("| link | instances | indefinite without reg. | w needed | lam needed | lam / ||H|| |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in thr:
        print(f"| {r['link']} | {r['instances']} | {r['indefinite_at_zero_reg']} | {r['w_needed']:.3g} | "
              f"{r['lam_needed']:.3g} | {r['lam_needed_rel_to_norm_H']:.3g} |")
    write_csv(ctx.path("results", "kernels", "csv"),
              [dict(n=n, d=d, nnz_per_row=k, operation=name, seconds=f"{t:.6f}",
                    passes=f"{t / tp:.4f}") for name, t in rows],
              ["n", "d", "nnz_per_row", "operation", "seconds", "passes"])
    write_csv(ctx.path("results", "psd_thresholds", "csv"), thr, list(thr[0]))
