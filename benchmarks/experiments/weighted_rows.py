"""Rows of negligible weight beside the data: does the default fit as it would on the data alone?

Each draw has ``--rows`` rows of a skewed, heteroscedastic target of weight 1 and as many again of weight 1e-6,
their targets shifted by 10 (rows a user keeps in the table but weights out). The default ``FlowRegressor`` is
fitted with those weights and on the weighted rows alone, and both are scored on 1,000 new rows of the data::

    python -m benchmarks.experiments.weighted_rows --rows 40 80 --draws 0 1 2 --out weighted.jsonl

Run it on two versions of skflow (``PYTHONPATH`` to a checkout) to compare how they count the light rows.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

from skflow import FlowRegressor

from .split_runs import append_record

LIGHT_WEIGHT, LIGHT_SHIFT, TEST_ROWS = 1e-6, 10.0, 1000


def skewed(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-2, 2, (n, 2))
    y = np.sin(X[:, 0]) + (0.2 + 0.2 * np.abs(X[:, 0])) * rng.gamma(2.0, size=n)
    return X, y


def scores(reg: FlowRegressor, X: np.ndarray, y: np.ndarray) -> dict:
    low, high = reg.predict_interval(X, coverage=0.9).T
    return {
        "log_likelihood": float(reg.score_samples(X, y).mean()),
        "coverage": float(np.mean((low <= y) & (y <= high))),
        "n_flows": len(reg.ensemble_) + 1,
    }


def measure(rows: int, draw: int) -> dict:
    rng = np.random.default_rng(draw)
    X, y = skewed(rows, rng)
    X_light, y_light = skewed(rows, rng)
    X_test, y_test = skewed(TEST_ROWS, rng)
    weights = np.r_[np.ones(rows), np.full(rows, LIGHT_WEIGHT)]
    record = {"rows": rows, "draw": draw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        weighted = FlowRegressor(random_state=0).fit(np.r_[X, X_light], np.r_[y, y_light + LIGHT_SHIFT], weights)
        record["weighted_seconds"] = time.perf_counter() - start
        alone = FlowRegressor(random_state=0).fit(X, y)
    record.update({f"weighted_{k}": v for k, v in scores(weighted, X_test, y_test).items()})
    record.update({f"alone_{k}": v for k, v in scores(alone, X_test, y_test).items()})
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[40, 80])
    parser.add_argument("--draws", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for rows in args.rows:
        for draw in args.draws:
            append_record(args.out, measure(rows, draw))


if __name__ == "__main__":
    main()
