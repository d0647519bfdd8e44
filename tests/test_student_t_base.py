"""Student t components for the mixture base: density, draws, persistence, and when the start chooses them."""

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from skflow import FlowDensity
from skflow._core import GaussianMixtureBase, StudentTMixtureBase, flow_from_config
from skflow._mixture_init import Candidate, choose_degrees_of_freedom

from .conftest import mass_on_grid, pickled_and_saved_copies
from .test_mixture_base import flow_with_mixture, random_mixture


def t_mixture(k: int, d: int, nu: float, seed: int = 0):
    weights, means, covariances = random_mixture(k, d, seed)
    precisions = GaussianMixtureBase.precisions_cholesky_from_covariances(covariances)
    base = StudentTMixtureBase.from_mixture(weights, means, precisions, torch.float64, degrees_of_freedom=nu)
    return base, (weights, means, covariances)


def scipy_log_density(x, weights, means, covariances, nu):
    # Each component is t_nu with scale matrix Sigma (nu - 2) / nu: its covariance is Sigma.
    parts = [
        np.log(w) + stats.multivariate_t(m, c * (nu - 2) / nu, df=nu).logpdf(x)
        for w, m, c in zip(weights, means, covariances)
    ]
    return logsumexp(parts, axis=0)


@pytest.mark.parametrize("nu", [2.5, 5.0, 40.0])
def test_log_prob_is_scipys_t_mixture_with_the_gaussians_covariances(nu, monkeypatch):
    base, numbers = t_mixture(3, 3, nu)
    x = np.random.RandomState(1).standard_t(3, size=(300, 3)) * 4.0
    expected = scipy_log_density(x, *numbers, nu)
    np.testing.assert_allclose(base.log_prob(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=1e-9)
    monkeypatch.setattr(GaussianMixtureBase, "_BATCHED_ELEMENTS", 1)  # one component at a time
    np.testing.assert_allclose(base.log_prob(torch.from_numpy(x)).detach().numpy(), expected, rtol=0, atol=1e-9)


def test_many_degrees_of_freedom_approach_the_gaussian_mixture_and_far_rows_cost_far_less():
    base, (weights, means, covariances) = t_mixture(2, 2, 1e9)
    precisions = GaussianMixtureBase.precisions_cholesky_from_covariances(covariances)
    gaussian = GaussianMixtureBase.from_mixture(weights, means, precisions, torch.float64)
    x = torch.randn(50, 2, dtype=torch.float64) * 3
    torch.testing.assert_close(base.log_prob(x), gaussian.log_prob(x), atol=1e-4, rtol=0)
    heavy, _ = t_mixture(2, 2, 4.0)
    far = torch.tensor([[60.0, -50.0]], dtype=torch.float64)
    with torch.no_grad():
        assert float(heavy.log_prob(far)) > float(gaussian.log_prob(far)) + 100
        # Near 2 degrees of freedom, in float32, far rows stay finite (m / (nu - 2) would overflow).
        nearly_two, _ = t_mixture(2, 2, 2.0001)
        assert torch.isfinite(nearly_two.float().log_prob(torch.full((1, 2), 1e16))).all()


@pytest.mark.parametrize("nu", [2.0, 1.0, float("inf"), float("nan")])
def test_degrees_of_freedom_must_be_finite_and_above_two(nu):
    with pytest.raises(ValueError, match="degrees_of_freedom"):
        StudentTMixtureBase(2, 3, nu)


def test_draws_are_reproducible_from_the_generator_and_follow_the_t():
    nu = 5.0
    base, (weights, means, covariances) = t_mixture(1, 3, nu, seed=2)

    def draw(seed, n=20_000):
        return base.sample(n, torch.Generator().manual_seed(seed), torch.float64, torch.device("cpu")).numpy()

    torch.manual_seed(1)
    np.random.seed(1)
    first = draw(7)
    torch.manual_seed(2)
    np.random.seed(2)  # neither global generator plays a part
    np.testing.assert_array_equal(first, draw(7))
    assert not np.array_equal(first, draw(8))
    # One component: the squared Mahalanobis distance under the scale matrix, divided by d, is F(d, nu).
    scale = covariances[0] * (nu - 2) / nu
    centred = first - means[0]
    distance = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(scale), centred) / 3
    assert stats.kstest(distance, stats.f(3, nu).cdf).pvalue > 1e-3
    np.testing.assert_allclose(np.cov(first.T), covariances[0], atol=0.15 * np.abs(covariances[0]).max())


