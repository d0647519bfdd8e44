"""FlowRegressor(base="linear"): a flow that does not beat a ridge regression on validation rows is replaced by it."""

import io
import json

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal, multivariate_t, norm
from scipy.stats import t as student_t
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV

from skflow import FlowRegressor
from skflow._core import build_flow, flow_from_config
from skflow._core.rows import MIN_VALIDATION_ROWS, validation_split
from skflow._core.transforms import IndexedContext
from skflow._fitting import draw_seed
from skflow._linear_start import (
    MAX_DEGREES_OF_FREEDOM,
    MIN_DEGREES_OF_FREEDOM,
    RELATIVE_ALPHAS,
    comparison_validation_fraction,
    noise_correlation,
    ridge_gaussian,
)

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
    Y = C @ rng.normal(size=(4, 2)) + rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], size=50)
    w = rng.uniform(0.5, 2.0, 50) if weighted else np.ones(50)
    weight, bias, log_scale, leverage, correlation = ridge_gaussian(Y, C, w)
    # The same penalties in RidgeCV's units (it does not normalize the weights).
    centred = (C - np.average(C, axis=0, weights=w)) * np.sqrt(w / w.sum())[:, None]
    alphas = RELATIVE_ALPHAS * np.linalg.svd(centred, compute_uv=False).max() ** 2 * w.sum()
    reference = RidgeCV(alphas=alphas, store_cv_results=True).fit(C, Y, sample_weight=w)
    np.testing.assert_allclose(weight, reference.coef_, atol=1e-12)
    np.testing.assert_allclose(bias, reference.intercept_, atol=1e-12)
    chosen = int(np.argmin(np.abs(alphas - reference.alpha_)))
    loo_mse = reference.cv_results_[:, :, chosen].sum(axis=0) / w.sum()
    # A new row's leverage: the weighted mean's variance, 1 / Kish's effective number of rows, and the slopes'.
    effective_rows = w.sum() ** 2 / (w**2).sum()
    gram = (C - leverage.center).T @ (w[:, None] * (C - leverage.center)) + reference.alpha_ * np.eye(4)
    new = rng.normal(size=(7, 4))
    slopes = np.einsum("ij,jk,ik->i", new - leverage.center, np.linalg.inv(gram) * w.sum(), new - leverage.center)
    found = leverage.offset + np.einsum("ij,jk,ik->i", new - leverage.center, leverage.matrix, new - leverage.center)
    np.testing.assert_allclose(found, (1 + slopes) / effective_rows, rtol=1e-10)
    # The noise: the leave-one-out mean square over 1 + the training rows' mean leverage (the hat matrix's trace,
    # the fit's degrees of freedom, over the effective number of rows).
    hat = (
        np.sqrt(w)[:, None]
        * np.c_[np.ones(50), C]
        @ np.linalg.solve(
            np.c_[np.ones(50), C].T @ (w[:, None] * np.c_[np.ones(50), C]) + np.diag([0.0, *[reference.alpha_] * 4]),
            np.c_[np.ones(50), C].T * np.sqrt(w),
        )
    )
    np.testing.assert_allclose(np.exp(2 * log_scale), loo_mse / (1 + np.trace(hat) / effective_rows), rtol=1e-10)
    # The noise's correlation: the leave-one-out residuals', shrunk towards 0 by Schaefer and Strimmer's rule.
    left_out = (Y - C @ reference.coef_.T - reference.intercept_) / (1 - np.diag(hat))[:, None]
    standardized = left_out / np.sqrt(np.average(left_out**2, axis=0, weights=w))
    products = standardized[:, 0] * standardized[:, 1]
    sample = np.average(products, weights=w)
    shrinkage = np.sum((w / w.sum()) ** 2 * (products - sample) ** 2) / sample**2
    assert 0.05 < shrinkage < 0.5
    np.testing.assert_allclose(correlation[0, 1], (1 - shrinkage) * sample, rtol=1e-10)
    np.testing.assert_allclose(np.diag(correlation), 1.0)


def test_the_noise_correlation_is_shrunk_away_where_it_is_noise_and_kept_where_rows_pin_it_down():
    rng = np.random.default_rng(9)
    independent = rng.normal(size=(15, 3))
    assert noise_correlation(independent, np.ones(15)) is None  # shrunk to the identity
    correlated = rng.multivariate_normal([0, 0], [[1.0, 0.8], [0.8, 1.0]], size=3000)
    assert noise_correlation(correlated, np.ones(3000))[0, 1] == pytest.approx(0.8, abs=0.02)
    assert noise_correlation(correlated[:, :1], np.ones(3000)) is None  # one target


