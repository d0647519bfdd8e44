"""Training glue shared by the estimators: build the flow and train it (what a fit reports: ``_training_report``).

The estimators hold the parameters (read here by name: ``flow``,
``n_transforms``, ``tail_bound``, ``learning_rate``,
``max_epochs``, ``validation_fraction``, ``n_iter_no_change``, ``tol``,
``weight_decay``, ``callback``, ``verbose``, ``random_state``, and ``base``
where it has one) and their
resolved ``flow_kind_``, ``n_bins_``, ``hidden_units_``, ``batch_size_`` (``_auto_parameters``) and
``device_``; this module turns them into a trained flow without importing any estimator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import warnings
from collections.abc import Callable
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from ._auto_parameters import START_BASE_LR_FACTOR, start_schedule
from ._bounds import outside_bounds, parse_bounds
from ._copies import merged_copies
from ._core import (
    Flow,
    TrainConfig,
    TrainingDivergedError,
    TrainResult,
    build_flow,
    train_flow,
)
from ._core.device import resolve_device, single_threaded, to_tensor
from ._core.rows import MIN_VALIDATION_ROWS, effective_rows, n_validation_rows, weighted_mean
from ._inference import batch_rows, map_in_batches
from ._linear_start import (
    KEPT_SCORE,
    VALIDATION_ROWS,
    comparison_validation_fraction,
    fit_ridge_gaussian,
    ridge_columns,
    untrained_ridge_message,
    validation_row_log_likelihoods,
)
from ._mixture_init import Mixture, fit_candidate, kept_degrees_of_freedom, mixture_rows
from ._mixture_start import choose_start
from ._preprocessing import Preprocessing, fit_preprocessing, make_augment, point_masses
from ._progress import EpochProgress
from ._training_report import check_finite_weights, epoch_callback, warn_about_training
from ._validation import Interval, StrOptions, check_numeric, drop_zero_weight_rows, positive_weights

# Parameter constraints shared by the estimators that fit one flow (scikit-learn's _parameter_constraints).
FLOW_PARAMETER_CONSTRAINTS: dict = {
    "flow": [StrOptions({"auto", "spline", "affine", "autoregressive"})],
    "n_transforms": [Interval(Integral, 1, None, closed="left")],
    "hidden_units": [StrOptions({"auto"}), "array-like"],
    "n_bins": [Interval(Integral, 2, 333, closed="both")],
    # In standardized units: below 0.1 the bins are too narrow to resolve anything in
    # float32, beyond 1000 the spline's arithmetic overflows it.
    "tail_bound": [Interval(Real, 0.1, 1000, closed="both")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "max_epochs": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    "validation_fraction": [Interval(Real, 0, 1, closed="left")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "weight_decay": [Interval(Real, 0, None, closed="left")],
    "dequantize": [StrOptions({"auto"}), "boolean"],
    "bounds": [None, "array-like"],
    "device": [str],
    "callback": [None, callable],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}


def check_learning_rate_and_weight_decay(estimator) -> None:
    # A mixture base steps START_BASE_LR_FACTOR times as fast on large data (start_schedule): its factor counts too.
    fastest = START_BASE_LR_FACTOR if getattr(estimator, "base", "normal") == "mixture" else 1.0
    if fastest * estimator.learning_rate * estimator.weight_decay >= 1.0:
        base = f", and the mixture base's by (1 - {fastest:g} * learning_rate * weight_decay)" if fastest > 1 else ""
        raise ValueError(
            f"weight_decay={estimator.weight_decay:g} with learning_rate={estimator.learning_rate:g}: AdamW "
            f"multiplies every weight by (1 - learning_rate * weight_decay) at each step{base}, which must stay "
            "positive; lower weight_decay"
        )


def unchanged_on_error(fit_method: Callable) -> Callable:
    """Decorate a ``fit`` or ``partial_fit``: if it raises, the estimator's attributes are put back as they were.

    Validation sets ``n_features_in_`` and ``feature_names_in_`` before later
    checks (weights, bounds, too few rows) can fail; without this, a failed
    re-fit left a model whose ``n_features_in_`` disagreed with its flow, and
    its next ``score_samples`` failed inside torch. A fit replaces its fitted
    attributes rather than mutating them, so a shallow copy restores them; the
    estimators of an ensemble (``ensemble_``) are trained in place one after
    the other, so their attributes are saved and put back too.
    """

    @functools.wraps(fit_method)
    def guarded(estimator, *args, **kwargs):
        saved = [(held, dict(held.__dict__)) for held in (estimator, *_held_estimators(estimator))]
        try:
            return fit_method(estimator, *args, **kwargs)
        except BaseException:
            for held, attributes in saved:
                held.__dict__.clear()
                held.__dict__.update(attributes)
            raise

    return guarded


def _held_estimators(estimator) -> list[BaseEstimator]:
    """The estimators in ``estimator``'s list attributes (an ensemble's other members)."""
    return [
        member
        for value in estimator.__dict__.values()
        if isinstance(value, list)
        for member in value
        if isinstance(member, BaseEstimator)
    ]


def validate_training_data(
    estimator, X, sample_weight, reset: bool = True, merge_copies: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Checked X (float64 or float32) and weights, restricted to the rows with positive weight.

    ``reset=False`` (a later ``partial_fit`` chunk) checks X against the fitted features and takes one row.
    ``merge_copies`` (``fit``): copies of rows merged into one row of their summed weight where
    :mod:`skflow._copies` takes them for copies.
    """
    check_numeric(X, type(estimator).__name__)
    min_rows = 2 if reset else 1
    X = validate_data(estimator, X, dtype=(np.float64, np.float32), ensure_min_samples=min_rows, reset=reset)
    weights, X = drop_zero_weight_rows(
        positive_weights(sample_weight, X), X, estimator_name=type(estimator).__name__, min_rows=min_rows
    )
    check_learning_rate_and_weight_decay(estimator)
    if merge_copies:
        X, _, weights = merged_copies(X, np.empty((X.shape[0], 0)), weights, type(estimator).__name__)
    if reset:
        estimator.device_ = resolve_device(estimator.device)
    return X, weights


