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

from . import spline_kernel

# Widths and heights share one floor, so that one softmax serves both.
MIN_BIN_SIZE = 1e-3
MIN_DERIVATIVE = 1e-3

# softplus(x + DERIVATIVE_SHIFT) + MIN_DERIVATIVE == 1 at x == 0, so zero parameters
# give equal bins and unit derivatives: the identity map.
DERIVATIVE_SHIFT = math.log(math.expm1(1.0 - MIN_DERIVATIVE))


def n_spline_params(n_bins: int) -> int:
    """Number of unconstrained parameters per dimension: K widths, K heights, K-1 derivatives."""
    return 3 * n_bins - 1


class _Constants(NamedTuple):
    """Cached constants of one (n_bins, bound, dtype, device): tensors, so that no call wraps a Python number.

    knot_offsets (K - 1, 1): the floors' part ``-B + 2 B m j`` of the interior knots; ends (2, 1): [[-1], [0]],
    from a bin to the interior derivatives at its ends; the rest are 0-dim: -B, 2 B m, the derivative floor and
    shift, 0, 1 and the knots' scale 2 B (1 - m K). A tensor operand costs half of what a Python number does
    (the number is first made into a tensor and cast).
    """

    knot_offsets: torch.Tensor
    ends: torch.Tensor
    minus_bound: torch.Tensor
    min_size: torch.Tensor
    min_derivative: torch.Tensor
    shift: torch.Tensor
    zero: torch.Tensor
    one: torch.Tensor
    scale: torch.Tensor


@functools.lru_cache(maxsize=64)
def _constants(n_bins: int, bound: float, dtype: torch.dtype, device: torch.device) -> _Constants:
    """Built once per (n_bins, bound, dtype, device), outside any ``inference_mode`` (training reuses them)."""
    with torch.inference_mode(False):
        j = torch.arange(1, n_bins, dtype=torch.float64, device=device)
        knot_offsets = (2.0 * bound * MIN_BIN_SIZE * j - bound).to(dtype).unsqueeze(-1)
        ends = torch.tensor([[-1], [0]], device=device)
        scale = 2.0 * bound * (1.0 - MIN_BIN_SIZE * n_bins)
        numbers = (-bound, 2.0 * bound * MIN_BIN_SIZE, MIN_DERIVATIVE, DERIVATIVE_SHIFT, 0.0, 1.0, scale)
        scalars = [torch.tensor(value, dtype=dtype, device=device) for value in numbers]
    return _Constants(knot_offsets, ends, *scalars)


class _Bin(NamedTuple):
    """Everything about the bin each element falls in, shapes (..., N) unless said otherwise.

    probabilities (..., 2, K, N): softmax of the width and height logits;
    below (..., K, N): 1.0 for the bins before the element's bin k; index
    (..., 1, N): k; before, size (..., 2, N): the summed probabilities before
    k and the one at k (rows: widths, heights); lower, widths (..., 2, N): the
    bin's left knots (x0, y0) and sizes (w, h); derivatives (..., 2, N): at
    its ends (d0, d1); derivative_index, interior, shifted (..., 2, N): which
    interior derivative logit each end reads, whether it is interior (the
    ends of [-B, B] have derivative 1), its shifted logit.
    """

    probabilities: torch.Tensor
    below: torch.Tensor
    index: torch.Tensor
    before: torch.Tensor
    size: torch.Tensor
    lower: torch.Tensor
    widths: torch.Tensor
    derivatives: torch.Tensor
    derivative_index: torch.Tensor
    interior: torch.Tensor
    shifted: torch.Tensor


