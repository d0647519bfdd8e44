"""Heavy-tailed positive features enter a regressor's context as their log (``x_log_shift_``)."""

import io
import pickle
import warnings

import numpy as np
import pytest

from skflow import FlowRegressor
from skflow._regression_data import SKEWED_FEATURE, log_feature_shifts
from skflow._skewness import skewness

from .conftest import SMALL_REGRESSOR

SETTINGS = {**SMALL_REGRESSOR, "n_flows": 2, "max_epochs": 4}


def rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A log-normal feature (skewness about 30), a uniform one and a normal one of both signs."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.exp(rng.normal(0.0, 1.5, n)), rng.uniform(1.0, 2.0, n), rng.normal(size=n)])
    return X, 0.6 * np.log(X[:, 0]) + 0.3 * X[:, 1] + 0.3 * rng.normal(size=n)


def fitted(X, y, **params) -> FlowRegressor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FlowRegressor(**{**SETTINGS, **params}).fit(X, y)


@pytest.fixture(scope="module")
def data():
    return rows(300, 0)


@pytest.fixture(scope="module")
def reg(data):
    return fitted(*data)


def test_the_rule_logs_a_log_normal_feature_and_nothing_else():
    X, _ = rows(400, 1)
    shifts = log_feature_shifts(X, np.ones(400))
    assert np.isnan(shifts[1:]).all()
    logged = np.log(X[:, 0] + shifts[0])
    assert abs(skewness(logged, np.ones(400))) < 0.1 < SKEWED_FEATURE < skewness(X[:, 0], np.ones(400))
    rng = np.random.default_rng(2)
    exponential = rng.exponential(size=(20000, 1))  # skewness 2: not above SKEWED_FEATURE
    assert np.isnan(log_feature_shifts(exponential, np.ones(20000))).all()
    # One outlier makes any column's skewness about sqrt(n), on the log scale too: that is no heavy tail.
    outlier = rng.uniform(1.0, 2.0, (400, 1))
    outlier[0] = 1e6
    assert np.isnan(log_feature_shifts(outlier, np.ones(400))).all()
    rare = (rng.uniform(size=(400, 1)) < 0.05).astype(float)  # skewness about 4, two values on any scale
    assert np.isnan(log_feature_shifts(rare, np.ones(400))).all()
    # Amounts with many zeros: the log would part the zeros from the rest by a gap wider than the rest.
    zeros = np.where(rng.uniform(size=(400, 1)) < 0.3, 0.0, np.exp(rng.normal(0.0, 1.5, (400, 1))))
    assert np.isnan(log_feature_shifts(zeros, np.ones(400))).all()
    assert not np.isnan(log_feature_shifts(zeros[zeros > 0][:, None], np.ones(int((zeros > 0).sum())))).any()
    # A bulk barely skewed under a tail of a few outliers (Kelly's skewness about 0.1): no scale of the bulk.
    tail = rng.normal(size=(1000, 1))
    tail[:10] = 30 + 10 * rng.uniform(size=(10, 1))
    assert skewness(tail[:, 0], np.ones(1000)) > SKEWED_FEATURE
    assert np.isnan(log_feature_shifts(tail, np.ones(1000))).all()


@pytest.mark.parametrize(("factor", "offset"), [(1.79e308, 0.0), (1.0, 1e12), (1e-300, 0.0)])
def test_the_rule_far_from_one_keeps_a_finite_log(factor, offset):
    """Means and powers of values near 1e308 overflow, and far from 0 ``x + c`` can round to 0: the shift is
    chosen in units of the column's largest magnitude, and only where its log is finite on every row."""
    X, _ = rows(400, 6)
    scaled = X[:, :1] / X[:, 0].max() * factor + offset
    shift = log_feature_shifts(scaled, np.ones(400))
    assert np.isfinite(shift).all()
    logged = np.log(scaled[:, 0] + shift[0])
    assert np.isfinite(logged).all() and abs(skewness(logged, np.ones(400))) < 0.2


def test_the_rule_does_not_depend_on_units_or_origin():
    X, _ = rows(300, 5)
    shifts = log_feature_shifts(X, np.ones(300))
    scale, offset = np.array([3.7, 1.0, 2.0]), np.array([-12.0, 5.0, 0.0])
    np.testing.assert_allclose(log_feature_shifts(X * scale + offset, np.ones(300)), shifts * scale - offset)


def test_the_rule_weighs_rows_as_copies():
    X, _ = rows(200, 3)
    weights = np.where(np.arange(200) < 50, 3.0, 1.0)
    copies = np.vstack([X, X[:50], X[:50]])
    np.testing.assert_allclose(log_feature_shifts(X, weights), log_feature_shifts(copies, np.ones(300)))
    # Weights can decide it: a heavy tail the weights take away is no heavy tail.
    light = np.where(X[:, 0] > np.quantile(X[:, 0], 0.8), 1e-9, 1.0)
    assert np.isnan(log_feature_shifts(X, light)[0])