def fitted_preprocessing(estimator, X: np.ndarray, weights: np.ndarray, bounds, what: str = "X") -> Preprocessing:
    """The fixed preprocessing of the rows the flow models (``X``, or a regressor's ``y``, standardized robustly
    where gross outliers rule its spread) within ``bounds`` (the estimator's parameter, or what a regressor's
    ``bounds="auto"`` chose).

    Reads the estimator's ``standardize`` (True where it has none), ``dequantize`` and ``tail_bound``.
    """
    low, high = parse_bounds(bounds, X.shape[1])
    outside = outside_bounds(X, low, high)
    if outside.any():
        raise ValueError(
            f"{what} has {int(outside.sum())} training row(s) on or outside the given bounds (first: row "
            f"{int(np.argmax(outside))}); bounds must strictly contain the training values"
        )
    preprocessing = fit_preprocessing(
        X,
        weights,
        low,
        high,
        standardize=getattr(estimator, "standardize", True),
        dequantize=estimator.dequantize,
        tail_bound=estimator.tail_bound,
        robust=what == "y",
        columns="target" if what == "y" else "feature",
    )
    masses = point_masses(X, preprocessing.dequantized | preprocessing.constant)
    if masses:
        names = getattr(estimator, "feature_names_in_" if what == "X" else "target_names_in_", None)
        found = ", ".join(
            # Whole percents rounded down: one other value in 1,400 rows is "99%", not "100%".
            f"column {j if names is None else repr(str(names[j]))}: {math.floor(100 * share)}% of the rows at {value:g}"
            for j, (value, share) in masses.items()
        )
        # A mass at a column's largest or smallest value is a cap or a floor (a sensor's limit, amounts of 0).
        edges = [
            j if names is None else repr(str(names[j]))
            for j, (value, _) in masses.items()
            if value in (X[:, j].max(), X[:, j].min())
        ]
        edge_advice = (
            f", declaring the cap or floor of column(s) {', '.join(map(str, edges))} in bounds" if edges else ""
        )
        warnings.warn(
            f"{what} has point masses ({found}). A continuous density grows without bound on such a value, so "
            "the log-likelihood of rows there measures the height of the fitted spike, not the fit; model those "
            f"values apart (for example, a classifier for them and this estimator for the other rows{edge_advice})",
            UserWarning,
            stacklevel=3,
        )
        preprocessing = dataclasses.replace(preprocessing, point_masses=True)
    return preprocessing


