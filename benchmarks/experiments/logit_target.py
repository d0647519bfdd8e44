"""Targets inside (0, 1): ``bounds="auto"``'s logit scale against the target as it is and against (0, 1) declared.

Since the thirty-fourth session ``bounds="auto"`` also tries ``logit`` on ``(-min, 2 - max)`` for a target inside
(0, 1) (:mod:`skflow._target_scale`). Each draw is fitted three ways, ``bounds="auto"`` (the default), ``None``
(what the default did before on these sets, whose log scale never won) and the true support ``(0, 1)``, or, for
small rates, where the log won before, ``(-min, None)`` (the old default) instead of ``None``; all are scored on
2,000 new rows against the true conditional density::

    python -m benchmarks.experiments.logit_target --draws 3 --out logit.jsonl
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import beta

from skflow import FlowRegressor

from .split_runs import append_record

TEST_ROWS = 2000


def proportions(n: int, rng: np.random.Generator, spread: float = 5.0, top: float = 1.0):
    """Beta-distributed proportions whose mean ``top / (1 + exp(-(1.2 x_0 - 0.4 x_1)))`` moves with ``x``."""
    X = rng.uniform(-2, 2, (n, 3))
    mean = top / (1 + np.exp(-(1.2 * X[:, 0] - 0.4 * X[:, 1])))
    a, b = mean * spread, (1 - mean) * spread
    return X, rng.beta(a, b), a, b


def small_rates(n: int, rng: np.random.Generator):
    """Rates of a few percent, pressed against 0 alone."""
    return proportions(n, rng, spread=40.0, top=0.05)


SETS = {
    "proportions_300": (proportions, 300),
    "proportions_600": (proportions, 600),
    "small_rates_300": (small_rates, 300),
}


def scores(reg: FlowRegressor, X: np.ndarray, y: np.ndarray) -> dict:
    low, high = reg.predict_interval(X, coverage=0.9).T
    return {
        "log_likelihood": float(reg.score_samples(X, y).mean()),
        "coverage": float(np.mean((low <= y) & (y <= high))),
        "intervals_outside_0_1": int(np.sum((low < 0) | (high > 1))),
        "low": float(reg.low_[0]),
        "high": float(reg.high_[0]),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for name in args.sets:
        generate, rows = SETS[name]
        for draw in range(args.draws):
            rng = np.random.default_rng(draw)
            X, y, _, _ = generate(rows, rng)
            X_test, y_test, a, b = generate(TEST_ROWS, rng)
            record = {"set": name, "draw": draw, "true_log_likelihood": float(beta.logpdf(y_test, a, b).mean())}
            others = {"as_given": None, "zero_one": (0.0, 1.0)}
            if name.startswith("small_rates"):
                others = {"log": (-float(y.min()), None)}
            for label, bounds in {"auto": "auto", **others}.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    reg = FlowRegressor(bounds=bounds, random_state=0).fit(X, y)
                record.update({f"{label}_{k}": v for k, v in scores(reg, X_test, y_test).items()})
            append_record(args.out, record)


if __name__ == "__main__":
    main()
