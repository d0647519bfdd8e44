import math

import pytest
import torch

from skflow._core import TrainConfig, TrainingDivergedError, build_flow, train_flow


def gaussian_data(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g) @ torch.tensor([[1.0, 0.8], [0.0, 0.6]])


def test_training_raises_likelihood_and_keeps_best_epoch():
    x = gaussian_data()
    flow = build_flow(2, n_transforms=2, hidden_units=(16,))
    before = float(flow.log_prob(x).mean().detach())
    result = train_flow(
        flow, x, torch.ones(len(x)), TrainConfig(max_epochs=40, batch_size=64), torch.Generator().manual_seed(0)
    )
    after = float(flow.log_prob(x).mean().detach())
    assert after > before + 0.1
    assert result.n_iter == len(result.loss_curve) == len(result.validation_scores)
    assert 1 <= result.best_epoch <= result.n_iter
    assert max(result.validation_scores) == result.validation_scores[result.best_epoch - 1]


def test_same_seed_same_weights_bit_for_bit():
    x = gaussian_data()
    states = []
    for _ in range(2):
        flow = build_flow(2, n_transforms=2, hidden_units=(16,), seed=1)
        train_flow(flow, x, torch.ones(len(x)), TrainConfig(max_epochs=5), torch.Generator().manual_seed(0))
        states.append(flow.state_dict())
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_early_stopping_stops_before_max_epochs():
    x = gaussian_data(200)
    flow = build_flow(2, n_transforms=1, hidden_units=(8,))
    config = TrainConfig(max_epochs=500, n_iter_no_change=3, learning_rate=1e-2)
    result = train_flow(flow, x, torch.ones(len(x)), config, torch.Generator().manual_seed(0))
    assert result.stopped_early and result.n_iter < 500


class PoisonOnce:
    """Augment that returns NaN for the first ``times`` batches it sees after ``after`` calls."""

    def __init__(self, after: int, times: int):
        self.calls, self.after, self.times = 0, after, times

    def __call__(self, batch, generator):
        self.calls += 1
        if self.after < self.calls <= self.after + self.times:
            return batch * math.nan
        return batch


def test_divergence_restores_weights_and_lowers_learning_rate():
    x = gaussian_data()
    flow = build_flow(2, n_transforms=2, hidden_units=(16,))
    config = TrainConfig(max_epochs=10, validation_fraction=0.0, learning_rate=1e-2)
    result = train_flow(flow, x, torch.ones(len(x)), config, torch.Generator().manual_seed(0), augment=PoisonOnce(5, 1))
    assert result.n_recoveries == 1
    assert math.isclose(result.final_learning_rate, 1e-2 * config.recovery_lr_factor)
    assert all(math.isfinite(v) for v in result.loss_curve)
    assert all(torch.isfinite(p).all() for p in flow.parameters())


def test_persistent_divergence_raises_clear_error():
    x = gaussian_data()
    flow = build_flow(2, n_transforms=2, hidden_units=(16,))
    config = TrainConfig(max_epochs=10, validation_fraction=0.0, max_recoveries=2)
    with pytest.raises(TrainingDivergedError, match="diverged"):
        train_flow(flow, x, torch.ones(len(x)), config, torch.Generator().manual_seed(0), augment=PoisonOnce(0, 10**9))
    assert all(torch.isfinite(p).all() for p in flow.parameters())


def test_zero_weight_rows_do_not_affect_training():
    x = gaussian_data(300)
    outliers = torch.full((30, 2), 50.0)
    weights = torch.cat([torch.ones(300), torch.zeros(30)])
    flow = build_flow(2, n_transforms=2, hidden_units=(16,))
    config = TrainConfig(max_epochs=30, validation_fraction=0.0, batch_size=330)
    train_flow(flow, torch.cat([x, outliers]), weights, config, torch.Generator().manual_seed(0))
    assert float(flow.log_prob(outliers).mean().detach()) < -100


