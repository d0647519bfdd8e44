"""FlowDensity: a normalizing-flow density estimator with scikit-learn's API."""

from __future__ import annotations

import contextlib
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, DensityMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._core import ToUnbounded, TrainConfig, TrainingDivergedError, build_flow, train_flow
from ._core.device import resolve_device, single_threaded, to_numpy, to_tensor
from ._inference import batch_rows, clip_inside_bounds, map_in_batches, rows_outside_bounds
from ._persistence import SafePersistenceMixin, register_safe_class
from ._preprocessing import check_numeric, fit_preprocessing, has_bounds, outside_bounds, parse_bounds
from ._progress import EpochProgress
from ._validation import Interval, StrOptions, _fit_context


def auto_hidden_units(n_samples: int, n_features: int) -> tuple[int, ...]:
    """Conditioner width: grows with the dimension, capped on small data, wide on large data.

    Measured (docs/benchmarks.md): below 2,000 rows the sets we tried already
    overfit within 10-30 epochs at width 64 (breast_cancer, digits, wine); from
    5,000 rows even 2-dimensional data gains from width 128 (make_moons held-out
    log-likelihood -1.157 at width 32, -1.139 at 128, -1.120 with the cosine schedule).
    """
    width = int(np.clip(8 * n_features, 32, 128))
    if n_samples < 2000:
        width = min(width, 64)
    elif n_samples >= 5000:
        width = 128
    return (width, width)


