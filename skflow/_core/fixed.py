"""The fixed, fitted maps that run before the learned layers, in float64.

Their parameters are statistics of the training data (bounds, location and
scale, which tails are long), stored as buffers: they are part of the flow
and of its log-density, but never trained. Each maps data-side ``x`` to
``z`` elementwise and returns ``log|det dz/dx|`` per row, like every
:class:`~skflow._core.transforms.Transform`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .transforms import Transform


class ToUnbounded(Transform):
    """Fixed elementwise maps from bounded columns to the real line.

    * bounded below only: ``z = log(x - low)``;
    * bounded above only: ``z = -log(high - x)`` (increasing, like the others);
    * bounded on both sides: ``z = logit((x - low) / (high - low))``;
    * unbounded: ``z = x``.

    ``low``/``high`` are ``-inf``/``inf`` where a column has no such bound.
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def _kinds(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        has_low, has_high = torch.isfinite(self.low), torch.isfinite(self.high)
        return has_low & has_high, has_low & ~has_high, ~has_low & has_high

    def forward(self, x, context=None):
        interval, lower_only, upper_only = self._kinds()
        # Each branch sees a harmless stand-in where it does not apply, so that
        # no inf or NaN from an unused branch reaches the result or a gradient.
        width = torch.where(interval, self.high - self.low, torch.ones_like(self.low))
        u = torch.where(interval, (x - self.low) / width, 0.5)
        distance = torch.where(lower_only, x - self.low, torch.where(upper_only, self.high - x, 1.0))
        log_distance = distance.log()
        z_half_line = torch.where(lower_only, log_distance, -log_distance)
        z = torch.where(interval, torch.logit(u), torch.where(lower_only | upper_only, z_half_line, x))
        # d logit(u)/dx = 1 / (u (1 - u) width); |d log(distance)/dx| = 1 / distance
        ladj_interval = -(u.log() + torch.log1p(-u) + width.log())
        ladj = torch.where(interval, ladj_interval, torch.where(lower_only | upper_only, -log_distance, 0.0))
        return z, ladj.sum(-1)

    def inverse(self, z, context=None):
        interval, lower_only, upper_only = self._kinds()
        width = torch.where(interval, self.high - self.low, torch.ones_like(self.low))
        low = torch.where(torch.isfinite(self.low), self.low, 0.0)
        high = torch.where(torch.isfinite(self.high), self.high, 0.0)
        x_interval = low + width * torch.sigmoid(z)
        x_half_line = torch.where(lower_only, low + z.exp(), high - (-z).exp())
        x = torch.where(interval, x_interval, torch.where(lower_only | upper_only, x_half_line, z))
        ladj_interval = F.logsigmoid(z) + F.logsigmoid(-z) + width.log()
        ladj_half_line = torch.where(lower_only, z, -z)
        ladj = torch.where(interval, ladj_interval, torch.where(lower_only | upper_only, ladj_half_line, 0.0))
        return x, ladj.sum(-1)


class Standardize(Transform):
    """Fixed elementwise affine map z = (x - loc) / scale.

    Holds the estimator's standardization statistics; its log-det
    ``-sum(log scale)`` keeps densities in the user's units.
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("loc", loc.clone())
        self.register_buffer("scale", scale.clone())

    def _log_abs_det(self, batch: torch.Tensor) -> torch.Tensor:
        return -self.scale.log().sum().expand(batch.shape[0])

    def forward(self, x, context=None):
        return (x - self.loc) / self.scale, self._log_abs_det(x)

    def inverse(self, z, context=None):
        return z * self.scale + self.loc, -self._log_abs_det(z)


class AsinhTails(Transform):
    """Fixed z = asinh(x) on the long side(s) of selected (standardized) columns, z = x elsewhere.

    ``asinh`` is near-linear for ``|x| < 1`` and logarithmic beyond, so a heavy
    or long tail (a log-normal column reaching 90 standard deviations) is
    pulled into the range where the splines act; beyond it they are the
    identity and could not reshape the tail at all. It applies only on the
    side whose training values reach that far (``lower``: x < 0, ``upper``:
    x > 0): compressing a short tail too would give the fitted density (and
    its samples) a far heavier tail than the data has on that side. Both
    halves meet at 0 with slope 1. ``log|dz/dx| = -log(1 + x^2) / 2`` where
    it applies.
    """

    def __init__(self, lower: torch.Tensor, upper: torch.Tensor):
        super().__init__()
        self.register_buffer("lower", lower.clone().bool())
        self.register_buffer("upper", upper.clone().bool())

    def _applies(self, values: torch.Tensor) -> torch.Tensor:
        # asinh keeps the sign, so forward and inverse pick the same side.
        return torch.where(values < 0, self.lower, self.upper)

    def forward(self, x, context=None):
        applies = self._applies(x)
        z = torch.where(applies, torch.asinh(x), x)
        log_derivative = torch.where(applies, -0.5 * torch.log1p(x.square()), 0.0)
        return z, log_derivative.sum(-1)

    def inverse(self, z, context=None):
        applies = self._applies(z)
        x = torch.where(applies, torch.sinh(z), z)
        # log cosh(z), without overflow in cosh for large |z|.
        log_cosh = z.abs() + torch.log1p(torch.exp(-2.0 * z.abs())) - math.log(2.0)
        return x, torch.where(applies, log_cosh, 0.0).sum(-1)


class YeoJohnson(Transform):
    """Fixed Yeo-Johnson power map (Yeo and Johnson 2000) of each (standardized) column, ``lambdas`` per column.

    With ``t = |x|`` and ``a = lambda`` for ``x >= 0``, ``a = 2 - lambda`` for
    ``x < 0``: ``z = sign(x) ((1 + t)^a - 1) / a`` (``sign(x) log(1 + t)`` at
    ``a = 0``), and ``log|dz/dx| = (a - 1) log(1 + t)``. ``lambda = 1`` is the
    identity; ``lambda < 1`` pulls in a long right tail (``0``: ``log(1 + x)``)
    and stretches the left side, ``lambda > 1`` the mirror image. Lambdas are
    kept in [0, 2], where the map is onto the real line, so every latent point
    has a preimage and sampling never leaves the data's space.
    """

    def __init__(self, lambdas: torch.Tensor):
        super().__init__()
        self.register_buffer("lambdas", lambdas.clone())

    def _exponent(self, values: torch.Tensor) -> torch.Tensor:
        # The map keeps the sign, so forward and inverse pick the same branch.
        return torch.where(values < 0, 2.0 - self.lambdas, self.lambdas)

    def forward(self, x, context=None):
        a = self._exponent(x)
        log1p_t = torch.log1p(x.abs())
        small = a.abs() < 1e-8
        safe_a = torch.where(small, torch.ones_like(a), a)
        magnitude = torch.where(small, log1p_t, torch.expm1(safe_a * log1p_t) / safe_a)
        return torch.sign(x) * magnitude, ((a - 1.0) * log1p_t).sum(-1)

    def inverse(self, z, context=None):
        a = self._exponent(z)
        small = a.abs() < 1e-8
        safe_a = torch.where(small, torch.ones_like(a), a)
        log1p_t = torch.where(small, z.abs(), torch.log1p(safe_a * z.abs()) / safe_a)
        return torch.sign(z) * torch.expm1(log1p_t), -((a - 1.0) * log1p_t).sum(-1)
