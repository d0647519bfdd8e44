"""FlowRegressor: exact conditional-density properties, quality on known problems, scikit-learn integration."""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.integrate import cumulative_trapezoid
from scipy.stats import norm
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skflow import FlowRegressor
from skflow._conditional import MEAN_TAIL, mean_rule
from skflow.metrics import crps, interval_coverage, log_likelihood_scorer

from .conftest import ONE_FLOW_ALONE, SMALL_REGRESSOR, fast_regressor, from_older_state

# Small but trained: 4-5 optimizer steps per epoch.
# One flow: these tests are about a flow's outputs; tests/test_regressor_ensemble.py covers n_flows > 1.
FAST = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE, "batch_size": 128}


def test_methods_are_invariant_to_row_order_and_subsets(fitted):
    """What check_methods_{sample_order,subset}_invariance test, with score_samples given its y."""
    X, y = heteroscedastic(30, 5)
    y = 10.0 * y + 50.0
    order = np.random.default_rng(0).permutation(30)
    methods = {
        "predict": lambda X, y: fitted.predict(X),
        "score_samples": fitted.score_samples,
        "predict_quantiles": lambda X, y: fitted.predict_quantiles(X, [0.2, 0.7]),
    }
    for name, method in methods.items():
        full = method(X, y)
        np.testing.assert_allclose(method(X[order], y[order]), full[order], rtol=1e-9, err_msg=name)
        one_by_one = np.concatenate([method(X[i : i + 1], y[i : i + 1]) for i in range(5)])
        np.testing.assert_allclose(one_by_one, full[:5], rtol=1e-9, err_msg=name)


def heteroscedastic(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, 1))
    return X, np.sin(X[:, 0]) + (0.1 + 0.5 * np.abs(X[:, 0])) * rng.normal(size=n)


@pytest.fixture(scope="module")
def fitted():
    X, y = heteroscedastic(600, 0)
    return FlowRegressor(max_epochs=25, **FAST).fit(X, 10.0 * y + 50.0)  # not standardized: units matter


def test_untrained_flow_is_the_gaussian_of_the_standardized_target():
    """Before training (epoch 0) the learned layers are the identity: log p(y|x) = log N((y - m) / s) - log s."""
    X, y = heteroscedastic(200, 1)
    y = 3.0 * y + 7.0
    weights = np.random.default_rng(2).uniform(0.5, 2.0, 200)
    seen = {}

    def callback(info):
        if info.epoch == 0:
            seen["log_density"] = info.log_density(X[:20], y[:20])

    # Splines: an untrained mixture-CDF layer is a mixture of spread components, not the identity.
    reg = fast_regressor(callback=callback, max_epochs=1, base="normal", flow="spline").fit(X, y, sample_weight=weights)
    mean = np.average(y, weights=weights)
    std = np.sqrt(np.average((y - mean) ** 2, weights=weights))
    np.testing.assert_allclose(seen["log_density"], norm.logpdf(y[:20], mean, std), rtol=1e-6)
    np.testing.assert_allclose([reg.location_[0], reg.scale_[0]], [mean, std])
    np.testing.assert_allclose(reg.x_location_, np.average(X, axis=0, weights=weights))


def test_quantiles_invert_the_conditional_cdf_and_the_density_integrates_to_one(fitted):
    for x in (-2.5, 0.3, 2.0):
        q = fitted.predict_quantiles([[x]], [1e-7, 0.1, 0.5, 0.9, 1 - 1e-7])[0]
        grid = np.linspace(q[0] - 20, q[-1] + 20, 20001)
        density = np.exp(fitted.score_samples(np.full((grid.size, 1), x), grid))
        cdf = cumulative_trapezoid(density, grid, initial=0.0)
        assert abs(cdf[-1] - 1.0) < 1e-3, (x, cdf[-1])
        np.testing.assert_allclose(np.interp(q[1:4], grid, cdf), [0.1, 0.5, 0.9], atol=1e-3)


def test_quantiles_are_monotone_and_intervals_contain_the_median(fitted):
    X = np.linspace(-3, 3, 50)[:, None]
    levels = np.linspace(0.01, 0.99, 25)
    q = fitted.predict_quantiles(X, levels)
    assert q.shape == (50, 25)
    assert (np.diff(q, axis=1) > 0).all()
    interval = fitted.predict_interval(X, 0.8)
    median = fitted.predict_quantiles(X, 0.5)[:, 0]
    assert (interval[:, 0] < median).all() and (median < interval[:, 1]).all()
    np.testing.assert_allclose(interval, fitted.predict_quantiles(X, [0.1, 0.9]))


