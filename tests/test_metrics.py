"""skflow.metrics: clear errors on misuse, and the log-likelihood scorer on unconditional densities."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import FlowOutlierDetector, FlowRegressor
from skflow.metrics import crps, interval_coverage, log_likelihood_scorer

from .conftest import fast_flow

TINY = dict(max_epochs=2, n_transforms=1, hidden_units=(8,), n_bins=4, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 2))
    return X, X[:, 0] + 0.5 * rng.normal(size=120)


@pytest.fixture(scope="module")
def regressor(data):
    X, y = data
    return FlowRegressor(**TINY).fit(X, y)


@pytest.fixture(scope="module")
def density(data):
    return fast_flow(**TINY).fit(data[0])


@pytest.mark.parametrize("n_weights", [3, 121])
def test_wrong_length_sample_weight_names_both_lengths(regressor, density, data, n_weights):
    X, y = data
    for estimator, targets in ((regressor, y), (density, None)):
        with pytest.raises(ValueError, match=rf"sample_weight.*shape \({n_weights},\).*120 rows"):
            log_likelihood_scorer(estimator, X, targets, sample_weight=np.ones(n_weights))
    with pytest.raises(ValueError, match="sample_weight"):
        log_likelihood_scorer(regressor, X, y, sample_weight=np.ones((120, 2)))


def test_sample_weight_is_a_weighted_mean_and_zero_weights_drop_rows(regressor, data):
    X, y = data
    scores = regressor.score_samples(X, y)
    weights = np.r_[np.zeros(20), np.ones(50), np.full(50, 3.0)]
    expected = np.average(scores, weights=weights)
    assert log_likelihood_scorer(regressor, X, y, sample_weight=weights) == pytest.approx(expected)
    y_outside = y.copy()
    y_outside[0] = np.inf  # scores -inf, but its weight is zero
    assert log_likelihood_scorer(regressor, X, y_outside, sample_weight=weights) == pytest.approx(expected)
    assert log_likelihood_scorer(regressor, X, y_outside) == -np.inf
    for bad in (np.r_[-1.0, np.ones(119)], np.zeros(120)):
        with pytest.raises(ValueError, match="non-negative with a positive sum"):
            log_likelihood_scorer(regressor, X, y, sample_weight=bad)


def test_unconditional_densities_are_scored_by_their_mean_log_density(density, data):
    X, y = data
    expected = density.score(X)
    assert log_likelihood_scorer(density, X, None) == pytest.approx(expected)
    assert log_likelihood_scorer(density, X) == pytest.approx(expected)
    assert log_likelihood_scorer(density, X, y) == pytest.approx(expected)  # y ignored, as by score(X, y)
    weights = np.arange(120.0)
    weighted = log_likelihood_scorer(density, X, None, sample_weight=weights)
    assert weighted == pytest.approx(np.average(density.score_samples(X), weights=weights))
    pipeline = make_pipeline(StandardScaler(), fast_flow(**TINY)).fit(X * 100.0)
    expected = pipeline[-1].score(pipeline[0].transform(X * 100.0))
    assert log_likelihood_scorer(pipeline, X * 100.0, None) == pytest.approx(expected)
    mixture = GaussianMixture(random_state=0).fit(X)  # any score_samples(X) density
    assert log_likelihood_scorer(mixture, X, None) == pytest.approx(mixture.score(X))


def test_grid_search_of_a_density_and_a_detector_with_the_scorer(data):
    X, _ = data
    for estimator, grid in (
        (fast_flow(**TINY), {"n_bins": [4, 6]}),
        (FlowOutlierDetector(density=fast_flow(**TINY)), {"density__n_bins": [4, 6]}),
    ):
        search = GridSearchCV(estimator, grid, scoring=log_likelihood_scorer, cv=2, error_score="raise").fit(X)
        assert np.isfinite(search.cv_results_["mean_test_score"]).all()
        assert log_likelihood_scorer(search.best_estimator_, X, None) == pytest.approx(search.best_estimator_.score(X))


def test_misuse_raises_clear_errors(regressor, data):
    X, y = data
    with pytest.raises(ValueError, match=r"conditional model FlowRegressor.*needs the targets y"):
        log_likelihood_scorer(regressor, X, None)
    with pytest.raises(TypeError, match="LinearRegression has none"):
        log_likelihood_scorer(LinearRegression().fit(X, y), X, y)


def test_crps_and_coverage_name_the_mismatched_argument():
    with pytest.raises(ValueError, match=r"y_samples must have one row per entry of y_true: got 1 rows for 2"):
        crps([0.0, 1.0], [[0.0, 1.0]])
    with pytest.raises(ValueError, match=r"intervals must have one row per entry of y_true: got 3 rows for 2"):
        interval_coverage([0.0, 1.0], [[0.0, 1.0]] * 3)
    assert crps([0.0, 1.0], [[0.0], [1.0]]) == 0.0
    assert interval_coverage([0.0, 1.0], [[0.0, 1.0]] * 2) == 1.0


def test_crps_takes_one_target_kept_as_a_column():
    """A model fitted on y of shape (n, 1) samples (n, m, 1): crps scores it as the 1-D case."""
    rng = np.random.default_rng(0)
    y, draws = rng.normal(size=20), rng.normal(size=(20, 50))
    assert crps(y[:, None], draws[:, :, None]) == crps(y, draws)
    with pytest.raises(ValueError, match="n_draws"):
        crps(y, rng.normal(size=(20, 50, 2)))
