"""Inference in memory-bounded batches: a flow's maps over arrays of any size."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._core.device import to_numpy, to_tensor

# Rows per batch at most: bounds peak memory for any input size.
INFERENCE_BATCH_SIZE = 65536
# Bytes the flow's intermediates may take per inference batch (see batch_rows).
INFERENCE_MEMORY = 64 * 2**20


def batch_rows(n_features: int, hidden_units: Sequence[int], n_bins: int) -> int:
    """Rows per batch, so that the flow's intermediates stay near INFERENCE_MEMORY bytes.

    A spline layer holds a few float64 tensors of (rows, features, 3 * n_bins)
    (its parameters and intermediates); the conditioner holds (rows, width) activations.
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


def sample_in_batches(flow, n_samples: int, n_features: int, rows: int, generator: torch.Generator) -> np.ndarray:
    """``n_samples`` draws of ``flow`` as float64, ``rows`` at a time, filled in place: the output is the only
    full-size array."""
    samples = np.empty((n_samples, n_features))
    with torch.inference_mode():
        for start in range(0, n_samples, rows):
            size = min(rows, n_samples - start)
            samples[start : start + size] = to_numpy(flow.sample(size, generator))
    return samples
