"""Contexts held inside the training range at prediction (``context_range_``): each default fit scored both ways.

The audit of the thirtieth session found a mixture-CDF flow whose density
at one ordinary-looking test row put every plausible target near -53 nats:
its context (with the trees' prediction) left the region its conditioner
was trained on; the thirty-second session's found a noise feature at 1e4
moving a whole predictive distribution. Holding each flow's context within
the range of the training rows' contexts widened by its width on each side,
``p(y | x) := p(y | clip(x))``, keeps every density normalized and changes
nothing within it. The fit does not depend on it, so each default fit is
scored both ways: test log-likelihood and 90% coverage unheld (the
attribute removed: the flows extrapolate) and held (the library's model
since the thirty-third session), and the share of test rows with some
context outside the range itself (``outside``).

The results of 2026-12-06 came from an earlier version of this script,
which clipped to the range of the training rows' contexts with the trees'
in-sample prediction (their columns ``as_given`` and ``clipped``); the
library clips the trees' column to the range of their out-of-fold
predictions, which the flows trained on. The UCI splits are the
benchmark's, at most 1,000 test rows each (``--rows`` cuts the training
rows as :mod:`benchmarks.experiments.small_uci` does)::

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


def unheld(reg: FlowRegressor) -> FlowRegressor:
    """A copy of ``reg`` whose flows extrapolate beyond the training range (``reg`` itself unchanged)."""

    def unhold(member) -> None:
        member.__dict__.pop("context_range_", None)

    return with_edited_flows(reg, unhold)


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
        features = reg._validated(X_test)
        outside = np.zeros(len(X_test), dtype=bool)
        for member in reg._members():  # each its columns: the features, with the trees' prediction or without
            width = len(member.x_location_)
            low, high = member.context_range_[:, :width]
            outside |= ((features[:, :width] < low) | (features[:, :width] > high)).any(axis=1)
        record = {
            "set": name,
            "split": split.index,
            "n": len(split.y_train),
            "unheld": scores(unheld(reg), X_test, split.y_test),
            "held": scores(reg, X_test, split.y_test),
            "outside": float(outside.mean()),
        }
        append_record(args.out, record)


if __name__ == "__main__":
    main()