def test_draws_of_several_components_put_the_mass_the_density_puts():
    base, _ = t_mixture(3, 2, 5.0, seed=4)
    draws = base.sample(40_000, torch.Generator().manual_seed(0), torch.float64, torch.device("cpu")).numpy()
    axis_0, axis_1 = np.linspace(-80.0, 80.0, 1601), np.linspace(-80.0, 80.0, 1601)
    grid = np.stack(np.meshgrid(axis_0, axis_1, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        density = base.log_prob(torch.from_numpy(grid)).exp().numpy().reshape(1601, 1601)
    marginal_0 = np.trapezoid(density, axis_1, axis=1)
    for threshold in (-2.0, 0.0, 1.0, 3.0):
        below = axis_0 <= threshold
        mass = np.trapezoid(marginal_0[below], axis_0[below])
        assert (draws[:, 0] <= threshold).mean() == pytest.approx(mass, abs=0.01)


def test_a_flow_over_t_components_integrates_to_one_on_a_grid():
    flow = flow_with_mixture(degrees_of_freedom=8.0)
    mass = mass_on_grid(flow, np.linspace(-60.0, 62.0, 801), np.linspace(-25.0, 21.0, 801))
    assert mass == pytest.approx(1.0, abs=3e-3)


def test_the_config_records_the_degrees_of_freedom_and_the_file_check_bounds_them():
    from skflow._persisted_flow import _check_flow_config

    flow = flow_with_mixture(degrees_of_freedom=6.0)
    assert flow.config["base"] == {"kind": "mixture", "n_components": 3, "degrees_of_freedom": 6.0}
    rebuilt = flow_from_config(flow.config).double()
    rebuilt.load_state_dict(flow.state_dict())
    assert isinstance(rebuilt.base, StudentTMixtureBase) and rebuilt.base.degrees_of_freedom == 6.0
    x = torch.randn(10, 2, dtype=torch.float64) * 5
    torch.testing.assert_close(rebuilt.log_prob(x), flow.log_prob(x), atol=0, rtol=0)
    state = flow.state_dict()
    _check_flow_config(flow.config, state)
    for nu in (2.0, -1.0, float("inf"), "6", 6, True, None):
        with pytest.raises(ValueError, match="has degrees_of_freedom=.*expected a float above 2"):
            _check_flow_config({**flow.config, "base": {**flow.config["base"], "degrees_of_freedom": nu}}, state)


def heavy_tailed_rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return stats.multivariate_t(np.zeros(3), [[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.0]], df=3).rvs(
        n, random_state=rng
    )


def test_the_start_takes_t_components_on_heavy_tails_and_keeps_gaussians_on_gaussian_clusters():
    rng = np.random.RandomState(0)
    heavy = heavy_tailed_rows(3000)
    assert choose_degrees_of_freedom(Candidate(2, "full", 1e-6), heavy, seed=0) is not None
    assert choose_degrees_of_freedom(Candidate(1, "full", 1e-6), heavy[:20], seed=0) is None  # too few rows
    clusters = np.concatenate([rng.normal(size=(1500, 3)), rng.normal(size=(1500, 3)) * 0.5 + 4.0])
    assert choose_degrees_of_freedom(Candidate(2, "full", 1e-6), clusters, seed=0) is None


@pytest.fixture(scope="module")
def heavy_tailed_fit():
    X = heavy_tailed_rows(1200, seed=1) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]
    est = FlowDensity(n_transforms=2, hidden_units=(16,), max_epochs=3, random_state=0).fit(X)
    return est, X


def test_flow_density_on_heavy_tails_starts_from_t_components_in_the_users_units(heavy_tailed_fit):
    est, X = heavy_tailed_fit
    nu = est.flow_.config["base"].get("degrees_of_freedom")
    assert nu is not None and isinstance(est.flow_.base, StudentTMixtureBase)
    assert np.isfinite(est.score_samples(X)).all()
    draws = est.sample(2000, random_state=0)
    # Heavy tails in the draws too: a share beyond 4 standard deviations a Gaussian would not give.
    standardized = (draws - X.mean(0)) / X.std(0)
    assert (np.abs(standardized) > 4).any(axis=1).mean() > 1e-3


def test_partial_fit_from_scratch_starts_from_t_components_too(heavy_tailed_fit):
    est, X = heavy_tailed_fit
    streamed = FlowDensity(n_transforms=2, hidden_units=(16,), random_state=0).partial_fit(X)
    assert streamed.flow_.config["base"].get("degrees_of_freedom") is not None
    assert np.isfinite(streamed.score_samples(X)).all()


def test_a_t_mixture_model_survives_save_load_and_pickle(heavy_tailed_fit):
    est, X = heavy_tailed_fit
    for restored in pickled_and_saved_copies(est):
        assert restored.flow_.config["base"] == est.flow_.config["base"]
        np.testing.assert_array_equal(restored.score_samples(X), est.score_samples(X))
        np.testing.assert_array_equal(restored.sample(5, random_state=1), est.sample(5, random_state=1))