def winsorized_mean(model, X: np.ndarray) -> np.ndarray:
    """The integral over levels of one flow's quantile function (with its tails beyond the widened training range
    spliced) held inside its MEAN_TAIL and 1 - MEAN_TAIL quantiles: the trapezoid rule on 20,001 levels evenly
    spaced on the normal scale (dense in the tails), plus the tails."""
    levels = norm.cdf(np.linspace(norm.ppf(MEAN_TAIL), norm.isf(MEAN_TAIL), 20001))
    quantiles = model.predict_quantiles(X, levels)
    return np.trapezoid(quantiles, levels, axis=1) + MEAN_TAIL * (quantiles[:, 0] + quantiles[:, -1])


def test_mean_is_the_integral_of_the_winsorized_quantile_function(fitted):
    X = np.array([[-2.0], [0.0], [1.5]])
    spread = np.diff(fitted.predict_interval(X, 0.5), axis=1)[:, 0]
    np.testing.assert_allclose(fitted.predict(X), winsorized_mean(fitted, X), atol=1e-3 * spread.max())
    np.testing.assert_array_equal(fitted.predict(X), fitted.predict(X))  # deterministic


def test_mean_of_a_heavy_tail_on_the_log_scale_is_winsorized():
    """Through a bound's exp, a flow's extrapolated upper tail can rule the exact mean (one flow on yacht: 2.6e14
    where the 99.9% quantile was 79); the winsorized mean stays with the distribution's bulk."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1))
    y = np.exp(X[:, 0] + 2.0 * rng.normal(size=300))  # log-sd 2: the winsorized mean is 2% below the mean
    reg = FlowRegressor(max_epochs=5, bounds=(0, None), **FAST).fit(X, y)
    X_new = np.array([[-1.0], [0.0], [1.0]])
    mean = reg.predict(X_new)
    spread = np.diff(reg.predict_interval(X_new, 0.5), axis=1)[:, 0]
    # rtol: where the spliced tail begins, its kink costs the quadrature some accuracy.
    np.testing.assert_allclose(mean, winsorized_mean(reg, X_new), atol=1e-3 * spread.max(), rtol=2e-3)
    assert (mean < reg.predict_quantiles(X_new, 1 - MEAN_TAIL)[:, 0]).all()


def test_mean_stays_near_the_training_range_widened_by_its_width(fitted):
    """Three training outliers at 1e4 among 100 rows near 0 (two flows, three epochs): extrapolated upper
    tails put means beyond 1e5 before the guard, where a flow's inverse says nothing of the data. One target's
    mean is that of its spliced tails (skflow._target_tails); several targets' values are held inside."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.normal(size=600)
    y[rng.choice(100, 3, replace=False)] = 1e4
    reg = FlowRegressor(max_epochs=3, n_flows=2, random_state=0).fit(X[:100], y[:100])
    np.testing.assert_array_equal(reg.target_range_, [[y[:100].min()], [1e4]])
    low, high = reg.target_range_[:, 0]
    mean = reg.predict(X[100:])
    assert (mean >= low - (high - low)).all() and (mean <= high + (high - low)).all()
    # On a range the flows' tails certainly leave: a flow's mean is the quadrature rule's sum over its spliced
    # quantiles (the same distribution as predict_quantiles), each at most b + w log(1 / MEAN_TAIL), b = 3, w = 2.
    for member in reg._members():
        member.target_range_ = np.array([[-1.0], [1.0]])
    member, (nodes, weights) = reg.ensemble_[0], mean_rule(1)
    quantiles = member.predict_quantiles(X[100:110], norm.cdf(nodes[:, 0]))
    np.testing.assert_allclose(member.predict(X[100:110]), quantiles @ weights, rtol=1e-9)
    assert (np.abs(reg.predict(X[100:])) <= 3.0 + 2.0 * np.log(1 / MEAN_TAIL)).all()
    Y = np.column_stack([y, -y])
    two = FlowRegressor(max_epochs=3, n_flows=1, boosted_feature=False, random_state=0).fit(X[:100], Y[:100])
    two.target_range_ = np.array([[-1.0, -1.0], [1.0, 1.0]])
    assert (np.abs(two.predict(X[100:])) <= 3.0).all()
    # A model saved before the guard has no range and keeps its mean.
    X_fitted = np.array([[-2.0], [0.0], [1.5]])
    older = from_older_state(fitted, ("target_range_",))
    assert np.isinf(older.target_range_).all()
    np.testing.assert_array_equal(older.predict(X_fitted), fitted.predict(X_fitted))


