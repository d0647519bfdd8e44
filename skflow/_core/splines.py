"""Monotonic rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows").

A spline maps [-B, B] onto itself through K bins whose widths, heights and knot
derivatives come from unconstrained parameters. Outside [-B, B] it is the
identity ("linear tails"), with derivative 1 at the boundary knots so that the
tails join the spline smoothly. Every input, however far out, gets a finite value.

Layout. The coupling layers call :func:`spline` with the parameter axis second
to last and the rows last: inputs (..., N), parameters (..., 3K - 1, N). Each
tensor operation then runs over contiguous rows, vectorized, including the
ones over the K bins (softmax, search, masks); with the bins last, as in
:func:`rational_quadratic_spline`'s (..., D, 3K - 1) layout, the same
operations run element by element over inner dimensions of 8 and cost 3 to 10
times more on a CPU (``benchmarks/step_profile.py``).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

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
def _constants(
    n_bins: int, bound: float, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Interior knot offsets ``-B + 2 B m j`` (K - 1, 1), bin numbers (K, 1) and end offsets [[-1], [0]].

    Cached so that no constant tensor is rebuilt at every call, and built outside
    any ``inference_mode`` so that training can use them after a scoring call.
    """
    with torch.inference_mode(False):
        j = torch.arange(1, n_bins, dtype=torch.float64, device=device)
        knot_offsets = (2.0 * bound * MIN_BIN_SIZE * j - bound).to(dtype).unsqueeze(-1)
        bins = torch.arange(n_bins, device=device).unsqueeze(-1)
        ends = torch.tensor([[-1], [0]], device=device)
    return knot_offsets, bins, ends


class _Bin(NamedTuple):
    """Everything about the bin each element falls in, shapes (..., N) unless said otherwise.

    k (..., 1, N): the bin; probabilities (..., 2, K, N): softmax of the width and
    height logits; below (..., 1, K, N): 1.0 for the bins before k; index
    (..., 2, 1, N): k for both rows, to gather or scatter along the bins axis;
    before, size (..., 2, N): the summed probabilities before k and the one at k
    (rows: widths, heights); x0, y0: the bin's left knot; w, h: its width and
    height; d0, d1: the derivatives at its ends. derivative_index, interior,
    shifted (..., 2, N): which interior derivative logit each end reads, whether
    it is interior (the ends of [-B, B] have derivative 1), its shifted logit.
    """

    k: torch.Tensor
    probabilities: torch.Tensor
    below: torch.Tensor
    index: torch.Tensor
    before: torch.Tensor
    size: torch.Tensor
    x0: torch.Tensor
    y0: torch.Tensor
    w: torch.Tensor
    h: torch.Tensor
    d0: torch.Tensor
    d1: torch.Tensor
    derivative_index: torch.Tensor
    interior: torch.Tensor
    shifted: torch.Tensor


def _find_bin(values: torch.Tensor, params: torch.Tensor, bound: float, row: int) -> _Bin:
    """The bin of each value in [-B, B], searched among the x-knots (row 0) or the y-knots (row 1).

    Bin sizes are ``m + (1 - m K) softmax(logits)`` with floor ``m``, so the j-th
    knot is ``-B + 2B (m j + (1 - m K) sum_{i<j} p_i)``. Bin k holds
    knot_k <= v < knot_{k+1}: k counts the interior knots <= v. The sum before k
    is a masked sum (the mask serves the backward too), and the bin's end
    derivatives ``m_d + softplus(logit + shift)`` are computed for the
    two ends only.
    """
    n_bins = (params.shape[-2] + 1) // 3
    knot_offsets, bins, ends = _constants(n_bins, bound, params.dtype, params.device)
    scale = 2.0 * bound * (1.0 - MIN_BIN_SIZE * n_bins)
    probabilities = torch.softmax(params[..., : 2 * n_bins, :].unflatten(-2, (2, n_bins)), dim=-2)
    knots = torch.add(knot_offsets, probabilities[..., row, :-1, :].cumsum(-2), alpha=scale)
    k = (values.unsqueeze(-2) >= knots).sum(-2, keepdim=True)
    below = (bins < k).unsqueeze(-3).to(params.dtype)
    index = k.unsqueeze(-3).expand(*k.shape[:-2], 2, 1, k.shape[-1])
    before = (probabilities * below).sum(-2)
    size = probabilities.gather(-2, index).squeeze(-2)
    lower = torch.add(k.to(params.dtype) * (2.0 * bound * MIN_BIN_SIZE) - bound, before, alpha=scale)
    widths = torch.add(size * scale, 2.0 * bound * MIN_BIN_SIZE)
    x0, y0 = lower.unbind(-2)
    w, h = widths.unbind(-2)

    end = k + ends
    derivative_index = end.clamp(0, n_bins - 2)
    interior = derivative_index == end
    shifted = params[..., 2 * n_bins :, :].gather(-2, derivative_index) + DERIVATIVE_SHIFT
    d0, d1 = torch.where(interior, F.softplus(shifted) + MIN_DERIVATIVE, 1.0).unbind(-2)
    return _Bin(k, probabilities, below, index, before, size, x0, y0, w, h, d0, d1, derivative_index, interior, shifted)


