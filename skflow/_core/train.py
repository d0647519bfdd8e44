"""The training loop: weighted maximum likelihood with early stopping.

Data that fits in memory is batched by indexing one tensor with a seeded
permutation (no DataLoader). A non-finite loss or gradient restores the last
good weights, lowers the learning rate and carries on, a bounded number of times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .flow import Flow

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
EpochCallback = Callable[[int, float, float | None], None]


# Steps between checks for non-finite losses or gradients (each check synchronizes).
CHECK_EVERY = 32


class TrainingDivergedError(RuntimeError):
    """Training kept producing non-finite losses after every recovery attempt."""


@dataclass
class TrainConfig:
    learning_rate: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 200
    validation_fraction: float = 0.1
    n_iter_no_change: int = 20
    tol: float = 1e-4
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    # Evaluate and keep an exponential moving average of the weights (0.0: the raw weights).
    ema_decay: float = 0.0  # per optimizer step, warmed up as min(ema_decay, (1 + n) / (10 + n)) over steps n
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


def _split(
    n: int, fraction: float, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor | None]:
    n_val = int(math.floor(fraction * n))
    if n_val < 1 or n - n_val < 2:
        return torch.arange(n, device=device), None
    perm = torch.randperm(n, generator=generator).to(device)
    return perm[n_val:], perm[:n_val]


def _weighted_nll(flow: Flow, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return -(flow.log_prob(x) * w).sum() / w.sum().clamp_min(torch.finfo(w.dtype).tiny)


@torch.inference_mode()
def _mean_log_likelihood(flow: Flow, x: torch.Tensor, w: torch.Tensor, batch_size: int = 65536) -> float:
    total = x.new_zeros(())
    for start in range(0, x.shape[0], batch_size):
        total += torch.dot(flow.log_prob(x[start : start + batch_size]), w[start : start + batch_size])
    return float(total) / float(w.sum().clamp_min(torch.finfo(w.dtype).tiny))


def _make_optimizer(params: list[torch.nn.Parameter], lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW, fused into one kernel where this torch supports it (CPU since 2.4, CUDA).

    The unfused version launches several operations per parameter tensor; at
    training batch sizes that was ~20% of the step time on CPU.
    """
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


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
) -> TrainResult:
    """Fit ``flow`` to rows ``x`` weighted by ``weights``; leave it at its best epoch.

    A ``validation_fraction`` of the rows is held out for early stopping; with
    too few rows for that, the training loss decides. ``augment`` transforms
    each training batch (dequantization noise); the validation rows are
    augmented once, so that their score is a fixed target.

    With ``config.ema_decay > 0`` the weights evaluated each epoch (by the
    validation score and by ``callback``) and kept at the end are an
    exponential moving average of the optimizer's iterates. Without a
    validation set, an epoch's score is minus the mean training loss of the
    optimizer's steps during it (the average itself is not scored).
    """
    weights = weights.to(dtype=x.dtype, device=x.device)
    train_idx, val_idx = _split(x.shape[0], config.validation_fraction, generator, x.device)
    x_train, w_train = x[train_idx], weights[train_idx]
    x_val = w_val = None
    if val_idx is not None:
        x_val, w_val = x[val_idx], weights[val_idx]
        if augment is not None:
            x_val = augment(x_val, generator)

    trainable = list(flow.parameters())
    flat = _FlatParameters(trainable) if _FlatParameters.applies(trainable) else None
    try:
        return _train_loop(flow, x_train, w_train, x_val, w_val, config, generator, augment, callback, flat)
    finally:
        if flat is not None:
            flat.release()


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