def test_heteroscedastic_intervals_cover_held_out_rows():
    X, y = heteroscedastic(800, 0)
    reg = FlowRegressor(max_epochs=25, **FAST).fit(X[:600], y[:600])
    interval = reg.predict_interval(X[600:], 0.9)
    assert 0.82 <= interval_coverage(y[600:], interval) <= 0.97
    width = np.diff(reg.predict_interval([[0.0], [2.8]], 0.9), axis=1)[:, 0]
    assert width[1] > 1.5 * width[0], width  # the noise grows with |x|: so must the interval
    samples = reg.sample(X[600:], 50, random_state=0)
    assert crps(y[600:], samples) < crps(y[600:], np.full((200, 1), y[:600].mean()))


def test_bimodal_target_beats_the_true_conditional_gaussian():
    rng = np.random.default_rng(0)
    X = rng.uniform(1.0, 2.0, (800, 1))
    y = rng.choice([-1.0, 1.0], 800) * X[:, 0] + 0.1 * rng.normal(size=800)
    reg = FlowRegressor(max_epochs=30, n_bins=8, **{**FAST, "hidden_units": (32,)}).fit(X[:600], y[:600])
    gaussian = norm.logpdf(y[600:], 0.0, np.sqrt(X[600:, 0] ** 2 + 0.01)).mean()
    flow = reg.score_samples(X[600:], y[600:]).mean()
    assert flow > gaussian + 0.5, (flow, gaussian)


def test_several_targets_joint_density_mean_and_samples():
    X, y = heteroscedastic(300, 3)
    Y = np.column_stack([y, 2.0 * y + 0.1 * np.random.default_rng(0).normal(size=300)])
    reg = FlowRegressor(max_epochs=5, **FAST).fit(X, Y)
    assert reg.n_targets_ == 2
    assert reg.score_samples(X[:7], Y[:7]).shape == (7,)
    assert np.isfinite(reg.score_samples(X[:7], Y[:7])).all()
    assert reg.predict(X[:7]).shape == (7, 2)
    np.testing.assert_array_equal(reg.predict(X[:7]), reg.predict(X[:7]))
    samples = reg.sample(X[:7], n_samples=4, random_state=0)
    assert samples.shape == (7, 4, 2)
    np.testing.assert_array_equal(samples, reg.sample(X[:7], n_samples=4, random_state=0))
    with pytest.raises(ValueError, match="^predict_quantiles needs a model of one target"):
        reg.predict_quantiles(X[:3], [0.5])
    with pytest.raises(ValueError, match="^predict_interval needs a model of one target"):
        reg.predict_interval(X[:3])
    # A one-column 2-D y keeps its shape in predictions, and is the same model as the 1-D y.
    one = FlowRegressor(max_epochs=2, **FAST)
    np.testing.assert_allclose(one.fit(X, Y[:, :1]).predict(X[:5])[:, 0], one.fit(X, Y[:, 0]).predict(X[:5]))


def test_pandas_input_and_feature_names():
    X, y = heteroscedastic(200, 4)
    frame = pd.DataFrame({"x": X[:, 0], "noise": np.random.default_rng(0).normal(size=200)})
    reg = FlowRegressor(max_epochs=2, **FAST).fit(frame, pd.Series(y, name="target"))
    np.testing.assert_array_equal(reg.feature_names_in_, ["x", "noise"])
    with pytest.warns(UserWarning, match="feature names"):
        from_array = reg.predict(frame.to_numpy())
    np.testing.assert_allclose(reg.predict(frame), from_array)
    assert reg.predict_interval(frame.iloc[:3]).shape == (3, 2)
    assert reg.score_samples(frame.iloc[:3], pd.Series(y[:3])).shape == (3,)


