"""The Gaussian-mixture CDF coupling: exact density of a known mixture, exact quantiles, far tails, the estimator."""

import copy
import warnings

import numpy as np
import pytest
import torch
from scipy import optimize, stats
from scipy.special import logsumexp

from skflow import FlowDensity, FlowRegressor
from skflow import _flow_choice as choice
from skflow._core import mixture_cdf
from skflow._core.base import standard_normal_log_prob
from skflow._core.mixture_cdf import MixtureCDFCoupling

from .conftest import ONE_FLOW_ALONE, SMALL_REGRESSOR, fit_recording_trainings, pickled_and_saved_copies

ONE = torch.ones(1, dtype=torch.bool)
WEIGHTS = np.array([0.2, 0.5, 0.3])
MEANS = np.array([-3.0, 0.5, 4.0])
SCALES = np.array([0.4, 1.0, 2.0])


def known_mixture_layer() -> MixtureCDFCoupling:
    """One feature, no context: the conditioner is a constant, set to the mixture above."""
    layer = MixtureCDFCoupling(ONE, (8,), n_components=3).double()
    with torch.no_grad():
        layer.conditioner.value.copy_(torch.from_numpy(np.concatenate([np.log(WEIGHTS), MEANS, np.log(SCALES)])))
    return layer


def mixture_log_pdf(x: np.ndarray) -> np.ndarray:
    return logsumexp(np.log(WEIGHTS) + stats.norm.logpdf(x[:, None], MEANS, SCALES), axis=1)


def mixture_quantile(z: float) -> float:
    """The x with F(x) = Phi(z), compared in the tail that z is in (no cancellation near 1)."""
    if z < 0:
        gap = lambda x: WEIGHTS @ stats.norm.cdf((x - MEANS) / SCALES) - stats.norm.cdf(z)  # noqa: E731
    else:
        gap = lambda x: stats.norm.sf(z) - WEIGHTS @ stats.norm.sf((x - MEANS) / SCALES)  # noqa: E731
    return optimize.brentq(gap, -60.0, 60.0, xtol=1e-14, rtol=1e-15)


def test_one_layer_on_a_normal_latent_is_the_mixture_density_far_into_both_tails():
    layer = known_mixture_layer()
    x = np.array([-40.0, -12.0, -3.0, 0.0, 0.5, 2.2, 9.0, 30.0])
    with torch.no_grad():
        z, log_det = layer(torch.from_numpy(x[:, None]))
    log_density = (standard_normal_log_prob(z) + log_det).numpy()
    np.testing.assert_allclose(log_density, mixture_log_pdf(x), rtol=1e-10, atol=1e-10)
    # Beyond ~37 sd F underflows float64's exp; z comes from log F and stays exact there.
    assert np.isfinite(z.numpy()).all() and np.all(np.diff(z.numpy()[:, 0]) > 0)


def test_the_inverse_of_a_normal_quantile_is_the_mixture_quantile():
    layer = known_mixture_layer()
    z = np.array([-7.0, -2.3, -0.8, 0.0, 0.74, 2.3, 6.0])
    with torch.no_grad():
        x, _ = layer.inverse(torch.from_numpy(z[:, None]))
    expected = [mixture_quantile(value) for value in z]
    np.testing.assert_allclose(x.numpy()[:, 0], expected, rtol=1e-10, atol=1e-10)


def test_the_solvers_probability_space_evaluation_is_the_log_space_one_in_the_tails_too():
    """The inverse's solver evaluates z(x) and log dz/dx from probabilities, falling back to the logs where
    they underflow: both ways agree from the centre to 80 sd, and the far entries do take the fallback."""
    generator = torch.Generator().manual_seed(0)
    log_weights = torch.log_softmax(torch.randn(1, 4, 2000, generator=generator, dtype=torch.float64), dim=-2)
    log_scales = 0.5 * torch.randn(1, 4, 2000, generator=generator, dtype=torch.float64)
    means = 2 * torch.randn(1, 4, 2000, generator=generator, dtype=torch.float64)
    x = torch.linspace(-120.0, 120.0, 2000, dtype=torch.float64)[None]
    u = mixture_cdf._standardized(x, means, log_scales)
    z, log_slope = mixture_cdf._solver_evaluation(u, log_weights.exp(), torch.exp(-log_scales), log_weights, log_scales)
    expected_z = mixture_cdf._normal_quantile_of_cdf(u, log_weights)
    np.testing.assert_allclose(z.numpy(), expected_z.numpy(), rtol=1e-12, atol=1e-12)
    expected_slope = mixture_cdf._log_derivative(u, expected_z, log_weights, log_scales)
    np.testing.assert_allclose(log_slope.numpy(), expected_slope.numpy(), rtol=1e-10, atol=1e-10)
    assert 100 < int((expected_z.abs() > 37.5).sum()) < 1900  # both paths are exercised


