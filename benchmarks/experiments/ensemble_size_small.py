"""More flows in the ensemble on small data: ``n_flows`` 5 against 10.

On a hundred rows each flow's epoch, training and latent scale are chosen
on its ten validation rows, and chance flatters some: on power-plant's
first split cut to 100 rows, four of the five flows covered 0.55 to 0.72 of
the test rows with their 90% intervals. More flows average more of that
chance away, and on so few rows a flow costs seconds. A larger ensemble's
first flows are a smaller one's (the same seeds), so the comparisons are
paired. Two kinds of data:

- default: the seven small sets of :mod:`benchmarks.experiments.small_regression` (the rest of 400 rows, 442
  for diabetes, for testing); one fit of 10 flows, scored as the mixture of its first 5 and of all 10, each a
  ``[test LL, 90% coverage, flows that kept the ridge]``;
- ``--uci``: the UCI sets' first standard splits cut to ``n`` training rows, with the protocol of
  :mod:`benchmarks.experiments.small_uci`, whose results file holds the five-flow default's scores;
  ``FlowRegressor(n_flows=N)`` with ``--n-flows N``.

::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.ensemble_size_small --sizes 100 200 \\
        --out results.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.ensemble_size_small --uci --n-flows 10 \\
        --sizes 100 300 --out results.jsonl
"""

from __future__ import annotations

import argparse
import copy
import functools
import warnings
from pathlib import Path

from sklearn.model_selection import train_test_split

from skflow import FlowRegressor

from ..regression import Settings, evaluate_split
from ..regression_methods import Flow
from .small_regression import fit_and_score, small_sets
from .small_uci import SETS, cut_splits
from .split_runs import append_record

SIZES = (5, 10)


def nested_scores(X_train, y_train, X_test, y_test) -> dict[str, list]:
    """One fit of ``max(SIZES)`` flows; for each size, the mixture of its first flows: ``[test LL, 90%
    coverage, flows that kept the ridge]``."""
    reg, _ = fit_and_score(X_train, y_train, X_test, y_test, n_flows=max(SIZES))
    scores = {}
    for size in SIZES:
        sub = copy.copy(reg)
        sub.ensemble_ = reg.ensemble_[: size - 1]
        low, high = sub.predict_interval(X_test).T
        covered = float(((low <= y_test) & (y_test <= high)).mean())
        linear = sum(member.best_epoch_ == 0 for member in sub._members())
        scores[f"flows_{size}"] = [float(sub.score_samples(X_test, y_test).mean()), covered, linear]
    return scores


def small_sets_run(sizes: list[int], draws: int, out: Path) -> None:
    for n in sizes:
        for seed in range(draws):
            for name, X, y in small_sets(seed):
                X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=n, random_state=seed)
                record = {"set": name, "n": n, "seed": seed, "sizes": nested_scores(X_train, y_train, X_test, y_test)}
                append_record(out, record)


def uci_run(sizes: list[int], n_flows: int, splits: int, data_dir: str, out: Path) -> None:
    for name, n, split in cut_splits(list(SETS), sizes, splits, data_dir):
        contender = Flow(seed=0, estimator_class=functools.partial(FlowRegressor, n_flows=n_flows))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            metrics = evaluate_split(contender, split)
        append_record(out, {"set": name, "n": n, "method": f"flow_{n_flows}", **metrics})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uci", action="store_true", help="the UCI sets cut to --sizes rows, not the small sets")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200])
    parser.add_argument("--draws", type=int, default=3, help="small sets: draws of each")
    parser.add_argument("--n-flows", type=int, default=10, help="--uci: the ensemble's size")
    parser.add_argument("--splits", type=int, default=3, help="--uci: the first splits of each set")
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.uci:
        uci_run(args.sizes, args.n_flows, args.splits, args.data_dir, args.out)
    else:
        small_sets_run(args.sizes, args.draws, args.out)


if __name__ == "__main__":
    main()
