"""The lower bound that ``bounds="auto"`` infers, scored hard and soft.

``bounds="auto"`` models a positive target as ``log(y + c)`` (``c``: its smallest training value) where the trees
find the log more likely. Until the thirty-fourth session the bound ``-c`` was as hard as a declared one: a new
target at or below it scored ``-inf``. Spread that grows with the level passes the test whether or not the target
can be negative, so on such data a test set with one such row had a mean log-likelihood of ``-inf``. Now the
distribution goes on below a point between the bound and the data as an exponential tail
(:mod:`skflow._target_tails`). Each default fit here is scored both ways: as fitted (soft), and with every flow's
bound declared (hard, the old behaviour). Synthetic sets are drawn until ``--draws`` draws take the log (every
training target positive, the log more likely); the UCI sets' splits (yacht's target is taken to the log) check
that ordinary fits keep their scores::

    python -m benchmarks.experiments.soft_log_bound --draws 5 --sets yacht --splits 0 1 --out soft.jsonl
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import norm

from skflow import FlowRegressor
from skflow._fitting import draw_seed
from skflow._target_scale import log_scale_columns

from ..regression import Settings
from .split_runs import append_record, numbered_splits, with_edited_flows

TEST_ROWS = 2000


def one_feature(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One feature, spread growing from 0.1 to 2.1 (a helper's audit: 60 rows)."""
    X = rng.uniform(0, 4, (n, 1))
    mean, sd = 1 + 0.8 * X[:, 0], 0.1 + 0.5 * X[:, 0]
    return X, mean + sd * rng.normal(size=n), mean, sd


def level_spread(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Spread growing with the level, as a yield's or a concentration's (the audit: 150 rows)."""
    X = rng.uniform(-1, 1, (n, 3))
    mean = 3 + 2.0 * X[:, 0] + 0.5 * X[:, 1]
    sd = 0.15 + 0.35 * mean * (X[:, 0] > 0) + 0.1 * mean
    return X, mean + sd * rng.normal(size=n), mean, sd


DEFAULT = FlowRegressor(random_state=0)
SYNTHETIC = {"one_feature": (one_feature, 60), "level_spread": (level_spread, 150)}


def hardened(reg: FlowRegressor) -> FlowRegressor:
    """The same fit with each flow's inferred bound declared: the bound ends the support, as before."""
    return with_edited_flows(reg, lambda flow: setattr(flow, "bounds", [(float(flow.low_[0]), None)]))


def scores(reg: FlowRegressor, X: np.ndarray, y: np.ndarray) -> dict:
    log_density = reg.score_samples(X, y)
    low, high = reg.predict_interval(X, coverage=0.9).T
    finite = np.isfinite(log_density)
    return {
        "log_likelihood": float(log_density.mean()),
        "rows_at_minus_inf": int((~finite).sum()),
        "finite_rows_log_likelihood": float(log_density[finite].mean()),
        "coverage": float(np.mean((low <= y) & (y <= high))),
        "rmse": float(np.sqrt(np.mean((reg.predict(X) - y) ** 2))),
    }


def measure(X, y, X_test, y_test) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0).fit(X, y)
    record = {"low": float(reg.low_[0]), "test_rows_at_or_below_low": int((y_test <= reg.low_[0]).sum())}
    if not np.isfinite(reg.low_[0]):
        return record
    record.update({f"soft_{k}": v for k, v in scores(reg, X_test, y_test).items()})
    record.update({f"hard_{k}": v for k, v in scores(hardened(reg), X_test, y_test).items()})
    # Where the two differ: the rows the hard bound rules out, and the rest (identical above the splice point).
    soft, hard = reg.score_samples(X_test, y_test), hardened(reg).score_samples(X_test, y_test)
    ruled_out = ~np.isfinite(hard)
    record["soft_ruled_out_rows_log_likelihood"] = float(soft[ruled_out].mean()) if ruled_out.any() else None
    record["largest_change_on_other_rows"] = float(np.abs(soft - hard)[~ruled_out].max())
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=5, help="draws of each synthetic set with positive targets")
    parser.add_argument("--sets", nargs="*", default=[], help="UCI sets, scored on --splits")
    parser.add_argument("--splits", nargs="+", type=int, default=[0])
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name, (generate, rows) in SYNTHETIC.items():
        found = 0
        for seed in range(1000):
            if found == args.draws:
                break
            rng = np.random.default_rng(seed)
            X, y, _, _ = generate(rows, rng)
            # Only the draws whose fit takes the log (the test, with the seed the fit draws) tell anything.
            if not log_scale_columns(DEFAULT, X, y[:, None], np.ones(rows), draw_seed(DEFAULT))[0]:
                continue
            found += 1
            X_test, y_test, mean, sd = generate(TEST_ROWS, rng)
            record = {"set": name, "seed": seed, "n": rows, **measure(X, y, X_test, y_test)}
            record["true_log_likelihood"] = float(norm.logpdf(y_test, mean, sd).mean())
            append_record(args.out, record)
    for name, split in numbered_splits(args):
        record = {"set": name, "split": split.index, "n": len(split.y_train)}
        append_record(args.out, {**record, **measure(split.X_train, split.y_train, split.X_test, split.y_test)})


if __name__ == "__main__":
    main()
