"""One- and two-dimensional sets with sharp edges, spirals and blocks: FlowDensity with given parameters.

The sets behind ``n_bins="auto"`` (docs/benchmarks.md, thirteenth session)
that are not in ``benchmarks/density.py``: three draws of the README
figure's checkerboard, a noisy spiral, a uniform square, a uniform triangle
and four 1-D sets. 1,500 rows each: the first 1,000 fit
``FlowDensity(random_state=0, device="cpu", **params)``, the last 500 are
held out; the score is their mean log-likelihood in the data's own units
(as in the README figure). One JSON line per set::

    python -m benchmarks.experiments.low_dimensional --params '{"n_bins": 8}' --out /tmp/bins.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from skflow import FlowDensity

N_ROWS, N_TRAIN = 1500, 1000


def checkerboard(rng: np.random.Generator) -> np.ndarray:
    """Uniform on the dark squares of a 4 x 4 board on [-2, 2]^2 (the README figure's)."""
    x1 = rng.uniform(-2, 2, N_ROWS)
    x2 = rng.uniform(0, 1, N_ROWS) - 2 + 2 * rng.integers(0, 2, N_ROWS) + np.floor(x1) % 2
    return np.column_stack([x1, x2])


def spiral(rng: np.random.Generator) -> np.ndarray:
    t = np.sqrt(rng.uniform(0, 1, N_ROWS)) * 3 * np.pi
    return np.column_stack([t * np.cos(t), t * np.sin(t)]) + 0.3 * rng.standard_normal((N_ROWS, 2))


def triangle(rng: np.random.Generator) -> np.ndarray:
    u = rng.uniform(0, 1, (N_ROWS, 2))
    return np.column_stack([u.max(axis=1), u.min(axis=1)])


def bimodal_1d(rng: np.random.Generator) -> np.ndarray:
    half = N_ROWS // 2
    return rng.permutation(np.concatenate([rng.normal(-2, 0.5, half), rng.normal(1, 1, N_ROWS - half)]))[:, None]


def blocks_1d(rng: np.random.Generator) -> np.ndarray:
    """Uniform on four blocks of width 0.5 starting at 0, 1, 2 and 3."""
    return rng.integers(0, 4, (N_ROWS, 1)) + rng.uniform(0, 0.5, (N_ROWS, 1))


SETS = {
    "checkerboard_0": lambda: checkerboard(np.random.default_rng(0)),
    "checkerboard_1": lambda: checkerboard(np.random.default_rng(1)),
    "checkerboard_2": lambda: checkerboard(np.random.default_rng(2)),
    "spiral": lambda: spiral(np.random.default_rng(0)),
    "square": lambda: np.random.default_rng(0).uniform(0, 1, (N_ROWS, 2)),
    "triangle": lambda: triangle(np.random.default_rng(0)),
    "bimodal_1d": lambda: bimodal_1d(np.random.default_rng(0)),
    "exponential_1d": lambda: np.random.default_rng(0).exponential(1, (N_ROWS, 1)),
    "uniform_1d": lambda: np.random.default_rng(0).uniform(0, 1, (N_ROWS, 1)),
    "blocks_1d": lambda: blocks_1d(np.random.default_rng(0)),
}


def measure(name: str, params: dict) -> dict:
    X = SETS[name]()
    start = time.perf_counter()
    estimator = FlowDensity(random_state=0, device="cpu", **params).fit(X[:N_TRAIN])
    scores = estimator.score_samples(X[N_TRAIN:])
    return {
        "dataset": name,
        "dims": X.shape[1],
        "params": params,
        "test_log_likelihood": float(scores.mean()),
        "standard_error": float(scores.std() / np.sqrt(scores.size)),
        "n_bins_": estimator.n_bins_,
        "best_epoch_": estimator.best_epoch_,
        "n_iter_": estimator.n_iter_,
        "fit_seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated names")
    parser.add_argument("--params", default="{}", help="FlowDensity parameters as a JSON object")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)
    params = json.loads(args.params)
    for name in args.sets.split(","):
        row = {**measure(name, params), "label": args.label}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
