"""Relevance scaling of the features as one more training that each flow chooses on its validation rows.

:mod:`benchmarks.experiments.noise_features` found that dividing each
standardized feature by its relevance (its share of gradient-boosted trees'
split gain, over the largest) closes most of the gap that features of pure
noise open, but loses on Boston and concrete, whose features with a small
share of the gain still matter. Here every training of every flow of one
default fit (each layer kind, with and without the trees' feature) runs
twice, as given and relevance-scaled, on the same validation rows, and
three rules rebuild the ensemble from the same trainings (test
log-likelihood, nats a row):

- ``default``: the best-validating training as given (the library's rule; checked against the fit);
- ``relevance``: the best-validating relevance-scaled training;
- ``either``: the best-validating of all of them.

::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.relevance_choice --sets bostonHousing \\
        --splits 0 1 --out results.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.relevance_choice --noise 3500 1000 \\
        --draws 0 --out results.jsonl
"""

from __future__ import annotations

import warnings

import skflow._ensemble as ensemble
import skflow._flow_choice as flow_choice
from skflow import FlowRegressor
from skflow._flow_choice import FIT_SCORES, _fitted_state, kept_validation_score

from .choice_rules import best, ensemble_ll, training_member
from .noise_features import context_divided_by, noisy_features_set, relevance, sets_or_noise_parser
from .split_runs import append_record, numbered_splits

TRAININGS = "_recorded_trainings"
WEIGHTS = {"relevance": None}  # the fit's relevance, set before each fit


def recording_fit_choosing(estimator, features, n_rows, fit):
    """The library's ``fit_choosing`` over every training as given and relevance-scaled (this experiment's
    relevance), each recorded; the flow keeps the library's choice among those as given."""
    trainings, returns = [], []

    def fit_and_record(columns, kind, scaled):
        with context_divided_by(WEIGHTS["relevance"] if scaled else None):
            returned = fit(columns, kind, False)
        uses_trees = columns.shape[1] > estimator.n_features_in_  # fit_choosing sets it after the training
        trainings.append({**_fitted_state(estimator), "boosted_feature_": uses_trees, "scaled": scaled})
        returns.append(returned)
        return returned

    original = flow_choice.relevance_choices
    flow_choice.relevance_choices = lambda estimator: [False, True]
    try:
        flow_choice.fit_choosing(estimator, features, n_rows, fit_and_record)
    finally:
        flow_choice.relevance_choices = original
    as_given = [i for i, state in enumerate(trainings) if not state["scaled"]]
    kept = max(as_given, key=lambda i: kept_validation_score(trainings[i]))
    state = {k: v for k, v in trainings[kept].items() if k not in (*FIT_SCORES, "scaled")}
    estimator.__dict__.update(state)
    estimator.__dict__[TRAININGS] = trainings
    return returns[kept]


def measure(X_train, y_train, X_test, y_test) -> dict:
    location, scale = X_train.mean(0), X_train.std(0) + 1e-12
    X_train, X_test = (X_train - location) / scale, (X_test - location) / scale
    WEIGHTS["relevance"] = relevance(X_train, y_train, spread=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0).fit(X_train, y_train)
    flows = []
    for flow in reg._members():
        flows.append(
            [
                {
                    "scaled": state["scaled"],
                    "trees": bool(state["boosted_feature_"]),
                    "score": kept_validation_score(state),
                    "test": training_member(flow, {k: v for k, v in state.items() if k != "scaled"}).score_samples(
                        X_test, y_test
                    ),
                }
                for state in flow.__dict__[TRAININGS]
            ]
        )
    scores = {
        "default": ensemble_ll([best([t for t in f if not t["scaled"]])["test"] for f in flows]),
        "relevance": ensemble_ll([best([t for t in f if t["scaled"]])["test"] for f in flows]),
        "either": ensemble_ll([best(f)["test"] for f in flows]),
        "either_trees": ensemble_ll([best([t for t in f if not t["scaled"] or t["trees"]])["test"] for f in flows]),
        "scaled_kept": sum(best(f)["scaled"] for f in flows),
        "fitted": float(reg.score_samples(X_test, y_test).mean()),
    }
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = sets_or_noise_parser(__doc__)
    args = parser.parse_args(argv)
    ensemble.fit_choosing = recording_fit_choosing
    for name, split in numbered_splits(args):
        record = {"set": name, "split": split.index, "n": len(split.y_train)}
        append_record(args.out, {**record, **measure(split.X_train, split.y_train, split.X_test, split.y_test)})
    for rows in args.noise:
        for seed in args.draws:
            X_train, y_train, X_test, y_test, true = noisy_features_set(rows, 30, seed)
            scores = measure(X_train, y_train, X_test, y_test)
            gaps = {f"gap_{rule}": true - scores[rule] for rule in ("default", "relevance", "either")}
            append_record(args.out, {"set": "noise_features", "split": seed, "n": rows, **scores, **gaps})


if __name__ == "__main__":
    main()