class _ForwardSpline(torch.autograd.Function):
    """The spline's forward map with a hand-written backward, in the features-major layout.

    Training calls this at every step. Autograd on the ~60 operations of the
    forward map would trace as many graph nodes and run twice as many in the
    backward; the closed-form gradient below is one node and ~45 operations.
    ``tests/test_splines.py`` checks it against autograd on plain code.

    Notation: v input, bin [x0, x0 + w] -> [y0, y0 + h] with derivatives d0, d1 at
    its ends, s = h / w, xi = (v - x0) / w, t = xi (1 - xi), slope_sum = d0 + d1 - 2s.

    out = y0 + h (s xi^2 + d0 t) / den,                 den = s + slope_sum t
    log_det = 2 log s + log inner - 2 log den,           inner = d1 xi^2 + 2 s t + d0 (1 - xi)^2
    """

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, params: torch.Tensor, bound: float):
        inside = inputs.abs() <= bound
        # Outside [-B, B] the spline branch sees the nearest bound: finite, never NaN.
        v = inputs.clamp(-bound, bound)
        b = _find_bin(v, params, bound, row=0)
        s = b.h / b.w
        slope_sum = torch.add(b.d0 + b.d1, s, alpha=-2.0)
        # The bin's ends are sums that may round differently from the searched knots:
        # the clamp keeps xi in [0, 1] (the map is continuous, so this moves it by an ulp).
        xi = ((v - b.x0) / b.w).clamp_(0.0, 1.0)
        one_minus = 1.0 - xi
        t = xi * one_minus
        xi_square, one_minus_square = xi.square(), one_minus.square()
        den = torch.addcmul(s, slope_sum, t)
        q = torch.addcmul(s * xi_square, b.d0, t)
        ratio = b.h * q / den
        inner = torch.addcmul(torch.addcmul(b.d1 * xi_square, s, t, value=2.0), b.d0, one_minus_square)
        # log(s^2 inner / den^2), from logs of positive factors.
        log_derivative = torch.sub(inner.log(), (den / s).log(), alpha=2.0)

        outputs = torch.where(inside, b.y0 + ratio, inputs)
        log_abs_det = torch.where(inside, log_derivative, 0.0)
        saved = (s, slope_sum, xi, one_minus, t, xi_square, one_minus_square, den, q, ratio, inner)
        ctx.save_for_backward(inside, *saved, *b)
        ctx.bound = bound
        return outputs, log_abs_det

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs: torch.Tensor, grad_log_abs_det: torch.Tensor):
        inside, s, slope_sum, xi, one_minus, t, xi_square, one_minus_square, den, q, ratio, inner, *saved = (
            ctx.saved_tensors
        )
        b = _Bin(*saved)
        g_out = torch.where(inside, grad_outputs, 0.0)
        g_log = torch.where(inside, grad_log_abs_det, 0.0)

        # Written with few operations (each costs more than its arithmetic); the plain forms:
        # g_s = a h xi^2 + 2 g_log / s + 2 c t - e (1 - 2t)
        # g_xi = a h (2 s xi + d0 (1 - 2 xi)) + 2 c (d1 xi + s (1 - 2 xi) - d0 (1 - xi)) - e slope_sum (1 - 2 xi)
        a = g_out / den  # d out / d num
        c = g_log / inner  # d log_det / d inner
        e = torch.add(a * ratio, g_log / den, alpha=2.0)  # -(d / d den) of both outputs
        ah = a * b.h
        one_minus_2xi = one_minus - xi
        # Gradients with respect to s, xi, d0, d1 and (through num = h q) h, holding the others fixed.
        g_s = torch.add(ah * xi_square, g_log / s, alpha=2.0)
        g_s = torch.addcmul(g_s, t, c + e, value=2.0).sub_(e)
        g_xi = ah * torch.addcmul(b.d0 * one_minus_2xi, s, xi, value=2.0)
        g_xi.addcmul_(c, torch.addcmul(b.d1 * xi, s, one_minus_2xi).addcmul_(b.d0, one_minus, value=-1.0), value=2.0)
        g_xi.addcmul_(e * slope_sum, one_minus_2xi, value=-1.0)
        g_d0 = torch.addcmul((ah - e) * t, c, one_minus_square)
        g_d1 = torch.addcmul(c * xi_square, e, t, value=-1.0)
        g_h = torch.addcmul(g_s / b.w, a, q)  # through num and through s = h / w
        g_xi_w = g_xi / b.w  # = -(d / d x0), through xi = (v - x0) / w
        g_w = torch.addcmul(g_s * s, g_xi, xi).div_(b.w).neg_()  # through s and xi
        grad_inputs = torch.where(inside, g_xi_w, grad_outputs)

        # Knot k is -B + 2B (m k + scale' * (sum of p before k)) and the bin's size
        # 2B (m + scale' p_k): p_i gets the left end's gradient for i < k, the size's at i = k.
        # Softmax: d logit_i = p_i (G_i - <G, p>).
        n_bins = b.probabilities.shape[-2]
        scale = 2.0 * ctx.bound * (1.0 - MIN_BIN_SIZE * n_bins)
        g_lower = torch.stack([g_xi_w.neg_(), g_out], dim=-2) * scale
        g_size = torch.stack([g_w, g_h], dim=-2) * scale
        dot = torch.addcmul(g_lower * b.before, g_size, b.size)
        g_p = torch.addcmul(-dot.unsqueeze(-2), b.below, g_lower.unsqueeze(-2))
        g_p.scatter_add_(-2, b.index, g_size.unsqueeze(-2))
        grad_params = g_p.new_empty((*g_p.shape[:-3], 3 * n_bins - 1, g_p.shape[-1]))
        torch.mul(b.probabilities, g_p, out=grad_params[..., : 2 * n_bins, :].unflatten(-2, (2, n_bins)))
        g_ends = torch.stack([g_d0, g_d1], dim=-2) * torch.sigmoid(b.shifted) * b.interior
        grad_derivatives = grad_params[..., 2 * n_bins :, :]
        grad_derivatives.zero_().scatter_add_(-2, b.derivative_index, g_ends)
        return grad_inputs, grad_params, None


