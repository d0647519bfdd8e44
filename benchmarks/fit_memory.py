"""Peak memory of ``FlowDensity.fit`` on a large float32 array, as a multiple of the input's size.

Run from the repository root::

    python -m benchmarks.fit_memory                  # 3,000,000 x 16 float32 rows (a few minutes on 2 cores)
    python -m benchmarks.fit_memory --rows 20000     # seconds

The fit runs in a fresh child process (Linux: the ``VmHWM`` high-water mark
is reset just before ``fit``, after the input exists), so the figure is the
growth of the resident set that ``fit`` itself causes. Two readings: at the
start of training (the epoch-0 callback: validation, preprocessing, the float32
training rows and the split exist) and at the end of ``fit`` (one full epoch
of mini-batch steps included). Target (issue 14): at most 3x the input.
One epoch at ``batch_size=1024`` keeps the run short; per-batch memory is
a few MiB either way. Writes ``benchmarks/results/fit_memory.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.speed import _reset_peak, _rss_bytes, machine

RESULTS = Path(__file__).parent / "results" / "fit_memory.json"


class _Stop(Exception):
    pass


def _child(n_rows: int, n_features: int, batch_size: int, stop_at_start: bool = False, flow: str = "auto") -> dict:
    import torch

    from skflow import FlowDensity

    torch.set_num_threads(1)
    X = np.random.default_rng(0).standard_normal((n_rows, n_features), dtype=np.float32)
    FlowDensity(max_epochs=1, n_transforms=1, hidden_units=(4,), random_state=0).fit(X[:500])  # warm-up
    readings = {}

    def at_start(info):
        if info.epoch == 0:
            readings["start_of_training"] = _rss_bytes("VmHWM") - before
            if stop_at_start:
                raise _Stop

    est = FlowDensity(max_epochs=1, batch_size=batch_size, flow=flow, random_state=0, callback=at_start)
    if not _reset_peak():
        return {"error": "needs Linux /proc/self/clear_refs and /proc/self/status"}
    before = _rss_bytes("VmRSS")
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.suppress(_Stop):
        warnings.simplefilter("ignore")
        est.fit(X)
        readings["end_of_fit"] = _rss_bytes("VmHWM") - before
    return {
        "n_rows": n_rows,
        "n_features": n_features,
        "batch_size": batch_size,
        "flow": flow,
        "flow_kind": getattr(est, "flow_kind_", None),
        "input_bytes": X.nbytes,
        "seconds": time.perf_counter() - start,
        "peak_growth_bytes": readings,
        "peak_growth_over_input": {k: v / X.nbytes for k, v in readings.items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--flow", default="auto", help="FlowDensity's flow parameter")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/fit_memory.json)")
    parser.add_argument(
        "--stop-at-start",
        action="store_true",
        help="stop when training starts (validation, preprocessing and the "
        "training rows exist, the initial validation score is computed): minutes less on a busy machine",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = _child(args.rows, args.features, args.batch_size, args.stop_at_start, args.flow)
        print(json.dumps(result))
        return result
    command = [sys.executable, "-m", "benchmarks.fit_memory", "--child", "--rows", str(args.rows)]
    command += ["--features", str(args.features), "--batch-size", str(args.batch_size), "--flow", args.flow]
    command += ["--stop-at-start"] if args.stop_at_start else []
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        result = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "child failed"}
    else:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    result["machine"] = machine()
    if "peak_growth_over_input" in result:
        print(f"fit on {result['n_rows']} x {result['n_features']} float32 ({result['input_bytes'] / 2**20:.0f} MiB):")
        for name, ratio in result["peak_growth_over_input"].items():
            print(f"  {name:>18}: {result['peak_growth_bytes'][name] / 2**20:8.1f} MiB = {ratio:.2f} x input")
        print(f"  {result['seconds']:.0f} s")
    else:
        print(result)
    out = args.out if args.out is not None else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
