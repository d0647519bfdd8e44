"""Copies of training rows (``skflow._copies``): the default fitted with copies merged and as given.

On ``sin(3 x_0) + x_1^2 + x_2 / 2`` plus noise of 0.3 (five features in
[-1, 1]), 300 training rows of which a share are copies of the others,
drawn at random, each set is fitted twice from the same seed: the rule
forced on (``COPY_SHARE`` 0) and off; scored on 700 new rows (test
log-likelihood and 90% coverage)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.copies --out results.jsonl
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import skflow._copies as copies
from skflow import FlowRegressor

from .split_runs import append_record

TRAIN_ROWS, TEST_ROWS = 300, 700


def rows_with_copies(share: float, draw: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, target and the training rows' indices: ``share`` of ``TRAIN_ROWS`` are copies."""
    rng = np.random.default_rng(draw)
    X = rng.uniform(-1, 1, (TRAIN_ROWS + TEST_ROWS, 5))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] + 0.3 * rng.normal(size=len(X))
    n_distinct = int(round(TRAIN_ROWS * (1 - share)))
    repeats = rng.choice(n_distinct, TRAIN_ROWS - n_distinct, replace=share > 0.5)
    index = np.concatenate([np.arange(n_distinct), repeats])
    rng.shuffle(index)
    return X, y, index


def measure(share: float, draw: int, merge: bool, settings: dict) -> dict:
    X, y, index = rows_with_copies(share, draw)
    X_test, y_test = X[TRAIN_ROWS:], y[TRAIN_ROWS:]
    copies.COPY_SHARE = 0.0 if merge else np.inf
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=draw, **settings).fit(X[index], y[index])
    low, high = model.predict_interval(X_test).T
    return {
        "share": share,
        "draw": draw,
        "merged": merge,
        "test_ll": float(model.score_samples(X_test, y_test).mean()),
        "coverage_90": float(np.mean((low <= y_test) & (y_test <= high))),
        "fit_seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--quick", action="store_true", help="one share, one draw, two epochs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    settings = {"max_epochs": 2, "n_flows": 2} if args.quick else {}
    shares, draws = ([0.5], [0]) if args.quick else (args.shares, args.draws)
    saved = copies.COPY_SHARE
    try:
        for draw in draws:
            for share in shares:
                for merge in (False, True):
                    record = measure(share, draw, merge, settings)
                    if args.out is None:
                        print(record, flush=True)
                    else:
                        append_record(args.out, record)
    finally:
        copies.COPY_SHARE = saved


if __name__ == "__main__":
    main()
