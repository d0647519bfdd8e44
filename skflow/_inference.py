"""Inference in memory-bounded batches: a flow's maps over arrays of any size, and the bounds checks around them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._core.device import to_numpy, to_tensor
from ._preprocessing import has_bounds, outside_bounds

# Rows per batch at most: bounds peak memory for any input size.
INFERENCE_BATCH_SIZE = 65536
# Bytes the flow's intermediates may take per inference batch (see batch_rows).
INFERENCE_MEMORY = 64 * 2**20


def batch_rows(n_features: int, hidden_units: Sequence[int], n_bins: int) -> int:
    """Rows per batch, so that the flow's intermediates stay near INFERENCE_MEMORY bytes.

    A spline layer holds a few float64 tensors of (rows, features, 3 * n_bins)
    (parameters, knot table); the conditioner holds (rows, width) activations.
    """
    width = max([n_features, *hidden_units])
    per_row = 8 * (6 * n_features * (3 * n_bins + 4) + 4 * width)
    return int(np.clip(INFERENCE_MEMORY // per_row, 256, INFERENCE_BATCH_SIZE))


def map_in_batches(
    function: Callable[[torch.Tensor], torch.Tensor],
    X: np.ndarray,
    rows: int,
    device: torch.device,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray:
    """``function`` over the rows of ``X``, ``rows`` at a time, into one output array of ``dtype``.

    Filled in place, batch by batch: no list of chunks and no concatenated copy.
    """
    n_rows = X.shape[0]
    output = np.empty((0,), dtype=dtype)
    with torch.inference_mode():
        for start in range(0, n_rows, rows):
            result = to_numpy(function(to_tensor(X[start : start + rows], device)))
            if start == 0:
                output = np.empty((n_rows, *result.shape[1:]), dtype=dtype)
            output[start : start + rows] = result
    return output


def rows_outside_bounds(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows on or outside the bounds, checked batch by batch (no full-size temporaries)."""
    outside = np.zeros(X.shape[0], dtype=bool)
    if has_bounds(low, high):
        for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
            rows = slice(start, start + INFERENCE_BATCH_SIZE)
            outside[rows] = outside_bounds(X[rows], low, high)
    return outside


def clip_inside_bounds(X: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Move values that rounded onto a bound (far latent tails; float32 output) just inside it, in place.

    The flow maps onto the open interval, but its float result can equal a
    bound, where the density is undefined (score -inf, transform refuses).
    """
    if not has_bounds(low, high):
        return X
    inner_low, inner_high = low.astype(X.dtype), high.astype(X.dtype)
    # The nearest values of X's dtype strictly inside the (float64) bounds.
    inner_low = np.where(inner_low <= low, np.nextafter(inner_low, X.dtype.type(np.inf)), inner_low)
    inner_high = np.where(inner_high >= high, np.nextafter(inner_high, X.dtype.type(-np.inf)), inner_high)
    inner_low = np.where(np.isfinite(low), inner_low, -np.inf).astype(X.dtype)
    inner_high = np.where(np.isfinite(high), inner_high, np.inf).astype(X.dtype)
    for start in range(0, X.shape[0], INFERENCE_BATCH_SIZE):
        rows = X[start : start + INFERENCE_BATCH_SIZE]
        np.clip(rows, inner_low, inner_high, out=rows)
    return X
