"""Could each flow choose between training with and without the trees' prediction after a few epochs?

With ``boosted_feature="auto"`` every flow of a fit on 100 to 5,000 rows
trains twice, once without and once with the trees' prediction as a feature,
and keeps the training whose best validation score is higher. If the choice
were made after ``E`` epochs of both, only the chosen training would go on.
The learning rate follows a cosine over ``max_epochs`` (not over the epochs
run) and the weights scored each epoch do not depend on later epochs, so the
first ``E`` epochs of a full training are exactly the truncated one. One fit
with both trainings of every flow kept therefore gives, for every ``E``, the
ensemble the early choice would have built and the epochs it would have
trained. Per rule: test log-likelihood, 90% coverage, how many flows chose
as the full choice did, and the epochs trained against the default's::

    PYTHONPATH=. python -m benchmarks.experiments.early_feature_choice --sets yacht bostonHousing --splits 0 1 \\
        --out results.jsonl
    PYTHONPATH=. python -m benchmarks.experiments.early_feature_choice --sets friedman1_50 binary --splits 0 1 \\
        --rows 300 --out results.jsonl      # the boosted_feature experiment's sets; split k: draw k
"""

from __future__ import annotations

import copy
import time
import warnings

import numpy as np

import skflow._ensemble as ensemble
from benchmarks.experiments.boosted_feature import tree_friendly_sets
from benchmarks.experiments.ensemble_disagreement import main
from benchmarks.regression import Settings, Split, splits_of
from skflow import FlowRegressor
from skflow._flow_choice import _fitted_state, kept_validation_score
from skflow.metrics import interval_coverage

from .split_runs import SPLINES_ONLY

EPOCHS = (2, 4, 6, 10, 15)


class KeepBothTrainings:
    """Patches the ensemble's ``fit_choosing`` to keep every flow's fitted state of each training."""

    def __enter__(self) -> KeepBothTrainings:
        self.trainings: list[dict[bool, dict]] = []  # per flow, in the ensemble's order: {uses trees: state}
        self._original = original = ensemble.fit_choosing

        def keeping(estimator, features, n_rows, fit):
            states = {}

            def fit_and_keep(columns, kind, scaled):  # one layer kind (split_runs.SPLINES_ONLY), as given
                returned = fit(columns, kind, scaled)
                uses_trees = columns.shape[1] > estimator.n_features_in_
                states[uses_trees] = {**_fitted_state(estimator), "boosted_feature_": uses_trees}
                return returned

            returned = original(estimator, features, n_rows, fit_and_keep)
            self.trainings.append(states)
            return returned

        ensemble.fit_choosing = keeping
        return self

    def __exit__(self, *exc) -> None:
        ensemble.fit_choosing = self._original


def choice_after(states: dict[bool, dict], epochs: int | None) -> bool:
    """The training a flow keeps when both are compared on their first ``epochs`` validation scores (None:
    as ``fit_choosing`` compares them, by the kept model's score), ties to training without."""
    if epochs is None:
        return max(states, key=lambda uses: (kept_validation_score(states[uses]), not uses))
    return max(states, key=lambda uses: (best_score(states[uses], epochs), not uses))


def best_score(state: dict, epochs: int | None) -> float:
    return max(state["validation_scores_"][:epochs], default=-np.inf)


def abort_choice(states: dict[bool, dict], first: bool, epochs: int) -> tuple[bool, int]:
    """The choice and the epochs trained when ``first`` trains fully and the other training stops after
    ``epochs`` epochs unless its best score by then beats the first's by then (else both train fully and
    compare as the default does)."""
    if len(states) == 1:
        ((uses, state),) = states.items()
        return uses, state["n_iter_"]
    second = states[not first]
    if best_score(second, epochs) <= best_score(states[first], epochs):
        return first, states[first]["n_iter_"] + min(epochs, second["n_iter_"])
    return choice_after(states, None), states[first]["n_iter_"] + second["n_iter_"]


