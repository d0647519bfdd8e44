import math

import numpy as np
import pytest
import torch

from skflow._core import (
    IndexedContext,
    LULinear,
    StandardNormal,
    build_flow,
    flow_from_config,
    standard_normal_log_prob,
)
from skflow._core.flow import Flow

from .conftest import autograd_log_abs_det, perturb_parameters


@pytest.mark.parametrize("kind", ["spline", "affine", "autoregressive"])
@pytest.mark.parametrize("n_features", [1, 2, 5])
def test_untrained_flow_is_identity_with_standard_normal_density(kind, n_features):
    flow = build_flow(n_features, flow=kind, n_transforms=3, hidden_units=(16,)).double()
    x = torch.randn(50, n_features, dtype=torch.float64) * 3
    z, log_det = flow(x)
    torch.testing.assert_close(z, x, atol=1e-12, rtol=0)
    torch.testing.assert_close(flow.log_prob(x), standard_normal_log_prob(x), atol=1e-12, rtol=0)


def test_known_linear_map_gives_closed_form_gaussian_density():
    """A flow z = W x + b with N(0, I) base is x ~ N(-W^{-1} b, (W^T W)^{-1})."""
    torch.manual_seed(1)
    lu = perturb_parameters(LULinear(3), scale=0.4).double()
    flow = Flow([], [lu], StandardNormal(3), {"n_features": 3})
    with torch.no_grad():
        lower, upper = lu._factors()
        weight = lower @ upper
        mean = -torch.linalg.solve(weight, lu.bias)
        covariance = torch.linalg.inv(weight.T @ weight)
    x = torch.randn(100, 3, dtype=torch.float64) * 2
    expected = torch.distributions.MultivariateNormal(mean, covariance).log_prob(x)
    torch.testing.assert_close(flow.log_prob(x), expected, atol=1e-10, rtol=1e-10)


FITTED = dict(
    low=[0.0, -np.inf, -np.inf],
    high=[np.inf, 2.0, np.inf],
    loc=[0.3, -1.0, 2.0],
    scale=[0.7, 1.5, 3.0],
    lower_tails=[True, False, False],
    upper_tails=[False, False, True],
)


def inside_support(n=5, seed=0):
    x = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 2
    x[:, 0] = x[:, 0].abs() + 0.1  # above low=0
    x[:, 1] = 2.0 - x[:, 1].abs() - 0.1  # below high=2
    return x


