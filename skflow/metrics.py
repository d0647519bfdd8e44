"""Metrics for probabilistic regression: held-out log-likelihood, CRPS and interval coverage.

A point metric (R², what ``FlowRegressor.score`` returns as scikit-learn
expects) judges only the conditional mean. These judge the whole predictive
distribution.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.utils.validation import check_array

__all__ = ["LogLikelihoodScorer", "crps", "interval_coverage", "log_likelihood_scorer"]


class LogLikelihoodScorer:
    """Scorer: the mean of ``estimator.score_samples(X, y)`` (higher is better).

    Pass it as ``scoring=`` to :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and the like to select a
    :class:`~skflow.FlowRegressor` by its held-out log-likelihood of the targets,
    in their own units, rather than by R². Called as ``scorer(estimator, X, y,
    sample_weight=None)``; ``estimator`` may be a Pipeline ending in a
    FlowRegressor. A point outside the model's ``bounds`` scores ``-inf``, and so
    does the mean over a fold holding one (unless its weight is zero).

    An unconditional density, whose ``score_samples(X)`` takes no targets
    (:class:`~skflow.FlowDensity`, :class:`~skflow.FlowOutlierDetector`,
    ``GaussianMixture``), is scored by the mean of ``score_samples(X)`` and
    ``y`` is ignored, as its ``score(X, y=None)`` ignores it; this equals its
    default ``score``, so the scorer can be used for every skflow model alike.
    A conditional model needs ``y``: ``y=None`` raises a ValueError.

    Raises
    ------
    TypeError
        If the estimator (or the Pipeline's last step) has no ``score_samples``.
    ValueError
        If a conditional model gets ``y=None``, or ``sample_weight`` is not one
        finite, non-negative weight per row of ``X`` with a positive sum.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skflow import FlowRegressor
    >>> from skflow.metrics import log_likelihood_scorer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 1))
    >>> y = X[:, 0] + 0.5 * rng.normal(size=200)
    >>> search = GridSearchCV(
    ...     FlowRegressor(max_epochs=3, n_flows=1, random_state=0),
    ...     {"n_transforms": [1, 2]},
    ...     scoring=log_likelihood_scorer,
    ...     cv=2,
    ... ).fit(X, y)
    >>> sorted(search.best_params_)
    ['n_transforms']
    """

    def __call__(self, estimator, X, y=None, sample_weight=None) -> float:
        if hasattr(estimator, "steps"):  # a Pipeline: transform X through all but the last step
            X, estimator = estimator[:-1].transform(X), estimator[-1]
        score_samples = getattr(estimator, "score_samples", None)
        if score_samples is None:
            raise TypeError(
                f"log_likelihood_scorer needs an estimator with score_samples (a FlowRegressor, FlowDensity or "
                f"a Pipeline ending in one); {type(estimator).__name__} has none"
            )
        if _takes_targets(score_samples, y):
            if y is None:
                raise ValueError(
                    f"log_likelihood_scorer scores log p(y | X) for the conditional model {type(estimator).__name__}, "
                    "so it needs the targets y; got y=None"
                )
            log_density = np.asarray(score_samples(X, y), dtype=np.float64)
        else:  # an unconditional density: y is ignored, as by its score(X, y=None)
            log_density = np.asarray(score_samples(X), dtype=np.float64)
        if sample_weight is None:
            return float(np.mean(log_density))
        weights = _checked_weights(sample_weight, log_density.shape[0])
        kept = weights > 0  # a zero weight drops its row, even one scoring -inf
        return float(np.average(log_density[kept], weights=weights[kept]))

    def __repr__(self) -> str:
        return "log_likelihood_scorer"


#: The scorer instance to pass as ``scoring=`` (see :class:`LogLikelihoodScorer`).
log_likelihood_scorer = LogLikelihoodScorer()


def _takes_targets(score_samples, y) -> bool:
    """Whether ``score_samples`` is conditional: ``score_samples(X, y)`` rather than ``score_samples(X)``."""
    try:
        parameters = list(inspect.signature(score_samples).parameters.values())
    except (TypeError, ValueError):  # no signature to read: pass y where there is one
        return y is not None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2:
        return True
    return y is not None and any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _checked_weights(sample_weight, n_rows: int) -> np.ndarray:
    """``sample_weight`` as a 1-D float array of ``n_rows`` finite, non-negative weights with a positive sum."""
    weights = check_array(sample_weight, ensure_2d=False, dtype=np.float64, input_name="sample_weight")
    if weights.ndim != 1 or weights.shape[0] != n_rows:
        raise ValueError(
            f"sample_weight must hold one weight per row of X: got shape {weights.shape}, X has {n_rows} rows"
        )
    if (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("sample_weight must be non-negative with a positive sum")
    return weights


def crps(y_true, y_samples) -> float:
    """Continuous ranked probability score of predictive samples, averaged over rows (lower is better).

    ``CRPS(F, y) = E|S - y| - E|S - S'| / 2`` for ``S, S'`` independent
    draws from the predictive distribution ``F``: the mean absolute error of
    a point prediction, generalized to a distribution, in the units of ``y``.
    Estimated from the ``m`` samples of each row (the plug-in estimator, in
    ``O(m log m)`` per row).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, 1)
    y_samples : array-like of shape (n_samples, n_draws) or (n_samples, n_draws, 1)
        Draws from each row's predictive distribution, e.g.
        ``FlowRegressor.sample(X, n_draws)`` (of shape (n_samples, n_draws, 1)
        for a model fitted on ``y`` of one column).

    Returns
    -------
    score : float

    Examples
    --------
    >>> import numpy as np
    >>> from skflow.metrics import crps
    >>> crps([0.0], [[0.0, 0.0]])
    0.0
    >>> round(crps([0.0], [[-1.0, 1.0]]), 3)
    0.5
    """
    y = check_array(y_true, ensure_2d=False, dtype=np.float64, input_name="y_true")
    samples = check_array(y_samples, dtype=np.float64, input_name="y_samples", allow_nd=True)
    # One target kept as a column (a model fitted on y of shape (n, 1)): the same score.
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    samples = samples[:, :, 0] if samples.ndim == 3 and samples.shape[2] == 1 else samples
    if samples.ndim != 2:
        raise ValueError(f"y_samples must have shape (n_samples, n_draws), got {samples.shape}")
    _check_rows(y, samples, "y_samples")
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {y.shape}")
    m = samples.shape[1]
    absolute_error = np.abs(samples - y[:, None]).mean(axis=1)
    ordered = np.sort(samples, axis=1)
    # sum_{j,k} |s_j - s_k| = 2 sum_i (2i - m - 1) s_(i), i = 1..m
    spread = 2.0 * (ordered @ (2.0 * np.arange(1, m + 1) - m - 1)) / m**2
    return float(np.mean(absolute_error - spread / 2.0))


def interval_coverage(y_true, intervals) -> float:
    """Fraction of targets inside their prediction interval (ends included).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    intervals : array-like of shape (n_samples, 2)
        Lower and upper ends, e.g. ``FlowRegressor.predict_interval(X, 0.9)``.

    Returns
    -------
    coverage : float
        Compare with the nominal coverage; marginal coverage can hide
        intervals too wide for some ``x`` and too narrow for others.

    Examples
    --------
    >>> from skflow.metrics import interval_coverage
    >>> interval_coverage([0.5, 2.0], [[0.0, 1.0], [0.0, 1.0]])
    0.5
    """
    y = check_array(y_true, ensure_2d=False, dtype=np.float64, input_name="y_true")
    bounds = check_array(intervals, dtype=np.float64, input_name="intervals")
    _check_rows(y, bounds, "intervals")
    if y.ndim != 1 or bounds.shape[1] != 2:
        raise ValueError(f"expected y_true of shape (n,) and intervals of shape (n, 2), got {y.shape}, {bounds.shape}")
    return float(np.mean((bounds[:, 0] <= y) & (y <= bounds[:, 1])))


def _check_rows(y: np.ndarray, per_row: np.ndarray, name: str) -> None:
    """Raise a ValueError naming both arguments unless ``per_row`` has one row per entry of ``y_true``."""
    if per_row.shape[0] != y.shape[0]:
        raise ValueError(f"{name} must have one row per entry of y_true: got {per_row.shape[0]} rows for {y.shape[0]}")
