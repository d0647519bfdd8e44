"""The Yeo-Johnson map of the mixture start: per column, about the mean or from a threshold beyond the data.

Each continuous (standardized) column ``z`` gets a Yeo-Johnson map (Yeo and
Johnson 2000) of ``u = (z - shift) / scale``, chosen from three families:

- **about the mean** (``shift = 0, scale = 1``, lambda in [0, 2]): the map
  scikit-learn's ``PowerTransformer`` fits;
- **from a lower threshold** (``shift`` the column's minimum, lambda and
  ``scale`` fitted): every row is on the map's positive branch, where
  ``log(1 + u) = log(z - (shift - scale)) + const``, a Box-Cox map of the
  column shifted by a fitted threshold. A log-normal column reaches the
  mixture exactly normal, which the map about the mean cannot do
  (lognormal_8d: 0.051 nats per dimension from the truth with that map,
  0.010 with this one);
- **from an upper threshold**, the mirror image, for long left tails.

Lambdas stay in [0, 2], where the map is onto the real line, so rows beyond
a threshold have a preimage too (the other branch). Each column takes the
family under which it is most likely as a normal; the mixture start then
tries both this map and the map about the mean for every column, and keeps
the one that scores better held-out (``_mixture_start``): a threshold fitted
close to the extreme row maps a new row just beyond it far into the
normal's tail, and each column closer to normal is not a joint density
closer to a mixture: on breast_cancer the map with thresholds scores 5.7
nats a row worse held-out than no map, the maps about the mean 4.7 better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from scipy.optimize import minimize, minimize_scalar

from ._core import YeoJohnson
from ._core.device import single_threaded

MEAN, LOWER, UPPER = "mean", "lower", "upper"
# The fitted scale of a threshold map, in standardized units: bounded below so that the threshold
# cannot close in on the extreme row (where the likelihood of a three-parameter log-normal is unbounded).
THRESHOLD_SCALES = (0.01, 100.0)
# Rows each map is fitted on (evenly spaced among the given ones): it has one or two numbers.
MAX_FIT_ROWS = 4096
# A column whose fitted map's log-slope varies by less than this over its central 98% of rows is left as
# it is (the map is nearly affine there). About the mean, lambda 1 +- 0.05 varies by about this much over
# +-2.3 standard deviations.
MIN_SLOPE_SPREAD = 0.1
# Nats per row per squared standard deviation that a threshold map puts its extreme row beyond the normal
# quantile of probability EXTREME_TAIL / (n_rows + 1).
EXTREME_PENALTY = 1.0
EXTREME_TAIL = 0.1


@dataclass
class PowerMap:
    """Per column, the Yeo-Johnson map ``YJ`` of ``u = (z - shift) / scale``, standardized again:
    ``(YJ(u) - out_loc) / out_scale``, log-det ``log|dYJ/du| - log scale - log out_scale``. Lambda 1
    with ``shift = out_loc = 0`` and ``scale = out_scale = 1`` leaves a column as it is.

    The second standardization matters to the flow, not the mixture: a
    threshold's log can put the mapped column far from ``[-tail_bound,
    tail_bound]``, where the splines act (digits: -47.4 after training
    without it, -38.0 with it).
    """

    lambdas: np.ndarray
    shift: np.ndarray
    scale: np.ndarray
    out_loc: np.ndarray
    out_scale: np.ndarray

    @classmethod
    def of_one_column(cls, lam: float, shift: float, scale: float) -> PowerMap:
        return cls(np.array([lam]), np.array([shift]), np.array([scale]), np.zeros(1), np.ones(1))

    def __call__(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mapped ``rows`` and each row's log-det."""
        power = YeoJohnson(torch.from_numpy(self.lambdas))
        with torch.no_grad():
            mapped, log_det = power(torch.from_numpy((rows - self.shift) / self.scale))
        log_det = log_det.numpy() - np.log(self.scale).sum() - np.log(self.out_scale).sum()
        return (mapped.numpy() - self.out_loc) / self.out_scale, log_det

    def changes_anything(self) -> bool:
        """Whether some column is mapped (at lambda 1 a map is ``u`` itself)."""
        return bool((self.lambdas != 1.0).any())


def fit_power_map(rows: np.ndarray, families: list[str | None]) -> PowerMap:
    """Per column of ``rows`` (an unweighted sample, standardized), the map of its family under which it is
    most likely as a normal (profile likelihood); the identity where the family is None or the map is
    nearly affine over the column's rows."""
    with single_threaded():  # hundreds of tiny operations: 8x faster on one thread
        fitted = [None if family is None else _fit_column(rows[:, j], family) for j, family in enumerate(families)]
    return _standardized_map(rows, fitted)


