"""Speed and memory benchmark: skflow's torch core against zuko, FlowDensity against KernelDensity.

Run from the repository root::

    python -m benchmarks.speed            # full run, by hand (several minutes on 2 cores)
    python -m benchmarks.speed --quick    # seconds: tiny sizes (CI); asserts nothing about speed

It prints a table and writes JSON (``benchmarks/results/speed.json`` for the
full run; ``--out PATH`` anywhere). Every ratio compares contenders measured in
the same run, interleaved and best of ``repeats``, because wall times on shared
machines vary by 2-4x from run to run. Measured quantities (issue 3's targets):

* ``train``: training throughput (samples/s) of skflow's training loop
  (``train_flow``: spline couplings, LU mixing, fused AdamW, gradient clipping)
  against zuko's ``NSF`` at equal size (same number of transforms, hidden
  sizes and bins), in its coupling form (``passes=2``, the equal architecture)
  and its default autoregressive form, each trained by a plain Adam loop over
  batches indexed from one tensor. Target: skflow at least 2x zuko.
* ``sample``: ``FlowDensity.sample`` rows/s at d=64 (default architecture)
  against zuko's default (autoregressive) ``NSF`` of the same size. Target: 10x.
* ``score``: ``FlowDensity.score_samples`` rows/s against ``KernelDensity``,
  both fitted on 100,000 rows. Target: 20x.
* ``memory``: peak resident memory growth of ``score_samples``, ``transform``
  and ``sample`` on 2,000,000 x 16 float32 rows, as a multiple of the input's
  size, measured in a child process (Linux: the ``VmHWM`` high-water mark is
  reset before each call). Target: at most 2x.
* ``--fit-memory``: the same for ``fit`` on 3,000,000 x 16 float32 rows
  (``benchmarks/fit_memory.py``). Target: at most 3x.

Threads: every contender runs with the same torch intra-op thread count
(``--threads``, default 1). On a machine shared with other work, each of the
thousands of tiny matmuls and softmaxes of a training step opens a parallel
region that waits for descheduled threads: measured here under load, a
62 x 32 matmul took 5 us with one thread and 33 ms with two.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results" / "speed.json"


@dataclass
class Sizes:
    """Problem sizes of one run; ``quick`` shrinks everything to seconds."""

    train_configs: tuple = ((2, 64, (32, 32)), (8, 256, (64, 64)), (16, 256, (64, 64)), (32, 512, (128, 128)))
    train_rows: int = 8192
    train_epochs: int = 2
    sample_features: int = 64
    sample_rows: int = 2_000
    score_train_rows: int = 100_000
    score_features: int = 8
    score_query_rows: int = 1_000
    memory_rows: int = 2_000_000
    memory_features: int = 16
    repeats: int = 3

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if not quick:
            return cls()
        return cls(
            train_configs=((2, 32, (8, 8)),),
            train_rows=64,
            train_epochs=1,
            sample_features=8,
            sample_rows=200,
            score_train_rows=500,
            score_features=2,
            score_query_rows=200,
            memory_rows=20_000,
            memory_features=4,
            repeats=1,
        )


# ---------------------------------------------------------------- helpers


def _best_of(functions: dict, repeats: int) -> dict[str, float]:
    """Best wall time (seconds) of each function, run interleaved ``repeats`` times."""
    best = dict.fromkeys(functions, math.inf)
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _zuko():
    try:
        import zuko
    except ImportError:  # zuko is a benchmark-only dependency
        return None
    return zuko


def _quiet_fit(estimator, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X)


# ---------------------------------------------------------------- training


def _skflow_trainer(x: torch.Tensor, batch_size: int, hidden: tuple, epochs: int, mixing: str = "lu"):
    """skflow's training loop as FlowDensity runs it (clipping, weight averaging); ``mixing`` between couplings."""
    from skflow._core import TrainConfig, build_flow, train_flow

    config = TrainConfig(
        batch_size=batch_size,
        max_epochs=epochs,
        validation_fraction=0.0,
        n_iter_no_change=10**9,
        tol=0.0,
        ema_decay=0.99,
    )
    weights = torch.ones(x.shape[0])

    def run():
        flow = build_flow(
            x.shape[1], flow="spline", n_transforms=5, hidden_units=hidden, n_bins=8, mixing=mixing, seed=0
        )
        train_flow(flow, x, weights, config, torch.Generator().manual_seed(0))

    return run


def _zuko_trainer(zuko, x: torch.Tensor, batch_size: int, hidden: tuple, epochs: int, passes):
    def run():
        torch.manual_seed(0)
        flow = zuko.flows.NSF(x.shape[1], transforms=5, hidden_features=hidden, bins=8, passes=passes)
        optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(x.shape[0], generator=generator)
            for start in range(0, x.shape[0], batch_size):
                loss = -flow().log_prob(x[perm[start : start + batch_size]]).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    return run


