"""What the driver checks before it promises ``success=True`` (docs/math.md sections 6 and 7).

A small gradient is not enough evidence of a minimiser:

* a zero gradient may be a saddle or a maximum: the curvature is probed, and
  a direction of negative curvature is followed (:meth:`Certification.stationary`);
* a gradient at the rounding level cannot certify an error below the
  attainable accuracy ``||H^{-1} dg||``, ``dg`` the gradient's rounding error
  (:meth:`Certification.rounding_floor`);
* numerically flat directions must be invariances of the loss, not asymptotes,
  and a curvature that has vanished everywhere while the loss still decreases
  along the path means the infimum is not attained (:meth:`Certification.certify`).
"""

import numpy as np

from .exceptions import DomainError

__all__ = ["Certification"]

_EPS = np.finfo(float).eps
#: random directions probed for curvature at a stationary point (one block product)
N_PROBES = 8
#: a model whose curvature fell below this share of the first model's has vanished
VANISHED = 1e-10


class Certification:
    """Mixin of :class:`~sketchnewton.newton.NewtonSolver` (uses its ``loss``, ``it``,
    ``problem``, ``stop``)."""

    _floor_state = None
    curvature0 = None

    # -- attainable accuracy --------------------------------------------------------------------
    def rounding_floor(self):
        """``(||H^{-1} dg||, dg^T H^{-1} dg)`` for the gradient's rounding error ``dg``.

        The distance to the minimiser and the decrement that the computed gradient
        can resolve at all (docs/math.md 7.3); cached per iterate (one sweep, and
        a CG solve when the model only preconditions).
        """
        it = self.it
        if self._floor_state is it.state:
            return self._floor
        dg = self.loss.gradient_noise(it.state)
        model = it.model
        if model.spectral_error is None:
            # a preconditioner is no inverse Hessian (and CG on H y = dg drifts along null
            # directions, which dg need not avoid): scale the Newton step instead, H^{-1}
            # being linear: ||H^{-1} dg|| ~ ||p|| ||dg|| / ||g||
            ratio = float(np.linalg.norm(dg)) / max(float(np.linalg.norm(it.grad)), np.finfo(float).tiny)
            step = float(np.linalg.norm(it.step)) if it.step is not None else 0.0
            self._floor = (step * ratio, abs(it.decrement) * ratio ** 2 if np.isfinite(it.decrement)
                           else 0.0)
        else:
            y = model.solve(dg)
            self._floor = (float(np.linalg.norm(y)) / (1.0 - model.spectral_error),
                           abs(float(dg @ y)))
        self._floor_state = it.state
        return self._floor

    # -- stationary points ----------------------------------------------------------------------
    def stationary(self):
        """Zero gradient at ``x``: a minimiser only if no direction has negative curvature.

        Rayleigh-Ritz on ``N_PROBES`` random directions (one block product):
        negative curvature means a saddle or a maximum, and the solve steps along
        the most negative Ritz vector; no curvature at all (it vanished or
        underflowed) cannot certify anything. Returns True when the solve stops.
        """
        it, loss = self.it, self.loss
        p = loss.n_params
        rng = np.random.default_rng(self.nit)  # deterministic: no draw from the solve's stream
        V = np.linalg.qr(rng.standard_normal((p, min(N_PROBES, p))))[0]
        N = loss.null_space()
        if N is not None:
            V = np.linalg.qr(V - N @ (N.T @ V))[0]
        HV = loss.hessian_matmat(it.state, V, loss.hessian_kinds[0])
        R = 0.5 * (V.T @ HV + HV.T @ V)
        q, W = np.linalg.eigh(R)
        top = float(np.abs(q).max()) if q.size else 0.0
        if not top > 0 or not np.isfinite(top):
            self.stop(2, "the gradient and the curvature vanish at x (the scale of the data may be "
                         "too small for float64: rescale it); a minimiser cannot be certified")
            return True
        if q[0] >= -1e-10 * top:  # a minimiser, up to the attainable accuracy
            if it.model is None:
                self.update_gradient_hessian()
            it.error_estimate = 0.0
            return self.problem.criterion.at_stationary_point(self)
        direction = V @ W[:, 0]
        image = loss.image(direction)
        dz = float(np.abs(image).max()) if image.size else 0.0
        scale = 1.0 / dz if dz > 0 else 1.0
        f_before = it.fun
        for sign in (1.0, -1.0):
            it.step, it.step_image, it.decrement = sign * scale * direction, sign * scale * image, 0.0
            if self.line_search() and it.fun < f_before - 64 * _EPS * abs(f_before):
                self.nit += 1
                return False
        self.stop(2, "stationary point whose only negative curvature is at the rounding level: the "
                     "loss is flat at x and a minimiser cannot be certified")
        return True

    # -- before success ---------------------------------------------------------------------------
    def note_curvature(self, model):
        """Remember the first model's curvature scale (the reference of :meth:`certify`)."""
        if self.curvature0 is None and model is not None:
            c = getattr(model, "curvature_scale", np.nan)
            self.curvature0 = c if np.isfinite(c) and c > 0 else None

    def certify(self):
        """``None`` if the answer is a minimiser as far as can be checked, else the reason."""
        it = self.it
        if not self.flat_directions_are_invariances():
            return ("stopped on a flat direction that is not an invariance of the loss (an "
                    "asymptote: the iterate may be drifting to infinity)")
        c = getattr(it.model, "curvature_scale", np.nan)
        if self.curvature0 and np.isfinite(c) and c < VANISHED * self.curvature0 \
                and self._still_decreasing():
            return (f"the curvature vanished ({c:.3g}, {self.curvature0:.3g} at the start) while the "
                    "loss still decreases along the path: the infimum is not attained (x drifts "
                    "to infinity)")
        return None

    def _still_decreasing(self):
        it = self.it
        try:
            f = self.loss.forward(2.0 * it.x - self.x0).fun
        except DomainError:
            return False
        return f < it.fun - 64 * _EPS * abs(it.fun)

    def _value_noise(self):
        """The loss's evaluation noise at ``x``: its change under perturbations of ``x`` by
        4 units in the last place (random signs, drawn from a fixed seed)."""
        it, loss = self.it, self.loss
        signs = np.where(np.random.default_rng(0).random(it.x.size) < 0.5, -1.0, 1.0)
        delta = 4 * _EPS * np.maximum(np.abs(it.x), np.finfo(float).tiny) * signs
        noise = 0.0
        for sign in (1.0, -1.0):
            try:
                noise = max(noise, abs(loss.forward(it.x + sign * delta).fun - it.fun))
            except DomainError:
                return np.inf
        return noise

    def flat_directions_are_invariances(self):
        """Check that directions the model treats as null leave the loss unchanged.

        A pseudo-inverse model ignores directions of zero curvature. That is
        right for a true invariance (the softmax shift, a duplicated column)
        but wrong on an asymptote, where the loss flattens out while still
        decreasing (e.g. ``resnet`` with an intercept driven to ``+inf``). The
        loss may not decrease along such a direction by more than its own
        evaluation noise, measured where it is (two evaluations at ``x`` perturbed by a
        few units in the last place: near an exact fit the loss is tiny but
        its noise is set by the size of the quantities it is computed from);
        costs one loss evaluation per direction, only at convergence.
        """
        model, loss, it = self.it.model, self.loss, self.it
        if model is None or model.null_vectors is None or model.null_vectors.shape[1] == 0:
            return True
        step = max(1.0, float(np.linalg.norm(it.x)))
        # besides the noise, the loss may still fall by the decrease the model predicts at x
        # (half the Newton decrement): x is a minimiser only to within eps
        predicted = 0.5 * abs(float(it.grad @ model.solve(it.grad)))
        tol = 64 * _EPS * abs(it.fun) + 100 * self._value_noise() + 2 * predicted \
            + np.finfo(float).tiny
        for v in model.null_vectors.T[:4]:
            for sign in (1.0, -1.0):
                try:
                    f = loss.forward(it.x + sign * step * v).fun
                except DomainError:
                    return False
                if f < it.fun - tol:  # the loss still decreases: not a minimiser
                    return False
        return True