def _inverse_spline(inputs: torch.Tensor, params: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse map: solve the rational quadratic for xi in the bin found among the y-knots."""
    inside = inputs.abs() <= bound
    v = inputs.clamp(-bound, bound)
    b = _find_bin(v.detach(), params, bound, row=1)
    s = b.h / b.w
    slope_sum = torch.add(b.d0 + b.d1, s, alpha=-2.0)
    dy = v - b.y0
    qa = torch.addcmul(b.h * (s - b.d0), dy, slope_sum)
    qb = torch.addcmul(b.h * b.d0, dy, slope_sum, value=-1.0)
    qc = -s * dy
    discriminant = torch.addcmul(qb.square(), qa, qc, value=-4.0).clamp_min(0.0)
    # The root 2c / (-b - sqrt(disc)) is the stable form of the quadratic formula.
    xi = ((2.0 * qc) / (-qb - discriminant.sqrt())).clamp(0.0, 1.0)
    outputs = torch.addcmul(b.x0, xi, b.w)

    one_minus = 1.0 - xi
    t = xi * one_minus
    den = torch.addcmul(s, slope_sum, t)
    inner = torch.addcmul(torch.addcmul(b.d1 * xi.square(), s, t, value=2.0), b.d0, one_minus.square())
    # Minus log(s^2 inner / den^2) at the solution.
    log_derivative = -torch.sub(inner.log(), (den / s).log(), alpha=2.0)
    return torch.where(inside, outputs, inputs), torch.where(inside, log_derivative, 0.0)


def spline(
    inputs: torch.Tensor, params: torch.Tensor, bound: float, inverse: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline (or its inverse) elementwise, features-major: inputs (..., N), params (..., 3K - 1, N).

    Returns outputs and log |d outputs / d inputs|, both of the inputs' shape.
    The layout the coupling layers use (see the module docstring).
    """
    bound = float(bound)
    if inverse:
        return _inverse_spline(inputs, params, bound)
    return _ForwardSpline.apply(inputs, params, bound)


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
    The same map as :func:`spline`, in the bins-last layout (one element per
    trailing row); the coupling layers use :func:`spline` directly.
    """
    outputs, log_abs_det = spline(inputs.unsqueeze(-1), params.unsqueeze(-1), bound, inverse)
    return outputs.squeeze(-1), log_abs_det.squeeze(-1)
