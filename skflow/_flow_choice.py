"""Each flow's choice among its trainings: with or without the boosted trees' prediction, among layer kinds, and
with the features as given or scaled by their relevance.

A regressor's flow may train several times on the same rows: without and
with the trees' prediction as a feature (``boosted_feature="auto"``,
``skflow._boosted_feature``), and with each of several layer kinds
(``flow="auto"`` on up to 5,000 rows, or a sequence of kinds), and with the
features taken for noise scaled down (``relevance_scaling``,
``skflow._feature_relevance``). Every training
shares the flow's seed, hence its validation rows, so their validation
log-likelihoods, in the same standardized target units, compare; the flow
keeps the training whose kept model (``base="linear"``'s ridge regression
where it replaced the trained flow) scores highest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ._auto_parameters import resolve_flow_kind
from ._boosted_feature import boosted_choices, validates_choice
from ._core.flow import FLOW_KINDS
from ._feature_relevance import relevance_choices
from ._linear_start import KEPT_SCORE, VALIDATION_ROWS

# flow="auto" lets each flow of a fit of this many rows train both these kinds and keep the one that validates
# higher (ties: splines). Over splits 0-5 of the small UCI sets that gained yacht +0.085 nats a row, energy
# +0.027 and Boston +0.016, lost concrete 0.005, and cut the synthetic sets' gap at 2,000 rows from about
# 0.05 to 0.036 per dimension (docs/regression_design_notes.md, "Each flow choosing its layers"); it trains
# each flow twice over, so above 5,000 rows, where a fit takes minutes already, the flows keep the splines.
AUTO_LAYER_ROWS = (40, 5000)
AUTO_LAYER_KINDS = ("spline", "mixture_cdf")
# What a fit leaves on the estimator for this choice alone: not part of the model.
FIT_SCORES = (KEPT_SCORE, VALIDATION_ROWS)
T = TypeVar("T")


def layer_choices(estimator, n_rows: float) -> list[str | None]:
    """The layer kinds each flow of a fit of ``n_rows`` rows trains and chooses among.

    A sequence of kinds (``flow=("spline", "mixture_cdf")``): its kinds,
    checked (``ValueError`` naming the problem). ``flow="auto"``: splines
    and mixture-CDF layers on 40 to 5,000 rows (``AUTO_LAYER_ROWS``) of
    which at least ``MIN_VALIDATION_ROWS`` validate, where "auto" means
    coupling splines (fewer than 3 targets, or under 5,000 rows); else
    ``[None]``, the ``flow`` parameter's one kind.
    """
    flow = estimator.flow
    if flow == "auto":
        low, high = AUTO_LAYER_ROWS
        splines = resolve_flow_kind("auto", n_rows, estimator.n_targets_) == "spline"
        if low <= n_rows <= high and splines and validates_choice(estimator, n_rows):
            return list(AUTO_LAYER_KINDS)
        return [None]
    if isinstance(flow, str):
        return [None]
    kinds = list(flow)
    unknown = [kind for kind in kinds if kind not in FLOW_KINDS]
    if not kinds or unknown or len(set(kinds)) < len(kinds):
        raise ValueError(
            f"flow, when a sequence, must hold distinct layer kinds among {FLOW_KINDS} for each flow to choose "
            f"from; got {flow!r}"
        )
    return kinds


def fit_choosing(estimator, features: np.ndarray, n_rows: float, fit: Callable[[np.ndarray, str | None, bool], T]) -> T:
    """``fit(columns, kind, scaled)`` the estimator's flow on the features alone and/or with the trees'
    prediction (``boosted_choices``), for each layer kind it chooses among (``layer_choices``), with the features
    as given and/or scaled by their relevance (``relevance_choices``); keep the fit whose kept model scores
    higher on the validation rows (ties: as given, then the earlier kind, then the features alone) and return
    what that fit returned. ``n_rows``: the fit's rows counted by their weights (``effective_rows``), which the
    "auto" settings' row limits compare.

    All fits share the seed, so they hold out the same validation rows and
    their scores, in the same standardized target units, compare.
    ``boosted_feature_`` and ``flow_kind_`` say which was kept (``x_scale_``
    whether the features were scaled).
    """
    n_features = estimator.n_features_in_
    choices = boosted_choices(estimator, n_rows) if features.shape[1] > n_features else [False]
    fitted = []
    for scaled in relevance_choices(estimator):
        for kind in layer_choices(estimator, n_rows):
            for use in choices:
                returned = fit(features if use else features[:, :n_features], kind, scaled)
                estimator.boosted_feature_ = use
                fitted.append((_fitted_state(estimator), returned))
                for name in FIT_SCORES:
                    estimator.__dict__.pop(name, None)
    best, returned = max(fitted, key=lambda pair: kept_validation_score(pair[0]))
    estimator.__dict__.update({name: value for name, value in best.items() if name not in FIT_SCORES})
    return returned


def kept_validation_score(state: dict) -> float:
    """The mean validation log-likelihood of the model a fit kept (its fitted ``state``): the ridge regression's
    that replaced the trained flow (``base="linear"``), else the trained flow's best epoch's."""
    if KEPT_SCORE in state:
        return state[KEPT_SCORE]
    return max(state["validation_scores_"], default=-np.inf)


def _fitted_state(estimator) -> dict:
    parameters = estimator.get_params(deep=False)
    return {name: value for name, value in vars(estimator).items() if name not in parameters}
