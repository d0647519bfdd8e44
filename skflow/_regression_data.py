"""A regressor's training data: checks of X, y and weights (a whole set, or a later ``partial_fit`` chunk).

Also what a fitted regressor holds, the scaling of the features into the flow's context (heavy-tailed
features as a shifted log), and the target names of a pandas ``y``.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from ._conditional import check_numeric_target, check_target_names
from ._copies import merged_copies
from ._core import Flow
from ._core.device import resolve_device
from ._feature_relevance import relevance_scaled
from ._fitting import check_learning_rate_and_weight_decay
from ._skewness import kelly_skewness, least_skewed_log_shift, skewness
from ._validation import check_numeric, drop_zero_weight_rows, positive_weights

# A feature whose skewness exceeds this enters the context as a shifted log, where that at least halves the
# skewness: its bulk is squeezed into a corner of the standardized context, which the conditioners resolve
# from few rows (a log-normal feature cost 0.05 nats a row, concrete's age in days 0.03-0.05;
# docs/regression_design_notes.md, "Heavy-tailed features").
SKEWED_FEATURE = 2.0
# ... and where its bulk is skewed too, Kelly's quantile skewness (q90 + q10 - 2 q50) / (q90 - q10) above this:
# a tail of a few outliers (protein's feature 6: skewness 21, Kelly's 0.10) is no scale of the bulk, and its
# log would make a far outlier of any value near the shift.
SKEWED_BULK = 0.25
# ... and where at most this share of the rows sits at its smallest value: the log of an amount with many zeros
# parts the pile from the rest by a gap that dwarfs the rest's spread (Boston's ZN: 74% zeros).
MAX_SHARE_AT_MINIMUM = 0.1

# What a fitted FlowRegressor holds, by kind (skflow._persistence checks a loaded one against it). Per-target
# arrays, the flow and the context scaling are checked by type here, their sizes by the regressor's __setstate__.
REGRESSOR_FITTED_ATTRIBUTES: dict = {
    "n_features_in_": "int",
    "n_targets_": "int",
    "device_": "device",
    "flow_": Flow,
    "latent_scale_": np.ndarray,
    "ensemble_": "estimators",
    "x_location_": np.ndarray,  # n_features_in_ values, plus n_targets_ with the boosted feature
    "x_scale_": np.ndarray,
    "x_log_shift_": np.ndarray,  # n_features_in_ values: c of log(x + c) in the context, NaN for a feature as given
    "tree_nodes_": np.ndarray,  # checked by skflow._boosted_feature.check_fitted_widths
    "tree_roots_": np.ndarray,
    "tree_baseline_": np.ndarray,
    "boosted_feature_": bool,
    "location_": np.ndarray,
    "scale_": np.ndarray,
    "low_": np.ndarray,
    "high_": np.ndarray,
    "dequantized_": np.ndarray,
    "target_range_": np.ndarray,
    "context_range_": np.ndarray,  # features (logged ones as their log) and trees' predictions; check_fitted_widths
    "asinh_columns_": np.ndarray,
    "hidden_units_": tuple,
    "n_bins_": "int",
    "batch_size_": "int",
    "loss_curve_": "floats",
    "validation_scores_": "floats",
    "best_epoch_": "int",
    "n_iter_": "int",
}


def validate_regression_data(estimator, X, y, sample_weight, reset: bool = True, merge_copies: bool = False):
    """Checked X, y as a float64 (n, n_targets) array and weights, restricted to rows of positive weight.

    ``reset=True`` (``fit``, a first ``partial_fit``) records the features,
    ``n_targets_``, ``target_names_in_`` (for a named pandas ``y``), the shape
    of ``y`` and the device; ``reset=False`` (a later
    ``partial_fit`` chunk) checks X's features and y's number of targets
    (and a DataFrame's target names) against them, sets nothing, and takes a single row.
    """
    name = type(estimator).__name__
    check_numeric(X, name)
    check_numeric_target(y, name)
    min_rows = 2 if reset else 1
    target_names = _target_names(y)
    if not reset:  # a later chunk's targets by name, as score_samples takes them
        check_target_names(y, getattr(estimator, "target_names_in_", None), name)
    X, y = validate_data(
        estimator, X, y, multi_output=True, y_numeric=True, dtype=np.float64, ensure_min_samples=min_rows, reset=reset
    )
    Y = np.asarray(y, dtype=np.float64).reshape(y.shape[0], -1)
    if not reset and Y.shape[1] != estimator.n_targets_:
        raise ValueError(f"y has {Y.shape[1]} target(s), but {name} was fitted on {estimator.n_targets_}")
    weights, X, Y = drop_zero_weight_rows(
        positive_weights(sample_weight, X), X, Y, estimator_name=name, min_rows=min_rows
    )
    check_learning_rate_and_weight_decay(estimator)
    if merge_copies:
        X, Y, weights = merged_copies(X, Y, weights, name)
    if reset:
        estimator._y_ndim, estimator.n_targets_ = y.ndim, Y.shape[1]
        estimator.device_ = resolve_device(estimator.device)
        if target_names is None:
            estimator.__dict__.pop("target_names_in_", None)  # as scikit-learn drops a stale feature_names_in_
        else:
            estimator.target_names_in_ = target_names
    return X, Y, weights


def _target_names(y) -> np.ndarray | None:
    """The names of a pandas target (a named Series, or a DataFrame's columns) when all are strings."""
    names = [y.name] if hasattr(y, "to_frame") else list(getattr(y, "columns", []))
    if not names or not all(isinstance(name, str) for name in names):
        return None
    return np.asarray(names, dtype=object)


def context_scaling(
    X: np.ndarray, weights: np.ndarray, relevance: np.ndarray | None = None, log_shifts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of the features (1 for a constant one), those whose ``log_shifts``
    is not NaN as their log (:func:`logged_features`): their context scaling; with ``relevance``, the first
    ``len(relevance)`` scales divided by it (:mod:`skflow._feature_relevance`).

    Each column is divided by its largest magnitude first: the sum and the squares of values near
    1e300 would overflow to inf, and a context scaled by inf is zero, a model that ignores X.
    """
    X = logged_features(X, log_shifts)
    magnitude = np.abs(X).max(axis=0, initial=0.0)
    magnitude = np.where(magnitude > 0, magnitude, 1.0)
    scaled = X / magnitude
    mean = np.average(scaled, axis=0, weights=weights)
    std = np.sqrt(np.average(np.square(scaled - mean), axis=0, weights=weights))
    scale = np.where(std > 0, std * magnitude, 1.0)
    return mean * magnitude, scale if relevance is None else relevance_scaled(scale, relevance)


def log_feature_shifts(X: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per feature, ``c`` where the context takes ``log(x + c)``, else NaN: for a feature whose weighted skewness
    exceeds ``SKEWED_FEATURE``, whose bulk is skewed (``SKEWED_BULK``), with no pile at its smallest value
    (``MAX_SHARE_AT_MINIMUM``), and which its least skewed shifted log
    (:func:`skflow._skewness.least_skewed_log_shift`) at least halves.

    Skewness moves with no change of units or origin, so a feature standardized first (a ``StandardScaler``
    before the regressor) gets the same log, and the same context. A log-normal feature's ``c`` comes out
    near 0: ``log(x + c)`` is then about ``log x``.
    """
    shifts = np.full(X.shape[1], np.nan)
    for j in np.flatnonzero(np.ptp(X, axis=0) > 0):
        column = X[:, j] / np.abs(X[:, j]).max()
        piled = np.average(column == column.min(), weights=weights) > MAX_SHARE_AT_MINIMUM
        feature_skewness = skewness(column, weights)
        if not feature_skewness > SKEWED_FEATURE or piled or not kelly_skewness(column, weights) > SKEWED_BULK:
            continue
        shift, log_skewness = least_skewed_log_shift(X[:, j], weights)
        if log_skewness <= feature_skewness / 2:
            shifts[j] = shift
    return shifts


def logged_features(columns: np.ndarray, shifts: np.ndarray | None) -> np.ndarray:
    """``columns`` (features first, then any trees' predictions) with ``log(x + c)`` on the features whose
    shift ``c`` (:func:`log_feature_shifts`) is not NaN. A new value at or below ``-c`` takes the log of the
    smallest positive float, and the context's range then holds it (:func:`flow_context`)."""
    logged = np.flatnonzero(~np.isnan(shifts)) if shifts is not None else np.empty(0, dtype=int)
    if not logged.size:
        return columns
    columns = np.array(columns, dtype=np.float64)
    columns[:, logged] = np.log(np.maximum(columns[:, logged] + shifts[logged], np.finfo(float).tiny))
    return columns


def widened_range(rows: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """``(2, n_columns)``: the smallest and largest of each column of ``rows`` (those with weight: the callers
    drop the others) and of ``previous``, the range so far (``target_range_``, ``context_range_``)."""
    extremes = np.stack([rows.min(axis=0), rows.max(axis=0)])
    if previous is None:
        return extremes
    return np.stack([np.minimum(previous[0], extremes[0]), np.maximum(previous[1], extremes[1])])


def flow_context(estimator, features: np.ndarray) -> np.ndarray:
    """A flow's context: its columns of ``features`` (the features, with the trees' prediction where it uses
    them), heavy-tailed features as their log (``x_log_shift_``), held inside ``context_range_`` widened by
    its width on each side, where a fit set one; standardized.

    The flows' conditioners learned the features' effect on the training
    rows' range only; far beyond it an MLP extrapolates without limit, and
    one feature far outside (a noise column at 1e4 where training saw 0 to
    1) moved a whole predictive distribution away from the target. So ``p(y
    | x) := p(y | clip(x))``: every density stays normalized. Clipping at
    the range itself broke near-linear targets with little noise, whose
    rows just beyond it (several percent of new rows with a few Gaussian
    features) lost their trend: 1.4 nats a row below a ridge regression on
    one such set. A width beyond the range on each side, as
    ``target_range_`` widens the targets', leaves every such row alone
    (docs/regression_design_notes.md).
    """
    location, scale = estimator.x_location_, estimator.x_scale_
    columns = logged_features(features[:, : len(location)], estimator.__dict__.get("x_log_shift_"))
    bounds = estimator.__dict__.get("context_range_")
    if bounds is not None:
        low, high = bounds[:, : len(location)]
        width = high - low  # infinite for models saved before the range (-inf, inf): nothing is held
        columns = np.clip(columns, low - width, high + width)
    return (columns - location) / scale
