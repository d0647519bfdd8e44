"""Targets that pile against an edge they need not have: below a ceiling, of both signs, or above a floor not 0.

``bounds="auto"`` tests such a target on the shifted log on the side it
leans to (``skflow._target_scale``, docs/regression_design_notes.md, "Skewed
targets of any sign"). Before, these targets kept ``y``, exactly as
``bounds=None`` keeps it, except ``right_positive`` (positive, so ``log(y + c)``
was tested): ``no_shift`` is "auto" without the shifted log, the earlier rule
on every set; ``declared`` gives the generator's edge by hand;
``--edge-margin`` sets ``skflow._target_scale.EDGE_MARGIN`` for "auto". Each
set has a known ``p(y | x)``, so the gap to the truth is reported too.
``right_both_signs`` is ``left_lognormal``'s mirror image, shifted: the same
draws, so its fits differ from that set's only by the flows' own asymmetry::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.skewed_targets --rows 100 300 --draws 0 1 2 \\
        --methods auto none --out benchmarks/results/experiment_skewed_targets_2026-12-07.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.skewed_targets --sets right_positive \\
        --rows 100 300 --draws 0 1 2 --methods auto no_shift --out ...
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats

import skflow._target_scale as target_scale
from skflow import FlowRegressor

TEST_ROWS = 2000
METHODS = ("auto", "no_shift", "none", "declared")


def _location(X: np.ndarray, name: str) -> np.ndarray:
    return 0.3 * X[:, 0] + 0.2 * X[:, 1] if name == "left_positive" else 0.5 * X[:, 0] + 0.3 * X[:, 1]


# name: (edge, side, log-scale spread): y = edge + side * exp(location(x) + spread * N(0, 1)).
SETS: dict[str, tuple[float, int, float]] = {
    "left_lognormal": (10.0, -1, 0.6),  # 10 - lognormal: below 10, positive on almost every row
    "left_positive": (10.0, -1, 0.5),  # milder, positive
    "right_both_signs": (-1.5, 1, 0.6),  # lognormal - 1.5: about 70% negative
    "right_positive": (5.0, 1, 0.6),  # a shifted log-normal, 5 + lognormal: its edge is not 0
}


def make(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Callable]:
    """``n`` rows of set ``name`` (three features, the third noise) and its true ``log p(y | x)``."""
    edge, side, spread = SETS[name]
    X = rng.uniform(-2, 2, size=(n, 3))
    y = edge + side * np.exp(_location(X, name) + spread * rng.normal(size=n))

    def log_density(X: np.ndarray, y: np.ndarray) -> np.ndarray:
        distance = side * (y - edge)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_distance = np.log(np.where(distance > 0, distance, np.nan))
            logs = stats.norm.logpdf(log_distance, _location(X, name), spread) - log_distance
        return np.where(distance > 0, logs, -np.inf)

    return X, y, log_density


def run(name: str, rows: int, draw: int, method: str) -> dict:
    rng = np.random.default_rng(1000 * draw + rows)
    X, y, log_density = make(name, rows + TEST_ROWS, rng)
    X_test, y_test, X, y = X[rows:], y[rows:], X[:rows], y[:rows]
    edge, side, _ = SETS[name]
    bounds = {"auto": "auto", "no_shift": "auto", "none": None}.get(method, (edge, None) if side > 0 else (None, edge))
    skewed_target = target_scale.SKEWED_TARGET
    if method == "no_shift":  # the rules before the shifted log: log(y + c), its mirror image, the logit
        target_scale.SKEWED_TARGET = np.inf
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = FlowRegressor(bounds=bounds, random_state=draw).fit(X, y)
    finally:
        target_scale.SKEWED_TARGET = skewed_target
    fit_seconds = time.perf_counter() - start
    scores = model.score_samples(X_test, y_test)
    low, high = model.predict_interval(X_test, 0.9).T
    truth = float(np.mean(log_density(X_test, y_test)))
    return dict(
        set=name,
        rows=rows,
        draw=draw,
        method=method,
        edge_margin=target_scale.EDGE_MARGIN if method == "auto" else None,
        truth=truth,
        test_ll=float(np.mean(scores)),
        gap=truth - float(np.mean(scores)),
        worst=float(scores.min()),
        coverage=float(np.mean((y_test >= low) & (y_test <= high))),
        low=float(model.low_[0]),
        high=float(model.high_[0]),
        fit_seconds=fit_seconds,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--rows", nargs="+", type=int, default=[300])
    parser.add_argument("--draws", nargs="+", type=int, default=[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--edge-margin", type=float, default=target_scale.EDGE_MARGIN)
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)
    target_scale.EDGE_MARGIN = args.edge_margin
    torch.set_num_threads(1)
    for rows in args.rows:
        for name in args.sets:
            for draw in args.draws:
                for method in args.methods:
                    record = run(name, rows, draw, method)
                    print(json.dumps(record), flush=True)
                    with open(args.out, "a") as out:
                        out.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
