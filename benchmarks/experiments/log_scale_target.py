"""Positive targets on the log scale: when do flows fitted to ``log y`` beat flows fitted to ``y``?

Two parts, one JSON line per fit pair (test log-likelihood in the units of ``y``):

- ``--uci SET ...``: the default ``FlowRegressor(random_state=0)`` fitted to
  ``log y`` of a UCI set's standard splits, scored with the log's Jacobian,
  against the benchmark's default row for the same split
  (``benchmarks/results/regression.json``, fitted to ``y``). Its trees see
  ``log y`` as well, as under ``bounds="auto"``. ``gain`` is
  :func:`skflow._target_scale.log_scale_gains` of the training rows (seed 0).
  The first results (``experiment_log_scale_2026-12-06.jsonl``) came from an
  earlier version whose gain was a ridge regression's; their records say so.
- ``--synthetic``: positive synthetic targets drawn here (a Gamma GLM, a
  heteroscedastic log-normal, ``exp(x)`` plus additive noise, truncated
  positive), ``bounds="auto"`` against ``bounds=None``, with the true
  conditional log-likelihood of the test rows.

::

    PYTHONPATH=. python -m benchmarks.experiments.log_scale_target --uci yacht --splits 4 --out r.jsonl
    PYTHONPATH=. python -m benchmarks.experiments.log_scale_target --synthetic --seeds 0 1 2 --out r.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from skflow import FlowRegressor
from skflow._target_scale import log_scale_gains

from ..regression import Settings, splits_of
from .split_runs import append_record

BENCHMARK = Path(__file__).parents[1] / "results" / "regression.json"
TEST_ROWS = 2000


def _fit_and_score(X_train, y_train, X_test, y_test, **params) -> tuple[np.ndarray, float, FlowRegressor]:
    """Test log-densities, 90% coverage and the model of a quiet default fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=0, **params).fit(X_train, y_train)
    interval = model.predict_interval(X_test)
    covered = (y_test >= interval[:, 0]) & (y_test <= interval[:, 1])
    return model.score_samples(X_test, y_test), float(covered.mean()), model


def uci(names: list[str], n_splits: int, out: Path, data_dir: str) -> None:
    results = json.loads(BENCHMARK.read_text())["results"]
    for name in names:
        default = {
            row["split"]: row
            for entry in results
            if entry["dataset"] == name and entry["method"] == "flow"
            for row in entry["per_split"]
        }
        for split in splits_of(name, Settings(False, data_dir=data_dir, max_splits=n_splits)):
            started = time.perf_counter()
            log_density, coverage, _ = _fit_and_score(
                split.X_train, np.log(split.y_train), split.X_test, np.log(split.y_test), bounds=None
            )
            record = dict(
                set=name,
                split=split.index,
                gain=float(log_scale_gains(split.X_train, split.y_train[:, None], np.ones(len(split.y_train)), 0)[0]),
                y=default[split.index]["log_likelihood"],
                y_coverage=default[split.index]["coverage90"],
                log_y=float((log_density - np.log(split.y_test)).mean()),
                log_y_coverage=coverage,
                seconds=time.perf_counter() - started,
            )
            append_record(out, record)


def gamma_glm(n: int, rng: np.random.Generator):
    X = rng.normal(size=(n, 3))
    scale = np.exp(X @ [0.6, -0.4, 0.2])
    y = rng.gamma(2.0, scale)
    return X, y, stats.gamma.logpdf(y, 2.0, scale=scale)


def lognormal_hetero(n: int, rng: np.random.Generator):
    X = rng.normal(size=(n, 3))
    spread = 0.2 + 0.3 * np.abs(X[:, 1])
    y = np.exp(np.sin(X[:, 0]) + spread * rng.normal(size=n))
    return X, y, stats.norm.logpdf(np.log(y), np.sin(X[:, 0]), spread) - np.log(y)


def exp_mean_additive(n: int, rng: np.random.Generator):
    """``exp(x_0)`` plus N(0, 0.3^2) noise, kept where positive: additive noise, where the log is wrong."""
    X = rng.uniform(-2, 2, (2 * n, 2))
    mean = np.exp(X[:, 0])
    y = mean + 0.3 * rng.normal(size=len(mean))
    keep = np.flatnonzero(y > 0)[:n]
    X, y, mean = X[keep], y[keep], mean[keep]
    return X, y, stats.norm.logpdf(y, mean, 0.3) - stats.norm.logsf(0, mean, 0.3)


SYNTHETIC = {f.__name__: f for f in (gamma_glm, lognormal_hetero, exp_mean_additive)}


def synthetic(names: list[str], sizes: list[int], seeds: list[int], out: Path) -> None:
    for seed in seeds:
        for name in names:
            for n in sizes:
                X, y, truth = SYNTHETIC[name](n + TEST_ROWS, np.random.default_rng(seed))
                record = dict(set=name, n=n, seed=seed, truth=float(truth[n:].mean()))
                record["gain"] = float(log_scale_gains(X[:n], y[:n, None], np.ones(n), 0)[0])
                for bounds in ("auto", None):
                    log_density, coverage, model = _fit_and_score(X[:n], y[:n], X[n:], y[n:], bounds=bounds)
                    record[str(bounds)], record[f"{bounds}_coverage"] = float(log_density.mean()), coverage
                    record[f"low_{bounds}"] = float(model.low_[0])
                    if bounds == "auto" and model.low_[0] == -np.inf:  # no log: the same fit as bounds=None
                        record["None"], record["None_coverage"] = record["auto"], coverage
                        break
                append_record(out, record)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uci", nargs="+", default=[])
    parser.add_argument("--splits", type=int, default=4)
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--synthetic", nargs="*", choices=sorted(SYNTHETIC))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.uci:
        uci(args.uci, args.splits, args.out, args.data_dir)
    if args.synthetic is not None:
        synthetic(args.synthetic or sorted(SYNTHETIC), args.sizes, args.seeds, args.out)


if __name__ == "__main__":
    main()
