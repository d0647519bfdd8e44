"""Gaussian-mixture CDF coupling: each transformed feature through its conditional mixture's CDF, then Phi^-1.

For a transformed feature ``x`` and the conditioner's weights ``pi_k``
(softmax of logits), means ``mu_k`` and scales ``sigma_k`` (exp of
log-scales),

    F(x) = sum_k pi_k Phi((x - mu_k) / sigma_k),    z = Phi^-1(F(x)),
    log dz/dx = log f(x) - log phi(z),

``f`` the mixture's density. If ``x`` given the conditioning is that
mixture, ``z`` is standard normal: one such layer of a single target whose
conditioner sees a context is a mixture density network (Bishop 1994) whose
latent is exact, so quantiles, the CDF and draws work as for any flow. Flow++
(Ho et al. 2019) couples through a mixture of logistics the same way. The
inverse has no closed form; the root of ``F(x) = Phi(z)`` is bracketed
exactly (below) and found by Newton's method, safeguarded by bisection. On
the CPU the forward map and its gradient, which training needs, run as
compiled code (:mod:`.mixture_cdf_kernel`) where it can be built; the code
below is the reference it matches, and runs in the far tails and elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from . import mixture_cdf_kernel
from .couplings import Coupling

N_COMPONENTS = 5
# Log-scales are clipped to [LOG_SCALE_MIN, LOG_SCALE_MAX] (standardized units): no component narrower than
# ~1e-3 of the feature's spread, so the density cannot grow without bound on a repeated value.
LOG_SCALE_MIN, LOG_SCALE_MAX = -7.0, 3.0
LOG_SCALE_BOUNDS = (LOG_SCALE_MIN, LOG_SCALE_MAX)
# The starting means are evenly spaced, their mean square this share of the mixture's unit variance and the
# rest the components' common variance (5 components: means -1 to 1, scales 0.71): identical components
# would receive identical gradients and never separate.
MEANS_SHARE = 0.5
_LOG_HALF = math.log(0.5)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)
_SQRT_HALF = math.sqrt(0.5)
# log Phi(v) from erfc for v >= ERFC_RANGE (sd), from erfcx below (_log_normal_cdf_of_nonpositive).
ERFC_RANGE = -10.0
# The inverse's solver stops where a step moves x by at most this many machine epsilons relative to
# |x| + the narrowest component's scale; bisection alone would need 64 steps to resolve float64.
SOLVER_RESOLUTION = 4.0
MAX_SOLVER_STEPS = 64
_SMALLEST_SCALE = math.exp(LOG_SCALE_MIN)
# Newton steps of Phi^-1 from a log-probability too small for exp (the tail beyond ~37 sd in float64).
NEWTON_STEPS = 6


def _log_probability_floor(dtype: torch.dtype) -> float:
    """The smallest log-probability whose exp is a normal number of ``dtype`` (Phi^-1 of less is +-inf)."""
    return math.log(torch.finfo(dtype).tiny) + 1.0


class MixtureCDFCoupling(Coupling):
    """Coupling layer whose elementwise map is ``Phi^-1`` of a Gaussian mixture's CDF (see the module)."""

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_units: Sequence[int],
        n_components: int = N_COMPONENTS,
        context_features: int = 0,
        generator: torch.Generator | None = None,
    ):
        self.n_components = int(n_components)
        self.params_per_feature = 3 * self.n_components
        super().__init__(mask, hidden_units, context_features, generator)
        self._set_starting_mixture()

    @torch.no_grad()
    def _set_starting_mixture(self) -> None:
        k = self.n_components
        start = torch.zeros(self.params_per_feature)
        means = torch.zeros(1)
        if k > 1:
            means = torch.linspace(-1.0, 1.0, k)
            means = means * math.sqrt(MEANS_SHARE / float(means.square().mean()))
        start[k : 2 * k] = means
        start[2 * k :] = 0.5 * math.log(1.0 - float(means.square().mean()))
        self._set_bias(start)

    @torch.no_grad()
    def set_identity(self) -> None:
        """Make every component the standard normal: ``F = Phi``, so the layer is the identity (to rounding)
        until trained. A ridge regression's flow (``linear_shift``) needs its other layers to be the identity;
        training from here would never separate the components."""
        if hasattr(self.conditioner, "output"):
            self.conditioner.output.weight.zero_()
        self._set_bias(torch.zeros(self.params_per_feature))

    def _set_bias(self, per_feature: torch.Tensor) -> None:
        bias = self.conditioner.output.bias if hasattr(self.conditioner, "output") else self.conditioner.value
        bias.copy_(per_feature.repeat(self.transformed.numel()))

    def _mixture(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-weights, means and log-scales, each (D, K, N), from params (D, 3K, N)."""
        logits, means, log_scales = params.split(self.n_components, dim=-2)
        return torch.log_softmax(logits, dim=-2), means, log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)

    def _elementwise(self, x, params, inverse):
        if not inverse:
            compiled = _compiled_forward(x, params)
            if compiled is not None:
                return compiled
        log_weights, means, log_scales = self._mixture(params)
        if inverse:
            z = x
            x = _solve_cdf(z, log_weights, means, log_scales)
            u = _standardized(x, means, log_scales)
            if torch.is_grad_enabled():
                # The implicit function's gradient, dx = (dz - dz(x)) / (dz/dx), with x's value left as solved.
                step = (z - _normal_quantile_of_cdf(u, log_weights)) * torch.exp(
                    -_log_derivative(u, z, log_weights, log_scales)
                )
                x = x + (step - step.detach())
                u = _standardized(x, means, log_scales)
            return x, -_log_derivative(u, z, log_weights, log_scales)
        u = _standardized(x, means, log_scales)
        z = _normal_quantile_of_cdf(u, log_weights)
        return z, _log_derivative(u, z, log_weights, log_scales)


class _CompiledForward(torch.autograd.Function):
    """The forward map and its gradient by :mod:`.mixture_cdf_kernel`; ``outcome`` gets False where the kernel
    left the call to the PyTorch code (an entry in a far tail), whose outputs are then not to be used."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, params: torch.Tensor, library, outcome: list):
        computed = mixture_cdf_kernel.forward(library, x, params, LOG_SCALE_BOUNDS)
        outcome.append(computed is not None)
        if computed is None:
            return torch.empty_like(x), torch.empty_like(x)
        z, log_derivative = computed
        ctx.library = library
        if any(ctx.needs_input_grad[:2]):
            ctx.save_for_backward(x, params, z)
        return z, log_derivative

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor, grad_log_derivative: torch.Tensor):
        x, params, z = ctx.saved_tensors
        grad_x, grad_params = mixture_cdf_kernel.backward(
            ctx.library, x, params, LOG_SCALE_BOUNDS, z, grad_z.contiguous(), grad_log_derivative.contiguous()
        )
        return grad_x, grad_params, None, None


