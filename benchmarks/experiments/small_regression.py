"""FlowRegressor on 40 to 80 training rows: the default against holding out 10 rows for the ridge comparison.

Below ``MIN_VALIDATION_ROWS`` validation rows a fit keeps its ridge
regression unscored (``skflow._linear_start``), so with the default
``validation_fraction=0.1`` every flow of a fit on fewer than 100 rows was
a linear model. Seven small sets (three of scikit-learn's Friedman
generators, diabetes, and three drawn here: a lognormal target, a bimodal
one and Student-t noise whose scale grows with a feature), three draws each,
the rest of 400 rows (442 for diabetes) for testing. ``default`` is
``FlowRegressor(random_state=0)`` as it was, ``ten_rows`` the same with
``validation_fraction`` raised to hold out 10 rows (what
``comparison_validation_fraction`` now does on 40 to 104 rows). The
results file's ``default`` ran on the code before that (e695b09); on later
code the library raises the fraction itself and both columns agree (and
differ from the file's where a flow keeps its ridge regression, which is
now refitted on every row: :mod:`benchmarks.experiments.refit_ridge`)::

    PYTHONPATH=. python -m benchmarks.experiments.small_regression --sizes 40 60 80 --out results.jsonl
"""

from __future__ import annotations

import argparse
import functools
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from sklearn.datasets import load_diabetes, make_friedman1, make_friedman2, make_friedman3
from sklearn.model_selection import train_test_split

from skflow import FlowRegressor


def small_sets(seed: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    X, y = make_friedman1(400, noise=1.0, random_state=seed)
    yield "friedman1", X, y
    X, y = make_friedman2(400, noise=30, random_state=seed)
    yield "friedman2", X, y
    X, y = make_friedman3(400, noise=0.1, random_state=seed)
    yield "friedman3", X, y
    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", X, y
    X = rng.normal(size=(400, 3))
    yield "lognormal", X, np.exp(X @ [0.8, -0.5, 0.3] + 0.5 * rng.normal(size=400))
    X = rng.uniform(-2, 2, (400, 2))
    y = np.where(rng.random(400) < 0.5, X[:, 0], -X[:, 0] + 2) + 0.2 * rng.normal(size=400)
    yield "bimodal", X, y
    X = rng.normal(size=(400, 4))
    yield "hetero_t", X, X[:, 0] + (0.2 + np.abs(X[:, 1])) * rng.standard_t(3, size=400)


def fit_and_score(X_train, y_train, X_test, y_test, **params) -> tuple[FlowRegressor, list]:
    """A quiet ``FlowRegressor(random_state=0, **params)`` fit, and its test log-likelihood, 90% coverage and
    the number of flows that kept the ridge regression."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0, **params).fit(X_train, y_train)
    interval = reg.predict_interval(X_test)
    covered = (y_test >= interval[:, 0]) & (y_test <= interval[:, 1])
    linear = sum(member.best_epoch_ == 0 for member in reg._members())
    return reg, [float(reg.score_samples(X_test, y_test).mean()), float(covered.mean()), linear]


def measure(X_train, y_train, X_test, y_test, validation_fraction: float) -> list:
    """Test log-likelihood, 90% coverage and the number of flows that kept the ridge regression."""
    return fit_and_score(X_train, y_train, X_test, y_test, validation_fraction=validation_fraction)[1]


Column = tuple[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], list]]


def run(argv: list[str] | None, description: str, sizes: list[int], columns: Callable[[int], list[Column]]) -> None:
    """One JSON line per size, draw and set, with a column per ``(label, measure)`` of ``columns(n_rows)``;
    ``measure(X_train, y_train, X_test, y_test)``. Shared with :mod:`benchmarks.experiments.refit_ridge`."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=sizes)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for n in args.sizes:
        for seed in range(args.draws):
            for name, X, y in small_sets(seed):
                X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=n, random_state=seed)
                record = {"set": name, "n": n, "seed": seed}
                for label, measure_split in columns(n):
                    record[label] = measure_split(X_train, y_train, X_test, y_test)
                with args.out.open("a") as file:
                    file.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)


def main(argv: list[str] | None = None) -> None:
    def columns(n: int) -> list[Column]:
        return [
            ("default", functools.partial(measure, validation_fraction=0.1)),
            ("ten_rows", functools.partial(measure, validation_fraction=max(0.1, 10.5 / n))),
        ]

    run(argv, __doc__, [40, 60, 80], columns)


if __name__ == "__main__":
    main()
