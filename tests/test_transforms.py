"""Every transform: exact inverse and a log-det equal to autograd's Jacobian."""

import math

import pytest
import torch

from skflow._core import (
    AffineCoupling,
    AsinhTails,
    LULinear,
    Permutation,
    SplineCoupling,
    Standardize,
    ToUnbounded,
    YeoJohnson,
)
from skflow._core.autoregressive import AutoregressiveSpline
from skflow._core.mixture_cdf import MixtureCDFCoupling
from skflow._core.transforms import _LUWeight

from .conftest import autograd_log_abs_det, perturb_parameters

D = 4
MASK = torch.tensor([True, False, True, False])


ONE = torch.ones(1, dtype=torch.bool)


class WithContext(torch.nn.Module):
    """A conditional transform with one fixed context row for every input row (for the row-wise checks)."""

    def __init__(self, transform, n_context, seed=0):
        super().__init__()
        self.transform = transform
        self.register_buffer("row", torch.randn(1, n_context, generator=torch.Generator().manual_seed(seed)))

    def forward(self, x):
        return self.transform(x, self.row.expand(x.shape[0], -1))

    def inverse(self, z):
        return self.transform.inverse(z, self.row.expand(z.shape[0], -1))


def make_transforms():
    torch.manual_seed(0)
    return {
        "affine_coupling": perturb_parameters(AffineCoupling(MASK, (16, 16))),
        "affine_coupling_1d": perturb_parameters(AffineCoupling(ONE, (8,))),
        "affine_coupling_context": WithContext(perturb_parameters(AffineCoupling(MASK, (16,), context_features=3)), 3),
        "spline_coupling": perturb_parameters(SplineCoupling(MASK, (16, 16), n_bins=8, tail_bound=3.0)),
        "spline_coupling_1d": perturb_parameters(SplineCoupling(ONE, (8,), tail_bound=3.0)),
        "spline_coupling_context": WithContext(
            perturb_parameters(SplineCoupling(MASK, (16,), tail_bound=3.0, context_features=2)), 2
        ),
        "spline_coupling_1d_context": WithContext(
            perturb_parameters(SplineCoupling(ONE, (8,), tail_bound=3.0, context_features=2)), 2
        ),
        "autoregressive_spline": perturb_parameters(AutoregressiveSpline(D, (16, 16), tail_bound=3.0)),
        "autoregressive_spline_reversed": perturb_parameters(AutoregressiveSpline(D, (16,), reverse=True)),
        "autoregressive_spline_1d": perturb_parameters(AutoregressiveSpline(1, (8,), tail_bound=3.0)),
        "autoregressive_spline_context": WithContext(
            perturb_parameters(AutoregressiveSpline(D, (16,), tail_bound=3.0, context_features=2)), 2
        ),
        "mixture_cdf_coupling": perturb_parameters(MixtureCDFCoupling(MASK, (16, 16))),
        "mixture_cdf_coupling_1d": perturb_parameters(MixtureCDFCoupling(ONE, (8,), n_components=3)),
        "mixture_cdf_coupling_1d_context": WithContext(
            perturb_parameters(MixtureCDFCoupling(ONE, (8,), context_features=2)), 2
        ),
        "lu_linear": perturb_parameters(LULinear(D), scale=0.3),
        "permutation": Permutation(torch.tensor([2, 0, 3, 1])),
        "asinh_tails": AsinhTails(torch.tensor([True, False, True, False]), torch.tensor([True, False, False, True])),
        "yeo_johnson": YeoJohnson(torch.tensor([0.0, 0.4, 1.0, 2.0])),
        "yeo_johnson_near_zero": YeoJohnson(torch.tensor([1e-9, 1.7, 2.0 - 1e-9, 0.9])),
        "standardize": Standardize(torch.tensor([1.0, -2.0, 0.5, 3.0]), torch.tensor([0.5, 2.0, 1.5, 1e-3])),
        "to_unbounded": ToUnbounded(
            torch.tensor([-10.0, -200.0, -math.inf, -math.inf]), torch.tensor([10.0, math.inf, 100.0, math.inf])
        ),
    }


def inputs_for(name, transform, n=16):
    n_features = 1 if "_1d" in name else D
    x = torch.randn(n, n_features, dtype=torch.float64) * 2.0
    x[0] = 6.0  # beyond the spline tail bound
    x[1] = -50.0
    if name == "to_unbounded":  # inside its support (-10, 10) on the first column
        x[:, 0] = 9.0 * torch.tanh(x[:, 0] / 3.0)
    return x


