"""Fixed preprocessing decided at fit time: bounds, standardization, dequantization.

Everything here is computed in float64 on the user's data, before the learned
flow sees it; the resulting maps become the first (fixed) layers of the flow so
that their log-determinants enter every density.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# A constant column gets this scale (in the user's units) and is modelled as
# N(value, CONSTANT_COLUMN_SCALE**2): the same floor GaussianMixture's default
# reg_covar=1e-6 puts on a variance.
CONSTANT_COLUMN_SCALE = 1e-3


@dataclass
class Preprocessing:
    low: np.ndarray  # per-feature lower bound, -inf if none
    high: np.ndarray  # per-feature upper bound, +inf if none
    loc: np.ndarray
    scale: np.ndarray
    dequantized: np.ndarray  # bool mask: integer-valued columns that get uniform noise in training
    constant: np.ndarray  # bool mask: zero-variance columns

    @property
    def bounded(self) -> bool:
        return bool(np.isfinite(self.low).any() or np.isfinite(self.high).any())


def parse_bounds(bounds, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (low, high) arrays from ``None``, one ``(low, high)`` pair, or one pair per feature."""
    low = np.full(n_features, -np.inf)
    high = np.full(n_features, np.inf)
    if bounds is None:
        return low, high
    pairs: Sequence = bounds
    if len(bounds) == 2 and all(b is None or np.isscalar(b) for b in bounds):
        pairs = [bounds] * n_features
    if len(pairs) != n_features:
        raise ValueError(
            "bounds must be one (low, high) pair or one pair per feature; "
            f"got {len(pairs)} pairs for {n_features} features"
        )
    for j, pair in enumerate(pairs):
        if pair is None:
            continue
        if len(pair) != 2:
            raise ValueError(f"bounds[{j}] must be a (low, high) pair, got {pair!r}")
        lo, hi = pair
        low[j] = -np.inf if lo is None else float(lo)
        high[j] = np.inf if hi is None else float(hi)
        if not low[j] < high[j]:
            raise ValueError(f"bounds[{j}] = {pair!r}: low must be below high")
    return low, high


def outside_bounds(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows with a value on or beyond a bound (where the density is zero)."""
    return ((X <= low) | (X >= high)).any(axis=1)


def integer_columns(X: np.ndarray) -> np.ndarray:
    return np.all(X == np.round(X), axis=0)


def fit_preprocessing(
    X: np.ndarray, X_unbounded: np.ndarray, low: np.ndarray, high: np.ndarray, standardize: bool, dequantize
) -> Preprocessing:
    """Statistics of the training data. ``X_unbounded`` is X after the bounded-to-real maps."""
    bounded_columns = np.isfinite(low) | np.isfinite(high)
    if dequantize == "auto":
        dequantized = integer_columns(X) & ~bounded_columns
    elif dequantize:
        dequantized = ~bounded_columns
    else:
        dequantized = np.zeros(X.shape[1], dtype=bool)

    constant = np.ptp(X_unbounded, axis=0) == 0
    if standardize:
        loc = X_unbounded.mean(axis=0)
        # Dequantized columns are standardized with the spread of the noisy values.
        spread = X_unbounded.var(axis=0) + np.where(dequantized, 1.0 / 12.0, 0.0)
        scale = np.sqrt(spread)
    else:
        loc = np.zeros(X.shape[1])
        scale = np.ones(X.shape[1])
    dequantized &= ~constant
    if constant.any():
        scale = np.where(constant, CONSTANT_COLUMN_SCALE, scale)
        warnings.warn(
            f"feature(s) {np.flatnonzero(constant).tolist()} are constant; each is modelled as a normal "
            f"with standard deviation {CONSTANT_COLUMN_SCALE:g} around its value",
            UserWarning,
            stacklevel=3,
        )
    return Preprocessing(low=low, high=high, loc=loc, scale=scale, dequantized=dequantized, constant=constant)
