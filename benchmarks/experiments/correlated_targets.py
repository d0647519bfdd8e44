"""Several targets whose noise is correlated: how close does the default ``FlowRegressor`` come to the truth?

Two sources of data:

- ``linnerud``: scikit-learn's 20 rows of three exercise counts and three body measurements (the measurements
  are the targets). Five-fold cross-validation repeated ``--repeats`` times; every row is scored once a repeat.
- ``linear2``, ``linear3``: ``y = A x + e`` with 4 features and 2 or 3 targets whose noise has correlation
  ``CORRELATION`` between every pair; ``--rows`` training rows a draw and 2,000 test rows, scored against the
  true conditional density.
- ``sine2``, ``sine3``: the same noise around a mean with a sine of one feature per target.

Beside the default, a full-covariance Gaussian is scored as the reference: around scikit-learn's ``RidgeCV`` (the
noise covariance from the training residuals), the model a multi-output linear regression gives, and for the
sines around one ``HistGradientBoostingRegressor`` per target (covariance of out-of-fold residuals)::

    python -m benchmarks.experiments.correlated_targets --rows 20 40 80 200 --draws 0 1 2 --out corr.jsonl
    python -m benchmarks.experiments.correlated_targets --kinds sine --rows 200 500 1000 --out sine.jsonl

``--chain`` also scores the chain rule of one default single-target regressor per target, ``p(y_1 | x)
p(y_2 | x, y_1)``: on ``sine2``, 500 rows, it scored -2.206 and -2.242 where the joint flow scored -2.054
and -2.090 (draws 0 and 1), so the joint flow stays.

Run it on two versions of skflow (``PYTHONPATH`` to a checkout) to compare them.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import multivariate_normal
from sklearn.datasets import load_linnerud
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import RepeatedKFold, cross_val_predict

from skflow import FlowRegressor

from .split_runs import append_record

CORRELATION, TEST_ROWS = 0.8, 2000


def correlated_targets(
    n: int, n_targets: int, rng: np.random.Generator, nonlinear: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, true log-density of each row)`` of the correlated model (fixed coefficients): means linear in
    the 4 features, or with ``nonlinear`` each target's mean a sine of its own feature plus a linear part."""
    coefficients = np.random.default_rng(1234).normal(size=(4, n_targets))
    covariance = np.full((n_targets, n_targets), CORRELATION) + (1 - CORRELATION) * np.eye(n_targets)
    covariance *= np.outer(np.arange(1, n_targets + 1), np.arange(1, n_targets + 1)) * 0.25
    X = rng.normal(size=(n, 4))
    mean = X @ coefficients
    if nonlinear:
        mean = 0.3 * mean + 2 * np.sin(2 * X[:, :n_targets])
    noise = rng.multivariate_normal(np.zeros(n_targets), covariance, size=n)
    truth = multivariate_normal(np.zeros(n_targets), covariance).logpdf(noise)
    return X, mean + noise, truth


def gaussian_ridge(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Test log-densities under ``N(ridge(x), Sigma)``, ``Sigma`` the training residuals' covariance (with the
    degrees of freedom the fit used)."""
    ridge = RidgeCV(alphas=np.logspace(-6, 2, 33)).fit(X, y)
    residuals = y - ridge.predict(X)
    covariance = residuals.T @ residuals / max(len(y) - X.shape[1] - 1, 1)
    return multivariate_normal(np.zeros(y.shape[1]), covariance).logpdf(y_test - ridge.predict(X_test))


def gaussian_trees(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Test log-densities under ``N(trees(x), Sigma)``: one ``HistGradientBoostingRegressor`` per target,
    ``Sigma`` the covariance of their 5-fold out-of-fold residuals."""
    residuals, means = np.empty_like(y), np.empty_like(y_test)
    for j in range(y.shape[1]):
        trees = HistGradientBoostingRegressor(random_state=0)
        residuals[:, j] = y[:, j] - cross_val_predict(trees, X, y[:, j], cv=5)
        means[:, j] = trees.fit(X, y[:, j]).predict(X_test)
    covariance = residuals.T @ residuals / len(y)
    return multivariate_normal(np.zeros(y.shape[1]), covariance).logpdf(y_test - means)


def chain_scores(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Test log-densities of the chain rule with one default single-target regressor per target:
    ``p(y_1 | x) p(y_2 | x, y_1) ...``."""
    total = np.zeros(len(y_test))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(y.shape[1]):
            reg = FlowRegressor(random_state=0).fit(np.c_[X, y[:, :j]], y[:, j])
            total += reg.score_samples(np.c_[X_test, y_test[:, :j]], y_test[:, j])
    return total


def flow_scores(X, y, X_test, y_test) -> tuple[np.ndarray, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        reg = FlowRegressor(random_state=0).fit(X, y)
        return reg.score_samples(X_test, y_test), time.perf_counter() - start


def linnerud(repeats: int) -> dict:
    X, y = load_linnerud(return_X_y=True)
    flow, ridge, seconds = [], [], 0.0
    for train, test in RepeatedKFold(n_splits=5, n_repeats=repeats, random_state=0).split(X):
        scores, spent = flow_scores(X[train], y[train], X[test], y[test])
        flow.append(scores)
        ridge.append(gaussian_ridge(X[train], y[train], X[test], y[test]))
        seconds += spent
    return {
        "data": "linnerud",
        "flow": float(np.concatenate(flow).mean()),
        "ridge_full_covariance": float(np.concatenate(ridge).mean()),
        "seconds": seconds,
    }


def synthetic(n_targets: int, rows: int, draw: int, nonlinear: bool, chain: bool = False) -> dict:
    rng = np.random.default_rng(draw)
    X, y, _ = correlated_targets(rows, n_targets, rng, nonlinear)
    X_test, y_test, truth = correlated_targets(TEST_ROWS, n_targets, rng, nonlinear)
    scores, seconds = flow_scores(X, y, X_test, y_test)
    reference = gaussian_trees if nonlinear else gaussian_ridge
    return {
        "data": f"{'sine' if nonlinear else 'linear'}{n_targets}",
        "rows": rows,
        "draw": draw,
        "truth": float(truth.mean()),
        "flow": float(scores.mean()),
        f"{'trees' if nonlinear else 'ridge'}_full_covariance": float(reference(X, y, X_test, y_test).mean()),
        "seconds": seconds,
        **({"chain": float(chain_scores(X, y, X_test, y_test).mean())} if chain else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[20, 40, 80, 200])
    parser.add_argument("--draws", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--kinds", nargs="+", default=["linnerud", "linear"], choices=["linnerud", "linear", "sine"])
    parser.add_argument("--targets", nargs="+", type=int, default=[2, 3])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chain", action="store_true", help="also score the chain of single-target regressors")
    args = parser.parse_args()
    if "linnerud" in args.kinds:
        append_record(args.out, linnerud(args.repeats))
    for kind in {"linear", "sine"} & set(args.kinds):
        for n_targets in args.targets:
            for rows in args.rows:
                for draw in args.draws:
                    append_record(args.out, synthetic(n_targets, rows, draw, kind == "sine", args.chain))


if __name__ == "__main__":
    main()
