"""Prediction speed of a fitted FlowRegressor: predict, quantiles, interval, draws and log-density.

Run from the repository root::

    python -m benchmarks.regressor_speed            # a few minutes on one core
    python -m benchmarks.regressor_speed --quick    # seconds (CI); asserts nothing about speed
    python -m benchmarks.regressor_speed --pytorch-too  # each kind also without the compiled kernels

Each layer kind (``flow="spline"``, ``flow="mixture_cdf"``) is fitted once on
a heteroscedastic, skewed target of ``--rows`` rows with ``n_flows`` flows,
then every prediction method is timed on ``--query`` new rows (best of
``--repeats``, one torch thread). ``predict`` inverts 130 latent points a
row per flow (``skflow._conditional.mean_rule``), ``predict_quantiles`` the
199 levels of the benchmark's CRPS and then solves the mixture's quantile
between its flows' (``skflow._ensemble.mixture_quantiles``). It prints a
table and writes JSON (``benchmarks/results/regressor_speed.json``;
``--out PATH`` anywhere). With ``--pytorch-too`` each kind is also fitted and
timed with ``SKFLOW_COMPILED=0`` (the PyTorch code of the spline and of the
mixture-CDF layer), right after its compiled run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from skflow import FlowRegressor
from skflow._core import mixture_cdf_kernel, spline_kernel

RESULTS = Path(__file__).parent / "results" / "regressor_speed.json"
QUANTILE_LEVELS = (np.arange(199) + 0.5) / 199


def skewed_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four features; the target's noise is gamma-skewed and grows with ``|x_1|``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, X[:, 0] + 0.5 * rng.standard_gamma(2.0, size=n) * (1.0 + np.abs(X[:, 1]))


def best_seconds(function, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def time_kind(kind: str, args: argparse.Namespace) -> dict:
    X, y = skewed_rows(args.rows, 0)
    settings = {"max_epochs": 2} if args.quick else {}
    model = FlowRegressor(flow=kind, n_flows=args.flows, random_state=0, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        model.fit(X, y)
    fit_seconds = time.perf_counter() - start
    query, y_query = skewed_rows(args.query, 1)
    methods = {
        "predict": lambda: model.predict(query),
        "quantiles_199": lambda: model.predict_quantiles(query, QUANTILE_LEVELS),
        "interval_90": lambda: model.predict_interval(query, coverage=0.9),
        "sample_20": lambda: model.sample(query, n_samples=20, random_state=0),
        "score_samples": lambda: model.score_samples(query, y_query),
    }
    seconds = {name: best_seconds(function, args.repeats) for name, function in methods.items()}
    return {"flow": kind, "code": kernel_code(), "n_flows": args.flows, "fit_seconds": fit_seconds, "seconds": seconds}


def kernel_code() -> str:
    """Which code trains the flows: "compiled" where both layer kinds' kernels are built and on, else "pytorch"."""
    x = torch.zeros(1, 1)
    spline = spline_kernel.load(x, torch.zeros(1, 23, 1))
    mixture_cdf = mixture_cdf_kernel.load(x, torch.zeros(1, 15, 1))
    return "pytorch" if spline is None or mixture_cdf is None else "compiled"


def time_kinds(args: argparse.Namespace) -> list[dict]:
    """Each layer kind, compiled (where a C compiler builds the kernels), then with PyTorch's code if asked."""
    results = []
    for kind in ("spline", "mixture_cdf"):
        results.append(time_kind(kind, args))
        if args.pytorch_too:
            with mock.patch.dict(os.environ, {"SKFLOW_COMPILED": "0"}):
                results.append(time_kind(kind, args))
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, two epochs: seconds")
    parser.add_argument("--rows", type=int, default=600, help="training rows")
    parser.add_argument("--query", type=int, default=1000, help="rows predicted")
    parser.add_argument("--flows", type=int, default=5, help="n_flows of each fit")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pytorch-too", action="store_true", help="also time each kind with SKFLOW_COMPILED=0")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON output (default {RESULTS}; none with --quick)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.query, args.flows, args.repeats = 120, 50, 2, 1
    torch.set_num_threads(1)
    results = time_kinds(args)
    print(f"{'flow':<12} {'code':<9} {'fit s':>7} " + " ".join(f"{name:>14}" for name in results[0]["seconds"]))
    for result in results:
        cells = " ".join(f"{value:>14.3f}" for value in result["seconds"].values())
        print(f"{result['flow']:<12} {result['code']:<9} {result['fit_seconds']:>7.1f} {cells}")
    print(f"seconds for {args.query} rows, {args.flows} flows, best of {args.repeats}, one torch thread")
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    if out is not None:
        record = {
            "machine": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "rows": args.rows,
            "query_rows": args.query,
            "repeats": args.repeats,
            "results": results,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
