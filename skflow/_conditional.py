"""Support for conditional models: target checks and the fixed latent points of conditional means."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import qmc

from ._validation import non_numeric_columns

# Gauss-Hermite nodes (probabilists') for the conditional mean of one target: E[f^-1(Z; x)], Z ~ N(0, 1).
N_MEAN_NODES = 64
# Fixed scrambled-Sobol latent points for the conditional mean of several targets.
N_MEAN_POINTS = 512


def mean_rule(n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """Latent points (n_points, n_targets) and weights (summing to 1) whose weighted sum of g is E[g(Z)].

    One target: Gauss-Hermite quadrature, exact for polynomials of degree
    below ``2 * N_MEAN_NODES``. Several: a fixed randomized quasi-Monte Carlo
    set (scrambled Sobol with seed 0, mapped through the normal quantile).
    """
    if n_targets == 1:
        nodes, weights = np.polynomial.hermite_e.hermegauss(N_MEAN_NODES)
        return nodes[:, None], weights / weights.sum()
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
