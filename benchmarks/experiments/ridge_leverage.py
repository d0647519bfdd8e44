"""A kept ridge regression's variance with and without its leverage (``skflow._linear_start._ridge``).

The default ``FlowRegressor(random_state=draw)`` fitted on a few rows of
``load_diabetes`` and Friedman #1 (10 features, noise 1), and of Friedman #1
with 45 more noise features, scored on the other rows (test log-likelihood
and 90% coverage). ``with`` is the library's model, ``N(W x + b, sigma^2 (1 +
h(x)))``; ``without`` the model before it, ``N(W x + b, s^2)`` with ``s^2``
the mean square leave-one-out residual: the same fits, patched. Only the
flows that keep their ridge regression differ (on fewer than 40 rows every
one)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.ridge_leverage --out results.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes, make_friedman1

import skflow._linear_start as linear_start
from skflow import FlowRegressor

from .split_runs import append_record

# (set, training rows, draws)
DEFAULT_RUNS = [
    *((name, rows, 8) for name in ("diabetes", "friedman1") for rows in (10, 20, 40)),
    *(("friedman50", rows, 4) for rows in (60, 100)),
]


def rows_of(name: str, draw: int) -> tuple[np.ndarray, np.ndarray]:
    if name == "diabetes":
        return load_diabetes(return_X_y=True)
    if name == "friedman1":
        return make_friedman1(442, noise=1.0, random_state=draw)
    return make_friedman1(500, n_features=50, noise=1.0, random_state=draw)


@contextlib.contextmanager
def without_leverage() -> Iterator[None]:
    """The ridge's model as it was: no leverage, its noise the mean square leave-one-out residual."""
    ridge = linear_start._ridge

    def plain(*args):
        weight, bias, log_scale, left_out, leverage, mean_leverage = ridge(*args)
        flat = linear_start.Leverage(leverage.center, np.zeros_like(leverage.matrix), 0.0)
        return weight, bias, log_scale + 0.5 * np.log1p(mean_leverage), left_out, flat, 0.0

    linear_start._ridge = plain
    try:
        yield
    finally:
        linear_start._ridge = ridge


def fit_and_score(name: str, n_rows: int, draw: int, patch: contextlib.AbstractContextManager, settings: dict) -> dict:
    """The default regressor (with ``settings``) fitted on ``n_rows`` rows of ``name`` inside ``patch``, scored on
    the other rows."""
    X, y = rows_of(name, draw)
    index = np.random.default_rng(100 + draw).permutation(len(X))
    train, test = index[:n_rows], index[n_rows:]
    start = time.perf_counter()
    with warnings.catch_warnings(), patch:
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=draw, **settings).fit(X[train], y[train])
    low, high = model.predict_interval(X[test]).T
    return {
        "set": name,
        "rows": n_rows,
        "draw": draw,
        "test_ll": float(model.score_samples(X[test], y[test]).mean()),
        "coverage_90": float(np.mean((low <= y[test]) & (y[test] <= high))),
        "ridges_kept": sum(int(member.best_epoch_ == 0) for member in model._members()),
        "fit_seconds": time.perf_counter() - start,
    }


def measure(name: str, n_rows: int, draw: int, leverage: bool, settings: dict) -> dict:
    patch = contextlib.nullcontext() if leverage else without_leverage()
    return {**fit_and_score(name, n_rows, draw, patch, settings), "leverage": leverage}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=None, help="only these sets")
    parser.add_argument("--rows", type=int, nargs="+", default=None, help="only these numbers of training rows")
    parser.add_argument("--quick", action="store_true", help="one draw of 12 diabetes rows")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = [("diabetes", 12, 1)] if args.quick else DEFAULT_RUNS
    for name, n_rows, draws in runs:
        if (args.sets and name not in args.sets) or (args.rows and n_rows not in args.rows):
            continue
        for draw in range(draws):
            for leverage in (False, True):
                record = measure(name, n_rows, draw, leverage, {})
                if args.out is None:
                    print(record, flush=True)
                else:
                    append_record(args.out, record)


if __name__ == "__main__":
    main()
