"""The exponential tails beyond a one-target flow's widened training range (skflow._target_tails)."""

import copy
from dataclasses import astuple

import numpy as np
import pytest
from scipy.integrate import trapezoid
from scipy.special import expit, log_ndtr
from scipy.stats import kstest, norm

from skflow import FlowRegressor
from skflow._conditional_flow import _latent_and_log_density, cdf_and_density
from skflow._target_tails import (
    Tail,
    splice_tails,
    spliced_cdf_and_density,
    spliced_inverse,
    spliced_log_density,
    spliced_quantiles,
    support_bounds,
)

from .conftest import from_older_state

# Each row's "flow" is N(MU[row], SIGMA[row]); training targets in [-0.6, 0.1] (w = 0.7) put the splice points at
# A = -1.3 and B = 0.8; BOUNDED has a bound at H = 1.2 above, where the upper exponential is cut.
MU, SIGMA = np.array([0.0, 0.4, -0.3]), np.array([1.0, 0.6, 1.5])
A, B, H = -1.3, 0.8, 1.2
TAILS = [Tail(A, -1, 0.7, np.inf), Tail(B, 1, 0.7, np.inf)]
BOUNDED = [TAILS[0], Tail(B, 1, 0.7, H - B)]


def normal_latent(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (points - MU[rows]) / SIGMA[rows]


def spliced(tails: list[Tail], row: int, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-density, distribution function and density of row ``row`` at ``y``."""
    rows = np.full(y.size, row)
    flow = norm(MU[row], SIGMA[row])
    log_density = spliced_log_density(tails, lambda r, p: normal_latent(rows[r], p), y, flow.logpdf(y))
    cdf, density = spliced_cdf_and_density(tails, normal_latent, y, rows, flow.cdf(y), flow.pdf(y))
    return log_density, cdf, density


def piecewise_integral(density, edges: list[float], points_per_piece: int) -> float:
    """Trapezoid integral of ``density`` between consecutive ``edges``, each piece's ends nudged inside it: the
    spliced density jumps at the splice points."""
    total = 0.0
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        y = np.linspace(np.nextafter(start, stop), np.nextafter(stop, start), points_per_piece)
        total += trapezoid(density(y), y)
    return total


@pytest.mark.parametrize("tails, top", [(TAILS, 40.0), (BOUNDED, H)])
@pytest.mark.parametrize("row", [0, 1, 2])
def test_spliced_density_is_normalized_keeps_each_tails_mass_and_the_flow_inside(tails, top, row):
    flow = norm(MU[row], SIGMA[row])

    def density(y):
        return np.exp(spliced(tails, row, y)[0])

    assert piecewise_integral(density, [-40.0, A, B, top], 200_001) == pytest.approx(1.0, abs=1e-8)
    assert piecewise_integral(density, [B, top], 200_001) == pytest.approx(flow.sf(B), rel=1e-7)
    assert piecewise_integral(density, [-40.0, A], 200_001) == pytest.approx(flow.cdf(A), rel=1e-7)
    y = np.linspace(A, B, 1001)
    np.testing.assert_array_equal(spliced(tails, row, y)[0], flow.logpdf(y))
    # The distribution function is the density's integral, and continuous at the splice points.
    y = np.linspace(-6.0, top - 1e-9, 100_001)
    _, cdf, density_values = spliced(tails, row, y)
    steps = 0.5 * (density_values[1:] + density_values[:-1]) * np.diff(y)
    jumps = (y[:-1] < A) & (y[1:] > A) | (y[:-1] < B) & (y[1:] > B)
    np.testing.assert_allclose(np.diff(cdf)[~jumps], steps[~jumps], rtol=1e-5, atol=1e-12)
    for point in (A, B):
        np.testing.assert_allclose(spliced(tails, row, np.array([point - 1e-10, point + 1e-10]))[1], flow.cdf(point))
    assert spliced(tails, row, np.array([top - 1e-12]))[1][0] == pytest.approx(1.0, abs=1e-8)


def test_the_upper_tail_is_exponential_with_the_flows_mass_in_closed_form():
    y = np.array([0.9, 3.0, 10.0])
    for row in range(3):
        log_density = spliced(TAILS, row, y)[0]
        expected = norm(MU[row], SIGMA[row]).logsf(B) - np.log(0.7) - (y - B) / 0.7
        np.testing.assert_allclose(log_density, expected, rtol=1e-12)


@pytest.mark.parametrize("tails", [TAILS, BOUNDED])
def test_spliced_quantiles_and_draws_invert_the_distribution_function_row_by_row(tails):
    levels = np.array([1e-12, 1e-4, 0.01, 0.3, 0.9, 0.99, 1 - 1e-6, 1 - 1e-12])
    flow_quantiles = norm.ppf(levels) * SIGMA[:, None] + MU[:, None]
    quantiles = spliced_quantiles(tails, normal_latent, levels, flow_quantiles)  # three rows in one call
    for row in range(3):
        np.testing.assert_allclose(spliced(tails, row, quantiles[row])[1], levels, rtol=1e-9)
        assert (quantiles[row] <= (H if tails is BOUNDED else np.inf)).all()
    # A draw keeps its level Phi(u): it is the spliced quantile of that level.
    u = np.random.default_rng(0).normal(size=(3, 2000)) * 2.0
    drawn = spliced_inverse(tails, normal_latent, u * SIGMA[:, None] + MU[:, None], u)
    # (rtol: a level near 1 in float64 keeps fewer digits of 1 - tau than the draw's log Phi(-u).)
    expected = spliced_quantiles(tails, normal_latent, norm.cdf(u), u * SIGMA[:, None] + MU[:, None])
    np.testing.assert_allclose(drawn, expected, rtol=1e-7)
    assert (drawn > B).mean() > 0.05 and (drawn < A).mean() > 0.05


def assert_same_tails(found: list[Tail], expected: list[Tail]) -> None:
    np.testing.assert_allclose([astuple(tail) for tail in found], [astuple(tail) for tail in expected], rtol=1e-12)


def test_sides_follow_the_bounds_and_the_training_range():
    class Model:
        n_targets_, target_range_, bounds = 1, np.array([[-0.6], [0.1]]), None
        low_, high_ = np.array([-np.inf]), np.array([np.inf])

    model = Model()
    assert_same_tails(splice_tails(model), TAILS)
    model.high_ = np.array([H])  # beyond the point: cut there
    assert_same_tails(splice_tails(model), BOUNDED)
    width = 0.1 - -0.6
    model.low_, model.high_ = np.array([-0.6 - width]), np.array([0.1 + width])  # at the points: the flows' tails
    assert splice_tails(model) == []
    model.low_, model.high_ = np.array([-np.inf]), np.array([np.inf])
    model.target_range_ = np.array([[0.1], [0.1]])  # a constant target
    assert splice_tails(model) == []
    model.target_range_ = np.array([[-np.inf], [np.inf]])  # a model saved before target_range_
    assert splice_tails(model) == []
    model.n_targets_, model.target_range_ = 2, np.array([[-1.3, 0.0], [0.8, 1.0]])
    assert splice_tails(model) == []


def test_a_bound_that_auto_inferred_leaves_its_tail_uncut():
    """bounds="auto"'s bounds are no limits of the data: each tail starts a width beyond the training range on
    the scale the flows model (log(y - low), or the logit) and runs on; a declared bound ends the support."""

    class Model:
        n_targets_, target_range_, bounds = 1, np.array([[0.2], [1.0]]), "auto"
        low_, high_ = np.array([-0.2]), np.array([np.inf])

    model = Model()
    # log(y + 0.2) from log 0.4 to log 1.2: a width below is log(0.4^2 / 1.2). Above, the flows' y-scale rule.
    assert_same_tails(splice_tails(model), [Tail(-0.2 + 0.4**2 / 1.2, -1, 0.8, np.inf), Tail(1.8, 1, 0.8, np.inf)])
    np.testing.assert_array_equal(support_bounds(model, splice_tails(model))[0], [-np.inf])
    model.target_range_, model.low_ = np.array([[2.0], [2.5]]), np.array([-2.0])
    assert_same_tails(splice_tails(model), [Tail(-2.0 + 4.0**2 / 4.5, -1, 0.5, np.inf), Tail(3.0, 1, 0.5, np.inf)])
    model.bounds = [(-2.0, None)]  # declared: the flows' y-scale rule, the exponential cut at the bound
    assert_same_tails(splice_tails(model), [Tail(1.5, -1, 0.5, 3.5), Tail(3.0, 1, 0.5, np.inf)])
    np.testing.assert_array_equal(support_bounds(model, splice_tails(model))[0], [-2.0])
    # The logit scale's (-min, 2 - max): soft on both sides.
    model.bounds, model.target_range_ = "auto", np.array([[0.1], [0.7]])
    model.low_, model.high_ = np.array([-0.1]), np.array([1.3])
    t_min, t_max = np.log(0.2 / 1.2), np.log(0.8 / 0.6)
    a, b = -0.1 + 1.4 * expit(2 * t_min - t_max), -0.1 + 1.4 * expit(2 * t_max - t_min)
    assert_same_tails(splice_tails(model), [Tail(a, -1, 0.6, np.inf), Tail(b, 1, 0.6, np.inf)])
    assert -0.1 < a < 0.1 and 0.7 < b < 1.3
    np.testing.assert_array_equal(np.ravel(support_bounds(model, splice_tails(model))), [-np.inf, np.inf])


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
    below, above = splice_tails(reg)
    width = 100.0 - y.min()
    assert (below.point, above.point, above.width, above.room) == (y.min() - width, 100.0 + width, width, np.inf)
    # Every mixture quantile lies below the largest of its flows', each at most b + w log(1 / (1 - tau)).
    top = reg.predict_quantiles(X_new, [1 - 1e-6])[:, 0]
    assert (top <= above.point + width * np.log(1e6) + 1e-6).all(), top.max()
    draws = reg.sample(X_new[:50], 2000, random_state=0)
    assert np.isfinite(draws).all() and np.abs(draws).max() < above.point + width * 20


def test_a_fitted_flow_scores_and_inverts_its_tails_in_closed_form(outlier_fit):
    reg, X_new, _ = outlier_fit
    member = copy.deepcopy(reg.ensemble_[0])  # one flow, its range narrowed: a few % of its mass lies beyond
    member.target_range_ = np.array([[-0.5], [0.5]])
    below, above = splice_tails(member)
    rows = np.arange(8)
    context = member._context(member._validated(X_new[rows]))
    # The flow's own log-masses beyond each point, row by row.
    log_above = log_ndtr(-_latent_and_log_density(member, context, np.full(8, above.point), rows)[0])
    log_below = log_ndtr(_latent_and_log_density(member, context, np.full(8, below.point), rows)[0])
    assert np.isfinite(log_above).all() and np.isfinite(log_below).all()
    distance = np.linspace(0.1, 30.0, 8)  # one call, eight rows, each at its own distance
    scores_above = member.score_samples(X_new[rows], above.point + distance)
    np.testing.assert_allclose(scores_above, log_above - np.log(above.width) - distance / above.width, rtol=1e-9)
    scores_below = member.score_samples(X_new[rows], below.point - distance)
    np.testing.assert_allclose(scores_below, log_below - np.log(below.width) - distance / below.width, rtol=1e-9)
    tail_level = np.exp(log_above)[:, None] * np.array([0.5, 1e-3])  # levels beyond each row's F(b)
    quantiles = np.array([member.predict_quantiles(X_new[[i]], 1 - tail_level[i])[0] for i in rows])
    expected = above.point + above.width * np.log(np.exp(log_above)[:, None] / tail_level)
    np.testing.assert_allclose(quantiles, expected, rtol=1e-6)
    cdf, density = cdf_and_density(member, context, above.point + distance, rows)
    np.testing.assert_allclose(1 - cdf, np.exp(log_above - distance / above.width), rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(np.log(density), scores_above, rtol=1e-9)


def test_the_ensembles_mean_density_and_draws_are_its_spliced_flows(outlier_fit):
    reg, X_new, _ = outlier_fit
    below, above = splice_tails(reg)
    # The density integrates to one, and the mass beyond b is the flows' mean mass there.
    edges = [below.point - 40 * below.width, below.point, above.point, above.point + 40 * above.width]
    for row in X_new[:2]:

        def density(y, row=row):
            return np.exp(reg.score_samples(np.tile(row, (y.size, 1)), y))

        assert piecewise_integral(density, edges, 10_001) == pytest.approx(1.0, abs=1e-3)
        one_row = np.zeros(1, int)
        masses = [
            1 - cdf_and_density(m, m._context(m._validated(row[None])), np.array([above.point]), one_row)[0][0]
            for m in reg._members()
        ]
        assert piecewise_integral(density, edges[2:], 10_001) == pytest.approx(np.mean(masses), rel=1e-3)
    # One flow's draws follow its spliced distribution function.
    member = reg.ensemble_[0]
    context = member._context(member._validated(X_new[:1]))
    drawn = member.sample(X_new[:1], 4000, random_state=1)[0]
    statistic = kstest(drawn, lambda v: cdf_and_density(member, context, v, np.zeros(v.size, int))[0])
    assert statistic.pvalue > 1e-3, statistic


def test_no_splice_for_a_model_saved_before_the_range(outlier_fit):
    reg, X_new, _ = outlier_fit
    older = from_older_state(reg, ("target_range_",))
    assert splice_tails(older) == []
    inside = np.linspace(-2.0, 3.0, 7)
    np.testing.assert_allclose(older.score_samples(X_new[:7], inside), reg.score_samples(X_new[:7], inside))
    far = np.full(7, splice_tails(reg)[1].point + 5000.0)
    # The first flow alone: its own tail, not its splice. (In the mixture the other flow's spliced tail, the
    # heavier, rules far out where the first is a kept ridge regression, whose own tail is Gaussian.)
    alone, older_alone = copy.copy(reg), copy.copy(older)
    alone.ensemble_ = older_alone.ensemble_ = []
    assert (np.abs(older_alone.score_samples(X_new[:7], far) - alone.score_samples(X_new[:7], far)) > 1).all()
