"""Where a training step's time goes: d=16, 5 spline couplings of (128, 128), 8 bins, batch 256 (by default).

Run from the repository root::

    python -m benchmarks.step_profile            # ~a minute on 2 cores
    python -m benchmarks.step_profile --steps 5  # seconds
    python -m benchmarks.step_profile --before old.json  # keeps a run on older code beside this one

Times the parts of ``Trainer``'s step by hand in CPU time of the thread
(``time.thread_time``: on a loaded machine wall time mostly measures the
waits for a core), best of ``--repeats`` runs of ``--steps`` steps each, one
torch thread: the batch gather, each layer's
forward (LU-linear mixing, coupling: conditioner MLP and spline), the base
density, the backward, gradient clipping, the fused AdamW step and the weight
average; then the top operators by self time from ``torch.profiler`` (wall
time: inflated by load, but its proportions and call counts still tell);
then whole steps of skflow (LU or permutation mixing) and of zuko's coupling
NSF at the same size, interleaved.
Writes ``benchmarks/results/step_profile.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.speed import machine
from skflow._core import spline_kernel

RESULTS = Path(__file__).parent / "results" / "step_profile.json"


def _setup(d: int, hidden: tuple, n_bins: int, batch: int, n_rows: int):
    from skflow._core import Rows, TrainConfig, Trainer, build_flow

    flow = build_flow(d, flow="spline", n_transforms=5, hidden_units=hidden, n_bins=n_bins, seed=0)
    x = torch.randn(n_rows, d, generator=torch.Generator().manual_seed(0))
    config = TrainConfig(batch_size=batch)
    trainer = Trainer(flow, config, torch.Generator().manual_seed(0))
    trainer.one_pass(Rows(x, torch.ones(n_rows)), 1e-3)  # warm-up: allocations, dispatch caches
    return flow, x, trainer


def _timed_steps(flow, x, trainer, batch: int, steps: int) -> dict[str, float]:
    """Seconds per step of each part, summed over ``steps`` steps (layers timed one by one)."""
    parts: dict[str, float] = {}

    def clock(name, start):
        now = time.thread_time()
        parts[name] = parts.get(name, 0.0) + now - start
        return now

    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        t = time.thread_time()
        index = torch.randint(0, x.shape[0], (batch,), generator=generator)
        u, w = x.index_select(0, index), torch.ones(batch)
        t = clock("gather batch", t)
        log_det = u.new_zeros(batch)
        for i, layer in enumerate(flow.transforms):
            u, ladj = layer(u, None)
            log_det = log_det + ladj
            t = clock(f"layer {i} {type(layer).__name__}", t)
        loss = -torch.dot(flow.base.log_prob(u) + log_det, w) / w.sum()
        t = clock("base density + loss", t)
        trainer.zero_grad()
        loss.backward()
        t = clock("backward", t)
        trainer.clip_gradients()
        t = clock("clip grad norm", t)
        trainer.optimizer.step()
        t = clock("AdamW step (fused)", t)
        trainer.average.update()
        clock("weight average", t)
    return {name: seconds / steps for name, seconds in parts.items()}


def _coupling_split(flow, x, batch: int, steps: int) -> dict[str, float]:
    """Forward seconds per step of the conditioner MLP and of the spline, summed over the coupling layers.

    The spline is the layer's own call (:func:`~skflow._core.splines.coupling_spline`): compiled where
    :mod:`skflow._core.spline_kernel` can build it, PyTorch's otherwise (``SKFLOW_COMPILED_SPLINE=0``).
    """
    from skflow._core.splines import coupling_spline

    parts = {"conditioner MLP (forward)": 0.0, "spline (forward)": 0.0}
    u = x[:batch]
    with torch.no_grad():
        for _ in range(steps):
            for layer in flow.transforms:
                if not hasattr(layer, "conditioner"):
                    u = layer(u, None)[0]
                    continue
                start = time.thread_time()
                rows = u.T
                params = layer.conditioner.features_major(rows.index_select(0, layer.conditioning))
                params = params.view(layer.transformed.numel(), layer.params_per_feature, batch)
                middle = time.thread_time()
                coupling_spline(u, params, layer.transformed, layer.tail_bound)
                parts["conditioner MLP (forward)"] += middle - start
                parts["spline (forward)"] += time.thread_time() - middle
    return {name: seconds / steps for name, seconds in parts.items()}


def _zuko_step(d: int, hidden: tuple, n_bins: int):
    """A training step of zuko's coupling NSF (``passes=2``) at this size, torch's Adam; None without zuko."""
    try:
        import zuko
    except ImportError:  # a benchmark-only dependency
        return None
    torch.manual_seed(0)
    flow = zuko.flows.NSF(d, transforms=5, hidden_features=hidden, bins=n_bins, passes=2)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)

    def step(u: torch.Tensor) -> None:
        loss = -flow().log_prob(u).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _skflow_step(d: int, hidden: tuple, n_bins: int, mixing: str):
    """One step of ``Trainer.one_pass`` (loss, backward, clipping, fused AdamW, weight average) on one batch."""
    from skflow._core import TrainConfig, Trainer, build_flow

    flow = build_flow(d, flow="spline", n_transforms=5, hidden_units=hidden, n_bins=n_bins, mixing=mixing, seed=0)
    trainer = Trainer(flow, TrainConfig(), torch.Generator().manual_seed(0))

    def step(u: torch.Tensor) -> None:
        trainer.one_pass(_rows(u), 1e-3)

    return step


def _versus_zuko(d: int, hidden: tuple, n_bins: int, batch: int, steps: int, repeats: int) -> dict[str, float]:
    """Milliseconds per training step (thread CPU time, best of ``repeats`` interleaved runs of ``steps`` steps).

    ``skflow_permutation`` is zuko's architecture (random permutations between
    couplings); ``skflow_lu`` adds the learned LU-linear mixing FlowDensity uses.
    """
    steppers = {
        "skflow_lu": _skflow_step(d, hidden, n_bins, "lu"),
        "skflow_permutation": _skflow_step(d, hidden, n_bins, "permutation"),
    }
    zuko_step = _zuko_step(d, hidden, n_bins)
    if zuko_step is not None:
        steppers["zuko_coupling"] = zuko_step
    u = torch.randn(batch, d, generator=torch.Generator().manual_seed(0))
    best = dict.fromkeys(steppers, float("inf"))
    for step in steppers.values():  # warm-up
        step(u)
    for _ in range(repeats):
        for name, step in steppers.items():
            start = time.thread_time()
            for _ in range(steps):
                step(u)
            best[name] = min(best[name], 1e3 * (time.thread_time() - start) / steps)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    parser.add_argument("--bins", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--before", type=Path, default=None, help="a JSON of this script run on older code, kept under 'before'"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    flow, x, trainer = _setup(args.features, tuple(args.hidden), args.bins, args.batch_size, 8192)
    try:
        runs = [_timed_steps(flow, x, trainer, args.batch_size, args.steps) for _ in range(args.repeats)]
        parts = {name: min(run[name] for run in runs) for name in runs[0]}
        split = [_coupling_split(flow, x, args.batch_size, args.steps) for _ in range(args.repeats)]
        parts_coupling = {name: min(run[name] for run in split) for name in split[0]}
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
            trainer.one_pass(_rows(x[: args.batch_size * args.steps]), 1e-3)
    finally:
        trainer.release()
    versus = _versus_zuko(args.features, tuple(args.hidden), args.bins, args.batch_size, args.steps, args.repeats)
    table = profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
    total = sum(parts.values())
    compiled = spline_kernel.load(x, torch.zeros(1, 3 * args.bins - 1, 1, dtype=x.dtype)) is not None
    print(
        f"training step, d={args.features}, 5 spline couplings {tuple(args.hidden)}, {args.bins} bins, "
        f"batch {args.batch_size}: {1e3 * total:.2f} ms per step (best of {args.repeats} x {args.steps}), "
        f"compiled spline: {compiled}"
    )
    for name, seconds in parts.items():
        print(f"  {name:<28} {1e3 * seconds:7.3f} ms  {100 * seconds / total:5.1f} %")
    print("  forward of the coupling layers, split (no grad):")
    for name, seconds in parts_coupling.items():
        print(f"    {name:<26} {1e3 * seconds:7.3f} ms")
    print("  one training step at this size, ms (thread CPU time):")
    for name, ms in versus.items():
        print(f"    {name:<26} {ms:7.2f}")
    if "zuko_coupling" in versus:
        print(f"    zuko_coupling / skflow_permutation: {versus['zuko_coupling'] / versus['skflow_permutation']:.2f}x")
    print(table)
    result = {
        "machine": machine(),
        "settings": vars(args) | {"out": str(args.out), "before": str(args.before) if args.before else None},
        "compiled_spline": compiled,
        "ms_per_step": 1e3 * total,
        "parts_ms": {k: 1e3 * v for k, v in parts.items()},
        "coupling_forward_ms": {k: 1e3 * v for k, v in parts_coupling.items()},
        "step_ms_versus_zuko": versus,
        "before": json.loads(args.before.read_text()) if args.before is not None else None,
        "profiler_top_ops": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _rows(x: torch.Tensor):
    from skflow._core import Rows

    return Rows(x, torch.ones(x.shape[0]))


if __name__ == "__main__":
    main()
