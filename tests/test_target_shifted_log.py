"""bounds="auto" of FlowRegressor: a target that piles against an edge it need not have (below a ceiling, or of both
signs) is tested on the shifted log on that side."""

import numpy as np
import pytest

import skflow._target_scale as target_scale
from skflow import FlowRegressor
from skflow._target_scale import LOG_SCALE_GAIN, SKEWED_TARGET, inferred_bounds, log_scale_gains
from skflow._target_tails import splice_tails

from .test_target_scale import FAST, fit_quietly

pytestmark = pytest.mark.usefixtures("trees_tested_once")  # the same rows are tested several times


def below_a_ceiling(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``10 - lognormal``: positive, skewed to the left against the ceiling 10."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, 10.0 - np.exp(0.4 * X[:, 0] + 0.6 * rng.normal(size=n))


def bounds_of(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return inferred_bounds(FlowRegressor(**FAST), X, y[:, None], np.ones(len(y)), 0)[:, 0]


def test_a_target_below_a_ceiling_gets_the_mirrored_shifted_log():
    X, y = below_a_ceiling(300)
    assert y.min() > 0  # positive, so log(y + c) is tested too, and loses
    assert log_scale_gains(X, y[:, None], np.ones(300), 0)[0] > LOG_SCALE_GAIN
    auto = fit_quietly(X, y)
    low, high = auto.low_[0], auto.high_[0]
    assert low == -np.inf and y.max() < high < 10.0 + np.ptp(y)
    by_hand = fit_quietly(X, y, bounds=(None, high))
    X_new, y_new = below_a_ceiling(50, seed=1)
    inside = y_new < high
    np.testing.assert_array_equal(auto.score_samples(X_new, y_new)[inside], by_hand.score_samples(X_new, y_new)[inside])
    # Inferred, the bound is soft: above it the distribution goes on as its upper tail, and the density
    # integrates to 1 over the whole line.
    assert np.all(np.isfinite(auto.score_samples(X_new[:3], np.full(3, high + 1.0))))
    (point,) = [tail.point for tail in splice_tails(auto) if tail.sign > 0]
    below = point - np.linspace(1.0, 1e-12, 20001) ** 4 * 6 * np.ptp(y)  # dense near the splice point
    above = point + np.linspace(1e-12, 1.0, 20001) ** 2 * 60 * np.ptp(y)
    total = sum(
        np.trapezoid(np.exp(auto.score_samples(np.repeat(X[:1], grid.size, axis=0), grid)), grid)
        for grid in (below, above)
    )
    assert total == pytest.approx(1.0, abs=2e-3)


def test_the_shifted_log_of_a_target_of_both_signs_moves_with_its_origin_and_units():
    X, y = below_a_ceiling(300)
    both_signs = 4.0 - y  # a log-normal less 6: skewed to the right, about 4% of it positive
    assert both_signs.min() < 0 < both_signs.max()
    weights = np.ones(300)
    bounds, gains, _ = target_scale.tested_scales(X, both_signs[:, None], weights, 0)
    ((low, high),) = bounds.T
    assert gains[0] > LOG_SCALE_GAIN and high == np.inf
    assert both_signs.min() - np.ptp(y) < low < both_signs.min()
    moved_bounds, moved_gains, _ = target_scale.tested_scales(X, 1e3 * both_signs[:, None] - 7.0, weights, 0)
    np.testing.assert_allclose(moved_bounds[:, 0], [1e3 * low - 7.0, np.inf], rtol=1e-9)
    np.testing.assert_allclose(moved_gains, gains, atol=1e-9)


def test_skewness_from_the_mean_alone_keeps_y():
    # 3 - exp(x): the column leans left by more than SKEWED_TARGET, but its noise around the trees' mean is
    # additive: the trees' test finds the log less likely.
    rng = np.random.default_rng(3)
    X = rng.uniform(-2, 2, (300, 2))
    y = 3.0 - np.exp(X[:, 0]) + 0.2 * rng.normal(size=300)
    centered = y - y.mean()
    assert np.mean(centered**3) / np.mean(centered**2) ** 1.5 < -SKEWED_TARGET and y.min() < 0 < y.max()
    assert -np.inf < log_scale_gains(X, y[:, None], np.ones(300), 0)[0] < LOG_SCALE_GAIN  # tested, and kept y


def test_a_pile_at_the_edge_keeps_y():
    X, y = below_a_ceiling(300)
    amounts = np.where(np.arange(300) % 4 == 0, 0.0, 10.0 - y) - 0.5  # a quarter at the smallest value
    assert log_scale_gains(X, amounts[:, None], np.ones(300), 0)[0] == -np.inf
    assert not np.isfinite(bounds_of(X, amounts)).any()


def test_one_gross_error_gives_no_log():
    # -1e6 among 200 values near 0 makes the column's skewness -14 (about -sqrt(n)), but its bulk does not lean.
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 1))
    y = np.sin(X[:, 0]) + 0.3 * rng.normal(size=200)
    y[0] = -1e6
    assert log_scale_gains(X, y[:, None], np.ones(200), 0)[0] == -np.inf


def test_not_among_several_targets():
    # Their bounds end the support (one target's tails alone are spliced), and no origin keeps new values inside.
    X, y = below_a_ceiling(300)
    weights = np.ones(300)
    Y = np.column_stack([y, X[:, 0] + np.random.default_rng(1).normal(size=300)])
    assert not np.isfinite(inferred_bounds(FlowRegressor(**FAST), X, Y, weights, 0)).any()
    assert np.isfinite(bounds_of(X, y)).any()


def test_a_proportion_leaning_toward_one_keeps_the_logit():
    # Its mirror image leans right, but its edges are the logit's bounds: no shifted log competes with them.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    p = 1 / (1 + np.exp(-(X[:, 0] + 2.5 + 0.6 * rng.normal(size=150))))
    for y, (low, high) in ((p, (-p.min(), 2 - p.max())), (-p, (p.max() - 2, p.min()))):
        np.testing.assert_array_equal(bounds_of(X, y), [low, high])


def test_the_logit_needs_every_row_inside_not_the_tested_subset(monkeypatch):
    # The test's trees see every k-th row; one value outside (0, 1) among the others ends the logit's domain.
    monkeypatch.setattr(target_scale, "MAX_ROWS", 60)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    p = 1 / (1 + np.exp(-(X[:, 0] + 0.6 * rng.normal(size=150))))
    p[1] = -0.5  # row 1: not among rows 0, 3, 6, ...
    log_gains, logit_gains = target_scale.scale_gains(X, p[:, None], np.ones(150), 0)
    assert logit_gains[0] == -np.inf and not np.isnan(log_gains[0])
