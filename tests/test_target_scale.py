"""bounds="auto" of FlowRegressor: positive targets that vary multiplicatively are modelled on the log scale."""

import warnings

import numpy as np
import pytest

from skflow import FlowRegressor
from skflow._target_scale import LOG_SCALE_GAIN, inferred_bounds, log_scale_columns, log_scale_gains, scale_gains
from skflow._target_tails import splice_tails

pytestmark = pytest.mark.usefixtures("trees_tested_once")  # the same rows are tested several times
FAST = dict(n_flows=2, n_transforms=1, max_epochs=3, boosted_feature=False, relevance_scaling=False, flow="spline")


def log_linear(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.exp(X @ [0.8, -0.5, 0.3] + 0.5 * rng.normal(size=n))


def linear(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, 10.0 + X @ [0.8, -0.5, 0.3] + 0.5 * rng.normal(size=n)


def fit_quietly(X, y, **params) -> FlowRegressor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FlowRegressor(random_state=0, **{**FAST, **params}).fit(X, y)


def test_log_linear_target_is_taken_to_the_log_scale_and_a_linear_one_is_not():
    X, y_log = log_linear(200)
    _, y_linear = linear(200)
    gains = log_scale_gains(X, np.column_stack([y_log, y_linear]), np.ones(200), 0)
    assert gains[0] > LOG_SCALE_GAIN > gains[1]
    # Each column is judged alone: the joint density of both gets the log on the first only.
    model = fit_quietly(X, np.column_stack([y_log, y_linear]))
    np.testing.assert_array_equal(model.low_, [-y_log.min(), -np.inf])


def test_a_convex_mean_with_additive_noise_keeps_y():
    # The log straightens exp(x), so a linear model prefers it; the trees' flexible mean sees additive noise.
    rng = np.random.default_rng(2)
    X = rng.uniform(-2, 2, (300, 2))
    y = np.exp(X[:, 0]) + 0.3 * rng.normal(size=300)
    keep = y > 0
    assert log_scale_gains(X[keep], y[keep, None], np.ones(keep.sum()), 0)[0] < 0


def test_gain_does_not_depend_on_the_units_of_y():
    X, y = log_linear(150)
    weights = np.ones(150)
    np.testing.assert_allclose(
        log_scale_gains(X, 1000.0 * y[:, None], weights, 0), log_scale_gains(X, y[:, None], weights, 0), atol=1e-9
    )


def test_rows_of_weight_zero_do_not_count():
    X, y = log_linear(200)
    weights = np.r_[np.ones(150), np.zeros(50)]
    y_spoiled = y.copy()
    y_spoiled[150:] = 1e-6  # extreme on the log scale, but weightless
    model = FlowRegressor(**FAST)
    np.testing.assert_array_equal(
        log_scale_columns(model, X, y_spoiled[:, None], weights, 0),
        log_scale_columns(model, X[:150], y[:150, None], weights[:150], 0),
    )


def test_too_few_rows_of_weight_keep_y():
    """Under 20 rows never get the log; 30 rows of which 15 weigh 1e-6 are 15 rows."""
    X, y = log_linear(30)
    assert log_scale_gains(X, y[:, None], np.ones(30), 0)[0] > LOG_SCALE_GAIN
    assert log_scale_gains(X, y[:, None], np.r_[np.ones(15), np.full(15, 1e-6)], 0)[0] == -np.inf
    assert log_scale_gains(X[:19], y[:19, None], np.ones(19), 0)[0] == -np.inf


def proportions(n: int, seed: int = 0, spread: float = 5.0, top: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 3))
    mean = top / (1 + np.exp(-(1.2 * X[:, 0] - 0.4 * X[:, 1])))
    return X, rng.beta(mean * spread, (1 - mean) * spread)


def test_a_proportion_pressed_against_both_ends_is_taken_to_the_logit_scale():
    X, y = proportions(300)
    log_gain, logit_gain = scale_gains(X, y[:, None], np.ones(300), 0)
    assert logit_gain[0] > LOG_SCALE_GAIN and logit_gain[0] > log_gain[0]
    np.testing.assert_array_equal(
        inferred_bounds(FlowRegressor(), X, y[:, None], np.ones(300), 0), [[-y.min()], [2 - y.max()]]
    )
    # Small rates, pressed against 0 alone, gain as much from the log, and keep it: no upper bound.
    _, rates = proportions(300, spread=40.0, top=0.05)
    log_gain, logit_gain = scale_gains(X, rates[:, None], np.ones(300), 0)
    assert log_gain[0] > LOG_SCALE_GAIN and abs(logit_gain[0] - log_gain[0]) < LOG_SCALE_GAIN
    np.testing.assert_array_equal(
        inferred_bounds(FlowRegressor(), X, rates[:, None], np.ones(300), 0), [[-rates.min()], [np.inf]]
    )
    # Far from both ends the logit is nearly linear: no gain, no bounds.
    X, y = linear(300)
    y = 0.5 + 0.01 * (y - 10.0)
    assert 0 < y.min() and y.max() < 1
    assert scale_gains(X, y[:, None], np.ones(300), 0)[1][0] < LOG_SCALE_GAIN
    assert not np.isfinite(inferred_bounds(FlowRegressor(), X, y[:, None], np.ones(300), 0)).any()


def test_the_logit_scale_is_soft_on_both_sides_and_integrates_to_one():
    X, y = proportions(200, seed=1)
    model = fit_quietly(X, y)
    np.testing.assert_allclose([model.low_[0], model.high_[0]], [-y.min(), 2 - y.max()])
    by_hand = fit_quietly(X, y, bounds=(-y.min(), 2 - y.max()))
    X_new, y_new = proportions(50, seed=2)
    (_, a), (_, b) = [(tail.sign, tail.point) for tail in splice_tails(model)]
    assert -y.min() < a < y.min() and y.max() < b < 2 - y.max()
    inside = (y_new > a) & (y_new < b)  # inside the splice points: the flow's own density
    scores, declared = model.score_samples(X_new, y_new), by_hand.score_samples(X_new, y_new)
    np.testing.assert_array_equal(scores[inside], declared[inside])
    outside = np.array([-y.min() - 0.5, 2 - y.max() + 0.5])
    assert np.all(np.isfinite(model.score_samples(X_new[:2], outside)))
    assert np.all(by_hand.score_samples(X_new[:2], outside) == -np.inf)
    width, total = np.ptp(y), 0.0
    for grid in (
        a - np.linspace(1.0, 1e-12, 20001) ** 2 * 60 * width,
        a + (b - a) * (1 - np.cos(np.pi * np.linspace(1e-9, 1 - 1e-9, 40001))) / 2,  # dense near both bounds
        b + np.linspace(1e-12, 1.0, 20001) ** 2 * 60 * width,
    ):
        total += np.trapezoid(np.exp(model.score_samples(np.repeat(X[:1], grid.size, axis=0), grid)), grid)
    assert total == pytest.approx(1.0, abs=2e-3)


def test_not_for_constant_or_dequantized_targets():
    X, y = log_linear(200)
    weights = np.ones(200)
    model = FlowRegressor(**FAST)
    # A zero is no edge of a log(y + c) with c its smallest value; a skewed column gets a shifted log below it.
    low, high = inferred_bounds(model, X, (y - y.min())[:, None], weights, 0)[:, 0]
    assert low < 0 and high == np.inf
    assert log_scale_gains(X, np.full((200, 1), 3.0), weights, 0)[0] == -np.inf
    assert log_scale_gains(X[:19], y[:19, None], weights[:19], 0)[0] == -np.inf  # too few rows
    counts = np.round(10 * y) + 1  # integers: dequantized, so modelled as they are
    assert log_scale_gains(X, counts[:, None], weights, 0)[0] > LOG_SCALE_GAIN
    assert not log_scale_columns(model, X, counts[:, None], weights, 0)[0]
    assert log_scale_columns(FlowRegressor(**FAST, dequantize=False), X, counts[:, None], weights, 0)[0]


def test_auto_is_the_shifted_log_given_by_hand():
    X, y = log_linear(120)
    auto = fit_quietly(X, y)
    by_hand = fit_quietly(X, y, bounds=(-y.min(), None))
    for model in (auto, *auto.ensemble_):
        np.testing.assert_array_equal(model.low_, [-y.min()])
    assert not hasattr(auto, "_inferred_target_bounds")  # transient: the fitted low_ holds the choice
    X_new, y_new = log_linear(50, seed=1)
    np.testing.assert_array_equal(auto.score_samples(X_new, y_new), by_hand.score_samples(X_new, y_new))
    assert np.all(auto.predict_interval(X_new) > -y.min())
    # Declared, the bound ends the support; inferred, it does not (a target positive on every training row may
    # not be on new ones): below it the distribution goes on as its lower tail.
    below = -y_new[:3] - y.min()
    assert np.all(by_hand.score_samples(X_new[:3], below) == -np.inf)
    assert np.all(np.isfinite(auto.score_samples(X_new[:3], below)))
    hard, soft = by_hand.predict_quantiles(X_new[:3], [1e-12]), auto.predict_quantiles(X_new[:3], [1e-12])
    assert np.all(hard > -y.min()) and np.all(soft <= hard)


def test_a_negative_target_is_tested_and_modelled_as_its_mirror_image():
    X, y = log_linear(120)
    weights = np.ones(120)
    np.testing.assert_allclose(scale_gains(X, -y[:, None], weights, 0), scale_gains(X, y[:, None], weights, 0))
    np.testing.assert_array_equal(
        inferred_bounds(FlowRegressor(**FAST), X, -y[:, None], weights, 0), [[-np.inf], [y.min()]]
    )
    mirrored, by_hand = fit_quietly(X, -y), fit_quietly(X, -y, bounds=(None, y.min()))
    np.testing.assert_array_equal((mirrored.low_, mirrored.high_), ([-np.inf], [y.min()]))
    X_new, y_new = log_linear(50, seed=1)
    np.testing.assert_array_equal(mirrored.score_samples(X_new, -y_new), by_hand.score_samples(X_new, -y_new))
    # Inferred, the bound does not end the support: above it the distribution goes on as its upper tail, and
    # the density integrates to 1 over the whole line.
    assert np.all(np.isfinite(mirrored.score_samples(X_new[:3], y_new[:3] + y.min())))
    assert np.all(by_hand.score_samples(X_new[:3], y_new[:3] + y.min()) == -np.inf)
    (point,) = [tail.point for tail in splice_tails(mirrored) if tail.sign > 0]
    below = point - np.linspace(1.0, 1e-12, 20001) ** 4 * 4 * (point + y.max())  # dense near the bound
    above = point + np.linspace(1e-12, 1.0, 20001) ** 2 * 60 * np.ptp(y)
    total = sum(
        np.trapezoid(np.exp(mirrored.score_samples(np.repeat(X[:1], grid.size, axis=0), grid)), grid)
        for grid in (below, above)
    )
    assert total == pytest.approx(1.0, abs=2e-3)
    # A negative proportion gets its mirror image's logit, on its mirrored bounds (which contain every value).
    X_p, p = proportions(300)
    low, high = inferred_bounds(FlowRegressor(**FAST), X_p, -p[:, None], np.ones(300), 0)[:, 0]
    np.testing.assert_allclose([low, high], [p.max() - 2, p.min()])  # -(2 - max p) and -(-min p)
    assert low < -p.max() and -p.min() < high
    assert fit_quietly(X_p, -p).high_[0] == high
    # A target of both signs is tested on a shifted log (tests/test_target_shifted_log.py), not its mirror's.
    low, high = inferred_bounds(FlowRegressor(**FAST), X, (y - np.median(y))[:, None], weights, 0)[:, 0]
    assert low < y.min() - np.median(y) and high == np.inf


def test_a_zero_unseen_in_training_scores_finite():
    # A target positive on every training row can be 0 on new ones (protein's RMSD): with the bound at 0,
    # such a row scored -inf, and the mean test log-likelihood with it.
    X, y = log_linear(120)
    model = fit_quietly(X, y)
    assert model.low_[0] < 0
    X_new, y_new = log_linear(50, seed=1)
    y_new[:5] = 0.0
    scores = model.score_samples(X_new, y_new)
    assert np.all(np.isfinite(scores))
    assert np.all(scores[:5] < np.median(scores[5:]))  # a tail, well below typical rows


def test_bounds_given_as_an_array_are_taken_as_given():
    X, y = linear(120)
    model = fit_quietly(X, y, bounds=np.array([0.0, np.inf]))
    np.testing.assert_array_equal(model.low_, [0.0])


def test_log_scale_density_integrates_to_one_on_the_whole_line():
    X, y = log_linear(120)
    model = fit_quietly(X, y)
    width, c = np.ptp(y), y.min()
    # Below the splice point (a width of log(y + c) below the data) an exponential of scale w; above, the flow.
    (point,) = [tail.point for tail in splice_tails(model) if tail.sign < 0]
    assert point == pytest.approx(-c + (2 * c) ** 2 / (y.max() + c), rel=1e-12)
    below = point - np.linspace(1.0, 1e-12, 20001) ** 2 * 60 * width
    above = point + np.linspace(1e-12, 1.0, 20001) ** 4 * 4 * (y.max() - point)  # dense near the bound
    total = 0.0
    for grid in (below, above):
        density = np.exp(model.score_samples(np.repeat(X[:1], grid.size, axis=0), grid))
        assert np.all(density > 0)
        total += np.trapezoid(density, grid)
    assert total == pytest.approx(1.0, abs=2e-3)


def test_linear_target_and_partial_fit_keep_no_bound():
    X, y = linear(120)
    assert fit_quietly(X, y).low_[0] == -np.inf
    X, y = log_linear(120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        streamed = FlowRegressor(random_state=0, **FAST).partial_fit(X, y)
    assert streamed.low_[0] == -np.inf


def test_saved_model_keeps_the_log_scale(tmp_path):
    X, y = log_linear(120)
    model = fit_quietly(X, y)
    model.save(tmp_path / "model.skflow")
    loaded = FlowRegressor.load(tmp_path / "model.skflow")
    np.testing.assert_array_equal(loaded.score_samples(X, y), model.score_samples(X, y))
    np.testing.assert_array_equal(loaded.low_, [-y.min()])


def test_gross_outliers_standardize_the_target_by_its_median_and_robust_spread():
    """Where a few values rule the standard deviation (more than GROSS_SPREAD_RATIO times the interquartile
    range / 1.349), the target is standardized robustly; elsewhere exactly as before. Weights count as
    repeated rows."""
    from skflow._preprocessing import GROSS_SPREAD_RATIO, fit_preprocessing

    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 1))
    none = np.array([-np.inf]), np.array([np.inf])

    def fitted(values, weights=None, robust=True):
        weights = np.ones(len(values)) if weights is None else weights
        return fit_preprocessing(
            values, weights, *none, standardize=True, dequantize=False, tail_bound=3.0, robust=robust
        )

    plain, robust = fitted(y, robust=False), fitted(y)
    np.testing.assert_array_equal([robust.loc, robust.scale], [plain.loc, plain.scale])
    y[0] = -1e6
    spread = np.subtract(*np.percentile(y[:, 0], [75, 25], method="inverted_cdf")) / 1.349
    assert y.std() > GROSS_SPREAD_RATIO * spread
    gross = fitted(y)
    assert gross.robust_scaled[0] and not robust.robust_scaled[0] and plain.robust_scaled is None
    assert gross.loc[0] == np.percentile(y[:, 0], 50, method="inverted_cdf")
    assert gross.scale[0] == pytest.approx(spread, rel=1e-12)
    assert gross.lower_tails[0] and not gross.upper_tails[0]  # the error's side goes through asinh
    assert fitted(y, robust=False).scale[0] == pytest.approx(y.std())
    doubled = fitted(np.vstack([y, y[:50]]))
    weighted = fitted(y, np.r_[np.full(50, 2.0), np.ones(150)])
    np.testing.assert_allclose([weighted.loc, weighted.scale], [doubled.loc, doubled.scale], rtol=1e-12)
    # An integer target with most rows at one value: its spread counts the dequantization noise's.
    counts = np.r_[np.zeros(80), rng.integers(1, 5, 19), 1e6][:, None]
    dequantized = fit_preprocessing(
        counts, np.ones(100), *none, standardize=True, dequantize="auto", tail_bound=3.0, robust=True
    )
    assert dequantized.dequantized[0] and dequantized.loc[0] == 0.0 and dequantized.scale[0] < 1.0


