"""What the estimators' "auto" parameters resolve to, from the data's size: layer type, width, batch, epochs."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from ._core import TrainConfig


def auto_hidden_units(n_samples: int, n_features: int) -> tuple[int, ...]:
    """Conditioner width: grows with the dimension, capped on small data, wide on large data.

    Chosen from the density benchmark (docs/benchmarks.md, figures in
    benchmarks/results/): below 2,000 rows the sets tried overfit within
    10-30 epochs at width 64; from 5,000 rows even 2-dimensional data gains
    from width 128.
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


def resolve_hidden_units(hidden_units, n_samples: int, n_features: int) -> tuple[int, ...]:
    if isinstance(hidden_units, str):
        return auto_hidden_units(n_samples, n_features)
    units = tuple(hidden_units)
    if not units or not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in units):
        raise ValueError(f"hidden_units must be 'auto' or a non-empty sequence of positive ints, got {hidden_units!r}")
    return tuple(int(h) for h in units)


def resolve_batch_size(batch_size, n_samples: int) -> int:
    return auto_batch_size(n_samples) if batch_size == "auto" else int(batch_size)


# max_epochs="auto": from this many rows, training may run past 100 epochs to take this many optimizer steps
# (coupling layers; autoregressive ones twice as many).
AUTO_EPOCHS_MIN_ROWS = 5000
AUTO_EPOCHS_MIN_STEPS = 10_000
AUTOREGRESSIVE_MIN_STEPS = 20_000


def resolve_max_epochs(
    max_epochs, n_samples: int, batch_size: int, validation_fraction: float, min_steps: int = AUTO_EPOCHS_MIN_STEPS
) -> int:
    """``max_epochs``, or for "auto" 100 epochs, and on 5,000 rows or more enough for ``min_steps`` optimizer steps.

    From 1,000 to 8,000 rows ``auto_batch_size`` makes an epoch about 29
    steps, so 100 epochs are 2,900 steps whatever the size: on 8,000 and
    20,000 rows (deterministic_7d, lognormal_8d, counts_3d in the benchmark)
    training was still improving at epoch 100 and gained 0.4 nats, 0.008 and
    0.002 nats per dimension from 10,000 steps; the sets that stop early by
    patience were unchanged (docs/benchmarks.md). Autoregressive layers gained
    again from 20,000 (deterministic_7d 6.197 -> 6.465, counts_3d 0.0128 ->
    0.0116 per dimension; the others stop early either way). Below 5,000 rows
    the small sets' tuning stays as it was.
    """
    if max_epochs != "auto":
        return int(max_epochs)
    if n_samples < AUTO_EPOCHS_MIN_ROWS:
        return TrainConfig.max_epochs
    n_train = n_samples - math.floor(validation_fraction * n_samples)
    steps_per_epoch = math.ceil(n_train / batch_size)
    return max(TrainConfig.max_epochs, math.ceil(min_steps / steps_per_epoch))


# Training that starts from a fitted mixture base on AUTO_EPOCHS_MIN_ROWS rows or more (10,000+ steps):
# the learning rate warms up over this many steps, and the base's parameters step this many times faster.
START_WARMUP_STEPS = 300
START_BASE_LR_FACTOR = 3.0


def start_schedule(n_samples: int, mixture_start: bool) -> dict[str, float]:
    """``TrainConfig``'s ``warmup_steps`` and ``base_lr_factor`` for a fit of ``n_samples`` rows: a warm-up
    and a base 3x as fast when training starts from a fitted mixture on 5,000 rows or more, else neither.

    Measured on deterministic_7d (8,000 x 7, three seeds; docs/benchmarks.md,
    fifteenth session): at full rate from the first step, AdamW's first epoch
    moved every weight by about the learning rate and wrecked the fitted start
    (held-out 3.18 -> -3.6 nats, above 3.18 again at epoch 5); and a base
    stepping 3x the layers' rate scored 5.25 at epoch 60 against 5.10 (a
    frozen base 4.92, one at 0.1x 4.93). With the warm-up and the faster
    base, zuko's score was reached in 172 epochs on average instead of 202 and
    training ended 0.10 nats higher (6.49 against 6.40); lognormal_8d and
    counts_3d ended 0.006 and 0.001 nats higher. Below 5,000 rows training is
    short (100 epochs, often stopped by patience within 20-30), a warm-up of
    300 steps would be a third or more of it, and the small sets' tuning stays as it was.
    """
    if mixture_start and n_samples >= AUTO_EPOCHS_MIN_ROWS:
        return {"warmup_steps": START_WARMUP_STEPS, "base_lr_factor": START_BASE_LR_FACTOR}
    return {"warmup_steps": 0, "base_lr_factor": 1.0}