def _train_loop(
    flow: Flow,
    x_train: torch.Tensor,
    w_train: torch.Tensor,
    x_val: torch.Tensor | None,
    w_val: torch.Tensor | None,
    config: TrainConfig,
    generator: torch.Generator,
    augment: Augment | None,
    callback: EpochCallback | None,
    flat: _FlatParameters | None,
) -> TrainResult:
    params = [flat.flat] if flat is not None else list(flow.parameters())
    optimizer = _make_optimizer(params, config.learning_rate, config.weight_decay)
    average = _WeightAverage(params, config.ema_decay) if config.ema_decay > 0 else None
    base_lr = config.learning_rate
    result = TrainResult(final_learning_rate=base_lr)
    n_train = x_train.shape[0]
    batch_size = min(config.batch_size, n_train)
    # Every training row is seen once per epoch, so the epoch's total weight is fixed.
    epoch_weight = float(w_train.sum())

    def evaluate(train_loss: float) -> float:
        """The epoch's score: validation log-likelihood, or minus the training loss without a validation set."""
        flow.eval()
        if x_val is None:
            return -train_loss
        return _mean_log_likelihood(flow, x_val, w_val)

    # With a validation set the initial weights are a candidate too (epoch 0):
    # a fit that only gets worse, e.g. at a far too high learning rate, returns
    # its starting point.
    best_score = -math.inf
    if x_val is not None:
        flow.eval()
        initial_score = _mean_log_likelihood(flow, x_val, w_val)
        best_score = initial_score if math.isfinite(initial_score) else -math.inf
    best_state = _snapshot(flow)
    last_good = (best_state, average.state() if average is not None else None)
    epochs_without_improvement = 0

    epoch = 0
    while epoch < config.max_epochs:
        lr = base_lr
        if config.lr_schedule == "cosine":
            lr *= 0.5 * (1.0 + math.cos(math.pi * epoch / config.max_epochs))
        for group in optimizer.param_groups:
            group["lr"] = lr

        flow.train()
        perm = torch.randperm(n_train, generator=generator).to(x_train.device)
        # On the CPU every step is checked before the update (a check costs
        # nothing there). On an accelerator a check synchronizes with the
        # device, so losses and gradient norms are summed as tensors and checked
        # every CHECK_EVERY steps and at the end of the epoch; a non-finite step
        # in between spoils the weights, which are restored below.
        check_every = 1 if x_train.device.type == "cpu" else CHECK_EVERY
        epoch_loss = x_train.new_zeros(())
        health = x_train.new_zeros(())
        diverged = False
        for step, start in enumerate(range(0, n_train, batch_size), start=1):
            idx = perm[start : start + batch_size]
            batch, batch_w = x_train.index_select(0, idx), w_train.index_select(0, idx)
            if augment is not None:
                batch = augment(batch, generator)
            weighted_log_prob = torch.dot(flow.log_prob(batch), batch_w)
            loss = -weighted_log_prob / batch_w.sum().clamp_min(torch.finfo(batch_w.dtype).tiny)
            if flat is not None:
                flat.zero_grad()
            else:
                optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.clip_grad_norm)
            epoch_loss -= weighted_log_prob.detach()
            health += grad_norm
            if step % check_every == 0 and not bool(torch.isfinite(epoch_loss + health)):
                diverged = True
                break
            optimizer.step()
            if average is not None:
                average.update()
        diverged = diverged or not bool(torch.isfinite(epoch_loss + health))

        train_loss = float(epoch_loss) / max(epoch_weight, 1e-300)
        if average is not None and not diverged:
            average.swap_in()
        score = evaluate(train_loss) if not diverged else math.nan
        if diverged or not math.isfinite(score) or not math.isfinite(train_loss):
            # Raw weights and average go back to the last good epoch below (whatever is swapped in).
            result.n_recoveries += 1
            if result.n_recoveries > config.max_recoveries:
                flow.load_state_dict(best_state)
                raise TrainingDivergedError(
                    f"training diverged (non-finite loss or gradient) {result.n_recoveries} times, "
                    f"down to learning_rate={base_lr:.3g}; lower learning_rate or check the data scale"
                )
            flow.load_state_dict(last_good[0])
            if average is not None:
                average.restore(last_good[1])
            base_lr *= config.recovery_lr_factor
            optimizer = _make_optimizer(params, base_lr, config.weight_decay)
            result.final_learning_rate = base_lr
            continue  # retry this epoch with the smaller step

        epoch += 1
        result.loss_curve.append(train_loss)
        if x_val is not None:
            result.validation_scores.append(score)
        if callback is not None:
            callback(epoch, train_loss, score if x_val is not None else None)
        # The evaluated weights (the average, when there is one) are the candidates to keep.
        evaluated_state = _snapshot(flow)
        if average is not None:
            average.swap_out()
            last_good = (_snapshot(flow), average.state())
        else:
            last_good = (evaluated_state, None)

        if score > best_score + config.tol:
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