def bench_training(sizes: Sizes) -> list[dict]:
    zuko = _zuko()
    rows = []
    for n_features, batch_size, hidden in sizes.train_configs:
        x = torch.randn(sizes.train_rows, n_features, generator=torch.Generator().manual_seed(0))
        contenders = {
            "skflow": _skflow_trainer(x, batch_size, hidden, sizes.train_epochs),
            "skflow_permutation": _skflow_trainer(x, batch_size, hidden, sizes.train_epochs, mixing="permutation"),
        }
        if zuko is not None:
            contenders["zuko_coupling"] = _zuko_trainer(zuko, x, batch_size, hidden, sizes.train_epochs, passes=2)
            contenders["zuko_autoregressive"] = _zuko_trainer(
                zuko, x, batch_size, hidden, sizes.train_epochs, passes=None
            )
        seconds = _best_of(contenders, sizes.repeats)
        n_samples = sizes.train_rows * sizes.train_epochs
        row = {
            "n_features": n_features,
            "batch_size": batch_size,
            "hidden_units": list(hidden),
            "samples_per_s": {name: n_samples / s for name, s in seconds.items()},
        }
        rates = row["samples_per_s"]
        # skflow_permutation / zuko_coupling is the equal architecture (coupling layers with permutations);
        # skflow adds a learned LU-linear layer before each coupling.
        row["speedup"] = {
            f"{ours}/{theirs}": rates[ours] / rates[theirs]
            for ours in ("skflow", "skflow_permutation")
            for theirs in ("zuko_coupling", "zuko_autoregressive")
            if theirs in rates
        }
        rows.append(row)
    return rows


# ---------------------------------------------------------------- sampling


def bench_sampling(sizes: Sizes) -> dict:
    from skflow import FlowDensity

    d = sizes.sample_features
    X = np.random.default_rng(0).standard_normal((2000, d))
    est = _quiet_fit(FlowDensity(max_epochs=1, random_state=0), X)
    config = est.flow_.config
    contenders = {"skflow": lambda: est.sample(sizes.sample_rows, random_state=0)}
    zuko = _zuko()
    if zuko is not None:
        torch.manual_seed(0)
        # zuko's default (autoregressive) NSF, at FlowDensity's default size.
        flow = zuko.flows.NSF(
            d, transforms=config["n_transforms"], hidden_features=tuple(config["hidden_units"]), bins=config["n_bins"]
        )

        def zuko_sample():
            with torch.no_grad():
                flow().sample((sizes.sample_rows,))

        contenders["zuko_autoregressive"] = zuko_sample
    seconds = _best_of(contenders, sizes.repeats)
    result = {
        "n_features": d,
        "n_rows": sizes.sample_rows,
        "architecture": {k: config[k] for k in ("n_transforms", "hidden_units", "n_bins")},
        "rows_per_s": {name: sizes.sample_rows / s for name, s in seconds.items()},
    }
    if "zuko_autoregressive" in seconds:
        result["speedup"] = seconds["zuko_autoregressive"] / seconds["skflow"]
    return result


# ---------------------------------------------------------------- scoring


def bench_scoring(sizes: Sizes) -> dict:
    from sklearn.neighbors import KernelDensity

    from skflow import FlowDensity

    rng = np.random.default_rng(0)
    d = sizes.score_features
    X = rng.standard_normal((sizes.score_train_rows, d))
    query = rng.standard_normal((sizes.score_query_rows, d))
    # Scoring speed does not depend on how long the flow trained: one epoch.
    flow = _quiet_fit(FlowDensity(max_epochs=1, random_state=0), X)
    kde = KernelDensity(bandwidth=0.5).fit(X)
    seconds = _best_of(
        {"skflow": lambda: flow.score_samples(query), "kernel_density": lambda: kde.score_samples(query)},
        sizes.repeats,
    )
    return {
        "n_train_rows": sizes.score_train_rows,
        "n_query_rows": sizes.score_query_rows,
        "n_features": d,
        "rows_per_s": {name: sizes.score_query_rows / s for name, s in seconds.items()},
        "speedup": seconds["kernel_density"] / seconds["skflow"],
    }


# ---------------------------------------------------------------- memory


def _rss_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _memory_child(n_rows: int, n_features: int) -> dict:
    """Run in a fresh process: peak RSS growth of each inference method."""
    from skflow import FlowDensity

    rng = np.random.default_rng(0)
    est = _quiet_fit(FlowDensity(max_epochs=1, random_state=0), rng.standard_normal((2000, n_features)))
    X = rng.standard_normal((n_rows, n_features), dtype=np.float32)
    calls = {
        "score_samples": lambda: est.score_samples(X),
        "transform": lambda: est.transform(X),
        "sample": lambda: est.sample(n_rows, random_state=0),
    }
    results = {}
    for name, call in calls.items():
        call_small = {"score_samples": lambda: est.score_samples(X[:10]), "transform": lambda: est.transform(X[:10])}
        call_small.get(name, lambda: est.sample(10))()  # warm up lazy allocations
        # Reset the peak first: the peak then starts at the RSS of that moment, so it
        # is never below a reading taken after it.
        if not _reset_peak():
            return {"error": "needs Linux /proc/self/clear_refs and /proc/self/status"}
        before = _rss_bytes("VmRSS")
        if before is None:
            return {"error": "needs Linux /proc/self/status"}
        start = time.perf_counter()
        output = call()
        seconds = time.perf_counter() - start
        growth = _rss_bytes("VmHWM") - before
        results[name] = {
            "peak_growth_bytes": growth,
            "peak_growth_over_input": growth / X.nbytes,
            "output_bytes": output.nbytes,
            "seconds": seconds,
        }
        del output
    return {"n_rows": n_rows, "n_features": n_features, "input_bytes": X.nbytes, "calls": results}


