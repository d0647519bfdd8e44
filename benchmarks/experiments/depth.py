"""FlowRegressor's learned layers: the default 5 splines against fewer, or a Gaussian-mixture CDF layer.

The tenth session measured ``n_transforms`` 1-3 on the synthetic sets only
(fewer layers narrowed the gap to the true conditional log-likelihood a
little) and kept 5 because two layers would change every UCI row. This runs
the same comparison on the small UCI sets too, with the fit's seconds, so the
choice rests on both. The variants "mixture_cdf1" and "mixture_cdf5" are
``flow="mixture_cdf"`` with one layer (a mixture density network with an
exact latent) and five. Default ``FlowRegressor(random_state=0)`` but for the
variant's parameters; synthetic sets: 2,000 training and 2,000 test rows of a
draw, gap per target dimension; UCI sets: the standard splits. One JSON line
per set, split and variant::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.depth \\
        --sets bimodal_moving yacht --splits 0 1 2 --variants 5 mixture_cdf1 --out results.jsonl
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from skflow import FlowRegressor

from .split_runs import append_record, numbered_splits, split_parser

# label: FlowRegressor parameters (the label of a number of spline layers is that number)
VARIANTS = {
    "5": {"n_transforms": 5},
    "3": {"n_transforms": 3},
    "2": {"n_transforms": 2},
    "mixture_cdf1": {"flow": "mixture_cdf", "n_transforms": 1},
    "mixture_cdf5": {"flow": "mixture_cdf", "n_transforms": 5},
}


def measure(split, params: dict) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0, **params).fit(split.X_train, split.y_train)
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
    record["trees_kept"] = int(sum(member.boosted_feature_ for member in reg._members()))
    return record


def main(argv: list[str] | None = None) -> None:
    parser = split_parser(__doc__)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["5", "3", "2"])
    args = parser.parse_args(argv)
    for name, split in numbered_splits(args):
        for label in args.variants:
            record = {"set": name, "split": split.index, "variant": label, **measure(split, VARIANTS[label])}
            append_record(args.out, record)


if __name__ == "__main__":
    main()
