"""The latent scale of a conditional flow, fitted on its validation rows after training.

A flow trained by maximum likelihood on a few hundred rows is over-confident:
on its own training rows the latent ``z = f(y; x)`` is narrower than N(0, 1)
(a root mean square of 0.5 to 0.8 measured on the small UCI sets), and on new
rows it is wider, so central intervals under-cover and the log-likelihood
pays for it. The fix is a change of the base density, from N(0, I) to
N(0, diag(s^2)), with ``s`` fitted on the rows that early stopping held out.
For a Gaussian base the maximum-likelihood fit is closed-form, the weighted
mean of ``z_k^2`` over the ``n`` validation rows; the training's own claim,
``s = 1``, counts as ``PRIOR_ROWS`` more rows of evidence,

    s_k^2 = (PRIOR_ROWS + n * mean z_k^2) / (PRIOR_ROWS + n),

a conjugate-style shrinkage that matters on small sets (10 to 100 validation
rows) and fades on large ones. The density stays exact and normalized,

    log p(y | x) = log N(z / s; 0, I) - sum_k log s_k + log|det J_f(y; x)|,

and every inverse use of the flow (quantiles, means, draws) maps ``s * u``
for a standard normal ``u``; with one target the map stays increasing, so
quantiles stay exact. ``s`` is 1 where no rows validated.
"""

from __future__ import annotations

import numpy as np
import torch

from ._boosted_feature import TREE_ATTRIBUTES, empty_trees, n_context_columns
from ._core import Flow, TrainResult, standard_normal_log_prob
from ._core.rows import effective_rows
from ._fitting import draw_seed
from ._inference import batch_rows, map_in_batches
from ._persisted_flow import fill_resolved_from_stored_flow, stored_flow_config
from ._preprocessing import Preprocessing, make_augment, trimmed_root_mean_square

# A scale outside this range means the flow or the validation rows are broken, not over-confident:
# clipping keeps the density finite and the inverse within the splines' float range.
SCALE_RANGE = (1e-2, 1e2)

# The rows of evidence that the training's own scale, 1, is worth against the validation rows' mean z^2. The same
# default fits, rescored (benchmarks/experiments/latent_prior.py, splits 0-5 of five small UCI sets on all rows):
# 160 rows gained on each set, +0.002 to +0.013 nats a row, and took yacht's, energy's and Boston's 90% coverage from
# 0.925-0.930 to 0.913-0.919; 40 rows gained less, and s = 1 (no calibration) took concrete to 0.871. On 100 rows
# of the nine sets (10 validation rows a flow, so s is nearly 1) it was neutral: +0.001 ± 0.002.
PRIOR_ROWS = 160.0


def fitted_latent_scale(
    estimator, flow: Flow, Y, weights, context, result: TrainResult, preprocessing: Preprocessing
) -> np.ndarray:
    """The estimator's ``latent_scale_``: fitted on the validation rows with ``calibrate``, else ones.

    Reads the estimator's ``calibrate``, ``device_`` and ``random_state`` (the
    seed of the dequantization noise).
    """
    if not estimator.calibrate:
        return np.ones(Y.shape[1])
    index, seed = result.validation_index, draw_seed(estimator)
    return fit_latent_scale(flow, Y, weights, context, index, preprocessing, estimator.device_, seed)


