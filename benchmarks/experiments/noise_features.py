"""Features that carry no information: what they cost the default regressor, and two remedies that did not work.

A skewed, heteroscedastic target, ``y = 2 sin(x_0) + x_1^2 + (0.3 + |x_2|) G``
with ``G ~ Gamma(2, 1)``, whose density depends on three standard-normal
features, with the rest of ``--features`` pure noise; 2,000 test rows. Gap:
the true conditional log-likelihood minus the model's, nats a row. Variants
of the default ``FlowRegressor(random_state=0)``:

- ``default``, ``w64`` / ``w32`` (conditioners of that width instead of "auto"'s), ``wd1e-2`` (``weight_decay``);
- ``relevant``: the three informative features alone (an oracle);
- ``trees``: two features only, gradient-boosted trees' out-of-fold predictions of the mean and of the log
  squared residual (five folds; on the test rows, the trees fitted on every training row);
- ``selected``: the features whose share of a ``HistGradientBoostingRegressor``'s split gain is at least half
  of an equal share;
- ``relevance``: every feature, each standardized one divided by a relevance, its gain share over the largest
  (at least 0.05): features the trees hardly use move the conditioners' inputs little, so the flow learns
  from them slowly (Adam's steps are about the same size for every weight);
- ``relevance_spread``: the same with the larger of two relevances, the mean's trees' and those of trees
  fitted to the log squared out-of-fold residual (the features that move the spread);
- ``library_auto``: ``FlowRegressor(relevance_scaling="auto")``, the library's version: relevance from the
  boosted trees' fold models, each flow choosing between its trainings as given and scaled.

``--uci SET`` runs ``--variants`` on a UCI set's standard splits (``--draws`` are the split numbers)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.noise_features --rows 3500 --features 30 \\
        --draws 0 1 --variants default w32 relevant --out results.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.noise_features --uci bostonHousing \\
        --draws 0 1 2 3 --out results.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import cross_val_predict

import skflow.regressor as regressor_module
from skflow import FlowRegressor
from skflow._feature_relevance import summed_split_gains

from ..regression import Settings, splits_of
from .split_runs import append_record, split_parser

VARIANTS = {
    "default": {},
    "w64": {"hidden_units": (64, 64)},
    "w32": {"hidden_units": (32, 32)},
    "wd1e-2": {"weight_decay": 1e-2},
    "relevant": {},
    "selected": {},
    "trees": {},
    "relevance": {},
    "relevance_spread": {},
    "library_auto": {"relevance_scaling": "auto"},
}
N_TEST = 2000


def noisy_features_set(n_rows: int, n_features: int, seed: int):
    """Training and test rows, and the test rows' mean true log-likelihood."""
    rng = np.random.default_rng(seed)
    n = n_rows + N_TEST
    X = rng.normal(size=(n, n_features))
    location, scale = 2 * np.sin(X[:, 0]) + X[:, 1] ** 2, 0.3 + np.abs(X[:, 2])
    y = location + scale * rng.gamma(2, size=n)
    test = slice(n_rows, None)
    true = stats.gamma.logpdf((y[test] - location[test]) / scale[test], 2) - np.log(scale[test])
    return X[:n_rows], y[:n_rows], X[test], y[test], float(true.mean())


def sets_or_noise_parser(description: str) -> argparse.ArgumentParser:
    """``split_parser``'s options with ``--sets`` optional, ``--noise`` (training rows of this module's set, one
    run each) and ``--draws`` (its seeds)."""
    parser = split_parser(description)
    parser.set_defaults(sets=[])
    parser._actions[[a.dest for a in parser._actions].index("sets")].required = False
    parser.add_argument("--noise", nargs="*", type=int, default=[], help="rows of noise_features' set")
    parser.add_argument("--draws", nargs="+", type=int, default=[0])
    return parser