def test_the_leverage_counts_only_the_directions_the_training_rows_span():
    rng = np.random.default_rng(1)
    C, y = rng.normal(size=(8, 30)), rng.normal(size=(8, 1))  # more features than rows
    leverage = ridge_gaussian(y, C, np.ones(8))[3]
    centred = C - leverage.center
    outside = rng.normal(size=30)
    outside -= np.linalg.pinv(centred) @ (centred @ outside)  # orthogonal to every centred row
    h = lambda c: leverage.offset + (c - leverage.center) @ leverage.matrix @ (c - leverage.center)  # noqa: E731
    assert h(leverage.center + 10 * outside) == pytest.approx(1 / 8, rel=1e-9)  # the mean's alone
    assert h(leverage.center + centred[0]) > 1 / 8
    # Constant features span nothing: the mean's leverage everywhere, and finite intervals at any value.
    with pytest.warns(ConvergenceWarning):
        reg = FlowRegressor(random_state=0, **ONE_FLOW_ALONE).fit(np.full((8, 1), 0.1), np.arange(8.0))
    assert np.isfinite(reg.predict_interval(np.array([[0.1], [7.0]]))).all()


def ridge_model(reg, X, y, weights):
    """The kept ridge's log-density of ``(X, y)``, from :func:`ridge_gaussian` of every row: Student's t with the
    fit's residual degrees of freedom (the normal from MAX_DEGREES_OF_FREEDOM on)."""
    context = (X - reg.x_location_) / reg.x_scale_
    standardized = ((y - reg.location_) / reg.scale_)[:, None]
    weight, bias, log_scale, leverage, _ = ridge_gaussian(standardized, context, weights)
    mean = reg.location_[0] + reg.scale_[0] * (context @ weight[0] + bias[0])
    centred = context - leverage.center
    h = leverage.offset + np.einsum("ij,jk,ik->i", centred, leverage.matrix, centred)
    scale = reg.scale_[0] * np.exp(log_scale[0]) * np.sqrt(1 + h)
    degrees = max(leverage.residual_degrees_of_freedom, MIN_DEGREES_OF_FREEDOM)
    if degrees >= MAX_DEGREES_OF_FREEDOM:
        return norm.logpdf(y, mean, scale)
    return student_t.logpdf(y, degrees, mean, scale)


def test_a_ridge_on_about_as_many_features_as_rows_covers_its_estimates_uncertainty():
    """12 rows of 10 features: the estimate's variance at a new row is most of the prediction's. Without the
    leverage the 90% intervals covered 0.76 of new rows on these draws (0.31 on the worst); with it, 0.93."""
    coverage = []
    for draw in range(6):
        rng = np.random.default_rng(draw)
        X = rng.normal(size=(512, 10))
        y = X @ rng.normal(size=10) + rng.normal(size=512)
        with pytest.warns(ConvergenceWarning, match="ridge regression is the model"):
            reg = FlowRegressor(random_state=0, **ONE_FLOW_ALONE).fit(X[:12], y[:12])
        low, high = reg.predict_interval(X[12:]).T
        coverage.append(np.mean((low <= y[12:]) & (y[12:] <= high)))
    assert np.mean(coverage) > 0.87 and min(coverage) > 0.7


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