def _find_bin(values: torch.Tensor, params: torch.Tensor, bound: float, row: int) -> _Bin:
    """The bin of each value in [-B, B], searched among the x-knots (row 0) or the y-knots (row 1).

    Bin sizes are ``m + (1 - m K) softmax(logits)`` with floor ``m``, so the j-th
    knot is ``-B + 2B (m j + (1 - m K) sum_{i<j} p_i)``. Bin k holds
    knot_k <= v < knot_{k+1}. The knots increase, so the comparisons of v
    with the interior knots are 1.0 exactly for the bins before k: they are
    the mask of the sum before k (which serves the backward too), and their
    sum is k. The bin's end derivatives ``m_d + softplus(logit + shift)`` are
    computed for the two ends only.
    """
    n_bins = (params.shape[-2] + 1) // 3
    c = _constants(n_bins, bound, params.dtype, params.device)
    scale = 2.0 * bound * (1.0 - MIN_BIN_SIZE * n_bins)
    probabilities = torch.softmax(params[..., : 2 * n_bins, :].unflatten(-2, (2, n_bins)), dim=-2)
    knots = torch.add(c.knot_offsets, probabilities[..., row, :-1, :].cumsum(-2), alpha=scale)
    below = values.new_zeros((*values.shape[:-1], n_bins, values.shape[-1]))
    torch.ge(values.unsqueeze(-2), knots, out=below[..., :-1, :])
    k = below.sum(-2, keepdim=True)
    index = k.long()
    before = (probabilities * below.unsqueeze(-3)).sum(-2)
    size = probabilities.gather(-2, index.unsqueeze(-3).expand(*index.shape[:-2], 2, 1, index.shape[-1])).squeeze(-2)
    lower = torch.add(torch.add(c.minus_bound, k, alpha=2.0 * bound * MIN_BIN_SIZE), before, alpha=scale)
    widths = torch.add(c.min_size, size, alpha=scale)

    end = index + c.ends
    derivative_index = end.clamp(0, n_bins - 2)
    interior = derivative_index == end
    shifted = torch.add(params[..., 2 * n_bins :, :].gather(-2, derivative_index), c.shift)
    derivatives = torch.where(interior, F.softplus(shifted).add_(c.min_derivative), c.one)
    return _Bin(
        probabilities, below, index, before, size, lower, widths, derivatives, derivative_index, interior, shifted
    )