@pytest.mark.parametrize("context_features", [0, 2])
@pytest.mark.parametrize("kind", ["spline", "affine", "autoregressive"])
def test_flow_log_det_is_sum_of_layers_and_matches_autograd(kind, context_features):
    flow = build_flow(
        3, flow=kind, n_transforms=3, hidden_units=(8,), tail_bound=3.0, context_features=context_features, **FITTED
    )
    flow = perturb_parameters(flow, 0.3).double()
    x = inside_support()
    row = torch.randn(1, context_features, dtype=torch.float64) if context_features else None

    def forward(rows):
        return flow(rows, None if row is None else row.expand(rows.shape[0], -1))

    def inverse(rows):
        return flow.inverse(rows, None if row is None else row.expand(rows.shape[0], -1))

    z, log_det = forward(x)
    torch.testing.assert_close(log_det, autograd_log_abs_det(forward, x), atol=1e-8, rtol=1e-8)
    x_back, log_det_inverse = inverse(z)
    torch.testing.assert_close(x_back, x, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(log_det_inverse, -log_det, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("n_features", [1, 3])
@pytest.mark.parametrize("kind", ["spline", "affine", "autoregressive"])
def test_indexed_context_maps_as_the_materialized_one(kind, n_features):
    # One feature: the conditioners see only the context and run once per distinct row (the fast
    # path); three: they also see features, and the context is materialized.
    flow = build_flow(n_features, flow=kind, n_transforms=3, hidden_units=(8,), tail_bound=3.0, context_features=2)
    flow = perturb_parameters(flow, 0.3).double()
    rows, repeats = torch.randn(4, 2, dtype=torch.float64), 5
    repeated = IndexedContext.repeated(rows, repeats)
    torch.testing.assert_close(repeated.expanded(), rows.repeat_interleave(repeats, dim=0), rtol=0, atol=0)
    shuffled = IndexedContext(rows, torch.randint(rows.shape[0], (rows.shape[0] * repeats,)))
    x = torch.randn(rows.shape[0] * repeats, n_features, dtype=torch.float64)
    for context in (repeated, shuffled):
        materialized = context.expanded()
        assert context.shape == materialized.shape
        for a, b in zip(flow(x, context), flow(x, materialized)):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
        for a, b in zip(flow.inverse(x, context), flow.inverse(x, materialized)):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    assert not torch.allclose(flow(x, repeated)[0], x)  # the layers are not the identity


def test_untrained_flow_is_its_fitted_preprocessing_under_a_standard_normal():
    """log p(x) of the untrained flow is the closed-form density of the fixed maps' preimage of N(0, I)."""
    fitted = dict(low=[0.0, -np.inf], high=[np.inf, 2.0], loc=[0.5, -1.0], scale=[2.0, 0.5])
    flow = build_flow(2, n_transforms=2, hidden_units=(8,), **fitted).double()
    x = torch.tensor([[0.5, 1.0], [3.0, -4.0]], dtype=torch.float64)
    u0, u1 = (torch.log(x[:, 0]) - 0.5) / 2.0, (-torch.log(2.0 - x[:, 1]) + 1.0) / 0.5
    normal = torch.distributions.Normal(0.0, 1.0)
    expected = (
        normal.log_prob(u0)
        - math.log(2.0)
        - torch.log(x[:, 0])
        + normal.log_prob(u1)
        - math.log(0.5)
        - torch.log(2.0 - x[:, 1])
    )
    torch.testing.assert_close(flow.log_prob(x), expected, atol=1e-12, rtol=1e-12)


def test_non_trivial_flow_density_integrates_to_one_on_a_grid():
    flow = perturb_parameters(build_flow(2, n_transforms=3, hidden_units=(16,), tail_bound=3.0), 0.3).double()
    grid = torch.linspace(-12, 12, 801, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    with torch.no_grad():
        density = flow.log_prob(points).exp()
    cell = float(grid[1] - grid[0]) ** 2
    assert abs(float(density.sum()) * cell - 1.0) < 0.01


def test_sample_is_reproducible_and_follows_the_density():
    flow = build_flow(2, n_transforms=2, hidden_units=(8,)).double()
    a = flow.sample(1000, torch.Generator().manual_seed(3))
    b = flow.sample(1000, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    # Identity flow: samples are standard normal.
    assert abs(float(a.mean())) < 0.1 and abs(float(a.std()) - 1) < 0.1


@pytest.mark.parametrize("fitted", [{}, FITTED])
def test_rebuild_from_config_and_state_dict(fitted):
    flow = perturb_parameters(build_flow(3, n_transforms=2, hidden_units=(8,), seed=5, **fitted), 0.3).double()
    clone = flow_from_config(flow.config).double()
    clone.load_state_dict(flow.state_dict())
    x = inside_support(10)
    torch.testing.assert_close(clone.log_prob(x), flow.log_prob(x), rtol=0, atol=0)


def test_build_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = build_flow(4, mixing="permutation", seed=7)
    assert torch.equal(torch.random.get_rng_state(), before)
    b = build_flow(4, mixing="permutation", seed=7)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_standard_normal_log_prob_closed_form():
    z = torch.tensor([[0.0, 0.0], [1.0, -2.0]], dtype=torch.float64)
    expected = np.array([-math.log(2 * math.pi), -math.log(2 * math.pi) - 2.5])
    np.testing.assert_allclose(standard_normal_log_prob(z).numpy(), expected)
