"""Monotonic rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows").

A spline maps [-B, B] onto itself through K bins whose widths, heights and knot
derivatives come from unconstrained parameters. Outside [-B, B] it is the
identity ("linear tails"), with derivative 1 at the boundary knots so that the
tails join the spline smoothly. Every input, however far out, gets a finite value.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

# Widths and heights share one floor, so that one softmax serves both.
MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3

# softplus(x + DERIVATIVE_SHIFT) + MIN_DERIVATIVE == 1 at x == 0, so zero parameters
# give equal bins and unit derivatives: the identity map.
DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def n_spline_params(n_bins: int) -> int:
    """Number of unconstrained parameters per dimension: K widths, K heights, K-1 derivatives."""
    return 3 * n_bins - 1


@functools.lru_cache(maxsize=64)
def _table_constants(
    n_bins: int, bound: float, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row scales (3, 1) and offsets (3, K + 1) that turn padded cumulative softmax sums
    and softplus values into knots and knot derivatives (see ``_knot_table``).

    Cached so that no constant tensor is rebuilt at every call, and built outside
    any ``inference_mode`` so that training can use them after a scoring call.
    """
    with torch.inference_mode(False):
        spread = 1.0 - MIN_BIN_SIZE * n_bins
        j = torch.arange(n_bins + 1, dtype=torch.float64)
        knot_offsets = 2.0 * bound * MIN_BIN_SIZE * j - bound
        knot_offsets[0], knot_offsets[-1] = -bound, bound
        derivative_offsets = torch.full((n_bins + 1,), MIN_DERIVATIVE, dtype=torch.float64)
        derivative_offsets[0] = derivative_offsets[-1] = 1.0
        offsets = torch.stack([knot_offsets, knot_offsets, derivative_offsets]).to(dtype=dtype, device=device)
        scales = torch.tensor([[2.0 * bound * spread], [2.0 * bound * spread], [1.0]], dtype=dtype, device=device)
    return scales, offsets


class _KnotTable(torch.autograd.Function):
    """Knots and knot derivatives of the splines, as one (..., 3, K + 1) table.

    Rows: x-knots, y-knots (both from -B to B) and derivatives (1 at both ends).
    Bin sizes are ``m + (1 - m K) softmax(logits)`` with floor ``m``, so the j-th
    knot is ``-B + 2B (m j + (1 - m K) cumsum(softmax)_j)``: a fixed offset plus a
    scaled cumulative sum, one ``addcmul`` for all three rows. The end knots and
    end derivatives get a zero pad, so they are exactly -B, B and 1.
    Interior derivatives are ``m_d + softplus(logit + shift)``.

    One graph node with a hand-written backward (softmax, cumsum and softplus
    derivatives) instead of ~11 traced ones: it runs at every training step.
    """

    @staticmethod
    def forward(ctx, params: torch.Tensor, bound: float) -> torch.Tensor:
        n_bins = (params.shape[-1] + 1) // 3
        size_logits, derivative_logits = params.split((2 * n_bins, n_bins - 1), dim=-1)
        probabilities = torch.softmax(size_logits.unflatten(-1, (2, n_bins)), dim=-1)
        shifted = derivative_logits + DERIVATIVE_SHIFT
        raw = torch.cat([probabilities.cumsum(-1)[..., :-1], F.softplus(shifted).unsqueeze(-2)], dim=-2)
        scales, offsets = _table_constants(n_bins, bound, params.dtype, params.device)
        ctx.save_for_backward(probabilities, shifted, scales)
        return torch.addcmul(offsets, scales, F.pad(raw, (1, 1)))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_table: torch.Tensor):
        probabilities, shifted, scales = ctx.saved_tensors
        grad_raw = (grad_table * scales)[..., 1:-1]
        # cumsum: each probability feeds every later cumulative sum (the last one is unused).
        grad_cumulative = F.pad(grad_raw[..., :2, :], (0, 1))
        grad_probabilities = grad_cumulative.flip(-1).cumsum(-1).flip(-1)
        # softmax: p * (g - <g, p>).
        grad_logits = probabilities * (grad_probabilities - (grad_probabilities * probabilities).sum(-1, keepdim=True))
        grad_derivative_logits = grad_raw[..., 2, :] * torch.sigmoid(shifted)
        return torch.cat([grad_logits.flatten(-2), grad_derivative_logits], dim=-1), None


