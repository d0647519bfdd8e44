"""An ensemble of conditional flows: the equal-weight mixture p(y | x) = (1 / M) sum_m p_m(y | x).

Flows fitted to a few hundred rows differ from seed to seed by more than they
are off on average: each is over-confident in its own places. Averaging the
densities of several, each from its own initialization, batch order and
validation rows (Lakshminarayanan et al. 2017, "Deep Ensembles"), cancels much
of that variance: on the small UCI sets, five flows scored 0.05 to 0.12 nats a
row better than one held-out, measured at ``learning_rate=1e-3``
(docs/regression_design_notes.md). The mixture is still an exact density; its
mean is the average of the members' means, a draw is a draw of a member
chosen uniformly, and its quantiles solve ``F(y) = tau`` for the mixture's
distribution function, bracketed by the members' exact quantiles.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
from joblib import Parallel, delayed, effective_n_jobs
from scipy.special import logsumexp

from ._boosted_feature import TREE_ATTRIBUTES, auto_chooses, fit_tree_feature
from ._bounds import clip_to_support
from ._conditional_flow import cdf_and_density, conditional_mean, exact_quantiles
from ._core.rows import effective_rows
from ._feature_relevance import RELEVANCE, set_relevance
from ._fitting import draw_seed
from ._flow_choice import fit_choosing, layer_choices
from ._regression_data import log_feature_shifts, logged_features, widened_range
from ._target_scale import INFERRED_BOUNDS, robust_targets, set_inferred_bounds
from ._target_tails import splice_tails, support_bounds
from ._training_report import worth_reporting

# Quantiles of the mixture: stop where F(y) is this close to the level, or where the bracket is as
# narrow as float64 resolves around y.
QUANTILE_TOLERANCE = 1e-12
MAX_QUANTILE_STEPS = 100

# n_flows="auto". On fewer rows than this each flow's epoch, training and latent scale are chosen on 10 to 20
# validation rows, and chance flatters some flows; ten average more of it away, at seconds a flow. Above, five
# (docs/regression_design_notes.md, "More flows on small data"). Rows counted by their weights
# (``effective_rows``), as every "auto" row limit counts them: 150 rows beside 150 of weight 1e-6 validate like 150.
MANY_FLOWS_BELOW_ROWS = 200
MANY_FLOWS, DEFAULT_FLOWS = 10, 5


def resolved_n_flows(estimator, n_rows: float | None) -> int:
    """``estimator.n_flows``, "auto" resolved for a fit on ``n_rows`` rows, their effective number (None:
    ``partial_fit``, whose first chunk says nothing of the data's size)."""
    if estimator.n_flows != "auto":
        return estimator.n_flows
    return MANY_FLOWS if n_rows is not None and n_rows < MANY_FLOWS_BELOW_ROWS else DEFAULT_FLOWS


def new_members(estimator, n_flows: int) -> list:
    """The unfitted flows of ``estimator``'s ensemble of ``n_flows`` after its own (none for one flow, whose
    ``random_state`` is then left as a single flow leaves it): its parameters, one flow each, each its
    own seed, the shape of the data validated by ``estimator``. The first flows of a larger ensemble are a
    smaller one's."""
    if n_flows == 1:
        return []
    rng = np.random.RandomState(draw_seed(estimator))
    members = []
    for seed in rng.randint(np.iinfo(np.int32).max, size=n_flows - 1):
        # Not clone(): a callback object must stay the user's own, not a copy.
        params = {**estimator.get_params(deep=False), "n_flows": 1, "random_state": int(seed)}
        member = type(estimator)(**params)
        for name in ("n_features_in_", "n_targets_", "_y_ndim", "device_", "x_log_shift_", *TREE_ATTRIBUTES):
            setattr(member, name, getattr(estimator, name))
        # Where set: the names (its warnings name the columns as the user does) and, in fit, the features' relevance.
        for name in ("feature_names_in_", "target_names_in_", RELEVANCE, INFERRED_BOUNDS):
            if hasattr(estimator, name):
                setattr(member, name, getattr(estimator, name))
        member.ensemble_ = []
        members.append(member)
    return members


def fit_flows(estimator, X: np.ndarray, Y: np.ndarray, weights: np.ndarray) -> list:
    """Fit ``estimator``'s own flow and the other flows of its ensemble (returned: its ``ensemble_``).

    The boosted trees are fitted first, once for all flows; each flow then
    trains with or without their prediction (``skflow._boosted_feature``), and
    with the features as given or with those taken for noise scaled down
    (``skflow._feature_relevance``).
    With ``n_jobs`` other than 1 the flows train at once in joblib workers,
    and the first flow's fitted state is copied back into ``estimator``.
    """
    n_rows = effective_rows(weights)
    layer_choices(estimator, n_rows)  # a bad sequence of layer kinds fails before anything trains
    estimator.__dict__.pop("context_range_", None)  # a refit's training rows are never held inside the last one's
    # One draw for both: with a RandomState instance each draw advances it, and the flows' seeds come next.
    seed = draw_seed(estimator)
    modelled = set_inferred_bounds(estimator, X, Y, weights, seed)  # the trees and the noise test see y as the flows do
    features = fit_tree_feature(estimator, X, modelled, weights, seed, robust_targets(estimator, Y, weights))
    set_relevance(estimator, X, modelled, weights, seed, auto_chooses(estimator, n_rows))
    estimator.x_log_shift_ = log_feature_shifts(X, weights)  # the trees are the same either way
    n_flows = resolved_n_flows(estimator, n_rows)
    members = new_members(estimator, n_flows)
    if not members or effective_n_jobs(estimator.n_jobs) == 1:
        fitted = [_fitted(flow, features, Y, weights, n_rows) for flow in (estimator, *members)]
    else:
        jobs = (delayed(_fitted)(flow, features, Y, weights, n_rows) for flow in (estimator, *members))
        fitted = Parallel(n_jobs=estimator.n_jobs)(jobs)
        parameters = estimator.get_params(deep=False)
        estimator.__dict__.update({k: v for k, v in fitted[0][0].__dict__.items() if k not in parameters})
    warn_once_each([caught for _, caught in fitted], n_flows)
    flows = [flow for flow, _ in fitted]
    target_range, context_range = widened_range(Y), widened_range(logged_features(features, estimator.x_log_shift_))
    for flow in (*flows, estimator):  # needed by the fit alone: the context scaling and low_ hold what they did
        flow.__dict__.pop(RELEVANCE, None)
        flow.__dict__.pop(INFERRED_BOUNDS, None)
        flow.target_range_, flow.context_range_ = target_range, context_range
    return flows[1:]


def _fitted(flow, features: np.ndarray, Y: np.ndarray, weights: np.ndarray, n_rows: float) -> tuple[object, list]:
    """``flow`` fitted, and the warnings of the fit it kept (``boosted_feature="auto"`` and
    ``relevance_scaling="auto"`` fit twice each, and a sequence of layer kinds once each); ``n_rows``: the
    weights' ``effective_rows``."""

    def fit(X: np.ndarray, kind: str | None, scaled: bool) -> list[tuple[type[Warning], str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            flow._fit_one_flow(X, Y, weights, kind, scaled)
        return [(record.category, str(record.message)) for record in caught]

    return flow, fit_choosing(flow, features, n_rows, fit)


def warn_once_each(caught: list[list[tuple[type[Warning], str]]], n_flows: int) -> None:
    """Emit each distinct warning of the flows' kept fits once, saying how many flows gave it.

    Recorded rather than emitted where they arise: the fit that "auto"
    discards has nothing to say about the model, five flows repeating one
    message say no more than one, and workers' warnings would not reach the
    caller.
    """
    counts: dict[tuple[type[Warning], str], int] = {}
    for flow_warnings in caught:
        for warning in dict.fromkeys(flow_warnings):
            counts[warning] = counts.get(warning, 0) + 1
    for (category, message), count in counts.items():
        if not worth_reporting(message, count, n_flows):
            continue
        prefix = f"{count} of {n_flows} flows: " if n_flows > 1 else ""
        # The caller of fit: this function, fit_flows, FlowRegressor.fit and its two decorators.
        warnings.warn(prefix + message, category, stacklevel=6)


def mixture_log_density(log_densities: list[np.ndarray]) -> np.ndarray:
    """``log((1 / M) sum_m p_m)`` per row, from the members' log-densities (each of shape (n_rows,))."""
    if len(log_densities) == 1:
        return log_densities[0]
    stacked = np.stack(log_densities)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows where every member is -inf stay -inf
        return logsumexp(stacked, axis=0) - np.log(len(log_densities))


def ensemble_mean(members: list, features: np.ndarray) -> np.ndarray:
    """The conditional mean (n_rows, n_targets) of the equal-weight mixture of ``members``: their means'
    average, kept inside the support (rounding of the average can reach a bound). ``features``: the
    estimator's validated features, of which each member takes its context."""
    mean = np.mean([conditional_mean(member, member._context(features)) for member in members], axis=0)
    return clip_to_support(mean, *support_bounds(members[0], splice_tails(members[0])))


def ensemble_quantiles(members: list, features: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The quantiles (n_rows, n_levels) of the equal-weight mixture of one-target flows ``members``: each
    flow's exact quantiles, or for several flows the mixture's, solved between theirs."""
    contexts = [member._context(features) for member in members]
    quantiles = np.stack([exact_quantiles(member, c, levels) for member, c in zip(members, contexts, strict=True)])
    if len(quantiles) == 1:
        return quantiles[0]

    def mixture_cdf_and_density(rows: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = [cdf_and_density(member, c, points, rows) for member, c in zip(members, contexts, strict=True)]
        return tuple(np.mean(parts, axis=0) for parts in zip(*values, strict=True))

    return mixture_quantiles(mixture_cdf_and_density, quantiles, levels)


def mixture_quantiles(
    cdf_and_density: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    member_quantiles: np.ndarray,
    levels: np.ndarray,
) -> np.ndarray:
    """The quantiles (n_rows, n_levels) of the mixture of one-target flows.

    ``member_quantiles`` (n_members, n_rows, n_levels) are the members' exact
    quantiles: at the smallest of them every member's distribution function
    is at most the level, at the largest at least, so the mixture's quantile
    lies between. ``cdf_and_density(rows, points)`` gives the mixture's
    distribution function and density at ``points[i]`` for context row
    ``rows[i]``. Newton steps inside the shrinking bracket, bisection where a
    step would leave it. Each level is solved apart, to the solver's tolerance,
    which where the distribution function jumps past several levels at once
    (a flow with a near point mass) can leave them in either order; the
    running maximum over the sorted levels keeps them from crossing.
    """
    low, high = member_quantiles.min(axis=0).ravel(), member_quantiles.max(axis=0).ravel()
    target = np.broadcast_to(levels, member_quantiles.shape[1:]).ravel()
    rows = np.repeat(np.arange(member_quantiles.shape[1]), member_quantiles.shape[2])
    y = np.clip(member_quantiles.mean(axis=0).ravel(), low, high)
    active = np.flatnonzero(high > low)
    for _ in range(MAX_QUANTILE_STEPS):
        if active.size == 0:
            break
        evaluated = y[active]
        cdf, density = cdf_and_density(rows[active], evaluated)
        excess = cdf - target[active]
        below = excess < 0
        low[active] = np.where(below, evaluated, low[active])
        high[active] = np.where(below, high[active], evaluated)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = evaluated - excess / density
        inside = np.isfinite(newton) & (newton > low[active]) & (newton < high[active])
        step = np.where(inside, newton, (low[active] + high[active]) / 2)
        found = np.abs(excess) <= QUANTILE_TOLERANCE
        y[active] = np.where(found, evaluated, step)
        resolved = high[active] - low[active] <= 4 * np.spacing(np.abs(step))
        active = active[~(found | resolved)]
    quantiles = y.reshape(member_quantiles.shape[1:])
    order = np.argsort(levels, kind="stable")
    quantiles[:, order] = np.maximum.accumulate(quantiles[:, order], axis=1)
    return quantiles


def mixture_draws(members: list, features: np.ndarray, n_samples: int, generator: torch.Generator, draw) -> np.ndarray:
    """``n_samples`` draws of the mixture per row of ``features`` (n_rows, n_samples, n_targets): each draw's
    member is chosen uniformly, and only that member draws it (``draw(member, context, 1, generator)``)."""
    if len(members) == 1:
        return draw(members[0], members[0]._context(features), n_samples, generator)
    chosen = torch.randint(len(members), (features.shape[0], n_samples), generator=generator).numpy()
    samples = np.empty((features.shape[0], n_samples, members[0].n_targets_))
    for index, member in enumerate(members):
        rows, columns = np.nonzero(chosen == index)
        if len(rows):
            samples[rows, columns] = draw(member, member._context(features[rows]), 1, generator)[:, 0]
    return samples