def test_the_context_is_the_standardized_log(reg, data):
    X, _ = data
    shift = reg.x_log_shift_[0]
    assert np.isnan(reg.x_log_shift_[1:]).all()
    assert all(np.array_equal(member.x_log_shift_, reg.x_log_shift_, equal_nan=True) for member in reg.ensemble_)
    logged = np.log(X[:, 0] + shift)
    context = reg._context(reg._validated(X))
    np.testing.assert_allclose(context[:, 0], (logged - logged.mean()) / logged.std(), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(reg.context_range_[:, 0], [logged.min(), logged.max()])


def test_standardizing_the_features_first_changes_nothing(reg, data):
    """A StandardScaler before the regressor: the trees split on the same ranks and the context is the same."""
    X, y = data
    scaled = (X - X.mean(axis=0)) / X.std(axis=0)
    on_scaled = fitted(scaled, y)
    expected = (reg.x_log_shift_[0] + X[:, 0].mean()) / X[:, 0].std()  # x' + c' = (x + c) / std
    np.testing.assert_allclose(on_scaled.x_log_shift_[0], expected, rtol=1e-9)
    np.testing.assert_allclose(reg.score_samples(X, y), on_scaled.score_samples(scaled, y), rtol=0, atol=1e-6)


def test_a_fit_on_the_raw_feature_is_the_fit_on_its_log(reg, data):
    """The trees split on ranks and the context is the log either way: the same model on the training rows."""
    X, y = data
    by_hand = X.copy()
    by_hand[:, 0] = np.log(X[:, 0] + reg.x_log_shift_[0])
    on_log = fitted(by_hand, y)
    assert np.isnan(on_log.x_log_shift_).all()
    np.testing.assert_allclose(reg.score_samples(X, y), on_log.score_samples(by_hand, y), rtol=0, atol=1e-6)


def test_a_value_at_or_below_minus_its_shift_is_held_at_the_range(reg, data):
    X, y = data
    low = np.repeat(X[:1], 5, axis=0)
    low[:, 0] = [-1e3, -1.0, -reg.x_log_shift_[0], np.median(X[:, 0]), X[:, 0].min()]
    scores = reg.score_samples(low, np.repeat(y[:1], 5))
    assert np.isfinite(scores).all()
    np.testing.assert_array_equal(scores[:3], scores[0])  # all held a width below the range of the log
    assert len({scores[0], scores[3], scores[4]}) == 3  # within the range nothing is held
    assert np.isfinite(reg.predict_interval(low)).all()


def test_saved_loaded_and_older_models_enter_every_feature_as_given(reg, data):
    X, y = data
    buffer = io.BytesIO()
    reg.save(buffer)
    buffer.seek(0)
    loaded = FlowRegressor.load(buffer)
    np.testing.assert_array_equal(loaded.x_log_shift_, reg.x_log_shift_)
    np.testing.assert_array_equal(loaded.score_samples(X, y), reg.score_samples(X, y))
    plain_X = X[:, 1:]
    plain = fitted(plain_X, y)
    assert np.isnan(plain.x_log_shift_).all()
    state = pickle.loads(pickle.dumps(plain)).__getstate__()
    for holder in (state, *(member.__dict__ for member in state["ensemble_"])):
        del holder["x_log_shift_"]
    old = FlowRegressor.__new__(FlowRegressor)
    old.__setstate__(state)
    assert np.isnan(old.x_log_shift_).all() and old.x_log_shift_.shape == (2,)
    np.testing.assert_array_equal(old.score_samples(plain_X, y), plain.score_samples(plain_X, y))


@pytest.mark.parametrize("shift", [np.inf, -np.inf])
def test_a_tampered_shift_is_refused(reg, shift):
    state = pickle.loads(pickle.dumps(reg)).__getstate__()
    state["x_log_shift_"] = np.array([shift, np.nan, np.nan])
    with pytest.raises(ValueError, match="x_log_shift_"):
        FlowRegressor.__new__(FlowRegressor).__setstate__(state)


def test_partial_fit_from_scratch_enters_every_feature_as_given(data):
    X, y = data
    reg = FlowRegressor(**SETTINGS)
    reg.partial_fit(X[:150], y[:150])
    assert np.isnan(reg.x_log_shift_).all()
    reg.partial_fit(X[150:], y[150:])
    np.testing.assert_array_equal(reg.context_range_[:, 0], [X[:, 0].min(), X[:, 0].max()])
    assert np.isfinite(reg.score_samples(X, y)).all()