def auto_batch_size(n_samples: int) -> int:
    """Small batches (more, noisier steps) on small data; 256 from about 8,000 rows."""
    return int(np.clip(n_samples // 32, 32, 256))


@register_safe_class
class FlowDensity(SafePersistenceMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, BaseEstimator):
    """Normalizing-flow density estimator.

    Learns an invertible map ``f`` from the data to a standard normal latent
    space by maximum likelihood, so that ``log p(x) = log N(f(x); 0, I) +
    log|det J_f(x)|`` is exact. ``f`` is a chain of coupling layers (rational-
    quadratic splines or affine maps) interleaved with learned invertible linear
    layers, preceded by fixed standardization whose log-determinant is included:
    ``score_samples`` is the log-density of ``X`` in its own units, comparable
    with :meth:`sklearn.mixture.GaussianMixture.score_samples`.

    Parameters
    ----------
    flow : {"spline", "affine"}, default="spline"
        Coupling type: rational-quadratic splines (Durkan et al. 2019) or
        affine maps (RealNVP, Dinh et al. 2017).
    n_transforms : int, default=5
        Number of coupling layers.
    hidden_units : "auto" or tuple of int, default="auto"
        Hidden layer sizes of each conditioner MLP. "auto" scales the width
        with the number of features, capped on small data.
    n_bins : int, default=8
        Spline bins per feature (``flow="spline"`` only).
    tail_bound : float, default=5.0
        Splines act on ``[-tail_bound, tail_bound]`` (standardized units) and
        are the identity outside. Columns whose training values reach beyond
        it are first mapped through ``asinh`` (see ``asinh_columns_``).
    learning_rate : float, default=1e-3
        AdamW step size.
    batch_size : "auto" or int, default="auto"
        Mini-batch size. "auto" uses ``clip(n_samples // 32, 32, 256)``.
    max_epochs : int, default=100
        Upper limit on passes over the training data. The learning rate
        decays from ``learning_rate`` to zero over them (cosine schedule), so
        large data sets train to the end and small ones stop early.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for early stopping. With 0, or
        too few samples to hold out, the training loss decides.
    n_iter_no_change : int, default=20
        Stop when the validation log-likelihood has not improved by ``tol`` for
        this many epochs; the best epoch's weights are kept.
    tol : float, default=1e-4
        Minimum improvement (nats per sample) that counts.
    weight_decay : float, default=1e-4
        AdamW weight decay.
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
        (of magnitude at most 2**53). ``score_samples`` is then the log-density
        of the dequantized variable (integer + uniform noise) evaluated at the
        integer: an estimate of the log-probability of that integer value,
        whose average over the noise is a lower bound on it (Theis et al.
        2016). Probabilities of integer values are at most 1, so the mean
        log-likelihood of such data should come out near or below 0 per
        dequantized column; without dequantization the flow can pile its mass
        onto the integers and report arbitrarily high densities.
    bounds : None, (low, high) or sequence of (low, high), default=None
        Support of bounded features. ``low`` or ``high`` may be None. Such a
        feature is mapped to the real line (log for one bound, logit for two)
        inside the flow; samples stay within the bounds and points outside
        score ``-inf``.
    device : str, default="auto"
        "auto" (CUDA when available), "cpu", "cuda" or "cuda:N". On the CPU,
        training runs on one torch thread (the setting is restored after
        ``fit``): its many tiny operations gain little from more, and lose
        much when other work shares the cores.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialization, the validation split, batching and sampling.
        With an int, fits on CPU are reproducible bit for bit.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar with the losses.

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
        Epoch whose weights were kept; 0 means no epoch scored better than
        the untrained flow (a Gaussian fitted by the standardization).
    n_iter_ : int
        Number of epochs run.
    location_, scale_ : ndarray of shape (n_features_in_,)
        Standardization statistics (after any bounded-to-real map).
    dequantized_ : ndarray of bool
        Columns dequantized during training.
    asinh_columns_ : ndarray of bool
        Columns whose standardized training values reach beyond
        ``tail_bound``; they pass through a fixed ``asinh`` (its log-det
        included) before the learned layers, which compresses their tails
        into the range where the splines act.
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
        "flow": [StrOptions({"spline", "affine"})],
        "n_transforms": [Interval(Integral, 1, None, closed="left")],
        "hidden_units": [StrOptions({"auto"}), "array-like"],
        "n_bins": [Interval(Integral, 2, 333, closed="both")],
        "tail_bound": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "standardize": ["boolean"],
        "dequantize": [StrOptions({"auto"}), "boolean"],
        "bounds": [None, "array-like"],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    # Checked when a model file is loaded (see SafePersistenceMixin).
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
    }

    def __init__(
        self,
        *,
        flow="spline",
        n_transforms=5,
        hidden_units="auto",
        n_bins=8,
        tail_bound=5.0,
        learning_rate=1e-3,
        batch_size="auto",
        max_epochs=100,
        validation_fraction=0.1,
        n_iter_no_change=20,
        tol=1e-4,
        weight_decay=1e-4,
        standardize=True,
        dequantize="auto",
        bounds=None,
        device="auto",
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
        self.standardize = standardize
        self.dequantize = dequantize
        self.bounds = bounds
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Fit the flow by (weighted) maximum likelihood.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; the loss is the weighted mean negative log-likelihood.

        Returns
        -------
        self : FlowDensity
        """
        check_numeric(X, type(self).__name__)
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        if weights.max() <= 0:
            raise ValueError("sample_weight must have a positive sum")
        weights = weights / weights.max()  # only relative weights matter; avoids overflow in the sum
        n_samples, n_features = X.shape
        hidden_units = self._resolve_hidden_units(n_samples, n_features)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))
        self.device_ = resolve_device(self.device)

        low, high = parse_bounds(self.bounds, n_features)
        if outside_bounds(X, low, high).any():
            raise ValueError(
                "X has training values on or outside the given bounds; bounds must strictly contain the data"
            )
        bounded = has_bounds(low, high)
        to_unbounded = ToUnbounded(torch.from_numpy(low), torch.from_numpy(high)).double()
        with torch.no_grad():
            X_unbounded = to_unbounded(to_tensor(X, torch.device("cpu")))[0].numpy() if bounded else X
        prep = fit_preprocessing(X, X_unbounded, low, high, self.standardize, self.dequantize)
        standardized = (X_unbounded - prep.loc) / prep.scale
        # Columns reaching beyond the splines' range (heavy or long tails) go through asinh first.
        asinh_columns = np.abs(standardized).max(axis=0) > self.tail_bound

        flow = build_flow(
            n_features,
            flow=self.flow,
            n_transforms=self.n_transforms,
            hidden_units=hidden_units,
            n_bins=self.n_bins,
            tail_bound=self.tail_bound,
            bounded=bounded,
            asinh_tails=bool(asinh_columns.any()),
            seed=seed,
        )
        # The fixed layers (bounds map, standardization) run in float64 and are filled
        # after training; the body (asinh on the tail columns, then the learned layers) is trained.
        n_fixed = 2 if bounded else 1
        fixed, body = flow.transforms[:n_fixed].double(), flow.transforms[n_fixed:]
        if bounded:
            fixed[0].load_state_dict(to_unbounded.state_dict())
        if asinh_columns.any():
            body[0].mask.copy_(torch.from_numpy(asinh_columns))

        generator = torch.Generator().manual_seed(seed)
        device = self.device_
        train_x = to_tensor(standardized, device, torch.float32)
        train_w = to_tensor(weights * (n_samples / weights.sum()), device, torch.float32)
        body_flow = type(flow)(body, flow.config).to(device)
        config = TrainConfig(
            learning_rate=self.learning_rate,
            batch_size=self._resolve_batch_size(n_samples),
            max_epochs=self.max_epochs,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            weight_decay=self.weight_decay,
            # Cosine decay over max_epochs: the last epochs take small steps, which
            # gained 0.02 nats on make_moons over a constant rate stopped by patience.
            lr_schedule="cosine",
            # Keep and evaluate an average of the recent weights rather than the last
            # noisy step (over ~100 steps): it gained most on small data
            # (docs/benchmarks.md: held-out breast_cancer -4.15 -> -1.49,
            # digits -44.19 -> -39.70, wine -15.06 -> -14.82).
            ema_decay=0.99,
        )
        augment = self._make_augment(prep, device)
        training_threads = single_threaded() if device.type == "cpu" else contextlib.nullcontext()
        with EpochProgress(self.max_epochs, self.verbose) as progress, training_threads:
            try:
                result = train_flow(body_flow, train_x, train_w, config, generator, augment, progress.update)
            except TrainingDivergedError as exc:
                raise ValueError(f"FlowDensity could not be fitted: {exc}") from None
        # Without a validation set nothing evaluates the weights after the last step: check them here.
        if not all(bool(torch.isfinite(p).all()) for p in body_flow.parameters()):
            raise ValueError(
                "FlowDensity could not be fitted: training diverged in its last step (non-finite weights); "
                "lower learning_rate"
            )

        if result.n_recoveries:
            warnings.warn(
                f"training diverged {result.n_recoveries} time(s); the last good weights were restored and "
                f"learning_rate lowered to {result.final_learning_rate:.3g}",
                ConvergenceWarning,
                stacklevel=2,
            )
        if result.best_epoch == 0 and result.n_iter > 0:
            warnings.warn(
                "no epoch improved the validation score of the initial flow (a Gaussian after standardization), "
                "which was kept; lower learning_rate or check the data",
                ConvergenceWarning,
                stacklevel=2,
            )
        if self._still_improving(result):
            warnings.warn(
                f"max_epochs={self.max_epochs} reached before early stopping; the flow may be underfitted. "
                "Increase max_epochs or learning_rate.",
                ConvergenceWarning,
                stacklevel=2,
            )

        flow = flow.double().to(device)
        flow.transforms[n_fixed - 1].loc.copy_(torch.from_numpy(prep.loc))
        flow.transforms[n_fixed - 1].scale.copy_(torch.from_numpy(prep.scale))
        flow.eval()
        self.flow_ = flow
        self.location_, self.scale_ = prep.loc, prep.scale
        self.low_, self.high_ = prep.low, prep.high
        self.dequantized_ = prep.dequantized
        self.asinh_columns_ = asinh_columns
        self.loss_curve_ = result.loss_curve
        self.validation_scores_ = result.validation_scores
        self.best_epoch_ = result.best_epoch
        self.n_iter_ = result.n_iter
        return self

    def _still_improving(self, result) -> bool:
        """Whether training ended at max_epochs while the score still rose by ``tol`` per epoch.

        With the cosine schedule, reaching max_epochs is the planned end, and the
        weight average keeps creeping up in the last, tiny steps. The test is the
        early-stopping criterion averaged over the last ``n_iter_no_change``
        epochs: the kept epoch is the last one and the score gained more than
        ``tol`` per epoch over that window.
        """
        scores = result.validation_scores or [-loss for loss in result.loss_curve]
        if result.stopped_early or result.best_epoch != result.n_iter or len(scores) < 2:
            return False
        window = min(self.n_iter_no_change, len(scores) - 1)
        return scores[-1] - scores[-1 - window] > window * self.tol

    def _resolve_hidden_units(self, n_samples: int, n_features: int) -> tuple[int, ...]:
        if isinstance(self.hidden_units, str):
            return auto_hidden_units(n_samples, n_features)
        units = tuple(self.hidden_units)
        if not units or not all(isinstance(h, Integral) and h >= 1 for h in units):
            raise ValueError(
                f"hidden_units must be 'auto' or a non-empty sequence of positive ints, got {self.hidden_units!r}"
            )
        return tuple(int(h) for h in units)

    def _resolve_batch_size(self, n_samples: int) -> int:
        return auto_batch_size(n_samples) if self.batch_size == "auto" else int(self.batch_size)

    @staticmethod
    def _make_augment(prep, device):
        """Training-time noise in standardized units, or None.

        Dequantized columns get U[-0.5, 0.5) in data units; constant columns get
        N(0, 1) in standardized units, i.e. N(0, CONSTANT_COLUMN_SCALE^2) in data units.
        """
        if not (prep.dequantized.any() or prep.constant.any()):
            return None
        uniform_scale = to_tensor(np.where(prep.dequantized, 1.0 / prep.scale, 0.0), device, torch.float32)
        normal_scale = to_tensor(prep.constant.astype(float), device, torch.float32)

        def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            u = torch.rand(batch.shape, generator=generator).to(batch.device) - 0.5
            e = torch.randn(batch.shape, generator=generator).to(batch.device)
            return batch + u * uniform_scale + e * normal_scale

        return augment

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
        log_density[rows_outside_bounds(X, self.low_, self.high_)] = -np.inf
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
        """Map data to the standard-normal latent space.

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
        outside = rows_outside_bounds(X, self.low_, self.high_)
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
            float32 for float32 input, float64 otherwise.
        """
        Z = self._validated(X)
        X_original = self._map(lambda z: self.flow_.inverse(z)[0], Z, dtype=Z.dtype).reshape(Z.shape)
        return clip_inside_bounds(X_original, self.low_, self.high_)

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
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        generator = torch.Generator(device=self.device_).manual_seed(int(rng.randint(np.iinfo(np.int32).max)))
        # Filled in place, batch by batch: the output is the only full-size array.
        samples, rows = np.empty((n_samples, self.n_features_in_)), self._inference_rows()
        with torch.inference_mode():
            for start in range(0, n_samples, rows):
                size = min(rows, n_samples - start)
                samples[start : start + size] = to_numpy(self.flow_.sample(size, generator))
        return clip_inside_bounds(samples, self.low_, self.high_)

    # ------------------------------------------------- sklearn integration

    @property
    def _n_features_out(self):
        return self.n_features_in_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
