"""FlowRegressor with and without the boosted feature, on sets where trees beat an MLP, and Gaussians around trees.

Seven sets drawn here (no download), each with 300 or 1,500 training rows
and 2,000 test rows, two draws: Friedman #1 with 45 irrelevant features out
of 50, a linear target in 10 of 50 features, one-hot categories with a
numeric slope per category, steps and an interaction of two features,
heavy-tailed (t(1.5)) features, a log-normal target with a noise scale that
grows with a feature, and 20 binary features with an interaction. Per set
and method: test log-likelihood, 90% coverage and RMSE in the target's
units, and fit seconds. ``without`` is ``FlowRegressor(boosted_feature=False)``,
``default`` the default ``"auto"`` (also: how many of its five flows kept
the feature); ``hgb_gaussian`` and ``ridge_gaussian`` are Gaussians around
``HistGradientBoostingRegressor`` and ``RidgeCV``, their noise the RMS of
5-fold out-of-fold residuals::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.boosted_feature --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.datasets import make_friedman1, make_regression
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict

from skflow import FlowRegressor

from ..regression_methods import HGBGaussian


def tree_friendly_sets(n: int, seed: int) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    yield "friedman1_50", *make_friedman1(n, n_features=50, noise=1.0, random_state=seed)
    yield "linear_50", *make_regression(n, n_features=50, n_informative=10, noise=5.0, random_state=seed)
    categories, numeric = rng.integers(0, 5, (n, 3)), rng.normal(size=(n, 2))
    effect, slope = 2.0 * rng.normal(size=5), rng.normal(size=5)
    y = effect[categories[:, 0]] + slope[categories[:, 1]] * numeric[:, 0] + 0.5 * numeric[:, 1]
    one_hot = [np.eye(5)[categories[:, k]] for k in range(3)]
    yield "onehot", np.hstack([*one_hot, numeric]), y + 0.5 * rng.normal(size=n)
    X = rng.uniform(-1, 1, (n, 5))
    yield "steps", X, 3.0 * (X[:, 0] > 0) + 2.0 * ((X[:, 1] > 0.5) & (X[:, 2] < 0)) + 0.5 * rng.normal(size=n)
    X = rng.standard_t(1.5, (n, 4))
    yield "heavy_x", X, np.tanh(X[:, 0]) + np.log1p(np.abs(X[:, 1])) + 0.3 * rng.normal(size=n)
    X = rng.normal(size=(n, 8))
    noise = (0.3 + 0.3 * np.abs(X[:, 4])) * rng.normal(size=n)
    yield "hetero_lognormal", X, np.exp(X @ [0.5, -0.4, 0.3, 0.2, 0, 0, 0, 0] + noise)
    X = rng.integers(0, 2, (n, 20)).astype(float)
    yield "binary", X, X[:, :5].sum(axis=1) + 2.0 * X[:, 5] * X[:, 6] + 0.7 * rng.normal(size=n)


def flow(X, y, X_test, y_test, **params) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0, **params).fit(X, y)
    seconds = time.perf_counter() - start
    interval = reg.predict_interval(X_test)
    return {
        "ll": float(reg.score_samples(X_test, y_test).mean()),
        "cov90": float(np.mean((y_test >= interval[:, 0]) & (y_test <= interval[:, 1]))),
        "rmse": float(np.sqrt(np.mean((reg.predict(X_test) - y_test) ** 2))),
        "fit_s": round(seconds, 2),
        "boosted_flows": sum(member.boosted_feature_ for member in reg._members()),
    }


def gaussian(loc: np.ndarray, sigma: float, y_test: np.ndarray) -> dict:
    half = stats.norm.ppf(0.95) * sigma
    return {
        "ll": float(stats.norm.logpdf(y_test, loc, sigma).mean()),
        "cov90": float(np.mean(np.abs(y_test - loc) <= half)),
        "rmse": float(np.sqrt(np.mean((loc - y_test) ** 2))),
    }


def hgb_gaussian(X, y, X_test, y_test) -> dict:
    model = HGBGaussian(seed=0).fit(X, y)
    return gaussian(model.loc_scale(X_test)[0], model.sigma_[0], y_test)


def ridge_gaussian(X, y, X_test, y_test) -> dict:
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13))
    out_of_fold = cross_val_predict(ridge, X, y, cv=KFold(5, shuffle=True, random_state=0))
    return gaussian(ridge.fit(X, y).predict(X_test), float(np.sqrt(np.mean((y - out_of_fold) ** 2))), y_test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=int, default=[300, 1500])
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for n in args.sizes:
        for seed in range(args.draws):
            for name, X, y in tree_friendly_sets(n + 2000, seed):
                split = (X[:n], y[:n], X[n:], y[n:])
                record = {"set": name, "n": n, "seed": seed}
                record["without"] = flow(*split, boosted_feature=False)
                record["default"] = flow(*split)
                record["hgb_gaussian"] = hgb_gaussian(*split)
                record["ridge_gaussian"] = ridge_gaussian(*split)
                with args.out.open("a") as file:
                    file.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
