"""Fitted statistics of the training data: what the flow's fixed layers and the dequantization noise need.

Computed in float64, batch by batch (no full-size float64 copy of a float32
input), from the rows with positive weight, each row counted by its weight:
a row of weight zero shapes nothing.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from scipy.special import ndtri

from ._bounds import has_bounds
from ._core import AsinhTails, ToUnbounded, preprocessing_layers

if TYPE_CHECKING:
    from ._power_map import PowerMap

# A constant column gets this scale (in the user's units) and is modelled as
# N(value, CONSTANT_COLUMN_SCALE**2): the same floor GaussianMixture's default
# reg_covar=1e-6 puts on a variance.
CONSTANT_COLUMN_SCALE = 1e-3
# Beyond 2**53 every float64 is an integer: such columns are not counts.
LARGEST_EXACT_INTEGER = 2.0**53
# A non-integer column is discrete when each of its values appears this many times on average.
MIN_REPEATS = 5
# Rows per batch for the column statistics.
BATCH_ROWS = 65536
# With ``robust`` (a regressor's targets), a column whose standard deviation exceeds this many times its robust
# spread (interquartile range / 1.349, a normal's standard deviation; for a dequantized column, both with the
# noise's) is standardized by its median and that spread instead: a few gross errors (one y = -1e6 among 50 rows
# near 0) would otherwise squeeze the other rows into a band 1e-5 wide, which the flows, made for unit-scale
# values, did not fit. The ratio is at most 2.6 on the UCI benchmark's targets (raw and log), 3 to 6 under
# Student-t(1.5) noise and 12 to 190 under Cauchy noise in our draws.
GROSS_SPREAD_RATIO = 5.0
# Where gross errors rule a target (standardized robustly), a residual or latent beyond this many typical scales
# (from the median |value|) is a gross error: a normal's exceeds 5 sd once in 1.7 million.
GROSS_Z = 5.0
# A column has a point mass where one value makes up this share of the rows, and at least POINT_MASS_ROWS
# of them, while at least POINT_MASS_DISTINCT of the other rows hold distinct values: continuous apart
# from it (rounded measurements, as in iris or load_wine, repeat values throughout and have no mass).
# At most POINT_MASS_SAMPLE evenly spaced rows are looked at.
POINT_MASS_SHARE = 0.05
POINT_MASS_ROWS = 10
POINT_MASS_DISTINCT = 0.5
POINT_MASS_SAMPLE = 20_000


@dataclass
class Preprocessing:
    """Per-feature fitted statistics (arrays of shape (n_features,))."""

    low: np.ndarray  # lower bound, -inf if none
    high: np.ndarray  # upper bound, +inf if none
    loc: np.ndarray  # standardization, after the bounds map
    scale: np.ndarray
    lower_tails: np.ndarray  # bool: standardized values reach below -tail_bound (asinh on that side)
    upper_tails: np.ndarray  # bool: ... above +tail_bound
    dequantized: np.ndarray  # bool: discrete columns that get uniform noise in training
    constant: np.ndarray  # bool: zero-variance columns
    # Width of each dequantized column's noise cell in data units (1 for integers); None: 1 everywhere.
    cell_width: np.ndarray | None = None
    # Yeo-Johnson lambdas of a power map after the standardization (1: identity); None: no such map.
    # Under such a map, ``loc`` and ``scale`` also carry the map's origin and scale (``with_power``).
    power: np.ndarray | None = None
    # The standardization of the power map's output; None: none (models fitted before it existed).
    power_loc: np.ndarray | None = None
    power_scale: np.ndarray | None = None
    # bool: columns standardized by their median and robust spread (``GROSS_SPREAD_RATIO``); None: none.
    robust_scaled: np.ndarray | None = None
    # Whether a column has a point mass (skflow._fitting.fitted_preprocessing warns): its spike can grow without end.
    point_masses: bool = False

    def noise_width(self) -> np.ndarray:
        """The uniform noise's width per column in data units, 0 where a column is not dequantized."""
        width = np.ones(self.dequantized.shape) if self.cell_width is None else self.cell_width
        return np.where(self.dequantized, width, 0.0)

    def without_tails(self) -> Preprocessing:
        """The same statistics with no asinh on any column."""
        no_tails = np.zeros_like(self.lower_tails)
        return dataclasses.replace(self, lower_tails=no_tails, upper_tails=no_tails.copy())

    def with_power(self, power: PowerMap) -> Preprocessing:
        """No asinh tails; instead ``power``: the Yeo-Johnson map
        of ``(z - shift) / scale``, ``z`` the standardized column, then standardized again. The shift and
        scale are folded into the standardization, which then places the map's origin."""
        return dataclasses.replace(
            self.without_tails(),
            loc=self.loc + power.shift * self.scale,
            scale=self.scale * power.scale,
            power=np.asarray(power.lambdas, dtype=np.float64),
            power_loc=power.out_loc,
            power_scale=power.out_scale,
        )

    def flow_arguments(self) -> dict[str, np.ndarray]:
        """The fitted numbers ``skflow._core.build_flow`` takes."""
        return dict(
            low=self.low,
            high=self.high,
            loc=self.loc,
            scale=self.scale,
            lower_tails=self.lower_tails,
            upper_tails=self.upper_tails,
            power=self.power,
            power_loc=self.power_loc,
            power_scale=self.power_scale,
        )