def test_parameters_get_their_own_storage_back_after_training():
    # Training updates all parameters through views into one flat buffer; afterwards
    # each parameter must own its storage again (state dicts, pickles) and hold no gradient.
    x = gaussian_data(200)
    flow = build_flow(2, n_transforms=2, hidden_units=(8,))
    before = {k: v.clone() for k, v in flow.named_parameters()}
    train_flow(flow, x, torch.ones(len(x)), TrainConfig(max_epochs=2), torch.Generator().manual_seed(0))
    params = dict(flow.named_parameters())
    assert all(p.grad is None for p in params.values())
    assert len({p.untyped_storage().data_ptr() for p in params.values()}) == len(params)
    assert all(p.untyped_storage().nbytes() == p.numel() * p.element_size() for p in params.values())
    # Every trained parameter moved (the zero-initialized output layers included).
    assert all(not torch.equal(before[k], params[k]) for k in params)


def test_initial_weights_are_a_candidate_when_training_only_hurts():
    """Epoch 0 competes: a fit that makes the validation score worse returns the starting weights."""
    # Standard normal data: the untrained flow (the identity) is already the true density.
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    flow = build_flow(2, n_transforms=1, hidden_units=(8,), seed=0)
    initial = {k: v.clone() for k, v in flow.state_dict().items()}
    config = TrainConfig(max_epochs=3, learning_rate=0.5)
    result = train_flow(flow, x, torch.ones(len(x)), config, torch.Generator().manual_seed(0))
    assert result.n_iter == 3 and result.best_epoch == 0
    for key, value in flow.state_dict().items():
        assert torch.equal(value, initial[key]), key


def test_kept_weights_are_the_moving_average_of_the_iterates():
    """Two steps (two epochs of one batch): average = d2 (d1 p0 + (1 - d1) p1) + (1 - d2) p2,
    with the warm-up decays d1 = 1/10 and d2 = 2/11 (below ema_decay=0.9)."""
    x = gaussian_data(200)
    config = dict(max_epochs=2, batch_size=200, validation_fraction=0.0, learning_rate=0.01)

    def fit(ema_decay: float, max_epochs: int):
        flow = build_flow(2, n_transforms=1, hidden_units=(8,), seed=3)
        start = [p.detach().clone() for p in flow.parameters()]
        settings = {**config, "max_epochs": max_epochs, "ema_decay": ema_decay}
        result = train_flow(flow, x, torch.ones(len(x)), TrainConfig(**settings), torch.Generator().manual_seed(0))
        return start, [p.detach().clone() for p in flow.parameters()], result

    start, step1, _ = fit(0.0, 1)
    _, step2, _ = fit(0.0, 2)
    _, averaged, result = fit(0.9, 2)
    assert result.best_epoch == 2  # the training loss decides; it fell
    assert any(not torch.equal(a, b) for a, b in zip(step1, step2))
    d1, d2 = 1 / 10, 2 / 11
    for p0, p1, p2, kept in zip(start, step1, step2, averaged):
        torch.testing.assert_close(kept, d2 * (d1 * p0 + (1 - d1) * p1) + (1 - d2) * p2)


def test_single_threaded_restores_the_thread_setting_after_nested_and_failing_blocks():
    from skflow._core.device import single_threaded

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a test worker runs on one thread (conftest): restoring 1 would prove nothing
    try:
        with pytest.raises(RuntimeError):
            with single_threaded():
                assert torch.get_num_threads() == 1
                with single_threaded():
                    assert torch.get_num_threads() == 1
                assert torch.get_num_threads() == 1  # the outer block still holds it
                raise RuntimeError("fit failed")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_evaluation_batches_are_bounded_by_the_flows_size():
    from skflow._core.rows import EVALUATION_MEMORY, evaluation_rows

    big = evaluation_rows(build_flow(16, n_transforms=5, hidden_units=(128, 128), n_bins=8))
    small = evaluation_rows(build_flow(2, n_transforms=1, hidden_units=(8,), n_bins=4))
    assert 256 <= big < small <= 65536
    assert big * 4 * (6 * 16 * 28 + 4 * 128) <= EVALUATION_MEMORY


