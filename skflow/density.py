"""FlowDensity: a normalizing-flow density estimator with scikit-learn's API."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, DensityMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._auto_parameters import resolve_training_sizes
from ._bounds import clip_to_support, outside_bounds
from ._core import Flow, FlowSpec, TrainConfig
from ._fitting import (
    FLOW_PARAMETER_CONSTRAINTS,
    assign_fitted,
    fit_flow,
    fitted_preprocessing,
    unchanged_on_error,
    validate_training_data,
)
from ._inference import batch_rows, map_in_batches, sample_in_batches
from ._persisted_flow import upgrade_density_state
from ._persistence import SafePersistenceMixin, register_safe_class
from ._preprocessing import Preprocessing
from ._streaming import partial_fit_chunk, stream_state
from ._validation import StrOptions, _fit_context, check_latent, check_n_samples, check_numeric


@register_safe_class
class FlowDensity(SafePersistenceMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, BaseEstimator):
    """Normalizing-flow density estimator.

    Learns an invertible map ``f`` from the data to a latent space with a
    base density ``p_z`` by maximum likelihood, so that ``log p(x) = log
    p_z(f(x)) + log|det J_f(x)|`` is exact. ``f`` is a fixed standardization
    (its log-determinant included) followed by learned layers (coupling or
    autoregressive rational-quadratic splines, or affine couplings, between
    invertible linear maps): ``score_samples`` is the log-density of ``X`` in
    its own units, comparable with ``GaussianMixture.score_samples``. ``p_z``
    is a learnable full-covariance Gaussian mixture (``base="mixture"``,
    started from a ``GaussianMixture`` fitted to the standardized data, so the
    untrained flow is that mixture; its components Student t where held-out
    rows show heavier tails) or ``N(0, I)`` (``base="normal"``).
    ``transform`` maps data to the latent, which follows ``p_z``: a
    Gaussianization only with ``base="normal"``.

    Parameters
    ----------
    flow : {"auto", "spline", "affine", "autoregressive"}, default="auto"
        Layer type: coupling layers with rational-quadratic splines (Durkan
        et al. 2019) or affine maps (RealNVP, Dinh et al. 2017), or
        autoregressive splines (MADE conditioners: each feature's spline
        depends on all the features before it, as in zuko's ``NSF``). An
        autoregressive flow scores in one pass but inverts in one pass per
        feature, so ``sample`` and ``inverse_transform`` are slower. "auto":
        "autoregressive" from 5,000 rows and 3 to 32 features, "spline"
        otherwise (``flow_kind_``; the user guide's parameters page says why).
    n_transforms : int, default=5
        Number of coupling (or autoregressive) layers.
    hidden_units : "auto" or tuple of int, default="auto"
        Hidden layer sizes of each conditioner MLP. "auto" scales the width
        with the number of features, capped on small data.
    base : {"mixture", "normal"}, default="mixture"
        Base density of the latent. "mixture": a Gaussian mixture, learned
        with the flow, started from the ``GaussianMixture`` a user would tune
        (1 to 32 components, full or diagonal covariances, ``reg_covar`` 1e-6
        to 1, by cross-validated log-likelihood on at most 20,000 of the
        standardized training rows; details in the user guide) and fitted to
        the rows training uses (``n_components_``). A trained epoch replaces
        it only if it is better on the validation rows by two standard
        errors. "normal": ``N(0, I)``, so that ``transform`` Gaussianizes the
        data. Models saved before this parameter existed load with "normal".
    n_bins : "auto" or int in [2, 333], default="auto"
        Spline bins per feature (not used by ``flow="affine"``). "auto": 16
        for one or two features (sharper edges), 8 beyond (``n_bins_``).
    tail_bound : float in [0.1, 1000], default=5.0
        Splines act on ``[-tail_bound, tail_bound]`` (standardized units) and
        are the identity outside. Columns whose training values reach beyond
        it are first mapped through ``asinh`` on that side (see
        ``asinh_columns_``).
    learning_rate : float, default=1e-3
        AdamW step size. From 5,000 rows with a mixture base it is reached over 300 warm-up steps and the
        base steps 3 times as far (the user guide's parameters page).
    batch_size : "auto" or int, default="auto"
        Mini-batch size. "auto" uses ``clip(n_samples // 32, 32, 256)``.
    max_epochs : "auto" or int, default="auto"
        Upper limit on passes over the training data; the learning rate
        decays to zero over them (cosine schedule). "auto": 100, and from
        5,000 rows as many as take 10,000 optimizer steps, 20,000 for
        autoregressive layers (``max_epochs_``).
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping. With 0, or
        too few samples to hold out, the training loss decides.
    n_iter_no_change : int, default=20
        Stop when the validation log-likelihood has not improved by ``tol`` for
        this many epochs; the best epoch's weights are kept.
    tol : float, default=1e-4
        Minimum improvement (nats per sample) that counts.
    weight_decay : float, default=1e-4
        AdamW weight decay; ``learning_rate * weight_decay`` must be below 1.
    standardize : bool, default=True
        Standardize features before the flow (its log-det is included).
        A constant (zero-variance) column that is not dequantized gets a
        floor on its scale instead: it is modelled as a normal with standard
        deviation 1e-3 around its value (like ``GaussianMixture``'s
        ``reg_covar``), with a warning, so its density is finite and
        documented rather than a division by zero.
    dequantize : "auto" or bool, default="auto"
        Add uniform noise on ``[-0.5, 0.5)`` to integer-valued columns during
        training so the continuous flow does not collapse onto the integers.
        "auto" does so for columns whose training values are all integers
        (of magnitude at most 2**53; on a coarser grid, such as multiples of
        10, noise as wide as its step), and for other discrete columns, whose
        values repeat (at most one distinct value per 5 rows: a two-valued
        column, rating levels, rounded measurements), with noise as wide as
        the smallest gap between their values; a bounded column where those
        cells lie within its bounds (the noise added to the data, before the
        bounds map). ``score_samples`` is then the log-density of the
        dequantized variable (value plus noise) at the value: an estimate of
        the log-probability of that value minus the log of the noise's width
        (0 for integers in steps of 1), whose average over the noise is a
        lower bound on it (Theis et al. 2016); without dequantization the flow
        can pile its mass onto the values and report arbitrarily high densities.
    bounds : None, (low, high) or sequence of (low, high) or None, default=None
        Support of bounded features: one ``(low, high)`` pair for every
        feature, or one pair (or None) per feature. ``low`` or ``high`` may be
        None (no bound on that side). Such a feature is mapped to the real
        line inside the flow (``log(x - low)`` below, ``-log(high - x)``
        above, ``logit`` for both), with its log-det; samples stay within the
        bounds and points on or outside them score ``-inf``.
    callback : callable or None, default=None
        Called as ``callback(info)`` with an :class:`EpochInfo` once before
        training (epoch 0) and after every epoch: the epoch, its losses and
        a ``log_density`` function of the weights evaluated then (learning
        curves on held-out data, custom logging). ``save`` does not store it
        (code), with a warning: the loaded model has none.
    device : str, default="auto"
        "auto" (CUDA when available), "cpu", "cuda" or "cuda:N". On the CPU,
        training runs on one torch thread (the setting is restored after
        ``fit``): its many tiny operations gain little from more, and lose
        much when other work shares the cores.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, the validation split, batching and sampling.
        With an int, fits on CPU are reproducible bit for bit.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar with the losses; 2 a line per epoch.

    Attributes
    ----------
    flow_ : skflow._core.Flow
        The fitted flow, data to latent, in float64.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string feature names.
    loss_curve_ : list of float
        Mean training negative log-likelihood per epoch (standardized units).
    validation_scores_ : list of float
        Mean validation log-likelihood per epoch (standardized units) of the
        weights kept as candidates: a moving average of the recent optimizer
        steps. Empty without a validation set.
    best_epoch_ : int
        Epoch whose weights were kept; 0: no epoch beat the untrained flow,
        which was kept: the initial mixture, refitted on every training row
        (the design: no warning), or with ``base="normal"`` a Gaussian fitted
        by the standardization (with a ``ConvergenceWarning``).
    n_components_ : int
        Components of the base mixture; 1 with ``base="normal"``.
    n_iter_ : int
        Number of epochs run, plus one for each ``partial_fit`` pass since.
    location_, scale_ : ndarray of shape (n_features_in_,)
        Weighted standardization statistics (after any bounded-to-real map),
        or under the start's Yeo-Johnson map its origin and scale (user guide).
    low_, high_ : ndarray of shape (n_features_in_,)
        The parsed ``bounds``: lower and upper bound of each feature,
        ``-inf``/``inf`` where it has none.
    flow_kind_ : str
        The layer type used (``flow`` resolved).
    n_bins_ : int
        The spline bins per feature (``n_bins`` resolved; unused by affine layers).
    hidden_units_ : tuple of int
        The conditioners' hidden layer sizes used (``hidden_units`` resolved).
    batch_size_ : int
        The mini-batch size used (``batch_size`` resolved).
    max_epochs_ : int
        The epochs training could run (``max_epochs`` resolved).
    dequantized_ : ndarray of bool
        Columns dequantized during training.
    asinh_columns_ : ndarray of bool
        Columns whose standardized training values reach beyond
        ``tail_bound``; on each side where they do, a fixed ``asinh`` (its
        log-det included) compresses that tail into the splines' range; a
        short tail is left as it is. With ``base="mixture"``, only if the
        starting mixture scores better held-out with it than without.
    device_ : torch.device
        Where the flow lives.

    See Also
    --------
    sklearn.neighbors.KernelDensity, sklearn.mixture.GaussianMixture

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from skflow import FlowDensity
    >>> X, _ = make_moons(500, noise=0.05, random_state=0)
    >>> est = FlowDensity(max_epochs=20, random_state=0).fit(X)
    >>> est.score_samples(X[:3]).shape
    (3,)
    >>> est.sample(2, random_state=0).shape
    (2, 2)
    """

    _parameter_constraints: dict = {
        **FLOW_PARAMETER_CONSTRAINTS,
        "n_bins": [StrOptions({"auto"}), *FLOW_PARAMETER_CONSTRAINTS["n_bins"]],
        "base": [StrOptions({"mixture", "normal"})],
        "standardize": ["boolean"],
    }
    # Checked when a model file is loaded (see SafePersistenceMixin).
    _parameters_added_since_format_1 = ("callback", "base")
    _fitted_attributes: dict = {
        "n_features_in_": "int",
        "device_": "device",
        "flow_": "flow",
        "location_": "finite[n]",
        "scale_": "finite[n]",
        "low_": "float[n]",
        "high_": "float[n]",
        "dequantized_": "bool[n]",
        "asinh_columns_": "bool[n]",
        "loss_curve_": "floats",
        "validation_scores_": "floats",
        "best_epoch_": "int",
        "n_iter_": "int",
        "hidden_units_": tuple,
        "n_bins_": "int",
        "n_components_": "int",
    }

    def __init__(
        self,
        *,
        flow="auto",
        n_transforms=FlowSpec.n_transforms,
        hidden_units="auto",
        base="mixture",
        n_bins="auto",
        tail_bound=FlowSpec.tail_bound,
        learning_rate=TrainConfig.learning_rate,
        batch_size="auto",
        max_epochs="auto",
        validation_fraction=TrainConfig.validation_fraction,
        n_iter_no_change=TrainConfig.n_iter_no_change,
        tol=TrainConfig.tol,
        weight_decay=TrainConfig.weight_decay,
        standardize=True,
        dequantize="auto",
        bounds=None,
        device="auto",
        callback=None,
        random_state=None,
        verbose=0,
    ):
        self.flow = flow
        self.n_transforms = n_transforms
        self.hidden_units = hidden_units
        self.base = base
        self.n_bins = n_bins
        self.tail_bound = tail_bound
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.weight_decay = weight_decay
        self.standardize = standardize
        self.dequantize = dequantize
        self.bounds = bounds
        self.device = device
        self.callback = callback
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_error
    def fit(self, X, y=None, sample_weight=None):
        """Fit the flow by (weighted) maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the loss is the weighted mean negative
            log-likelihood, and the fitted statistics (standardization, which
            columns are integer-valued, constant or long-tailed) are weighted
            too. Rows of weight zero are ignored entirely.

        Returns
        -------
        self : FlowDensity
        """
        X, weights = validate_training_data(self, X, sample_weight, merge_copies=True)
        preprocessing = fitted_preprocessing(self, X, weights, self.bounds)
        resolve_training_sizes(self, *X.shape)
        flow, result, preprocessing = fit_flow(self, X, weights, preprocessing)
        self._assemble(flow, preprocessing, result)
        self._trainer_state_ = stream_state(preprocessing, None)  # partial_fit continues from the fitted weights
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_error
    def partial_fit(self, X, y=None, sample_weight=None):
        """One pass of mini-batch steps over ``X``: train on data that arrives in chunks.

        The first call on an unfitted estimator fixes the preprocessing, the
        "auto" sizes and ``flow_kind_`` from its chunk, as ``fit`` would, and
        never updates them: give it a representative chunk (one under 5,000
        rows gives coupling splines: pass ``flow`` to stream autoregressive
        ones). Later values beyond its range are fine; values on or outside
        ``bounds`` or another number of features raise a ``ValueError``. Each
        call makes one shuffled pass at the constant ``learning_rate`` (no
        validation split, schedule or early stopping), continuing the AdamW
        moments, weight average and random stream of the calls before, which
        pickle and save with the estimator; after ``fit`` it continues from
        the fitted weights with a fresh optimizer. A pass that diverges raises
        and changes nothing. The user guide's "Large data" page has more.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            At least 2 rows in the first call.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            As in ``fit``; rows of weight zero are ignored.

        Returns
        -------
        self : FlowDensity
            ``n_iter_`` counts the passes (after those of ``fit``, if any);
            ``loss_curve_`` gets the pass's mean training loss.

        Examples
        --------
        >>> import numpy as np
        >>> from skflow import FlowDensity
        >>> X = np.random.default_rng(0).normal(size=(600, 2))
        >>> est = FlowDensity(n_transforms=2, random_state=0)
        >>> for chunk in np.array_split(X, 3):
        ...     est = est.partial_fit(chunk)
        >>> est.n_iter_, len(est.loss_curve_)
        (3, 3)
        """
        flow, preprocessing, result, self._trainer_state_ = partial_fit_chunk(self, X, sample_weight)
        return self._assemble(flow, preprocessing, result)

    def _assemble(self, flow: Flow, preprocessing: Preprocessing, result) -> FlowDensity:
        assign_fitted(self, flow, preprocessing, result)
        self.n_components_ = int(flow.config["base"].get("n_components", 1))
        return self

    # ------------------------------------------------------------ inference

    def _validated(self, X) -> np.ndarray:
        check_is_fitted(self)
        check_numeric(X, type(self).__name__)
        # float32 input stays float32 here (no full-size float64 copy); each
        # batch is converted to float64 on its way into the flow.
        return validate_data(self, X, dtype=(np.float64, np.float32), reset=False)

    def _inference_rows(self) -> int:
        config = self.flow_.config
        return batch_rows(self.n_features_in_, config["hidden_units"], config["n_bins"])

    def _map(self, function, X: np.ndarray, dtype=np.float64) -> np.ndarray:
        return map_in_batches(function, X, self._inference_rows(), self.device_, dtype)

    def score_samples(self, X):
        """Log-density of each sample, in the units of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_density : ndarray of shape (n_samples,)
            Finite, or ``-inf`` where the density underflows or ``X`` lies
            outside ``bounds``; never NaN or ``+inf``.
        """
        X = self._validated(X)
        # Scored in place; rows outside the bounds (whatever the flow gives them) are set after.
        log_density = self._map(self.flow_.log_prob, X)
        log_density[outside_bounds(X, self.low_, self.high_)] = -np.inf
        # Overflow far outside the data (|x| ~ 1e300) means a density that underflows to zero.
        log_density[~np.isfinite(log_density)] = -np.inf
        return log_density

    def score(self, X, y=None):
        """Mean log-likelihood per sample (as ``GaussianMixture.score``; ``KernelDensity.score`` sums).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    def transform(self, X):
        """Map data to the latent space, whose density is the base: ``N(0, I)`` with ``base="normal"``,
        the fitted mixture (``flow_.base``) with ``base="mixture"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features)
            float32 for float32 input (computed in float64, stored in the
            input's precision, so a large float32 array is not doubled in
            memory), float64 otherwise.

        Raises
        ------
        ValueError
            If a row lies on or outside ``bounds``, where the map is undefined.
        """
        X = self._validated(X)
        outside = outside_bounds(X, self.low_, self.high_)
        if outside.any():
            raise ValueError(
                f"X has {int(outside.sum())} row(s) on or outside the bounds (first: row {int(np.argmax(outside))}); "
                "transform is defined only inside them (score_samples gives such rows -inf)"
            )
        return self._map(lambda x: self.flow_(x)[0], X, dtype=X.dtype).reshape(X.shape)

    def inverse_transform(self, X):
        """Map latent points back to data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points in the latent space.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            float32 for float32 input, float64 otherwise. Always finite and
            strictly inside ``bounds``: latent points so far out that their
            preimage overflows the float range (through ``exp`` or ``sinh``)
            map to the largest representable value on that side.
        """
        check_is_fitted(self)
        Z = check_latent(X, self.n_features_in_, type(self).__name__)
        X_original = self._map(lambda z: self.flow_.inverse(z)[0], Z, dtype=Z.dtype).reshape(Z.shape)
        return clip_to_support(X_original, self.low_, self.high_)

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the fitted density.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seed for this draw; None uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        check_n_samples(n_samples)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        generator = torch.Generator(device=self.device_).manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        samples = sample_in_batches(self.flow_, n_samples, self.n_features_in_, self._inference_rows(), generator)
        return clip_to_support(samples, self.low_, self.high_)

    # ------------------------------------------------- sklearn integration

    @property
    def _n_features_out(self):
        return self.n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def __setstate__(self, state):
        super().__setstate__(upgrade_density_state(state))
