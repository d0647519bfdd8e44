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