def fit_most_likely_map(rows: np.ndarray, columns: np.ndarray) -> tuple[list[str | None], PowerMap]:
    """Per column of ``rows`` (an unweighted sample, standardized) selected by the boolean mask
    ``columns``, the family whose fitted map makes it most likely as a normal (profile likelihood, the
    log-det counted; None for the other columns), and the map of those families (:func:`fit_power_map`)."""
    families: list[str | None] = [None] * rows.shape[1]
    fitted: list[tuple[float, float, float] | None] = [None] * rows.shape[1]
    with single_threaded():
        for j in np.flatnonzero(columns):
            column = torch.from_numpy(np.ascontiguousarray(rows[:, j]))
            fits = {family: _fit_column(rows[:, j], family) for family in (MEAN, LOWER, UPPER)}
            costs = {family: _power_cost(column, *fit) for family, fit in fits.items() if fit is not None}
            if costs:
                families[j] = min(costs, key=costs.get)
                fitted[j] = fits[families[j]]
    return families, _standardized_map(rows, fitted)


def _standardized_map(rows: np.ndarray, fitted: list[tuple[float, float, float] | None]) -> PowerMap:
    """The map of each column's fitted (lambda, shift, scale), the identity where there is none or it is
    nearly affine over the column's rows, its output standardized over ``rows``."""
    n_features = rows.shape[1]
    lambdas, shift, scale = np.ones(n_features), np.zeros(n_features), np.ones(n_features)
    for j, column_map in enumerate(fitted):
        if column_map is not None and not _nearly_affine(rows[:, j], *column_map):
            lambdas[j], shift[j], scale[j] = column_map
    mapped, _ = PowerMap(lambdas, shift, scale, np.zeros(n_features), np.ones(n_features))(rows)
    mapped_columns = lambdas != 1.0
    out_loc = np.where(mapped_columns, mapped.mean(0), 0.0)
    out_scale = np.where(mapped_columns, mapped.std(0), 1.0)
    return PowerMap(lambdas, shift, scale, out_loc, np.where(out_scale > 0, out_scale, 1.0))


def _fit_column(values: np.ndarray, family: str) -> tuple[float, float, float] | None:
    """(lambda, shift, scale) of ``family``'s most likely map of one column's ``values``; None for
    constant values, and for a threshold at an extreme value several rows share: a log from just
    beyond it would pile them onto one point far out in the normal's tail (breast_cancer's concavity
    columns are 0 on 13 rows)."""
    column = torch.from_numpy(np.ascontiguousarray(values[:: -(-len(values) // MAX_FIT_ROWS)]))
    if not np.ptp(column.numpy()) > 0:  # constant here (a rare value left out of these rows): nothing to map
        return None
    if family == MEAN:
        found = minimize_scalar(lambda lam: _power_cost(column, lam, 0.0, 1.0), bounds=(0.0, 2.0), method="bounded")
        return float(found.x), 0.0, 1.0
    extreme = values.min() if family == LOWER else values.max()
    if np.count_nonzero(values == extreme) > 1:
        return None
    return _from_threshold(column, float(extreme), family == LOWER, len(values))


def _from_threshold(column: torch.Tensor, shift: float, lower: bool, n_rows: int) -> tuple[float, float, float]:
    """The map whose origin ``shift`` is the column's minimum (``lower``) or maximum over ``n_rows`` rows:
    every row on one branch.

    The likelihood alone would put the threshold as close to the extreme row as
    the scale's bound allows (the three-parameter log-normal's likelihood is
    unbounded there, Hill 1963). As in Cohen and Whitten's (1980) modified
    estimator, the extreme row is held near the normal quantile an extreme of
    ``n_rows`` draws has (``1 / (n_rows + 1)``, loosened tenfold so that it
    rarely binds on a log-normal sample), by a penalty on how far beyond it
    the fit puts the row.
    """
    extreme_z = float(stats.norm.isf(EXTREME_TAIL / (n_rows + 1)))
    found = minimize(
        lambda p: _power_cost(column, p[0], shift, float(np.exp(p[1])), extreme_z),
        (0.5 if lower else 1.5, 0.0),
        method="L-BFGS-B",
        bounds=[(0.0, 2.0), tuple(np.log(THRESHOLD_SCALES))],
    )
    return float(found.x[0]), shift, float(np.exp(found.x[1]))


def _power_cost(column: torch.Tensor, lam: float, shift: float, scale: float, extreme_z: float | None = None) -> float:
    """Negative mean log-likelihood of ``column`` as a normal after the map (its variance profiled out,
    constants dropped), the map's log-det counted; with ``extreme_z``, plus the penalty on the origin
    (where the extreme row maps) lying more than ``extreme_z`` standard deviations from the mean."""
    power = YeoJohnson(torch.tensor([float(lam)], dtype=torch.float64))
    mapped, log_det = power(((column - shift) / scale)[:, None])
    variance = float(mapped.var(correction=0))
    if not variance > 0:
        return np.inf
    cost = 0.5 * np.log(variance) - float(log_det.mean()) + np.log(scale)
    if extreme_z is not None:
        cost += EXTREME_PENALTY * max(0.0, abs(float(mapped.mean())) / np.sqrt(variance) - extreme_z) ** 2
    return cost


def _nearly_affine(values: np.ndarray, lam: float, shift: float, scale: float) -> bool:
    log_slope = PowerMap.of_one_column(lam, shift, scale)(values[:, None])[1]
    return bool(np.ptp(np.quantile(log_slope, [0.01, 0.99])) < MIN_SLOPE_SPREAD)