def test_the_inverse_recovers_points_beyond_where_the_tails_underflow():
    layer = known_mixture_layer()
    x = np.array([-80.0, -60.0, -40.0, -12.0, 0.0, 9.0, 30.0, 60.0, 80.0])
    with torch.no_grad():
        z, _ = layer(torch.from_numpy(x[:, None]))
        recovered, _ = layer.inverse(z)
    assert z.abs().max() > 38  # F or 1 - F below float64's smallest normal number
    np.testing.assert_allclose(recovered.numpy()[:, 0], x, rtol=1e-12, atol=1e-12)


def test_the_inverse_is_exact_between_far_apart_narrow_modes_in_a_few_evaluations(monkeypatch):
    """Between two narrow modes the density is nearly zero and x barely moves z: Newton's steps overshoot
    there, and the bisection that replaces them must still find the root."""
    layer = MixtureCDFCoupling(ONE, (8,), n_components=2).double()
    with torch.no_grad():
        layer.conditioner.value.copy_(torch.tensor([np.log(0.5), np.log(0.5), -5.0, 5.0, np.log(0.05), np.log(0.05)]))
    z = torch.linspace(-9.0, 9.0, 2001, dtype=torch.float64)[:, None]
    evaluations, original = [], mixture_cdf._solver_evaluation
    monkeypatch.setattr(mixture_cdf, "_solver_evaluation", lambda *a: evaluations.append(1) or original(*a))
    with torch.no_grad():
        x, _ = layer.inverse(z)
    assert len(evaluations) <= 16  # bisection alone: 64
    monkeypatch.undo()
    with torch.no_grad():
        z_again, _ = layer(x)
    np.testing.assert_allclose(z_again.numpy(), z.numpy(), rtol=0, atol=1e-12)

    def gap(value, level):
        return 0.5 * stats.norm.cdf((value + 5) / 0.05) + 0.5 * stats.norm.cdf((value - 5) / 0.05) - level

    # Near z = 0 the start (x = 0) is in the gap, where F is 1/2 to double precision: every x there is a root.
    for row in (900, 995, 1005, 1100):
        expected = optimize.brentq(gap, -6.0, 6.0, args=(stats.norm.cdf(z[row, 0].item()),), xtol=1e-14)
        assert x[row, 0].item() == pytest.approx(expected, abs=1e-9)


def test_the_starting_layer_is_a_unit_variance_mixture_with_separated_components():
    layer = MixtureCDFCoupling(ONE, (8,), context_features=2)
    with torch.no_grad():
        params = layer.conditioner(torch.zeros(1, 2)).view(3, -1)
    log_weights, means, log_scales = params
    assert torch.allclose(log_weights, log_weights[0]) and len(set(means.tolist())) == layer.n_components
    variance = (means.square() + (2 * log_scales).exp()).mean()
    assert variance.item() == pytest.approx(1.0)


def bimodal_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return X, sign * (1.5 + 0.5 * X[:, 0]) + 0.3 * rng.normal(size=n)


@pytest.fixture(scope="module")
def fitted():
    X, y = bimodal_rows(600, 0)
    settings = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE, "flow": "mixture_cdf", "n_transforms": 1, "max_epochs": 20}
    return FlowRegressor(**settings).fit(X, y)


def test_the_regressors_quantiles_are_those_of_its_density(fitted):
    X, _ = bimodal_rows(3, 1)
    levels = np.array([0.05, 0.3, 0.5, 0.9])
    quantiles = fitted.predict_quantiles(X, levels)
    grid = np.linspace(-12.0, 12.0, 24_001)
    for row, row_quantiles in zip(X, quantiles):
        density = np.exp(fitted.score_samples(np.repeat(row[None], grid.size, axis=0), grid))
        cdf = np.concatenate([[0.0], np.cumsum((density[1:] + density[:-1]) / 2 * np.diff(grid))])
        assert cdf[-1] == pytest.approx(1.0, abs=1e-4)
        np.testing.assert_allclose(np.interp(row_quantiles, grid, cdf), levels, atol=1e-4)


def test_a_fitted_mixture_layer_finds_both_modes_and_survives_a_round_trip(fitted):
    X, y = bimodal_rows(400, 2)
    # Both modes of each row: the central 50% interval of a bimodal row spans the gap between them.
    low, high = fitted.predict_interval(X, coverage=0.5).T
    centre = 1.5 + 0.5 * X[:, 0]
    assert np.mean((low < -centre + 0.3) & (high > centre - 0.3)) > 0.9
    for duplicate in pickled_and_saved_copies(fitted):
        np.testing.assert_array_equal(duplicate.score_samples(X, y), fitted.score_samples(X, y))
        levels = [0.1, 0.9]
        np.testing.assert_array_equal(duplicate.predict_quantiles(X, levels), fitted.predict_quantiles(X, levels))


