"""Input checks shared by the estimators, and the one import of scikit-learn's private validation helpers."""

from __future__ import annotations

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight

__all__ = ["Interval", "StrOptions", "_fit_context", "check_numeric", "drop_zero_weight_rows", "positive_weights"]


def non_numeric_columns(X) -> list[tuple[object, str]]:
    """(column, reason) for each column of a DataFrame or 2-D object/string array that is not numeric.

    Lets validation name the offending columns instead of failing on the first
    string it meets, or other values that are not numbers (a pandas
    ``Period`` or ``Interval``, a dict, a list).
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
    except (ValueError, TypeError):  # a string that is not a number; a Period, Interval, dict or list
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


def positive_weights(sample_weight, X: np.ndarray) -> np.ndarray:
    """Validated sample weights as float64, scaled so that the largest is 1.

    Raises a ``ValueError`` for negative, NaN or infinite weights, a wrong
    length, or weights that are all zero. Only relative weights matter; the
    scaling keeps their sum from overflowing.
    """
    weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if weights.max() <= 0:
        raise ValueError("sample_weight must have a positive sum")
    return weights / weights.max()


def drop_zero_weight_rows(weights: np.ndarray, *arrays: np.ndarray, estimator_name: str, min_rows: int = 2):
    """``weights`` and ``arrays`` restricted to the rows of positive weight, which shape nothing otherwise.

    Raises a ``ValueError`` when fewer than ``min_rows`` such rows remain.
    Returns the arrays unchanged (no copy) when every weight is positive.
    """
    if not (weights == 0).any():
        return (weights, *arrays)
    kept = weights > 0
    if kept.sum() < min_rows:
        raise ValueError(
            f"{estimator_name} needs at least {min_rows} row{'s' if min_rows != 1 else ''} with positive "
            f"sample_weight, got {int(kept.sum())}"
        )
    return (weights[kept], *(array[kept] for array in arrays))