def _compiled_forward(x: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``z`` and the log-derivatives by the compiled kernel, or None where it cannot compute them."""
    library = mixture_cdf_kernel.load(x, params)
    if library is None:
        return None
    outcome = []
    z, log_derivative = _CompiledForward.apply(x.contiguous(), params.contiguous(), library, outcome)
    return (z, log_derivative) if outcome[0] else None


def _standardized(x: torch.Tensor, means: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """``(x - mu_k) / sigma_k`` for every component: (D, K, N) from x (D, N)."""
    return (x.unsqueeze(-2) - means) * torch.exp(-log_scales)


def _log_cdf_pair(u: torch.Tensor, log_weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``log F(x)`` and ``log(1 - F(x))`` from the standardized ``u``, each accurate in its own tail.

    Per component, ``log Phi(-|u|)`` (the smaller tail, the one ``log_ndtr`` is
    needed for) and its complement ``log(1 - Phi(-|u|))``, exact since
    ``Phi(-|u|) <= 1/2``: one ``log Phi`` per component instead of two.
    """
    toward_lower = u <= 0
    small = _log_normal_cdf_of_nonpositive(torch.where(toward_lower, u, -u))
    large = torch.log1p(-small.exp())
    lower = torch.logsumexp(log_weights + torch.where(toward_lower, small, large), dim=-2)
    upper = torch.logsumexp(log_weights + torch.where(toward_lower, large, small), dim=-2)
    return lower, upper


def _log_normal_cdf_of_nonpositive(v: torch.Tensor) -> torch.Tensor:
    """``log Phi(v)`` for ``v <= 0``, as ``torch.special.log_ndtr`` but about 20 times faster on a CPU.

    ``log(erfc(-v / sqrt 2) / 2)`` down to ``ERFC_RANGE`` sd, where erfc's own
    value (about 1e-23) is still a normal float32; beyond, from the scaled
    ``erfcx``, which never underflows, computed only for those entries.
    """
    near = torch.special.erfc(v.clamp_min(ERFC_RANGE) * -_SQRT_HALF).log() - _LOG_2
    far = v < ERFC_RANGE
    if not bool(far.any()):
        return near
    v_far = v[far]
    far_values = torch.special.erfcx(v_far * -_SQRT_HALF).log() - _LOG_2 - 0.5 * v_far.square()
    return near.masked_scatter(far, far_values)


def _normal_quantile_of_log(log_p: torch.Tensor) -> torch.Tensor:
    """``Phi^-1(exp(log_p))`` for ``log_p <= log(1/2)``, also where ``exp(log_p)`` underflows.

    There, Newton's method on ``log Phi(z) = log_p`` from the tail's leading
    term ``-sqrt(-2 log_p)``, for those entries only; ``d log Phi / dz = phi(z) /
    Phi(z)``. ``direct`` sees only values valid for it, so it sends no NaN into
    the gradient.
    """
    floor = _log_probability_floor(log_p.dtype)
    direct = torch.special.ndtri(log_p.clamp_min(floor).exp())
    far = log_p < floor
    if not bool(far.any()):  # nearly always in training: the tail branch would cost more than the rest
        return direct
    far_log_p = log_p[far]
    z = -torch.sqrt(-2.0 * far_log_p)
    for _ in range(NEWTON_STEPS):
        log_cdf = _log_normal_cdf_of_nonpositive(z)
        z = z - (log_cdf - far_log_p) * torch.exp(log_cdf + 0.5 * z.square() + _HALF_LOG_2PI)
    return direct.masked_scatter(far, z)


def _normal_quantile_of_cdf(u: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """``Phi^-1(F(x))``, from whichever of ``F`` and ``1 - F`` is below one half (no cancellation near 1):
    ``Phi^-1(F)`` below the median, ``-Phi^-1(1 - F)`` above it."""
    log_lower, log_upper = _log_cdf_pair(u, log_weights)
    in_lower_half = log_lower < _LOG_HALF
    smaller_tail = torch.where(in_lower_half, log_lower, log_upper).clamp_max(_LOG_HALF)
    z = _normal_quantile_of_log(smaller_tail)
    return torch.where(in_lower_half, z, -z)


def _log_derivative(u: torch.Tensor, z: torch.Tensor, log_weights: torch.Tensor, log_scales: torch.Tensor):
    """``log f(x) - log phi(z)``, from the standardized ``u``."""
    log_density = torch.logsumexp(log_weights - 0.5 * u.square() - log_scales, dim=-2) - _HALF_LOG_2PI
    return log_density + 0.5 * z.square() + _HALF_LOG_2PI


@torch.no_grad()
def _solve_cdf(z, log_weights, means, log_scales) -> torch.Tensor:
    """The ``x`` with ``F(x) = Phi(z)``, by Newton's method safeguarded with bisection.

    ``x_lo = min_k (mu_k + sigma_k z)`` and ``x_hi = max_k (mu_k + sigma_k z)``
    bracket it: at ``x_lo`` every component's CDF is at most ``Phi(z)``, at
    ``x_hi`` at least. Newton steps on ``Phi^-1(F(x)) - z``, nearly linear in
    ``x`` (exactly so where one component dominates), whose slope is the
    layer's own derivative ``f(x) / phi(z)``; a step that would leave the
    bracket bisects it instead, and every evaluation narrows it. ``z(x)`` is
    exact in both tails (:func:`_solver_evaluation`), so the root is too.
    6 to 9 evaluations where bisection took 64 (the inverse is what
    quantiles, the conditional mean and sampling cost).
    """
    inverse_scales, weights = torch.exp(-log_scales), log_weights.exp()
    ends = means + log_scales.exp() * z.unsqueeze(-2)
    low, high = ends.amin(dim=-2), ends.amax(dim=-2)
    x = 0.5 * (low + high)
    tolerance = SOLVER_RESOLUTION * torch.finfo(x.dtype).eps
    for _ in range(MAX_SOLVER_STEPS):
        u = (x.unsqueeze(-2) - means) * inverse_scales
        z_at_x, log_slope = _solver_evaluation(u, weights, inverse_scales, log_weights, log_scales)
        below = z_at_x < z
        low, high = torch.where(below, x, low), torch.where(below, high, x)
        newton = x - (z_at_x - z) * torch.exp(-log_slope)
        inside = (newton >= low) & (newton <= high)  # False where the step is NaN
        following = torch.where(inside, newton, 0.5 * (low + high))
        # Where z(x) is z to its own rounding, x stays: closer steps would follow that rounding's noise,
        # amplified by 1 / (dz/dx) where the density is low (between modes).
        solved = (z_at_x - z).abs() <= tolerance * (z.abs() + 1.0)
        scale = x.abs() + _SMALLEST_SCALE
        converged = solved | ((following - x).abs() <= tolerance * scale) | (high - low <= tolerance * scale)
        x = torch.where(solved, x, following)
        if bool(converged.all()):
            break
    return x


def _solver_evaluation(u, weights, inverse_scales, log_weights, log_scales) -> tuple[torch.Tensor, torch.Tensor]:
    """``z(x) = Phi^-1(F(x))`` and the log-slope ``log dz/dx`` for the solver, from the standardized ``u``.

    From probabilities, not their logs: each tail of ``F`` is a sum of
    positive terms ``pi_k Phi(-|u_k|)`` or ``pi_k (1 - Phi(-|u_k|))``, so
    it has full relative precision without a ``logsumexp``, and ``f(x)``
    likewise; half the cost of the log-space path (:func:`_normal_quantile_of_cdf`,
    :func:`_log_derivative`, which the forward pass and its gradient use).
    Entries whose smaller tail or density falls below ``tiny / eps^2``,
    where dropped subnormal terms could matter, take the log-space path.
    """
    floor = torch.finfo(u.dtype).tiny / torch.finfo(u.dtype).eps ** 2
    smaller_tail = 0.5 * torch.special.erfc(u.abs() * _SQRT_HALF)
    toward_lower = u <= 0
    lower = (weights * torch.where(toward_lower, smaller_tail, 1.0 - smaller_tail)).sum(dim=-2)
    upper = (weights * torch.where(toward_lower, 1.0 - smaller_tail, smaller_tail)).sum(dim=-2)
    density = (weights * inverse_scales * torch.exp(-0.5 * u.square())).sum(dim=-2)
    in_lower_half = lower < 0.5
    z = torch.special.ndtri(torch.where(in_lower_half, lower, upper))
    z = torch.where(in_lower_half, z, -z)
    log_slope = torch.log(density) + 0.5 * z.square()  # log f(x) - log phi(z): the 2 pi terms cancel
    far = (torch.minimum(lower, upper) < floor) | (density < floor)
    if bool(far.any()):

        def far_entries(per_component: torch.Tensor) -> torch.Tensor:
            return per_component.movedim(-2, -1)[far].T  # (K, n_far): the components on dim -2

        far_u, far_log_weights = far_entries(u), far_entries(log_weights)
        far_z = _normal_quantile_of_cdf(far_u, far_log_weights)
        z = z.masked_scatter(far, far_z)
        far_log_slope = _log_derivative(far_u, far_z, far_log_weights, far_entries(log_scales))
        log_slope = log_slope.masked_scatter(far, far_log_slope)
    return z, log_slope
