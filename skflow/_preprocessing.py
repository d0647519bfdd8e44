"""Input checks and the fixed preprocessing decided at fit time: bounds, standardization, dequantization.

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


def has_bounds(low: np.ndarray, high: np.ndarray) -> bool:
    """Whether any feature has a finite lower or upper bound."""
    return bool(np.isfinite(low).any() or np.isfinite(high).any())


def outside_bounds(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows with a value on or beyond a bound (where the density is zero)."""
    return ((X <= low) | (X >= high)).any(axis=1)


# Beyond 2**53 every float64 is an integer: such columns are not counts.
LARGEST_EXACT_INTEGER = 2.0**53


def integer_columns(X: np.ndarray) -> np.ndarray:
    """Columns whose training values are all integers of moderate size (counts, ratings, pixel levels)."""
    return np.all(X == np.round(X), axis=0) & (np.abs(X).max(axis=0, initial=0.0) <= LARGEST_EXACT_INTEGER)


def location_and_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations without overflow for magnitudes up to the float64 limit.

    ``X.var()`` squares the values and overflows above about 1e154; dividing by
    each column's largest magnitude first keeps the arithmetic in range.
    """
    magnitude = np.abs(X).max(axis=0, initial=0.0)
    magnitude = np.where(magnitude > 0, magnitude, 1.0)
    unit = X / magnitude
    return unit.mean(axis=0) * magnitude, unit.std(axis=0) * magnitude


def non_numeric_columns(X) -> list[tuple[object, str]]:
    """(column, reason) for each column of a DataFrame or 2-D object/string array that is not numeric.

    Lets validation name the offending columns instead of failing on the first
    string it meets. Values that are neither numbers nor strings (a dict, a
    list) are left to scikit-learn, which raises its usual ``TypeError``.
    """
    columns = getattr(X, "columns", None)
    dtypes = getattr(X, "dtypes", None)
    if columns is not None and dtypes is not None and hasattr(X, "iloc"):  # pandas-like DataFrame
        found = []
        for j, (name, dtype) in enumerate(zip(columns, dtypes)):
            kind = getattr(dtype, "kind", "O")
            if str(dtype) == "category":
                found.append((name, "categorical"))
            elif kind in "mM":
                found.append((name, f"{dtype} (dates and durations are not densities' inputs)"))
            elif kind not in "biuf" and not _converts_to_float(X.iloc[:, j].to_numpy()):
                found.append((name, f"{dtype} holding non-numeric values"))
        return found
    if isinstance(X, list | tuple):  # nested lists: look at them as numpy would
        try:
            X = np.asarray(X)
        except ValueError:  # ragged: left to scikit-learn's message
            return []
    dtype = getattr(X, "dtype", None)
    if dtype is not None and dtype.kind in "mM" and getattr(X, "ndim", 0) == 2:
        return [(j, f"{dtype} (dates and durations are not densities' inputs)") for j in range(X.shape[1])]
    if dtype is not None and dtype.kind in "OUS" and getattr(X, "ndim", 0) == 2:
        return [
            (j, f"{dtype} holding non-numeric values") for j in range(X.shape[1]) if not _converts_to_float(X[:, j])
        ]
    return []


def _converts_to_float(values: np.ndarray) -> bool:
    try:
        np.asarray(values, dtype=np.float64)
    except ValueError:  # a string that is not a number; TypeError (dicts, lists) is left to scikit-learn
        return False
    return True


def check_numeric(X, estimator_name: str) -> None:
    """Raise a ``ValueError`` naming the non-numeric columns of ``X``, if any."""
    found = non_numeric_columns(X)
    if found:
        listed = ", ".join(f"{name!r} ({reason})" for name, reason in found)
        raise ValueError(
            f"{estimator_name} needs numeric features, but column(s) {listed} of X are not numeric. "
            "Encode them first (e.g. with OrdinalEncoder: integer codes are then dequantized) or drop them."
        )


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

    # A constant integer column that is dequantized is not degenerate: its
    # training values are spread uniformly over one unit around the integer.
    constant = (np.ptp(X_unbounded, axis=0) == 0) & ~dequantized
    if standardize:
        loc, std = location_and_scale(X_unbounded)
        # Dequantized columns are standardized with the spread of the noisy values.
        scale = np.where(dequantized, np.hypot(std, np.sqrt(1.0 / 12.0)), std)
    else:
        loc = np.zeros(X.shape[1])
        scale = np.ones(X.shape[1])
    if constant.any():
        # Centre the floor on the value even without standardization, so the
        # column's training values sit at 0 in the flow's units.
        loc = np.where(constant, X_unbounded[0], loc)
        scale = np.where(constant, CONSTANT_COLUMN_SCALE, scale)
        warnings.warn(
            f"feature(s) {np.flatnonzero(constant).tolist()} are constant; each is modelled as a normal "
            f"with standard deviation {CONSTANT_COLUMN_SCALE:g} around its value"
            + (" (in log/logit units for bounded ones)" if (constant & bounded_columns).any() else ""),
            UserWarning,
            stacklevel=3,
        )
    # The flow trains in float32: standardized values must stay within its range.
    with np.errstate(over="ignore", invalid="ignore"):
        standardized = (X_unbounded - loc) / scale
    if not (np.abs(standardized) < np.finfo(np.float32).max).all():
        raise ValueError(
            "X has values too large in magnitude for training once standardized (overflow in float32); "
            "rescale the features or use standardize=True"
        )
    return Preprocessing(low=low, high=high, loc=loc, scale=scale, dequantized=dequantized, constant=constant)