def assert_exact_and_rebuilt_from_its_config(flow, x, c):
    """``flow``'s log-det against autograd, row by row (each row its own context), its inverse, and the same
    log-densities from a flow rebuilt from its config and state."""
    for row in range(x.shape[0]):
        forward = lambda rows, row=row: flow(rows, c[row : row + 1].expand(rows.shape[0], -1))  # noqa: E731
        torch.testing.assert_close(forward(x[row : row + 1])[1], autograd_log_abs_det(forward, x[row : row + 1]))
    z, log_det = flow(x, c)
    back, log_det_inverse = flow.inverse(z, c)
    torch.testing.assert_close(back, x, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(log_det_inverse, -log_det)
    rebuilt = flow_from_config(flow.config).double()
    rebuilt.load_state_dict(flow.state_dict())
    torch.testing.assert_close(rebuilt.log_prob(x, c), flow.log_prob(x, c))


def test_linear_shift_with_leverage_is_the_gaussian_whose_variance_grows_with_it_and_saves_and_loads():
    rng = np.random.default_rng(5)
    weight, bias, log_scale = rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=2)
    root = rng.normal(size=(3, 3))
    leverage = (rng.normal(size=3), root @ root.T, 0.1)
    flow = build_flow(
        2, n_transforms=2, hidden_units=(8,), context_features=3, linear_shift=(weight, bias, log_scale, leverage)
    ).double()
    x, c = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    centred = c.numpy() - leverage[0]
    h = leverage[2] + np.einsum("ij,jk,ik->i", centred, leverage[1], centred)
    scale = np.exp(log_scale) * np.sqrt(1 + h)[:, None]
    expected = norm.logpdf(x.numpy(), c.numpy() @ weight.T + bias, scale).sum(axis=1)
    np.testing.assert_allclose(flow.log_prob(x, c).detach().numpy(), expected, rtol=1e-6)  # float32 numbers
    assert_exact_and_rebuilt_from_its_config(flow, x, c)
    # The same numbers from distinct context rows and an index (quantiles and draws pass it so).
    indexed = IndexedContext(c[:2], torch.tensor([0, 1, 1, 0, 1]))
    torch.testing.assert_close(flow(x, indexed)[1], flow(x, indexed.expanded())[1])
    # A config of before the leverage (none) builds the plain layer.
    assert flow.config["linear_shift_leverage"]
    plain = build_flow(2, n_transforms=2, hidden_units=(8,), context_features=3, linear_shift=(weight, bias, log_scale))
    assert "linear_shift_leverage" not in plain.config
    assert not any("leverage" in key for key in flow_from_config(plain.config).state_dict())


def test_linear_shift_with_mixing_is_the_gaussian_of_correlated_noise_and_saves_and_loads():
    rng = np.random.default_rng(6)
    weight, bias, log_scale = rng.normal(size=(3, 2)), rng.normal(size=3), 0.3 * rng.normal(size=3)
    mixing = np.tril(rng.normal(size=(3, 3)), -1) + np.eye(3)
    leverage = (rng.normal(size=2), np.diag([0.2, 0.5]), 0.05)
    flow = build_flow(
        3,
        n_transforms=2,
        hidden_units=(8,),
        context_features=2,
        linear_shift=(weight, bias, log_scale, leverage, mixing),
    ).double()
    x, c = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    root = mixing * np.exp(log_scale)  # the noise covariance's Cholesky factor
    h = leverage[2] + np.einsum("ij,jk,ik->i", c.numpy() - leverage[0], leverage[1], c.numpy() - leverage[0])
    expected = [
        multivariate_normal(c_row @ weight.T + bias, (1 + h_row) * root @ root.T).logpdf(x_row)
        for x_row, c_row, h_row in zip(x.numpy(), c.numpy(), h, strict=True)
    ]
    np.testing.assert_allclose(flow.log_prob(x, c).detach().numpy(), expected, rtol=1e-6)  # float32 numbers
    assert_exact_and_rebuilt_from_its_config(flow, x, c)
    assert flow.config["linear_shift_mixing"]
    plain = build_flow(3, n_transforms=2, hidden_units=(8,), context_features=2, linear_shift=(weight, bias, log_scale))
    assert "linear_shift_mixing" not in plain.config
    assert not any("mixing" in key for key in flow_from_config(plain.config).state_dict())


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
    np.testing.assert_allclose(reg.score_samples(X, y), ridge_model(reg, X, y, weights), rtol=1e-5)
    # The one it was compared with, fitted on the training rows alone, is a different model.
    context = (X - reg.x_location_) / reg.x_scale_
    standardized = ((y - reg.location_) / reg.scale_)[:, None]
    generator = torch.Generator().manual_seed(draw_seed(reg))
    train = np.sort(validation_split(120, reg.validation_fraction, generator, torch.device("cpu"))[0].numpy())
    compared = ridge_gaussian(standardized[train], context[train], weights[train])[0]
    assert not np.allclose(compared, ridge_gaussian(standardized, context, weights)[0], rtol=1e-3)


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
    np.testing.assert_allclose(reg.score_samples(X, y), ridge_model(reg, X, y, np.ones(30)))
    # base="normal" trains its flow on the same rows.
    assert FlowRegressor(base="normal", max_epochs=3, **FAST).fit(X, y).n_iter_ > 0
    # Under 10 rows none would validate: the ridge still, unless validation_fraction=0 asks for the flow.
    with pytest.warns(ConvergenceWarning, match="9 rows hold out 0 for validation"):
        assert FlowRegressor(**FAST).fit(X[:9], y[:9]).flow_.config["linear_shift"]
    unvalidated = FlowRegressor(validation_fraction=0.0, max_epochs=3, **FAST).fit(X[:9], y[:9])
    assert not unvalidated.flow_.config["linear_shift"] and unvalidated.n_iter_ == 3


