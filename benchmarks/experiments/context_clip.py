"""Contexts held inside the training range at prediction: measured on fits that are the default's.

The audit of the thirtieth session found a mixture-CDF flow whose density
at one ordinary-looking test row put every plausible target near -53 nats:
its context (with the trees' prediction) left the region its conditioner
was trained on. Holding each flow's standardized context inside the range
of its training rows' contexts, ``p(y | x) := p(y | clip(x))``, keeps every
density normalized and changes nothing inside the range. The fit does not
depend on it, so each default fit is scored both ways: test log-likelihood
and 90% coverage, as given and clipped, and the share of test rows with some
context outside the range. The UCI splits are the benchmark's, at most
1,000 test rows each (``--rows`` cuts the training rows as
:mod:`benchmarks.experiments.small_uci` does)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.context_clip --sets bostonHousing yacht \\
        --splits 2 --out results.jsonl
"""

from __future__ import annotations

import warnings

import numpy as np

from skflow import FlowRegressor

from ..regression import _standardizer
from .small_uci import cut_split_parser, cut_splits
from .split_runs import append_record, with_edited_flows


def clipped(reg: FlowRegressor, X_train: np.ndarray) -> FlowRegressor:
    """A copy of ``reg`` whose flows hold their contexts inside the range of their contexts of ``X_train``
    (``reg`` itself unchanged)."""
    features = reg._validated(X_train)

    def clip(member) -> None:
        context = member._context(features)
        low, high = context.min(axis=0), context.max(axis=0)
        original = member._context
        member._context = lambda f: np.clip(original(f), low, high)

    return with_edited_flows(reg, clip)


def scores(model: FlowRegressor, X: np.ndarray, y: np.ndarray) -> list[float]:
    low, high = model.predict_interval(X).T
    return [float(model.score_samples(X, y).mean()), float(((low <= y) & (y <= high)).mean())]


def main(argv: list[str] | None = None) -> None:
    parser = cut_split_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    for name, _, split in cut_splits(args.sets, [args.rows], args.splits, args.data_dir):
        location, scale = _standardizer(split.X_train)
        X_train, X_test = (split.X_train - location) / scale, (split.X_test - location) / scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = FlowRegressor(random_state=0).fit(X_train, split.y_train)
        outside = np.zeros(len(X_test), dtype=bool)
        features_train, features_test = reg._validated(X_train), reg._validated(X_test)
        for member in reg._members():
            train, test = member._context(features_train), member._context(features_test)
            outside |= ((test < train.min(axis=0)) | (test > train.max(axis=0))).any(axis=1)
        record = {
            "set": name,
            "split": split.index,
            "n": len(split.y_train),
            "as_given": scores(reg, X_test, split.y_test),
            "clipped": scores(clipped(reg, X_train), X_test, split.y_test),
            "outside": float(outside.mean()),
        }
        append_record(args.out, record)


if __name__ == "__main__":
    main()
