"""Skewed targets on a log scale, proportions on the logit scale: :class:`FlowRegressor`'s ``bounds="auto"``.

Many positive targets vary multiplicatively: prices, durations,
concentrations, a hull's resistance. Their spread grows with their level, and
they are closer to a constant spread around their mean as ``log y``. A flow
can learn the log's shape from the data, but it spends rows on it: on yacht
(277 rows) flows fitted to ``log y`` scored 0.30 nats a row higher on the
test rows than flows fitted to ``y``, and on 60 rows of a log-normal target
up to 1 nat (docs/regression_design_notes.md).

So before anything trains, each positive, continuous target column is
tested. Gradient-boosted trees predict ``y``, and, separately, ``log(y + c)``
with ``c`` the column's smallest training value, out of fold
(:func:`skflow._boosted_feature.out_of_fold_prediction`); a Gaussian of
constant spread around each prediction is scored on the out-of-fold
residuals, both in the units of ``y`` (the log's Jacobian counted). Where the
log is more likely by more than ``LOG_SCALE_GAIN`` nats a row, the column
gets the lower bound ``-c``: the flow then models ``log(y + c)`` exactly as
``bounds=(-c, None)`` given by hand makes it. The trees' flexible mean makes
it a test of the noise: a linear model also prefers the log where the log
merely straightens a convex mean (``exp(x)`` plus additive noise: a ridge
regression gained 0.3 to 0.8 nats a row from the log, flows fitted to ``log
y`` lost 0.09, and the trees' test gains -0.06 to -1.4).

Why ``c`` and not the bound 0: a target positive on the training rows can be
0 on new ones. Protein's RMSD is 0 on 0.6% of its rows, so 100 training rows
hold no zero about half the time; with the bound at 0 such a test row scored
``-inf``, and the mean test log-likelihood with it. With ``c``, a new 0 lies
``log 2`` below the smallest training value on the log scale: in the
density's tail, but inside its support. The shift barely moves the log of
typical values (``c`` is the smallest). Nor is ``-c`` a bound of the data:
spread that grows with the level passes this test whether or not a target
can be negative, so one target's distribution goes on below a point between
``-c`` and the data as its lower tail (:mod:`skflow._target_tails`), and a
new value at or below ``-c`` scores finite. A declared bound stays hard.

A negative target is tested as its mirror image: ``-log(c - y)`` with ``c``
minus its largest value, the upper bound ``c`` then inferred as ``-c`` is
for a positive one (losses recorded as negative amounts vary as multiplicatively
as the amounts). On a log-normal target's mirror image, 300 rows, the default
had scored 0.023 and 0.025 nats a row below its fit of the positive target
on two draws (docs/regression_design_notes.md).

A fit's one target that leans to a side is also tested on a shifted log on
that side, whatever its sign: ``log(y - min + d)`` or its mirror image
``-log(max + d - y)``. That covers a positive target skewed to the left below
a ceiling (``10 - lognormal``: scores, yields, efficiencies), one of both
signs (a log-normal amount less a fixed cost), and a positive one whose edge
is not 0 (a shifted log-normal: reaction times above a floor; yacht's
resistance, whose trees' test prefers a bound near -0.5 to its ``-c`` of -0.01).
``d`` is four times that of the least skewed of a range of such logs
(:mod:`skflow._skewness`, shared with the heavy-tailed features): no origin
offers the bound, and a few hundred rows place the edge only roughly. The
column must lean both by its skewness and by its bulk's, so a gross error
alone gives no log; a proportion keeps the logit's bounds as its edges; and
several targets' bounds would end their support, so only a fit's one target
is tested so. The best of the logs tested is kept. On 100 rows of such
targets the default gained 0.07 nats a row (better on 9 of 9 fits), on 300
rows 0.02 (docs/regression_design_notes.md, "Skewed targets of any sign").

A target inside (0, 1), a proportion or a rate, is tested on a third scale:
``logit`` on ``(-min, 2 - max)`` (as far outside (0, 1) as the training
values are inside it, for the same reason as ``c``). Where it beats the
better of ``y`` and the log by ``LOG_SCALE_GAIN``, the flows model it so. A Beta
proportion pressed against both ends gained 0.13 nats a row over ``y``, as
much as the true support (0, 1) declared; one far from both ends is left as
it is (docs/regression_design_notes.md). Its bounds are inferred, so both
tails go on beyond them.
"""

from __future__ import annotations

import numpy as np