class _Unbounded:
    """Rows of X after the bounds map (float64), batch by batch; the identity without bounds."""

    def __init__(self, X: np.ndarray, low: np.ndarray, high: np.ndarray):
        self.X = X
        self.map = None
        if has_bounds(low, high):
            self.map = ToUnbounded(torch.from_numpy(low), torch.from_numpy(high)).double()

    def batches(self):
        for start in range(0, self.X.shape[0], BATCH_ROWS):
            rows = np.asarray(self.X[start : start + BATCH_ROWS], dtype=np.float64)
            if self.map is not None:
                with torch.no_grad():
                    rows = self.map(torch.from_numpy(rows))[0].numpy()
            yield slice(start, start + BATCH_ROWS), rows


def _weighted_moments(unbounded: _Unbounded, weights: np.ndarray, n_features: int):
    """Column minima, maxima, weighted means and standard deviations, in two passes over the batches.

    Values are divided by each column's largest magnitude first, so that
    squares do not overflow for magnitudes up to the float64 limit.
    """
    low = np.full(n_features, np.inf)
    high = np.full(n_features, -np.inf)
    for _, rows in unbounded.batches():
        low, high = np.minimum(low, rows.min(axis=0)), np.maximum(high, rows.max(axis=0))
    magnitude = np.maximum(np.abs(low), np.abs(high))
    magnitude = np.where(magnitude > 0, magnitude, 1.0)
    total = weights.sum()
    mean = np.zeros(n_features)
    for rows_slice, rows in unbounded.batches():
        mean += weights[rows_slice] @ (rows / magnitude)
    mean /= total
    variance = np.zeros(n_features)
    for rows_slice, rows in unbounded.batches():
        variance += weights[rows_slice] @ np.square(rows / magnitude - mean)
    std = np.sqrt(np.maximum(variance / total, 0.0))
    return low, high, mean * magnitude, std * magnitude


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, shares) -> np.ndarray:
    """Each column's weighted quantiles (len(shares), n_columns): the smallest value whose cumulative weight
    reaches each share (of the few target columns of a regressor, or its latents: the rows are held at once)."""
    order = np.argsort(values, axis=0)
    ordered, cumulative = np.take_along_axis(values, order, axis=0), np.cumsum(weights[order], axis=0)
    positions = [(cumulative < share * weights.sum()).sum(axis=0) for share in shares]
    return np.stack([ordered[np.minimum(p, len(values) - 1), np.arange(values.shape[1])] for p in positions])


