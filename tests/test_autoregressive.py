"""FlowDensity(flow="autoregressive"): the estimator's contract with MADE-conditioned splines."""

import numpy as np
import pytest
import torch

from skflow import FlowDensity
from skflow._core.autoregressive import AutoregressiveSpline
from skflow._core.splines import rational_quadratic_spline

from .conftest import perturb_parameters

AUTOREGRESSIVE = dict(flow="autoregressive", n_transforms=2, hidden_units=(16,), max_epochs=5, random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    a = rng.normal(size=400)
    return np.column_stack([a, np.sin(2 * a) + 0.1 * rng.normal(size=400), rng.gamma(2.0, size=400)])


@pytest.fixture(scope="module")
def fitted(data):
    return FlowDensity(**AUTOREGRESSIVE).fit(data)


def test_transform_round_trip_and_sample(fitted, data):
    np.testing.assert_allclose(fitted.inverse_transform(fitted.transform(data)), data, atol=1e-6)
    a, b = fitted.sample(50, random_state=1), fitted.sample(50, random_state=1)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(fitted.score_samples(a)).all()


def test_save_and_load_give_the_same_scores(fitted, data, tmp_path):
    fitted.save(tmp_path / "m.skflow")
    restored = FlowDensity.load(tmp_path / "m.skflow")
    assert restored.flow_.config["flow"] == "autoregressive"
    np.testing.assert_array_equal(restored.score_samples(data), fitted.score_samples(data))


def test_density_integrates_to_one_in_two_dimensions():
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.normal(size=500), rng.normal(size=500)])
    X[:, 1] += X[:, 0] ** 2
    est = FlowDensity(**AUTOREGRESSIVE).fit(X)
    lo, hi = X.min(0) - 3 * X.std(0), X.max(0) + 3 * X.std(0)
    gx, gy = np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300)
    grid = np.stack(np.meshgrid(gx, gy, indexing="ij"), -1).reshape(-1, 2)
    mass = np.exp(est.score_samples(grid)).sum() * (gx[1] - gx[0]) * (gy[1] - gy[0])
    assert abs(mass - 1.0) < 0.02, mass


def test_regressor_takes_the_autoregressive_flow_with_two_targets():
    """The conditional flow: every target's spline sees the inputs (the context) and the targets before it."""
    from skflow import FlowRegressor

    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    Y = np.column_stack([X[:, 0] + 0.1 * rng.normal(size=300), X[:, 1] * X[:, 0] + 0.1 * rng.normal(size=300)])
    est = FlowRegressor(**AUTOREGRESSIVE, n_flows=1).fit(X, Y)
    assert np.isfinite(est.score_samples(X[:5], Y[:5])).all()
    assert est.sample(X[:4], n_samples=3, random_state=0).shape[0] == 4


@pytest.mark.parametrize("context_features", [0, 2])
def test_layer_matches_the_rows_major_reference(context_features):
    """The layer runs features-major (the compiled spline where built); the plain composition agrees."""
    # float64: perturbed weights make steep bins, whose float32 inverse is off by 1e-2 (in either layout).
    layer = AutoregressiveSpline(4, (16, 16), tail_bound=3.0, context_features=context_features)
    layer = perturb_parameters(layer).double()
    generator = torch.Generator().manual_seed(0)
    x = 2.0 * torch.randn(50, 4, generator=generator, dtype=torch.float64)
    context = torch.randn(50, context_features, generator=generator, dtype=torch.float64) if context_features else None
    z, log_det = layer(x, context)

    inputs = x if context is None else torch.cat([x, context], dim=1)
    params = layer.conditioner(inputs).view(50, 4, layer.params_per_feature)  # MADE on rows, bins last
    z_reference, log_derivatives = rational_quadratic_spline(x, params, 3.0)
    torch.testing.assert_close(z, z_reference, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(log_det, log_derivatives.sum(-1), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(layer.inverse(z, context)[0], x, rtol=1e-8, atol=1e-8)
    assert "features" not in layer.state_dict()  # files saved before the change load as they were
