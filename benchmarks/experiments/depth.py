"""FlowRegressor's number of spline layers: the default 5 against fewer, on UCI and synthetic sets.

The tenth session measured ``n_transforms`` 1-3 on the synthetic sets only
(fewer layers narrowed the gap to the true conditional log-likelihood a
little) and kept 5 because two layers would change every UCI row. This runs
the same comparison on the small UCI sets too, with the fit's seconds, so the
choice rests on both. Default ``FlowRegressor(random_state=0)`` but for
``n_transforms``; synthetic sets: 2,000 training and 2,000 test rows of a
draw, gap per target dimension; UCI sets: the standard splits. One JSON line
per set, split and variant::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.depth \\
        --sets bimodal_moving yacht --splits 0 1 2 --variants 5 2 --out results.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

from skflow import FlowRegressor

from ..regression import Settings, splits_of


def measure(split, n_transforms: int) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(n_transforms=n_transforms, random_state=0).fit(split.X_train, split.y_train)
    seconds = time.perf_counter() - start
    log_likelihood = float(reg.score_samples(split.X_test, split.y_test).mean())
    record = {"log_likelihood": log_likelihood, "fit_seconds": round(seconds, 1)}
    if np.ndim(split.y_test) == 1:
        interval = reg.predict_interval(split.X_test)
        covered = (split.y_test >= interval[:, 0]) & (split.y_test <= interval[:, 1])
        record["coverage90"] = float(covered.mean())
    if split.true_log_likelihood is not None:
        n_targets = 1 if np.ndim(split.y_test) == 1 else split.y_test.shape[1]
        record["gap_per_dim"] = (split.true_log_likelihood - log_likelihood) / n_targets
    record["trees_kept"] = int(sum(m.boosted_feature_ for m in [reg, *reg.ensemble_]))
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--splits", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--variants", nargs="+", type=int, default=[5, 3, 2])
    parser.add_argument("--data-dir", default=Settings.data_dir)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name in args.sets:
        settings = Settings(data_dir=args.data_dir, first_split=min(args.splits), max_splits=max(args.splits) + 1)
        for split in splits_of(name, settings):
            if split.index not in args.splits:
                continue
            for n_transforms in args.variants:
                record = {"set": name, "split": split.index, "n_transforms": n_transforms}
                record.update(measure(split, n_transforms))
                with args.out.open("a") as file:
                    file.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