def gain_shares(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each feature's share of the split gain of a default ``HistGradientBoostingRegressor`` fitted to (X, y)."""
    gain = summed_split_gains(HistGradientBoostingRegressor(random_state=0).fit(X, y), X.shape[1])
    return gain / gain.sum()


def selected_columns(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.flatnonzero(gain_shares(X, y) >= 0.5 / X.shape[1])


def tree_summaries(X_train, y_train, X_test) -> tuple[np.ndarray, np.ndarray]:
    """The trees' predicted mean and log squared residual: out of fold on the training rows."""

    def fitted(target):
        trees = HistGradientBoostingRegressor()
        return cross_val_predict(trees, X_train, target, cv=5), trees.fit(X_train, target).predict(X_test)

    mean_train, mean_test = fitted(y_train)
    spread_train, spread_test = fitted(np.log((y_train - mean_train) ** 2 + 1e-6 * np.var(y_train)))
    return np.c_[mean_train, spread_train], np.c_[mean_test, spread_test]


def relevance(X: np.ndarray, y: np.ndarray, spread: bool) -> np.ndarray:
    """Each feature's gain share over the largest, or the larger of the mean's and the spread's (``spread``)."""
    shares = gain_shares(X, y)
    shares = shares / shares.max()
    if spread:
        residual = y - cross_val_predict(HistGradientBoostingRegressor(), X, y, cv=5)
        spread_shares = gain_shares(X, np.log(residual**2 + 1e-6 * np.var(y)))
        shares = np.maximum(shares, spread_shares / spread_shares.max())
    return np.clip(shares, 0.05, 1.0)


@contextlib.contextmanager
def context_divided_by(weights: np.ndarray | None):
    """The regressor's standardized features divided by ``weights`` (its boosted trees' column unchanged), in
    place of the library's own relevance."""
    original = regressor_module.context_scaling

    def scaling(X, sample_weight, relevance=None, log_shifts=None):
        return original(X, sample_weight, weights, log_shifts)

    if weights is not None:
        regressor_module.context_scaling = scaling
    try:
        yield
    finally:
        regressor_module.context_scaling = original


def test_log_likelihood(variant: str, X_train, y_train, X_test, y_test) -> tuple[float, float]:
    """Mean test log-likelihood and 90% coverage of the variant's fit."""
    if variant == "trees":
        X_train, X_test = tree_summaries(X_train, y_train, X_test)
    columns = {"relevant": np.arange(3), "selected": selected_columns(X_train, y_train)}.get(variant, slice(None))
    weights = relevance(X_train, y_train, variant == "relevance_spread") if variant.startswith("relevance") else None
    with warnings.catch_warnings(), context_divided_by(weights):
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0, **VARIANTS[variant]).fit(X_train[:, columns], y_train)
    interval = reg.predict_interval(X_test[:, columns])
    covered = (y_test >= interval[:, 0]) & (y_test <= interval[:, 1])
    return float(reg.score_samples(X_test[:, columns], y_test).mean()), float(covered.mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=3500)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--draws", nargs="+", type=int, default=[0])
    parser.add_argument("--variants", nargs="+", default=["default"], choices=sorted(VARIANTS))
    parser.add_argument("--uci", help="a UCI set: every feature against the selected ones, on splits --draws")
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.uci:
        settings = Settings(data_dir=args.data_dir, first_split=min(args.draws), max_splits=max(args.draws) + 1)
        for split in splits_of(args.uci, settings):
            if split.index in args.draws:
                location, scale = split.X_train.mean(0), split.X_train.std(0) + 1e-12
                X_train, X_test = (split.X_train - location) / scale, (split.X_test - location) / scale
                kept = selected_columns(X_train, split.y_train).tolist()
                record = {"set": args.uci, "split": split.index, "kept": kept}
                for variant in args.variants:
                    record[variant] = test_log_likelihood(variant, X_train, split.y_train, X_test, split.y_test)[0]
                append_record(args.out, record)
        return
    for seed in args.draws:
        X_train, y_train, X_test, y_test, true = noisy_features_set(args.rows, args.features, seed)
        for variant in args.variants:
            score, coverage = test_log_likelihood(variant, X_train, y_train, X_test, y_test)
            record = {"rows": args.rows, "features": args.features, "seed": seed, "variant": variant}
            append_record(args.out, {**record, "gap": true - score, "coverage": coverage})


if __name__ == "__main__":
    main()