def _spline_forward(
    inputs: torch.Tensor, params: torch.Tensor, bound: float
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
    """Outputs, log-derivatives and what :func:`_spline_backward` needs; see :class:`_ForwardSpline`."""
    c = _constants((params.shape[-2] + 1) // 3, bound, params.dtype, params.device)
    # Outside [-B, B] the spline branch sees the nearest bound: finite, never NaN.
    v = inputs.clamp(-bound, bound)
    inside = v == inputs
    b = _find_bin(v, params, bound, row=0)
    x0, y0 = b.lower.unbind(-2)
    w, h = b.widths.unbind(-2)
    d0, d1 = b.derivatives.unbind(-2)
    s = h / w
    slope_sum = torch.add(d0 + d1, s, alpha=-2.0)
    # The bin's ends are sums that may round differently from the searched knots:
    # the clamp keeps xi in [0, 1] (the map is continuous, so this moves it by an ulp).
    xi = ((v - x0) / w).clamp_(0.0, 1.0)
    one_minus = torch.sub(c.one, xi)
    t = xi * one_minus
    xi_square, one_minus_square = xi * xi, one_minus * one_minus
    den = torch.addcmul(s, slope_sum, t)
    q = torch.addcmul(s * xi_square, d0, t)
    ratio = h * q / den
    inner = torch.addcmul(torch.addcmul(d1 * xi_square, s, t, value=2.0), d0, one_minus_square)
    # s^2 inner / den^2 as inner (s / den)^2: one logarithm (the slowest operation here) of a product in range.
    s_den = s / den
    log_derivative = torch.log(inner * (s_den * s_den))

    outputs = torch.where(inside, y0 + ratio, inputs)
    log_abs_det = torch.where(inside, log_derivative, c.zero)
    saved = (s, slope_sum, xi, one_minus, t, xi_square, one_minus_square, den, q, ratio, inner)
    return outputs, log_abs_det, (inside, *saved, *b)


def _spline_backward(
    saved: tuple[torch.Tensor, ...], bound: float, grad_outputs: torch.Tensor, grad_log_abs_det: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the inputs and of the parameters; ``grad_log_abs_det`` may broadcast (e.g. one per row)."""
    inside, s, slope_sum, xi, one_minus, t, xi_square, one_minus_square, den, q, ratio, inner, *saved = saved
    b = _Bin(*saved)
    n_bins = b.probabilities.shape[-2]
    constants = _constants(n_bins, bound, s.dtype, s.device)
    w, h = b.widths.unbind(-2)
    d0, d1 = b.derivatives.unbind(-2)
    g_out = torch.where(inside, grad_outputs, constants.zero)
    g_log = torch.where(inside, grad_log_abs_det, constants.zero)

    # Written with few operations; the plain forms:
    # g_s = a h xi^2 + 2 g_log / s + 2 c t - e (1 - 2t)
    # g_xi = a h (2 s xi + d0 (1 - 2 xi)) + 2 c (d1 xi + s (1 - 2 xi) - d0 (1 - xi)) - e slope_sum (1 - 2 xi)
    a = g_out / den  # d out / d num
    c = g_log / inner  # d log_det / d inner
    e = torch.add(a * ratio, g_log / den, alpha=2.0)  # -(d / d den) of both outputs
    ah = a * h
    one_minus_2xi = one_minus - xi
    # Gradients with respect to s, xi, d0, d1 and (through num = h q) h, holding the others fixed.
    g_s = torch.add(ah * xi_square, g_log / s, alpha=2.0)
    g_s = torch.addcmul(g_s, t, c + e, value=2.0).sub_(e)
    g_xi = ah * torch.addcmul(d0 * one_minus_2xi, s, xi, value=2.0)
    g_xi.addcmul_(c, torch.addcmul(d1 * xi, s, one_minus_2xi).addcmul_(d0, one_minus, value=-1.0), value=2.0)
    g_xi.addcmul_(e * slope_sum, one_minus_2xi, value=-1.0)
    g_d0 = torch.addcmul((ah - e) * t, c, one_minus_square)
    g_d1 = torch.addcmul(c * xi_square, e, t, value=-1.0)
    g_h = torch.addcmul(g_s / w, a, q)  # through num and through s = h / w
    g_xi_w = g_xi / w  # = -(d / d x0), through xi = (v - x0) / w
    g_w = torch.addcmul(g_s * s, g_xi, xi).div_(w).neg_()  # through s and xi
    grad_inputs = torch.where(inside, g_xi_w, grad_outputs)

    # Knot k is -B + 2B (m k + scale' * (sum of p before k)) and the bin's size
    # 2B (m + scale' p_k): p_i gets the left end's gradient for i < k, the size's at i = k.
    # Softmax: d logit_i = p_i (G_i - <G, p>).
    g_bin = torch.stack([g_xi_w.neg_(), g_out, g_w, g_h], dim=-2).mul_(constants.scale)
    g_lower, g_size = g_bin.unflatten(-2, (2, 2)).unbind(-3)
    dot = torch.addcmul(g_lower * b.before, g_size, b.size)
    g_p = torch.addcmul(dot.neg_().unsqueeze(-2), b.below.unsqueeze(-3), g_lower.unsqueeze(-2))
    index = b.index.unsqueeze(-3).expand(*b.index.shape[:-2], 2, 1, b.index.shape[-1])
    g_p.scatter_add_(-2, index, g_size.unsqueeze(-2))
    grad_params = g_p.new_empty((*g_p.shape[:-3], 3 * n_bins - 1, g_p.shape[-1]))
    torch.mul(b.probabilities, g_p, out=grad_params[..., : 2 * n_bins, :].unflatten(-2, (2, n_bins)))
    g_ends = torch.stack([g_d0, g_d1], dim=-2).mul_(torch.sigmoid(b.shifted)).mul_(b.interior)
    grad_derivatives = grad_params[..., 2 * n_bins :, :]
    grad_derivatives.zero_().scatter_add_(-2, b.derivative_index, g_ends)
    return grad_inputs, grad_params


class _ForwardSpline(torch.autograd.Function):
    """The spline's forward map with a hand-written backward, in the features-major layout.

    Training calls this at every step. Autograd on the ~50 operations of the
    forward map would trace as many graph nodes and run twice as many in the
    backward; the closed-form gradient below is one node and ~45 operations.
    ``tests/test_splines.py`` checks it against autograd on plain code. At
    training sizes each operation costs more than its arithmetic, so both
    directions use few, with tensor constants (a Python number operand is
    first turned into a tensor, which doubles the cost of a small operation).

    Notation: v input, bin [x0, x0 + w] -> [y0, y0 + h] with derivatives d0, d1 at
    its ends, s = h / w, xi = (v - x0) / w, t = xi (1 - xi), slope_sum = d0 + d1 - 2s.

    out = y0 + h (s xi^2 + d0 t) / den,                 den = s + slope_sum t
    log_det = log(inner (s / den)^2),                    inner = d1 xi^2 + 2 s t + d0 (1 - xi)^2
    """

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, params: torch.Tensor, bound: float):
        outputs, log_abs_det, saved = _spline_forward(inputs, params, bound)
        # Intermediates, neither inputs nor outputs: kept on ctx (freed with the graph), without
        # save_for_backward's packing (~8 us for these ~27 tensors).
        ctx.saved, ctx.bound = saved, bound
        return outputs, log_abs_det

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_outputs: torch.Tensor, grad_log_abs_det: torch.Tensor):
        return (*_spline_backward(ctx.saved, ctx.bound, grad_outputs, grad_log_abs_det), None)


class _CouplingSpline(torch.autograd.Function):
    """A coupling layer's spline with its gather, scatter and sum over the features, as one graph node.

    ``x`` (N, D) rows; the features ``transformed`` go through the spline with
    ``params`` (len(transformed), 3K - 1, N); the others pass unchanged.
    Returns the new rows and the log-determinant per row. Traced by autograd,
    the gather, the scatter back and the sum would add three nodes and ~6
    operations to every step's backward. On the CPU the compiled spline
    (:mod:`.spline_kernel`) computes both directions where it can be built.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, params: torch.Tensor, transformed: torch.Tensor, bound: float):
        ctx.transformed, ctx.bound = transformed, bound
        ctx.library = spline_kernel.load(x, params)
        if ctx.library is not None:
            x, params = x.contiguous(), params.contiguous()
            for_backward = any(ctx.needs_input_grad[:2])
            y, log_det, probabilities = spline_kernel.forward(ctx.library, x, params, transformed, bound, for_backward)
            if for_backward:
                ctx.save_for_backward(x, params, probabilities)
            return y, log_det
        outputs, log_abs_det, saved = _spline_forward(x.T.index_select(0, transformed), params, bound)
        # Intermediates (and a buffer), as in _ForwardSpline: kept on ctx.
        ctx.saved = saved
        return x.index_copy(1, transformed, outputs.T), log_abs_det.sum(0)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_y: torch.Tensor, grad_log_det: torch.Tensor):
        transformed = ctx.transformed
        if ctx.library is not None:
            x, params, probabilities = ctx.saved_tensors
            grad_y, grad_log_det = grad_y.contiguous(), grad_log_det.contiguous()
            grad_x, grad_params = spline_kernel.backward(
                ctx.library, x, params, probabilities, transformed, ctx.bound, grad_y, grad_log_det
            )
            return grad_x, grad_params, None, None
        grad_outputs = grad_y.T.index_select(0, transformed)
        grad_inputs, grad_params = _spline_backward(ctx.saved, ctx.bound, grad_outputs, grad_log_det)
        return grad_y.index_copy(1, transformed, grad_inputs.T), grad_params, None, None


def coupling_spline(
    x: torch.Tensor, params: torch.Tensor, transformed: torch.Tensor, bound: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows ``x`` (N, D) with the features ``transformed`` through the spline, and the log-det per row.

    ``params`` (len(transformed), 3K - 1, N), features-major as :func:`spline`'s.
    """
    return _CouplingSpline.apply(x, params, transformed, float(bound))


def _inverse_spline(inputs: torch.Tensor, params: torch.Tensor, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse map: solve the rational quadratic for xi in the bin found among the y-knots."""
    inside = inputs.abs() <= bound
    v = inputs.clamp(-bound, bound)
    b = _find_bin(v.detach(), params, bound, row=1)
    x0, y0 = b.lower.unbind(-2)
    w, h = b.widths.unbind(-2)
    d0, d1 = b.derivatives.unbind(-2)
    s = h / w
    slope_sum = torch.add(d0 + d1, s, alpha=-2.0)
    dy = v - y0
    qa = torch.addcmul(h * (s - d0), dy, slope_sum)
    qb = torch.addcmul(h * d0, dy, slope_sum, value=-1.0)
    qc = -s * dy
    discriminant = torch.addcmul(qb.square(), qa, qc, value=-4.0).clamp_min(0.0)
    # The root 2c / (-b - sqrt(disc)) is the stable form of the quadratic formula.
    xi = ((2.0 * qc) / (-qb - discriminant.sqrt())).clamp(0.0, 1.0)
    outputs = torch.addcmul(x0, xi, w)

    one_minus = 1.0 - xi
    t = xi * one_minus
    den = torch.addcmul(s, slope_sum, t)
    inner = torch.addcmul(torch.addcmul(d1 * xi.square(), s, t, value=2.0), d0, one_minus.square())
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
