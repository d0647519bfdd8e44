"""What one fitted conditional flow gives: log-density, mean, exact quantiles, distribution function, draws.

Each function takes a fitted single-flow ``model`` (a ``FlowRegressor`` or a
member of its ensemble; read here by its fitted attributes ``flow_``,
``latent_scale_``, ``n_targets_``, ``n_features_in_``, ``low_``, ``high_``,
``target_range_`` and ``device_``) and context rows already standardized by
it. With one target, every function describes the flow with its tails beyond
the widened training range spliced (:mod:`skflow._target_tails`), on their
support (``low_`` and ``high_``, less a bound that ``bounds="auto"`` inferred). The
estimator validates its input and combines its flows (:mod:`skflow._ensemble`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.special import ndtr, ndtri

from ._bounds import clip_to_support, outside_bounds
from ._calibration import scaled_log_prob
from ._conditional import mean_rule
from ._core import IndexedContext, standard_normal_log_prob
from ._core.device import to_tensor
from ._inference import batch_rows, map_in_batches
from ._target_tails import (
    Latent,
    splice_tails,
    spliced_cdf_and_density,
    spliced_inverse,
    spliced_log_density,
    spliced_quantiles,
    support_bounds,
)


def map_rows(model, function: Callable[[torch.Tensor], torch.Tensor], rows: np.ndarray, points_per_row: int):
    """``function(batch)`` over ``rows``, batches sized for ``points_per_row`` flow rows per row."""
    config = model.flow_.config
    flow_rows = batch_rows(model.n_targets_ + model.n_features_in_, config["hidden_units"], config["n_bins"])
    return map_in_batches(function, rows, max(1, flow_rows // points_per_row), model.device_)


def inverse_at(model, latent: np.ndarray, context: np.ndarray) -> np.ndarray:
    """``f^-1(s z; x)`` for every context row and every latent point ``z``: (n_rows, n_points, n_targets)."""
    points = to_tensor(latent * model.latent_scale_, model.device_)
    n_points = points.shape[0]

    def inverse(rows: torch.Tensor) -> torch.Tensor:
        values = model.flow_.inverse(points.repeat(rows.shape[0], 1), IndexedContext.repeated(rows, n_points))[0]
        return values.view(rows.shape[0], n_points, -1)

    return map_rows(model, inverse, context, n_points)


def log_density(model, context: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``log p(y | x)`` per row: finite, or ``-inf`` where it underflows or ``y`` is infinite or out of bounds."""
    k, scale = model.n_targets_, to_tensor(model.latent_scale_, model.device_)
    finite_Y = np.where(np.isfinite(Y), Y, 0.0)
    values = map_rows(
        model, lambda t: scaled_log_prob(model.flow_, scale, t[:, :k], t[:, k:]), np.hstack([finite_Y, context]), 1
    )
    tails = splice_tails(model)
    if tails:
        values = spliced_log_density(tails, _latent_of(model, context), finite_Y[:, 0], values)
    values[outside_bounds(Y, *support_bounds(model, tails)) | ~np.isfinite(Y).all(axis=1)] = -np.inf
    values[~np.isfinite(values)] = -np.inf
    return values


def conditional_mean(model, context: np.ndarray) -> np.ndarray:
    """``E[y | x]`` (n_rows, n_targets) by the fixed latent rule of :func:`skflow._conditional.mean_rule`."""
    latent, weights = mean_rule(model.n_targets_)
    points = inverse_at(model, latent, context)
    tails = splice_tails(model)
    if tails:
        points = spliced_inverse(tails, _latent_of(model, context), points[:, :, 0], latent[None, :, 0])[:, :, None]
    # Inside the support and finite: a far latent point can overflow to inf through exp (bounds).
    points = clip_to_support(points.reshape(-1, model.n_targets_), *support_bounds(model, tails)).reshape(points.shape)
    if not tails:
        # No spliced tails (several targets; or one whose range or bounds leave none): each value held inside the
        # training range widened by its width, beyond which a flow's inverse extrapolates
        # (docs/regression_design_notes.md, "Outliers in the target").
        low, high = model.target_range_
        points = np.clip(points, low - (high - low), high + (high - low))
    return np.einsum("rpk,p->rk", points, weights)  # the average is kept inside by the caller (ensemble_mean)


def exact_quantiles(model, context: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles (n_rows, n_levels) of a single target: ``f^-1(s Phi^-1(tau); x)``, the map being increasing."""
    values = inverse_at(model, ndtri(levels)[:, None], context)[:, :, 0]
    tails = splice_tails(model)
    if tails:
        values = spliced_quantiles(tails, _latent_of(model, context), levels, values)
    return clip_to_support(values, *support_bounds(model, tails))


def cdf_and_density(model, context: np.ndarray, y: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distribution function and density of a single target at ``y[i]`` given context row ``rows[i]``."""
    latent, log_densities = _latent_and_log_density(model, context, y, rows)
    cdf, density = ndtr(latent), np.exp(log_densities)
    tails = splice_tails(model)
    if not tails:
        return cdf, density
    return spliced_cdf_and_density(tails, _latent_of(model, context), y, rows, cdf, density)


def _latent_and_log_density(
    model, context: np.ndarray, y: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The standardized latent ``f(y[i]; x) / s`` and the flow's log-density at ``y[i]``, given context row
    ``rows[i]`` (a single target): ``F(y[i]) = Phi(latent)``."""
    scale = to_tensor(model.latent_scale_, model.device_)
    context = to_tensor(context, model.device_)

    def evaluate(batch: torch.Tensor) -> torch.Tensor:
        # Each batch's distinct context rows go through the conditioners once, whatever the points per row.
        distinct, index = torch.unique(batch[:, 1].long(), return_inverse=True)
        z, log_abs_det = model.flow_(batch[:, :1], IndexedContext(context.index_select(0, distinct), index))
        u = z / scale
        log_density = standard_normal_log_prob(u) - torch.log(scale).sum() + log_abs_det
        return torch.stack([u[:, 0], log_density], dim=1)

    values = map_rows(model, evaluate, np.stack([y, rows.astype(np.float64)], axis=1), 1)
    return values[:, 0], values[:, 1]


def _latent_of(model, context: np.ndarray) -> Latent:
    """``latent(rows, points)`` of :mod:`skflow._target_tails` for this model and context."""
    return lambda rows, points: _latent_and_log_density(model, context, points, rows)[0]


def draws(model, context: np.ndarray, n_samples: int, generator: torch.Generator) -> np.ndarray:
    """``n_samples`` draws per context row: (n_rows, n_samples, n_targets), inside the support."""
    scale = to_tensor(model.latent_scale_, model.device_)

    def draw(rows: torch.Tensor) -> torch.Tensor:
        shape = (rows.shape[0] * n_samples, model.n_targets_)
        latent = torch.randn(shape, generator=generator, dtype=torch.float64).to(rows.device)
        values = model.flow_.inverse(latent * scale, IndexedContext.repeated(rows, n_samples))[0]
        # Each draw's latent comes back with it: its level Phi(latent) places it in a spliced tail.
        return torch.cat([values, latent], dim=1).view(rows.shape[0], n_samples, 2 * model.n_targets_)

    samples, latent = np.split(map_rows(model, draw, context, n_samples), 2, axis=2)
    tails = splice_tails(model)
    if tails:
        samples = spliced_inverse(tails, _latent_of(model, context), samples[:, :, 0], latent[:, :, 0])[:, :, None]
    return clip_to_support(samples.reshape(-1, model.n_targets_), *support_bounds(model, tails)).reshape(samples.shape)