def _knot_table(params: torch.Tensor, bound: float) -> torch.Tensor:
    """The (..., 3, K + 1) table of x-knots, y-knots and knot derivatives (see ``_KnotTable``)."""
    return _KnotTable.apply(params, float(bound))


def _bin_ends(values: torch.Tensor, table: torch.Tensor, row: int) -> torch.Tensor:
    """Index (..., D, 3, 2) of both ends of each value's bin, searched in ``table[..., row, :]``.

    Bin k holds knot_k <= v < knot_{k+1}: k counts the interior knots <= v
    (searchsorted with right=True, without its contiguity requirements).
    """
    k = (values.unsqueeze(-1) >= table[..., row, 1:-1]).sum(-1, keepdim=True)
    return torch.cat([k, k + 1], dim=-1).unsqueeze(-2).expand(*k.shape[:-1], 3, 2)


def _bin(values: torch.Tensor, table: torch.Tensor, row: int):
    """The bin of each value (searched in x-knots, row 0, or y-knots, row 1) in one gather.

    Returns its index (for the backward's scatter) and, each of shape (..., D):
    left knot x0, y0, derivative d0 there, width w, height h and derivative d1 at the right end.
    """
    index = _bin_ends(values, table, row)
    lower, upper = table.gather(-1, index).unbind(-1)
    x0, y0, d0 = lower.unbind(-1)
    w, h, _ = (upper - lower).unbind(-1)
    return index, x0, y0, d0, w, h, upper[..., 2]


