"""``relevance_scaling="auto"`` against the default on the seven small sets of
:mod:`benchmarks.experiments.small_regression` (friedman1 has five noise features of ten; the others none
by construction), at 100 and 200 training rows, three draws: test log-likelihood, 90% coverage and the
number of flows that kept the ridge regression, per variant::

    PYTHONPATH=. OMP_NUM_THREADS=1 python -m benchmarks.experiments.shadow_noise_small --sizes 100 200 \\
        --out results.jsonl
"""

from __future__ import annotations

import functools

from .small_regression import Column, fit_and_score, run


def measure(X_train, y_train, X_test, y_test, relevance_scaling) -> list:
    return fit_and_score(X_train, y_train, X_test, y_test, relevance_scaling=relevance_scaling)[1]


def main(argv: list[str] | None = None) -> None:
    def columns(n: int) -> list[Column]:
        return [(f"{setting}", functools.partial(measure, relevance_scaling=setting)) for setting in (False, "auto")]

    run(argv, __doc__, [100, 200], columns)


if __name__ == "__main__":
    main()
