"""Should ``boosted_feature="auto"`` also try the trees' prediction above 5,000 rows?

"auto" trains each flow with and without the trees' prediction only on 100 to
5,000 rows (``skflow._boosted_feature.AUTO_ROWS``); above, the flows train
without. On power-plant (8,611 training rows) the default's RMSE was 3.79
against 3.35 for a Gaussian around gradient-boosted trees
(docs/regression_benchmark.md), so the trees may still help there. Here the
upper limit is lifted and every flow's two trainings are kept
(``early_feature_choice.KeepBothTrainings``), so one fit per split scores
three ensembles exactly: every flow without the trees (today's default on
these sets), every flow with them, and each flow's own choice ("auto"
without the limit). Per ensemble: test log-likelihood, 90% coverage and
RMSE; and the seconds of the whole fit against the trainings without::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.auto_rows_above --sets power-plant kin8nm \\
        --splits 0 1 --out results.jsonl
"""

from __future__ import annotations

import time
import warnings

import numpy as np

import skflow._boosted_feature as boosted
from benchmarks.experiments.early_feature_choice import KeepBothTrainings, choice_after, scores, with_choices
from benchmarks.experiments.ensemble_disagreement import main
from benchmarks.regression import Split
from skflow import FlowRegressor

from .split_runs import SPLINES_ONLY


def rmse(model: FlowRegressor, split: Split) -> float:
    return float(np.sqrt(np.mean((model.predict(split.X_test) - split.y_test) ** 2)))


def measure(dataset: str, split: Split, seed: int, **params) -> dict:
    """The three ensembles' scores on ``split``'s test rows, from one fit of ``FlowRegressor(**params)``."""
    limit, boosted.AUTO_ROWS = boosted.AUTO_ROWS, (boosted.AUTO_ROWS[0], np.inf)
    try:
        started = time.perf_counter()
        with KeepBothTrainings() as kept, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = FlowRegressor(random_state=seed, **{**SPLINES_ONLY, **params}).fit(split.X_train, split.y_train)
        seconds = time.perf_counter() - started
    finally:
        boosted.AUTO_ROWS = limit
    record = {"dataset": dataset, "split": split.index, "training_rows": len(split.y_train), "seconds": seconds}
    rules = {
        "without": [False] * len(kept.trainings),
        "with": [True] * len(kept.trainings),
        "choice": [choice_after(states, None) for states in kept.trainings],
    }
    for name, choices in rules.items():
        ensemble = with_choices(model, kept.trainings, choices)
        record[name] = {"scores": scores(ensemble, split), "rmse": rmse(ensemble, split)}
    record["choice"]["with_trees"] = sum(rules["choice"])
    assert np.allclose(scores(model, split), record["choice"]["scores"]), "each flow's choice rebuilds the model"
    record["epochs"] = [{str(uses): state["n_iter_"] for uses, state in states.items()} for states in kept.trainings]
    return record


if __name__ == "__main__":
    main(measure=measure, description=__doc__)