def bench_memory(sizes: Sizes) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.speed",
        "--memory-child",
        str(sizes.memory_rows),
        str(sizes.memory_features),
        "--threads",
        str(torch.get_num_threads()),
    ]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- report


def machine() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    zuko = _zuko()
    if zuko is not None:
        info["zuko"] = zuko.__version__
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = list(os.getloadavg())
    return info


def print_table(results: dict, flush: bool = False) -> None:
    if "machine" in results:
        print(f"machine: {results['machine']}")
    if "train" in results:
        _print_training(results["train"])
    if "sample" in results:
        _print_sampling(results["sample"])
    if "score" in results:
        _print_scoring(results["score"])
    if "memory" in results:
        _print_memory(results["memory"])
    if flush:
        sys.stdout.flush()


def _print_training(rows: list[dict]) -> None:
    print("\ntraining throughput (samples/s; 5 spline transforms, 8 bins)")
    print("  perm: skflow with permutations, the equal architecture of zuko's coupling NSF; lu: skflow's default")
    print(
        f"{'d':>4} {'batch':>6} {'hidden':>10} {'skflow lu':>10} {'perm':>10} {'zuko cpl':>10} {'zuko AR':>10} "
        f"{'perm/cpl':>9} {'lu/cpl':>7} {'lu/AR':>6}"
    )
    for row in rows:
        rate, up = row["samples_per_s"], row.get("speedup", {})
        print(
            f"{row['n_features']:>4} {row['batch_size']:>6} {str(tuple(row['hidden_units'])):>10} "
            f"{rate['skflow']:>10.0f} {rate['skflow_permutation']:>10.0f} "
            f"{rate.get('zuko_coupling', math.nan):>10.0f} {rate.get('zuko_autoregressive', math.nan):>10.0f} "
            f"{up.get('skflow_permutation/zuko_coupling', math.nan):>9.2f} "
            f"{up.get('skflow/zuko_coupling', math.nan):>7.2f} {up.get('skflow/zuko_autoregressive', math.nan):>6.2f}"
        )


def _print_sampling(sampling: dict) -> None:
    print(f"\nsample at d={sampling['n_features']} (rows/s): {sampling['rows_per_s']}")
    print(f"  speedup over zuko NSF (autoregressive): {sampling.get('speedup', math.nan):.1f}x")


def _print_scoring(scoring: dict) -> None:
    print(f"\nscore_samples with {scoring['n_train_rows']} training rows (rows/s): {scoring['rows_per_s']}")
    print(f"  speedup over KernelDensity: {scoring['speedup']:.1f}x")


def _print_memory(memory: dict) -> None:
    if "calls" in memory:
        print(f"\npeak memory growth on {memory['n_rows']} x {memory['n_features']} float32 rows:")
        for name, call in memory["calls"].items():
            print(
                f"  {name:>14}: {call['peak_growth_bytes'] / 2**20:8.1f} MiB = "
                f"{call['peak_growth_over_input']:.2f} x input ({call['seconds']:.1f} s)"
            )
    else:
        print(f"\nmemory: {memory}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds); asserts nothing about speed")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/speed.json, full run)")
    parser.add_argument("--skip", nargs="*", default=(), choices=("train", "sample", "score", "memory"))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for every contender")
    parser.add_argument("--fit-memory", action="store_true", help="only fit's memory: runs benchmarks.fit_memory")
    parser.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fit_memory:
        from benchmarks import fit_memory

        return fit_memory.main([])
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _run(args)
    finally:
        torch.set_num_threads(previous_threads)


def _run(args: argparse.Namespace) -> dict:
    if args.memory_child:
        result = _memory_child(*args.memory_child)
        print(json.dumps(result))
        return result

    sizes = Sizes.for_mode(args.quick)
    # Creating the first torch optimizer imports torch._dynamo (seconds): not part of any throughput.
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    results = {"mode": "quick" if args.quick else "full", "machine": machine(), "sizes": asdict(sizes)}
    print(f"machine: {results['machine']}")
    benches = {"train": bench_training, "sample": bench_sampling, "score": bench_scoring, "memory": bench_memory}
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    for name, bench in benches.items():
        if name not in args.skip:
            results[name] = bench(sizes)
            print_table({name: results[name]}, flush=True)
            if out is not None:  # after every section, so that a long run keeps what it measured
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=2) + "\n")
    if out is not None:
        print(f"\nwrote {out}")
    return results


if __name__ == "__main__":
    main()
