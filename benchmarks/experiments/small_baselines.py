"""The default regressor on 60 to 300 rows against three Gaussian baselines, on the seven small sets.

The flow's test log-likelihood is the default's from
``benchmarks/results/experiment_choice_rules_2026-12-06.jsonl`` (the same
sets, sizes, draws and test rows: :mod:`benchmarks.experiments.small_regression`);
the baselines are fitted here on the standardized target, their densities
mapped back to its units:

- ``ridge``: ``RidgeCV`` (13 penalties) and one noise level, the RMS of its 5-fold out-of-fold residuals;
- ``hgb``: ``HistGradientBoostingRegressor`` defaults, its noise level likewise;
- ``ngboost``: ``NGBRegressor`` defaults (Normal; needs ``pip install ngboost``).

::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.small_baselines --out results.json
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_predict, train_test_split

from .small_regression import small_sets

FLOW_RESULTS = Path(__file__).parents[1] / "results" / "experiment_choice_rules_2026-12-06.jsonl"
SIZES = (60, 100, 200, 300)
DRAWS = 3


def gaussian_around(model, X_train, z, X_test) -> tuple[np.ndarray, float]:
    """The model's test predictions and its out-of-fold RMS residual, in standardized target units."""
    residuals = z - cross_val_predict(model, X_train, z, cv=5)
    return model.fit(X_train, z).predict(X_test), float(np.sqrt(np.mean(residuals**2)))


def baselines(X_train, y_train, X_test, y_test) -> dict[str, float]:
    from ngboost import NGBRegressor

    location, scale = X_train.mean(0), X_train.std(0) + 1e-12
    X_train, X_test = (X_train - location) / scale, (X_test - location) / scale
    y_location, y_scale = y_train.mean(), y_train.std()
    z = (y_train - y_location) / y_scale

    def log_likelihood(mean, sd) -> float:
        return float(np.mean(stats.norm.logpdf(y_test, y_location + y_scale * mean, y_scale * sd)))

    scores = {
        "ridge": log_likelihood(*gaussian_around(RidgeCV(alphas=np.logspace(-3, 3, 13)), X_train, z, X_test)),
        "hgb": log_likelihood(*gaussian_around(HistGradientBoostingRegressor(), X_train, z, X_test)),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distribution = NGBRegressor(verbose=False, random_state=0).fit(X_train, z).pred_dist(X_test)
    scores["ngboost"] = log_likelihood(distribution.params["loc"], distribution.params["scale"])
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    flow = {}
    for line in FLOW_RESULTS.read_text().splitlines():
        record = json.loads(line)
        flow[record["set"], record["n"], record["split"]] = record["default"]
    results = []
    for n in SIZES:
        for seed in range(DRAWS):
            for name, X, y in small_sets(seed):
                X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=n, random_state=seed)
                record = {"set": name, "n": n, "seed": seed, **baselines(X_train, y_train, X_test, y_test)}
                record["flow"] = flow[name, n, seed]
                results.append(record)
                print(json.dumps(record), flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
