"""Streaming quality: passes of ``FlowDensity.partial_fit`` over chunks against in-memory epochs of ``fit``.

Run from the repository root::

    python -m benchmarks.streaming            # 120,000 rows, 12 chunks, 3 passes (minutes on 2 cores)
    python -m benchmarks.streaming --quick    # seconds: tiny sizes; asserts nothing

Both contenders see the same training rows the same number of times: ``fit``
with ``max_epochs=passes`` and ``validation_fraction=0`` (cosine-decayed
learning rate), and ``passes`` streamed passes of ``partial_fit`` over
``n_chunks`` consecutive chunks (constant learning rate; the chunks are
visited in order, each shuffled within). Reported: held-out mean
log-likelihood of each and the gap per dimension, in nats (target of issue
14: the stream within 0.02 nats per dimension of ``fit``). Prints a table and
writes ``benchmarks/results/streaming.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks.datasets import SPECS
from benchmarks.speed import machine

RESULTS = Path(__file__).parent / "results" / "streaming.json"


def make_rows(name: str, n_train: int, n_test: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    spec = next(s for s in SPECS if s.name == name)
    X, _ = spec.make(n_train + n_test, np.random.RandomState(seed))
    X = np.random.RandomState(seed + 1).permutation(X)
    return X[:n_train], X[n_train:]


def compare(X: np.ndarray, X_test: np.ndarray, n_chunks: int, passes: int, **params) -> dict:
    """Held-out scores of ``fit`` (``passes`` epochs) and of ``passes`` streamed passes over ``n_chunks`` chunks."""
    from skflow import FlowDensity

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        fitted = FlowDensity(max_epochs=passes, validation_fraction=0.0, **params).fit(X)
        fit_seconds = time.perf_counter() - start
        streamed, chunks = FlowDensity(**params), np.array_split(X, n_chunks)
        start = time.perf_counter()
        per_pass = []
        for _ in range(passes):
            for chunk in chunks:
                streamed.partial_fit(chunk)
            per_pass.append(streamed.score(X_test))
        stream_seconds = time.perf_counter() - start
    fit_score, stream_score = fitted.score(X_test), streamed.score(X_test)
    return {
        "params": {k: v for k, v in params.items() if k != "random_state"},
        "fit_score": fit_score,
        "stream_score": stream_score,
        "stream_score_after_each_pass": per_pass,
        "gap_per_dimension": (fit_score - stream_score) / X.shape[1],
        "fit_seconds": fit_seconds,
        "stream_seconds": stream_seconds,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds); asserts nothing")
    parser.add_argument("--dataset", default="mixture_6d", choices=[s.name for s in SPECS if s.n_full])
    parser.add_argument("--rows", type=int, default=120_000)
    parser.add_argument("--chunks", type=int, default=12)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[1e-3], help="one comparison for each")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/streaming.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.chunks, args.passes = 600, 3, 2
    torch.set_num_threads(1)
    X, X_test = make_rows(args.dataset, args.rows, max(args.rows // 6, 200))
    extra = dict(n_transforms=1, hidden_units=(8,)) if args.quick else {}
    results = {
        "machine": machine(),
        "dataset": args.dataset,
        "n_train": X.shape[0],
        "n_test": X_test.shape[0],
        "n_features": X.shape[1],
        "n_chunks": args.chunks,
        "passes": args.passes,
        "runs": [],
    }
    print(f"{args.dataset}: {X.shape[0]} training rows in {args.chunks} chunks, {args.passes} passes")
    print(f"{'learning_rate':>13} {'fit':>9} {'stream':>9} {'gap/dim':>8} {'fit s':>7} {'stream s':>8}")
    for lr in args.learning_rates:
        run = compare(X, X_test, args.chunks, args.passes, learning_rate=lr, random_state=0, **extra)
        results["runs"].append(run)
        print(
            f"{lr:>13g} {run['fit_score']:>9.4f} {run['stream_score']:>9.4f} {run['gap_per_dimension']:>8.4f} "
            f"{run['fit_seconds']:>7.0f} {run['stream_seconds']:>8.0f}",
            flush=True,
        )
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
