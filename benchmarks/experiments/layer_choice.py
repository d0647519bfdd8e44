"""Each flow choosing its layers on its validation rows: splines or Gaussian-mixture CDF layers.

``flow="mixture_cdf"`` wins on multimodal and skewed synthetic targets and
loses on some UCI sets (docs/regression_design_notes.md). Where each flow of
the ensemble chooses, as it chooses the trees' feature, the choice could
take the better of both. Flows of ``FlowRegressor(random_state=0)`` fits that
differ only in ``flow`` share each member's seed, hence its validation rows,
so three fits (splines, one mixture layer, five) give every rule's ensemble
exactly: member ``i`` keeps the candidate whose best validation epoch scored
highest (a kept ridge counts as its flow's best epoch, an approximation: no
flow kept one on these sets in the runs before). One JSON line per split::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.layer_choice \\
        --sets bimodal_moving yacht --splits 0 1 --out results.jsonl [--candidates spline mixture_cdf5]
"""

from __future__ import annotations

import copy
import warnings

import numpy as np

from skflow import FlowRegressor
from skflow._ensemble import mixture_log_density

from .split_runs import append_record, numbered_splits, split_parser

CANDIDATES = {
    "spline": {"flow": "spline"},
    "mixture_cdf1": {"flow": "mixture_cdf", "n_transforms": 1},
    "mixture_cdf5": {"flow": "mixture_cdf", "n_transforms": 5},
}
RULES = {
    "spline": ("spline",),
    "mixture_cdf1": ("mixture_cdf1",),
    "mixture_cdf5": ("mixture_cdf5",),
    "spline|mixture_cdf1": ("spline", "mixture_cdf1"),
    "spline|mixture_cdf5": ("spline", "mixture_cdf5"),
    "all three": tuple(CANDIDATES),
}


def single_flows(reg: FlowRegressor) -> list[FlowRegressor]:
    first = copy.copy(reg)
    first.n_flows, first.ensemble_ = 1, []
    return [first, *reg.ensemble_]


def measure(split, candidates: list[str]) -> dict:
    scores, validation = {}, {}
    for label in candidates:
        params = CANDIDATES[label]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = FlowRegressor(random_state=0, **params).fit(split.X_train, split.y_train)
        members = single_flows(reg)
        scores[label] = [m.score_samples(split.X_test, split.y_test) for m in members]
        validation[label] = [max(m.validation_scores_, default=-np.inf) for m in members]
    record = {}
    for rule, labels in RULES.items():
        if not set(labels) <= set(candidates):
            continue
        chosen = [max(labels, key=lambda label: validation[label][i]) for i in range(len(scores["spline"]))]
        log_likelihood = float(mixture_log_density([scores[c][i] for i, c in enumerate(chosen)]).mean())
        record[rule] = {"log_likelihood": log_likelihood, "chosen": chosen}
        if split.true_log_likelihood is not None:
            n_targets = 1 if np.ndim(split.y_test) == 1 else split.y_test.shape[1]
            record[rule]["gap_per_dim"] = (split.true_log_likelihood - log_likelihood) / n_targets
    return record


def main(argv: list[str] | None = None) -> None:
    parser = split_parser(__doc__)
    parser.add_argument("--candidates", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    args = parser.parse_args(argv)
    for name, split in numbered_splits(args):
        append_record(args.out, {"set": name, "split": split.index, **measure(split, args.candidates)})


if __name__ == "__main__":
    main()
