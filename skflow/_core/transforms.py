"""Invertible transforms with a tractable log-determinant.

Every transform maps data-side ``x`` to latent-side ``z``:

* ``forward(x) -> (z, log|det dz/dx|)``
* ``inverse(z) -> (x, log|det dx/dz|)``

with one log-determinant per row. Coupling layers live in ``couplings.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Transform(nn.Module):
    """Base class: a bijection applied to a batch of shape (N, D)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


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

    def forward(self, x):
        return (x - self.loc) / self.scale, self._log_abs_det(x)

    def inverse(self, z):
        return z * self.scale + self.loc, -self._log_abs_det(z)


class AsinhTails(Transform):
    """Fixed elementwise z = asinh(x) on selected (standardized) columns.

    Near-linear for ``|x| < 1`` and logarithmic beyond, so a heavy or long tail
    (a log-normal column reaching 90 standard deviations) is pulled into the
    range where the splines act; beyond it they are the identity and could
    not reshape the tail at all. ``log|dz/dx| = -log(1 + x^2) / 2``.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("mask", torch.zeros(n_features, dtype=torch.bool))

    def forward(self, x):
        z = torch.where(self.mask, torch.asinh(x), x)
        log_derivative = torch.where(self.mask, -0.5 * torch.log1p(x.square()), 0.0)
        return z, log_derivative.sum(-1)

    def inverse(self, z):
        x = torch.where(self.mask, torch.sinh(z), z)
        # log cosh(z), without overflow in cosh for large |z|.
        log_cosh = z.abs() + torch.log1p(torch.exp(-2.0 * z.abs())) - math.log(2.0)
        return x, torch.where(self.mask, log_cosh, 0.0).sum(-1)


class ToUnbounded(Transform):
    """Fixed elementwise maps from bounded columns to the real line.

    For a column bounded below by ``low``: ``z = log(x - low)``.
    For a column in ``(low, high)``: ``z = logit((x - low) / (high - low))``.
    Other columns pass unchanged. ``low``/``high`` are ``-inf``/``inf`` where
    a column has no such bound.
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor):
        super().__init__()
        self.register_buffer("low", low.clone())
        self.register_buffer("high", high.clone())

    def _masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        has_low, has_high = torch.isfinite(self.low), torch.isfinite(self.high)
        return has_low & has_high, has_low & ~has_high

    def forward(self, x):
        interval, half_line = self._masks()
        # Each branch sees a harmless stand-in where it does not apply, so that
        # no NaN reaches the gradients through torch.where.
        width = torch.where(interval, self.high - self.low, torch.ones_like(self.low))
        u = torch.where(interval, (x - self.low) / width, 0.5)
        above_low = torch.where(half_line, x - self.low, 1.0)
        z = torch.where(interval, torch.logit(u), torch.where(half_line, above_low.log(), x))
        # d logit(u)/dx = 1 / (u (1 - u) width); d log(x - low)/dx = 1 / (x - low)
        ladj_interval = -(u.log() + torch.log1p(-u) + width.log())
        ladj = torch.where(interval, ladj_interval, torch.where(half_line, -above_low.log(), 0.0))
        return z, ladj.sum(-1)

    def inverse(self, z):
        interval, half_line = self._masks()
        width = torch.where(interval, self.high - self.low, torch.ones_like(self.low))
        low = torch.where(interval | half_line, self.low, 0.0)
        x_interval = low + width * torch.sigmoid(z)
        x_half_line = low + z.exp()
        x = torch.where(interval, x_interval, torch.where(half_line, x_half_line, z))
        ladj_interval = F.logsigmoid(z) + F.logsigmoid(-z) + width.log()
        ladj = torch.where(interval, ladj_interval, torch.where(half_line, z, 0.0))
        return x, ladj.sum(-1)


