"""The shortcut term: does resnet (exp(z) + z) condition the problem better than softmax?

Same A and planted x*, targets phi(A x*) / sum for each link: the condition number of the
Hessian at x*, the iterations of gradient descent (adaptive Armijo step) and of Newton
(``solve(method="exact")``), against the spread of z = A x*. Part of the suite.

    python -m benchmarks shortcut [--quick] [--out DIR | --update]

Writes ``results/shortcut[_quick].csv``, ``plots/shortcut[_quick].png`` and its section of
``RESULTS.md``.
"""

import numpy as np

from sketchnewton import NormalizedRegressionLoss

from .._common import markdown_table, write_csv
from .._peers import run_ours
from .._suite import planted, run_study
from ..figures import plot_shortcut


def _normalized_target(z, link):
    phi = np.exp(z - z.max()) if link == "softmax" else np.exp(z) + z
    return phi / phi.sum()


def _gradient_descent(loss, x_ref, tol, max_iter):
    """Gradient descent with an adaptive Armijo step from x0 = 0; iterations to ||x - x*|| <= tol."""
    x = np.zeros(loss.shape[1] if hasattr(loss, "shape") else x_ref.size)
    state = loss.evaluate(x)
    step = 1.0
    for it in range(1, max_iter + 1):
        g = state.grad
        gg = float(g @ g)
        while True:
            x_new = x - step * g
            try:
                new = loss.evaluate(x_new)
            except ArithmeticError:
                new = None
            if new is not None and np.isfinite(new.fun) and new.fun <= state.fun - 1e-4 * step * gg:
                break
            step *= 0.5
            if step < 1e-30:
                return it, False
        x, state = x_new, new
        step *= 2.0
        if np.linalg.norm(x - x_ref) <= tol:
            return it, True
    return max_iter, False


def measure(cfg, ctx, log=print):
    rows = []
    for z in cfg.sc_zs:
        for seed in range(cfg.sc_seeds):
            pb = planted(cfg.sc_n, cfg.sc_d, cfg.sc_k, z, seed=seed)
            zt = pb.A @ pb.x_true
            for link in ("resnet", "softmax"):
                b = _normalized_target(zt, link)
                loss = NormalizedRegressionLoss(pb.A, b, link=link)
                eig = np.linalg.eigvalsh(loss.hessian(pb.x_true))
                newton = run_ours("exact", pb.A, b, pb.x_true, cfg.eps, link=link)
                gd_it, gd_ok = _gradient_descent(loss, pb.x_true, cfg.sc_gd_tol, cfg.sc_gd_max)
                rows.append(dict(z_std=z, seed=seed, link=link, lambda_max=eig[-1],
                                 lambda_min=eig[0], cond=eig[-1] / eig[0] if eig[0] > 0 else np.inf,
                                 newton_iter=newton["nit"], newton_ok=newton["success"],
                                 gd_iter=gd_it, gd_ok=gd_ok))
                log(f"shortcut: z std {z} seed {seed} {link:8s} cond {rows[-1]['cond']:.3e} "
                    f"Newton {newton['nit']} it GD {gd_it} it ({'ok' if gd_ok else 'not reached'})")
    csv = ctx.path("results", "shortcut", "csv")
    write_csv(csv, rows, list(rows[0]))
    png = plot_shortcut(rows, ctx.path("plots", "shortcut", "png"), n=cfg.sc_n, d=cfg.sc_d,
                        eps=cfg.eps, gd_tol=cfg.sc_gd_tol, gd_max=cfg.sc_gd_max)
    body = []
    for z in cfg.sc_zs:
        med = {}
        for link in ("resnet", "softmax"):
            rs = [r for r in rows if r["z_std"] == z and r["link"] == link]
            med[link] = (np.median([r["cond"] for r in rs]), np.median([r["gd_iter"] for r in rs]),
                         np.median([r["newton_iter"] for r in rs]), all(r["gd_ok"] for r in rs))
        body.append([z] + [f"{med[l][0]:.3g}" for l in ("resnet", "softmax")]
                    + [f"{med['softmax'][0] / med['resnet'][0]:.2f}"]
                    + [f"{med[l][1]:.0f}" + ("" if med[l][3] else " (cap)") for l in ("resnet", "softmax")]
                    + [f"{med[l][2]:.0f}" for l in ("resnet", "softmax")])
    text = "\n".join([
        "### The shortcut term: resnet against softmax (`shortcut`)\n",
        f"Same A (n = {cfg.sc_n:,}, d = {cfg.sc_d}, {cfg.sc_k}/row) and planted x*, targets "
        f"phi(A x*)/sum for each link; medians over {cfg.sc_seeds} seeds. GD: adaptive Armijo step "
        f"from 0 to ||x - x*|| <= {cfg.sc_gd_tol:g}; Newton: `solve(method='exact')` to "
        f"{cfg.eps:g}. Raw: `{ctx.rel(csv)}`, plot: `{ctx.rel(png)}`.\n",
        markdown_table(["z std", "cond resnet", "cond softmax", "softmax / resnet",
                        "GD it resnet", "GD it softmax", "Newton it resnet", "Newton it softmax"],
                       body), ""])
    return rows, text


def run(ctx, args):
    run_study(ctx, "shortcut", measure)
