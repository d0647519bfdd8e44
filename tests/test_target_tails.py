"""The exponential tails beyond a one-target flow's widened training range (skflow._target_tails)."""

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.stats import kstest, norm

from skflow import FlowRegressor
from skflow._conditional_flow import cdf_and_density
from skflow._target_tails import (
    SplicePoints,
    splice_points,
    spliced_cdf_and_density,
    spliced_draws,
    spliced_log_density,
    spliced_quantiles,
)

from .conftest import from_older_state

# A standard normal "flow" spliced at -2 and 1.5 (w = 0.7): F and p are norm's, its latent the point itself.
SPLICE = SplicePoints(-2.0, 1.5, 0.7)


def identity_latent(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points


def spliced_cdf(y: np.ndarray) -> np.ndarray:
    return spliced_cdf_and_density(SPLICE, identity_latent, y, np.zeros(y.size, int), norm.cdf(y), norm.pdf(y))[0]


def piecewise_integral(density, edges: list[float], points_per_piece: list[int]) -> float:
    """Trapezoid integral of ``density`` between consecutive ``edges``, each piece's ends nudged inside it: the
    spliced density jumps at the splice points."""
    total = 0.0
    for start, stop, n in zip(edges[:-1], edges[1:], points_per_piece, strict=True):
        y = np.linspace(np.nextafter(start, stop), np.nextafter(stop, start), n)
        total += trapezoid(density(y), y)
    return total


def test_spliced_density_is_normalized_and_the_flows_inside():
    def density(y):
        return np.exp(spliced_log_density(SPLICE, identity_latent, y, norm.logpdf(y)))

    edges = [-40.0, SPLICE.below, SPLICE.above, 40.0]
    assert piecewise_integral(density, edges, [200_001] * 3) == pytest.approx(1.0, abs=1e-8)
    y = np.linspace(-40.0, 40.0, 400_001)
    log_density = spliced_log_density(SPLICE, identity_latent, y, norm.logpdf(y))
    inside = (y >= SPLICE.below) & (y <= SPLICE.above)
    np.testing.assert_array_equal(log_density[inside], norm.logpdf(y[inside]))
    # Each tail keeps the flow's mass, and the density beyond decays with scale w.
    above = y > SPLICE.above
    assert piecewise_integral(density, [SPLICE.above, 40.0], [200_001]) == pytest.approx(norm.sf(1.5), rel=1e-8)
    np.testing.assert_allclose(np.diff(log_density[above]), -np.diff(y[above]) / SPLICE.width, rtol=1e-9)
    cdf, density = spliced_cdf_and_density(SPLICE, identity_latent, y, np.zeros(y.size, int), norm.cdf(y), norm.pdf(y))
    np.testing.assert_allclose(density, np.exp(log_density), rtol=1e-12)
    np.testing.assert_allclose(np.diff(cdf)[::1000], (trapezoid_steps(density, y))[::1000], rtol=1e-6, atol=1e-14)


def trapezoid_steps(density: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.5 * (density[1:] + density[:-1]) * np.diff(y)


def test_spliced_quantiles_and_draws_invert_the_spliced_distribution():
    levels = np.array([1e-12, 1e-4, 0.01, 0.3, 0.9, 0.99, 1 - 1e-6, 1 - 1e-12])
    quantiles = spliced_quantiles(SPLICE, identity_latent, levels, norm.ppf(levels)[None, :])[0]
    np.testing.assert_allclose(spliced_cdf(quantiles), levels, rtol=1e-9)
    assert quantiles[-1] == pytest.approx(SPLICE.above + SPLICE.width * np.log(norm.sf(SPLICE.above) / 1e-12))
    # A draw keeps its level Phi(u): it is the spliced quantile of that level.
    u = np.random.default_rng(0).normal(size=(1, 2000)) * 2.0
    drawn = spliced_draws(SPLICE, identity_latent, u, u)
    # (rtol: a level near 1 in float64 keeps fewer digits of 1 - tau than the draw's log Phi(-u).)
    np.testing.assert_allclose(drawn, spliced_quantiles(SPLICE, identity_latent, norm.cdf(u), u), rtol=1e-7)
    # Continuous at the splice points, from both sides.
    for point in (SPLICE.below, SPLICE.above):
        np.testing.assert_allclose(spliced_cdf(np.array([point - 1e-9, point + 1e-9])), norm.cdf(point), atol=1e-9)


@pytest.fixture(scope="module")
def outlier_fit():
    """One data-entry error (y = 100) among 100 training rows near 0: the upper tail gets an asinh, and the
    flows' tails beyond the data grew exponentially (0.9975 quantiles beyond 1e24 before the splice)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    y = X[:, 0] + 0.5 * rng.normal(size=600)
    y[0] = 100.0
    reg = FlowRegressor(n_flows=2, max_epochs=20, random_state=0).fit(X[:100], y[:100])
    return reg, X[100:], y[:100]


def test_outliers_leave_tails_that_stay_near_the_data(outlier_fit):
    reg, X_new, y = outlier_fit
    splice = splice_points(reg)
    width = 100.0 - y.min()
    assert (splice.below, splice.above, splice.width) == (y.min() - width, 100.0 + width, width)
    # Every mixture quantile lies below the largest of its flows', each at most b + w log(1 / (1 - tau)).
    top = reg.predict_quantiles(X_new, [1 - 1e-6])[:, 0]
    assert (top <= splice.above + splice.width * np.log(1e6) + 1e-6).all(), top.max()
    draws = reg.sample(X_new[:50], 2000, random_state=0)
    assert np.isfinite(draws).all() and np.abs(draws).max() < splice.above + splice.width * 20


def test_fitted_spliced_density_integrates_to_one_and_matches_its_draws(outlier_fit):
    reg, X_new, _ = outlier_fit
    splice = splice_points(reg)
    # Dense where the flow's density lives, coarse along the exponential tails (scale w ~ 100).
    edges = [splice.below - 40 * splice.width, splice.below, splice.above, splice.above + 40 * splice.width]
    for row in X_new[:2]:

        def density(y, row=row):
            return np.exp(reg.score_samples(np.tile(row, (y.size, 1)), y))

        assert piecewise_integral(density, edges, [4001, 300_001, 4001]) == pytest.approx(1.0, abs=1e-3)
    member = reg.ensemble_[0]  # one flow: its draws follow its spliced distribution function
    context = member._context(X_new[:1])
    drawn = member.sample(X_new[:1], 4000, random_state=1)[0]
    statistic = kstest(drawn, lambda v: cdf_and_density(member, context, v, np.zeros(v.size, int))[0])
    assert statistic.pvalue > 1e-3, statistic


def test_no_splice_for_several_targets_a_constant_target_or_an_older_model(outlier_fit):
    reg, X_new, _ = outlier_fit
    older = from_older_state(reg, ("target_range_",))
    assert splice_points(older) is None
    inside = np.linspace(-2.0, 3.0, 7)
    np.testing.assert_allclose(older.score_samples(X_new[:7], inside), reg.score_samples(X_new[:7], inside))
    member = reg.ensemble_[0]
    member.target_range_ = np.array([[1.0], [1.0]])
    assert splice_points(member) is None
    member.target_range_ = reg.target_range_
    member.n_targets_ = 2
    assert splice_points(member) is None
    member.n_targets_ = 1


def test_a_bound_inside_a_splice_point_keeps_the_flows_tail(outlier_fit):
    reg = outlier_fit[0]
    member = reg.ensemble_[0]
    low, high = member.low_.copy(), member.high_.copy()
    try:
        below = splice_points(member).below
        member.low_, member.high_ = np.array([below - 1.0]), np.array([150.0])
        assert (splice_points(member).below, splice_points(member).above) == (below, np.inf)
        member.low_ = np.array([below])
        assert splice_points(member).below == -np.inf
    finally:
        member.low_, member.high_ = low, high
