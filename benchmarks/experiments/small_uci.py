"""Real data at small sizes: the UCI sets' standard splits cut to their first 100 or 300 training rows.

The issue judges the defaults on unseen real sets of about 100 rows up to
several thousand. The synthetic small sets (``small_regression.py``) know the
truth but not real data's quirks, and the UCI benchmark has at least 277
training rows a split. Here every UCI set's first splits keep only the first
``n`` of their training rows (the split files list them in random order) and
at most 1,000 test rows, and the default ``FlowRegressor(random_state=0)`` is
scored against two Gaussian baselines fitted on the same rows, with the
benchmark's protocol (``benchmarks.regression.evaluate_split``: features
standardized, test metrics in the target's units):

- ``hgb_gaussian``: the benchmark's ``HistGradientBoostingRegressor`` with one noise level from 5-fold
  out-of-fold residuals;
- ``ridge_gaussian``: ``RidgeCV`` (13 penalties) with its noise level likewise.

One JSON line per set, size, split and method::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.small_uci --sizes 100 300 --splits 3 \
        --out benchmarks/results/experiment_small_uci.jsonl
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from sklearn.linear_model import RidgeCV

from ..regression import Settings, Split, evaluate_split, uci_splits
from ..regression_methods import Flow, HGBGaussian
from ..regression_report import UCI_NAMES, WINE
from .split_runs import append_record

# Wine's integer target would meet Gaussian baselines on a grid: its dequantized copy instead.
SETS = tuple(name for name in UCI_NAMES if name != WINE)
TEST_ROWS = 1000


class RidgeGaussian(HGBGaussian):
    """The benchmark's homoscedastic Gaussian (noise from 5-fold out-of-fold residuals) around ``RidgeCV`` (13
    penalties) instead of the trees."""

    name = "ridge_gaussian"

    def _regressor(self) -> RidgeCV:
        return RidgeCV(alphas=np.logspace(-3, 3, 13))


CONTENDERS = {"flow": Flow, "hgb_gaussian": HGBGaussian, "ridge_gaussian": RidgeGaussian}


def cut_splits(
    sets: list[str], sizes: list[int | None], splits: int, data_dir: str
) -> Iterator[tuple[str, int, Split]]:
    """``(set, n, split)`` for each ``n`` of ``sizes`` and each set's first ``splits`` standard splits, cut to
    their first ``n`` training rows (None: all) and at most ``TEST_ROWS`` test rows."""
    for n in sizes:
        settings = Settings(data_dir=data_dir, max_splits=splits, max_train_rows=n, max_test_rows=TEST_ROWS)
        for name in sets:
            for split in uci_splits(name, settings):
                yield name, n, split


def cut_split_parser(description: str, splits: int = 2) -> argparse.ArgumentParser:
    """The arguments of an experiment over :func:`cut_splits` of one size: ``--sets``, ``--splits``, ``--rows``
    (None: every training row), ``--data-dir`` and ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--splits", type=int, default=splits)
    parser.add_argument("--rows", type=int, default=None, help="cut each split's training rows to this many")
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--splits", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name, n, split in cut_splits(args.sets, args.sizes, args.splits, args.data_dir):
        for method in args.methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                metrics = evaluate_split(CONTENDERS[method](seed=0), split)
            append_record(args.out, {"set": name, "n": n, "method": method, **metrics})


if __name__ == "__main__":
    main()
