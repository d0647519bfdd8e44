"""FlowOutlierDetector: outlier and novelty detection by normalizing-flow log-density."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._fitting import unchanged_on_error
from ._persistence import SafePersistenceMixin, register_safe_class
from ._validation import Interval, StrOptions, _fit_context, check_numeric
from .density import FlowDensity

# contamination="auto": Tukey's lower fence on the training log-densities, Q1 - TUKEY_FENCE * IQR.
TUKEY_FENCE = 1.5


@register_safe_class
class FlowOutlierDetector(SafePersistenceMixin, OutlierMixin, BaseEstimator):
    """Outlier and novelty detection with a normalizing-flow density.

    Fits a :class:`~skflow.FlowDensity` to the training data and flags a sample
    as an outlier when its log-density falls below a threshold ``offset_``.
    ``score_samples`` is the exact log-density (higher is more normal), in the
    units of ``X``: it means the same as ``GaussianMixture.score_samples`` and
    compares across models fitted to the same data (not across datasets or
    units, which shift every log-density).

    Parameters
    ----------
    density : FlowDensity or None, default=None
        The density model, cloned in ``fit``; None uses ``FlowDensity()``.
        Every flow setting lives in this one object rather than being repeated
        here, so the detector cannot drift from ``FlowDensity``'s parameters
        and their documentation, and each one is tuned with scikit-learn's
        nested-parameter syntax, as for a Pipeline step, once ``density`` is
        a ``FlowDensity``: for example ``GridSearchCV(FlowOutlierDetector(
        density=FlowDensity()), {"density__n_transforms": [2, 4]})`` or
        ``FlowOutlierDetector(density=FlowDensity()).set_params(
        density__random_state=0)``. With ``density=None`` there are no
        ``density__`` parameters (as with an ``estimator=None`` default in
        scikit-learn), and setting one raises a ValueError.
    contamination : "auto" or float, default="auto"
        Expected proportion of outliers in the training data.

        - float in (0, 0.5]: ``offset_`` is that percentile of the training
          log-densities, so this fraction of the training samples (up to ties)
          is predicted as outliers, as in ``IsolationForest``.
        - "auto": ``offset_`` is Tukey's lower fence (the box-plot rule) on
          the training log-densities, ``Q1 - 1.5 * (Q3 - Q1)`` with ``Q1`` and
          ``Q3`` their quartiles. It assumes no contamination rate: a sample
          is an outlier when its log-density is unusually low *relative to the
          spread* of the training log-densities, and the rule is unchanged by
          the units of ``X`` (a change of units shifts every log-density by
          the same constant). For data drawn from a Gaussian it flags about
          5% of the samples in 2-D, 2% in 10-D and 1% in 30-D or more; set a
          float to control the rate instead.
    random_state : int, RandomState instance or None, default=None
        Seeds the density when its own ``random_state`` is None (as
        ``IsolationForest`` seeds its trees): the fitted density gets a seed
        drawn from this. A density with its own ``random_state`` keeps it.
        With an int, fits on CPU are reproducible.

    Attributes
    ----------
    density_ : FlowDensity
        The fitted density model.
    offset_ : float
        Threshold on the log-density: ``decision_function = score_samples - offset_``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string feature names.

    See Also
    --------
    FlowDensity : the density model.
    sklearn.ensemble.IsolationForest, sklearn.neighbors.LocalOutlierFactor,
    sklearn.svm.OneClassSVM, sklearn.covariance.EllipticEnvelope

    Notes
    -----
    The detector is a novelty detector as much as an outlier detector: ``predict``,
    ``decision_function`` and ``score_samples`` apply to new data, and on the
    training data they give the same values as ``fit_predict``.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import FlowDensity, FlowOutlierDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(300, 2))
    >>> density = FlowDensity(n_transforms=2, max_epochs=20, random_state=0)
    >>> detector = FlowOutlierDetector(density=density, contamination=0.1).fit(X)
    >>> int((detector.predict(X) == -1).sum())
    30
    >>> detector.predict([[0.0, 0.0], [6.0, 6.0]])
    array([ 1, -1])

    Tune the flow through the nested ``density__`` parameters of an explicit
    ``FlowDensity``, scored by the held-out mean log-likelihood:

    >>> from sklearn.model_selection import GridSearchCV
    >>> search = GridSearchCV(
    ...     FlowOutlierDetector(density=FlowDensity(max_epochs=2, random_state=0)),
    ...     {"density__n_transforms": [1, 2]},
    ...     cv=2,
    ... ).fit(X)
    >>> sorted(search.best_params_)
    ['density__n_transforms']
    """

    _parameter_constraints: dict = {
        "density": [None, FlowDensity],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }
    # Checked when a model file is loaded (see SafePersistenceMixin).
    _fitted_attributes: dict = {"n_features_in_": "int", "density_": FlowDensity, "offset_": "float"}

    def __init__(self, *, density=None, contamination="auto", random_state=None):
        self.density = density
        self.contamination = contamination
        self.random_state = random_state

    def set_params(self, **params):
        """Set the parameters of this detector, and of its density as ``density__<parameter>``.

        Parameters
        ----------
        **params : dict
            Detector parameters, and ``density__<parameter>`` for those of
            ``density`` (which must then be a ``FlowDensity``, not None).

        Returns
        -------
        self : FlowOutlierDetector

        Raises
        ------
        ValueError
            For a ``density__`` parameter while ``density`` is None: there is
            no density object to set it on until one is passed.
        """
        nested = sorted(key for key in params if key.startswith("density__"))
        if nested and params.get("density", self.density) is None:
            raise ValueError(
                f"cannot set {', '.join(nested)} on a FlowOutlierDetector with density=None: pass a density first, "
                "e.g. FlowOutlierDetector(density=FlowDensity()), or set_params(density=FlowDensity(...)) with the "
                "settings you want"
            )
        return super().set_params(**params)

    @_fit_context(prefer_skip_nested_validation=False)
    @unchanged_on_error
    def fit(self, X, y=None, sample_weight=None):
        """Fit the density and set the threshold ``offset_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to ``FlowDensity.fit``. The contamination percentile is
            taken over samples, unweighted, as in ``IsolationForest``.

        Returns
        -------
        self : FlowOutlierDetector
        """
        check_numeric(X, type(self).__name__)
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        density = FlowDensity() if self.density is None else clone(self.density)
        if density.random_state is None:
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            density.set_params(random_state=int(seed))
        self.density_ = density.fit(X, sample_weight=sample_weight)
        train_scores = self.density_.score_samples(X)
        if self.contamination == "auto":
            q1, q3 = np.percentile(train_scores, [25.0, 75.0])
            self.offset_ = float(q1 - TUKEY_FENCE * (q3 - q1))
        else:
            self.offset_ = float(np.percentile(train_scores, 100.0 * self.contamination))
        return self

    def score_samples(self, X):
        """Log-density of each sample under the fitted flow (lower is more abnormal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-inf`` where the density underflows or ``X`` is outside the
            density's ``bounds``.
        """
        check_is_fitted(self)
        check_numeric(X, type(self).__name__)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.density_.score_samples(X)

    def score(self, X, y=None):
        """Mean log-likelihood per sample, so that ``GridSearchCV`` can tune the flow without labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    def decision_function(self, X):
        """Log-density minus ``offset_``: negative for outliers, non-negative for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        decision : ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each sample +1 (inlier) or -1 (outlier).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), dtype int
        """
        decision = self.decision_function(X)
        is_inlier = np.ones(decision.shape[0], dtype=int)
        is_inlier[decision < 0] = -1
        return is_inlier
