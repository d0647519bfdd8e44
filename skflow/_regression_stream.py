"""``FlowRegressor.partial_fit``'s pass over one chunk, for the flow and the rest of its ensemble.

A stream has no rows to spare: no validation rows, hence no ridge
comparison and no latent-scale calibration, and a stream that starts
unfitted has no cross-fitted trees (so no boosted feature; ``partial_fit``
after ``fit`` keeps the fitted ones). The first chunk fixes the
preprocessing and the features' standardization; every later chunk
continues the optimizer state.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._boosted_feature import empty_trees, set_trees, with_tree_feature
from ._ensemble import new_members, resolved_n_flows
from ._fitting import assign_fitted
from ._regression_data import context_scaling, logged_features, widened_range
from ._streaming import Context, stream_chunk


def stream_regressor_chunk(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, first: bool) -> None:
    """One pass of ``estimator``'s flow over validated ``(X, Y)`` with ``weights``, then of each other flow."""
    if first:
        # Said once, by the ensemble's first flow: new_members gives the others ensemble_ = [] before their first chunk.
        if estimator.boosted_feature != "auto" and estimator.boosted_feature and "ensemble_" not in vars(estimator):
            # The caller of partial_fit: this function, partial_fit and its two decorators.
            warnings.warn(
                "partial_fit trains without the boosted feature (boosted_feature=True applies to fit): the trees "
                "need out-of-fold predictions of rows a stream does not keep",
                UserWarning,
                stacklevel=5,
            )
        set_trees(estimator, empty_trees())
        # The first chunk's skewness is no measure of the stream's: every feature enters as given.
        estimator.x_log_shift_ = np.full(X.shape[1], np.nan)
        estimator.x_location_, estimator.x_scale_ = context_scaling(X, weights)
        estimator.boosted_feature_ = False
    features = with_tree_feature(estimator, X)
    # Widened first: this chunk's rows are training rows, never held inside an earlier chunk's range.
    logged = logged_features(features, estimator.x_log_shift_)
    estimator.context_range_ = widened_range(logged, None if first else estimator.context_range_)
    context = Context(estimator._context(features), estimator._callback_arguments)
    flow, preprocessing, result, state = stream_chunk(estimator, Y, weights, context, estimator._fit_preprocessing, "y")
    assign_fitted(estimator, flow, preprocessing, result)
    estimator._trainer_state_ = state
    # Calibration needs held-out rows, and a stream holds none back: the latent stays N(0, I)
    # (also after a fit, whose scale would no longer match the flow once training goes on).
    estimator.latent_scale_ = np.ones(estimator.n_targets_)
    estimator.target_range_ = widened_range(Y, None if first else estimator.target_range_)
    if first:
        estimator.ensemble_ = new_members(estimator, resolved_n_flows(estimator, None))
    for member in estimator.ensemble_:
        member.partial_fit(X, Y if estimator._y_ndim == 2 else Y[:, 0], weights)
