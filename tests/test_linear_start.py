"""FlowRegressor(base="linear"): a flow that does not beat a ridge regression on validation rows is replaced by it."""

import io

import numpy as np
import pytest
import torch
from scipy.stats import norm
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV

from skflow import FlowRegressor
from skflow._core import build_flow
from skflow._core.rows import MIN_VALIDATION_ROWS, validation_split
from skflow._fitting import draw_seed
from skflow._linear_start import RELATIVE_ALPHAS, comparison_validation_fraction, ridge_gaussian

from .conftest import ONE_FLOW_ALONE, SMALL_REGRESSOR, autograd_log_abs_det, perturb_parameters

FAST = {**SMALL_REGRESSOR, **ONE_FLOW_ALONE}


def linear_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.5, -2.0, 0.0] + 0.7 * rng.normal(size=n)


@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_gaussian_is_ridge_cv_with_its_leave_one_out_noise(weighted):
    rng = np.random.default_rng(0)
    C = rng.normal(size=(50, 4))
    Y = C @ rng.normal(size=(4, 2)) + rng.normal(size=(50, 2))
    w = rng.uniform(0.5, 2.0, 50) if weighted else np.ones(50)
    weight, bias, log_scale = ridge_gaussian(Y, C, w)
    # The same penalties in RidgeCV's units (it does not normalize the weights).
    centred = (C - np.average(C, axis=0, weights=w)) * np.sqrt(w / w.sum())[:, None]
    alphas = RELATIVE_ALPHAS * np.linalg.svd(centred, compute_uv=False).max() ** 2 * w.sum()
    reference = RidgeCV(alphas=alphas, store_cv_results=True).fit(C, Y, sample_weight=w)
    np.testing.assert_allclose(weight, reference.coef_, atol=1e-12)
    np.testing.assert_allclose(bias, reference.intercept_, atol=1e-12)
    chosen = int(np.argmin(np.abs(alphas - reference.alpha_)))
    loo_mse = reference.cv_results_[:, :, chosen].sum(axis=0) / w.sum()
    np.testing.assert_allclose(np.exp(2 * log_scale), loo_mse, rtol=1e-10)