def fit_latent_scale(
    flow: Flow,
    Y: np.ndarray,
    weights: np.ndarray,
    context: np.ndarray,
    validation_index: torch.Tensor | None,
    preprocessing: Preprocessing,
    device: torch.device,
    seed: int = 0,
) -> np.ndarray:
    """Scale (n_targets,) of the latent fitted on the validation rows of a trained flow, shrunk toward 1.

    The validation rows' targets go through the flow as training scored them:
    dequantized targets get fresh uniform noise (seeded by ``seed``) between
    the fixed part and the learned part.
    """
    n_targets = Y.shape[1]
    if validation_index is None or len(validation_index) == 0:
        return np.ones(n_targets)
    index = validation_index.cpu().numpy()
    rows = np.hstack([Y[index], context[index]])
    augment = make_augment(preprocessing, device)
    generator = torch.Generator().manual_seed(int(seed))

    def latent(batch: torch.Tensor) -> torch.Tensor:
        u = flow.preprocess(batch[:, :n_targets])[0]
        if augment is not None:
            u = augment(u, generator)
        for layer in flow.transforms:
            u = layer(u, batch[:, n_targets:])[0]
        return u

    config = flow.config
    z = map_in_batches(latent, rows, batch_rows(rows.shape[1], config["hidden_units"], config["n_bins"]), device)
    validation_weights = weights[index]
    mean_square = np.average(np.square(z), axis=0, weights=validation_weights)
    # Where a few gross errors rule a target (standardized robustly), one among the validation rows would rule
    # the mean square: one y = -1e6 among 10 made s 4.7 and the flow's 90% intervals 1,000 wide where the noise's
    # are 1.5. There rows beyond GROSS_Z times the scale that the median |z| implies are left out of it (the
    # median itself, from 10 rows, was too noisy a scale: docs/regression_design_notes.md).
    gross = np.zeros(n_targets, dtype=bool) if preprocessing.robust_scaled is None else preprocessing.robust_scaled
    if gross.any():
        mean_square = np.where(gross, trimmed_root_mean_square(z, validation_weights) ** 2, mean_square)
    n = effective_rows(validation_weights)
    scale = np.sqrt((PRIOR_ROWS + n * mean_square) / (PRIOR_ROWS + n))
    return np.clip(np.where(np.isfinite(scale), scale, 1.0), *SCALE_RANGE)


def scaled_log_prob(flow: Flow, scale: torch.Tensor, y: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """``log p(y | x)`` per row under the flow with base N(0, diag(scale^2))."""
    z, log_abs_det = flow(y, context)
    return standard_normal_log_prob(z / scale) - torch.log(scale).sum() + log_abs_det


def upgrade_regressor_state(state: dict) -> dict:
    """A ``FlowRegressor`` state saved before the latent scale existed (its model had scale 1, uncalibrated),
    before ensembles (its model is one flow), before the linear start (its flow started at the normal) or
    before ``flow="auto"`` and ``n_bins_`` (its flow's config says which kind it is and its bins), before
    the boosted feature (its flows' context is the features alone), before ``x_log_shift_`` (every feature
    entered as given) or before ``context_range_`` (its contexts were not held inside the training range)."""
    state = dict(state)
    fill_resolved_from_stored_flow(state)
    if "calibrate" not in state:
        state["calibrate"] = False
    if "flow_" in state and "latent_scale_" not in state:
        state["latent_scale_"] = np.ones(int(state["n_targets_"]))
    if "n_flows" not in state:
        state["n_flows"] = 1
    if "flow_" in state and "target_range_" not in state:  # before the mean's guard: no range, no guard
        state["target_range_"] = np.array([[-np.inf], [np.inf]]).repeat(int(state["n_targets_"]), axis=1)
    state.setdefault("n_jobs", None)
    if "flow_" in state and "ensemble_" not in state:
        state["n_flows"], state["ensemble_"] = 1, []
    # Before the linear start (a flow config without "linear_shift"; the safe format fills in today's default).
    config = stored_flow_config(state.get("flow_"))
    if "base" not in state or (config is not None and "linear_shift" not in config):
        state["base"] = "normal"
    if "flow_" in state and "tree_nodes_" not in state:  # before the boosted feature: fitted without it
        state["boosted_feature"], state["boosted_feature_"] = False, False
        state.update(zip(TREE_ATTRIBUTES, empty_trees(), strict=True))
    if "flow_" in state and "x_log_shift_" not in state:  # before heavy-tailed features entered as their log
        state["x_log_shift_"] = np.full(int(state["n_features_in_"]), np.nan)
    if "flow_" in state and "context_range_" not in state:  # before contexts were held inside it: no range
        width = n_context_columns(state["n_features_in_"], state["n_targets_"], state["tree_roots_"])
        state["context_range_"] = np.array([[-np.inf], [np.inf]]).repeat(width, axis=1)
    return state