from ._boosted_feature import out_of_fold_prediction
from ._bounds import parse_bounds
from ._core.rows import effective_rows
from ._preprocessing import dequantized_columns, robust_columns
from ._skewness import kelly_skewness, least_skewed_log_shift, skewness

# Nats per row by which log y's out-of-fold Gaussian must beat y's for a column to get the log.
LOG_SCALE_GAIN = 0.15
# The test's trees see at most this many rows (evenly spaced beyond): enough to tell the two scales apart.
MAX_ROWS = 2000
# A fit's one target whose skewness exceeds this toward a side is also tested on a shifted log on that side
# (docs/regression_design_notes.md, "Skewed targets of any sign").
SKEWED_TARGET = 1.0
# ... and whose bulk leans that way, Kelly's quantile skewness beyond this: one gross error (-1e6 among values
# near 0) makes any column's skewness huge, and its log would squeeze the error in rather than model the bulk.
SKEWED_TARGET_BULK = 0.25
# ... unless more than this share of its rows sits at its extreme on that side: the log of a pile parts it
# from the rest by a gap that dwarfs the rest's spread.
MAX_SHARE_AT_EDGE = 0.1
# ... and its log's bound sits this many times the least skewed log's ``d`` beyond the column's extreme. That
# ``d`` estimates the gap to the edge, but from 100 rows only to within a factor of 2.3 on nine draws in ten,
# and a new value beyond an inferred bound falls in a thin tail: with the bound at ``d``, 4% of one draw's test
# rows scored about 30 nats below the truth (docs/regression_design_notes.md, "Skewed targets of any sign").
EDGE_MARGIN = 4.0
# Fewer rows than this (counted by their weights) never get the log: five folds of fewer rows tell the scales
# apart by chance.
MIN_ROWS = 20
# The transient attribute that holds, during a fit, the targets' inferred bounds (2, n_targets): -c and inf on the
# log scale, -min and 2 - max on the logit scale, else -inf and inf.
INFERRED_BOUNDS = "_inferred_target_bounds"


