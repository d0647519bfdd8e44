"""A one-target flow's tails beyond its training targets' widened range: exponential, with the flow's mass.

Beyond its training targets a flow extrapolates, and through a target's
``asinh`` tail or a bound's ``exp`` its extrapolation grows exponentially.
One data-entry error among 100 training rows (``y = 100``, the rest within
-2.5 to 3) made the default ensemble's 0.9975 quantile exceed 1,000 on 177 of
500 test rows, 2e24 at most, and its CRPS 1e17 (docs/regression_design_notes.md,
"Outliers in the target"). So the flow's distribution is kept only on a range
the data vouch for. With ``[min, max]`` the training targets' range
(``target_range_``), ``w = max - min`` and the splice points ``a = min - w``,
``b = max + w``, the flow's density ``p`` and distribution function ``F``:

    p~(y) = p(y)                                  for a <= y <= b,
    p~(y) = (1 - F(b)) exp(-(y - b) / w) / w      for y > b,
    p~(y) = F(a) exp(-(a - y) / w) / w            for y < a.

Each tail keeps the flow's mass, so ``p~`` is normalized and equals ``p`` on
every training row (training never sees the splice); only the shape of the
mass beyond changes. Quantiles and draws stay exact:
``q~(tau) = b + w log((1 - F(b)) / (1 - tau))`` for ``tau > F(b)``. A side
whose bound of the support (``bounds``) lies at or inside its splice point
keeps the flow's tail, which the bound ends. Several targets keep the flow's
tails: their joint distribution has no such split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr


@dataclass(frozen=True)
class SplicePoints:
    """Where a one-target flow's tails are replaced: ``below`` (-inf: nowhere) and ``above`` (inf: nowhere),
    and ``width`` ``w``, the exponential tails' scale."""

    below: float
    above: float
    width: float


def splice_points(model) -> SplicePoints | None:
    """The splice points of a fitted one-target flow ``model``, or None (several targets, a constant target, or a
    model saved before ``target_range_``: no splice)."""
    if model.n_targets_ != 1:
        return None
    low, high = (float(value) for value in model.target_range_[:, 0])
    width = high - low
    if not (np.isfinite(width) and width > 0):
        return None
    below, above = low - width, high + width
    below = below if below > model.low_[0] else -np.inf
    above = above if above < model.high_[0] else np.inf
    return SplicePoints(below, above, width)


# ``latent(rows, points)``: the standardized latent ``f(points[i]; x) / s`` of each context row ``rows[i]``, so that
# ``F = Phi(latent)``.
Latent = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _log_masses(splice: SplicePoints, latent: Latent, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log F(a)`` and ``log(1 - F(b))`` at context rows ``rows``, each exact in its own tail."""
    if rows.size == 0:
        return np.empty(0), np.empty(0)
    below = log_ndtr(latent(rows, np.full(rows.size, splice.below))) if np.isfinite(splice.below) else None
    above = log_ndtr(-latent(rows, np.full(rows.size, splice.above))) if np.isfinite(splice.above) else None
    minus_inf = np.full(rows.size, -np.inf)
    return (minus_inf if below is None else below), (minus_inf if above is None else above)


def spliced_log_density(splice: SplicePoints, latent: Latent, y: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``log p~(y)`` from the flow's ``values`` = ``log p(y)``, ``y[i]`` given context row ``i``."""
    values = values.copy()
    beyond = np.flatnonzero((y < splice.below) | (y > splice.above))
    log_below, log_above = _log_masses(splice, latent, beyond)
    distance = np.where(y[beyond] > splice.above, y[beyond] - splice.above, splice.below - y[beyond])
    log_mass = np.where(y[beyond] > splice.above, log_above, log_below)
    values[beyond] = log_mass - np.log(splice.width) - distance / splice.width
    return values


def spliced_quantiles(splice: SplicePoints, latent: Latent, levels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``q~(tau)`` (n_rows, n_levels) from the flow's quantiles ``values`` at ``levels``: those beyond a splice
    point (exactly the levels beyond its ``F``, the map being increasing) from the exponential tail."""
    levels = np.broadcast_to(levels, values.shape)
    return _spliced_values(splice, latent, values, np.log(levels), np.log1p(-levels))


def spliced_draws(splice: SplicePoints, latent: Latent, values: np.ndarray, standard_latent: np.ndarray) -> np.ndarray:
    """Draws (n_rows, n_samples) of ``p~`` from the flow's draws ``values``, ``f^-1(s u)`` of the standard normal
    ``u`` (``standard_latent``): each keeps its level ``Phi(u)``, so they are ``p~``'s by inversion."""
    return _spliced_values(splice, latent, values, log_ndtr(standard_latent), log_ndtr(-standard_latent))


def _spliced_values(splice, latent, values, log_levels, log_upper_levels) -> np.ndarray:
    """Values (n_rows, n_points) of levels ``tau`` given as ``log tau`` and ``log(1 - tau)``, the flow's
    inverse replaced by ``p~``'s beyond the splice points."""
    values = values.copy()
    rows = np.flatnonzero(((values < splice.below) | (values > splice.above)).any(axis=1))
    log_below, log_above = _log_masses(splice, latent, rows)
    part = values[rows]
    # Clipped at 0: a level at the splice point, which rounding put beyond it, stays there.
    over = splice.above + splice.width * np.maximum(log_above[:, None] - log_upper_levels[rows], 0.0)
    under = splice.below - splice.width * np.maximum(log_below[:, None] - log_levels[rows], 0.0)
    values[rows] = np.where(part > splice.above, over, np.where(part < splice.below, under, part))
    return values


def spliced_cdf_and_density(
    splice: SplicePoints, latent: Latent, y: np.ndarray, rows: np.ndarray, cdf: np.ndarray, density: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``F~(y)`` and ``p~(y)`` from the flow's ``cdf`` and ``density`` at ``y[i]``, given context row ``rows[i]``."""
    cdf, density = cdf.copy(), density.copy()
    beyond = np.flatnonzero((y < splice.below) | (y > splice.above))
    log_below, log_above = _log_masses(splice, latent, rows[beyond])
    over = y[beyond] > splice.above
    distance = np.where(over, y[beyond] - splice.above, splice.below - y[beyond])
    tail = np.exp(np.where(over, log_above, log_below) - distance / splice.width)  # the mass beyond y
    cdf[beyond] = np.where(over, 1.0 - tail, tail)
    density[beyond] = tail / splice.width
    return cdf, density
