"""Support for conditional models: target checks and the fixed latent points of conditional means."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm, qmc

from ._validation import non_numeric_columns

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