def test_grid_search_with_the_log_likelihood_scorer_and_a_pipeline():
    X, y = heteroscedastic(200, 6)
    search = GridSearchCV(
        FlowRegressor(max_epochs=2, **FAST), {"n_transforms": [1, 2]}, scoring=log_likelihood_scorer, cv=2
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    assert log_likelihood_scorer(best, X, y) == pytest.approx(best.score_samples(X, y).mean())
    pipeline = make_pipeline(StandardScaler(), FlowRegressor(max_epochs=2, **FAST)).fit(X * 100.0, y)
    expected = pipeline[-1].score_samples(pipeline[0].transform(X * 100.0), y).mean()
    assert log_likelihood_scorer(pipeline, X * 100.0, y) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("X", "y", "message"),
    [
        (np.ones((10, 1)), np.r_[np.ones(9), np.nan], "y contains NaN"),
        (np.ones((10, 1)), np.r_[np.ones(9), np.inf], "y contains infinity"),
        (np.ones((10, 1)), np.ones(9), "inconsistent numbers of samples"),
        (np.ones((10, 1)), np.array(["a"] * 10, dtype=object), "numeric target"),
        (np.ones((10, 1)), np.ones((10, 2, 2)), "3-D"),
        (pd.DataFrame({"c": ["a", "b"] * 5}), np.arange(10.0), r"'c'.*not numeric"),
        (pd.DataFrame(index=range(10)), np.arange(10.0), "at least one feature, but X is a DataFrame with no columns"),
        (np.ones((10, 1)), pd.DataFrame(index=range(10)), "at least one target, but y is a DataFrame with no columns"),
    ],
    ids=["nan", "inf", "length", "strings", "3d", "string-column", "no-feature-columns", "no-target-columns"],
)
def test_bad_input_is_a_clear_value_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        fast_regressor().fit(X, y)


@pytest.mark.parametrize("fmt", [sparse.csr_matrix, sparse.coo_matrix])
def test_a_sparse_target_is_refused_at_fit_and_at_scoring(fitted, fmt):
    X = np.ones((10, 1))
    with pytest.raises(TypeError, match="Sparse data was passed for y, but dense data is required"):
        fast_regressor().fit(X, fmt(np.arange(10.0)[:, None]))  # numpy's "setting an array element" before
    with pytest.raises(TypeError, match="Sparse data was passed for y, but dense data is required"):
        fitted.score_samples(X, fmt(np.arange(10.0)[:, None]))