def test_fused_adamw_matches_torch_optim_adamw_bit_for_bit():
    """Two param groups of different step sizes (make_adamw's lr_factors), a changed rate, a resumed state."""
    from skflow._core.optim import FusedAdamW, make_adamw

    if not FusedAdamW.supports([torch.nn.Parameter(torch.zeros(1))]):
        pytest.skip("this torch has no fused AdamW kernel")
    generator = torch.Generator().manual_seed(0)
    starts = [torch.randn(50, generator=generator), torch.randn(7, generator=generator)]
    grads = [[torch.randn(50, generator=generator), torch.randn(7, generator=generator)] for _ in range(6)]

    def torch_adamw(params):
        groups = [{"params": [params[0]], "lr": 1e-2}, {"params": [params[1]], "lr": 3e-2}]
        return torch.optim.AdamW(groups, lr=1e-2, weight_decay=1e-4, fused=True)

    def fused(params):
        optimizer = make_adamw(params, 1e-2, 1e-4, lr_factors=[1.0, 3.0])
        assert isinstance(optimizer, FusedAdamW) and [g["lr_factor"] for g in optimizer.param_groups] == [1.0, 3.0]
        return optimizer

    results = []
    for make in (torch_adamw, fused):
        params = [torch.nn.Parameter(start.clone()) for start in starts]
        optimizer = make(params)
        for i, step_grads in enumerate(grads):
            if i == 3:  # a changed learning rate and a resumed state behave the same too
                optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"] = 5e-3, 1.5e-2
                state = optimizer.state_dict()
                optimizer = make(params)
                optimizer.load_state_dict(state)
            for param, grad in zip(params, step_grads):
                param.grad = grad.clone()
            optimizer.step()
        results.append(torch.cat([p.detach().clone() for p in params]))
    assert torch.equal(results[0], results[1])
    assert not torch.equal(results[0][:50], starts[0]) and not torch.equal(results[0][50:], starts[1])


def test_training_does_not_import_torch_dynamo():
    """torch.optim imports torch._dynamo (~2.7 s of CPU in every fresh worker process); the trainer avoids it."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from skflow import FlowDensity; "
        "FlowDensity(n_transforms=1, hidden_units=(4,), max_epochs=2, random_state=0)"
        ".fit(np.random.RandomState(0).normal(size=(64, 2))); print('torch._dynamo' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_an_epoch_replaces_the_start_only_when_clearly_better_on_validation():
    """The margin in standard errors of the paired difference: chance gains on few rows keep the start."""
    from skflow._core.rows import clearly_better

    weights = torch.ones(50)
    noise = torch.randn(50, generator=torch.Generator().manual_seed(0))
    initial = torch.zeros(50)
    assert not clearly_better(initial + 0.05 + noise, initial, weights, margin=2.0)  # 0.05 against SE ~0.14
    assert clearly_better(initial + 1.0 + noise, initial, weights, margin=2.0)
    # Fewer than MIN_VALIDATION_ROWS (here 9, or one with zero variance): never clearly better.
    assert not clearly_better(initial[:9] + 1.0 + noise[:9], initial[:9], weights[:9], margin=2.0)
    assert not clearly_better(initial[:1] + 1.0, initial[:1], weights[:1], margin=0.0)
    x = gaussian_data(200)
    for margin, kept_start in ((1e9, True), (0.0, False)):
        flow = build_flow(2, n_transforms=2, hidden_units=(16,), seed=0)
        initial = {k: v.clone() for k, v in flow.state_dict().items()}
        config = TrainConfig(max_epochs=5, batch_size=64, initial_margin=margin)
        result = train_flow(flow, x, torch.ones(len(x)), config, torch.Generator().manual_seed(0))
        assert (result.best_epoch == 0) == kept_start
        assert all(torch.equal(v, initial[k]) for k, v in flow.state_dict().items()) == kept_start


def _mixture_flow():
    import numpy as np

    mixture = (np.array([0.5, 0.5]), np.array([[-1.0, 0.0], [1.0, 0.0]]), np.stack([np.eye(2)] * 2))
    return build_flow(2, n_transforms=1, hidden_units=(8,), seed=0, mixture=mixture)


def test_the_warm_up_raises_the_step_size_linearly_then_holds_it():
    from skflow._core import Rows, Trainer

    flow = _mixture_flow()
    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    config = TrainConfig(batch_size=10, warmup_steps=6, base_lr_factor=3.0)
    trainer = Trainer(flow, config, torch.Generator().manual_seed(0))
    seen = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda: seen.append([g["lr"] for g in trainer.optimizer.param_groups]) or step()
    for _ in range(3):  # 4 steps a pass: 6 of warm-up, then the full rate
        trainer.one_pass(Rows(x, torch.ones(40)), lr=1e-2)
    trainer.release()
    expected = [[1e-2 * min(1.0, n / 6) * f for f in (1.0, 3.0)] for n in range(1, 13)]
    assert [lr for pair in seen for lr in pair] == pytest.approx([lr for pair in expected for lr in pair], rel=1e-12)
    assert trainer.n_steps == 12


def test_the_mixture_base_has_its_own_step_size():
    """The base's parameters (and only they) sit in the group whose rate is base_lr_factor times the rest's:
    AdamW's first step moves each of them 3x as far as at factor 1, and every other parameter as far."""
    from skflow._core import Rows, Trainer

    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(1))
    moves = {}
    for factor in (1.0, 3.0):
        flow = _mixture_flow()
        base_ids = {id(p) for p in flow.base.parameters()}
        before = [p.detach().clone() for p in flow.parameters()]
        config = TrainConfig(batch_size=20, base_lr_factor=factor, weight_decay=0.0, ema_decay=0.0)
        trainer = Trainer(flow, config, torch.Generator().manual_seed(0))
        groups = trainer.optimizer.param_groups
        if factor == 1.0:  # one group and one flat buffer: the layout of earlier partial_fit states
            assert len(groups) == 1 and len(trainer.params) == 1
        else:
            assert [g["lr_factor"] for g in groups] == [1.0, 3.0]
            assert groups[1]["params"][0].numel() == sum(p.numel() for p in flow.base.parameters())
        trainer.one_pass(Rows(x, torch.ones(20)), lr=1e-2)  # one step
        trainer.release()
        moves[factor] = [(id(p) in base_ids, (p.detach() - b)) for p, b in zip(flow.parameters(), before)]
    for (in_base, slow), (_, fast) in zip(moves[1.0], moves[3.0]):
        torch.testing.assert_close(fast, 3.0 * slow if in_base else slow, rtol=1e-5, atol=1e-9)
    assert any(in_base and slow.abs().max() > 5e-3 for in_base, slow in moves[1.0])  # the base did move