class _ForwardSpline(torch.autograd.Function):
    """The spline's forward map with a hand-written backward.

    Training calls this at every step. With autograd tracing each of its ~30
    elementwise operations, the backward pass alone costs ~120 tiny operations
    per layer; the closed-form gradient below costs about a third of that and
    one graph node. ``tests/test_splines.py`` checks it against autograd.

    Notation: v input, bin [x0, x1] -> [y0, y1] with derivatives d0, d1 at its
    ends, w = x1 - x0, h = y1 - y0, s = h / w, xi = (v - x0) / w, t = xi (1 - xi),
    slope_sum = d0 + d1 - 2s.

    out = y0 + h (s xi^2 + d0 t) / den,                 den = s + slope_sum t
    log_det = 2 log s + log inner - 2 log den,           inner = d1 xi^2 + 2 s t + d0 (1 - xi)^2
    """

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, table: torch.Tensor, bound: float):
        inside = inputs.abs() <= bound
        # The spline branch sees a harmless 0 outside [-B, B], never NaN.
        v = torch.where(inside, inputs, 0.0)
        index, x0, y0, d0, w, h, d1 = _bin(v, table, 0)

        s = h / w
        slope_sum = torch.add(d0 + d1, s, alpha=-2.0)
        # No clamp needed: x0 <= v <= x1 and rounding is monotonic, so
        # fl(v - x0) lies in [0, fl(x1 - x0)] = [0, w] and xi in [0, 1].
        xi = (v - x0) / w
        one_minus = 1.0 - xi
        t = xi * one_minus
        xi_square = xi.square()
        den = torch.addcmul(s, slope_sum, t)
        q = torch.addcmul(s * xi_square, d0, t)
        ratio = h * q / den
        inner = torch.addcmul(torch.addcmul(d1 * xi_square, s, t, value=2.0), d0, one_minus.square())
        # log(s^2 inner / den^2), from logs of positive factors.
        log_derivative = torch.sub(inner.log(), (den / s).log(), alpha=2.0)

        outputs = torch.where(inside, y0 + ratio, inputs)
        log_abs_det = torch.where(inside, log_derivative, 0.0)
        ctx.save_for_backward(inside, index, d0, d1, w, h, s, slope_sum, xi, t, den, q, ratio, inner)
        ctx.table_shape = table.shape
        return outputs, log_abs_det

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs: torch.Tensor, grad_log_abs_det: torch.Tensor):
        inside, index, d0, d1, w, h, s, slope_sum, xi, t, den, q, ratio, inner = ctx.saved_tensors
        g_out = torch.where(inside, grad_outputs, 0.0)
        g_log = torch.where(inside, grad_log_abs_det, 0.0)

        a = g_out / den  # d out / d num
        c = g_log / inner  # d log_det / d inner
        e = a * ratio + 2.0 * g_log / den  # -(d / d den) of both outputs
        one_minus_2xi = 1.0 - 2.0 * xi
        # Gradients with respect to s, xi, d0, d1 and (through num = h q) h, holding the others fixed.
        g_s = a * h * xi.square() + 2.0 * g_log / s + 2.0 * c * t - e * (1.0 - 2.0 * t)
        g_xi = (
            a * h * (2.0 * s * xi + d0 * one_minus_2xi)
            + 2.0 * c * (d1 * xi + s * one_minus_2xi - d0 * (1.0 - xi))
            - e * slope_sum * one_minus_2xi
        )
        g_d0 = a * h * t + c * (1.0 - xi).square() - e * t
        g_d1 = c * xi.square() - e * t
        g_h = a * q + g_s / w  # through num and through s = h / w
        # Through xi = (v - x0) / w and w = x1 - x0.
        g_x1 = -(g_s * s + g_xi * xi) / w
        g_x0 = -g_x1 - g_xi / w

        grad_inputs = torch.where(inside, g_xi / w, grad_outputs)
        ends = torch.stack(
            [torch.stack([g_x0, g_out - g_h, g_d0], dim=-1), torch.stack([g_x1, g_h, g_d1], dim=-1)], dim=-1
        )
        grad_table = ends.new_zeros(ctx.table_shape).scatter_add_(-1, index, ends)
        return grad_inputs, grad_table, None


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

    Notes
    -----
    At training batch sizes this is bound by per-operation overhead, not
    arithmetic, so the code keeps the number of tensor operations (forward and
    backward) small: one softmax and one cumsum for widths and heights, one table
    of knots and derivatives, one gather of both ends of each input's bin, and a
    closed-form backward for the forward map.
    """
    bound = float(bound)
    table = _knot_table(params, bound)
    if not inverse:
        return _ForwardSpline.apply(inputs, table, bound)

    inside = inputs.abs() <= bound
    # The spline branch sees a harmless 0 outside [-B, B], so that it never
    # produces NaN there, which would poison gradients through torch.where.
    clamped = torch.where(inside, inputs, 0.0)
    _, x_k, y_k, d_k, w_k, h_k, d_k1 = _bin(clamped.detach(), table, 1)

    s_k = h_k / w_k
    slope_sum = torch.add(d_k + d_k1, s_k, alpha=-2.0)
    dy = clamped - y_k
    a = torch.addcmul(h_k * (s_k - d_k), dy, slope_sum)
    b = torch.addcmul(h_k * d_k, dy, slope_sum, value=-1.0)
    c = -s_k * dy
    discriminant = torch.addcmul(b.square(), a, c, value=-4.0).clamp_min(0.0)
    # The root 2c / (-b - sqrt(disc)) is the stable form of the quadratic formula.
    xi = ((2.0 * c) / (-b - discriminant.sqrt())).clamp(0.0, 1.0)
    outputs = torch.addcmul(x_k, xi, w_k)

    one_minus = 1.0 - xi
    xi_one_minus = xi * one_minus
    denominator = torch.addcmul(s_k, slope_sum, xi_one_minus)
    derivative_numerator = torch.addcmul(
        torch.addcmul(d_k1 * xi.square(), s_k, xi_one_minus, value=2.0), d_k, one_minus.square()
    )
    # Minus log(s^2 * derivative_numerator / denominator^2) at the solution.
    log_derivative = -torch.sub(derivative_numerator.log(), (denominator / s_k).log(), alpha=2.0)

    outputs = torch.where(inside, outputs, inputs)
    log_abs_det = torch.where(inside, log_derivative, 0.0)
    return outputs, log_abs_det
