"""Sample weights: every fitted statistic is weighted, and rows of weight zero shape nothing."""

import numpy as np
import pytest

from skflow import FlowDensity

FAST = dict(n_transforms=2, hidden_units=(16,), max_epochs=8, batch_size=64, random_state=0)


def assert_same_model(a, b):
    for name in ("location_", "scale_", "dequantized_", "asinh_columns_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    probe = np.random.RandomState(9).normal(size=(50, a.n_features_in_))
    np.testing.assert_array_equal(a.score_samples(probe), b.score_samples(probe))


def test_a_far_row_of_weight_zero_changes_nothing():
    """One far row of weight 0 used to move the held-out score of a 2-D Gaussian fit from -2.83 to -12.8."""
    X = np.random.RandomState(0).normal(size=(300, 2))
    with_far_row = np.vstack([X, [[1e6, -1e6]]])
    weights = np.r_[np.ones(len(X)), 0.0]
    assert_same_model(FlowDensity(**FAST).fit(X), FlowDensity(**FAST).fit(with_far_row, sample_weight=weights))


def test_a_non_integer_row_of_weight_zero_keeps_integer_data_dequantized():
    X = np.random.RandomState(1).poisson(4.0, size=(300, 2)).astype(float)
    with_fraction = np.vstack([X, [[0.5, 0.5]]])
    est = FlowDensity(**FAST).fit(with_fraction, sample_weight=np.r_[np.ones(len(X)), 0.0])
    assert est.dequantized_.all()
    assert_same_model(FlowDensity(**FAST).fit(X), est)


def test_weighted_statistics_equal_those_of_repeated_rows():
    rng = np.random.RandomState(2)
    X = np.column_stack([rng.normal(size=200), rng.exponential(size=200) * 50])
    counts = rng.randint(0, 4, size=200)
    repeated = np.repeat(X, counts, axis=0)
    weighted = FlowDensity(**FAST).fit(X, sample_weight=counts)
    plain = FlowDensity(**FAST).fit(repeated)
    np.testing.assert_allclose(weighted.location_, plain.location_, rtol=1e-12)
    np.testing.assert_allclose(weighted.scale_, plain.scale_, rtol=1e-12)
    np.testing.assert_array_equal(weighted.asinh_columns_, plain.asinh_columns_)


def test_constant_detection_ignores_rows_of_weight_zero():
    X = np.column_stack([np.random.RandomState(3).normal(size=100), np.full(100, 2.0)])
    X[0, 1] = 7.0
    weights = np.ones(100)
    weights[0] = 0.0
    with pytest.warns(UserWarning, match=r"feature\(s\) \[1\] are constant"):
        est = FlowDensity(**{**FAST, "dequantize": False}).fit(X, sample_weight=weights)
    assert est.location_[1] == 2.0


def test_rows_outside_bounds_with_weight_zero_are_ignored():
    X = np.random.RandomState(4).uniform(0.1, 0.9, size=(100, 1))
    X[0] = -5.0
    weights = np.r_[0.0, np.ones(99)]
    est = FlowDensity(bounds=(0.0, 1.0), **FAST).fit(X, sample_weight=weights)
    assert np.isfinite(est.score_samples(X[1:])).all()


def test_fewer_than_two_rows_of_positive_weight_is_a_clear_error():
    X = np.random.RandomState(5).normal(size=(10, 2))
    with pytest.raises(ValueError, match="at least 2 rows with positive sample_weight, got 1"):
        FlowDensity(**FAST).fit(X, sample_weight=np.r_[1.0, np.zeros(9)])
