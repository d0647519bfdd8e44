"""Bounded support: parse the ``bounds`` parameter, test and clip rows against it."""

from __future__ import annotations

from numbers import Real

import numpy as np

# Rows per batch when checking or clipping large arrays: no full-size temporaries.
CHECK_BATCH_ROWS = 65536


def _bound(value, j: int, side: str) -> float:
    if value is None:
        return -np.inf if side == "low" else np.inf
    if isinstance(value, bool) or not isinstance(value, Real | np.number):
        raise ValueError(f"bounds[{j}]: {side} must be a number or None, got {value!r}")
    value = float(value)
    if np.isnan(value):
        raise ValueError(f"bounds[{j}]: {side} is NaN; use None for no bound")
    return value


def _is_pair(value) -> bool:
    return (
        isinstance(value, tuple | list | np.ndarray)
        and len(value) == 2
        and all(v is None or np.isscalar(v) for v in value)
    )


def parse_bounds(bounds, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (low, high) arrays from ``None``, one ``(low, high)`` pair, or one pair (or None) per feature.

    ``-inf``/``inf`` (or None) mean no bound on that side. Raises a ``ValueError``
    naming the problem for anything else.
    """
    low = np.full(n_features, -np.inf)
    high = np.full(n_features, np.inf)
    if bounds is None:
        return low, high
    if isinstance(bounds, str) or not hasattr(bounds, "__len__"):
        raise ValueError(f"bounds must be None, a (low, high) pair or one pair per feature, got {bounds!r}")
    # One (low, high) pair of scalars applies to every feature; anything else lists one entry per feature.
    pairs = [tuple(bounds)] * n_features if _is_pair(bounds) else list(bounds)
    for j, pair in enumerate(pairs):
        if pair is not None and (isinstance(pair, str) or not hasattr(pair, "__len__") or len(pair) != 2):
            raise ValueError(f"bounds[{j}] must be a (low, high) pair or None, got {pair!r}")
    if len(pairs) != n_features:
        raise ValueError(
            "bounds must be one (low, high) pair or one pair per feature; "
            f"got {len(pairs)} entries for {n_features} features"
        )
    for j, pair in enumerate(pairs):
        if pair is None:
            continue
        low[j], high[j] = _bound(pair[0], j, "low"), _bound(pair[1], j, "high")
        if not low[j] < high[j]:
            raise ValueError(f"bounds[{j}] = {tuple(pair)!r}: low must be below high")
        if low[j] == np.inf or high[j] == -np.inf:
            raise ValueError(f"bounds[{j}] = {tuple(pair)!r}: a bound of +inf below or -inf above leaves no support")
    return low, high


def has_bounds(low: np.ndarray, high: np.ndarray) -> bool:
    """Whether any feature has a finite lower or upper bound."""
    return bool(np.isfinite(low).any() or np.isfinite(high).any())


def outside_bounds(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows with a value on or beyond a bound (where the density is zero), checked in batches."""
    outside = np.zeros(X.shape[0], dtype=bool)
    if has_bounds(low, high):
        for start in range(0, X.shape[0], CHECK_BATCH_ROWS):
            rows = X[start : start + CHECK_BATCH_ROWS]
            outside[start : start + CHECK_BATCH_ROWS] = ((rows <= low) | (rows >= high)).any(axis=1)
    return outside


def clip_to_support(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Keep mapped-back points strictly inside the bounds and finite, in place.

    The flow maps onto the open support, but a float result can round onto a
    bound (far latent tails; float32 output), where the density is undefined,
    or overflow to +-inf (latent points far beyond the data, through exp or
    sinh): such values become the nearest representable value inside.
    """
    finite_max = np.finfo(X.dtype).max
    inner_low = np.where(np.isfinite(low), low, -finite_max).astype(X.dtype)
    inner_high = np.where(np.isfinite(high), high, finite_max).astype(X.dtype)
    # The nearest values of X's dtype strictly inside the (float64) bounds.
    inner_low = np.where(inner_low <= low, np.nextafter(inner_low, X.dtype.type(np.inf)), inner_low)
    inner_high = np.where(inner_high >= high, np.nextafter(inner_high, X.dtype.type(-np.inf)), inner_high)
    for start in range(0, X.shape[0], CHECK_BATCH_ROWS):
        rows = X[start : start + CHECK_BATCH_ROWS]
        np.clip(rows, inner_low, inner_high, out=rows)
    return X
