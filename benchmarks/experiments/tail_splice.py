"""The exponential tails beyond the widened training range (skflow._target_tails): what they change on real data.

The splice replaces a flow's distribution only beyond ``[min - w, max + w]`` of
the training targets, so it changes no fit, and on well-behaved data almost
no score. Each default fit is scored with its spliced tails and without them
(the flows' own tails, as a model saved before ``target_range_`` has): test
log-likelihood, 90% coverage and CRPS (twice the mean pinball loss over 199
levels, as the benchmark), with the share of test targets beyond a splice
point and of (row, level) quantiles the splice moved. The UCI splits are the
benchmark's, at most 1,000 test rows each (``--rows`` cuts the training rows
as :mod:`benchmarks.experiments.small_uci` does); ``--synthetic`` runs
instead three draws of three sets whose tails matter (``SYNTHETIC``)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.tail_splice --sets bostonHousing yacht \\
        --splits 2 --out results.jsonl
"""

from __future__ import annotations

import warnings

import numpy as np

from skflow import FlowRegressor
from skflow._target_tails import splice_tails

from ..regression import _standardizer
from .small_uci import cut_split_parser, cut_splits
from .split_runs import append_record, with_edited_flows

LEVELS = (np.arange(199) + 0.5) / 199


def _outlier(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``x_0`` plus noise of 0.5, five features; the first row's target a data-entry error (100)."""
    X = rng.normal(size=(n, 5))
    y = X[:, 0] + 0.5 * rng.normal(size=n)
    y[0] = 100.0
    return X, y


def _student_t(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, 3))
    return X, X[:, 0] + rng.standard_t(1.5, size=n)


def _log_normal(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(n, 3))
    return X, np.exp(X[:, 0] + 2.0 * rng.normal(size=n))


# name: (make(rng, n), training rows). The test rows (1,000) come from the same law; the outlier set's have none.
SYNTHETIC = {"outlier_100": (_outlier, 100), "student_t_300": (_student_t, 300), "log_normal_300": (_log_normal, 300)}


def synthetic_splits(draws: int):
    """``(name, draw, X_train, y_train, X_test, y_test)`` for each synthetic set and draw."""
    for name, (make, n) in SYNTHETIC.items():
        for draw in range(draws):
            X_train, y_train = make(np.random.default_rng(draw), n)
            X_test, y_test = make(np.random.default_rng(1000 + draw), 1001)
            yield name, draw, X_train, y_train, X_test[1:], y_test[1:]


def without_splice(reg: FlowRegressor) -> FlowRegressor:
    """A copy of ``reg`` whose flows keep their own tails (no ``target_range_``; ``reg`` itself unchanged)."""

    def forget_range(member) -> None:
        member.target_range_ = np.array([[-np.inf], [np.inf]])

    return with_edited_flows(reg, forget_range)


def scores(model: FlowRegressor, X: np.ndarray, y: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Test log-likelihood, 90% coverage and CRPS, and the 199 quantiles of each row."""
    quantiles = model.predict_quantiles(X, LEVELS)
    excess = y[:, None] - quantiles
    pinball = np.where(excess >= 0, LEVELS * excess, (LEVELS - 1) * excess)
    low, high = model.predict_interval(X).T
    coverage = ((low <= y) & (y <= high)).mean()
    return [float(model.score_samples(X, y).mean()), float(coverage), float(2 * pinball.mean())], quantiles


def main(argv: list[str] | None = None) -> None:
    parser = cut_split_parser(__doc__.splitlines()[0])
    parser.add_argument("--synthetic", action="store_true", help="the SYNTHETIC sets instead, --splits draws")
    args = parser.parse_args(argv)
    if args.synthetic:
        runs = synthetic_splits(args.splits)
    else:
        runs = (
            (name, split.index, *_standardized(split), split.y_test)
            for name, _, split in cut_splits(args.sets, [args.rows], args.splits, args.data_dir)
        )
    for name, index, X_train, y_train, X_test, y_test in runs:
        append_record(
            args.out, {"set": name, "split": index, "n": len(y_train), **compare(X_train, y_train, X_test, y_test)}
        )


def _standardized(split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    location, scale = _standardizer(split.X_train)
    return (split.X_train - location) / scale, split.y_train, (split.X_test - location) / scale


def compare(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, **parameters) -> dict:
    """The default fit's scores (``parameters`` changed from the default) with its spliced tails and with its
    flows' own, and what the splice touched."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0, **parameters).fit(X_train, y_train)
    spliced, spliced_quantiles = scores(reg, X_test, y_test)
    own, own_quantiles = scores(without_splice(reg), X_test, y_test)
    beyond = np.zeros(len(y_test), dtype=bool)
    for tail in splice_tails(reg):
        beyond |= tail.distance(y_test) > 0
    return {
        "spliced": spliced,
        "own_tails": own,
        "targets_beyond": float(beyond.mean()),
        "quantiles_moved": float((spliced_quantiles != own_quantiles).mean()),
        "largest_quantile": [float(spliced_quantiles[:, -1].max()), float(own_quantiles[:, -1].max())],
    }


if __name__ == "__main__":
    main()