def test_a_resumed_trainer_continues_the_warm_up_bit_for_bit():
    from skflow._core import Rows, Trainer

    x = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    rows = Rows(x, torch.ones(40))
    config = TrainConfig(batch_size=10, warmup_steps=6, base_lr_factor=3.0)
    weights = []
    for split in (False, True):
        flow = _mixture_flow()
        trainer = Trainer(flow, config, torch.Generator().manual_seed(0))
        for i in range(3):  # 12 steps, the warm-up's 6 across the first two passes
            if split and i == 1:  # stop after 4 steps, then a new trainer resumes from the state
                state = trainer.state_dict()
                trainer.release()
                trainer = Trainer(flow, config, torch.Generator().manual_seed(99))
                trainer.load_state_dict(state)
                assert trainer.n_steps == 4
            trainer.one_pass(rows, lr=1e-2)
        trainer.release()
        weights.append(torch.cat([p.detach().reshape(-1) for p in flow.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_a_recovery_goes_back_to_the_warm_up_step_of_the_restored_epoch():
    from skflow._core import Trainer
    from skflow._core.train import _snapshot, _Training

    flow = _mixture_flow()
    trainer = Trainer(flow, TrainConfig(warmup_steps=300, ema_decay=0.0), torch.Generator().manual_seed(0))
    training = _Training(trainer, None)
    trainer.n_steps = 250
    training._recover((_snapshot(flow), None, 40), _snapshot(flow))
    trainer.release()
    assert trainer.n_steps == 40 and training.base_lr == pytest.approx(1e-3 * 0.2)


def test_make_adamw_groups_runs_of_equal_factors_in_order_and_checks_their_number():
    from skflow._core.optim import make_adamw

    params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(4)]
    optimizer = make_adamw(params, 1e-2, 0.0, lr_factors=[1.0, 3.0, 3.0, 1.0])
    assert [(g["lr_factor"], len(g["params"])) for g in optimizer.param_groups] == [(1.0, 1), (3.0, 2), (1.0, 1)]
    assert [p for g in optimizer.param_groups for p in g["params"]] == params
    with pytest.raises(ValueError, match="3 learning-rate factor"):
        make_adamw(params, 1e-2, 0.0, lr_factors=[1.0, 1.0, 1.0])
