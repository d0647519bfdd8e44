"""Features that carry no information, found with shadow features and scaled down: the flow learns slowly from them.

A flow's conditioner sees every feature. On a few thousand rows with many
features that carry no information it fits their chance patterns within a
few epochs, before it has learned all of the informative ones, and early
stopping ends training there (docs/regression_design_notes.md, "Features
that carry no information"). A feature is taken for noise when gradient-
boosted trees fitted to the features and a shuffled copy of each (its
shadow: the same values, no relation to the target; Stoppiglia et al. 2003,
Kursa and Rudnicki 2010, "Boruta") give it no more split gain than the best
shadow, in most of ``N_SHADOW_FITS`` shuffles, for every target. Its
relevance is then ``NOISE_RELEVANCE`` and every other feature's 1. With
``relevance_scaling``, each standardized feature is divided by its relevance
before it enters the context (``x_scale_`` holds the product), so a noise
feature moves the conditioners' inputs little: Adam's steps are about the
same size for every weight, so the flow learns from it slowly, and early
stopping keeps what the informative features taught it. The density stays
exact: only the context's coordinates change.

Features with a small but real share of the gain keep their scale: dividing
each feature by its gain share (an earlier version) cost concrete and
Boston, whose weak features still matter to the conditional density. A
feature can be taken for noise and still matter (its information shared
with another feature, or in how the noise spreads), hence "auto": where some
feature is taken for noise, each flow trains both ways and keeps the one
that validates better.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from ._boosted_feature import target_units

# A noise feature's relevance: its standardized values divided by it, 20 times smaller in the context.
NOISE_RELEVANCE = 0.05
# Shuffles of the shadow features; a feature is noise when it wins against the best shadow in fewer than half.
N_SHADOW_FITS = 5
# The estimator attribute, set while a regressor fits (removed after), that holds the features' relevance.
RELEVANCE = "_feature_relevance"


def noise_features(X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """Whether each feature of ``X`` (n_rows, n_features) is noise for every target of ``Y`` (n_rows, n_targets):
    in most of ``N_SHADOW_FITS`` fits of trees to ``X`` and a shuffled copy of each column, its summed split gain
    is at most the largest of the copies'. A constant feature is no noise (it is zero in the context anyway),
    and a target whose trees never split says nothing."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    # Equal weights fit the same trees as none, and weighted binning is slow (skflow._boosted_feature).
    fit_weights = None if np.all(weights == weights[0]) else weights
    noise, spoke = np.ones(n_features, dtype=bool), False
    for target in range(Y.shape[1]):
        losses = np.zeros(n_features)
        for _ in range(N_SHADOW_FITS):
            shadows = np.column_stack([rng.permutation(column) for column in X.T])
            gains = _split_gains(np.hstack([X, shadows]), Y[:, target], fit_weights, int(rng.integers(2**31)))
            if gains.max() == 0:  # no split at all: this target says nothing
                break
            losses += gains[:n_features] <= gains[n_features:].max()
        else:
            noise &= losses > N_SHADOW_FITS / 2
            spoke = True
    return noise & spoke & (np.ptp(X, axis=0) > 0)


def _split_gains(X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, seed: int) -> np.ndarray:
    """The summed split gain per feature of a default ``HistGradientBoostingRegressor`` fitted to (X, y)."""
    model = HistGradientBoostingRegressor(random_state=seed, early_stopping=False, categorical_features=None)
    center, spread = target_units(y, np.ones_like(y) if weights is None else weights)  # the same in any units
    # One thread, as the flows train (skflow._boosted_feature).
    with threadpool_limits(1):
        model.fit(X, (y - center) / spread, sample_weight=weights)
    return summed_split_gains(model, X.shape[1])


def summed_split_gains(model: HistGradientBoostingRegressor, n_features: int) -> np.ndarray:
    """The split gain of every tree of a fitted ``HistGradientBoostingRegressor``, summed per feature."""
    gains = np.zeros(n_features)
    for predictors in model._predictors:
        nodes = predictors[0].nodes
        splits = nodes[~nodes["is_leaf"].astype(bool)]
        np.add.at(gains, splits["feature_idx"], splits["gain"])
    return gains


def feature_relevance(X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int) -> np.ndarray:
    """Each feature's relevance: ``NOISE_RELEVANCE`` for a noise feature (:func:`noise_features`), else 1."""
    return np.where(noise_features(X, Y, weights, seed), NOISE_RELEVANCE, 1.0)


def relevance_choices(estimator) -> list[bool]:
    """Whether each flow trains with the features as given and/or relevance-scaled.

    ``relevance_scaling=False``: as given; True: scaled; "auto": both, each
    flow keeping the training that validates better, where the relevance was
    measured (:func:`set_relevance`) and some feature was taken for noise;
    else as given (scaling would change nothing).
    """
    setting = estimator.relevance_scaling
    relevance = getattr(estimator, RELEVANCE, None)
    if setting == "auto":
        return [False, True] if relevance is not None and (relevance < 1).any() else [False]
    return [bool(setting)]


def set_relevance(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, seed: int, choose: bool) -> None:
    """Measure the features' relevance into the transient attribute ``RELEVANCE`` where the estimator's
    ``relevance_scaling`` uses it: always with True, with "auto" where the fit can ``choose`` (enough rows
    validate); else None."""
    setting = estimator.relevance_scaling
    wanted = setting is True or (setting == "auto" and choose)
    setattr(estimator, RELEVANCE, feature_relevance(X, Y, weights, seed) if wanted else None)


def relevance_scaled(scale: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """The context scale ``scale`` with its first ``len(relevance)`` entries (the features; not the trees'
    prediction) divided by their relevance."""
    scaled = np.array(scale, dtype=float)
    scaled[: len(relevance)] = scaled[: len(relevance)] / relevance
    return scaled
