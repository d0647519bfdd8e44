"""Positive targets modelled on the log scale: :class:`FlowRegressor`'s ``bounds="auto"``.

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
"""

from __future__ import annotations

import numpy as np

from ._boosted_feature import out_of_fold_prediction
from ._bounds import parse_bounds
from ._core.rows import effective_rows
from ._preprocessing import dequantized_columns, robust_columns

# Nats per row by which log y's out-of-fold Gaussian must beat y's for a column to get the log.
LOG_SCALE_GAIN = 0.15
# The test's trees see at most this many rows (evenly spaced beyond): enough to tell the two scales apart.
MAX_ROWS = 2000
# Fewer rows than this (counted by their weights) never get the log: five folds of fewer rows tell the scales
# apart by chance.
MIN_ROWS = 20
# The transient attribute that holds, during a fit, each target's lower bound: -c on the log scale, else -inf.
LOG_SCALE = "_log_scale_lows"


def log_shifts(Y: np.ndarray) -> np.ndarray:
    """Each target column's ``c`` of ``log(y + c)``: its smallest training value."""
    return Y.min(axis=0)


def log_scale_gains(X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """Per target column, how many nats a row a Gaussian of constant spread around the trees' out-of-fold
    prediction of ``log(y + c)`` (``c``: the column's smallest value) scores above one around their prediction of
    ``y``, in the units of ``y``; ``-inf`` where a column is not positive or is constant, or under ``MIN_ROWS``
    rows (counted by their weights).

    A Gaussian whose variance is the mean squared residual scores
    ``-log(sigma) - (1 + log(2 pi)) / 2`` a row on those residuals, so the
    difference is ``log(sigma_y) - log(sigma_log) - mean(log(y + c))``, the
    last term the log's Jacobian.
    """
    shifts = log_shifts(Y)  # of every row, as the fit's: the test may see a subset
    step = -(-X.shape[0] // MAX_ROWS)
    X, Y, weights = X[::step], Y[::step], weights[::step]
    gains = np.full(Y.shape[1], -np.inf)
    if effective_rows(weights) < MIN_ROWS:
        return gains
    for j in range(Y.shape[1]):
        if not (Y[:, j].min() > 0 and np.ptp(Y[:, j]) > 0):
            continue
        unit = Y[:, j].max()  # the gain does not depend on y's units; squares near 1e300 would overflow
        y, log_y = Y[:, j] / unit, np.log((Y[:, j] + shifts[j]) / unit)
        log_sigma = []
        for target in (y, log_y):
            residual = target - out_of_fold_prediction(X, target, weights, seed)
            log_sigma.append(0.5 * np.log(max(np.average(residual**2, weights=weights), np.finfo(float).tiny)))
        gains[j] = log_sigma[0] - log_sigma[1] - np.average(log_y, weights=weights)
    return gains


def log_scale_columns(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """Which target columns ``bounds="auto"`` models on the log scale: positive, continuous (not dequantized
    under ``estimator.dequantize``) and more likely so by more than ``LOG_SCALE_GAIN`` nats a row."""
    continuous = ~dequantized_columns(Y, np.zeros(Y.shape[1], dtype=bool), estimator.dequantize)[0]
    if not continuous.any():
        return continuous
    rows = weights > 0
    return continuous & (log_scale_gains(X[rows], Y[rows], weights[rows], seed) > LOG_SCALE_GAIN)


def is_auto(bounds) -> bool:
    return isinstance(bounds, str) and bounds == "auto"


def set_log_scale(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """With ``bounds="auto"``, record on ``estimator`` (``LOG_SCALE``) each target's lower bound (``-c`` for
    the columns modelled as ``log(y + c)``, else ``-inf``); return ``Y`` on the scale the flows model it (for
    the trees and the noise test)."""
    if not is_auto(estimator.bounds):
        return Y
    logged = log_scale_columns(estimator, X, Y, weights, seed)
    shifts = log_shifts(Y)
    setattr(estimator, LOG_SCALE, np.where(logged, -shifts, -np.inf))
    modelled = Y.copy()
    modelled[:, logged] = np.log(Y[:, logged] + shifts[logged])
    return modelled


def target_bounds(estimator):
    """The ``bounds`` of a flow's targets: the given ones, or with "auto" the lower bound ``-c`` on the columns
    that the fit models on the log scale (no bounds in ``partial_fit``, which makes no such choice)."""
    if not is_auto(estimator.bounds):
        return estimator.bounds
    lows = getattr(estimator, LOG_SCALE, None)
    if lows is None or not np.isfinite(lows).any():
        return None
    return [(float(low), None) if np.isfinite(low) else None for low in lows]


def robust_targets(estimator, Y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Which target columns each flow's preprocessing standardizes robustly (its ``robust_scaled``): the same rule
    on ``Y`` within :func:`target_bounds`, for the boosted trees, which are fitted before any flow."""
    low, high = parse_bounds(target_bounds(estimator), Y.shape[1])
    return robust_columns(Y, weights, low, high, estimator.dequantize)
