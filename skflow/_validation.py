"""Input checks shared by the estimators, and the one import of scikit-learn's private validation helpers."""

from __future__ import annotations

from numbers import Integral
from typing import NamedTuple

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_array

__all__ = [
    "Interval",
    "StrOptions",
    "_fit_context",
    "check_latent",
    "check_numeric",
    "drop_zero_weight_rows",
    "positive_weights",
]


class NonNumeric(NamedTuple):
    """A column that is not numeric: its name or index, why, and whether its values are of a wrong type.

    ``wrong_type``: values that are neither numbers nor strings (a pandas
    ``Period`` or ``Interval``, a dict), for which scikit-learn's convention
    is a ``TypeError``; strings that are not numbers get a ``ValueError``.
    """

    column: object
    reason: str
    wrong_type: bool = False


def non_numeric_columns(X) -> list[NonNumeric]:
    """Each column of a DataFrame or 2-D object/string array that is not numeric.

    Lets validation name the offending columns instead of failing on the first
    value it cannot convert.
    """
    columns = getattr(X, "columns", None)
    dtypes = getattr(X, "dtypes", None)
    if columns is not None and dtypes is not None and hasattr(X, "iloc"):  # pandas-like DataFrame
        found = []
        for j, (name, dtype) in enumerate(zip(columns, dtypes)):
            kind = getattr(dtype, "kind", "O")
            if str(dtype) == "category":
                found.append(NonNumeric(name, "categorical"))
            elif kind in "mM":
                found.append(NonNumeric(name, f"{dtype} (dates and durations are not densities' inputs)"))
            elif kind not in "biuf" and (problem := _float_conversion_problem(name, dtype, X.iloc[:, j].to_numpy())):
                found.append(problem)
        return found
    if isinstance(X, list | tuple):  # nested lists: look at them as numpy would
        try:
            X = np.asarray(X)
        except ValueError:  # ragged: left to scikit-learn's message
            return []
    dtype = getattr(X, "dtype", None)
    if dtype is not None and dtype.kind in "mM" and getattr(X, "ndim", 0) == 2:
        return [NonNumeric(j, f"{dtype} (dates and durations are not densities' inputs)") for j in range(X.shape[1])]
    if dtype is not None and dtype.kind in "OUS" and getattr(X, "ndim", 0) == 2:
        problems = (_float_conversion_problem(j, dtype, X[:, j]) for j in range(X.shape[1]))
        return [problem for problem in problems if problem]
    return []


def _float_conversion_problem(column, dtype, values: np.ndarray) -> NonNumeric | None:
    try:
        np.asarray(values, dtype=np.float64)
    except ValueError:  # a string that is not a number
        return NonNumeric(column, f"{dtype} holding non-numeric values")
    except TypeError as error:  # a Period, Interval, dict or list: numpy's message names the type
        return NonNumeric(column, f"{dtype} holding values that are not numbers: {error}", wrong_type=True)
    return None


def non_numeric_error(found: list[NonNumeric]) -> tuple[type[Exception], str]:
    """The error to raise for ``found`` columns (a ``TypeError`` if any holds values that are neither numbers
    nor strings, as scikit-learn raises for those; a ``ValueError`` otherwise) and their listing."""
    error = TypeError if any(problem.wrong_type for problem in found) else ValueError
    return error, ", ".join(f"{problem.column!r} ({problem.reason})" for problem in found)


def check_numeric(X, estimator_name: str) -> None:
    """Raise an error naming the non-numeric columns of ``X``, if any.

    A ``TypeError`` when some column holds values that are neither numbers
    nor strings (as scikit-learn raises for those), a ``ValueError`` otherwise.
    """
    check_has_columns(X, "X", "feature", estimator_name)
    found = non_numeric_columns(X)
    if found:
        error, listed = non_numeric_error(found)
        raise error(
            f"{estimator_name} needs numeric features, but column(s) {listed} of X are not numeric. "
            "Encode them first (e.g. with OrdinalEncoder: integer codes are then dequantized) or drop them."
        )


def check_has_columns(data, name: str, what: str, estimator_name: str) -> None:
    """Refuse a DataFrame without columns, naming the problem.

    scikit-learn says so of an array of shape (n, 0), but a DataFrame of no
    columns fails inside its validation with numpy's "at least one array or
    dtype is required".
    """
    if hasattr(data, "iloc") and getattr(data, "ndim", 1) == 2 and data.shape[1] == 0:
        raise ValueError(f"{estimator_name} needs at least one {what}, but {name} is a DataFrame with no columns")


def check_latent(Z, n_features: int, estimator_name: str) -> np.ndarray:
    """Latent points for ``inverse_transform``: numeric, finite, ``n_features`` columns, float32 or float64.

    Their column names are not checked: latent columns are not the data's
    (``transform``'s pandas output names them ``flowdensity0``, ...).
    """
    check_numeric(Z, estimator_name)
    Z = check_array(Z, dtype=(np.float64, np.float32), input_name="X")
    if Z.shape[1] != n_features:
        raise ValueError(
            f"X has {Z.shape[1]} features, but {estimator_name} is expecting {n_features} features "
            "as input (latent points: one coordinate per feature)"
        )
    return Z


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


def check_n_samples(n_samples) -> None:
    """``sample``'s draw count: a positive int (not a bool)."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
