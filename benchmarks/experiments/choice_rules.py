"""Rules for each flow's choice among its trainings, compared on the same fits.

With ``flow="auto"`` each flow of a ``FlowRegressor`` trains with splines and
with mixture-CDF layers (each with and without the boosted trees' feature)
and keeps the training whose kept model scores highest on its validation
rows: on a hundred rows, ten rows choose among four trainings, and chance
can pick a worse one. One default fit per set and split records every
training of every flow (its fitted state, its log-likelihood of each
validation row and of each test row), and these rules rebuild the ensemble
from the same trainings:

- ``default``: each flow's highest mean validation score (what the library does; checked against the fit);
- ``spline`` / ``mixture``: the same within one layer kind;
- ``margin1`` / ``margin2``: the splines unless the mixture layers win by 1 or 2 paired standard errors
  (``skflow._core.rows.clearly_better``) on the flow's validation rows;
- ``pooled``: one kind for every flow, the one whose paired validation differences, summed over all flows'
  validation rows (about five times as many rows), favour it;
- ``both``: no choice of kind: each flow's best spline and best mixture training, all ten in the mixture;
- ``stacked``: each flow's ``w p_spline + (1 - w) p_mixture``, ``w`` fitted on all flows' validation rows.

Test log-likelihood in the target's units (mean over the test rows)::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.choice_rules --sets yacht bostonHousing \\
        --splits 0 1 2 3 --out results.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.choice_rules --small 100 300 --draws 2 \\
        --out results.jsonl
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.model_selection import train_test_split

import skflow._ensemble as ensemble
from skflow import FlowRegressor
from skflow._core.rows import clearly_better
from skflow._flow_choice import _fitted_state, fit_choosing, kept_validation_score
from skflow._linear_start import KEPT_SCORE, VALIDATION_ROWS

from .small_regression import small_sets
from .split_runs import append_record, numbered_splits, split_parser

CANDIDATES = "_recorded_trainings"
RULES = ("default", "spline", "mixture", "margin1", "margin2", "pooled", "both", "stacked")


def recording_fit_choosing(estimator, features, n_rows, fit):
    """The library's ``fit_choosing``, keeping every training's state (with its validation rows' scores) on the
    estimator."""
    trainings = []

    def fit_and_record(columns, kind, scaled):
        returned = fit(columns, kind, scaled)
        uses_trees = columns.shape[1] > estimator.n_features_in_  # fit_choosing sets it after the training
        trainings.append({**_fitted_state(estimator), "boosted_feature_": uses_trees})
        return returned

    returned = fit_choosing(estimator, features, n_rows, fit_and_record)
    estimator.__dict__[CANDIDATES] = trainings
    return returned


def training_member(flow, state: dict):
    member = copy.copy(flow)
    member.__dict__.update({k: v for k, v in state.items() if k not in (KEPT_SCORE, VALIDATION_ROWS, CANDIDATES)})
    member.ensemble_ = []
    return member


def flow_trainings(reg, X_test, y_test) -> list[list[dict]]:
    """Per flow, per training: kind, validation mean score, validation rows' scores and weights, test scores."""
    flows = []
    for flow in reg._members():
        trainings = []
        for state in flow.__dict__[CANDIDATES]:
            rows, weights = (np.asarray(a.cpu(), float) for a in state[VALIDATION_ROWS])
            trainings.append(
                {
                    "kind": state["flow_kind_"],
                    "score": kept_validation_score(state),
                    "rows": rows,
                    "weights": weights,
                    "test": training_member(flow, state).score_samples(X_test, y_test),
                }
            )
        flows.append(trainings)
    return flows


def best(trainings: list[dict], kind: str | None = None) -> dict:
    eligible = [t for t in trainings if kind is None or t["kind"] == kind]
    return max(eligible, key=lambda t: t["score"])


def ensemble_ll(per_flow_test: list[np.ndarray]) -> float:
    return float(np.mean(logsumexp(np.stack(per_flow_test), axis=0) - np.log(len(per_flow_test))))


def mixed(spline: dict, mixture: dict, w: float, key: str) -> np.ndarray:
    a, b = np.asarray(spline[key], float), np.asarray(mixture[key], float)
    with np.errstate(divide="ignore"):
        return np.logaddexp(np.log(w) + a, np.log1p(-w) + b)


def tensors(mixture: dict, spline: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.from_numpy(mixture["rows"]), torch.from_numpy(spline["rows"]), torch.from_numpy(spline["weights"])


def rule_scores(flows: list[list[dict]]) -> dict[str, float]:
    kinds = {t["kind"] for t in flows[0]}
    out = {"default": ensemble_ll([best(f)["test"] for f in flows])}
    if kinds != {"spline", "mixture_cdf"}:
        return out
    pairs = [(best(f, "spline"), best(f, "mixture_cdf")) for f in flows]
    out["spline"] = ensemble_ll([s["test"] for s, _ in pairs])
    out["mixture"] = ensemble_ll([m["test"] for _, m in pairs])
    for margin in (1, 2):
        chosen = [m if clearly_better(*tensors(m, s), margin) else s for s, m in pairs]
        out[f"margin{margin}"] = ensemble_ll([t["test"] for t in chosen])
    difference = sum(float(np.dot(m["rows"] - s["rows"], s["weights"])) for s, m in pairs)
    out["pooled"] = out["mixture"] if difference > 0 else out["spline"]
    out["both"] = ensemble_ll([t["test"] for pair in pairs for t in pair])
    grid = np.linspace(0, 1, 101)
    validation = [sum(float(np.dot(mixed(s, m, w, "rows"), s["weights"])) for s, m in pairs) for w in grid]
    w = float(grid[int(np.argmax(validation))])
    out["stacked"] = ensemble_ll([mixed(s, m, w, "test") for s, m in pairs])
    out["stacked_w"] = w
    out["mixture_kept"] = sum(best(f)["kind"] == "mixture_cdf" for f in flows)
    return out


def measure(X_train, y_train, X_test, y_test) -> dict:
    location, scale = X_train.mean(0), X_train.std(0) + 1e-12
    X_train, X_test = (X_train - location) / scale, (X_test - location) / scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = FlowRegressor(random_state=0).fit(X_train, y_train)
    scores = rule_scores(flow_trainings(reg, X_test, y_test))
    scores["fitted"] = float(reg.score_samples(X_test, y_test).mean())
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = split_parser(__doc__)
    parser.set_defaults(sets=[])
    parser._actions[[a.dest for a in parser._actions].index("sets")].required = False
    parser.add_argument("--small", nargs="*", type=int, default=[])
    parser.add_argument("--draws", type=int, default=2)
    args = parser.parse_args(argv)
    ensemble.fit_choosing = recording_fit_choosing
    for name, split in numbered_splits(args):
        record = {"set": name, "split": split.index, "n": len(split.y_train)}
        record.update(measure(split.X_train, split.y_train, split.X_test, split.y_test))
        if split.true_log_likelihood is not None:
            record["true"] = split.true_log_likelihood
        append_record(args.out, record)
    for n in args.small:
        for seed in range(args.draws):
            for name, X, y in small_sets(seed):
                X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=n, random_state=seed)
                record = {"set": name, "split": seed, "n": n, **measure(X_train, y_train, X_test, y_test)}
                append_record(args.out, record)


if __name__ == "__main__":
    main()