def test_a_ridge_of_several_targets_correlates_their_noise_as_the_fit_found_it():
    rng = np.random.default_rng(7)
    noise_covariance = np.array([[1.0, 0.85], [0.85, 1.0]])

    def rows(n):
        X = rng.normal(size=(n, 3))
        return X, np.c_[X @ [1.0, -1.0, 0.5], X @ [0.5, 0.0, 2.0]] + rng.multivariate_normal(
            [0, 0], noise_covariance, n
        )

    (X, Y), (X_test, Y_test) = rows(30), rows(2000)
    with pytest.warns(ConvergenceWarning, match="fewer than the 10"):
        reg = FlowRegressor(**FAST).fit(X, Y)
    # In the targets' units, ridge_gaussian's model with the correlation it found: the noise whitened by the
    # covariance's Cholesky factor L diag(d) is the standard multivariate t of the fit's residual degrees of
    # freedom.
    context = (X_test - reg.x_location_) / reg.x_scale_
    weight, bias, log_scale, leverage, correlation = ridge_gaussian(
        (Y - reg.location_) / reg.scale_, (X - reg.x_location_) / reg.x_scale_, np.ones(30)
    )
    assert 0.6 < correlation[0, 1] < 0.95
    assert 20 < leverage.residual_degrees_of_freedom < 27  # 30 rows less about 4 parameters a target
    centred = context - leverage.center
    h = leverage.offset + np.einsum("ij,jk,ik->i", centred, leverage.matrix, centred)
    root = np.exp(log_scale)[:, None] * np.linalg.cholesky(correlation)  # L diag(d)
    noise = (Y_test - reg.location_) / reg.scale_ - (context @ weight.T + bias)
    whitened = np.linalg.solve(root, noise.T).T / np.sqrt(1 + h)[:, None]
    t = multivariate_t(np.zeros(2), np.eye(2), df=leverage.residual_degrees_of_freedom)
    expected = t.logpdf(whitened) - np.log(np.diag(root) * reg.scale_).sum() - np.log1p(h)
    found = reg.score_samples(X_test, Y_test)
    np.testing.assert_allclose(found, expected, rtol=1e-6)
    swapped = FlowRegressor(**FAST).fit(X, Y[:, ::-1])  # the joint density does not depend on the targets' order
    np.testing.assert_allclose(swapped.score_samples(X_test, Y_test[:, ::-1]), found, rtol=1e-5)
    # Near the truth; the same fit with uncorrelated noise is far behind it.
    truth = multivariate_normal([0, 0], noise_covariance).logpdf(
        Y_test - np.c_[X_test @ [1.0, -1.0, 0.5], X_test @ [0.5, 0.0, 2.0]]
    )
    means = reg.location_ + reg.scale_ * (context @ weight.T + bias)
    uncorrelated = norm.logpdf(Y_test, means, reg.scale_ * np.exp(log_scale) * np.sqrt(1 + h)[:, None])
    assert truth.mean() - found.mean() < 0.3  # -2.18 and -2.39: 9 coefficients and 3 noise numbers from 30 rows
    assert found.mean() - uncorrelated.sum(axis=1).mean() > 0.4  # -2.91
    # Saved in the safe format and loaded, it scores the same; its draws are correlated.
    buffer = io.BytesIO()
    reg.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(FlowRegressor.load(buffer).score_samples(X_test, Y_test), found)
    draws = reg.sample(X_test[:1], n_samples=4000, random_state=0)[0]
    assert np.corrcoef(draws.T)[0, 1] == pytest.approx(correlation[0, 1], abs=0.05)


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


def test_the_ridge_leverage_experiment_runs_both_ways_and_restores_the_ridge(tmp_path):
    from benchmarks.experiments import ridge_leverage as experiment
    from skflow import _linear_start

    ridge = _linear_start._ridge
    out = tmp_path / "ridge_leverage.jsonl"
    experiment.main(["--quick", "--out", str(out)])
    without, with_leverage = (json.loads(line) for line in out.read_text().splitlines())
    assert not without["leverage"] and with_leverage["leverage"]
    assert with_leverage["coverage_90"] > without["coverage_90"]  # 12 rows of 10 features: 0.61 -> 0.79
    assert _linear_start._ridge is ridge
