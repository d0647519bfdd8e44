import math

import pytest
import torch

from skflow._core.splines import n_spline_params, rational_quadratic_spline

BOUND = 3.0


def random_spline(n_rows=64, n_features=3, n_bins=8, scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = torch.randn(n_rows, n_features, n_spline_params(n_bins), generator=g, dtype=torch.float64) * scale
    # Points inside, at the bounds and far into both tails.
    x = torch.randn(n_rows, n_features, generator=g, dtype=torch.float64) * 3.0
    x[0] = torch.tensor([-BOUND, BOUND, 0.0])[:n_features]
    x[1] = torch.tensor([-100.0, 100.0, 1e6])[:n_features]
    return x, params


def test_zero_parameters_give_identity():
    x = torch.linspace(-5, 5, 101, dtype=torch.float64).reshape(-1, 1)
    params = torch.zeros(101, 1, n_spline_params(8), dtype=torch.float64)
    y, log_det = rational_quadratic_spline(x, params, BOUND)
    torch.testing.assert_close(y, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_det, torch.zeros_like(log_det), atol=1e-12, rtol=0)


@pytest.mark.parametrize("n_bins", [2, 8, 16])
def test_inverse_recovers_input(n_bins):
    x, params = random_spline(n_bins=n_bins)
    y, log_det = rational_quadratic_spline(x, params, BOUND)
    x_back, log_det_inverse = rational_quadratic_spline(y, params, BOUND, inverse=True)
    torch.testing.assert_close(x_back, x, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(log_det_inverse, -log_det, atol=1e-9, rtol=1e-9)


def test_log_derivative_matches_autograd_inside_and_in_tails():
    x, params = random_spline()
    x.requires_grad_(True)
    y, log_det = rational_quadratic_spline(x, params, BOUND)
    (grad,) = torch.autograd.grad(y.sum(), x)  # elementwise map: the Jacobian is diagonal
    torch.testing.assert_close(log_det, grad.log(), atol=1e-8, rtol=1e-8)


def test_tails_are_identity_and_interval_maps_onto_itself():
    x, params = random_spline()
    y, log_det = rational_quadratic_spline(x, params, BOUND)
    outside = x.abs() > BOUND
    assert outside.any()
    torch.testing.assert_close(y[outside], x[outside])
    assert torch.all(log_det[outside] == 0)
    assert torch.all(y[~outside].abs() <= BOUND + 1e-12)


def test_monotonic_and_continuous_at_the_bounds():
    params = torch.randn(1, 1, n_spline_params(8), dtype=torch.float64).expand(2001, 1, -1)
    x = torch.linspace(-BOUND - 0.5, BOUND + 0.5, 2001, dtype=torch.float64).reshape(-1, 1)
    y, _ = rational_quadratic_spline(x, params, BOUND)
    assert torch.all(torch.diff(y.flatten()) > 0)
    eps = 1e-9
    edge = torch.tensor([[BOUND - eps], [BOUND + eps]], dtype=torch.float64)
    y_edge, _ = rational_quadratic_spline(edge, params[:2], BOUND)
    assert abs(float(y_edge[1] - y_edge[0])) < 1e-6


def test_no_nan_gradients_for_tail_inputs():
    x, params = random_spline()
    params.requires_grad_(True)
    y, log_det = rational_quadratic_spline(x, params, BOUND)
    (y.sum() + log_det.sum()).backward()
    assert torch.isfinite(params.grad).all()


def reference_forward(inputs, params, bound):
    """The forward map written plainly, for autograd to differentiate."""
    n_bins = (params.shape[-1] + 1) // 3
    m = 1e-3

    def knots(logits):
        sizes = m + (1 - m * n_bins) * torch.softmax(logits, -1)
        inner = 2 * bound * torch.cumsum(sizes, -1)[..., :-1] - bound
        ends = torch.full_like(inner[..., :1], bound)
        return torch.cat([-ends, inner, ends], -1)

    xk, yk = knots(params[..., :n_bins]), knots(params[..., n_bins : 2 * n_bins])
    shift = math.log(math.expm1(1 - m))
    inner_d = m + torch.nn.functional.softplus(params[..., 2 * n_bins :] + shift)
    ones = torch.ones_like(inner_d[..., :1])
    d = torch.cat([ones, inner_d, ones], -1)
    inside = inputs.abs() <= bound
    v = torch.where(inside, inputs, 0.0)
    k = torch.searchsorted(xk[..., 1:-1].contiguous().detach(), v.detach().unsqueeze(-1), right=True)

    def at(t, offset):
        return t.gather(-1, k + offset).squeeze(-1)

    x0, x1, y0, y1, d0, d1 = at(xk, 0), at(xk, 1), at(yk, 0), at(yk, 1), at(d, 0), at(d, 1)
    w, h = x1 - x0, y1 - y0
    s, xi = h / w, (v - x0) / w
    t = xi * (1 - xi)
    den = s + (d0 + d1 - 2 * s) * t
    out = y0 + h * (s * xi**2 + d0 * t) / den
    log_det = torch.log(s**2 * (d1 * xi**2 + 2 * s * t + d0 * (1 - xi) ** 2)) - 2 * torch.log(den)
    return torch.where(inside, out, inputs), torch.where(inside, log_det, 0.0)


@pytest.mark.parametrize("n_bins", [2, 8, 16])
def test_values_and_gradients_match_a_plain_autograd_reference(n_bins):
    # The forward map has a hand-written backward: compare values and both
    # outputs' gradients (inputs and parameters) with autograd on plain code.
    x, params = random_spline(n_rows=64, n_bins=n_bins)
    weights = torch.randn(2, *x.shape, dtype=torch.float64)
    results = []
    for function in (rational_quadratic_spline, reference_forward):
        xi, pi = x.clone().requires_grad_(True), params.clone().requires_grad_(True)
        y, log_det = function(xi, pi, BOUND)
        ((y * weights[0]).sum() + (log_det * weights[1]).sum()).backward()
        results.append((y, log_det, xi.grad, pi.grad))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, atol=1e-10, rtol=1e-9)


def test_hand_written_backward_passes_gradcheck():
    # Away from the bounds and the knots, where the map is smooth.
    x, params = random_spline(n_rows=8)
    x, params = x[2:].clamp(-2.9, 2.9), params[2:]
    x.requires_grad_(True)
    params.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, p: rational_quadratic_spline(a, p, BOUND), (x, params))
