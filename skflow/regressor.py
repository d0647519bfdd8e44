"""FlowRegressor: the conditional density p(y | x) of a target given features, with scikit-learn's regressor API."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._auto_parameters import resolve_training_sizes
from ._boosted_feature import check_fitted_widths, with_tree_feature
from ._calibration import fitted_latent_scale, upgrade_regressor_state
from ._conditional import check_coverage, check_levels, check_target_names, check_targets
from ._conditional_flow import draws, log_density
from ._core import FlowSpec, TrainConfig
from ._core.flow import FLOW_KINDS
from ._ensemble import ensemble_mean, ensemble_quantiles, fit_flows, mixture_draws, mixture_log_density
from ._feature_relevance import RELEVANCE
from ._fitting import FLOW_PARAMETER_CONSTRAINTS, assign_fitted, fit_flow, fitted_preprocessing, unchanged_on_error
from ._persistence import SafePersistenceMixin, register_safe_class
from ._preprocessing import Preprocessing
from ._regression_data import REGRESSOR_FITTED_ATTRIBUTES, context_scaling, flow_context, validate_regression_data
from ._regression_output import PredictionOutputMixin, draw_columns
from ._regression_stream import stream_regressor_chunk
from ._streaming import stream_state
from ._target_scale import target_bounds
from ._validation import Interval, StrOptions, _fit_context, check_n_samples, check_numeric


@register_safe_class
class FlowRegressor(PredictionOutputMixin, SafePersistenceMixin, RegressorMixin, BaseEstimator):
    """Conditional normalizing flow: the full predictive density p(y | x).

    The flow maps the target ``y`` to a normal latent, with every coupling conditioner fed the (standardized)
    features ``x``: ``log p(y | x) = log N(f(y; x); 0, diag(s^2)) + log|det J_f(y; x)|`` is exact, in the units
    of ``y``; the latent scale ``s`` is fitted on the validation rows after training (``calibrate``).
    ``n_flows`` such flows, each from its own seed, make an ensemble: the model is the equal-weight mixture
    of their densities. From that one model come the conditional mean (:meth:`predict`), exact quantiles and
    central intervals of a single target (:meth:`predict_quantiles`, :meth:`predict_interval`), draws
    (:meth:`sample`) and the log-likelihood of observed targets (:meth:`score_samples`). Skewed,
    heteroscedastic and multimodal targets are modelled as they are: no Gaussian noise is assumed.

    ``predict`` is the mixture's mean, by a fixed quadrature in the latent (deterministic; see the method),
    and an ensemble's quantiles solve its mixture's distribution function between its flows' exact quantiles,
    to 1e-12. ``set_output(transform="pandas")``: pandas predictions, indexed like ``X``, named after the targets.

    Parameters
    ----------
    flow, n_transforms, hidden_units, tail_bound : see :class:`FlowDensity`
        The learned layers. ``hidden_units="auto"`` sizes the conditioners by the number of targets plus
        features. The regressor also takes "mixture_cdf": couplings through a conditional 5-component Gaussian
        mixture's CDF (one target, ``n_transforms=1``: a mixture density network), and a sequence of kinds:
        each flow trains each and keeps the one that validates best, as with ``boosted_feature``. "auto" is
        ``("spline", "mixture_cdf")`` on 40 to 5,000 rows (below 3 targets), else FlowDensity's "auto" for
        the targets alone (``flow_kind_``: each flow's kind; user guide, "Multimodal targets").
    n_bins : int in [2, 333], default=8
        Spline bins per target; 8 by default ("auto" is FlowDensity's, for unconditional densities).
    learning_rate : float, default=3e-3
        As in :class:`FlowDensity` (default 1e-3 there): at 1e-3 a flow of one
        target trained too slowly on the small UCI sets (docs/regression_design_notes.md).
    max_epochs : int or "auto", default=100
        At most this many epochs; early stopping usually ends training sooner.
        "auto" is :class:`FlowDensity`'s (more epochs from 5,000 rows).
    batch_size, validation_fraction, n_iter_no_change, tol, weight_decay
        Training, as in :class:`FlowDensity`; early stopping scores held-out
        rows by their conditional log-likelihood.
    dequantize : "auto" or bool, default="auto"
        Dequantize discrete targets, as :class:`FlowDensity` does its features:
        "auto" adds uniform noise on ``[-0.5, 0.5)`` to integer targets (as wide as their grid's step on a
        coarser one, such as multiples of 10), and to other discrete ones (at most one distinct value per 5
        rows: rounded measurements) noise as wide as the smallest gap between their values. Predictions refer
        to the target plus that noise.
    bounds : "auto", None, (low, high) or sequence of (low, high) or None, default="auto"
        Support of bounded targets, as :class:`FlowDensity`'s ``bounds``: quantiles, means and samples then stay
        inside; targets on or outside score ``-inf``. "auto" (not partial_fit): a continuous target as ``log(y + c)``
        (``c`` its smallest value; negative: its mirror image; else a lone target skewed to a side: a shifted log) or
        one inside (0, 1) as a logit where trees find it far more likely so; one target's tails pass those bounds.
    base : {"linear", "normal"}, default="linear"
        The flow starts as the Gaussian of the standardized target. With "linear", the trained flow is then
        compared on its validation rows with a ridge regression (penalty and noise by leave-one-out error,
        wider where its estimate is less certain, correlated between targets, one target's a t on few rows;
        with the boosted feature, also one of the trees' prediction alone) fitted on its training rows, and
        the better is kept (a ridge refitted on every row, ``best_epoch_`` 0: a flow whose last layer shifts
        by a linear function of ``x`` and scales by one of its leverage). The comparison needs 10 validation
        rows: on 40 to 104 rows that many validate, above ``validation_fraction``; with fewer (or none, under
        10 rows) the ridge is the model, untrained; with ``validation_fraction=0`` or ``partial_fit`` the flow.
    calibrate : bool, default=True
        After training, fit each flow's scale ``s`` of the latent normal (one per target: the base becomes
        N(0, diag(s^2))) on its ``n`` validation rows (if any; not for a kept ridge; without gross errors' rows
        where they rule the target): ``s^2 = (160 + n mean z^2) / (160 + n)``, their maximum likelihood shrunk
        toward the training's own ``s = 1``. It widens (or narrows) the distributions to what held-out rows show.
    boosted_feature : "auto" or bool, default="auto"
        Give each flow, as one more feature per target, the prediction of gradient-boosted trees
        (``HistGradientBoostingRegressor``, leaf size chosen by the folds): out-of-fold on the training rows,
        the fold models' mean on new ones. Trees find steps and relevant features, which the MLP conditioners
        learn slowly. "auto": on 40 to 20,000 rows of which 10 or more validate (from 40 rows with
        ``base="linear"``, which holds out 10 there; from 100 with "normal"), each flow trains with and
        without it and keeps the one whose model (the flow, or the ridge that replaced it) scores better on
        its validation rows (twice the training; ``boosted_feature_`` says which), otherwise without, as with
        ``validation_fraction=0``. ``partial_fit`` of an unfitted model trains without.
    relevance_scaling : "auto" or bool, default="auto"
        Divide by 20 the standardized features taken for noise (boosted trees fitted to the features and a
        shuffled copy of each give them no more split gain than the best copy), so that the flow learns slowly
        from them (user guide, "Known limits"). "auto": where some feature is, on the rows where
        ``boosted_feature="auto"`` chooses, each flow trains both ways and keeps the one that validates better
        (twice the training); otherwise, and in ``partial_fit``, as given. ``x_scale_`` holds the scaling.
    n_flows : int or "auto", default="auto"
        Flows in the ensemble, each fitted from its own seed (its own initial weights, batch order and
        validation rows: each trains on a different 90% of the rows, by default); ``predict``,
        ``score_samples`` and the rest use their equal-weight mixture, at ``n_flows`` times one flow's cost
        (the trees are fitted once for all). "auto": 10 on fewer than 200 rows (weighted), 5 otherwise and in
        ``partial_fit`` (``len(ensemble_) + 1``; docs/regression_design_notes.md). 1: a single flow.
    n_jobs : int or None, default=None
        Flows of the ensemble trained at once, in joblib worker processes (None: 1, unless in a
        :func:`joblib.parallel_backend` context; -1: every core), each on one thread; a ``callback`` runs there.
    callback : callable or None, default=None
        Called with an :class:`EpochInfo` per epoch of each flow in turn (of each of its trainings, where the
        "auto" choices train it several times); its ``log_density(X, y)`` is that flow's ``score_samples``
        under that epoch's weights (before calibration).
    device, random_state, verbose : see :class:`FlowDensity`

    Attributes
    ----------
    flow_ : skflow._core.Flow
        The (first) fitted conditional flow, target to latent, in float64.
    latent_scale_ : ndarray of shape (n_targets_,)
        Standard deviations of its latent normal (1 without ``calibrate``): for a single flow,
        ``log p(y | x) = log N(f(y; x); 0, diag(latent_scale_^2)) + log|det J_f|``.
    ensemble_ : list of FlowRegressor
        The ensemble's other flows (one fewer than ``n_flows``), each a fitted ``FlowRegressor(n_flows=1)``
        (empty for a single flow). ``flow_``, ``latent_scale_`` and the training attributes are the first flow's.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string feature names.
    n_targets_ : int
        Number of target columns.
    target_names_in_ : ndarray of shape (n_targets_,)
        Defined when ``y`` is a named pandas Series or a DataFrame with string column names.
    x_log_shift_ : ndarray of shape (n_features_in_,)
        ``c`` where a heavy-tailed feature (skewness above 2, Kelly's above 0.25, at most 10% of the rows at its
        smallest value) enters the context as its least skewed shifted log ``log(x + c)``, where that halves
        the skewness; else NaN (as given: every feature in a ``partial_fit`` from scratch).
    x_location_, x_scale_ : ndarray of shape (n_features_in_,) or (n_features_in_ + n_targets_,)
        Weighted mean and standard deviation of the (logged) features and the trees' prediction with
        ``boosted_feature_`` (scale 1 for a constant one; noise features' times 20 where the flow kept
        ``relevance_scaling``): the map from ``X`` to the flow's context.
    context_range_ : ndarray of shape (2, n_features_in_) or (2, n_features_in_ + n_targets_)
        Range of the context's training columns before standardizing; new rows held within a width of it.
    boosted_feature_ : bool
        Whether the (first) flow's context includes the trees' prediction.
    tree_nodes_, tree_roots_, tree_baseline_ : ndarray
        The boosted trees as arrays (empty without them; skflow._boosted_feature).
    location_, scale_ : ndarray of shape (n_targets_,)
        Weighted standardization of the targets (after any bounds map): mean and standard deviation, or median
        and interquartile range / 1.349 where gross outliers rule the standard deviation (user guide).
    low_, high_ : ndarray of shape (n_targets_,)
        The parsed ``bounds`` of the targets; with "auto", those inferred (``log(y + c)``'s ``-c``, its mirror
        image's ``c``, a shifted log's edge, the logit's ``-min``, ``2 - max``), which one target's tails pass.
    dequantized_, asinh_columns_ : ndarray of bool of shape (n_targets_,)
        Targets dequantized in training; targets with an ``asinh`` tail.
    target_range_ : ndarray of shape (2, n_targets_)
        Smallest and largest training target (of the rows with weight; in ``partial_fit``, of every chunk). One
        target: beyond it widened by its width ``w`` on each side, each flow's tail is exponential with scale ``w``
        and the flow's mass there (the user guide, "How predict and the quantiles are computed").
    loss_curve_, validation_scores_, best_epoch_, n_iter_, flow_kind_, n_bins_, hidden_units_, batch_size_, \
max_epochs_, device_
        As in :class:`FlowDensity`.

    See Also
    --------
    FlowDensity : the unconditional density of ``X``.
    sklearn.ensemble.GradientBoostingRegressor : quantiles one model per level.

    Examples
    --------
    >>> import numpy as np
    >>> from skflow import FlowRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, (200, 1))
    >>> y = np.sin(X[:, 0]) + (0.1 + 0.3 * np.abs(X[:, 0])) * rng.normal(size=200)
    >>> reg = FlowRegressor(n_transforms=2, max_epochs=5, random_state=0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> reg.predict_quantiles(X[:3], [0.1, 0.5, 0.9]).shape
    (3, 3)
    >>> reg.sample(X[:3], n_samples=5, random_state=0).shape
    (3, 5)
    """

    _parameter_constraints: dict = {
        **FLOW_PARAMETER_CONSTRAINTS,
        "flow": [StrOptions({"auto", *FLOW_KINDS}), list, tuple],
        "base": [StrOptions({"linear", "normal"})],
        "calibrate": ["boolean"],
        "n_flows": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_jobs": [None, Integral],
        "boosted_feature": [StrOptions({"auto"}), "boolean"],
        "relevance_scaling": [StrOptions({"auto"}), "boolean"],
        "bounds": [None, "array-like", StrOptions({"auto"})],
    }

    _parameters_added_since_format_1 = ("n_flows", "n_jobs", "base", "boosted_feature", "relevance_scaling")
    _fitted_attributes: dict = REGRESSOR_FITTED_ATTRIBUTES

    def __init__(
        self,
        *,
        flow="auto",
        n_transforms=FlowSpec.n_transforms,
        hidden_units="auto",
        n_bins=FlowSpec.n_bins,
        tail_bound=FlowSpec.tail_bound,
        learning_rate=3e-3,
        batch_size="auto",
        max_epochs=TrainConfig.max_epochs,
        validation_fraction=TrainConfig.validation_fraction,
        n_iter_no_change=TrainConfig.n_iter_no_change,
        tol=TrainConfig.tol,
        weight_decay=TrainConfig.weight_decay,
        dequantize="auto",
        bounds="auto",
        base="linear",
        calibrate=True,
        boosted_feature="auto",
        relevance_scaling="auto",
        n_flows="auto",
        n_jobs=None,
        device="auto",
        callback=None,
        random_state=None,
        verbose=0,
    ):
        self.flow = flow
        self.n_transforms = n_transforms
        self.hidden_units = hidden_units
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.weight_decay = weight_decay
        self.dequantize = dequantize
        self.bounds = bounds
        self.base = base
        self.calibrate = calibrate
        self.boosted_feature = boosted_feature
        self.relevance_scaling = relevance_scaling
        self.n_flows = n_flows
        self.n_jobs = n_jobs
        self.device = device
        self.callback = callback
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_error
    def fit(self, X, y, sample_weight=None):
        """Fit the conditional flow by (weighted) maximum likelihood of ``y`` given ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features: the flow's context, standardized with weighted statistics.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Target(s); 2-D for the joint density of several targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the likelihood and of every fitted statistic; rows of weight zero are ignored.

        Returns
        -------
        self : FlowRegressor
        """
        X, Y, weights = validate_regression_data(self, X, y, sample_weight, merge_copies=True)
        self.ensemble_ = fit_flows(self, X, Y, weights)
        return self

    def _fit_one_flow(self, X: np.ndarray, Y: np.ndarray, weights: np.ndarray, kind=None, scaled=False) -> None:
        """Fit this estimator's own flow (the first of an ensemble) to validated data: ``X``, the features, with
        the trees' prediction or without (``skflow._boosted_feature``); ``kind``: the layer kind, if not the
        ``flow`` parameter's; ``scaled``: the features scaled by their relevance (``skflow._feature_relevance``)."""
        preprocessing = self._fit_preprocessing(Y, weights)
        self._trainer_state_ = stream_state(preprocessing, None)  # partial_fit continues from the fitted weights
        relevance = getattr(self, RELEVANCE) if scaled else None
        self.x_location_, self.x_scale_ = context_scaling(X, weights, relevance, self.x_log_shift_)
        resolve_training_sizes(self, Y.shape[0], Y.shape[1] + X.shape[1], flow_features=Y.shape[1], kind=kind)
        context = self._context(X)
        flow, result, preprocessing = fit_flow(self, Y, weights, preprocessing, context, self._callback_arguments)
        assign_fitted(self, flow, preprocessing, result)
        self.latent_scale_ = fitted_latent_scale(self, flow, Y, weights, context, result, preprocessing)

    def _members(self) -> list[FlowRegressor]:
        return [self, *self.ensemble_]

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_error
    def partial_fit(self, X, y, sample_weight=None):
        """One pass of mini-batch steps over ``(X, y)``: train on data that arrives in chunks.

        As :meth:`FlowDensity.partial_fit`, for the conditional density (see the user guide's "Large data"
        page). The first call fixes, from its chunk, ``y``'s preprocessing, ``X``'s standardization
        (``x_location_``, ``x_scale_``; no feature's log) and the "auto" sizes: give it a representative
        chunk. Each flow of an ensemble takes the same steps over the chunk, in its own batch order. Later
        values beyond its range widen ``context_range_``; a target on or outside ``bounds``, NaN, or another
        number of features or targets raise a ``ValueError`` and change nothing. Each call continues the
        optimizer state at the constant ``learning_rate``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 rows in the first call.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            As in ``fit``; rows of weight zero are ignored.

        Returns
        -------
        self : FlowRegressor
            ``n_iter_`` counts the passes (after the epochs of ``fit``, if any); ``loss_curve_`` gets the
            pass's mean training loss.

        Examples
        --------
        >>> import numpy as np
        >>> from skflow import FlowRegressor
        >>> rng = np.random.default_rng(0)
        >>> X = rng.uniform(-2, 2, (600, 1))
        >>> y = X[:, 0] + 0.3 * rng.normal(size=600)
        >>> reg = FlowRegressor(n_transforms=2, random_state=0)
        >>> for rows in np.array_split(np.arange(600), 3):
        ...     reg = reg.partial_fit(X[rows], y[rows])
        >>> reg.n_iter_, reg.predict(X[:2]).shape
        (3, (2,))
        """
        first = not hasattr(self, "flow_")
        X, Y, weights = validate_regression_data(self, X, y, sample_weight, reset=first)
        stream_regressor_chunk(self, X, Y, weights, first)
        return self

    def _fit_preprocessing(self, Y: np.ndarray, weights: np.ndarray) -> Preprocessing:
        return fitted_preprocessing(self, Y, weights, target_bounds(self), what="y")

    def _context(self, features: np.ndarray) -> np.ndarray:
        """This flow's context: its features (and trees' prediction) held near ``context_range_``, standardized."""
        return flow_context(self, features)

    def _callback_arguments(self, X, y) -> tuple[np.ndarray, np.ndarray]:
        """What the callback's ``log_density(X, y)`` hands the flow: the target rows and their context."""
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        return np.asarray(y, dtype=np.float64).reshape(len(X), -1), self._context(with_tree_feature(self, X))

    def _validated(self, X) -> np.ndarray:
        """Validated features ``X``, with the trees' prediction appended (each flow takes its context of them)."""
        check_is_fitted(self)
        check_numeric(X, type(self).__name__)
        return with_tree_feature(self, validate_data(self, X, dtype=np.float64, reset=False))

    def score_samples(self, X, y) -> np.ndarray:
        """Conditional log-density ``log p(y | x)`` of each row, in the units of ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Finite, or ``-inf`` where the density underflows or ``y`` is
            infinite or outside ``bounds``; never NaN. A Series with ``set_output(transform="pandas")``.
        """
        features = self._validated(X)
        names = getattr(self, "target_names_in_", None)
        Y = check_targets(y, features.shape[0], self.n_targets_, type(self).__name__, names)
        members = self._members()
        density = mixture_log_density([log_density(member, member._context(features), Y) for member in members])
        return self._output(X, density, name="log_density")

    def score(self, X, y, sample_weight=None) -> float:
        """R² of :meth:`predict`, as for every scikit-learn regressor (:meth:`score_samples` gives the
        log-likelihood). A DataFrame ``y`` must name the targets as in ``fit``, in the same order."""
        check_target_names(y, getattr(self, "target_names_in_", None), type(self).__name__)
        return super().score(X, y, sample_weight=sample_weight)

    def predict(self, X) -> np.ndarray:
        """Conditional mean ``E[y | x]``, the outer 1e-4 of each tail held at those quantiles (winsorized: a
        flow's tail beyond its training rows is extrapolation, and through a bound's exp it can rule the mean), of
        the distribution the quantiles describe; several targets' values held inside ``target_range_`` widened.

        For an ensemble, the average of its flows' means. One target: 2-point Gauss-Legendre quadrature of
        ``f^-1(z; x)`` on 64 panels of ``[-3.72, 3.72]`` against the latent normal density, plus the tails at its
        ends (within 1e-3 conditional standard deviations of a 12,000-point rule on a bimodal fit); several: the
        inverse map averaged over 512 fixed scrambled-Sobol latent points (within 3e-3 of 65,536), the same on
        every call. With ``bounds`` it stays finite and strictly inside (user guide).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            The shape of the ``y`` the model was fitted on (a Series or DataFrame with pandas output).
        """
        features = self._validated(X)  # first: it raises NotFittedError
        mean = ensemble_mean(self._members(), features)
        labels = self._target_labels()
        return self._output(X, mean[:, 0], name=labels[0]) if self._y_ndim == 1 else self._output(X, mean, labels)

    def predict_quantiles(self, X, quantiles) -> np.ndarray:
        """Exact conditional quantiles of a single target.

        Every layer of a one-target flow is increasing, so a flow's quantile of level ``tau`` is ``f^-1(s
        Phi^-1(tau); x)`` (``s``: its latent scale; beyond ``target_range_`` widened, its exponential tail's), to
        float precision; an ensemble's solves its mixture's distribution function between its flows' quantiles,
        to 1e-12. No sampling, no crossing quantiles.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        quantiles : float or array-like of float, each in (0, 1)

        Returns
        -------
        y_quantiles : ndarray of shape (n_samples, n_quantiles)
            A DataFrame with a column per level with pandas output (``set_output``).

        Raises
        ------
        ValueError
            For a model of several targets: their joint distribution has no
            single quantile function (draw marginal ones with :meth:`sample`).
        """
        levels = check_levels(quantiles)
        return self._output(X, self._quantiles(X, levels, "predict_quantiles"), list(levels))

    def _quantiles(self, X, levels: np.ndarray, method: str) -> np.ndarray:
        features = self._validated(X)
        if self.n_targets_ > 1:
            message = f"{method} needs a model of one target; this one has {self.n_targets_}. Estimate marginal"
            raise ValueError(message + " quantiles from sample(X, n_samples) instead")
        return ensemble_quantiles(self._members(), features, levels)

    def predict_interval(self, X, coverage: float = 0.9) -> np.ndarray:
        """Central prediction interval of a single target: its quantiles ``(1 -+ coverage) / 2``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        coverage : float in (0, 1), default=0.9

        Returns
        -------
        interval : ndarray of shape (n_samples, 2)
            Lower and upper ends (columns ``lower`` and ``upper`` with pandas output).
        """
        check_coverage(coverage)
        ends = self._quantiles(X, check_levels([(1 - coverage) / 2, (1 + coverage) / 2]), "predict_interval")
        return self._output(X, ends, ["lower", "upper"])

    def sample(self, X, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw targets from ``p(y | x)`` for each row of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_rows, n_features)
        n_samples : int, default=1
            Draws per row.
        random_state : int, RandomState instance or None, default=None
            Seed for this draw; None uses the estimator's ``random_state``.

        Returns
        -------
        y_samples : ndarray of shape (n_rows, n_samples) or (n_rows, n_samples, n_targets)
            The latter for a model fitted on 2-D ``y``. With pandas output, a DataFrame with a column per
            draw, or per (draw, target).
        """
        check_n_samples(n_samples)
        features = self._validated(X)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        generator = torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        samples = mixture_draws(self._members(), features, n_samples, generator, draws)
        samples = samples[:, :, 0] if self._y_ndim == 1 else samples
        return self._output(X, samples, draw_columns(n_samples, self._target_labels()))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def __setstate__(self, state):
        super().__setstate__(upgrade_regressor_state(state))
        if "flow_" in self.__dict__:
            check_fitted_widths(self)
