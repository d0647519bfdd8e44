"""``relevance_scaling="auto"`` with noise features found by shadow features: what it changes against the default.

:mod:`skflow._feature_relevance` takes a feature for noise when boosted
trees fitted to the features and a shuffled copy of each give it no more
split gain than the best copy, in most of five shuffles. With "auto" each
flow trains as given and with those features' standardized values divided
by 20, and keeps the better-validating training; where no feature is taken
for noise, the fit is the default's, bit for bit. Each record: the features
taken for noise, how many flows kept the scaling, and the test
log-likelihood (nats a row), 90% coverage and fit seconds of the default
``FlowRegressor(random_state=0)`` and of ``relevance_scaling="auto"``; on
:mod:`benchmarks.experiments.noise_features`' set, the gap to the true
conditional log-likelihood too::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.shadow_noise --sets energy \\
        --splits 0 1 --out results.jsonl
    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.shadow_noise --sets --noise 1000 \\
        --draws 0 --out results.jsonl
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from skflow import FlowRegressor
from skflow._feature_relevance import feature_relevance
from skflow._fitting import draw_seed
from skflow._regression_data import context_scaling

from .noise_features import noisy_features_set, sets_or_noise_parser
from .split_runs import append_record, numbered_splits

VARIANTS = {"default": {}, "auto": {"relevance_scaling": "auto"}}


def measure(X_train, y_train, X_test, y_test, variants: list[str]) -> dict:
    location, scale = X_train.mean(0), X_train.std(0) + 1e-12
    X_train, X_test = (X_train - location) / scale, (X_test - location) / scale
    seed = draw_seed(FlowRegressor(random_state=0))
    relevance = feature_relevance(X_train, y_train.reshape(len(y_train), -1), np.ones(len(y_train)), seed)
    record = {"noise": np.flatnonzero(relevance < 1).tolist(), "n_features": X_train.shape[1]}
    _, standard = context_scaling(X_train, np.ones(len(y_train)))
    for variant in variants:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reg = FlowRegressor(random_state=0, **VARIANTS[variant]).fit(X_train, y_train)
        seconds = time.perf_counter() - start
        interval = reg.predict_interval(X_test)
        covered = (y_test >= interval[:, 0]) & (y_test <= interval[:, 1])
        record[variant] = float(reg.score_samples(X_test, y_test).mean())
        record[f"{variant}_coverage"] = float(covered.mean())
        record[f"{variant}_seconds"] = round(seconds, 1)
        if variant == "auto":
            d = X_train.shape[1]
            record["scaled_kept"] = sum(not np.allclose(member.x_scale_[:d], standard) for member in reg._members())
    return record


def main(argv: list[str] | None = None) -> None:
    parser = sets_or_noise_parser(__doc__)
    parser.add_argument("--variants", nargs="+", default=["default", "auto"], choices=sorted(VARIANTS))
    args = parser.parse_args(argv)
    for name, split in numbered_splits(args):
        record = {"set": name, "split": split.index, "n": len(split.y_train)}
        scores = measure(split.X_train, split.y_train, split.X_test, split.y_test, args.variants)
        append_record(args.out, {**record, **scores})
    for rows in args.noise:
        for seed in args.draws:
            X_train, y_train, X_test, y_test, true = noisy_features_set(rows, 30, seed)
            scores = measure(X_train, y_train, X_test, y_test, args.variants)
            gaps = {f"gap_{v}": true - scores[v] for v in args.variants}
            append_record(args.out, {"set": "noise_features", "split": seed, "n": rows, **scores, **gaps})


if __name__ == "__main__":
    main()