def assign_fitted(estimator, flow: Flow, preprocessing: Preprocessing, result: TrainResult) -> None:
    """The fitted attributes every flow estimator shares."""
    estimator.flow_ = flow
    estimator.location_, estimator.scale_ = preprocessing.loc, preprocessing.scale
    estimator.low_, estimator.high_ = preprocessing.low, preprocessing.high
    estimator.dequantized_ = preprocessing.dequantized
    estimator.asinh_columns_ = preprocessing.lower_tails | preprocessing.upper_tails
    estimator.loss_curve_ = result.loss_curve
    estimator.validation_scores_ = result.validation_scores
    estimator.best_epoch_ = result.best_epoch
    estimator.n_iter_ = result.n_iter


def train_config(
    estimator, warmup_steps: int = 0, base_lr_factor: float = 1.0, validation_fraction: float | None = None
) -> TrainConfig:
    """The training settings of ``estimator``; ``validation_fraction``: the fit's (``held_out_fraction``),
    default the estimator's."""
    if validation_fraction is None:
        validation_fraction = estimator.validation_fraction
    return TrainConfig(
        warmup_steps=warmup_steps,
        base_lr_factor=base_lr_factor,
        learning_rate=estimator.learning_rate,
        batch_size=estimator.batch_size_,
        max_epochs=estimator.max_epochs_,
        validation_fraction=validation_fraction,
        n_iter_no_change=estimator.n_iter_no_change,
        tol=estimator.tol,
        weight_decay=estimator.weight_decay,
    )


