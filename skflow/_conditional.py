"""Support for conditional models: training data and target checks, the fixed latent points of conditional means."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm, qmc
from sklearn.utils.validation import check_array, validate_data

from ._core.device import resolve_device
from ._fitting import check_learning_rate_and_weight_decay
from ._validation import check_numeric, drop_zero_weight_rows, non_numeric_columns, positive_weights

# The conditional mean of one target, E[f^-1(Z; x)] with Z ~ N(0, 1): composite 2-point Gauss-Legendre
# rule on MEAN_PANELS equal panels of [-MEAN_LATENT_BOUND, MEAN_LATENT_BOUND], weighted by the normal
# density (128 flow evaluations per row). The splines make f^-1 only piecewise smooth, which caps
# Gauss-Hermite's accuracy (64 nodes were off by 2% of a standard deviation on a bimodal fit); rules of
# this size were off by 3e-4 to 1e-3 of one there, against a 12,000-point rule. The normal mass beyond
# 7 is 3e-12.
MEAN_PANELS = 64
MEAN_NODES_PER_PANEL = 2
MEAN_LATENT_BOUND = 7.0
# Fixed scrambled-Sobol latent points for the conditional mean of several targets.
N_MEAN_POINTS = 512


def mean_rule(n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent points (n_points, n_targets) and weights (summing to 1) whose weighted sum of g is E[g(Z)].

    One target: composite Gauss-Legendre quadrature against the normal
    density (see ``MEAN_PANELS``). Several: a fixed randomized quasi-Monte
    Carlo set (scrambled Sobol with seed 0, mapped through the normal quantile).
    """
    if n_targets == 1:
        nodes, weights = np.polynomial.legendre.leggauss(MEAN_NODES_PER_PANEL)
        edges = np.linspace(-MEAN_LATENT_BOUND, MEAN_LATENT_BOUND, MEAN_PANELS + 1)
        half_width = np.diff(edges)[:, None] / 2
        points = (edges[:-1, None] + half_width * (nodes + 1)).ravel()
        weights = (half_width * weights).ravel() * norm.pdf(points)
        return points[:, None], weights / weights.sum()
    points = qmc.Sobol(n_targets, scramble=True, seed=0).random(N_MEAN_POINTS)
    return ndtri(points), np.full(N_MEAN_POINTS, 1.0 / N_MEAN_POINTS)


def check_numeric_target(y, name: str) -> None:
    """Raise a ValueError naming the problem for a target that is not numbers in one or two dimensions."""
    frame = y.to_frame() if hasattr(y, "to_frame") else y
    values = frame if hasattr(frame, "iloc") else np.asarray(y, dtype=object if isinstance(y, list) else None)
    ndim = getattr(values, "ndim", 0)
    if ndim > 2:
        raise ValueError(f"{name}: y must be 1-D (one target) or 2-D (one column per target), got a {ndim}-D array")
    if ndim == 0:
        return  # scikit-learn's validation names that problem
    found = non_numeric_columns(values if ndim == 2 else np.asarray(values)[:, None])
    if found:
        listed = ", ".join(f"{column!r} ({reason})" for column, reason in found)
        raise ValueError(f"{name} needs a numeric target, but target column(s) {listed} of y are not numeric")


def scored_targets(y, n_rows: int, n_targets: int, name: str) -> np.ndarray:
    """The targets to score, as a float64 (n_rows, n_targets) array (infinite values kept: they score -inf)."""
    check_numeric_target(y, name)
    y = check_array(y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False, input_name="y")
    Y = y.reshape(y.shape[0], -1)
    if Y.shape != (n_rows, n_targets):
        raise ValueError(f"y has shape {y.shape}; expected {n_rows} row(s) (one per row of X) of {n_targets} target(s)")
    if np.isnan(Y).any():
        raise ValueError("y contains NaN")
    return Y


def validate_regression_data(estimator, X, y, sample_weight, reset: bool = True):
    """Checked X, y as a float64 (n, n_targets) array and weights, restricted to rows of positive weight.

    ``reset=True`` (``fit``, a first ``partial_fit``) records the features,
    ``n_targets_``, ``target_names_in_`` (for a named pandas ``y``), the shape
    of ``y`` and the device; ``reset=False`` (a later
    ``partial_fit`` chunk) checks X's features and y's number of targets
    against them, sets nothing, and takes a single row.
    """
    name = type(estimator).__name__
    check_numeric(X, name)
    check_numeric_target(y, name)
    min_rows = 2 if reset else 1
    target_names = _target_names(y)
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


def context_scaling(X: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean and standard deviation of the features (1 for a constant one): their context scaling."""
    mean = np.average(X, axis=0, weights=weights)
    std = np.sqrt(np.average(np.square(X - mean), axis=0, weights=weights))
    return mean, np.where(std > 0, std, 1.0)
