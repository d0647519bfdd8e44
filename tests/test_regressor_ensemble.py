"""FlowRegressor(n_flows > 1): the equal-weight mixture of its flows, exact and consistent in every output."""

import copy
import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.integrate import cumulative_trapezoid
from sklearn.exceptions import ConvergenceWarning

import skflow._ensemble as ensemble_module
import skflow._fitting as fitting
from skflow import FlowRegressor
from skflow._boosted_feature import boosted_choices
from skflow._core.rows import effective_rows
from skflow._ensemble import resolved_n_flows
from skflow._flow_choice import layer_choices
from skflow._training_report import kept_start_message

from .conftest import SMALL_REGRESSOR, from_older_state

FAST = {**SMALL_REGRESSOR, "max_epochs": 6, "boosted_feature": False}


def skewed(n, seed):
    """A skewed, heteroscedastic target: the flows disagree where data is thin."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (n, 2))
    y = np.sin(X[:, 0]) + (0.2 + 0.2 * np.abs(X[:, 0])) * rng.gamma(2.0, size=n)
    return X, y


@pytest.fixture(scope="module")
def data():
    return skewed(300, 0)


@pytest.fixture(scope="module")
def ensemble(data):
    return FlowRegressor(n_flows=3, **FAST).fit(*data)


def members(reg):
    return [reg, *reg.ensemble_]


def first_flow(reg):
    """The ensemble's first flow as a model of its own."""
    single = copy.copy(reg)
    single.n_flows, single.ensemble_ = 1, []
    return single


def grid_density(reg, x_row, grid):
    """The ensemble's density of y on ``grid`` for one feature row."""
    return np.exp(reg.score_samples(np.repeat(x_row[None], grid.size, axis=0), grid))


def test_members_are_single_flows_of_their_own_seeds(data, ensemble):
    X, y = data
    assert len(ensemble.ensemble_) == 2
    seeds = [m.random_state for m in ensemble.ensemble_]
    assert len(set(seeds)) == 2 and all(m.n_flows == 1 and m.ensemble_ == [] for m in ensemble.ensemble_)
    # The first flow is exactly the single flow of the same random_state.
    single = FlowRegressor(n_flows=1, **FAST).fit(X, y)
    single_density = single.score_samples(X[:20], y[:20])
    np.testing.assert_array_equal(first_flow(ensemble).score_samples(X[:20], y[:20]), single_density)
    # Each flow holds out its own validation rows and fits its own latent scale.
    scales = [float(m.latent_scale_[0]) for m in members(ensemble)]
    assert len(set(scales)) == 3


def test_a_larger_ensemble_begins_with_the_smaller_ones_flows(data, ensemble):
    """The same seeds in order: n_flows=4 is n_flows=3 plus one flow, so "auto"'s ten flows on small data are
    its five plus five (benchmarks.experiments.ensemble_size_small scores both from one fit)."""
    X, y = data
    larger = FlowRegressor(n_flows=4, **FAST).fit(X, y)
    assert len(larger.ensemble_) == 3
    for smaller_flow, larger_flow in zip(members(ensemble), members(larger)[:3], strict=True):
        larger_density = first_flow(larger_flow).score_samples(X[:20], y[:20])
        np.testing.assert_array_equal(larger_density, first_flow(smaller_flow).score_samples(X[:20], y[:20]))
    assert larger.ensemble_[2].random_state not in {m.random_state for m in ensemble.ensemble_}


@pytest.mark.parametrize(("n_rows", "expected"), [(39, 10), (199, 10), (200, 5), (5000, 5), (None, 5)])
def test_auto_number_of_flows_is_ten_below_two_hundred_rows_and_five_otherwise(n_rows, expected):
    assert resolved_n_flows(FlowRegressor(), n_rows) == expected
    assert resolved_n_flows(FlowRegressor(n_flows=3), n_rows) == 3


def test_auto_fits_ten_flows_on_small_data_and_five_in_partial_fit():
    X, y = skewed(60, 1)
    tiny = {**FAST, "max_epochs": 1, "n_transforms": 1, "hidden_units": (8,), "flow": "spline"}
    assert len(FlowRegressor(**tiny).fit(X, y).ensemble_) == 9
    assert len(FlowRegressor(**tiny).partial_fit(X, y).ensemble_) == 4
    # Rows count by their weights: 150 rows beside 150 of weight 1e-6 are fewer than 200.
    X, y = skewed(300, 2)
    weights = np.r_[np.ones(150), np.full(150, 1e-6)]
    assert len(FlowRegressor(**tiny).fit(X, y, sample_weight=weights).ensemble_) == 9
    assert len(FlowRegressor(**tiny).fit(X, y).ensemble_) == 4
    with pytest.raises(ValueError, match="n_flows"):
        FlowRegressor(n_flows="many").fit(X, y)


