"""Metrics for probabilistic regression: held-out log-likelihood, CRPS and interval coverage.

A point metric (R², what ``FlowRegressor.score`` returns as scikit-learn
expects) judges only the conditional mean. These judge the whole predictive
distribution.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_array, check_consistent_length

__all__ = ["LogLikelihoodScorer", "crps", "interval_coverage", "log_likelihood_scorer"]


class LogLikelihoodScorer:
    """Scorer: the mean of ``estimator.score_samples(X, y)`` (higher is better).

    Pass it as ``scoring=`` to :class:`~sklearn.model_selection.GridSearchCV`,
    :func:`~sklearn.model_selection.cross_val_score` and the like to select a
    :class:`~skflow.FlowRegressor` by its held-out log-likelihood of the targets,
    in their own units, rather than by R². Called as ``scorer(estimator, X, y,
    sample_weight=None)``; ``estimator`` may be a Pipeline ending in a
    FlowRegressor. A point outside the model's ``bounds`` scores ``-inf``, and so
    does the mean over a fold holding one.

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
    ...     FlowRegressor(max_epochs=3, random_state=0),
    ...     {"n_transforms": [1, 2]},
    ...     scoring=log_likelihood_scorer,
    ...     cv=2,
    ... ).fit(X, y)
    >>> sorted(search.best_params_)
    ['n_transforms']
    """

    def __call__(self, estimator, X, y, sample_weight=None) -> float:
        if hasattr(estimator, "steps"):  # a Pipeline: transform X through all but the last step
            X, estimator = estimator[:-1].transform(X), estimator[-1]
        log_density = estimator.score_samples(X, y)
        return float(np.average(log_density, weights=sample_weight))

    def __repr__(self) -> str:
        return "log_likelihood_scorer"


#: The scorer instance to pass as ``scoring=`` (see :class:`LogLikelihoodScorer`).
log_likelihood_scorer = LogLikelihoodScorer()


def crps(y_true, y_samples) -> float:
    """Continuous ranked probability score of predictive samples, averaged over rows (lower is better).

    ``CRPS(F, y) = E|S - y| - E|S - S'| / 2`` for ``S, S'`` independent
    draws from the predictive distribution ``F``: the mean absolute error of
    a point prediction, generalized to a distribution, in the units of ``y``.
    Estimated from the ``m`` samples of each row (the plug-in estimator, in
    ``O(m log m)`` per row).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_samples : array-like of shape (n_samples, n_draws)
        Draws from each row's predictive distribution, e.g.
        ``FlowRegressor.sample(X, n_draws)``.

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
    samples = check_array(y_samples, dtype=np.float64, input_name="y_samples")
    check_consistent_length(y, samples)
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
    check_consistent_length(y, bounds)
    if y.ndim != 1 or bounds.shape[1] != 2:
        raise ValueError(f"expected y_true of shape (n,) and intervals of shape (n, 2), got {y.shape}, {bounds.shape}")
    return float(np.mean((bounds[:, 0] <= y) & (y <= bounds[:, 1])))