def test_flow_density_keeps_the_mean_and_standard_deviation():
    from skflow import FlowDensity

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    X[0, 0] = -1e6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = FlowDensity(n_transforms=1, max_epochs=1, random_state=0).fit(X)
    assert est.scale_[0] == pytest.approx(X[:, 0].std(), rel=1e-6)


def test_one_gross_error_leaves_the_rest_of_the_distribution_intact():
    """One y = -1e6 among 50 rows near 0: standardized by the mean and standard deviation (1.4e5), the other
    rows lay in a band 1e-5 wide, and the fitted medians missed by 278 with interquartile ranges of 666 where
    the truth's is 0.4."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (350, 1))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 0] + 0.3 * rng.normal(size=350)
    y[0] = -1e6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(n_flows=2, max_epochs=20, random_state=0).fit(X[:50], y[:50])
    quartiles = reg.predict_quantiles(X[50:], [0.25, 0.5, 0.75])
    assert np.median(np.abs(quartiles[:, 1] - y[50:])) < 0.4
    assert np.median(quartiles[:, 2] - quartiles[:, 0]) < 1.0
    assert (np.abs(reg.sample(X[50:100], 200, random_state=0)) > 10).mean() < 0.02


def test_a_gross_error_among_a_flows_validation_rows_does_not_rule_its_latent_scale():
    """Where gross errors rule the target, each flow's latent scale leaves out validation rows far beyond what
    their median |z| implies: one y = -1e6 among a flow's 10 made its scale 4.7 by the mean square, and its
    90% intervals 1,000 wide."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (50, 1))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 0] + 0.3 * rng.normal(size=50)
    y[0] = -1e6
    reg = fit_quietly(X, y, n_flows=10, max_epochs=5, n_transforms=2, base="normal")
    scales = np.array([member.latent_scale_[0] for member in reg._members()])
    assert (scales < 2.0).all(), scales
    widths = np.diff(reg.predict_interval(X[1:], 0.9), axis=1)[:, 0]
    assert np.median(widths) < 20.0  # five epochs: nearly the marginal's 90% interval, 3.4 wide, not 1,000