def test_effective_rows_is_kishs_number_in_numpy_and_torch():
    assert effective_rows(np.ones(37)) == 37.0  # exact: the row limits compare it with integers
    weights = np.r_[np.ones(30), np.full(30, 1e-6)]
    assert effective_rows(weights) == pytest.approx(30.0, rel=1e-5)
    assert effective_rows(torch.as_tensor(weights)) == pytest.approx(effective_rows(weights), rel=1e-14)


def test_every_auto_row_limit_counts_rows_by_their_weights(monkeypatch):
    """Rows of weight 1e-6 beside rows of weight 1 count as nothing: 60 such rows, half of them light, are 30 to
    the "auto" choices, below their 40, so each flow trains once; 120 are 60 to the comparison with the ridge,
    which holds out 10 rows of weight (not 10 rows, of which 5 would weigh nothing)."""
    seen, fractions = [], []
    original_choosing, original_fraction = ensemble_module.fit_choosing, fitting.held_out_fraction

    def choosing(estimator, features, n_rows, fit):
        seen.append((n_rows, layer_choices(estimator, n_rows), boosted_choices(estimator, n_rows)))
        return original_choosing(estimator, features, n_rows, fit)

    def fraction(estimator, n_rows, conditional):
        fractions.append(original_fraction(estimator, n_rows, conditional))
        return fractions[-1]

    monkeypatch.setattr(ensemble_module, "fit_choosing", choosing)
    monkeypatch.setattr(fitting, "held_out_fraction", fraction)
    params = {**FAST, "max_epochs": 1, "n_transforms": 1, "hidden_units": (8,), "n_flows": 2}
    params.update(flow="auto", boosted_feature="auto")
    X, y = skewed(60, 3)
    FlowRegressor(**params).fit(X, y, sample_weight=np.r_[np.ones(30), np.full(30, 1e-6)])
    assert [round(n, 3) for n, _, _ in seen] == [30.0, 30.0]
    assert all(kinds == [None] and trees == [False] for _, kinds, trees in seen)
    seen.clear()
    FlowRegressor(**params).fit(X, y)
    assert [n for n, _, _ in seen] == [60, 60]
    assert all(len(kinds) == 2 and trees == [False, True] for _, kinds, trees in seen)
    fractions.clear()
    X, y = skewed(120, 4)
    FlowRegressor(**{**params, "flow": "spline"}).fit(X, y, sample_weight=np.r_[np.ones(60), np.full(60, 1e-6)])
    assert fractions and all(f == pytest.approx(10.5 / 60, rel=1e-5) for f in fractions)
    fractions.clear()
    FlowRegressor(**{**params, "flow": "spline"}).fit(X, y)
    assert fractions and all(f == 0.1 for f in fractions)