def test_flow_density_does_not_take_the_mixture_cdf_layer():
    with pytest.raises(ValueError, match="flow"):
        FlowDensity(flow="mixture_cdf").fit(np.random.default_rng(0).normal(size=(50, 2)))


def test_two_targets_couple_through_mixtures_and_their_density_integrates_to_one():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 1))
    y1 = X[:, 0] + np.where(rng.random(400) < 0.5, -1.0, 1.0) + 0.3 * rng.normal(size=400)
    Y = np.column_stack([y1, 0.5 * y1**2 + 0.3 * rng.normal(size=400)])
    settings = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE, "flow": "mixture_cdf", "max_epochs": 10}
    reg = FlowRegressor(**settings).fit(X, Y)
    axis_0, axis_1 = np.linspace(-9, 9, 361), np.linspace(-9, 13, 441)
    grid = np.stack(np.meshgrid(axis_0, axis_1, indexing="ij"), -1).reshape(-1, 2)
    density = np.exp(reg.score_samples(np.full((len(grid), 1), 0.3), grid)).reshape(len(axis_0), len(axis_1))
    assert np.trapezoid(np.trapezoid(density, axis_1, axis=1), axis_0) == pytest.approx(1.0, abs=2e-3)
    assert reg.sample(X[:4], n_samples=3, random_state=0).shape == (4, 3, 2)


def test_each_flow_keeps_the_layer_kind_that_validates_best_and_equals_its_forced_fit(monkeypatch):
    X, y = bimodal_rows(400, 3)
    settings = {**SMALL_REGRESSOR, "boosted_feature": False, "relevance_scaling": False, "max_epochs": 8}
    chooser, states = fit_recording_trainings(monkeypatch, X, y, flow=("spline", "mixture_cdf"), n_flows=2, **settings)
    assert [state["flow_kind_"] for state in states] == ["spline", "mixture_cdf"] * 2
    members = [chooser, *chooser.ensemble_]
    for member, pair in zip(members, (states[:2], states[2:])):
        scores = [choice.kept_validation_score(state) for state in pair]
        assert member.flow_kind_ == ("spline", "mixture_cdf")[int(scores[1] > scores[0])]
    # The first flow is the fit of its kind alone: same seed, same validation rows, same weights.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forced = FlowRegressor(flow=chooser.flow_kind_, n_flows=1, **settings).fit(X, y)
    alone = copy.copy(chooser)
    alone.n_flows, alone.ensemble_ = 1, []
    np.testing.assert_array_equal(alone.score_samples(X, y), forced.score_samples(X, y))
    for duplicate in pickled_and_saved_copies(chooser):
        assert duplicate.flow == ("spline", "mixture_cdf")
        np.testing.assert_array_equal(duplicate.score_samples(X, y), chooser.score_samples(X, y))


@pytest.mark.parametrize("flow", [(), ("spline", "spline"), ("spline", "auto"), ["splines"]])
def test_a_bad_sequence_of_layer_kinds_is_refused_before_training(flow):
    X, y = bimodal_rows(100, 4)
    with pytest.raises(ValueError, match="distinct layer kinds"):
        FlowRegressor(flow=flow).fit(X, y)


@pytest.mark.parametrize(
    "n_rows, n_targets, params, kinds",
    [
        (39, 1, {}, [None]),  # 3 validation rows: nothing to choose on
        (40, 1, {}, ["spline", "mixture_cdf"]),  # base="linear" holds out 10
        (99, 1, {"base": "normal"}, [None]),  # holds out 9
        (100, 1, {"base": "normal"}, ["spline", "mixture_cdf"]),
        (5000, 2, {}, ["spline", "mixture_cdf"]),
        (5001, 1, {}, [None]),  # a fit of minutes already: the splines alone
        (5000, 3, {}, [None]),  # "auto" means autoregressive splines there
        (2000, 1, {"flow": "spline"}, [None]),
        (2000, 1, {"flow": ["mixture_cdf", "affine"]}, ["mixture_cdf", "affine"]),
    ],
)
def test_auto_lets_each_flow_choose_its_layers_on_40_to_5000_rows_that_validate(n_rows, n_targets, params, kinds):
    estimator = FlowRegressor(**params)
    estimator.n_targets_ = n_targets
    assert choice.layer_choices(estimator, n_rows) == kinds


def test_the_default_flow_is_the_choice_between_splines_and_mixture_layers():
    X, y = bimodal_rows(300, 5)
    settings = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE, "max_epochs": 6}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default = FlowRegressor(**settings).fit(X, y)
        chosen = FlowRegressor(flow=("spline", "mixture_cdf"), **settings).fit(X, y)
    assert default.flow_kind_ == chosen.flow_kind_ == "mixture_cdf"  # two modes: the splines validate lower
    np.testing.assert_array_equal(default.score_samples(X, y), chosen.score_samples(X, y))
