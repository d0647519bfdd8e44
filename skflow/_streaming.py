"""``partial_fit``: training that arrives in chunks, continuing one trainer's state from call to call.

The rows the flow models (a density's ``X``, a regressor's ``y``) go through
the flow's fixed preprocessing; a conditional flow also gets each row's
context (a regressor's standardized features), which is never preprocessed
here: the estimator scales it.

An estimator that supports ``partial_fit`` keeps ``_trainer_state_``: a dict of
plain values (arrays, CPU tensors, ints, None; string keys) that pickles and
saves like any fitted attribute:
  "preprocessing": the fields of the fixed Preprocessing (for the training noise);
  "seed": the random stream's seed before the first pass (None after ``fit``: drawn then);
  "trainer": ``Trainer.state_dict()`` after the last pass (raw weights, AdamW
             moments, weight average, generator), or None: start from ``flow_``'s
             weights with a fresh AdamW and weight average.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import torch

from ._auto_parameters import resolve_training_sizes
from ._bounds import outside_bounds
from ._core import Flow, Rows, Trainer, TrainResult, flow_from_config
from ._core.device import single_threaded, to_tensor
from ._fitting import (
    draw_seed,
    fitted_preprocessing,
    new_flow,
    train_config,
    training_rows,
    validate_training_data,
)
from ._mixture_init import fit_mixture, mixture_rows
from ._preprocessing import Preprocessing, make_augment
from ._training_report import check_finite_weights, epoch_callback


def stream_state(preprocessing: Preprocessing, seed: int | None) -> dict:
    """The ``_trainer_state_`` of a flow that no pass has trained yet (just built, or just ``fit``)."""
    return {"preprocessing": asdict(preprocessing), "seed": seed, "trainer": None}


@dataclass(frozen=True)
class Context:
    """The context rows of a conditional flow's chunk (already scaled) and the callback's argument map.

    ``callback_arguments`` turns the arguments of the callback's
    ``log_density`` (a regressor's ``(X, y)``) into the flow's ``(rows, context)``.
    """

    rows: np.ndarray
    callback_arguments: Callable[..., tuple[np.ndarray, np.ndarray]]


def start_stream(
    estimator, X: np.ndarray, preprocessing: Preprocessing, weights: np.ndarray, context_features: int = 0
) -> tuple[Flow, dict]:
    """First ``partial_fit`` call: the untrained flow in float64 and its state; sizes resolved on this chunk.

    As in ``fit``, "auto" conditioners are sized by the modelled columns plus the context's.
    """
    resolve_training_sizes(estimator, X.shape[0], X.shape[1] + context_features, flow_features=X.shape[1])
    seed = draw_seed(estimator)
    flow = new_flow(estimator, X.shape[1], preprocessing, seed, context_features)
    if getattr(estimator, "base", "normal") == "mixture":
        # As in fit: the untrained flow is a mixture fitted to this chunk's rows (none held out here).
        train_x, _ = training_rows(flow, X, weights, estimator.device_)
        augment = make_augment(preprocessing, estimator.device_)
        mixture, degrees_of_freedom = fit_mixture(mixture_rows(train_x, weights, 0.0, seed, augment), seed)
        flow = new_flow(estimator, X.shape[1], preprocessing, seed, context_features, mixture, degrees_of_freedom)
    return flow.double().eval(), stream_state(preprocessing, seed)


def check_chunk_bounds(estimator, X: np.ndarray, what: str = "X") -> None:
    outside = outside_bounds(X, estimator.low_, estimator.high_)
    if outside.any():
        raise ValueError(
            f"{what} has {int(outside.sum())} row(s) on or outside the bounds (first: row {int(np.argmax(outside))}); "
            "every training row must lie strictly inside them"
        )


def stream_pass(
    estimator, X: np.ndarray, weights: np.ndarray, flow: Flow, state: dict, context: Context | None = None
) -> tuple[Flow, float, dict]:
    """One pass of mini-batch steps over ``X`` (and its ``context``) that continues ``flow`` (float64) and ``state``.

    Returns the new flow (float64, the weight average's weights), the pass's
    mean training loss and the new state; the estimator is left as it was, so
    that a pass that fails changes nothing.
    """
    device = estimator.device_
    training = flow_from_config(flow.config)  # float32 learned part, float64 fixed part
    training.load_state_dict(flow.state_dict())
    training = training.to(device)
    x, w = training_rows(training, X, weights, device)
    rows = Rows(x, w, None if context is None else to_tensor(context.rows, device, torch.float32))
    seed = state["seed"] if state["seed"] is not None else draw_seed(estimator)
    augment = make_augment(Preprocessing(**state["preprocessing"]), device)
    trainer = Trainer(training, train_config(estimator), torch.Generator().manual_seed(seed), augment)
    try:
        if state["trainer"] is not None:
            trainer.load_state_dict(state["trainer"])
        with single_threaded() if device.type == "cpu" else contextlib.nullcontext():
            loss, diverged = trainer.one_pass(rows, estimator.learning_rate)
        if diverged or not math.isfinite(loss):
            raise ValueError(
                f"{type(estimator).__name__}.partial_fit diverged (non-finite loss or gradient); the estimator is "
                "unchanged. Lower learning_rate; if that does not help, look for extreme values in the data"
            )
        trainer_state = trainer.state_dict()
        if trainer.average is not None:
            trainer.average.swap_in()
    finally:
        trainer.release()
    check_finite_weights(estimator, training)
    training = training.double().eval()
    callback = epoch_callback(estimator, training, None if context is None else context.callback_arguments)
    loss /= float(w.sum())
    if callback is not None:
        callback(estimator.n_iter_ + 1 if hasattr(estimator, "n_iter_") else 1, loss, None)
    return training, loss, {**state, "seed": seed, "trainer": trainer_state}


def partial_fit_chunk(estimator, X, sample_weight) -> tuple[Flow, Preprocessing, TrainResult, dict]:
    """One ``partial_fit`` call of an unconditional density: validate ``X``, then :func:`stream_chunk`."""
    X, weights = validate_training_data(estimator, X, sample_weight, reset=not hasattr(estimator, "flow_"))
    return stream_chunk(estimator, X, weights)


def stream_chunk(
    estimator,
    X: np.ndarray,
    weights: np.ndarray,
    context: Context | None = None,
    fit_preprocessing: Callable[[np.ndarray, np.ndarray], Preprocessing] | None = None,
    what: str = "X",
) -> tuple[Flow, Preprocessing, TrainResult, dict]:
    """One pass over validated rows: the new flow, the (fixed) preprocessing, the results so far and the new state.

    The first call (no ``flow_`` yet) fixes the preprocessing of ``X`` (with
    ``fit_preprocessing(X, weights)`` when given) and builds the flow, with
    ``context``'s columns as its context; later ones check ``X`` against the
    bounds. ``what`` names ``X`` in errors. The estimator's fitted attributes
    are left for the caller to set, so a failing call changes none of them.
    """
    if not hasattr(estimator, "flow_"):
        fit_preprocessing = fit_preprocessing or partial(fitted_preprocessing, estimator, bounds=estimator.bounds)
        preprocessing = fit_preprocessing(X, weights)
        context_features = 0 if context is None else context.rows.shape[1]
        flow, state = start_stream(estimator, X, preprocessing, weights, context_features)
        result = TrainResult()
    else:
        check_chunk_bounds(estimator, X, what)
        flow, state = estimator.flow_, estimator._trainer_state_
        preprocessing = Preprocessing(**state["preprocessing"])
        result = TrainResult([*estimator.loss_curve_], [*estimator.validation_scores_], estimator.n_iter_)
    flow, loss, state = stream_pass(estimator, X, weights, flow, state, context)
    result.loss_curve.append(loss)
    result.n_iter = result.best_epoch = result.n_iter + 1
    return flow, preprocessing, result, state