def test_density_is_the_mean_of_the_flows_densities(data, ensemble):
    X, y = data
    single = [first_flow(ensemble), *ensemble.ensemble_]
    densities = np.exp([m.score_samples(X, y) for m in single])
    np.testing.assert_allclose(np.exp(ensemble.score_samples(X, y)), densities.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(ensemble.predict(X), np.mean([m.predict(X) for m in single], axis=0), rtol=1e-12)


def test_density_integrates_to_one_and_quantiles_solve_its_distribution_function(data, ensemble):
    X, _ = data
    levels = np.array([0.02, 0.1, 0.5, 0.9, 0.98])
    quantiles = ensemble.predict_quantiles(X[:4], levels)
    assert np.all(np.diff(quantiles, axis=1) > 0)
    for row, q in zip(X[:4], quantiles, strict=True):
        grid = np.linspace(q[0] - 8.0, q[-1] + 8.0, 20001)
        cdf = cumulative_trapezoid(grid_density(ensemble, row, grid), grid, initial=0.0)
        assert abs(cdf[-1] - 1.0) < 2e-3
        np.testing.assert_allclose(np.interp(q, grid, cdf), levels, atol=2e-3)
    # The interval is the pair of quantiles (solved as a batch of their own: equal to rounding).
    np.testing.assert_allclose(ensemble.predict_interval(X[:4], 0.8), quantiles[:, [1, 3]], rtol=1e-12)


def test_draws_follow_the_mixture(data, ensemble):
    X, _ = data
    draws = ensemble.sample(X[:2], n_samples=4000, random_state=1)
    assert draws.shape == (2, 4000)
    np.testing.assert_array_equal(draws, ensemble.sample(X[:2], n_samples=4000, random_state=1))
    quantiles = ensemble.predict_quantiles(X[:2], [0.1, 0.5, 0.9])
    below = (draws[:, :, None] < quantiles[:, None, :]).mean(axis=1)
    # Binomial standard error at 4000 draws: at most 0.008.
    np.testing.assert_allclose(below, np.broadcast_to([0.1, 0.5, 0.9], below.shape), atol=0.035)


def test_fits_reproduce_and_survive_save_load_and_pickle(data, ensemble):
    X, y = data
    again = FlowRegressor(n_flows=3, **FAST).fit(X, y)
    np.testing.assert_array_equal(again.score_samples(X, y), ensemble.score_samples(X, y))
    buffer = io.BytesIO()
    ensemble.save(buffer)
    buffer.seek(0)
    loaded = FlowRegressor.load(buffer)
    copied = pickle.loads(pickle.dumps(ensemble))
    for other in (loaded, copied):
        assert len(other.ensemble_) == 2
        np.testing.assert_array_equal(other.score_samples(X, y), ensemble.score_samples(X, y))
        np.testing.assert_array_equal(other.predict_quantiles(X[:5], [0.3]), ensemble.predict_quantiles(X[:5], [0.3]))


def test_a_file_whose_member_has_other_features_is_refused(data, ensemble):
    X, y = data
    state = ensemble.__getstate__()
    state["ensemble_"] = [FlowRegressor(n_flows=1, **FAST).fit(X[:, :1], y)]
    broken = FlowRegressor.__new__(FlowRegressor)
    broken.__setstate__(state)
    buffer = io.BytesIO()
    with pytest.raises(ValueError, match="ensemble_"):
        broken.save(buffer)


def test_flows_with_and_without_the_trees_prediction_save_though_their_means_round_differently():
    # The context's means over one more column (the trees' prediction) may differ from the others' in the
    # last bit; the saved file's check of the members allows that, and nothing more (member_edits below).
    from sklearn.datasets import make_moons

    moons = make_moons(300, noise=0.1, random_state=0)[0] * [2.0, 0.5] + [1.0, 3.0]
    X, y = moons[:, :1], moons[:, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(n_flows=3, max_epochs=2, n_transforms=1, relevance_scaling=False, random_state=1)
        model.fit(X, y)
    locations = [member.x_location_[0] for member in model._members()]
    assert len({member.boosted_feature_ for member in model._members()}) == 2 and len(set(locations)) == 2
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(FlowRegressor.load(buffer).score_samples(X, y), model.score_samples(X, y))


def member_edits(X, y, ensemble):
    """Members that a file could be edited to hold, each with what should refuse it."""
    from skflow import FlowDensity

    other_target = FlowRegressor(n_flows=1, **FAST).fit(X, np.column_stack([y, -y]))
    other_scaling = FlowRegressor(n_flows=1, **FAST).fit(X * 2.0, y)
    nested = copy.copy(ensemble.ensemble_[0])
    nested.ensemble_ = [ensemble.ensemble_[1]]
    yield other_target, "another n_targets_"
    yield other_scaling, "another x_location_"
    yield nested, "members of its own"
    yield FlowDensity(n_transforms=2, hidden_units=(8,), max_epochs=2, random_state=0).fit(X), "not a FlowRegressor"


def test_a_file_whose_member_models_something_else_is_refused(data, ensemble):
    X, y = data
    for member, message in member_edits(X, y, ensemble):
        state = ensemble.__getstate__()
        state["ensemble_"] = [ensemble.ensemble_[0], member]
        broken = FlowRegressor.__new__(FlowRegressor)
        broken.__setstate__(state)
        with pytest.raises(ValueError, match=f"member 1 of the fitted ensemble .*{message}"):
            broken.save(io.BytesIO())


def test_states_from_before_ensembles_load_as_one_flow(data, ensemble):
    X, y = data
    old = from_older_state(ensemble, ("n_flows", "ensemble_"))
    assert old.n_flows == 1 and old.ensemble_ == []
    assert np.isfinite(old.score_samples(X, y)).all()


def test_partial_fit_trains_every_flow(data):
    X, y = data
    reg = FlowRegressor(n_flows=2, **FAST)
    for rows in np.array_split(np.arange(len(X)), 3):
        reg.partial_fit(X[rows], y[rows])
    assert [m.n_iter_ for m in members(reg)] == [3, 3]
    assert all(np.array_equal(m.latent_scale_, [1.0]) for m in members(reg))
    assert np.isfinite(reg.score_samples(X, y)).all()


def test_flows_trained_in_parallel_workers_are_the_same_flows(data, ensemble):
    X, y = data
    parallel = FlowRegressor(n_flows=3, n_jobs=2, **FAST).fit(X, y)
    assert len(parallel.ensemble_) == 2 and parallel.n_iter_ == ensemble.n_iter_
    # The same seeds and single-threaded training; only the workers' thread count for the calibration's
    # matrix products may sum in another order.
    np.testing.assert_allclose(parallel.score_samples(X, y), ensemble.score_samples(X, y), rtol=1e-10)
    np.testing.assert_allclose(parallel.latent_scale_, ensemble.latent_scale_, rtol=1e-10)
    # Flows fitted in other processes still match their parent exactly where saving checks it.
    buffer = io.BytesIO()
    parallel.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(FlowRegressor.load(buffer).score_samples(X, y), parallel.score_samples(X, y))


def ridge_warnings_of_fit(**params):
    """The fitted regressor and the ConvergenceWarnings its fit emitted, on a linear target where a ridge
    regression wins some flows' comparisons."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(160, 3))
    y = X[:, 0] + 0.5 * rng.normal(size=160)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = FlowRegressor(**{**FAST, "n_flows": 4, "boosted_feature": "auto", **params}).fit(X, y)
    return reg, [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


def test_each_warning_of_the_kept_fits_is_emitted_once_with_the_number_of_flows_that_gave_it():
    reg, messages = ridge_warnings_of_fit(max_epochs=8)
    still_improving = [message for message in messages if "max_epochs=8 reached" in message]
    assert len(still_improving) == 1 and still_improving[0].split(" of 4 flows: ")[0] in {"1", "2", "3"}
    assert 0 < sum(member.best_epoch_ == 0 for member in members(reg)) < 4
    # A ridge kept by some flows is a designed member of the mixture: not reported.
    assert not [message for message in messages if "ridge regression" in message]
    # "auto" trains each flow twice; only the kept fits' warnings count, once each with how many flows gave it.
    assert len(messages) == len(set(messages)) and all(" of 4 flows: " in message for message in messages)
    # Workers' warnings reach the caller too, the same ones.
    assert ridge_warnings_of_fit(max_epochs=8, n_jobs=2)[1] == messages


def test_a_ridge_kept_by_every_flow_is_reported():
    _, messages = ridge_warnings_of_fit(max_epochs=4)
    assert messages == [f"4 of 4 flows: {kept_start_message('linear')}"]


def test_mixture_quantiles_do_not_cross_where_its_distribution_function_jumps():
    """A flow with a near point mass at 6e5 (sd 1e-12, below float64's spacing there) and a normal of sd 1
    around it: the mixture's distribution function jumps by 1/2 within one rounding step, where each level
    inside the jump is solved to some float of the step; they keep the order of their levels, given in any
    order."""
    from scipy.stats import norm

    from skflow._ensemble import mixture_quantiles

    location, scales = 6e5, np.array([1e-12, 1.0])

    def cdf_and_density(rows, points):
        u = (points[:, None] - location) / scales
        return norm.cdf(u).mean(axis=1), (norm.pdf(u) / scales).mean(axis=1)

    levels = np.random.default_rng(0).permutation(np.linspace(0.2, 0.8, 601))
    member_quantiles = np.stack([location + norm.ppf(levels)[None, :] * scale for scale in scales])
    quantiles = mixture_quantiles(cdf_and_density, member_quantiles, levels)[0]
    assert (np.diff(quantiles[np.argsort(levels)]) >= 0).all()
    inside = np.abs(levels - 0.5) < 0.2  # levels inside the jump: the quantile is the point mass
    assert np.abs(quantiles[inside] - location).max() <= 4 * np.spacing(location)
    outside = ~inside & (np.abs(levels - 0.5) > 0.3)
    np.testing.assert_allclose(cdf_and_density(None, quantiles[outside])[0], levels[outside], atol=1e-9)
