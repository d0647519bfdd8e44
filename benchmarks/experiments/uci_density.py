"""Real mid-sized data for FlowDensity: the joint density of a UCI regression set's columns.

The nine UCI sets of ``benchmarks/regression.py`` (``--data-dir``, read by
path, nothing copied) are also real multivariate data: features and target
together, 5 to 17 columns after dropping constant ones, 300 to 46,000 rows.
Protocol of ``benchmarks/density.py``: 80/20 split (``random_state=0``),
standardized with the training part's statistics, held-out mean
log-likelihood in standardized units. One JSON line per fit::

    python -m benchmarks.experiments.uci_density --data-dir ../shared/data/uci \\
        --sets power-plant kin8nm --params '{"flow": "spline"}' --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skflow import FlowDensity


def load_columns(data_dir: Path, name: str) -> np.ndarray:
    """Every non-constant column of the set's ``data.txt`` (features and target)."""
    X = np.loadtxt(data_dir / name / "data.txt")
    return X[:, X.std(axis=0) > 0]


def measure(data_dir: Path, name: str, params: dict) -> dict:
    train, test = train_test_split(load_columns(data_dir, name), test_size=0.2, random_state=0)
    scaler = StandardScaler().fit(train)
    train, test = scaler.transform(train), scaler.transform(test)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = FlowDensity(random_state=0, device="cpu", **params).fit(train)
    return {
        "dataset": name,
        "shape": list(train.shape),
        "params": params,
        "flow_kind_": estimator.flow_kind_,
        "test_log_likelihood": float(estimator.score(test)),
        "fit_seconds": round(time.perf_counter() - started, 1),
        "best_epoch_": int(estimator.best_epoch_),
        "n_iter_": int(estimator.n_iter_),
        "max_epochs_": int(estimator.max_epochs_),
        "n_components_": int(estimator.n_components_),
        "degrees_of_freedom": estimator.flow_.config["base"].get("degrees_of_freedom"),  # None: Gaussian components
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the folder of the UCI sets")
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--params", default="{}", help="FlowDensity parameters as a JSON object")
    parser.add_argument("--out", required=True, help="JSON lines, appended")
    args = parser.parse_args(argv)
    for name in args.sets:
        row = measure(args.data_dir, name, json.loads(args.params))
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as handle:
            handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
