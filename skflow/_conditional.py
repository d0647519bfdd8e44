"""Support for conditional models: target checks and the fixed latent points of conditional means."""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy import sparse
from scipy.special import ndtri
from scipy.stats import norm, qmc
from sklearn.utils.validation import check_array

from ._validation import check_has_columns, non_numeric_columns, non_numeric_error

# The conditional mean of one target is that of its distribution winsorized at the MEAN_TAIL and 1 - MEAN_TAIL
# quantiles (values beyond held there): E[f^-1(clip(Z, -b, b); x)], b = Phi^-1(1 - MEAN_TAIL), since f^-1 is
# increasing. A flow's tail beyond its training rows is extrapolation, and through a bound's exp it can rule the
# mean: on 100 rows of yacht (log scale), one flow's mean of a row was 2.6e14 where its 99.9% quantile was 79
# and its 1 - 1e-4 quantile 2,220 (winsorized mean 51). A symmetric distribution keeps its exact mean; a
# log-normal loses 0.08% of it at log-sd 1, 2% at 2. Quadrature: composite 2-point Gauss-Legendre on
# MEAN_PANELS equal panels of [-b, b], weighted by the normal density (128 flow evaluations per row), plus b
# and -b with weight MEAN_TAIL each. The splines make f^-1 only piecewise smooth, which caps Gauss-Hermite's
# accuracy (64 nodes were off by 2% of a standard deviation on a bimodal fit); rules of this size were off by
# 3e-4 to 1e-3 of one there, against a 12,000-point rule.
MEAN_PANELS = 64
MEAN_NODES_PER_PANEL = 2
MEAN_TAIL = 1e-4
# Fixed scrambled-Sobol latent points for the conditional mean of several targets (none beyond 3.7: no tail).
N_MEAN_POINTS = 512


def mean_rule(n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent points (n_points, n_targets) and weights (summing to 1) whose weighted sum of g is E[g(Z)].

    One target: composite Gauss-Legendre quadrature against the normal
    density on ``[-b, b]``, and ``b``, ``-b`` carrying the tails' mass
    ``MEAN_TAIL`` each (the winsorized mean: see ``MEAN_TAIL``). Several: a fixed randomized quasi-Monte
    Carlo set (scrambled Sobol with seed 0, mapped through the normal quantile).
    """
    if n_targets == 1:
        bound = float(ndtri(1 - MEAN_TAIL))
        nodes, weights = np.polynomial.legendre.leggauss(MEAN_NODES_PER_PANEL)
        edges = np.linspace(-bound, bound, MEAN_PANELS + 1)
        half_width = np.diff(edges)[:, None] / 2
        points = (edges[:-1, None] + half_width * (nodes + 1)).ravel()
        weights = (half_width * weights).ravel() * norm.pdf(points)
        weights *= (1 - 2 * MEAN_TAIL) / weights.sum()  # the rule's small error in the central mass, spread evenly
        return np.r_[-bound, points, bound][:, None], np.r_[MEAN_TAIL, weights, MEAN_TAIL]
    points = qmc.Sobol(n_targets, scramble=True, seed=0).random(N_MEAN_POINTS)
    return ndtri(points), np.full(N_MEAN_POINTS, 1.0 / N_MEAN_POINTS)


def check_numeric_target(y, name: str) -> None:
    """Raise an error naming the problem for a target that is not numbers in one or two dimensions: a
    ValueError, or a TypeError (as scikit-learn raises) for sparse data or values that are neither numbers nor
    strings."""
    if sparse.issparse(y):  # as scikit-learn words it for X; numpy would fail on it with an unrelated message
        raise TypeError(
            "Sparse data was passed for y, but dense data is required. Use '.toarray()' to convert to a dense numpy "
            "array."
        )
    check_has_columns(y, "y", "target", name)
    frame = y.to_frame() if hasattr(y, "to_frame") else y
    values = frame if hasattr(frame, "iloc") else np.asarray(y, dtype=object if isinstance(y, list) else None)
    ndim = getattr(values, "ndim", 0)
    if ndim > 2:
        raise ValueError(f"{name}: y must be 1-D (one target) or 2-D (one column per target), got a {ndim}-D array")
    if ndim == 0:
        return  # scikit-learn's validation names that problem
    found = non_numeric_columns(values if ndim == 2 else np.asarray(values)[:, None])
    if found:
        error, listed = non_numeric_error(found)
        raise error(f"{name} needs a numeric target, but target column(s) {listed} of y are not numeric")


def check_target_names(y, fitted_names, name: str) -> None:
    """Refuse a DataFrame ``y`` whose column names differ from ``fitted_names`` (``target_names_in_``).

    Scored by position, reordered or renamed targets would give wrong numbers without a word.
    """
    columns = getattr(y, "columns", None)
    if fitted_names is None or columns is None or not all(isinstance(c, str) for c in columns):
        return
    if list(columns) != list(fitted_names):
        raise ValueError(
            f"y has columns {list(columns)}, but {name} was fitted on targets {list(fitted_names)} "
            "(in that order): reorder or rename them"
        )


def check_targets(y, n_rows: int, n_targets: int, name: str, fitted_names=None) -> np.ndarray:
    """Targets to score against a fitted model: float64 (n_rows, n_targets), infinite values kept, NaN refused;
    a DataFrame's columns must be ``fitted_names`` (:func:`check_target_names`)."""
    check_numeric_target(y, name)
    check_target_names(y, fitted_names, name)
    y = check_array(y, ensure_2d=False, dtype=np.float64, ensure_all_finite=False, input_name="y")
    Y = y.reshape(y.shape[0], -1)
    if Y.shape != (n_rows, n_targets):
        raise ValueError(f"y has shape {y.shape}; expected {n_rows} row(s) (one per row of X) of {n_targets} target(s)")
    if np.isnan(Y).any():
        raise ValueError("y contains NaN")
    return Y


def check_levels(quantiles) -> np.ndarray:
    """Quantile levels as a non-empty 1-D float64 array, each in (0, 1)."""
    levels = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))
    if levels.ndim != 1 or levels.size == 0 or not ((levels > 0) & (levels < 1)).all():
        raise ValueError(f"quantiles must be a non-empty 1-D list of levels in (0, 1), got {quantiles!r}")
    return levels


def check_coverage(coverage) -> None:
    if isinstance(coverage, bool) or not isinstance(coverage, Real) or not 0 < coverage < 1:
        raise ValueError(f"coverage must be a number in (0, 1), got {coverage!r}")
