"""The Yeo-Johnson start's map: about the mean, or from a threshold beyond the data (a shifted log)."""

import numpy as np
import torch
from scipy import stats

from skflow import FlowDensity
from skflow._power_map import LOWER, UPPER, PowerMap, fit_most_likely_map, fit_power_map


def standardized(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(0)) / x.std(0)


def test_a_log_normal_column_gets_its_threshold_and_a_log():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.lognormal(0.0, 0.7, 5000), 5.0 - rng.lognormal(0.0, 0.5, 5000), rng.normal(size=5000)])
    z = standardized(x)
    families, power = fit_most_likely_map(z, np.ones(3, dtype=bool))
    assert families[:2] == [LOWER, UPPER]
    refitted = fit_power_map(z, families)
    for name in ("lambdas", "shift", "scale", "out_loc", "out_scale"):
        np.testing.assert_array_equal(getattr(power, name), getattr(refitted, name))
    # log(1 + u) = log(z - (shift - scale)) + const: the threshold is shift - scale, and x's zero lies at
    # -mean/std in standardized units (5 for the mirrored column).
    true_thresholds = (0.0 - x.mean(0)) / x.std(0), (5.0 - x.mean(0)) / x.std(0)
    np.testing.assert_allclose(power.shift[0] - power.scale[0], true_thresholds[0][0], atol=0.06)
    np.testing.assert_allclose(power.shift[1] + power.scale[1], true_thresholds[1][1], atol=0.06)
    np.testing.assert_allclose(power.lambdas[:2], [0.0, 2.0], atol=0.06)
    assert (power.lambdas[2], power.shift[2], power.scale[2]) == (1.0, 0.0, 1.0)  # a normal column stays
    mapped, _ = power(z)
    assert np.abs(stats.skew(mapped[:, :2])).max() < 0.12  # from 2.2 and -1.6; s.e. 0.035


def test_the_maps_log_det_is_the_log_of_its_derivative_on_both_branches():
    power = PowerMap(
        np.array([0.0, 2.0, 0.4]),
        np.array([-1.2, 1.5, 0.3]),
        np.array([0.07, 0.2, 1.3]),
        out_loc=np.array([2.0, -1.0, 0.0]),
        out_scale=np.array([0.7, 0.5, 1.1]),
    )
    # Rows on both sides of each origin: the rows beyond a threshold take the other branch.
    z = np.random.default_rng(1).uniform(-3.0, 3.0, size=(64, 3))
    step = 1e-6
    mapped, log_det = power(z)
    slopes = [
        (power(z + step * e)[0][:, j] - power(z - step * e)[0][:, j]) / (2 * step) for j, e in enumerate(np.eye(3))
    ]
    np.testing.assert_allclose(log_det, np.log(np.column_stack(slopes)).sum(1), rtol=1e-6, atol=1e-6)
    assert np.all(np.diff(power(np.sort(z, axis=0))[0], axis=0) > 0)  # increasing in every column


def test_log_normal_data_starts_at_its_true_density():
    rng = np.random.default_rng(2)
    cov = np.array([[0.5, 0.3], [0.3, 0.4]])
    latent = stats.multivariate_normal(np.zeros(2), cov)
    X = np.exp(latent.rvs(3000, random_state=rng))
    train, test = X[:2400], X[2400:]
    est = FlowDensity(n_transforms=1, hidden_units=(8,), max_epochs=1, random_state=0).fit(train)
    assert est.flow_.config["power"]
    truth = latent.logpdf(np.log(test)) - np.log(test).sum(1)
    # The start is (nearly) the true family: a Gaussian after a log with a fitted threshold.
    assert truth.mean() - est.score_samples(test).mean() < 0.02 * 2
    np.testing.assert_allclose(est.inverse_transform(est.transform(test)), test, rtol=1e-6)


def test_flows_with_and_without_the_maps_output_standardization_rebuild_from_their_config():
    from skflow._core import build_flow, flow_from_config

    fixed = dict(loc=np.zeros(2), scale=np.ones(2), power=np.array([0.0, 1.0]), n_transforms=1, hidden_units=(4,))
    # Flows saved before the map's output was standardized have no such layer, and must load as they were.
    for extra in ({}, {"power_loc": np.array([0.5, 0.0]), "power_scale": np.array([2.0, 1.0])}):
        flow = build_flow(2, **fixed, **extra)
        assert flow.config["power_standardized"] == bool(extra)
        rebuilt = flow_from_config(flow.config)
        rebuilt.load_state_dict(flow.state_dict(), strict=True)
        x = torch.randn(8, 2, dtype=torch.float64)
        torch.testing.assert_close(rebuilt.double().log_prob(x), flow.double().log_prob(x))
    old_config = {key: value for key, value in flow.config.items() if key != "power_standardized"}
    assert len(flow_from_config(old_config).preprocessing) == len(flow.preprocessing) - 1


def test_a_column_constant_in_the_fitted_rows_is_left_alone_without_warnings():
    import warnings

    rows = np.zeros((900, 2))
    rows[:, 1] = np.random.default_rng(3).lognormal(size=900)
    rows[5, 0] = 30.0  # one rare value: the evenly spaced rows a map is fitted on never see it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        families, power = fit_most_likely_map(rows[::3], np.ones(2, dtype=bool))
    assert families[0] is None and (power.lambdas[0], power.shift[0], power.scale[0]) == (1.0, 0.0, 1.0)
    assert families[1] is not None and power.lambdas[1] != 1.0
