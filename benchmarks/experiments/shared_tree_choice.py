"""Can the first flow's choice of the trees' feature serve the whole ensemble?

With ``boosted_feature="auto"`` every flow of a ``FlowRegressor`` trains
twice, without and with the trees' prediction, and keeps the better on its
own validation rows: twice the training on 100 to 5,000 rows (then; now 40 to 20,000). Here the
first flow chooses and the others train once, with its choice (6 trainings
instead of 10 for five flows). Each split is fitted both ways from the same
seed; test log-likelihood, 90% coverage, fit seconds and the flows' choices
are recorded. One JSON line per split::

    PYTHONPATH=. python -m benchmarks.experiments.shared_tree_choice --sets bostonHousing yacht --splits 0 1 \\
        --out results.jsonl
"""

from __future__ import annotations

import time
import warnings

import skflow._ensemble as ensemble
import skflow._flow_choice as choice
from benchmarks.experiments.ensemble_disagreement import main
from skflow import FlowRegressor
from skflow.metrics import interval_coverage

from .split_runs import SPLINES_ONLY


class FirstFlowDecides:
    """Patches the ensemble's fit so that the flows after the first take the first flow's choice."""

    def __enter__(self) -> FirstFlowDecides:
        original_choices, original_fitted = choice.boosted_choices, ensemble._fitted
        decided = {}

        def choices(estimator, n_rows):
            options = original_choices(estimator, n_rows)
            return [decided["use"]] if "use" in decided and len(options) == 2 else options

        def fitted(flow, *args):
            result = original_fitted(flow, *args)
            decided.setdefault("use", flow.boosted_feature_)
            return result

        self._restore = (original_choices, original_fitted)
        choice.boosted_choices, ensemble._fitted = choices, fitted
        return self

    def __exit__(self, *exc) -> None:
        choice.boosted_choices, ensemble._fitted = self._restore


def scored(split, seed: int) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=seed, **SPLINES_ONLY).fit(split.X_train, split.y_train)
    seconds = time.perf_counter() - started
    return {
        "ll": float(model.score_samples(split.X_test, split.y_test).mean()),
        "cov90": interval_coverage(split.y_test, model.predict_interval(split.X_test)),
        "fit_s": round(seconds, 2),
        "choices": [bool(member.boosted_feature_) for member in model._members()],
    }


def measure(dataset: str, split, seed: int) -> dict:
    record = {"dataset": dataset, "split": split.index, "default": scored(split, seed)}
    with FirstFlowDecides():
        record["first_decides"] = scored(split, seed)
    return record


if __name__ == "__main__":
    main(measure=measure, description=__doc__)