def trimmed_root_mean_square(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each column's weighted root mean square of ``values`` (n, k) without the rows beyond ``GROSS_Z`` times
    the scale its weighted median ``|value|`` implies (a normal's); NaN where no weight is left.

    The mean square is efficient for normal values, and a few gross errors
    would rule it; the median alone, from 10 validation rows, was too noisy a
    scale (docs/regression_design_notes.md).
    """
    typical = weighted_quantiles(np.abs(values), weights, (0.5,))[0] / ndtri(0.75)
    kept = weights[:, None] * (np.abs(values) <= GROSS_Z * typical)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt((kept * np.square(values)).sum(axis=0) / kept.sum(axis=0))


def _weighted_median_and_spread(unbounded: _Unbounded, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`median_and_spread` of the columns after the bounds map."""
    return median_and_spread(np.vstack([rows for _, rows in unbounded.batches()]), weights)


def median_and_spread(X: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's weighted median and interquartile range / 1.349 (a normal's standard deviation)."""
    lower, median, upper = weighted_quantiles(X, weights, (0.25, 0.5, 0.75))
    return median, (upper - lower) / 1.349


def _gross(std, spread, dequantized: np.ndarray, cell_width: np.ndarray) -> np.ndarray:
    """Columns whose standard deviation exceeds ``GROSS_SPREAD_RATIO`` times their robust spread, a dequantized
    column's both with its noise's (an integer target with most rows at one value has a spread of 0)."""
    noise = np.where(dequantized, cell_width / np.sqrt(12.0), 0.0)
    spread, std = np.hypot(spread, noise), np.hypot(std, noise)
    return (spread > 0) & (std > GROSS_SPREAD_RATIO * spread)


def integer_columns(X: np.ndarray) -> np.ndarray:
    """Columns whose values are all integers of moderate size (counts, ratings, pixel levels)."""
    integer = np.ones(X.shape[1], dtype=bool)
    for start in range(0, X.shape[0], BATCH_ROWS):
        rows = X[start : start + BATCH_ROWS]
        integer &= np.all(rows == np.round(rows), axis=0) & np.all(np.abs(rows) <= LARGEST_EXACT_INTEGER, axis=0)
    return integer


def integer_steps(X: np.ndarray, integer: np.ndarray) -> np.ndarray:
    """Per integer column, the greatest common divisor of the differences between its values (1 for a constant
    column; 0 for the other columns).

    Counts step by 1, but an integer column can lie on a coarser grid (scores in steps of 10, prices in
    hundreds): unit cells there would leave the flow a spike of width 1 per value, which it cannot fit.
    """
    steps = np.zeros(X.shape[1], dtype=np.int64)
    columns = np.flatnonzero(integer)
    if columns.size == 0:
        return steps.astype(np.float64)
    # Integers of magnitude at most 2**53 are exact in int64, and so are their differences (below 2**54).
    origin = np.asarray(X[0, columns], dtype=np.float64).astype(np.int64)
    for start in range(0, X.shape[0], BATCH_ROWS):
        rows = np.asarray(X[start : start + BATCH_ROWS][:, columns], dtype=np.float64).astype(np.int64)
        offsets = np.abs(rows - origin)
        steps[columns] = np.gcd(steps[columns], np.gcd.reduce(offsets, axis=0))
        if np.all(steps[columns] == 1):
            break  # counts: nothing coarser can come of the other rows
    return np.where(integer, np.maximum(steps, 1), 0).astype(np.float64)


def discrete_cells(X: np.ndarray, integer: np.ndarray) -> np.ndarray:
    """Per column, the width of the cells that dequantize it, or 0 for a continuous column.

    Integer columns get cells as wide as their grid's step (:func:`integer_steps`: 1 for counts, so that
    the density estimates each integer's probability). Other columns whose values repeat, at most
    ``len(X) / MIN_REPEATS`` distinct values (a two-valued column, rating levels, rounded measurements),
    get cells as wide as the smallest gap between their values: the cells around the values never
    overlap, and a continuous density can no longer pile up on them.
    """
    widths = integer_steps(X, integer)
    for j in np.flatnonzero(~integer):
        values = np.unique(X[:, j])
        if 2 <= values.size <= X.shape[0] / MIN_REPEATS:
            widths[j] = np.diff(values).min()
    return widths


def point_masses(X: np.ndarray, skipped: np.ndarray) -> dict[int, tuple[float, float]]:
    """``{column: (value, share of the rows)}`` where one value repeats on ``POINT_MASS_SHARE`` of the rows
    and the others are mostly distinct.

    A continuous density grows without bound on such a value (a zero-inflated
    or capped column), so the log-likelihood of rows there measures the
    height of the fitted spike. Columns in ``skipped`` (dequantized or
    constant ones, which are modelled as such) are not looked at.
    """
    sample = X[:: max(1, X.shape[0] // POINT_MASS_SAMPLE)]
    found = {}
    for j in np.flatnonzero(~skipped):
        values, counts = np.unique(sample[:, j], return_counts=True)
        top = int(np.argmax(counts))
        continuous_otherwise = values.size - 1 >= POINT_MASS_DISTINCT * (sample.shape[0] - counts[top])
        if counts[top] >= max(POINT_MASS_ROWS, POINT_MASS_SHARE * sample.shape[0]) and continuous_otherwise:
            found[int(j)] = (float(values[top]), float(counts[top] / sample.shape[0]))
    return found


def dequantized_columns(X: np.ndarray, low: np.ndarray, high: np.ndarray, dequantize) -> tuple[np.ndarray, np.ndarray]:
    """Which columns get training noise, and the width of its cells: a bounded column only where its cells lie
    within its bounds (noise across a bound would put training values where the density is zero)."""
    if dequantize == "auto":
        widths = discrete_cells(X, integer_columns(X))
        noised, widths = widths > 0, np.where(widths > 0, widths, 1.0)
    else:
        noised, widths = np.full(X.shape[1], bool(dequantize)), np.ones(X.shape[1])
    inside = (X.min(axis=0) - widths / 2 >= low) & (X.max(axis=0) + widths / 2 <= high)
    return noised & inside, widths


def fit_preprocessing(
    X: np.ndarray,
    weights: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    standardize: bool,
    dequantize,
    tail_bound: float,
    robust: bool = False,
    columns: str = "feature",
) -> Preprocessing:
    """Statistics of the training rows ``X`` (all with positive ``weights``) for bounds ``low``/``high``;
    ``robust``: columns ruled by gross outliers standardized by their median and robust spread
    (``GROSS_SPREAD_RATIO``); ``columns``: what a warning calls the columns ("feature", or "target" for a
    regressor's y)."""
    n_features = X.shape[1]
    bounded = _bounded(low, high)
    dequantized, cell_width, minimum, maximum, mean, std, robust_scaled = _column_statistics(
        X, weights, low, high, dequantize, robust
    )
    # A constant integer column that is dequantized is not degenerate: its
    # training values are spread uniformly over one cell around the integer.
    constant = (maximum == minimum) & ~dequantized
    if standardize:
        # Dequantized columns are standardized with the spread of the noisy values (roughly, after a bounds map,
        # whose cells are not of one width: there by the cells' centres' spread, 1 for a constant column).
        noisy = np.where(bounded, np.where(std > 0, std, 1.0), np.hypot(std, cell_width / np.sqrt(12.0)))
        loc, scale = mean, np.where(dequantized, noisy, std)
    else:
        loc, scale = np.zeros(n_features), np.ones(n_features)
    if constant.any():
        # Centre the floor on the value even without standardization, so the
        # column's training values sit at 0 in the flow's units.
        loc = np.where(constant, minimum, loc)
        scale = np.where(constant, CONSTANT_COLUMN_SCALE, scale)
        warnings.warn(
            f"{columns}(s) {np.flatnonzero(constant).tolist()} are constant; each is modelled as a normal "
            f"with standard deviation {CONSTANT_COLUMN_SCALE:g} around its value"
            + (" (in log/logit units for bounded ones)" if (constant & bounded).any() else ""),
            UserWarning,
            stacklevel=4,
        )
    with np.errstate(over="ignore", invalid="ignore"):
        standardized_min, standardized_max = (minimum - loc) / scale, (maximum - loc) / scale
    _check_float32_range(standardized_min, standardized_max, standardize)
    return Preprocessing(
        low=low,
        high=high,
        loc=loc,
        scale=scale,
        # Columns reaching beyond the splines' range (heavy or long tails) go through asinh on that side.
        lower_tails=(standardized_min < -tail_bound) & ~constant,
        upper_tails=(standardized_max > tail_bound) & ~constant,
        dequantized=dequantized,
        constant=constant,
        cell_width=cell_width,
        robust_scaled=robust_scaled,
    )


def _bounded(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.isfinite(low) | np.isfinite(high)


def robust_columns(X: np.ndarray, weights: np.ndarray, low: np.ndarray, high: np.ndarray, dequantize) -> np.ndarray:
    """The columns of ``X`` that :func:`fit_preprocessing` with ``robust`` standardizes by their median and robust
    spread (``GROSS_SPREAD_RATIO``), for what is fitted before the preprocessing (a regressor's boosted trees)."""
    return _column_statistics(X, weights, low, high, dequantize, robust=True).robust_scaled


class _ColumnStatistics(NamedTuple):
    dequantized: np.ndarray
    cell_width: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    location: np.ndarray
    spread: np.ndarray
    robust_scaled: np.ndarray | None


def _column_statistics(X, weights, low, high, dequantize, robust: bool) -> _ColumnStatistics:
    """What :func:`fit_preprocessing` standardizes by: each column's weighted mean and standard deviation after
    the bounds map, or (``robust``) its median and robust spread where gross outliers rule it (``_gross``)."""
    dequantized, cell_width = dequantized_columns(X, low, high, dequantize)
    unbounded = _Unbounded(X, low, high)
    minimum, maximum, mean, std = _weighted_moments(unbounded, weights, X.shape[1])
    robust_scaled = None
    if robust:
        median, spread = _weighted_median_and_spread(unbounded, weights)
        robust_scaled = _gross(std, spread, dequantized & ~_bounded(low, high), cell_width)
        mean, std = np.where(robust_scaled, (median, spread), (mean, std))
    return _ColumnStatistics(dequantized, cell_width, minimum, maximum, mean, std, robust_scaled)


def _check_float32_range(standardized_min: np.ndarray, standardized_max: np.ndarray, standardize: bool) -> None:
    """The learned layers train in float32: the standardized values must be representable there."""
    extreme = np.maximum(np.abs(standardized_min), np.abs(standardized_max))
    too_large = ~(extreme < np.finfo(np.float32).max)
    if too_large.any():
        columns = np.flatnonzero(too_large).tolist()
        remedy = (
            "the spread of these columns is too small for their magnitude (values at the float64 limits); "
            "rescale or center them"
            if standardize
            else "use standardize=True or rescale them"
        )
        raise ValueError(
            f"feature(s) {columns} of X reach beyond float32's range once standardized, where the flow trains: "
            + remedy
        )


def make_augment(preprocessing: Preprocessing, device: torch.device):
    """Training-time noise on the preprocessed float32 rows, or None.

    Dequantized columns get U[-w/2, w/2) in data units, ``w`` their cell
    width (w / scale in standardized units); constant columns get N(0, 1) in standardized units,
    i.e. N(0, CONSTANT_COLUMN_SCALE^2) in data units. Where a dequantized
    column also has an asinh tail, the noise is added before that map, as it
    would be to the data.
    """
    dequantized, constant = preprocessing.dequantized, preprocessing.constant
    if not (dequantized.any() or constant.any()):
        return None
    if (dequantized & _bounded(preprocessing.low, preprocessing.high)).any():
        return _augment_in_data_units(preprocessing, device)
    uniform_scale = torch.as_tensor(preprocessing.noise_width() / preprocessing.scale, dtype=torch.float32)
    normal_scale = torch.as_tensor(constant.astype(np.float32))
    uniform_scale, normal_scale = uniform_scale.to(device), normal_scale.to(device)
    tails = None
    if ((preprocessing.lower_tails | preprocessing.upper_tails) & dequantized).any():
        tails = AsinhTails(torch.from_numpy(preprocessing.lower_tails), torch.from_numpy(preprocessing.upper_tails))
        tails = tails.to(device)

    def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(batch.shape, generator=generator).to(batch.device) - 0.5
        e = torch.randn(batch.shape, generator=generator).to(batch.device)
        if tails is None:
            return batch + u * uniform_scale + e * normal_scale
        return tails(tails.inverse(batch)[0] + u * uniform_scale + e * normal_scale)[0]

    return augment


def _augment_in_data_units(preprocessing: Preprocessing, device: torch.device):
    """:func:`make_augment`'s noise where a dequantized column is bounded: the rows are mapped back to the data
    through the whole fixed part, in float64 (a count near 1e6 is resolved there, not in float32), the
    dequantized columns' cells are noised there, and those columns are mapped forward again, since a cell of
    the data is no cell of its log or logit; the other columns stay as they were. A draw on a bound (a cell's
    edge may be one: ``dequantized_columns``) is moved just inside, where the map is finite."""
    arguments = preprocessing.flow_arguments()
    layers = [layer.to(device).double() for layer in preprocessing_layers(len(preprocessing.low), **arguments)]
    noised = torch.as_tensor(preprocessing.dequantized, device=device)
    width = torch.as_tensor(preprocessing.noise_width(), dtype=torch.float64, device=device)
    normal_scale = torch.as_tensor(preprocessing.constant.astype(np.float32), device=device)
    low, high = (
        torch.as_tensor(bound, dtype=torch.float64, device=device) for bound in (preprocessing.low, preprocessing.high)
    )
    inside_low, inside_high = torch.nextafter(low, high), torch.nextafter(high, low)

    def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(batch.shape, generator=generator).to(batch.device) - 0.5
        e = torch.randn(batch.shape, generator=generator).to(batch.device)
        data = batch.double()
        for layer in reversed(layers):
            data = layer.inverse(data)[0]
        data = torch.minimum(torch.maximum(data + u.double() * width, inside_low), inside_high)
        for layer in layers:
            data = layer(data)[0]
        return torch.where(noised, data.to(batch.dtype), batch) + e * normal_scale

    return augment
