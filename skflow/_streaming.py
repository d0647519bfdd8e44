"""``partial_fit``: training that arrives in chunks, continuing one trainer's state from call to call.

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
from dataclasses import asdict

import numpy as np
import torch

from ._bounds import outside_bounds
from ._core import Flow, Rows, Trainer, TrainResult, flow_from_config
from ._core.device import single_threaded
from ._fitting import (
    check_finite_weights,
    draw_seed,
    epoch_callback,
    fitted_preprocessing,
    new_flow,
    resolve_batch_size,
    resolve_hidden_units,
    train_config,
    training_rows,
    validate_training_data,
)
from ._mixture_init import fit_mixture, mixture_rows
from ._preprocessing import Preprocessing, make_augment


def stream_state(preprocessing: Preprocessing, seed: int | None) -> dict:
    """The ``_trainer_state_`` of a flow that no pass has trained yet (just built, or just ``fit``)."""
    return {"preprocessing": asdict(preprocessing), "seed": seed, "trainer": None}


def start_stream(estimator, X: np.ndarray, preprocessing: Preprocessing, weights: np.ndarray) -> tuple[Flow, dict]:
    """First ``partial_fit`` call: the untrained flow in float64 and its state; sizes resolved on this chunk."""
    estimator.hidden_units_ = resolve_hidden_units(estimator.hidden_units, *X.shape)
    estimator.batch_size_ = resolve_batch_size(estimator.batch_size, X.shape[0])
    seed = draw_seed(estimator)
    flow = new_flow(estimator, X.shape[1], preprocessing, seed)
    if getattr(estimator, "base", "normal") == "mixture":
        # As in fit: the untrained flow is a mixture fitted to this chunk's rows (none held out here).
        train_x, _ = training_rows(flow, X, weights, estimator.device_)
        augment = make_augment(preprocessing, estimator.device_)
        mixture = fit_mixture(mixture_rows(train_x, weights, 0.0, seed, augment), seed)
        flow = new_flow(estimator, X.shape[1], preprocessing, seed, mixture=mixture)
    return flow.double().eval(), stream_state(preprocessing, seed)


def check_chunk_bounds(estimator, X: np.ndarray) -> None:
    outside = outside_bounds(X, estimator.low_, estimator.high_)
    if outside.any():
        raise ValueError(
            f"X has {int(outside.sum())} row(s) on or outside the bounds (first: row {int(np.argmax(outside))}); "
            "every training row must lie strictly inside them"
        )


def stream_pass(estimator, X: np.ndarray, weights: np.ndarray, flow: Flow, state: dict) -> tuple[Flow, float, dict]:
    """One pass of mini-batch steps over ``X`` that continues ``flow`` (float64) and ``state``.

    Returns the new flow (float64, the weight average's weights), the pass's
    mean training loss and the new state; the estimator is left as it was, so
    that a pass that fails changes nothing.
    """
    device = estimator.device_
    training = flow_from_config(flow.config)  # float32 learned part, float64 fixed part
    training.load_state_dict(flow.state_dict())
    training = training.to(device)
    x, w = training_rows(training, X, weights, device)
    seed = state["seed"] if state["seed"] is not None else draw_seed(estimator)
    augment = make_augment(Preprocessing(**state["preprocessing"]), device)
    trainer = Trainer(training, train_config(estimator), torch.Generator().manual_seed(seed), augment)
    try:
        if state["trainer"] is not None:
            trainer.load_state_dict(state["trainer"])
        with single_threaded() if device.type == "cpu" else contextlib.nullcontext():
            loss, diverged = trainer.one_pass(Rows(x, w), estimator.learning_rate)
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
    callback = epoch_callback(estimator, training)
    loss /= float(w.sum())
    if callback is not None:
        callback(estimator.n_iter_ + 1 if hasattr(estimator, "n_iter_") else 1, loss, None)
    return training, loss, {**state, "seed": seed, "trainer": trainer_state}


def partial_fit_chunk(estimator, X, sample_weight) -> tuple[Flow, Preprocessing, TrainResult, dict]:
    """One ``partial_fit`` call: the new flow, the (fixed) preprocessing, the results so far and the new state.

    The first call (no ``flow_`` yet) validates ``X``, fixes the preprocessing
    and builds the flow; later ones check ``X`` against them. The estimator's
    fitted attributes are left for the caller to set, so a failing call
    changes none of them.
    """
    first = not hasattr(estimator, "flow_")
    X, weights = validate_training_data(estimator, X, sample_weight, reset=first)
    if first:
        preprocessing = fitted_preprocessing(estimator, X, weights)
        flow, state = start_stream(estimator, X, preprocessing, weights)
        result = TrainResult()
    else:
        check_chunk_bounds(estimator, X)
        flow, state = estimator.flow_, estimator._trainer_state_
        preprocessing = Preprocessing(**state["preprocessing"])
        result = TrainResult([*estimator.loss_curve_], [*estimator.validation_scores_], estimator.n_iter_)
    flow, loss, state = stream_pass(estimator, X, weights, flow, state)
    result.loss_curve.append(loss)
    result.n_iter = result.best_epoch = result.n_iter + 1
    return flow, preprocessing, result, state
