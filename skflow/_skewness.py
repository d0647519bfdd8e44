"""Skewness of a weighted column, and the shifted log that removes most of it.

Shared by the regressor's heavy-tailed features, which enter its context as
a shifted log (:mod:`skflow._regression_data`), and its skewed targets, which
``bounds="auto"`` may model on such a scale (:mod:`skflow._target_scale`).
Every quantity here moves with no change of units or origin.
"""

from __future__ import annotations

import numpy as np

from ._preprocessing import weighted_quantiles

# The shifts ``d`` of ``log(x - min + d)`` tried, in units of the column's mean less its minimum: from far
# inside the gap to the nearest value (a log-normal's ``d`` comes out near its minimum) to far beyond the
# bulk (there the log is nearly linear).
LOG_SHIFT_STEPS = 2.0 ** np.arange(-12, 4)


def skewness(column: np.ndarray, weights: np.ndarray) -> float:
    """The weighted sample skewness (third standardized moment) of a non-constant ``column``, computed in units of
    its largest magnitude so that no power overflows."""
    column = column / np.abs(column).max()
    centered = column - np.average(column, weights=weights)
    variance = np.average(centered**2, weights=weights)
    if not (np.isfinite(variance) and variance > 0):
        return 0.0 if variance == 0 else np.nan
    return float(np.average(centered**3, weights=weights) / variance**1.5)


def kelly_skewness(column: np.ndarray, weights: np.ndarray) -> float:
    """``(q90 + q10 - 2 q50) / (q90 - q10)`` of the weighted quantiles: the skewness of the bulk, which no tail
    moves (0 where the quantiles coincide)."""
    low, median, high = weighted_quantiles(column[:, None], weights, (0.1, 0.5, 0.9))[:, 0]
    return float((high + low - 2 * median) / (high - low)) if high > low else 0.0


def least_skewed_log_shift(column: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """``c`` of the least skewed ``log(x + c)`` of a non-constant ``column``, and that log's absolute skewness:
    ``c = d - min``, ``d`` among ``LOG_SHIFT_STEPS`` times the column's mean less its minimum. ``(nan, inf)``
    where no such log is finite on every row (far from 0, ``x + c`` may round to 0)."""
    magnitude = np.abs(column).max()
    scaled = column / magnitude  # in units of its largest magnitude: no mean or power overflows
    unit = np.average(scaled - scaled.min(), weights=weights)
    candidates = []
    for shift in unit * LOG_SHIFT_STEPS - scaled.min():
        if np.all(scaled + shift > 0):
            log_skewness = abs(skewness(np.log(scaled + shift), weights))
            if np.isfinite(log_skewness):
                candidates.append((log_skewness, shift))
    least, shift = min(candidates, default=(np.inf, np.nan), key=lambda candidate: candidate[0])
    if not np.all(column + shift * magnitude > 0):
        return np.nan, np.inf
    return shift * magnitude, least
