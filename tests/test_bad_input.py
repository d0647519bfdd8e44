"""Bad and unusual input: a clear ValueError/TypeError naming the problem, or correct handling.

Every case here is one row of the list in issue 5.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError

from skflow import FlowDensity

TINY = dict(n_transforms=1, hidden_units=(8,), max_epochs=3, n_bins=4, random_state=0)


def tiny(**params):
    return FlowDensity(**{**TINY, **params})


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(120, 3)) * [1.0, 5.0, 0.1] + [0.0, 10.0, -3.0]


@pytest.fixture(scope="module")
def fitted(X):
    return tiny().fit(X)


def with_value(X, row, col, value):
    X = X.astype(float).copy()
    X[row, col] = value
    return X


# ------------------------------------------------------------ shape and values


@pytest.mark.parametrize(
    "value, message", [(np.nan, "Input X contains NaN"), (np.inf, "Input X contains infinity"), (-np.inf, "infinity")]
)
def test_nan_and_inf_are_refused_at_fit_and_at_score(X, fitted, value, message):
    bad = with_value(X, 5, 1, value)
    with pytest.raises(ValueError, match=message):
        tiny().fit(bad)
    for method in (fitted.score_samples, fitted.score, fitted.transform, fitted.inverse_transform):
        with pytest.raises(ValueError, match=message):
            method(bad)


def test_empty_arrays_are_refused(fitted):
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\).*minimum of 2"):
        tiny().fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\)"):
        tiny().fit(np.empty((10, 0)))
    with pytest.raises(ValueError, match="needs at least one feature, but X is a DataFrame with no columns"):
        tiny().fit(pd.DataFrame(index=range(10)))  # numpy's "at least one array or dtype is required" before
    with pytest.raises(ValueError, match="needs at least one feature, but X is a DataFrame with no columns"):
        fitted.score_samples(pd.DataFrame(index=range(3)))
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        fitted.score_samples(np.empty((0, 3)))


def test_one_dimensional_input_is_refused(X, fitted):
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        tiny().fit(X[:, 0])
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        fitted.score_samples(X[0])
    with pytest.raises(ValueError, match="Expected 2D array, got scalar"):
        fitted.score_samples(1.0)


def test_a_single_sample_cannot_be_fitted_but_can_be_scored(X, fitted):
    with pytest.raises(ValueError, match=r"Found array with 1 sample\(s\).*minimum of 2"):
        tiny().fit(X[:1])
    one = fitted.score_samples(X[:1])
    assert one.shape == (1,) and np.isfinite(one).all()
    np.testing.assert_allclose(one, fitted.score_samples(X)[:1])


def test_two_samples_are_enough_to_fit(X):
    est = tiny().fit(X[:2])
    assert np.isfinite(est.score_samples(X)).all()


def test_wrong_feature_count_is_refused_everywhere(X, fitted):
    for method in (fitted.score_samples, fitted.score, fitted.transform, fitted.inverse_transform):
        with pytest.raises(ValueError, match="X has 2 features, but FlowDensity is expecting 3 features"):
            method(X[:, :2])
        with pytest.raises(ValueError, match="X has 4 features, but FlowDensity is expecting 3 features"):
            method(np.c_[X, X[:, :1]])


def test_unfitted_estimator_raises_not_fitted(X):
    for method in ("score_samples", "score", "transform", "inverse_transform"):
        with pytest.raises(NotFittedError):
            getattr(FlowDensity(), method)(X)
    with pytest.raises(NotFittedError):
        FlowDensity().sample(3)


@pytest.mark.parametrize("n_samples", [0, -1, 2.5, "3"])
def test_invalid_sample_count(fitted, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        fitted.sample(n_samples)


# ------------------------------------------------------------ types


def test_string_dataframe_columns_are_named_in_the_error(X):
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["city"] = ["Paris", "Lyon", "Nice"] * 40
    df["grade"] = pd.Categorical(["low", "high"] * 60)
    with pytest.raises(ValueError, match=r"numeric features.*'city' \(.*non-numeric.*'grade' \(categorical\)"):
        tiny().fit(df)
    fitted = tiny().fit(df[["a", "b", "c"]])
    bad = df[["a", "b", "c"]].astype({"b": str})
    bad["b"] = "x"
    with pytest.raises(ValueError, match=r"column\(s\) 'b' "):
        fitted.score_samples(bad)


def test_categorical_with_numeric_categories_is_still_refused(X):
    """Categories are labels, not quantities: an encoder must decide what their numbers mean."""
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["level"] = pd.Categorical([1, 2, 3] * 40)
    with pytest.raises(ValueError, match=r"'level' \(categorical\).*OrdinalEncoder"):
        tiny().fit(df)


def test_datetime_column_is_refused(X):
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["when"] = pd.date_range("2020-01-01", periods=len(df))
    with pytest.raises(ValueError, match=r"'when' \(datetime64"):
        tiny().fit(df)
    days = np.arange("2020-01-01", "2020-03-01", dtype="datetime64[D]").reshape(-1, 2)
    with pytest.raises(ValueError, match=r"column\(s\) 0 \(datetime64\[D\].*1 \(datetime64"):
        tiny().fit(days)
    with pytest.raises(ValueError, match=r"timedelta64"):
        tiny().fit(np.diff(days, axis=0))


def test_object_arrays(X):
    """Numbers stored as objects are converted; strings and other values that are not numbers are named by column."""
    est = tiny().fit(X.astype(object))
    np.testing.assert_array_equal(est.score_samples(X.astype(object)), tiny().fit(X).score_samples(X))
    strings = X.astype(object)
    strings[3, 2] = "n/a"
    with pytest.raises(ValueError, match=r"column\(s\) 2 \(object holding non-numeric values\)"):
        tiny().fit(strings)
    numeric_strings = X.astype(str)  # '1.5' converts to 1.5, as numpy and sklearn do
    assert np.isfinite(tiny().fit(numeric_strings).score_samples(X)).all()
    with pytest.raises(ValueError, match=r"column\(s\) 1 \(<U.*non-numeric"):
        tiny().fit([[1.0, "red"], [2.0, "blue"], [3.0, "red"]])
    assert tiny().fit(X.tolist()).n_features_in_ == 3
    weird = X.astype(object)
    weird[0, 0] = {"a": 1}
    # scikit-learn's convention for values that are neither numbers nor strings: a TypeError (check_dtype_object).
    with pytest.raises(TypeError, match=r"column\(s\) 0 \(object holding values that are not numbers: .*argument"):
        tiny().fit(weird)


@pytest.mark.parametrize(
    "column",
    [pd.period_range("2020", periods=120, freq="D"), pd.interval_range(0, 120)],
    ids=["period", "interval"],
)
def test_period_and_interval_columns_are_named_in_the_error(X, column):
    with pytest.raises(TypeError, match="'when' \\(.* holding values that are not numbers"):
        tiny().fit(pd.DataFrame(X, columns=["a", "b", "c"]).assign(when=column))


def test_sparse_matrices_are_refused(X, fitted):
    for fmt in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix):
        with pytest.raises(TypeError, match="Sparse data was passed.*dense data is required"):
            tiny().fit(fmt(X))
        with pytest.raises(TypeError, match="Sparse data was passed"):
            fitted.score_samples(fmt(X))


def test_complex_numbers_are_refused(X, fitted):
    with pytest.raises(ValueError, match="Complex data not supported"):
        tiny().fit(X + 1j)
    with pytest.raises(ValueError, match="Complex data not supported"):
        fitted.score_samples(X + 0j)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint16])
def test_integer_dtypes_equal_their_float64_values(dtype):
    counts = np.random.RandomState(0).poisson([3.0, 20.0], size=(150, 2)).astype(dtype)
    as_int = tiny().fit(counts)
    as_float = tiny().fit(counts.astype(np.float64))
    np.testing.assert_array_equal(as_int.dequantized_, [True, True])
    np.testing.assert_array_equal(as_int.score_samples(counts), as_float.score_samples(counts.astype(np.float64)))
    assert np.isfinite(as_int.score_samples(counts)).all()


def test_bool_input_is_dequantized_and_finite():
    flags = np.random.RandomState(0).rand(200, 3) < [0.2, 0.5, 0.9]
    est = tiny().fit(flags)
    np.testing.assert_array_equal(est.dequantized_, [True, True, True])
    scores = est.score_samples(flags)
    np.testing.assert_array_equal(scores, est.score_samples(flags.astype(float)))
    assert np.isfinite(scores).all()
    assert est.sample(5, random_state=0).dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_floats_equal_their_float64_values(X, dtype):
    low = X.astype(dtype)
    est = tiny().fit(low)
    reference = tiny().fit(low.astype(np.float64))
    np.testing.assert_array_equal(est.score_samples(low), reference.score_samples(low.astype(np.float64)))
    # transform keeps float32 (the dtypes it preserves); float16 is computed and returned in float64.
    assert est.transform(low).dtype == (np.float32 if dtype is np.float32 else np.float64)
    assert np.isfinite(est.score_samples(low)).all()


def test_pandas_nullable_dtypes(X):
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["n"] = pd.array(np.arange(len(df)) % 7, dtype="Int64")
    df["f"] = pd.array(X[:, 0], dtype="Float64")
    est = tiny().fit(df)
    np.testing.assert_array_equal(est.dequantized_, [False, False, False, True, False])
    assert np.isfinite(est.score_samples(df)).all()
    df.loc[4, "n"] = pd.NA
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.score_samples(df)


# ------------------------------------------------------------ magnitudes


@pytest.mark.parametrize("factor", [1e-30, 1e30, 1e300])
def test_huge_and_tiny_magnitudes_are_handled_in_user_units(X, factor):
    """Scaling X by c only shifts log-densities by -d log c, even near float64's limits."""
    reference = tiny().fit(X)
    scaled = tiny().fit(X * factor)
    assert not scaled.dequantized_.any()  # values beyond 2**53 are all "integers", but not counts
    scores = scaled.score_samples(X * factor)
    assert np.isfinite(scores).all()
    np.testing.assert_allclose(scores, reference.score_samples(X) - 3 * np.log(factor), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(scaled.inverse_transform(scaled.transform(X * factor)), X * factor, rtol=1e-6)


def test_huge_magnitudes_without_standardization_get_a_clear_error(X):
    message = r"feature\(s\) \[0, 1, 2\] of X reach beyond float32's range.*standardize=True"
    with pytest.raises(ValueError, match=message):
        tiny(standardize=False).fit(X * 1e300)


def test_huge_offset_with_small_spread(X):
    """1e12 + small noise: standardization removes the offset; no precision collapse to a constant."""
    est = tiny().fit(X + 1e12)
    assert np.isfinite(est.score_samples(X + 1e12)).all()
    np.testing.assert_allclose(est.location_, X.mean(0) + 1e12)


def test_points_far_from_the_training_data_score_finite_and_very_low(X, fitted):
    mean, std = X.mean(0), X.std(0)
    training = fitted.score_samples(X)
    far = np.array([mean + 100 * std, mean - 100 * std, mean + [100, -100, 100] * std, mean + [100, 0, 0] * std])
    scores = fitted.score_samples(far)
    assert np.isfinite(scores).all()
    assert (scores < training.min() - 1000).all()  # ~ -0.5 * 100**2 = -5000 nats for a Gaussian-like tail
    farther = fitted.score_samples(mean + 1e4 * std[None, :])
    assert np.isfinite(farther).all() and farther[0] < scores.min()
    beyond = fitted.score_samples(np.array([mean + 1e300, mean - 1e300]))
    np.testing.assert_array_equal(beyond, [-np.inf, -np.inf])  # the density underflows: -inf, never NaN


# ------------------------------------------------------------ feature names


def test_dataframe_column_names_follow_sklearn(X):
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    est = tiny().fit(df)
    with pytest.raises(ValueError, match="Feature names must be in the same order as they were in fit"):
        est.score_samples(df[["c", "b", "a"]])
    with pytest.raises(ValueError, match=r"Feature names unseen at fit time:\n- z"):
        est.score_samples(df.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names, but FlowDensity was fitted with"):
        from_array = est.score_samples(X)
    np.testing.assert_array_equal(from_array, est.score_samples(df))
    plain = tiny().fit(X)
    with pytest.warns(UserWarning, match="X has feature names, but FlowDensity was fitted without feature names"):
        plain.score_samples(df)


# ------------------------------------------------------------ constant columns


def test_constant_column_gets_a_floor_a_warning_and_a_finite_density(X):
    data = np.c_[X, np.full(len(X), 2.5)]
    with pytest.warns(UserWarning, match=r"feature\(s\) \[3\] are constant.*standard deviation 0.001"):
        est = tiny().fit(data)
    assert est.scale_[3] == 1e-3 and est.location_[3] == 2.5
    assert not est.dequantized_[3]
    scores = est.score_samples(data)
    assert np.isfinite(scores).all()
    # Off the constant the density falls like N(2.5, 1e-3**2): 10 standard deviations cost ~50 nats.
    off = est.score_samples(np.c_[X, np.full(len(X), 2.5 + 0.01)])
    assert np.isfinite(off).all()
    assert 30 < np.median(scores - off) < 80


@pytest.mark.parametrize("standardize", [True, False])
def test_constant_column_density_is_the_documented_normal(standardize):
    """A lone constant column is N(value, 1e-3**2): its log-density at the value is -log(1e-3 sqrt(2 pi))."""
    data = np.full((100, 1), 7.25)
    with pytest.warns(UserWarning, match="constant"):
        est = tiny(standardize=standardize).fit(data)
    expected = -np.log(1e-3 * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(est.score_samples(data[:1]), [expected], atol=0.3)
    sample = est.sample(500, random_state=0)
    assert abs(sample.mean() - 7.25) < 1e-3 and 0.5e-3 < sample.std() < 2e-3


def test_constant_integer_column_is_dequantized_not_floored():
    """A constant count column is spread over one unit around the integer: a density near 1, not near 400."""
    rng = np.random.RandomState(0)
    data = np.c_[rng.poisson(4.0, 200), np.zeros(200)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = tiny().fit(data)
    assert not [w for w in caught if "constant" in str(w.message)]
    np.testing.assert_array_equal(est.dequantized_, [True, True])
    np.testing.assert_allclose(est.location_[1], 0.0)
    np.testing.assert_allclose(est.scale_[1], np.sqrt(1 / 12))
    assert np.isfinite(est.score_samples(data)).all()
    assert est.score(data) < 0.5  # a probability-like bound; the 1e-3 floor would add ~6 nats


def test_constant_bounded_column_is_floored_in_its_unbounded_units():
    data = np.c_[np.random.RandomState(0).normal(size=100), np.full(100, 0.25)]
    with pytest.warns(UserWarning, match=r"\[1\] are constant.*in log/logit units for bounded ones"):
        est = tiny(bounds=[None, (0, 1)]).fit(data)
    np.testing.assert_allclose(est.location_[1], np.log(0.25 / 0.75))
    assert np.isfinite(est.score_samples(data)).all()
    samples = est.sample(200, random_state=0)
    assert np.abs(samples[:, 1] - 0.25).max() < 0.01


def test_all_columns_constant(X):
    with pytest.warns(UserWarning, match=r"feature\(s\) \[0, 1\] are constant"):
        est = tiny().fit(np.tile([[0.5, -1.25]], (50, 1)))
    assert np.isfinite(est.score_samples(np.array([[0.5, -1.25], [0.6, -1.0]]))).all()


def test_a_regressors_constant_target_is_called_a_target_in_the_warning():
    from skflow import FlowRegressor

    X = np.random.default_rng(0).normal(size=(50, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FlowRegressor(n_flows=1, max_epochs=2, boosted_feature=False, random_state=0).fit(X, np.full(50, 2.5))
    constant = [str(w.message) for w in caught if "are constant" in str(w.message)]
    assert constant and all("target(s) [0] are constant" in message for message in constant), constant


# ------------------------------------------------------------ parameters and weights


def test_bounds_parameter_errors(X):
    with pytest.raises(ValueError, match="one pair per feature; got 2 entries for 3 features"):
        tiny(bounds=[(0, 1), (0, 1)]).fit(X)
    with pytest.raises(ValueError, match=r"bounds\[1\] = \(5, 5\): low must be below high"):
        tiny(bounds=[None, (5, 5), None]).fit(X)
    with pytest.raises(ValueError, match=r"training row\(s\) on or outside the given bounds"):
        tiny(bounds=(0, None)).fit(X)  # X has negative values


@pytest.mark.parametrize(
    "weights, message",
    [
        (-np.ones(120), "Negative values in data passed to `sample_weight`"),
        # scikit-learn >= 1.7 refuses them first; on 1.6 skflow's own check does.
        (np.zeros(120), "Sample weights must contain at least one non-zero number|sample_weight must have a positive"),
        (np.ones(7), r"sample_weight.shape == \(7,\), expected \(120,\)"),
        (np.r_[np.nan, np.ones(119)], "Input sample_weight contains NaN"),
    ],
)
def test_invalid_sample_weight(X, weights, message):
    with pytest.raises(ValueError, match=message):
        tiny().fit(X, sample_weight=weights)


@pytest.mark.parametrize("magnitude", [1e-300, 1e307])
def test_only_relative_sample_weights_matter(X, magnitude):
    """Weights of 1e307 overflow a naive sum: they must still train the same model as unit weights."""
    reference = tiny().fit(X).score_samples(X)
    np.testing.assert_allclose(tiny().fit(X, sample_weight=np.full(len(X), magnitude)).score_samples(X), reference)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(learning_rate=-1.0), "'learning_rate' parameter of FlowDensity must be a float in the range"),
        (dict(flow="maf"), "'flow' parameter of FlowDensity must be a str among"),
        (dict(hidden_units=(0, 8)), "hidden_units must be 'auto' or a non-empty sequence of positive ints"),
        (dict(hidden_units=()), "hidden_units must be 'auto' or a non-empty sequence"),
        (dict(device="tpu"), "device='tpu' is not a valid torch device"),
    ],
)
def test_invalid_parameters(X, params, message):
    with pytest.raises(ValueError, match=message):
        tiny(**params).fit(X)


# ------------------------------------------------------------ a failed re-fit


@pytest.mark.parametrize(
    "bad_fit",
    [
        lambda est, X3: est.fit(X3, sample_weight=np.r_[1.0, np.zeros(len(X3) - 1)]),
        lambda est, X3: est.set_params(bounds=(0, 1)).fit(X3),
        lambda est, X3: est.fit(X3, sample_weight=np.zeros(len(X3))),
    ],
    ids=["one-positive-weight", "outside-bounds", "zero-weights"],
)
def test_a_failed_refit_leaves_the_fitted_model_as_it_was(X, bad_fit):
    """Validation sets n_features_in_ before later checks fail: the model must not be left half-updated."""
    est = tiny().fit(X[:, :2])
    before = est.score_samples(X[:5, :2])
    X3 = np.c_[X, X[:, 0]]
    with pytest.raises(ValueError):
        bad_fit(est, X3)
    assert est.n_features_in_ == 2
    np.testing.assert_array_equal(est.score_samples(X[:5, :2]), before)
    assert est.sample(3, random_state=0).shape == (3, 2)
    with pytest.raises(ValueError, match="features"):
        est.score_samples(X3)


def test_a_failed_regressor_refit_leaves_the_fitted_model_as_it_was(X):
    from skflow import FlowRegressor

    y = X[:, 0] + 0.1 * X[:, 1]
    reg = FlowRegressor(n_flows=1, n_transforms=1, hidden_units=(8,), max_epochs=2, random_state=0).fit(X[:, 1:], y)
    before = reg.predict(X[:5, 1:])
    with pytest.raises(ValueError):
        reg.fit(X, y, sample_weight=np.zeros(len(y)))
    assert reg.n_features_in_ == 2
    np.testing.assert_array_equal(reg.predict(X[:5, 1:]), before)


def test_inverse_transform_takes_latent_columns_under_any_names(X):
    """Latent columns are not the data's: transform's pandas output, or a bare array, must invert silently."""
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    est = tiny().set_output(transform="pandas").fit(df)
    Z = est.transform(df)
    assert list(Z.columns) == list(est.get_feature_names_out())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = est.inverse_transform(Z)
        back_from_array = est.inverse_transform(Z.to_numpy())
    np.testing.assert_allclose(np.asarray(back), X, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(back), np.asarray(back_from_array))
    with pytest.raises(ValueError, match="expecting 3 features"):
        est.inverse_transform(Z.to_numpy()[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        est.inverse_transform(with_value(Z.to_numpy(), 0, 0, np.nan))


def test_regressor_refuses_targets_reordered_or_renamed_after_fit():
    from skflow import FlowRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    Y = pd.DataFrame({"u": X[:, 0] + 0.1 * rng.normal(size=150), "v": 10 + X[:, 1]})
    reg = FlowRegressor(n_flows=1, n_transforms=1, hidden_units=(8,), max_epochs=2, random_state=0).fit(X, Y)
    assert reg.score_samples(X, Y).shape == (150,)
    for wrong in (Y[["v", "u"]], Y.rename(columns={"v": "w"})):
        with pytest.raises(ValueError, match=r"fitted on targets \['u', 'v'\]"):
            reg.score_samples(X, wrong)
        with pytest.raises(ValueError, match=r"fitted on targets \['u', 'v'\]"):
            reg.score(X, wrong)
    # Unnamed targets are taken by position, as scikit-learn takes them.
    np.testing.assert_array_equal(reg.score_samples(X, Y.to_numpy()), reg.score_samples(X, Y))