def logit_bounds(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each target column's ``(low, high)`` of the logit scale: ``-min`` and ``2 - max``, as far outside (0, 1)
    as the smallest and largest training values are inside it."""
    return -Y.min(axis=0), 2 - Y.max(axis=0)


def scale_gains(X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per target column, how many nats a row a Gaussian of constant spread around the trees' out-of-fold
    prediction of the column on its log scale (:func:`tested_scales`), and of ``logit`` on
    :func:`logit_bounds`, scores above one around their prediction of ``y``, in the units of ``y``:
    ``(log gains, logit gains)``; ``-inf`` where a column is constant, has no log scale to test, is outside
    the logit's domain (not inside (0, 1), or its mirror image's), or has under ``MIN_ROWS`` rows (counted by
    their weights)."""
    _, log_gains, logit_gains = tested_scales(X, Y, weights, seed)
    return log_gains, logit_gains


def tested_scales(
    X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(log bounds, log gains, logit gains)``: per target column, the bounds (2, n_targets) of the log scale
    kept among those tested (infinite where none), and the gains of :func:`scale_gains`.

    The log scales tested (:func:`_log_scales`): ``log(y + c)`` of a positive column, the mirror image of a
    negative one, and where a fit's one target leans to a side (``SKEWED_TARGET``), the shifted log on that
    side; the one that gains most is kept. A Gaussian whose variance is the mean squared residual scores
    ``-log(sigma) - (1 + log(2 pi)) / 2`` a row on those residuals, so a gain is
    ``log(sigma_y) - log(sigma_t) + mean(log |dt / dy|)``, the last term the Jacobian of ``t``, the log or
    the logit.
    """
    n_targets = Y.shape[1]
    log_bounds = np.tile([[-np.inf], [np.inf]], n_targets)
    log_gains, logit_gains = np.full(n_targets, -np.inf), np.full(n_targets, -np.inf)
    # Of every row, as the fit's (the test may see a subset).
    mirrored = Y.max(axis=0) < 0  # the logit of a negative column is its mirror image's
    logit_domain = _inside_unit_interval(np.where(mirrored, -Y, Y))
    candidates, (lows, highs) = _log_scales(Y, weights, logit_domain), logit_scale_bounds(Y)
    step = -(-X.shape[0] // MAX_ROWS)
    X, Y, weights = X[::step], Y[::step], weights[::step]
    if effective_rows(weights) < MIN_ROWS:
        return log_bounds, log_gains, logit_gains

    def log_sigma(target: np.ndarray) -> float:
        residual = target - out_of_fold_prediction(X, target, weights, seed)
        return 0.5 * np.log(max(np.average(residual**2, weights=weights), np.finfo(float).tiny))

    for j in np.flatnonzero(np.ptp(Y, axis=0) > 0):
        if not (candidates[j] or logit_domain[j]):
            continue
        unit = np.abs(Y[:, j]).max()  # the gains do not depend on y's units; squares near 1e300 would overflow
        column = Y[:, j] / unit
        raw = log_sigma(column)
        for low, high in candidates[j]:
            distance = (Y[:, j] - low) / unit if np.isfinite(low) else (high - Y[:, j]) / unit
            t = np.log(distance)
            gain = raw - log_sigma(t) - np.average(t, weights=weights)
            if gain > log_gains[j]:
                log_gains[j], log_bounds[:, j] = gain, (low, high)
        if logit_domain[j]:
            above, below = np.log(Y[:, j] - lows[j]), np.log(highs[j] - Y[:, j])
            log_slope = np.log(highs[j] - lows[j]) - above - below  # log |dt / dy| of the logit
            logit = below - above if mirrored[j] else above - below  # a negative column's: its mirror image's
            logit_gains[j] = raw - log_sigma(logit) + np.average(log_slope, weights=weights) + np.log(unit)
    return log_bounds, log_gains, logit_gains


def logit_scale_bounds(Y: np.ndarray) -> np.ndarray:
    """Per target column, the bounds (2, n_targets) of its logit scale in the units of ``y``: :func:`logit_bounds`,
    or for a negative column its mirror image's, mirrored."""
    negative = Y.max(axis=0) < 0
    (lows, highs), (mirror_lows, mirror_highs) = logit_bounds(Y), logit_bounds(-Y)
    return np.vstack([np.where(negative, -mirror_highs, lows), np.where(negative, -mirror_lows, highs)])


def _inside_unit_interval(Y: np.ndarray) -> np.ndarray:
    """Per column, whether every value lies inside (0, 1): the logit's domain."""
    return (Y.min(axis=0) > 0) & (Y.max(axis=0) < 1)


def _log_scales(Y: np.ndarray, weights: np.ndarray, proportions: np.ndarray) -> list[list[tuple[float, float]]]:
    """Per target column, the bounds ``(low, high)`` of the log scales to test (``proportions``: which columns,
    or their mirror images, lie inside (0, 1)):

    - a positive column: ``log(y + c)``, ``c`` its smallest value (``(-c, inf)``);
    - a negative column, its mirror image: ``-log(c - y)``, ``c`` minus its largest value (``(-inf, c)``);
    - the one target of a fit, of any sign, where it leans to a side by a skewness beyond ``SKEWED_TARGET``
      and Kelly's beyond ``SKEWED_TARGET_BULK``, with at most ``MAX_SHARE_AT_EDGE`` of its rows at its
      extreme on that side, and not a proportion (inside (0, 1), or its mirror image: the logit's bounds are
      its edges): its least skewed shifted log on that side (:func:`skflow._skewness.least_skewed_log_shift`),
      its ``d`` widened ``EDGE_MARGIN`` times: ``log(y - min + d)`` (``(min - d, inf)``) or its mirror image
      ``-log(max + d - y)`` (``(-inf, max + d)``). Skewness moves with no change of units or origin, and so
      do these bounds with ``y``. Several targets' bounds end their support (:mod:`skflow._target_tails`
      splices one target's tails alone), and no origin keeps new values inside this one, as 0 keeps a
      positive target inside ``-c``.
    """
    scales = []
    for column, proportion in zip(Y.T, proportions, strict=True):
        tested = []
        if column.min() > 0:
            tested.append((-column.min(), np.inf))
        elif column.max() < 0:
            tested.append((-np.inf, -column.max()))
        if Y.shape[1] == 1 and not proportion and np.ptp(column) > 0:
            tested.extend(_shifted_log(column, weights))
        scales.append(tested)
    return scales


def _shifted_log(column: np.ndarray, weights: np.ndarray) -> list[tuple[float, float]]:
    """The bounds of the shifted log of :func:`_log_scales` of a non-constant ``column``, if it leans enough."""
    column_skewness = skewness(column, weights)
    side = 1 if column_skewness > 0 else -1
    leaning = abs(column_skewness) > SKEWED_TARGET and side * kelly_skewness(column, weights) > SKEWED_TARGET_BULK
    edge = (side * column).min()
    if not leaning or np.average(side * column == edge, weights=weights) > MAX_SHARE_AT_EDGE:
        return []
    shift, _ = least_skewed_log_shift(side * column, weights)
    if not np.isfinite(shift):
        return []
    shift += (EDGE_MARGIN - 1) * (edge + shift)  # d -> EDGE_MARGIN d
    return [(-shift, np.inf) if side > 0 else (-np.inf, shift)]


def log_scale_gains(X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """The log scale's gains of :func:`scale_gains`."""
    return scale_gains(X, Y, weights, seed)[0]


def inferred_bounds(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """The bounds (2, n_targets) that ``bounds="auto"`` gives the continuous target columns (not dequantized
    under ``estimator.dequantize``): :func:`logit_bounds` (the logit) where that scale is more likely than both
    ``y`` and the log by more than ``LOG_SCALE_GAIN`` nats a row; else the bound of the log scale kept by
    :func:`tested_scales` (``(-c, inf)`` for ``log(y + c)``, ``(-inf, c)`` for ``-log(c - y)``) where that log
    is more likely than ``y`` by that much; ``(-inf, inf)`` elsewhere."""
    bounds = np.tile([[-np.inf], [np.inf]], Y.shape[1])
    unbounded = np.full(Y.shape[1], np.inf)
    continuous = ~dequantized_columns(Y, -unbounded, unbounded, estimator.dequantize)[0]
    if not continuous.any():
        return bounds
    rows = weights > 0
    log_bounds, log_gains, logit_gains = tested_scales(X[rows], Y[rows], weights[rows], seed)
    # The logit adds a second bound to the log's one: it must beat the better of y and the log.
    logit = continuous & (logit_gains > np.maximum(log_gains, 0.0) + LOG_SCALE_GAIN)
    log = continuous & (log_gains > LOG_SCALE_GAIN) & ~logit
    bounds[:, log] = log_bounds[:, log]
    bounds[:, logit] = logit_scale_bounds(Y)[:, logit]
    return bounds


def log_scale_columns(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """Which target columns ``bounds="auto"`` models on a log scale with a lower bound (:func:`inferred_bounds`:
    a lower bound alone)."""
    lows, highs = inferred_bounds(estimator, X, Y, weights, seed)
    return np.isfinite(lows) & ~np.isfinite(highs)


def is_auto(bounds) -> bool:
    return isinstance(bounds, str) and bounds == "auto"


def set_inferred_bounds(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """With ``bounds="auto"``, record on ``estimator`` (``INFERRED_BOUNDS``) the targets' :func:`inferred_bounds`;
    return ``Y`` on the scale the flows model it (for the trees and the noise test)."""
    if not is_auto(estimator.bounds):
        return Y
    lows, highs = bounds = inferred_bounds(estimator, X, Y, weights, seed)
    setattr(estimator, INFERRED_BOUNDS, bounds)
    modelled = Y.copy()
    for j in np.flatnonzero(np.isfinite(lows) | np.isfinite(highs)):
        above = np.log(Y[:, j] - lows[j]) if np.isfinite(lows[j]) else 0.0
        below = np.log(highs[j] - Y[:, j]) if np.isfinite(highs[j]) else 0.0
        modelled[:, j] = above - below
    return modelled


def target_bounds(estimator):
    """The ``bounds`` of a flow's targets: the given ones, or with "auto" the :func:`inferred_bounds` of the fit
    (no bounds in ``partial_fit``, which makes no such choice)."""
    if not is_auto(estimator.bounds):
        return estimator.bounds
    bounds = getattr(estimator, INFERRED_BOUNDS, None)
    if bounds is None or not np.isfinite(bounds).any():
        return None
    return [
        (float(low) if np.isfinite(low) else None, float(high) if np.isfinite(high) else None)
        if np.isfinite(low) or np.isfinite(high)
        else None
        for low, high in bounds.T
    ]


def robust_targets(estimator, Y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Which target columns each flow's preprocessing standardizes robustly (its ``robust_scaled``): the same rule
    on ``Y`` within :func:`target_bounds`, for the boosted trees, which are fitted before any flow."""
    low, high = parse_bounds(target_bounds(estimator), Y.shape[1])
    return robust_columns(Y, weights, low, high, estimator.dequantize)
