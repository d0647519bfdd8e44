"""relevance_scaling: features that shadow features show to be noise, scaled down in the regressor's context."""

import io
import pickle
import warnings

import numpy as np
import pytest
from scipy.integrate import trapezoid

from skflow import FlowRegressor
from skflow._feature_relevance import NOISE_RELEVANCE, RELEVANCE, feature_relevance, noise_features
from skflow._flow_choice import kept_validation_score
from skflow._regression_data import context_scaling

from .conftest import SMALL_REGRESSOR, fit_recording_trainings

FAST = {**SMALL_REGRESSOR, "max_epochs": 8, "flow": "spline"}


def one_feature_among_noise(n, seed=0, n_features=5):
    """A target of the first feature alone, the others noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    return X, np.sin(2 * X[:, 0]) + 0.2 * rng.normal(size=n)


def quiet_fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FlowRegressor(**{**FAST, **params}).fit(X, y)


def test_shadow_features_find_the_noise_and_keep_weak_but_real_features():
    X, y = one_feature_among_noise(400)
    np.testing.assert_array_equal(noise_features(X, y[:, None], np.ones(400), seed=0), [0, 1, 1, 1, 1])
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 4))
    # Every feature matters, the last with a fiftieth of the first's variance in y: no noise.
    y = 3 * X[:, 0] + X[:, 1] + np.sin(2 * X[:, 2]) + 0.4 * X[:, 3] + 0.1 * rng.normal(size=400)
    assert not noise_features(X, y[:, None], np.ones(400), seed=0).any()


def test_a_feature_is_noise_only_when_it_is_noise_for_every_target_and_constant_ones_never_are():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(size=(300, 3)), np.full(300, 4.0)])
    Y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] ** 2]) + 0.1 * rng.normal(size=(300, 2))
    np.testing.assert_array_equal(noise_features(X, Y, np.ones(300), seed=0), [0, 0, 1, 0])
    np.testing.assert_array_equal(noise_features(X, Y[:, :1], np.ones(300), seed=0), [0, 1, 1, 0])
    # A constant target: its trees never split, so it says nothing.
    assert not noise_features(X, np.ones((300, 1)), np.ones(300), seed=0).any()
    relevance = feature_relevance(X, Y, np.ones(300), seed=0)
    np.testing.assert_array_equal(relevance, [1.0, 1.0, NOISE_RELEVANCE, 1.0])


@pytest.fixture(scope="module")
def scaled():
    X, y = one_feature_among_noise(300)
    return X, y, quiet_fit(X, y, relevance_scaling=True, boosted_feature=True, n_flows=2)


def test_scaling_divides_the_noise_features_scale_and_leaves_the_others_and_the_trees_column(scaled):
    X, y, model = scaled
    _, standard = context_scaling(X, np.ones(len(y)))
    for member in model._members():
        assert member.boosted_feature_ and member.x_scale_.shape == (6,)
        relevance = standard / member.x_scale_[:5]
        # The informative feature keeps its scale; a noise feature may beat the best shadow by chance (1 of 4).
        assert relevance[0] == pytest.approx(1.0) and np.isclose(relevance[1:], NOISE_RELEVANCE).sum() >= 3
        assert np.isclose(relevance, 1.0).sum() + np.isclose(relevance, NOISE_RELEVANCE).sum() == 5
        assert not hasattr(member, RELEVANCE)  # needed by the fit alone
    assert not hasattr(model, RELEVANCE)


def test_a_scaled_models_density_integrates_to_one_and_survives_save_load_and_pickle(scaled):
    X, y, model = scaled
    for x in (X[0], X[1]):
        grid = np.linspace(-4.0, 4.0, 4001)
        density = np.exp(model.score_samples(np.tile(x, (grid.size, 1)), grid))
        assert trapezoid(density, grid) == pytest.approx(1.0, abs=2e-3)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    for copy in (FlowRegressor.load(buffer), pickle.loads(pickle.dumps(model))):
        assert copy.relevance_scaling is True
        np.testing.assert_array_equal(copy.score_samples(X[:50], y[:50]), model.score_samples(X[:50], y[:50]))


def test_auto_keeps_for_each_flow_the_better_validating_of_its_trainings_as_given_and_scaled(monkeypatch):
    X, y = one_feature_among_noise(300, seed=1)
    params = dict(n_flows=2, boosted_feature=True, relevance_scaling="auto", **FAST)
    auto, states = fit_recording_trainings(monkeypatch, X, y, **params)
    assert len(states) == 4  # per flow: as given, then scaled (with the trees)
    _, standard = context_scaling(X, np.ones(len(y)))
    for member, pair in zip(auto._members(), (states[0:2], states[2:4]), strict=True):
        as_given, scaled_state = pair
        np.testing.assert_allclose(as_given["x_scale_"][:5], standard)
        assert np.isclose(scaled_state["x_scale_"][1:5], standard[1:] / NOISE_RELEVANCE).sum() >= 3
        scores = [kept_validation_score(state) for state in pair]
        kept = pair[int(scores[1] > scores[0])]  # ties: as given
        np.testing.assert_array_equal(member.x_scale_, kept["x_scale_"])


def test_auto_trains_once_where_no_feature_is_noise_or_too_few_rows_validate(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.3 * rng.normal(size=300)
    params = dict(n_flows=1, boosted_feature=False, **FAST)
    auto, states = fit_recording_trainings(monkeypatch, X, y, relevance_scaling="auto", **params)
    assert len(states) == 1
    plain = quiet_fit(X, y, **params)
    np.testing.assert_array_equal(auto.score_samples(X, y), plain.score_samples(X, y))
    X, y = one_feature_among_noise(30)  # under 40 rows: no choice, no scaling
    auto, states = fit_recording_trainings(monkeypatch, X, y, n_flows=1, relevance_scaling="auto", **FAST)
    assert len(states) == 1
    np.testing.assert_array_equal(auto.score_samples(X, y), quiet_fit(X, y, n_flows=1).score_samples(X, y))


def test_true_scales_without_the_trees_and_the_setting_is_validated():
    X, y = one_feature_among_noise(120)
    model = quiet_fit(X, y, boosted_feature=False, n_flows=1, relevance_scaling=True)
    _, standard = context_scaling(X, np.ones(len(y)))
    assert model.x_scale_.shape == (5,) and model.x_scale_[0] == pytest.approx(standard[0])
    assert (model.x_scale_[1:] > standard[1:]).any()
    with pytest.raises(ValueError, match="relevance_scaling"):
        FlowRegressor(relevance_scaling="yes").fit(X, y)


def test_an_ensemble_whose_flows_kept_different_scalings_saves_loads_and_scores_the_same():
    # Each flow keeps its own training: some the noise features scaled down, others as given, some with the
    # trees' prediction (its context's means then sum over one more column, which may round differently).
    X, y = one_feature_among_noise(300, seed=0)
    model = quiet_fit(X, y, n_flows=3, random_state=0)
    assert len({tuple(member.x_scale_[:5]) for member in model._members()}) > 1
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(FlowRegressor.load(buffer).score_samples(X, y), model.score_samples(X, y))