class ActNorm(Transform):
    """Learned elementwise affine map with data-dependent initialization (Kingma & Dhariwal 2018).

    ``z = (x - shift) * exp(log_scale)``. The first batch seen in training sets
    ``shift`` and ``log_scale`` so that this batch leaves with zero mean and unit
    variance per feature.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(n_features))
        self.log_scale = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        if x.shape[0] > 1:
            self.shift.copy_(x.mean(0))
            self.log_scale.copy_(-x.std(0).clamp_min(1e-6).log())
        self.initialized.fill_(True)

    def forward(self, x):
        if self.training and not self.initialized:
            self._initialize(x)
        z = (x - self.shift) * self.log_scale.exp()
        return z, self.log_scale.sum().expand(x.shape[0])

    def inverse(self, z):
        x = z * (-self.log_scale).exp() + self.shift
        return x, (-self.log_scale.sum()).expand(z.shape[0])


class Permutation(Transform):
    """Fixed reordering of the features; its log-det is zero."""

    def __init__(self, order: torch.Tensor):
        super().__init__()
        self.register_buffer("order", order.clone())
        self.register_buffer("inverse_order", torch.argsort(order))

    def forward(self, x):
        return x[:, self.order], x.new_zeros(x.shape[0])

    def inverse(self, z):
        return z[:, self.inverse_order], z.new_zeros(z.shape[0])


class _LUWeight(torch.autograd.Function):
    """W = L U from the unconstrained factors, with a hand-written backward.

    L = I + strict_lower(lower), U = strict_upper(upper) + diag(exp(log_diag)).
    Built at every training step; as a single graph node its forward and backward
    take ~16 tensor operations instead of ~40 traced ones.
    """

    @staticmethod
    def forward(ctx, lower: torch.Tensor, upper: torch.Tensor, log_diag: torch.Tensor) -> torch.Tensor:
        unit_lower = torch.tril(lower, -1)
        unit_lower.diagonal().fill_(1.0)
        diag = log_diag.exp()
        upper_diag = torch.triu(upper, 1)
        upper_diag.diagonal().copy_(diag)
        ctx.save_for_backward(unit_lower, upper_diag, diag)
        return unit_lower @ upper_diag

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_weight: torch.Tensor):
        unit_lower, upper_diag, diag = ctx.saved_tensors
        grad_lower = grad_weight @ upper_diag.T
        grad_upper = unit_lower.T @ grad_weight
        return torch.tril(grad_lower, -1), torch.triu(grad_upper, 1), grad_upper.diagonal() * diag


class LULinear(Transform):
    """Invertible linear map z = W x + b with W = L U (Kingma & Dhariwal 2018).

    L is unit lower-triangular and U upper-triangular with diagonal exp(log_diag),
    so log|det W| = sum(log_diag) and inversion is two triangular solves.
    Starts at the identity.
    """

    def __init__(self, n_features: int):
        super().__init__()
        self.lower = nn.Parameter(torch.zeros(n_features, n_features))
        self.upper = nn.Parameter(torch.zeros(n_features, n_features))
        self.log_diag = nn.Parameter(torch.zeros(n_features))
        self.bias = nn.Parameter(torch.zeros(n_features))
        eye = torch.eye(n_features)
        self.register_buffer("strict_lower_mask", torch.tril(torch.ones(n_features, n_features), -1))
        self.register_buffer("eye", eye)

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        # tril/triu rather than multiplying by masks: fewer operations per step.
        lower = torch.tril(self.lower, -1) + self.eye
        upper = torch.triu(self.upper, 1) + torch.diag_embed(self.log_diag.exp())
        return lower, upper

    def weight(self) -> torch.Tensor:
        """The matrix W = L U."""
        return _LUWeight.apply(self.lower, self.upper, self.log_diag)

    def forward(self, x):
        z = torch.addmm(self.bias, x, self.weight().T)
        return z, self.log_diag.sum().expand(x.shape[0])

    def inverse(self, z):
        lower, upper = self._factors()
        # Solve (L U) x^T = (z - b)^T.
        rhs = (z - self.bias).T
        y = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, y, upper=True).T
        return x, (-self.log_diag.sum()).expand(z.shape[0])