# flow="auto": autoregressive splines from this many rows, for this range of features; coupling splines otherwise.
AUTOREGRESSIVE_MIN_ROWS = 5000
AUTOREGRESSIVE_MIN_FEATURES = 3
AUTOREGRESSIVE_MAX_FEATURES = 32


def resolve_flow_kind(flow: str, n_samples: int, n_features: int) -> str:
    """``flow``, or for "auto" "autoregressive" from 5,000 rows and 3 to 32 modelled features, else "spline".

    Measured on the density benchmark (docs/benchmarks.md, eleventh and
    twelfth sessions): on the seven sets of 10,000 to 25,000 rows the
    autoregressive splines scored at least as well as the coupling splines on
    every set, by 0.8 nats on deterministic_7d (columns that are smooth
    functions of others: each feature's spline sees every feature before it,
    where a coupling layer sees half of them), while on the small sets (178 to
    569 rows) they were better on one, worse on two. Two features are one
    coupling's worth of dependence, so they stay with the faster coupling
    layers, whose inverse (``sample``, ``inverse_transform``) is one pass
    instead of one per feature. Above 32 features that cost grows with every
    feature while no set showed a gain (a 20-D and a 40-D set of 12,500 rows
    scored the same either way), and a MADE layer of "auto"'s 128 hidden
    units cannot give every one of more than 129 features all those before it.
    """
    if flow != "auto":
        return flow
    wide_enough = AUTOREGRESSIVE_MIN_FEATURES <= n_features <= AUTOREGRESSIVE_MAX_FEATURES
    if n_samples >= AUTOREGRESSIVE_MIN_ROWS and wide_enough:
        return "autoregressive"
    return "spline"


# n_bins="auto": finer splines where the flow models at most two features.
AUTO_BINS = 8
AUTO_BINS_FEW_FEATURES = 16
AUTO_BINS_MAX_FEW_FEATURES = 2


def resolve_n_bins(n_bins, n_features: int) -> int:
    """``n_bins``, or for "auto" 16 bins for one or two modelled features and 8 beyond.

    Measured (docs/benchmarks.md, thirteenth session): on three draws of a
    1,000-point 2-D checkerboard, training with 8 bins (learned widths,
    starting 1.25 standard deviations wide) never beat the starting mixture
    (held-out -2.33 to -2.40); with 16 it did, by 0.08 to 0.12 nats (-2.26
    on the README figure's draw, a tuned KernelDensity -2.28). On ten other
    2-D sets (moons at 1,000 and 10,000 rows, rings, circles, a banana, a
    Cauchy, an Old-Faithful-like set, a spiral, a square, a triangle) the
    scores were identical: training kept the starting mixture with either
    count, so 16 bins cost nothing there. 1-D data follows the 2-D rule (a
    wash: a uniform lost 0.017 on one draw and gained 0.004 on another,
    three sets identical). On 3-D and 4-D sets more bins cost: s_curve
    -0.014, swiss_roll -0.022 with 16, iris -0.36 with 32 (a trained epoch
    overfit its 15 validation rows), so beyond two features the bins stay 8.
    """
    if n_bins != "auto":
        return int(n_bins)
    return AUTO_BINS_FEW_FEATURES if n_features <= AUTO_BINS_MAX_FEW_FEATURES else AUTO_BINS


def resolve_training_sizes(
    estimator, n_samples: int, n_features: int, flow_features: int | None = None, kind: str | None = None
) -> None:
    """Set ``estimator``'s ``flow_kind_``, ``n_bins_``, ``hidden_units_``, ``batch_size_`` and ``max_epochs_``
    from its parameters and the data's size (``n_features``: every column the conditioners see, a regressor's
    targets and features; ``flow_features``: the columns the flow models, a regressor's targets, by default
    all). ``kind``: the layer kind to build instead of the ``flow`` parameter's; where that parameter is a
    sequence of kinds (a regressor's flows choosing among them), its first kind."""
    modelled = n_features if flow_features is None else flow_features
    if kind is None:
        kind = estimator.flow if isinstance(estimator.flow, str) else estimator.flow[0]
    estimator.flow_kind_ = resolve_flow_kind(kind, n_samples, modelled)
    estimator.n_bins_ = resolve_n_bins(estimator.n_bins, modelled)
    estimator.hidden_units_ = resolve_hidden_units(estimator.hidden_units, n_samples, n_features)
    estimator.batch_size_ = resolve_batch_size(estimator.batch_size, n_samples)
    min_steps = AUTOREGRESSIVE_MIN_STEPS if estimator.flow_kind_ == "autoregressive" else AUTO_EPOCHS_MIN_STEPS
    estimator.max_epochs_ = resolve_max_epochs(
        estimator.max_epochs, n_samples, estimator.batch_size_, estimator.validation_fraction, min_steps
    )
