"""FlowRegressor.set_output(transform="pandas"): the predictions as pandas objects indexed like X."""

import io
import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone

from skflow import FlowRegressor

from .conftest import ONE_FLOW_ALONE, SMALL_REGRESSOR

FAST = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE, "max_epochs": 2}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 2)), columns=["a", "b"], index=np.arange(1000, 1120))
    y = pd.Series(X["a"].to_numpy() + 0.3 * rng.normal(size=120), name="price", index=X.index)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    return FlowRegressor(**FAST).fit(*data)


def test_pandas_output_holds_the_same_numbers_indexed_like_x_and_named_after_the_target(data, fitted):
    X, y = data
    arrays = {
        "predict": fitted.predict(X),
        "score_samples": fitted.score_samples(X, y),
        "quantiles": fitted.predict_quantiles(X, [0.1, 0.5, 0.9]),
        "interval": fitted.predict_interval(X),
        "sample": fitted.sample(X, 3, random_state=0),
    }
    assert all(isinstance(value, np.ndarray) for value in arrays.values())  # the default
    reg = clone(fitted).set_output(transform="pandas").fit(X, y)
    mean, log_density = reg.predict(X), reg.score_samples(X, y)
    quantiles, interval = reg.predict_quantiles(X, [0.1, 0.5, 0.9]), reg.predict_interval(X)
    draws = reg.sample(X, 3, random_state=0)
    assert isinstance(mean, pd.Series) and mean.name == "price" and mean.index.equals(X.index)
    assert isinstance(log_density, pd.Series) and log_density.name == "log_density"
    assert list(quantiles.columns) == [0.1, 0.5, 0.9] and list(interval.columns) == ["lower", "upper"]
    assert list(draws.columns) == [0, 1, 2]
    for frame in (quantiles, interval, draws):
        assert isinstance(frame, pd.DataFrame) and frame.index.equals(X.index)
    for value, array in zip((mean, log_density, quantiles, interval, draws), arrays.values(), strict=True):
        np.testing.assert_array_equal(value.to_numpy(), array)
    # Residuals against y indexed as X: aligned, and the same as with arrays.
    np.testing.assert_array_equal((y - mean).to_numpy(), y.to_numpy() - arrays["predict"])


def test_several_targets_name_their_columns_and_draws(data):
    X, y = data
    Y = pd.DataFrame({"low": y, "high": 2 * y})
    reg = FlowRegressor(**FAST).set_output(transform="pandas").fit(X, Y)
    assert list(reg.predict(X).columns) == ["low", "high"]
    draws = reg.sample(X.iloc[:5], 2, random_state=0)
    assert draws.shape == (5, 4) and list(draws.columns) == [(0, "low"), (0, "high"), (1, "low"), (1, "high")]
    unnamed = FlowRegressor(**FAST).set_output(transform="pandas").fit(X.to_numpy(), Y.to_numpy())
    mean = unnamed.predict(X.to_numpy()[:4])
    assert list(mean.columns) == ["y0", "y1"] and mean.index.equals(pd.RangeIndex(4))


def test_the_setting_survives_clone_pickle_and_save_and_refuses_unknown_values(data, fitted):
    X, _ = data
    reg = pickle.loads(pickle.dumps(fitted)).set_output(transform="pandas")
    assert isinstance(clone(reg).set_output().fit(*data).predict(X), pd.Series)  # None: unchanged
    assert isinstance(pickle.loads(pickle.dumps(reg)).predict(X), pd.Series)
    buffer = io.BytesIO()
    reg.save(buffer)
    buffer.seek(0)
    assert isinstance(FlowRegressor.load(buffer).predict(X), pd.Series)
    with pytest.raises(ValueError, match="'polars'.*one of 'default', 'pandas'"):
        reg.set_output(transform="polars")
    assert isinstance(reg.set_output(transform="default").predict(X), np.ndarray)


def test_scikit_learns_global_transform_output_leaves_predictions_arrays(data, fitted):
    X, _ = data
    with sklearn.config_context(transform_output="pandas"):
        assert isinstance(fitted.predict(X), np.ndarray)
