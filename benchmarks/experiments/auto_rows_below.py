"""Should ``boosted_feature="auto"`` try the trees' prediction below 100 rows?

"auto" tried the trees from 100 rows (``skflow._boosted_feature.AUTO_ROWS``),
where 10% of the rows, 10 or more, validate the choice. Since fits on 40 to
104 rows hold out 10 rows for the ridge comparison
(``skflow._linear_start.comparison_validation_fraction``), the choice could
be made from 40 rows on the same 10 rows. On fewer than 100 rows every flow
was compared with a ridge regression of all the features only, which
penalizes relevant and irrelevant ones alike: on 75 rows of a target that is
one feature among 50 plus noise the default scored -1.17 nats a row, a
Gaussian around gradient boosting -1.04 (the library now tries the trees
from 40 rows). Two columns per set, size and draw: ``from_100`` and
``from_40`` (the trees tried from 100 or 40 rows), each the test
log-likelihood, 90% coverage, flows that kept the
trees and flows that kept a ridge. The sets: the seven of
:mod:`benchmarks.experiments.small_regression` (the rest of 400 rows for
testing) and the seven of :mod:`benchmarks.experiments.boosted_feature`
(2,000 test rows)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.auto_rows_below --sizes 40 60 80 \\
        --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

import skflow._boosted_feature as boosted
from benchmarks.experiments.boosted_feature import tree_friendly_sets
from benchmarks.experiments.small_regression import small_sets
from skflow import FlowRegressor
from skflow.metrics import interval_coverage

LOWS = (100, 40)


def splits(n: int, seed: int) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(name, X_train, y_train, X_test, y_test)`` of every set at ``n`` training rows, draw ``seed``."""
    for name, X, y in small_sets(seed):
        X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=n, random_state=seed)
        yield name, X_train, y_train, X_test, y_test
    for name, X, y in tree_friendly_sets(n + 2000, seed):
        yield name, X[:n], y[:n], X[n:], y[n:]


def measure(X_train, y_train, X_test, y_test, low: int | None = None, **params) -> list:
    """Test log-likelihood, 90% coverage, flows with the trees and flows that kept a ridge, of one default fit
    (with "auto" trying the trees from ``low`` rows, if given)."""
    limit = boosted.AUTO_ROWS
    if low is not None:
        boosted.AUTO_ROWS = (low, limit[1])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = FlowRegressor(random_state=0, **params).fit(X_train, y_train)
    finally:
        boosted.AUTO_ROWS = limit
    members = reg._members()
    return [
        float(reg.score_samples(X_test, y_test).mean()),
        float(interval_coverage(y_test, reg.predict_interval(X_test, 0.9))),
        sum(member.boosted_feature_ for member in members),
        sum(member.best_epoch_ == 0 for member in members),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[40, 60, 80])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for n in args.sizes:
        for seed in range(args.draws):
            for name, *split in splits(n, seed):
                record = {"set": name, "n": n, "seed": seed}
                for low in LOWS:
                    record[f"from_{low}"] = measure(*split, low=low)
                with args.out.open("a") as file:
                    file.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
