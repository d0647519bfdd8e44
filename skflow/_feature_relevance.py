"""Features scaled by their relevance: the boosted trees' split gain, so that the flow learns slowly from noise.

A flow's conditioner sees every feature. On a few thousand rows with many
features that carry no information it fits their chance patterns within a
few epochs, before it has learned all of the informative ones, and early
stopping ends training there (docs/regression_design_notes.md, "Features
that carry no information"). The boosted trees
(:mod:`skflow._boosted_feature`) have already measured each feature: its
relevance is its share of their split gain over the largest share (the
larger over targets), at least ``MIN_RELEVANCE``. With
``relevance_scaling``, each standardized feature is divided by its relevance
before it enters the context (``x_scale_`` holds the product), so a feature
the trees hardly used moves the conditioners' inputs little: Adam's steps
are about the same size for every weight, so the flow learns from such a
feature slowly, and early stopping keeps what the informative features
taught it. The density stays exact: only the context's coordinates change.
The trees' gain is not what a feature is worth to the conditional density
(on Boston, features with a small share still matter), hence "auto": each
flow trains both ways and keeps the one that validates better.
"""

from __future__ import annotations

import numpy as np

# A feature's relevance is at least this: features no tree split on are slowed down, not removed.
MIN_RELEVANCE = 0.05
# The estimator attribute, set while a regressor fits (removed after), that holds the features' relevance.
RELEVANCE = "_feature_relevance"


def gain_relevance(gains: np.ndarray) -> np.ndarray:
    """Each feature's relevance from the trees' summed split gain per target and feature, (n_targets, n_features):
    its share over the largest share, the larger over targets, clipped to ``[MIN_RELEVANCE, 1]``. A target
    whose trees did not split at all says nothing (every feature 1)."""
    gains = np.atleast_2d(np.asarray(gains, dtype=float))
    largest = gains.max(axis=1, keepdims=True)
    shares = np.divide(gains, largest, out=np.ones_like(gains), where=largest > 0)
    return np.clip(shares.max(axis=0), MIN_RELEVANCE, 1.0)


def split_gains(models_per_target: list[list], n_features: int) -> np.ndarray:
    """The summed split gain per target and feature (n_targets, n_features) of fitted
    ``HistGradientBoostingRegressor`` models (for each target, its fold models)."""
    gains = np.zeros((len(models_per_target), n_features))
    for target, models in enumerate(models_per_target):
        for model in models:
            for predictors in model._predictors:
                nodes = predictors[0].nodes
                splits = nodes[~nodes["is_leaf"].astype(bool)]
                np.add.at(gains[target], splits["feature_idx"], splits["gain"])
    return gains


def relevance_choices(estimator) -> list[bool]:
    """Whether each flow trains with the features as given and/or relevance-scaled.

    ``relevance_scaling=False``: as given; True: scaled; "auto": both, each
    flow keeping the training that validates better, where the trees were
    fitted (``boosted_feature``) and their relevance is known; else as given.
    """
    setting = estimator.relevance_scaling
    known = getattr(estimator, RELEVANCE, None) is not None
    if setting == "auto":
        return [False, True] if known else [False]
    if setting and not known:
        raise ValueError(
            "relevance_scaling=True scales the features by the boosted trees' split gain, but no trees were fitted "
            "(boosted_feature=False, or too few rows for boosted_feature='auto'); use relevance_scaling='auto' "
            "or boosted_feature=True"
        )
    return [bool(setting)]


def relevance_scaled(scale: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """The context scale ``scale`` with its first ``len(relevance)`` entries (the features; not the trees'
    prediction) divided by their relevance."""
    scaled = np.array(scale, dtype=float)
    scaled[: len(relevance)] = scaled[: len(relevance)] / relevance
    return scaled
