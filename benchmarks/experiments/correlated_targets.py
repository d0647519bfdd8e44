"""Several targets whose noise is correlated: how close does the default ``FlowRegressor`` come to the truth?

Two sources of data:

- ``linnerud``: scikit-learn's 20 rows of three exercise counts and three body measurements (the measurements
  are the targets). Five-fold cross-validation repeated ``--repeats`` times; every row is scored once a repeat.
- ``linear2``, ``linear3``: ``y = A x + e`` with 4 features and 2 or 3 targets whose noise has correlation
  ``CORRELATION`` between every pair; ``--rows`` training rows a draw and 2,000 test rows, scored against the
  true conditional density.

Beside the default, a full-covariance Gaussian around scikit-learn's ``RidgeCV`` (the noise covariance from the
training residuals) is scored as the reference a multi-output linear model gives::

    python -m benchmarks.experiments.correlated_targets --rows 20 40 80 200 --draws 0 1 2 --out corr.jsonl

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
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import RepeatedKFold

from skflow import FlowRegressor

from .split_runs import append_record

CORRELATION, TEST_ROWS = 0.8, 2000


def linear_targets(n: int, n_targets: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, true log-density of each row)`` of the correlated linear model (fixed coefficients)."""
    coefficients = np.random.default_rng(1234).normal(size=(4, n_targets))
    covariance = np.full((n_targets, n_targets), CORRELATION) + (1 - CORRELATION) * np.eye(n_targets)
    covariance *= np.outer(np.arange(1, n_targets + 1), np.arange(1, n_targets + 1)) * 0.25
    X = rng.normal(size=(n, 4))
    noise = rng.multivariate_normal(np.zeros(n_targets), covariance, size=n)
    truth = multivariate_normal(np.zeros(n_targets), covariance).logpdf(noise)
    return X, X @ coefficients + noise, truth


def gaussian_ridge(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Test log-densities under ``N(ridge(x), Sigma)``, ``Sigma`` the training residuals' covariance (with the
    degrees of freedom the fit used)."""
    ridge = RidgeCV(alphas=np.logspace(-6, 2, 33)).fit(X, y)
    residuals = y - ridge.predict(X)
    covariance = residuals.T @ residuals / max(len(y) - X.shape[1] - 1, 1)
    return multivariate_normal(np.zeros(y.shape[1]), covariance).logpdf(y_test - ridge.predict(X_test))


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


def linear(n_targets: int, rows: int, draw: int) -> dict:
    rng = np.random.default_rng(draw)
    X, y, _ = linear_targets(rows, n_targets, rng)
    X_test, y_test, truth = linear_targets(TEST_ROWS, n_targets, rng)
    scores, seconds = flow_scores(X, y, X_test, y_test)
    return {
        "data": f"linear{n_targets}",
        "rows": rows,
        "draw": draw,
        "truth": float(truth.mean()),
        "flow": float(scores.mean()),
        "ridge_full_covariance": float(gaussian_ridge(X, y, X_test, y_test).mean()),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", type=int, default=[20, 40, 80, 200])
    parser.add_argument("--draws", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    append_record(args.out, linnerud(args.repeats))
    for n_targets in (2, 3):
        for rows in args.rows:
            for draw in args.draws:
                append_record(args.out, linear(n_targets, rows, draw))


if __name__ == "__main__":
    main()
