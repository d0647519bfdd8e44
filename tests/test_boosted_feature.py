"""The boosted feature: gradient-boosted trees' out-of-fold prediction in a FlowRegressor's context."""

import io
import pickle
import warnings
import zipfile

import numpy as np
import pytest
import torch
from scipy.integrate import trapezoid
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from skflow import FlowRegressor
from skflow import _boosted_feature as boosted
from skflow import _flow_choice as choice
from skflow._boosted_feature import fit_boosted_trees, predict_trees
from skflow._core.rows import weighted_mean
from skflow._linear_start import KEPT_SCORE, VALIDATION_ROWS, fit_ridge_gaussian, ridge_gaussian

from .conftest import SMALL_REGRESSOR, fit_recording_trainings

# Splines only, features as given: these tests count and rebuild the trees' trainings, not the layer kinds'
# (test_mixture_cdf.py) or the noise features' scaling (test_feature_relevance.py).
FAST = {**SMALL_REGRESSOR, "max_epochs": 8, "flow": "spline", "relevance_scaling": False}


def steps(n, seed=0, n_features=6):
    """A target that jumps with one feature and with an interaction of two, among irrelevant features."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, n_features))
    y = 3.0 * (X[:, 0] > 0) + 2.0 * ((X[:, 1] > 0.5) & (X[:, 2] < 0)) + 0.3 * rng.normal(size=n)
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = steps(300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FlowRegressor(boosted_feature=True, n_flows=2, **FAST).fit(X, y)


def test_trees_as_arrays_are_scikit_learns_fold_models_of_the_leaf_size_with_the_least_out_of_fold_error():
    X, y = steps(250, seed=1)
    # A noisy stepped target and a noiseless smooth one: the folds should choose different leaf sizes.
    Y = np.column_stack([y, X[:, 3] ** 2])
    weights = np.random.default_rng(0).uniform(0.5, 2.0, 250)
    trees, out_of_fold = fit_boosted_trees(X, Y, weights, seed=7)
    X_new = np.random.default_rng(2).uniform(-1.5, 1.5, (100, 6))
    expected_oof, expected_new, chosen = np.empty_like(Y), np.zeros((100, 2)), []
    for k in range(2):
        by_leaf = {}
        # Fitted to the target standardized by its weighted mean and standard deviation, in its units.
        center = np.average(Y[:, k], weights=weights)
        spread = np.sqrt(np.average((Y[:, k] - center) ** 2, weights=weights))
        for leaf in boosted.LEAF_SIZES:
            oof, new = np.empty(250), np.zeros(100)
            for train, held_out in KFold(5, shuffle=True, random_state=7).split(X):
                model = HistGradientBoostingRegressor(min_samples_leaf=leaf, random_state=7)
                with threadpool_limits(1):  # OpenMP threads waiting on busy cores are slow, not wrong
                    model.fit(X[train], (Y[train, k] - center) / spread, sample_weight=weights[train])
                oof[held_out] = center + spread * model.predict(X[held_out])
                new += (center + spread * model.predict(X_new)) / 5
            by_leaf[leaf] = (np.average((oof - Y[:, k]) ** 2, weights=weights), oof, new)
        leaf = min(by_leaf, key=lambda size: by_leaf[size][0])
        chosen.append(leaf)
        _, expected_oof[:, k], expected_new[:, k] = by_leaf[leaf]
    assert chosen[1] < chosen[0]
    np.testing.assert_allclose(out_of_fold, expected_oof, rtol=1e-12)
    np.testing.assert_allclose(predict_trees(trees, X_new), expected_new, rtol=1e-10, atol=1e-12)
    boosted.check_trees(trees, n_features=6, n_targets=2)


def test_the_trees_and_the_fit_are_the_same_in_any_units_of_the_target():
    X, y = steps(150, seed=3)
    trees, out_of_fold = fit_boosted_trees(X, y[:, None], np.ones(150), seed=0)
    for factor in (1e-6, -3.0, 1e6):
        scaled_trees, scaled_out_of_fold = fit_boosted_trees(X, factor * y[:, None], np.ones(150), seed=0)
        np.testing.assert_allclose(scaled_out_of_fold / factor, out_of_fold, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(predict_trees(scaled_trees, X) / factor, predict_trees(trees, X), atol=1e-12)
    # Trained flows on the trees' prediction (base="normal": no ridge kept) score the same, less log |factor|.
    params = {**FAST, "boosted_feature": True, "n_flows": 2, "base": "normal"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = FlowRegressor(**params).fit(X, y)
        assert all(member.best_epoch_ > 0 and member.boosted_feature_ for member in fit._members())
        for factor in (1e-6, 1e6):
            scaled = FlowRegressor(**params).fit(X, factor * y)
            np.testing.assert_allclose(
                scaled.score_samples(X, factor * y) + np.log(factor), fit.score_samples(X, y), atol=1e-6
            )


def test_trees_of_a_target_with_gross_errors_or_far_from_zero_are_read_and_checked():
    X, y = steps(200, seed=4)
    spoiled = y.copy()
    spoiled[:3] = [-1e10, 5e9, 1e10]
    # Robust units (median and spread): the trees' arrays still reproduce scikit-learn, so the feature stays on.
    fitted = fit_boosted_trees(X, spoiled[:, None], np.ones(200), 0, robust=np.array([True]))
    assert fitted is not None
    assert np.sqrt(np.mean((fitted[1][3:, 0] - y[3:]) ** 2)) < 0.7  # the trees' errors on the clean rows
    # Far from 0 relative to its spread, a wrong tree is still caught (compared in standardized units).
    offset = (1e7 + 1e-3 * y)[:, None]
    (nodes, roots, baseline), _ = fit_boosted_trees(X, offset, np.ones(200), 0)
    units = np.array([boosted.target_units(offset[:, 0], np.ones(200))])
    average = predict_trees((nodes, roots, baseline), X)
    assert boosted._reproduces((nodes, roots, baseline), X, average, units)
    zeroed = nodes.copy()
    zeroed[:, boosted.VALUE] = 0.0
    assert not boosted._reproduces((zeroed, roots, baseline), X, average, units)


def test_equal_weights_fit_the_same_fold_models_as_no_weights():
    # fit_boosted_trees passes no weights where all are equal, sparing scikit-learn's weighted binning (a
    # weighted percentile per bin edge); 330 rows leave each fold more distinct values than bins, where
    # that binning applies.
    X, y = steps(330, seed=3)
    folds = list(KFold(5, shuffle=True, random_state=0).split(X))
    _, out_of_fold, average = boosted._fold_models(X, y, None, folds, 0, 20)
    _, unit_out_of_fold, unit_average = boosted._fold_models(X, y, np.ones(330), folds, 0, 20)
    np.testing.assert_array_equal(out_of_fold, unit_out_of_fold)
    np.testing.assert_array_equal(average, unit_average)
    # Other equal weights scale the float32 gradients and hessians alike: the same trees, to rounding.
    _, scaled_out_of_fold, _ = boosted._fold_models(X, y, np.full(330, 2.5), folds, 0, 20)
    np.testing.assert_allclose(out_of_fold, scaled_out_of_fold, rtol=0, atol=1e-7 * np.abs(y).max())


@pytest.mark.parametrize("column", [boosted.VALUE, boosted.LEFT])
def test_a_tree_layout_that_does_not_reproduce_scikit_learn_turns_the_feature_off(monkeypatch, column):
    X, y = steps(200)
    real = boosted._tree_array

    def misread(tree, offset, n_folds):
        array = real(tree, offset, n_folds)
        array[:, column] *= 0.5  # leaf values, or child indices that point back: a loop
        return array

    monkeypatch.setattr(boosted, "_tree_array", misread)
    with pytest.warns(UserWarning, match="boosted feature is off"):
        reg = FlowRegressor(boosted_feature=True, n_flows=1, **FAST).fit(X, y)
    assert len(reg.tree_roots_) == 0 and not reg.boosted_feature_
    assert reg.x_location_.shape == (6,)


def test_the_context_holds_the_trees_prediction_and_the_density_stays_normalized(fitted):
    assert all(member.boosted_feature_ for member in fitted._members())
    assert fitted.x_location_.shape == (7,) and fitted.flow_.config["context_features"] == 7
    for x in ([0.5, 0.8, -0.5, 0.0, 0.0, 0.0], [-0.5, 0.0, 0.5, 0.2, -0.1, 0.9]):
        grid = np.linspace(-6.0, 10.0, 8001)
        density = np.exp(fitted.score_samples(np.tile(x, (grid.size, 1)), grid))
        assert trapezoid(density, grid) == pytest.approx(1.0, abs=2e-3)


def test_auto_keeps_for_each_flow_the_fit_whose_kept_model_validates_better(monkeypatch):
    X, y = steps(300, seed=3)
    auto, states = fit_recording_trainings(monkeypatch, X, y, n_flows=1, **FAST)
    assert [state["boosted_feature_"] for state in states] == [False, True]
    scores = [choice.kept_validation_score(state) for state in states]  # the flow's, or the ridge's
    chosen = max((False, True), key=lambda use: (scores[use], not use))
    assert auto.boosted_feature_ == chosen and not hasattr(auto, KEPT_SCORE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forced = FlowRegressor(n_flows=1, boosted_feature=chosen, **FAST).fit(X, y)
    X_test, y_test = steps(200, seed=4)
    np.testing.assert_array_equal(auto.score_samples(X_test, y_test), forced.score_samples(X_test, y_test))


def test_a_kept_ridge_competes_with_its_own_score_not_the_flow_it_replaced(monkeypatch):
    # 60 rows and 3 epochs: most flows keep a ridge regression, which scored above every epoch of the flow.
    X, y = steps(60, seed=5)
    auto, states = fit_recording_trainings(monkeypatch, X, y, n_flows=3, **{**FAST, "max_epochs": 3})
    ridges = [state for state in states if state["best_epoch_"] == 0]
    assert len(states) == 6 and ridges
    assert all((KEPT_SCORE in state) == (state["best_epoch_"] == 0) for state in states)
    assert all(state[KEPT_SCORE] > max(state["validation_scores_"]) for state in ridges)
    for member, pair in zip(auto._members(), (states[0:2], states[2:4], states[4:6]), strict=True):
        score = [choice.kept_validation_score(state) for state in pair]
        assert member.boosted_feature_ == max((False, True), key=lambda use: (score[use], not use))
    assert choice.kept_validation_score({"validation_scores_": [-2.0, -1.5]}) == -1.5
    assert choice.kept_validation_score({"validation_scores_": [-2.0], KEPT_SCORE: -1.0}) == -1.0


def test_each_training_records_its_kept_models_score_of_each_validation_row_and_the_model_keeps_none(monkeypatch):
    # The per-row scores that paired comparisons of trainings read (benchmarks/experiments/choice_rules.py).
    X, y = steps(150, seed=5)
    auto, states = fit_recording_trainings(monkeypatch, X, y, n_flows=3, **{**FAST, "max_epochs": 10})
    assert {state["best_epoch_"] == 0 for state in states} == {True, False}  # ridges and trained flows
    for state in states:
        rows, weights = state[VALIDATION_ROWS]
        assert rows.shape == weights.shape and len(rows) >= 10
        mean = weighted_mean(rows, weights)
        if state["best_epoch_"] == 0:  # a kept ridge: exactly the score it competed with
            assert mean == state[KEPT_SCORE]
        else:  # the trained flow at its best epoch, scored again
            assert mean == pytest.approx(max(state["validation_scores_"]), abs=1e-4)
    assert not any(hasattr(member, VALIDATION_ROWS) or hasattr(member, KEPT_SCORE) for member in auto._members())


def test_trees_lift_a_stepped_target_that_the_flow_alone_learns_slowly():
    X, y = steps(400, seed=5)
    X_test, y_test = steps(2000, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = {
            use: FlowRegressor(n_flows=1, boosted_feature=use, **{**FAST, "max_epochs": 30}).fit(X, y)
            for use in (False, True)
        }
    gain = scores[True].score_samples(X_test, y_test).mean() - scores[False].score_samples(X_test, y_test).mean()
    assert gain > 0.1


@pytest.mark.parametrize("n_rows, fraction", [(39, 0.1), (300, 0.0)])
def test_auto_fits_no_trees_outside_its_rows_or_without_validation_rows(n_rows, fraction):
    X, y = steps(n_rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(n_flows=2, validation_fraction=fraction, **FAST).fit(X, y)
    assert len(reg.tree_roots_) == 0 and reg.tree_baseline_.shape == (0,)
    assert not any(member.boosted_feature_ for member in reg._members())


@pytest.mark.parametrize(
    "n_rows, fraction, choices",
    [
        (39, 0.1, [False]),
        (40, 0.1, [False, True]),
        (20000, 0.1, [False, True]),
        (20001, 0.1, [False]),
        (20000, 0.0, [False]),
    ],
)
def test_auto_tries_both_trainings_from_40_to_20000_rows_with_validation_rows(n_rows, fraction, choices):
    # From 40 rows the ridge comparison holds out 10 rows, which also choose; power-plant's 8,611 training
    # rows are inside: there the trees gained 0.13 nats a row.
    assert boosted.boosted_choices(FlowRegressor(validation_fraction=fraction), n_rows) == choices
    assert boosted.boosted_choices(FlowRegressor(boosted_feature=True), n_rows) == [True]
    assert boosted.boosted_choices(FlowRegressor(boosted_feature=False), n_rows) == [False]


@pytest.mark.parametrize(
    "base, fraction, n_rows, choices",
    [
        ("normal", 0.1, 60, [False]),
        ("normal", 0.1, 100, [False, True]),
        ("normal", 0.05, 150, [False]),
        ("linear", 0.05, 150, [False, True]),
    ],
)
def test_auto_needs_ten_rows_to_choose_on(base, fraction, n_rows, choices):
    # Without the ridge comparison nothing raises a small validation fraction: 60 rows would choose on 6.
    estimator = FlowRegressor(base=base, validation_fraction=fraction)
    assert boosted.boosted_choices(estimator, n_rows) == choices


def test_two_targets_get_one_prediction_each(fitted):
    X, y = steps(200, seed=8)
    Y = np.column_stack([y, X[:, 3] + 0.1 * y])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(boosted_feature=True, n_flows=1, **FAST).fit(X, Y)
    assert reg.tree_baseline_.shape == (2,) and reg.x_location_.shape == (8,)
    assert set(reg.tree_roots_[:, 1]) == {0, 1}
    assert np.isfinite(reg.score_samples(X[:20], Y[:20])).all()
    assert reg.sample(X[:3], n_samples=4, random_state=0).shape == (3, 4, 2)


def test_save_load_and_pickle_keep_the_trees_and_every_prediction(fitted):
    X, y = steps(50, seed=9)
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    for copy in (FlowRegressor.load(buffer), pickle.loads(pickle.dumps(fitted))):
        np.testing.assert_array_equal(copy.score_samples(X, y), fitted.score_samples(X, y))
        np.testing.assert_array_equal(copy.predict_interval(X), fitted.predict_interval(X))
        np.testing.assert_array_equal(copy.tree_nodes_, fitted.tree_nodes_)


def broken_copies(fitted):
    """States a file could be edited to hold, each with what should refuse it."""
    state = fitted.__getstate__()
    nodes = state["tree_nodes_"].copy()
    inner = np.flatnonzero(nodes[:, boosted.FEATURE] >= 0)[3]
    nodes[inner, boosted.LEFT] = inner  # a loop: evaluation would never reach a leaf
    yield {**state, "tree_nodes_": nodes}, "malformed"
    nodes = state["tree_nodes_"].copy()
    nodes[inner, boosted.FEATURE] = 6  # a feature the model does not have
    yield {**state, "tree_nodes_": nodes}, "malformed"
    yield {**state, "x_location_": state["x_location_"][:6], "x_scale_": state["x_scale_"][:6]}, "context"
    yield {**state, "boosted_feature_": False}, "context"
    yield {**state, "context_range_": state["context_range_"][:, :3]}, "context"
    yield {**state, "context_range_": state["context_range_"][::-1]}, "context"  # low above high


def test_loading_refuses_trees_or_context_scaling_that_disagree_with_the_flow(fitted):
    for state, message in broken_copies(fitted):
        with pytest.raises(ValueError, match=message):
            FlowRegressor.__new__(FlowRegressor).__setstate__(state)


def test_a_state_from_before_the_boosted_feature_loads_as_fitted_without_it():
    X, y = steps(150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(boosted_feature=False, n_flows=1, **FAST).fit(X, y)
    state = reg.__getstate__()
    for name in ("tree_nodes_", "tree_roots_", "tree_baseline_", "boosted_feature_", "boosted_feature"):
        del state[name]
    old = FlowRegressor.__new__(FlowRegressor)
    old.__setstate__(state)
    assert old.boosted_feature is False and not old.boosted_feature_
    np.testing.assert_array_equal(old.score_samples(X, y), reg.score_samples(X, y))


def test_partial_fit_goes_on_with_the_fitted_trees_and_a_stream_has_none(fitted):
    X, y = steps(120, seed=10)
    before = fitted.tree_nodes_.copy()
    continued = pickle.loads(pickle.dumps(fitted)).partial_fit(X, y)
    np.testing.assert_array_equal(continued.tree_nodes_, before)
    assert np.isfinite(continued.score_samples(X, y)).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        streamed = FlowRegressor(boosted_feature=True, n_flows=2, **FAST).partial_fit(X, y)
    assert len(streamed.tree_roots_) == 0 and streamed.x_location_.shape == (6,)
    said = [w for w in caught if "partial_fit trains without the boosted feature" in str(w.message)]
    assert len(said) == 1 and said[0].filename == __file__  # once for the ensemble, at the caller's line
    for quiet in (FlowRegressor(n_flows=2, **FAST), FlowRegressor(boosted_feature=False, n_flows=2, **FAST), fitted):
        with warnings.catch_warnings(record=True) as caught:  # "auto", False, and True after fit (trees kept)
            warnings.simplefilter("always")
            pickle.loads(pickle.dumps(quiet)).partial_fit(X, y)
        assert not [w for w in caught if "boosted feature" in str(w.message)]


def test_a_saved_ensemble_stores_its_trees_once_and_each_flow_loads_its_own_copy(fitted):
    buffer = io.BytesIO()
    fitted.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        stored = [np.load(io.BytesIO(archive.read(name))) for name in archive.namelist() if name.endswith(".npy")]
    assert sum(array.shape == fitted.tree_nodes_.shape for array in stored) == 1
    buffer.seek(0)
    loaded = FlowRegressor.load(buffer)
    (member,) = loaded.ensemble_
    np.testing.assert_array_equal(member.tree_nodes_, loaded.tree_nodes_)
    assert not np.shares_memory(member.tree_nodes_, loaded.tree_nodes_)


def test_fit_ridge_gaussian_on_some_columns_is_the_ridge_of_those_columns_with_zero_weight_elsewhere():
    rng = np.random.default_rng(3)
    rows, context = torch.as_tensor(rng.normal(size=(60, 1))), rng.normal(size=(60, 5))
    weights = torch.as_tensor(rng.uniform(0.5, 2.0, 60))
    weight, bias, log_scale, (center, matrix, offset), mixing, degrees = fit_ridge_gaussian(
        rows, context, weights, None, 0, None, slice(3, None)
    )
    assert mixing is None  # one target
    expected = ridge_gaussian(rows.numpy(), context[:, 3:], weights.numpy())
    np.testing.assert_array_equal(weight[:, :3], 0.0)
    np.testing.assert_allclose(weight[:, 3:], expected[0], rtol=1e-12)
    np.testing.assert_allclose(bias, expected[1], rtol=1e-12)
    np.testing.assert_allclose(log_scale, expected[2], rtol=1e-12)
    # Its leverage, too, sees only those columns.
    np.testing.assert_array_equal(center[:3], 0.0)
    np.testing.assert_array_equal(matrix[:3], 0.0)
    np.testing.assert_array_equal(matrix[:, :3], 0.0)
    np.testing.assert_allclose(center[3:], expected[3].center, rtol=1e-12)
    np.testing.assert_allclose(matrix[3:, 3:], expected[3].matrix, rtol=1e-12)
    assert offset == pytest.approx(expected[3].offset, rel=1e-12)
    # Student's t with that fit's residual degrees of freedom: 60 rows of weights 0.5 to 2 (about 54 by their
    # weights) less the fit's few parameters.
    assert degrees == pytest.approx(expected[3].residual_degrees_of_freedom, rel=1e-12)
    assert 48 < degrees < 54


def test_a_flow_can_be_replaced_by_a_gaussian_around_the_trees_prediction_alone():
    # A step in one feature among 40 noise features, 200 rows, one epoch: neither the flow nor the ridge of
    # every column comes near a linear map of the trees' prediction.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(200, 40))
    y = 3.0 * (X[:, 0] > 0) + 0.3 * rng.normal(size=200)
    settings = {**FAST, "max_epochs": 1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(boosted_feature=True, n_flows=1, **settings).fit(X, y)
    assert reg.best_epoch_ == 0 and reg.flow_.config["linear_shift"]
    (shift,) = [m for m in reg.flow_.modules() if type(m).__name__ == "LinearShift"]
    weight = shift.weight.detach().numpy()
    assert (weight[:, :40] == 0).all() and (weight[:, 40:] != 0).all()
    X_test = rng.normal(size=(2000, 40))
    y_test = 3.0 * (X_test[:, 0] > 0) + 0.3 * rng.normal(size=2000)
    assert reg.score_samples(X_test, y_test).mean() > -1.0  # a Gaussian of sd 1.5 around the mean scores -1.8
