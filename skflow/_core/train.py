"""The training loop: weighted maximum likelihood with early stopping.

Data that fits in memory is batched by indexing one tensor with a seeded
permutation (no DataLoader); the training and validation rows are index sets
into that one tensor, never copies of it. A non-finite loss or gradient
restores the last good weights, lowers the learning rate and carries on, a
bounded number of times. :class:`Trainer` holds what persists between passes
(flat parameters, AdamW, the weight average, the generator): ``train_flow``
runs epochs of it, and an estimator's ``partial_fit`` keeps one across calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .flow import Flow
from .optim import make_adamw
from .rows import Rows, clearly_better, row_log_likelihoods, validation_split, weighted_mean

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
EpochCallback = Callable[[int, float | None, float | None], None]


# Steps between checks for non-finite losses or gradients (each check synchronizes).
CHECK_EVERY = 32


class TrainingDivergedError(RuntimeError):
    """Training kept producing non-finite losses after every recovery attempt."""


@dataclass
class TrainConfig:
    """Training settings, with the defaults the estimators expose (the one source of them)."""

    learning_rate: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 100
    validation_fraction: float = 0.1
    n_iter_no_change: int = 20
    tol: float = 1e-4
    weight_decay: float = 1e-4
    # Cosine decay over max_epochs: the last epochs take small steps, which
    # gained on make_moons over a constant rate stopped by patience (docs/benchmarks.md).
    lr_schedule: str = "cosine"
    # Evaluate and keep an exponential moving average of the weights (0.0: the raw weights),
    # per optimizer step, warmed up as min(ema_decay, (1 + n) / (10 + n)) over steps n. It gained
    # most on small data (benchmarks/results/density_2core.json and docs/benchmarks.md).
    ema_decay: float = 0.99
    # A trained epoch replaces the initial weights only if it beats them on the validation rows by this many
    # standard errors of the paired difference: a fitted mixture base is kept unless training clearly helps.
    initial_margin: float = 2.0
    # The mixture base's parameters step this many times the learning rate (1: the same), and so decay
    # this many times as fast under AdamW's decoupled weight decay (3e-7 a step at the defaults).
    base_lr_factor: float = 1.0
    # The learning rate rises linearly over the first this many optimizer steps (0: no warm-up).
    warmup_steps: int = 0
    clip_grad_norm: float = 5.0
    max_recoveries: int = 5
    recovery_lr_factor: float = 0.2


@dataclass
class TrainResult:
    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    n_iter: int = 0
    best_epoch: int = 0  # 0: no epoch beat the initial weights (with a validation set), which were kept
    stopped_early: bool = False
    n_recoveries: int = 0
    final_learning_rate: float = 0.0
    # Rows of x that validated (None: none did), for fitting anything else held out on them afterwards.
    validation_index: torch.Tensor | None = None


def _snapshot(flow: Flow) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in flow.state_dict().items()}


class _FlatParameters:
    """The flow's parameters as views into one buffer, and their gradients into another.

    A 5-layer flow has ~50 parameter tensors. Flat, each step zeroes, clips and
    updates (fused AdamW) one tensor instead of ~50: ~10% of a small step on CPU.
    Autograd accumulates into the existing ``.grad`` views in place, so the
    gradients land in the flat buffer. ``release`` gives every parameter its own
    storage back (so that state dicts and pickles hold no shared buffer).
    """

    def __init__(self, params: list[torch.nn.Parameter]):
        self.params = params
        self.flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
        self.flat.grad = torch.zeros_like(self.flat)
        offset = 0
        for p in params:
            size = p.numel()
            p.data = self.flat.data[offset : offset + size].view_as(p)
            p.grad = self.flat.grad[offset : offset + size].view_as(p)
            offset += size

    @classmethod
    def applies(cls, params: list[torch.nn.Parameter]) -> bool:
        return bool(params) and all(p.requires_grad for p in params) and len({(p.dtype, p.device) for p in params}) == 1

    def zero_grad(self) -> None:
        self.flat.grad.zero_()

    def release(self) -> None:
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None


def train_flow(
    flow: Flow,
    x: torch.Tensor,
    weights: torch.Tensor,
    config: TrainConfig,
    generator: torch.Generator,
    augment: Augment | None = None,
    callback: EpochCallback | None = None,
    context: torch.Tensor | None = None,
) -> TrainResult:
    """Fit the learned part of ``flow`` to preprocessed rows ``x`` weighted by ``weights``; leave it at its best epoch.

    ``x`` holds rows that went through ``flow.preprocess`` (the fixed part is
    not trained); ``context``, when given, holds the conditioning rows of the
    same samples. A ``validation_fraction`` of the rows is held out for early
    stopping; with too few rows for that, the training loss decides. Both sets
    are index sets into ``x``: batches are gathered from it, never a copy of
    it, except that with ``augment`` the validation rows are augmented once
    (a copy of them), so that their score is a fixed target. ``augment``
    transforms each training batch (dequantization noise).

    With ``config.ema_decay > 0`` the weights evaluated each epoch (by the
    validation score and by ``callback``) and kept at the end are an
    exponential moving average of the optimizer's iterates. Without a
    validation set, an epoch's score is minus the mean training loss of the
    optimizer's steps during it (the average itself is not scored).
    ``callback(epoch, train_loss, validation_score)`` is called after each
    epoch, and once with epoch 0 (train_loss None) for the initial weights.
    """
    weights = weights.to(dtype=x.dtype, device=x.device)
    train_idx, val_idx = validation_split(x.shape[0], config.validation_fraction, generator, x.device)
    train = Rows(x, weights, context, train_idx)
    validation = None
    if val_idx is not None:
        validation = Rows(x, weights, context, val_idx)
        if augment is not None:
            validation = Rows.select(x, weights, context, val_idx)
            validation.x = augment(validation.x, generator)

    trainer = Trainer(flow, config, generator, augment)
    try:
        result = _Training(trainer, callback).run(train, validation)
    finally:
        trainer.release()
    result.validation_index = val_idx
    return result


class _WeightAverage:
    """Exponential moving average of the weights, swapped in to evaluate and to keep.

    The averaged weights sit near the centre of the region that the last few
    hundred noisy steps explore, and score better on held-out data than the
    last step does (Polyak averaging).
    """

    def __init__(self, params: list[torch.Tensor], decay: float):
        self.params, self.decay = params, decay
        self.average = [p.detach().clone() for p in params]
        self.n_updates = 0
        self._raw: list[torch.Tensor] = []

    @torch.no_grad()
    def update(self) -> None:
        # Warm-up: the first averages weigh the recent steps more (decay (1 + n) / (10 + n)),
        # so that the average does not lag behind the fast early progress from the start point.
        decay = min(self.decay, (1.0 + self.n_updates) / (10.0 + self.n_updates))
        self.n_updates += 1
        for average, p in zip(self.average, self.params):
            average.lerp_(p, 1.0 - decay)

    @torch.no_grad()
    def swap_in(self) -> None:
        self._raw = [p.detach().clone() for p in self.params]
        for average, p in zip(self.average, self.params):
            p.copy_(average)

    @torch.no_grad()
    def swap_out(self) -> None:
        for raw, p in zip(self._raw, self.params):
            p.copy_(raw)
        self._raw = []

    def state(self) -> tuple[list[torch.Tensor], int]:
        return [a.clone() for a in self.average], self.n_updates

    def restore(self, state: tuple[list[torch.Tensor], int]) -> None:
        self.average, self.n_updates = [a.clone() for a in state[0]], state[1]


class Trainer:
    """What persists from one pass over the data to the next: flat parameters, AdamW, the weight average, the generator.

    ``train_flow`` runs epochs of :meth:`one_pass` with early stopping; an
    estimator's ``partial_fit`` keeps the :meth:`state_dict` between calls and
    resumes from it with :meth:`load_state_dict`, so that its steps continue
    with the same AdamW moments, the same weight average and the same random
    stream as one long run would (and the same place in the warm-up). With a
    ``config.base_lr_factor`` other than 1 the base density's parameters sit
    in a flat buffer and AdamW group of their own, stepping that many times
    the rate of the rest. Call
    :meth:`release` when done: the flow's parameters then own their storage again.

    Examples
    --------
    >>> import torch
    >>> from skflow._core import Rows, TrainConfig, Trainer, build_flow
    >>> flow = build_flow(2, n_transforms=1, hidden_units=(8,))
    >>> x = torch.randn(128, 2, generator=torch.Generator().manual_seed(0))
    >>> trainer = Trainer(flow, TrainConfig(batch_size=32), torch.Generator().manual_seed(0))
    >>> loss, diverged = trainer.one_pass(Rows(x, torch.ones(128)), lr=1e-3)
    >>> state = trainer.state_dict()  # a later Trainer of the same flow resumes with load_state_dict(state)
    >>> trainer.release()
    >>> diverged, state["n_updates"]
    (False, 4)
    """

    def __init__(
        self, flow: Flow, config: TrainConfig, generator: torch.Generator, augment: Augment | None = None
    ) -> None:
        self.flow, self.config, self.generator, self.augment = flow, config, generator, augment
        trainable = list(flow.parameters())
        parts, factors = [trainable], [1.0]
        if config.base_lr_factor != 1.0:
            # The base's parameters last, in a flat buffer of their own, to take larger steps. At one rate
            # all stay in one buffer: the layout of partial_fit states saved before the factor existed.
            in_base = {id(p) for p in flow.base.parameters()}
            parts = [[p for p in trainable if id(p) not in in_base], [p for p in trainable if id(p) in in_base]]
            factors = [1.0, config.base_lr_factor]
        if _FlatParameters.applies(trainable):
            self.flats = [_FlatParameters(part) for part in parts if part]
            self.params = [flat.flat for flat in self.flats]
            self.lr_factors = [factor for part, factor in zip(parts, factors) if part]
        else:
            self.flats = []
            self.params = [p for part in parts for p in part]
            self.lr_factors = [factor for part, factor in zip(parts, factors) for _ in part]
        self.optimizer = make_adamw(self.params, config.learning_rate, config.weight_decay, self.lr_factors)
        self.average = _WeightAverage(self.params, config.ema_decay) if config.ema_decay > 0 else None
        self.n_steps = 0

    def reset_optimizer(self, lr: float) -> None:
        """A fresh AdamW (no moments) at learning rate ``lr``."""
        self.optimizer = make_adamw(self.params, lr, self.config.weight_decay, self.lr_factors)

    def release(self) -> None:
        for flat in self.flats:
            flat.release()
        self.flats = []

    def zero_grad(self) -> None:
        """Zero the gradients: the flat buffers' in place (autograd accumulates into their views), else none."""
        if self.flats:
            for flat in self.flats:
                flat.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)

    def _set_learning_rate(self, lr: float) -> None:
        """Each group's step size: ``lr`` times its factor, times the warm-up's fraction while it lasts."""
        warmup = self.config.warmup_steps
        if self.n_steps < warmup:
            lr *= (self.n_steps + 1) / warmup
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group["lr_factor"]

    def clip_gradients(self) -> torch.Tensor:
        """Scale the gradients down to norm ``config.clip_grad_norm`` at most; return their norm before.

        As ``torch.nn.utils.clip_grad_norm_``, which on the one flat gradient
        still costs twice these three operations (a dot product for the norm).
        """
        if not self.flats:
            return torch.nn.utils.clip_grad_norm_(self.params, self.config.clip_grad_norm)
        grads = [flat.flat.grad for flat in self.flats]
        norm = sum(torch.dot(grad, grad) for grad in grads).sqrt()
        factor = (self.config.clip_grad_norm / (norm + 1e-6)).clamp_(max=1.0)
        for grad in grads:
            grad.mul_(factor)
        return norm

    def one_pass(self, train: Rows, lr: float) -> tuple[float, bool]:
        """One pass over ``train`` in shuffled mini-batches at learning rate ``lr``.

        Returns the summed weighted training loss and whether a step was non-finite.
        On the CPU every step is checked before the update (a check costs
        nothing there). On an accelerator a check synchronizes with the
        device, so losses and gradient norms are summed as tensors and checked
        every CHECK_EVERY steps and at the end of the pass; a non-finite step
        in between spoils the weights, which the caller restores.
        """
        self._set_learning_rate(lr)
        flow, config = self.flow, self.config
        flow.train()
        n_train = len(train)
        batch_size = min(config.batch_size, n_train)
        perm = torch.randperm(n_train, generator=self.generator).to(train.x.device)
        check_every = 1 if train.x.device.type == "cpu" else CHECK_EVERY
        epoch_loss = train.x.new_zeros(())
        health = train.x.new_zeros(())
        for step, start in enumerate(range(0, n_train, batch_size), start=1):
            x, w, context = train.batch(perm[start : start + batch_size])
            x = self.augment(x, self.generator) if self.augment is not None else x
            weighted_log_prob = torch.dot(flow.learned_log_prob(x, context), w)
            loss = -weighted_log_prob / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
            self.zero_grad()
            loss.backward()
            grad_norm = self.clip_gradients()
            epoch_loss -= weighted_log_prob.detach()
            health += grad_norm
            if step % check_every == 0 and not bool(torch.isfinite(epoch_loss + health)):
                return math.nan, True
            self.optimizer.step()
            self.n_steps += 1
            if self.n_steps <= config.warmup_steps:
                self._set_learning_rate(lr)
            if self.average is not None:
                self.average.update()
        diverged = not bool(torch.isfinite(epoch_loss + health))
        return float(epoch_loss), diverged

    def state_dict(self) -> dict:
        """The persistent state as CPU tensors, ints and plain containers with string keys.

        ``params``: the raw (optimizer's) parameters; ``average`` and
        ``n_updates``: the weight average; ``optimizer``: each parameter's
        AdamW state; ``generator``: the random stream's state.
        """
        optimizer_state = self.optimizer.state_dict()["state"]
        return {
            "params": [p.detach().cpu().clone() for p in self.params],
            "average": [a.detach().cpu().clone() for a in self.average.average] if self.average is not None else None,
            "n_updates": self.average.n_updates if self.average is not None else 0,
            "optimizer": [
                {k: v.detach().cpu().clone() for k, v in optimizer_state.get(i, {}).items()}
                for i in range(len(self.params))
            ],
            "generator": self.generator.get_state(),
            "n_steps": self.n_steps,
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict` (taken from a trainer of the same flow structure and config)."""
        for p, saved in zip(self.params, state["params"]):
            p.copy_(saved)
        if self.average is not None and state["average"] is not None:
            self.average.restore(([a.to(p.device) for a, p in zip(state["average"], self.params)], state["n_updates"]))
        template = self.optimizer.state_dict()
        # AdamW's load_state_dict moves each tensor to its parameter's device and dtype.
        template["state"] = {i: dict(saved) for i, saved in enumerate(state["optimizer"]) if saved}
        self.optimizer.load_state_dict(template)
        self.generator.set_state(state["generator"])
        # A state saved before the warm-up existed comes from a trainer past any warm-up.
        self.n_steps = state.get("n_steps", self.config.warmup_steps)


class _Training:
    """One run of the training loop: epochs of a :class:`Trainer`'s passes, evaluation, early stopping, recovery."""

    def __init__(self, trainer: Trainer, callback: EpochCallback | None):
        self.trainer, self.callback = trainer, callback
        self.flow, self.config, self.average = trainer.flow, trainer.config, trainer.average
        self.base_lr = self.config.learning_rate
        self.result = TrainResult(final_learning_rate=self.base_lr)
        self.last_rows: torch.Tensor | None = None  # per-row validation log-likelihoods of the last evaluation

    def run(self, train: Rows, validation: Rows | None) -> TrainResult:
        flow, config, result = self.flow, self.config, self.result
        # With a validation set the initial weights are a candidate too (epoch 0):
        # a fit that only gets worse, e.g. at a far too high learning rate, returns
        # its starting point.
        best_score, initial_rows = -math.inf, None
        if validation is not None:
            flow.eval()
            initial_rows = row_log_likelihoods(flow, validation)
            initial_score = weighted_mean(initial_rows, validation.weights())
            best_score = initial_score if math.isfinite(initial_score) else -math.inf
            if not math.isfinite(initial_score):
                initial_rows = None
        if self.callback is not None:
            self.callback(0, None, best_score if validation is not None else None)
        best_state = _snapshot(flow)
        # What a recovery goes back to: the weights, their average and the step count (for the warm-up).
        last_good = (best_state, self.average.state() if self.average is not None else None, self.trainer.n_steps)
        epochs_without_improvement = 0
        # Every training row is seen once per epoch, so the epoch's total weight is fixed.
        epoch_weight = float(train.total_weight())

        epoch = 0
        while epoch < config.max_epochs:
            lr = self.base_lr
            if config.lr_schedule == "cosine":
                lr *= 0.5 * (1.0 + math.cos(math.pi * epoch / config.max_epochs))
            epoch_loss, diverged = self.trainer.one_pass(train, lr)
            train_loss = epoch_loss / max(epoch_weight, 1e-300)
            if self.average is not None and not diverged:
                self.average.swap_in()
            score = math.nan if diverged else self._evaluate(train_loss, validation)
            if diverged or not math.isfinite(score) or not math.isfinite(train_loss):
                self._recover(last_good, best_state)
                continue  # retry this epoch with the smaller step

            epoch += 1
            result.loss_curve.append(train_loss)
            if validation is not None:
                result.validation_scores.append(score)
            if self.callback is not None:
                self.callback(epoch, train_loss, score if validation is not None else None)
            # The evaluated weights (the average, when there is one) are the candidates to keep.
            evaluated_state = _snapshot(flow)
            if self.average is not None:
                self.average.swap_out()
                last_good = (_snapshot(flow), self.average.state(), self.trainer.n_steps)
            else:
                last_good = (evaluated_state, None, self.trainer.n_steps)

            improved = score > best_score + config.tol
            if improved and result.best_epoch == 0 and initial_rows is not None:
                improved = clearly_better(self.last_rows, initial_rows, validation.weights(), config.initial_margin)
            if improved:
                best_score, best_state, result.best_epoch = score, evaluated_state, epoch
                epochs_without_improvement = 0
            else:
                epochs_without_improvement += 1
                if epochs_without_improvement >= config.n_iter_no_change:
                    result.stopped_early = True
                    break

        result.n_iter = epoch
        flow.load_state_dict(best_state)
        flow.eval()
        return result

    def _evaluate(self, train_loss: float, validation: Rows | None) -> float:
        """The epoch's score: validation log-likelihood, or minus the training loss without a validation set."""
        self.flow.eval()
        if validation is None:
            return -train_loss
        self.last_rows = row_log_likelihoods(self.flow, validation)
        return weighted_mean(self.last_rows, validation.weights())

    def _recover(self, last_good, best_state) -> None:
        """Back to the last good epoch (raw weights and average) with a smaller learning rate, or give up."""
        result, config = self.result, self.config
        result.n_recoveries += 1
        if result.n_recoveries > config.max_recoveries:
            self.flow.load_state_dict(best_state)
            raise TrainingDivergedError(
                f"training diverged (non-finite loss or gradient) {result.n_recoveries} times, "
                f"down to learning_rate={self.base_lr:.3g}"
            )
        self.flow.load_state_dict(last_good[0])
        self.trainer.n_steps = last_good[2]  # the fresh AdamW warms up again where that epoch was
        if self.average is not None:
            self.average.restore(last_good[1])
        self.base_lr *= config.recovery_lr_factor
        self.trainer.reset_optimizer(self.base_lr)
        result.final_learning_rate = self.base_lr