def fit_flow(
    estimator,
    X: np.ndarray,
    weights: np.ndarray,
    preprocessing: Preprocessing,
    context: np.ndarray | None = None,
    callback_arguments: Callable[..., tuple[np.ndarray, np.ndarray | None]] | None = None,
) -> tuple[Flow, TrainResult, Preprocessing]:
    """Build the flow around the fitted ``preprocessing`` and train its learned part; return it in float64,
    with the training summary and the preprocessing it uses (without asinh tails where the mixture
    start scored better without them, :mod:`skflow._mixture_start`).

    The fixed part runs once, in float64 batches, into the float32 rows the
    learned part trains on. ``context`` (already scaled, one row per row of
    ``X``) makes the flow conditional. ``callback_arguments``, when given,
    turns the arguments of the callback's ``log_density`` (a regressor's
    ``(X, y)``) into the flow's ``(rows, context)``. An estimator with
    ``base="mixture"`` gets a Gaussian-mixture base fitted to those rows
    (``_mixture_start``, ``_mixture_init``) before training; one with
    ``base="linear"`` and a context is, after training, replaced by a ridge
    regression that scores better on the validation rows (``_linear_start``);
    where fewer than ``MIN_VALIDATION_ROWS`` would validate (and
    ``validation_fraction`` is not 0), it trains nothing and the ridge is its
    model.
    """
    seed = draw_seed(estimator)
    device = estimator.device_
    context_features = 0 if context is None else context.shape[1]
    flow = new_flow(estimator, X.shape[1], preprocessing, seed, context_features)
    train_x, train_w = training_rows(flow, X, weights, device)
    start = None
    if getattr(estimator, "base", "normal") == "mixture":
        # Fitted in the preprocessed space: the untrained flow is this mixture after the fixed maps.
        # Chosen by cross-validation on every training row (a steadier choice on small data), fitted on
        # the rows training uses: the validation rows stay unseen, so epoch 0's validation score is fair.
        start = choose_start(preprocessing, train_x, weights, seed, device)
        if start.preprocessing is not preprocessing:  # the asinh tails were dropped
            preprocessing = start.preprocessing
            flow = new_flow(estimator, X.shape[1], preprocessing, seed, context_features)
            del train_x  # not kept beside its replacement: the training rows are the largest array of a fit
            train_x, train_w = training_rows(flow, X, weights, device)
    augment = make_augment(preprocessing, device)
    if start is not None:
        training_part = mixture_rows(train_x, weights, estimator.validation_fraction, seed, augment)
        mixture = fit_candidate(start.candidate, training_part, seed)
        degrees_of_freedom = kept_degrees_of_freedom(start.candidate, mixture, start.degrees_of_freedom)
        # The same seed: the same learned layers, now over the mixture.
        flow = new_flow(estimator, X.shape[1], preprocessing, seed, context_features, mixture, degrees_of_freedom)
    compared = compares_with_ridge(estimator, context is not None)
    fraction = held_out_fraction(estimator, effective_rows(weights), context is not None)
    config = train_config(estimator, **start_schedule(X.shape[0], start is not None), validation_fraction=fraction)
    n_validation = n_validation_rows(X.shape[0], config.validation_fraction)
    if compared and config.validation_fraction > 0 and n_validation < MIN_VALIDATION_ROWS:
        # Too few rows would validate to compare a trained flow with the ridge, which is the model either way
        # (and, where none would, better than a flow trained on a handful of rows without early stopping).
        warnings.warn(untrained_ridge_message(X.shape[0], n_validation), ConvergenceWarning, stacklevel=3)
        ridge = ridge_of_every_row(estimator, preprocessing, augment, train_x, train_w, context, seed)
        return ridge, TrainResult(), preprocessing
    train_context = None if context is None else to_tensor(context, device, torch.float32)
    callback = epoch_callback(estimator, flow, callback_arguments)
    training_threads = single_threaded() if device.type == "cpu" else contextlib.nullcontext()
    bar = EpochProgress(estimator.max_epochs_, estimator.verbose, desc=type(estimator).__name__)
    with bar as progress, training_threads:

        def on_epoch(epoch, train_loss, score):
            if epoch > 0:
                progress.update(epoch, train_loss, score)
            if callback is not None:
                callback(epoch, train_loss, score)

        generator = torch.Generator().manual_seed(seed)
        try:
            result = train_flow(flow, train_x, train_w, config, generator, augment, on_epoch, train_context)
        except TrainingDivergedError as exc:
            raise ValueError(
                f"{type(estimator).__name__} could not be fitted: {exc}. Lower learning_rate; if that does not "
                "help, look for extreme values in the data"
            ) from None
    check_finite_weights(estimator, flow)
    if compared:
        flow = better_of_flow_and_ridge(estimator, flow, result, preprocessing, train_x, train_w, context, seed)
    warn_about_training(estimator, result, preprocessing.point_masses)
    flow = flow.double().eval()
    if start is not None and result.best_epoch == 0:
        # No epoch clearly beat the start, so the model is the mixture: refitted on every training row, as
        # GridSearchCV refits its choice (and in float64, not the float32 copy training used). Where one of
        # the two fits fell back to one Gaussian and the other did not, the trained base stays.
        weights, means, precisions_cholesky = fit_candidate(start.candidate, start.every_row, seed)
        if len(weights) == flow.base.n_components:
            flow.base.set_mixture(weights, means, precisions_cholesky)
    return flow, result, preprocessing


def compares_with_ridge(estimator, conditional: bool) -> bool:
    """Whether a fit's trained flow is compared with a ridge regression: ``base="linear"`` and a context."""
    return getattr(estimator, "base", "normal") == "linear" and conditional


def held_out_fraction(estimator, n_rows: float, conditional: bool) -> float:
    """The fraction of a fit's ``n_rows`` rows (counted by their weights, ``effective_rows``) that validates:
    ``validation_fraction``, raised where the trained flow is then compared with a ridge regression, so that the
    comparison has rows to score (``_linear_start``): rows of negligible weight score nothing."""
    if compares_with_ridge(estimator, conditional):
        return comparison_validation_fraction(estimator.validation_fraction, n_rows)
    return estimator.validation_fraction


