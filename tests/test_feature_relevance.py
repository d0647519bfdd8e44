"""relevance_scaling: the features divided by the boosted trees' relevance in the regressor's context."""

import io
import pickle
import warnings

import numpy as np
import pytest
from scipy.integrate import trapezoid
from sklearn.ensemble import HistGradientBoostingRegressor

from skflow import FlowRegressor
from skflow._boosted_feature import fit_boosted_trees
from skflow._feature_relevance import MIN_RELEVANCE, RELEVANCE, gain_relevance, split_gains
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


def test_relevance_is_each_features_gain_share_over_the_largest_the_larger_over_targets_and_clipped():
    gains = np.array([[8.0, 4.0, 0.0, 0.1], [0.0, 0.0, 0.0, 0.0], [1.0, 2.0, 0.5, 0.0]])
    # Target 0: 1, 0.5, 0, 0.0125; target 1 (no splits) says nothing; target 2: 0.5, 1, 0.25, 0.
    np.testing.assert_allclose(gain_relevance(gains[[0, 2]]), [1.0, 1.0, 0.25, MIN_RELEVANCE])
    np.testing.assert_array_equal(gain_relevance(gains), np.ones(4))
    np.testing.assert_allclose(gain_relevance(gains[0]), [1.0, 0.5, MIN_RELEVANCE, MIN_RELEVANCE])


def test_split_gains_sum_the_gain_of_every_split_of_every_model_by_feature():
    X, y = one_feature_among_noise(300)
    models = [HistGradientBoostingRegressor(max_iter=20, random_state=seed).fit(X, y) for seed in (0, 1)]
    expected = np.zeros(X.shape[1])
    for model in models:
        for predictors in model._predictors:
            for node in predictors[0].nodes:
                if not node["is_leaf"]:
                    expected[node["feature_idx"]] += node["gain"]
    np.testing.assert_allclose(split_gains([models], X.shape[1])[0], expected)
    assert expected.argmax() == 0


def test_the_trees_find_the_informative_feature_most_relevant():
    X, y = one_feature_among_noise(400)
    _, _, relevance = fit_boosted_trees(X, y[:, None], np.ones(len(y)), seed=0)
    assert relevance[0] == 1.0 and relevance[1:].max() < 0.3 and relevance.min() >= MIN_RELEVANCE


@pytest.fixture(scope="module")
def scaled():
    X, y = one_feature_among_noise(300)
    return X, y, quiet_fit(X, y, relevance_scaling=True, boosted_feature=True, n_flows=2)


def test_scaling_divides_the_features_scale_by_their_relevance_and_leaves_the_trees_column(scaled):
    X, y, model = scaled
    _, standard = context_scaling(X, np.ones(len(y)))
    _, _, relevance = fit_boosted_trees(X, y[:, None], np.ones(len(y)), seed=0)
    for member in model._members():
        assert member.boosted_feature_ and member.x_scale_.shape == (6,)
        ratio = standard / member.x_scale_[:5]
        np.testing.assert_allclose(ratio.max(), 1.0)  # the most relevant feature keeps its scale
        assert ratio.min() >= MIN_RELEVANCE - 1e-12 and ratio[0] > ratio[1:].max()
        assert not hasattr(member, RELEVANCE)  # needed by the fit alone
    assert np.unique(np.round([m.x_scale_[:5] for m in model._members()], 12), axis=0).shape[0] == 1
    assert relevance[0] == 1.0


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
        assert (scaled_state["x_scale_"][:5] > standard).any()
        scores = [kept_validation_score(state) for state in pair]
        kept = pair[int(scores[1] > scores[0])]  # ties: as given
        np.testing.assert_array_equal(member.x_scale_, kept["x_scale_"])


def test_auto_without_trees_trains_as_given_and_true_without_trees_is_refused():
    X, y = one_feature_among_noise(120)
    plain = quiet_fit(X, y, boosted_feature=False, n_flows=1)
    auto = quiet_fit(X, y, boosted_feature=False, n_flows=1, relevance_scaling="auto")
    np.testing.assert_array_equal(auto.score_samples(X, y), plain.score_samples(X, y))
    model = FlowRegressor(boosted_feature=False, relevance_scaling=True, **FAST)
    with pytest.raises(ValueError, match="relevance_scaling=True .* no trees were fitted"):
        model.fit(X, y)
    assert not hasattr(model, "flow_")


def test_relevance_scaling_is_validated():
    X, y = one_feature_among_noise(60)
    with pytest.raises(ValueError, match="relevance_scaling"):
        FlowRegressor(relevance_scaling="yes").fit(X, y)
