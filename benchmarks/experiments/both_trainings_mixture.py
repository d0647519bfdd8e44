"""Would the trainings that ``boosted_feature="auto"`` discards help the ensemble?

With "auto" every flow trains twice, with and without the trees' prediction,
and keeps one: ten trainings, five flows. Keeping all ten as an equal-weight
mixture costs no more training (twice the prediction cost) and holds both
kinds of flow, which earlier experiments found the mixture needs on some sets
(docs/regression_design_notes.md). One fit per split with every training kept
(``early_feature_choice.KeepBothTrainings``) scores the default's five flows
and the mixture of all ten on the test rows: log-likelihood and 90% coverage::

    PYTHONPATH=. python -m benchmarks.experiments.both_trainings_mixture --sets yacht bostonHousing --splits 0 1 \\
        --out results.jsonl
    PYTHONPATH=. python -m benchmarks.experiments.both_trainings_mixture --sets friedman1_50 binary --splits 0 1 \\
        --rows 300 --out results.jsonl      # the boosted_feature experiment's sets; split k: draw k
"""

from __future__ import annotations

import time
import warnings

from benchmarks.experiments.early_feature_choice import (
    KeepBothTrainings,
    as_ensemble,
    scores,
    trained_as,
    tree_friendly_or_uci,
)
from benchmarks.experiments.ensemble_disagreement import main
from benchmarks.regression import Split
from skflow import FlowRegressor

from .split_runs import SPLINES_ONLY


def every_training(model: FlowRegressor, trainings: list[dict[bool, dict]]) -> FlowRegressor:
    """A copy of the fitted ``model`` whose ensemble holds every training of every flow."""
    members = zip(model._members(), trainings, strict=True)
    return as_ensemble([trained_as(member, state) for member, states in members for state in states.values()])


def measure(dataset: str, split: Split, seed: int) -> dict:
    started = time.perf_counter()
    with KeepBothTrainings() as kept, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=seed, **SPLINES_ONLY).fit(split.X_train, split.y_train)
    every = every_training(model, kept.trainings)
    return {
        "dataset": dataset,
        "split": split.index,
        "training_rows": len(split.y_train),
        "default": scores(model, split),
        "every_training": scores(every, split),
        "n_flows": [len(model._members()), len(every._members())],
        "seconds": time.perf_counter() - started,
    }


if __name__ == "__main__":
    main(measure=measure, description=__doc__, splits_of_number=tree_friendly_or_uci)
