"""Monotonic rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows").

A spline maps [-B, B] onto itself through K bins whose widths, heights and knot
derivatives come from unconstrained parameters. Outside [-B, B] it is the
identity ("linear tails"), with derivative 1 at the boundary knots so that the
tails join the spline smoothly. Every input, however far out, gets a finite value.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_BIN_WIDTH = 1e-3
MIN_BIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3

# softplus(x + DERIVATIVE_SHIFT) + MIN_DERIVATIVE == 1 at x == 0, so zero parameters
# give equal bins and unit derivatives: the identity map.
DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def n_spline_params(n_bins: int) -> int:
    """Number of unconstrained parameters per dimension: K widths, K heights, K-1 derivatives."""
    return 3 * n_bins - 1


def _knots(logits: torch.Tensor, bound: float, min_size: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Bin sizes from softmax logits, with a floor, and the K+1 knot positions on [-B, B]."""
    n_bins = logits.shape[-1]
    sizes = min_size + (1.0 - min_size * n_bins) * torch.softmax(logits, dim=-1)
    knots = torch.cumsum(sizes, dim=-1)
    knots = F.pad(knots, (1, 0), value=0.0)
    knots = 2.0 * bound * knots - bound
    # Pin the end knots exactly so that rounding cannot leave a gap at the bounds.
    knots = torch.cat(
        [torch.full_like(knots[..., :1], -bound), knots[..., 1:-1], torch.full_like(knots[..., :1], bound)], dim=-1
    )
    sizes = knots[..., 1:] - knots[..., :-1]
    return knots, sizes


def rational_quadratic_spline(
    inputs: torch.Tensor,
    params: torch.Tensor,
    bound: float,
    inverse: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the spline (or its inverse) elementwise.

    Parameters
    ----------
    inputs : tensor of shape (..., D)
    params : tensor of shape (..., D, 3K - 1)
        Unnormalized widths (K), heights (K) and interior derivatives (K - 1).
    bound : float
        Half-width B of the interval [-B, B] the spline covers.
    inverse : bool
        Compute the inverse map.

    Returns
    -------
    outputs : tensor of shape (..., D)
    log_abs_det : tensor of shape (..., D)
        log |d outputs / d inputs| elementwise (of the map actually applied).
    """
    n_bins = (params.shape[-1] + 1) // 3
    width_logits = params[..., :n_bins]
    height_logits = params[..., n_bins : 2 * n_bins]
    derivative_logits = params[..., 2 * n_bins :]

    x_knots, widths = _knots(width_logits, bound, MIN_BIN_WIDTH)
    y_knots, heights = _knots(height_logits, bound, MIN_BIN_HEIGHT)
    interior = MIN_DERIVATIVE + F.softplus(derivative_logits + DERIVATIVE_SHIFT)
    ones = torch.ones_like(interior[..., :1])
    derivatives = torch.cat([ones, interior, ones], dim=-1)

    inside = (inputs >= -bound) & (inputs <= bound)
    # Evaluate on clamped inputs so that the discarded branch never produces NaN,
    # which would poison gradients through torch.where.
    clamped = inputs.clamp(-bound, bound)

    search_knots = y_knots if inverse else x_knots
    bin_index = torch.searchsorted(search_knots[..., 1:-1].contiguous(), clamped.unsqueeze(-1).contiguous(), right=True)

    def gather(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, bin_index).squeeze(-1)

    x_k, w_k = gather(x_knots[..., :-1]), gather(widths)
    y_k, h_k = gather(y_knots[..., :-1]), gather(heights)
    d_k, d_k1 = gather(derivatives[..., :-1]), gather(derivatives[..., 1:])
    s_k = h_k / w_k
    slope_sum = d_k1 + d_k - 2.0 * s_k

    if inverse:
        dy = clamped - y_k
        a = h_k * (s_k - d_k) + dy * slope_sum
        b = h_k * d_k - dy * slope_sum
        c = -s_k * dy
        discriminant = (b.square() - 4.0 * a * c).clamp_min(0.0)
        # The root 2c / (-b - sqrt(disc)) is the stable form of the quadratic formula.
        xi = (2.0 * c) / (-b - discriminant.sqrt())
        xi = xi.clamp(0.0, 1.0)
        outputs = x_k + xi * w_k
    else:
        xi = (clamped - x_k) / w_k
        xi = xi.clamp(0.0, 1.0)
        numerator = h_k * (s_k * xi.square() + d_k * xi * (1.0 - xi))
        denominator = s_k + slope_sum * xi * (1.0 - xi)
        outputs = y_k + numerator / denominator

    one_minus = 1.0 - xi
    denominator = s_k + slope_sum * xi * one_minus
    derivative_numerator = s_k.square() * (d_k1 * xi.square() + 2.0 * s_k * xi * one_minus + d_k * one_minus.square())
    log_derivative = derivative_numerator.log() - 2.0 * denominator.log()
    if inverse:
        log_derivative = -log_derivative

    outputs = torch.where(inside, outputs, inputs)
    log_abs_det = torch.where(inside, log_derivative, torch.zeros_like(log_derivative))
    return outputs, log_abs_det
