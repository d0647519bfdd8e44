"""Every transform: exact inverse and a log-det equal to autograd's Jacobian."""

import math

import pytest
import torch

from skflow._core import (
    ActNorm,
    AffineCoupling,
    AsinhTails,
    LULinear,
    Permutation,
    SplineCoupling,
    Standardize,
    ToUnbounded,
)
from skflow._core.transforms import _LUWeight

from .conftest import autograd_log_abs_det, perturb_parameters

D = 4
MASK = torch.tensor([True, False, True, False])


def _asinh_tails(mask):
    transform = AsinhTails(D)
    transform.mask.copy_(mask)
    return transform


def make_transforms():
    torch.manual_seed(0)
    return {
        "affine_coupling": perturb_parameters(AffineCoupling(MASK, (16, 16))),
        "affine_coupling_1d": perturb_parameters(AffineCoupling(torch.ones(1, dtype=torch.bool), (8,))),
        "spline_coupling": perturb_parameters(SplineCoupling(MASK, (16, 16), n_bins=8, tail_bound=3.0)),
        "spline_coupling_residual": perturb_parameters(SplineCoupling(MASK, (16, 16), residual=True, tail_bound=3.0)),
        "spline_coupling_1d": perturb_parameters(SplineCoupling(torch.ones(1, dtype=torch.bool), (8,), tail_bound=3.0)),
        "lu_linear": perturb_parameters(LULinear(D), scale=0.3),
        "actnorm": perturb_parameters(ActNorm(D)),
        "permutation": Permutation(torch.tensor([2, 0, 3, 1])),
        "asinh_tails": _asinh_tails(torch.tensor([True, False, True, True])),
        "standardize": Standardize(torch.tensor([1.0, -2.0, 0.5, 3.0]), torch.tensor([0.5, 2.0, 1.5, 1e-3])),
    }


def inputs_for(name, transform, n=16):
    n_features = 1 if name.endswith("_1d") else D
    x = torch.randn(n, n_features, dtype=torch.float64) * 2.0
    x[0] = 6.0  # beyond the spline tail bound
    x[1] = -50.0
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


def test_to_unbounded_maps_interval_and_half_line():
    transform = ToUnbounded(
        torch.tensor([0.0, 1.0, -math.inf], dtype=torch.float64),
        torch.tensor([1.0, math.inf, math.inf], dtype=torch.float64),
    )
    x = torch.tensor([[0.25, 2.0, -3.0], [0.9, 1.5, 7.0]], dtype=torch.float64)
    z, log_det = transform(x)
    torch.testing.assert_close(z[:, 0], torch.logit(x[:, 0]))
    torch.testing.assert_close(z[:, 1], torch.log(x[:, 1] - 1.0))
    torch.testing.assert_close(z[:, 2], x[:, 2])
    torch.testing.assert_close(log_det, autograd_log_abs_det(transform, x))
    x_back, log_det_inverse = transform.inverse(z)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(log_det_inverse, -log_det)


def test_actnorm_initializes_from_first_training_batch():
    actnorm = ActNorm(3).double()
    x = torch.randn(500, 3, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([3.0, -1.0, 0.0])
    z, _ = actnorm(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3, dtype=torch.float64), atol=1e-10, rtol=0)
    assert bool(actnorm.initialized)
    z2, _ = actnorm(x * 10)  # already initialized: no re-initialization
    torch.testing.assert_close(z2, z * 10 + actnorm.shift * actnorm.log_scale.exp() * 9)


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