@pytest.mark.parametrize("name", list(make_transforms()))
def test_inverse_recovers_input(name):
    transform = make_transforms()[name].double().eval()
    x = inputs_for(name, transform)
    z, log_det = transform(x)
    x_back, log_det_inverse = transform.inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(log_det_inverse, -log_det, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("name", list(make_transforms()))
def test_log_det_matches_autograd_jacobian(name):
    transform = make_transforms()[name].double().eval()
    x = inputs_for(name, transform, n=6)
    _, log_det = transform(x)
    torch.testing.assert_close(log_det, autograd_log_abs_det(transform, x), atol=1e-8, rtol=1e-8)
    z, _ = transform(x)
    _, log_det_inverse = transform.inverse(z)
    torch.testing.assert_close(log_det_inverse, autograd_log_abs_det(transform.inverse, z), atol=1e-8, rtol=1e-8)


def test_to_unbounded_maps_interval_and_either_half_line():
    transform = ToUnbounded(
        torch.tensor([0.0, 1.0, -math.inf, -math.inf], dtype=torch.float64),
        torch.tensor([1.0, math.inf, 3.0, math.inf], dtype=torch.float64),
    )
    x = torch.tensor([[0.25, 2.0, -3.0, -3.0], [0.9, 1.5, 2.9, 7.0]], dtype=torch.float64)
    z, log_det = transform(x)
    torch.testing.assert_close(z[:, 0], torch.logit(x[:, 0]))
    torch.testing.assert_close(z[:, 1], torch.log(x[:, 1] - 1.0))
    torch.testing.assert_close(z[:, 2], -torch.log(3.0 - x[:, 2]))  # upper bound only: increasing too
    torch.testing.assert_close(z[:, 3], x[:, 3])
    torch.testing.assert_close(log_det, autograd_log_abs_det(transform, x))
    x_back, log_det_inverse = transform.inverse(z)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(log_det_inverse, -log_det)


def test_asinh_tails_act_only_on_their_side():
    transform = AsinhTails(torch.tensor([True, False]), torch.tensor([False, True])).double()
    x = torch.tensor([[-8.0, -8.0], [8.0, 8.0]], dtype=torch.float64)
    z, _ = transform(x)
    torch.testing.assert_close(z, torch.tensor([[math.asinh(-8.0), -8.0], [8.0, math.asinh(8.0)]], dtype=torch.float64))


@pytest.mark.parametrize("coupling", [AffineCoupling, SplineCoupling])
def test_conditional_coupling_inverts_with_a_context_per_row_and_depends_on_it(coupling):
    transform = perturb_parameters(coupling(MASK, (16,), context_features=3)).double()
    x = torch.randn(20, D, dtype=torch.float64)
    context = torch.randn(20, 3, dtype=torch.float64)
    z, log_det = transform(x, context)
    x_back, log_det_inverse = transform.inverse(z, context)
    torch.testing.assert_close(x_back, x, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(log_det_inverse, -log_det)
    z_other, _ = transform(x, context + 1.0)
    assert not torch.allclose(z_other[:, MASK], z[:, MASK])


@pytest.mark.parametrize("coupling", [AffineCoupling, SplineCoupling])
def test_coupling_leaves_conditioning_half_unchanged(coupling):
    transform = perturb_parameters(coupling(MASK, (8,))).double()
    x = torch.randn(10, D, dtype=torch.float64)
    z, _ = transform(x)
    torch.testing.assert_close(z[:, ~MASK], x[:, ~MASK], rtol=0, atol=0)
    assert not torch.allclose(z[:, MASK], x[:, MASK])


def test_affine_scale_is_bounded_for_extreme_inputs():
    transform = perturb_parameters(AffineCoupling(MASK, (8,)), scale=5.0).double()
    x = torch.randn(10, D, dtype=torch.float64) * 1e6
    _, log_det = transform(x)
    assert torch.isfinite(log_det).all()
    assert torch.all(log_det.abs() <= 3.0 * MASK.sum())


def test_lu_weight_backward_matches_autograd_on_the_plain_product():
    # LULinear builds W = L U with a hand-written backward: compare with autograd.
    g = torch.Generator().manual_seed(3)
    lower, upper = torch.randn(2, D, D, generator=g, dtype=torch.float64)
    log_diag = torch.randn(D, generator=g, dtype=torch.float64)
    grad_weight = torch.randn(D, D, generator=g, dtype=torch.float64)
    grads = []
    for plain in (False, True):
        params = [t.clone().requires_grad_(True) for t in (lower, upper, log_diag)]
        if plain:
            eye = torch.eye(D, dtype=torch.float64)
            weight = (params[0].tril(-1) + eye) @ (params[1].triu(1) + torch.diag(params[2].exp()))
        else:
            weight = _LUWeight.apply(*params)
        (weight * grad_weight).sum().backward()
        grads.append([weight.detach()] + [p.grad for p in params])
    for ours, reference in zip(*grads):
        torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("reverse", [False, True])
def test_autoregressive_spline_jacobian_is_triangular_in_its_order(reverse):
    """Feature i's output depends on features before it (after it with ``reverse``) and itself only."""
    layer = perturb_parameters(AutoregressiveSpline(D, (16, 16), context_features=2, reverse=reverse)).double()
    x, context = torch.randn(1, D, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda r: layer(r, context)[0], x)[0, :, 0, :]
    above = torch.triu(jacobian, 1) if not reverse else torch.tril(jacobian, -1)
    assert float(above.abs().max()) == 0.0
    assert float(torch.diagonal(jacobian).abs().min()) > 0.0


def test_yeo_johnson_matches_its_definition_and_reaches_every_latent_value():
    x = torch.tensor([[3.0, 3.0, -3.0, -3.0], [-0.5, 0.5, 0.5, -0.5]], dtype=torch.float64)
    transform = YeoJohnson(torch.tensor([0.0, 0.5, 2.0, 1.5], dtype=torch.float64))
    z, _ = transform(x)
    expected = [
        [math.log(4.0), (4.0**0.5 - 1) / 0.5, -math.log(4.0), -((4.0**0.5) - 1) / 0.5],
        [-((1.5**2) - 1) / 2, (1.5**0.5 - 1) / 0.5, (1.5**2 - 1) / 2, -(1.5**0.5 - 1) / 0.5],
    ]
    torch.testing.assert_close(z, torch.tensor(expected, dtype=torch.float64))
    # lambda = 1 is the identity; at the ends of [0, 2] every latent value still has a preimage.
    torch.testing.assert_close(YeoJohnson(torch.ones(4, dtype=torch.float64))(x)[0], x)
    far = torch.tensor([[-30.0, 30.0, -30.0, 30.0]], dtype=torch.float64)
    x_far, _ = transform.inverse(far)
    assert torch.isfinite(x_far).all()
    torch.testing.assert_close(transform(x_far)[0], far)