def better_of_flow_and_ridge(
    estimator, flow: Flow, result: TrainResult, preprocessing: Preprocessing, train_x, train_w, context, seed: int
) -> Flow:
    """The trained conditional ``flow``, or the ridge-regression flow if it scores better on the validation rows.

    Both are scored on the same validation rows (one seeded draw of any
    dequantization noise); without validation rows the trained flow stays.
    (Where fewer than ``MIN_VALIDATION_ROWS`` would validate, ``fit_flow``
    trains none: the ridge is the model.) A kept ridge flow is reported as
    epoch 0: no epoch beat it. It is then refitted on every row, as
    GridSearchCV refits its choice, and ``result.validation_index`` becomes
    None: its noise scale is a leave-one-out estimate already, and no row is
    left unseen to recalibrate it on.
    """
    if result.validation_index is None:
        return flow
    augment = make_augment(preprocessing, estimator.device_)
    column_sets = ridge_columns(estimator.n_features_in_, context.shape[1])
    candidates = [flow]
    held_out, robust = result.validation_index, preprocessing.robust_scaled
    for columns in column_sets:
        shift = fit_ridge_gaussian(train_x, context, train_w, held_out, seed, augment, columns, robust)
        ridge = new_flow(estimator, train_x.shape[1], preprocessing, seed, context.shape[1], linear_shift=shift)
        candidates.append(ridge)
    rows = (train_x, train_w, to_tensor(context, estimator.device_, torch.float32), result.validation_index)
    row_scores = [validation_row_log_likelihoods(candidate, *rows, augment, seed) for candidate in candidates]
    scores = [weighted_mean(*scored) for scored in row_scores]
    best = int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))  # a NaN score never wins
    setattr(estimator, VALIDATION_ROWS, row_scores[best])
    if best == 0:
        return flow
    setattr(estimator, KEPT_SCORE, scores[best])  # boosted_feature="auto" compares the kept models
    result.best_epoch, result.validation_index = 0, None
    return ridge_of_every_row(estimator, preprocessing, augment, train_x, train_w, context, seed, column_sets[best - 1])


def ridge_of_every_row(
    estimator, preprocessing: Preprocessing, augment, train_x, train_w, context, seed: int, columns=slice(None)
) -> Flow:
    """The ridge-regression flow (on ``columns`` of the context) fitted on every row, in float64: the model where
    the ridge is kept. ``augment`` is the fit's dequantization noise (:func:`make_augment` of ``preprocessing``)."""
    shift = fit_ridge_gaussian(train_x, context, train_w, None, seed, augment, columns, preprocessing.robust_scaled)
    ridge = new_flow(estimator, train_x.shape[1], preprocessing, seed, context.shape[1], linear_shift=shift)
    return ridge.double().eval()


def draw_seed(estimator) -> int:
    """The seed of a fit's weights and random stream, from the estimator's ``random_state``."""
    return int(check_random_state(estimator.random_state).randint(np.iinfo(np.int32).max))


def new_flow(
    estimator,
    n_features: int,
    preprocessing: Preprocessing,
    seed: int,
    context_features: int = 0,
    mixture: Mixture | None = None,
    degrees_of_freedom: float | None = None,
    linear_shift: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Flow:
    """The untrained flow (learned part in float32, fixed part in float64) on ``estimator.device_``."""
    return build_flow(
        n_features,
        flow=estimator.flow_kind_,
        n_transforms=estimator.n_transforms,
        hidden_units=estimator.hidden_units_,
        n_bins=estimator.n_bins_,
        tail_bound=estimator.tail_bound,
        context_features=context_features,
        seed=seed,
        mixture=mixture,
        degrees_of_freedom=degrees_of_freedom,
        linear_shift=linear_shift,
        **preprocessing.flow_arguments(),
    ).to(estimator.device_)


def training_rows(flow: Flow, X: np.ndarray, weights: np.ndarray, device: torch.device):
    """The float32 rows the learned part trains on (the fixed part run in float64 batches), and their weights.

    The rows are the one full-size array that training adds (float32, filled
    in place); the weights are scaled to a mean of 1.
    """
    rows = map_in_batches(lambda x: flow.preprocess(x)[0], X, batch_rows(X.shape[1], (1,), 1), device, np.float32)
    train_w = to_tensor(weights * (X.shape[0] / weights.sum()), device, torch.float32)
    return to_tensor(rows, device, torch.float32), train_w
