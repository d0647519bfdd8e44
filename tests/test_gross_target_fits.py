"""A target ruled by gross errors (standardized robustly): its ridge regression and boosted trees are robust too,
and every other target's are fitted exactly as before."""

import warnings

import numpy as np
import pytest

from skflow import FlowRegressor
from skflow._boosted_feature import fit_boosted_trees, predict_trees, trees_of
from skflow._linear_start import ridge_gaussian
from skflow._target_scale import robust_targets

from .conftest import ONE_FLOW_ALONE, SMALL_REGRESSOR

NOISE = 0.4


def linear_rows(n, seed, error=None):
    """``x_0`` plus noise of ``NOISE``, five features; the first target replaced by ``error`` if given."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = X[:, 0] + NOISE * rng.normal(size=n)
    if error is not None:
        y[0] = error
    return X, y


def test_robust_ridge_keeps_the_coefficients_and_the_noise_of_the_clean_rows():
    # -17: about what an error of -1e6 among such rows becomes once standardized robustly and through the asinh
    # tail (-14.5 for noise of 0.5).
    X, clean = linear_rows(100, 0)
    _, gross = linear_rows(100, 0, error=-17.0)
    weights = np.ones(100)
    clean_fit = ridge_gaussian(clean[:, None], X, weights)
    plain = ridge_gaussian(gross[:, None], X, weights)
    robust = ridge_gaussian(gross[:, None], X, weights, np.array([True]))
    # Least squares counts the error in full: the noise level more than 4 times the clean one's.
    assert np.exp(plain[2][0]) > 4 * np.exp(clean_fit[2][0])
    assert np.exp(robust[2][0]) == pytest.approx(np.exp(clean_fit[2][0]), rel=0.05)
    np.testing.assert_allclose(robust[0], clean_fit[0], atol=0.03)
    np.testing.assert_allclose(robust[1], clean_fit[1], atol=0.03)
    # On clean rows Huber's regression is nearly least squares.
    clean_robust = ridge_gaussian(clean[:, None], X, weights, np.array([True]))
    np.testing.assert_allclose(clean_robust[0], clean_fit[0], atol=0.03)
    assert np.exp(clean_robust[2][0]) == pytest.approx(np.exp(clean_fit[2][0]), rel=0.05)


def test_robust_ridge_with_weights_is_the_weighted_ridge_of_the_clean_rows():
    X, clean = linear_rows(100, 1)
    _, gross = linear_rows(100, 1, error=-17.0)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, 100)
    expected = ridge_gaussian(clean[:, None], X, weights)
    robust = ridge_gaussian(gross[:, None], X, weights, np.array([True]))
    np.testing.assert_allclose(robust[0], expected[0], atol=0.03)
    assert np.exp(robust[2][0]) == pytest.approx(np.exp(expected[2][0]), rel=0.05)
    # Only the weights' ratios count.
    tripled = ridge_gaussian(gross[:, None], X, 3 * weights, np.array([True]))
    for found, same in zip([*robust[:3], *robust[3]], [*tripled[:3], *tripled[3]], strict=True):
        np.testing.assert_allclose(found, same, rtol=1e-9, atol=1e-12)


def test_other_targets_get_exactly_the_ridge_of_before():
    X, y = linear_rows(80, 2, error=-17.0)
    rng = np.random.default_rng(3)
    Y = np.column_stack([X[:, 1] + rng.normal(size=80), y, X[:, 2] - X[:, 3] + 0.1 * rng.normal(size=80)])
    weights = rng.uniform(0.5, 2.0, 80)
    before = ridge_gaussian(Y, X, weights)
    for same in (ridge_gaussian(Y, X, weights, None), ridge_gaussian(Y, X, weights, np.zeros(3, dtype=bool))):
        for expected, found in zip([*before[:3], *before[3]], [*same[:3], *same[3]], strict=True):
            np.testing.assert_array_equal(found, expected)
    # A robust column is fitted apart; the others as if they were alone, bit for bit, and their fit's leverage
    # serves every target.
    mixed = ridge_gaussian(Y, X, weights, np.array([False, True, False]))
    alone = ridge_gaussian(Y[:, [0, 2]], X, weights)
    for expected, found in zip(alone[:3], mixed[:3], strict=True):
        np.testing.assert_array_equal(found[[0, 2]], expected)
    for expected, found in zip(alone[3], mixed[3], strict=True):
        np.testing.assert_array_equal(found, expected)
    robust = ridge_gaussian(Y[:, [1]], X, weights, np.array([True]))
    for expected, found in zip(robust[:3], mixed[:3], strict=True):
        np.testing.assert_allclose(found[[1]], expected, rtol=1e-12, atol=1e-14)


def test_a_ridge_model_on_rows_with_a_gross_error_has_the_noises_interval():
    """On 30 rows the ridge regression is the model. With one y = -1e6 its noise level, the root mean square of
    leave-one-out residuals, made the 90% intervals 13 times as wide as the noise's."""
    X, y = linear_rows(30, 4, error=-1e6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the untrained-ridge notice
        reg = FlowRegressor(**SMALL_REGRESSOR, **ONE_FLOW_ALONE).fit(X, y)
    assert reg.flow_.config["linear_shift"]
    X_new, y_new = linear_rows(500, 5)
    low, high = reg.predict_interval(X_new).T
    noise_width = 2 * 1.6449 * NOISE
    assert np.median(high - low) < 1.5 * noise_width
    assert 0.75 < np.mean((low <= y_new) & (y_new <= high))
    assert np.median(np.abs(reg.predict(X_new) - X_new[:, 0])) < NOISE


def test_robust_trees_out_of_fold_prediction_is_not_pulled_by_a_gross_error():
    X, y = linear_rows(100, 6, error=-1e6)
    weights = np.ones(100)
    clean = ~(np.arange(100) == 0)
    squared = fit_boosted_trees(X, y[:, None], weights, 0)[1][:, 0]
    trees, robust = fit_boosted_trees(X, y[:, None], weights, 0, np.array([True]))
    # The squared error's trees chase the error on the rows of its folds; the absolute error's do not.
    assert np.max(np.abs(squared[clean] - X[clean, 0])) > 1e3
    assert abs(robust[0, 0] - X[0, 0]) < 1.5  # the error's own row is predicted as if it were clean
    assert np.sqrt(np.mean((robust[clean, 0] - X[clean, 0]) ** 2)) < 0.6
    assert np.abs(predict_trees(trees, X)[clean, 0] - X[clean, 0]).max() < 2.0


def test_other_targets_get_exactly_the_trees_of_before():
    X, y = linear_rows(90, 7, error=-1e6)
    Y = np.column_stack([X[:, 1] ** 2, y])
    weights = np.random.default_rng(8).uniform(0.5, 2.0, 90)
    trees, out_of_fold = fit_boosted_trees(X, Y[:, [0]], weights, 3)
    for robust in (None, np.array([False])):
        same, same_out_of_fold = fit_boosted_trees(X, Y[:, [0]], weights, 3, robust)
        for expected, found in zip(trees, same, strict=True):
            np.testing.assert_array_equal(found, expected)
        np.testing.assert_array_equal(same_out_of_fold, out_of_fold)
    # Beside a robust target, the first target's trees come first and are the same.
    (nodes, roots, baseline), mixed_out_of_fold = fit_boosted_trees(X, Y, weights, 3, np.array([False, True]))
    np.testing.assert_array_equal(mixed_out_of_fold[:, 0], out_of_fold[:, 0])
    np.testing.assert_array_equal(nodes[: len(trees[0])], trees[0])
    np.testing.assert_array_equal(roots[roots[:, 1] == 0], trees[1])
    assert baseline[0] == trees[2][0]


def test_regressor_trees_follow_the_targets_robust_standardization():
    """The trees are fitted before any flow's preprocessing: ``robust_targets`` applies its rule (within the
    targets' bounds) to the same rows."""
    X, y = linear_rows(100, 9, error=-1e6)
    params = {**SMALL_REGRESSOR, "n_flows": 1, "max_epochs": 2, "flow": "spline", "relevance_scaling": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(boosted_feature=True, **params).fit(X, y)
    clean = np.arange(1, 100)
    assert np.sqrt(np.mean((predict_trees(trees_of(reg), X)[clean, 0] - X[clean, 0]) ** 2)) < 0.6
    weights = np.ones(100)
    assert robust_targets(reg, y[:, None], weights).tolist() == [True]
    assert reg._fit_preprocessing(y[:, None], weights).robust_scaled.tolist() == [True]
    # A positive target whose spread is ruled by its right tail on the raw scale, not on the log scale that
    # bounds=(0, None) models: not robust, as its preprocessing says.
    positive = np.exp(2.5 * np.random.default_rng(10).normal(size=(100, 1)))
    bounded = FlowRegressor(bounds=(0, None))
    assert robust_targets(bounded, positive, weights).tolist() == [False]
    assert bounded._fit_preprocessing(positive, weights).robust_scaled.tolist() == [False]
    assert robust_targets(FlowRegressor(bounds=None), positive, weights).tolist() == [True]