def test_bad_arguments_after_fit(fitted):
    with pytest.raises(ValueError, match="quantiles"):
        fitted.predict_quantiles([[0.0]], [0.0, 0.5])
    with pytest.raises(ValueError, match="coverage"):
        fitted.predict_interval([[0.0]], 1.5)
    with pytest.raises(ValueError, match="expected 2 row"):
        fitted.score_samples([[0.0], [1.0]], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        fitted.score_samples([[0.0]], [np.nan])
    assert fitted.score_samples([[0.0], [0.0]], [np.inf, 50.0])[0] == -np.inf


@pytest.mark.parametrize("factor", [1e-300, 1e300])
def test_features_near_the_float64_limits_give_the_same_model(factor):
    """The context is X standardized: scaling X by any factor changes nothing (at 1e300 the naive
    variance overflowed to inf, the context became zero and the model ignored X)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 2))
    y = 2 * X[:, 0] + 0.1 * rng.normal(size=120)
    reference = FlowRegressor(**{**FAST, "max_epochs": 3}).fit(X, y)
    scaled = FlowRegressor(**{**FAST, "max_epochs": 3}).fit(X * factor, y)
    np.testing.assert_allclose(scaled.x_scale_, reference.x_scale_ * factor, rtol=1e-12)
    np.testing.assert_allclose(scaled.score_samples(X * factor, y), reference.score_samples(X, y), atol=1e-6)
    np.testing.assert_allclose(scaled.predict(X[:5] * factor), reference.predict(X[:5]), atol=1e-6)


def test_bounded_target_stays_inside_and_zero_weights_drop_rows():
    rng = np.random.default_rng(7)
    X = rng.uniform(0, 1, (200, 1))
    y = np.exp(X[:, 0] + 0.3 * rng.normal(size=200))
    reg = FlowRegressor(max_epochs=3, bounds=(0, None), **FAST).fit(X, y)
    assert (reg.predict_quantiles(X[:20], [1e-9, 0.5]) > 0).all()
    assert (reg.sample(X[:20], 10, random_state=0) > 0).all()
    assert (reg.predict(X[:20]) > 0).all()
    assert reg.score_samples(X[:2], [-1.0, 0.0]).tolist() == [-np.inf, -np.inf]
    weights = np.r_[np.ones(150), np.zeros(50)]
    weighted = FlowRegressor(max_epochs=2, **FAST).fit(X, y, sample_weight=weights)
    dropped = FlowRegressor(max_epochs=2, **FAST).fit(X[:150], y[:150])
    np.testing.assert_array_equal(weighted.score_samples(X, y), dropped.score_samples(X, y))


def test_predictions_far_from_the_data_stay_finite_and_strictly_inside_the_bounds():
    """Far inputs send the quadrature's latent points through exp: the mean must not be inf or on a bound."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    unit = 1 / (1 + np.exp(-(X[:, 0] + 0.3 * rng.normal(size=200))))
    far = np.array([[40.0, 0.0], [-800.0, 0.0], [800.0, 0.0]])
    reg = FlowRegressor(max_epochs=2, bounds=(0, 1), **FAST).fit(X, unit)
    mean = reg.predict(far)
    assert ((mean > 0) & (mean < 1)).all()
    assert np.isfinite(reg.score_samples(far, mean)).all()
    positive = FlowRegressor(max_epochs=2, bounds=(0, None), **FAST).fit(X, np.exp(X[:, 0]))
    mean = positive.predict(far)
    assert np.isfinite(mean).all() and (mean > 0).all()


def test_pickle_and_save_load_round_trips_give_identical_scores(fitted, tmp_path):
    X, y = heteroscedastic(50, 8)
    y = 10.0 * y + 50.0
    path = tmp_path / "regressor.skflow"
    fitted.save(path)
    for restored in (pickle.loads(pickle.dumps(fitted)), FlowRegressor.load(path)):
        np.testing.assert_array_equal(restored.score_samples(X, y), fitted.score_samples(X, y))
        np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
        np.testing.assert_array_equal(restored.sample(X, 3, random_state=1), fitted.sample(X, 3, random_state=1))


def test_metrics_against_closed_forms():
    # CRPS of N(0, 1) at y = 0 is (sqrt(2) - 1) / sqrt(pi).
    samples = norm.ppf((np.arange(4000) + 0.5) / 4000)[None, :]
    assert crps([0.0], samples) == pytest.approx((np.sqrt(2) - 1) / np.sqrt(np.pi), abs=1e-3)
    assert crps([1.0, 2.0], [[1.0], [0.0]]) == pytest.approx(1.0)  # one draw: the absolute error
    assert interval_coverage([0.0, 1.0, 2.0], [[0, 1], [0, 1], [0, 1]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        interval_coverage([0.0], [[0, 1, 2]])


def test_target_names_are_recorded_for_a_named_pandas_target(tmp_path):
    X, y = heteroscedastic(100, 4)
    frame = pd.DataFrame({"x": X[:, 0]})
    reg = FlowRegressor(max_epochs=1, **FAST).fit(frame, pd.Series(y, name="price"))
    np.testing.assert_array_equal(reg.target_names_in_, ["price"])
    reg.save(tmp_path / "reg.skflow")
    np.testing.assert_array_equal(FlowRegressor.load(tmp_path / "reg.skflow").target_names_in_, ["price"])
    reg.fit(frame, pd.DataFrame({"a": y, "b": -y}))
    np.testing.assert_array_equal(reg.target_names_in_, ["a", "b"])
    for unnamed in (y, pd.Series(y), pd.DataFrame(np.c_[y, -y])):  # no name, or integer column labels
        assert not hasattr(reg.fit(frame, unnamed), "target_names_in_")
    # An ensemble's other flows carry the names (their warnings name columns as the user does), saved and loaded.
    ensemble = FlowRegressor(max_epochs=1, **{**FAST, "n_flows": 2}).fit(frame, pd.Series(y, name="price"))
    ensemble.save(tmp_path / "ensemble.skflow")
    loaded = FlowRegressor.load(tmp_path / "ensemble.skflow")
    for model in (ensemble, loaded):
        assert [list(m.target_names_in_) for m in model._members()] == [["price"], ["price"]]
        assert [list(m.feature_names_in_) for m in model._members()] == [["x"], ["x"]]
    np.testing.assert_array_equal(loaded.score_samples(frame, y), ensemble.score_samples(frame, y))
    assert not hasattr(ensemble.fit(X, y).ensemble_[0], "feature_names_in_")


def test_n_bins_is_an_int_here_and_older_states_read_theirs_from_the_flow():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = X[:, 0] + 0.3 * rng.normal(size=120)
    with pytest.raises(ValueError, match="n_bins"):
        FlowRegressor(n_bins="auto").fit(X, y)
    reg = FlowRegressor(n_bins=5, n_transforms=1, hidden_units=(8,), max_epochs=1, n_flows=2, random_state=0)
    reg.fit(X, y)
    assert FlowRegressor().n_bins == 8
    assert [member.n_bins_ for member in (reg, *reg.ensemble_)] == [5, 5]
    # A model pickled before n_bins_ existed: its flow's config holds the bins, whatever n_bins says now.
    old = from_older_state(reg, ("n_bins_",), n_bins=12)
    assert old.n_bins_ == 5
    np.testing.assert_array_equal(old.score_samples(X[:5], y[:5]), reg.score_samples(X[:5], y[:5]))
