"""Copies of training rows: each distinct row fitted once, carrying its copies' weight.

Early stopping, and every other choice a regressor's fit makes on held-out
rows (the ridge or the flow, the layer kind, the trees' feature, the latent
scale) and the trees' out-of-fold prediction, assume that a held-out row is
new to the model. A copy of a training row is not: where many rows are copies, the
validation rows mostly have a twin among the training rows, every held-out
score rewards memorizing, and the model comes out far too narrow. On 200
rows of ``load_diabetes``, each given twice, the default's 90% intervals
covered 0.48 of new rows (test log-likelihood -8.8) where the 200 rows alone
gave 0.93 (-5.3); 150 synthetic rows given twice, 0.43 against 0.90.

A row of weight ``w`` has the likelihood of ``w`` copies of it, so merging
the copies into one row with their summed weight leaves the fitted
likelihood as it was and keeps each distinct row on one side of every split.
That is done only where copies cannot be the data's nature: where some
column (a feature, or a regressor's target) takes at least ``CONTINUOUS_SHARE`` as
many distinct values as there are distinct rows (and ``CONTINUOUS_VALUES``), not all of
them integers, so that equal rows are not draws that happen to coincide, and where
copies are at least ``COPY_SHARE`` of the rows. Discrete data (categories, counts)
repeat rows because their values do; there a held-out repeat is what new rows look
like (one column of Poisson counts has as many distinct values as distinct rows).
"""

from __future__ import annotations

import warnings

import numpy as np

from ._preprocessing import integer_columns

# Copies are merged where they are at least this share of the rows. Measured (benchmarks/experiments/copies.py,
# 300 rows, two draws; test log-likelihood and 90% coverage, as given -> merged): at 10% -0.408 -> -0.406 and
# -0.388 -> -0.444 (coverage 0.91 -> 0.92, 0.88 -> 0.95), mixed; at 20% -0.458 -> -0.478 and -0.567 -> -0.441
# (0.88 -> 0.92, 0.86 -> 0.93); at 30% +0.18 and +0.20 (0.83, 0.78 -> 0.90, 0.93); at 50% -2.75 -> -0.45.
# The UCI sets have at most 15% (wine 240 of 1,599 rows; protein 3.7%, concrete 2.4%, power 0.4%): none merged.
COPY_SHARE = 0.2
# A column with at least this many distinct values per distinct row, and at least CONTINUOUS_VALUES of them, not
# all integers, is continuous: its equal values are copies. Fewer values (a constant column, a handful of levels)
# or integers (counts, scores) cannot tell.
CONTINUOUS_SHARE = 0.5
CONTINUOUS_VALUES = 10
# Rows per batch of the screening keys (_row_keys): a float64 copy of this many rows at a time. The exact test,
# np.unique of whole rows, took 11.5 s and 1.5 GB beyond 3,000,000 x 16 float32 rows (183 MB) of data without
# copies; FlowDensity's fit is held to 3 times its input (benchmarks/fit_memory.py).
KEY_BATCH_ROWS = 65536


def merged_copies(
    X: np.ndarray, Y: np.ndarray, weights: np.ndarray, estimator_name: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, weights)`` with copies of rows merged into their first occurrence, weights summed, where the
    module's rule says they are copies (warning how many); otherwise the arrays as given."""
    if X.shape[0] - np.unique(_row_keys(X, Y)).size < COPY_SHARE * X.shape[0]:
        return X, Y, weights  # equal rows have equal keys: fewer copies than that, without sorting whole rows
    rows = np.hstack([X, Y])
    _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    n_copies = rows.shape[0] - first.size
    if n_copies < COPY_SHARE * rows.shape[0] or not _has_continuous_column(rows, first.size):
        return X, Y, weights
    order = np.argsort(first)  # distinct rows in the order of their first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    summed = np.bincount(rank[inverse.ravel()], weights=weights, minlength=order.size)
    warnings.warn(
        f"{estimator_name}: {n_copies} of {rows.shape[0]} training rows are copies of other rows (equal in "
        "every column); each distinct row is fitted once with its copies' summed weight, so that no held-out "
        "row has a twin among the training rows",
        UserWarning,
        stacklevel=6,  # the caller of fit: through the data's validation, fit and its two decorators
    )
    kept = first[order]
    return X[kept], Y[kept], summed / summed.max()  # the largest weight 1, as positive_weights scales them


def _has_continuous_column(rows: np.ndarray, n_distinct_rows: int) -> bool:
    needed = max(CONTINUOUS_SHARE * n_distinct_rows, CONTINUOUS_VALUES)
    integer = integer_columns(rows)
    return any(np.unique(column).size >= needed and not whole for column, whole in zip(rows.T, integer, strict=True))


def _row_keys(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """One number per row, the same for equal rows: a fixed projection, each row summed alone (no BLAS, whose
    summation order can depend on a row's position). So there are at most as many distinct keys as rows."""
    projection = np.random.default_rng(0).uniform(1.0, 2.0, X.shape[1] + Y.shape[1])
    keys = np.empty(X.shape[0])
    with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf or NaN keys, equal for equal rows
        for start in range(0, X.shape[0], KEY_BATCH_ROWS):
            rows = slice(start, start + KEY_BATCH_ROWS)
            keys[rows] = (np.hstack([X[rows], Y[rows]]) * projection).sum(axis=1)
    return keys