def with_choices(model: FlowRegressor, trainings: list[dict[bool, dict]], choices: list[bool]) -> FlowRegressor:
    """A copy of the fitted ``model`` whose flows are the chosen trainings."""
    members = zip(model._members(), trainings, choices, strict=True)
    return as_ensemble([trained_as(member, states[uses]) for member, states, uses in members])


def trained_as(member: FlowRegressor, state: dict) -> FlowRegressor:
    """A copy of one flow of a fitted ensemble, with the fitted ``state`` of one of its trainings."""
    flow = copy.copy(member)
    flow.__dict__.update({k: v for k, v in state.items() if k != "ensemble_"})
    return flow


def as_ensemble(flows: list[FlowRegressor]) -> FlowRegressor:
    """The first of the fitted ``flows``, holding the others as its ensemble (equal weights)."""
    for flow in flows[1:]:
        flow.ensemble_ = []
    flows[0].ensemble_ = flows[1:]
    return flows[0]


def scores(model: FlowRegressor, split: Split) -> tuple[float, float]:
    log_likelihood = float(model.score_samples(split.X_test, split.y_test).mean())
    return log_likelihood, float(interval_coverage(split.y_test, model.predict_interval(split.X_test, 0.9)))


def measure(dataset: str, split: Split, seed: int) -> dict:
    started = time.perf_counter()
    with KeepBothTrainings() as kept, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = FlowRegressor(random_state=seed, **SPLINES_ONLY).fit(split.X_train, split.y_train)
    trainings = kept.trainings
    epochs = [{uses: state["n_iter_"] for uses, state in states.items()} for states in trainings]
    full = [choice_after(states, None) for states in trainings]
    record = {"dataset": dataset, "split": split.index, "training_rows": len(split.y_train)}
    record["fit_seconds"] = time.perf_counter() - started
    scored: dict[tuple[bool, ...], tuple[float, float]] = {}  # rules often choose alike

    def rule(choices: list[bool], trained: int) -> dict:
        if tuple(choices) not in scored:
            scored[tuple(choices)] = scores(with_choices(model, trainings, choices), split)
        same = sum(a == b for a, b in zip(choices, full, strict=True))
        return {"scores": scored[tuple(choices)], "epochs": trained, "same_choice": same}

    record["default"] = {"scores": scores(model, split), "epochs": sum(sum(e.values()) for e in epochs)}
    record["epochs_per_training"] = [{str(uses): n for uses, n in e.items()} for e in epochs]
    for after in EPOCHS:
        choices = [choice_after(states, after) for states in trainings]
        trained = sum(
            e[uses] + sum(min(after, n) for other, n in e.items() if other != uses)
            for e, uses in zip(epochs, choices, strict=True)
        )
        record[f"after_{after}"] = rule(choices, trained)
        for order in ("without", "with", "last"):
            first, choices, trained = order == "with", [], 0
            for states in trainings:
                uses, n = abort_choice(states, first, after)
                choices.append(uses)
                trained += n
                first = uses if order == "last" else first
            record[f"abort_{order}_{after}"] = rule(choices, trained)
    check = scores(with_choices(model, trainings, full), split)
    assert np.allclose(check, record["default"]["scores"]), "the full choice must rebuild the default model"
    return record


def tree_friendly_or_uci(dataset: str, number: int, args) -> list[Split]:
    """Split ``number``: draw ``number`` of a tree-friendly set with ``--rows`` training rows, or a UCI split."""
    if args.rows:
        X, y = next((X, y) for name, X, y in tree_friendly_sets(args.rows + 2000, number) if name == dataset)
        return [Split(X[: args.rows], y[: args.rows], X[args.rows :], y[args.rows :], index=number)]
    return list(splits_of(dataset, Settings(first_split=number, max_splits=number + 1)))


if __name__ == "__main__":
    main(measure=measure, description=__doc__, splits_of_number=tree_friendly_or_uci)