def test_linear_shift_log_det_and_inverse():
    flow = build_flow(
        2, n_transforms=2, hidden_units=(8,), context_features=3, linear_shift=(np.ones((2, 3)), [0, 0], [0, 0])
    )
    flow = perturb_parameters(flow, 0.3).double()
    x, c = torch.randn(6, 2, dtype=torch.float64), torch.randn(1, 3, dtype=torch.float64)
    forward = lambda rows: flow(rows, c.expand(rows.shape[0], -1))  # noqa: E731
    z, log_det = forward(x)
    torch.testing.assert_close(log_det, autograd_log_abs_det(forward, x), atol=1e-8, rtol=1e-8)
    back, log_det_inverse = flow.inverse(z, c.expand(6, -1))
    torch.testing.assert_close(back, x, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(log_det_inverse, -log_det, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("flow", ["auto", "mixture_cdf"])  # its other layers the identity, whatever their kind
def test_kept_ridge_model_is_the_ridge_gaussian_of_every_row_in_the_targets_units_and_is_not_rescaled(flow):
    X, y = linear_data(120, 1)
    y = 4.0 * y + 30.0
    weights = np.random.default_rng(2).uniform(0.5, 2.0, 120)
    # One epoch at a tiny learning rate: the flow stays near the standard normal, which the ridge beats.
    with pytest.warns(ConvergenceWarning, match="ridge regression"):
        params = {**FAST, "learning_rate": 1e-6, "flow": flow}
        reg = FlowRegressor(max_epochs=1, **params).fit(X, y, weights)
    assert reg.best_epoch_ == 0 and reg.flow_.config["linear_shift"]
    # Compared on the validation rows, then refitted on all of them; its leave-one-out noise is not recalibrated.
    np.testing.assert_array_equal(reg.latent_scale_, [1.0])
    context = (X - reg.x_location_) / reg.x_scale_
    standardized = ((y - reg.location_) / reg.scale_)[:, None]
    weight, bias, log_scale = ridge_gaussian(standardized, context, weights)
    mean = reg.location_[0] + reg.scale_[0] * (context @ weight[0] + bias[0])
    expected = norm.logpdf(y, mean, reg.scale_[0] * np.exp(log_scale[0]))
    np.testing.assert_allclose(reg.score_samples(X, y), expected, rtol=1e-5)
    # The one it was compared with, fitted on the training rows alone, is a different model.
    generator = torch.Generator().manual_seed(draw_seed(reg))
    train = np.sort(validation_split(120, reg.validation_fraction, generator, torch.device("cpu"))[0].numpy())
    assert not np.allclose(ridge_gaussian(standardized[train], context[train], weights[train])[0], weight, rtol=1e-3)


def test_ridge_model_is_kept_on_a_small_linear_target_and_beats_the_normal_base():
    X, y = linear_data(400, 3)
    train, test = slice(0, 80), slice(80, None)
    scores = {}
    # Splines: with mixture-CDF layers as a second candidate (flow="auto"), a trained flow validated higher than
    # the ridge on these 80 rows' 20 validation rows by chance and scored 0.135 nats a row below it on the test
    # rows (docs/regression_design_notes.md, "Each flow choosing its layers").
    for base in ("linear", "normal"):
        reg = FlowRegressor(base=base, max_epochs=30, flow="spline", **FAST).fit(X[train], y[train])
        scores[base] = reg.score(X[test], y[test]), np.mean(reg.score_samples(X[test], y[test]))
        if base == "linear":
            assert reg.best_epoch_ == 0 and reg.flow_.config["linear_shift"]
    truth = np.mean(norm.logpdf(y[test], X[test] @ [1.5, -2.0, 0.0], 0.7))
    assert scores["linear"][1] > scores["normal"][1] + 0.05
    assert scores["linear"][1] > truth - 0.1  # within sampling error of the true density
    assert scores["linear"][0] > 0.85  # R²


def test_nonlinear_target_keeps_the_trained_flow_and_saved_states_before_base_load_as_normal():
    rng = np.random.default_rng(4)
    X = rng.uniform(-3, 3, (300, 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=300)
    reg = FlowRegressor(max_epochs=20, **FAST).fit(X, y)
    assert reg.best_epoch_ > 0 and not reg.flow_.config["linear_shift"]
    buffer = io.BytesIO()
    reg.save(buffer)
    buffer.seek(0)
    loaded = FlowRegressor.load(buffer)
    assert loaded.base == "linear"
    np.testing.assert_array_equal(loaded.score_samples(X, y), reg.score_samples(X, y))
    # A model saved before the linear base: its flow's config has no "linear_shift" and it had no base.
    state = reg.__getstate__()
    del state["base"]
    state["flow_"]["config"].pop("linear_shift")
    restored = FlowRegressor.__new__(FlowRegressor)
    restored.__setstate__(state)
    assert restored.get_params()["base"] == "normal"
    np.testing.assert_array_equal(restored.score_samples(X, y), reg.score_samples(X, y))


def test_under_forty_rows_no_flow_is_trained_and_the_model_is_the_ridge_of_every_row():
    X, y = linear_data(30, 6)  # 10% of 30 rows is 3, under MIN_VALIDATION_ROWS: no comparison is possible
    epochs = []
    with pytest.warns(ConvergenceWarning, match="30 rows hold out 3 for validation, fewer than the 10"):
        reg = FlowRegressor(callback=lambda info: epochs.append(info.epoch), **FAST).fit(X, y)
    assert reg.flow_.config["linear_shift"] and reg.best_epoch_ == 0 and reg.n_iter_ == 0
    assert reg.loss_curve_ == [] and epochs == []
    np.testing.assert_array_equal(reg.latent_scale_, [1.0])
    context = (X - reg.x_location_) / reg.x_scale_
    weight, bias, log_scale = ridge_gaussian(((y - reg.location_) / reg.scale_)[:, None], context, np.ones(30))
    mean = reg.location_[0] + reg.scale_[0] * (context @ weight[0] + bias[0])
    np.testing.assert_allclose(reg.score_samples(X, y), norm.logpdf(y, mean, reg.scale_[0] * np.exp(log_scale[0])))
    # base="normal" trains its flow on the same rows.
    assert FlowRegressor(base="normal", max_epochs=3, **FAST).fit(X, y).n_iter_ > 0
    # Under 10 rows none would validate: the ridge still, unless validation_fraction=0 asks for the flow.
    with pytest.warns(ConvergenceWarning, match="9 rows hold out 0 for validation"):
        assert FlowRegressor(**FAST).fit(X[:9], y[:9]).flow_.config["linear_shift"]
    unvalidated = FlowRegressor(validation_fraction=0.0, max_epochs=3, **FAST).fit(X[:9], y[:9])
    assert not unvalidated.flow_.config["linear_shift"] and unvalidated.n_iter_ == 3


@pytest.mark.parametrize("n_rows", [40, 41, 60, 99, 104, 105, 200])
def test_small_fits_hold_out_enough_rows_to_compare_the_flow_with_the_ridge(n_rows):
    fraction = comparison_validation_fraction(0.1, n_rows)
    held_out = len(validation_split(n_rows, fraction, torch.Generator().manual_seed(0), torch.device("cpu"))[1])
    assert held_out == max(MIN_VALIDATION_ROWS, int(0.1 * n_rows))


def test_the_validation_fraction_is_kept_where_raising_it_would_hold_out_too_much_or_none_was_asked():
    assert comparison_validation_fraction(0.1, 39) == 0.1  # a quarter of 39 rows is under 10
    assert comparison_validation_fraction(0.0, 60) == 0.0
    assert comparison_validation_fraction(0.3, 60) == 0.3


def test_sixty_rows_of_a_nonlinear_target_compare_the_trained_flow_with_the_ridge():
    # 10% of 60 rows is 6, under MIN_VALIDATION_ROWS: the ridge used to be kept unscored, whatever the target.
    rng = np.random.default_rng(5)
    X = rng.uniform(-3, 3, (1060, 1))
    y = np.sin(2 * X[:, 0]) + 0.1 * rng.normal(size=1060)
    reg = FlowRegressor(max_epochs=60, **FAST).fit(X[:60], y[:60])
    assert reg.best_epoch_ > 0 and not reg.flow_.config["linear_shift"]
    ridge = RidgeCV().fit(X[:60], y[:60])
    ridge_score = np.mean(norm.logpdf(y[60:], ridge.predict(X[60:]), np.std(y[:60] - ridge.predict(X[:60]))))
    assert np.mean(reg.score_samples(X[60:], y[60:])) > ridge_score + 0.3
